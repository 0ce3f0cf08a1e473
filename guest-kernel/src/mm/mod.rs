//! Memory management: the physmap view of guest RAM, the frame allocator, x86-64 page tables,
//! VMAs, per-process address spaces, user-memory access and the kernel heap's frame source.

pub mod filecache;
pub mod frame;
pub mod pagecache;
pub mod paging;
pub mod space;
pub mod uaccess;
pub mod vma;

use core::sync::atomic::{AtomicU64, Ordering};
use guest_abi::layout::{KERNEL_BASE, KERNEL_GPA, PHYSMAP_BASE};
pub use guest_abi::PAGE_SIZE;

/// Virtual address of GPA 0 (PHYSMAP_BASE in the kernel; a test buffer in host unit tests).
static PHYS_OFFSET: AtomicU64 = AtomicU64::new(PHYSMAP_BASE);
/// Guest RAM size, bytes (bounds of the physmap).
static MEM_SIZE: AtomicU64 = AtomicU64::new(0);

/// Sets where guest-physical memory is visible and how large it is.
pub fn set_physmap(offset: u64, mem_size: u64) {
    PHYS_OFFSET.store(offset, Ordering::Relaxed);
    MEM_SIZE.store(mem_size, Ordering::Relaxed);
}

/// Kernel pointer to guest-physical address `gpa` (through the physmap).
pub fn phys_to_virt(gpa: u64) -> *mut u8 {
    (PHYS_OFFSET.load(Ordering::Relaxed) + gpa) as *mut u8
}

/// Guest RAM size, bytes.
pub fn mem_size() -> u64 {
    MEM_SIZE.load(Ordering::Relaxed)
}

/// GPA of a kernel virtual address in the physmap or the kernel image; `None` otherwise
/// (e.g. a stack address: the stub's stacks are host memory, not guest RAM).
pub fn kva_to_gpa(va: u64) -> Option<u64> {
    let off = PHYS_OFFSET.load(Ordering::Relaxed);
    if va >= off && va - off < mem_size() {
        return Some(va - off);
    }
    if (KERNEL_BASE..KERNEL_BASE + (1 << 30)).contains(&va) {
        return Some(KERNEL_GPA + (va - KERNEL_BASE));
    }
    None
}

/// Rounds `x` up to a multiple of the page size (saturating at the top page).
pub const fn page_up(x: u64) -> u64 {
    match x.checked_add(PAGE_SIZE - 1) {
        Some(v) => v & !(PAGE_SIZE - 1),
        None => !(PAGE_SIZE - 1),
    }
}

/// Rounds `x` down to a multiple of the page size.
pub const fn page_down(x: u64) -> u64 {
    x & !(PAGE_SIZE - 1)
}

/// Zeroes `len` bytes of guest memory at `gpa`.
pub fn zero_phys(gpa: u64, len: u64) {
    // SAFETY: callers pass frames they own (just allocated), inside guest RAM.
    unsafe { core::ptr::write_bytes(phys_to_virt(gpa), 0, len as usize) };
}
