//! Signal syscalls. Issue 2 scope: actions and masks are recorded (`rt_sigaction`,
//! `rt_sigprocmask`, `sigaltstack`); a signal sent to the process itself takes its default
//! action (terminate, ignore); handlers are not invoked yet (issue 3 delivers signals).

use super::{Ctx, KResult, SysRet};
use crate::proc::{ExitReason, SigAction, NSIG};
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

/// Default action of `sig` for this process: `Some(exit)` if it terminates.
fn default_action(cx: &Ctx<'_>, sig: u32) -> Option<ExitReason> {
    let act = cx.t.proc.sigactions.lock()[sig as usize - 1];
    if sig != SIGKILL && act.handler == 1 {
        return None; // SIG_IGN
    }
    match sig {
        17 | 23 | 28 => None,       // SIGCHLD, SIGURG, SIGWINCH: ignore
        18..=22 => None, // SIGCONT and stop signals: no job control yet
        _ => Some(ExitReason::Signaled(sig)),
    }
}

/// `kill(2)`: our own pid (or 0/-1/own group) gets the default action; others `ESRCH`.
pub fn kill(cx: &mut Ctx<'_>, pid: i32, sig: u32) -> SysRet {
    let me = cx.t.proc.pid;
    let pgid = cx.t.proc.pgid.load(core::sync::atomic::Ordering::Relaxed);
    let target_self = pid == me || pid == 0 || pid == -1 || pid == -pgid;
    if sig as usize > NSIG {
        return SysRet::Ret(-(i64::from(Errno::EINVAL.0)));
    }
    if !target_self {
        let exists = pid > 0 && crate::proc::PROCESSES.lock().contains_key(&pid);
        return SysRet::Ret(if exists { 0 } else { -(i64::from(Errno::ESRCH.0)) });
    }
    if sig == 0 {
        return SysRet::Ret(0);
    }
    match default_action(cx, sig) {
        Some(e) => SysRet::Exit(e),
        None => SysRet::Ret(0),
    }
}

/// `tgkill(2)` / `tkill(2)`.
pub fn tgkill(cx: &mut Ctx<'_>, tgid: i32, tid: i32, sig: u32) -> SysRet {
    if tgid != cx.t.proc.pid || tid != cx.t.tid {
        return SysRet::Ret(-(i64::from(Errno::ESRCH.0)));
    }
    kill(cx, tgid, sig)
}
