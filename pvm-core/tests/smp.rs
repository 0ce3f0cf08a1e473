//! SMP on the soft backend (issue 10): where the VM's host threads run (default placement: one
//! host CPU per vCPU for H's, K's and U's threads of that vCPU; `--pin CPU`: all on one CPU;
//! `--pin none`: the allowed set), read from `/proc/PID/task/TID/status` `Cpus_allowed_list`
//! while the guest sleeps; and threads of one guest process faulting at once (through the
//! per-vCPU mapper threads of their U) each see exactly the memory they wrote. The placement
//! checks need two allowed host CPUs and say so when there are fewer.

mod common;

use common::{Libc, Run};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// CPUs this test process may run on.
fn allowed() -> BTreeSet<usize> {
    // SAFETY: zeroed cpu_set_t is valid; sched_getaffinity writes at most its size.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: pid 0 = this thread; `set` is valid for its size.
    assert_eq!(unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) }, 0);
    // SAFETY: CPU_ISSET reads `set` only, below CPU_SETSIZE.
    (0..libc::CPU_SETSIZE as usize).filter(|&c| unsafe { libc::CPU_ISSET(c, &set) }).collect()
}

/// Parses a `Cpus_allowed_list` value (`0`, `0-1`, `0,2-3`).
fn parse_list(s: &str) -> BTreeSet<usize> {
    let mut out = BTreeSet::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (usize, usize) = (a.parse().expect("cpu"), b.parse().expect("cpu"));
        out.extend(a..=b);
    }
    out
}

/// One host thread: its tid, name and allowed CPUs.
#[derive(Debug)]
struct Thread {
    tid: i32,
    comm: String,
    cpus: BTreeSet<usize>,
}

fn threads_of(pid: i32) -> Vec<Thread> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return out };
    for e in dir.flatten() {
        let Ok(tid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default().trim().to_string();
        let status = std::fs::read_to_string(e.path().join("status")).unwrap_or_default();
        let Some(list) = status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")) else { continue };
        out.push(Thread { tid, comm, cpus: parse_list(list) });
    }
    out.sort_by_key(|t| t.tid);
    out
}

/// Child processes of `pid` (every thread's `children` file), with their comm.
fn children_of(pid: i32) -> Vec<(i32, String)> {
    let mut out = Vec::new();
    for t in threads_of(pid) {
        let list = std::fs::read_to_string(format!("/proc/{pid}/task/{}/children", t.tid)).unwrap_or_default();
        for c in list.split_whitespace().filter_map(|c| c.parse::<i32>().ok()) {
            let comm = std::fs::read_to_string(format!("/proc/{c}/comm")).unwrap_or_default().trim().to_string();
            out.push((c, comm));
        }
    }
    out
}

/// The VM's threads while `smp_touch THREADS 16 1 3000` sleeps, run as `pvm run OPTS`:
/// (H's threads, K's threads, every U's threads), then the run's outcome.
fn placement_during(opts: &[&str], threads: &str) -> (Vec<Thread>, Vec<Thread>, Vec<Vec<Thread>>, common::Outcome) {
    let exe = common::program("smp_touch", Libc::Glibc);
    let run = Run::pvm().arg("run").args(opts).arg(&exe).args([threads, "16", "1", "3000"]).timeout(Duration::from_secs(60)).spawn();
    let pid = i32::try_from(run.pid()).expect("pid");
    let t0 = Instant::now();
    while !String::from_utf8_lossy(&run.stdout_so_far()).contains("ok") && t0.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let h = threads_of(pid);
    let kids = children_of(pid);
    let k = kids.iter().find(|(_, c)| c == "pvm-stub-k").map(|&(p, _)| threads_of(p)).unwrap_or_default();
    let us = kids.iter().filter(|(_, c)| c == "pvm-stub-u").map(|&(p, _)| threads_of(p)).collect();
    (h, k, us, run.wait())
}

#[test]
fn by_default_each_vcpu_runs_on_its_own_host_cpu() {
    let cpus: Vec<usize> = allowed().into_iter().collect();
    if cpus.len() < 2 {
        println!("skipping: placement needs 2 allowed host CPUs, this process has {cpus:?}");
        return;
    }
    let (h, k, us, out) = placement_during(&["--cpus", "2"], "2");
    assert_eq!(out.out(), "ok 2 16 1\n", "{}", out.describe());
    let one = |c: usize| BTreeSet::from([c]);
    // H: its vCPU threads are placed, its other threads keep the allowed set.
    for (v, name) in ["pvm-vcpu0", "pvm-vcpu1"].iter().enumerate() {
        let t = h.iter().find(|t| t.comm == *name).unwrap_or_else(|| panic!("no {name} in {h:?}"));
        assert_eq!(t.cpus, one(cpus[v]), "{name}: {h:?}");
    }
    let watchdog = h.iter().find(|t| t.comm == "pvm-watchdog").expect("watchdog");
    assert_eq!(watchdog.cpus, allowed(), "H's other threads are not placed");
    // K: vCPU 0's thread is the main thread (lowest tid), vCPU 1's the other.
    assert_eq!(k.len(), 2, "{k:?}");
    assert_eq!((&k[0].cpus, &k[1].cpus), (&one(cpus[0]), &one(cpus[1])), "{k:?}");
    // Every U: a guest thread and a mapper thread on each vCPU's CPU.
    assert!(!us.is_empty(), "no U process seen");
    for u in &us {
        assert_eq!(u.len(), 4, "main (mapper 0), 2 guest threads, mapper 1: {u:?}");
        assert_eq!(u[0].cpus, one(cpus[0]), "U's main thread maps for vCPU 0: {u:?}");
        for c in &cpus[..2] {
            assert_eq!(u.iter().filter(|t| t.cpus == one(*c)).count(), 2, "two threads on CPU {c}: {u:?}");
        }
    }
}

#[test]
fn more_vcpus_than_cpus_share_them_round_robin() {
    let cpus: Vec<usize> = allowed().into_iter().collect();
    if cpus.len() < 2 {
        println!("skipping: placement needs 2 allowed host CPUs, this process has {cpus:?}");
        return;
    }
    let n = cpus.len() + 1;
    let arg = n.to_string();
    let (h, k, _, out) = placement_during(&["--cpus", &arg], "2");
    assert_eq!(out.out(), "ok 2 16 1\n", "{}", out.describe());
    assert_eq!(k.len(), n, "{k:?}");
    for (v, t) in k.iter().enumerate() {
        assert_eq!(t.cpus, BTreeSet::from([cpus[v % cpus.len()]]), "K vCPU {v}: {k:?}");
        let name = format!("pvm-vcpu{v}");
        let ht = h.iter().find(|t| t.comm == name).expect("H vCPU thread");
        assert_eq!(ht.cpus, t.cpus, "H's and K's vCPU {v} threads together");
    }
}

#[test]
fn pin_keeps_the_whole_vm_on_one_cpu_and_none_does_not_pin() {
    let cpus: Vec<usize> = allowed().into_iter().collect();
    let first = cpus[0].to_string();
    let (h, k, us, out) = placement_during(&["--cpus", "2", "--pin", &first], "2");
    assert_eq!(out.out(), "ok 2 16 1\n", "{}", out.describe());
    // H's signal thread starts before pvm pins itself; every VM thread after that is pinned.
    let vm_threads = |h: &[Thread]| h.iter().filter(|t| t.comm.starts_with("pvm-vcpu") || t.comm == "pvm-watchdog").count();
    assert_eq!(vm_threads(&h), 3, "{h:?}");
    let placed = h.iter().filter(|t| t.comm.starts_with("pvm-vcpu") || t.comm == "pvm-watchdog");
    for t in placed.chain(&k).chain(us.iter().flatten()) {
        assert_eq!(t.cpus, BTreeSet::from([cpus[0]]), "--pin {first}: {t:?}");
    }
    let (h, k, us, out) = placement_during(&["--cpus", "2", "--pin", "none"], "2");
    assert_eq!(out.out(), "ok 2 16 1\n", "{}", out.describe());
    assert!(!k.is_empty() && !us.is_empty());
    for t in h.iter().chain(&k).chain(us.iter().flatten()) {
        assert_eq!(t.cpus, allowed(), "--pin none: {t:?}");
    }
}

#[test]
fn threads_faulting_at_once_in_one_space_see_their_own_memory() {
    let exe = common::program("smp_touch", Libc::Glibc);
    for (threads, mib, rounds) in [("2", "64", "6"), ("4", "32", "4")] {
        let native = Run::native(&exe).args([threads, mib, rounds]).run().finished();
        let want = format!("ok {threads} {mib} {rounds}\n");
        assert_eq!(native.out(), want, "native\n{}", native.describe());
        for opts in [&["--cpus", "2"][..], &["--cpus", "2", "--pin", "none"], &["--cpus", "4"]] {
            let out = Run::pvm().arg("run").args(opts).arg(&exe).args([threads, mib, rounds]).timeout(Duration::from_secs(120)).run();
            assert!(!out.timed_out && out.status == 0 && out.out() == want, "{opts:?}: expected {want:?}\n{}", out.describe());
        }
    }
}

/// Two parallel fork+exec loops on 2 vCPUs: each vCPU's H thread serves `LOAD_PGTBL` and
/// `RELEASE_PGTBL` at once. A load used to pick the id of a space whose release was still
/// emptying and parking its U (a fresh U then shared that id's PVCSs and the release parked
/// or pooled the wrong one): the guest hung or a child died of SIGSEGV or SIGKILL in 12 of
/// 20 runs of 2 x 1000 rounds on this loaded machine. The deterministic check is the unit test
/// `a_load_during_a_release_gets_another_id` in `host-adapter/src/soft/spaces.rs`; this one
/// exercises the race a bounded number of times under each placement.
///
/// The guest kernel's SMP rewrite once made 2 of 5 runs of 2 x 1000 rounds end with a child
/// killed by SIGSEGV or a hang (session 4); at session 5's tree that was no longer
/// reproducible (0 failures in about 160 runs of 1000 to 3000 rounds on a loaded machine,
/// under the default placement, `--pin none`, one host CPU, `--cpus 4` and 128 MiB of guest
/// memory), so the test runs in CI again (see "Guest kernel: scheduler and locking" in
/// docs/ARCHITECTURE.md).
#[test]
fn parallel_fork_exec_loops_on_two_vcpus_finish() {
    let exe = common::program("fork_exec_pair", Libc::Glibc);
    for opts in [&["--cpus", "2"][..], &["--cpus", "2", "--pin", "none"]] {
        for _ in 0..3 {
            let out = Run::pvm().arg("run").args(opts).arg(&exe).arg("500").timeout(Duration::from_secs(120)).run();
            assert!(!out.timed_out && out.status == 0 && out.out() == "ok 500\n", "{opts:?}\n{}", out.describe());
        }
    }
}
