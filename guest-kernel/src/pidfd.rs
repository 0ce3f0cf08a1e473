//! Process file descriptors (`pidfd_open(2)`): a description naming one process, readable
//! (`POLLIN`) once it has exited. Pollers wait on [`EXITS`], which every process exit wakes
//! (`crate::sched`'s `exit_process`); `pidfd_send_signal(2)` posts to the process while it
//! lives (`ESRCH` after).

use crate::proc::Process;
use crate::waitq::WaitQueue;
use alloc::sync::{Arc, Weak};
use guest_fs::{Errno, FileOps, OpenFile, Stat};

/// Threads waiting for some process to exit (pidfd pollers).
pub static EXITS: WaitQueue = WaitQueue::new();

/// One pidfd.
pub struct PidFd {
    pid: i32,
    proc: Weak<Process>,
}

/// A new pidfd description for `p`, `O_NONBLOCK` from `flags`.
pub fn new(p: &Arc<Process>, flags: u32) -> Arc<OpenFile> {
    OpenFile::new_custom(Arc::new(PidFd { pid: p.pid, proc: Arc::downgrade(p) }), 2 | (flags & 0o4000))
}

/// The pidfd behind a description (`EBADF` for other files, as `pidfd_send_signal(2)`).
pub fn of_file(f: &OpenFile) -> Result<&PidFd, Errno> {
    f.custom().and_then(|o| o.as_any()).and_then(|a| a.downcast_ref::<PidFd>()).ok_or(Errno::EBADF)
}

impl PidFd {
    /// The process while it has not exited.
    pub fn live(&self) -> Option<Arc<Process>> {
        self.proc.upgrade().filter(|p| !p.is_zombie())
    }

    /// Its pid.
    pub fn pid(&self) -> i32 {
        self.pid
    }
}

impl FileOps for PidFd {
    fn read(&self, _buf: &mut [u8], _flags: u32) -> Result<usize, Errno> {
        Err(Errno::EINVAL)
    }

    fn stat(&self) -> Stat {
        Stat { st_dev: 0xe, st_nlink: 1, st_mode: 0o600, st_blksize: 4096, ..Stat::default() }
    }

    /// `pidfd_poll`: `POLLIN` once the process exited (`POLLHUP` too once it is reaped).
    fn poll(&self, events: u32) -> u32 {
        let gone = self.live().is_none();
        if !gone {
            EXITS.register_current();
            return 0;
        }
        let reaped = self.proc.upgrade().is_none() || crate::proc::lookup(self.pid).is_none();
        (events & (0x1 | 0x40)) | if reaped { 0x10 } else { 0 }
    }

    fn poll_seq(&self, _events: u32) -> u64 {
        u64::from(self.live().is_none())
    }

    fn as_any(&self) -> Option<&dyn core::any::Any> {
        Some(self)
    }
}
