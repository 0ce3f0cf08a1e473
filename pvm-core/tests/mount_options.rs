//! `--rootfs`, `--read-only`, `-v/--volume`, `--tmpfs` and the PATH lookup of a bare PROGRAM:
//! parsing and the errors pvm reports before boot (docker's 125 / 126 / 127 with one line on
//! stderr), and the file server's lifetime. What the guest sees through these mounts is tested
//! end to end with the guest kernel's hostfs client.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Libc, Outcome, Run, assert_one_line_error, executable, program};

fn pvm(args: &[&str]) -> Outcome {
    Run::pvm().arg("run").args(args).run().finished()
}

/// A root with /bin/tool (executable), /opt/data (not executable), /usr/bin/ (a directory).
fn root() -> tempfile::TempDir {
    let t = tempfile::tempdir().expect("tempdir");
    for d in ["bin", "opt", "usr/bin", "home/dir"] {
        std::fs::create_dir_all(t.path().join(d)).expect("mkdir");
    }
    executable(&t.path().join("bin/tool"), b"#!/bin/sh\n");
    std::fs::write(t.path().join("opt/data"), b"data").expect("write");
    t
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

#[test]
fn malformed_mount_options_are_125() {
    for (args, mention) in [
        (vec!["-v", "/tmp", "/bin/true"], "HOST:GUEST"),
        (vec!["--volume", "/tmp:relative", "/bin/true"], "not absolute"),
        (vec!["-v", "/tmp:/", "/bin/true"], "--rootfs"),
        (vec!["-v", "/tmp:/a/../b", "/bin/true"], ".."),
        (vec!["--tmpfs", "run", "/bin/true"], "not absolute"),
        (vec!["--tmpfs", "/run:mode=1777", "/bin/true"], "mode=1777"),
        (vec!["--tmpfs", "/run:size=12X", "/bin/true"], "12X"),
        (vec!["--read-only", "/bin/true"], "--rootfs"),
    ] {
        let out = pvm(&args);
        assert_one_line_error(&out, 125, &[mention]);
    }
}

#[test]
fn missing_or_wrong_host_directories_are_125() {
    let t = root();
    let missing = t.path().join("missing");
    let file = t.path().join("opt/data");
    let out = pvm(&["--rootfs", s(&missing), "/bin/tool"]);
    assert_one_line_error(&out, 125, &["--rootfs", "missing"]);
    let out = pvm(&["--rootfs", s(&file), "/bin/tool"]);
    assert_one_line_error(&out, 125, &["--rootfs", "not a directory"]);
    let vol = format!("{}:/data", s(&missing));
    let out = pvm(&["--rootfs", s(t.path()), "-v", &vol, "/bin/tool"]);
    assert_one_line_error(&out, 125, &["--volume", "missing"]);
    let vol = format!("{}:/data:ro", s(&file));
    let out = pvm(&["--rootfs", s(t.path()), "-v", &vol, "/bin/tool"]);
    assert_one_line_error(&out, 125, &["--volume", "not a directory"]);
    let out = pvm(&["--rootfs", s(t.path())]);
    assert_one_line_error(&out, 125, &["program"]);
}

#[test]
fn mount_tables_that_do_not_fit_are_125() {
    let t = root();
    let twice = format!("{}:/data", s(&t.path().join("home")));
    let out = pvm(&["--rootfs", s(t.path()), "-v", &twice, "--tmpfs", "/data", "/bin/tool"]);
    assert_one_line_error(&out, 125, &["/data", "twice"]);
    let mut args: Vec<String> = vec!["--rootfs".into(), s(t.path()).into()];
    for i in 0..16 {
        args.push("--tmpfs".into());
        args.push(format!("/t{i}"));
    }
    args.push("/bin/tool".into());
    let out = pvm(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_one_line_error(&out, 125, &["too many mounts"]);
}

#[test]
fn programs_are_looked_up_inside_the_root() {
    let t = root();
    let r = s(t.path());
    // A bare name not in PATH: 127, as `docker run` ("executable file not found in $PATH").
    let out = pvm(&["--rootfs", r, "no-such-tool"]);
    assert_one_line_error(&out, 127, &["no-such-tool", "PATH"]);
    // Docker's default PATH has /bin but not /opt; --env PATH replaces it.
    let out = pvm(&["--rootfs", r, "--env", "PATH=/opt", "tool"]);
    assert_one_line_error(&out, 127, &["tool", "PATH"]);
    // Found in PATH but not executable: 126.
    let out = pvm(&["--rootfs", r, "--env", "PATH=/usr/bin:/opt", "data"]);
    assert_one_line_error(&out, 126, &["data", "permission denied"]);
    // Paths: missing 127, a directory 126, no execute bit 126.
    assert_one_line_error(&pvm(&["--rootfs", r, "/bin/missing"]), 127, &["/bin/missing"]);
    assert_one_line_error(&pvm(&["--rootfs", r, "/usr/bin"]), 126, &["/usr/bin", "directory"]);
    assert_one_line_error(&pvm(&["--rootfs", r, "/opt/data"]), 126, &["/opt/data", "permission denied"]);
    // Relative paths are against --workdir.
    assert_one_line_error(&pvm(&["--rootfs", r, "--workdir", "/home", "dir/x"]), 127, &["dir/x"]);
}

#[test]
fn symlinks_and_dot_dot_resolve_inside_the_root() {
    let t = root();
    let r = s(t.path());
    // A host program that exists outside the root, named through an absolute symlink, `..`
    // and a relative symlink: inside the root none of them exists, so 127 (never the host's).
    let host = program("hello", Libc::Musl);
    std::os::unix::fs::symlink(&host, t.path().join("bin/abs")).expect("symlink");
    std::os::unix::fs::symlink("../../../../../../../../..".to_string() + s(&host), t.path().join("bin/rel"))
        .expect("symlink");
    assert_one_line_error(&pvm(&["--rootfs", r, "/bin/abs"]), 127, &["/bin/abs"]);
    assert_one_line_error(&pvm(&["--rootfs", r, "/bin/rel"]), 127, &["/bin/rel"]);
    let dotdot = format!("/../../../../../..{}", s(&host));
    assert_one_line_error(&pvm(&["--rootfs", r, &dotdot]), 127, &[]);
    assert_one_line_error(&pvm(&["--rootfs", r, "--env", "PATH=/../../../..", "true"]), 127, &["PATH"]);
}

#[test]
fn the_file_server_lives_and_dies_with_the_vm() {
    // Without --rootfs, a volume still gets a file server (the root is the initramfs).
    let vol = tempfile::tempdir().expect("tempdir");
    let spec = format!("{}:/mnt:ro", s(vol.path()));
    let run = Run::pvm()
        .args(["run", "-v", &spec, "--tmpfs", "/run:size=1M", "/bin/busybox", "sleep", "3"])
        .timeout(Duration::from_secs(60));
    let child = run.spawn();
    let pvm_pid = child.pid();
    // F is pvm's child; pvm boots the guest only once F serves, sandboxed: no_new_privs, a
    // seccomp filter and a network namespace of its own. The guest sleeps 3 s after that.
    let mut seen = None;
    for _ in 0..1000 {
        if let Some(f) = children_named(pvm_pid, "pvm-file-server").into_iter().next() {
            let status = std::fs::read_to_string(format!("/proc/{f}/status")).unwrap_or_default();
            if status.contains("Seccomp:\t2") {
                let net = std::fs::read_link(format!("/proc/{f}/ns/net")).ok();
                seen = Some((f, status, net));
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait();
    assert_eq!(out.status, 0, "{}", out.describe());
    let (f, status, net) = seen.expect("a sandboxed pvm-file-server child of pvm while the guest ran");
    assert!(status.contains("NoNewPrivs:\t1"), "{status}");
    let ours = std::fs::read_link("/proc/self/ns/net").ok();
    assert!(net.is_some() && net != ours, "F has its own network namespace");
    assert!(!Path::new(&format!("/proc/{f}")).exists() || is_zombie_of_other(f), "F outlived pvm");
}

/// Pids of `parent`'s children whose comm is `name`.
fn children_named(parent: u32, name: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // pid (comm) state ppid ...
            let Some((comm, rest)) = stat.split_once(") ") else { return false };
            let ppid = rest.split(' ').nth(1).and_then(|p| p.parse::<u32>().ok());
            comm.ends_with(&format!("({}", &name[..name.len().min(15)])) && ppid == Some(parent)
        })
        .collect()
}

/// Whether `pid` is now some other process (pid reuse), not F.
fn is_zombie_of_other(pid: u32) -> bool {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    !comm.starts_with("pvm-file-serv")
}

#[test]
fn a_dead_file_server_leaves_the_vm_running() {
    let vol = tempfile::tempdir().expect("tempdir");
    let spec = format!("{}:/mnt", s(vol.path()));
    let child = Run::pvm()
        .args(["run", "-v", &spec, "/bin/busybox", "sh", "-c", "echo up; sleep 2; echo done"])
        .timeout(Duration::from_secs(60))
        .spawn();
    // The guest runs (so F served its start-up) once it printed `up`.
    for _ in 0..3000 {
        if child.stdout_so_far().starts_with(b"up") {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let f = children_named(child.pid(), "pvm-file-server").into_iter().next().expect("a pvm-file-server child of pvm");
    // SAFETY: kill with a pid we just read and a signal number; F is pvm's unreaped child.
    unsafe { libc::kill(f as libc::pid_t, libc::SIGKILL) };
    let out = child.wait();
    assert_eq!(out.status, 0, "the guest program still finishes\n{}", out.describe());
    assert_eq!(out.out(), "up\ndone\n");
    assert!(out.err().contains("file server died"), "pvm says so\n{}", out.describe());
}
