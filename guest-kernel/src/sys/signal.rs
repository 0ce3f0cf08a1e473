//! Signal syscalls: actions, masks, alternate stacks, `kill`/`tgkill`, `rt_sigsuspend`,
//! `rt_sigpending`, `rt_sigreturn`. Posting and delivery live in `crate::signal`.

use super::{Ctx, KResult, SysRet};
use crate::proc::{ExitReason, Process, SigAction, NSIG};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;
use guest_fs::Errno;

const SIGKILL: u32 = 9;
const SIGSTOP: u32 = 19;

/// `rt_sigaction(2)`.
pub fn rt_sigaction(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let (sig, act, old, size) = (a[0] as usize, a[1], a[2], a[3]);
    if size != 8 || sig == 0 || sig > NSIG {
        return Err(Errno::EINVAL);
    }
    let new: Option<SigAction> = if act != 0 { Some(cx.read(act)?) } else { None };
    if new.is_some() && (sig as u32 == SIGKILL || sig as u32 == SIGSTOP) {
        return Err(Errno::EINVAL);
    }
    let p = cx.proc();
    let prev = {
        let mut acts = p.sigactions.lock();
        let prev = acts[sig - 1];
        if let Some(n) = new {
            acts[sig - 1] = n;
        }
        prev
    };
    if old != 0 {
        cx.write(old, &prev)?;
    }
    Ok(0)
}

/// `rt_sigprocmask(2)`.
pub fn rt_sigprocmask(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let (how, set, old, size) = (a[0], a[1], a[2], a[3]);
    if size != 8 {
        return Err(Errno::EINVAL);
    }
    let prev = cx.t.sigmask;
    if set != 0 {
        let s: u64 = cx.read(set)?;
        let s = s & !((1 << (SIGKILL - 1)) | (1 << (SIGSTOP - 1)));
        cx.t.sigmask = match how {
            0 => prev | s,
            1 => prev & !s,
            2 => s,
            _ => return Err(Errno::EINVAL),
        };
    }
    if old != 0 {
        cx.write(old, &prev)?;
    }
    Ok(0)
}

/// `sigaltstack(2)`.
pub fn sigaltstack(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let prev = cx.t.altstack;
    if a[0] != 0 {
        let raw: [u64; 3] = cx.read(a[0])?;
        let flags = raw[1] as i32;
        if flags & !(2 | (1 << 31)) != 0 {
            return Err(Errno::EINVAL);
        }
        if flags & 2 == 0 && raw[2] < 2048 {
            return Err(Errno::ENOMEM);
        }
        cx.t.altstack = (raw[0], flags, raw[2]);
    }
    if a[1] != 0 {
        cx.write(a[1], &[prev.0, prev.1 as u32 as u64, prev.2])?;
    }
    Ok(0)
}

/// `kill(2)`: to a process, a process group (0: ours), or everyone but the first process
/// and the caller (-1). The caller's own signal is taken on its way back to user code.
/// The first process, as the init of the guest's pid namespace, drops signals with the default
/// action (`crate::signal::post_from_kill`).
pub fn kill(cx: &mut Ctx<'_>, pid: i32, sig: u32) -> SysRet {
    if sig as usize > NSIG {
        return SysRet::Ret(-(i64::from(Errno::EINVAL.0)));
    }
    let me = cx.t.proc.pid;
    let targets: Vec<Arc<Process>> = {
        let procs = crate::proc::PROCESSES.read();
        match pid {
            p if p > 0 => procs.get(&p).cloned().into_iter().collect(),
            -1 => procs.values().filter(|p| p.pid != me && p.pid != crate::boot::init_pid()).cloned().collect(),
            p => {
                let g = if p == 0 { cx.t.proc.pgid.load(Ordering::Relaxed) } else { p.wrapping_neg() };
                procs.values().filter(|p| p.pgid.load(Ordering::Relaxed) == g).cloned().collect()
            }
        }
    };
    if targets.is_empty() {
        return SysRet::Ret(-(i64::from(Errno::ESRCH.0)));
    }
    if sig != 0 {
        for p in &targets {
            crate::signal::post_from_kill(p, sig, me);
        }
    }
    SysRet::Ret(0)
}

/// `tgkill(2)`: a signal to thread `tid` of process `tgid`. `man 2 tgkill`: EINVAL when
/// `tgid` or `tid` is not positive (kernel/signal.c `SYSCALL_DEFINE3(tgkill)`).
pub fn tgkill(cx: &mut Ctx<'_>, tgid: i32, tid: i32, sig: u32) -> SysRet {
    if tgid <= 0 {
        return SysRet::Ret(-(i64::from(Errno::EINVAL.0)));
    }
    thread_kill(cx, Some(tgid), tid, sig)
}

/// `tkill(2)`: a signal to thread `tid` of whatever process; EINVAL when `tid` is not positive.
pub fn tkill(cx: &mut Ctx<'_>, tid: i32, sig: u32) -> SysRet {
    thread_kill(cx, None, tid, sig)
}

/// What `tgkill` and `tkill` share (kernel/signal.c `do_tkill`).
fn thread_kill(cx: &mut Ctx<'_>, tgid: Option<i32>, tid: i32, sig: u32) -> SysRet {
    if tid <= 0 || sig as usize > NSIG {
        return SysRet::Ret(-(i64::from(Errno::EINVAL.0)));
    }
    let me = cx.t.proc.pid;
    match crate::proc::lookup_thread(tid) {
        Some((p, t)) if tgid.is_none_or(|g| p.pid == g) => {
            if sig != 0 {
                crate::signal::post_thread(&p, &t, sig, me);
            }
            SysRet::Ret(0)
        }
        _ => SysRet::Ret(-(i64::from(Errno::ESRCH.0))),
    }
}

/// `rt_sigpending(2)`.
pub fn rt_sigpending(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let pend = crate::signal::pending(cx.t) & cx.t.sigmask;
    cx.write(a[0], &pend)?;
    Ok(0)
}

/// `rt_sigsuspend(2)`: waits for a signal with the given mask; the old mask comes back when
/// the handler returns (it is what the signal frame records).
pub fn rt_sigsuspend(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    if a[1] != 8 {
        return Err(Errno::EINVAL);
    }
    if cx.t.saved_sigmask.is_none() {
        let m: u64 = cx.read(a[0])?;
        cx.t.saved_sigmask = Some(cx.t.sigmask);
        cx.t.sigmask = m & !crate::signal::UNBLOCKABLE;
    }
    Err(super::EBLOCK)
}

/// `rt_sigreturn(2)`: restores what the signal frame at `rsp` (after the handler's `ret`
/// popped `pretcode`, `rsp` is the `ucontext`) saved. A bad frame kills with `SIGSEGV`.
pub fn rt_sigreturn(cx: &mut Ctx<'_>) -> SysRet {
    let uc_addr = cx.t.ctx.regs.rsp;
    let Ok(uc) = cx.copy_in(uc_addr, crate::signal::UCONTEXT_SIZE) else {
        return SysRet::Exit(ExitReason::Signaled(crate::signal::SIGSEGV));
    };
    let Some(r) = crate::signal::parse_ucontext(&uc, &cx.t.ctx.regs) else {
        return SysRet::Exit(ExitReason::Signaled(crate::signal::SIGSEGV));
    };
    if r.fpstate != 0 {
        let len = crate::sched::current_fpu(cx.vcpu, cx.t).len();
        match cx.copy_in(r.fpstate, len) {
            Ok(img) if !img.is_empty() => {
                cx.t.ctx.fpu = img;
                cx.t.fpu = crate::platform::FpuAction::Restore;
            }
            Ok(_) => {}
            Err(_) => return SysRet::Exit(ExitReason::Signaled(crate::signal::SIGSEGV)),
        }
    }
    cx.t.ctx.regs = r.regs;
    cx.t.sigmask = r.mask;
    SysRet::Replaced
}
