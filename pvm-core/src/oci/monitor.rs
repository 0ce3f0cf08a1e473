//! The container monitor (`pvm oci-monitor ID`, hidden): the container's host process, which
//! `create` starts. It boots the VM on `pvm run`'s path ([`crate::exit::run_gated`]) with a
//! gate that reports `ok` (or `err STATUS MESSAGE`) to `create` on the ready pipe, then waits
//! on `exec.fifo` for `start`'s byte, or for a stop signal (TERM, INT, HUP), before the vCPUs
//! run. Its exit status is the container's.

use std::io::{Read as _, Write as _};
use std::os::fd::{AsRawFd as _, FromRawFd as _, RawFd};
use std::os::unix::fs::OpenOptionsExt as _;
use std::process::ExitCode;

use anyhow::{Context as _, Result};

use super::cli::{GlobalArgs, MonitorArgs};
use super::state::{self, FIFO_FILE, Record};
use super::{config, log};
use crate::cli::RunArgs;
use crate::exit::{Failure, Gate};

/// The monitor's gate ([`crate::exit::Gate`]): reports to `create` on the ready pipe, then
/// waits on `exec.fifo` (or a stop signal).
struct FifoGate {
    ready: Option<std::fs::File>,
    fifo: std::fs::File,
}

impl Gate for FifoGate {
    fn failed(&mut self, f: &Failure) -> bool {
        let Some(mut r) = self.ready.take() else { return false };
        let msg = f.msg.clone().unwrap_or_else(|| "the VM could not be set up (see the container's stderr)".into());
        writeln!(r, "err {} {msg}", f.code).is_ok()
    }

    fn ready(&mut self) -> Result<(), Failure> {
        if let Some(mut r) = self.ready.take() {
            let _ = r.write_all(b"ok\n");
        }
        let stop = host_adapter::stop::fd().map_or(-1, |f| f.as_raw_fd());
        loop {
            let mut fds = [
                libc::pollfd { fd: self.fifo.as_raw_fd(), events: libc::POLLIN, revents: 0 },
                libc::pollfd { fd: stop, events: libc::POLLIN, revents: 0 },
            ];
            // SAFETY: polls two pollfds that live across the call (a negative fd is ignored).
            let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, 1000) };
            if let Some(sig) = host_adapter::stop::requested() {
                return Err(Failure { code: 128u8.saturating_add(sig as u8), msg: None });
            }
            if n > 0 && fds[0].revents != 0 {
                let mut b = [0u8; 1];
                return match self.fifo.read(&mut b) {
                    Ok(1) => Ok(()),
                    _ => Err(Failure { code: 125, msg: Some("exec.fifo closed without a start".into()) }),
                };
            }
        }
    }
}

/// The hidden `oci-monitor` command: the container's host process.
pub fn monitor(g: &GlobalArgs, a: &MonitorArgs) -> ExitCode {
    crate::signals::watch();
    // SAFETY: F_GETFD only inspects the descriptor number.
    if a.ready_fd < 3 || unsafe { libc::fcntl(a.ready_fd, libc::F_GETFD) } < 0 {
        log::error("oci-monitor: --ready-fd is not an open descriptor (pvm create starts this)");
        return ExitCode::from(125);
    }
    // SAFETY: an open descriptor create passed us, owned by nobody else in this process.
    let mut ready = unsafe { std::fs::File::from_raw_fd(a.ready_fd) };
    let _ = set_cloexec(a.ready_fd);
    let dir = g.root.join(&a.id);
    let prepared = (|| -> Result<(RunArgs, std::fs::File)> {
        let text = std::fs::read(dir.join(state::STATE_FILE)).context("reading the container's state")?;
        let record: Record = serde_json::from_slice(&text).context("the container's state.json is malformed")?;
        let mut c = config::load(&record.bundle, Some(&dir.join(state::CONFIG_FILE)))?;
        c.args.verbose = u8::from(g.debug);
        let fifo = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(dir.join(FIFO_FILE))
            .context("opening exec.fifo")?;
        Ok((c.args, fifo))
    })();
    let (args, fifo) = match prepared {
        Ok(p) => p,
        Err(e) => {
            let _ = writeln!(ready, "err 125 {e:#}");
            return ExitCode::from(125);
        }
    };
    let mut gate = FifoGate { ready: Some(ready), fifo };
    let code = crate::exit::run_gated(&args, &mut gate);
    crate::signals::die_if_stopped();
    code
}

fn set_cloexec(fd: RawFd) -> std::io::Result<()> {
    // SAFETY: sets FD_CLOEXEC on a descriptor we own, so F and the sandboxes do not inherit it.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
