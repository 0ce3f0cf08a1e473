//! Forking and executing stub processes from one dedicated, never-exiting spawner thread.
//!
//! `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits, and H calls
//! `spawn_space` from vCPU threads that may come and go, so every fork happens on this thread
//! (created on first use, lives as long as the process). The child gets: every signal
//! disposition reset to default and every signal blocked (the stub picks its own mask), the
//! caller's CPU affinity, `ADDR_NO_RANDOMIZE` (so the vDSO and stack sit at the top of the
//! address space, clear of the stub's fixed regions), `PR_SET_PDEATHSIG(SIGKILL)` (then checks `getppid`), core dumps
//! off, exactly the fds in the request at their target numbers, an empty environment, and
//! `argv[0]` as given; then `execveat(stub memfd, "", .., AT_EMPTY_PATH)`. An exec failure
//! comes back as errno through a close-on-exec pipe.

use crate::process::StubProcess;
use crate::{SwitcherError, image};
use std::ffi::CStr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};

/// What to spawn.
pub(crate) struct Request {
    /// (source fd, target fd number in the child). Targets must be in
    /// `3 .. EXEC_FD` (at most `MAX_FDS`).
    pub fds: Vec<(OwnedFd, RawFd)>,
    /// `argv[0]` (also the name tests look for).
    pub argv0: &'static CStr,
    /// CPU affinity for the child (the caller's).
    pub affinity: libc::cpu_set_t,
}

struct Job {
    req: Request,
    reply: mpsc::Sender<Result<StubProcess, SwitcherError>>,
}

/// fd the stub memfd occupies in the child during exec (close-on-exec).
const EXEC_FD: RawFd = 40;
/// fd of the error pipe in the child (close-on-exec).
const ERR_FD: RawFd = 41;
/// Most fds a child gets: four, plus one completion pipe per vCPU in U.
const MAX_FDS: usize = 4 + guest_abi::MAX_VCPUS as usize;
const _: () = assert!(guest_abi::stub::COMPLETION_FD + (guest_abi::MAX_VCPUS as i32) < EXEC_FD);
/// `ADDR_NO_RANDOMIZE` personality flag (`linux/personality.h`).
const ADDR_NO_RANDOMIZE: libc::c_ulong = 0x0040000;

fn spawner() -> Result<mpsc::Sender<Job>, SwitcherError> {
    static TX: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    if let Some(tx) = TX.get() {
        return Ok(tx.lock().unwrap_or_else(|p| p.into_inner()).clone());
    }
    let (tx, rx) = mpsc::channel::<Job>();
    std::thread::Builder::new()
        .name("pvm-spawner".into())
        .spawn(move || {
            // SAFETY: blocking every signal on this thread only; children inherit the full mask.
            unsafe {
                let mut all: libc::sigset_t = std::mem::zeroed();
                libc::sigfillset(&mut all);
                libc::pthread_sigmask(libc::SIG_SETMASK, &all, std::ptr::null_mut());
            }
            for job in rx {
                let result = spawn_now(&job.req);
                // The parent's copies of the child's fds close here.
                drop(job.req);
                let _ = job.reply.send(result);
            }
        })
        .map_err(|e| SwitcherError::Os { op: "spawn spawner thread", source: e })?;
    let m = TX.get_or_init(|| Mutex::new(tx));
    Ok(m.lock().unwrap_or_else(|p| p.into_inner()).clone())
}

/// The calling thread's CPU affinity.
pub(crate) fn current_affinity() -> libc::cpu_set_t {
    // SAFETY: zeroed cpu_set_t is valid; sched_getaffinity writes at most its size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            for cpu in 0..libc::CPU_SETSIZE as usize {
                libc::CPU_SET(cpu, &mut set);
            }
        }
        set
    }
}

/// Spawns a stub on the spawner thread and returns it once `execveat` succeeded.
pub(crate) fn spawn(req: Request) -> Result<StubProcess, SwitcherError> {
    let (reply, rx) = mpsc::channel();
    spawner()?.send(Job { req, reply }).map_err(|_| SwitcherError::SpawnerGone)?;
    rx.recv().map_err(|_| SwitcherError::SpawnerGone)?
}

fn spawn_now(req: &Request) -> Result<StubProcess, SwitcherError> {
    let exec_fd = image::exec_fd()?.as_raw_fd();
    let mut pipe = [0; 2];
    // SAFETY: pipe2 writes two fds into the array.
    if unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(SwitcherError::last_os("pipe2"));
    }
    // SAFETY: fresh fds we own.
    let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(pipe[0]), OwnedFd::from_raw_fd(pipe[1])) };
    let argv = [req.argv0.as_ptr(), std::ptr::null()];
    let envp: [*const libc::c_char; 1] = [std::ptr::null()];
    let mut fds = [(-1, -1); MAX_FDS];
    for (i, (src, dst)) in req.fds.iter().enumerate().take(MAX_FDS) {
        fds[i] = (src.as_raw_fd(), *dst);
    }
    let nfds = req.fds.len().min(MAX_FDS);
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    // SAFETY: fork; the child only calls async-signal-safe functions (child_exec) and never
    // returns.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(SwitcherError::last_os("fork"));
    }
    if pid == 0 {
        // SAFETY: in the child; all pointers are valid copies made before fork.
        unsafe { child_exec(&fds[..nfds], exec_fd, wr.as_raw_fd(), parent, &req.affinity, &argv, &envp) }
    }
    drop(wr);
    // SAFETY: pidfd_open on our own child (not yet reaped, so the pid is still ours).
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let pidfd = if pidfd < 0 {
        let e = SwitcherError::last_os("pidfd_open");
        // SAFETY: kill and reap our own child.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
        return Err(e);
    } else {
        // SAFETY: a fresh fd we own.
        unsafe { OwnedFd::from_raw_fd(pidfd as RawFd) }
    };
    let proc = StubProcess::new(pid, pidfd);
    let mut errno = [0u8; 4];
    let n = loop {
        // SAFETY: reading into a 4-byte buffer.
        let n = unsafe { libc::read(rd.as_raw_fd(), errno.as_mut_ptr().cast(), 4) };
        if n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        break n;
    };
    if n == 4 {
        return Err(SwitcherError::Exec(std::io::Error::from_raw_os_error(i32::from_ne_bytes(errno))));
    }
    Ok(proc)
}

/// The child side of [`spawn_now`]: only raw, async-signal-safe calls.
///
/// # Safety
/// Must run in a freshly forked child; pointers must be valid.
unsafe fn child_exec(
    fds: &[(RawFd, RawFd)],
    exec_fd: RawFd,
    err_fd: RawFd,
    parent: libc::pid_t,
    affinity: &libc::cpu_set_t,
    argv: &[*const libc::c_char; 2],
    envp: &[*const libc::c_char; 1],
) -> ! {
    // SAFETY: async-signal-safe system calls on valid arguments, in the child only.
    unsafe {
        let fail = |err_fd: RawFd| -> ! {
            let e = *libc::__errno_location();
            let b = e.to_ne_bytes();
            libc::write(err_fd, b.as_ptr().cast(), 4);
            libc::_exit(127)
        };
        for sig in 1..=64 {
            if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                continue;
            }
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(sig, &act, std::ptr::null_mut());
        }
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
            fail(err_fd);
        }
        if libc::getppid() != parent {
            libc::_exit(126);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), affinity);
        // A fixed layout: with ASLR the vDSO (placed top-down from a randomised mmap base up
        // to 1 TiB below the stack) could land on the stub's fixed regions.
        let persona = libc::personality(0xffff_ffff);
        if persona == -1 || libc::personality((persona as libc::c_ulong) | ADDR_NO_RANDOMIZE) == -1 {
            fail(err_fd);
        }
        // Move every fd above the target range first so dup2 cannot clobber a source.
        let mut tmp = [(-1, -1); MAX_FDS];
        for (i, &(src, dst)) in fds.iter().enumerate() {
            let t = libc::fcntl(src, libc::F_DUPFD, 64);
            if t < 0 {
                fail(err_fd);
            }
            tmp[i] = (t, dst);
        }
        let ex = libc::fcntl(exec_fd, libc::F_DUPFD, 64);
        let er = libc::fcntl(err_fd, libc::F_DUPFD_CLOEXEC, 64);
        if ex < 0 || er < 0 {
            fail(err_fd);
        }
        if libc::dup3(er, ERR_FD, libc::O_CLOEXEC) != ERR_FD {
            fail(err_fd);
        }
        for &(t, dst) in &tmp[..fds.len()] {
            if libc::dup2(t, dst) != dst {
                fail(ERR_FD);
            }
        }
        if libc::dup3(ex, EXEC_FD, libc::O_CLOEXEC) != EXEC_FD {
            fail(ERR_FD);
        }
        for fd in 0..EXEC_FD {
            if !fds.iter().any(|&(_, d)| d == fd) {
                libc::close(fd);
            }
        }
        if libc::syscall(libc::SYS_close_range, (ERR_FD + 1) as libc::c_uint, libc::c_uint::MAX, 0) != 0 {
            fail(ERR_FD);
        }
        let no_core = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        libc::setrlimit(libc::RLIMIT_CORE, &no_core);
        libc::syscall(libc::SYS_execveat, EXEC_FD, c"".as_ptr(), argv.as_ptr(), envp.as_ptr(), libc::AT_EMPTY_PATH);
        fail(ERR_FD)
    }
}
