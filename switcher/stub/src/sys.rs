//! Raw Linux x86-64 system calls (inline `syscall`), the constants the stub uses, and the
//! kernel structures it passes (`man 2 syscall`, `arch/x86/entry/syscalls/syscall_64.tbl`).

use core::arch::asm;

pub const NR_MMAP: u64 = 9;
pub const NR_MPROTECT: u64 = 10;
pub const NR_MUNMAP: u64 = 11;
pub const NR_RT_SIGACTION: u64 = 13;
pub const NR_RT_SIGPROCMASK: u64 = 14;
pub const NR_PRCTL: u64 = 157;
pub const NR_GETTID: u64 = 186;
pub const NR_FUTEX: u64 = 202;
pub const NR_EXIT_GROUP: u64 = 231;
pub const NR_SIGALTSTACK: u64 = 131;
pub const NR_SECCOMP: u64 = 317;
pub const NR_CLOSE_RANGE: u64 = 436;
pub const NR_MSEAL: u64 = 462;

pub const PROT_NONE: u64 = 0;
pub const PROT_READ: u64 = 1;
pub const PROT_WRITE: u64 = 2;
pub const MAP_SHARED: u64 = 0x01;
pub const MAP_PRIVATE: u64 = 0x02;
pub const MAP_ANONYMOUS: u64 = 0x20;
pub const MAP_NORESERVE: u64 = 0x4000;
pub const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;

pub const FUTEX_WAIT: u64 = 0;
pub const FUTEX_WAKE: u64 = 1;

pub const PR_SET_DUMPABLE: u64 = 4;
pub const PR_SET_NAME: u64 = 15;
pub const PR_SET_NO_NEW_PRIVS: u64 = 38;

pub const SECCOMP_SET_MODE_FILTER: u64 = 1;

pub const SIG_SETMASK: u64 = 2;
pub const SIGILL: i32 = 4;
pub const SIGTRAP: i32 = 5;
pub const SIGBUS: i32 = 7;
pub const SIGFPE: i32 = 8;
pub const SIGSEGV: i32 = 11;
pub const SIGSYS: i32 = 31;

pub const SA_SIGINFO: u64 = 0x4;
pub const SA_ONSTACK: u64 = 0x0800_0000;
pub const SA_RESTORER: u64 = 0x0400_0000;
pub const SA_NODEFER: u64 = 0x4000_0000;

pub const ENOSYS: i64 = 38;

/// `CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM`: a
/// thread of this process (`man 2 clone`).
pub const CLONE_THREAD_FLAGS: u64 = 0x100 | 0x200 | 0x400 | 0x800 | 0x1_0000 | 0x4_0000;

/// Kernel `struct sigaction` for `rt_sigaction` on x86-64 (`arch/x86/include/uapi/asm/signal.h`).
#[repr(C)]
pub struct KernelSigaction {
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: u64,
}

/// `stack_t` (`man 2 sigaltstack`).
#[repr(C)]
pub struct StackT {
    pub sp: u64,
    pub flags: i32,
    pub pad: i32,
    pub size: u64,
}

/// `struct sock_fprog` (`linux/filter.h`).
#[repr(C)]
pub struct SockFprog {
    pub len: u16,
    pub filter: *const guest_abi::stub::SockFilter,
}

/// `syscall(nr, a0..a5)`; returns the raw result (`-errno` on failure).
///
/// # Safety
/// The caller guarantees the system call's memory arguments are valid for it.
#[inline(always)]
pub unsafe fn syscall6(nr: u64, a0: u64, a1: u64, a2: u64, a3: u64, a4: u64, a5: u64) -> i64 {
    let ret: i64;
    // SAFETY: the caller vouches for the arguments; `syscall` clobbers rcx and r11 only.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") nr as i64 => ret,
            in("rdi") a0,
            in("rsi") a1,
            in("rdx") a2,
            in("r10") a3,
            in("r8") a4,
            in("r9") a5,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// Three-argument shorthand for [`syscall6`].
///
/// # Safety
/// As [`syscall6`].
#[inline(always)]
pub unsafe fn syscall3(nr: u64, a0: u64, a1: u64, a2: u64) -> i64 {
    // SAFETY: forwarded contract.
    unsafe { syscall6(nr, a0, a1, a2, 0, 0, 0) }
}

/// `exit_group(code)`.
pub fn exit_group(code: i32) -> ! {
    // SAFETY: exit_group takes no memory argument. If a filter forbids it, the stub dies by
    // the resulting signal (ud2 below if it ever returns).
    unsafe {
        syscall3(NR_EXIT_GROUP, code as u64, 0, 0);
        asm!("ud2", options(noreturn));
    }
}

/// `mmap`; returns the address or `-errno`.
///
/// # Safety
/// The mapping must not replace memory the stub still uses.
pub unsafe fn mmap(addr: u64, len: u64, prot: u64, flags: u64, fd: i32, off: u64) -> i64 {
    // SAFETY: forwarded contract.
    unsafe { syscall6(NR_MMAP, addr, len, prot, flags, fd as i64 as u64, off) }
}

/// `gettid()`.
pub fn gettid() -> i32 {
    // SAFETY: no arguments.
    unsafe { syscall3(NR_GETTID, 0, 0, 0) as i32 }
}

/// Shared (not private) `FUTEX_WAIT` on `word` while it holds `val`, no timeout.
pub fn futex_wait(word: &core::sync::atomic::AtomicU32, val: u32) {
    // SAFETY: `word` is a valid, aligned u32 for the duration of the call.
    unsafe {
        syscall6(NR_FUTEX, word.as_ptr() as u64, FUTEX_WAIT, val as u64, 0, 0, 0);
    }
}

/// Shared `FUTEX_WAKE` of every waiter on `word`.
pub fn futex_wake(word: &core::sync::atomic::AtomicU32) {
    // SAFETY: `word` is a valid, aligned u32.
    unsafe {
        syscall6(NR_FUTEX, word.as_ptr() as u64, FUTEX_WAKE, i32::MAX as u64, 0, 0, 0);
    }
}

/// `rt_sigprocmask(SIG_SETMASK, &mask, NULL)`.
pub fn set_sigmask(mask: u64) -> i64 {
    // SAFETY: `mask` lives on the stack for the call; size 8 is the kernel sigset size.
    unsafe { syscall6(NR_RT_SIGPROCMASK, SIG_SETMASK, (&raw const mask) as u64, 0, 8, 0, 0) }
}

/// Bit of signal `sig` in a kernel sigset.
pub const fn sigbit(sig: i32) -> u64 {
    1u64 << (sig - 1)
}

/// Installs a seccomp filter on the calling thread; returns 0 or `-errno`.
pub fn install_filter(prog: &[guest_abi::stub::SockFilter]) -> i64 {
    let fprog = SockFprog { len: prog.len() as u16, filter: prog.as_ptr() };
    // SAFETY: `fprog` and the program it points to are valid for the call; the kernel copies
    // the program.
    unsafe { syscall3(NR_SECCOMP, SECCOMP_SET_MODE_FILTER, 0, (&raw const fprog) as u64) }
}
