//! C programs built with `gcc -static` (glibc) and `musl-gcc -static` give the same stdout,
//! stderr (where deterministic) and exit status under `pvm run` as natively, with the same argv,
//! environment and working directory.

mod common;

use common::{Libc, Stderr, compare, program};
use std::path::Path;

/// Runs `name` natively in `/` and under pvm with the default working directory.
fn same_as_native(name: &str, libc: Libc, args: &[&str], env: &[(&str, &str)], stderr: Stderr) {
    let exe = program(name, libc);
    compare(&exe, args, env, Path::new("/"), "/", &[], stderr);
}

fn hello(libc: Libc) {
    let exe = program("hello", libc);
    let (_, guest) = compare(&exe, &[], &[], Path::new("/"), "/", &[], Stderr::Same);
    assert_eq!(guest.out(), "Hello, world!\n");
}

fn args_and_env(libc: Libc) {
    // Arguments with spaces, an empty one, one that looks like an option, non-ASCII bytes;
    // environment entries with '=' and spaces in the value. The program prints the whole
    // environment: pvm must pass exactly these entries and nothing else.
    let exe = program("args_env", libc);
    let (_, guest) = compare(
        &exe,
        &["first", "with space", "", "--looks-like-an-option", "-x", "ünïcödé", "a=b"],
        &[("PVM_TEST", "1"), ("SPACES", "a b  c"), ("EQUALS", "x=y=z"), ("EMPTY", "")],
        Path::new("/"),
        "/",
        &[],
        Stderr::Same,
    );
    assert!(guest.out().contains("envc=4\n"), "{}", guest.describe());
    assert!(guest.out().contains("cwd=/\n"), "{}", guest.describe());
}

fn empty_env_and_workdir(libc: Libc) {
    // No --env at all: the guest environment is empty. --workdir /tmp: the program starts there.
    let exe = program("args_env", libc);
    let (_, guest) = compare(&exe, &[], &[], Path::new("/tmp"), "/tmp", &[], Stderr::Same);
    assert!(guest.out().contains("envc=0\ncwd=/tmp\n"), "{}", guest.describe());
}

fn exit_statuses(libc: Libc) {
    for code in ["0", "1", "42"] {
        same_as_native("exit_status", libc, &[code], &[], Stderr::Same);
    }
}

fn stderr_output(libc: Libc) {
    same_as_native("stderr_out", libc, &[], &[], Stderr::Same);
}

fn tmp_files(libc: Libc) {
    // Natively the program works in a fresh empty directory; in the guest in /tmp, which must
    // be empty in pvm's minimal root filesystem. The program prints no paths.
    let dir = tempfile::tempdir().expect("temp dir");
    let exe = program("tmpfiles", libc);
    let native_dir = dir.path().to_str().expect("utf-8 temp path");
    let native = common::Run::native(&exe).arg(native_dir).cwd("/").run().finished();
    let guest = common::Run::pvm()
        .args(common::pvm_run_args(&[], &[], None, &exe, &["/tmp"]))
        .run()
        .finished();
    common::assert_same(&native, &guest, Stderr::Same);
    assert!(guest.out().contains("read back: 1048576 bytes, equal=1"), "{}", guest.describe());
}

fn malloc_heavy(libc: Libc) {
    let exe = program("malloc_heavy", libc);
    let (_, guest) = compare(&exe, &[], &[], Path::new("/"), "/", &["--memory", "512M"], Stderr::Same);
    assert!(guest.out().contains("corrupt=0"), "{}", guest.describe());
}

fn float_formatting(libc: Libc) {
    same_as_native("float_fmt", libc, &[], &[], Stderr::Same);
}

fn deep_recursion(libc: Libc) {
    // 6144 levels of about 1 KiB: the stack grows by 6 MiB (under Linux's default 8 MiB limit).
    let exe = program("deep_recursion", libc);
    let (_, guest) = compare(&exe, &["6144"], &[], Path::new("/"), "/", &[], Stderr::Same);
    assert!(guest.out().contains("at least 6 MiB: 1"), "{}", guest.describe());
}

fn null_dereference(libc: Libc) {
    let exe = program("null_deref", libc);
    let (native, guest) = compare(&exe, &[], &[], Path::new("/"), "/", &[], Stderr::Same);
    assert_eq!(native.status, 139, "natively the program must die by SIGSEGV");
    assert_eq!(guest.status, 139);
    assert_eq!(guest.out(), "about to dereference NULL\n");
}

fn deaths_by_signal(libc: Libc) {
    // abort (134), integer division by zero (136), ud2 (132), raise(SIGTERM) (143): status
    // 128+N and the shell's name for the signal on stderr.
    for (mode, status) in [("abort", 134), ("fpe", 136), ("ill", 132), ("term", 143)] {
        let exe = program("signals", libc);
        let (native, _) = compare(&exe, &[mode], &[], Path::new("/"), "/", &[], Stderr::Same);
        assert_eq!(native.status, status, "natively `signals {mode}`");
    }
}

fn segv_handler(libc: Libc) {
    // A SIGSEGV handler catches a fault, sees si_addr, and exits 7 from the handler.
    same_as_native("signals", libc, &["segv-handler"], &[], Stderr::Same);
}

fn fault_signals(libc: Libc) {
    // #PF (MAPERR/ACCERR), #GP, #UD, #DE, int3 and the kill rules, reported in the handler.
    same_as_native("fault_signals", libc, &[], &[], Stderr::Same);
}

fn threads(libc: Libc) {
    // pthread_create/join, mutex, condvar, timed wait, pthread_kill: one vCPU and two.
    same_as_native("threads", libc, &[], &[], Stderr::Same);
    let exe = program("threads", libc);
    compare(&exe, &[], &[], Path::new("/"), "/", &["--cpus", "2"], Stderr::Same);
}

fn two_vcpus(libc: Libc) {
    // The same results with --cpus 2 (the guest kernel may run the program on either vCPU).
    for name in ["malloc_heavy", "float_fmt", "deep_recursion"] {
        let exe = program(name, libc);
        compare(&exe, &[], &[], Path::new("/"), "/", &["--cpus", "2"], Stderr::Same);
    }
}

fn sigsuspend_pending(libc: Libc) {
    // sigsuspend returns at once for a signal already pending when its mask unblocks it
    // (a lost wake-up here hung busybox ash's `wait` after `kill -9` of a child); 1 and 2 vCPUs.
    same_as_native("sigsuspend_pending", libc, &[], &[], Stderr::Same);
    let exe = program("sigsuspend_pending", libc);
    compare(&exe, &[], &[], Path::new("/"), "/", &["--cpus", "2"], Stderr::Same);
}

fn device_files(libc: Libc) {
    same_as_native("devices", libc, &[], &[], Stderr::Same);
}

fn vfs_calls(libc: Libc) {
    same_as_native("vfs_calls", libc, &[], &[], Stderr::Same);
}

/// File mappings through the page cache (tmpfs `/tmp`), shared anonymous memory across fork
/// with a process-shared mutex, and `/dev/shm` shared between two processes.
fn page_cache(libc: Libc) {
    let exe = program("page_cache", libc);
    let (_, guest) = compare(&exe, &[], &[], Path::new("/"), "/", &[], Stderr::Same);
    assert!(guest.out().ends_with("done\n"), "{}", guest.describe());
}

/// One `#[test]` per (program, libc, backend): `glibc::*` and `musl::*` on the soft backend,
/// `kvm_glibc::*` and `kvm_musl::*` the same cases on `--backend kvm` (skipped without KVM).
macro_rules! both_libcs {
    ($($case:ident),* $(,)?) => {
        mod glibc {
            $(#[test] fn $case() { super::$case(super::Libc::Glibc); })*
        }
        mod musl {
            $(#[test] fn $case() { super::$case(super::Libc::Musl); })*
        }
        mod kvm_glibc {
            $(#[test] fn $case() {
                super::common::on_kvm(concat!("glibc::", stringify!($case)), || super::$case(super::Libc::Glibc));
            })*
        }
        mod kvm_musl {
            $(#[test] fn $case() {
                super::common::on_kvm(concat!("musl::", stringify!($case)), || super::$case(super::Libc::Musl));
            })*
        }
    };
}

both_libcs!(
    hello,
    vfs_calls,
    page_cache,
    args_and_env,
    empty_env_and_workdir,
    exit_statuses,
    stderr_output,
    tmp_files,
    malloc_heavy,
    float_formatting,
    deep_recursion,
    null_dereference,
    device_files,
    deaths_by_signal,
    segv_handler,
    sigsuspend_pending,
    fault_signals,
    threads,
    two_vcpus,
);
