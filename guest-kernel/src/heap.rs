//! The kernel heap: `talc` over spans of guest RAM taken from the frame allocator on demand
//! (the in-memory filesystem lives here too, so the heap grows with it).
//!
//! Heap spans are [`crate::mm::frame::Class::Kernel`] allocations: they may use the kernel
//! reserve that user memory cannot take, so kernel data structures can still grow when a
//! guest has filled its memory (and the OOM killer is about to free some). Growth the guest
//! drives with file data asks [`user_may_grow`] first (the filesystem's room check), which
//! counts only heap space and frames outside the reserve.

use crate::mm::{frame, phys_to_virt, PAGE_SIZE};
use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicU64, Ordering};
use talc::{OomHandler, Span, Talc, Talck};

/// Bytes of guest RAM handed to the heap so far.
pub static HEAP_BYTES: AtomicU64 = AtomicU64::new(0);
/// Bytes currently allocated from the heap (requested sizes, without talc's overhead).
static IN_USE: AtomicU64 = AtomicU64::new(0);

/// Smallest span the heap takes from the frame allocator at once, bytes.
const MIN_GROW: u64 = 1 << 20;
/// Heap bytes [`user_may_grow`] leaves to the kernel (talc overhead and fragmentation).
const KERNEL_SLACK: u64 = 1 << 20;

/// Out-of-memory handler: claims a new span of frames.
pub struct FrameSource;

impl OomHandler for FrameSource {
    fn handle_oom(talc: &mut Talc<Self>, layout: Layout) -> Result<(), ()> {
        let need = (layout.size() as u64).saturating_add(layout.align() as u64 + 4096);
        // A large span when possible; when memory is short or fragmented, just what this
        // allocation needs.
        let frames = [need.max(MIN_GROW).div_ceil(PAGE_SIZE) as usize, need.div_ceil(PAGE_SIZE) as usize];
        let (gpa, frames) = frames.into_iter().find_map(|n| frame::alloc_run(n, 1).map(|g| (g, n))).ok_or(())?;
        let base = phys_to_virt(gpa);
        let len = frames as u64 * PAGE_SIZE;
        // SAFETY: the frames were just allocated for the heap and are never freed; the span
        // lies inside the physmap.
        unsafe { talc.claim(Span::from_base_size(base, len as usize))? };
        HEAP_BYTES.fetch_add(len, Ordering::Relaxed);
        Ok(())
    }
}

/// Heap bytes claimed but not allocated (an estimate: talc's own overhead is not counted).
pub fn free_bytes() -> u64 {
    HEAP_BYTES.load(Ordering::Relaxed).saturating_sub(IN_USE.load(Ordering::Relaxed))
}

/// True when the heap may grow by `bytes` on behalf of user data (file pages) without
/// touching the kernel reserve: free heap space beyond [`KERNEL_SLACK`] plus the frames user
/// memory may still take.
pub fn user_may_grow(bytes: u64) -> bool {
    if cfg!(test) {
        // Host unit tests: no kernel heap or frame allocator, the host's allocator instead.
        return true;
    }
    let frames = frame::user_headroom() as u64 * PAGE_SIZE;
    bytes <= free_bytes().saturating_sub(KERNEL_SLACK).saturating_add(frames)
}

/// The global allocator type (a spin-locked `talc`).
pub struct KernelHeap(Talck<spin::Mutex<()>, FrameSource>);

impl KernelHeap {
    /// An empty heap; it claims memory on first use (after the frame allocator is set up).
    pub const fn new() -> Self {
        KernelHeap(Talc::new(FrameSource).lock())
    }
}

impl Default for KernelHeap {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: delegates to talc's GlobalAlloc implementation, which is sound for a locked Talc;
// the counters are statistics only.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        let p = unsafe { self.0.alloc(layout) };
        if !p.is_null() {
            IN_USE.fetch_add(layout.size() as u64, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        IN_USE.fetch_sub(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: forwarded contract.
        unsafe { self.0.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded contract.
        let p = unsafe { self.0.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            IN_USE.fetch_add(new_size as u64, Ordering::Relaxed);
            IN_USE.fetch_sub(layout.size() as u64, Ordering::Relaxed);
        }
        p
    }
}
