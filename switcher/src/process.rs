//! A spawned stub process: pid, pidfd, exit status. Dropping it kills and reaps the process.

use crate::SwitcherError;
use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::Mutex;

/// How a stub process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitInfo {
    /// It called `exit_group(code)` (setup failures: [`guest_abi::stub::StubExit`]).
    Exited(i32),
    /// It was killed by signal `signo` (SIGSYS from a seccomp kill, SIGILL from the stub's
    /// own `die`, SIGKILL from H, ...).
    Signaled(i32),
}

impl fmt::Display for ExitInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Exited(c) => match guest_abi::stub::StubExit::from_raw(c) {
                Some(e) => write!(f, "exited with {c} ({e:?})"),
                None => write!(f, "exited with {c}"),
            },
            Self::Signaled(s) => write!(f, "killed by signal {s}"),
        }
    }
}

/// A K or U stub process. Dropping it sends SIGKILL and reaps it.
pub struct StubProcess {
    pid: i32,
    pidfd: OwnedFd,
    status: Mutex<Option<ExitInfo>>,
}

impl fmt::Debug for StubProcess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StubProcess").field("pid", &self.pid).finish()
    }
}

impl StubProcess {
    pub(crate) fn new(pid: i32, pidfd: OwnedFd) -> Self {
        Self { pid, pidfd, status: Mutex::new(None) }
    }

    /// Host pid.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The pidfd (`pidfd_open`): readable once the process has exited.
    pub fn pidfd(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }

    /// Sends SIGKILL (through the pidfd, so never to a recycled pid). Idempotent.
    pub fn kill(&self) {
        // SAFETY: plain syscall on our pidfd.
        unsafe { libc::syscall(libc::SYS_pidfd_send_signal, self.pidfd.as_raw_fd(), libc::SIGKILL, 0usize, 0u32) };
    }

    /// Whether the process has exited (does not reap it).
    pub fn has_exited(&self) -> bool {
        pidfd_exited(self.pidfd.as_fd())
    }

    /// Reaps the process if it has exited: `Ok(None)` while it runs.
    pub fn try_wait(&self) -> Result<Option<ExitInfo>, SwitcherError> {
        self.wait_inner(libc::WNOHANG)
    }

    /// Waits until the process exits and reaps it.
    pub fn wait(&self) -> Result<ExitInfo, SwitcherError> {
        loop {
            if let Some(e) = self.wait_inner(0)? {
                return Ok(e);
            }
        }
    }

    fn wait_inner(&self, flags: i32) -> Result<Option<ExitInfo>, SwitcherError> {
        let mut st = self.status.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = *st {
            return Ok(Some(e));
        }
        loop {
            // SAFETY: zeroed siginfo is a valid output buffer.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            // SAFETY: waitid(P_PIDFD, pidfd, &info, ...) writes only into `info`.
            let r = unsafe {
                libc::waitid(libc::P_PIDFD, self.pidfd.as_raw_fd() as libc::id_t, &mut info, libc::WEXITED | flags)
            };
            if r != 0 {
                let e = std::io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                return Err(SwitcherError::Os { op: "waitid", source: e });
            }
            // SAFETY: waitid filled `info` (si_pid 0 means nothing to report with WNOHANG).
            let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
            if pid == 0 {
                return Ok(None);
            }
            let e = if info.si_code == libc::CLD_EXITED { ExitInfo::Exited(status) } else { ExitInfo::Signaled(status) };
            *st = Some(e);
            return Ok(Some(e));
        }
    }
}

impl Drop for StubProcess {
    fn drop(&mut self) {
        self.kill();
        let _ = self.wait();
    }
}

/// Whether the process behind `pidfd` has exited (poll readable).
pub(crate) fn pidfd_exited(pidfd: BorrowedFd<'_>) -> bool {
    let mut p = libc::pollfd { fd: pidfd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd, zero timeout.
    let r = unsafe { libc::poll(&mut p, 1, 0) };
    r > 0 && p.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0
}
