//! The pvm switcher stub: a tiny static executable, linked at `guest_abi::layout::STUB_BASE`,
//! that H spawns as each K (guest-kernel sandbox) and U (guest address space) process.
//! It reads its setup record ([`guest_abi::stub::SetupRecord`]), maps what it says, drops
//! every fd it does not need, starts its threads, installs the per-thread seccomp filters H
//! built and then either runs the guest kernel (role K, [`kernel`]) or hands guest user
//! contexts back and forth with K through the PVCS (role U, [`space`], [`handler`]).
//! Design: shared/design/architecture.md sections 3-5; docs/ARCHITECTURE.md.
#![no_std]
#![no_main]

mod fpu;
mod global;
mod handler;
mod kernel;
mod mapper;
mod mem;
mod setup;
mod space;
mod sys;
mod thread;

use core::panic::PanicInfo;
use guest_abi::stub::{StubExit, StubRole};

core::arch::global_asm!(
    ".section .text._start,\"ax\",@progbits",
    ".global _start",
    "_start:",
    "mov rdi, rsp",
    "and rsp, -16",
    "xor ebp, ebp",
    "call {main}",
    "ud2",
    main = sym stub_main,
);

/// `AT_HWCAP2` auxv tag and its `FSGSBASE` bit (`arch/x86/include/uapi/asm/hwcap2.h`).
const AT_HWCAP2: u64 = 26;
const HWCAP2_FSGSBASE: u64 = 1 << 1;

/// Process entry (from `_start`): `sp` points at `argc` as the ELF ABI lays out the initial
/// stack (argc, argv..., NULL, envp..., NULL, auxv pairs).
extern "C" fn stub_main(sp: *const u64) -> ! {
    // Everything blocked until each thread chooses its own mask (H also spawns us so).
    sys::set_sigmask(!0);
    let hwcap2 = auxv_value(sp, AT_HWCAP2).unwrap_or(0);
    let setup = setup::load();
    let role = setup.role;
    let name: &[u8; 11] = if role == StubRole::Kernel as u32 { b"pvm-stub-k\0" } else { b"pvm-stub-u\0" };
    // SAFETY: prctl with a NUL-terminated name pointer and plain integer options.
    let ok = unsafe {
        sys::syscall3(sys::NR_PRCTL, sys::PR_SET_NAME, name.as_ptr() as u64, 0) == 0
            && sys::syscall3(sys::NR_PRCTL, sys::PR_SET_DUMPABLE, 0, 0) == 0
            && sys::syscall6(sys::NR_PRCTL, sys::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0) == 0
    };
    if !ok {
        sys::exit_group(StubExit::SyscallFailed as i32);
    }
    if role == StubRole::Kernel as u32 {
        kernel::run(setup)
    } else if role == StubRole::Space as u32 {
        if hwcap2 & HWCAP2_FSGSBASE == 0 {
            sys::exit_group(StubExit::NoFsGsBase as i32);
        }
        space::run(setup)
    } else {
        sys::exit_group(StubExit::BadSetup as i32)
    }
}

/// Finds auxv entry `tag` from the initial stack pointer.
fn auxv_value(sp: *const u64, tag: u64) -> Option<u64> {
    // SAFETY: the kernel laid out argc, argv, envp and auxv at `sp` (ELF x86-64 psABI 3.4.1);
    // we walk it read-only up to the AT_NULL terminator.
    unsafe {
        let argc = *sp;
        let mut p = sp.add(1 + argc as usize + 1);
        while *p != 0 {
            p = p.add(1);
        }
        p = p.add(1);
        while *p != 0 {
            if *p == tag {
                return Some(*p.add(1));
            }
            p = p.add(2);
        }
    }
    None
}

/// Kills the whole process: `exit_group` from stub text, which the guest-thread filter (U)
/// and the K filter answer with `SECCOMP_RET_KILL_PROCESS`, and which before any filter is an
/// ordinary exit. `ud2` behind it in case the call returns.
#[inline(always)]
pub fn die() -> ! {
    // SAFETY: exit_group takes no memory argument and does not return.
    unsafe {
        core::arch::asm!("mov eax, 231", "mov edi, {code}", "syscall", "ud2",
            code = const guest_abi::stub::StubExit::Died as i32, options(noreturn, nostack))
    }
}

#[panic_handler]
fn panic(_: &PanicInfo) -> ! {
    sys::exit_group(StubExit::Panic as i32)
}

/// Never called with panic=abort, but the precompiled `core` may reference it.
#[unsafe(no_mangle)]
pub extern "C" fn rust_eh_personality() {}

/// Never called with panic=abort, but the precompiled `core` may reference it.
#[unsafe(no_mangle)]
pub extern "C" fn _Unwind_Resume() -> ! {
    die()
}
