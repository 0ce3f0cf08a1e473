//! SMP stress (issue 10): `tests/programs/smp_stress.c` runs threads, page faults, pipes,
//! futexes, forks and signals at once on 2 vCPUs (`--pin none`, so the host may spread the
//! vCPU threads) for a bounded amount of work, with no hang, no panic and the same output as
//! natively. The work is a number of rounds per thread: `PVM_SMP_STRESS_ROUNDS` (CI passes a
//! count that takes about 60 s; the default is a few seconds).

mod common;

use common::{Libc, Run, Stderr, assert_same, program, pvm_run_args};
use std::path::Path;
use std::time::Duration;

/// Rounds per worker thread when `PVM_SMP_STRESS_ROUNDS` is not set.
const DEFAULT_ROUNDS: u32 = 48;

fn rounds() -> String {
    std::env::var("PVM_SMP_STRESS_ROUNDS").ok().and_then(|v| v.parse::<u32>().ok()).unwrap_or(DEFAULT_ROUNDS).max(1).to_string()
}

fn stress(libc: Libc, opts: &[&str]) {
    let exe = program("smp_stress", libc);
    let n = rounds();
    // The work bounds the run; the limit only catches a hang (generous for a loaded machine).
    let limit = Duration::from_secs(60 + 4 * n.parse::<u64>().unwrap_or(0));
    let native = Run::native(&exe).arg(&n).cwd(Path::new("/")).timeout(limit).run().finished();
    assert_eq!(native.status, 0, "native run failed: {}", native.describe());
    let guest = Run::pvm().args(pvm_run_args(opts, &[], Some("/"), &exe, &[&n])).timeout(limit).run().finished();
    assert_same(&native, &guest, Stderr::Same);
}

#[test]
fn mixed_work_on_two_vcpus_glibc() {
    stress(Libc::Glibc, &["--cpus", "2", "--pin", "none"]);
}

#[test]
fn mixed_work_on_two_vcpus_musl() {
    stress(Libc::Musl, &["--cpus", "2", "--pin", "none"]);
}

#[test]
fn mixed_work_on_four_vcpus_overcommitted() {
    // More vCPUs than host CPUs: lock holders get preempted (the lock-holder hints' case).
    stress(Libc::Glibc, &["--cpus", "4", "--pin", "none"]);
}
