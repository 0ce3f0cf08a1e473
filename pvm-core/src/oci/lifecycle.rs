//! The OCI lifecycle (`runtime.md`, "Lifecycle" and "Operations") with pvm's process model:
//!
//! - `create` checks config.json, makes the state directory and starts the *container
//!   monitor*: pvm re-executed as `pvm oci-monitor ID`, a child of `create` (so a descendant of
//!   the caller: containerd's shim and conmon are subreapers and reap it when `create` exits).
//!   The monitor ([`super::monitor`]) assembles the VM and starts F on the same code path as
//!   `pvm run`, reports `ok` on a pipe, and waits on `exec.fifo` for `start`. Its pid goes
//!   to `--pid-file`; its exit status is the container's.
//! - `start` writes one byte into `exec.fifo` (runc's scheme) and the monitor runs the VM.
//! - `kill` signals the monitor (through a pidfd, after checking its start time);
//!   `delete --force` SIGKILLs it and waits for its end. The sandbox processes (K, U, F) die
//!   with it (parent-death signals), so nothing of a container outlives its monitor.
//!
//! Hooks run as `runtime.md` orders them: prestart, createRuntime and createContainer in
//! `create` once the VM is ready; startContainer in `start` before the release; poststart
//! after it; poststop in `delete`.

use std::ffi::CString;
use std::io::{Read as _, Write as _};
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::path::Path;
use std::process::{Child, Command, ExitCode};

use anyhow::{Context as _, Result, bail};
use oci_spec::runtime::{ContainerState, Hook};

use super::cli::{CreateArgs, GlobalArgs};
use super::state::{self, FIFO_FILE, Locked, Phase, Record};
use super::{config, hooks, log};
use crate::cli::RunArgs;

/// What `create` needs besides the global flags.
pub struct CreateRequest<'a> {
    /// Container ID.
    pub id: &'a str,
    /// Bundle directory as given.
    pub bundle: &'a Path,
    /// `--pid-file`.
    pub pid_file: Option<&'a Path>,
    /// `--console-socket`.
    pub console_socket: Option<&'a Path>,
    /// `--preserve-fds`.
    pub preserve_fds: u32,
}

impl<'a> From<&'a CreateArgs> for CreateRequest<'a> {
    fn from(a: &'a CreateArgs) -> Self {
        Self {
            id: &a.id,
            bundle: &a.bundle,
            pid_file: a.pid_file.as_deref(),
            console_socket: a.console_socket.as_deref(),
            preserve_fds: a.preserve_fds,
        }
    }
}

fn hook_list(hooks: &Option<oci_spec::runtime::Hooks>, pick: fn(&oci_spec::runtime::Hooks) -> &Option<Vec<Hook>>) -> &[Hook] {
    hooks.as_ref().and_then(|h| pick(h).as_deref()).unwrap_or_default()
}

/// `create`: returns the monitor (a child of this process) once the VM is ready and the
/// create-time hooks ran. On any failure nothing is left: the monitor is killed and the state
/// directory removed.
///
/// # Errors
/// One line: the ID, config.json, the monitor's own failure (its message), a hook.
pub fn create(g: &GlobalArgs, req: &CreateRequest<'_>) -> Result<Child> {
    state::check_id(req.id)?;
    if req.console_socket.is_some() {
        bail!("--console-socket: pvm has no consoles yet (needs the guest's pty support); run without a terminal");
    }
    if req.preserve_fds > 0 {
        bail!("--preserve-fds {}: pvm passes only stdio to the guest", req.preserve_fds);
    }
    let bundle = std::fs::canonicalize(req.bundle).with_context(|| format!("--bundle {}", req.bundle.display()))?;
    let container = config::load(&bundle, None)?;
    super::rootfs::make_mount_points(&container.args)?;
    let dir = state::create_dir(&g.root, req.id)?;
    let mut child = None;
    match create_in(&dir, g, req, &bundle, &container, &mut child) {
        Ok(()) => Ok(child.expect("create_in returns Ok only with the monitor")),
        Err(e) => {
            if let Some(mut c) = child {
                let _ = c.kill();
                let _ = c.wait();
            }
            if let Err(r) = dir.remove() {
                log::warn(&format!("cleaning up after a failed create: {r:#}"));
            }
            Err(e)
        }
    }
}

fn mkfifo(path: &Path) -> Result<()> {
    let c = CString::new(path.as_os_str().as_bytes())?;
    // SAFETY: a NUL-terminated path that lives across the call.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("mkfifo {}", path.display()));
    }
    Ok(())
}

fn pipe() -> Result<(std::fs::File, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into `fds`.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error()).context("pipe2");
    }
    // SAFETY: two fresh descriptors that only these owners close.
    Ok(unsafe { (std::fs::File::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn create_in(dir: &Locked, g: &GlobalArgs, req: &CreateRequest<'_>, bundle: &Path, c: &config::Container, child: &mut Option<Child>) -> Result<()> {
    std::fs::copy(bundle.join("config.json"), dir.path().join(state::CONFIG_FILE)).context("copying config.json")?;
    mkfifo(&dir.path().join(FIFO_FILE))?;
    let mut record = Record {
        id: req.id.to_string(),
        bundle: bundle.to_path_buf(),
        phase: Phase::Creating,
        pid: 0,
        pid_start: 0,
        created: state::now_rfc3339(),
        annotations: c.annotations.clone(),
        network_namespace: c.network_namespace.clone(),
        hooks: c.hooks.clone(),
    };
    dir.write(&record)?;

    let (mut ready_r, ready_w) = pipe()?;
    let exe = std::env::current_exe().context("finding pvm's own executable")?;
    let mut cmd = Command::new(exe);
    cmd.arg("--root").arg(&g.root).arg("--log-format").arg(&g.log_format);
    if let Some(l) = &g.log {
        cmd.arg("--log").arg(l);
    }
    if g.debug {
        cmd.arg("--debug");
    }
    let w: RawFd = ready_w.as_raw_fd();
    cmd.args(["oci-monitor", "--ready-fd", &w.to_string(), req.id]).current_dir(bundle);
    // SAFETY: the closure only calls fcntl, which is async-signal-safe, on a descriptor that
    // is open in the child (inherited from this process).
    unsafe {
        cmd.pre_exec(move || {
            if libc::fcntl(w, libc::F_SETFD, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let spawned = cmd.spawn().context("starting the container monitor")?;
    drop(ready_w);
    record.pid = spawned.id() as i32;
    record.pid_start = state::proc_stat(record.pid).map_or(0, |s| s.1);
    *child = Some(spawned);
    dir.write(&record)?;

    let mut report = String::new();
    ready_r.read_to_string(&mut report).context("reading the monitor's report")?;
    if report.trim_end() != "ok" {
        let waited = child.as_mut().map(Child::wait);
        let msg = report.strip_prefix("err ").and_then(|r| r.split_once(' ')).map(|(_, m)| m.trim_end().to_string());
        match (msg, waited) {
            (Some(m), _) => bail!("{m}"),
            (None, Some(Ok(status))) => bail!("the container monitor failed ({status})"),
            _ => bail!("the container monitor failed"),
        }
    }
    if let Some(p) = req.pid_file {
        let tmp = p.with_extension("pvm-tmp");
        state::write_atomic(p, format!("{}", record.pid).as_bytes(), &tmp).with_context(|| format!("--pid-file {}", p.display()))?;
    }
    // The create-time hooks see `creating` (runtime.md, "Lifecycle": the container is
    // created once they have run).
    let st = state::oci_state(&record);
    #[allow(deprecated)] // prestart is deprecated by the spec, still honoured as runc does
    let prestart = hook_list(&record.hooks, |h| h.prestart());
    hooks::run("prestart", prestart, &st)?;
    hooks::run("createRuntime", hook_list(&record.hooks, |h| h.create_runtime()), &st)?;
    hooks::run("createContainer", hook_list(&record.hooks, |h| h.create_container()), &st)?;
    record.phase = Phase::Created;
    dir.write(&record)?;
    Ok(())
}

/// A pidfd for the monitor of `record`, if it is alive and the pid is still its own.
fn monitor_pidfd(record: &Record) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, record.pid, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: a fresh descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    // Checked after opening: the pidfd now pins this process, so a reused pid shows here.
    state::monitor_alive(record).then_some(fd)
}

fn send(fd: &OwnedFd, sig: libc::c_int) -> Result<()> {
    // SAFETY: pidfd_send_signal on a pidfd we own, with no siginfo.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_send_signal, fd.as_raw_fd(), sig, std::ptr::null::<libc::siginfo_t>(), 0) };
    if r != 0 {
        return Err(std::io::Error::last_os_error()).context("sending the signal");
    }
    Ok(())
}

/// `start`.
///
/// # Errors
/// Not in the created state; a startContainer hook failed (the container is killed then).
pub fn start(g: &GlobalArgs, id: &str) -> Result<()> {
    let dir = state::open_dir(&g.root, id)?;
    let mut record = dir.read()?;
    match state::status(&record) {
        ContainerState::Created => {}
        ContainerState::Stopped => bail!("cannot start a container that has stopped"),
        s => bail!("cannot start a container in the {s} state (it must be created)"),
    }
    let st = state::oci_state(&record);
    if let Err(e) = hooks::run("startContainer", hook_list(&record.hooks, |h| h.start_container()), &st) {
        if let Some(fd) = monitor_pidfd(&record) {
            let _ = send(&fd, libc::SIGKILL);
        }
        return Err(e);
    }
    let fifo = dir.path().join(FIFO_FILE);
    let mut f = match std::fs::OpenOptions::new().write(true).custom_flags(libc::O_NONBLOCK).open(&fifo) {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ENXIO) => bail!("container not running (its monitor is not waiting for start)"),
        Err(e) => return Err(e).with_context(|| format!("opening {}", fifo.display())),
    };
    f.write_all(&[0]).context("releasing the container monitor")?;
    drop(f);
    std::fs::remove_file(&fifo).with_context(|| format!("removing {}", fifo.display()))?;
    record.phase = Phase::Running;
    dir.write(&record)?;
    drop(dir);
    let st = state::oci_state(&record);
    if let Err(e) = hooks::run("poststart", hook_list(&record.hooks, |h| h.poststart()), &st) {
        log::warn(&format!("{e:#}"));
    }
    Ok(())
}

/// `state`: the OCI state as pretty JSON.
///
/// # Errors
/// No such container.
pub fn print_state(g: &GlobalArgs, id: &str) -> Result<()> {
    let record = state::read_unlocked(&g.root, id)?;
    println!("{}", serde_json::to_string_pretty(&state::oci_state(&record))?);
    Ok(())
}

/// `kill`.
///
/// # Errors
/// A signal pvm cannot deliver, or the container is neither created nor running.
pub fn kill(g: &GlobalArgs, id: &str, signal: &str) -> Result<()> {
    let sig = super::signal::parse(signal)?;
    if !super::signal::deliverable(sig) {
        bail!("signal {signal}: pvm delivers only KILL, TERM, INT and HUP to a container so far (each ends the VM; other signals need a host-to-guest signal path)");
    }
    let dir = state::open_dir(&g.root, id)?;
    let record = dir.read()?;
    match state::status(&record) {
        ContainerState::Created | ContainerState::Running => {}
        _ => bail!("container not running"),
    }
    let Some(fd) = monitor_pidfd(&record) else { bail!("container not running") };
    send(&fd, sig)
}

/// Waits until the process behind `fd` has ended (its pidfd reads as readable) for at most
/// `ms` milliseconds; returns whether it did.
fn wait_exit(fd: &OwnedFd, ms: i32) -> bool {
    let mut p = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: polls one pollfd that lives across the call.
    unsafe { libc::poll(&mut p, 1, ms) == 1 }
}

/// `delete`.
///
/// # Errors
/// Not stopped without --force, the monitor would not die, or the state cannot be removed.
pub fn delete(g: &GlobalArgs, id: &str, force: bool) -> Result<()> {
    let dir = match state::open_dir(&g.root, id) {
        Ok(d) => d,
        // runc: deleting a missing container with --force succeeds.
        Err(_) if force && state::check_id(id).is_ok() && !g.root.join(id).exists() => return Ok(()),
        Err(e) => return Err(e),
    };
    let record = dir.read()?;
    let status = state::status(&record);
    if status != ContainerState::Stopped {
        if !force {
            bail!("cannot delete container {id} that is not stopped: {status}");
        }
        if let Some(fd) = monitor_pidfd(&record) {
            send(&fd, libc::SIGKILL)?;
            if !wait_exit(&fd, 10_000) {
                bail!("container {id}: its monitor (pid {}) did not end after SIGKILL", record.pid);
            }
        }
    }
    dir.remove()?;
    let mut st = state::oci_state(&record);
    st.set_status(ContainerState::Stopped);
    st.set_pid(None);
    if let Err(e) = hooks::run("poststop", hook_list(&record.hooks, |h| h.poststop()), &st) {
        log::warn(&format!("{e:#}"));
    }
    Ok(())
}

/// The host pids of a container: the monitor and its descendants (K, U and F), from the
/// parent pids in `/proc/*/stat`.
fn pids(record: &Record) -> Vec<i32> {
    if !state::monitor_alive(record) {
        return Vec::new();
    }
    let mut parent = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let Some(rest) = text.rfind(')').map(|i| &text[i + 1..]) else { continue };
        if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|s| s.parse::<i32>().ok()) {
            parent.push((pid, ppid));
        }
    }
    let mut out = vec![record.pid];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        out.extend(parent.iter().filter(|&&(_, pp)| pp == p).map(|&(c, _)| c));
        i += 1;
    }
    out
}

/// `ps`.
///
/// # Errors
/// No such container; ps(1) options.
pub fn ps(g: &GlobalArgs, id: &str, format: &str, ps_args: &[String]) -> Result<()> {
    if !ps_args.is_empty() {
        bail!("ps options {ps_args:?}: pvm's ps prints PID and CMD only");
    }
    let record = state::read_unlocked(&g.root, id)?;
    let pids = pids(&record);
    if format == "json" {
        println!("{}", serde_json::to_string(&pids)?);
        return Ok(());
    }
    println!("PID\tCMD");
    for p in pids {
        let cmd = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
        let cmd: Vec<String> = cmd.split(|&b| b == 0).filter(|s| !s.is_empty()).map(|s| String::from_utf8_lossy(s).into_owned()).collect();
        println!("{p}\t{}", cmd.join(" "));
    }
    Ok(())
}

/// `list`.
///
/// # Errors
/// Output.
pub fn list(g: &GlobalArgs, format: &str, quiet: bool) -> Result<()> {
    let records = state::list(&g.root);
    if quiet {
        for r in &records {
            println!("{}", r.id);
        }
        return Ok(());
    }
    if format == "json" {
        let v: Vec<serde_json::Value> = records
            .iter()
            .map(|r| {
                let s = state::oci_state(r);
                serde_json::json!({
                    "ociVersion": s.version(), "id": r.id, "pid": s.pid().unwrap_or(0), "status": s.status().to_string(),
                    "bundle": r.bundle, "created": r.created, "annotations": r.annotations,
                })
            })
            .collect();
        println!("{}", serde_json::to_string(&v)?);
        return Ok(());
    }
    println!("ID\tPID\tSTATUS\tBUNDLE\tCREATED");
    for r in &records {
        let s = state::oci_state(r);
        println!("{}\t{}\t{}\t{}\t{}", r.id, s.pid().unwrap_or(0), s.status(), r.bundle.display(), r.created);
    }
    Ok(())
}

/// `pvm run --bundle DIR ID`: create and start, then (without --detach) wait for the
/// container's end, delete it, and exit with its status (signals TERM, INT and HUP are passed
/// on to the monitor meanwhile).
pub fn run(g: &GlobalArgs, args: &RunArgs) -> ExitCode {
    let fail = |e: anyhow::Error| {
        log::error(&format!("{e:#}"));
        ExitCode::from(1)
    };
    let [id] = args.program.as_slice() else {
        return fail(anyhow::anyhow!("run --bundle takes exactly one container ID, got {:?}", args.program));
    };
    let Some(bundle) = &args.bundle else { return fail(anyhow::anyhow!("run: --bundle is missing")) };
    let req = CreateRequest {
        id,
        bundle,
        pid_file: args.pid_file.as_deref(),
        console_socket: args.console_socket.as_deref(),
        preserve_fds: args.preserve_fds,
    };
    // Blocked before any thread exists, so the monitor's threads do not take them either
    // (it unblocks nothing: `signals::watch` blocks the same set there).
    block_stop_signals();
    let mut child = match create(g, &req) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    if let Err(e) = start(g, id) {
        let _ = child.kill();
        let _ = child.wait();
        let _ = delete(g, id, true);
        return fail(e);
    }
    if args.detach {
        return ExitCode::SUCCESS;
    }
    forward_stop_signals(child.id() as i32);
    let status = child.wait();
    if let Err(e) = delete(g, id, true) {
        log::warn(&format!("{e:#}"));
    }
    match status {
        Ok(s) => match (s.code(), s.signal()) {
            (Some(c), _) => ExitCode::from(c as u8),
            (None, Some(sig)) => ExitCode::from(128u8.saturating_add(sig as u8)),
            _ => ExitCode::from(125),
        },
        Err(e) => fail(e.into()),
    }
}

/// Blocks SIGTERM, SIGINT and SIGHUP in the calling thread (pvm's only one).
fn block_stop_signals() {
    let set = crate::signals::stop_set();
    // SAFETY: changes this thread's signal mask only.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
}

/// Passes SIGTERM, SIGINT and SIGHUP on to `pid` from a thread of their own.
fn forward_stop_signals(pid: i32) {
    let set = crate::signals::stop_set();
    let _ = std::thread::Builder::new().name("pvm-forward".into()).spawn(move || {
        loop {
            // SAFETY: waits for one of the blocked signals in `set`.
            let sig = unsafe { libc::sigwaitinfo(&set, std::ptr::null_mut()) };
            if sig > 0 {
                // SAFETY: plain kill(2) of our own child.
                unsafe { libc::kill(pid, sig) };
            }
        }
    });
}
