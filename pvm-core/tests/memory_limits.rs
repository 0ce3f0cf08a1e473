//! The guest kernel never dies of its guest's memory use (issue 9, item 4):
//!
//! - filling guest memory (4 GiB `MAP_POPULATE` into `--memory 256M`, kernel data grown while
//!   memory is full, then a child touching memory until none is left) ends in an OOM kill of
//!   the hog with SIGKILL; the VM goes on and a new process runs;
//! - the OOM killer picks the process with the largest resident set, not the one whose fault
//!   failed, also when that process spins on another vCPU;
//! - filling the in-memory `/tmp` ends in `ENOSPC`, and the process goes on;
//! - `mincore`/`madvise`/`mprotect`/`munmap`/`msync`/iovecs with ranges that wrap past 2^64
//!   give Linux's errno (same output as a native run);
//! - a root filesystem too large for `--memory` is one line on stderr and status 125.
//!
//! (The first process itself OOM-killed, status 137, is `multiprocess.rs`.) Guest memory stays
//! at 256 MiB per VM, so two VMs at once stay modest on the host.

mod common;

use common::{Libc, Outcome, Run, Stderr, program, pvm_run_args};
use std::time::Duration;

/// Runs the static `oom_attack` (glibc) with `args` under `pvm run OPTS`.
fn oom_attack(opts: &[&str], args: &[&str]) -> Outcome {
    let exe = program("oom_attack", Libc::Glibc);
    Run::pvm().args(pvm_run_args(opts, &[], None, &exe, args)).timeout(Duration::from_secs(120)).run()
}

/// The run ended normally with `expected` on stdout, and pvm reported the OOM kill and no
/// guest kernel failure.
fn assert_survived(out: &Outcome, expected: &str) {
    assert!(
        !out.timed_out && out.status == 0 && out.out() == expected,
        "expected status 0 and stdout {expected:?}\n{}",
        out.describe()
    );
    let err = out.err().to_lowercase();
    assert!(err.contains("out of memory: killed process"), "pvm must report the OOM kill\n{}", out.describe());
    assert!(!err.contains("panic") && !err.contains("guest kernel failed"), "the guest kernel failed\n{}", out.describe());
}

const AFTER_THE_KILL: &str = "a new child runs\nnew child exited with 0\nparent survived\n";

#[test]
fn populate_then_fill_memory_kills_the_hog_and_the_vm_goes_on() {
    let out = oom_attack(&["--memory", "256M"], &["fork"]);
    assert_survived(&out, &format!("memory hog killed by signal 9\n{AFTER_THE_KILL}"));
}

#[test]
fn the_largest_process_is_killed_first() {
    // 150 MiB held by a pausing child, then a hog: the pausing child is the largest when
    // memory runs out, then the hog is once it has taken the freed memory.
    let out = oom_attack(&["--memory", "256M"], &["bystander", "150"]);
    assert_survived(&out, &format!("big child killed by signal 9\nmemory hog killed by signal 9\n{AFTER_THE_KILL}"));
}

#[test]
fn the_largest_process_is_killed_while_it_runs_on_another_vcpu() {
    let out = oom_attack(&["--memory", "256M", "--cpus", "2"], &["bystander", "150", "spin"]);
    assert_survived(&out, &format!("big child killed by signal 9\nmemory hog killed by signal 9\n{AFTER_THE_KILL}"));
}

#[test]
fn filling_tmp_is_enospc_and_the_guest_goes_on() {
    let exe = program("fill_tmpfs", Libc::Glibc);
    let out = Run::pvm().args(pvm_run_args(&["--memory", "64M"], &[], None, &exe, &[])).timeout(Duration::from_secs(60)).run();
    assert!(
        !out.timed_out && out.status == 0 && out.out() == "write failed: ENOSPC\ntouched 16 MiB\n",
        "expected ENOSPC from the full /tmp, then status 0\n{}",
        out.describe()
    );
    assert!(!out.err().contains("panic"), "the guest kernel failed\n{}", out.describe());
}

fn wrapping_ranges(libc: Libc) {
    let exe = program("mem_ranges", libc);
    let dir = tempfile::tempdir().expect("temp dir");
    let (native, _) = common::compare(&exe, &[], &[], dir.path(), "/", &[], Stderr::Same);
    assert!(native.out().contains("mincore wrapping"), "the program ran natively\n{}", native.describe());
}

#[test]
fn wrapping_ranges_get_linux_errnos_glibc() {
    wrapping_ranges(Libc::Glibc);
}

#[test]
fn wrapping_ranges_get_linux_errnos_musl() {
    wrapping_ranges(Libc::Musl);
}

#[test]
fn a_rootfs_larger_than_memory_is_served_in_place() {
    // --rootfs is served by the file server, not copied into guest memory: a tree with a
    // 40 MiB file boots in 64 MiB (it needed about 100 MiB when it was an initramfs).
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    std::fs::create_dir(root.join("bin")).expect("mkdir");
    common::copy_executable(&program("hello", Libc::Glibc), &root.join("bin/true"));
    std::fs::write(root.join("big"), vec![0x5au8; 40 << 20]).expect("write");
    let ok = Run::pvm()
        .arg("run")
        .args(["--memory", "64M", "--rootfs"])
        .arg(root)
        .args(["--", "/bin/true"])
        .timeout(Duration::from_secs(60))
        .run()
        .finished();
    assert_eq!(ok.status, 0, "the tree boots in 64M\n{}", ok.describe());
}
