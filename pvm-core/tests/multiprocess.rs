//! Several guest processes at once: a CPU-bound process does not starve another, a fork bomb
//! stops at `--pids-limit`, a guest allocating past `--memory` gets ENOMEM or is OOM-killed and
//! pvm says so, and loops of 1000 fork/exit/wait, fork/exec/wait and `sh -c true` complete. After
//! every run no VM process is left.
//!
//! The guest's root filesystem is the shell-script tests' tree (tests/scripts/tools/make-tree.sh)
//! plus the C programs of tests/scripts/programs at /prog (glibc, static). The #[ignore]d
//! `measure_process_operations` prints per-process times under pvm and natively:
//! `cargo test --release -p pvm-core --test multiprocess -- --ignored --nocapture`.

mod common;

use common::{Libc, Link, Outcome, Run};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

/// tests/scripts.
/// The programs copied to /prog.
const PROGRAMS: [&str; 4] = ["spin_pair", "fork_bomb", "oom", "procloop"];

/// The root filesystem tree (built once, under cargo's target tmp dir).
fn tree() -> &'static Path {
    static TREE: OnceLock<PathBuf> = OnceLock::new();
    TREE.get_or_init(|| {
        let root = common::make_tree("multiprocess-tree");
        std::fs::create_dir_all(root.join("prog")).expect("mkdir /prog");
        for p in PROGRAMS {
            let exe = common::build_source(&common::scripts_dir().join(format!("programs/{p}.c")), Libc::Glibc, Link::Static);
            common::copy_executable(&exe, &root.join("prog").join(p));
        }
        root
    })
}

/// Runs `pvm run OPTS --rootfs TREE -- ARGV` with `timeout`, then checks that no VM process
/// outlived pvm.
fn pvm(opts: &[&str], argv: &[&str], timeout: Duration) -> Outcome {
    common::become_subreaper();
    let out = Run::pvm()
        .arg("run")
        .args(opts)
        .arg("--rootfs")
        .arg(tree())
        .arg("--")
        .args(argv)
        .timeout(timeout)
        .run();
    assert!(
        common::no_orphans_soon(),
        "VM processes outlived pvm: {:?}\n{}",
        common::orphaned_vm_processes(),
        out.describe()
    );
    out
}

#[test]
fn cpu_bound_shell_loop_does_not_starve_the_shell() {
    let out = pvm(&[], &["/bin/sh", "-c", "while :; do :; done & sleep 0.2; echo alive; kill $!"], Duration::from_secs(30));
    assert!(
        !out.timed_out && out.status == 0 && out.out() == "alive\n",
        "a background `while :; do :; done` starved the shell (expected `alive` and status 0)\n{}",
        out.describe()
    );
    assert!(out.elapsed < Duration::from_secs(10), "took {:?} for a 0.2 s sleep\n{}", out.elapsed, out.describe());
}

#[test]
fn cpu_bound_child_does_not_starve_its_parent() {
    let native = Run::native(tree().join("prog/spin_pair")).run().finished();
    let out = pvm(&[], &["/prog/spin_pair"], Duration::from_secs(30));
    let expected = "alive\nchild killed by signal 9\n";
    assert_eq!(native.out(), expected, "native run\n{}", native.describe());
    assert!(
        !out.timed_out && out.status == 0 && out.out() == expected,
        "a spinning child starved its sleeping parent (expected {expected:?}, status 0)\n{}",
        out.describe()
    );
}

#[test]
fn fork_bomb_stops_at_the_pids_limit() {
    let out = pvm(&["--pids-limit", "50"], &["/prog/fork_bomb", "reap"], Duration::from_secs(60));
    // 50 processes at most: the bomb itself and 49 children.
    let expected = "forked 49 children, then fork failed: EAGAIN (Resource temporarily unavailable)\n\
                    reaped 49 children killed by SIGKILL\n";
    assert!(
        !out.timed_out && out.status == 0 && out.out() == expected,
        "fork bomb under --pids-limit 50: expected {expected:?} and status 0\n{}",
        out.describe()
    );
}

#[test]
fn fork_bomb_children_end_with_the_guest() {
    // The bomb exits at once (status 3) and leaves 49 children pausing: pvm must end them all
    // and report the first process's status.
    let out = pvm(&["--pids-limit", "50"], &["/prog/fork_bomb", "orphan"], Duration::from_secs(60));
    let expected = "forked 49 children, then fork failed: EAGAIN (Resource temporarily unavailable)\n";
    assert!(
        !out.timed_out && out.status == 3 && out.out() == expected,
        "fork bomb leaving its children: expected {expected:?} and status 3\n{}",
        out.describe()
    );
}

#[test]
fn memory_past_the_limit_is_enomem_or_oom_kill() {
    let out = pvm(&["--memory", "64M"], &["/prog/oom", "200"], Duration::from_secs(60));
    let enomem = out.status == 3 && out.out().starts_with("malloc failed after ");
    let killed = out.status == 137 && out.stdout.is_empty();
    assert!(
        !out.timed_out && (enomem || killed),
        "touching 200 MiB with --memory 64M: expected ENOMEM from malloc (status 3) or an OOM kill \
         (status 137)\n{}",
        out.describe()
    );
    assert!(
        out.err().to_lowercase().contains("out of memory"),
        "pvm must say `out of memory` on stderr\n{}",
        out.describe()
    );
    // The first process is the only one holding memory: the OOM killer takes it, and the
    // guest kernel itself never fails (memory_limits.rs has the cases with several processes).
    assert!(
        !out.err().contains("panic") && !out.err().contains("guest kernel failed"),
        "the guest kernel failed\n{}",
        out.describe()
    );
}

/// `procloop MODE 1000` in the guest prints "MODE 1000 ok".
fn process_loop(mode: &str) {
    let out = pvm(&[], &["/prog/procloop", mode, "1000"], Duration::from_secs(120));
    assert!(
        !out.timed_out && out.status == 0 && out.out() == format!("{mode} 1000 ok\n"),
        "1000 x {mode} + wait did not complete\n{}",
        out.describe()
    );
}

#[test]
fn fork_exit_wait_1000() {
    process_loop("fork");
}

#[test]
fn fork_exec_wait_1000() {
    process_loop("exec");
}

#[test]
fn sh_c_true_1000() {
    process_loop("sh");
}

/// The closing-note measurement: microseconds per process for each loop, under pvm and
/// natively (chroot of the same tree, `taskset -c 0`), in the same run.
#[test]
#[ignore = "a measurement, not a check; run with --ignored --nocapture"]
fn measure_process_operations() {
    measure("1000");
}

/// The same on `--backend kvm` (fewer iterations: under software KVM a fork costs about
/// 0.2 s of emulated ring 0).
#[test]
#[ignore = "a measurement, not a check; run with --ignored --nocapture"]
fn measure_process_operations_kvm() {
    common::on_kvm("measure_process_operations_kvm", || measure("20"));
}

fn measure(n: &str) {
    let root = tree();
    println!("{:<6} {:>14} {:>14}  commands", "mode", "pvm us/proc", "native us/proc");
    for mode in ["fork", "exec", "sh"] {
        let guest = pvm(&[], &["/prog/procloop", mode, n, "time"], Duration::from_secs(300)).finished();
        let Some(native) = common::native_in_tree("measure", root, "", &["/prog/procloop", mode, n, "time"]) else {
            return;
        };
        let native = native.timeout(Duration::from_secs(300)).run().finished();
        let per = |o: &Outcome| {
            o.out()
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{mode}: ")).and_then(|r| r.split_whitespace().next()).map(str::to_string))
                .unwrap_or_else(|| panic!("no time printed\n{}", o.describe()))
        };
        println!(
            "{mode:<6} {:>14} {:>14}  {} | {}",
            per(&guest),
            per(&native),
            guest.command,
            native.command
        );
    }
}
