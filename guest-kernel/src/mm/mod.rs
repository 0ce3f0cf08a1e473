//! Memory management: the physmap view of guest RAM, the frame allocator, x86-64 page tables,
//! VMAs, per-process address spaces, user-memory access and the kernel heap's frame source.

pub mod filecache;
pub mod frame;
pub mod pagecache;
pub mod paging;
pub mod pcp;
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

/// Host unit tests that point the physmap somewhere ([`set_physmap`] is process-wide) hold this
/// lock, so tests running in parallel do not see each other's guest memory.
#[cfg(test)]
pub(crate) static PHYSMAP_TEST_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[cfg(test)]
extern crate std;

/// Host unit tests: a 16 MiB guest RAM in host memory behind the physmap and the global frame
/// allocator over it (set up once; frame 0 is never handed out). Returns the guard of
/// [`PHYSMAP_TEST_LOCK`], held for the test.
#[cfg(test)]
pub(crate) fn test_ram() -> std::sync::MutexGuard<'static, ()> {
    use std::boxed::Box;
    use std::vec;
    #[repr(C, align(4096))]
    struct Page([u8; 4096]);
    const FRAMES_N: usize = 4096;
    static RAM: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let guard = PHYSMAP_TEST_LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let base = *RAM.get_or_init(|| {
        let ram: &'static mut [Page] = Box::leak((0..FRAMES_N).map(|_| Page([0; 4096])).collect::<std::vec::Vec<_>>().into_boxed_slice());
        let base = ram.as_mut_ptr() as usize;
        set_physmap(base as u64, (FRAMES_N as u64) * PAGE_SIZE);
        let bm: &'static mut [u64] = Box::leak(vec![0u64; FRAMES_N / 64].into_boxed_slice());
        let refs: &'static mut [u32] = Box::leak(vec![0u32; FRAMES_N].into_boxed_slice());
        let pr: &'static mut [u64] = Box::leak(vec![0u64; FRAMES_N / 64].into_boxed_slice());
        let mut fa = frame::FrameAllocator::new(0, FRAMES_N, bm, refs, pr);
        fa.release_initial(PAGE_SIZE, FRAMES_N - 1, true);
        frame::install(fa);
        base
    });
    set_physmap(base as u64, (FRAMES_N as u64) * PAGE_SIZE);
    guard
}
