//! Role U's trap handler: every guest trap (seccomp SIGSYS for `syscall`, SIGSEGV, SIGILL,
//! SIGFPE, SIGTRAP, SIGBUS, and H's interrupt signal) lands here on the vCPU thread's
//! sigaltstack with every signal blocked. It publishes the user context into the PVCS
//! (`state = UserToKernel`, futex wake), waits for K's `KernelToUser`, loads K's context
//! into the signal frame and returns into guest code through `rt_sigreturn`.
//!
//! Register conventions: the PVCS register file is copied verbatim both ways. On a syscall
//! trap the CPU's SYSCALL already left `rcx` = the next rip and `r11` = rflags in the frame
//! (and `rax` holds the syscall number again: seccomp rolled it back), so `regs` carry
//! exactly what a real kernel sees. To return like SYSRET, K writes `rax` (the result) and
//! leaves `rcx`/`r11` as they came (or sets `rcx = rip`, `r11 = rflags` itself): the stub
//! never synthesises them. What the stub sanitises: `cs`/`ss` are always the 64-bit user
//! selectors, only user-settable rflags bits are taken from K, fs/gs bases must be
//! canonical user addresses (else 0), the FPU image is checked (see [`crate::fpu`]), and the
//! guest's signal mask is emptied on every entry.
//!
//! Which vCPU: from the handler's stack address (altstack slot `2 i + 1` is vCPU `i`), no TLS.

use crate::space::{VCPUS, launch_ret, pvcs_ptr};
use crate::{die, fpu, global, sys};
use core::arch::asm;
use core::ptr::{addr_of, addr_of_mut, read_volatile, write_volatile};
use core::sync::atomic::{AtomicU32, Ordering};
use guest_abi::layout;
use guest_abi::pvcs::{Pvcs, SwitchState, TrapKind, TrapRecord, UserRegs, vector};
use guest_abi::stub;

core::arch::global_asm!(
    ".text",
    ".global pvm_stub_restorer",
    "pvm_stub_restorer:",
    "mov eax, 15",          // rt_sigreturn, from stub text (the guest filter allows it here)
    "syscall",
    "ud2",
);

/// Linux `siginfo_t` prefix (x86-64): fault address for SIGSEGV/SIGILL/SIGFPE/SIGBUS/SIGTRAP
/// at 16; `si_syscall` and `si_arch` for SIGSYS at 24 and 28 (`man 2 sigaction`).
#[repr(C)]
pub struct SigInfo {
    signo: i32,
    errno: i32,
    code: i32,
    _pad: i32,
    addr: u64,
    syscall: i32,
    arch: u32,
}

/// Linux x86-64 `ucontext_t` (`arch/x86/include/uapi/asm/ucontext.h`, `sigcontext_64`).
#[repr(C)]
pub struct UContext {
    flags: u64,
    link: u64,
    ss_sp: u64,
    ss_flags: i32,
    _pad: i32,
    ss_size: u64,
    gregs: [u64; 23],
    fpstate: u64,
    reserved: [u64; 8],
    sigmask: u64,
}

const REG_R8: usize = 0;
const REG_R9: usize = 1;
const REG_R10: usize = 2;
const REG_R11: usize = 3;
const REG_R12: usize = 4;
const REG_R13: usize = 5;
const REG_R14: usize = 6;
const REG_R15: usize = 7;
const REG_RDI: usize = 8;
const REG_RSI: usize = 9;
const REG_RBP: usize = 10;
const REG_RBX: usize = 11;
const REG_RDX: usize = 12;
const REG_RAX: usize = 13;
const REG_RCX: usize = 14;
const REG_RSP: usize = 15;
const REG_RIP: usize = 16;
const REG_EFL: usize = 17;
const REG_CSGSFS: usize = 18;
const REG_ERR: usize = 19;
const REG_TRAPNO: usize = 20;
const REG_CR2: usize = 22;

/// rflags bits user code may set: CF PF AF ZF SF TF DF OF AC (Intel SDM vol. 1, 3.4.3).
const USER_FLAGS: u64 = 0x1 | 0x4 | 0x10 | 0x40 | 0x80 | 0x100 | 0x400 | 0x800 | 0x4_0000;
/// `cs` = `__USER_CS` (0x33), `ss` = `__USER_DS` (0x2b), as Linux's sigcontext packs them.
const USER_CSGSFS: u64 = 0x33 | (0x2b << 48);
/// First non-canonical user address (47-bit user half).
const USER_LIMIT: u64 = 1 << 47;

/// Per vCPU: the launch trap happened (guest code may then never re-enter the launch path).
static LAUNCHED: [AtomicU32; guest_abi::MAX_VCPUS as usize] =
    [const { AtomicU32::new(0) }; guest_abi::MAX_VCPUS as usize];

/// The vCPU whose sigaltstack contains `sp`, if any.
fn altstack_vcpu(sp: u64) -> Option<u64> {
    let off = sp.checked_sub(layout::STUB_STACKS_BASE)?;
    let slot = off / stub::STACK_SLOT_SIZE;
    if slot >= stub::STACK_SLOTS || slot.is_multiple_of(2) || sp < stub::stack_slot_base(slot) + guest_abi::PAGE_SIZE {
        return None;
    }
    Some(slot / 2)
}

/// The signal handler (`SA_SIGINFO | SA_ONSTACK`, all signals masked).
pub extern "C" fn trap_handler(sig: i32, info: *mut SigInfo, uc: *mut UContext) {
    let sp: u64;
    // SAFETY: reads the stack pointer.
    unsafe { asm!("mov {}, rsp", out(reg) sp, options(nomem, nostack, preserves_flags)) };
    let Some(vcpu) = altstack_vcpu(sp) else { die() };
    if vcpu >= VCPUS.load(Ordering::Relaxed) as u64 {
        die();
    }
    let slot = 2 * vcpu + 1;
    let (lo, hi) = (stub::stack_slot_base(slot) + guest_abi::PAGE_SIZE, stub::stack_slot_top(slot));
    let uc_addr = uc as u64;
    if uc_addr < lo || uc_addr + core::mem::size_of::<UContext>() as u64 > hi {
        die();
    }
    let pvcs = pvcs_ptr(vcpu);
    // SAFETY: uc lies in this thread's altstack (checked), the kernel wrote a ucontext there;
    // pvcs is this vCPU's mapped PVCS (vcpu < VCPUS).
    unsafe {
        let rip = read_volatile(addr_of!((*uc).gregs[REG_RIP]));
        if global::in_text(rip) {
            let first = LAUNCHED[vcpu as usize].swap(1, Ordering::Relaxed) == 0;
            if !(sig == sys::SIGSYS && rip == launch_ret() && first) {
                // Stub code trapped after launch: the guest jumped into it. No way out.
                die();
            }
        } else {
            publish(sig, info, uc, pvcs, lo, hi);
        }
        wait_for_kernel(pvcs);
        enter_user(uc, pvcs, lo, hi);
    }
}

/// Copies the trapped context into the PVCS and hands it to K.
///
/// # Safety
/// `uc`/`info` are this handler's kernel-written frame, `pvcs` a mapped PVCS.
unsafe fn publish(sig: i32, info: *const SigInfo, uc: *mut UContext, pvcs: *mut Pvcs, lo: u64, hi: u64) {
    // SAFETY: per the function contract.
    unsafe {
        let g: [u64; 23] = read_volatile(addr_of!((*uc).gregs));
        let regs = UserRegs {
            rax: g[REG_RAX],
            rbx: g[REG_RBX],
            rcx: g[REG_RCX],
            rdx: g[REG_RDX],
            rsi: g[REG_RSI],
            rdi: g[REG_RDI],
            rbp: g[REG_RBP],
            rsp: g[REG_RSP],
            r8: g[REG_R8],
            r9: g[REG_R9],
            r10: g[REG_R10],
            r11: g[REG_R11],
            r12: g[REG_R12],
            r13: g[REG_R13],
            r14: g[REG_R14],
            r15: g[REG_R15],
            rip: g[REG_RIP],
            rflags: g[REG_EFL],
            fs_base: rdfsbase(),
            gs_base: rdgsbase(),
        };
        let trapno = g[REG_TRAPNO] as u32;
        let code = read_volatile(addr_of!((*info).code));
        let (kind, vec, err, addr, nr) = if sig == sys::SIGSYS {
            let nr = read_volatile(addr_of!((*info).syscall)) as i64 as u64;
            (TrapKind::Syscall, 0, 0, 0, nr)
        } else if sig == stub::INTERRUPT_SIGNAL {
            (TrapKind::Interrupt, 0, 0, 0, 0)
        } else if sig == sys::SIGSEGV && trapno == vector::PF {
            (TrapKind::PageFault, vector::PF, g[REG_ERR], g[REG_CR2], 0)
        } else {
            (TrapKind::Exception, trapno, g[REG_ERR], read_volatile(addr_of!((*info).addr)), 0)
        };
        let trap = TrapRecord {
            kind: kind as u32,
            vector: vec,
            error_code: err,
            fault_addr: addr,
            syscall_nr: nr,
            host_signo: sig as u32,
            si_code: code,
            reserved: 0,
        };
        let fpu_len = match fpu::frame_fpu(read_volatile(addr_of!((*uc).fpstate)), lo, hi) {
            Some(f) => f.save(addr_of_mut!((*pvcs).fpu) as *mut u8),
            None => 0,
        };
        write_volatile(addr_of_mut!((*pvcs).regs), regs);
        write_volatile(addr_of_mut!((*pvcs).trap), trap);
        write_volatile(addr_of_mut!((*pvcs).fpu_len), fpu_len);
        let count = read_volatile(addr_of!((*pvcs).trap_count));
        write_volatile(addr_of_mut!((*pvcs).trap_count), count.wrapping_add(1));
        (*pvcs).state.store(SwitchState::UserToKernel as u32, Ordering::Release);
        sys::futex_wake(&(*pvcs).state);
    }
}

/// Blocks until K hands the PVCS back (`KernelToUser`); dies on `SpaceDead`.
///
/// # Safety
/// `pvcs` is a mapped PVCS.
unsafe fn wait_for_kernel(pvcs: *mut Pvcs) {
    // SAFETY: per the function contract.
    let state = unsafe { &(*pvcs).state };
    loop {
        let s = state.load(Ordering::Acquire);
        if s == SwitchState::KernelToUser as u32 {
            return;
        }
        if s == SwitchState::SpaceDead as u32 {
            die();
        }
        sys::futex_wait(state, s);
    }
}

/// Loads K's context (read once from the PVCS) into the signal frame.
///
/// # Safety
/// As [`publish`].
unsafe fn enter_user(uc: *mut UContext, pvcs: *mut Pvcs, lo: u64, hi: u64) {
    // SAFETY: per the function contract.
    unsafe {
        let r: UserRegs = read_volatile(addr_of!((*pvcs).regs));
        let op = read_volatile(addr_of!((*pvcs).fpu_op));
        let len = read_volatile(addr_of!((*pvcs).fpu_len));
        let g = addr_of_mut!((*uc).gregs) as *mut u64;
        let set = |i: usize, v: u64| write_volatile(g.add(i), v);
        set(REG_RAX, r.rax);
        set(REG_RBX, r.rbx);
        set(REG_RCX, r.rcx);
        set(REG_RDX, r.rdx);
        set(REG_RSI, r.rsi);
        set(REG_RDI, r.rdi);
        set(REG_RBP, r.rbp);
        set(REG_RSP, r.rsp);
        set(REG_R8, r.r8);
        set(REG_R9, r.r9);
        set(REG_R10, r.r10);
        set(REG_R11, r.r11);
        set(REG_R12, r.r12);
        set(REG_R13, r.r13);
        set(REG_R14, r.r14);
        set(REG_R15, r.r15);
        set(REG_RIP, r.rip);
        let old = read_volatile(g.add(REG_EFL));
        set(REG_EFL, (old & !USER_FLAGS) | (r.rflags & USER_FLAGS));
        set(REG_CSGSFS, USER_CSGSFS);
        if let Some(f) = fpu::frame_fpu(read_volatile(addr_of!((*uc).fpstate)), lo, hi) {
            match op {
                0 => f.restore(addr_of!((*pvcs).fpu) as *const u8, len),
                2 => {}
                _ => f.reset(),
            }
        }
        wrfsbase(canonical(r.fs_base));
        wrgsbase(canonical(r.gs_base));
        write_volatile(addr_of_mut!((*uc).sigmask), 0);
        (*pvcs).state.store(SwitchState::UserRunning as u32, Ordering::Release);
    }
}

fn canonical(base: u64) -> u64 {
    if base < USER_LIMIT { base } else { 0 }
}

fn rdfsbase() -> u64 {
    let v: u64;
    // SAFETY: FSGSBASE is enabled for user mode (checked at start via AT_HWCAP2).
    unsafe { asm!("rdfsbase {}", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

fn rdgsbase() -> u64 {
    let v: u64;
    // SAFETY: as rdfsbase.
    unsafe { asm!("rdgsbase {}", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

fn wrfsbase(v: u64) {
    // SAFETY: FSGSBASE enabled; `v` is a canonical user address; the stub uses no TLS.
    unsafe { asm!("wrfsbase {}", in(reg) v, options(nomem, nostack, preserves_flags)) };
}

fn wrgsbase(v: u64) {
    // SAFETY: as wrfsbase.
    unsafe { asm!("wrgsbase {}", in(reg) v, options(nomem, nostack, preserves_flags)) };
}
