//! A shadow space: the host mappings that realise one guest page table (keyed by its root
//! GPA), with fault fill, prefault and flush, safe to call from several vCPU threads at once.
//!
//! Concurrency (design section 6, after KVM's `mmu_invalidate_seq`): every 2 MiB region has a
//! generation and a lock. A flush locks the regions it touches (ascending), bumps their
//! generations, unmaps, unlocks. A fill records the generations of the regions its plan may
//! touch, walks without any lock, then locks those regions (ascending) and applies its maps
//! only if no generation changed; otherwise it walks again. After
//! [`ShadowConfig::optimistic_retries`] such conflicts it walks with the locks held, which a
//! flush cannot interleave with, so every fill finishes. Nothing on these paths takes a lock
//! shared by the whole space.
//!
//! Why a stale mapping cannot survive: the guest edits a present PTE, then flushes. A fill
//! that read the old PTE recorded the region's generation before its walk, hence before the
//! flush's bump (had it seen the bump, it would also see the edit: the bump is a `Release`
//! and the read an `Acquire`); so either it applies before the flush takes the region lock
//! (and the flush unmaps what it mapped) or it sees a new generation and walks again. A fill
//! that creates a region the flush did not see yet is ordered by the `SeqCst` fences in both.

use crate::error::ShadowError;
use crate::mapper::Mapper;
use crate::memory::GuestMemory;
use crate::plan::{Knobs, Plan, Planned, Want, plan};
use crate::region::{REGION_SHIFT, REGION_SIZE, Region, RegionState, RegionTree, lock, region_of};
use crate::stats::{Counters, SpaceStats, bump};
use guest_abi::PAGE_SIZE;
use guest_abi::layout::{USER_END, USER_START};
use guest_abi::mapper::{MapOp, MapOpKind};
use guest_abi::pvcs::pf_error;
use std::sync::MutexGuard;
use std::sync::atomic::{Ordering, fence};
use std::time::Instant;

/// How many times one fill may grow the set of regions it records (or locks) because its
/// plan reached beyond them; after that its plan is clipped to the set.
const MAX_WIDENINGS: u32 = 2;

/// Tuning of a shadow space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShadowConfig {
    /// Budget of extra present leaf entries of the faulting page-table page to map on a fault,
    /// beyond the faulting page's coalesced run (forward first, then backward). For 2 MiB
    /// leaves the coalesced run spends this budget too; 1 GiB leaves map alone.
    pub prefault_pages: u32,
    /// Coalesce runs of leaves with contiguous GPAs and equal effective protection into one
    /// map operation (one `mmap`, one VMA). Off: one operation per guest leaf.
    pub coalesce: bool,
    /// Conflicts with flushes a fill tolerates before it walks with the region locks held.
    pub optimistic_retries: u32,
    /// Lost Accessed/Dirty compare-exchanges (the guest changing an entry under the walk)
    /// tolerated per call before [`ShadowError::RetriesExhausted`].
    pub max_raced_walks: u32,
}

impl Default for ShadowConfig {
    fn default() -> Self {
        Self { prefault_pages: 16, coalesce: true, optimistic_retries: 4, max_raced_walks: 64 }
    }
}

/// Result of [`ShadowSpace::fault`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultOutcome {
    /// The guest page table allows the access; the shadow now maps the page (`pages` 4 KiB
    /// pages were mapped by this call, including prefaulted neighbours; 0 if another vCPU
    /// had mapped everything already).
    Filled {
        /// 4 KiB pages mapped by this call.
        pages: u64,
    },
    /// The guest page table does not allow the access: the guest kernel handles it as its
    /// own #PF with this error code (Intel SDM vol. 3A, 4.7: P, W/R, U/S, RSVD, I/D bits as
    /// in [`guest_abi::pvcs::pf_error`]; U/S is always set).
    Inject {
        /// x86 #PF error code.
        error_code: u64,
    },
}

/// Result of one fill.
enum Filled {
    Inject(u64),
    Mapped { pages: u64, next: u64 },
}

/// The shadow of one guest address space. See the module documentation.
pub struct ShadowSpace<M: Mapper> {
    root: u64,
    mapper: M,
    config: ShadowConfig,
    regions: RegionTree,
    counters: Counters,
}

impl<M: Mapper> std::fmt::Debug for ShadowSpace<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShadowSpace").field("root", &self.root).field("config", &self.config).finish()
    }
}

/// Page-aligned `gva .. gva + len` clipped to the user range (start >= end: empty).
fn user_span(gva: u64, len: u64) -> (u64, u64) {
    let start = (gva & !(PAGE_SIZE - 1)).max(USER_START);
    let end = gva.saturating_add(len).saturating_add(PAGE_SIZE - 1) & !(PAGE_SIZE - 1);
    (start, end.min(USER_END))
}

impl<M: Mapper> ShadowSpace<M> {
    /// An empty shadow for the guest page table whose PML4 is at `root_gpa` (a CR3 value;
    /// bits 11:0 are ignored by the walker). Host mappings are changed through `mapper`.
    pub fn new(root_gpa: u64, mapper: M, config: ShadowConfig) -> Self {
        Self { root: root_gpa, mapper, config, regions: RegionTree::new(), counters: Counters::default() }
    }

    /// The root GPA this space shadows.
    pub fn root(&self) -> u64 {
        self.root
    }

    /// The mapper.
    pub fn mapper(&self) -> &M {
        &self.mapper
    }

    /// The configuration.
    pub fn config(&self) -> ShadowConfig {
        self.config
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> SpaceStats {
        self.counters.snapshot()
    }

    /// A user access at `gva` with #PF error code bits `error_code`
    /// ([`guest_abi::pvcs::pf_error`]; only `WRITE` and `FETCH` are used) faulted in the
    /// shadow. Walks the guest page table (Intel SDM vol. 3A, 4.5), and if the access is
    /// allowed sets Accessed on every entry used (and Dirty on the leaf for a write) and maps
    /// the page, its coalesced run and up to [`ShadowConfig::prefault_pages`] neighbours.
    /// A GVA outside the user range is never mapped (`Inject` with P=0).
    ///
    /// # Errors
    /// [`ShadowError::Mapper`] if the mapper failed, [`ShadowError::RetriesExhausted`] if the
    /// guest kept changing the entries under the walk.
    pub fn fault(&self, mem: &dyn GuestMemory, gva: u64, error_code: u64) -> Result<FaultOutcome, ShadowError> {
        bump(&self.counters.faults);
        let write = error_code & pf_error::WRITE != 0;
        let fetch = error_code & pf_error::FETCH != 0;
        let outcome = if (USER_START..USER_END).contains(&gva) {
            match self.fill(mem, gva, Want::Fault { write, fetch })? {
                Filled::Inject(error_code) => FaultOutcome::Inject { error_code },
                Filled::Mapped { pages, .. } => FaultOutcome::Filled { pages },
            }
        } else {
            FaultOutcome::Inject { error_code: error_code & (pf_error::WRITE | pf_error::FETCH) | pf_error::USER }
        };
        match outcome {
            FaultOutcome::Filled { .. } => bump(&self.counters.fills),
            FaultOutcome::Inject { .. } => bump(&self.counters.injects),
        }
        Ok(outcome)
    }

    /// Maps every present leaf in `gva .. gva + len` (clipped to the user range) that a user
    /// may read, without faulting: writable only where the guest's Dirty bit is already set.
    /// Sets Accessed bits on what it maps. Returns the number of 4 KiB pages mapped (large
    /// leaves partly in the range are mapped whole).
    ///
    /// # Errors
    /// As [`Self::fault`].
    pub fn prefault(&self, mem: &dyn GuestMemory, gva: u64, len: u64) -> Result<u64, ShadowError> {
        bump(&self.counters.prefaults);
        let (mut cursor, end) = user_span(gva, len);
        let mut pages = 0;
        while cursor < end {
            let next = match self.fill(mem, cursor, Want::Range { end })? {
                Filled::Mapped { pages: p, next } => {
                    pages += p;
                    next
                }
                Filled::Inject(_) => cursor + PAGE_SIZE,
            };
            cursor = next.max(cursor + PAGE_SIZE);
        }
        Ok(pages)
    }

    /// The guest changed present entries mapping `gva .. gva + len`: drop the shadow of that
    /// range (clipped to the user range) for all vCPUs (guest TLB semantics; a change from
    /// not-present to present needs no flush).
    ///
    /// # Errors
    /// [`ShadowError::Mapper`] if the unmap failed; the space then still records the range as
    /// mapped, so a later flush tries again.
    pub fn flush(&self, gva: u64, len: u64) -> Result<(), ShadowError> {
        self.flush_ranges(&[(gva, len)])
    }

    /// [`Self::flush`] of several `(gva, len)` ranges at once, with one mapper batch: a guest
    /// that write-protects many ranges (copy-on-write at fork) pays one handoff to U's mapper
    /// instead of one per range. Regions are locked in ascending order, as `flush` does.
    ///
    /// # Errors
    /// As [`Self::flush`].
    pub fn flush_ranges(&self, ranges: &[(u64, u64)]) -> Result<(), ShadowError> {
        bump(&self.counters.flushes);
        let mut sorted: Vec<(u64, u64)> =
            ranges.iter().map(|&(gva, len)| user_span(gva, len)).filter(|&(s, e)| s < e).collect();
        sorted.sort_unstable();
        // Disjoint and ascending from here on, so the unmap ops come out ascending too.
        let mut spans: Vec<(u64, u64)> = Vec::with_capacity(sorted.len());
        for (s, e) in sorted {
            match spans.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => spans.push((s, e)),
            }
        }
        if spans.is_empty() {
            return Ok(());
        }
        // Pairs with the fence in `fill`: a region created by a concurrent fill after this
        // point walks guest memory after our caller's PTE edit (see the module docs).
        fence(Ordering::SeqCst);
        let mut by_idx: std::collections::BTreeMap<u64, &Region> = std::collections::BTreeMap::new();
        for &(start, end) in &spans {
            by_idx.extend(self.regions.existing(region_of(start), region_of(end - 1)));
        }
        let regions: Vec<(u64, &Region)> = by_idx.into_iter().collect();
        let mut guards: Vec<MutexGuard<'_, RegionState>> = regions.iter().map(|(_, r)| lock(&r.state)).collect();
        for (_, r) in &regions {
            r.generation.fetch_add(1, Ordering::Release);
        }
        // The parts of the spans inside region `idx`.
        let clips = |idx: u64| {
            let (lo, hi) = (idx << REGION_SHIFT, (idx << REGION_SHIFT) + REGION_SIZE);
            spans.iter().map(move |&(s, e)| (s.max(lo), e.min(hi))).filter(|&(s, e)| s < e)
        };
        let mut ops: Vec<MapOp> = Vec::new();
        for ((idx, _), g) in regions.iter().zip(&guards) {
            for (s, e) in clips(*idx) {
                for x in g.extents.overlapping(s, e) {
                    let (xs, xe) = (x.start.max(s), x.end.min(e));
                    match ops.last_mut() {
                        Some(last) if last.addr + last.len == xs => last.len += xe - xs,
                        _ => ops.push(MapOp {
                            kind: MapOpKind::Unmap as u32,
                            prot: 0,
                            addr: xs,
                            len: xe - xs,
                            offset: 0,
                        }),
                    }
                }
            }
        }
        if ops.is_empty() {
            return Ok(());
        }
        bump(&self.counters.mapper_calls);
        self.counters.unmap_ops.fetch_add(ops.len() as u64, Ordering::Relaxed);
        self.mapper.apply(&ops)?;
        let mut delta = 0;
        for ((idx, r), g) in regions.iter().zip(guards.iter_mut()) {
            for (s, e) in clips(*idx) {
                g.extents.remove(s, e);
            }
            delta += self.regions.account(*idx, r, g);
        }
        self.counters.add_vmas(delta);
        Ok(())
    }

    /// Drops the whole shadow (`FLUSH_TLB_ALL`).
    ///
    /// # Errors
    /// As [`Self::flush`].
    pub fn flush_all(&self) -> Result<(), ShadowError> {
        self.flush(USER_START, USER_END - USER_START)
    }

    /// Regions `lo ..= hi`, created if needed.
    fn region_range(&self, lo: u64, hi: u64) -> Vec<&Region> {
        (lo..=hi).filter_map(|idx| self.regions.get_or_create(idx)).collect()
    }

    fn plan_timed(&self, mem: &dyn GuestMemory, anchor: u64, want: Want) -> Planned {
        let knobs = Knobs { prefault_pages: self.config.prefault_pages, coalesce: self.config.coalesce };
        let t0 = Instant::now();
        let planned = plan(mem, self.root, knobs, anchor, want);
        let ns = u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.counters.walk_ns.fetch_add(ns, Ordering::Relaxed);
        bump(&self.counters.walks);
        planned
    }

    /// One fill for `anchor` (inside the user range). See the module docs for the protocol.
    fn fill(&self, mem: &dyn GuestMemory, anchor: u64, want: Want) -> Result<Filled, ShadowError> {
        let (mut lo, mut hi) = (region_of(anchor), region_of(anchor));
        let mut conflicts = 0u32;
        let mut raced = 0u32;
        let mut widenings = 0u32;
        let mut dirtied = false;
        loop {
            let regions = self.region_range(lo, hi);
            let locked = conflicts >= self.config.optimistic_retries;
            let (gens, mut guards) = if locked {
                (None, regions.iter().map(|r| lock(&r.state)).collect::<Vec<_>>())
            } else {
                let gens: Vec<u64> = regions.iter().map(|r| r.generation.load(Ordering::Acquire)).collect();
                // Pairs with the fence in `flush` (regions created above, walk below).
                fence(Ordering::SeqCst);
                (Some(gens), Vec::new())
            };
            let p = match self.plan_timed(mem, anchor, want) {
                Planned::Inject(code) => return Ok(Filled::Inject(code)),
                Planned::Skip { next } => return Ok(Filled::Mapped { pages: 0, next }),
                Planned::Raced => {
                    drop(guards);
                    raced += 1;
                    bump(&self.counters.raced_walks);
                    if raced > self.config.max_raced_walks {
                        return Err(ShadowError::RetriesExhausted { attempts: raced });
                    }
                    continue;
                }
                Planned::Plan(p) => p,
            };
            dirtied |= p.dirtied;
            if (p.lo < lo || p.hi > hi) && widenings < MAX_WIDENINGS {
                // The plan reaches regions whose generation we did not record (or lock)
                // before walking: take them too and walk again. After that, clip.
                drop(guards);
                lo = lo.min(p.lo);
                hi = hi.max(p.hi);
                widenings += 1;
                continue;
            }
            if let Some(gens) = gens {
                guards = regions.iter().map(|r| lock(&r.state)).collect();
                if regions.iter().zip(&gens).any(|(r, g)| r.generation.load(Ordering::Relaxed) != *g) {
                    drop(guards);
                    conflicts += 1;
                    bump(&self.counters.retries);
                    continue;
                }
            } else {
                bump(&self.counters.locked_fills);
            }
            let pages = self.apply(lo, &regions, &mut guards, &p, dirtied)?;
            return Ok(Filled::Mapped { pages, next: p.next });
        }
    }

    /// Maps `plan` (clipped to regions `lo .. lo + regions.len()`, all locked by the caller
    /// in `guards`), skipping runs (other than the faulting one) the space already maps
    /// identically. If this fill set a Dirty bit (`dirtied`), bumps the generations of the
    /// locked regions, so that a concurrent fill that saw the bit clear (and planned a
    /// read-only mapping) walks again instead of mapping after us. Returns the 4 KiB pages
    /// mapped.
    fn apply(
        &self,
        lo: u64,
        regions: &[&Region],
        guards: &mut [MutexGuard<'_, RegionState>],
        plan: &Plan,
        dirtied: bool,
    ) -> Result<u64, ShadowError> {
        if dirtied {
            for r in regions {
                r.generation.fetch_add(1, Ordering::Release);
            }
        }
        let base = lo << REGION_SHIFT;
        let limit = base + ((regions.len() as u64) << REGION_SHIFT);
        // Pieces of `start .. end` per locked region: (slot, start, end).
        let pieces = |start: u64, end: u64| {
            let first = region_of(start) - lo;
            let last = region_of(end - 1) - lo;
            (first..=last).map(move |slot| {
                let rb = base + (slot << REGION_SHIFT);
                (slot as usize, start.max(rb), end.min(rb + REGION_SIZE))
            })
        };
        let mut ops: Vec<MapOp> = Vec::new();
        for run in &plan.runs {
            let start = run.gva.max(base);
            let end = (run.gva + run.len).min(limit);
            if start >= end {
                continue;
            }
            let gpa = run.gpa + (start - run.gva);
            let mapped = !run.must_emit
                && pieces(start, end).all(|(slot, s, e)| guards[slot].extents.covers(s, e, gpa + (s - start), run.prot));
            if !mapped {
                ops.push(MapOp { kind: MapOpKind::Map as u32, prot: run.prot, addr: start, len: end - start, offset: gpa });
            }
        }
        if ops.is_empty() {
            return Ok(0);
        }
        let result = self.mapper.apply(&ops);
        // Record the batch as mapped even if it failed part-way: the record must cover every
        // host mapping (a later flush unmaps from it).
        let mut touched = vec![false; regions.len()];
        let mut pages = 0;
        for op in &ops {
            pages += op.len / PAGE_SIZE;
            for (slot, s, e) in pieces(op.addr, op.addr + op.len) {
                guards[slot].extents.insert(s, e, op.offset + (s - op.addr), op.prot);
                touched[slot] = true;
            }
        }
        let mut delta = 0;
        for (slot, _) in touched.iter().enumerate().filter(|(_, t)| **t) {
            delta += self.regions.account(lo + slot as u64, regions[slot], &mut guards[slot]);
        }
        self.counters.add_vmas(delta);
        bump(&self.counters.mapper_calls);
        self.counters.map_ops.fetch_add(ops.len() as u64, Ordering::Relaxed);
        self.counters.pages_mapped.fetch_add(pages, Ordering::Relaxed);
        result?;
        Ok(pages)
    }
}
