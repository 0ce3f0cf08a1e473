//! Waiting for children: `wait4(2)` and `waitid(2)`. A zombie child is reaped (removed from
//! the process table) and its status reported; with live children and no `WNOHANG` the caller
//! blocks until a child exits.

use super::{Ctx, KResult, EBLOCK};
use crate::proc::{ExitReason, Process, PROCESSES};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;
use guest_fs::Errno;

/// `WNOHANG`.
const WNOHANG: u64 = 1;
/// `WEXITED` (waitid).
const WEXITED: u64 = 4;
/// `WNOWAIT` (waitid).
const WNOWAIT: u64 = 0x0100_0000;

/// Which children a wait selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Select {
    /// Any child.
    Any,
    /// The child with this pid.
    Pid(i32),
    /// Children in this process group.
    Group(i32),
}

impl Select {
    fn matches(self, p: &Process) -> bool {
        match self {
            Select::Any => true,
            Select::Pid(pid) => p.pid == pid,
            Select::Group(g) => p.pgid.load(Ordering::Relaxed) == g,
        }
    }
}

/// Finds a child of `me` matching `sel`: `Ok(Some(zombie))`, `Ok(None)` when only live ones
/// match, `Err(ECHILD)` when none does.
pub fn find(me: i32, sel: Select) -> Result<Option<(Arc<Process>, ExitReason)>, Errno> {
    let procs = PROCESSES.read();
    let mut any = false;
    for c in procs.values() {
        if c.ppid.load(Ordering::Relaxed) != me || !sel.matches(c) {
            continue;
        }
        any = true;
        if let Some(r) = *c.exit.lock() {
            return Ok(Some((c.clone(), r)));
        }
    }
    if any { Ok(None) } else { Err(Errno::ECHILD) }
}

/// Removes a reaped child from the process table.
fn reap(c: &Process) {
    PROCESSES.lock().remove(&c.pid);
}

/// `wait4(2)`: (pid, status*, options, rusage*).
pub fn wait4(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let pid = a[0] as i32;
    let options = a[2];
    if options & !(WNOHANG | 2 | 8 | 0x2000_0000 | 0x4000_0000 | 0x8000_0000) != 0 {
        return Err(Errno::EINVAL);
    }
    let me = cx.t.proc.pid;
    let sel = match pid {
        -1 => Select::Any,
        0 => Select::Group(cx.t.proc.pgid.load(Ordering::Relaxed)),
        p if p < 0 => Select::Group(p.wrapping_neg()),
        p => Select::Pid(p),
    };
    match find(me, sel)? {
        Some((c, r)) => {
            if a[1] != 0 {
                cx.write(a[1], &r.wait_status())?;
            }
            if a[3] != 0 {
                cx.write(a[3], &[0u64; 18])?;
            }
            reap(&c);
            Ok(i64::from(c.pid))
        }
        None if options & WNOHANG != 0 => Ok(0),
        None => Err(EBLOCK),
    }
}

/// `waitid(2)`: (idtype, id, infop, options, rusage*).
pub fn waitid(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let (idtype, id, infop, options) = (a[0], a[1] as i32, a[2], a[3]);
    if options & WEXITED == 0 {
        return Err(Errno::EINVAL);
    }
    let sel = match idtype {
        0 => Select::Any,
        1 => Select::Pid(id),
        2 => Select::Group(if id == 0 { cx.t.proc.pgid.load(Ordering::Relaxed) } else { id }),
        // P_PIDFD: the process a pidfd names (`EBADF` for other fds).
        3 => {
            let f = cx.t.proc.fds.lock().get(id)?;
            Select::Pid(crate::pidfd::of_file(&f)?.pid())
        }
        _ => return Err(Errno::EINVAL),
    };
    match find(cx.t.proc.pid, sel)? {
        Some((c, r)) => {
            if infop != 0 {
                let (code, status) = crate::signal::child_code(r);
                let mut info: Vec<u8> = alloc::vec![0u8; 128];
                info[0..4].copy_from_slice(&17i32.to_le_bytes());
                info[8..12].copy_from_slice(&code.to_le_bytes());
                info[16..20].copy_from_slice(&c.pid.to_le_bytes());
                info[24..28].copy_from_slice(&status.to_le_bytes());
                cx.copy_out(infop, &info)?;
            }
            if options & WNOWAIT == 0 {
                reap(&c);
            }
            Ok(0)
        }
        None if options & WNOHANG != 0 => {
            if infop != 0 {
                cx.copy_out(infop, &[0u8; 128])?;
            }
            Ok(0)
        }
        None => Err(EBLOCK),
    }
}
