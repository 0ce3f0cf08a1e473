//! The few machine instructions the guest kernel uses directly: the two host syscalls K may
//! make (`futex`, `exit`), `rdtsc`, `cpuid` and `pause`. No privileged instructions: on the
//! soft backend this code runs at host CPL 3 under a seccomp filter that kills on anything else.

use core::arch::asm;
use core::sync::atomic::AtomicU32;

/// Host `futex(2)` operation `FUTEX_WAIT` (shared, not `FUTEX_PRIVATE_FLAG`: the word lives in
/// a memfd mapped by other processes).
const FUTEX_WAIT: u64 = 0;
/// Host `futex(2)` operation `FUTEX_WAKE` (shared).
const FUTEX_WAKE: u64 = 1;
/// Host syscall number of `futex` (x86-64).
const SYS_FUTEX: u64 = 202;
/// Host syscall number of `exit` (x86-64).
const SYS_EXIT: u64 = 60;

/// Blocks while `*word == expected` (spurious wake-ups possible; callers loop).
pub fn futex_wait(word: &AtomicU32, expected: u32) {
    // SAFETY: futex(FUTEX_WAIT) only reads the word, which is a live AtomicU32; a null timeout
    // means wait forever. The syscall clobbers rcx and r11 as declared.
    unsafe {
        asm!("syscall", inlateout("rax") SYS_FUTEX => _, in("rdi") word.as_ptr(),
             in("rsi") FUTEX_WAIT, in("rdx") u64::from(expected), in("r10") 0u64,
             in("r8") 0u64, in("r9") 0u64, lateout("rcx") _, lateout("r11") _,
             options(nostack));
    }
}

/// Wakes up to `count` waiters of `word`.
pub fn futex_wake(word: &AtomicU32, count: u32) {
    // SAFETY: futex(FUTEX_WAKE) does not access the memory; rcx/r11 clobbered by syscall.
    unsafe {
        asm!("syscall", inlateout("rax") SYS_FUTEX => _, in("rdi") word.as_ptr(),
             in("rsi") FUTEX_WAKE, in("rdx") u64::from(count), lateout("rcx") _,
             lateout("r11") _, options(nostack));
    }
}

/// Ends this host thread (used only if the hypervisor fails to stop us after `SHUTDOWN`).
pub fn host_exit(code: i32) -> ! {
    loop {
        // SAFETY: exit(2) never returns; we loop in case of the impossible.
        unsafe {
            asm!("syscall", in("rax") SYS_EXIT, in("rdi") i64::from(code), lateout("rcx") _,
                 lateout("r11") _, options(nostack));
        }
    }
}

/// Reads the time-stamp counter.
pub fn rdtsc() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: rdtsc has no memory effects; allowed at CPL 3 on our hosts.
    unsafe { asm!("rdtsc", out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags)) };
    (u64::from(hi) << 32) | u64::from(lo)
}

/// `cpuid(leaf, subleaf)` → (eax, ebx, ecx, edx).
pub fn cpuid(leaf: u32, subleaf: u32) -> (u32, u32, u32, u32) {
    let r = core::arch::x86_64::__cpuid_count(leaf, subleaf);
    (r.eax, r.ebx, r.ecx, r.edx)
}

/// Spin-loop hint.
pub fn pause() {
    core::hint::spin_loop();
}
