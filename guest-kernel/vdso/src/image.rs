//! The exported functions of the vDSO image (`image` feature): `__vdso_clock_gettime`,
//! `__vdso_gettimeofday`, `__vdso_time`, `__vdso_clock_getres`, `__vdso_getcpu`, versioned
//! `LINUX_2.6` by vdso.map as glibc and musl look them up (Linux
//! arch/x86/entry/vdso/vdso.lds.S); vdso.lds adds the unprefixed aliases.
//!
//! Each reads the vvar page one page below the image's ELF header with `lfence; rdtsc`
//! inside the seqlock, and makes the real syscall for what it does not serve: clocks other
//! than REALTIME/MONOTONIC/MONOTONIC_RAW/BOOTTIME/TAI/*_COARSE, every clock when the kernel
//! published [`MODE_NONE`](crate::vvar::MODE_NONE) (TSC rate unknown), and `getcpu` (the
//! vCPU a thread runs on is known only to the guest kernel: under the soft backend the TSC_AUX
//! that `rdtscp` reads is the host's CPU number).
//!
//! Trust: the vDSO runs in the calling process with its privileges; it trusts the vvar page
//! (written only by the guest kernel) and the caller's pointers exactly as the C library
//! does (a bad pointer faults in the caller, as with Linux's vDSO).

use crate::vvar::{Params, Vvar, res_ns};
use core::arch::asm;

/// `struct timespec` (x86-64).
#[repr(C)]
pub struct Timespec {
    tv_sec: i64,
    tv_nsec: i64,
}

/// `struct timeval`.
#[repr(C)]
pub struct Timeval {
    tv_sec: i64,
    tv_usec: i64,
}

/// `struct timezone` (always zero, as the guest kernel's `gettimeofday`).
#[repr(C)]
pub struct Timezone {
    tz_minuteswest: i32,
    tz_dsttime: i32,
}

const NR_GETTIMEOFDAY: usize = 96;
const NR_TIME: usize = 201;
const NR_CLOCK_GETTIME: usize = 228;
const NR_CLOCK_GETRES: usize = 229;
const NR_GETCPU: usize = 309;

/// The vvar page: one page below this image's ELF header (vdso.lds, guest-kernel/src/vdso.rs).
fn vvar() -> &'static Vvar {
    let ehdr: usize;
    // SAFETY: `lea` only computes the address of the image's own ELF header (a hidden,
    // link-time-resolved symbol: no relocation, no memory access).
    unsafe { asm!("lea {}, [rip + __ehdr_start]", out(reg) ehdr, options(pure, nomem, nostack, preserves_flags)) };
    // SAFETY: the guest kernel maps the vvar page, read-only and never unmapped while this
    // image is mapped by the same exec, at `ehdr - VVAR_SIZE`; `Vvar` is plain atomics.
    unsafe { &*((ehdr - crate::vvar::VVAR_SIZE as usize) as *const Vvar) }
}

/// `lfence; rdtsc`: a TSC read not hoisted above the seqlock's loads (Linux `rdtsc_ordered`).
fn rdtsc_ordered() -> u64 {
    // SAFETY: lfence and rdtsc have no memory effects; rdtsc is allowed in ring 3 (CR4.TSD
    // clear on both backends).
    unsafe {
        core::arch::x86_64::_mm_lfence();
        core::arch::x86_64::_rdtsc()
    }
}

/// A two-argument syscall (the fallback path).
///
/// # Safety
/// The syscall's own contract: the kernel checks the arguments.
unsafe fn syscall2(nr: usize, a: usize, b: usize) -> isize {
    let ret: isize;
    // SAFETY: the syscall instruction clobbers only rax, rcx and r11 (declared).
    unsafe {
        asm!("syscall", inlateout("rax") nr as isize => ret, in("rdi") a, in("rsi") b,
             lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    ret
}

/// A three-argument syscall.
///
/// # Safety
/// As [`syscall2`].
unsafe fn syscall3(nr: usize, a: usize, b: usize, c: usize) -> isize {
    let ret: isize;
    // SAFETY: as in `syscall2`.
    unsafe {
        asm!("syscall", inlateout("rax") nr as isize => ret, in("rdi") a, in("rsi") b, in("rdx") c,
             lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    ret
}

/// `clock`'s value now, ns, or `None` when the vDSO does not serve it.
fn clock_now(clock: i32) -> Option<u64> {
    vvar().read_with(|p: &Params| p.clock_ns(clock, rdtsc_ordered()))
}

/// `clock_gettime(2)`.
///
/// # Safety
/// `ts` must be writable (as for the syscall; a bad pointer faults here).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __vdso_clock_gettime(clock: i32, ts: *mut Timespec) -> i32 {
    match clock_now(clock) {
        Some(ns) => {
            // SAFETY: the caller's pointer, as the C library passes it.
            unsafe {
                ts.write(Timespec { tv_sec: (ns / 1_000_000_000) as i64, tv_nsec: (ns % 1_000_000_000) as i64 });
            }
            0
        }
        // SAFETY: the kernel validates the arguments.
        None => unsafe { syscall2(NR_CLOCK_GETTIME, clock as isize as usize, ts as usize) as i32 },
    }
}

/// `gettimeofday(2)`.
///
/// # Safety
/// `tv` and `tz` must each be null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __vdso_gettimeofday(tv: *mut Timeval, tz: *mut Timezone) -> i32 {
    let Some(ns) = clock_now(crate::vvar::CLOCK_REALTIME) else {
        // SAFETY: the kernel validates the arguments.
        return unsafe { syscall2(NR_GETTIMEOFDAY, tv as usize, tz as usize) as i32 };
    };
    if !tv.is_null() {
        // SAFETY: non-null caller pointer.
        unsafe { tv.write(Timeval { tv_sec: (ns / 1_000_000_000) as i64, tv_usec: ((ns % 1_000_000_000) / 1000) as i64 }) };
    }
    if !tz.is_null() {
        // SAFETY: non-null caller pointer.
        unsafe { tz.write(Timezone { tz_minuteswest: 0, tz_dsttime: 0 }) };
    }
    0
}

/// `time(2)`.
///
/// # Safety
/// `t` must be null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __vdso_time(t: *mut i64) -> i64 {
    let Some(ns) = clock_now(crate::vvar::CLOCK_REALTIME) else {
        // SAFETY: the kernel validates the argument.
        return unsafe { syscall2(NR_TIME, t as usize, 0) as i64 };
    };
    let s = (ns / 1_000_000_000) as i64;
    if !t.is_null() {
        // SAFETY: non-null caller pointer.
        unsafe { t.write(s) };
    }
    s
}

/// `clock_getres(2)`.
///
/// # Safety
/// `res` must be null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __vdso_clock_getres(clock: i32, res: *mut Timespec) -> i32 {
    let served = vvar().read_with(|p: &Params| p.mode) == crate::vvar::MODE_TSC;
    match res_ns(clock) {
        Some(ns) if served => {
            if !res.is_null() {
                // SAFETY: non-null caller pointer.
                unsafe { res.write(Timespec { tv_sec: 0, tv_nsec: ns as i64 }) };
            }
            0
        }
        // SAFETY: the kernel validates the arguments.
        _ => unsafe { syscall2(NR_CLOCK_GETRES, clock as isize as usize, res as usize) as i32 },
    }
}

/// `getcpu(2)`: always the syscall (see the module comment).
///
/// # Safety
/// `cpu` and `node` must each be null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __vdso_getcpu(cpu: *mut u32, node: *mut u32, cache: usize) -> i32 {
    // SAFETY: the kernel validates the arguments.
    unsafe { syscall3(NR_GETCPU, cpu as usize, node as usize, cache) as i32 }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    // SAFETY: ud2 raises #UD (SIGILL in the caller); nothing above can panic (wrapping
    // arithmetic only), this is the required handler of a no_std image.
    unsafe { asm!("ud2", options(noreturn, nomem, nostack)) }
}
