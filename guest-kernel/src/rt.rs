//! Runtime symbols the precompiled `core`/`alloc` expect from a C library: `memcpy`, `memmove`,
//! `memset`, `memcmp`, `bcmp` (in inline assembly, so LLVM cannot lower them back into calls
//! to themselves), and the unwinding symbols that panic=abort never calls.
//! Only compiled into the freestanding image (not into host tests, where libc provides them).
//!
//! Shaped by software KVM (`kvm_pvm`), where ring 0 runs in KVM's instruction emulator:
//! measured there (2000 copies, wall time), a plain instruction costs about 1 us, a `rep`
//! string instruction about 30 us before its first iteration and 1.1 us per quadword, and a
//! `COPY_MEM` hypercall about 170 us whatever the size. So: quadword strings for the bulk,
//! plain loops for short copies and tails, and copies of guest RAM from
//! `BootInfo::bulk_mem_min` bytes up handed to H ([`BULK_MEM_MIN`]). On hardware all of
//! these forms are fast.

use core::arch::asm;
use core::sync::atomic::{AtomicU64, Ordering};

use guest_abi::hypercall::Hypercall;

/// Smallest `memcpy`/`memmove`/`memset` handed to H as `COPY_MEM`/`ZERO_MEM`
/// (`BootInfo::bulk_mem_min`, set once at boot); 0 = never, the default until then.
pub static BULK_MEM_MIN: AtomicU64 = AtomicU64::new(0);

/// The GPA of `[va, va + n)` when the whole range is guest RAM reached through the physmap or
/// the kernel image (one contiguous GPA range), and `n` is at least [`BULK_MEM_MIN`].
fn bulk_gpa(va: usize, n: usize) -> Option<u64> {
    let min = BULK_MEM_MIN.load(Ordering::Relaxed);
    if min == 0 || (n as u64) < min {
        return None;
    }
    let first = crate::mm::kva_to_gpa(va as u64)?;
    let last = crate::mm::kva_to_gpa(va.checked_add(n - 1)? as u64)?;
    (last.checked_sub(first) == Some(n as u64 - 1)).then_some(first)
}

/// `COPY_MEM` when both ranges qualify ([`bulk_gpa`]) and H accepts; false = copy here.
fn bulk_copy(dst: *mut u8, src: *const u8, n: usize) -> bool {
    match (bulk_gpa(dst as usize, n), bulk_gpa(src as usize, n)) {
        (Some(d), Some(s)) => crate::hcall::call(Hypercall::CopyMem, [d, s, n as u64, 0]) == 0,
        _ => false,
    }
}

/// Copies `n` bytes forwards from `src` to `dst`: quadwords with `rep movsq` when there are
/// at least 8 of them, else with a plain loop, then the last `n % 8` bytes with a loop.
///
/// Under software KVM each `rep` instruction costs about 30 us of emulation before its first
/// iteration, a plain instruction about 1 us (measured on `kvm_pvm`), so short copies (most
/// struct copies) avoid it; on hardware both forms are fast at these sizes.
///
/// # Safety
/// `n` bytes readable at `src`, writable at `dst`, no overlap that a forward copy would break.
unsafe fn copy_forward(dst: *mut u8, src: *const u8, n: usize) {
    // SAFETY: the caller guarantees the ranges; RCX/RAX are scratch, RSI/RDI advance.
    unsafe {
        asm!(
            "mov rcx, {q}",
            "cmp rcx, 8",
            "jb 2f",
            "rep movsq",
            "jmp 3f",
            "2:",
            "test rcx, rcx",
            "jz 3f",
            "4:",
            "mov rax, [rsi]",
            "mov [rdi], rax",
            "add rsi, 8",
            "add rdi, 8",
            "dec rcx",
            "jnz 4b",
            "3:",
            "mov rcx, {t}",
            "test rcx, rcx",
            "jz 5f",
            "6:",
            "mov al, [rsi]",
            "mov [rdi], al",
            "inc rsi",
            "inc rdi",
            "dec rcx",
            "jnz 6b",
            "5:",
            q = in(reg) n / 8,
            t = in(reg) n % 8,
            inout("rdi") dst => _,
            inout("rsi") src => _,
            out("rcx") _,
            out("rax") _,
            options(nostack),
        );
    }
}

/// `memcpy(3)`.
///
/// # Safety
/// Standard C contract: `n` bytes readable at `src`, writable at `dst`, no overlap.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if bulk_copy(dst, src, n) {
        return dst;
    }
    // SAFETY: the caller guarantees the C contract.
    unsafe { copy_forward(dst, src, n) };
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
    } else if bulk_copy(dst, src, n) {
        // H copied with memmove semantics.
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

/// `memset(3)`: like [`copy_forward`], `rep stosq` only for 8 quadwords or more.
///
/// # Safety
/// Standard C contract: `n` bytes writable at `dst`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memset(dst: *mut u8, c: i32, n: usize) -> *mut u8 {
    if c as u8 == 0
        && let Some(gpa) = bulk_gpa(dst as usize, n)
        && crate::hcall::call(Hypercall::ZeroMem, [gpa, n as u64, 0, 0]) == 0
    {
        return dst;
    }
    // The byte replicated into all eight bytes of RAX.
    let pattern = u64::from(c as u8) * 0x0101_0101_0101_0101;
    // SAFETY: the caller guarantees n writable bytes at dst; RCX is scratch, RDI advances,
    // AL (the low byte of the pattern) is the byte.
    unsafe {
        asm!(
            "mov rcx, {q}",
            "cmp rcx, 8",
            "jb 2f",
            "rep stosq",
            "jmp 3f",
            "2:",
            "test rcx, rcx",
            "jz 3f",
            "4:",
            "mov [rdi], rax",
            "add rdi, 8",
            "dec rcx",
            "jnz 4b",
            "3:",
            "mov rcx, {t}",
            "test rcx, rcx",
            "jz 5f",
            "6:",
            "mov [rdi], al",
            "inc rdi",
            "dec rcx",
            "jnz 6b",
            "5:",
            q = in(reg) n / 8,
            t = in(reg) n % 8,
            inout("rdi") dst => _,
            in("rax") pattern,
            out("rcx") _,
            options(nostack),
        );
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
