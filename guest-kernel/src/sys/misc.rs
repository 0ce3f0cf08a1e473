//! Remaining syscalls: `getrandom`, `futex` (the wait queues live in `crate::futex`).

use super::{Ctx, KResult};
use crate::futex::WaitState;
use crate::mm::space::Access;
use alloc::sync::Arc;
use guest_fs::Errno;

/// `getrandom(2)`.
pub fn getrandom(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let len = (a[1] as usize).min(32 << 20);
    if a[2] & !7 != 0 {
        return Err(Errno::EINVAL);
    }
    // Filled and copied a page at a time: the kernel buffer does not grow with `len`.
    let mut buf = [0u8; 4096];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(buf.len());
        crate::rand::fill(&mut buf[..n]);
        if let Err(e) = cx.copy_out(a[0] + done as u64, &buf[..n]) {
            return if done == 0 { Err(e) } else { Ok(done as i64) };
        }
        done += n;
    }
    Ok(len as i64)
}

/// `FUTEX_PRIVATE_FLAG`.
const FUTEX_PRIVATE_FLAG: u64 = 128;
/// `FUTEX_CLOCK_REALTIME`.
const FUTEX_CLOCK_REALTIME: u64 = 256;

/// `futex(2)`: `FUTEX_WAIT` (0), `FUTEX_WAKE` (1), `FUTEX_REQUEUE` (3), `FUTEX_CMP_REQUEUE`
/// (4), `FUTEX_WAKE_OP` (5), `FUTEX_WAIT_BITSET` (9), `FUTEX_WAKE_BITSET` (10), with
/// `FUTEX_PRIVATE_FLAG` and `FUTEX_CLOCK_REALTIME`. Waits block (`crate::futex`); the
/// timeout is relative for `FUTEX_WAIT`, absolute for `FUTEX_WAIT_BITSET`.
pub fn futex(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let (uaddr, op, val, val3) = (a[0], a[1], a[2] as u32, a[5] as u32);
    let cmd = op & !(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
    if !uaddr.is_multiple_of(4) {
        return Err(Errno::EINVAL);
    }
    let space = Arc::as_ptr(&cx.t.mm) as usize;
    // Private futexes are keyed by (address space, address); a shared one in a MAP_SHARED
    // mapping by (page-cache object, offset), so that processes mapping the object at other
    // addresses, or across fork, meet (kernel/futex/core.c `get_futex_key`).
    let private = op & FUTEX_PRIVATE_FLAG != 0;
    let key_of = |cx: &Ctx<'_>, addr: u64| -> (usize, u64) {
        if !private
            && let Some(k) = cx.mm(|mm| crate::mm::space::shared_key(mm, addr))
        {
            return k;
        }
        (space, addr)
    };
    let (key1, key2) = (key_of(cx, uaddr), key_of(cx, a[4]));
    match cmd {
        0 | 9 => {
            let bitset = if cmd == 9 { val3 } else { u32::MAX };
            if bitset == 0 {
                return Err(Errno::EINVAL);
            }
            match crate::futex::state(&cx.t.shared) {
                WaitState::Woken => Ok(0),
                WaitState::Waiting => {
                    if cx.t.deadline.is_some_and(|d| crate::time::monotonic_ns() >= d) {
                        crate::futex::cancel(&cx.t.shared);
                        return Err(Errno::ETIMEDOUT);
                    }
                    Err(super::EBLOCK)
                }
                WaitState::Fresh => {
                    let deadline = if a[3] != 0 {
                        let ts: [i64; 2] = cx.read(a[3])?;
                        if ts[0] < 0 || !(0..1_000_000_000).contains(&ts[1]) {
                            return Err(Errno::EINVAL);
                        }
                        let ns = (ts[0] as u64).saturating_mul(1_000_000_000).saturating_add(ts[1] as u64);
                        let now = crate::time::monotonic_ns();
                        Some(if cmd == 0 {
                            now.saturating_add(ns)
                        } else if op & FUTEX_CLOCK_REALTIME != 0 {
                            ns.saturating_sub(crate::time::realtime_ns().saturating_sub(now))
                        } else {
                            ns
                        })
                    } else {
                        None
                    };
                    // Validate the address before taking the waiter lock.
                    let _: u32 = cx.read(uaddr)?;
                    let t = &*cx;
                    let registered = crate::futex::register(&t.t.shared, key1, bitset, || t.read::<u32>(uaddr).is_ok_and(|v| v == val));
                    if !registered {
                        return Err(Errno::EAGAIN);
                    }
                    cx.t.deadline = deadline;
                    Err(super::EBLOCK)
                }
            }
        }
        1 | 10 => {
            let bitset = if cmd == 10 { val3 } else { u32::MAX };
            if bitset == 0 {
                return Err(Errno::EINVAL);
            }
            Ok(i64::from(crate::futex::wake(key1, val, bitset)))
        }
        3 | 4 => {
            if !a[4].is_multiple_of(4) {
                return Err(Errno::EINVAL);
            }
            if cmd == 4 {
                let v: u32 = cx.read(uaddr)?;
                if v != val3 {
                    return Err(Errno::EAGAIN);
                }
            }
            Ok(i64::from(crate::futex::requeue(key1, key2, val, a[3] as u32)))
        }
        5 => {
            if !a[4].is_multiple_of(4) {
                return Err(Errno::EINVAL);
            }
            let old = wake_op_update(cx, a[4], val3)?;
            let mut n = crate::futex::wake(key1, val, u32::MAX);
            if wake_op_cmp(old, val3) {
                n += crate::futex::wake(key2, a[3] as u32, u32::MAX);
            }
            Ok(i64::from(n))
        }
        _ => Err(Errno::ENOSYS),
    }
}

/// Sign-extends a 12-bit `FUTEX_WAKE_OP` field.
fn sext12(x: u32) -> u32 {
    (((x & 0xfff) as i32) << 20 >> 20) as u32
}

/// Applies the operation encoded in `FUTEX_WAKE_OP`'s `val3` to the word at `addr`
/// atomically (other vCPUs may run user code on it); returns the old value.
fn wake_op_update(cx: &mut Ctx<'_>, addr: u64, val3: u32) -> Result<u32, Errno> {
    let op = (val3 >> 28) & 0xf;
    let mut arg = sext12(val3 >> 12);
    if op & 8 != 0 {
        arg = 1u32.checked_shl(arg).unwrap_or(0);
    }
    let gpa = {
        let mut mm = cx.t.mm.lock();
        let g = mm.user_gpa(addr, Access::Write).map_err(|_| Errno::EFAULT)?;
        mm.flush();
        g
    };
    // SAFETY: `gpa` is the frame behind a writable user page of this space, 4-byte aligned
    // (checked by the caller); the frame stays mapped while the syscall runs (only this
    // thread's own munmap could free it). User code on other vCPUs accesses it atomically
    // or not at all, as with the hardware.
    let word = unsafe { core::sync::atomic::AtomicU32::from_ptr(crate::mm::phys_to_virt(gpa).cast::<u32>()) };
    let f = |old: u32| match op & 7 {
        0 => Some(arg),
        1 => Some(old.wrapping_add(arg)),
        2 => Some(old | arg),
        3 => Some(old & !arg),
        4 => Some(old ^ arg),
        _ => None,
    };
    if f(0).is_none() {
        return Err(Errno::ENOSYS);
    }
    word.fetch_update(core::sync::atomic::Ordering::AcqRel, core::sync::atomic::Ordering::Acquire, f).map_err(|_| Errno::ENOSYS)
}

/// The comparison of `FUTEX_WAKE_OP` (`val3` bits 24..28) of the old value with its argument.
fn wake_op_cmp(old: u32, val3: u32) -> bool {
    let arg = sext12(val3);
    let (o, c) = (old as i32, arg as i32);
    match (val3 >> 24) & 0xf {
        0 => o == c,
        1 => o != c,
        2 => o < c,
        3 => o <= c,
        4 => o > c,
        _ => o >= c,
    }
}
