//! Per-vCPU frame caches in front of the global frame allocator (`super::frame::FRAMES`), after
//! Linux's per-cpu page lists (`struct per_cpu_pages` in mm/page_alloc.c): single-frame
//! allocations (page-table pages, copy-on-write copies, eager fork copies, kernel heap pages)
//! and frees of a few frames are served from a small per-vCPU magazine of [`CACHE_MAX`]
//! frames, refilled and drained [`BATCH`] frames at a time under the global lock, so two vCPUs
//! forking and faulting at once meet on that lock once per [`BATCH`] frames instead of once per
//! frame. Multi-frame runs (demand-fill extents, contiguous continuations) still come from the
//! global bitmap: contiguity is what they are for.
//!
//! A cached frame is *in use* in the global bitmap (so `alloc_at` never hands it out again),
//! has one owner and no pristine bit (frees clear it before the frame enters a cache, so
//! `zero_new` zeroes it when it is handed out again). It counts as **free** everywhere memory
//! is reported or rationed: [`Caches::free_frames`] (meminfo, sysinfo, `--stats`),
//! [`Caches::user_headroom`] and the reserve rules of `super::frame::Class` (a cached frame is
//! handed out only when the frames free in total, cached ones included, stay at or above what
//! the class must leave). Refills take only frames a user allocation could take, so a cache
//! never holds frames of the kernel reserve; near the reserve the global allocator decides with
//! its own rules. A run allocation that fails while caches hold frames drains every cache and
//! tries once more (`super::frame`), so the OOM killer (`crate::oom`) runs only when memory is
//! really exhausted, as Linux drains the per-cpu lists before declaring OOM.
//!
//! Concurrency: each magazine has its own spin lock, taken by every access, as Linux's
//! `pcp->lock` (since 5.19). On this kernel a thread never changes vCPU inside kernel code
//! (threads switch only between traps; `crate::sched`), so the lock of the caller's magazine is
//! uncontended except while another vCPU drains it (`drain_all`); it is what makes a stale vCPU
//! index (a thread that moved on) or a remote drain safe. No interrupt handler can re-enter a
//! cache on the same vCPU: kernel code runs with interrupts masked on the hw platform (they are
//! taken only in the idle `sti; hlt`, holding no lock) and polls them on the soft backend
//! (`crate::sched::take_irq`). Lock order: a magazine, then
//! `FRAMES`; never two magazines at once. The counters read without locks
//! (`global_free`, `cached`) are updated so that a concurrent reader under-counts rather than
//! over-counts (frames leave one count before they enter the other).

use super::frame::{Class, FrameAllocator, Geometry};
use super::PAGE_SIZE;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use spin::Mutex;

/// Frames one vCPU's cache holds at most (256 KiB).
pub const CACHE_MAX: usize = 64;
/// Frames moved between a cache and the global allocator at once.
pub const BATCH: usize = 16;
/// Most frames one `free` call hands to the cache (larger frees go to the bitmap directly).
pub const FAST_FREE_MAX: usize = 8;
/// Number of caches (one per possible vCPU).
const SLOTS: usize = guest_abi::MAX_VCPUS as usize;

/// One vCPU's cached frames (a stack: the most recently freed, hottest frame goes out first).
struct Magazine {
    n: usize,
    frames: [u64; CACHE_MAX],
}

/// What the caches did (unit tests check the refill and drain policy with them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Frames held by all caches now.
    pub cached: u64,
    /// Single-frame allocations served from a cache.
    pub hits: u64,
    /// Refills from the global allocator.
    pub refills: u64,
    /// Drains back to it (a full cache, or `drain_all`).
    pub drains: u64,
}

/// The per-vCPU caches and the lock-free mirrors of the global allocator's counts.
pub struct Caches {
    mags: [Mutex<Magazine>; SLOTS],
    geometry: spin::Once<Geometry>,
    /// Frames held by all magazines.
    cached: AtomicUsize,
    /// The global allocator's free count as of its last locked operation.
    global_free: AtomicUsize,
    reserve: AtomicUsize,
    total: AtomicUsize,
    /// Most frames in use at once (cached frames counted as free).
    peak: AtomicUsize,
    hits: AtomicU64,
    refills: AtomicU64,
    drains: AtomicU64,
}

impl Default for Caches {
    fn default() -> Self {
        Self::new()
    }
}

impl Caches {
    /// Empty caches (not installed: every operation falls back to the global allocator).
    pub const fn new() -> Self {
        Caches {
            mags: [const { Mutex::new(Magazine { n: 0, frames: [0; CACHE_MAX] }) }; SLOTS],
            geometry: spin::Once::new(),
            cached: AtomicUsize::new(0),
            global_free: AtomicUsize::new(0),
            reserve: AtomicUsize::new(0),
            total: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            hits: AtomicU64::new(0),
            refills: AtomicU64::new(0),
            drains: AtomicU64::new(0),
        }
    }

    /// Attaches the caches to `fa` (boot, before `fa` becomes the global allocator).
    pub fn install(&self, fa: &FrameAllocator) {
        self.geometry.call_once(|| fa.geometry());
        self.total.store(fa.total_frames(), Ordering::Relaxed);
        self.sync(fa);
        self.peak.fetch_max(fa.peak_frames(), Ordering::Relaxed);
    }

    /// The lock-free per-frame state, once installed.
    pub fn geometry(&self) -> Option<Geometry> {
        self.geometry.get().copied()
    }

    /// Mirrors `f`'s counts (called with its lock held).
    fn sync(&self, f: &FrameAllocator) {
        self.global_free.store(f.free_frames(), Ordering::Release);
        self.reserve.store(f.reserve(), Ordering::Relaxed);
        self.note_peak();
    }

    fn note_peak(&self) {
        let used = self.total.load(Ordering::Relaxed).saturating_sub(self.free_frames());
        self.peak.fetch_max(used, Ordering::Relaxed);
    }

    /// Runs `op` on the allocator in `global` under its lock and mirrors its counts after.
    pub fn locked<R>(&self, global: &Mutex<Option<FrameAllocator>>, op: impl FnOnce(&mut FrameAllocator) -> R) -> Option<R> {
        let mut g = global.lock();
        let f = g.as_mut()?;
        let r = op(f);
        self.sync(f);
        Some(r)
    }

    /// Free frames in total: the global allocator's plus the cached ones.
    pub fn free_frames(&self) -> usize {
        self.global_free.load(Ordering::Acquire) + self.cached.load(Ordering::Acquire)
    }

    /// Frames user memory may still take (free frames above the reserve).
    pub fn user_headroom(&self) -> usize {
        self.free_frames().saturating_sub(self.reserve.load(Ordering::Relaxed))
    }

    /// (used, peak, total) frames, cached frames counted as free.
    pub fn usage(&self) -> (usize, usize, usize) {
        let total = self.total.load(Ordering::Relaxed);
        let used = total.saturating_sub(self.free_frames());
        let peak = self.peak.fetch_max(used, Ordering::Relaxed).max(used);
        (used, peak, total)
    }

    /// What the caches did so far.
    pub fn counters(&self) -> Counters {
        Counters {
            cached: self.cached.load(Ordering::Relaxed) as u64,
            hits: self.hits.load(Ordering::Relaxed),
            refills: self.refills.load(Ordering::Relaxed),
            drains: self.drains.load(Ordering::Relaxed),
        }
    }

    /// Frames `class` must leave free (`super::frame::Class`).
    fn keep(&self, class: Class) -> usize {
        let reserve = self.reserve.load(Ordering::Relaxed);
        match class {
            Class::Kernel => 0,
            Class::Table => reserve / 2,
            Class::User => reserve,
        }
    }

    /// One frame for `class`, from vCPU `vcpu`'s cache when it may take one (refilling it
    /// first when empty), else from the global allocator under its own rules (draining every
    /// cache once if that fails while they hold frames). `None` when memory is exhausted for
    /// `class`.
    pub fn alloc_one(&self, global: &Mutex<Option<FrameAllocator>>, vcpu: usize, class: Class) -> Option<u64> {
        if self.geometry().is_some() {
            let mut m = self.mags[vcpu % SLOTS].lock();
            if m.n == 0 {
                self.refill(global, &mut m);
            }
            if m.n > 0 && self.free_frames() > self.keep(class) {
                m.n -= 1;
                let gpa = m.frames[m.n];
                self.cached.fetch_sub(1, Ordering::AcqRel);
                drop(m);
                self.hits.fetch_add(1, Ordering::Relaxed);
                self.note_peak();
                return Some(gpa);
            }
        }
        self.locked(global, |f| f.alloc_run_as(1, 1, class)).flatten().or_else(|| {
            (self.drain_all(global) > 0).then(|| self.locked(global, |f| f.alloc_run_as(1, 1, class)).flatten()).flatten()
        })
    }

    /// Moves up to [`BATCH`] frames a user allocation could take into `m` (empty).
    fn refill(&self, global: &Mutex<Option<FrameAllocator>>, m: &mut Magazine) {
        let mut g = global.lock();
        let Some(f) = g.as_mut() else { return };
        let mut got = 0;
        while m.n < BATCH {
            let Some(gpa) = f.alloc_run_as(1, 1, Class::User) else { break };
            let top = m.n;
            m.frames[top] = gpa;
            m.n = top + 1;
            got += 1;
        }
        // Out of the global count first, into the cached count after: readers under-count.
        self.sync(f);
        self.cached.fetch_add(got, Ordering::AcqRel);
        if got > 0 {
            self.refills.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Drops one owner of each of the `n` (at most [`FAST_FREE_MAX`]) frames at `gpa`; the
    /// frames whose last owner went enter vCPU `vcpu`'s cache (a full cache drains [`BATCH`]
    /// frames to the global allocator first). Returns false, doing nothing, before install.
    pub fn free(&self, global: &Mutex<Option<FrameAllocator>>, vcpu: usize, gpa: u64, n: usize) -> bool {
        let Some(geo) = self.geometry() else { return false };
        let mut last = [0u64; FAST_FREE_MAX];
        let mut k = 0;
        for j in 0..n.min(FAST_FREE_MAX) as u64 {
            let at = gpa + j * PAGE_SIZE;
            let Some(i) = geo.index(at) else { continue };
            if geo.drop_owner(i) {
                // Its owner may have written it: no longer known to be zero.
                geo.clear_pristine(i);
                last[k] = at;
                k += 1;
            }
        }
        if n > FAST_FREE_MAX {
            // Not for this path (the caller checks); keep the contract anyway.
            self.locked(global, |f| f.free(gpa + (FAST_FREE_MAX as u64) * PAGE_SIZE, n - FAST_FREE_MAX));
        }
        if k == 0 {
            return true;
        }
        let mut m = self.mags[vcpu % SLOTS].lock();
        for &at in &last[..k] {
            if m.frames[..m.n].contains(&at) {
                // A second free of a cached frame must not hand it out twice.
                continue;
            }
            if m.n == CACHE_MAX {
                self.drain(global, &mut m, BATCH);
            }
            let top = m.n;
            m.frames[top] = at;
            m.n = top + 1;
            self.cached.fetch_add(1, Ordering::AcqRel);
        }
        true
    }

    /// Returns the `count` oldest frames of `m` to the global allocator.
    fn drain(&self, global: &Mutex<Option<FrameAllocator>>, m: &mut Magazine, count: usize) -> usize {
        let count = count.min(m.n);
        if count == 0 {
            return 0;
        }
        let mut out = [0u64; CACHE_MAX];
        out[..count].copy_from_slice(&m.frames[..count]);
        m.frames.copy_within(count..m.n, 0);
        m.n -= count;
        // Out of the cached count first, into the global count after: readers under-count.
        self.cached.fetch_sub(count, Ordering::AcqRel);
        self.locked(global, |f| f.put_back(&out[..count]));
        self.drains.fetch_add(1, Ordering::Relaxed);
        count
    }

    /// Empties every cache into the global allocator (memory is short). Returns the frames
    /// returned.
    pub fn drain_all(&self, global: &Mutex<Option<FrameAllocator>>) -> usize {
        if self.cached.load(Ordering::Acquire) == 0 {
            return 0;
        }
        let mut n = 0;
        for slot in &self.mags {
            let mut m = slot.lock();
            let all = m.n;
            n += self.drain(global, &mut m, all);
        }
        n
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::boxed::Box;
    use std::vec;
    use std::vec::Vec;

    /// A global allocator of `n` free frames at GPA 0 with `reserve`, and caches attached.
    fn setup(n: usize, reserve: usize) -> (&'static Mutex<Option<FrameAllocator>>, &'static Caches) {
        let bm: &'static mut [u64] = Box::leak(vec![0u64; n.div_ceil(64)].into_boxed_slice());
        let refs: &'static mut [u32] = Box::leak(vec![0u32; n].into_boxed_slice());
        let pr: &'static mut [u64] = Box::leak(vec![0u64; n.div_ceil(64)].into_boxed_slice());
        let mut fa = FrameAllocator::new(0, n, bm, refs, pr);
        fa.release_initial(0, n, true);
        fa.set_reserve(reserve);
        let caches: &'static Caches = Box::leak(Box::new(Caches::new()));
        caches.install(&fa);
        (Box::leak(Box::new(Mutex::new(Some(fa)))), caches)
    }

    #[test]
    fn cached_frames_count_as_free_and_come_back_first() {
        let (g, c) = setup(1024, 0);
        let a = c.alloc_one(g, 0, Class::Kernel).expect("frame");
        assert_eq!(c.counters().refills, 1);
        assert_eq!(c.counters().cached, BATCH as u64 - 1, "the rest of the batch stays cached");
        assert_eq!(c.free_frames(), 1023, "cached frames are free frames");
        assert_eq!(c.usage().0, 1);
        assert!(c.free(g, 0, a, 1));
        assert_eq!(c.free_frames(), 1024);
        assert_eq!(c.alloc_one(g, 0, Class::Kernel), Some(a), "the hottest frame goes out first");
        assert_eq!(c.counters().hits, 2);
        assert_eq!(c.counters().refills, 1, "no second trip to the global allocator");
    }

    #[test]
    fn a_full_cache_drains_a_batch_and_the_bitmap_sees_it() {
        let (g, c) = setup(1024, 0);
        let frames: Vec<u64> = (0..CACHE_MAX + 1).map(|_| c.alloc_one(g, 1, Class::Kernel).expect("frame")).collect();
        for &f in &frames {
            assert!(c.free(g, 1, f, 1));
        }
        assert!(c.counters().drains >= 1);
        assert!(c.counters().cached as usize <= CACHE_MAX);
        assert_eq!(c.free_frames(), 1024, "every frame is free, cached or not");
        // A drained frame is free in the bitmap again: a whole-memory run needs every frame.
        let cached = c.counters().cached as usize;
        assert_eq!(c.drain_all(g), cached);
        assert_eq!(c.counters().cached, 0);
        assert_eq!(c.locked(g, |f| f.alloc_run(1024, 1)).flatten(), Some(0));
    }

    #[test]
    fn shared_frames_stay_until_their_last_owner() {
        let (g, c) = setup(256, 0);
        let a = c.alloc_one(g, 0, Class::User).expect("frame");
        assert!(c.locked(g, |f| f.share(a)).unwrap());
        let before = c.counters().cached;
        assert!(c.free(g, 0, a, 1));
        assert_eq!(c.counters().cached, before, "one owner left: not free");
        assert!(!c.geometry().unwrap().is_shared(a));
        assert!(c.free(g, 0, a, 1));
        assert_eq!(c.counters().cached, before + 1);
        assert!(c.free(g, 0, a, 1), "a double free is ignored, not cached twice");
        assert_eq!(c.counters().cached, before + 1);
    }

    #[test]
    fn a_reused_cached_frame_is_zeroed() {
        let (g, c) = setup(128, 0);
        let geo = c.geometry().unwrap();
        let a = c.alloc_one(g, 0, Class::User).expect("frame");
        let i = geo.index(a).unwrap();
        // Allocated without zero_new (a copy-on-write copy), written, freed into the cache.
        assert!(c.free(g, 0, a, 1));
        assert_eq!(c.alloc_one(g, 0, Class::User), Some(a));
        assert_eq!(geo.take_pristine(i, 1), 1, "its old contents must be zeroed");
    }

    #[test]
    fn the_reserve_holds_with_frames_in_caches() {
        let (g, c) = setup(256, 100);
        // Fill user memory to the reserve: 156 frames, some through the cache of vCPU 0.
        let mut got = 0;
        while c.alloc_one(g, 0, Class::User).is_some() {
            got += 1;
        }
        assert_eq!(got, 156, "user memory stops at the reserve, cached frames included");
        assert_eq!(c.user_headroom(), 0);
        // The kernel may take the reserve, page tables half of it.
        for _ in 0..50 {
            assert!(c.alloc_one(g, 1, Class::Table).is_some());
        }
        assert!(c.alloc_one(g, 1, Class::Table).is_none());
        assert!(c.alloc_one(g, 1, Class::Kernel).is_some());
    }

    #[test]
    fn frames_cached_on_another_vcpu_are_not_lost_to_an_allocation() {
        let (g, c) = setup(64, 0);
        // vCPU 0 takes everything, then frees a few into its own cache.
        let all: Vec<u64> = (0..64).map(|_| c.alloc_one(g, 0, Class::Kernel).expect("frame")).collect();
        assert!(c.alloc_one(g, 1, Class::Kernel).is_none());
        for &f in &all[..3] {
            assert!(c.free(g, 0, f, 1));
        }
        // vCPU 1's cache is empty and the bitmap full: the frames in vCPU 0's are drained.
        assert!(c.alloc_one(g, 1, Class::Kernel).is_some());
        assert_eq!(c.free_frames(), 2);
    }

    #[test]
    fn concurrent_vcpus_never_get_one_frame_twice() {
        let (g, c) = setup(4096, 0);
        let owned: Vec<Vec<u64>> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..4)
                .map(|v| {
                    s.spawn(move || {
                        let mut mine = Vec::new();
                        for r in 0..2000 {
                            if r % 3 == 2 {
                                if let Some(f) = mine.pop() {
                                    assert!(c.free(g, v, f, 1));
                                }
                            } else if let Some(f) = c.alloc_one(g, v, Class::User) {
                                mine.push(f);
                            }
                            if r % 500 == 0 {
                                c.drain_all(g);
                            }
                        }
                        mine
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().expect("worker")).collect()
        });
        let mut all: Vec<u64> = owned.into_iter().flatten().collect();
        let held = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), held, "a frame was handed out twice");
        assert_eq!(c.free_frames(), 4096 - held);
    }
}
