//! Address spaces on the `hw` platform: each vCPU runs on its own PML4 page whose kernel half
//! (physmap, kernel image) is the host-built one, shared and supervisor-only, and whose user
//! half (`USER_START .. USER_END`, PML4 entries `0 .. USER_SLOTS`) is a copy of the entries
//! of the guest root it runs. Lower tables are the guest's own, so the MMU walks them
//! directly (no shadow): only the top-level copy can go stale, and the MMU hypercalls of the
//! ABI keep it fresh exactly where the soft backend keeps its shadow fresh:
//! `FLUSH_TLB*` re-copy the entries of the range and invalidate the TLB, `PREFAULT` and
//! `SHADOW_FAULT` re-copy the entries of the range, `RELEASE_PGTBL` forgets the root.
//! Other vCPUs notice a change through a generation counter at their next entry to user
//! code (with one vCPU, nothing is shared).

use core::sync::atomic::{AtomicU64, Ordering};

use super::cpu::{invlpg, write_cr3};
use super::PerCpu;
use crate::mm::phys_to_virt;
use guest_abi::layout::USER_END;

/// PML4 entries of user space.
pub const USER_SLOTS: usize = (USER_END >> 39) as usize;
/// Ranges longer than this many pages are flushed by reloading CR3.
const INVLPG_MAX: u64 = 32;

/// Bumped whenever another vCPU's copy may be stale.
static GEN: AtomicU64 = AtomicU64::new(1);

fn entries(root: u64) -> *const u64 {
    phys_to_virt(root).cast::<u64>()
}

fn pml4_gpa(c: &PerCpu) -> u64 {
    crate::mm::kva_to_gpa(c.pml4.as_ptr() as u64).unwrap_or(0)
}

/// Copies the host's kernel-half entries from the boot CR3 into `c`'s PML4.
pub fn init(c: &mut PerCpu) {
    let boot = entries(super::cpu::read_cr3() & 0x000f_ffff_ffff_f000);
    for i in USER_SLOTS..512 {
        // SAFETY: the boot PML4 is a page in the host's area, inside the physmap.
        c.pml4[i] = unsafe { boot.add(i).read_volatile() };
    }
    c.root = u64::MAX;
}

fn copy(c: &mut PerCpu, root: u64, from: usize, to: usize) {
    let src = entries(root);
    for i in from..to.min(USER_SLOTS) {
        // SAFETY: `root` is a live page-table root of the guest (the caller's SpaceRef),
        // a page inside guest RAM.
        c.pml4[i] = unsafe { src.add(i).read_volatile() };
    }
}

/// Makes `c` run address space `root`: re-copies the user half and loads CR3 if it ran
/// another root or may be stale.
pub fn switch_to(c: &mut PerCpu, root: u64) {
    let current = GEN.load(Ordering::Acquire);
    if c.root == root && c.generation == current {
        return;
    }
    copy(c, root, 0, USER_SLOTS);
    c.root = root;
    c.generation = current;
    // SAFETY: the PML4 keeps the kernel half of the boot tables.
    unsafe { write_cr3(pml4_gpa(c)) };
}

fn slots(gva: u64, len: u64) -> (usize, usize) {
    let end = gva.saturating_add(len.max(1)).min(USER_END);
    ((gva.min(USER_END) >> 39) as usize, (end.saturating_sub(1) >> 39) as usize + 1)
}

fn others_may_be_stale() {
    if crate::boot::vcpus() > 1 {
        GEN.fetch_add(1, Ordering::AcqRel);
    }
}

/// The guest may have added PML4 entries for `gva .. gva+len` of `root`.
pub fn sync(c: &mut PerCpu, root: u64, gva: u64, len: u64) {
    if c.root == root {
        let (a, b) = slots(gva, len);
        copy(c, root, a, b);
    }
}

/// `FLUSH_TLB(root, gva, len)`.
pub fn flush(c: &mut PerCpu, root: u64, gva: u64, len: u64) {
    others_may_be_stale();
    if c.root != root {
        return;
    }
    let (a, b) = slots(gva, len);
    copy(c, root, a, b);
    let pages = len.div_ceil(guest_abi::PAGE_SIZE);
    if pages > INVLPG_MAX {
        // SAFETY: reloading the same PML4.
        unsafe { write_cr3(pml4_gpa(c)) };
    } else {
        let start = gva & !(guest_abi::PAGE_SIZE - 1);
        for p in 0..pages.max(1) {
            invlpg(start + p * guest_abi::PAGE_SIZE);
        }
    }
}

/// `FLUSH_TLB_ALL(root)`.
pub fn flush_all(c: &mut PerCpu, root: u64) {
    others_may_be_stale();
    if c.root == root {
        c.root = u64::MAX;
        switch_to(c, root);
    }
}

/// `RELEASE_PGTBL(root)`: the root's frame may be reused for another address space.
pub fn release(c: &mut PerCpu, root: u64) {
    GEN.fetch_add(1, Ordering::AcqRel);
    if c.root == root {
        c.root = u64::MAX;
    }
}
