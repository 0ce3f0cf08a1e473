//! `timerfd_create(2)` objects: a timer on `CLOCK_MONOTONIC`, `CLOCK_REALTIME` or
//! `CLOCK_BOOTTIME` (= monotonic here) whose expirations are counted and read as a `u64`.
//! Expirations are computed when the timer is looked at (read, poll, gettime); a reader or
//! poller that finds none registers on the timer's wait queue and asks the scheduler to wake
//! it at the next expiry (`crate::sched::wake_at`). A `CLOCK_REALTIME` timer's expiry is
//! converted to the monotonic clock at that moment (the realtime clock is never set in the
//! guest, so the two never drift apart; `TFD_TIMER_CANCEL_ON_SET` is accepted and never fires).

use crate::sync::Mutex;
use crate::waitq::WaitQueue;
use alloc::sync::Arc;
use guest_fs::{Errno, FileOps, OpenFile, Stat};

/// `CLOCK_REALTIME`.
pub const CLOCK_REALTIME: u32 = 0;
/// `CLOCK_MONOTONIC`.
pub const CLOCK_MONOTONIC: u32 = 1;
/// `CLOCK_BOOTTIME`.
pub const CLOCK_BOOTTIME: u32 = 7;
/// `CLOCK_REALTIME_ALARM`.
pub const CLOCK_REALTIME_ALARM: u32 = 8;
/// `CLOCK_BOOTTIME_ALARM`.
pub const CLOCK_BOOTTIME_ALARM: u32 = 9;
/// `TFD_TIMER_ABSTIME`.
pub const TFD_TIMER_ABSTIME: u32 = 1;
/// `TFD_TIMER_CANCEL_ON_SET`.
pub const TFD_TIMER_CANCEL_ON_SET: u32 = 2;

struct State {
    /// Next expiry on the timer's clock, ns (`None`: disarmed).
    next: Option<u64>,
    /// Period, ns (0: one-shot).
    interval: u64,
    /// Expirations not read yet.
    ticks: u64,
    /// Expirations ever (for edge-triggered epoll).
    total: u64,
}

/// One timerfd.
pub struct TimerFd {
    realtime: bool,
    st: Mutex<State>,
    wq: WaitQueue,
}

/// A new timerfd description on `clock` (one of the `CLOCK_*` above; checked by the caller)
/// with `O_NONBLOCK` from `flags`.
pub fn new(clock: u32, flags: u32) -> Arc<OpenFile> {
    let t = TimerFd {
        realtime: matches!(clock, CLOCK_REALTIME | CLOCK_REALTIME_ALARM),
        st: Mutex::new(State { next: None, interval: 0, ticks: 0, total: 0 }),
        wq: WaitQueue::new(),
    };
    OpenFile::new_custom(Arc::new(t), 2 | (flags & 0o4000))
}

/// The timerfd behind a description (`EINVAL` for other files, as `timerfd_settime(2)`).
pub fn of_file(f: &OpenFile) -> Result<&TimerFd, Errno> {
    f.custom().and_then(|o| o.as_any()).and_then(|a| a.downcast_ref::<TimerFd>()).ok_or(Errno::EINVAL)
}

impl TimerFd {
    fn now(&self) -> u64 {
        if self.realtime { crate::time::realtime_ns() } else { crate::time::monotonic_ns() }
    }

    /// Counts the expirations up to now.
    fn advance(&self, s: &mut State) {
        let now = self.now();
        let Some(next) = s.next else { return };
        if now < next {
            return;
        }
        let n = (now - next).checked_div(s.interval).map_or(1, |k| k + 1);
        s.ticks = s.ticks.saturating_add(n);
        s.total = s.total.wrapping_add(n);
        s.next = if s.interval == 0 { None } else { Some(next.saturating_add(n.saturating_mul(s.interval))) };
    }

    /// Registers the caller for the next expiry (queue and scheduler deadline).
    fn register(&self, s: &State) {
        self.wq.register_current();
        if let (Some(next), Some(t)) = (s.next, crate::waitq::current()) {
            let mono_now = crate::time::monotonic_ns();
            let d = next.saturating_sub(self.now());
            crate::sched::wake_at(mono_now.saturating_add(d), &t);
        }
    }

    /// `timerfd_settime(2)`: `value`/`interval` ns (value 0 disarms), absolute with
    /// `TFD_TIMER_ABSTIME`. Returns the old setting as `gettime` would.
    pub fn set(&self, flags: u32, value: u64, interval: u64) -> (u64, u64) {
        let mut s = self.st.lock();
        self.advance(&mut s);
        let old = self.get_locked(&s);
        let now = self.now();
        s.ticks = 0;
        s.interval = interval;
        s.next = if value == 0 {
            None
        } else if flags & TFD_TIMER_ABSTIME != 0 {
            Some(value)
        } else {
            Some(now.saturating_add(value))
        };
        drop(s);
        self.wq.wake_all();
        old
    }

    fn get_locked(&self, s: &State) -> (u64, u64) {
        let left = s.next.map_or(0, |n| n.saturating_sub(self.now()).max(1));
        (left, s.interval)
    }

    /// `timerfd_gettime(2)`: (time to the next expiry, interval), ns.
    pub fn get(&self) -> (u64, u64) {
        let mut s = self.st.lock();
        self.advance(&mut s);
        self.get_locked(&s)
    }
}

impl FileOps for TimerFd {
    /// The expirations since the last read (`EINVAL` for a buffer under 8 bytes).
    fn read(&self, buf: &mut [u8], _flags: u32) -> Result<usize, Errno> {
        if buf.len() < 8 {
            return Err(Errno::EINVAL);
        }
        let mut s = self.st.lock();
        self.advance(&mut s);
        if s.ticks == 0 {
            self.register(&s);
            return Err(Errno::EAGAIN);
        }
        buf[..8].copy_from_slice(&s.ticks.to_le_bytes());
        s.ticks = 0;
        Ok(8)
    }

    fn stat(&self) -> Stat {
        Stat { st_dev: 0xe, st_nlink: 1, st_mode: 0o600, st_blksize: 4096, ..Stat::default() }
    }

    fn poll(&self, events: u32) -> u32 {
        let mut s = self.st.lock();
        self.advance(&mut s);
        let r = if s.ticks > 0 { events & (0x1 | 0x40) } else { 0 };
        if r == 0 {
            self.register(&s);
        }
        r
    }

    fn poll_seq(&self, _events: u32) -> u64 {
        let mut s = self.st.lock();
        self.advance(&mut s);
        s.total
    }

    fn as_any(&self) -> Option<&dyn core::any::Any> {
        Some(self)
    }
}
