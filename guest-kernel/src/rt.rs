//! Runtime symbols the precompiled `core`/`alloc` expect from a C library: `memcpy`, `memmove`,
//! `memset`, `memcmp`, `bcmp` (with `rep movsq`/`rep stosq` for the bulk and `rep movsb`/`rep stosb`
//! for the tail, so LLVM cannot lower them back into calls to themselves), and the unwinding
//! symbols that panic=abort never calls.
//!
//! Quadword strings matter under software KVM (`kvm_pvm`), where ring 0 runs in KVM's
//! instruction emulator and every string iteration is emulated: 8 bytes an iteration instead of
//! one made page copies and zeroing about 8 times faster there (measured with
//! `PVM_KVM_PROFILE`); on hardware `rep movsq` and ERMS `rep movsb` run at the same speed.
//! Only compiled into the freestanding image (not into host tests, where libc provides them).

use core::arch::asm;

/// `memcpy(3)`.
///
/// # Safety
/// Standard C contract: `n` bytes readable at `src`, writable at `dst`, no overlap.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller guarantees the C contract; rep movsq copies n/8 quadwords forwards,
    // then rep movsb the remaining n%8 bytes from where it stopped (RSI/RDI advanced).
    unsafe {
        asm!("rep movsq", "mov rcx, {tail}", "rep movsb", tail = in(reg) n % 8,
             inout("rcx") n / 8 => _, inout("rdi") dst => _, inout("rsi") src => _,
             options(nostack, preserves_flags));
    }
    dst
}

/// `memmove(3)`: handles overlap by copying backwards when `dst > src`.
///
/// # Safety
/// Standard C contract: `n` bytes readable at `src`, writable at `dst`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dst as usize) <= (src as usize) || (dst as usize) >= (src as usize).wrapping_add(n) {
        // SAFETY: forward copy is correct when dst is below src or the ranges do not overlap.
        unsafe { memcpy(dst, src, n) };
    } else if n > 0 {
        // SAFETY: backwards rep movsb (DF=1) from the last byte; DF cleared again after.
        unsafe {
            asm!("std", "rep movsb", "cld", inout("rcx") n => _,
                 inout("rdi") dst.add(n - 1) => _, inout("rsi") src.add(n - 1) => _,
                 options(nostack));
        }
    }
    dst
}

/// `memset(3)`.
///
/// # Safety
/// Standard C contract: `n` bytes writable at `dst`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memset(dst: *mut u8, c: i32, n: usize) -> *mut u8 {
    // The byte replicated into all eight bytes of RAX.
    let pattern = u64::from(c as u8) * 0x0101_0101_0101_0101;
    // SAFETY: the caller guarantees n writable bytes at dst; rep stosq writes n/8 quadwords,
    // rep stosb the remaining n%8 bytes (AL is the byte) from where it stopped.
    unsafe {
        asm!("rep stosq", "mov rcx, {tail}", "rep stosb", tail = in(reg) n % 8,
             inout("rcx") n / 8 => _, inout("rdi") dst => _, in("rax") pattern,
             options(nostack, preserves_flags));
    }
    dst
}

/// `memcmp(3)`.
///
/// # Safety
/// Standard C contract: `n` bytes readable at both pointers.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    let mut i = 0;
    while i < n {
        // SAFETY: i < n and the caller guarantees n readable bytes at both pointers.
        let (x, y) = unsafe { (core::ptr::read_volatile(a.add(i)), core::ptr::read_volatile(b.add(i))) };
        if x != y {
            return i32::from(x) - i32::from(y);
        }
        i += 1;
    }
    0
}

/// `bcmp(3)`: zero when equal.
///
/// # Safety
/// Standard C contract: `n` bytes readable at both pointers.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: same contract as memcmp.
    unsafe { memcmp(a, b, n) }
}

/// Never called with panic=abort; the precompiled `alloc` references it from landing pads.
#[unsafe(no_mangle)]
pub extern "C" fn _Unwind_Resume() -> ! {
    crate::log::fatal("_Unwind_Resume called")
}

/// Never called with panic=abort; referenced by the precompiled `alloc`.
#[unsafe(no_mangle)]
pub extern "C" fn rust_eh_personality() {}
