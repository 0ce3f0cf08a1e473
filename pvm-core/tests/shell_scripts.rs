//! Busybox `sh` scripts (tests/scripts/*.sh, one behaviour each) give the same stdout and exit
//! status under `pvm run --rootfs TREE /bin/sh /scripts/NAME.sh` as natively in a chroot of the
//! same tree; the guest's writes reach its own copy of the tree (hostfs serves `--rootfs` in
//! place, writable) and never the shared tree, no VM process outlives pvm, and the host VMA
//! peak pvm reports (`--stats`) stays under [`VMA_BOUND`].
//!
//! TREE is built once per test binary by tests/scripts/tools/make-tree.sh (busybox with every
//! applet linked in /bin, the scripts in /scripts, generated input in /data, /tmp 1777). The
//! native run goes through tests/scripts/tools/run-native.sh: a throwaway copy of TREE, chroot,
//! `env -i` with the same variables as the guest's `--env`, /dev nodes and /proc mounted in a
//! private mount namespace, under `taskset -c 0` (the guest has 1 vCPU). That needs privileges:
//! as root it runs directly, otherwise under `sudo -n` or in an unprivileged user namespace;
//! with neither, the native comparison is skipped with a printed reason and only the guest-side
//! checks run (`common::native_privilege`). To rerun one script by hand:
//!
//! Every script runs on both backends: `soft::NAME` and `kvm::NAME` (skipped without
//! `/dev/kvm`; add `--backend kvm` to the `pvm run` line below to rerun one by hand).
//!
//! ```text
//! sh pvm-core/tests/scripts/tools/make-tree.sh /tmp/T
//! pvm run --stats --rootfs /tmp/T --env HOME=/root --env PATH=/bin /bin/sh /scripts/NAME.sh
//! taskset -c 0 sh pvm-core/tests/scripts/tools/run-native.sh /tmp/T 'HOME=/root PATH=/bin' /bin/sh /scripts/NAME.sh
//! ```

mod common;

use common::{Outcome, Run, first_difference};
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

/// The guest's (and the native run's) whole environment.
const GUEST_ENV: [(&str, &str); 2] = [("HOME", "/root"), ("PATH", "/bin")];
/// Every script's `pvm run --stats` must report fewer host VMAs (peak) than this. A busybox
/// process needs a few dozen; the bound leaves room for some live at once, not for VMAs that
/// pile up with every process the guest ever ran.
const VMA_BOUND: u64 = 2000;
/// Time limit of one run of an ordinary script (natively they take well under a second).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(60);
/// Time limit of the scripts that fork 1000 times.
const HEAVY_TIMEOUT: Duration = Duration::from_secs(120);

/// tests/scripts.
/// The root filesystem tree and its digest when it was built.
struct Tree {
    /// The tree's directory (under cargo's target tmp dir, see `common::scratch_dir`).
    root: PathBuf,
    /// Its digest right after make-tree.sh.
    digest: BTreeMap<PathBuf, u64>,
}

/// The tree, built on first use by make-tree.sh.
fn tree() -> &'static Tree {
    static TREE: OnceLock<Tree> = OnceLock::new();
    TREE.get_or_init(|| {
        let root = common::make_tree("shell-scripts-tree");
        let digest = digest(&root);
        Tree { root, digest }
    })
}

/// Every entry under `root` (path relative to it) with a hash of its type, mode, owner, size,
/// modification time, symlink target and content.
fn digest(root: &Path) -> BTreeMap<PathBuf, u64> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let md = std::fs::symlink_metadata(&p).unwrap_or_else(|e| panic!("stat {}: {e}", p.display()));
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (md.mode(), md.uid(), md.gid(), md.size(), md.mtime(), md.mtime_nsec()).hash(&mut h);
        if md.file_type().is_symlink() {
            std::fs::read_link(&p).expect("readlink").hash(&mut h);
        } else if md.is_file() {
            std::fs::read(&p).expect("reading a tree file").hash(&mut h);
        } else if md.is_dir() {
            for e in std::fs::read_dir(&p).expect("readdir") {
                stack.push(e.expect("dir entry").path());
            }
        }
        let rel = p.strip_prefix(root).expect("under the root").to_path_buf();
        out.insert(rel, h.finish());
    }
    out
}

/// What differs between two digests, as short lines.
fn digest_changes(before: &BTreeMap<PathBuf, u64>, after: &BTreeMap<PathBuf, u64>) -> Vec<String> {
    let mut v = Vec::new();
    for (p, h) in before {
        match after.get(p) {
            None => v.push(format!("removed: /{}", p.display())),
            Some(h2) if h2 != h => v.push(format!("changed: /{}", p.display())),
            Some(_) => {}
        }
    }
    for p in after.keys().filter(|p| !before.contains_key(*p)) {
        v.push(format!("added: /{}", p.display()));
    }
    v
}

/// The `host VMAs (peak)` figure of a `--stats` table on stderr.
fn vmas_peak(stderr: &str) -> Option<u64> {
    stderr
        .lines()
        .find(|l| l.trim_start().starts_with("host VMAs (peak)"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|n| n.parse().ok())
}

/// The first differing line of two outputs, numbered from 1.
fn first_line_difference(native: &[u8], guest: &[u8]) -> String {
    let n = String::from_utf8_lossy(native);
    let g = String::from_utf8_lossy(guest);
    let (mut a, mut b) = (n.lines(), g.lines());
    for i in 1.. {
        match (a.next(), b.next()) {
            (None, None) => break,
            (x, y) if x == y => {}
            (x, y) => return format!("line {i}: native {x:?}, pvm {y:?}"),
        }
    }
    "same lines, different line endings".to_string()
}

/// Runs /scripts/NAME.sh natively and under pvm and checks every property this file is about;
/// panics with all failures of the script at once, each naming the aspect.
fn script(name: &str, timeout: Duration) {
    common::become_subreaper();
    let tree = tree();
    let root = &tree.root;
    let script = format!("/scripts/{name}.sh");
    let envs: Vec<String> = GUEST_ENV.iter().map(|(k, v)| format!("{k}={v}")).collect();
    // The native reference run needs privileges (see common::native_privilege); without them
    // only the guest-side checks run.
    let native = common::native_in_tree(name, root, &envs.join(" "), &["/bin/sh", &script])
        .map(|run| run.timeout(timeout).run());
    if let Some(native) = &native {
        assert!(!native.timed_out, "{name}: the NATIVE run timed out (the script is broken)\n{}", native.describe());
    }
    // hostfs serves --rootfs in place and writable: like the native run (run-native.sh), the
    // guest gets a throwaway copy of the tree, so one script's writes never meet another's.
    let scratch = common::scratch_dir(&format!("shell-{name}"));
    let copy = scratch.join("root");
    let cp = Run::native("/bin/cp").args(["-a"]).arg(root).arg(&copy).run().finished();
    assert_eq!(cp.status, 0, "copying the tree\n{}", cp.describe());
    let mut guest = Run::pvm().args(["run", "--stats", "--cpus", "1", "--rootfs"]).arg(&copy);
    for e in &envs {
        guest = guest.args(["--env", e]);
    }
    let guest = guest.args(["--", "/bin/sh", &script]).timeout(timeout).run();
    let native_time = native.as_ref().map_or_else(|| "skipped".to_string(), |n| format!("{:.2?}", n.elapsed));
    println!("{name} ({:?} backend): pvm {:.2?}, native {native_time}", common::backend(), guest.elapsed);
    let mut failures = check(native.as_ref(), &guest);
    let changes = digest_changes(&tree.digest, &digest(root));
    if !changes.is_empty() {
        failures.push(format!("the shared tree changed (the guest ran on a copy): {changes:?}"));
    }
    if name == "rootfs_writes" {
        // The writes persist on the host, in the guest's copy.
        let new = std::fs::read_to_string(copy.join("data/new.txt")).unwrap_or_default();
        if new != "new\n" || copy.join("bin/cal").exists() || !copy.join("etc/newdir/conf").exists() {
            failures.push(format!("the guest's writes did not reach its tree on the host (data/new.txt: {new:?})"));
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    if !common::no_orphans_soon() {
        failures.push(format!("VM processes outlived pvm: {:?}", common::orphaned_vm_processes()));
    }
    assert!(
        failures.is_empty(),
        "script {script} (tests/scripts/{name}.sh) under pvm:\n- {}\n\nNATIVE:\n{}\nPVM:\n{}\nrerun: see the top of tests/shell_scripts.rs",
        failures.join("\n- "),
        native.as_ref().map_or_else(|| "(skipped)".to_string(), Outcome::describe),
        guest.describe()
    );
}

/// Compares a script's native and pvm runs: timeout, status, stdout, VMA peak. Without a
/// native run (no privileges for it) only the guest's own checks remain.
fn check(native: Option<&Outcome>, guest: &Outcome) -> Vec<String> {
    let mut failures = Vec::new();
    if guest.timed_out {
        let native_time = native.map_or_else(|| "skipped".to_string(), |n| format!("{:.2?}", n.elapsed));
        failures.push(format!("TIMED OUT after {:.1?} (native: {native_time})", guest.elapsed));
    }
    if let Some(native) = native {
        if guest.status != native.status {
            failures.push(format!("exit status: native {}, pvm {}", native.status, guest.status));
        }
        if guest.stdout != native.stdout {
            failures.push(format!(
                "stdout differs: {}; {}",
                first_line_difference(&native.stdout, &guest.stdout),
                first_difference(&native.stdout, &guest.stdout)
            ));
        }
    }
    match vmas_peak(&guest.err()) {
        Some(n) if n >= VMA_BOUND => {
            failures.push(format!("`pvm run --stats` reports {n} host VMAs (peak), the bound is {VMA_BOUND}"));
        }
        Some(_) => {}
        None if guest.timed_out => {}
        None => failures.push("no `host VMAs (peak)` line in the --stats table on stderr".to_string()),
    }
    failures
}

/// Two #[test]s per script, named after it: `soft::NAME` on the soft backend, `kvm::NAME` on
/// `--backend kvm` (skipped where KVM cannot be used). `slow: "why"` marks a script that takes
/// many minutes on software KVM (see `common::on_kvm_unless_slow`).
macro_rules! scripts {
    ($($name:ident $(: $timeout:expr)? $(, slow: $why:literal)?);* $(;)?) => {
        /// Each script's time limit and, for the slow ones, why they are slow on software KVM.
        mod limits {
            use super::*;
            $(
                pub fn $name() -> (Duration, Option<&'static str>) {
                    #[allow(unused_mut, unused_assignments)]
                    let mut t = SCRIPT_TIMEOUT;
                    $(t = $timeout;)?
                    #[allow(unused_mut, unused_assignments)]
                    let mut slow = None;
                    $(slow = Some($why);)?
                    (t, slow)
                }
            )*
        }
        mod soft {
            use super::*;
            $(
                #[test]
                fn $name() {
                    script(stringify!($name), limits::$name().0);
                }
            )*
        }
        mod kvm {
            use super::*;
            $(
                #[test]
                fn $name() {
                    let (t, slow) = limits::$name();
                    let run = || script(stringify!($name), t);
                    match slow {
                        Some(why) => common::on_kvm_unless_slow(stringify!($name), why, run),
                        None => common::on_kvm(stringify!($name), run),
                    }
                }
            )*
        }

        /// Every script under tests/scripts has a test above (a new script is not forgotten).
        #[test]
        fn every_script_has_a_test() {
            let listed = [$(concat!(stringify!($name), ".sh")),*];
            let mut missing = Vec::new();
            for e in std::fs::read_dir(common::scripts_dir()).expect("tests/scripts") {
                let name = e.expect("entry").file_name().to_string_lossy().into_owned();
                if name.ends_with(".sh") && !listed.contains(&name.as_str()) {
                    missing.push(name);
                }
            }
            assert!(missing.is_empty(), "scripts without a test in shell_scripts.rs: {missing:?}");
            assert!(listed.len() >= 25, "issue 3 asks for at least 25 scripts, {} listed", listed.len());
        }
    };
}

scripts! {
    arithmetic;
    awk_text;
    background_wait;
    big_pipes, slow: "about 100 s: megabytes through pipes in 4 KiB syscalls";
    cd_pwd;
    command_substitution;
    cut_tr;
    devices;
    env_export;
    exec_builtin;
    find_xargs;
    fork_exec_1000: HEAVY_TIMEOUT, slow: "1000 fork+exec, about 0.3 s each";
    functions, slow: "465 command-substitution forks, about 170 s";
    glob_case;
    grep_status;
    heredoc;
    nested_shells;
    nproc_free_ps;
    parameter_expansion;
    pipeline_stages;
    proc_self;
    redirections;
    rootfs_writes;
    sed_edit;
    set_e;
    sigpipe;
    sleep_timeout;
    sort_uniq;
    subshell_1000: HEAVY_TIMEOUT, slow: "1000 subshell forks, about 0.2 s each";
    subshell_status;
    tar_gzip;
    tmp_perms;
    trap_kill;
    while_read;
}
