//! The embedded stub executable: its bytes, its load segments (parsed from the ELF program
//! headers, System V gABI "Program Header") and the sealed memfd H executes it from.

use crate::SwitcherError;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::OnceLock;

/// The stub ELF, built by build.rs from switcher/stub.
static STUB_ELF: &[u8] = include_bytes!(env!("PVM_STUB_ELF"));

/// One `PT_LOAD` segment of the stub.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Virtual address (inside the stub area), bytes.
    pub vaddr: u64,
    /// Size in memory, rounded up to a page, bytes.
    pub len: u64,
    /// ELF `p_flags` (`PF_X` 1, `PF_W` 2, `PF_R` 4).
    pub flags: u32,
}

/// The parsed stub image.
#[derive(Debug)]
pub struct StubImage {
    /// Load segments in address order.
    pub segments: Vec<Segment>,
}

impl StubImage {
    /// The executable segment `[start, end)`: the range the U guest filter allows `futex` and
    /// `rt_sigreturn` from.
    pub fn text(&self) -> (u64, u64) {
        self.segments
            .iter()
            .find(|s| s.flags & 1 != 0)
            .map_or((0, 0), |s| (s.vaddr, s.vaddr + s.len))
    }

    /// The writable segment (data + bss) `[start, end)`.
    pub fn data(&self) -> (u64, u64) {
        self.segments
            .iter()
            .find(|s| s.flags & 2 != 0)
            .map_or((0, 0), |s| (s.vaddr, s.vaddr + s.len))
    }
}

/// The raw stub ELF bytes.
pub fn elf_bytes() -> &'static [u8] {
    STUB_ELF
}

fn u16_at(b: &[u8], o: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(o..o + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?))
}
fn u64_at(b: &[u8], o: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(o..o + 8)?.try_into().ok()?))
}

fn parse(b: &[u8]) -> Result<StubImage, SwitcherError> {
    let bad = SwitcherError::BadImage;
    if b.get(0..4) != Some(b"\x7fELF") || b.get(4) != Some(&2) || u16_at(b, 18) != Some(62) {
        return Err(bad("not an x86-64 ELF64"));
    }
    let phoff = u64_at(b, 32).ok_or(bad("short header"))? as usize;
    let phentsize = u16_at(b, 54).ok_or(bad("short header"))? as usize;
    let phnum = u16_at(b, 56).ok_or(bad("short header"))? as usize;
    let mut segments = Vec::new();
    for i in 0..phnum {
        let o = phoff + i * phentsize;
        let ty = u32_at(b, o).ok_or(bad("short program header"))?;
        if ty != 1 {
            continue;
        }
        let flags = u32_at(b, o + 4).ok_or(bad("short program header"))?;
        let vaddr = u64_at(b, o + 16).ok_or(bad("short program header"))?;
        let memsz = u64_at(b, o + 40).ok_or(bad("short program header"))?;
        segments.push(Segment { vaddr, len: memsz.next_multiple_of(guest_abi::PAGE_SIZE), flags });
    }
    segments.sort_by_key(|s| s.vaddr);
    let img = StubImage { segments };
    let (ts, te) = img.text();
    if ts != guest_abi::layout::STUB_BASE || te <= ts || te > ts + guest_abi::layout::STUB_IMAGE_SIZE {
        return Err(bad("text segment not at STUB_BASE"));
    }
    Ok(img)
}

/// The parsed embedded stub image.
pub fn stub_image() -> Result<&'static StubImage, SwitcherError> {
    static IMAGE: OnceLock<Result<StubImage, &'static str>> = OnceLock::new();
    match IMAGE.get_or_init(|| parse(STUB_ELF).map_err(|e| match e {
        SwitcherError::BadImage(m) => m,
        _ => "unparsable",
    })) {
        Ok(i) => Ok(i),
        Err(m) => Err(SwitcherError::BadImage(m)),
    }
}

/// A sealed, read-only memfd holding the stub, created once per H process.
pub(crate) fn exec_fd() -> Result<BorrowedFd<'static>, SwitcherError> {
    static FD: OnceLock<OwnedFd> = OnceLock::new();
    if let Some(fd) = FD.get() {
        return Ok(fd.as_fd());
    }
    let fd = make_exec_fd()?;
    Ok(FD.get_or_init(|| fd).as_fd())
}

fn make_exec_fd() -> Result<OwnedFd, SwitcherError> {
    let rw = crate::sys::memfd(c"pvm-stub", 0, libc::MFD_ALLOW_SEALING)?;
    crate::sys::write_all_at(rw.as_fd(), STUB_ELF)?;
    let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE | libc::F_SEAL_SEAL;
    // SAFETY: fcntl on an owned fd.
    if unsafe { libc::fcntl(rw.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
        return Err(SwitcherError::last_os("F_ADD_SEALS"));
    }
    // Reopen read-only so no writable description of the file exists (exec refuses files
    // open for writing with ETXTBSY on some kernels).
    let path = format!("/proc/self/fd/{}\0", rw.as_raw_fd());
    // SAFETY: path is NUL-terminated.
    let ro = unsafe { libc::open(path.as_ptr().cast(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if ro < 0 {
        return Ok(rw);
    }
    // SAFETY: a fresh fd we own.
    Ok(unsafe { OwnedFd::from_raw_fd(ro) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_image_has_text_at_stub_base_and_a_data_segment() {
        let img = stub_image().expect("parses");
        let (ts, te) = img.text();
        assert_eq!(ts, guest_abi::layout::STUB_BASE);
        assert!(te > ts && te.is_multiple_of(4096));
        let (ds, de) = img.data();
        assert!(ds >= te && de > ds, "data after text");
        assert!(parse(b"not an elf").is_err());
    }
}
