//! Role U's trap path: every guest trap (seccomp SIGSYS for `syscall`, SIGSEGV, SIGILL,
//! SIGFPE, SIGTRAP, SIGBUS), H's interrupt signal and H's reset signal land in
//! [`pvm_stub_trap_entry`] on the vCPU thread's sigaltstack. A trap of guest code is published
//! into the PVCS (`state = UserToKernel`, futex wake); the thread then abandons the signal
//! frame and goes back to the *serve loop* ([`serve`]) at a fixed stack pointer, which waits
//! for K's `KernelToUser` and enters guest code by restoring every register and the XSAVE
//! image itself and ending with `iretq` ([`pvm_stub_resume`]).
//!
//! Why no `rt_sigreturn`: the guest-thread seccomp filter must not allow it (a guest jumping
//! to it with a forged frame could set its own signal mask, blocking H's interrupt signal, or
//! PKRU). The handlers are installed with `SA_NODEFER` and an empty mask, so the thread's
//! signal mask never changes, and they are re-entrant: a signal that lands while the thread
//! runs stub code (the interrupt signal while it waits for K, say) is handled by resuming the
//! interrupted stub code exactly ([`resume_frame`]), remembering the interrupt in
//! [`IRQ_SEEN`] for the next entry into user code.
//!
//! Trust rules. Everything writable in U, the PVCS, this thread's sigaltstack (signal frames
//! included) and the stub's data, can be written by guest code on another vCPU thread of the
//! same U, at any time. So:
//! - what the stub decides from that memory can only hurt the guest of this U (its own
//!   registers, its own address space), never K, H or another U: a bad image or frame makes
//!   an instruction fault in stub code, and any non-futex syscall from stub text kills U;
//! - which vCPU a handler serves is computed from the stack pointer the *kernel* chose for the
//!   handler (always inside the thread's own sigaltstack), never read from memory;
//! - whether a thread may take guest contexts at all ([`guest_abi::mapper::MapperCmd::run`])
//!   lives in the command area, which only H writes; while it says `PARK`, every signal sends
//!   the thread back to the park loop without reading any guest-writable memory. That is how
//!   H resets a U for the pool (see `switcher::space`).
//!
//! Register conventions: the PVCS register file is copied verbatim both ways. On a syscall
//! trap the CPU's SYSCALL already left `rcx` = the next rip and `r11` = rflags in the frame
//! (and `rax` holds the syscall number again: seccomp rolled it back), so `regs` carry
//! exactly what a real kernel sees. To return like SYSRET, K writes `rax` (the result) and
//! leaves `rcx`/`r11` as they came. What the stub sanitises on entry: `cs`/`ss` are the 64-bit
//! user selectors, only user-settable rflags bits are taken from K, fs/gs bases must be
//! canonical user addresses (else 0), and the FPU image is checked (see [`crate::fpu`]).

use crate::{die, fpu, global};
use core::arch::asm;
use core::ptr::{addr_of, addr_of_mut, read_volatile, write_volatile};
use core::sync::atomic::{AtomicU32, Ordering};
use guest_abi::layout;
use guest_abi::mapper::RUN;
use guest_abi::pvcs::{FpuOp, Pvcs, SwitchState, TrapKind, TrapRecord, UserRegs, vector};
use guest_abi::stub;

/// Offset of the park stack pointer below the top of a vCPU's sigaltstack slot.
const PARK_SP_OFFSET: u64 = 64;

core::arch::global_asm!(
    ".text",
    // pvm_stub_trap_entry(sig: rdi, info: rsi, uc: rdx): every U signal handler. rsp is the
    // kernel's choice: inside this thread's own sigaltstack. Derives the vCPU from it, parks
    // the thread if H parked this vCPU, else tail-jumps to trap_handler(sig, info, uc, vcpu).
    ".global pvm_stub_trap_entry",
    "pvm_stub_trap_entry:",
    "mov r8, rdx",
    "mov rax, rsp",
    "movabs rcx, {stacks}",
    "sub rax, rcx",
    "jb 9f",
    "xor edx, edx",
    "mov ecx, {slot_size}",
    "div rcx",                       // rax = slot, rdx = offset inside the slot
    "cmp rax, {slots}",              // guest threads' slots only (not the mappers')
    "jae 9f",
    "test al, 1",                    // sigaltstacks are the odd slots
    "jz 9f",
    "cmp rdx, 4096",                 // not inside the guard page
    "jb 9f",
    "shr rax, 1",                    // vCPU
    "movabs rcx, {run}",
    "cmp dword ptr [rcx + rax * 4], {run_value}",
    "jne 8f",
    "mov rdx, r8",
    "mov rcx, rax",
    "jmp {handler}",
    "8:",
    "mov rdi, rax",
    "jmp pvm_stub_restart",
    "9:",
    "mov eax, 231",                  // exit_group from stub text: the guest filter kills U
    "syscall",
    "ud2",
    // pvm_stub_restart(vcpu: rdi) -> !: abandons the current context: rsp = the vCPU's park
    // stack pointer, then the park loop.
    ".global pvm_stub_restart",
    "pvm_stub_restart:",
    "mov rax, rdi",
    "inc rax",
    "imul rax, rax, {slot_size2}",   // (2 v + 2) * slot size = top of slot 2 v + 1
    "movabs rcx, {stacks_park}",
    "add rax, rcx",
    "mov rsp, rax",
    "xor ebp, ebp",
    // The park loop: waits (register-only, reading only the read-only command area) until H
    // lets this vCPU run, then calls serve(vcpu), which never returns.
    "mov rbx, rdi",
    "xor r12d, r12d",                // 1 once the loop waited (H parked this vCPU)
    "2:",
    "movabs rdi, {run}",
    "lea rdi, [rdi + rbx * 4]",
    "mov edx, dword ptr [rdi]",
    "cmp edx, {run_value}",
    "je 3f",
    "mov eax, 202",                  // futex(run word, FUTEX_WAIT, value, NULL)
    "xor esi, esi",
    "xor r10d, r10d",
    "syscall",
    "mov r12d, 1",
    "jmp 2b",
    "3:",
    "mov rdi, rbx",
    "mov rsi, r12",
    "call {serve}",
    "ud2",
    // pvm_stub_resume(frame: rdi, fpu: rsi, kind: rdx, features: rcx) -> !: loads the FPU
    // image (kind 0: XRSTOR of `features`, 1: FXRSTOR, 2: none), then every general register
    // from `frame` ([`ResumeFrame`]) and returns with IRETQ (rip, cs, rflags, rsp, ss).
    ".global pvm_stub_resume",
    "pvm_stub_resume:",
    "cmp edx, 1",
    "je 1f",
    "ja 4f",
    "mov eax, ecx",
    "mov rdx, rcx",
    "shr rdx, 32",
    "xrstor64 [rsi]",
    "jmp 4f",
    "1:",
    "fxrstor64 [rsi]",
    "4:",
    "mov rsp, rdi",
    "pop r15",
    "pop r14",
    "pop r13",
    "pop r12",
    "pop r11",
    "pop r10",
    "pop r9",
    "pop r8",
    "pop rbp",
    "pop rdi",
    "pop rsi",
    "pop rdx",
    "pop rcx",
    "pop rbx",
    "pop rax",
    "iretq",
    // The sa_restorer the kernel requires on x86-64; never used (no handler returns).
    ".global pvm_stub_restorer",
    "pvm_stub_restorer:",
    "mov eax, 231",
    "syscall",
    "ud2",
    stacks = const layout::STUB_STACKS_BASE,
    stacks_park = const layout::STUB_STACKS_BASE - PARK_SP_OFFSET,
    slot_size = const stub::STACK_SLOT_SIZE,
    slot_size2 = const 2 * stub::STACK_SLOT_SIZE,
    slots = const 2 * guest_abi::MAX_VCPUS as u64,
    run = const layout::U_MAPPER_CMD_BASE + core::mem::offset_of!(guest_abi::mapper::MapperCmd, run) as u64,
    run_value = const RUN,
    handler = sym trap_handler,
    serve = sym serve,
);

unsafe extern "C" {
    /// The handler every U signal is installed with.
    pub fn pvm_stub_trap_entry();
    /// The (never used) `sa_restorer`.
    pub fn pvm_stub_restorer();
    /// Abandons the current context and parks `vcpu`'s thread.
    pub fn pvm_stub_restart(vcpu: u64) -> !;
    fn pvm_stub_resume(frame: *const ResumeFrame, fpu: *const u8, kind: u64, features: u64) -> !;
}

/// Per vCPU: an interrupt signal landed while the thread ran stub code; report an interrupt
/// trap at the next entry into user code. Guest-writable: a forged 1 gives a spurious
/// interrupt trap, a forged 0 delays an interrupt until H's watchdog repeats it.
static IRQ_SEEN: [AtomicU32; guest_abi::MAX_VCPUS as usize] =
    [const { AtomicU32::new(0) }; guest_abi::MAX_VCPUS as usize];

/// What [`pvm_stub_resume`] pops, in order, before `iretq`.
#[repr(C)]
struct ResumeFrame {
    r15: u64,
    r14: u64,
    r13: u64,
    r12: u64,
    r11: u64,
    r10: u64,
    r9: u64,
    r8: u64,
    rbp: u64,
    rdi: u64,
    rsi: u64,
    rdx: u64,
    rcx: u64,
    rbx: u64,
    rax: u64,
    rip: u64,
    cs: u64,
    rflags: u64,
    rsp: u64,
    ss: u64,
}

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
const REG_ERR: usize = 19;
const REG_TRAPNO: usize = 20;
const REG_CR2: usize = 22;

/// rflags bits user code may set: CF PF AF ZF SF TF DF OF AC (Intel SDM vol. 1, 3.4.3).
const USER_FLAGS: u64 = 0x1 | 0x4 | 0x10 | 0x40 | 0x80 | 0x100 | 0x400 | 0x800 | 0x4_0000;
/// rflags bits always set on return to user code: IF and the reserved bit 1.
const FIXED_FLAGS: u64 = 0x202;
/// `__USER_CS` and `__USER_DS` (Linux x86-64 GDT), as IRETQ loads them.
const USER_CS: u64 = 0x33;
const USER_SS: u64 = 0x2b;
/// First non-canonical user address (47-bit user half).
const USER_LIMIT: u64 = 1 << 47;
/// `AUDIT_ARCH_X86_64` (`linux/audit.h`), as `si_arch` of a seccomp SIGSYS.
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// `SI_KERNEL` (`asm-generic/siginfo.h`).
const SI_KERNEL: i32 = 0x80;

/// Address of this space's PVCS for `vcpu`.
pub fn pvcs_ptr(vcpu: u64) -> *mut Pvcs {
    (layout::U_PVCS_BASE + vcpu * layout::PVCS_SIZE) as *mut Pvcs
}

/// Bounds of the sigaltstack of `vcpu` (its usable part, above the guard page).
fn altstack(vcpu: u64) -> (u64, u64) {
    let slot = 2 * vcpu + 1;
    (stub::stack_slot_base(slot) + guest_abi::PAGE_SIZE, stub::stack_slot_top(slot))
}

/// The Rust half of every signal (from [`pvm_stub_trap_entry`], which checked that `vcpu` is
/// the owner of the sigaltstack this runs on and that H lets it run).
extern "C" fn trap_handler(sig: i32, info: *mut SigInfo, uc: *mut UContext, vcpu: u64) -> ! {
    let (lo, hi) = altstack(vcpu);
    let uc_addr = uc as u64;
    if uc_addr < lo || uc_addr.saturating_add(core::mem::size_of::<UContext>() as u64) > hi {
        die();
    }
    if sig == stub::RESET_SIGNAL {
        // A reset that arrived after H let the vCPU run again: start clean.
        // SAFETY: abandons this frame; the park loop needs nothing from it.
        unsafe { pvm_stub_restart(vcpu) }
    }
    // SAFETY: uc lies in this thread's altstack (checked), where the kernel wrote a ucontext.
    let rip = unsafe { read_volatile(addr_of!((*uc).gregs[REG_RIP])) };
    if global::in_text(rip) {
        if sig != stub::INTERRUPT_SIGNAL {
            // A synchronous trap of stub code: the guest jumped into it or corrupted it.
            die();
        }
        IRQ_SEEN[vcpu as usize].store(1, Ordering::Relaxed);
        // SAFETY: uc is this handler's frame (checked above).
        unsafe { resume_frame(uc, lo, hi) }
    }
    // SAFETY: the frame was checked above; pvcs is this vCPU's mapped PVCS.
    unsafe { publish(sig, info, uc, pvcs_ptr(vcpu), lo, hi) };
    // SAFETY: the trap is published; nothing of this frame is needed any more.
    unsafe { pvm_stub_restart(vcpu) }
}

/// Copies the trapped guest context into the PVCS and hands it to K.
///
/// # Safety
/// `uc`/`info` are this handler's kernel-written frame, `pvcs` a mapped PVCS.
unsafe fn publish(sig: i32, info: *const SigInfo, uc: *mut UContext, pvcs: *mut Pvcs, lo: u64, hi: u64) {
    // SAFETY: per the function contract.
    unsafe {
        let g: [u64; 23] = read_volatile(addr_of!((*uc).gregs));
        let mut regs = UserRegs {
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
        let mut code = read_volatile(addr_of!((*info).code));
        let mut host_signo = sig as u32;
        let compat = sig == crate::sys::SIGSYS && read_volatile(addr_of!((*info).arch)) != AUDIT_ARCH_X86_64;
        let (kind, vec, err, addr, nr) = if compat {
            // `int 0x80` (seccomp saw an i386 call): the guest kernel has no IA-32 emulation,
            // so it is the #GP such a Linux raises (error code: IDT entry 0x80), at the
            // instruction, reported as SIGSEGV with SI_KERNEL (`arch/x86/kernel/traps.c`).
            regs.rip = regs.rip.wrapping_sub(2);
            host_signo = crate::sys::SIGSEGV as u32;
            code = SI_KERNEL;
            (TrapKind::Exception, vector::GP, (0x80 << 3) | 2, 0, 0)
        } else if sig == crate::sys::SIGSYS {
            let nr = read_volatile(addr_of!((*info).syscall)) as i64 as u64;
            (TrapKind::Syscall, 0, 0, 0, nr)
        } else if sig == stub::INTERRUPT_SIGNAL {
            (TrapKind::Interrupt, 0, 0, 0, 0)
        } else if sig == crate::sys::SIGSEGV && trapno == vector::PF {
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
            host_signo,
            si_code: code,
            reserved: 0,
        };
        let fpu_len = match fpu::frame_fpu(read_volatile(addr_of!((*uc).fpstate)), lo, hi) {
            Some(f) => f.save(addr_of_mut!((*pvcs).fpu) as *mut u8),
            None => 0,
        };
        write_volatile(addr_of_mut!((*pvcs).regs), regs);
        hand_to_kernel(pvcs, trap, fpu_len);
    }
}

/// Publishes `trap` (registers and FPU image already in the PVCS) and wakes K.
///
/// # Safety
/// `pvcs` is a mapped PVCS this thread owns (`UserRunning`).
unsafe fn hand_to_kernel(pvcs: *mut Pvcs, trap: TrapRecord, fpu_len: u32) {
    // SAFETY: per the function contract.
    unsafe {
        write_volatile(addr_of_mut!((*pvcs).trap), trap);
        write_volatile(addr_of_mut!((*pvcs).fpu_len), fpu_len);
        let count = read_volatile(addr_of!((*pvcs).trap_count));
        write_volatile(addr_of_mut!((*pvcs).trap_count), count.wrapping_add(1));
        (*pvcs).state.store(SwitchState::UserToKernel as u32, Ordering::Release);
        crate::sys::futex_wake(&(*pvcs).state);
    }
}

/// The serve loop of `vcpu`'s thread (from the park loop, at the park stack pointer): waits
/// for K's `KernelToUser`, then enters guest code. Never returns. `unparked` is 1 when the
/// thread had been parked by H (a pooled U starting on a new address space): the stub's only
/// guest-writable state of its own ([`IRQ_SEEN`]) is then cleared, as nothing of the previous
/// guest may remain.
extern "C" fn serve(vcpu: u64, unparked: u64) -> ! {
    if vcpu >= guest_abi::MAX_VCPUS as u64 {
        die();
    }
    if unparked != 0 {
        IRQ_SEEN[vcpu as usize].store(0, Ordering::Relaxed);
    }
    let pvcs = pvcs_ptr(vcpu);
    loop {
        // SAFETY: this vCPU's PVCS is mapped for the life of U.
        unsafe {
            wait_for_kernel(pvcs);
            enter_user(vcpu, pvcs);
        }
    }
}

/// Blocks until K hands the PVCS over (`KernelToUser`); dies on `SpaceDead`.
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
        crate::sys::futex_wait(state, s);
    }
}

/// Enters guest code with K's context (read once from the PVCS). Returns only when an
/// interrupt signal seen while handing off was reported to K instead.
///
/// # Safety
/// `pvcs` is `vcpu`'s mapped PVCS, handed over by K (`KernelToUser`).
unsafe fn enter_user(vcpu: u64, pvcs: *mut Pvcs) {
    // SAFETY: per the function contract.
    unsafe {
        let r: UserRegs = read_volatile(addr_of!((*pvcs).regs));
        let op = read_volatile(addr_of!((*pvcs).fpu_op));
        let img = addr_of_mut!((*pvcs).fpu) as *mut u8;
        let len = if op == FpuOp::Restore as u32 || op == FpuOp::Keep as u32 {
            // Restore: K's image; Keep: the one this thread saved at its last trap.
            read_volatile(addr_of!((*pvcs).fpu_len))
        } else {
            0
        };
        let fmt = fpu::host();
        let (len, kind) = match fpu::prepare(fmt, img, len) {
            Some(k) => (len, k),
            // Reset (or an image that is not one this host writes): the initial state, kept
            // in the PVCS so a trap before guest code runs hands K the state it asked for.
            None => fpu::write_initial(fmt, img),
        };
        write_volatile(addr_of_mut!((*pvcs).fpu_len), len);
        (*pvcs).state.store(SwitchState::UserRunning as u32, Ordering::Release);
        if IRQ_SEEN[vcpu as usize].swap(0, Ordering::Relaxed) != 0 {
            let trap = TrapRecord {
                kind: TrapKind::Interrupt as u32,
                host_signo: stub::INTERRUPT_SIGNAL as u32,
                ..TrapRecord::default()
            };
            hand_to_kernel(pvcs, trap, len);
            return;
        }
        let frame = ResumeFrame {
            r15: r.r15,
            r14: r.r14,
            r13: r.r13,
            r12: r.r12,
            r11: r.r11,
            r10: r.r10,
            r9: r.r9,
            r8: r.r8,
            rbp: r.rbp,
            rdi: r.rdi,
            rsi: r.rsi,
            rdx: r.rdx,
            rcx: r.rcx,
            rbx: r.rbx,
            rax: r.rax,
            rip: canonical(r.rip),
            cs: USER_CS,
            rflags: (r.rflags & USER_FLAGS) | FIXED_FLAGS,
            rsp: r.rsp,
            ss: USER_SS,
        };
        wrfsbase(canonical(r.fs_base));
        wrgsbase(canonical(r.gs_base));
        pvm_stub_resume(&frame, img, kind, fmt.features);
    }
}

/// Resumes the stub code a signal interrupted, exactly as it was (registers, flags, FPU).
///
/// # Safety
/// `uc` is this handler's kernel-written frame inside `[lo, hi)`.
unsafe fn resume_frame(uc: *const UContext, lo: u64, hi: u64) -> ! {
    // SAFETY: per the function contract.
    unsafe {
        let g: [u64; 23] = read_volatile(addr_of!((*uc).gregs));
        let frame = ResumeFrame {
            r15: g[REG_R15],
            r14: g[REG_R14],
            r13: g[REG_R13],
            r12: g[REG_R12],
            r11: g[REG_R11],
            r10: g[REG_R10],
            r9: g[REG_R9],
            r8: g[REG_R8],
            rbp: g[REG_RBP],
            rdi: g[REG_RDI],
            rsi: g[REG_RSI],
            rdx: g[REG_RDX],
            rcx: g[REG_RCX],
            rbx: g[REG_RBX],
            rax: g[REG_RAX],
            rip: g[REG_RIP],
            cs: USER_CS,
            rflags: (g[REG_EFL] & USER_FLAGS) | FIXED_FLAGS,
            rsp: g[REG_RSP],
            ss: USER_SS,
        };
        let fpstate = read_volatile(addr_of!((*uc).fpstate));
        let fmt = fpu::host();
        match fpu::frame_fpu(fpstate, lo, hi).and_then(|f| f.kind(fmt)) {
            Some(kind) => pvm_stub_resume(&frame, fpstate as *const u8, kind, fmt.features),
            None => die(),
        }
    }
}

fn canonical(addr: u64) -> u64 {
    if addr < USER_LIMIT { addr } else { 0 }
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
