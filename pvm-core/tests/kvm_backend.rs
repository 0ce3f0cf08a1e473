//! The KVM backend end to end: a quick smoke run (static glibc and musl programs, a busybox
//! applet under `--backend kvm` compared with native runs; the full equivalence suites run on
//! KVM as their `kvm*::` tests), plus `pvm info` and `--backend auto`. Skips (with the reason
//! printed) where `/dev/kvm` is not usable. On software KVM (`kvm_pvm`) guest ring 0 is
//! emulated, so each run takes about a second or more.

mod common;

use common::kvm_unusable;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const PVM: &str = env!("CARGO_BIN_EXE_pvm");
/// Limit for one guest run under KVM (software KVM boots slowly).
const TIMEOUT: Duration = Duration::from_secs(240);

fn skip(test: &str) -> bool {
    match kvm_unusable() {
        Some(why) => {
            println!("skipping {test}: {why}");
            true
        }
        None => false,
    }
}

/// Builds `tests/programs/kvm_smoke.c` with `cc -static` (`gcc` or `musl-gcc`): the shared,
/// cached build of `common` (each test binary run builds it once, into a temporary file renamed
/// into place, so tests running at once never see a half-written program). `None` (the test
/// skips) when the compiler is missing.
fn build(cc: &str) -> Option<PathBuf> {
    let libc = match cc {
        "gcc" => common::Libc::Glibc,
        "musl-gcc" => common::Libc::Musl,
        _ => return None,
    };
    Command::new(cc).arg("--version").output().ok()?.status.success().then_some(())?;
    Some(common::program("kvm_smoke", libc))
}

/// Runs `cmd` with a hard timeout.
fn run(mut cmd: Command) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            panic!("timed out after {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output { status, stdout: t_out.join().expect("stdout"), stderr: t_err.join().expect("stderr") }
}

fn pvm_kvm(prog: &Path, args: &[&str]) -> Output {
    let mut c = Command::new(PVM);
    c.args(["run", "--backend", "kvm", "--memory", "256M", "--env", "PVM_KVM_TEST=yes"]).arg(prog).args(args);
    run(c)
}

fn compare_with_native(cc: &str) {
    let Some(prog) = build(cc) else {
        println!("skipping {cc}: cannot build a static program");
        return;
    };
    let mut native = Command::new(&prog);
    native.args(["one", "two words"]).env_clear().env("PVM_KVM_TEST", "yes");
    let native = run(native);
    let guest = pvm_kvm(&prog, &["one", "two words"]);
    let text = String::from_utf8_lossy(&guest.stdout);
    let err = String::from_utf8_lossy(&guest.stderr);
    // argv[0] differs (host path vs the guest's path): compare from argv[1] on.
    let tail = |s: &[u8]| String::from_utf8_lossy(s).lines().skip(1).map(str::to_string).collect::<Vec<_>>();
    assert_eq!(tail(&guest.stdout), tail(&native.stdout), "stdout differs; guest stdout:\n{text}\nstderr:\n{err}");
    assert_eq!(guest.status.code(), native.status.code(), "exit status; stderr:\n{err}");
    assert_eq!(guest.status.code(), Some(42));
    assert!(err.contains("to stderr"), "stderr:\n{err}");
}

#[test]
fn glibc_program_matches_native() {
    if !skip("glibc_program_matches_native") {
        compare_with_native("gcc");
    }
}

#[test]
fn musl_program_matches_native() {
    if skip("musl_program_matches_native") {
        return;
    }
    if Command::new("musl-gcc").arg("--version").output().is_err() {
        println!("skipping musl_program_matches_native: musl-gcc not installed");
        return;
    }
    compare_with_native("musl-gcc");
}

#[test]
fn busybox_applet_matches_native() {
    if skip("busybox_applet_matches_native") {
        return;
    }
    let Some(bb) = ["/bin/busybox", "/usr/bin/busybox"].into_iter().map(Path::new).find(|p| p.exists()) else {
        println!("skipping busybox_applet_matches_native: busybox not installed");
        return;
    };
    let native = run({
        let mut c = Command::new(bb);
        c.args(["echo", "hello", "from", "busybox"]);
        c
    });
    let guest = pvm_kvm(bb, &["echo", "hello", "from", "busybox"]);
    assert_eq!(
        String::from_utf8_lossy(&guest.stdout),
        String::from_utf8_lossy(&native.stdout),
        "stderr:\n{}",
        String::from_utf8_lossy(&guest.stderr)
    );
    assert_eq!(guest.status.code(), Some(0));
}

#[test]
fn info_reports_kvm_and_json_parses() {
    let text = run({
        let mut c = Command::new(PVM);
        c.arg("info");
        c
    });
    assert!(text.status.success());
    let t = String::from_utf8_lossy(&text.stdout);
    for key in ["KVM:", "seccomp:", "Syscall User Dispatch:", "FSGSBASE", "vm.max_map_count:", "memfd:", "cores:", "memory:"] {
        assert!(t.contains(key), "missing {key} in:\n{t}");
    }
    let json = run({
        let mut c = Command::new(PVM);
        c.args(["info", "--json"]);
        c
    });
    assert!(json.status.success());
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("pvm info --json is JSON");
    let usable = kvm_unusable().is_none();
    assert_eq!(v["kvm"]["usable"], usable, "{v}");
    assert!(v["cores"].as_u64().is_some_and(|n| n >= 1), "{v}");
    assert!(["soft", "kvm"].contains(&v["auto_backend"].as_str().unwrap_or("")), "{v}");
    if v["kvm"]["kind"] == "software" {
        assert_eq!(v["auto_backend"], "soft", "auto must not pick software KVM: {v}");
    }
}

#[test]
fn auto_runs_a_program_and_says_which_backend() {
    let Some(prog) = build("gcc") else { return };
    let out = run({
        let mut c = Command::new(PVM);
        c.args(["run", "--backend", "auto", "--verbose"]).arg(&prog);
        c
    });
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("auto: "), "{err}");
    assert_eq!(out.status.code(), Some(42), "{err}");
}

/// Only where guest ring 0 is emulated (software KVM) does H take over bulk copies
/// (`BootInfo::bulk_mem_min`): `--stats` shows `copy_mem`/`zero_mem` hypercalls there and
/// never on hardware KVM or the soft backend.
#[test]
fn bulk_memory_hypercalls_only_on_software_kvm() {
    let Some(prog) = build("gcc") else { return };
    let stats = |backend: &str| {
        let out = run({
            let mut c = Command::new(PVM);
            c.args(["run", "--stats", "--memory", "256M", "--backend", backend]).arg(&prog);
            c
        });
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let bulk = |table: &str| table.lines().any(|l| l.trim_start().starts_with("copy_mem") || l.trim_start().starts_with("zero_mem"));
    assert!(!bulk(&stats("soft")), "the soft backend never hands copies to H");
    if skip("bulk_memory_hypercalls_only_on_software_kvm (KVM part)") {
        return;
    }
    let table = stats("kvm");
    assert!(table.contains("pvm stats (kvm backend"), "{table}");
    assert_eq!(bulk(&table), common::kvm_is_software(), "{table}");
}
