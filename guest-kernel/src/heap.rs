//! The kernel heap: `talc` over spans of guest RAM taken from the frame allocator on demand
//! (the in-memory filesystem lives here too, so the heap grows with it).

use crate::mm::{frame, phys_to_virt, PAGE_SIZE};
use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicU64, Ordering};
use talc::{OomHandler, Span, Talc, Talck};

/// Bytes of guest RAM handed to the heap so far.
pub static HEAP_BYTES: AtomicU64 = AtomicU64::new(0);

/// Smallest span the heap takes from the frame allocator at once, bytes.
const MIN_GROW: u64 = 1 << 20;

/// Out-of-memory handler: claims a new span of frames.
pub struct FrameSource;

impl OomHandler for FrameSource {
    fn handle_oom(talc: &mut Talc<Self>, layout: Layout) -> Result<(), ()> {
        let want = (layout.size() as u64 + layout.align() as u64 + 4096).max(MIN_GROW);
        let frames = want.div_ceil(PAGE_SIZE) as usize;
        let gpa = frame::alloc_run(frames, 1).ok_or(())?;
        let base = phys_to_virt(gpa);
        let len = frames as u64 * PAGE_SIZE;
        // SAFETY: the frames were just allocated for the heap and are never freed; the span
        // lies inside the physmap.
        unsafe { talc.claim(Span::from_base_size(base, len as usize))? };
        HEAP_BYTES.fetch_add(len, Ordering::Relaxed);
        Ok(())
    }
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

// SAFETY: delegates to talc's GlobalAlloc implementation, which is sound for a locked Talc.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        unsafe { self.0.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract.
        unsafe { self.0.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded contract.
        unsafe { self.0.realloc(ptr, layout, new_size) }
    }
}
