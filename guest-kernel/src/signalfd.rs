//! `signalfd(2)` objects: reading one takes the caller's pending signals in its mask (the
//! thread's own, then the process's), as `struct signalfd_siginfo` records of 128 bytes.
//! The kernel keeps pending signals as a set without sender details, so `ssi_code` is
//! `SI_USER` and `ssi_pid`/`ssi_uid` are 0 (a departure from Linux, which reports the sender).
//! Readiness: readable while such a signal is pending. No wait queue is needed: posting a
//! signal wakes every thread of the process (`crate::signal::post`), which re-runs its read
//! or poll; a thread of another process polling it is woken only by its own events.

use alloc::sync::Arc;
use core::sync::atomic::{AtomicU64, Ordering};
use guest_fs::{Errno, FileOps, OpenFile, Stat};

/// `sizeof(struct signalfd_siginfo)`.
pub const SIGINFO_SIZE: usize = 128;

/// One signalfd: the signals it reports (bit `n - 1` for signal `n`).
pub struct SignalFd {
    mask: AtomicU64,
}

/// A new signalfd description reporting `mask`, `O_NONBLOCK` from `flags`.
pub fn new(mask: u64, flags: u32) -> Arc<OpenFile> {
    OpenFile::new_custom(Arc::new(SignalFd { mask: AtomicU64::new(mask) }), 2 | (flags & 0o4000))
}

/// The signalfd behind a description (`EINVAL` for other files, as `signalfd(2)`).
pub fn of_file(f: &OpenFile) -> Result<&SignalFd, Errno> {
    f.custom().and_then(|o| o.as_any()).and_then(|a| a.downcast_ref::<SignalFd>()).ok_or(Errno::EINVAL)
}

impl SignalFd {
    /// Replaces the mask (`signalfd` on an existing fd).
    pub fn set_mask(&self, mask: u64) {
        self.mask.store(mask, Ordering::SeqCst);
    }

    /// (thread-pending, process-pending) of the caller, if the caller is known.
    fn pending(&self) -> Option<(Arc<crate::proc::ThreadShared>, Arc<crate::proc::Process>)> {
        let t = crate::waitq::current()?;
        let (p, _) = crate::proc::lookup_thread(t.tid)?;
        Some((t, p))
    }
}

impl FileOps for SignalFd {
    /// Takes as many pending signals as records fit (`EINVAL` under 128 bytes).
    fn read(&self, buf: &mut [u8], _flags: u32) -> Result<usize, Errno> {
        if buf.len() < SIGINFO_SIZE {
            return Err(Errno::EINVAL);
        }
        let Some((t, p)) = self.pending() else { return Err(Errno::EAGAIN) };
        let mask = self.mask.load(Ordering::SeqCst);
        let mut n = 0;
        while n + SIGINFO_SIZE <= buf.len() {
            let avail = (t.pending.load(Ordering::SeqCst) | p.pending.load(Ordering::SeqCst)) & mask;
            if avail == 0 {
                break;
            }
            let sig = avail.trailing_zeros() + 1;
            let bit = 1u64 << (sig - 1);
            let taken = t.pending.fetch_and(!bit, Ordering::AcqRel) & bit != 0 || p.pending.fetch_and(!bit, Ordering::AcqRel) & bit != 0;
            if !taken {
                continue;
            }
            let rec = &mut buf[n..n + SIGINFO_SIZE];
            rec.fill(0);
            rec[..4].copy_from_slice(&sig.to_le_bytes());
            n += SIGINFO_SIZE;
        }
        if n == 0 { Err(Errno::EAGAIN) } else { Ok(n) }
    }

    fn stat(&self) -> Stat {
        Stat { st_dev: 0xe, st_nlink: 1, st_mode: 0o600, st_blksize: 4096, ..Stat::default() }
    }

    fn poll(&self, events: u32) -> u32 {
        let mask = self.mask.load(Ordering::SeqCst);
        let ready = self.pending().is_some_and(|(t, p)| (t.pending.load(Ordering::SeqCst) | p.pending.load(Ordering::SeqCst)) & mask != 0);
        if ready { events & (0x1 | 0x40) } else { 0 }
    }

    fn poll_seq(&self, _events: u32) -> u64 {
        let mask = self.mask.load(Ordering::SeqCst);
        self.pending().map_or(0, |(t, p)| (t.pending.load(Ordering::SeqCst) | p.pending.load(Ordering::SeqCst)) & mask)
    }

    fn as_any(&self) -> Option<&dyn core::any::Any> {
        Some(self)
    }
}
