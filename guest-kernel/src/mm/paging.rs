//! x86-64 4-level page tables of one guest address space (Intel SDM vol. 3A, 4.5), user half
//! only, built with the `x86_64` crate's `PageTable`/`PageTableFlags` and reached through the
//! physmap. Leaves are 4 KiB; intermediate entries are present + writable + user (permissions
//! are decided at the leaf). The TLB rule of the ABI (flush after changing a present PTE) is
//! the caller's job: these functions return what they changed.

use super::{frame, phys_to_virt, PAGE_SIZE};
use core::arch::asm;
use x86_64::structures::paging::{PageTable, PageTableFlags as F};

/// Flags of intermediate (non-leaf) entries.
const TABLE_FLAGS: F = F::PRESENT.union(F::WRITABLE).union(F::USER_ACCESSIBLE);
/// Physical address bits of an entry.
pub(crate) const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;
/// Software bit of a leaf (SDM 4.5: bits 9-11 are ignored by the MMU, and by H's shadow
/// walk, which copies only the architectural bits): the frame is a page of a `MAP_SHARED`
/// mapping. Such a leaf is never made copy-on-write: fork keeps it writable on both sides,
/// and a write through a read-only one (first write, for dirty tracking) makes it writable.
pub const SHARED_MAP: F = F::BIT_9;

/// A leaf translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leaf {
    /// GPA of the 4 KiB frame.
    pub gpa: u64,
    /// Leaf flags.
    pub flags: F,
}

/// Out of guest memory while allocating a page-table page.
#[derive(Debug, PartialEq, Eq)]
pub struct NoMemory;

/// The page tables of one address space, identified by the GPA of the PML4.
#[derive(Debug)]
pub struct PageTables {
    root: u64,
}

/// Frames that have been page-table pages, free for reuse as page-table pages only.
///
/// Why: under KVM with shadow paging (software KVM such as `kvm_pvm`; any KVM without EPT/NPT)
/// KVM keeps shadow pages for guest page-table frames and notices their changes only through
/// the guest's own (write-protected, trapped) stores. H writing such a frame directly, as the
/// `COPY_MEM`/`ZERO_MEM` hypercalls do, would leave stale shadow translations. So a frame,
/// once a page table, stays one: the guest kernel zeroes it itself on reuse ([`alloc_table`])
/// and it never becomes a data frame H may write. The pool holds at most the peak number of
/// page-table pages.
static TABLE_POOL: spin::Mutex<alloc::vec::Vec<u64>> = spin::Mutex::new(alloc::vec::Vec::new());

/// A zeroed frame for a page-table page: from [`TABLE_POOL`] (zeroed here, by the guest's own
/// stores), else a new frame from the allocator (never a page table before, so H may zero it).
fn alloc_table() -> Option<u64> {
    let reused = TABLE_POOL.lock().pop();
    match reused {
        Some(gpa) => {
            // SAFETY: the frame is ours (taken from the pool), a whole page in the physmap.
            unsafe { zero_in_guest(phys_to_virt(gpa).cast::<u64>()) };
            Some(gpa)
        }
        None => frame::alloc_table().inspect(|&gpa| frame::zero_new(gpa, 1)),
    }
}

/// Returns a page-table frame to [`TABLE_POOL`] (never to the general allocator).
fn free_table_frame(gpa: u64) {
    TABLE_POOL.lock().push(gpa);
}

/// Zeroes one 4 KiB page with the CPU's own stores (never a hypercall).
///
/// # Safety
/// `page` is a writable, 8-byte aligned 4 KiB page.
unsafe fn zero_in_guest(page: *mut u64) {
    // SAFETY: the caller guarantees 512 writable quadwords at `page`; DF is clear.
    unsafe {
        asm!("rep stosq", inout("rcx") 512usize => _, inout("rdi") page => _, in("rax") 0u64,
             options(nostack, preserves_flags));
    }
}

fn table(gpa: u64) -> *mut PageTable {
    phys_to_virt(gpa).cast()
}

/// Index of the first nonzero entry at or after `from` in the table at `gpa`; 512 if none.
///
/// One `repe scasq` instead of a loop iteration per entry: under software KVM, where ring 0
/// is emulated, scanning the 512 entries of each table at fork and exit was a large part of a
/// fork's cost; a string instruction is emulated far faster per element.
fn next_nonzero(gpa: u64, from: usize) -> usize {
    if from >= 512 {
        return 512;
    }
    let left: usize;
    // SAFETY: the table is a whole page-table page (512 entries) in guest RAM; the scan reads
    // entries `from..512` at most. DF is clear (the ABI; memmove restores it).
    unsafe {
        asm!("repe scasq", inout("rcx") 512 - from => left,
             inout("rdi") (table(gpa) as *const u64).add(from) => _, in("rax") 0u64,
             options(nostack, readonly));
    }
    // The scan stopped after comparing entry 511 - left: the first nonzero one, or the last
    // entry when all were zero.
    let last = 511 - left;
    // SAFETY: last < 512.
    if unsafe { (table(gpa) as *const u64).add(last).read() } != 0 { last } else { 512 }
}

/// The nonzero entries of the table at `gpa` from index `from` on: `(index, value)`.
fn entries(gpa: u64, from: usize) -> impl Iterator<Item = (usize, u64)> {
    let mut i = next_nonzero(gpa, from);
    core::iter::from_fn(move || {
        if i >= 512 {
            return None;
        }
        // SAFETY: i < 512, an entry of this page-table page.
        let v = unsafe { (table(gpa) as *const u64).add(i).read() };
        let at = i;
        i = next_nonzero(gpa, i + 1);
        Some((at, v))
    })
}

fn index(va: u64, level: u32) -> usize {
    ((va >> (12 + 9 * (level - 1))) & 511) as usize
}

impl PageTables {
    /// Allocates an empty PML4.
    pub fn new() -> Result<Self, NoMemory> {
        Ok(PageTables { root: alloc_table().ok_or(NoMemory)? })
    }

    /// A placeholder owning no memory (what a torn-down address space keeps).
    pub fn detached() -> Self {
        PageTables { root: u64::MAX }
    }

    /// GPA of the PML4 (the "CR3" H shadows).
    pub fn root(&self) -> u64 {
        self.root
    }

    /// Pointer to the level-1 entry of `va`; allocates missing tables when `create`.
    fn pte(&mut self, va: u64, create: bool) -> Result<Option<*mut u64>, NoMemory> {
        let mut t = self.root;
        for level in (2..=4).rev() {
            let i = index(va, level);
            // SAFETY: `t` is a page-table page owned by this address space (allocated by us),
            // inside guest RAM; entries are plain u64s.
            let e = unsafe { (table(t) as *mut u64).add(i) };
            // SAFETY: as above.
            let v = unsafe { e.read() };
            if v & F::PRESENT.bits() == 0 {
                if !create {
                    return Ok(None);
                }
                let n = alloc_table().ok_or(NoMemory)?;
                // SAFETY: as above.
                unsafe { e.write(n | TABLE_FLAGS.bits()) };
                t = n;
            } else {
                t = v & ADDR_MASK;
            }
        }
        // SAFETY: `t` is a level-1 table of this address space.
        Ok(Some(unsafe { (table(t) as *mut u64).add(index(va, 1)) }))
    }

    /// The present leaf mapping `va`, if any.
    pub fn translate(&self, va: u64) -> Option<Leaf> {
        let mut t = self.root;
        for level in (1..=4).rev() {
            // SAFETY: page-table pages of this space, inside guest RAM.
            let v = unsafe { (table(t) as *const u64).add(index(va, level)).read() };
            if v & F::PRESENT.bits() == 0 {
                return None;
            }
            if level == 1 {
                return Some(Leaf { gpa: v & ADDR_MASK, flags: F::from_bits_truncate(v & !ADDR_MASK) });
            }
            t = v & ADDR_MASK;
        }
        None
    }

    /// Maps `va` to frame `gpa` with `flags` (PRESENT is added). Returns the previous leaf if
    /// one was present (the caller must flush it).
    pub fn map(&mut self, va: u64, gpa: u64, flags: F) -> Result<Option<Leaf>, NoMemory> {
        let e = self.pte(va, true)?.ok_or(NoMemory)?;
        // SAFETY: e points into a level-1 table of this space.
        let old = unsafe { e.read() };
        // SAFETY: as above.
        unsafe { e.write((gpa & ADDR_MASK) | (flags | F::PRESENT).bits()) };
        Ok(leaf_of(old))
    }

    /// Removes the mapping of `va`, returning it if it was present.
    pub fn unmap(&mut self, va: u64) -> Option<Leaf> {
        let e = self.pte(va, false).ok()??;
        // SAFETY: e points into a level-1 table of this space.
        let old = unsafe { e.read() };
        // SAFETY: as above.
        unsafe { e.write(0) };
        leaf_of(old)
    }

    /// Replaces the permission flags of a present leaf (keeps A/D). Returns true if the entry
    /// was present and changed.
    pub fn protect(&mut self, va: u64, flags: F) -> bool {
        let Ok(Some(e)) = self.pte(va, false) else { return false };
        // SAFETY: e points into a level-1 table of this space.
        let old = unsafe { e.read() };
        if old & F::PRESENT.bits() == 0 {
            return false;
        }
        let new = with_flags(old, flags);
        // SAFETY: as above.
        unsafe { e.write(new) };
        new != old
    }

    /// Frees every page-table page (not the leaf frames: the VMA layer owns those).
    pub fn destroy(self) {
        if self.root != u64::MAX {
            free_table(self.root, 4);
        }
    }

    /// Copies the tables for `fork(2)`: the child gets every present leaf of this address
    /// space; writable leaves lose `WRITABLE` on both sides (copy-on-write), except leaves
    /// of shared mappings ([`SHARED_MAP`]), which stay writable and shared. Pushes the GPA of
    /// every leaf frame now referenced twice to `shared` (the caller adds an owner to each) and
    /// the parent's ranges whose present PTEs changed to `changed` (the caller flushes them).
    ///
    /// Writable leaves for which `eager(va)` holds are copied at once instead (the child gets
    /// a private writable copy, the parent keeps its page writable); their new frames are
    /// pushed to `copied`. On error the caller frees `copied`.
    pub fn fork(&mut self, eager: &dyn Fn(u64) -> bool, out: &mut ForkOut) -> Result<PageTables, NoMemory> {
        let root = fork_table(self.root, 4, 0, eager, out)?;
        Ok(PageTables { root })
    }

    /// Visits every present leaf in `[start, end)` (page aligned) in address order, walking
    /// the tables and skipping absent subtrees (an empty 1 GiB costs one entry read, not
    /// 262144 walks). `f(va, pte)` may rewrite the entry (0 removes it); the caller flushes.
    /// Page-table pages left empty are kept (freed with the address space).
    pub fn for_each_leaf(&mut self, start: u64, end: u64, f: &mut dyn FnMut(u64, &mut u64)) {
        if self.root != u64::MAX && start < end {
            walk_range(self.root, 4, 0, start, end, f);
        }
    }

    /// Number of present writable user leaves, counting up to `limit` (then stops).
    pub fn count_writable(&self, limit: usize) -> usize {
        count_table(self.root, 4, limit)
    }
}

/// What [`PageTables::fork`] reports back.
#[derive(Debug, Default)]
pub struct ForkOut {
    /// GPAs of leaf frames now referenced by both tables (each needs one more owner).
    pub shared: alloc::vec::Vec<u64>,
    /// Parent ranges `(va, len)` whose present PTEs lost `WRITABLE` (to flush).
    pub changed: alloc::vec::Vec<(u64, u64)>,
    /// Frames allocated for eager copies (the child's).
    pub copied: alloc::vec::Vec<u64>,
}

/// [`PageTables::for_each_leaf`] on the table at `gpa` of `level` covering VAs from `base`.
fn walk_range(gpa: u64, level: u32, base: u64, start: u64, end: u64, f: &mut dyn FnMut(u64, &mut u64)) {
    let span = 1u64 << (12 + 9 * (level - 1));
    let first = if start > base { ((start - base) / span) as usize } else { 0 };
    for (i, v) in entries(gpa, first) {
        let at = base + i as u64 * span;
        if at >= end {
            break;
        }
        if v & F::PRESENT.bits() == 0 {
            continue;
        }
        // SAFETY: `gpa` is a page-table page of this space (allocated by its PageTables),
        // inside guest RAM; `i < 512`.
        let e = unsafe { &mut *(table(gpa) as *mut u64).add(i) };
        if level > 1 {
            walk_range(*e & ADDR_MASK, level - 1, at, start, end, f);
        } else {
            f(at, e);
        }
    }
}

fn count_table(gpa: u64, level: u32, limit: usize) -> usize {
    let mut n = 0;
    for (_, v) in entries(gpa, 0) {
        if n >= limit {
            break;
        }
        if v & F::PRESENT.bits() == 0 {
            continue;
        }
        if level > 1 {
            n += count_table(v & ADDR_MASK, level - 1, limit - n);
        } else if v & (F::WRITABLE | F::USER_ACCESSIBLE).bits() == (F::WRITABLE | F::USER_ACCESSIBLE).bits() {
            n += 1;
        }
    }
    n
}

/// Copies the table at `gpa` (of `level`, covering VAs from `va`) for fork; see
/// [`PageTables::fork`]. Returns the child's table.
fn fork_table(gpa: u64, level: u32, va: u64, eager: &dyn Fn(u64) -> bool, out: &mut ForkOut) -> Result<u64, NoMemory> {
    let child = alloc_table().ok_or(NoMemory)?;
    let span = 1u64 << (12 + 9 * (level - 1));
    for (i, v) in entries(gpa, 0) {
        // SAFETY: `gpa` is a page-table page of the parent (allocated by its PageTables);
        // `child` was just allocated; both are guest RAM reached through the physmap.
        let (pe, ce) = unsafe { ((table(gpa) as *mut u64).add(i), (table(child) as *mut u64).add(i)) };
        if v & F::PRESENT.bits() == 0 {
            continue;
        }
        let at = va + i as u64 * span;
        if level > 1 {
            match fork_table(v & ADDR_MASK, level - 1, at, eager, out) {
                // SAFETY: as above.
                Ok(t) => unsafe { ce.write(t | (v & !ADDR_MASK)) },
                Err(e) => {
                    free_table(child, level);
                    return Err(e);
                }
            }
            continue;
        }
        let mut leaf = v;
        if v & F::WRITABLE.bits() != 0 && v & SHARED_MAP.bits() == 0 {
            if eager(at) {
                let Some(copy) = frame::alloc_user_run(1, 1) else {
                    free_table(child, level);
                    return Err(NoMemory);
                };
                // SAFETY: the parent's frame and the new one are whole guest pages.
                unsafe { core::ptr::copy_nonoverlapping(super::phys_to_virt(v & ADDR_MASK), super::phys_to_virt(copy), PAGE_SIZE as usize) };
                out.copied.push(copy);
                // SAFETY: as above.
                unsafe { ce.write(copy | (v & !ADDR_MASK)) };
                continue;
            }
            leaf &= !F::WRITABLE.bits();
            // SAFETY: as above.
            unsafe { pe.write(leaf) };
            match out.changed.last_mut() {
                Some(last) if last.0 + last.1 == at => last.1 += PAGE_SIZE,
                _ => out.changed.push((at, PAGE_SIZE)),
            }
        }
        // SAFETY: as above.
        unsafe { ce.write(leaf) };
        out.shared.push(v & ADDR_MASK);
    }
    Ok(child)
}

/// The present leaf entry `old` with its permission flags replaced by `flags` (frame and A/D
/// kept).
pub(crate) fn with_flags(old: u64, flags: F) -> u64 {
    let keep = old & (ADDR_MASK | F::ACCESSED.bits() | F::DIRTY.bits());
    keep | (flags | F::PRESENT).bits()
}

fn leaf_of(v: u64) -> Option<Leaf> {
    (v & F::PRESENT.bits() != 0).then(|| Leaf { gpa: v & ADDR_MASK, flags: F::from_bits_truncate(v & !ADDR_MASK) })
}

fn free_table(gpa: u64, level: u32) {
    if level > 1 {
        for (_, v) in entries(gpa, 0) {
            if v & F::PRESENT.bits() != 0 {
                free_table(v & ADDR_MASK, level - 1);
            }
        }
    }
    free_table_frame(gpa);
}

/// Leaf flags for Linux `PROT_*` bits (user pages; no PROT_READ-only distinction on x86).
///
/// Accessed is preset, and Dirty on writable pages: every user page here is anonymous or a
/// private copy, so nothing needs the hardware's dirty tracking, and a preset D lets H's
/// shadow map a whole run writable at the first fault instead of one page per write fault
/// (the shadow maps a page writable only when D is set; design section 6).
pub fn flags_for_prot(prot: u32) -> F {
    if prot & 7 == 0 {
        // PROT_NONE: keep the frame but deny every user access.
        return F::PRESENT | F::NO_EXECUTE;
    }
    let mut f = F::PRESENT | F::USER_ACCESSIBLE | F::ACCESSED;
    if prot & 2 != 0 {
        f |= F::WRITABLE | F::DIRTY;
    }
    if prot & 4 == 0 {
        f |= F::NO_EXECUTE;
    }
    f
}

/// Size of one page, bytes (re-exported for callers iterating ranges).
pub const PAGE: u64 = PAGE_SIZE;

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::boxed::Box;

    /// One page-table page: 512 entries, page aligned.
    #[repr(C, align(4096))]
    struct Page([u64; 512]);

    #[test]
    fn scan_finds_every_nonzero_entry() {
        let _physmap = super::super::PHYSMAP_TEST_LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut page = Box::new(Page([0; 512]));
        // A "physmap" whose GPA 0 is this page (the tests only touch GPA 0).
        super::super::set_physmap(page.0.as_ptr() as u64, 4096);
        assert_eq!(next_nonzero(0, 0), 512, "empty table");
        let set = [0usize, 1, 7, 255, 256, 510, 511];
        for &i in &set {
            page.0[i] = (i as u64 + 1) << 12 | 1;
        }
        let found: std::vec::Vec<usize> = entries(0, 0).map(|(i, _)| i).collect();
        assert_eq!(found, set);
        let from_8: std::vec::Vec<(usize, u64)> = entries(0, 8).collect();
        assert_eq!(from_8.first(), Some(&(255, 256 << 12 | 1)));
        assert_eq!(next_nonzero(0, 512), 512);
        page.0[511] = 0;
        assert_eq!(next_nonzero(0, 511), 512, "last entry zero");
        assert_eq!(next_nonzero(0, 510), 510);
    }
}
