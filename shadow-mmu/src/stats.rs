//! Counters of a shadow space and their snapshot, [`SpaceStats`].

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

/// A snapshot of a space's counters (monotonic since creation unless said otherwise).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpaceStats {
    /// `fault` calls.
    pub faults: u64,
    /// Faults answered with [`crate::FaultOutcome::Filled`].
    pub fills: u64,
    /// Faults answered with [`crate::FaultOutcome::Inject`].
    pub injects: u64,
    /// `prefault` calls.
    pub prefaults: u64,
    /// `flush` and `flush_all` calls.
    pub flushes: u64,
    /// 4 KiB pages covered by map operations issued (faults and prefaults).
    pub pages_mapped: u64,
    /// Map operations issued.
    pub map_ops: u64,
    /// Unmap operations issued.
    pub unmap_ops: u64,
    /// Batches given to the mapper.
    pub mapper_calls: u64,
    /// Fills that walked again because a flush changed a region's generation under them.
    pub retries: u64,
    /// Fills that fell back to walking with the region locks held (after too many retries).
    pub locked_fills: u64,
    /// Walks lost against a concurrent guest update of an entry (Accessed/Dirty
    /// compare-exchange failed) and redone.
    pub raced_walks: u64,
    /// Walks (planning passes) done.
    pub walks: u64,
    /// Total time spent walking and planning, ns.
    pub walk_ns: u64,
    /// Host VMAs the space's mappings form now (estimate: Linux merges adjacent mappings of
    /// the memfd with contiguous offsets and equal protection into one VMA). Exact when no
    /// operation is in flight.
    pub vmas_current: u64,
    /// Highest `vmas_current` seen.
    pub vmas_peak: u64,
}

/// The live counters.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub faults: AtomicU64,
    pub fills: AtomicU64,
    pub injects: AtomicU64,
    pub prefaults: AtomicU64,
    pub flushes: AtomicU64,
    pub pages_mapped: AtomicU64,
    pub map_ops: AtomicU64,
    pub unmap_ops: AtomicU64,
    pub mapper_calls: AtomicU64,
    pub retries: AtomicU64,
    pub locked_fills: AtomicU64,
    pub raced_walks: AtomicU64,
    pub walks: AtomicU64,
    pub walk_ns: AtomicU64,
    pub vmas: AtomicI64,
    pub vmas_peak: AtomicU64,
}

/// Adds one.
pub(crate) fn bump(c: &AtomicU64) {
    c.fetch_add(1, Relaxed);
}

impl Counters {
    /// Applies a change of the VMA count and tracks the peak.
    pub fn add_vmas(&self, delta: i64) {
        if delta == 0 {
            return;
        }
        let now = self.vmas.fetch_add(delta, Relaxed) + delta;
        self.vmas_peak.fetch_max(u64::try_from(now).unwrap_or(0), Relaxed);
    }

    /// Snapshot.
    pub fn snapshot(&self) -> SpaceStats {
        SpaceStats {
            faults: self.faults.load(Relaxed),
            fills: self.fills.load(Relaxed),
            injects: self.injects.load(Relaxed),
            prefaults: self.prefaults.load(Relaxed),
            flushes: self.flushes.load(Relaxed),
            pages_mapped: self.pages_mapped.load(Relaxed),
            map_ops: self.map_ops.load(Relaxed),
            unmap_ops: self.unmap_ops.load(Relaxed),
            mapper_calls: self.mapper_calls.load(Relaxed),
            retries: self.retries.load(Relaxed),
            locked_fills: self.locked_fills.load(Relaxed),
            raced_walks: self.raced_walks.load(Relaxed),
            walks: self.walks.load(Relaxed),
            walk_ns: self.walk_ns.load(Relaxed),
            vmas_current: u64::try_from(self.vmas.load(Relaxed)).unwrap_or(0),
            vmas_peak: self.vmas_peak.load(Relaxed),
        }
    }
}
