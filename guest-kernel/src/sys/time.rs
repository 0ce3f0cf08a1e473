//! Time syscalls: `clock_gettime`, `clock_getres`, `gettimeofday`, `time`, `nanosleep`,
//! `clock_nanosleep` (the thread blocks until its deadline; an idle vCPU halts with
//! `SET_TIMER`), `alarm` and `ITIMER_REAL` (deliver `SIGALRM`).

use super::{Ctx, KResult};
use crate::time::{monotonic_ns, realtime_ns, split};
use guest_fs::Errno;

/// `CLOCK_*` ids Linux defines (0..=11, minus the removed 10). The ones the vDSO serves come
/// from `crate::time::clock_ns`, the same arithmetic as the vDSO's.
fn clock_ns(cx: &Ctx<'_>, id: u64) -> Result<u64, Errno> {
    if id <= 11
        && let Some(ns) = crate::time::clock_ns(id as i32)
    {
        return Ok(ns);
    }
    Ok(match id {
        8 => realtime_ns(),  // REALTIME_ALARM
        9 => monotonic_ns(), // BOOTTIME_ALARM
        2 => crate::time::uptime_ns().saturating_sub(cx.t.proc.start_ns), // PROCESS_CPUTIME_ID
        3 => crate::time::uptime_ns().saturating_sub(cx.t.proc.start_ns), // THREAD_CPUTIME_ID
        _ => return Err(Errno::EINVAL),
    })
}

/// `clock_gettime(2)`.
pub fn clock_gettime(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let ns = clock_ns(cx, a[0])?;
    let (s, n) = split(ns);
    cx.write(a[1], &[s, n])?;
    Ok(0)
}

/// `clock_getres(2)`: 1 ns (4 ms for the coarse clocks).
pub fn clock_getres(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    clock_ns(cx, a[0])?;
    if a[1] != 0 {
        let res = pvm_vdso::vvar::res_ns(a[0] as i32).filter(|_| a[0] <= 11).unwrap_or(1) as i64;
        cx.write(a[1], &[0i64, res])?;
    }
    Ok(0)
}

/// `gettimeofday(2)`.
pub fn gettimeofday(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    if a[0] != 0 {
        let (s, n) = split(realtime_ns());
        cx.write(a[0], &[s, n / 1000])?;
    }
    if a[1] != 0 {
        cx.write(a[1], &[0i32, 0i32])?;
    }
    Ok(0)
}

/// `time(2)`.
pub fn time(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let s = split(realtime_ns()).0;
    if a[0] != 0 {
        cx.write(a[0], &s)?;
    }
    Ok(s)
}

/// Waits `ns` nanoseconds of `CLOCK_MONOTONIC` inside the kernel (busy-wait with a pause
/// hint). Only for short waits where the caller cannot block.
pub fn sleep_ns(ns: u64) {
    let deadline = monotonic_ns().saturating_add(ns);
    while monotonic_ns() < deadline {
        for _ in 0..64 {
            crate::arch::pause();
        }
    }
}

/// Blocks the calling thread until `CLOCK_MONOTONIC` reaches its deadline, set from `ns` on
/// the first call (the syscall re-runs when the thread wakes). `Ok(())` once it passed.
pub fn block_for(cx: &mut Ctx<'_>, ns: impl FnOnce() -> u64) -> Result<(), Errno> {
    let now = monotonic_ns();
    let deadline = *cx.t.deadline.get_or_insert_with(|| now.saturating_add(ns()));
    if now >= deadline {
        return Ok(());
    }
    Err(super::EBLOCK)
}

/// `nanosleep(2)` / `clock_nanosleep(2)` (`flags` bit 0 = `TIMER_ABSTIME`): blocks, the vCPU
/// halts when nothing else runs.
pub fn nanosleep(cx: &mut Ctx<'_>, clock: u64, flags: u64, req: u64, _rem: u64) -> KResult {
    if cx.t.deadline.is_none() {
        let ts: [i64; 2] = cx.read(req)?;
        if ts[0] < 0 || !(0..1_000_000_000).contains(&ts[1]) {
            return Err(Errno::EINVAL);
        }
        let want = (ts[0] as u64).saturating_mul(1_000_000_000).saturating_add(ts[1] as u64);
        let now = clock_ns(cx, clock)?;
        let ns = if flags & 1 != 0 { want.saturating_sub(now) } else { want };
        if ns == 0 {
            return Ok(0);
        }
        block_for(cx, || ns)?;
        return Ok(0);
    }
    block_for(cx, || 0)?;
    Ok(0)
}

/// `alarm(2)`: returns the seconds left on the previous alarm.
pub fn alarm(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let secs = a[0] as u32;
    let deadline = if secs == 0 { 0 } else { monotonic_ns().saturating_add(u64::from(secs) * 1_000_000_000) };
    Ok(crate::sched::set_alarm(cx.t.proc.pid, deadline) as i64)
}

/// `setitimer(2)` / `getitimer(2)`: `ITIMER_REAL` one-shot (the interval is not re-armed);
/// the virtual and profiling timers report disarmed.
pub fn itimer(cx: &mut Ctx<'_>, n: u32, a: [u64; 6]) -> KResult {
    if a[0] > 2 {
        return Err(Errno::EINVAL);
    }
    let get = n == linux_raw_sys::general::__NR_getitimer;
    let out = if get { a[1] } else { a[2] };
    let mut old_ns = 0;
    if !get && a[0] == 0 {
        let v: [i64; 4] = if a[1] != 0 { cx.read(a[1])? } else { [0; 4] };
        let ns = (v[2].max(0) as u64).saturating_mul(1_000_000_000).saturating_add(v[3].max(0) as u64 * 1000);
        let deadline = if ns == 0 { 0 } else { monotonic_ns().saturating_add(ns) };
        old_ns = crate::sched::set_alarm(cx.t.proc.pid, deadline) * 1_000_000_000;
    }
    if out != 0 {
        let (s, ns) = split(old_ns);
        cx.write(out, &[0i64, 0, s, ns / 1000])?;
    }
    Ok(0)
}
