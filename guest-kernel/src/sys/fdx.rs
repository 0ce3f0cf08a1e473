//! Syscalls that make or manage special descriptors: `timerfd_create`/`settime`/`gettime`
//! (`crate::timerfd`), `signalfd`/`signalfd4` (`crate::signalfd`), `pidfd_open` and
//! `pidfd_send_signal` (`crate::pidfd`), `memfd_create`, `close_range`.
//!
//! Trust: `itimerspec`s and masks are read once and checked (`EINVAL` for negative or
//! unnormalised times); names are bounded (`memfd_create`: 249 bytes).

use super::{Ctx, KResult};
use alloc::vec::Vec;
use guest_fs::Errno;

const O_NONBLOCK: u32 = 0o4000;
const O_CLOEXEC: u32 = 0o2_000_000;

fn install(cx: &Ctx<'_>, f: alloc::sync::Arc<guest_fs::OpenFile>, cloexec: bool) -> KResult {
    cx.proc().fds.lock().alloc(f, cloexec, 0).map(i64::from)
}

/// `timerfd_create(2)`: `EINVAL` for other clocks or flags.
pub fn timerfd_create(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    use crate::timerfd::*;
    let clock = a[0] as u32;
    if !matches!(clock, CLOCK_REALTIME | CLOCK_MONOTONIC | CLOCK_BOOTTIME | CLOCK_REALTIME_ALARM | CLOCK_BOOTTIME_ALARM) {
        return Err(Errno::EINVAL);
    }
    let flags = a[1] as u32;
    if flags & !(O_NONBLOCK | O_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    install(cx, new(clock, flags), flags & O_CLOEXEC != 0)
}

fn ts_ns(sec: i64, nsec: i64) -> Result<u64, Errno> {
    if sec < 0 || !(0..1_000_000_000).contains(&nsec) {
        return Err(Errno::EINVAL);
    }
    Ok((sec as u64).saturating_mul(1_000_000_000).saturating_add(nsec as u64))
}

fn itimerspec(value: u64, interval: u64) -> [i64; 4] {
    let (is, ins) = crate::time::split(interval);
    let (vs, vns) = crate::time::split(value);
    [is, ins, vs, vns]
}

/// `timerfd_settime(2)`.
pub fn timerfd_settime(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    use crate::timerfd::{TFD_TIMER_ABSTIME, TFD_TIMER_CANCEL_ON_SET};
    let flags = a[1] as u32;
    if flags & !(TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET) != 0 {
        return Err(Errno::EINVAL);
    }
    let f = cx.proc().fds.lock().get(a[0] as i32)?;
    let t = crate::timerfd::of_file(&f)?;
    let v: [i64; 4] = cx.read(a[2])?;
    let interval = ts_ns(v[0], v[1])?;
    let value = ts_ns(v[2], v[3])?;
    let (ov, oi) = t.set(flags, value, interval);
    if a[3] != 0 {
        cx.write(a[3], &itimerspec(ov, oi))?;
    }
    Ok(0)
}

/// `timerfd_gettime(2)`.
pub fn timerfd_gettime(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let f = cx.proc().fds.lock().get(a[0] as i32)?;
    let (v, i) = crate::timerfd::of_file(&f)?.get();
    cx.write(a[1], &itimerspec(v, i))?;
    Ok(0)
}

/// `signalfd4(2)` (`signalfd(2)` with flags 0): a new signalfd for `fd` -1, else a new mask
/// for the signalfd `fd`. `SIGKILL` and `SIGSTOP` are never reported.
pub fn signalfd4(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let flags = a[3] as u32;
    if flags & !(O_NONBLOCK | O_CLOEXEC) != 0 || a[2] != 8 {
        return Err(Errno::EINVAL);
    }
    let mask: u64 = cx.read(a[1])?;
    let mask = mask & !crate::signal::UNBLOCKABLE;
    let fd = a[0] as i32;
    if fd == -1 {
        return install(cx, crate::signalfd::new(mask, flags), flags & O_CLOEXEC != 0);
    }
    let f = cx.proc().fds.lock().get(fd)?;
    crate::signalfd::of_file(&f)?.set_mask(mask);
    Ok(i64::from(fd))
}

/// `pidfd_open(2)`: `flags` 0 or `PIDFD_NONBLOCK`; `ESRCH` for no such process.
pub fn pidfd_open(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let flags = a[1] as u32;
    if flags & !O_NONBLOCK != 0 || (a[0] as i32) <= 0 {
        return Err(Errno::EINVAL);
    }
    let p = crate::proc::lookup(a[0] as i32).ok_or(Errno::ESRCH)?;
    // A pidfd always has close-on-exec set (pidfd_open(2)).
    install(cx, crate::pidfd::new(&p, flags), true)
}

/// `pidfd_send_signal(2)`: `flags` must be 0; a given `siginfo` is read (`EFAULT`) but its
/// fields are not kept (pending signals carry no details here).
pub fn pidfd_send_signal(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    if a[3] != 0 {
        return Err(Errno::EINVAL);
    }
    let sig = a[1] as u32;
    if sig as usize > crate::proc::NSIG {
        return Err(Errno::EINVAL);
    }
    if a[2] != 0 {
        cx.copy_in(a[2], 128)?;
    }
    let f = cx.proc().fds.lock().get(a[0] as i32)?;
    let pf = crate::pidfd::of_file(&f).map_err(|_| Errno::EBADF)?;
    let p = pf.live().ok_or(Errno::ESRCH)?;
    if sig != 0 {
        crate::signal::post_from_kill(&p, sig, cx.t.proc.pid);
    }
    Ok(0)
}

/// `close_range(2)`: closes (or with `CLOSE_RANGE_CLOEXEC` marks close-on-exec) every open fd
/// in `first..=last`. `CLOSE_RANGE_UNSHARE` is accepted: fd tables are per process here.
pub fn close_range(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    const UNSHARE: u32 = 2;
    const CLOEXEC: u32 = 4;
    let (first, last, flags) = (a[0] as u32, a[1] as u32, a[2] as u32);
    if flags & !(UNSHARE | CLOEXEC) != 0 || first > last {
        return Err(Errno::EINVAL);
    }
    let p = cx.proc();
    let mut closed = Vec::new();
    {
        let mut fds = p.fds.lock();
        let hit: Vec<i32> = fds.iter().map(|(fd, _)| fd).filter(|&fd| (first..=last).contains(&(fd as u32))).collect();
        for fd in hit {
            if flags & CLOEXEC != 0 {
                let _ = fds.set_cloexec(fd, true);
            } else if let Ok(f) = fds.close(fd) {
                closed.push(f);
            }
        }
    }
    // Descriptions are dropped with no lock held (a socket's release locks its peer).
    drop(closed);
    Ok(0)
}

/// `memfd_create(2)`: an unlinked regular file on the `/dev/shm` tmpfs (made under a unique
/// name and removed at once), shown as `/memfd:NAME (deleted)`. `MFD_HUGETLB` is `EINVAL`;
/// `MFD_ALLOW_SEALING` is accepted but seals are not implemented (`F_ADD_SEALS` fails).
pub fn memfd_create(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    const MFD_CLOEXEC: u32 = 1;
    const MFD_ALLOW_SEALING: u32 = 2;
    const MFD_NOEXEC_SEAL: u32 = 8;
    const MFD_EXEC: u32 = 0x10;
    static NEXT: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);
    let flags = a[1] as u32;
    if flags & !(MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL | MFD_EXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    let name = cx.path(a[0])?;
    if name.len() > 249 {
        return Err(Errno::EINVAL);
    }
    let p = cx.proc();
    let mut ctx = p.fs.lock().clone();
    ctx.umask = 0;
    let n = NEXT.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
    let tmp = alloc::format!("/dev/shm/.memfd-{}-{n}", p.pid).into_bytes();
    let fds = guest_fs::FdTable::new();
    let vfs = crate::fs::vfs();
    let o_flags = linux_raw_sys::general::O_RDWR | linux_raw_sys::general::O_CREAT | linux_raw_sys::general::O_EXCL;
    let f = guest_fs::open_file(vfs, &ctx, &fds, guest_fs::AT_FDCWD, &tmp, o_flags, 0o777)?;
    let _ = guest_fs::unlinkat(vfs, &ctx, &fds, guest_fs::AT_FDCWD, &tmp, 0);
    let mut shown = b"/memfd:".to_vec();
    shown.extend_from_slice(&name);
    shown.extend_from_slice(b" (deleted)");
    f.set_path(shown);
    install(cx, f, flags & MFD_CLOEXEC != 0)
}
