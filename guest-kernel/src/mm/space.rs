//! One guest address space: page tables + VMAs + brk + the shadow space id, and every
//! operation that changes them (demand paging with contiguous extents, mmap/munmap/mprotect/
//! mremap/brk, populate, teardown). Present-PTE changes are queued and flushed in batches
//! (`FLUSH_TLB`) before the frames they referenced are reused (design section 6).

use super::pagecache::{self, Object, PageError};
use super::paging::{flags_for_prot, Leaf, NoMemory, PageTables, SHARED_MAP};
use super::vma::{Backing, Vma, VmaKind, VmaSet};
use alloc::sync::Arc;
use super::{frame, page_down, page_up, PAGE_SIZE};
use alloc::collections::BTreeSet;
use alloc::vec::Vec;
use guest_abi::layout::{USER_END, USER_START};
use x86_64::structures::paging::PageTableFlags as F;

/// Free user frames [`AddrSpace::populate_best_effort`] leaves alone (8 MiB): below this,
/// memory is short and `MAP_POPULATE` stops.
pub const POPULATE_LOW_WATER: usize = 2048;
/// Top of the initial stack (one guard page below the end of user space).
pub const STACK_TOP: u64 = USER_END - PAGE_SIZE;
/// Maximum stack size (RLIMIT_STACK default, 8 MiB).
pub const STACK_MAX: u64 = 8 << 20;
/// Highest address for top-down mmap placement.
pub const MMAP_TOP: u64 = STACK_TOP - STACK_MAX - (256 << 20);
/// 2 MiB.
const LARGE: u64 = guest_abi::LARGE_PAGE_SIZE;

/// Why a user access cannot be satisfied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultError {
    /// No VMA at the address (`SEGV_MAPERR`).
    Unmapped,
    /// The VMA forbids the access (`SEGV_ACCERR`).
    Denied,
    /// Guest memory exhausted.
    OutOfMemory,
    /// A file mapping's page past the end of the file, or one that could not be read
    /// (`SIGBUS`, `BUS_ADRERR`).
    Bus,
}

/// Kind of a user access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Data read.
    Read,
    /// Data write.
    Write,
    /// Instruction fetch.
    Exec,
}

/// A guest address space.
#[derive(Debug)]
pub struct AddrSpace {
    /// The page tables.
    pub pt: PageTables,
    /// The areas.
    pub vmas: VmaSet,
    /// Shadow space id from `LOAD_PGTBL`, once loaded.
    pub space_id: Option<u32>,
    /// Start of the brk heap (page aligned).
    pub brk_start: u64,
    /// Current program break (byte precise, as `brk(2)` returns it).
    pub brk: u64,
    /// Present-PTE ranges changed since the last flush: `(gva, len)`.
    pending_flush: Vec<(u64, u64)>,
    /// Frames to free after the next flush: `(gpa, frames)`.
    pending_free: Vec<(u64, usize)>,
    /// Frames mapped in user space (resident set), pages.
    pub resident: u64,
    /// 2 MiB regions (`gva >> 21`) where H's shadow may map something: those this kernel
    /// prefaulted or shadow-faulted in. A fill never maps outside the page-table page of its
    /// anchor (shadow-mmu/src/plan.rs: runs are picked among the leaves of that one table),
    /// and our leaves are all 4 KiB, so a flush of a range outside these regions has nothing
    /// to drop and is skipped (soft backend only: a hardware TLB caches what it likes).
    /// Its own small lock: shadow faults note regions holding the address space shared.
    shadowed: crate::sync::Mutex<BTreeSet<u64>>,
    /// Ranges `(gva, len)` to `PREFAULT` as soon as the space is loaded (exec: the image and
    /// the initial stack).
    pub prefault_on_load: Vec<(u64, u64)>,
}

/// A planned demand fill (see [`AddrSpace::plan_demand_fill`]).
#[derive(Clone, Debug)]
pub struct DemandPlan {
    vma: Vma,
    page: u64,
    lo: u64,
    hi: u64,
    want: F,
    /// GPA of the page before `lo`, if mapped.
    prev: Option<u64>,
    /// GPA of the page at `hi`, if mapped.
    next: Option<u64>,
}

impl DemandPlan {
    /// Allocates and zeroes frames for the plan (no address-space lock needed): `(gva, gpa,
    /// pages)`, or `None` when user memory is exhausted.
    pub fn allocate(&self) -> Option<(u64, u64, usize)> {
        let got = alloc_extent(self.lo, self.hi, self.page, self.prev, self.next)?;
        frame::zero_new(got.1, got.2);
        Some(got)
    }
}

/// Picks frames for (part of) `[lo, hi)` containing `page`, preferring a run that continues
/// the GPA of the neighbouring pages (constant GVA→GPA offset). Returns (gva, gpa, pages).
/// `prev` and `next` are the GPAs mapped just before `lo` and at `hi`, if any.
fn alloc_extent(lo: u64, hi: u64, page: u64, prev: Option<u64>, next: Option<u64>) -> Option<(u64, u64, usize)> {
    let n = ((hi - lo) / PAGE_SIZE) as usize;
    if let Some(prev) = prev
        && frame::alloc_user_at(prev + PAGE_SIZE, n)
    {
        return Some((lo, prev + PAGE_SIZE, n));
    }
    if let Some(next) = next {
        let need = n as u64 * PAGE_SIZE;
        if next >= need && frame::alloc_user_at(next - need, n) {
            return Some((lo, next - need, n));
        }
    }
    let align = if n == frame::LARGE_FRAMES && lo.is_multiple_of(LARGE) { frame::LARGE_FRAMES } else { 1 };
    if let Some(g) = frame::alloc_user_run(n, align).or_else(|| frame::alloc_user_run(n, 1)) {
        return Some((lo, g, n));
    }
    // Fragmented memory: smaller pieces around the faulting page.
    for pages in [64u64, 16, 1] {
        let s = page_down(page.saturating_sub((pages / 2) * PAGE_SIZE)).max(lo);
        let e = (s + pages * PAGE_SIZE).min(hi);
        let k = ((e - s) / PAGE_SIZE) as usize;
        if let Some(g) = frame::alloc_user_run(k, 1) {
            return Some((s, g, k));
        }
    }
    None
}

/// Shift of a shadow region (2 MiB).
const REGION_SHIFT: u32 = 21;

/// The permission bits of a leaf.
const PERM: F = F::WRITABLE.union(F::USER_ACCESSIBLE).union(F::NO_EXECUTE);

/// True when leaf flags `new` allow everything `old` allowed (a permission upgrade: the
/// shadow's stale mapping can only fault, and the fault maps the new rights, so no flush).
fn grants_more(old: F, new: F) -> bool {
    (!old.contains(F::WRITABLE) || new.contains(F::WRITABLE))
        && (!old.contains(F::USER_ACCESSIBLE) || new.contains(F::USER_ACCESSIBLE))
        && (old.contains(F::NO_EXECUTE) || !new.contains(F::NO_EXECUTE))
        && new.contains(F::PRESENT)
}

fn allowed(prot: u32, access: Access) -> bool {
    match access {
        Access::Read => prot & 7 != 0,
        Access::Write => prot & 2 != 0,
        Access::Exec => prot & 4 != 0,
    }
}

impl AddrSpace {
    /// An empty address space.
    pub fn new() -> Result<Self, NoMemory> {
        Ok(AddrSpace {
            pt: PageTables::new()?,
            vmas: VmaSet::new(),
            space_id: None,
            brk_start: 0,
            brk: 0,
            pending_flush: Vec::new(),
            pending_free: Vec::new(),
            resident: 0,
            shadowed: crate::sync::Mutex::new(BTreeSet::new()),
            prefault_on_load: Vec::new(),
        })
    }

    /// GPA of the PML4.
    pub fn root(&self) -> u64 {
        self.pt.root()
    }

    /// Adds a VMA over `[start, end)` (page aligned, must be free).
    pub fn add_vma(&mut self, start: u64, end: u64, prot: u32, kind: VmaKind) {
        self.vmas.insert(Vma::new(start, end, prot, kind));
    }

    /// Adds `vma` (its range must be free).
    pub fn insert_vma(&mut self, vma: Vma) {
        self.vmas.insert(vma);
    }

    /// Resolves a user access at `addr` that the page table does not allow yet: demand-fills
    /// a contiguous chunk around it (or fixes a PTE whose flags lag behind its VMA). Returns
    /// the range now mapped, to `PREFAULT`.
    pub fn fault_in(&mut self, addr: u64, access: Access) -> Result<(u64, u64), FaultError> {
        let vma = self.vmas.find(addr).ok_or(FaultError::Unmapped)?.clone();
        if !allowed(vma.prot, access) {
            return Err(FaultError::Denied);
        }
        let page = page_down(addr);
        let want = flags_for_prot(vma.prot);
        if vma.backing.is_some() {
            let leaf = self.pt.translate(page);
            if leaf.is_none() || vma.is_shared() {
                return self.fault_backed(&vma, page, access, leaf);
            }
        }
        if let Some(leaf) = self.pt.translate(page) {
            if access == Access::Write && !leaf.flags.contains(F::WRITABLE) && frame::is_shared(leaf.gpa) {
                // Copy-on-write: this address space gets its own copy of the shared frame.
                let new = frame::alloc_user_run(1, 1).ok_or(FaultError::OutOfMemory)?;
                // SAFETY: `leaf.gpa` is a frame this space maps (shared, read-only now) and
                // `new` a frame just allocated; both are whole guest pages in the physmap.
                unsafe { core::ptr::copy_nonoverlapping(super::phys_to_virt(leaf.gpa), super::phys_to_virt(new), PAGE_SIZE as usize) };
                self.map_frames(page, new, 1, want).map_err(|_| FaultError::OutOfMemory)?;
                return Ok((page, PAGE_SIZE));
            }
            // Present: the VMA allows the access, so the PTE just needs the VMA's flags; but a
            // frame shared copy-on-write stays read-only, as in `protect` (a read or fetch
            // fault that reaches here, e.g. after H answered a shadow miss with an error,
            // must not make another space's frame writable here).
            let want = if frame::is_shared(leaf.gpa) { want - F::WRITABLE } else { want };
            if leaf.flags & PERM != want & PERM && self.pt.protect(page, want) && !grants_more(leaf.flags, want) {
                self.queue_flush(page, PAGE_SIZE);
            }
            if access == Access::Write && vma.prot & 2 != 0 {
                // A write to a frame nobody else owns any more (the other side of a fork
                // exec'd or exited): make the unshared read-only neighbours in the same 2 MiB
                // chunk writable too, so the next writes there do not fault one by one.
                return Ok(self.unshare_around(page, &vma, want));
            }
            return Ok((page, PAGE_SIZE));
        }
        if matches!(vma.kind, VmaKind::Vvar | VmaKind::Vdso) {
            return crate::vdso::refault(self, &vma, page);
        }
        let plan = self.plan_demand(vma, page, want);
        let (start, gpa, n) = alloc_extent(plan.lo, plan.hi, page, plan.prev, plan.next).ok_or(FaultError::OutOfMemory)?;
        frame::zero_new(gpa, n);
        self.map_frames(start, gpa, n, want).map_err(|_| FaultError::OutOfMemory)?;
        Ok((start, n as u64 * PAGE_SIZE))
    }

    /// A fault in a VMA backed by a page-cache object: a present leaf of a shared mapping
    /// gets the VMA's rights (a first write marks the page dirty); a missing page comes from
    /// the object, with the cached pages around it (read faults), read-only in private
    /// mappings (a later write copies it) and in shared file mappings until written; a write
    /// fault in a private mapping gets its own copy at once.
    fn fault_backed(&mut self, vma: &Vma, page: u64, access: Access, leaf: Option<Leaf>) -> Result<(u64, u64), FaultError> {
        let Some((b, pg)) = vma.object_page(page) else { return Err(FaultError::Unmapped) };
        let b: Backing = b.clone();
        let want = flags_for_prot(vma.prot);
        let ro = want - F::WRITABLE;
        if let Some(leaf) = leaf {
            // Shared mapping, page present: the VMA allows the access, the leaf lags behind.
            let f = if access == Access::Write || leaf.flags.contains(F::WRITABLE) || !b.obj.is_file() { want } else { ro };
            if access == Access::Write {
                b.obj.mark_dirty(pg);
            }
            let f = f | SHARED_MAP;
            if leaf.flags & PERM != f & PERM && self.pt.protect(page, f) && !grants_more(leaf.flags, f) {
                self.queue_flush(page, PAGE_SIZE);
            }
            return Ok((page, PAGE_SIZE));
        }
        let first = b.pgoff;
        let end = b.pgoff + vma.len() / PAGE_SIZE;
        let private_write = !b.shared && access == Access::Write;
        let (lo, hi) = if private_write {
            (pg, pg + 1)
        } else {
            pagecache::fault_window(pg, first, end, b.obj.eof_pages()).ok_or(FaultError::Bus)?
        };
        let pages = b.obj.fault_pages(pg, lo, hi).map_err(|e| match e {
            PageError::Bus => FaultError::Bus,
            PageError::NoMemory => FaultError::OutOfMemory,
        })?;
        let va_of = |i: u64| vma.start + (i - first) * PAGE_SIZE;
        if private_write {
            let Some(&(_, src)) = pages.first() else { return Err(FaultError::Bus) };
            let copy = frame::alloc_user_run(1, 1);
            if let Some(new) = copy {
                // SAFETY: `src` is a page-cache frame we hold a reference on and `new` a frame
                // just allocated; both whole guest pages in the physmap.
                unsafe { core::ptr::copy_nonoverlapping(super::phys_to_virt(src), super::phys_to_virt(new), PAGE_SIZE as usize) };
            }
            frame::free(src, 1);
            let new = copy.ok_or(FaultError::OutOfMemory)?;
            self.map_frames(page, new, 1, want).map_err(|_| FaultError::OutOfMemory)?;
            return Ok((page, PAGE_SIZE));
        }
        let (mut lo_va, mut hi_va) = (page, page + PAGE_SIZE);
        let mut err = None;
        for (i, gpa) in pages {
            let va = va_of(i);
            if err.is_some() || self.pt.translate(va).is_some() {
                frame::free(gpa, 1);
                continue;
            }
            let flags = if !b.shared {
                ro
            } else if !b.obj.is_file() {
                want | SHARED_MAP
            } else if va == page && access == Access::Write {
                b.obj.mark_dirty(i);
                want | SHARED_MAP
            } else {
                ro | SHARED_MAP
            };
            if self.map_frames(va, gpa, 1, flags).is_err() {
                err = Some(FaultError::OutOfMemory);
                continue;
            }
            lo_va = lo_va.min(va);
            hi_va = hi_va.max(va + PAGE_SIZE);
        }
        match err {
            Some(e) if self.pt.translate(page).is_none() => Err(e),
            _ => Ok((lo_va, hi_va - lo_va)),
        }
    }

    /// Removes the leaves that map pages `first..` of `obj` (truncation): every such leaf of
    /// a shared mapping, and the leaves of private mappings whose frame is one of `gpas` (the
    /// cache's; private copies stay). The flush is queued.
    pub fn zap_object(&mut self, obj: &Arc<Object>, first: u64, gpas: &[u64]) {
        let hits: Vec<(u64, u64, bool)> = self
            .vmas
            .iter()
            .filter_map(|v| {
                let b = v.backing.as_ref().filter(|b| Arc::ptr_eq(&b.obj, obj))?;
                let pages = v.len() / PAGE_SIZE;
                if b.pgoff + pages <= first {
                    return None;
                }
                let from = v.start + first.saturating_sub(b.pgoff) * PAGE_SIZE;
                Some((from, v.end, b.shared))
            })
            .collect();
        for (from, to, shared) in hits {
            let (flush, free) = (&mut self.pending_flush, &mut self.pending_free);
            let mut gone = 0;
            self.pt.for_each_leaf(from, to, &mut |va, pte| {
                let gpa = *pte & super::paging::ADDR_MASK;
                if shared || gpas.contains(&gpa) {
                    push_run(flush, va, PAGE_SIZE);
                    push_frames(free, gpa, 1);
                    *pte = 0;
                    gone += 1;
                }
            });
            self.resident -= gone;
        }
    }

    /// Writes back the dirty pages of the shared file mappings in `[start, end)` (`msync`,
    /// `munmap`). Returns the first error of a file.
    pub fn writeback(&self, start: u64, end: u64) -> Result<(), guest_fs::Errno> {
        let mut res = Ok(());
        for v in self.vmas.overlapping(start, end) {
            if let Some(b) = v.backing.as_ref().filter(|b| b.shared && b.obj.is_file()) {
                let lo = b.pgoff + (start.max(v.start) - v.start) / PAGE_SIZE;
                let hi = b.pgoff + (end.min(v.end) - v.start).div_ceil(PAGE_SIZE);
                if let Err(e) = b.obj.writeback(lo, hi) {
                    res = Err(e);
                }
            }
        }
        res
    }

    /// The demand fill of not-present `page` in `vma`: the run of non-present pages around
    /// it inside its chunk, and the GPAs that would continue its neighbours.
    fn plan_demand(&self, vma: Vma, page: u64, want: F) -> DemandPlan {
        let chunk = match vma.kind {
            VmaKind::Stack => 128 << 10,
            VmaKind::Anon | VmaKind::Heap | VmaKind::Vvar | VmaKind::Vdso => LARGE,
        };
        let mut lo = (page & !(chunk - 1)).max(vma.start);
        let mut hi = (page.saturating_add(chunk) & !(chunk - 1)).min(vma.end);
        // Shrink to the run of non-present pages around `page`.
        let mut a = page;
        while a > lo && self.pt.translate(a - PAGE_SIZE).is_none() {
            a -= PAGE_SIZE;
        }
        lo = a;
        let mut b = page + PAGE_SIZE;
        while b < hi && self.pt.translate(b).is_none() {
            b += PAGE_SIZE;
        }
        hi = b;
        let prev = if lo >= PAGE_SIZE { self.pt.translate(lo - PAGE_SIZE).map(|l| l.gpa) } else { None };
        let next = self.pt.translate(hi).map(|l| l.gpa);
        DemandPlan { vma, page, lo, hi, want, prev, next }
    }

    /// Frames for `[lo, hi)`, continuing the GPAs of the neighbouring pages where possible.
    fn alloc_extent(&self, lo: u64, hi: u64) -> Option<(u64, u64, usize)> {
        let prev = if lo >= PAGE_SIZE { self.pt.translate(lo - PAGE_SIZE).map(|l| l.gpa) } else { None };
        alloc_extent(lo, hi, lo, prev, self.pt.translate(hi).map(|l| l.gpa))
    }

    /// First half of a demand fill made with the address space held *shared*: when `addr` is
    /// a not-present page of a VMA that allows `access`, the plan for its fill. The caller
    /// allocates and zeroes the frames with no lock held ([`DemandPlan::allocate`]), then
    /// installs them exclusively with [`AddrSpace::commit_demand`].
    pub fn plan_demand_fill(&self, addr: u64, access: Access) -> Option<DemandPlan> {
        let vma = self.vmas.find(addr)?.clone();
        if !allowed(vma.prot, access) || vma.backing.is_some() {
            return None;
        }
        let page = page_down(addr);
        if self.pt.translate(page).is_some() || matches!(vma.kind, VmaKind::Vvar | VmaKind::Vdso) {
            return None;
        }
        let want = flags_for_prot(vma.prot);
        Some(self.plan_demand(vma, page, want))
    }

    /// Second half of a demand fill: maps the frames `plan.allocate()` got if the address
    /// space did not change under the plan meanwhile (same VMA, pages still not present).
    /// Returns the range mapped, or gives the frames back and returns `None` (the caller
    /// takes the ordinary fault path).
    pub fn commit_demand(&mut self, plan: &DemandPlan, (start, gpa, n): (u64, u64, usize)) -> Option<(u64, u64)> {
        let len = n as u64 * PAGE_SIZE;
        let same = self.vmas.find(plan.page) == Some(&plan.vma)
            && (0..n as u64).all(|i| self.pt.translate(start + i * PAGE_SIZE).is_none());
        if !same || self.map_frames(start, gpa, n, plan.want).is_err() {
            if same {
                // map_frames gave back what it did not map; flush and free what it did.
                self.zap(start, start + len);
            } else {
                frame::free(gpa, n);
            }
            return None;
        }
        Some((start, len))
    }

    /// Replaces the (shared) frame mapped at `page` by a private copy with the same flags;
    /// returns the new frame's GPA. The old mapping is queued for flushing.
    pub fn unshare(&mut self, page: u64) -> Result<u64, NoMemory> {
        let leaf = self.pt.translate(page).ok_or(NoMemory)?;
        let new = frame::alloc_user_run(1, 1).ok_or(NoMemory)?;
        // SAFETY: `leaf.gpa` is a frame this space maps and `new` a frame just allocated; both
        // are whole guest pages in the physmap.
        unsafe { core::ptr::copy_nonoverlapping(super::phys_to_virt(leaf.gpa), super::phys_to_virt(new), PAGE_SIZE as usize) };
        self.map_frames(page, new, 1, leaf.flags)?;
        Ok(new)
    }

    /// Gives write access to the run of present, read-only, unshared pages around `page`
    /// (inside `vma` and `page`'s 2 MiB chunk): a permission upgrade, which needs no flush.
    /// Returns the range to prefault.
    fn unshare_around(&mut self, page: u64, vma: &Vma, want: F) -> (u64, u64) {
        let lo = (page & !(LARGE - 1)).max(vma.start);
        let hi = (page.saturating_add(LARGE) & !(LARGE - 1)).min(vma.end);
        let upgradable = |pt: &PageTables, a: u64| {
            pt.translate(a).is_some_and(|l| !l.flags.contains(F::WRITABLE) && l.flags.contains(F::USER_ACCESSIBLE) && !frame::is_shared(l.gpa))
        };
        let mut a = page;
        while a > lo && upgradable(&self.pt, a - PAGE_SIZE) {
            a -= PAGE_SIZE;
            self.pt.protect(a, want);
        }
        let mut b = page + PAGE_SIZE;
        while b < hi && upgradable(&self.pt, b) {
            self.pt.protect(b, want);
            b += PAGE_SIZE;
        }
        (a, b - a)
    }

    /// Maps `n` frames starting at `gpa` at `va` with `flags`; frames that were already
    /// mapped are replaced (the old frame is queued for freeing after a flush).
    pub fn map_frames(&mut self, va: u64, gpa: u64, n: usize, flags: F) -> Result<(), NoMemory> {
        for i in 0..n as u64 {
            match self.pt.map(va + i * PAGE_SIZE, gpa + i * PAGE_SIZE, flags) {
                Ok(Some(old)) => {
                    self.queue_flush(va + i * PAGE_SIZE, PAGE_SIZE);
                    self.queue_free(old.gpa, 1);
                }
                Ok(None) => self.resident += 1,
                Err(e) => {
                    // Give back the frames we did not map.
                    frame::free(gpa + i * PAGE_SIZE, n - i as usize);
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Allocates and zeroes frames for every non-present page of `[start, end)` (which must be
    /// inside VMAs), e.g. for `MAP_POPULATE` and ELF segments.
    pub fn populate(&mut self, start: u64, end: u64) -> Result<(), FaultError> {
        let mut a = page_down(start);
        while a < end {
            if self.pt.translate(a).is_some() {
                a += PAGE_SIZE;
                continue;
            }
            let vma = self.vmas.find(a).ok_or(FaultError::Unmapped)?.clone();
            if vma.backing.is_some() {
                // Pages of a page-cache object come from it.
                self.fault_in(a, Access::Read)?;
                a += PAGE_SIZE;
                continue;
            }
            let hi = end.min(vma.end);
            let mut b = a + PAGE_SIZE;
            while b < hi && self.pt.translate(b).is_none() {
                b += PAGE_SIZE;
            }
            let (s, gpa, n) = self.alloc_extent(a, b).ok_or(FaultError::OutOfMemory)?;
            frame::zero_new(gpa, n);
            self.map_frames(s, gpa, n, flags_for_prot(vma.prot)).map_err(|_| FaultError::OutOfMemory)?;
            a = s + n as u64 * PAGE_SIZE;
        }
        Ok(())
    }

    /// `MAP_POPULATE`: best effort, as in Linux (mm/gup.c `populate_vma_page_range`, whose
    /// errors `mm_populate` ignores). An inaccessible (`PROT_NONE`) VMA gets nothing (Linux
    /// faults it only with `FOLL_FORCE`, which it does not pass for them), so a huge
    /// `PROT_NONE` reservation costs no time; and population stops, leaving the rest to demand
    /// faults, when user memory runs short ([`POPULATE_LOW_WATER`] frames left), rather than
    /// taking the last frames or OOM-looping. Each extent is bounded by the free frames, so the
    /// whole call does work proportional to memory, not to the length asked for.
    pub fn populate_best_effort(&mut self, start: u64, end: u64) {
        let mut a = page_down(start);
        while a < end {
            let Some(vma) = self.vmas.find(a).cloned() else { return };
            if vma.prot == 0 {
                a = vma.end;
                continue;
            }
            if vma.backing.is_some() {
                // Pages of a page-cache object: fault them in (fault-around maps several),
                // stopping at the end of the file or when memory is short.
                if self.pt.translate(a).is_none() && (frame::user_headroom() < POPULATE_LOW_WATER || self.fault_in(a, Access::Read).is_err()) {
                    return;
                }
                a += PAGE_SIZE;
                continue;
            }
            if self.pt.translate(a).is_some() {
                a += PAGE_SIZE;
                continue;
            }
            let room = frame::user_headroom().saturating_sub(POPULATE_LOW_WATER) as u64;
            if room == 0 {
                return;
            }
            let hi = end.min(vma.end).min(a.saturating_add(room.saturating_mul(PAGE_SIZE)));
            let mut b = a + PAGE_SIZE;
            while b < hi && self.pt.translate(b).is_none() {
                b += PAGE_SIZE;
            }
            let Some((s, gpa, n)) = self.alloc_extent(a, b) else { return };
            frame::zero_new(gpa, n);
            if self.map_frames(s, gpa, n, flags_for_prot(vma.prot)).is_err() {
                return;
            }
            a = s + n as u64 * PAGE_SIZE;
        }
    }

    /// Translates a user address for a kernel access (copy to/from user), demand-filling it
    /// when the VMA allows. Returns the GPA of the byte.
    pub fn user_gpa(&mut self, va: u64, access: Access) -> Result<u64, FaultError> {
        if !(USER_START..USER_END).contains(&va) {
            return Err(FaultError::Unmapped);
        }
        let page = page_down(va);
        let ok = |l: &Leaf| {
            l.flags.contains(F::USER_ACCESSIBLE) && (access != Access::Write || l.flags.contains(F::WRITABLE))
        };
        let leaf = match self.pt.translate(page) {
            Some(l) if ok(&l) => l,
            _ => {
                self.fault_in(va, access)?;
                self.pt.translate(page).filter(ok).ok_or(FaultError::Denied)?
            }
        };
        Ok(leaf.gpa + (va - page))
    }

    fn queue_flush(&mut self, va: u64, len: u64) {
        push_run(&mut self.pending_flush, va, len);
    }

    /// Queues `n` frames at `gpa` to be freed after the next flush (merged with the previous
    /// entry when contiguous, so freeing takes the allocator lock once per run).
    fn queue_free(&mut self, gpa: u64, n: usize) {
        push_frames(&mut self.pending_free, gpa, n);
    }

    /// Records that H's shadow may now map `[gva, gva + len)` (a prefault or a shadow fault
    /// there is about to be issued).
    pub fn note_shadow(&self, gva: u64, len: u64) {
        let first = gva >> REGION_SHIFT;
        let last = gva.saturating_add(len.max(1) - 1) >> REGION_SHIFT;
        let mut s = self.shadowed.lock();
        for r in first..=last {
            s.insert(r);
        }
    }

    /// False when the shadow cannot map anything in `[va, va + len)`, so a flush of it can be
    /// skipped (soft backend only).
    fn may_be_shadowed(&self, va: u64, len: u64) -> bool {
        if crate::platform::hw::active() {
            return true;
        }
        let first = va >> REGION_SHIFT;
        let last = va.saturating_add(len.max(1) - 1) >> REGION_SHIFT;
        self.shadowed.lock().range(first..=last).next().is_some()
    }

    /// `PREFAULT` of `[gva, gva + len)` in this (loaded) space. Returns H's answer.
    pub fn prefault(&mut self, gva: u64, len: u64) -> i64 {
        if cfg!(test) || len == 0 {
            return 0;
        }
        self.note_shadow(gva, len);
        crate::hcall::prefault(self.root(), gva, len)
    }

    /// `SHADOW_FAULT` at `gva` with #PF error `error` in this (loaded) space.
    ///
    /// Prefer [`shadow_fault`] with the address space lock released (after
    /// [`AddrSpace::note_shadow`]).
    pub fn shadow_fault(&mut self, gva: u64, error: u64) -> i64 {
        if cfg!(test) {
            return guest_abi::hypercall::FAULT_INJECT;
        }
        self.note_shadow(gva, 1);
        crate::hcall::shadow_fault(self.root(), gva, error)
    }

    /// Flushes `ranges` of the shadow (those it may map), with one hypercall when possible.
    fn flush_ranges(&mut self, ranges: &[(u64, u64)]) {
        if self.space_id.is_none() || cfg!(test) {
            return;
        }
        let live: Vec<(u64, u64)> = ranges.iter().copied().filter(|&(va, len)| self.may_be_shadowed(va, len)).collect();
        if live.len() > 4 * guest_abi::hypercall::FLUSH_LIST_MAX as usize {
            // `shadowed` is kept: a shadow fault that noted its region before this flush may
            // still be filling it (H walks again after the flush and maps the new state),
            // and a later flush there must not be skipped.
            crate::hcall::flush_tlb_all(self.root());
        } else {
            crate::hcall::flush_tlb_ranges(self.root(), &live);
        }
    }

    /// Issues the queued `FLUSH_TLB`s, then frees the frames they referenced.
    pub fn flush(&mut self) {
        if !self.pending_flush.is_empty() {
            let ranges = core::mem::take(&mut self.pending_flush);
            self.flush_ranges(&ranges);
        }
        for (gpa, n) in self.pending_free.drain(..) {
            frame::free(gpa, n);
        }
    }

    /// Removes `[start, end)` (page aligned) from the address space: VMAs, PTEs, frames.
    /// The flush is queued; call [`AddrSpace::flush`].
    pub fn unmap(&mut self, start: u64, end: u64) {
        let _ = self.writeback(start, end);
        let removed = self.vmas.remove(start, end);
        for v in removed {
            self.zap(v.start, v.end);
        }
    }

    /// Drops the pages of `[start, end)` but keeps the VMAs (they read back as zero):
    /// `MADV_DONTNEED`. The flush is queued.
    pub fn zap(&mut self, start: u64, end: u64) {
        let (flush, free) = (&mut self.pending_flush, &mut self.pending_free);
        let mut gone = 0;
        self.pt.for_each_leaf(start, end, &mut |va, pte| {
            push_run(flush, va, PAGE_SIZE);
            push_frames(free, *pte & super::paging::ADDR_MASK, 1);
            *pte = 0;
            gone += 1;
        });
        self.resident -= gone;
    }

    /// `mprotect(2)` on `[start, end)`; `false` if part of it is unmapped (ENOMEM).
    pub fn protect(&mut self, start: u64, end: u64, prot: u32) -> bool {
        if self.vmas.protect(start, end, prot).is_none() {
            return false;
        }
        let flags = flags_for_prot(prot);
        let ro = flags - F::WRITABLE;
        let flush = &mut self.pending_flush;
        self.pt.for_each_leaf(start, end, &mut |va, pte| {
            let old = *pte;
            let gpa = old & super::paging::ADDR_MASK;
            let f = if old & SHARED_MAP.bits() != 0 {
                // A shared mapping's page: writable only once written (dirty tracking; the
                // fault makes it writable), never copied.
                (if old & F::WRITABLE.bits() != 0 { flags } else { ro }) | SHARED_MAP
            } else if flags.contains(F::WRITABLE) && frame::is_shared(gpa) {
                // A frame shared copy-on-write stays read-only: the first write copies it.
                ro
            } else {
                flags
            };
            let new = super::paging::with_flags(old, f);
            if new != old {
                *pte = new;
                if !grants_more(F::from_bits_truncate(old & !super::paging::ADDR_MASK), f) {
                    push_run(flush, va, PAGE_SIZE);
                }
            }
        });
        true
    }

    /// Finds a free range of `len` bytes for mmap (top-down below [`MMAP_TOP`]); 2 MiB aligned
    /// for large requests so demand paging can use whole aligned extents.
    pub fn find_free(&self, len: u64) -> Option<u64> {
        let align = if len >= LARGE { LARGE } else { PAGE_SIZE };
        self.vmas.find_free_top_down(len, align, USER_START, MMAP_TOP)
    }

    /// Moves the pages of `[old, old+len)` to `new` (page-table entries move, data does not);
    /// the VMA goes along. `[new, new+len)` must be free.
    pub fn move_range(&mut self, old: u64, new: u64, len: u64) -> Result<(), NoMemory> {
        let pieces = self.vmas.remove(old, old + len);
        for v in &pieces {
            self.vmas.insert(Vma { start: v.start - old + new, end: v.end - old + new, ..v.clone() });
        }
        let mut off = 0;
        while off < len {
            if let Some(leaf) = self.pt.unmap(old + off) {
                self.queue_flush(old + off, PAGE_SIZE);
                self.pt.map(new + off, leaf.gpa, leaf.flags)?;
            }
            off += PAGE_SIZE;
        }
        Ok(())
    }

    /// `brk(2)`: moves the break to `new` if possible; returns the resulting break.
    pub fn set_brk(&mut self, new: u64) -> u64 {
        if new < self.brk_start || new >= MMAP_TOP {
            return self.brk;
        }
        let old_end = page_up(self.brk);
        let new_end = page_up(new);
        if new_end > old_end {
            if self.vmas.overlaps(old_end, new_end) {
                return self.brk;
            }
            self.add_vma(old_end, new_end, 3, VmaKind::Heap);
        } else if new_end < old_end {
            self.unmap(new_end, old_end);
            self.flush();
        }
        self.brk = new;
        self.brk
    }

    /// Tears the address space down (same as dropping it): releases the shadow space, frees
    /// every user frame (one owner of shared ones) and page-table page.
    pub fn destroy(self) {
        drop(self);
    }

    /// `fork(2)`: a copy-on-write duplicate. Writable pages become read-only in both spaces
    /// and their frames gain an owner; the parent's changed PTEs are flushed here (the ranges
    /// the shadow may map, with one `FLUSH_TLB_LIST`).
    ///
    /// Except pages both sides will write at once: when the parent has at most
    /// [`EAGER_FORK_PAGES`] writable pages (a shell: what it wrote since its last fork), all
    /// of them, else those of `hot` (the pages around the stack pointer and the TLS block),
    /// are copied for the child right away. A 4 KiB copy costs well under a microsecond; a
    /// copy-on-write fault costs a trap, a flush and a prefault on each side.
    pub fn fork(&mut self, hot: &[u64]) -> Result<AddrSpace, NoMemory> {
        // The child's VMAs and bookkeeping live in the kernel heap: refuse a fork whose copy
        // would have to take the kernel reserve (a fork bomb of large address spaces).
        if !crate::heap::user_may_grow(self.vmas.len() as u64 * FORK_BYTES_PER_VMA + PAGE_SIZE) {
            return Err(NoMemory);
        }
        let all = self.pt.count_writable(EAGER_FORK_PAGES + 1) <= EAGER_FORK_PAGES;
        let eager = |va: u64| all || hot.contains(&va);
        let mut out = super::paging::ForkOut::default();
        let pt = match self.pt.fork(&eager, &mut out) {
            Ok(pt) => pt,
            Err(e) => {
                for gpa in out.copied {
                    frame::free(gpa, 1);
                }
                return Err(e);
            }
        };
        let child = AddrSpace {
            pt,
            vmas: self.vmas.clone(),
            space_id: None,
            brk_start: self.brk_start,
            brk: self.brk,
            pending_flush: Vec::new(),
            pending_free: Vec::new(),
            resident: self.resident,
            shadowed: crate::sync::Mutex::new(BTreeSet::new()),
            prefault_on_load: Vec::new(),
        };
        if !frame::share_all(&out.shared) {
            // Cannot happen for frames we map; refuse the fork rather than corrupt counts.
            return Err(NoMemory);
        }
        self.flush_ranges(&out.changed);
        Ok(child)
    }
}

/// Kernel heap bytes a fork's copy costs per VMA (B-tree entry and node share), an upper
/// estimate.
const FORK_BYTES_PER_VMA: u64 = 96;

/// Most writable pages a fork copies eagerly (see [`AddrSpace::fork`]): 512 KiB.
pub const EAGER_FORK_PAGES: usize = 128;

/// Appends `[va, va + len)` to `runs`, extending the last run when contiguous.
fn push_run(runs: &mut Vec<(u64, u64)>, va: u64, len: u64) {
    match runs.last_mut() {
        Some(last) if last.0 + last.1 == va => last.1 += len,
        _ => runs.push((va, len)),
    }
}

/// Appends `n` frames at `gpa` to `runs` of `(gpa, frames)`, extending the last run when
/// contiguous.
fn push_frames(runs: &mut Vec<(u64, usize)>, gpa: u64, n: usize) {
    match runs.last_mut() {
        Some(last) if last.0 + last.1 as u64 * PAGE_SIZE == gpa => last.1 += n,
        _ => runs.push((gpa, n)),
    }
}

impl Drop for AddrSpace {
    fn drop(&mut self) {
        if self.space_id.take().is_some() && !cfg!(test) {
            crate::hcall::release_pgtbl(self.root());
        }
        let all: Vec<(u64, u64)> = self.vmas.iter().map(|v| (v.start, v.end)).collect();
        for (start, end) in all {
            self.unmap(start, end);
        }
        self.pending_flush.clear();
        for (gpa, n) in self.pending_free.drain(..) {
            frame::free(gpa, n);
        }
        let pt = core::mem::replace(&mut self.pt, PageTables::detached());
        pt.destroy();
    }
}

/// The futex key of user address `addr` when it lies in a shared mapping of a page-cache
/// object: (object address, byte offset in the object). `None` otherwise.
pub fn shared_key(mm: &AddrSpace, addr: u64) -> Option<(usize, u64)> {
    let v = mm.vmas.find(addr)?;
    let (b, pg) = v.object_page(page_down(addr)).filter(|(b, _)| b.shared)?;
    Some((Arc::as_ptr(&b.obj) as usize, pg * PAGE_SIZE + addr % PAGE_SIZE))
}

/// `SHADOW_FAULT` of `gva` with #PF error `error` in the loaded space of page-table root
/// `root`, made with no address-space lock held; the caller noted the region first
/// ([`AddrSpace::note_shadow`]) while it held the lock.
pub fn shadow_fault(root: u64, gva: u64, error: u64) -> i64 {
    if cfg!(test) {
        return guest_abi::hypercall::FAULT_INJECT;
    }
    crate::hcall::shadow_fault(root, gva, error)
}

/// `PREFAULT` of `[gva, gva + len)` in the loaded space of root `root`, with no lock held;
/// the caller noted the range first ([`AddrSpace::note_shadow`]).
pub fn prefault(root: u64, gva: u64, len: u64) -> i64 {
    if cfg!(test) || len == 0 {
        return 0;
    }
    crate::hcall::prefault(root, gva, len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upgrades_need_no_flush() {
        let ro = flags_for_prot_ro();
        let rw = super::super::paging::flags_for_prot(3);
        let rx = super::super::paging::flags_for_prot(5);
        let none = super::super::paging::flags_for_prot(0);
        assert!(grants_more(ro, rw), "read-only -> read-write");
        assert!(grants_more(ro, rx), "read-only -> read-exec");
        assert!(grants_more(none, rw), "PROT_NONE -> read-write");
        assert!(!grants_more(rw, ro), "write dropped");
        assert!(!grants_more(rx, ro), "exec dropped");
        assert!(!grants_more(rw, none), "everything dropped");
    }

    /// A read fault that reaches `fault_in` on a present copy-on-write page (H answered the
    /// shadow miss with an error, or the table changed under it) must leave the page
    /// read-only: making it writable would let this process write a frame its fork child
    /// still maps. Then a write copies it as usual.
    #[test]
    fn a_read_fault_on_a_shared_page_keeps_it_copy_on_write() {
        let _ram = super::super::test_ram();
        let va = 0x10_0000_0000u64;
        let mut parent = AddrSpace::new().expect("page tables");
        // More writable pages than a fork copies eagerly: the fork shares them copy-on-write.
        let pages = EAGER_FORK_PAGES as u64 * 2;
        parent.add_vma(va, va + pages * PAGE_SIZE, 3, VmaKind::Anon);
        parent.fault_in(va, Access::Write).expect("demand fill");
        let before = parent.pt.translate(va).expect("mapped");
        assert!(before.flags.contains(F::WRITABLE));
        // SAFETY: the frame is mapped by `parent`, a whole page in the test physmap.
        unsafe { super::super::phys_to_virt(before.gpa).write(7) };
        let child = parent.fork(&[]).expect("fork");
        let shared = parent.pt.translate(va).expect("still mapped");
        assert!(!shared.flags.contains(F::WRITABLE) && frame::is_shared(shared.gpa), "fork write-protects and shares");
        for access in [Access::Read, Access::Exec] {
            let _ = parent.fault_in(va, access);
            let after = parent.pt.translate(va).expect("still mapped");
            assert_eq!(after.gpa, shared.gpa, "{access:?}: no copy for a read");
            assert!(!after.flags.contains(F::WRITABLE), "{access:?} fault made a shared frame writable");
        }
        parent.fault_in(va, Access::Write).expect("copy-on-write");
        let copied = parent.pt.translate(va).expect("mapped");
        assert!(copied.flags.contains(F::WRITABLE) && copied.gpa != shared.gpa, "a write copies");
        assert_eq!(child.pt.translate(va).map(|l| l.gpa), Some(shared.gpa), "the child keeps the original");
        // SAFETY: both frames are mapped (by parent and child), whole pages in the physmap.
        unsafe { super::super::phys_to_virt(copied.gpa).write(9) };
        // SAFETY: as above.
        assert_eq!(unsafe { super::super::phys_to_virt(shared.gpa).read() }, 7, "the child's page is untouched");
        parent.flush();
        drop(child);
        drop(parent);
    }

    fn flags_for_prot_ro() -> F {
        super::super::paging::flags_for_prot(1)
    }
}
