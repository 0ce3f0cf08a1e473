//! Time syscalls: `clock_gettime`, `clock_getres`, `gettimeofday`, `time`, `nanosleep`,
//! `clock_nanosleep` (a sleep spins on the clock, yielding the host CPU with `HALT` when
//! a timer is armed), interval timers (accepted, not fired yet).

use super::{Ctx, KResult};
use crate::time::{monotonic_ns, realtime_ns, split};
use guest_fs::Errno;

/// `CLOCK_*` ids Linux defines (0..=11, minus the removed 10).
fn clock_ns(cx: &Ctx<'_>, id: u64) -> Result<u64, Errno> {
    Ok(match id {
        0 | 8 | 11 => realtime_ns(),                  // REALTIME, REALTIME_ALARM, TAI
        1 | 4 | 7 | 9 => monotonic_ns(),              // MONOTONIC, _RAW, BOOTTIME, BOOTTIME_ALARM
        5 | 6 => monotonic_ns() / 4_000_000 * 4_000_000, // *_COARSE
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
        let res: i64 = if matches!(a[0], 5 | 6) { 4_000_000 } else { 1 };
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

/// Waits `ns` nanoseconds of `CLOCK_MONOTONIC` (busy-wait with a pause hint; there is
/// nothing else to run while a lone process sleeps).
pub fn sleep_ns(ns: u64) {
    let deadline = monotonic_ns().saturating_add(ns);
    while monotonic_ns() < deadline {
        for _ in 0..64 {
            crate::arch::pause();
        }
    }
}

/// `nanosleep(2)` / `clock_nanosleep(2)` (`flags` bit 0 = `TIMER_ABSTIME`).
pub fn nanosleep(cx: &mut Ctx<'_>, clock: u64, flags: u64, req: u64, _rem: u64) -> KResult {
    let ts: [i64; 2] = cx.read(req)?;
    if ts[0] < 0 || !(0..1_000_000_000).contains(&ts[1]) {
        return Err(Errno::EINVAL);
    }
    let want = (ts[0] as u64).saturating_mul(1_000_000_000).saturating_add(ts[1] as u64);
    let now = clock_ns(cx, clock)?;
    let ns = if flags & 1 != 0 { want.saturating_sub(now) } else { want };
    sleep_ns(ns);
    Ok(0)
}

/// `setitimer(2)` / `getitimer(2)`: report a disarmed timer.
pub fn itimer(cx: &mut Ctx<'_>, n: u32, a: [u64; 6]) -> KResult {
    if a[0] > 2 {
        return Err(Errno::EINVAL);
    }
    let out = if n == linux_raw_sys::general::__NR_getitimer { a[1] } else { a[2] };
    if out != 0 {
        cx.write(out, &[0i64; 4])?;
    }
    Ok(0)
}
