//! podman with `--runtime pvm` (podman 4.3, Debian's `podman` package; offline): an image made
//! with `podman import` from a root filesystem holding Debian's static busybox, then `run
//! --rm` with args, env, workdir and exit statuses, a missing program (127), `run -d` and
//! `stop` (the container ends by SIGTERM: 143), `-v` volumes whose writes reach the host,
//! `--read-only` and `--tmpfs`.
//!
//! Every test uses its own podman storage (`--root`, `--runroot`, vfs driver) in a temp dir.
//! Skipped, with a line saying so, when podman is not installed (ci/test.sh installs it) or
//! when not root.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{pvm_bin, vm_slot};

const IMAGE: &str = "localhost/pvm-busybox:test";

struct Podman {
    dir: tempfile::TempDir,
}

fn podman_missing() -> bool {
    if Command::new("podman").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success()) {
        return false;
    }
    eprintln!("skipped: podman is not installed (apt-get install podman; ci/test.sh does)");
    true
}

/// Whether to skip: podman missing, or not root (rootless podman needs subordinate ids set up
/// for the user, which this test does not assume).
fn skip() -> bool {
    if podman_missing() {
        return true;
    }
    // SAFETY: geteuid has no arguments and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: rootless podman is not covered (run as root)");
        return true;
    }
    false
}

impl Podman {
    /// Fresh storage with the busybox image imported.
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("image");
        std::fs::create_dir_all(root.join("bin")).expect("mkdir");
        common::copy_executable(Path::new("/bin/busybox"), &root.join("bin/busybox"));
        for applet in ["sh", "echo", "cat", "pwd", "sleep", "true", "false"] {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).expect("symlink");
        }
        let tar = dir.path().join("image.tar");
        let st = Command::new("tar").arg("-C").arg(&root).arg("-cf").arg(&tar).arg(".").status().expect("tar");
        assert!(st.success(), "tar");
        let p = Podman { dir };
        let o = p.podman(&["import", tar.to_str().expect("utf-8"), IMAGE]);
        assert!(o.status.success(), "podman import: {}", String::from_utf8_lossy(&o.stderr));
        p
    }

    fn podman(&self, args: &[&str]) -> Output {
        let d = self.dir.path();
        Command::new("podman")
            .arg("--root")
            .arg(d.join("storage"))
            .arg("--runroot")
            .arg(d.join("run"))
            .args(["--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend", "none"])
            .arg("--runtime")
            .arg(pvm_bin())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("running podman")
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut all = vec!["run", "--rm", "--network", "none"];
        all.extend_from_slice(args);
        self.podman(&all)
    }

    fn host_dir(&self, name: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::create_dir_all(&p).expect("mkdir");
        p
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn podman_run_args_env_workdir_and_status() {
    if skip() {
        return;
    }
    let _slot = vm_slot();
    let p = Podman::new();
    let o = p.run(&["-e", "FOO=bar", "-w", "/bin", IMAGE, "sh", "-c", "echo \"$FOO $(pwd) $0 $1\"; exit 3", "zero", "one"]);
    assert_eq!(o.status.code(), Some(3), "stderr: {}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "bar /bin zero one\n");
    let o = p.run(&[IMAGE, "/bin/true"]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", text(&o.stderr));
    let o = p.run(&[IMAGE, "/bin/no-such-program"]);
    assert_eq!(o.status.code(), Some(127), "stderr: {}", text(&o.stderr));
    assert!(text(&o.stderr).contains("no-such-program"), "{}", text(&o.stderr));
}

#[test]
fn podman_volumes_read_only_and_tmpfs() {
    if skip() {
        return;
    }
    let _slot = vm_slot();
    let p = Podman::new();
    let data = p.host_dir("data");
    let v = format!("{}:/data", data.display());
    let o = p.run(&["-v", &v, IMAGE, "sh", "-c", "echo written > /data/out"]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", text(&o.stderr));
    assert_eq!(std::fs::read_to_string(data.join("out")).expect("the write reached the host"), "written\n");
    let ro = format!("{}:/data:ro", data.display());
    let o = p.run(&["-v", &ro, IMAGE, "sh", "-c", "cat /data/out; echo x > /data/other"]);
    assert_eq!(o.status.code(), Some(1), "a write to a :ro volume fails: {}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "written\n");
    assert!(!data.join("other").exists());
    let o = p.run(&["--read-only", IMAGE, "sh", "-c", "echo x > /file"]);
    assert_eq!(o.status.code(), Some(1), "a write to a --read-only root fails: {}", text(&o.stderr));
    let o = p.run(&["--read-only", "--tmpfs", "/scratch", IMAGE, "sh", "-c", "echo x > /scratch/f && cat /scratch/f"]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "x\n");
}

#[test]
fn podman_run_detached_then_stop() {
    if skip() {
        return;
    }
    let _slot = vm_slot();
    let p = Podman::new();
    let o = p.podman(&["run", "-d", "--network", "none", IMAGE, "sh", "-c", "while :; do sleep 1; done"]);
    assert!(o.status.success(), "stderr: {}", text(&o.stderr));
    let id = text(&o.stdout).trim().to_string();
    let o = p.podman(&["inspect", "--format", "{{.State.Status}}", &id]);
    assert_eq!(text(&o.stdout).trim(), "running", "{}", text(&o.stderr));
    let o = p.podman(&["stop", "-t", "30", &id]);
    assert!(o.status.success(), "stderr: {}", text(&o.stderr));
    let o = p.podman(&["inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", &id]);
    assert_eq!(text(&o.stdout).trim(), "exited 143", "SIGTERM ended it: {}", text(&o.stderr));
    let o = p.podman(&["rm", &id]);
    assert!(o.status.success(), "stderr: {}", text(&o.stderr));
}
