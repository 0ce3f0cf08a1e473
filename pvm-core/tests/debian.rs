//! A Debian bookworm root filesystem (`debootstrap --variant=minbase --include=python3`)
//! served in place by hostfs: bash, coreutils, perl and python3 programs give the same output
//! as in a native `chroot` of the same tree, and hard links (`perl` and `perl5.36.0`) are one
//! file; `dpkg -i` of a local `.deb` installs into the host directory and the program runs in
//! a second `pvm run`; a host process that swaps a symlink for a directory, or renames a
//! directory out of a volume, while the guest walks through it never lets the guest read or
//! write a canary outside the volume.
//!
//! The tree is built once and cached in the per-user cache directory
//! (`$XDG_CACHE_HOME/pvm/debian-bookworm-minbase-py3`, else `~/.cache/...`); building needs
//! `debootstrap` (ci/test.sh installs it), the Debian mirror and root (directly, or through
//! `sudo -n` as on GitHub's runners; otherwise the cases are skipped with the reason printed).
//! The runs use `--read-only`, so the cached tree never changes, except `dpkg -i`, which runs
//! on a per-test copy (`cp -a`, as shell_scripts does). The equivalence cases run on both
//! backends; `dpkg -i` and the races (many processes) are skipped on software KVM unless
//! `PVM_TEST_KVM_FULL=1`.

#[macro_use]
mod common;

use common::{NativePrivilege, Outcome, Run, Stderr, assert_same};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const PATH: &str = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";

/// `argv` as root: directly, or through `sudo -n`; `None` (reason printed) when neither is
/// possible here (debootstrap and chroot need real root, a user namespace is not enough for
/// debootstrap's device nodes).
fn as_root(argv: &[&str]) -> Option<Run> {
    match common::native_privilege() {
        NativePrivilege::Root => Some(Run::native(argv[0]).args(&argv[1..])),
        NativePrivilege::Sudo(sudo) => Some(Run::native(sudo).arg("-n").args(argv)),
        other => {
            println!("debian: skipping (debootstrap and chroot need root or `sudo -n`): {other:?}");
            None
        }
    }
}

/// The cache key of the tree: bump it when the debootstrap command changes.
const TREE: &str = "debian-bookworm-minbase-py3";

/// The cached tree, built on first use; `None` when this host cannot build it (see [`as_root`]).
fn debian_root() -> Option<&'static PathBuf> {
    static ROOT: OnceLock<Option<PathBuf>> = OnceLock::new();
    ROOT.get_or_init(|| {
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .expect("HOME or XDG_CACHE_HOME")
            .join("pvm");
        let root = cache.join(TREE);
        if root.join("usr/bin/perl").exists() && root.join("usr/bin/python3").exists() {
            return Some(root);
        }
        std::fs::create_dir_all(&cache).expect("cache dir");
        let tmp = cache.join(format!("{TREE}.tmp{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let tmp_s = tmp.to_str().expect("UTF-8 cache path");
        let out = as_root(&["debootstrap", "--variant=minbase", "--include=python3", "bookworm", tmp_s, "http://deb.debian.org/debian"])?
            .timeout(std::time::Duration::from_secs(1800))
            .run();
        assert!(out.status == 0 && !out.timed_out, "debootstrap failed (install it: ci/test.sh does)\n{}", out.describe());
        // Moved as root: renaming a directory needs write access to it (its `..`), and
        // under sudo the tree is root's.
        let root_s = root.to_str().expect("UTF-8 cache path");
        let mv = as_root(&["/bin/mv", "-T", tmp_s, root_s])?.run();
        assert_eq!(mv.status, 0, "moving the tree into the cache\n{}", mv.describe());
        Some(root)
    })
    .as_ref()
}

/// `script` under bash in a native chroot of the tree and under pvm; `None` when skipped.
fn same(script: &str) -> Option<Outcome> {
    let root = debian_root()?;
    let root_s = root.to_str().expect("UTF-8 cache path");
    let native = as_root(&["/usr/sbin/chroot", root_s, "/usr/bin/env", &format!("PATH={PATH}"), "/bin/bash", "-c", script])?
        .run()
        .finished();
    let guest = Run::pvm()
        .args(["run", "--read-only", "--env", &format!("PATH={PATH}"), "--rootfs"])
        .arg(root)
        .args(["--", "/bin/bash", "-c", script])
        .run()
        .finished();
    assert_same(&native, &guest, Stderr::Same);
    Some(guest)
}

fn bash() {
    let Some(out) = same("echo ${BASH_VERSINFO[0]}; for i in 1 2 3; do echo $((i * i)); done; x=(c a b); echo ${#x[@]} ${x[1]}") else { return };
    assert!(out.out().ends_with("1\n4\n9\n3 a\n"), "{}", out.describe());
}

fn coreutils() {
    same("ls /etc/apt | sort; wc -l /etc/passwd; head -c 64 /usr/share/common-licenses/GPL-3 | sha256sum; \
          cat /etc/debian_version; sort -r /etc/shells | uniq | tail -n 2; id -u; basename /usr/bin/perl; \
          stat -c '%n %s %a %u %g %h' /usr/bin/perl /etc/passwd /usr/bin");
}

fn perl_and_its_hard_link() {
    let Some(out) = same("perl -e 'print join(\",\", map { $_ * 2 } 1..5), \"\\n\"; printf(\"%.3f\\n\", atan2(1, 1) * 4)'; \
                    stat -c '%i %h' /usr/bin/perl /usr/bin/perl5.36.0") else { return };
    let lines: Vec<String> = out.out().lines().map(String::from).collect();
    assert_eq!(lines[0], "2,4,6,8,10");
    assert_eq!(lines[2], lines[3], "perl and perl5.36.0 are one inode:\n{}", out.describe());
    assert!(lines[2].ends_with(" 2"), "{}", out.describe());
}

fn writes_are_refused_on_the_read_only_tree() {
    let Some(root) = debian_root() else { return };
    let guest = Run::pvm()
        .args(["run", "--read-only", "--rootfs"])
        .arg(root)
        .args(["--", "/bin/bash", "-c", "touch /etc/pvm-test 2>&1; echo $?; echo ok > /tmp/t && cat /tmp/t"])
        .run()
        .finished();
    assert!(guest.out().contains("Read-only file system") && guest.out().ends_with("1\nok\n"), "{}", guest.describe());
    assert!(!root.join("etc/pvm-test").exists());
}

fn python3() {
    let Some(out) = same(
        "python3 - <<'EOF'\n\
import sys, os, json, hashlib, subprocess, collections\n\
print(sys.version_info[:2] >= (3, 11))\n\
print(json.dumps({'b': [1, 2, {'c': None}], 'a': 1.5}, sort_keys=True))\n\
print(hashlib.sha256(open('/etc/debian_version', 'rb').read()).hexdigest())\n\
print(sorted(os.listdir('/etc/apt')))\n\
st = os.stat('/usr/bin/python3', follow_symlinks=False)\n\
print(oct(st.st_mode), st.st_uid, st.st_gid, os.readlink('/usr/bin/python3'))\n\
n = sum(len(f) for _, _, f in os.walk('/usr/lib/python3.11/json'))\n\
print('json package files', n)\n\
print(subprocess.run(['/bin/echo', 'child'], capture_output=True, text=True).stdout.strip())\n\
print(collections.Counter('hostfs serves files').most_common(2))\n\
EOF",
    ) else { return };
    assert!(out.out().starts_with("True\n") && out.out().contains("\nchild\n"), "{}", out.describe());
}

/// Builds `pvm-hello_1.0_all.deb` (a shell script in /usr/local/bin) with the host's
/// `dpkg-deb` into `dir/debs`; the path of the `.deb`, or `None` (reason printed) without
/// `dpkg-deb`.
fn hello_deb(dir: &Path) -> Option<PathBuf> {
    let pkg = dir.join("pkg");
    std::fs::create_dir_all(pkg.join("DEBIAN")).expect("mkdir DEBIAN");
    std::fs::create_dir_all(pkg.join("usr/local/bin")).expect("mkdir bin");
    std::fs::create_dir_all(dir.join("debs")).expect("mkdir debs");
    std::fs::write(
        pkg.join("DEBIAN/control"),
        "Package: pvm-hello\nVersion: 1.0\nArchitecture: all\nMaintainer: pvm tests <pvm@example.invalid>\n\
         Description: pvm test package\n a shell script that greets\n",
    )
    .expect("control");
    let prog = pkg.join("usr/local/bin/pvm-hello");
    std::fs::write(&prog, "#!/bin/sh\necho \"hello from a .deb: $*\"\n").expect("program");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let deb = dir.join("debs/pvm-hello_1.0_all.deb");
    let built = match std::process::Command::new("dpkg-deb").arg("--build").arg("--root-owner-group").arg(&pkg).arg(&deb).output() {
        Ok(o) => o,
        Err(e) => {
            println!("debian: skipping dpkg -i: cannot run dpkg-deb ({e})");
            return None;
        }
    };
    assert!(built.status.success(), "dpkg-deb --build: {}", String::from_utf8_lossy(&built.stderr));
    Some(deb)
}

fn dpkg_installs_into_the_host_directory() {
    let Some(root) = debian_root() else { return };
    let scratch = common::scratch_dir("debian-dpkg");
    let Some(deb) = hello_deb(&scratch) else { return };
    // A copy of the tree (as root: the tree is root's), so the cache stays as debootstrap
    // left it.
    let copy = scratch.join("root");
    let Some(cp) = as_root(&["/bin/cp", "-a", root.to_str().expect("UTF-8"), copy.to_str().expect("UTF-8")]) else { return };
    let cp = cp.timeout(Duration::from_secs(300)).run();
    assert_eq!(cp.status, 0, "copying the tree\n{}", cp.describe());
    let env = format!("PATH={PATH}");
    let install = Run::pvm()
        .args(["run", "--env", &env, "-v"])
        .arg(format!("{}:/mnt:ro", deb.parent().expect("debs dir").display()))
        .arg("--rootfs")
        .arg(&copy)
        .args(["--", "dpkg", "-i", "/mnt/pvm-hello_1.0_all.deb"])
        .timeout(Duration::from_secs(300))
        .run()
        .finished();
    assert!(install.status == 0 && install.out().contains("Setting up pvm-hello (1.0)"), "{}", install.describe());
    // On the host, in the copy: the program and dpkg's database entry.
    let prog = std::fs::read_to_string(copy.join("usr/local/bin/pvm-hello")).unwrap_or_default();
    assert!(prog.contains("hello from a .deb"), "the program is not in the host directory: {prog:?}");
    let list = std::fs::read_to_string(copy.join("var/lib/dpkg/info/pvm-hello.list")).unwrap_or_default();
    assert!(list.lines().any(|l| l == "/usr/local/bin/pvm-hello"), "dpkg's file list: {list:?}");
    assert!(!root.join("usr/local/bin/pvm-hello").exists(), "the cached tree changed");
    // A second VM runs it (found in PATH inside the root) and dpkg knows the package.
    let run = Run::pvm()
        .args(["run", "--read-only", "--env", &env, "--rootfs"])
        .arg(&copy)
        .args(["--", "/bin/sh", "-c", "pvm-hello world; dpkg-query -W -f '${Status} ${Version}\\n' pvm-hello"])
        .run()
        .finished();
    assert_eq!(run.out(), "hello from a .deb: world\ninstall ok installed 1.0\n", "{}", run.describe());
    if let Some(rm) = as_root(&["/bin/rm", "-rf", copy.to_str().expect("UTF-8")]) {
        rm.run();
    }
}

/// `renameat2(RENAME_EXCHANGE)` of `a` and `b` (both must exist): atomic, so at every moment
/// one of the two names is each object.
fn exchange(a: &Path, b: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let (a, b) = (std::ffi::CString::new(a.as_os_str().as_bytes()).expect("path"), std::ffi::CString::new(b.as_os_str().as_bytes()).expect("path"));
    // SAFETY: renameat2 reads two NUL-terminated paths.
    unsafe { libc::renameat2(libc::AT_FDCWD, a.as_ptr(), libc::AT_FDCWD, b.as_ptr(), libc::RENAME_EXCHANGE) == 0 }
}

/// Runs `script` under bash in the Debian tree with `vol` as `/mnt`, while `race` runs on the
/// host in a loop until the guest is done: the guest's stdout.
fn racing(vol: &Path, script: &str, race: impl Fn() + Sync) -> Option<Outcome> {
    let root = debian_root()?;
    let stop = AtomicBool::new(false);
    let rounds = std::sync::atomic::AtomicU64::new(0);
    let guest = std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                race();
                rounds.fetch_add(1, Ordering::Relaxed);
                // Leave the CPUs to the guest now and then (2 cores, shared).
                std::thread::sleep(Duration::from_micros(200));
            }
        });
        let out = Run::pvm()
            .args(["run", "--read-only", "--env", &format!("PATH={PATH}"), "-v"])
            .arg(format!("{}:/mnt", vol.display()))
            .arg("--rootfs")
            .arg(root)
            .args(["--", "/bin/bash", "-c", script])
            .timeout(Duration::from_secs(300))
            .run();
        stop.store(true, Ordering::Relaxed);
        out
    });
    assert!(rounds.load(Ordering::Relaxed) > 0, "the host side never swapped");
    Some(guest.finished())
}

/// The scratch layout of the race cases: `vol` (served as /mnt) and, outside it, `outside`
/// holding `secret` (the canary) and a directory `d` of decoys.
fn race_dirs(tag: &str) -> (PathBuf, PathBuf, PathBuf) {
    let scratch = common::scratch_dir(tag);
    let (vol, outside) = (scratch.join("vol"), scratch.join("outside"));
    std::fs::create_dir_all(&vol).expect("vol");
    std::fs::create_dir_all(&outside).expect("outside");
    std::fs::write(outside.join("secret"), "CANARY\n").expect("canary");
    (scratch, vol, outside)
}

/// Checks the canary was neither read (no `CANARY` in the guest's output) nor written (its
/// content unchanged, nothing new next to it).
fn canary_untouched(outside: &Path, guest: &Outcome, expected: &[&str]) {
    assert!(!guest.out().contains("CANARY"), "the guest read the canary:\n{}", guest.describe());
    assert_eq!(std::fs::read_to_string(outside.join("secret")).expect("canary"), "CANARY\n", "the canary was written");
    let names: Vec<String> = std::fs::read_dir(outside).expect("outside").flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    for n in &names {
        assert!(expected.contains(&n.as_str()), "the guest created {n} outside the volume:\n{}", guest.describe());
    }
}

/// Names the race cases go through: each guest lookup of a new name races with the host (the
/// guest caches a name once it has looked it up, as Linux does for FUSE entries without a
/// timeout, so one name would be raced only once).
const RACE_NAMES: usize = 300;

/// A symlink out of the volume (absolute for even names, relative for odd ones) is swapped
/// with a directory holding a decoy while the guest reads and writes through that name.
fn symlink_swap_race() {
    let (_scratch, vol, outside) = race_dirs("debian-swap");
    for k in 0..RACE_NAMES {
        let x = vol.join(format!("x{k}"));
        std::fs::create_dir(&x).expect("dir");
        std::fs::write(x.join("secret"), "inside\n").expect("decoy");
        let y = vol.join(format!("y{k}"));
        if k % 2 == 0 {
            std::os::unix::fs::symlink(&outside, &y).expect("absolute symlink");
        } else {
            std::os::unix::fs::symlink("../outside", &y).expect("relative symlink");
        }
    }
    let script = format!(
        "for i in $(seq 0 {}); do cat /mnt/x$i/secret 2>/dev/null; echo w 2>/dev/null > /mnt/x$i/written; done | sort | uniq -c | sed 's/^ *[0-9]* //'",
        RACE_NAMES - 1
    );
    let Some(out) = racing(&vol, &script, || {
        // Each x{k} is a directory or a symlink out, swapped atomically.
        for k in 0..RACE_NAMES {
            assert!(exchange(&vol.join(format!("x{k}")), &vol.join(format!("y{k}"))), "renameat2");
        }
    }) else { return };
    assert!(out.out().contains("inside"), "the guest never read through a directory:\n{}", out.describe());
    canary_untouched(&outside, &out, &["secret"]);
}

/// The directory the guest works in is renamed out of the volume and back while the guest
/// looks names up in it and walks `..` from inside it.
fn rename_out_race() {
    let (scratch, vol, outside) = race_dirs("debian-rename");
    std::fs::create_dir_all(vol.join("d/e")).expect("dirs");
    for k in 0..RACE_NAMES {
        std::fs::write(vol.join(format!("d/e/f{k}")), "inside\n").expect("file");
    }
    // Where `..` would lead if it followed the host's tree: outside/secret is the canary.
    let (inside, moved) = (vol.join("d"), outside.join("d"));
    let script = format!(
        "until cd /mnt/d/e 2>/dev/null; do :; done; for i in $(seq 0 {}); do cat f$i ../../../secret ../../secret ../secret 2>/dev/null; \
         echo w 2>/dev/null > ../../written; done | sort | uniq -c | sed 's/^ *[0-9]* //'",
        RACE_NAMES - 1
    );
    let Some(out) = racing(&vol, &script, || {
        if std::fs::rename(&inside, &moved).is_ok() {
            std::thread::sleep(Duration::from_micros(100));
            std::fs::rename(&moved, &inside).expect("rename back");
        }
    }) else { return };
    assert!(out.out().contains("inside"), "the guest never read a file:\n{}", out.describe());
    // `..` of /mnt/d/e is the guest's /mnt/d whatever the host did: `written` lands in the
    // volume's root, never next to the canary or the volume.
    canary_untouched(&outside, &out, &["secret"]);
    assert!(!scratch.join("written").exists(), "the guest wrote next to the volume:\n{}", out.describe());
}

on_both_backends!(bash, coreutils, perl_and_its_hard_link, python3, writes_are_refused_on_the_read_only_tree);

/// The cases with many processes: on software KVM only with `PVM_TEST_KVM_FULL=1`.
macro_rules! soft_and_full_kvm {
    ($($case:ident),* $(,)?) => {
        mod soft_many {
            $(#[test] fn $case() { super::$case(); })*
        }
        mod kvm_many {
            $(#[test] fn $case() { super::common::on_kvm_unless_slow(stringify!($case), "hundreds of processes", super::$case); })*
        }
    };
}

soft_and_full_kvm!(dpkg_installs_into_the_host_directory, symlink_swap_race, rename_out_race);
