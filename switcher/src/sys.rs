//! Small wrappers over libc for memfds and shared mappings.

use crate::SwitcherError;
use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// A `mmap`ed region, unmapped on drop.
pub(crate) struct Mapping {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is plain shared memory; all access goes through raw pointers and atomics,
// and it stays mapped until drop.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `len` bytes of `fd` at `offset`, `MAP_SHARED`, read-write.
    pub(crate) fn shared(fd: BorrowedFd<'_>, len: usize, offset: u64) -> Result<Self, SwitcherError> {
        // SAFETY: a fresh mapping chosen by the kernel; fd is valid for the call.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                offset as libc::off_t,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(SwitcherError::last_os("mmap"));
        }
        Ok(Self { ptr: p.cast(), len })
    }

    /// Start of the region.
    pub(crate) fn ptr(&self) -> *mut u8 {
        self.ptr
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: we own the mapping; nothing borrowed from it outlives self.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// `memfd_create(name, MFD_CLOEXEC | extra)` sized to `size` bytes.
pub(crate) fn memfd(name: &CStr, size: u64, extra: libc::c_uint) -> Result<OwnedFd, SwitcherError> {
    // SAFETY: name is NUL-terminated.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | extra) };
    if fd < 0 {
        return Err(SwitcherError::last_os("memfd_create"));
    }
    // SAFETY: fd is a fresh descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: plain syscall on an owned fd.
    if unsafe { libc::ftruncate(fd.as_raw_fd(), size as libc::off_t) } != 0 {
        return Err(SwitcherError::last_os("ftruncate"));
    }
    Ok(fd)
}

/// Writes all of `data` at offset 0 of `fd`.
pub(crate) fn write_all_at(fd: BorrowedFd<'_>, data: &[u8]) -> Result<(), SwitcherError> {
    let mut done = 0;
    while done < data.len() {
        // SAFETY: the buffer slice is valid for its length.
        let n = unsafe {
            libc::pwrite(fd.as_raw_fd(), data[done..].as_ptr().cast(), data.len() - done, done as libc::off_t)
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(SwitcherError::Os { op: "pwrite", source: e });
        }
        if n == 0 {
            return Err(SwitcherError::Os { op: "pwrite", source: std::io::ErrorKind::WriteZero.into() });
        }
        done += n as usize;
    }
    Ok(())
}

/// Size of the host's XSAVE signal-frame image (CPUID.(EAX=0DH,ECX=0).EBX + 4 bytes of
/// `FP_XSTATE_MAGIC2`; 512 without XSAVE). Intel SDM vol. 1, 13.2.
pub(crate) fn host_fpu_image_size() -> u64 {
    let leaf1 = std::arch::x86_64::__cpuid(1);
    if leaf1.ecx & (1 << 27) == 0 {
        return 512;
    }
    std::arch::x86_64::__cpuid_count(0xd, 0).ebx as u64 + 4
}

/// The user FPU state a U process gets on this host: (state components, signal-frame image
/// size in bytes, MXCSR mask). Components are XCR0 without those Linux arms XFD for until a
/// process asks permission (CPUID.(0DH, i).ECX bit 2, e.g. AMX tile data): a U never asks,
/// and XRSTOR of an XFD-armed component faults. The image size is the end of the highest
/// such component in the standard XSAVE layout (CPUID.(0DH, i).EBX + EAX; at least the 576
/// bytes of the legacy area and header) plus `FP_XSTATE_MAGIC2`, as Linux sizes signal
/// frames (`fpu_user_cfg.default_size`). Without XSAVE: (0, 512, mask). Intel SDM vol. 1,
/// 13.2-13.4; `arch/x86/kernel/fpu/xstate.c`.
pub(crate) fn host_fpu_format() -> (u64, u32, u32) {
    use std::arch::x86_64::{__cpuid, __cpuid_count};
    #[repr(C, align(16))]
    struct Area([u8; 512]);
    let mut area = Area([0; 512]);
    // SAFETY: FXSAVE writes 512 bytes into the 16-byte aligned local buffer.
    unsafe { std::arch::asm!("fxsave64 [{}]", in(reg) area.0.as_mut_ptr(), options(nostack)) };
    let mask = u32::from_le_bytes([area.0[28], area.0[29], area.0[30], area.0[31]]);
    let mask = if mask == 0 { 0xffbf } else { mask };
    if __cpuid(1).ecx & (1 << 27) == 0 {
        return (0, 512, mask);
    }
    let (lo, hi): (u32, u32);
    // SAFETY: XGETBV(0) reads XCR0; OSXSAVE is set (checked above).
    unsafe { std::arch::asm!("xgetbv", in("ecx") 0, out("eax") lo, out("edx") hi, options(nomem, nostack)) };
    let xcr0 = u64::from(lo) | (u64::from(hi) << 32);
    let mut features = xcr0 & 3;
    let mut end = 576u32;
    for i in 2..63 {
        if xcr0 & (1 << i) == 0 {
            continue;
        }
        let leaf = __cpuid_count(0xd, i);
        if leaf.ecx & 4 != 0 {
            continue;
        }
        features |= 1 << i;
        end = end.max(leaf.ebx + leaf.eax);
    }
    (features, end + 4, mask)
}

/// Whether the kernel enables `rdfsbase`/`wrfsbase` in user mode (`AT_HWCAP2` bit 1).
pub(crate) fn has_user_fsgsbase() -> bool {
    // SAFETY: getauxval has no preconditions.
    let hwcap2 = unsafe { libc::getauxval(libc::AT_HWCAP2) };
    hwcap2 & 2 != 0
}
