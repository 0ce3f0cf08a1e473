//! Shared helpers of the end-to-end tests: build guest test programs (cached per test binary),
//! run `pvm` and native programs with a hard timeout (never hang), compare their results, and
//! find the VM's host processes.
//!
//! Every test binary compiles this module; not all of them use every helper.
#![allow(dead_code)]

use std::cell::Cell;
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// vCPUs of a soft-backend `pvm run` that does not pass `--cpus` (see `Run::final_args`).
pub const DEFAULT_TEST_CPUS: &str = "2";
/// Default limit for one run (pvm or native), seconds.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// At most this many `pvm` runs at once in one test binary (the machines have 2 cores).
pub const MAX_CONCURRENT_VMS: usize = 2;
/// After this many timeouts in one test binary, later runs get at most [`BROKEN_TIMEOUT`]: a pvm
/// that hangs every run must not stretch the suite to hours.
const TIMEOUTS_BEFORE_SHORTENING: usize = 2;
/// The shortened time limit (see [`TIMEOUTS_BEFORE_SHORTENING`]).
const BROKEN_TIMEOUT: Duration = Duration::from_secs(10);
static TIMEOUTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
/// How long to wait for a finished process's stdout/stderr to reach end of file. A VM process
/// that outlives `pvm` and kept the pipes would make this expire.
const PIPE_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// How much longer a run may take on `--backend kvm` than on the soft backend: on software
/// KVM (`kvm_pvm`, this project's machines) guest ring 0 is emulated, so the guest kernel's
/// work (boot, syscalls, page faults) runs one to two orders of magnitude slower.
pub const KVM_TIMEOUT_FACTOR: u32 = 10;

/// The backend of the `pvm run`s a test thread makes (see [`on_kvm`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The default, `--backend soft`.
    Soft,
    /// `--backend kvm`.
    Kvm,
}

thread_local! {
    static BACKEND: Cell<Backend> = const { Cell::new(Backend::Soft) };
}

/// Why the KVM backend cannot run on this host (`None`: `/dev/kvm` opens read-write).
pub fn kvm_unusable() -> Option<String> {
    match std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm") {
        Ok(_) => None,
        Err(e) => Some(format!("/dev/kvm: {e}")),
    }
}

/// Runs the test case `case` with every `pvm run` it makes on `--backend kvm` (and time limits
/// multiplied by [`KVM_TIMEOUT_FACTOR`]). Where KVM cannot be used, prints why and skips.
/// This is how each equivalence suite runs unchanged on the KVM backend.
pub fn on_kvm(test: &str, case: impl FnOnce()) {
    if let Some(why) = kvm_unusable() {
        println!("skipping {test} on the KVM backend: {why}");
        return;
    }
    struct Restore;
    impl Drop for Restore {
        fn drop(&mut self) {
            BACKEND.set(Backend::Soft);
        }
    }
    let _restore = Restore;
    BACKEND.set(Backend::Kvm);
    case();
}

/// Set to `1` to run even the cases a suite skips on software KVM (see [`on_kvm_unless_slow`]).
pub const KVM_FULL_ENV: &str = "PVM_TEST_KVM_FULL";

/// Whether this host's KVM is software (`pvm info --json` says `"kind": "software"`, e.g.
/// `kvm_pvm`): guest ring 0 is emulated there, about 1000 times slower than hardware.
pub fn kvm_is_software() -> bool {
    static SOFTWARE: OnceLock<bool> = OnceLock::new();
    *SOFTWARE.get_or_init(|| {
        let out = Command::new(pvm_bin()).args(["info", "--json"]).output().expect("running pvm info --json");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("pvm info --json prints JSON");
        v["kvm"]["kind"] == "software"
    })
}

/// Like [`on_kvm`], but on software KVM `case` runs only with [`KVM_FULL_ENV`]`=1`: for the
/// few cases (hundreds of processes) that take minutes there. `why` says what makes it slow;
/// the skip is printed. On hardware KVM it always runs.
pub fn on_kvm_unless_slow(test: &str, why: &str, case: impl FnOnce()) {
    if kvm_unusable().is_none() && kvm_is_software() && std::env::var(KVM_FULL_ENV).as_deref() != Ok("1") {
        println!("skipping {test} on software KVM ({why}); {KVM_FULL_ENV}=1 runs it");
        return;
    }
    on_kvm(test, case);
}

/// Makes each listed case function (`fn()`) a test twice: `soft::CASE` on the soft backend
/// and `kvm::CASE` on `--backend kvm` ([`on_kvm`]: skipped where KVM cannot be used). Needs
/// `#[macro_use] mod common;`.
#[allow(unused_macros)]
macro_rules! on_both_backends {
    ($($case:ident),* $(,)?) => {
        mod soft {
            $(#[test] fn $case() { super::$case(); })*
        }
        mod kvm {
            $(#[test] fn $case() { super::common::on_kvm(stringify!($case), super::$case); })*
        }
    };
}

/// The backend of this thread's pvm runs.
pub fn backend() -> Backend {
    BACKEND.get()
}

/// Path of the `pvm` binary under test.
pub fn pvm_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_pvm"))
}

/// Directory of the C sources of the guest test programs.
pub fn programs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/programs")
}

/// The C library a test program is linked with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Libc {
    /// `gcc -static` (glibc).
    Glibc,
    /// `musl-gcc -static`.
    Musl,
}

impl Libc {
    fn compiler(self) -> &'static str {
        match self {
            Self::Glibc => "gcc",
            Self::Musl => "musl-gcc",
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Self::Glibc => "glibc",
            Self::Musl => "musl",
        }
    }
}

/// How a test program is linked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Link {
    /// `-static`.
    Static,
    /// The compiler's default: dynamically linked (PIE).
    Dynamic,
}

type BuildKey = (String, Libc, Link);

fn build_cache() -> &'static Mutex<HashMap<BuildKey, PathBuf>> {
    static CACHE: OnceLock<Mutex<HashMap<BuildKey, PathBuf>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Copies the executable `src` to `dst` (mode included) in a child `cp` process.
///
/// Not `std::fs::copy`: while this thread holds `dst` open for writing, a test on another
/// thread may fork, and its child keeps the (close-on-exec) write descriptor until it execs;
/// an `execve` of `dst` in that window fails with ETXTBSY ("Text file busy", execve(2)). In a
/// child process the descriptor is never visible to this process's forks. Panics with the
/// reason if the copy fails.
pub fn copy_executable(src: &Path, dst: &Path) {
    let st = Command::new("cp").arg("--").arg(src).arg(dst).status().expect("running cp");
    assert!(st.success(), "cp {} {} failed: {st}", src.display(), dst.display());
}

/// Builds `tests/programs/<name>.c` with `libc`, statically linked; cached for the test binary's
/// run. Returns the executable's path (under cargo's target tmp dir).
pub fn program(name: &str, libc: Libc) -> PathBuf {
    build(name, libc, Link::Static)
}

/// Builds `tests/programs/<name>.c` with `libc` and `link`; cached for the test binary's run.
///
/// The output goes to a fixed path under [`tmp_base`], written through a temporary name unique
/// to this process and call and renamed into place, so tests and test binaries that build the
/// same program at once never see (or run) a half-written file.
pub fn build(name: &str, libc: Libc, link: Link) -> PathBuf {
    build_source(&programs_dir().join(format!("{name}.c")), libc, link)
}

/// Builds the C source `src` (any directory; its file stem names the executable, so stems must
/// be unique across directories) with `libc` and `link`; cached for the test binary's run.
pub fn build_source(src: &Path, libc: Libc, link: Link) -> PathBuf {
    let name = src.file_stem().and_then(OsStr::to_str).expect("a C source named NAME.c");
    let key = (src.display().to_string(), libc, link);
    let mut cache = build_cache().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(p) = cache.get(&key) {
        return p.clone();
    }
    let dir = tmp_base()
        .join("pvm-test-programs")
        .join(format!("{}-{}", libc.tag(), if link == Link::Static { "static" } else { "dynamic" }));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    let exe = dir.join(name);
    let tmp = dir.join(format!(".{name}.{}.{}.tmp", std::process::id(), unique()));
    let mut cmd = Command::new(libc.compiler());
    if link == Link::Static {
        cmd.arg("-static");
    }
    cmd.args(["-O2", "-Wall", "-Wextra", "-o"]).arg(&tmp).arg(src).arg("-lm");
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {} (install it, see ci/test.sh): {e}", libc.compiler()));
    assert!(
        out.status.success(),
        "compiling {} with {} failed:\n{}",
        src.display(),
        libc.compiler(),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(&tmp, &exe).expect("renaming the built test program into place");
    cache.insert(key, exe.clone());
    exe
}

/// A counting semaphore (std has none): limits concurrent VMs within a test binary.
struct Semaphore {
    free: Mutex<usize>,
    cv: Condvar,
}

/// Held while a `pvm` run is in flight; releases its slot on drop.
pub struct VmSlot(&'static Semaphore);

impl Drop for VmSlot {
    fn drop(&mut self) {
        let mut free = self.0.free.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *free += 1;
        self.0.cv.notify_one();
    }
}

/// Waits for one of the [`MAX_CONCURRENT_VMS`] slots.
pub fn vm_slot() -> VmSlot {
    static SEM: OnceLock<Semaphore> = OnceLock::new();
    let sem = SEM.get_or_init(|| Semaphore { free: Mutex::new(MAX_CONCURRENT_VMS), cv: Condvar::new() });
    let mut free = sem.free.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    while *free == 0 {
        free = sem.cv.wait(free).unwrap_or_else(std::sync::PoisonError::into_inner);
    }
    *free -= 1;
    VmSlot(sem)
}

/// What a finished (or killed) process did.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Shell-style status: the exit code, or 128 + N when signal N killed it.
    pub status: i32,
    /// Everything it wrote on stdout.
    pub stdout: Vec<u8>,
    /// Everything it wrote on stderr.
    pub stderr: Vec<u8>,
    /// Whether the run hit its timeout (then it was killed with SIGKILL).
    pub timed_out: bool,
    /// Wall time.
    pub elapsed: Duration,
    /// The command line, for messages.
    pub command: String,
}

impl Outcome {
    /// stdout as (lossy) text.
    pub fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// stderr as (lossy) text.
    pub fn err(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// A readable account of the run for assertion messages.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "command: {}", self.command);
        let _ = writeln!(
            s,
            "status: {}{} after {:.2?}",
            self.status,
            if self.timed_out { " (TIMED OUT, killed)" } else { "" },
            self.elapsed
        );
        let _ = writeln!(s, "--- stdout ({} bytes) ---\n{}", self.stdout.len(), clip(&self.out()));
        let _ = writeln!(s, "--- stderr ({} bytes) ---\n{}", self.stderr.len(), clip(&self.err()));
        s
    }

    /// Panics (with the whole account) if the run timed out.
    pub fn finished(self) -> Self {
        assert!(!self.timed_out, "run did not finish in time:\n{}", self.describe());
        self
    }

    /// Non-empty lines of stderr.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.err().lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect()
    }
}

fn clip(s: &str) -> String {
    const MAX: usize = 4000;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut cut = MAX;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}\n[... {} more bytes]", &s[..cut], s.len() - cut)
}

/// Shell-style status of an exit status.
pub fn shell_status(st: ExitStatus) -> i32 {
    match (st.code(), st.signal()) {
        (Some(c), _) => c,
        (None, Some(sig)) => 128 + sig,
        (None, None) => -1,
    }
}

/// A command to run with a clean environment, no stdin, captured stdout/stderr and a timeout.
#[derive(Clone, Debug)]
pub struct Run {
    program: PathBuf,
    args: Vec<OsString>,
    env: Vec<(String, String)>,
    cwd: Option<PathBuf>,
    timeout: Duration,
    is_vm: bool,
    /// For pvm runs: the backend (`--backend kvm` is added after `run`).
    backend: Backend,
}

impl Run {
    /// Runs `program` natively.
    pub fn native(program: impl AsRef<Path>) -> Self {
        Self {
            program: program.as_ref().to_path_buf(),
            args: Vec::new(),
            env: Vec::new(),
            cwd: None,
            timeout: DEFAULT_TIMEOUT,
            is_vm: false,
            backend: Backend::Soft,
        }
    }

    /// Runs the `pvm` binary (with the given arguments still to add); takes a VM slot. A
    /// `pvm run` uses this thread's backend ([`on_kvm`]).
    pub fn pvm() -> Self {
        Self { is_vm: true, backend: backend(), ..Self::native(pvm_bin()) }
    }

    /// The arguments as passed: `--backend kvm` inserted after `run` for KVM runs; on the
    /// soft backend a `pvm run` of a program (`--` present) that does not choose `--cpus`
    /// gets [`DEFAULT_TEST_CPUS`], so every suite exercises SMP (issue 10).
    fn final_args(&self) -> Vec<OsString> {
        let mut args = self.args.clone();
        let is_run = self.is_vm && args.first().is_some_and(|a| a == "run");
        if is_run && self.backend == Backend::Kvm {
            args.splice(1..1, ["--backend".into(), "kvm".into()]);
        }
        if is_run && self.backend == Backend::Soft {
            let end = args.iter().position(|a| a == "--");
            let chooses = args[..end.unwrap_or(args.len())].iter().any(|a| a == "--cpus" || a.to_string_lossy().starts_with("--cpus="));
            if end.is_some() && !chooses {
                args.splice(1..1, ["--cpus".into(), DEFAULT_TEST_CPUS.into()]);
            }
        }
        args
    }

    /// Adds one argument.
    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.args.push(a.as_ref().to_os_string());
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    /// Sets one environment entry of the process (the environment is otherwise empty).
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.to_string(), v.to_string()));
        self
    }

    /// Working directory of the process.
    pub fn cwd(mut self, dir: impl AsRef<Path>) -> Self {
        self.cwd = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Time limit.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    fn command_line(&self) -> String {
        let mut s = self.program.display().to_string();
        for a in &self.final_args() {
            s.push(' ');
            let a = a.to_string_lossy();
            if a.is_empty() || a.contains(' ') {
                s.push_str(&format!("'{a}'"));
            } else {
                s.push_str(&a);
            }
        }
        s
    }

    /// Starts the process (in its own process group) without waiting; the caller owns it.
    pub fn spawn(&self) -> Spawned {
        let slot = self.is_vm.then(vm_slot);
        let mut cmd = Command::new(&self.program);
        cmd.args(self.final_args())
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        if let Some(d) = &self.cwd {
            cmd.current_dir(d);
        }
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawning {}: {e}", self.command_line()));
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (timeout, broken) = match self.backend {
            Backend::Soft => (self.timeout, BROKEN_TIMEOUT),
            Backend::Kvm => (self.timeout * KVM_TIMEOUT_FACTOR, BROKEN_TIMEOUT * KVM_TIMEOUT_FACTOR),
        };
        let timeout = if TIMEOUTS.load(std::sync::atomic::Ordering::Relaxed) >= TIMEOUTS_BEFORE_SHORTENING {
            timeout.min(broken)
        } else {
            timeout
        };
        Spawned {
            child,
            stdout: drain(stdout),
            stderr: drain(stderr),
            start: Instant::now(),
            timeout,
            command: self.command_line(),
            reaped: false,
            _slot: slot,
        }
    }

    /// Runs to completion or timeout (then kills the whole process group with SIGKILL).
    pub fn run(&self) -> Outcome {
        self.spawn().wait()
    }
}

/// Output of one pipe, filled by a reader thread; `done` receives `()` at end of file.
struct Pipe {
    data: Arc<Mutex<Vec<u8>>>,
    done: Receiver<()>,
}

fn drain(mut r: impl Read + Send + 'static) -> Pipe {
    let data = Arc::new(Mutex::new(Vec::new()));
    let (tx, done) = mpsc::channel();
    let sink = Arc::clone(&data);
    std::thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        loop {
            match r.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => sink.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let _ = tx.send(());
    });
    Pipe { data, done }
}

impl Pipe {
    fn snapshot(&self) -> Vec<u8> {
        self.data.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

/// A running process started by [`Run::spawn`].
pub struct Spawned {
    /// The child (its pid is also its process group id).
    pub child: Child,
    stdout: Pipe,
    stderr: Pipe,
    start: Instant,
    timeout: Duration,
    command: String,
    /// Whether the child was waited for (after that its pid may be reused: never signal it).
    reaped: bool,
    _slot: Option<VmSlot>,
}

impl Drop for Spawned {
    /// A test that panics between `spawn` and `wait` must not leave the process running.
    fn drop(&mut self) {
        if !self.reaped {
            self.kill_group();
            let _ = self.child.wait();
        }
    }
}

impl Spawned {
    /// Host pid of the process.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the process wrote on stdout so far.
    pub fn stdout_so_far(&self) -> Vec<u8> {
        self.stdout.snapshot()
    }

    /// What the process wrote on stderr so far.
    pub fn stderr_so_far(&self) -> Vec<u8> {
        self.stderr.snapshot()
    }

    /// Sends SIGKILL to the whole process group (the process and anything that stayed in it).
    pub fn kill_group(&self) {
        let pgid = libc::pid_t::try_from(self.child.id()).expect("pids fit in pid_t");
        // SAFETY: kill(2) with a negative pid signals a process group; no memory is involved.
        // The group is ours: the child was spawned with process_group(0) and is not reaped yet,
        // so its id cannot have been reused.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }

    /// Waits for the end or the timeout; collects output.
    pub fn wait(mut self) -> Outcome {
        let deadline = self.start + self.timeout;
        let mut timed_out = false;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(st)) => break st,
                Ok(None) if Instant::now() >= deadline => {
                    timed_out = true;
                    TIMEOUTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    self.kill_group();
                    break self.child.wait().expect("waiting for a killed child");
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => panic!("waiting for {}: {e}", self.command),
            }
        };
        self.reaped = true;
        let elapsed = self.start.elapsed();
        let out_done = self.stdout.done.recv_timeout(PIPE_DRAIN_TIMEOUT);
        let err_done = self.stderr.done.recv_timeout(PIPE_DRAIN_TIMEOUT);
        let (Ok(()), Ok(())) = (out_done, err_done) else {
            panic!(
                "{}: exited with {status}, but its stdout/stderr stayed open {PIPE_DRAIN_TIMEOUT:?} \
                 later: some process it started outlived it and holds them",
                self.command
            );
        };
        Outcome {
            status: shell_status(status),
            stdout: self.stdout.snapshot(),
            stderr: self.stderr.snapshot(),
            timed_out,
            elapsed,
            command: self.command.clone(),
        }
    }
}

/// Builds the `pvm run` argument list for a host program: options, then `--`, the program and
/// its arguments. `env` entries become `--env K=V`, `workdir` becomes `--workdir`.
pub fn pvm_run_args(
    opts: &[&str],
    env: &[(&str, &str)],
    workdir: Option<&str>,
    program: &Path,
    args: &[&str],
) -> Vec<OsString> {
    let mut v: Vec<OsString> = vec!["run".into()];
    v.extend(opts.iter().map(OsString::from));
    for (k, val) in env {
        v.push("--env".into());
        v.push(format!("{k}={val}").into());
    }
    if let Some(w) = workdir {
        v.push("--workdir".into());
        v.push(w.into());
    }
    v.push("--".into());
    v.push(program.as_os_str().to_os_string());
    v.extend(args.iter().map(OsString::from));
    v
}

/// What to compare between a native run and a pvm run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stderr {
    /// stderr must be byte-identical.
    Same,
    /// stderr is not compared (not deterministic, or contains host-specific text).
    Ignore,
}

/// Runs `program` natively (clean environment `env`, working directory `native_cwd`) and under
/// `pvm run` with the same argv and environment (`--workdir guest_workdir`), and asserts equal
/// stdout, equal status and (per `stderr`) equal stderr. A native death by signal N must be
/// status 128+N under pvm with the signal's name on pvm's stderr. Returns (native, pvm).
pub fn compare(
    program: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    native_cwd: &Path,
    guest_workdir: &str,
    pvm_opts: &[&str],
    stderr: Stderr,
) -> (Outcome, Outcome) {
    // std::process::Command passes its environment sorted by key, whatever the order of the
    // calls; give pvm the same order so the echoed environment can be compared byte for byte.
    let mut env = env.to_vec();
    env.sort_unstable();
    let mut native = Run::native(program).args(args).cwd(native_cwd);
    for (k, v) in &env {
        native = native.env(k, v);
    }
    let native = native.run().finished();
    let guest = Run::pvm()
        .args(pvm_run_args(pvm_opts, &env, Some(guest_workdir), program, args))
        .run()
        .finished();
    assert_same(&native, &guest, stderr);
    (native, guest)
}

/// Asserts that a pvm run matches a native run (see [`compare`]).
pub fn assert_same(native: &Outcome, guest: &Outcome, stderr: Stderr) {
    let context = || format!("NATIVE:\n{}\nPVM:\n{}", native.describe(), guest.describe());
    assert_eq!(guest.status, native.status, "exit status differs\n{}", context());
    assert!(guest.stdout == native.stdout, "stdout differs\n{}\n{}", first_difference(&native.stdout, &guest.stdout), context());
    if native.status > 128 {
        let name = signal_name(native.status - 128);
        assert!(
            guest.err().contains(name),
            "pvm must report the signal as `{name}` on stderr\n{}",
            context()
        );
        if stderr == Stderr::Same {
            assert!(guest.stderr.starts_with(&native.stderr), "stderr differs\n{}", context());
        }
    } else if stderr == Stderr::Same {
        assert!(
            guest.stderr == native.stderr,
            "stderr differs\n{}\n{}",
            first_difference(&native.stderr, &guest.stderr),
            context()
        );
    }
}

/// Where two byte strings first differ, as a short message.
pub fn first_difference(a: &[u8], b: &[u8]) -> String {
    let i = a.iter().zip(b).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()));
    let window = |s: &[u8]| {
        let lo = i.saturating_sub(40);
        let hi = (i + 40).min(s.len());
        String::from_utf8_lossy(&s[lo.min(hi)..hi]).into_owned()
    };
    format!(
        "first difference at byte {i} (native {} bytes, pvm {} bytes): native ...{:?}... pvm ...{:?}...",
        a.len(),
        b.len(),
        window(a),
        window(b)
    )
}

/// The message a shell prints for a death by `sig` (bash's `strsignal` wording).
pub fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGSEGV => "Segmentation fault",
        libc::SIGKILL => "Killed",
        libc::SIGABRT => "Aborted",
        libc::SIGBUS => "Bus error",
        libc::SIGFPE => "Floating point exception",
        libc::SIGILL => "Illegal instruction",
        libc::SIGTERM => "Terminated",
        libc::SIGTRAP => "Trace/breakpoint trap",
        libc::SIGSYS => "Bad system call",
        _ => "signal",
    }
}

/// One host process as /proc shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcInfo {
    /// Process id.
    pub pid: u32,
    /// Parent process id.
    pub ppid: u32,
    /// State letter (R, S, D, Z, ...).
    pub state: char,
    /// `comm` (the thread name of the main thread).
    pub comm: String,
    /// `cmdline` with NULs as spaces.
    pub cmdline: String,
}

/// Reads /proc/PID/stat and cmdline; None if the process is gone.
pub fn proc_info(pid: u32) -> Option<ProcInfo> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Format: pid (comm) state ppid ...; comm may contain spaces and parentheses.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_string();
    let mut rest = stat.get(close + 1..)?.split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " ").trim().to_string())
        .unwrap_or_default();
    Some(ProcInfo { pid, ppid, state, comm, cmdline })
}

/// All host processes (a snapshot).
pub fn all_processes() -> Vec<ProcInfo> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        .filter_map(proc_info)
        .collect()
}

/// Live (not zombie) descendants of `root`, found through parent pids.
pub fn descendants(root: u32) -> Vec<ProcInfo> {
    let procs = all_processes();
    let mut found: Vec<ProcInfo> = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for q in procs.iter().filter(|q| q.ppid == p) {
            if !found.iter().any(|f| f.pid == q.pid) {
                frontier.push(q.pid);
                found.push(q.clone());
            }
        }
    }
    found.retain(|p| p.state != 'Z');
    found
}

/// Whether a process is one of pvm's VM processes (the K and U stubs).
pub fn is_vm_process(p: &ProcInfo) -> bool {
    p.comm.starts_with("pvm-stub") || p.cmdline.contains("pvm-stub")
}

/// Whether `p` is still alive as the same process: present, not a zombie, same comm.
pub fn still_alive(p: &ProcInfo) -> bool {
    proc_info(p.pid).is_some_and(|now| now.state != 'Z' && now.comm == p.comm)
}

/// Makes this test process a child subreaper (prctl PR_SET_CHILD_SUBREAPER), so that processes
/// orphaned by a `pvm` it ran are re-parented to it instead of to init: leftovers can then be
/// found by parent pid. Idempotent.
pub fn become_subreaper() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        // SAFETY: prctl(PR_SET_CHILD_SUBREAPER, 1) only sets a flag on this process; the
        // remaining arguments are unused by this option.
        let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        assert_eq!(r, 0, "prctl(PR_SET_CHILD_SUBREAPER): {}", std::io::Error::last_os_error());
    });
}

/// VM processes that are direct children of this test process: with [`become_subreaper`],
/// those are stubs whose `pvm` is gone (orphans). Zombies are reaped and not returned.
pub fn orphaned_vm_processes() -> Vec<ProcInfo> {
    let me = std::process::id();
    let mut live = Vec::new();
    for p in all_processes().into_iter().filter(|p| p.ppid == me && is_vm_process(p)) {
        if p.state == 'Z' {
            reap(p.pid);
        } else {
            live.push(p);
        }
    }
    live
}

/// Reaps zombie child `pid` if it is one (waitpid with WNOHANG).
pub fn reap(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return };
    let mut status = 0;
    // SAFETY: waitpid on a specific pid with WNOHANG writes only `status`, a valid local.
    unsafe {
        libc::waitpid(pid, &mut status, libc::WNOHANG);
    }
}

/// Polls `cond` every 20 ms until it holds or `limit` passes; returns whether it held.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether [`orphaned_vm_processes`] becomes empty within 3 s (a VM process may take a moment
/// to notice that pvm is gone).
pub fn no_orphans_soon() -> bool {
    wait_until(Duration::from_secs(3), || orphaned_vm_processes().is_empty())
}

/// A number no other call in this process gets (for unique file and directory names).
pub fn unique() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Where the tests keep files that outlive one test (built programs, scratch directories):
/// cargo's `CARGO_TARGET_TMPDIR` when this user may write there, else
/// `$TMPDIR/pvm-tests-<uid>` (a target directory built by another user, e.g. root, run by an
/// unprivileged one).
pub fn tmp_base() -> &'static Path {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    BASE.get_or_init(|| {
        let target = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let _ = std::fs::create_dir_all(target);
        if writable(target) {
            return target.to_path_buf();
        }
        // SAFETY: getuid(2) has no preconditions and cannot fail.
        let uid = unsafe { libc::getuid() };
        let dir = std::env::temp_dir().join(format!("pvm-tests-{uid}"));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        dir
    })
}

/// Whether this process may create files in `dir` (access(2) with W_OK|X_OK).
fn writable(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else { return false };
    // SAFETY: `c` is a NUL-terminated path that lives across the call; access(2) only reads it.
    unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) == 0 }
}

/// A fresh directory `<tmp_base>/<tag>.<pid>.<n>` (`n` unique per call, so two tests asking
/// for the same tag never share or wipe each other's directory) for data that lives as long as
/// the test binary (a `TempDir` in a static is never dropped). Directories of earlier runs
/// whose process is gone are removed first, so they do not pile up.
pub fn scratch_dir(tag: &str) -> PathBuf {
    let base = tmp_base();
    let me = std::process::id();
    if let Ok(entries) = std::fs::read_dir(base) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(rest) = name.strip_prefix(tag).and_then(|r| r.strip_prefix('.')) else { continue };
            let Ok(pid) = rest.split('.').next().unwrap_or("").parse::<u32>() else { continue };
            if pid != me && !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let dir = base.join(format!("{tag}.{me}.{}", unique()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir
}

/// `pvm-core/tests/scripts`: the shell scripts, their tools and programs.
pub fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripts")
}

/// A fresh root filesystem tree built by `scripts/tools/make-tree.sh` (busybox and its applet
/// links, /scripts, /data, /tmp) in a scratch directory named after `tag`; returns its root.
pub fn make_tree(tag: &str) -> PathBuf {
    let root = scratch_dir(tag).join("root");
    let out = Run::native("/bin/sh")
        .arg(scripts_dir().join("tools/make-tree.sh"))
        .arg(&root)
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .run()
        .finished();
    assert_eq!(out.status, 0, "building the tree failed (install busybox-static)\n{}", out.describe());
    root
}

/// How the native reference runs of `tools/run-native.sh` (a private mount namespace and a
/// `chroot`, which need privileges) get them. pvm itself always runs as the invoking user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NativePrivilege {
    /// The tests run as root: run-native.sh runs directly.
    Root,
    /// Not root, but `sudo -n` works (GitHub's runners): run-native.sh runs under it.
    Sudo(PathBuf),
    /// Not root and no `sudo -n`, but unprivileged user namespaces work: run-native.sh maps
    /// the user to root in a new user namespace (`unshare --user --map-root-user`).
    UserNamespace,
    /// None of these: the native comparisons are skipped, for this reason.
    Unavailable(String),
}

/// Whether this process runs as root (effective uid 0).
pub fn is_root() -> bool {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The way native reference runs get their privileges on this host, probed once (and printed
/// once, so a test log says which was used).
pub fn native_privilege() -> &'static NativePrivilege {
    static P: OnceLock<NativePrivilege> = OnceLock::new();
    P.get_or_init(|| {
        let p = probe_native_privilege();
        println!("native reference runs: {p:?}");
        p
    })
}

fn probe_native_privilege() -> NativePrivilege {
    if is_root() {
        return NativePrivilege::Root;
    }
    let quiet = |c: &mut Command| {
        c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
    };
    let sudo = ["/usr/bin/sudo", "/bin/sudo", "/usr/local/bin/sudo"].into_iter().map(PathBuf::from).find(|p| p.exists());
    let mut sudo_why = "no sudo".to_string();
    if let Some(sudo) = sudo {
        if quiet(Command::new(&sudo).args(["-n", "true"])) {
            return NativePrivilege::Sudo(sudo);
        }
        sudo_why = "`sudo -n true` fails".to_string();
    }
    // What run-native.sh does in a user namespace: a tmpfs with a bind-mounted device node,
    // /proc, and chroot.
    let probe = "d=$(mktemp -d) && mount -t tmpfs pvm-probe \"$d\" && : > \"$d/null\" \
                 && mount --bind /dev/null \"$d/null\" && mkdir \"$d/proc\" \
                 && { mount -t proc proc \"$d/proc\" 2>/dev/null || mount --rbind /proc \"$d/proc\"; } \
                 && /usr/sbin/chroot / /bin/true";
    let userns = quiet(
        Command::new("unshare")
            .args(["--user", "--map-root-user", "--mount", "--propagation", "private", "/bin/sh", "-c", probe]),
    );
    if userns {
        return NativePrivilege::UserNamespace;
    }
    NativePrivilege::Unavailable(format!(
        "not root, {sudo_why}, and unprivileged user namespaces cannot mount and chroot \
         (`unshare --user --map-root-user --mount` failed)"
    ))
}

/// A native run of `argv` in a throwaway copy of the tree `root` (tools/run-native.sh, with
/// the environment `envs`, "K=V K2=V2"), pinned to CPU 0 like a 1-vCPU guest, using
/// [`native_privilege`]. `None` when native runs are not possible here ([`NativePrivilege::
/// Unavailable`]): the caller skips its comparison; `test` names it in the printed reason.
pub fn native_in_tree(test: &str, root: &Path, envs: &str, argv: &[&str]) -> Option<Run> {
    let script = scripts_dir().join("tools/run-native.sh");
    let run = Run::native("/usr/bin/taskset").args(["-c", "0"]);
    let run = match native_privilege() {
        NativePrivilege::Root | NativePrivilege::UserNamespace => run.arg("/bin/sh"),
        NativePrivilege::Sudo(sudo) => run.arg(sudo).args(["-n", "/bin/sh"]),
        NativePrivilege::Unavailable(why) => {
            println!("{test}: skipping the native comparison: {why}");
            return None;
        }
    };
    Some(run.arg(script).arg(root).arg(envs).args(argv))
}

/// Asserts `status`, empty stdout, exactly one non-empty line on stderr mentioning each of
/// `mentions` (case-insensitive).
pub fn assert_one_line_error(out: &Outcome, status: i32, mentions: &[&str]) {
    assert_eq!(out.status, status, "wrong exit status\n{}", out.describe());
    assert!(out.stdout.is_empty(), "nothing may reach stdout\n{}", out.describe());
    let lines = out.stderr_lines();
    assert_eq!(lines.len(), 1, "expected exactly one line on stderr\n{}", out.describe());
    let line = lines[0].to_lowercase();
    for m in mentions {
        assert!(line.contains(&m.to_lowercase()), "the error line should mention `{m}`\n{}", out.describe());
    }
}

/// Writes `contents` to `path` with mode 0755.
pub fn executable(path: &Path, contents: &[u8]) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, contents).expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}
