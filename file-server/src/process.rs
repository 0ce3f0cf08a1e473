//! The F process: `pvm __file-server ARGS` (pvm re-executes itself, see [`crate::host`]).
//! Maps guest RAM from the memfd H passed, opens each mount's root with `fuse-backend-rs`'s
//! passthrough filesystem, enters the sandbox ([`crate::sandbox`]) and serves one queue per
//! thread until H kills it. Once it serves it writes one byte to the ready pipe. F never exits
//! on its own while it serves; a failure before that prints one line on stderr and exits with
//! status 1 (H, which waits for the ready byte, then fails the run with status 125).

use std::ffi::OsString;
use std::fs::File;
use std::os::fd::FromRawFd;
use std::process::ExitCode;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use fuse_backend_rs::passthrough::{CachePolicy, Config, PassthroughFs};

use crate::config::{MountSpec, ServerConfig};
use crate::memory::GuestRam;
use crate::queue::{Fs, QueueServer};
use crate::sandbox;

/// The passthrough filesystem of one mount, root imported (opened) already.
///
/// # Errors
/// The OS error of opening the root (or `/proc/self/fd`), or `InvalidInput` for a source path
/// that is not UTF-8 (the passthrough's configuration takes a `String`).
pub fn open_mount(m: &MountSpec) -> std::io::Result<Arc<Fs>> {
    let root_dir = m
        .source
        .to_str()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "mount source is not UTF-8"))?
        .to_string();
    let cfg = Config {
        root_dir,
        do_import: true,
        xattr: true,
        cache_policy: CachePolicy::Auto,
        attr_timeout: Duration::from_secs(1),
        entry_timeout: Duration::from_secs(1),
        ..Config::default()
    };
    let fs = PassthroughFs::<()>::new(cfg)?;
    fs.import()?;
    Ok(Arc::new(fs))
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("pvm: file server: {msg}");
    ExitCode::from(1)
}

/// F's `main`: `args` are the arguments after the subcommand ([`ServerConfig::parse`]).
pub fn main(args: &[OsString]) -> ExitCode {
    let cfg = match ServerConfig::parse(args) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    // `ps` and /proc/PID/comm show F by name (exec through /proc/self/exe would say `exe`).
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
    unsafe { libc::prctl(libc::PR_SET_NAME, c"pvm-file-server".as_ptr(), 0, 0, 0) };
    if cfg.parent_pid != 0 {
        // Die with pvm, even on SIGKILL; then check pvm did not die before that was armed.
        // SAFETY: prctl with integer arguments; getppid has no preconditions.
        let armed = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) } == 0;
        // SAFETY: as above.
        if !armed || unsafe { libc::getppid() } != cfg.parent_pid {
            return fail("pvm is gone");
        }
    }
    // SAFETY: H passed this descriptor open for F (see `host::FileServer::start`); F owns it
    // from here on. A wrong number fails at mmap below.
    let memfd = unsafe { File::from_raw_fd(cfg.memfd) };
    let ram = match GuestRam::map(memfd, cfg.ram_size) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let bells = match ram.doorbells(cfg.area_gpa) {
        Ok(b) => b,
        Err(e) => return fail(e),
    };
    let mut servers = Vec::new();
    for m in &cfg.mounts {
        let fs = match open_mount(m) {
            Ok(fs) => fs,
            Err(e) => return fail(format!("{}: {e}", m.source.display())),
        };
        match QueueServer::new(ram.mem(), bells, cfg.area_gpa, m.queue, fs) {
            Ok(s) => servers.push(s),
            Err(e) => return fail(e),
        }
    }
    if let Err(e) = sandbox::restrict_files(&cfg.mounts) {
        return fail(e);
    }
    // The queue threads exist before the seccomp filter (which has no `clone`) and start
    // serving only once it covers them: `started` waits until each thread has run its start-up
    // (glibc's rseq and robust-list registration, std's signal stack), `go` until the filter
    // is installed on every thread.
    let started = Barrier::new(servers.len() + 1);
    let go = Barrier::new(servers.len() + 1);
    std::thread::scope(|s| {
        for mut q in servers {
            let (started, go) = (&started, &go);
            s.spawn(move || {
                started.wait();
                go.wait();
                q.run()
            });
        }
        started.wait();
        if let Err(e) = sandbox::restrict_syscalls() {
            // Exit before any queue thread serves (they wait on `go`).
            eprintln!("pvm: file server: {e}");
            std::process::exit(1);
        }
        go.wait();
        if cfg.ready_fd >= 0 {
            // SAFETY: H passed this pipe end for F to own; writing one byte and closing it
            // tells H that F serves.
            let mut ready = unsafe { File::from_raw_fd(cfg.ready_fd) };
            let _ = std::io::Write::write_all(&mut ready, b"r");
        }
    });
    ExitCode::SUCCESS
}
