//! Signals: posting (`kill`, `SIGCHLD`, `SIGALRM`, `SIGPIPE`), default actions, and handler
//! delivery with the Linux x86-64 `rt_sigframe` (arch/x86/kernel/signal_64.c,
//! arch/x86/include/uapi/asm/sigcontext.h): `pretcode` (the `SA_RESTORER` restorer), a
//! `ucontext` whose `uc_mcontext` holds the general registers in Linux order and an `fpstate`
//! pointer to the saved FPU image, then the `siginfo`. `rt_sigreturn` reads it back.

use crate::proc::{ExitReason, Process, SigAction, Thread, NSIG};
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;
use guest_abi::pvcs::UserRegs;

/// `SIGILL`.
pub const SIGILL: u32 = 4;
/// `SIGTRAP`.
pub const SIGTRAP: u32 = 5;
/// `SIGBUS`.
pub const SIGBUS: u32 = 7;
/// `SIGFPE`.
pub const SIGFPE: u32 = 8;
/// `SIGKILL`.
pub const SIGKILL: u32 = 9;
/// `SIGSEGV`.
pub const SIGSEGV: u32 = 11;
/// `SIGPIPE`.
pub const SIGPIPE: u32 = 13;
/// `SIGALRM`.
pub const SIGALRM: u32 = 14;
/// `SIGCHLD`.
pub const SIGCHLD: u32 = 17;
/// `SIGSTOP`.
pub const SIGSTOP: u32 = 19;

/// `SA_NOCLDWAIT`.
pub const SA_NOCLDWAIT: u64 = 2;
/// `SA_SIGINFO`.
pub const SA_SIGINFO: u64 = 4;
/// `SA_RESTORER`.
pub const SA_RESTORER: u64 = 0x0400_0000;
/// `SA_ONSTACK`.
pub const SA_ONSTACK: u64 = 0x0800_0000;
/// `SA_RESTART`.
pub const SA_RESTART: u64 = 0x1000_0000;
/// `SA_NODEFER`.
pub const SA_NODEFER: u64 = 0x4000_0000;
/// `SA_RESETHAND`.
pub const SA_RESETHAND: u64 = 0x8000_0000;

/// Bit of `sig` in a signal set.
pub const fn bit(sig: u32) -> u64 {
    1 << (sig - 1)
}

/// Signals that can be neither blocked nor caught.
pub const UNBLOCKABLE: u64 = bit(SIGKILL) | bit(SIGSTOP);

/// Default action of a signal (signal(7)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Default {
    /// Terminate the process.
    Terminate,
    /// Ignore (`SIGCHLD`, `SIGURG`, `SIGWINCH`; and here also the job-control signals, since
    /// there is no job control: `SIGCONT`, `SIGSTOP`, `SIGTSTP`, `SIGTTIN`, `SIGTTOU`).
    Ignore,
}

/// The default action of `sig`.
pub fn default_action(sig: u32) -> Default {
    match sig {
        17 | 23 | 28 | 18..=22 => Default::Ignore,
        _ => Default::Terminate,
    }
}

/// True when `act` makes `sig` ignored (explicitly or by default).
pub fn ignored(act: &SigAction, sig: u32) -> bool {
    sig != SIGKILL && (act.handler == 1 || (act.handler == 0 && default_action(sig) == Default::Ignore))
}

/// Posts `sig` to process `p` (an ignored signal is discarded at once, as Linux does) and
/// wakes blocked threads so that a sleeping target notices.
pub fn post(p: &Process, sig: u32) {
    if sig == 0 || sig as usize > NSIG || p.is_zombie() {
        return;
    }
    let act = p.sigactions.lock()[sig as usize - 1];
    if ignored(&act, sig) {
        return;
    }
    p.pending.fetch_or(bit(sig), Ordering::SeqCst);
    // Parked threads are woken, one running user code on another vCPU is interrupted.
    let threads: Vec<Arc<crate::proc::ThreadShared>> = p.threads.lock().clone();
    for t in &threads {
        crate::sched::wake(t);
        crate::sched::interrupt(t);
    }
}

/// Whether the first process drops `sig`, sent from inside the VM by process `sender`, as the
/// init of the guest's pid namespace. Like Linux's (`SIGNAL_UNKILLABLE`, kernel/signal.c
/// `sig_task_ignored`: a sender inside the namespace is never `force`d), it drops every such
/// signal whose action is `SIG_DFL`, `SIGKILL` and `SIGSTOP` included; handled signals are
/// delivered. This is the one check every sender path uses: `kill`, `tkill`, `tgkill` and a
/// child's exit signal (`do_notify_parent` is not forced either). Departure: thread-directed
/// signals a process sends itself (`raise`, `abort`: `tgkill`/`tkill`) are not filtered, so a
/// program that is the first process dies of them as it does natively.
fn init_drops(p: &Process, sig: u32, sender: i32, thread_directed: bool) -> bool {
    p.pid == crate::boot::init_pid()
        && !(thread_directed && sender == p.pid)
        && p.sigactions.lock()[sig as usize - 1].handler == 0
}

/// Posts `sig`, sent to the whole process `p` from inside the VM by process `sender` (`kill(2)`,
/// a child's exit signal): the first process drops what [`init_drops`] says.
pub fn post_from_kill(p: &Process, sig: u32, sender: i32) {
    if sig == 0 || sig as usize > NSIG {
        return;
    }
    if init_drops(p, sig, sender, false) {
        return;
    }
    post(p, sig);
}

/// Posts `sig` to one thread (`tgkill`, `tkill`), sent by process `sender`: thread-directed,
/// taken only by that thread; the first process drops what [`init_drops`] says.
pub fn post_thread(p: &Process, t: &crate::proc::ThreadShared, sig: u32, sender: i32) {
    if sig == 0 || sig as usize > NSIG || p.is_zombie() {
        return;
    }
    if init_drops(p, sig, sender, true) {
        return;
    }
    let act = p.sigactions.lock()[sig as usize - 1];
    if ignored(&act, sig) {
        return;
    }
    t.pending.fetch_or(bit(sig), Ordering::SeqCst);
    crate::sched::wake(t);
    crate::sched::interrupt(t);
}

/// Signals pending for `t`: its own and its process's.
pub fn pending(t: &Thread) -> u64 {
    t.proc.pending.load(Ordering::Acquire) | t.shared.pending.load(Ordering::Acquire)
}

/// Signals `t` could take now: pending and not blocked.
pub fn deliverable(t: &Thread) -> u64 {
    pending(t) & !(t.sigmask & !UNBLOCKABLE)
}

/// Removes `sig` from what `t` has pending: the thread's own instance first, else the
/// process's.
///
/// Returns whether this thread took an instance: another thread of the process may have taken
/// a process-directed signal between [`next_action`] and this call (two vCPUs delivering at
/// once), and a standard signal is delivered once.
pub fn dequeue(t: &Thread, sig: u32) -> bool {
    if t.shared.pending.fetch_and(!bit(sig), Ordering::AcqRel) & bit(sig) != 0 {
        return true;
    }
    t.proc.pending.fetch_and(!bit(sig), Ordering::AcqRel) & bit(sig) != 0
}

/// The action for the lowest deliverable signal, without dequeuing it.
pub fn next_action(t: &Thread) -> Option<(u32, SigAction)> {
    let d = deliverable(t);
    if d == 0 {
        return None;
    }
    let sig = d.trailing_zeros() + 1;
    Some((sig, t.proc.sigactions.lock()[sig as usize - 1]))
}

/// Size of the kernel `ucontext` (flags, link, stack_t, sigcontext, 8-byte sigset), bytes.
pub const UCONTEXT_SIZE: usize = 8 + 8 + 24 + SIGCONTEXT_SIZE + 8;
/// Size of `struct sigcontext` (x86-64), bytes.
pub const SIGCONTEXT_SIZE: usize = 256;
/// Size of `siginfo_t`, bytes.
pub const SIGINFO_SIZE: usize = 128;
/// Offset of `uc` in the frame (after `pretcode`).
pub const UC_OFFSET: usize = 8;
/// Offset of `uc_mcontext` in the `ucontext`.
pub const MCONTEXT_OFFSET: usize = 40;
/// Offset of `uc_sigmask` in the `ucontext`.
pub const SIGMASK_OFFSET: usize = MCONTEXT_OFFSET + SIGCONTEXT_SIZE;
/// Offset of `info` in the frame.
pub const INFO_OFFSET: usize = UC_OFFSET + UCONTEXT_SIZE;
/// Size of the frame without the FPU image.
pub const FRAME_SIZE: usize = INFO_OFFSET + SIGINFO_SIZE;
/// Index of `fpstate` (in u64 words) inside `sigcontext`.
const FPSTATE_WORD: usize = 23;
/// `uc_flags`: `UC_FP_XSTATE | UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS`.
const UC_FLAGS: u64 = 0x1 | 0x2 | 0x4;

/// The registers of `sigcontext` in Linux order (r8..r15, rdi, rsi, rbp, rbx, rdx, rax, rcx,
/// rsp, rip, eflags).
fn gregs(r: &UserRegs) -> [u64; 18] {
    [r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, r.rdi, r.rsi, r.rbp, r.rbx, r.rdx, r.rax, r.rcx, r.rsp, r.rip, r.rflags]
}

/// Information for the `siginfo` of a delivered signal.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Info {
    /// `si_signo`.
    pub signo: u32,
    /// `si_code` (`SI_USER` = 0, `SI_KERNEL` = 0x80, `CLD_*`...).
    pub code: i32,
    /// `si_pid` (or `si_addr` low half for faults: see `addr`).
    pub pid: i32,
    /// `si_addr` for fault signals (0 otherwise).
    pub addr: u64,
    /// True for a hardware-fault signal: `siginfo` carries `si_addr` (even 0) instead of
    /// `si_pid`, and the frame's `uc_mcontext` records `trapno`, `err` and `cr2`.
    pub fault: bool,
    /// `uc_mcontext.trapno`: the x86 vector of the fault.
    pub trapno: u64,
    /// `uc_mcontext.err`: the x86 error code of the fault.
    pub err: u64,
    /// `uc_mcontext.cr2`: the faulting address of a #PF (0 for other vectors).
    pub cr2: u64,
}

/// `si_code` values of fault signals (include/uapi/asm-generic/siginfo.h).
pub mod code {
    /// `SI_KERNEL`: sent by the kernel (#GP, `int3`).
    pub const SI_KERNEL: i32 = 0x80;
    /// `SEGV_MAPERR`: address not mapped.
    pub const SEGV_MAPERR: i32 = 1;
    /// `SEGV_ACCERR`: mapping does not allow the access.
    pub const SEGV_ACCERR: i32 = 2;
    /// `FPE_INTDIV`: integer divide by zero (or overflow).
    pub const FPE_INTDIV: i32 = 1;
    /// `FPE_FLTINV`: invalid floating-point operation.
    pub const FPE_FLTINV: i32 = 7;
    /// `ILL_ILLOPN`: illegal operand (#UD).
    pub const ILL_ILLOPN: i32 = 2;
    /// `BUS_ADRALN`: invalid address alignment (#AC).
    pub const BUS_ADRALN: i32 = 1;
    /// `BUS_ADRERR`: nonexistent physical address.
    pub const BUS_ADRERR: i32 = 2;
    /// `TRAP_BRKPT`: process breakpoint.
    pub const TRAP_BRKPT: i32 = 1;
}

/// The signal and `siginfo` Linux gives user code for CPU exception `vector` (error code
/// `error`) at instruction `rip` (arch/x86/kernel/traps.c: `exc_divide_error` → SIGFPE
/// `FPE_INTDIV` at rip, `exc_invalid_op` → SIGILL `ILL_ILLOPN` at rip, `exc_general_protection`
/// → SIGSEGV `SI_KERNEL` address 0, `exc_int3` → SIGTRAP `SI_KERNEL`, `exc_alignment_check` →
/// SIGBUS `BUS_ADRALN`, #NP/#SS → SIGBUS, x87/SIMD errors → SIGFPE with the code the FPU
/// status gives, here `host_code` as the host computed it for the same instruction).
pub fn exception_info(vector: u32, error: u64, rip: u64, host_code: i32) -> Info {
    use guest_abi::pvcs::vector as v;
    let (signo, code, addr) = match vector {
        v::DE => (SIGFPE, code::FPE_INTDIV, rip),
        v::MF | v::XM => (SIGFPE, if host_code > 0 && host_code < 0x80 { host_code } else { code::FPE_FLTINV }, rip),
        v::UD => (SIGILL, code::ILL_ILLOPN, rip),
        v::BP => (SIGTRAP, code::SI_KERNEL, 0),
        v::DB => (SIGTRAP, code::TRAP_BRKPT, 0),
        v::AC => (SIGBUS, code::BUS_ADRALN, 0),
        11 | 12 => (SIGBUS, code::SI_KERNEL, 0),
        // A host SIGBUS on a page fault (no backing for the mapping).
        v::PF => (SIGBUS, code::BUS_ADRERR, 0),
        _ => (SIGSEGV, code::SI_KERNEL, 0),
    };
    Info { signo, code, pid: 0, addr, fault: true, trapno: u64::from(vector), err: error, cr2: 0 }
}

/// The `siginfo` of a user page fault at `addr` (#PF error code `error`) that the address
/// space does not allow: `SEGV_MAPERR` when nothing is mapped there, `SEGV_ACCERR` when the
/// mapping forbids the access (arch/x86/mm/fault.c `bad_area` / `bad_area_access_error`).
pub fn page_fault_info(addr: u64, error: u64, mapped: bool) -> Info {
    let code = if mapped { code::SEGV_ACCERR } else { code::SEGV_MAPERR };
    // Linux reports user faults with the USER bit set (`sanitize_error_code` for user addresses).
    let err = error | guest_abi::pvcs::pf_error::USER;
    Info { signo: SIGSEGV, code, pid: 0, addr, fault: true, trapno: u64::from(guest_abi::pvcs::vector::PF), err, cr2: addr }
}

/// How a fault signal is taken (kernel/signal.c `force_sig_info_to_task`): when `sig` is
/// blocked by `sigmask` or ignored, its action is reset to `SIG_DFL` and it is unblocked, so
/// the process dies of it. Returns the action to take and the new mask; `acts` is updated.
pub fn force_action(acts: &mut [SigAction; NSIG], sigmask: u64, sig: u32) -> (SigAction, u64) {
    let i = sig as usize - 1;
    let blocked = sigmask & bit(sig) != 0;
    if blocked || acts[i].handler == 1 {
        acts[i].handler = 0;
    }
    (acts[i], sigmask & !bit(sig))
}

/// A frame ready to be copied to user memory.
#[derive(Debug)]
pub struct Frame {
    /// Where the frame starts (the handler's `rsp`).
    pub addr: u64,
    /// The bytes from `addr`: frame, then padding, then the FPU image.
    pub bytes: Vec<u8>,
    /// Registers to enter the handler with.
    pub regs: UserRegs,
}

/// Builds the `rt_sigframe` for handler `act` of `info.signo`: `sp` is the stack to use (the
/// user `rsp`, or the top of the alternate stack), `regs` the interrupted registers, `fpu`
/// the saved FPU image (host signal-frame `_fpstate` layout, which is Linux's), `mask` the
/// signal mask to restore at `rt_sigreturn`, `altstack` the `stack_t` to record. `None` if the
/// stack would wrap.
pub fn build_frame(sp: u64, regs: &UserRegs, fpu: &[u8], info: &Info, act: &SigAction, mask: u64, altstack: (u64, i32, u64)) -> Option<Frame> {
    // Below the red zone, then the FPU image (64-byte aligned), then the frame.
    let mut top = sp.checked_sub(128)?;
    let fp_addr = if fpu.is_empty() { 0 } else { (top.checked_sub(fpu.len() as u64)?) & !63 };
    if fp_addr != 0 {
        top = fp_addr;
    }
    let addr = (top.checked_sub(FRAME_SIZE as u64)? & !15).checked_sub(8)?;
    let end = if fp_addr != 0 { fp_addr + fpu.len() as u64 } else { addr + FRAME_SIZE as u64 };
    let mut bytes = vec![0u8; (end - addr) as usize];
    let put = |b: &mut [u8], off: usize, v: u64| b[off..off + 8].copy_from_slice(&v.to_le_bytes());
    put(&mut bytes, 0, act.restorer);
    let uc = UC_OFFSET;
    put(&mut bytes, uc, UC_FLAGS);
    put(&mut bytes, uc + 16, altstack.0);
    put(&mut bytes, uc + 24, altstack.1 as u32 as u64);
    put(&mut bytes, uc + 32, altstack.2);
    let mc = uc + MCONTEXT_OFFSET;
    for (i, v) in gregs(regs).iter().enumerate() {
        put(&mut bytes, mc + i * 8, *v);
    }
    // cs, gs, fs, ss (16 bits each): user code 0x33, data 0x2b, as Linux reports them.
    put(&mut bytes, mc + 18 * 8, 0x33 | (0x2b << 48));
    put(&mut bytes, mc + 19 * 8, info.err); // err
    put(&mut bytes, mc + 20 * 8, info.trapno); // trapno
    put(&mut bytes, mc + 21 * 8, mask); // oldmask
    put(&mut bytes, mc + 22 * 8, info.cr2); // cr2
    put(&mut bytes, mc + FPSTATE_WORD * 8, fp_addr);
    put(&mut bytes, uc + SIGMASK_OFFSET, mask);
    let inf = INFO_OFFSET;
    bytes[inf..inf + 4].copy_from_slice(&info.signo.to_le_bytes());
    bytes[inf + 8..inf + 12].copy_from_slice(&info.code.to_le_bytes());
    if info.fault {
        put(&mut bytes, inf + 16, info.addr);
    } else {
        bytes[inf + 16..inf + 20].copy_from_slice(&info.pid.to_le_bytes());
    }
    if fp_addr != 0 {
        let off = (fp_addr - addr) as usize;
        bytes[off..off + fpu.len()].copy_from_slice(fpu);
    }
    let r = UserRegs {
        rip: act.handler,
        rsp: addr,
        rdi: u64::from(info.signo),
        rsi: addr + INFO_OFFSET as u64,
        rdx: addr + UC_OFFSET as u64,
        rax: 0,
        rflags: regs.rflags & !(0x100 | 0x400), // clear TF and DF, as Linux
        fs_base: regs.fs_base,
        gs_base: regs.gs_base,
        ..*regs
    };
    Some(Frame { addr, bytes, regs: r })
}

/// What `rt_sigreturn` restores from a `ucontext` (its bytes, `UCONTEXT_SIZE` long).
#[derive(Debug, PartialEq, Eq)]
pub struct Restored {
    /// Registers (fs/gs base are kept from the caller's).
    pub regs: UserRegs,
    /// Signal mask.
    pub mask: u64,
    /// User address of the FPU image (0 = none).
    pub fpstate: u64,
}

/// Parses a `ucontext` as `rt_sigreturn` sees it; `cur` supplies what the frame does not hold.
pub fn parse_ucontext(uc: &[u8], cur: &UserRegs) -> Option<Restored> {
    if uc.len() < UCONTEXT_SIZE {
        return None;
    }
    let get = |off: usize| -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&uc[off..off + 8]);
        u64::from_le_bytes(b)
    };
    let mc = MCONTEXT_OFFSET;
    let g: [u64; 18] = core::array::from_fn(|i| get(mc + i * 8));
    let regs = UserRegs {
        r8: g[0],
        r9: g[1],
        r10: g[2],
        r11: g[3],
        r12: g[4],
        r13: g[5],
        r14: g[6],
        r15: g[7],
        rdi: g[8],
        rsi: g[9],
        rbp: g[10],
        rbx: g[11],
        rdx: g[12],
        rax: g[13],
        rcx: g[14],
        rsp: g[15],
        rip: g[16],
        // Only the user-modifiable flags (CF PF AF ZF SF TF DF OF AC ID... as FIX_EFLAGS).
        rflags: (cur.rflags & !0x4_0dd5) | (g[17] & 0x4_0dd5) | 0x2,
        fs_base: cur.fs_base,
        gs_base: cur.gs_base,
    };
    Some(Restored { regs, mask: get(SIGMASK_OFFSET) & !UNBLOCKABLE, fpstate: get(mc + FPSTATE_WORD * 8) })
}

/// The `wait4` status and `siginfo` code of a child that ended with `r`.
pub fn child_code(r: ExitReason) -> (i32, i32) {
    match r {
        ExitReason::Exited(c) => (1, c & 0xff),          // CLD_EXITED
        ExitReason::Signaled(s) => (2, s as i32),        // CLD_KILLED
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regs() -> UserRegs {
        UserRegs {
            rax: 1,
            rbx: 2,
            rcx: 3,
            rdx: 4,
            rsi: 5,
            rdi: 6,
            rbp: 7,
            rsp: 0x7fff_0000_1008,
            r8: 8,
            r9: 9,
            r10: 10,
            r11: 11,
            r12: 12,
            r13: 13,
            r14: 14,
            r15: 15,
            rip: 0x40_1000,
            rflags: 0x246,
            fs_base: 0x1234,
            gs_base: 0,
        }
    }

    #[test]
    fn layout_matches_linux() {
        assert_eq!(UCONTEXT_SIZE, 304);
        assert_eq!(FRAME_SIZE, 440);
        assert_eq!(INFO_OFFSET, 312);
    }

    #[test]
    fn frame_round_trips_through_sigreturn() {
        let act = SigAction { handler: 0x40_2000, flags: SA_RESTORER | SA_SIGINFO, restorer: 0x40_3000, mask: 0 };
        let fpu = [0xabu8; 832];
        let info = Info { signo: 10, code: 0, pid: 42, ..Info::default() };
        let r = regs();
        let f = build_frame(r.rsp, &r, &fpu, &info, &act, 0x5, (0, 2, 0)).unwrap();
        // ABI: at handler entry rsp + 8 is 16-byte aligned (as after a call).
        assert_eq!((f.regs.rsp + 8) % 16, 0);
        assert!(f.regs.rsp + (f.bytes.len() as u64) <= r.rsp - 128, "red zone kept");
        assert_eq!(f.regs.rip, 0x40_2000);
        assert_eq!(f.regs.rdi, 10);
        assert_eq!(f.regs.rsi, f.addr + 312);
        assert_eq!(f.regs.rdx, f.addr + 8);
        assert_eq!(&f.bytes[0..8], &0x40_3000u64.to_le_bytes(), "pretcode is the restorer");
        // uc_mcontext.rip (word 16) and rsp (word 15) in Linux order.
        let mc = 8 + 40;
        assert_eq!(&f.bytes[mc + 16 * 8..mc + 17 * 8], &0x40_1000u64.to_le_bytes());
        assert_eq!(&f.bytes[mc + 13 * 8..mc + 14 * 8], &1u64.to_le_bytes(), "rax");
        // fpstate points at a 64-byte aligned copy of the image inside the frame bytes.
        let fp = u64::from_le_bytes(f.bytes[mc + 23 * 8..mc + 24 * 8].try_into().unwrap());
        assert_eq!(fp % 64, 0);
        let off = (fp - f.addr) as usize;
        assert_eq!(&f.bytes[off..off + 832], &fpu[..]);
        // siginfo.
        assert_eq!(&f.bytes[312..316], &10u32.to_le_bytes());
        assert_eq!(&f.bytes[312 + 16..312 + 20], &42i32.to_le_bytes());
        // After the handler's `ret` pops pretcode, rsp = frame + 8 = the ucontext.
        let uc = &f.bytes[8..8 + UCONTEXT_SIZE];
        let back = parse_ucontext(uc, &f.regs).unwrap();
        assert_eq!(back.regs, r);
        assert_eq!(back.mask, 0x5);
        assert_eq!(back.fpstate, fp);
    }

    #[test]
    fn sigreturn_sanitizes() {
        let act = SigAction { handler: 1 << 20, flags: SA_RESTORER, restorer: 2 << 20, mask: 0 };
        let r = regs();
        let mut f = build_frame(r.rsp, &r, &[], &Info { signo: 2, ..Info::default() }, &act, u64::MAX, (0, 2, 0)).unwrap();
        // A handler that forges privileged flags (IOPL, VM) and an unblockable mask.
        let mc = 8 + 40;
        f.bytes[mc + 17 * 8..mc + 18 * 8].copy_from_slice(&0x2_3246u64.to_le_bytes());
        let back = parse_ucontext(&f.bytes[8..8 + UCONTEXT_SIZE], &f.regs).unwrap();
        assert_eq!(back.regs.rflags & 0x2_3000, 0, "IOPL and VM not taken");
        assert_eq!(back.mask & UNBLOCKABLE, 0);
        assert_eq!(back.fpstate, 0);
    }

    #[test]
    fn fault_frames_carry_trap_state() {
        let act = SigAction { handler: 0x40_2000, flags: SA_RESTORER | SA_SIGINFO, restorer: 0x40_3000, mask: 0 };
        let r = regs();
        let info = page_fault_info(0x1000, pf_error_write(), false);
        let f = build_frame(r.rsp, &r, &[], &info, &act, 0, (0, 2, 0)).unwrap();
        let mc = 8 + 40;
        let word = |i: usize| u64::from_le_bytes(f.bytes[mc + i * 8..mc + i * 8 + 8].try_into().unwrap());
        assert_eq!(word(19), 0x6, "err: write | user");
        assert_eq!(word(20), 14, "trapno");
        assert_eq!(word(22), 0x1000, "cr2");
        assert_eq!(&f.bytes[312..316], &11u32.to_le_bytes());
        assert_eq!(&f.bytes[320..324], &code::SEGV_MAPERR.to_le_bytes());
        assert_eq!(&f.bytes[328..336], &0x1000u64.to_le_bytes(), "si_addr");
        // A fault at address 0 still reports si_addr, not si_pid.
        let gp = exception_info(13, 0x18, r.rip, 0x80);
        assert_eq!((gp.signo, gp.code, gp.addr, gp.trapno, gp.err), (SIGSEGV, code::SI_KERNEL, 0, 13, 0x18));
        assert!(page_fault_info(0x5000, 0x7, true).code == code::SEGV_ACCERR);
    }

    fn pf_error_write() -> u64 {
        guest_abi::pvcs::pf_error::WRITE
    }

    #[test]
    fn exception_signals_like_linux() {
        let rip = 0x40_1234;
        let de = exception_info(0, 0, rip, 0);
        assert_eq!((de.signo, de.code, de.addr), (SIGFPE, code::FPE_INTDIV, rip));
        let ud = exception_info(6, 0, rip, 0);
        assert_eq!((ud.signo, ud.code, ud.addr), (SIGILL, code::ILL_ILLOPN, rip));
        let bp = exception_info(3, 0, rip, 0x80);
        assert_eq!((bp.signo, bp.code), (SIGTRAP, code::SI_KERNEL));
        let xm = exception_info(19, 0, rip, 3);
        assert_eq!((xm.signo, xm.code), (SIGFPE, 3));
        let ac = exception_info(17, 0, rip, 0);
        assert_eq!((ac.signo, ac.code), (SIGBUS, code::BUS_ADRALN));
    }

    #[test]
    fn forced_signals_reset_when_blocked_or_ignored() {
        let h = SigAction { handler: 0x40_2000, ..SigAction::default() };
        let mut acts = [SigAction::default(); NSIG];
        acts[10] = h;
        // Handled and not blocked: delivered to the handler, mask unchanged.
        assert_eq!(force_action(&mut acts, 0, SIGSEGV), (h, 0));
        // Blocked (a fault inside its own handler): reset to default and unblocked.
        let (a, m) = force_action(&mut acts, bit(SIGSEGV) | bit(2), SIGSEGV);
        assert_eq!((a.handler, m), (0, bit(2)));
        assert_eq!(acts[10].handler, 0);
        // Ignored: also default.
        acts[7].handler = 1;
        assert_eq!(force_action(&mut acts, 0, SIGFPE).0.handler, 0);
    }

    #[test]
    fn defaults() {
        assert_eq!(default_action(SIGCHLD), Default::Ignore);
        assert_eq!(default_action(SIGPIPE), Default::Terminate);
        let dfl = SigAction::default();
        assert!(ignored(&dfl, SIGCHLD));
        assert!(!ignored(&dfl, 15));
        let ign = SigAction { handler: 1, ..SigAction::default() };
        assert!(ignored(&ign, 15));
        assert!(!ignored(&ign, SIGKILL));
    }
}
