//! The guest kernel's locks: a spin lock ([`SpinLock`], also exported as [`Mutex`]) and a
//! reader/writer spin lock ([`RwSpin`]) that record which vCPU holds them, and, past a spin
//! threshold, tell H which vCPU to run (`YIELD_TO(holder)`, paravirtual lock-holder hints).
//!
//! Why: vCPUs are host threads; when they outnumber the host CPUs (or share them with H's
//! threads) a vCPU that holds a lock may be descheduled while another vCPU spins on it for a
//! whole host time slice. A waiter that spun [`SPIN_THRESHOLD`] times asks H to run the holder
//! (`guest_abi::hypercall::Hypercall::YieldTo`); H returns once the holder made progress or
//! after a short timeout, and the waiter spins again. Hints are used only when H offered them
//! (`BootInfo::pv_features & PV_LOCK_HINTS`, read at boot by [`init`]) and only on the soft
//! backend (under KVM the kernel's vCPUs are KVM's; the hypercall would only cost an exit).
//! Spins past the threshold and yields are counted in the guest statistics block.
//!
//! Trust: nothing here is shared with H or user code; the holder word is kernel-only memory.
//! A lock is never taken recursively on one vCPU (that would spin forever, as with any spin
//! lock); the yield path itself takes no lock (hypercall page and statistics are atomics).

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// Spin iterations (each a `pause`) before a waiter counts a long spin and, with hints on,
/// yields to the holder. About 10-40 us on current CPUs: longer than any critical section of
/// this kernel that runs undisturbed, shorter than a host time slice.
pub const SPIN_THRESHOLD: u32 = 1 << 13;

/// Whether `YIELD_TO` hints are in use (set once at boot).
static HINTS: AtomicBool = AtomicBool::new(false);

/// Turns lock-holder hints on when H offered them (`pv_features`) and the kernel runs on the
/// soft backend. Called once at boot, before other vCPUs start.
pub fn init(pv_features: u32) {
    let on = pv_features & guest_abi::boot::PV_LOCK_HINTS != 0 && !crate::platform::hw::active();
    HINTS.store(on, Ordering::Relaxed);
}

/// Marker of "held" in a holder word: vCPU `v` is stored as `v + 1`, so 0 means free.
#[inline]
fn me_word() -> u32 {
    crate::percpu::current() + 1
}

/// One spin step of a waiter that has spun `*spins` times on a lock whose holder word reads
/// `holder` (0: unknown, e.g. readers). Past the threshold: count, maybe yield, start over.
#[cold]
fn contended(spins: &mut u32, holder: u32) {
    *spins += 1;
    if *spins < SPIN_THRESHOLD {
        core::hint::spin_loop();
        return;
    }
    *spins = 0;
    crate::stats::lock_spin_long();
    if holder != 0 && HINTS.load(Ordering::Relaxed) {
        let me = crate::percpu::current();
        if holder - 1 != me {
            crate::stats::lock_yield();
            crate::hcall::yield_to(holder - 1);
        }
    }
}

/// A spin lock that records its holder vCPU (API as `spin::Mutex`: `new`, `lock`, guards).
pub struct SpinLock<T: ?Sized> {
    /// 0 = free, else holder vCPU + 1.
    word: AtomicU32,
    data: UnsafeCell<T>,
}

/// The name the rest of the kernel uses.
pub type Mutex<T> = SpinLock<T>;

// SAFETY: the lock hands out access to `data` to one holder at a time (the word's
// compare-exchange with Acquire, the guard's Release store), so sharing the lock between
// vCPUs is sound whenever `T` may be sent between them.
unsafe impl<T: ?Sized + Send> Sync for SpinLock<T> {}
// SAFETY: owning the lock owns the `T`.
unsafe impl<T: ?Sized + Send> Send for SpinLock<T> {}

impl<T> SpinLock<T> {
    /// A free lock around `v`.
    pub const fn new(v: T) -> Self {
        SpinLock { word: AtomicU32::new(0), data: UnsafeCell::new(v) }
    }

    /// The value, consuming the lock.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> SpinLock<T> {
    /// Takes the lock, spinning (and past the threshold hinting H) while another vCPU has it.
    #[inline]
    pub fn lock(&self) -> SpinGuard<'_, T> {
        let me = me_word();
        if self.word.compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed).is_err() {
            self.lock_slow(me);
        }
        SpinGuard { lock: self }
    }

    #[cold]
    fn lock_slow(&self, me: u32) {
        let mut spins = 0u32;
        loop {
            let h = self.word.load(Ordering::Relaxed);
            if h == 0 {
                if self.word.compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed).is_ok() {
                    return;
                }
                continue;
            }
            contended(&mut spins, h);
        }
    }

    /// Takes the lock if it is free.
    pub fn try_lock(&self) -> Option<SpinGuard<'_, T>> {
        self.word.compare_exchange(0, me_word(), Ordering::Acquire, Ordering::Relaxed).ok().map(|_| SpinGuard { lock: self })
    }

    /// Whether some vCPU holds the lock (a hint: it may change at once).
    pub fn is_locked(&self) -> bool {
        self.word.load(Ordering::Relaxed) != 0
    }

    /// Mutable access without locking (the caller owns the lock exclusively).
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }
}

impl<T: Default> Default for SpinLock<T> {
    fn default() -> Self {
        SpinLock::new(T::default())
    }
}

impl<T: ?Sized> core::fmt::Debug for SpinLock<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SpinLock")
    }
}

impl<T: ?Sized> core::fmt::Debug for RwSpin<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("RwSpin")
    }
}

/// Holds a [`SpinLock`]; releases it when dropped.
pub struct SpinGuard<'a, T: ?Sized> {
    lock: &'a SpinLock<T>,
}

impl<T: ?Sized> Deref for SpinGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard exists only while this vCPU holds the lock.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for SpinGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; the guard is unique.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for SpinGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.word.store(0, Ordering::Release);
    }
}

/// Writer bit of [`RwSpin`]'s state.
const WRITER: u32 = 1 << 31;
/// A writer waits: new readers hold back (no writer starvation).
const WRITER_WAITING: u32 = 1 << 30;
/// Reader count mask.
const READERS: u32 = WRITER_WAITING - 1;

/// A reader/writer spin lock (Linux's `mmap_lock` idea for address spaces): any number of
/// readers or one writer. A waiting writer holds new readers back. The writer's vCPU is
/// recorded for lock-holder hints; readers are not (waiting on readers only spins).
///
/// `lock()` is the exclusive (write) lock, so code written for a mutex keeps its meaning.
pub struct RwSpin<T: ?Sized> {
    state: AtomicU32,
    /// Writer vCPU + 1 while a writer holds the lock, else 0.
    writer: AtomicU32,
    data: UnsafeCell<T>,
}

// SAFETY: readers get shared references only (so `T: Sync`), the writer exclusive access
// (so `T: Send`); the state word orders them with Acquire/Release.
unsafe impl<T: ?Sized + Send + Sync> Sync for RwSpin<T> {}
// SAFETY: owning the lock owns the `T`.
unsafe impl<T: ?Sized + Send> Send for RwSpin<T> {}

impl<T> RwSpin<T> {
    /// A free lock around `v`.
    pub const fn new(v: T) -> Self {
        RwSpin { state: AtomicU32::new(0), writer: AtomicU32::new(0), data: UnsafeCell::new(v) }
    }
}

impl<T: ?Sized> RwSpin<T> {
    /// Shared access.
    pub fn read(&self) -> ReadGuard<'_, T> {
        let mut spins = 0u32;
        loop {
            let s = self.state.load(Ordering::Relaxed);
            if s & (WRITER | WRITER_WAITING) == 0 && s & READERS < READERS {
                if self.state.compare_exchange_weak(s, s + 1, Ordering::Acquire, Ordering::Relaxed).is_ok() {
                    return ReadGuard { lock: self };
                }
                continue;
            }
            contended(&mut spins, self.writer.load(Ordering::Relaxed));
        }
    }

    /// Exclusive access (the write lock).
    pub fn lock(&self) -> WriteGuard<'_, T> {
        self.write()
    }

    /// Exclusive access.
    pub fn write(&self) -> WriteGuard<'_, T> {
        let mut spins = 0u32;
        loop {
            let s = self.state.load(Ordering::Relaxed);
            if s & (WRITER | READERS) == 0 {
                if self.state.compare_exchange_weak(s, WRITER, Ordering::Acquire, Ordering::Relaxed).is_ok() {
                    self.writer.store(me_word(), Ordering::Relaxed);
                    return WriteGuard { lock: self };
                }
                continue;
            }
            if s & WRITER_WAITING == 0 {
                self.state.fetch_or(WRITER_WAITING, Ordering::Relaxed);
            }
            contended(&mut spins, self.writer.load(Ordering::Relaxed));
        }
    }
}

/// Shared access to an [`RwSpin`].
pub struct ReadGuard<'a, T: ?Sized> {
    lock: &'a RwSpin<T>,
}

impl<T: ?Sized> Deref for ReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: readers only coexist with readers.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for ReadGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.state.fetch_sub(1, Ordering::Release);
    }
}

/// Exclusive access to an [`RwSpin`].
pub struct WriteGuard<'a, T: ?Sized> {
    lock: &'a RwSpin<T>,
}

impl<T: ?Sized> Deref for WriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the writer is alone.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for WriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the writer is alone and the guard unique.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for WriteGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.writer.store(0, Ordering::Relaxed);
        // Keep a WRITER_WAITING bit another writer set; drop ours.
        self.lock.state.fetch_and(!WRITER, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spin_lock_excludes_and_releases() {
        let l = SpinLock::new(5);
        {
            let mut g = l.lock();
            *g += 1;
            assert!(l.try_lock().is_none(), "held");
            assert!(l.is_locked());
        }
        assert_eq!(*l.lock(), 6);
        assert!(!l.is_locked());
    }

    #[test]
    fn rw_lock_readers_share_writer_excludes() {
        let l = RwSpin::new(1);
        let a = l.read();
        let b = l.read();
        assert_eq!(*a + *b, 2);
        assert_eq!(l.state.load(Ordering::Relaxed) & READERS, 2);
        drop((a, b));
        {
            let mut w = l.write();
            *w = 7;
            assert_eq!(l.state.load(Ordering::Relaxed) & WRITER, WRITER);
        }
        assert_eq!(*l.read(), 7);
        assert_eq!(l.state.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn waiting_writer_bit_survives_release() {
        let l = RwSpin::new(0);
        let w = l.write();
        l.state.fetch_or(WRITER_WAITING, Ordering::Relaxed);
        drop(w);
        assert_eq!(l.state.load(Ordering::Relaxed), WRITER_WAITING);
        // A writer takes it over the waiting bit and clears it.
        drop(l.write());
        assert_eq!(l.state.load(Ordering::Relaxed), 0);
    }
}
