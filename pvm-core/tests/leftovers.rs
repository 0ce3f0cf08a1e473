//! No host process of the VM remains after `pvm` exits, normally or killed with SIGKILL.
//! VM processes are found as descendants of pvm whose comm or cmdline says `pvm-stub`.
//!
//! Its own test binary: the SIGKILL test leaves orphans for a moment, which other tests' orphan
//! checks must not see.

mod common;

use common::{Libc, Run, descendants, is_vm_process, program, pvm_run_args, still_alive, wait_until};
use std::time::Duration;

/// Starts `pvm run spin 30` and waits until the guest prints "ready" and VM processes exist.
fn start_spinning_vm() -> (common::Spawned, Vec<common::ProcInfo>) {
    common::become_subreaper();
    let exe = program("spin", Libc::Glibc);
    let vm = Run::pvm().args(pvm_run_args(&[], &[], None, &exe, &["30"])).timeout(Duration::from_secs(90)).spawn();
    let ready = wait_until(Duration::from_secs(30), || vm.stdout_so_far().starts_with(b"ready\n"));
    let stubs: Vec<_> = descendants(vm.pid()).into_iter().filter(is_vm_process).collect();
    if !ready || stubs.is_empty() {
        vm.kill_group();
        let out = vm.wait();
        panic!("the guest did not start (ready: {ready}, VM processes: {stubs:?})\n{}", out.describe());
    }
    (vm, stubs)
}

#[test]
fn no_vm_process_survives_sigkill_of_pvm() {
    let (mut vm, stubs) = start_spinning_vm();
    // SIGKILL pvm alone (not its process group): its VM processes must go by themselves.
    vm.child.kill().expect("SIGKILL pvm");
    let gone = wait_until(Duration::from_secs(5), || stubs.iter().all(|p| !still_alive(p)));
    let survivors: Vec<_> = stubs.iter().filter(|p| still_alive(p)).cloned().collect();
    vm.kill_group();
    let _ = vm.wait();
    for p in common::orphaned_vm_processes() {
        common::reap(p.pid);
    }
    assert!(gone, "VM processes still alive 5 s after pvm was killed: {survivors:?}");
}

#[test]
fn no_vm_process_survives_normal_exit() {
    common::become_subreaper();
    let exe = program("spin", Libc::Glibc);
    let vm = Run::pvm().args(pvm_run_args(&[], &[], None, &exe, &["2"])).spawn();
    let mut stubs = Vec::new();
    wait_until(Duration::from_secs(30), || {
        stubs = descendants(vm.pid()).into_iter().filter(is_vm_process).collect();
        vm.stdout_so_far().starts_with(b"ready\n") && !stubs.is_empty()
    });
    let out = vm.wait().finished();
    assert_eq!((out.status, out.out().as_str()), (0, "ready\ndone\n"), "{}", out.describe());
    assert!(!stubs.is_empty(), "no VM processes seen while the guest ran\n{}", out.describe());
    let gone = wait_until(Duration::from_secs(2), || stubs.iter().all(|p| !still_alive(p)));
    assert!(gone, "VM processes outlived pvm: {stubs:?}");
}
