//! Physical frame allocator over guest RAM: a bitmap of 4 KiB frames with searches for
//! contiguous (optionally aligned) runs, so that address spaces can be given physically
//! contiguous extents (design section 6, "VMA budget": every GVA→GPA discontinuity costs H a
//! host VMA). Frames come back unzeroed.
//!
//! Copy-on-write sharing: each frame has a count of *extra* owners (`refs`, 0 = one owner).
//! [`FrameAllocator::free`] drops one owner; the frame returns to the pool only when the last
//! owner frees it, so every unmap path is COW-aware without knowing about sharing.
//!
//! Pristine frames: H hands over RAM zero-filled (a fresh memfd; `guest_abi::boot::BootInfo`),
//! so a frame that was never allocated since boot needs no zeroing. A second bitmap records
//! them (invariant: a *free* frame with its bit set is zero; [`FrameAllocator::free`] clears
//! the bit, since any owner may have written the frame); [`zero_new`] zeroes only frames that
//! were used before, and consumes the bit. This spares the soft backend
//! host page faults in K for memory only U touches, and the KVM backend page zeroing in
//! emulated ring 0 under software KVM.
//!
//! The kernel reserve: every allocation names its [`Class`]. User memory (demand paging,
//! copy-on-write copies, the executable page cache, eager fork copies) fails while fewer than
//! `reserve` frames would stay free; page-table pages may use half of the reserve (a user
//! operation needs a few to finish); the kernel's own allocations (the heap, flush lists) may
//! take everything. So a guest that fills its memory makes its own page faults fail (and the
//! OOM killer run, `crate::oom`) long before the kernel heap runs dry.
//!
//! SMP: the bitmap, free count and search hint are behind one lock ([`FRAMES`]); single
//! frames are allocated and freed through per-vCPU caches in front of it (`super::pcp`), and
//! the owner counts and pristine bits are atomics ([`Geometry`]), so `is_shared`, `zero_new`
//! and a free that only drops an owner take no lock at all.

use super::PAGE_SIZE;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

// The atomic views of the boot-time `u32`/`u64` slices below rely on equal layouts.
const _: () = assert!(align_of::<u32>() == align_of::<AtomicU32>() && align_of::<u64>() == align_of::<AtomicU64>());

/// Bitmap allocator state. Bit set = frame in use.
pub struct FrameAllocator {
    /// GPA of frame 0 of the bitmap.
    base: u64,
    /// Number of frames covered.
    nframes: usize,
    bitmap: &'static mut [u64],
    /// Extra owners per frame (copy-on-write sharing); empty = sharing unsupported. Atomic:
    /// owners drop their reference without the allocator lock ([`Geometry::drop_owner`]).
    refs: &'static [AtomicU32],
    /// Bit set = frame never allocated since boot, so still zero; empty = none known. Atomic:
    /// [`zero_new`] and the per-vCPU caches clear bits without the allocator lock.
    pristine: &'static [AtomicU64],
    /// Frames currently free.
    free: usize,
    /// Where the next first-fit search starts (frame index).
    hint: usize,
    /// Highest number of frames in use at once.
    peak_used: usize,
    /// Frames only [`Class::Kernel`] allocations may take (half of them also
    /// [`Class::Table`]).
    reserve: usize,
}

/// Who a frame allocation is for: decides how much of the kernel reserve it may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// The kernel's own memory (heap spans, hypercall lists): may use every free frame.
    Kernel,
    /// Page-table pages of user address spaces: may use half of the reserve.
    Table,
    /// User memory: never takes a frame of the reserve.
    User,
}

/// The reserve for guest RAM of `total` frames ([`guest_abi::boot::kernel_reserve_frames`]).
pub const fn reserve_for(total: usize) -> usize {
    guest_abi::boot::kernel_reserve_frames(total as u64) as usize
}

/// Frames in a 2 MiB run.
pub const LARGE_FRAMES: usize = 512;

impl FrameAllocator {
    /// An allocator for `nframes` frames starting at GPA `base`, all marked used; call
    /// [`FrameAllocator::free`] or [`FrameAllocator::release_initial`] on the ranges that are
    /// available. `bitmap` must have at least `nframes.div_ceil(64)` words; `refs` one word per
    /// frame (or empty: no sharing); `pristine` as many words as `bitmap` (or empty: every
    /// frame is zeroed when allocated).
    pub fn new(
        base: u64,
        nframes: usize,
        bitmap: &'static mut [u64],
        refs: &'static mut [u32],
        pristine: &'static mut [u64],
    ) -> Self {
        let words = nframes.div_ceil(64).min(bitmap.len());
        bitmap[..words].fill(u64::MAX);
        refs.fill(0);
        pristine.fill(0);
        // SAFETY: `AtomicU32`/`AtomicU64` have the size, bit validity and (asserted above)
        // alignment of `u32`/`u64`; the exclusive `'static` borrows are given up here, so the
        // atomic views are the only accesses from now on.
        let (refs, pristine) = unsafe {
            (
                &*(core::ptr::from_mut::<[u32]>(refs) as *const [AtomicU32]),
                &*(core::ptr::from_mut::<[u64]>(pristine) as *const [AtomicU64]),
            )
        };
        FrameAllocator { base, nframes: nframes.min(words * 64), bitmap, refs, pristine, free: 0, hint: 0, peak_used: 0, reserve: 0 }
    }

    /// Clears the pristine bits of frames `[i, i + n)` (which must lie within one 64-frame
    /// word) and returns the mask of those that were *not* pristine (need zeroing), relative
    /// to bit `i % 64` (see [`Geometry`]; the global path is [`zero_new`]).
    #[cfg(test)]
    fn take_pristine(&self, i: usize, n: usize) -> u64 {
        self.geometry().take_pristine(i, n)
    }

    /// Adds an owner to the (allocated) frame at `gpa`. `false` if it cannot be shared.
    pub fn share(&mut self, gpa: u64) -> bool {
        match self.index(gpa) {
            Some(i) if i < self.refs.len() && self.bit(i) => {
                self.refs[i].fetch_update(Ordering::AcqRel, Ordering::Acquire, |r| r.checked_add(1)).is_ok()
            }
            _ => false,
        }
    }

    /// True when the frame at `gpa` has more than one owner.
    pub fn is_shared(&self, gpa: u64) -> bool {
        self.geometry().is_shared(gpa)
    }

    /// The lock-free view of this allocator's per-frame state (owners, pristine bits).
    pub fn geometry(&self) -> Geometry {
        Geometry { base: self.base, nframes: self.nframes, refs: self.refs, pristine: self.pristine }
    }

    /// Returns frames taken from a per-vCPU cache (`super::pcp`) to the pool: each is in use
    /// in the bitmap, has one owner and no pristine bit (it was freed into the cache).
    /// Frames that are not in use are ignored. Returns the number returned.
    pub fn put_back(&mut self, gpas: &[u64]) -> usize {
        let mut n = 0;
        for &gpa in gpas {
            let Some(j) = self.index(gpa) else { continue };
            if self.bit(j) {
                self.set(j, false);
                self.hint = self.hint.min(j);
                n += 1;
            }
        }
        self.free += n;
        n
    }

    fn bit(&self, i: usize) -> bool {
        self.bitmap[i / 64] & (1 << (i % 64)) != 0
    }

    fn set(&mut self, i: usize, used: bool) {
        if used {
            self.bitmap[i / 64] |= 1 << (i % 64);
        } else {
            self.bitmap[i / 64] &= !(1 << (i % 64));
        }
    }

    fn index(&self, gpa: u64) -> Option<usize> {
        if gpa < self.base || !gpa.is_multiple_of(PAGE_SIZE) {
            return None;
        }
        let i = ((gpa - self.base) / PAGE_SIZE) as usize;
        (i < self.nframes).then_some(i)
    }

    /// Number of free frames.
    pub fn free_frames(&self) -> usize {
        self.free
    }

    /// Sets the kernel reserve, frames (see [`Class`]).
    pub fn set_reserve(&mut self, frames: usize) {
        self.reserve = frames;
    }

    /// The kernel reserve, frames.
    pub fn reserve(&self) -> usize {
        self.reserve
    }

    /// Frames a [`Class::User`] allocation may still take (free frames above the reserve).
    pub fn user_headroom(&self) -> usize {
        self.free.saturating_sub(self.reserve)
    }

    /// True when `n` frames may be allocated for `class` (counts only; contiguity is the
    /// search's business).
    fn permits(&self, n: usize, class: Class) -> bool {
        let keep = match class {
            Class::Kernel => 0,
            Class::Table => self.reserve / 2,
            Class::User => self.reserve,
        };
        n.checked_add(keep).is_some_and(|need| need <= self.free)
    }

    /// Number of frames in use.
    pub fn used_frames(&self) -> usize {
        self.nframes - self.free
    }

    /// Peak number of frames in use.
    pub fn peak_frames(&self) -> usize {
        self.peak_used
    }

    /// Total frames managed.
    pub fn total_frames(&self) -> usize {
        self.nframes
    }

    /// First index `>= i` of a run of `n` free frames, or the index where the run broke.
    fn run_free(&self, i: usize, n: usize) -> Result<(), usize> {
        let mut j = i;
        while j < i + n {
            if j.is_multiple_of(64) && i + n - j >= 64 && self.bitmap[j / 64] == 0 {
                j += 64;
                continue;
            }
            if self.bit(j) {
                return Err(j);
            }
            j += 1;
        }
        Ok(())
    }

    /// Allocates `n` contiguous frames whose first GPA is a multiple of `align` frames (GPA
    /// alignment relative to GPA 0), as [`Class::Kernel`]. Returns the GPA of the first frame.
    pub fn alloc_run(&mut self, n: usize, align: usize) -> Option<u64> {
        self.alloc_run_as(n, align, Class::Kernel)
    }

    /// [`FrameAllocator::alloc_run`] for `class`: `None` also when the allocation would take
    /// frames of the reserve `class` may not use.
    pub fn alloc_run_as(&mut self, n: usize, align: usize, class: Class) -> Option<u64> {
        if n == 0 || !self.permits(n, class) {
            return None;
        }
        let align = align.max(1);
        let base_frame = (self.base / PAGE_SIZE) as usize;
        // Search from the hint to the end, then from 0 to the hint.
        for (from, to) in [(self.hint, self.nframes), (0, self.hint.min(self.nframes))] {
            let mut i = from;
            loop {
                // Align (base_frame + i) up to `align`.
                let abs = base_frame + i;
                i = abs.div_ceil(align) * align - base_frame;
                if i + n > self.nframes || i >= to {
                    break;
                }
                // Skip full words quickly.
                if i % 64 == 0 && self.bitmap[i / 64] == u64::MAX {
                    i += 64;
                    continue;
                }
                match self.run_free(i, n) {
                    Ok(()) => {
                        self.mark(i, n);
                        self.hint = if align == 1 { i + n } else { self.hint };
                        return Some(self.base + i as u64 * PAGE_SIZE);
                    }
                    Err(busy) => i = busy + 1,
                }
            }
        }
        None
    }

    fn mark(&mut self, i: usize, n: usize) {
        for j in i..i + n {
            self.set(j, true);
        }
        self.free -= n;
        self.peak_used = self.peak_used.max(self.nframes - self.free);
    }

    /// Allocates exactly the `n` frames at `gpa` if they are all free ([`Class::Kernel`]).
    pub fn alloc_at(&mut self, gpa: u64, n: usize) -> bool {
        self.alloc_at_as(gpa, n, Class::Kernel)
    }

    /// [`FrameAllocator::alloc_at`] for `class` (see [`Class`]).
    pub fn alloc_at_as(&mut self, gpa: u64, n: usize, class: Class) -> bool {
        let Some(i) = self.index(gpa) else { return false };
        if n == 0 || !self.permits(n, class) || i + n > self.nframes || self.run_free(i, n).is_err() {
            return false;
        }
        self.mark(i, n);
        true
    }

    /// Allocates one frame.
    pub fn alloc(&mut self) -> Option<u64> {
        self.alloc_run(1, 1)
    }

    /// Boot: makes the `n` frames at `gpa` available. They must be in use and have no extra
    /// owners (true of every frame right after [`FrameAllocator::new`]); whole bitmap words are
    /// cleared at once, since per-frame work at boot is what dominated a KVM boot under
    /// software KVM (ring 0 emulated). Returns the number of frames made available.
    /// With `zeroed`, the frames are also pristine: H left them zero and nothing wrote them.
    pub fn release_initial(&mut self, gpa: u64, n: usize, zeroed: bool) -> usize {
        let Some(start) = self.index(gpa) else { return 0 };
        let end = (start + n).min(self.nframes);
        let mut freed = 0;
        let mut j = start;
        while j < end {
            if j.is_multiple_of(64) && end - j >= 64 {
                let w = self.bitmap[j / 64];
                freed += if w == u64::MAX { 64 } else { w.count_ones() as usize };
                self.bitmap[j / 64] = 0;
                if let (true, Some(p)) = (zeroed, self.pristine.get(j / 64)) {
                    p.store(u64::MAX, Ordering::Relaxed);
                }
                j += 64;
                continue;
            }
            if self.bit(j) {
                self.set(j, false);
                freed += 1;
                if let (true, Some(p)) = (zeroed, self.pristine.get(j / 64)) {
                    p.fetch_or(1 << (j % 64), Ordering::Relaxed);
                }
            }
            j += 1;
        }
        self.free += freed;
        self.hint = self.hint.min(start);
        freed
    }

    /// Drops one owner of each of the `n` frames at `gpa`; a frame whose last owner goes is
    /// freed. Frames outside the managed range or already free are ignored (returns the number
    /// actually freed).
    pub fn free(&mut self, gpa: u64, n: usize) -> usize {
        let Some(i) = self.index(gpa) else { return 0 };
        let mut freed = 0;
        let geo = self.geometry();
        for j in i..(i + n).min(self.nframes) {
            if !geo.drop_owner(j) {
                continue;
            }
            if self.bit(j) {
                self.set(j, false);
                freed += 1;
                // Its owner may have written it: no longer known to be zero.
                geo.clear_pristine(j);
                // Reuse freed frames first: they are resident in host memory, while frames
                // never touched cost a host page fault (allocation and zeroing) at first use
                // in K and in U.
                self.hint = self.hint.min(j);
            }
        }
        self.free += freed;
        freed
    }
}

/// The per-frame state that is read and changed without the allocator lock: owner counts and
/// pristine bits, as atomics over the allocator's own arrays (a copyable view; the arrays live
/// for the whole run).
#[derive(Clone, Copy)]
pub struct Geometry {
    base: u64,
    nframes: usize,
    refs: &'static [AtomicU32],
    pristine: &'static [AtomicU64],
}

impl Geometry {
    /// Frame index of `gpa`, if it is a managed frame.
    pub fn index(&self, gpa: u64) -> Option<usize> {
        if gpa < self.base || !gpa.is_multiple_of(PAGE_SIZE) {
            return None;
        }
        let i = ((gpa - self.base) / PAGE_SIZE) as usize;
        (i < self.nframes).then_some(i)
    }

    /// True when the frame at `gpa` has more than one owner.
    pub fn is_shared(&self, gpa: u64) -> bool {
        self.index(gpa).and_then(|i| self.refs.get(i)).is_some_and(|r| r.load(Ordering::Acquire) > 0)
    }

    /// Drops one owner of frame `i`: true when it was the last one (the frame is now free for
    /// its caller to give back), false when another owner remains. Two owners dropping at
    /// once see one `false` and one `true`.
    pub fn drop_owner(&self, i: usize) -> bool {
        self.refs.get(i).is_none_or(|r| r.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| v.checked_sub(1)).is_err())
    }

    /// Clears the pristine bit of frame `i` (its owner may have written it).
    pub fn clear_pristine(&self, i: usize) {
        if let Some(w) = self.pristine.get(i / 64) {
            w.fetch_and(!(1 << (i % 64)), Ordering::Relaxed);
        }
    }

    /// Clears the pristine bits of frames `[i, i + n)` (which must lie within one 64-frame
    /// word) and returns the mask of those that were *not* pristine (need zeroing), relative
    /// to bit `i % 64`.
    pub(super) fn take_pristine(&self, i: usize, n: usize) -> u64 {
        let mask = if n >= 64 { u64::MAX } else { ((1u64 << n) - 1) << (i % 64) };
        let Some(w) = self.pristine.get(i / 64) else { return mask >> (i % 64) };
        let old = w.fetch_and(!mask, Ordering::AcqRel);
        (!old & mask) >> (i % 64)
    }
}

/// The global frame allocator (set at boot by [`install`]). Lock order: a per-vCPU cache
/// (`super::pcp`) before this, never the other way round.
pub static FRAMES: spin::Mutex<Option<FrameAllocator>> = spin::Mutex::new(None);

/// The per-vCPU caches in front of [`FRAMES`].
static CACHES: super::pcp::Caches = super::pcp::Caches::new();

/// Boot: makes `fa` the global allocator (and its per-frame state reachable lock-free).
pub fn install(fa: FrameAllocator) {
    CACHES.install(&fa);
    *FRAMES.lock() = Some(fa);
}

/// Runs `op` on the global allocator under its lock, keeping the caches' mirror of its free
/// count current. `None` before boot.
fn locked<R>(op: impl FnOnce(&mut FrameAllocator) -> R) -> Option<R> {
    CACHES.locked(&FRAMES, op)
}

/// A global run allocation that failed while the per-vCPU caches hold frames may succeed
/// once they are drained (their frames fragment the bitmap): drain and try again, so memory
/// is exhausted only when it really is (the OOM killer must not run while caches hold frames).
fn run_or_drain(n: usize, align: usize, class: Class) -> Option<u64> {
    if n == 1 && align <= 1 {
        return CACHES.alloc_one(&FRAMES, crate::percpu::current() as usize, class);
    }
    locked(|f| f.alloc_run_as(n, align, class)).flatten().or_else(|| {
        (CACHES.drain_all(&FRAMES) > 0).then(|| locked(|f| f.alloc_run_as(n, align, class)).flatten()).flatten()
    })
}

/// Allocates `n` contiguous frames aligned to `align` frames from the global allocator.
pub fn alloc_run(n: usize, align: usize) -> Option<u64> {
    run_or_drain(n, align, Class::Kernel)
}

/// Allocates exactly the frames at `gpa` from the global allocator.
pub fn alloc_at(gpa: u64, n: usize) -> bool {
    locked(|f| f.alloc_at(gpa, n)).unwrap_or(false)
}

/// Allocates `n` contiguous frames aligned to `align` frames for user memory: `None` rather
/// than take a frame of the kernel reserve.
pub fn alloc_user_run(n: usize, align: usize) -> Option<u64> {
    run_or_drain(n, align, Class::User)
}

/// Allocates exactly the frames at `gpa` for user memory (outside the reserve). Frames held by
/// a per-vCPU cache count as taken here (this only extends a contiguous run opportunistically).
pub fn alloc_user_at(gpa: u64, n: usize) -> bool {
    locked(|f| f.alloc_at_as(gpa, n, Class::User)).unwrap_or(false)
}

/// Allocates one (unzeroed) frame for a page-table page ([`Class::Table`]).
pub fn alloc_table() -> Option<u64> {
    run_or_drain(1, 1, Class::Table)
}

/// Sets the kernel reserve of the global allocator, frames.
pub fn set_reserve(frames: usize) {
    locked(|f| f.set_reserve(frames));
}

/// Frames user memory may still take (0 when it is at the reserve); frames in the per-vCPU
/// caches count as free.
pub fn user_headroom() -> usize {
    CACHES.user_headroom()
}

/// Allocates one zeroed frame.
pub fn alloc_zeroed() -> Option<u64> {
    let gpa = alloc_run(1, 1)?;
    zero_new(gpa, 1);
    Some(gpa)
}

/// Zeroes the `n` just-allocated frames at `gpa`, skipping pristine ones (still zero since
/// boot), which stop being pristine. Takes no lock (the pristine bits are atomic); zeroes 64
/// frames' worth of bits at a time.
pub fn zero_new(gpa: u64, n: usize) {
    let geo = CACHES.geometry();
    let mut done = 0;
    while done < n {
        let at = gpa + done as u64 * PAGE_SIZE;
        let (dirty, chunk) = match geo.and_then(|g| g.index(at).map(|i| (g, i))) {
            Some((g, i)) => {
                let chunk = (64 - i % 64).min(n - done);
                (g.take_pristine(i, chunk), chunk)
            }
            None => (u64::MAX, n - done),
        };
        // Zero each run of set bits of `dirty` (frames that were used before).
        let mut k = 0;
        while k < chunk {
            if k < 64 && dirty & (1 << k) == 0 {
                k += 1;
                continue;
            }
            let mut e = k + 1;
            while e < chunk && (e >= 64 || dirty & (1 << e) != 0) {
                e += 1;
            }
            super::zero_phys(at + k as u64 * PAGE_SIZE, (e - k) as u64 * PAGE_SIZE);
            k = e;
        }
        done += chunk;
    }
}

/// Adds an owner to each frame in `gpas` (fork), under one lock. Returns false if one could
/// not be shared (then none of the remaining ones were).
pub fn share_all(gpas: &[u64]) -> bool {
    locked(|f| gpas.iter().all(|&p| f.share(p))).unwrap_or(false)
}

/// True when the frame at `gpa` has more than one owner (no lock taken).
pub fn is_shared(gpa: u64) -> bool {
    CACHES.geometry().is_some_and(|g| g.is_shared(gpa))
}

/// Free frames: the global allocator's and those held by the per-vCPU caches.
pub fn free_frames() -> usize {
    CACHES.free_frames()
}

/// Drops one owner of each of the `n` frames at `gpa`; frames whose last owner goes are
/// free again. A few frames go to the calling vCPU's cache without the global lock.
pub fn free(gpa: u64, n: usize) {
    if n <= super::pcp::FAST_FREE_MAX && CACHES.free(&FRAMES, crate::percpu::current() as usize, gpa, n) {
        return;
    }
    locked(|f| f.free(gpa, n));
}

/// (used, peak, total) frames; frames in the per-vCPU caches count as free.
pub fn usage() -> (usize, usize, usize) {
    CACHES.usage()
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::boxed::Box;
    use std::vec;

    fn fa(base: u64, n: usize) -> FrameAllocator {
        let bm: &'static mut [u64] = Box::leak(vec![0u64; n.div_ceil(64)].into_boxed_slice());
        let refs: &'static mut [u32] = Box::leak(vec![0u32; n].into_boxed_slice());
        let mut f = FrameAllocator::new(base, n, bm, refs, &mut []);
        f.free(base, n);
        f
    }

    #[test]
    fn pristine_frames_are_reported_once() {
        let bm: &'static mut [u64] = Box::leak(vec![0u64; 4].into_boxed_slice());
        let refs: &'static mut [u32] = Box::leak(vec![0u32; 256].into_boxed_slice());
        let pr: &'static mut [u64] = Box::leak(vec![0u64; 4].into_boxed_slice());
        let mut f = FrameAllocator::new(0, 256, bm, refs, pr);
        f.release_initial(0, 100, true);
        f.release_initial(100 * PAGE_SIZE, 156, false);
        assert_eq!(f.take_pristine(0, 64), 0, "all pristine");
        assert_eq!(f.take_pristine(0, 64), u64::MAX, "no longer pristine");
        assert_eq!(f.take_pristine(96, 8), 0b1111_0000, "frames 96..100 pristine, 100..104 not");
        assert_eq!(f.take_pristine(64, 1), 0);
        assert_eq!(f.take_pristine(64, 2), 0b01, "frame 64 taken, 65 still pristine");
        // A frame allocated without zero_new (its owner writes it), then freed: not pristine.
        let a = f.alloc_run(1, 1).unwrap();
        let i = (a / PAGE_SIZE) as usize;
        f.free(a, 1);
        assert_eq!(f.take_pristine(i, 1), 1, "a freed frame must be zeroed on reuse");
    }

    #[test]
    fn release_initial_matches_free() {
        for (skip, n) in [(0, 4096), (3, 1000), (63, 130), (64, 64), (5, 1)] {
            let mk = || {
                let bm: &'static mut [u64] = Box::leak(vec![0u64; 64].into_boxed_slice());
                let refs: &'static mut [u32] = Box::leak(vec![0u32; 4096].into_boxed_slice());
                FrameAllocator::new(0x10_0000, 4096, bm, refs, &mut [])
            };
            let (mut a, mut b) = (mk(), mk());
            let gpa = 0x10_0000 + skip as u64 * PAGE_SIZE;
            assert_eq!(a.release_initial(gpa, n, true), b.free(gpa, n), "skip {skip} n {n}");
            assert_eq!(a.free_frames(), b.free_frames());
            assert_eq!(a.bitmap, b.bitmap);
            assert_eq!(a.alloc_run(7, 1), b.alloc_run(7, 1));
        }
    }

    #[test]
    fn runs_are_contiguous_and_disjoint() {
        let mut f = fa(0x10_0000, 4096);
        let a = f.alloc_run(10, 1).unwrap();
        let b = f.alloc_run(10, 1).unwrap();
        assert!(b >= a + 10 * PAGE_SIZE || a >= b + 10 * PAGE_SIZE);
        assert_eq!(f.free_frames(), 4096 - 20);
        assert_eq!(f.free(a, 10), 10);
        assert_eq!(f.free(a, 10), 0, "double free is ignored");
        assert_eq!(f.free_frames(), 4096 - 10);
    }

    #[test]
    fn aligned_runs() {
        let mut f = fa(0x10_1000, 4096);
        let _ = f.alloc_run(3, 1).unwrap();
        let big = f.alloc_run(LARGE_FRAMES, LARGE_FRAMES).unwrap();
        assert_eq!(big % (2 << 20), 0);
        assert!(!f.alloc_at(big + PAGE_SIZE, 1), "inside an allocated run");
        assert!(f.alloc_at(big + LARGE_FRAMES as u64 * PAGE_SIZE, 2));
    }

    #[test]
    fn shared_frames_free_on_last_owner() {
        let mut f = fa(0x10_0000, 256);
        let a = f.alloc().unwrap();
        assert!(!f.is_shared(a));
        assert!(f.share(a));
        assert!(f.share(a));
        assert!(f.is_shared(a));
        let before = f.free_frames();
        assert_eq!(f.free(a, 1), 0, "two owners left");
        assert_eq!(f.free(a, 1), 0, "one owner left");
        assert!(!f.is_shared(a));
        assert_eq!(f.free_frames(), before);
        assert_eq!(f.free(a, 1), 1, "last owner frees");
        assert!(!f.share(a), "a free frame cannot be shared");
    }

    #[test]
    fn user_memory_never_takes_the_reserve() {
        let mut f = fa(0, 1024);
        f.set_reserve(100);
        assert_eq!(f.user_headroom(), 924);
        let u = f.alloc_run_as(900, 1, Class::User).unwrap();
        assert!(f.alloc_run_as(25, 1, Class::User).is_none(), "25 more would leave 99 < 100 free");
        assert!(f.alloc_run_as(24, 1, Class::User).is_some());
        assert_eq!(f.user_headroom(), 0);
        assert!(f.alloc_run_as(1, 1, Class::User).is_none(), "the reserve is the kernel's");
        assert!(!f.alloc_at_as(u + 950 * PAGE_SIZE, 1, Class::User), "alloc_at obeys the reserve too");
        // Page tables may use half of it, the kernel all of it.
        for _ in 0..50 {
            assert!(f.alloc_run_as(1, 1, Class::Table).is_some());
        }
        assert!(f.alloc_run_as(1, 1, Class::Table).is_none(), "page tables stop at half the reserve");
        assert_eq!(f.free_frames(), 50);
        assert!(f.alloc_run_as(50, 1, Class::Kernel).is_some(), "the kernel takes the rest");
        assert!(f.alloc_run(1, 1).is_none());
        // Freed user memory is user memory again.
        f.free(u, 900);
        assert_eq!(f.user_headroom(), 800);
        assert!(f.alloc_run_as(800, 1, Class::User).is_some());
    }

    #[test]
    fn reserve_sizes() {
        assert_eq!(reserve_for(256 << 8), 2048, "256 MiB: 8 MiB");
        assert_eq!(reserve_for(32 << 8), 1024, "32 MiB: at least 4 MiB");
        assert_eq!(reserve_for(8 << 8), 512, "8 MiB: a quarter at most");
        assert_eq!(reserve_for(64 << 18), 16 * 1024, "64 GiB: 64 MiB at most");
        assert_eq!(reserve_for(0), 0);
    }

    #[test]
    fn exhaustion_and_wraparound() {
        let mut f = fa(0, 128);
        let a = f.alloc_run(100, 1).unwrap();
        assert!(f.alloc_run(29, 1).is_none());
        let b = f.alloc_run(28, 1).unwrap();
        assert_eq!(b, 100 * PAGE_SIZE);
        assert!(f.alloc().is_none());
        f.free(a + 5 * PAGE_SIZE, 1);
        assert_eq!(f.alloc(), Some(a + 5 * PAGE_SIZE), "search wraps around to the start");
        assert_eq!(f.peak_frames(), 128);
    }
}
