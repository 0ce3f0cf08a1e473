//! The 2 MiB regions of a shadow space: per-region generation counter, lock and host mapping
//! set, found through a lock-free radix tree, plus the exact host-VMA accounting across region
//! boundaries ("seams").
//!
//! Lock order: region `state` locks in ascending region order, then at most one `left_seam`
//! lock at a time (innermost). Tree nodes are created with `OnceLock`, which takes no lock a
//! caller could hold.

use crate::extents::ExtentSet;
use guest_abi::layout::USER_END;
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

/// log2 of the region size.
pub(crate) const REGION_SHIFT: u32 = 21;
/// Region size, bytes (one page-table page's span).
pub(crate) const REGION_SIZE: u64 = 1 << REGION_SHIFT;
/// Number of region indices the tree can hold (covers GVAs below 2^47).
pub(crate) const REGIONS: u64 = 1 << 26;
const FANOUT: usize = 512;
const TOP: usize = (REGIONS >> 18) as usize;

const _: () = assert!(USER_END <= REGIONS << REGION_SHIFT, "the tree covers the user range");

/// Region index of `gva`.
pub(crate) const fn region_of(gva: u64) -> u64 {
    gva >> REGION_SHIFT
}

/// Locks `m`, ignoring poisoning (a panicking mapper must not wedge the space; the data the
/// locks protect stays consistent because every update is completed before unlocking).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Boundary summary of a region side: GPA at the boundary and protection of the extent that
/// touches it.
type Edge = Option<(u64, u32)>;

/// What the host mappings look like on both sides of the boundary between regions `i - 1`
/// and `i` (stored in region `i`).
#[derive(Debug, Default)]
struct Seam {
    /// Region `i - 1`'s last extent, if it ends at the boundary: (GPA one past its end, prot).
    left_tail: Edge,
    /// Region `i`'s first extent, if it starts at the boundary: (GPA of its start, prot).
    right_head: Edge,
}

impl Seam {
    /// Whether the two extents meeting here form one VMA.
    fn merged(&self) -> bool {
        matches!((self.left_tail, self.right_head), (Some(l), Some(r)) if l == r)
    }
}

/// Mutable state of a region, under its lock.
#[derive(Debug, Default)]
pub(crate) struct RegionState {
    /// Host mappings inside the region (clipped to it).
    pub extents: ExtentSet,
    head: Edge,
    tail: Edge,
    runs: usize,
}

/// One 2 MiB region.
#[derive(Debug, Default)]
pub(crate) struct Region {
    /// Generation: bumped (`Release`) by every flush that touches the region, under `state`'s
    /// lock, before that flush unmaps anything (KVM's `mmu_invalidate_seq` pattern).
    pub generation: AtomicU64,
    /// Host mappings; held while the mapper applies any batch touching the region, so mapper
    /// calls for one region happen in lock order.
    pub state: Mutex<RegionState>,
    left_seam: Mutex<Seam>,
}

type Leaf = [OnceLock<Box<Region>>; FANOUT];
type Mid = [OnceLock<Box<Leaf>>; FANOUT];

fn new_array<T, const N: usize>() -> Box<[OnceLock<T>; N]> {
    Box::new(std::array::from_fn(|_| OnceLock::new()))
}

/// Radix tree of regions (three levels: 8, 9, 9 bits of the region index). Regions are
/// created on first use and live as long as the space.
#[derive(Debug)]
pub(crate) struct RegionTree {
    top: Box<[OnceLock<Box<Mid>>; TOP]>,
}

impl RegionTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self { top: new_array() }
    }

    /// Region `idx`, created if needed. `None` only if `idx >= REGIONS`.
    pub fn get_or_create(&self, idx: u64) -> Option<&Region> {
        let (t, m, l) = split(idx)?;
        let mid = self.top[t].get_or_init(new_array);
        let leaf = mid[m].get_or_init(new_array);
        Some(leaf[l].get_or_init(Box::default))
    }

    /// Existing regions with index in `lo ..= hi`, ascending.
    pub fn existing(&self, lo: u64, hi: u64) -> Vec<(u64, &Region)> {
        let mut out = Vec::new();
        let hi = hi.min(REGIONS - 1);
        if lo > hi {
            return out;
        }
        for t in (lo >> 18)..=(hi >> 18) {
            let Some(mid) = self.top[t as usize].get() else { continue };
            let m_lo = if t == lo >> 18 { (lo >> 9) & 511 } else { 0 };
            let m_hi = if t == hi >> 18 { (hi >> 9) & 511 } else { 511 };
            for m in m_lo..=m_hi {
                let Some(leaf) = mid[m as usize].get() else { continue };
                let base = (t << 18) | (m << 9);
                let l_lo = if base >> 9 == lo >> 9 { lo & 511 } else { 0 };
                let l_hi = if base >> 9 == hi >> 9 { hi & 511 } else { 511 };
                for l in l_lo..=l_hi {
                    if let Some(r) = leaf[l as usize].get() {
                        out.push((base | l, &**r));
                    }
                }
            }
        }
        out
    }

    /// After `state` (of region `idx`, `region`, locked by the caller) changed: updates the
    /// region's boundary summaries and the seams with its neighbours, and returns the change
    /// in the space's host-VMA count (extents, minus pairs merged across a boundary).
    pub fn account(&self, idx: u64, region: &Region, state: &mut RegionState) -> i64 {
        let base = idx << REGION_SHIFT;
        let end = base + REGION_SIZE;
        let head = state.extents.first().filter(|e| e.start == base).map(|e| (e.gpa, e.prot));
        let tail = state.extents.last().filter(|e| e.end == end).map(|e| (e.gpa_end(), e.prot));
        let runs = state.extents.len();
        let mut delta = runs as i64 - state.runs as i64;
        state.runs = runs;
        if head != state.head {
            state.head = head;
            let mut seam = lock(&region.left_seam);
            let before = seam.merged();
            seam.right_head = head;
            delta -= i64::from(seam.merged()) - i64::from(before);
        }
        if tail != state.tail {
            state.tail = tail;
            if let Some(next) = self.get_or_create(idx + 1) {
                let mut seam = lock(&next.left_seam);
                let before = seam.merged();
                seam.left_tail = tail;
                delta -= i64::from(seam.merged()) - i64::from(before);
            }
        }
        delta
    }
}

fn split(idx: u64) -> Option<(usize, usize, usize)> {
    if idx >= REGIONS {
        return None;
    }
    Some(((idx >> 18) as usize, ((idx >> 9) & 511) as usize, (idx & 511) as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_creates_and_lists_regions() {
        let t = RegionTree::new();
        assert!(t.existing(0, u64::MAX).is_empty());
        for idx in [5u64, 511, 512, 1 << 18, (1 << 18) + 7, REGIONS - 1] {
            assert!(t.get_or_create(idx).is_some());
        }
        assert!(t.get_or_create(REGIONS).is_none());
        let all: Vec<u64> = t.existing(0, u64::MAX).iter().map(|(i, _)| *i).collect();
        assert_eq!(all, [5, 511, 512, 1 << 18, (1 << 18) + 7, REGIONS - 1]);
        let some: Vec<u64> = t.existing(6, 1 << 18).iter().map(|(i, _)| *i).collect();
        assert_eq!(some, [511, 512, 1 << 18]);
        assert!(t.existing(7, 6).is_empty());
    }

    #[test]
    fn seams_merge_across_regions() {
        let t = RegionTree::new();
        let (r0, r1) = (t.get_or_create(10).unwrap(), t.get_or_create(11).unwrap());
        let b0 = 10 << REGION_SHIFT;
        let b1 = 11 << REGION_SHIFT;
        let mut total = 0;
        {
            let mut s = lock(&r0.state);
            s.extents.insert(b0 + 4096, b1, 0x10_1000, 1);
            total += t.account(10, r0, &mut s);
        }
        assert_eq!(total, 1);
        {
            let mut s = lock(&r1.state);
            s.extents.insert(b1, b1 + 8192, 0x30_0000, 1);
            total += t.account(11, r1, &mut s);
        }
        assert_eq!(total, 1, "contiguous GPA and equal prot across the boundary: one VMA");
        {
            let mut s = lock(&r1.state);
            s.extents.insert(b1, b1 + 4096, 0x30_0000, 3);
            total += t.account(11, r1, &mut s);
        }
        assert_eq!(total, 3, "prot change splits the boundary VMA and the region's extent");
        {
            let mut s = lock(&r0.state);
            s.extents.remove(b0, b1);
            total += t.account(10, r0, &mut s);
        }
        assert_eq!(total, 2);
    }
}
