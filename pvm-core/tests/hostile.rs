//! The hostile-guest suite: guest processes that attack pvm's switcher (the stub area mapped
//! into every U process: PVCS pages, mapper pages, stub text, data and stacks), use legacy
//! entry points, or exhaust memory, VMAs and pids. Principle: only the attacking guest process
//! may die; the host, pvm and the other guest processes go on.
//!
//! Each test runs one mode of `tests/programs/hostile_guest.c` under `pvm run`. Its pid 1 forks
//! a victim (1 MiB of magic pattern, round trips on a pipe), then each attack in its own
//! child, makes round trips with the victim while the attacker runs, and prints how each
//! ended. Checked afterwards, always: pvm did not hang and exited 0 with no error line of its
//! own, the victim answered every round trip and found its memory intact, pid 1 finished, and
//! no VM process outlived pvm. Then what each attack may end as.
//!
//! These guest programs are NEVER run natively, except the `legacy` mode, which is compared with
//! the host's own answers.

mod common;

use common::{Libc, Outcome, Run, program, pvm_run_args};
use std::time::Duration;

/// Time limit of one run; every mode takes at most a few seconds when pvm is correct.
const LIMIT: Duration = Duration::from_secs(30);

/// Runs `hostile_guest MODE` under `pvm run OPTS`, then makes the checks every mode shares.
fn hostile(opts: &[&str], mode: &str) -> Outcome {
    common::become_subreaper();
    let exe = program("hostile_guest", Libc::Glibc);
    let out = Run::pvm().args(pvm_run_args(opts, &[], None, &exe, &[mode])).timeout(LIMIT).run();
    let ctx = out.describe();
    assert!(
        !out.timed_out,
        "the VM hung: an attacking guest process froze the VM or could not be killed\n{ctx}"
    );
    assert!(common::no_orphans_soon(), "VM processes outlived pvm: {:?}\n{ctx}", common::orphaned_vm_processes());
    // The guest kernel's warnings (`pvm: guest kernel: ...`, e.g. an OOM kill) are fine; an
    // error of pvm itself is not.
    let errors: Vec<String> =
        out.stderr_lines().into_iter().filter(|l| l.starts_with("pvm: ") && !l.starts_with("pvm: guest kernel:")).collect();
    assert!(errors.is_empty(), "pvm reported errors: {errors:?}\n{ctx}");
    assert_eq!(out.status, 0, "pid 1 (not an attacker) must finish normally\n{ctx}");
    let o = out.out();
    assert!(!o.contains("(wrong)"), "an attack succeeded\n{ctx}");
    assert!(o.lines().any(|l| l.starts_with("victim: ok rounds=")), "the victim was affected\n{ctx}");
    assert!(o.contains("victim: exited 0\n"), "the victim was affected\n{ctx}");
    assert!(o.ends_with("parent: done\n"), "{ctx}");
    out
}

/// How each attack named `name` ended: `exited N`, `signal N` or `killed after timeout`.
fn endings<'a>(out: &'a str, name: &str) -> Vec<&'a str> {
    let prefix = format!("attack {name}: ");
    out.lines().filter_map(|l| l.strip_prefix(prefix.as_str())).collect()
}

/// The single ending of attack `name` (it must have run exactly once).
fn ending<'a>(out: &'a Outcome, o: &'a str, name: &str) -> &'a str {
    let e = endings(o, name);
    assert_eq!(e.len(), 1, "attack {name} must have run once\n{}", out.describe());
    e[0]
}

/// Whether an ending is a death or a normal end (anything but a hang pid 1 had to kill).
fn ended(e: &str) -> bool {
    e.starts_with("exited ") || e.starts_with("signal ")
}

#[test]
fn garbage_over_every_shared_page_only_hurts_the_attacker() {
    let out = hostile(&["--cpus", "2"], "shared");
    let o = out.out();
    for name in ["pvcs-0", "pvcs-1", "pvcs-loop", "mapper-done", "stub-data", "stacks"] {
        let e = ending(&out, &o, name);
        assert!(ended(e), "attack {name}: {e}\n{}", out.describe());
    }
    if ending(&out, &o, "mapper-done") == "exited 0" {
        // Whatever the mapper reported, the memory the attacker touched must be right.
        assert!(o.contains("mapper-done: sum=368640\n"), "{}", out.describe());
    }
    // Read-only pages: the write faults and the attacker dies by SIGSEGV.
    for name in ["write-mapper-cmd", "write-stub-text"] {
        assert_eq!(ending(&out, &o, name), "signal 11", "{name}\n{}", out.describe());
    }
}

#[test]
fn forged_u_tid_does_not_stop_sleeps() {
    // H must not take U's thread id from guest-writable memory: the attacker's sleeps end
    // (timer interrupts still reach the right thread). No time is asserted; a lost interrupt
    // shows as a hang.
    let out = hostile(&["--cpus", "1"], "utid");
    let o = out.out();
    assert_eq!(ending(&out, &o, "utid"), "exited 0", "{}", out.describe());
    assert!(o.contains("utid: slept 10 times\n"), "{}", out.describe());
}

#[test]
fn forged_u_tid_with_two_vcpus() {
    let out = hostile(&["--cpus", "2"], "utid");
    let o = out.out();
    assert_eq!(ending(&out, &o, "utid"), "exited 0", "{}", out.describe());
}

#[test]
fn jumps_to_every_stub_page_kill_only_the_jumper() {
    let out = hostile(&["--cpus", "1"], "jump");
    let o = out.out();
    let jumps: Vec<&str> = o.lines().filter(|l| l.starts_with("attack jump-page-")).collect();
    assert!(!jumps.is_empty(), "no stub page was found to jump to\n{}", out.describe());
    for j in &jumps {
        let e = j.split_once(": ").map_or("", |(_, e)| e);
        assert!(
            e.starts_with("signal ") || e == "killed after timeout",
            "a jump into the stub image must end the jumper: {j}\n{}",
            out.describe()
        );
    }
}

#[test]
fn every_futex_op_from_stub_text_only_hurts_the_attacker() {
    // One vCPU: K's vCPU thread then waits on exactly the PVCS state word the attacker aims at
    // (FUTEX_CMP_REQUEUE could move that waiter away and freeze the VM).
    let out = hostile(&["--cpus", "1"], "futex");
    let o = out.out();
    if o.contains("futex: syscall in the stub text not found") {
        return;
    }
    for private in ["", "-private"] {
        for op in 0..=13 {
            let name = format!("futex-{op}{private}");
            let e = ending(&out, &o, &name);
            assert!(ended(e) || e == "killed after timeout", "{name}: {e}\n{}", out.describe());
        }
    }
}

/// The forged `rt_sigreturn`: the attacker blocks SIGUSR1 (pvm's interrupt signal) and spins.
/// The victim must still get CPU time and the attacker's `kill -9` from pid 1 must complete.
fn forged_sigreturn(cpus: &str) {
    let out = hostile(&["--cpus", cpus], "sigreturn");
    let o = out.out();
    if o.contains("sigreturn: syscall in the stub text not found") {
        return;
    }
    let e = ending(&out, &o, "sigreturn");
    assert!(e.starts_with("signal "), "the spinning attacker must have been killed: {e}\n{}", out.describe());
}

#[test]
fn forged_sigreturn_one_vcpu() {
    forged_sigreturn("1");
}

#[test]
fn forged_sigreturn_two_vcpus() {
    forged_sigreturn("2");
}

#[test]
fn forged_mapper_completion_leaves_unmapped_memory_unreadable() {
    // Two vCPUs, threads not pinned to one host CPU: the spinner thread forges completions
    // while the main thread's munmaps wait for the mapper; the victim churns its memory.
    let out = hostile(&["--cpus", "2", "--pin", "none"], "completion");
    let o = out.out();
    let e = endings(&o, "completion");
    assert_eq!(e.len(), 3, "{}", out.describe());
    for (i, e) in e.iter().enumerate() {
        assert_eq!(
            *e,
            "exited 0",
            "attack {i}: memory munmapped must fault right away and no other process's memory may \
             show (see its `completion:` line)\n{}",
            out.describe()
        );
    }
    for l in o.lines().filter(|l| l.starts_with("completion: mmap")) {
        for bad in ["early-readable=", " readable=", "victim-magic=", "own-magic="] {
            let v = l.split(bad).nth(1).and_then(|r| r.split_whitespace().next()).unwrap_or("?");
            assert_eq!(v, "0", "{bad} in `{l}`\n{}", out.describe());
        }
    }
}

/// Attack `name`'s result in the `legacy` mode: the ending and the `ret=` it printed.
fn legacy_result(o: &str, name: &str) -> (String, Option<i64>) {
    let e = endings(o, name).first().map_or_else(|| "missing".to_string(), |e| (*e).to_string());
    let ret = o
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ret=")))
        .and_then(|v| v.trim().parse().ok());
    (e, ret)
}

#[test]
fn int80_sysenter_and_vsyscall_get_linux_like_answers() {
    let exe = program("hostile_guest", Libc::Glibc);
    let native = Run::native(&exe).arg("legacy").run().finished();
    let out = hostile(&["--cpus", "1"], "legacy");
    let (n, o) = (native.out(), out.out());
    let ctx = format!("NATIVE:\n{}\nPVM:\n{}", native.describe(), out.describe());
    for name in ["int80", "sysenter", "vsyscall"] {
        let (ne, nret) = legacy_result(&n, name);
        let (pe, pret) = legacy_result(&o, name);
        // Linux-like: a SIGSEGV (as on a kernel without that entry point), an ENOSYS answer,
        // or what this host's Linux does (a successful call: int 0x80's getpid returns a pid,
        // which differs between the two, so only its sign is compared).
        let segv = pe == "signal 11";
        let enosys = pe == "exited 0" && pret == Some(-38);
        let like_native = pe == ne && pret.map(i64::signum) == nret.map(i64::signum);
        assert!(segv || enosys || like_native, "{name}: pvm `{pe}` ret {pret:?}, native `{ne}` ret {nret:?}\n{ctx}");
    }
}

#[test]
fn memory_exhaustion_kills_or_fails_only_the_attacker() {
    let out = hostile(&["--memory", "256M"], "memory");
    let o = out.out();
    let e = ending(&out, &o, "memory");
    assert!(
        e == "signal 9" || (e == "exited 0" && o.contains("memory: mmap failed after")),
        "the attacker must be OOM-killed (SIGKILL) or get ENOMEM: {e}\n{}",
        out.describe()
    );
}

#[test]
fn vma_exhaustion_only_hurts_the_attacker() {
    let out = hostile(&[], "vmas");
    let o = out.out();
    let e = ending(&out, &o, "vmas");
    assert!(ended(e), "vmas: {e}\n{}", out.describe());
    if e == "exited 0" {
        assert!(o.contains("vmas: 100000 pages"), "{}", out.describe());
    }
}

/// The bomb ends killed, or with fork failing with one of `errnos`, or (`may_run_out`, on a
/// loaded machine) with its 2 s of forking over before any failure.
fn fork_bomb(opts: &[&str], errnos: &[&str], may_run_out: bool) {
    let out = hostile(opts, "forkbomb");
    let o = out.out();
    let e = ending(&out, &o, "forkbomb");
    let failed_with = o.lines().find_map(|l| l.strip_prefix("forkbomb: root forked ")).unwrap_or("");
    let stopped = errnos.iter().any(|x| failed_with.ends_with(&format!("fork failed: {x}")))
        || (may_run_out && failed_with.ends_with("no failure in 2 s"));
    assert!(
        e == "signal 9" || (e == "exited 0" && stopped),
        "the bomb must be stopped with {errnos:?} or killed: {e} / {failed_with}\n{}",
        out.describe()
    );
}

#[test]
fn fork_bomb_without_pids_limit() {
    // Two vCPUs: this case found H's space-id reuse during RELEASE_PGTBL (both vCPUs handed
    // off to ids no U served any more); see docs/ARCHITECTURE.md.
    fork_bomb(&["--memory", "256M", "--cpus", "2"], &["EAGAIN", "ENOMEM"], true);
}

#[test]
fn fork_bomb_with_pids_limit() {
    fork_bomb(&["--pids-limit", "40"], &["EAGAIN"], false);
}

/// One call that made the guest kernel panic, hang or lose pid 1 under the fuzzer
/// (`hostile_guest kernel CASE`): the kernel, pid 1 and the victim must survive it; the caller
/// may get an error or die.
fn kernel_case(case: &str) {
    common::become_subreaper();
    let exe = program("hostile_guest", Libc::Glibc);
    let out = Run::pvm()
        .args(pvm_run_args(&["--memory", "256M"], &[], None, &exe, &["kernel", case]))
        .timeout(LIMIT)
        .run();
    let ctx = out.describe();
    assert!(!out.timed_out, "{case}: the guest kernel hung\n{ctx}");
    assert!(common::no_orphans_soon(), "VM processes outlived pvm\n{ctx}");
    assert!(!out.err().contains("kernel panic"), "{case}: the guest kernel panicked\n{ctx}");
    assert_eq!(out.status, 0, "{case}: pid 1 must survive\n{ctx}");
    let o = out.out();
    let e = ending(&out, &o, case);
    assert!(ended(e), "{case}: {e}\n{ctx}");
    assert!(o.contains("victim: exited 0\n") && o.ends_with("parent: done\n"), "{case}\n{ctx}");
}

/// `mincore(addr, len)` with `addr + len` past 2^64 (Linux: ENOMEM).
#[test]
fn kernel_survives_mincore_wrapping() {
    kernel_case("mincore-wrap");
}

/// A 2 GiB private mmap of a 1-byte file (the kernel copies `len` bytes into its heap).
#[test]
fn kernel_survives_huge_file_mmap() {
    kernel_case("file-mmap-huge");
}

/// sendfile of 2 GiB from /dev/zero into a /tmp file with 256 MiB of guest memory (files live
/// in the kernel heap): ENOSPC, a short write or an OOM kill, never a panic.
#[test]
fn kernel_survives_filling_tmp() {
    kernel_case("tmpfs-fill");
}

/// write(2) of 4 GiB of untouched read-only anonymous memory to /dev/null.
#[test]
fn kernel_survives_writing_untouched_memory_to_dev_null() {
    kernel_case("null-write-untouched");
}

/// MAP_POPULATE of 1 TiB of PROT_NONE memory (the kernel populated page by page, for hours).
#[test]
fn kernel_survives_huge_populate() {
    kernel_case("populate-huge");
}

/// writev whose vector lengths add up past 2^64.
#[test]
fn kernel_survives_wrapping_iovecs() {
    kernel_case("writev-wrap");
}

/// sendfile /dev/zero to /dev/null of 2^46 bytes (Linux clamps to MAX_RW_COUNT).
#[test]
fn kernel_survives_huge_sendfile() {
    kernel_case("sendfile-huge");
}

/// tkill(1, SIGKILL) and tgkill(0, 1, SIGKILL) from a guest process: pid 1, like a container's
/// init, ignores them (Linux: SIGNAL_UNKILLABLE for senders inside its namespace).
#[test]
fn pid_1_survives_tkill() {
    kernel_case("tkill-init");
}

/// A process made by clone(SIGKILL) outlives its parent: its exit signal must be reset to
/// SIGCHLD when pid 1 adopts it, or its exit kills pid 1.
#[test]
fn pid_1_survives_an_orphan_with_exit_signal_sigkill() {
    kernel_case("orphan-exit-signal");
}
