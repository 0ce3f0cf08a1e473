//! Planning a fill: walk to the leaf for an anchor GVA, check the access, set Accessed (and
//! Dirty) bits, then pick the other present leaves of the same page-table page to map and
//! coalesce them into runs (one `mmap` each). Nothing here touches the host mappings.

use crate::memory::GuestMemory;
use crate::pte::{self, Level};
use crate::region::region_of;
use crate::walk::{Descent, End, Rights, descend};
use guest_abi::layout::{USER_END, USER_START};
use guest_abi::pvcs::pf_error;

/// Most 2 MiB leaves one prefault plan maps (bounds the regions one fill locks).
const RANGE_MAX_LARGE: u64 = 64;

/// What a fill is for.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Want {
    /// A user access faulted at the anchor.
    Fault {
        /// The access was a write.
        write: bool,
        /// The access was an instruction fetch.
        fetch: bool,
    },
    /// Prefault present leaves from the anchor up to `end` (exclusive GVA).
    Range {
        /// End of the range to prefault.
        end: u64,
    },
}

/// Fill parameters taken from the space's configuration.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Knobs {
    pub prefault_pages: u32,
    pub coalesce: bool,
}

/// One host mapping to create: GVA `gva .. gva + len` at GPA `gpa`, `prot`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Run {
    pub gva: u64,
    pub len: u64,
    pub gpa: u64,
    pub prot: u32,
    /// Contains the faulting page: mapped even if the space believes it is mapped already.
    pub must_emit: bool,
}

/// A fill plan.
#[derive(Debug)]
pub(crate) struct Plan {
    /// Runs in ascending GVA order, inside the user range.
    pub runs: Vec<Run>,
    /// Lowest and highest region index the plan touches (always includes the anchor's).
    pub lo: u64,
    pub hi: u64,
    /// Where a prefault continues after this plan.
    pub next: u64,
    /// This walk set the anchor leaf's Dirty bit (0 -> 1), which makes its effective
    /// protection writable for every other fill too.
    pub dirtied: bool,
}

/// Outcome of planning.
#[derive(Debug)]
pub(crate) enum Planned {
    /// The guest must handle the fault itself: #PF error code.
    Inject(u64),
    /// (Prefault) nothing to map up to `next`.
    Skip { next: u64 },
    /// Map this.
    Plan(Plan),
    /// A compare-exchange of an Accessed/Dirty bit lost against the guest: walk again.
    Raced,
}

/// First GVA after the `level` entry span containing `gva`.
fn span_end(gva: u64, level: Level) -> u64 {
    (gva | (pte::span(level) - 1)).saturating_add(1)
}

/// A present leaf of the table page the anchor's leaf is in.
#[derive(Clone, Copy, Debug)]
struct Cand {
    j: u64,
    raw: u64,
    gpa: u64,
    prot: u32,
}

/// The table page holding the anchor's leaf.
struct Table<'a> {
    mem: &'a dyn GuestMemory,
    gpa: u64,
    level: Level,
    size: u64,
    gva_base: u64,
    upper: Rights,
}

impl Table<'_> {
    /// Entry `j` if it is a present, valid leaf a user may read, within guest memory and
    /// (at least partly) within the user range.
    fn peek(&self, j: u64) -> Option<Cand> {
        let raw = self.mem.load_u64(self.gpa + 8 * j)?;
        if raw & pte::P == 0 || !pte::is_leaf(raw, self.level) || pte::reserved(raw, self.level) != 0
        {
            return None;
        }
        let rights = self.upper.and(raw);
        let gpa = pte::frame(raw, self.level);
        let gva = self.gva_base + j * self.size;
        let fits = gpa.checked_add(self.size).is_some_and(|e| e <= self.mem.size());
        if !rights.user || !fits || gva + self.size <= USER_START || gva >= USER_END {
            return None;
        }
        Some(Cand { j, raw, gpa, prot: rights.host_prot(raw & pte::D != 0) })
    }

    /// Sets the Accessed bit of `c` (which is about to be mapped). False if the guest changed
    /// the entry since `peek`.
    fn commit(&self, c: &Cand) -> bool {
        c.raw & pte::A != 0
            || matches!(self.mem.compare_exchange_u64(self.gpa + 8 * c.j, c.raw, c.raw | pte::A), Some(Ok(_)))
    }

    /// Whether `next` continues `prev` (one `mmap`).
    fn contiguous(&self, prev: &Cand, next: &Cand) -> bool {
        next.j == prev.j + 1 && next.gpa == prev.gpa + self.size && next.prot == prev.prot
    }

    /// Like `contiguous`, looking backwards.
    fn contiguous_before(&self, next: &Cand, prev: &Cand) -> bool {
        self.contiguous(prev, next)
    }
}

/// (Prefault) The walk for `anchor` met a not-present entry at `level`: the GVA of the next
/// present entry of the same table (or of the table's end, or `end`), so that a sparse table
/// costs one walk rather than one per entry.
fn next_present(mem: &dyn GuestMemory, d: &Descent, anchor: u64, level: Level, end: u64) -> u64 {
    let (entry_gpa, _) = d.last();
    let table = entry_gpa & !(pte::ENTRIES * 8 - 1);
    let size = pte::span(level);
    let base = anchor & !(size * pte::ENTRIES - 1);
    let mut j = pte::index(anchor, level) + 1;
    while j < pte::ENTRIES && base + j * size < end {
        if mem.load_u64(table + 8 * j).is_some_and(|e| e & pte::P != 0) {
            break;
        }
        j += 1;
    }
    base.saturating_add(j * size)
}

/// Sets Accessed on the non-leaf entries of `d`. False if one changed under us.
fn set_upper_accessed(mem: &dyn GuestMemory, d: &Descent) -> bool {
    (0..d.depth.saturating_sub(1)).all(|i| {
        let e = d.entry[i];
        e & pte::A != 0 || matches!(mem.compare_exchange_u64(d.entry_gpa[i], e, e | pte::A), Some(Ok(_)))
    })
}

/// Plans a fill for `anchor` (a GVA inside the user range) in the page table at `root`.
pub(crate) fn plan(mem: &dyn GuestMemory, root: u64, knobs: Knobs, anchor: u64, want: Want) -> Planned {
    let access = match want {
        Want::Fault { write, fetch } => {
            pf_error::USER
                | if write { pf_error::WRITE } else { 0 }
                | if fetch { pf_error::FETCH } else { 0 }
        }
        Want::Range { .. } => 0,
    };
    let d = descend(mem, root, anchor);
    let level = match (d.end, want) {
        (End::Leaf { level }, _) => level,
        (End::NotPresent { .. }, Want::Fault { .. }) => return Planned::Inject(access),
        (End::Reserved { .. }, Want::Fault { .. }) => {
            return Planned::Inject(access | pf_error::PRESENT | pf_error::RSVD);
        }
        (End::NotPresent { level }, Want::Range { end }) => {
            return Planned::Skip { next: next_present(mem, &d, anchor, level, end) };
        }
        (end, Want::Range { .. }) => return Planned::Skip { next: span_end(anchor, end.level()) },
    };
    match want {
        Want::Fault { write, fetch } => {
            let r = d.rights;
            if !r.user || (write && !r.write) || (fetch && !r.exec) {
                return Planned::Inject(access | pf_error::PRESENT);
            }
        }
        Want::Range { .. } => {
            if let Some(denied) = d.user_denied {
                return Planned::Skip { next: span_end(anchor, denied) };
            }
        }
    }
    if !set_upper_accessed(mem, &d) {
        return Planned::Raced;
    }
    let (leaf_gpa, leaf) = d.last();
    let write = matches!(want, Want::Fault { write: true, .. });
    let new = leaf | pte::A | if write { pte::D } else { 0 };
    if new != leaf && !matches!(mem.compare_exchange_u64(leaf_gpa, leaf, new), Some(Ok(_))) {
        return Planned::Raced;
    }
    let size = pte::span(level);
    let table = Table {
        mem,
        gpa: leaf_gpa & !(pte::ENTRIES * 8 - 1),
        level,
        size,
        gva_base: anchor & !(size * pte::ENTRIES - 1),
        upper: d.upper,
    };
    let i = pte::index(anchor, level);
    let anchor_cand =
        Cand { j: i, raw: new, gpa: pte::frame(new, level), prot: d.rights.host_prot(new & pte::D != 0) };
    let (picked, next) = match want {
        Want::Fault { .. } => (pick_around(&table, knobs, anchor_cand), span_end(anchor, level)),
        Want::Range { end } => pick_range(&table, anchor_cand, end),
    };
    debug_assert!(picked.windows(2).all(|w| w[0].j < w[1].j), "picks are in index order");
    let runs = make_runs(&table, &picked, knobs.coalesce, matches!(want, Want::Fault { .. }).then_some(i));
    let mut lo = region_of(anchor);
    let mut hi = lo;
    if let (Some(first), Some(last)) = (runs.first(), runs.last()) {
        lo = lo.min(region_of(first.gva));
        hi = hi.max(region_of(last.gva + last.len - 1));
    }
    Planned::Plan(Plan { runs, lo, hi, next, dirtied: write && leaf & pte::D == 0 })
}

/// Fault: the anchor, its coalescible run, and up to `prefault_pages` other leaves of the
/// table (forward first, then backward), in index order. At level 3 (1 GiB leaves) only the
/// anchor.
fn pick_around(t: &Table<'_>, knobs: Knobs, anchor: Cand) -> Vec<Cand> {
    if t.level == 3 {
        return vec![anchor];
    }
    let mut budget = u64::from(knobs.prefault_pages);
    // At level 1 the coalesced run is free (one mmap, one region); at level 2 it spends budget.
    let run_costs = t.level == 2;
    // Picks above the anchor (ascending) and below it (descending).
    let cap = if t.level == 1 && knobs.coalesce { pte::ENTRIES } else { budget + 1 };
    let cap = usize::try_from(cap.min(pte::ENTRIES)).unwrap_or(0);
    let mut above: Vec<Cand> = Vec::with_capacity(cap);
    let mut below: Vec<Cand> = Vec::with_capacity(cap);
    if knobs.coalesce {
        let mut prev = anchor;
        while prev.j + 1 < pte::ENTRIES && (!run_costs || budget > 0) {
            match t.peek(prev.j + 1) {
                Some(c) if t.contiguous(&prev, &c) && t.commit(&c) => {
                    above.push(c);
                    prev = c;
                    budget -= u64::from(run_costs);
                }
                _ => break,
            }
        }
        let mut next = anchor;
        while next.j > 0 && (!run_costs || budget > 0) {
            match t.peek(next.j - 1) {
                Some(c) if t.contiguous_before(&next, &c) && t.commit(&c) => {
                    below.push(c);
                    next = c;
                    budget -= u64::from(run_costs);
                }
                _ => break,
            }
        }
    }
    let hi = above.last().map_or(anchor.j, |c| c.j);
    let lo = below.last().map_or(anchor.j, |c| c.j);
    for j in (hi + 1)..pte::ENTRIES {
        if budget == 0 {
            break;
        }
        if let Some(c) = t.peek(j).filter(|c| t.commit(c)) {
            above.push(c);
            budget -= 1;
        }
    }
    for j in (0..lo).rev() {
        if budget == 0 {
            break;
        }
        if let Some(c) = t.peek(j).filter(|c| t.commit(c)) {
            below.push(c);
            budget -= 1;
        }
    }
    below.reverse();
    below.push(anchor);
    below.append(&mut above);
    below
}

/// Prefault: every valid leaf from the anchor to the end of the table or of the range,
/// stopping before a non-leaf entry (the caller walks into it next). Returns the picks and
/// where to continue.
fn pick_range(t: &Table<'_>, anchor: Cand, end: u64) -> (Vec<Cand>, u64) {
    let mut picked = vec![anchor];
    let table_end = t.gva_base.saturating_add(t.size * pte::ENTRIES);
    let last = if end <= table_end { pte::index(end - 1, t.level) } else { pte::ENTRIES - 1 };
    let cap = match t.level {
        1 => pte::ENTRIES,
        2 => RANGE_MAX_LARGE,
        _ => 1,
    };
    let mut j = anchor.j + 1;
    while j <= last && (picked.len() as u64) < cap {
        let raw = t.mem.load_u64(t.gpa + 8 * j).unwrap_or(0);
        if raw & pte::P != 0 && !pte::is_leaf(raw, t.level) {
            break;
        }
        if let Some(c) = t.peek(j).filter(|c| t.commit(c)) {
            picked.push(c);
        }
        j += 1;
    }
    (picked, t.gva_base + j * t.size)
}

/// Turns picks (sorted by index) into runs, coalescing contiguous ones if `coalesce`; the run
/// holding index `anchor` is marked `must_emit`. Runs are clipped to the user range.
fn make_runs(t: &Table<'_>, picked: &[Cand], coalesce: bool, anchor: Option<u64>) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    let mut prev: Option<&Cand> = None;
    for c in picked {
        let must_emit = anchor == Some(c.j);
        match (runs.last_mut(), prev) {
            (Some(run), Some(p)) if coalesce && t.contiguous(p, c) => {
                run.len += t.size;
                run.must_emit |= must_emit;
            }
            _ => runs.push(Run { gva: t.gva_base + c.j * t.size, len: t.size, gpa: c.gpa, prot: c.prot, must_emit }),
        }
        prev = Some(c);
    }
    for run in &mut runs {
        let start = run.gva.max(USER_START);
        let end = (run.gva + run.len).min(USER_END);
        run.gpa += start - run.gva;
        run.len = end - start;
        run.gva = start;
    }
    runs
}
