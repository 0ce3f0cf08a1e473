//! The built-in demo (`pvm run` without PROGRAM) and the `--stats` table.

mod common;

use common::{Libc, Run, program, pvm_run_args};

#[test]
fn demo_runs_and_reports_from_inside_the_guest() {
    let out = Run::pvm().arg("run").run().finished();
    assert_eq!(out.status, 0, "{}", out.describe());
    let o = out.out();
    for needle in [
        "runs inside pvm's guest kernel",
        "uname:",
        "pid/ppid:",
        "uid/gid:",
        "cpus:        1 online",
        "memory:",
        "time:",
        "cwd:         /\n",
        "environment: 0 entries\n",
        "  /dev:",
        "sha256:      8 MiB in",
        // SHA-256 of the demo's 8 MiB pattern, checked natively with Python's hashlib.
        "e6d36653cd4d2d210b3db9b937354d4672cb9880848b907ab70bacd9a063cbd6",
        "primes:      148933 below 2000000",
        "bye from inside the guest.\n",
    ] {
        assert!(o.contains(needle), "demo output lacks `{needle}`\n{}", out.describe());
    }
    // The guest's /dev has the devices of the minimal root filesystem.
    let dev = o.lines().find(|l| l.starts_with("  /dev:")).unwrap_or_default();
    for d in ["null", "zero", "urandom"] {
        assert!(dev.contains(d), "/dev lacks {d}\n{}", out.describe());
    }
}

#[test]
fn demo_sees_cpus_env_and_workdir() {
    let out = Run::pvm()
        .args(["run", "--cpus", "2", "--env", "GREETING=hello guest", "--env", "X=1", "--workdir", "/tmp"])
        .run()
        .finished();
    assert_eq!(out.status, 0, "{}", out.describe());
    let o = out.out();
    for needle in [
        "cpus:        2 online, 2 in affinity mask",
        "environment: 2 entries\n  GREETING=hello guest\n  X=1\n",
        "cwd:         /tmp\n",
    ] {
        assert!(o.contains(needle), "demo output lacks `{needle}`\n{}", out.describe());
    }
}

/// Lower-cased, with `_` and `-` as spaces, for loose matching of row names.
fn loose(s: &str) -> String {
    s.to_lowercase().replace(['_', '-'], " ")
}

#[test]
fn stats_table_on_stderr() {
    let exe = program("hello", Libc::Glibc);
    let out = Run::pvm().args(pvm_run_args(&["--stats"], &[], None, &exe, &[])).run().finished();
    assert_eq!(out.status, 0, "{}", out.describe());
    // The table goes to stderr: stdout is exactly the guest's.
    assert_eq!(out.out(), "Hello, world!\n", "{}", out.describe());
    let err = loose(&out.err());
    for row in ["syscall", "shadow fault", "hypercall", "mapper", "vma", "memory"] {
        assert!(err.contains(row), "--stats lacks a `{row}` row\n{}", out.describe());
    }
    // hello makes syscalls (at least write and exit_group): the last syscall row (the total)
    // has a nonzero count.
    let syscall_row = err.lines().rfind(|l| l.contains("syscall")).unwrap_or_default();
    assert!(
        syscall_row.split(|c: char| !c.is_ascii_digit()).any(|n| n.parse::<u64>().is_ok_and(|n| n > 0)),
        "the syscall row shows no count\n{}",
        out.describe()
    );
}

#[test]
fn no_stats_without_the_flag() {
    let exe = program("hello", Libc::Glibc);
    let out = Run::pvm().args(pvm_run_args(&[], &[], None, &exe, &[])).run().finished();
    assert_eq!((out.status, out.out().as_str()), (0, "Hello, world!\n"), "{}", out.describe());
    assert!(out.stderr.is_empty(), "pvm must print nothing of its own on success\n{}", out.describe());
}
