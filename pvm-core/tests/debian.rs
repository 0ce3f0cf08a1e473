//! A Debian bookworm root filesystem (`debootstrap --variant=minbase`) served in place by
//! hostfs: bash, coreutils and perl programs give the same output as in a native `chroot` of
//! the same tree, and hard links (`perl` and `perl5.36.0`) are one file.
//!
//! The tree is built once and cached in the per-user cache directory
//! (`$XDG_CACHE_HOME/pvm/debian-bookworm-minbase`, else `~/.cache/...`); building needs
//! `debootstrap` (ci/test.sh installs it), the Debian mirror and root (directly, or through
//! `sudo -n` as on GitHub's runners; otherwise the cases are skipped with the reason printed).
//! The runs use `--read-only`, so the cached tree never changes. Every case runs on both
//! backends.

#[macro_use]
mod common;

use common::{NativePrivilege, Outcome, Run, Stderr, assert_same};
use std::path::PathBuf;
use std::sync::OnceLock;

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

/// The cached tree, built on first use; `None` when this host cannot build it (see [`as_root`]).
fn debian_root() -> Option<&'static PathBuf> {
    static ROOT: OnceLock<Option<PathBuf>> = OnceLock::new();
    ROOT.get_or_init(|| {
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .expect("HOME or XDG_CACHE_HOME")
            .join("pvm");
        let root = cache.join("debian-bookworm-minbase");
        if root.join("usr/bin/perl").exists() {
            return Some(root);
        }
        std::fs::create_dir_all(&cache).expect("cache dir");
        let tmp = cache.join(format!("debian-bookworm-minbase.tmp{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let tmp_s = tmp.to_str().expect("UTF-8 cache path");
        let out = as_root(&["debootstrap", "--variant=minbase", "bookworm", tmp_s, "http://deb.debian.org/debian"])?
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

on_both_backends!(bash, coreutils, perl_and_its_hard_link, writes_are_refused_on_the_read_only_tree);
