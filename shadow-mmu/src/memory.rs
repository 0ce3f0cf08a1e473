//! Guest physical memory as the shadow MMU reads it: the [`GuestMemory`] trait and
//! [`HostMappedMemory`], its implementation over H's own mapping of the guest-memory memfd.

use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, Ordering};

/// Guest physical memory, as H sees it. All accesses are atomic 8-byte accesses at 8-aligned
/// GPAs, because the guest (other vCPUs in K) may write its page tables concurrently.
pub trait GuestMemory: Send + Sync {
    /// Size of guest physical memory, bytes (GPAs `0 .. size`).
    fn size(&self) -> u64;
    /// Atomic (`Acquire`) 8-byte read at `gpa`. `None` if `gpa` is not 8-aligned or
    /// `gpa + 8 > size`.
    fn load_u64(&self, gpa: u64) -> Option<u64>;
    /// Atomic compare-exchange (`AcqRel` on success, `Acquire` on failure) of the 8 bytes at
    /// `gpa`: `Some(Ok(current))` if it held `current` and now holds `new`,
    /// `Some(Err(actual))` if it held `actual != current`, `None` as for [`Self::load_u64`].
    /// Used to set the Accessed and Dirty bits the way the processor does (Intel SDM vol. 3A,
    /// 4.8: the processor sets them with locked operations).
    fn compare_exchange_u64(&self, gpa: u64, current: u64, new: u64) -> Option<Result<u64, u64>>;
}

/// [`GuestMemory`] over a host mapping of guest memory (H maps the whole guest-memory memfd
/// `MAP_SHARED`; GPA `x` is at `base + x`).
#[derive(Debug)]
pub struct HostMappedMemory {
    base: NonNull<AtomicU64>,
    size: u64,
}

// SAFETY: the mapping is only accessed through atomics, which are sound to share and send
// across threads; the creator promised the mapping outlives this value (see `new`).
unsafe impl Send for HostMappedMemory {}
// SAFETY: as for `Send`: every access is an atomic operation on shared memory.
unsafe impl Sync for HostMappedMemory {}

impl HostMappedMemory {
    /// Wraps the mapping at `base` of `size` bytes. `None` if `base` is null or not 8-aligned.
    ///
    /// # Safety
    /// `base .. base + size` must be a readable and writable mapping that stays mapped for
    /// the whole life of the returned value, and must only ever be accessed with atomic
    /// operations or by other processes (the guest) while this value exists.
    pub unsafe fn new(base: *mut u8, size: u64) -> Option<Self> {
        if !(base as usize).is_multiple_of(8) {
            return None;
        }
        let base = NonNull::new(base.cast::<AtomicU64>())?;
        Some(Self { base, size })
    }

    fn word(&self, gpa: u64) -> Option<&AtomicU64> {
        if !gpa.is_multiple_of(8) || gpa.checked_add(8)? > self.size {
            return None;
        }
        let index = usize::try_from(gpa / 8).ok()?;
        // SAFETY: `gpa + 8 <= size`, so the word lies inside the mapping that `new`'s caller
        // guaranteed to be live, 8-aligned (base and gpa are) and only accessed atomically.
        Some(unsafe { self.base.add(index).as_ref() })
    }
}

impl GuestMemory for HostMappedMemory {
    fn size(&self) -> u64 {
        self.size
    }

    fn load_u64(&self, gpa: u64) -> Option<u64> {
        Some(self.word(gpa)?.load(Ordering::Acquire))
    }

    fn compare_exchange_u64(&self, gpa: u64, current: u64, new: u64) -> Option<Result<u64, u64>> {
        Some(self.word(gpa)?.compare_exchange(current, new, Ordering::AcqRel, Ordering::Acquire))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_mapped_memory_bounds_and_atomics() {
        let mut backing = vec![0u64; 4];
        // SAFETY: `backing` outlives `mem` and is only accessed through `mem` below.
        let mem = unsafe { HostMappedMemory::new(backing.as_mut_ptr().cast(), 32) }.unwrap();
        assert_eq!(mem.size(), 32);
        assert_eq!(mem.load_u64(24), Some(0));
        assert_eq!(mem.load_u64(28), None);
        assert_eq!(mem.load_u64(32), None);
        assert_eq!(mem.load_u64(u64::MAX - 7), None);
        assert_eq!(mem.compare_exchange_u64(8, 0, 5), Some(Ok(0)));
        assert_eq!(mem.compare_exchange_u64(8, 0, 6), Some(Err(5)));
        assert_eq!(mem.load_u64(8), Some(5));
        assert_eq!(backing[1], 5);
    }

    #[test]
    fn host_mapped_memory_rejects_misaligned_base() {
        let mut backing = [0u64; 2];
        let p = backing.as_mut_ptr().cast::<u8>().wrapping_add(1);
        // SAFETY: rejected before any access.
        assert!(unsafe { HostMappedMemory::new(p, 8) }.is_none());
    }
}
