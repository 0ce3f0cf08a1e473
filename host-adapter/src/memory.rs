//! Guest physical memory: one memfd (so K and U processes can map it too) wrapped in a
//! `vm-memory` `GuestMemoryMmap` for bounds-checked access from H.

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use vm_memory::{Bytes, FileOffset, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

/// Errors of guest-memory setup and access.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// `memfd_create` or `ftruncate` failed.
    #[error("creating the guest-memory memfd: {0}")]
    Create(std::io::Error),
    /// Mapping the memfd failed.
    #[error("mapping guest memory: {0}")]
    Map(String),
    /// An access fell outside guest memory.
    #[error("guest memory access out of range: {len} bytes at GPA {gpa:#x}")]
    OutOfRange {
        /// Guest physical address.
        gpa: u64,
        /// Length, bytes.
        len: u64,
    },
}

/// Chunk size of [`GuestRam::copy_within`], bytes.
const BULK_CHUNK: u64 = 1 << 20;
/// Chunk size of [`GuestRam::zero`] (the size of its static zero buffer), bytes.
const ZERO_CHUNK: u64 = 64 << 10;

/// Guest RAM: GPAs `0 .. size`, backed by a memfd.
pub struct GuestRam {
    file: File,
    mem: GuestMemoryMmap,
    base: *mut u8,
    size: u64,
}

// SAFETY: `base` points into the mapping owned by `mem`, which lives as long as `self`; all
// accesses through it are bounds-checked and either atomic or to guest-owned bytes whose
// concurrent modification by the guest is expected (H copies before use).
unsafe impl Send for GuestRam {}
// SAFETY: as for `Send`; `GuestMemoryMmap` is itself `Sync`.
unsafe impl Sync for GuestRam {}

impl GuestRam {
    /// Creates `size` bytes of zeroed guest memory (`size` a multiple of 4 KiB).
    ///
    /// # Errors
    /// [`MemoryError::Create`] / [`MemoryError::Map`] when the host refuses.
    pub fn new(size: u64) -> Result<Self, MemoryError> {
        // SAFETY: the name is a valid NUL-terminated string; flags are valid.
        let fd = unsafe { libc::memfd_create(c"pvm-guest-ram".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(MemoryError::Create(std::io::Error::last_os_error()));
        }
        // SAFETY: `fd` was just returned by memfd_create and is owned by nobody else.
        let file = unsafe { File::from_raw_fd(fd) };
        file.set_len(size).map_err(MemoryError::Create)?;
        let dup = file.try_clone().map_err(MemoryError::Create)?;
        let mem = GuestMemoryMmap::<()>::from_ranges_with_files([(
            GuestAddress(0),
            usize::try_from(size).map_err(|e| MemoryError::Map(e.to_string()))?,
            Some(FileOffset::new(dup, 0)),
        )])
        .map_err(|e| MemoryError::Map(e.to_string()))?;
        let base = mem
            .get_host_address(GuestAddress(0))
            .map_err(|e| MemoryError::Map(e.to_string()))?;
        Ok(Self { file, mem, base, size })
    }

    /// Size, bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The memfd, for K and U processes to map.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }

    fn check(&self, gpa: u64, len: u64) -> Result<(), MemoryError> {
        match gpa.checked_add(len) {
            Some(end) if end <= self.size => Ok(()),
            _ => Err(MemoryError::OutOfRange { gpa, len }),
        }
    }

    /// Copies `data` to `gpa`.
    ///
    /// # Errors
    /// [`MemoryError::OutOfRange`].
    pub fn write(&self, gpa: u64, data: &[u8]) -> Result<(), MemoryError> {
        self.check(gpa, data.len() as u64)?;
        self.mem
            .write_slice(data, GuestAddress(gpa))
            .map_err(|_| MemoryError::OutOfRange { gpa, len: data.len() as u64 })
    }

    /// Copies guest bytes at `gpa` into `buf` (one read: the copy is what H validates).
    ///
    /// # Errors
    /// [`MemoryError::OutOfRange`].
    pub fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        self.check(gpa, buf.len() as u64)?;
        self.mem
            .read_slice(buf, GuestAddress(gpa))
            .map_err(|_| MemoryError::OutOfRange { gpa, len: buf.len() as u64 })
    }

    /// Copies `len` bytes from `src` to `dst` inside guest RAM (`memmove` semantics), in
    /// chunks through a host buffer: the `COPY_MEM` hypercall.
    ///
    /// # Errors
    /// [`MemoryError::OutOfRange`] when either range leaves RAM (then nothing is copied).
    pub fn copy_within(&self, dst: u64, src: u64, len: u64) -> Result<(), MemoryError> {
        self.check(dst, len)?;
        self.check(src, len)?;
        let mut buf = vec![0u8; len.min(BULK_CHUNK) as usize];
        // Copy backwards when dst lies inside the source, so no chunk overwrites bytes not yet
        // read.
        let backwards = dst > src && dst < src + len;
        let mut done = 0;
        while done < len {
            let n = (len - done).min(BULK_CHUNK);
            let off = if backwards { len - done - n } else { done };
            let chunk = &mut buf[..n as usize];
            self.read(src + off, chunk)?;
            self.write(dst + off, chunk)?;
            done += n;
        }
        Ok(())
    }

    /// Zeroes `len` bytes at `gpa`: the `ZERO_MEM` hypercall.
    ///
    /// # Errors
    /// [`MemoryError::OutOfRange`] when the range leaves RAM (then nothing is written).
    pub fn zero(&self, gpa: u64, len: u64) -> Result<(), MemoryError> {
        /// Source of the zero fill: no allocation per hypercall.
        static ZEROS: [u8; ZERO_CHUNK as usize] = [0; ZERO_CHUNK as usize];
        self.check(gpa, len)?;
        let mut done = 0;
        while done < len {
            let n = (len - done).min(ZERO_CHUNK);
            self.write(gpa + done, &ZEROS[..n as usize])?;
            done += n;
        }
        Ok(())
    }

    /// Writes a plain-old-data value at `gpa` (for `#[repr(C)]` ABI structures).
    ///
    /// # Errors
    /// [`MemoryError::OutOfRange`].
    pub fn write_pod<T: Copy>(&self, gpa: u64, value: &T) -> Result<(), MemoryError> {
        // SAFETY: `T: Copy` ABI structs are plain bytes; the slice covers exactly `value`.
        let bytes = unsafe {
            std::slice::from_raw_parts((value as *const T).cast::<u8>(), size_of::<T>())
        };
        self.write(gpa, bytes)
    }

    /// The 4-byte word at `gpa` as an atomic (`gpa` 4-byte aligned and in range), e.g. a
    /// futex word the guest shares with another process.
    pub fn atomic_u32(&self, gpa: u64) -> Option<&AtomicU32> {
        if !gpa.is_multiple_of(4) || self.check(gpa, 4).is_err() {
            return None;
        }
        // SAFETY: in range and aligned (checked above); the mapping lives as long as `self`
        // and is shared memory, for which atomic access is the right discipline.
        Some(unsafe { AtomicU32::from_ptr(self.base.add(gpa as usize).cast::<u32>()) })
    }

    /// The 8-byte word at `gpa` as an atomic (`gpa` 8-byte aligned and in range).
    pub fn atomic_u64(&self, gpa: u64) -> Option<&AtomicU64> {
        if !gpa.is_multiple_of(8) || self.check(gpa, 8).is_err() {
            return None;
        }
        // SAFETY: in range and aligned (checked above); the mapping lives as long as `self`
        // and is shared memory, for which atomic access is the right discipline.
        Some(unsafe { AtomicU64::from_ptr(self.base.add(gpa as usize).cast::<u64>()) })
    }
}

impl shadow_mmu::GuestMemory for GuestRam {
    fn size(&self) -> u64 {
        self.size
    }

    fn load_u64(&self, gpa: u64) -> Option<u64> {
        self.atomic_u64(gpa).map(|a| a.load(Ordering::Acquire))
    }

    fn compare_exchange_u64(&self, gpa: u64, current: u64, new: u64) -> Option<Result<u64, u64>> {
        self.atomic_u64(gpa)
            .map(|a| a.compare_exchange(current, new, Ordering::AcqRel, Ordering::Acquire))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(ram: &GuestRam, gpa: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        ram.read(gpa, &mut v).expect("read");
        v
    }

    #[test]
    fn copy_within_is_memmove_across_chunks() {
        let size = 4 * BULK_CHUNK;
        let ram = GuestRam::new(size).expect("memfd");
        let len = BULK_CHUNK + 4099; // more than one chunk, odd length
        let pattern: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        // Disjoint, overlapping forwards (dst below src) and backwards (dst inside src).
        for (src, dst) in [(0, 2 * BULK_CHUNK), (4096, 100), (100, 4096 + 3)] {
            ram.write(src, &pattern).expect("write");
            ram.copy_within(dst, src, len).expect("copy");
            assert!(bytes(&ram, dst, len as usize) == pattern, "src {src:#x} dst {dst:#x}");
        }
        assert!(ram.copy_within(size - 10, 0, 11).is_err(), "destination past the end");
        assert!(ram.copy_within(0, u64::MAX - 1, 4).is_err(), "source overflows");
    }

    #[test]
    fn zero_clears_exactly_the_range() {
        let ram = GuestRam::new(4 * BULK_CHUNK).expect("memfd");
        ram.write(0, &vec![0xaa; (3 * BULK_CHUNK) as usize]).expect("write");
        ram.zero(1, BULK_CHUNK + 5).expect("zero");
        assert_eq!(bytes(&ram, 0, 1), [0xaa]);
        assert!(bytes(&ram, 1, (BULK_CHUNK + 5) as usize).iter().all(|&b| b == 0));
        assert_eq!(bytes(&ram, BULK_CHUNK + 6, 1), [0xaa]);
        assert!(ram.zero(4 * BULK_CHUNK - 1, 2).is_err());
    }

    #[test]
    fn bounds_are_checked() {
        let ram = GuestRam::new(1 << 20).expect("memfd");
        assert!(ram.write(0, b"abc").is_ok());
        assert!(ram.write((1 << 20) - 2, b"abc").is_err());
        assert!(ram.write(u64::MAX, b"a").is_err());
        let mut buf = [0u8; 3];
        ram.read(0, &mut buf).expect("read");
        assert_eq!(&buf, b"abc");
        assert!(ram.atomic_u64(3).is_none());
        assert!(ram.atomic_u64(1 << 20).is_none());
        assert!(ram.atomic_u64(8).is_some());
    }
}
