//! pvm as an OCI runtime, driven the way containerd's runc shim and podman's conmon drive
//! runc: `create` / `start` / `state` / `kill` / `delete` through every state transition and
//! every wrong-state error, with `state`'s JSON checked field by field; hooks getting the state
//! on stdin; a SIGKILLed monitor reading as stopped with nothing of the VM left; a bad
//! config.json failing with one clear line (also as a JSON line in `--log`).
//!
//! Each test has its own bundle and `--root` in a temp dir. The bundle's root filesystem is
//! `/bin/busybox` (Debian's busybox-static) alone. This test binary makes itself a child
//! subreaper (as conmon and containerd's shim are), so the container monitor, orphaned when
//! `create` exits, is reparented to it and its exit status can be read with `waitpid`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use common::{pvm_bin, vm_slot};

/// How long a container may take to reach a state (a loaded CI machine is slow; no test
/// asserts a duration, this only bounds a hang).
const DEADLINE: Duration = Duration::from_secs(60);

struct Bundle {
    dir: tempfile::TempDir,
}

impl Bundle {
    /// A bundle running `sh -c SCRIPT` in a busybox root, with env FOO=bar, cwd /bin, hostname
    /// box1, an annotation, and `DIR/shared` bound at /shared.
    fn new(script: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("bundle/rootfs/bin");
        std::fs::create_dir_all(&root).expect("mkdir rootfs");
        std::fs::create_dir_all(dir.path().join("shared")).expect("mkdir shared");
        common::copy_executable(Path::new("/bin/busybox"), &root.join("busybox"));
        std::fs::create_dir_all(dir.path().join("root")).expect("mkdir root");
        let b = Bundle { dir };
        b.write_config(&b.config(script));
        b
    }

    fn config(&self, script: &str) -> Value {
        json!({
            "ociVersion": "1.2.0",
            "process": {
                "terminal": false,
                "user": {"uid": 0, "gid": 0},
                "args": ["/bin/busybox", "sh", "-c", script],
                "env": ["PATH=/bin", "FOO=bar"],
                "cwd": "/bin"
            },
            "root": {"path": "rootfs", "readonly": true},
            "hostname": "box1",
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
                {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["ro"]},
                {"destination": "/shared", "type": "bind", "source": self.shared(), "options": ["rbind", "rw"]},
                {"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}
            ],
            "annotations": {"org.example.key": "value"},
            "linux": {
                "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "network", "path": "/var/run/netns/test"}],
                "resources": {"memory": {"limit": 256 << 20}, "cpu": {"quota": 150000, "period": 100000}}
            }
        })
    }

    fn write_config(&self, config: &Value) {
        std::fs::write(self.bundle().join("config.json"), config.to_string()).expect("write config.json");
    }

    fn bundle(&self) -> PathBuf {
        self.dir.path().join("bundle")
    }

    fn shared(&self) -> PathBuf {
        self.dir.path().join("shared")
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// `pvm --root ROOT ARGS...`, with stdout and stderr in files (the monitor `create`
    /// starts keeps them open until the container ends, so pipes would not reach EOF).
    fn pvm(&self, args: &[&str]) -> Out {
        self.pvm_with(&[], args)
    }

    fn pvm_with(&self, global: &[&str], args: &[&str]) -> Out {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let tag = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let out_path = self.dir.path().join(format!("out-{tag}-{}", args.first().unwrap_or(&"")));
        let err_path = out_path.with_extension("err");
        let status = Command::new(pvm_bin())
            .arg("--root")
            .arg(self.root())
            .args(global)
            .args(args)
            .current_dir(self.bundle())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out_path).expect("stdout file"))
            .stderr(std::fs::File::create(&err_path).expect("stderr file"))
            .status()
            .expect("running pvm");
        Out {
            code: status.code().unwrap_or(-1),
            out: std::fs::read_to_string(&out_path).unwrap_or_default(),
            err: std::fs::read_to_string(&err_path).unwrap_or_default(),
        }
    }

    fn state(&self, id: &str) -> Value {
        let o = self.pvm(&["state", id]);
        assert_eq!(o.code, 0, "state {id}: {}", o.err);
        serde_json::from_str(&o.out).unwrap_or_else(|e| panic!("state {id} printed no JSON ({e}): {}", o.out))
    }

    fn wait_file(&self, name: &str) -> String {
        let path = self.shared().join(name);
        let t0 = Instant::now();
        loop {
            if let Ok(s) = std::fs::read_to_string(&path)
                && s.ends_with('\n')
            {
                return s;
            }
            assert!(t0.elapsed() < DEADLINE, "the guest never wrote /shared/{name}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A failed test must not leave a container running: every container still in this bundle's
/// `--root` is deleted with `--force` (which kills its monitor and so the VM).
impl Drop for Bundle {
    fn drop(&mut self) {
        let Ok(dir) = std::fs::read_dir(self.root()) else { return };
        for e in dir.flatten() {
            if e.path().is_dir()
                && let Some(id) = e.file_name().to_str()
            {
                let _ = self.pvm(&["delete", "--force", id]);
            }
        }
    }
}

struct Out {
    code: i32,
    out: String,
    err: String,
}

impl Out {
    /// Asserts a runc-style failure: status 1 and one `pvm: ` line on stderr holding `what`.
    fn fails_with(&self, what: &str) {
        assert_eq!(self.code, 1, "expected failure with {what:?}, stderr: {}", self.err);
        let lines: Vec<&str> = self.err.lines().collect();
        assert_eq!(lines.len(), 1, "expected one line, got: {}", self.err);
        assert!(lines[0].starts_with("pvm: ") && lines[0].contains(what), "expected {what:?} in: {}", self.err);
    }

    fn ok(&self) {
        assert_eq!(self.code, 0, "stderr: {}", self.err);
    }
}

fn subreaper() {
    // SAFETY: prctl with integer arguments; makes this process the reaper of orphans below it.
    let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(r, 0, "PR_SET_CHILD_SUBREAPER");
}

/// The shell-style status of the (reparented) monitor `pid`: exit code, or 128+N.
fn reap(pid: i32) -> i32 {
    let mut st = 0;
    // SAFETY: waits for one child of this process (the subreaper), writing its status.
    let r = unsafe { libc::waitpid(pid, &mut st, 0) };
    assert_eq!(r, pid, "waitpid({pid}): {}", std::io::Error::last_os_error());
    if libc::WIFEXITED(st) { libc::WEXITSTATUS(st) } else { 128 + libc::WTERMSIG(st) }
}

fn pid_of(state: &Value) -> i32 {
    state["pid"].as_i64().and_then(|p| i32::try_from(p).ok()).unwrap_or_else(|| panic!("no pid in {state}"))
}

fn check_state(s: &Value, id: &str, status: &str, bundle: &Path) {
    assert_eq!(s["ociVersion"], "1.2.0", "{s}");
    assert_eq!(s["id"], id, "{s}");
    assert_eq!(s["status"], status, "{s}");
    assert_eq!(s["bundle"], bundle.canonicalize().expect("bundle").to_str().expect("utf-8"), "{s}");
    assert_eq!(s["annotations"], json!({"org.example.key": "value"}), "{s}");
    if status == "stopped" {
        assert!(s.get("pid").is_none(), "a stopped container has no pid: {s}");
    } else {
        assert!(pid_of(s) > 0, "{s}");
    }
}

#[test]
fn lifecycle_walks_every_state() {
    subreaper();
    let _slot = vm_slot();
    let b = Bundle::new(
        "echo \"$FOO $(pwd) $(hostname) $(nproc)\" > /shared/started; while [ ! -e /shared/go ]; do sleep 0.05; done; exit 7",
    );
    b.pvm(&["state", "c1"]).fails_with("container c1 does not exist");
    b.pvm(&["start", "c1"]).fails_with("does not exist");
    b.pvm(&["kill", "c1"]).fails_with("does not exist");
    b.pvm(&["delete", "c1"]).fails_with("does not exist");
    b.pvm(&["create", "bad/id"]).fails_with("invalid container ID");

    let pid_file = b.dir.path().join("init.pid");
    b.pvm(&["create", "--bundle", b.bundle().to_str().expect("utf-8"), "--pid-file", pid_file.to_str().expect("utf-8"), "c1"]).ok();
    let s = b.state("c1");
    check_state(&s, "c1", "created", &b.bundle());
    let pid = pid_of(&s);
    assert_eq!(std::fs::read_to_string(&pid_file).expect("pid file").trim(), pid.to_string());
    let dir = b.root().join("c1");
    let mut files: Vec<String> =
        std::fs::read_dir(&dir).expect("state dir").map(|e| e.expect("entry").file_name().into_string().expect("utf-8")).collect();
    files.sort();
    assert_eq!(files, ["config.json", "exec.fifo", "lock", "state.json"]);
    assert!(!b.shared().join("started").exists(), "the process ran before start");

    b.pvm(&["create", "c1"]).fails_with("container with id c1 already exists");
    b.pvm(&["delete", "c1"]).fails_with("cannot delete container c1 that is not stopped: created");
    b.pvm(&["kill", "c1", "USR1"]).fails_with("pvm delivers only KILL, TERM, INT and HUP");
    b.pvm(&["kill", "c1", "NOSUCH"]).fails_with("unknown signal");
    b.pvm(&["exec", "c1", "true"]).fails_with("exec is not supported yet");

    b.pvm(&["start", "c1"]).ok();
    let s = b.state("c1");
    check_state(&s, "c1", "running", &b.bundle());
    assert_eq!(pid_of(&s), pid);
    // process.env, process.cwd, hostname, and linux.resources.cpu (quota 1.5 CPUs: 2 vCPUs).
    assert_eq!(b.wait_file("started"), "bar /bin box1 2\n");
    b.pvm(&["start", "c1"]).fails_with("cannot start a container in the running state");
    b.pvm(&["delete", "c1"]).fails_with("not stopped: running");

    let ps = b.pvm(&["ps", "--format", "json", "c1"]);
    ps.ok();
    let pids: Vec<i32> = serde_json::from_str(&ps.out).expect("ps JSON");
    assert_eq!(pids.first(), Some(&pid), "{pids:?}");
    assert!(pids.len() >= 3, "the monitor, F, K and U: {pids:?}");
    let list = b.pvm(&["list", "--format", "json"]);
    list.ok();
    let list: Value = serde_json::from_str(&list.out).expect("list JSON");
    assert_eq!(list[0]["id"], "c1");
    assert_eq!(list[0]["status"], "running");
    assert_eq!(list[0]["pid"], pid);

    std::fs::write(b.shared().join("go"), "").expect("write go");
    assert_eq!(reap(pid), 7, "the monitor's status is the container's");
    let s = b.state("c1");
    check_state(&s, "c1", "stopped", &b.bundle());
    b.pvm(&["start", "c1"]).fails_with("cannot start a container that has stopped");
    b.pvm(&["kill", "c1", "KILL"]).fails_with("container not running");
    for p in &pids {
        assert!(!Path::new(&format!("/proc/{p}")).exists() || common_zombie(*p), "pid {p} outlived the container");
    }
    b.pvm(&["delete", "c1"]).ok();
    assert!(!dir.exists(), "delete left {}", dir.display());
    b.pvm(&["state", "c1"]).fails_with("does not exist");
}

/// Whether `pid` is a zombie (exited, its parent has not reaped it yet).
fn common_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.rsplit(')').next().is_some_and(|r| r.trim_start().starts_with('Z')))
}

#[test]
fn kill_term_and_kill_end_the_container_with_that_signal() {
    subreaper();
    let _slot = vm_slot();
    let b = Bundle::new("echo up > /shared/up; while :; do sleep 1; done");
    for (id, sig, want) in [("t1", "TERM", 128 + libc::SIGTERM), ("t2", "9", 128 + libc::SIGKILL)] {
        b.pvm(&["create", id]).ok();
        b.pvm(&["start", id]).ok();
        let pid = pid_of(&b.state(id));
        b.wait_file("up");
        std::fs::remove_file(b.shared().join("up")).expect("rm up");
        b.pvm(&["kill", id, sig]).ok();
        assert_eq!(reap(pid), want, "kill {sig}");
        check_state(&b.state(id), id, "stopped", &b.bundle());
        b.pvm(&["delete", id]).ok();
    }
    // kill --all and a created (not started) container; delete --force of a running one.
    b.pvm(&["create", "t3"]).ok();
    let pid = pid_of(&b.state("t3"));
    b.pvm(&["kill", "--all", "t3", "SIGTERM"]).ok();
    assert_eq!(reap(pid), 128 + libc::SIGTERM);
    b.pvm(&["delete", "t3"]).ok();
    b.pvm(&["create", "t4"]).ok();
    b.pvm(&["start", "t4"]).ok();
    let pid = pid_of(&b.state("t4"));
    b.pvm(&["delete", "--force", "t4"]).ok();
    assert_eq!(reap(pid), 128 + libc::SIGKILL);
    assert!(!b.root().join("t4").exists());
    b.pvm(&["delete", "--force", "t4"]).ok();
}

#[test]
fn a_killed_monitor_reads_as_stopped() {
    subreaper();
    let _slot = vm_slot();
    let b = Bundle::new("while :; do sleep 1; done");
    b.pvm(&["create", "k1"]).ok();
    b.pvm(&["start", "k1"]).ok();
    let ps = b.pvm(&["ps", "--format", "json", "k1"]);
    let pids: Vec<i32> = serde_json::from_str(&ps.out).expect("ps JSON");
    let pid = pids[0];
    // SAFETY: SIGKILL to the monitor, our (reparented) child.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    assert_eq!(reap(pid), 128 + libc::SIGKILL);
    check_state(&b.state("k1"), "k1", "stopped", &b.bundle());
    // F, K and U die of their parent-death signals.
    let t0 = Instant::now();
    while pids[1..].iter().any(|&p| Path::new(&format!("/proc/{p}")).exists() && !common_zombie(p)) {
        assert!(t0.elapsed() < DEADLINE, "sandbox processes {pids:?} outlived their monitor");
        std::thread::sleep(Duration::from_millis(20));
    }
    b.pvm(&["delete", "k1"]).ok();
    assert!(!b.root().join("k1").exists());
}

#[test]
fn hooks_get_the_state_on_stdin() {
    subreaper();
    let _slot = vm_slot();
    // Runs until told to end, so poststart's `pvm state` sees it running.
    let script = "while [ ! -e /shared/go ]; do sleep 0.05; done";
    let b = Bundle::new(script);
    let out = b.dir.path().join("hooks");
    std::fs::create_dir(&out).expect("mkdir hooks");
    // Each hook saves its stdin, its environment, and `pvm state` as seen while it runs.
    let hook = |name: &str| {
        let o = out.display();
        let script = format!(
            "cat > {o}/{name}.json; echo \"$HOOKVAR\" > {o}/{name}.env; {} --root {} state h1 > {o}/{name}.live",
            pvm_bin().display(),
            b.root().display()
        );
        json!({"path": "/bin/sh", "args": ["sh", "-c", script], "env": ["HOOKVAR=set"]})
    };
    let mut config = b.config(script);
    config["hooks"] = json!({
        "createRuntime": [hook("createRuntime")],
        "createContainer": [hook("createContainer")],
        "startContainer": [hook("startContainer")],
        "poststart": [hook("poststart")],
        "poststop": [hook("poststop")],
    });
    b.write_config(&config);
    b.pvm(&["create", "h1"]).ok();
    let pid = pid_of(&b.state("h1"));
    let read = |name: &str| -> Value {
        let text = std::fs::read_to_string(out.join(format!("{name}.json"))).unwrap_or_else(|e| panic!("{name} hook did not run: {e}"));
        assert_eq!(std::fs::read_to_string(out.join(format!("{name}.env"))).expect("env"), "set\n", "{name}'s env");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} got no JSON ({e}): {text}"))
    };
    let live = |name: &str| -> Value {
        let text = std::fs::read_to_string(out.join(format!("{name}.live"))).expect("live state");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: `pvm state` gave no JSON ({e}): {text}"))
    };
    for name in ["createRuntime", "createContainer"] {
        check_state(&read(name), "h1", "creating", &b.bundle());
        assert_eq!(pid_of(&read(name)), pid);
        check_state(&live(name), "h1", "creating", &b.bundle());
    }
    check_state(&b.state("h1"), "h1", "created", &b.bundle());
    assert!(!out.join("startContainer.json").exists());
    b.pvm(&["start", "h1"]).ok();
    check_state(&read("startContainer"), "h1", "created", &b.bundle());
    check_state(&read("poststart"), "h1", "running", &b.bundle());
    check_state(&live("poststart"), "h1", "running", &b.bundle());
    std::fs::write(b.shared().join("go"), "").expect("write go");
    assert_eq!(reap(pid), 0);
    assert!(!out.join("poststop.json").exists());
    b.pvm(&["delete", "h1"]).ok();
    check_state(&read("poststop"), "h1", "stopped", &b.bundle());

    // A failing or hanging createRuntime hook fails create and leaves nothing behind.
    for (hooks, what) in [
        (json!([{"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}]), "createRuntime hook /bin/sh: failed (exit status: 3)"),
        (json!([{"path": "/bin/sh", "args": ["sh", "-c", "sleep 30"], "timeout": 1}]), "createRuntime hook /bin/sh: timed out after 1 s"),
        (json!([{"path": "/no/such/hook"}]), "createRuntime hook /no/such/hook: cannot run"),
    ] {
        config["hooks"] = json!({"createRuntime": hooks});
        b.write_config(&config);
        b.pvm(&["create", "h2"]).fails_with(what);
        assert!(!b.root().join("h2").exists(), "{what}: state left behind");
    }
}

#[test]
fn bad_config_fails_with_one_clear_line() {
    let b = Bundle::new("exit 0");
    let good = b.config("exit 0");
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = good.clone();
        f(&mut c);
        c
    };
    let cases: Vec<(Value, &str)> = vec![
        (with(&|c| c["process"]["terminal"] = json!(true)), "process.terminal is true: pvm has no consoles yet"),
        (with(&|c| c["process"]["args"] = json!([])), "process.args: empty"),
        (with(&|c| c["process"]["cwd"] = json!("bin")), "process.cwd \"bin\": not an absolute path"),
        (with(&|c| c["process"]["env"] = json!(["NOEQUALS"])), "process.env: expected KEY=VALUE"),
        (with(&|c| c["ociVersion"] = json!("2.0.0")), "ociVersion \"2.0.0\""),
        (with(&|c| c["root"]["path"] = json!("nope")), "root.path"),
        (with(&|c| c["hostname"] = json!("bad host")), "hostname: invalid hostname"),
        (with(&|c| c["mounts"] = json!([{"destination": "/x", "type": "nfs", "source": "srv:/x"}])), "mount type \"nfs\" on /x is not supported"),
        (
            with(&|c| c["mounts"] = json!([{"destination": "/etc/passwd", "type": "bind", "source": "/etc/passwd", "options": ["bind"]}])),
            "pvm mounts directories only",
        ),
        (with(&|c| c["mounts"] = json!([{"destination": "/x", "type": "bind", "source": "/no/such/dir"}])), "bind mount /no/such/dir on /x"),
        (with(&|c| c["linux"]["resources"]["cpu"] = json!({"cpus": "3-1"})), "linux.resources.cpu.cpus"),
        (with(&|c| c["annotations"]["io.pvm.backend"] = json!("xen")), "io.pvm.backend"),
        (with(&|c| c["process"]["args"] = json!(["/bin/nosuch"])), "nosuch"),
    ];
    for (config, what) in cases {
        b.write_config(&config);
        b.pvm(&["create", "bad"]).fails_with(what);
        assert!(!b.root().join("bad").exists(), "{what}: state left behind");
    }
    std::fs::write(b.bundle().join("config.json"), "{ not json").expect("write");
    b.pvm(&["create", "bad"]).fails_with("config.json");
    std::fs::remove_file(b.bundle().join("config.json")).expect("rm");
    b.pvm(&["create", "bad"]).fails_with("config.json");
    // --log --log-format json: the error as one JSON line with level, msg and time.
    let log = b.dir.path().join("log.json");
    b.pvm_with(&["--log", log.to_str().expect("utf-8"), "--log-format", "json"], &["create", "bad"]).fails_with("config.json");
    let text = std::fs::read_to_string(&log).expect("log file");
    let line: Value = serde_json::from_str(text.lines().next().expect("a line")).expect("a JSON line");
    assert_eq!(line["level"], "error");
    assert!(line["msg"].as_str().is_some_and(|m| m.contains("config.json")), "{line}");
    assert!(line["time"].as_str().is_some_and(|t| t.ends_with('Z')), "{line}");
    b.pvm(&["create", "--console-socket", "/tmp/x.sock", "bad"]).fails_with("--console-socket: pvm has no consoles yet");
}

#[test]
fn run_bundle_is_create_start_wait_delete() {
    let _slot = vm_slot();
    let b = Bundle::new("echo out; echo err >&2; exit 7");
    let o = Command::new(pvm_bin())
        .arg("--root")
        .arg(b.root())
        .args(["run", "--bundle"])
        .arg(b.bundle())
        .arg("r1")
        .stdin(Stdio::null())
        .output()
        .expect("pvm run");
    assert_eq!(o.status.code(), Some(7), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.stdout, b"out\n");
    assert_eq!(o.stderr, b"err\n");
    assert!(!b.root().join("r1").exists());
}

#[test]
fn spec_and_features() {
    let dir = tempfile::tempdir().expect("temp dir");
    let run = |args: &[&str]| Command::new(pvm_bin()).args(args).current_dir(dir.path()).output().expect("pvm");
    assert!(run(&["spec"]).status.success());
    let spec: Value = serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).expect("config.json")).expect("JSON");
    assert_eq!(spec["ociVersion"].as_str().map(|v| v.starts_with("1.")), Some(true), "{spec}");
    assert_eq!(spec["root"]["path"], "rootfs");
    assert_eq!(spec["process"]["terminal"], false);
    let again = run(&["spec"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists"));
    let f = run(&["features"]);
    assert!(f.status.success());
    let f: Value = serde_json::from_slice(&f.stdout).expect("features JSON");
    assert_eq!(f["ociVersionMin"], "1.0.0");
    assert!(f["hooks"].as_array().is_some_and(|h| h.len() == 6), "{f}");
    assert_eq!(f["linux"]["seccomp"]["enabled"], false);
}
