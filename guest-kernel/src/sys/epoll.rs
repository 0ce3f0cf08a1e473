//! Readiness syscalls beyond `poll`/`select` (which are in `super::fs`): `epoll_create1`,
//! `epoll_ctl`, `epoll_wait`/`epoll_pwait`/`epoll_pwait2` (`crate::epoll`), `eventfd2`
//! (`crate::eventfd`), and the temporary signal mask of `ppoll`/`pselect6`/`epoll_pwait`.
//!
//! Trust: the event array is written only up to `maxevents` (checked against
//! `INT_MAX / sizeof(struct epoll_event)` as Linux does); masks and timeouts are read once.

use super::{Ctx, EBLOCK, KResult};
use crate::epoll;
use guest_fs::Errno;

/// `sizeof(struct epoll_event)` on x86-64 (packed: `u32 events; u64 data`).
const EVENT_SIZE: usize = 12;
/// `EPOLL_CLOEXEC`.
const EPOLL_CLOEXEC: u64 = 0o2_000_000;

/// Installs the signal mask at `va` (a `sigset_t` of `size` bytes, 8 on x86-64: `EINVAL`
/// otherwise) for the rest of a wait: the first run of the call saves the thread's mask in
/// `saved_sigmask` (a signal handler entered meanwhile records that one in its frame, so the
/// old mask comes back at `sigreturn`, as `sigsuspend` does); re-runs keep it. No mask
/// (`va` 0) changes nothing.
pub fn set_wait_mask(cx: &mut Ctx<'_>, va: u64, size: u64) -> Result<(), Errno> {
    if va == 0 || cx.t.saved_sigmask.is_some() {
        return Ok(());
    }
    if size != 8 {
        return Err(Errno::EINVAL);
    }
    let m: u64 = cx.read(va)?;
    cx.t.saved_sigmask = Some(cx.t.sigmask);
    cx.t.sigmask = m & !crate::signal::UNBLOCKABLE;
    Ok(())
}

/// Ends a wait begun with [`set_wait_mask`]: unless the call blocks again, the saved mask
/// comes back now.
pub fn end_wait_mask(cx: &mut Ctx<'_>, r: KResult) -> KResult {
    if r != Err(EBLOCK)
        && let Some(m) = cx.t.saved_sigmask.take()
    {
        cx.t.sigmask = m;
    }
    r
}

/// Reads a `struct timespec` timeout (`EINVAL` when negative or not normalised); `None` for
/// a null pointer (wait forever).
pub fn read_timeout(cx: &Ctx<'_>, va: u64) -> Result<Option<u64>, Errno> {
    if va == 0 {
        return Ok(None);
    }
    let ts: [i64; 2] = cx.read(va)?;
    if ts[0] < 0 || !(0..1_000_000_000).contains(&ts[1]) {
        return Err(Errno::EINVAL);
    }
    Ok(Some((ts[0] as u64).saturating_mul(1_000_000_000).saturating_add(ts[1] as u64)))
}

/// `epoll_create1(2)` / `epoll_create(2)` (`size` must be positive: `legacy`).
pub fn epoll_create(cx: &mut Ctx<'_>, a: [u64; 6], legacy: bool) -> KResult {
    let cloexec = if legacy {
        if (a[0] as i32) <= 0 {
            return Err(Errno::EINVAL);
        }
        false
    } else {
        if a[0] & !EPOLL_CLOEXEC != 0 {
            return Err(Errno::EINVAL);
        }
        a[0] & EPOLL_CLOEXEC != 0
    };
    cx.proc().fds.lock().alloc(epoll::new_file(), cloexec, 0).map(i64::from)
}

/// `epoll_ctl(2)`: `EBADF` for bad fds, `EINVAL` if `epfd` is no epoll or is `fd`, `EPERM`
/// for files that are always ready (regular files, directories).
pub fn epoll_ctl(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let (epf, target) = {
        let p = cx.proc();
        let fds = p.fds.lock();
        (fds.get(a[0] as i32)?, fds.get(a[2] as i32)?)
    };
    let ep = epoll::of_file(&epf).ok_or(Errno::EINVAL)?;
    if alloc::sync::Arc::ptr_eq(&epf, &target) {
        return Err(Errno::EINVAL);
    }
    if target.always_ready() {
        return Err(Errno::EPERM);
    }
    let op = a[1] as u32;
    let ev = if op == epoll::CTL_DEL {
        (0, 0)
    } else {
        let raw = cx.copy_in(a[3], EVENT_SIZE)?;
        let events = u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]);
        let mut d = [0u8; 8];
        d.copy_from_slice(&raw[4..12]);
        (events, u64::from_le_bytes(d))
    };
    ep.ctl(op, a[2] as i32, &target, ev).map(|()| 0)
}

/// `epoll_wait(2)` and friends with the timeout in ns (`None`: forever).
fn wait(cx: &mut Ctx<'_>, epfd: u64, events: u64, max: u64, timeout: Option<u64>) -> KResult {
    let max = max as i32;
    if max <= 0 || max as usize > i32::MAX as usize / EVENT_SIZE {
        return Err(Errno::EINVAL);
    }
    let epf = cx.proc().fds.lock().get(epfd as i32)?;
    let ep = epoll::of_file(&epf).ok_or(Errno::EINVAL)?;
    // Before the scan: a ctl that lands during it wakes us.
    ep.register_waiter();
    let ready = ep.collect(max as usize, true);
    if ready.is_empty() {
        match timeout {
            Some(0) => return Ok(0),
            Some(ns) => {
                crate::sys::time::block_for(cx, || ns)?;
                return Ok(0);
            }
            None => return Err(EBLOCK),
        }
    }
    let mut out = alloc::vec::Vec::with_capacity(ready.len() * EVENT_SIZE);
    for (e, d) in &ready {
        out.extend_from_slice(&e.to_le_bytes());
        out.extend_from_slice(&d.to_le_bytes());
    }
    cx.copy_out(events, &out)?;
    Ok(ready.len() as i64)
}

fn ms_timeout(ms: u64) -> Option<u64> {
    let ms = ms as i32;
    (ms >= 0).then(|| ms as u64 * 1_000_000)
}

/// `epoll_wait(2)`.
pub fn epoll_wait(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    wait(cx, a[0], a[1], a[2], ms_timeout(a[3]))
}

/// `epoll_pwait(2)`: with a signal mask for the wait.
pub fn epoll_pwait(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    set_wait_mask(cx, a[4], a[5])?;
    let r = wait(cx, a[0], a[1], a[2], ms_timeout(a[3]));
    end_wait_mask(cx, r)
}

/// `epoll_pwait2(2)`: the timeout is a `timespec`.
pub fn epoll_pwait2(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let timeout = read_timeout(cx, a[3])?;
    set_wait_mask(cx, a[4], a[5])?;
    let r = wait(cx, a[0], a[1], a[2], timeout);
    end_wait_mask(cx, r)
}

/// `eventfd2(2)` / `eventfd(2)` (`flags` 0).
pub fn eventfd2(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    use crate::eventfd::{EFD_CLOEXEC, EFD_NONBLOCK, EFD_SEMAPHORE};
    let flags = a[1] as u32;
    if flags & !(EFD_CLOEXEC | EFD_NONBLOCK | EFD_SEMAPHORE) != 0 {
        return Err(Errno::EINVAL);
    }
    let f = crate::eventfd::new(a[0] as u32, flags);
    cx.proc().fds.lock().alloc(f, flags & EFD_CLOEXEC != 0, 0).map(i64::from)
}
