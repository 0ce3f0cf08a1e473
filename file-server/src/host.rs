//! H's side of F: spawning it, watching it, and the end of its life.
//!
//! F is pvm re-executing itself (`/proc/self/exe` with the hidden subcommand
//! [`SUBCOMMAND`]), not a fork of H: H is multi-threaded, and a fresh exec gives F no copy of
//! H's memory (guest-kernel image, other VMs' state) and no inherited locks. Like K and U
//! (switcher/src/spawn.rs), F gets `PR_SET_PDEATHSIG(SIGKILL)` so it dies with pvm even on
//! SIGKILL: F sets it first thing after exec and then checks that its parent is still the pvm
//! that started it (so a pvm that died in between is noticed). Spawning needs no hook in the
//! child, so std uses `posix_spawn` (no copy of H's page tables; a fork of H cost several
//! ms). The death signal follows the forking *thread*, so [`FileServer::start`] must be called
//! from a thread that lives as long as the VM (pvm's main thread). H holds a pidfd; a watcher thread polls it and,
//! when F dies, sets every queue's `broken` word to 1 and wakes both doorbell words (the VM
//! goes on; hostfs requests fail with `EIO`). Dropping the [`FileServer`] kills F with SIGKILL
//! and reaps it, so pvm never leaves F behind.
//!
//! [`FileServer::start`] does not wait for F to serve: F's exec and sandboxing (a few ms) run
//! while H boots the VM, and the guest's first requests wait in the queue until F's queue
//! threads serve them (they start only once Landlock and seccomp cover every thread of F, so
//! nothing is served unconfined). The watcher waits for F's ready byte: if F exits first, or
//! does not answer within 10 s (then the watcher kills it), the queues are marked broken and
//! [`FileServer::failed_to_start`] tells H to fail the run with status 125.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use crate::config::ServerConfig;
use crate::doorbell::Doorbells;

/// Why F did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A host call in H failed.
    #[error("starting the file server: {0}")]
    Host(#[from] io::Error),
}

/// How long the watcher waits for F to serve, ms.
const START_TIMEOUT_MS: i64 = 10_000;

/// The hidden `pvm` subcommand that runs F ([`crate::process::main`]).
pub const SUBCOMMAND: &str = "__file-server";

/// A running F.
pub struct FileServer {
    child: Child,
    stop: OwnedFd,
    watcher: Option<JoinHandle<()>>,
    failed: Arc<AtomicBool>,
}

/// The config page mapped in H (shared, from the memfd), for the watcher's `broken` words.
struct ConfigPage(*mut u8);

// SAFETY: the page is a shared mapping owned by this value; it is accessed only through
// atomics (`Doorbells`).
unsafe impl Send for ConfigPage {}

impl ConfigPage {
    fn map(memfd: BorrowedFd<'_>, gpa: u64) -> io::Result<Self> {
        let off = libc::off_t::try_from(gpa).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: a new shared mapping of one page of the memfd; checked for failure.
        let p = unsafe {
            libc::mmap(std::ptr::null_mut(), 4096, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, memfd.as_raw_fd(), off)
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Self(p.cast()))
    }
}

impl Drop for ConfigPage {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the page `map` mapped; nothing borrows it any more.
        unsafe { libc::munmap(self.0.cast(), 4096) };
    }
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(r) }
}

impl FileServer {
    /// Starts F serving `cfg` over `memfd` (guest RAM; `cfg.memfd` must be its number in H,
    /// which F inherits at the same number; the config page at `cfg.area_gpa` must be written
    /// already).
    ///
    /// Returns once F is exec'd, without waiting for it to serve (see the module docs and
    /// [`Self::failed_to_start`]).
    ///
    /// # Errors
    /// [`StartError::Host`] for the OS error of mapping the config page, the pipe, the
    /// eventfd, exec, `pidfd_open` or the watcher thread.
    pub fn start(cfg: &ServerConfig, memfd: BorrowedFd<'_>) -> Result<Self, StartError> {
        let page = ConfigPage::map(memfd, cfg.area_gpa)?;
        // F inherits exactly two descriptors: a dup of the memfd and the ready pipe's write
        // end, both without close-on-exec (made here, closed in H right after the spawn; no
        // other thread of H spawns processes while a VM is being set up).
        // SAFETY: F_DUPFD returns a new descriptor (no close-on-exec) or -1.
        let memfd_dup = unsafe { OwnedFd::from_raw_fd(cvt(libc::fcntl(memfd.as_raw_fd(), libc::F_DUPFD, 3))?) };
        let mut pipe = [0; 2];
        // SAFETY: pipe2 writes two descriptors into `pipe`.
        cvt(unsafe { libc::pipe2(pipe.as_mut_ptr(), 0) })?;
        // SAFETY: both descriptors were just created and are owned by nobody else.
        let (ready_r, ready_w) = unsafe { (File::from_raw_fd(pipe[0]), OwnedFd::from_raw_fd(pipe[1])) };
        // SAFETY: sets close-on-exec on our own read end.
        cvt(unsafe { libc::fcntl(ready_r.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) })?;
        // SAFETY: getpid has no preconditions.
        let parent = unsafe { libc::getpid() };
        let mut args: Vec<OsString> = vec![SUBCOMMAND.into()];
        let f_cfg = ServerConfig { memfd: memfd_dup.as_raw_fd(), ready_fd: ready_w.as_raw_fd(), parent_pid: parent, ..cfg.clone() };
        args.extend(f_cfg.to_args());
        // No pre_exec hook, so std spawns with posix_spawn (vfork-like, no copy of H's page
        // tables); F arms its parent-death signal itself ([`crate::process::main`]).
        let mut cmd = Command::new("/proc/self/exe");
        cmd.arg0("pvm-file-server").args(&args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::inherit());
        let child = cmd.spawn()?;
        drop(ready_w);
        drop(memfd_dup);
        let kill = |mut child: Child, e: StartError| {
            let _ = child.kill();
            let _ = child.wait();
            e
        };
        // SAFETY: pidfd_open takes a pid and flags; F is our unreaped child, so the pid is
        // F's until we wait for it.
        let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, child.id() as libc::pid_t, 0) };
        if pidfd < 0 {
            return Err(kill(child, io::Error::last_os_error().into()));
        }
        // SAFETY: a descriptor just returned to us and owned by nobody else.
        let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as RawFd) };
        // SAFETY: eventfd has no pointer arguments.
        let stop = match cvt(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) }) {
            // SAFETY: as for the pidfd.
            Ok(fd) => unsafe { OwnedFd::from_raw_fd(fd) },
            Err(e) => return Err(kill(child, e.into())),
        };
        let stop_nr = stop.as_raw_fd();
        let failed = Arc::new(AtomicBool::new(false));
        let watch_failed = Arc::clone(&failed);
        let pid = child.id() as libc::pid_t;
        let watcher = std::thread::Builder::new()
            .name("pvm-fsrv-watch".into())
            .spawn(move || watch(&pidfd, pid, stop_nr, &ready_r, &page, &watch_failed));
        match watcher {
            Ok(w) => Ok(Self { child, stop, watcher: Some(w), failed }),
            Err(e) => Err(kill(child, e.into())),
        }
    }

    /// Whether F exited, or was killed for not answering, before it served: its queues are
    /// broken and the run must fail (F printed why, or the watcher did). False while F
    /// starts and once it serves.
    pub fn failed_to_start(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// F's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// `poll(2)` of `fds` for at most `timeout_ms` (-1: no limit), retried on EINTR; the number
/// of ready descriptors (0 on timeout).
fn poll_all(fds: &mut [libc::pollfd], timeout_ms: i64) -> libc::c_int {
    let deadline = (timeout_ms >= 0).then(|| std::time::Instant::now() + std::time::Duration::from_millis(timeout_ms as u64));
    loop {
        let left = deadline.map_or(-1, |d| {
            libc::c_int::try_from(d.saturating_duration_since(std::time::Instant::now()).as_millis()).unwrap_or(libc::c_int::MAX)
        });
        // SAFETY: `fds` is a valid array of pollfds for the call's duration.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, left) };
        if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        return n.max(0);
    }
}

/// Waits for F's ready byte (F dead or silent for [`START_TIMEOUT_MS`] first: the queues are
/// marked broken and `failed` set), then until F dies (then marks the queues broken) or H
/// stops watching.
fn watch(pidfd: &OwnedFd, pid: libc::pid_t, stop: RawFd, ready: &File, page: &ConfigPage, failed: &AtomicBool) {
    let broken = |why: &str| {
        tracing_free_warn(why);
        // SAFETY: `page` maps 4096 shared bytes for as long as it lives (it outlives this call).
        unsafe { Doorbells::new(page.0) }.mark_all_broken();
    };
    let mut fds = [
        libc::pollfd { fd: ready.as_raw_fd(), events: libc::POLLIN, revents: 0 },
        libc::pollfd { fd: stop, events: libc::POLLIN, revents: 0 },
    ];
    // The ready pipe reports F's exit too (its write end closes), so it is enough here.
    let n = poll_all(&mut fds, START_TIMEOUT_MS);
    if fds[1].revents != 0 {
        return;
    }
    let mut byte = [0u8; 1];
    let served = n > 0 && matches!((&*ready).read(&mut byte), Ok(1));
    if !served {
        failed.store(true, Ordering::Release);
        if n == 0 {
            // SAFETY: `pid` is our unreaped child (Drop reaps it only after joining this
            // thread), so the signal reaches F and nobody else.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            broken("the file server did not start within 10 s: hostfs requests fail with EIO");
        } else {
            // F printed its reason; the run fails with status 125.
            // SAFETY: as above.
            unsafe { Doorbells::new(page.0) }.mark_all_broken();
        }
        return;
    }
    let mut fds = [
        libc::pollfd { fd: pidfd.as_raw_fd(), events: libc::POLLIN, revents: 0 },
        libc::pollfd { fd: stop, events: libc::POLLIN, revents: 0 },
    ];
    poll_all(&mut fds, -1);
    if fds[1].revents != 0 {
        return;
    }
    if fds[0].revents != 0 {
        broken("the file server died: hostfs requests fail with EIO from now on");
    }
}

/// One line on stderr (F's crate does not log through H's tracing setup).
fn tracing_free_warn(msg: &str) {
    eprintln!("pvm: {msg}");
}

impl Drop for FileServer {
    fn drop(&mut self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from `one` to our eventfd.
        unsafe { libc::write(self.stop.as_raw_fd(), (&one as *const u64).cast(), 8) };
        if let Some(w) = self.watcher.take() {
            let _ = w.join();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
