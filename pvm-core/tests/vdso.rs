//! The vDSO (docs/ARCHITECTURE.md, "The vDSO"): every process gets `AT_SYSINFO_EHDR`, and the
//! C library's `clock_gettime`, `gettimeofday`, `time` and `clock_getres` then run without a
//! syscall, agree with the syscalls, and stay monotonic across threads; `ldd` lists
//! `linux-vdso.so.1` as on Linux. Static glibc and musl programs on both backends, and the
//! dynamic glibc of the Debian tree (pvm-core/tests/debian.rs builds and caches it; skipped
//! with the reason printed when it is not there).

#[macro_use]
mod common;

use common::{Libc, Link, Outcome, Run, Stderr, build, compare, program, pvm_run_args};
use std::path::PathBuf;

/// Every line of `vdso_clock check` ends in "yes" (the program checks, the test compares).
fn all_yes(out: &Outcome) {
    let text = out.out();
    assert!(text.lines().count() >= 10, "{}", out.describe());
    for l in text.lines() {
        assert!(l.ends_with(": yes"), "check failed: `{l}`\n{}", out.describe());
    }
}

fn check_same_as_native(libc: Libc) {
    let exe = program("vdso_clock", libc);
    let dir = tempfile::tempdir().expect("temp dir");
    let (_, guest) = compare(&exe, &["check"], &[], dir.path(), "/", &[], Stderr::Same);
    all_yes(&guest);
}

/// The count in the `--stats` row "all guest syscalls N".
fn total_syscalls(out: &Outcome) -> u64 {
    let err = out.err();
    let row = err.lines().find(|l| l.trim_start().starts_with("all guest syscalls")).unwrap_or_else(|| panic!("no total row\n{}", out.describe()));
    row.split_whitespace().last().and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("bad total row `{row}`"))
}

/// 100,000 `clock_gettime(CLOCK_MONOTONIC)` calls make no `clock_gettime` syscall.
fn no_syscalls_in_a_clock_loop(libc: Libc) {
    let exe = program("vdso_clock", libc);
    let out = Run::pvm().args(pvm_run_args(&["--stats"], &[], None, &exe, &["loop", "100000"])).run().finished();
    assert_eq!((out.status, out.out().as_str()), (0, "100000 reads\n"), "{}", out.describe());
    assert!(!out.err().contains("clock_gettime"), "clock_gettime trapped\n{}", out.describe());
    assert!(total_syscalls(&out) < 100, "{}", out.describe());
}

fn glibc_check() {
    check_same_as_native(Libc::Glibc);
}
fn musl_check() {
    check_same_as_native(Libc::Musl);
}
fn glibc_no_syscalls() {
    no_syscalls_in_a_clock_loop(Libc::Glibc);
}
fn musl_no_syscalls() {
    no_syscalls_in_a_clock_loop(Libc::Musl);
}

/// The cached Debian tree of pvm-core/tests/debian.rs, when it was built.
fn debian_root() -> Option<PathBuf> {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    let root = cache.join("pvm/debian-bookworm-minbase");
    if root.join("usr/bin/ldd").exists() {
        Some(root)
    } else {
        println!("vdso: skipping the dynamic cases: no Debian tree at {} (the debian tests build it)", root.display());
        None
    }
}

/// `(0x...)` addresses replaced by `(ADDR)`: load addresses differ from run to run.
fn mask_addresses(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("(0x") {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let end = tail.find(')').map_or(tail.len(), |e| e + 1);
        out.push_str("(ADDR)");
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// The dynamic glibc of the Debian tree finds the vDSO (`ldd` lists it, as natively in a
/// chroot of the same tree) and its `clock_gettime` makes no syscall.
fn dynamic_glibc() {
    let Some(root) = debian_root() else { return };
    let guest = Run::pvm().args(["run", "--read-only", "--rootfs"]).arg(&root).args(["--", "/usr/bin/ldd", "/bin/ls"]).run().finished();
    assert_eq!(guest.status, 0, "{}", guest.describe());
    assert!(guest.out().starts_with("\tlinux-vdso.so.1 (0x"), "{}", guest.describe());
    // SAFETY: geteuid(2) has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let native = Run::native("/usr/sbin/chroot").arg(&root).args(["/usr/bin/ldd", "/bin/ls"]).run().finished();
        assert_eq!(mask_addresses(&guest.out()), mask_addresses(&native.out()), "NATIVE:\n{}\nPVM:\n{}", native.describe(), guest.describe());
    }
    // A dynamically linked program (built here against the same bookworm glibc), mounted in.
    let exe = build("vdso_clock", Libc::Glibc, Link::Dynamic);
    let dir = exe.parent().expect("a directory").to_str().expect("UTF-8 path").to_owned();
    let run = |args: &[&str]| {
        Run::pvm()
            .args(["run", "--read-only", "--stats", "--volume", &format!("{dir}:/mnt:ro"), "--rootfs"])
            .arg(&root)
            // Through env: pvm looks the PROGRAM up in the root tree itself, not in volumes.
            .args(["--", "/usr/bin/env", "/mnt/vdso_clock"])
            .args(args)
            .run()
            .finished()
    };
    let out = run(&["check"]);
    assert_eq!(out.status, 0, "{}", out.describe());
    all_yes(&out);
    let out = run(&["loop", "100000"]);
    assert_eq!((out.status, out.out().as_str()), (0, "100000 reads\n"), "{}", out.describe());
    assert!(!out.err().contains("clock_gettime"), "clock_gettime trapped\n{}", out.describe());
}

on_both_backends!(glibc_check, musl_check, glibc_no_syscalls, musl_no_syscalls, dynamic_glibc);
