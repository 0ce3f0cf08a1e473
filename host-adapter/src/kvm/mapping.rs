//! Host mappings that back KVM memory slots: guest RAM (the guest-memory memfd, shared with
//! `GuestRam`'s own mapping) and the backend's anonymous area.

use std::os::fd::{AsRawFd, BorrowedFd};

use crate::BackendError;

/// An `mmap`ed range, unmapped on drop.
pub(crate) struct HostMapping {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value; the guest (through KVM) and H
// access it concurrently by design, and H copies what it reads before using it.
unsafe impl Send for HostMapping {}
// SAFETY: as for Send.
unsafe impl Sync for HostMapping {}

impl HostMapping {
    fn map(len: usize, flags: i32, fd: i32, what: &'static str) -> Result<Self, BackendError> {
        // SAFETY: a fresh mapping at an address the kernel chooses; no existing memory changes.
        let p = unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, flags, fd, 0) };
        if p == libc::MAP_FAILED {
            return Err(BackendError::Host { what, source: std::io::Error::last_os_error() });
        }
        Ok(Self { ptr: p.cast(), len })
    }

    /// Maps `len` bytes of `fd` shared.
    pub(crate) fn shared(fd: BorrowedFd<'_>, len: usize) -> Result<Self, BackendError> {
        Self::map(len, libc::MAP_SHARED, fd.as_raw_fd(), "mapping guest memory for KVM")
    }

    /// Maps `len` zeroed anonymous bytes.
    pub(crate) fn anonymous(len: usize) -> Result<Self, BackendError> {
        Self::map(len, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE, -1, "mapping the KVM area")
    }

    /// Host address.
    pub(crate) fn addr(&self) -> u64 {
        self.ptr as u64
    }

    /// Length, bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The bytes (the guest may change them concurrently: callers copy).
    pub(crate) fn bytes(&self) -> &[u8] {
        // SAFETY: ptr..ptr+len is mapped readable for the life of self.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// Copies `data` to offset `off` (bounds checked; the guest may race, as with RAM).
    pub(crate) fn write(&self, off: usize, data: &[u8]) -> bool {
        if off.checked_add(data.len()).is_none_or(|end| end > self.len) {
            return false;
        }
        // SAFETY: in bounds (checked above) of a live read-write mapping.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.add(off), data.len()) };
        true
    }

    /// The bytes, mutably (before any vCPU runs).
    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: mapped read-write for the life of self; `&mut self` excludes other users.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl Drop for HostMapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the range this value mapped; nothing refers to it any more.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}
