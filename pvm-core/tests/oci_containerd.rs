//! containerd 1.6 (Debian's `containerd`) running pvm through its runc shim, as `ctr run
//! --runc-binary pvm` does (and a Kubernetes RuntimeClass with `BinaryName`, docs/oci.md):
//! a private containerd (own root, state and socket in a temp dir, CRI off) imports an OCI
//! archive made locally (`podman import` of a busybox-static root, then `podman save --format
//! oci-archive`), and `ctr run --rm` gives the container's output and exit status.
//!
//! Skipped, with a line saying so, when containerd, ctr or podman is missing (ci/test.sh
//! installs them), or when not root.

mod common;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{pvm_bin, vm_slot};

const IMAGE: &str = "localhost/pvm-busybox:ctr";

fn have(tool: &str) -> bool {
    Command::new(tool).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

struct Containerd {
    dir: tempfile::TempDir,
    daemon: Child,
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // SAFETY: SIGTERM to the containerd we started.
        unsafe { libc::kill(self.daemon.id() as i32, libc::SIGTERM) };
        let _ = self.daemon.wait();
    }
}

impl Containerd {
    fn start() -> Option<Self> {
        if !have("containerd") || !have("ctr") || !have("podman") {
            eprintln!("skipped: containerd, ctr or podman is not installed (apt-get install containerd podman; ci/test.sh does)");
            return None;
        }
        // SAFETY: geteuid has no arguments and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: containerd runs as root only (this test starts its own)");
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        let config = format!(
            "version = 2\nroot = \"{0}/root\"\nstate = \"{0}/state\"\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\n  address = \"{0}/containerd.sock\"\n",
            d.display()
        );
        std::fs::write(d.join("config.toml"), config).expect("config.toml");
        let daemon = Command::new("containerd")
            .arg("--config")
            .arg(d.join("config.toml"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("containerd.log")).expect("log"))
            .spawn()
            .expect("starting containerd");
        let c = Containerd { dir, daemon };
        let t0 = Instant::now();
        while !c.ctr(&["version"]).status.success() {
            assert!(t0.elapsed() < Duration::from_secs(60), "containerd did not come up: {}", c.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        c.import();
        Some(c)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }

    fn ctr(&self, args: &[&str]) -> Output {
        Command::new("ctr")
            .arg("--address")
            .arg(self.dir.path().join("containerd.sock"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("running ctr")
    }

    /// A busybox root, imported into a private podman storage and saved as an OCI archive,
    /// imported into this containerd.
    fn import(&self) {
        let d = self.dir.path();
        let root = d.join("image");
        std::fs::create_dir_all(root.join("bin")).expect("mkdir");
        common::copy_executable(Path::new("/bin/busybox"), &root.join("bin/busybox"));
        std::os::unix::fs::symlink("busybox", root.join("bin/sh")).expect("symlink");
        let run = |cmd: &mut Command| {
            let o = cmd.output().expect("running a tool");
            assert!(o.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&o.stderr));
        };
        let tar = d.join("rootfs.tar");
        run(Command::new("tar").arg("-C").arg(&root).arg("-cf").arg(&tar).arg("."));
        let podman = |args: &[&str]| {
            let mut c = Command::new("podman");
            c.arg("--root").arg(d.join("podman")).arg("--runroot").arg(d.join("podman-run")).args(["--storage-driver", "vfs"]).args(args);
            c
        };
        run(&mut podman(&["import", tar.to_str().expect("utf-8"), IMAGE]));
        let archive = d.join("image-oci.tar");
        run(&mut podman(&["save", "--format", "oci-archive", "-o", archive.to_str().expect("utf-8"), IMAGE]));
        let o = self.ctr(&["images", "import", "--base-name", "localhost/pvm-busybox", archive.to_str().expect("utf-8")]);
        assert!(o.status.success(), "ctr images import: {}", String::from_utf8_lossy(&o.stderr));
    }

    fn run(&self, id: &str, cmd: &[&str]) -> Output {
        let bin = pvm_bin().to_str().expect("utf-8");
        let mut args = vec!["run", "--rm", "--runc-binary", bin, IMAGE, id];
        args.extend_from_slice(cmd);
        self.ctr(&args)
    }
}

#[test]
fn ctr_run_gives_output_and_exit_status() {
    let Some(c) = Containerd::start() else { return };
    let _slot = vm_slot();
    let o = c.run("t1", &["/bin/sh", "-c", "echo hi from $(pwd); exit 3"]);
    assert_eq!(o.status.code(), Some(3), "stderr: {}\n{}", String::from_utf8_lossy(&o.stderr), c.log());
    assert_eq!(String::from_utf8_lossy(&o.stdout), "hi from /\n");
    let o = c.run("t2", &["/bin/sh", "-c", "true"]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&o.stderr));
    // A missing program: create fails, ctr reports pvm's line (from the shim's log.json).
    let o = c.run("t3", &["/bin/no-such-program"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no-such-program"), "stderr: {}", String::from_utf8_lossy(&o.stderr));
    // Nothing left under the shim's --root for these tasks.
    let left = c.ctr(&["tasks", "ls", "-q"]);
    assert_eq!(String::from_utf8_lossy(&left.stdout).trim(), "", "tasks left");
}
