//! Shared (not `FUTEX_PRIVATE_FLAG`) futex wait and wake, for words in memory shared with K
//! and U processes through memfd mappings (`man 2 futex`).

use crate::SwitcherError;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

/// How a [`wait`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitOutcome {
    /// Woken by a `FUTEX_WAKE` (or spuriously): re-check the word.
    Woken,
    /// The word did not hold `expected` when the call started (`EAGAIN`).
    Changed,
    /// The timeout elapsed.
    TimedOut,
    /// A signal interrupted the wait (`EINTR`).
    Interrupted,
}

/// `FUTEX_WAIT` on `word` while it holds `expected`, for at most `timeout` (relative; `None`
/// waits forever). Errors: any errno other than `EAGAIN`, `ETIMEDOUT`, `EINTR`.
pub fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> Result<WaitOutcome, SwitcherError> {
    let ts = timeout.map(|d| libc::timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    });
    let ts_ptr = ts.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `word` is a valid aligned u32 for the call; ts_ptr is null or points to `ts`.
    let r = unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAIT, expected, ts_ptr, 0usize, 0u32) };
    if r == 0 {
        return Ok(WaitOutcome::Woken);
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EAGAIN) => Ok(WaitOutcome::Changed),
        Some(libc::ETIMEDOUT) => Ok(WaitOutcome::TimedOut),
        Some(libc::EINTR) => Ok(WaitOutcome::Interrupted),
        _ => Err(SwitcherError::Os { op: "futex wait", source: e }),
    }
}

/// `FUTEX_WAKE` up to `n` waiters on `word`; returns how many were woken.
pub fn wake(word: &AtomicU32, n: i32) -> Result<usize, SwitcherError> {
    // SAFETY: `word` is a valid aligned u32 for the call.
    let r = unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, n, 0usize, 0usize, 0u32) };
    if r < 0 {
        return Err(SwitcherError::last_os("futex wake"));
    }
    Ok(r as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    #[test]
    fn wait_times_out_and_sees_changes() {
        let w = AtomicU32::new(5);
        assert_eq!(wait(&w, 4, None).expect("futex"), WaitOutcome::Changed);
        assert_eq!(wait(&w, 5, Some(Duration::from_millis(5))).expect("futex"), WaitOutcome::TimedOut);
    }

    #[test]
    fn wake_releases_a_waiter() {
        let w = Arc::new(AtomicU32::new(0));
        let w2 = Arc::clone(&w);
        let t = std::thread::spawn(move || {
            while w2.load(Ordering::Acquire) == 0 {
                wait(&w2, 0, Some(Duration::from_secs(5))).expect("futex");
            }
        });
        std::thread::sleep(Duration::from_millis(20));
        w.store(1, Ordering::Release);
        wake(&w, 1).expect("wake");
        t.join().expect("waiter");
    }
}
