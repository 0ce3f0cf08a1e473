//! `/proc`, `/sys` and resource limits as tools see them (docs/ARCHITECTURE.md, "/proc and
//! /sys"), compared with the same programs run natively: a static C program that reads the
//! files as tools do (shapes and relations: identical output natively and under pvm, glibc
//! and musl), threads (`Threads`, `task/`, `thread-self`), Linux's default limits and
//! `prlimit` checks, busybox's `ps`, `free`, `top`, `nproc`, `uptime`, and procps's `ps aux`,
//! `ps -ef`, `free`, `vmstat`, `top -b -n 1`, `uptime` (the host's procps binaries, run in the
//! Debian tree of pvm-core/tests/debian.rs when it is cached; skipped with the reason
//! printed otherwise). Machine-specific values are compared by shape. Both backends.

#[macro_use]
mod common;

use common::{Libc, Outcome, Run, Stderr, compare, program, pvm_run_args};
use std::path::{Path, PathBuf};

fn reads_like_linux(libc: Libc) {
    let exe = program("procfs_read", libc);
    let dir = tempfile::tempdir().expect("temp dir");
    for mode in ["fields", "threads"] {
        let (_, guest) = compare(&exe, &[mode], &[("PVMTEST", "1")], dir.path(), "/", &["--cpus", "2"], Stderr::Same);
        assert!(!guest.out().contains(": no\n"), "{}", guest.describe());
    }
}

fn glibc_files() {
    reads_like_linux(Libc::Glibc);
}
fn musl_files() {
    reads_like_linux(Libc::Musl);
}

fn threads_are_counted() {
    let exe = program("procfs_read", Libc::Glibc);
    let out = Run::pvm().args(pvm_run_args(&[], &[], None, &exe, &["threads"])).run().finished();
    assert_eq!(
        out.out(),
        "status Threads: 4\ntask entries: 4\nstat num_threads: 4\nthread-self is task/<tid>: yes\n\
         task/<tid>/stat readable: yes\nafter join Threads: 1\nafter join task entries: 1\n",
        "{}",
        out.describe()
    );
}

/// Linux's defaults (include/asm-generic/resource.h; NOFILE as documented in proc.rs) and
/// `do_prlimit`'s checks. Not compared natively: the host's limits are its own.
fn default_limits() {
    let exe = program("procfs_read", Libc::Glibc);
    let out = Run::pvm().args(pvm_run_args(&[], &[], None, &exe, &["limits"])).run().finished();
    assert_eq!(
        out.out(),
        "RLIMIT_RTPRIO 0 0\nRLIMIT_NICE 0 0\nRLIMIT_NOFILE 1024 1048576\nRLIMIT_CORE 0 18446744073709551615\n\
         RLIMIT_STACK 8388608 18446744073709551615\nsoft above hard: EINVAL\nNOFILE above nr_open: EPERM\n\
         lowering NOFILE: ok\nRLIMIT_NOFILE 512 4096\nbad resource: EINVAL\n",
        "{}",
        out.describe()
    );
}

/// A root with the host's busybox.
fn busybox_root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("bin")).expect("mkdir");
    std::fs::copy("/bin/busybox", dir.path().join("bin/busybox")).expect("copying /bin/busybox (busybox-static)");
    dir
}

fn in_busybox_root(root: &Path, script: &str) -> Outcome {
    let out = Run::pvm()
        .args(["run", "--cpus", "2", "--rootfs"])
        .arg(root)
        .args(["--", "/bin/busybox", "sh", "-c", script])
        .run()
        .finished();
    assert_eq!(out.status, 0, "{}", out.describe());
    out
}

fn native_line(argv: &[&str], line: usize) -> String {
    let out = Run::native(argv[0]).args(&argv[1..]).run().finished();
    out.out().lines().nth(line).unwrap_or_default().to_owned()
}

fn busybox_tools() {
    let root = busybox_root();
    let out = in_busybox_root(root.path(), "busybox ps -o pid,ppid,stat,comm; echo; busybox free; echo; busybox nproc; busybox uptime; busybox top -b -n 1");
    let text = out.out();
    let mut parts = text.split("\n\n");
    let ps = parts.next().unwrap_or_default();
    let rows: Vec<&str> = ps.lines().collect();
    assert_eq!(rows[0], native_line(&["/bin/busybox", "ps", "-o", "pid,ppid,stat,comm"], 0), "{}", out.describe());
    // The shell (pid 1) and ps itself, ps running.
    assert!(rows.iter().any(|r| r.split_whitespace().collect::<Vec<_>>() == ["1", "0", "S", "busybox"]), "{}", out.describe());
    assert!(rows.iter().any(|r| r.split_whitespace().nth(2) == Some("R")), "{}", out.describe());
    let free = parts.next().unwrap_or_default();
    assert_eq!(free.lines().next(), Some(native_line(&["/bin/busybox", "free"], 0).as_str()), "{}", out.describe());
    let rest: Vec<&str> = parts.next().unwrap_or_default().lines().collect();
    assert_eq!(rest[0], "2", "nproc\n{}", out.describe());
    assert!(rest[1].contains(" up ") && rest[1].contains("load average: "), "{}", out.describe());
    assert!(rest.iter().any(|l| l.starts_with("Mem: ")) && rest.iter().any(|l| l.starts_with("CPU: ")), "{}", out.describe());
    // top prints the difference of two /proc/stat samples: a figure that went backwards shows
    // as a percentage in the millions.
    let cpu = rest.iter().find(|l| l.starts_with("CPU:")).copied().unwrap_or_default();
    for pct in cpu.split('%').filter_map(|w| w.split_whitespace().last().and_then(|n| n.trim_start_matches("CPU:").parse::<u64>().ok())) {
        assert!(pct <= 100, "a CPU figure above 100% (a /proc/stat counter went backwards): {cpu}\n{}", out.describe());
    }
    assert!(rest.iter().any(|l| l.starts_with("Load average: ")), "{}", out.describe());
}

/// The cached Debian tree and a directory with the host's procps binaries and libproc2, or
/// why not.
fn procps_setup() -> Result<(PathBuf, tempfile::TempDir), String> {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .ok_or("no HOME")?;
    let root = cache.join("pvm/debian-bookworm-minbase");
    if !root.join("usr/bin/ldd").exists() {
        return Err(format!("no Debian tree at {} (the debian tests build it)", root.display()));
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    for f in ["/usr/bin/ps", "/usr/bin/free", "/usr/bin/vmstat", "/usr/bin/top", "/usr/bin/uptime", "/lib/x86_64-linux-gnu/libproc2.so.0"] {
        let name = Path::new(f).file_name().ok_or("bad path")?;
        std::fs::copy(f, dir.path().join(name)).map_err(|e| format!("the host's procps ({f}): {e}"))?;
    }
    Ok((root, dir))
}

/// Splits `text` into the sections separated (`echo SEP$((1))`, so the command line itself does not match).
fn sections(text: &str) -> Vec<Vec<String>> {
    text.split("SEP1\n").map(|s| s.lines().map(String::from).collect()).collect()
}

fn procps_tools() {
    let (root, bins) = match procps_setup() {
        Ok(s) => s,
        Err(why) => {
            println!("procfs: skipping the procps cases: {why}");
            return;
        }
    };
    let script = "ps aux; echo SEP$((1)); ps -ef; echo SEP$((1)); free; echo SEP$((1)); vmstat; echo SEP$((1)); top -b -n 1; echo SEP$((1)); uptime";
    let dir = bins.path().to_str().expect("UTF-8 temp path");
    let guest = Run::pvm()
        .args(["run", "--read-only", "--cpus", "2", "--volume", &format!("{dir}:/mnt:ro"), "--env", "LD_LIBRARY_PATH=/mnt"])
        .args(["--env", "PATH=/mnt:/usr/bin:/bin", "--rootfs"])
        .arg(&root)
        .args(["--", "/bin/bash", "-c", script])
        .run()
        .finished();
    let native = Run::native("/bin/bash").args(["-c", script]).env("PATH", "/usr/bin:/bin").run().finished();
    let context = || format!("NATIVE:\n{}\nPVM:\n{}", native.describe(), guest.describe());
    assert_eq!((guest.status, native.status), (0, 0), "{}", context());
    assert!(guest.stderr.is_empty(), "{}", context());
    let (g, n) = (sections(&guest.out()), sections(&native.out()));
    assert_eq!(g.len(), 6, "{}", context());
    // ps aux, ps -ef: same header words (column widths follow pid_max); every row as many columns as the header (COMMAND may
    // have more words); the shell is pid 1 under pvm.
    for i in 0..2 {
        let words = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
        assert_eq!(words(&g[i][0]), words(&n[i][0]), "ps header\n{}", context());
        let cols = g[i][0].split_whitespace().count();
        assert!(g[i][1..].iter().all(|r| r.split_whitespace().count() >= cols), "{}", context());
        assert!(g[i].len() >= 3, "{}", context());
    }
    assert_eq!(g[0][1].split_whitespace().take(2).collect::<Vec<_>>(), ["root", "1"], "{}", context());
    // free: the same header and row labels.
    let labels = |s: &[String]| s.iter().map(|l| l.split_whitespace().next().unwrap_or("").to_owned()).collect::<Vec<_>>();
    assert_eq!(g[2][0], n[2][0], "{}", context());
    assert_eq!(labels(&g[2][1..]), labels(&n[2][1..]), "{}", context());
    // vmstat: the same two header lines, one row of 17 numbers.
    assert_eq!(g[3][..2], n[3][..2], "{}", context());
    assert_eq!(g[3][2].split_whitespace().filter(|w| w.parse::<u64>().is_ok()).count(), 17, "{}", context());
    // top: the summary rows start alike and the column header is the same.
    for (row, prefix) in [(0, "top - "), (1, "Tasks:"), (2, "%Cpu(s):"), (3, "MiB Mem :"), (4, "MiB Swap:")] {
        assert!(g[4][row].starts_with(prefix) && n[4][row].starts_with(prefix), "top row {row}\n{}", context());
    }
    assert_eq!(g[4][6], n[4][6], "top columns\n{}", context());
    assert!(g[5][0].contains(" up ") && g[5][0].contains("load average: "), "{}", context());
}

on_both_backends!(glibc_files, musl_files, threads_are_counted, default_limits, busybox_tools, procps_tools);
