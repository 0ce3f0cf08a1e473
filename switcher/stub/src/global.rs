//! Shared process-wide state of the stub (a `Sync` cell for statics) and the linker-script
//! symbols that bound the stub image.

use core::cell::UnsafeCell;

/// A static the stub writes once during single-threaded setup and reads afterwards.
pub struct Global<T>(UnsafeCell<T>);

// SAFETY: every Global is written only by the main thread before any other thread exists and
// read-only after that (documented at each use).
unsafe impl<T> Sync for Global<T> {}

impl<T> Global<T> {
    /// A new cell.
    pub const fn new(v: T) -> Self {
        Self(UnsafeCell::new(v))
    }
    /// Raw pointer to the value.
    pub const fn get(&self) -> *mut T {
        self.0.get()
    }
}

unsafe extern "C" {
    static __stub_text_start: u8;
    static __stub_text_end: u8;
    static __stub_rodata_end: u8;
    static __stub_end: u8;
}

/// Start of the stub text (== `STUB_BASE`).
pub fn text_start() -> u64 {
    (&raw const __stub_text_start) as u64
}
/// One past the stub text (page aligned).
pub fn text_end() -> u64 {
    (&raw const __stub_text_end) as u64
}
/// One past the read-only data (page aligned): the writable segment starts here.
pub fn rodata_end() -> u64 {
    (&raw const __stub_rodata_end) as u64
}
/// One past the stub image (page aligned).
pub fn image_end() -> u64 {
    (&raw const __stub_end) as u64
}

/// Whether `addr` lies inside the stub text.
#[inline(always)]
pub fn in_text(addr: u64) -> bool {
    addr >= text_start() && addr < text_end()
}
