//! Remaining syscalls: `getrandom`, `futex` (single-threaded semantics for now).

use super::{Ctx, KResult};
use guest_fs::Errno;

/// `getrandom(2)`.
pub fn getrandom(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let len = (a[1] as usize).min(32 << 20);
    if a[2] & !7 != 0 {
        return Err(Errno::EINVAL);
    }
    let mut buf = alloc::vec![0u8; len];
    crate::rand::fill(&mut buf);
    cx.copy_out(a[0], &buf)?;
    Ok(len as i64)
}

/// `futex(2)`: with one thread, `FUTEX_WAIT` on an unchanged value would sleep forever
/// (`ETIMEDOUT` if it has a timeout, else `EAGAIN`-free deadlock is reported as `EDEADLK`);
/// on a changed value `EAGAIN`; `FUTEX_WAKE` wakes nobody (0).
pub fn futex(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let op = a[1] & 0x7f; // without FUTEX_PRIVATE_FLAG / CLOCK_REALTIME
    match op {
        0 | 9 => {
            // FUTEX_WAIT, FUTEX_WAIT_BITSET
            if !a[0].is_multiple_of(4) {
                return Err(Errno::EINVAL);
            }
            let v: u32 = cx.read(a[0])?;
            if v != a[2] as u32 {
                return Err(Errno::EAGAIN);
            }
            if a[3] != 0 {
                let ts: [i64; 2] = cx.read(a[3])?;
                if op == 0 {
                    let ns = (ts[0].max(0) as u64).saturating_mul(1_000_000_000) + ts[1].max(0) as u64;
                    super::time::sleep_ns(ns);
                }
                return Err(Errno::ETIMEDOUT);
            }
            Err(Errno::EDEADLK)
        }
        1 | 10 => Ok(0), // FUTEX_WAKE, FUTEX_WAKE_BITSET
        3 | 4 => Ok(0),  // FUTEX_REQUEUE, FUTEX_CMP_REQUEUE
        5 => Ok(0),      // FUTEX_WAKE_OP
        _ => Err(Errno::ENOSYS),
    }
}
