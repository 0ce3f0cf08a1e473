//! pvm's host processes live no longer than pvm: when `pvm run` returns, every sandbox process
//! it started (K, every U, pooled or not) has been reaped, whether the guest exited, crashed,
//! its kernel process died, or pvm itself got SIGTERM or SIGINT (then it ends the VM, reaps,
//! and dies of the same signal). After a SIGKILL of pvm (which it cannot handle) its VM
//! processes still go by themselves (`PR_SET_PDEATHSIG`).
//!
//! How "reaped when pvm returns" is checked, with no grace period: this test process is a
//! child subreaper, so anything pvm leaves behind (alive, or a zombie pvm did not reap) is
//! re-parented to it while pvm exits, before pvm becomes a zombie. The test waits for pvm's
//! exit with `waitid(WNOWAIT)` (pvm stays an unreaped zombie) and at that instant lists its own
//! children: pvm must be the only one.
//!
//! Its own test binary, and its tests run one at a time: a leftover of one test (the SIGKILL
//! test leaves orphans for a moment) must not show up in another's check.

mod common;

use common::{Libc, ProcInfo, Run, Spawned, descendants, is_vm_process, program, pvm_run_args, still_alive, wait_until};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// Held by every test of this file for its whole run (see the module docs).
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The busybox tree (make-tree.sh) for the multi-process guest.
fn tree() -> &'static PathBuf {
    static TREE: OnceLock<PathBuf> = OnceLock::new();
    TREE.get_or_init(|| common::make_tree("leftovers-tree"))
}

/// A guest that keeps several processes (so several U processes, some of them pooled) alive
/// and exits with `status` once they are done.
fn busy_guest_args(status: i32) -> Vec<std::ffi::OsString> {
    let script = format!("for i in 1 2 3 4; do (echo child $i; sleep 0.2) & done; sh -c 'true'; wait; exit {status}");
    let mut args: Vec<std::ffi::OsString> = vec!["run".into(), "--cpus".into(), "2".into(), "--rootfs".into()];
    args.push(tree().clone().into());
    for a in ["--env", "PATH=/bin", "--", "/bin/sh", "-c", &script] {
        args.push(a.into());
    }
    args
}

/// Waits (up to `limit`) until `pid`, our child, has exited, without reaping it: it stays a
/// zombie, so its pid cannot be reused while the caller looks at what it left behind.
fn wait_exit_keep_zombie(pid: u32, limit: Duration) -> bool {
    let id: libc::id_t = pid;
    let end = Instant::now() + limit;
    loop {
        // SAFETY: a zeroed siginfo_t is a valid output buffer for waitid.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid on our own child with WNOWAIT writes only `info` and reaps nothing.
        let r = unsafe { libc::waitid(libc::P_PID, id, &mut info, libc::WEXITED | libc::WNOHANG | libc::WNOWAIT) };
        // SAFETY: waitid returned 0 and filled `info`; si_pid is 0 while the child runs.
        if r == 0 && unsafe { info.si_pid() } != 0 {
            return true;
        }
        if r != 0 || Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Our children other than `pvm` at this instant, zombies included: with us as subreaper,
/// exactly what an exited pvm left unreaped.
fn left_behind(pvm: u32) -> Vec<ProcInfo> {
    let me = std::process::id();
    common::all_processes().into_iter().filter(|p| p.ppid == me && p.pid != pvm).collect()
}

/// Waits for `vm` to exit and checks, at that instant, that it left no process behind.
/// Returns its outcome; leftovers are killed and reaped before the assertion fails.
fn wait_and_check(vm: Spawned, what: &str) -> common::Outcome {
    let pid = vm.pid();
    let exited = wait_exit_keep_zombie(pid, Duration::from_secs(120));
    let left = left_behind(pid);
    for p in &left {
        if let Ok(p) = libc::pid_t::try_from(p.pid) {
            // SAFETY: kill(2) of a process that is our child (re-parented to us, not reaped, so
            // the pid is still that process); no memory is involved.
            unsafe { libc::kill(p, libc::SIGKILL) };
        }
    }
    for p in &left {
        let Ok(p) = libc::pid_t::try_from(p.pid) else { continue };
        // SAFETY: waitpid on our own child; the status is not needed (null pointer allowed).
        unsafe { libc::waitpid(p, std::ptr::null_mut(), 0) };
    }
    let out = vm.wait();
    assert!(exited, "{what}: pvm did not exit in time\n{}", out.describe());
    assert!(left.is_empty(), "{what}: when pvm returned, these processes it started were not reaped: {left:?}\n{}", out.describe());
    out
}

/// Starts `pvm run spin 30` and waits until the guest prints "ready" and VM processes exist.
fn start_spinning_vm() -> (Spawned, Vec<ProcInfo>) {
    common::become_subreaper();
    let exe = program("spin", Libc::Glibc);
    let vm = Run::pvm().args(pvm_run_args(&["--cpus", "2"], &[], None, &exe, &["30"])).timeout(Duration::from_secs(90)).spawn();
    let ready = wait_until(Duration::from_secs(30), || vm.stdout_so_far().starts_with(b"ready\n"));
    let stubs: Vec<_> = descendants(vm.pid()).into_iter().filter(is_vm_process).collect();
    if !ready || stubs.is_empty() {
        vm.kill_group();
        let out = vm.wait();
        panic!("the guest did not start (ready: {ready}, VM processes: {stubs:?})\n{}", out.describe());
    }
    (vm, stubs)
}

/// Sends `sig` to pvm alone (not its process group).
fn signal_pvm(vm: &Spawned, sig: i32) {
    let pid = libc::pid_t::try_from(vm.pid()).expect("pids fit in pid_t");
    // SAFETY: kill(2) of our own child, which is not reaped yet (its pid is still its own).
    let r = unsafe { libc::kill(pid, sig) };
    assert_eq!(r, 0, "kill({pid}, {sig}): {}", std::io::Error::last_os_error());
}

#[test]
fn no_vm_process_survives_sigkill_of_pvm() {
    let _serial = serial();
    let (mut vm, stubs) = start_spinning_vm();
    // SIGKILL pvm alone (not its process group): its VM processes must go by themselves.
    vm.child.kill().expect("SIGKILL pvm");
    let gone = wait_until(Duration::from_secs(5), || stubs.iter().all(|p| !still_alive(p)));
    let survivors: Vec<_> = stubs.iter().filter(|p| still_alive(p)).cloned().collect();
    vm.kill_group();
    let _ = vm.wait();
    // Reap the orphans (zombies re-parented to us) so the next test's check starts clean.
    wait_until(Duration::from_secs(5), || {
        common::orphaned_vm_processes();
        common::all_processes().iter().all(|p| p.ppid != std::process::id() || !is_vm_process(p))
    });
    assert!(gone, "VM processes still alive 5 s after pvm was killed: {survivors:?}");
}

#[test]
fn everything_reaped_when_the_guest_exits() {
    let _serial = serial();
    common::become_subreaper();
    let exe = program("spin", Libc::Glibc);
    let vm = Run::pvm().args(pvm_run_args(&[], &[], None, &exe, &["0.2"])).spawn();
    let out = wait_and_check(vm, "a single-process guest that exits 0");
    assert_eq!((out.status, out.out().as_str()), (0, "ready\ndone\n"), "{}", out.describe());

    let vm = Run::pvm().args(busy_guest_args(3)).spawn();
    let out = wait_and_check(vm, "a guest with several processes");
    assert_eq!(out.status, 3, "{}", out.describe());
    assert_eq!(out.out().lines().filter(|l| l.starts_with("child ")).count(), 4, "{}", out.describe());
}

#[test]
fn everything_reaped_when_the_guest_crashes() {
    let _serial = serial();
    common::become_subreaper();
    let exe = program("null_deref", Libc::Glibc);
    let vm = Run::pvm().args(pvm_run_args(&[], &[], None, &exe, &[])).spawn();
    let out = wait_and_check(vm, "a guest program that dereferences NULL");
    assert_eq!(out.status, 139, "{}", out.describe());
}

#[test]
fn everything_reaped_when_the_guest_kernel_process_dies() {
    let _serial = serial();
    let (vm, stubs) = start_spinning_vm();
    let Some(k) = stubs.iter().find(|p| p.cmdline.contains("pvm-stub-k")) else {
        panic!("no K process (pvm-stub-k) among {stubs:?}");
    };
    let pid = libc::pid_t::try_from(k.pid).expect("pids fit in pid_t");
    // SAFETY: kill(2) of pvm's K process, alive a moment ago (pvm reaps it only after it dies,
    // so its pid cannot have been reused before this signal lands).
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let out = wait_and_check(vm, "the guest kernel process killed");
    assert_eq!(out.status, 125, "{}", out.describe());
    assert!(out.err().contains("guest kernel process ended"), "{}", out.describe());
}

#[test]
fn everything_reaped_when_pvm_gets_sigterm_or_sigint() {
    let _serial = serial();
    for (sig, status) in [(libc::SIGTERM, 143), (libc::SIGINT, 130), (libc::SIGHUP, 129)] {
        let (vm, _) = start_spinning_vm();
        signal_pvm(&vm, sig);
        let out = wait_and_check(vm, &format!("pvm sent signal {sig}"));
        assert_eq!(out.status, status, "pvm must end by the signal it got ({sig})\n{}", out.describe());
    }
    // A multi-process guest, signalled while its processes run.
    common::become_subreaper();
    let vm = Run::pvm().args(busy_guest_args(0)).spawn();
    let started = wait_until(Duration::from_secs(30), || vm.stdout_so_far().starts_with(b"child"));
    signal_pvm(&vm, libc::SIGTERM);
    let out = wait_and_check(vm, "pvm sent SIGTERM during a multi-process guest");
    assert!(started, "the guest never printed\n{}", out.describe());
    assert_eq!(out.status, 143, "{}", out.describe());
}
