//! User FPU/SIMD state on the `hw` platform: XSAVE/XRSTOR of every component the host enabled
//! in XCR0 when CR4.OSXSAVE is set (the guest CPUID offers XSAVE), FXSAVE/FXRSTOR otherwise.
//! The image lives in the vCPU's aligned buffer; threads keep copies (`UserContext::fpu`).
//! Formats: Intel SDM vol. 1, 10.5 (FXSAVE area) and 13.4 (XSAVE area).

use core::arch::asm;
use core::sync::atomic::{AtomicU32, Ordering};

/// Capacity of a vCPU's FPU buffer, bytes.
pub const FPU_MAX: usize = 8192;
/// Bytes of the FXSAVE image.
const FXSAVE_SIZE: u32 = 512;

/// Image size in use (0 until `init`): FXSAVE's 512 or CPUID.(EAX=0DH,ECX=0).EBX.
static SIZE: AtomicU32 = AtomicU32::new(0);
/// Whether XSAVE is in use.
static XSAVE: AtomicU32 = AtomicU32::new(0);

/// Chooses XSAVE or FXSAVE from CR4 and CPUID (idempotent; every vCPU calls it).
pub fn init() {
    let osxsave = super::cpu::read_cr4() & (1 << 18) != 0;
    let xsize = if osxsave { crate::arch::cpuid(0xd, 0).1 } else { 0 };
    if osxsave && xsize >= FXSAVE_SIZE + 64 && xsize as usize <= FPU_MAX {
        XSAVE.store(1, Ordering::Relaxed);
        SIZE.store(xsize, Ordering::Relaxed);
    } else {
        SIZE.store(FXSAVE_SIZE, Ordering::Relaxed);
    }
}

/// Size of an image, bytes.
pub fn size() -> usize {
    SIZE.load(Ordering::Relaxed) as usize
}

/// Saves the current FPU state into `buf` (64-byte aligned, `FPU_MAX` bytes).
pub fn save(buf: &mut [u8; FPU_MAX]) {
    let p = buf.as_mut_ptr();
    // SAFETY: `buf` is 64-byte aligned (it sits at a page offset in PerCpu) and large
    // enough; XSAVE with EDX:EAX = all ones saves every XCR0 component.
    unsafe {
        if XSAVE.load(Ordering::Relaxed) != 0 {
            asm!("xsave64 [{}]", in(reg) p, in("eax") u32::MAX, in("edx") u32::MAX, options(nostack, preserves_flags));
        } else {
            asm!("fxsave64 [{}]", in(reg) p, options(nostack, preserves_flags));
        }
    }
}

/// Loads the FPU state from `buf` (an image `save` produced, or `reset` wrote).
pub fn restore(buf: &[u8; FPU_MAX]) {
    let p = buf.as_ptr();
    // SAFETY: `buf` holds an image in the format in use (see `save` / `reset`); aligned.
    unsafe {
        if XSAVE.load(Ordering::Relaxed) != 0 {
            asm!("xrstor64 [{}]", in(reg) p, in("eax") u32::MAX, in("edx") u32::MAX, options(nostack, preserves_flags));
        } else {
            asm!("fxrstor64 [{}]", in(reg) p, options(nostack, preserves_flags));
        }
    }
}

/// Writes the architectural initial state into `buf` (x87 FCW 0x37f, MXCSR 0x1f80, all
/// registers zero; XSAVE header XSTATE_BV = 0 = every component in its initial state).
pub fn reset(buf: &mut [u8; FPU_MAX]) {
    let n = size().max(FXSAVE_SIZE as usize);
    buf[..n].fill(0);
    buf[0..2].copy_from_slice(&0x037fu16.to_le_bytes());
    buf[24..28].copy_from_slice(&0x1f80u32.to_le_bytes());
}
