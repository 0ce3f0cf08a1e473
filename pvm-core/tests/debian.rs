//! A Debian bookworm root filesystem (`debootstrap --variant=minbase`) served in place by
//! hostfs: bash, coreutils and perl programs give the same output as in a native `chroot` of
//! the same tree, and hard links (`perl` and `perl5.36.0`) are one file.
//!
//! The tree is built once and cached in the per-user cache directory
//! (`$XDG_CACHE_HOME/pvm/debian-bookworm-minbase`, else `~/.cache/...`); building needs
//! `debootstrap` (ci/test.sh installs it) and the Debian mirror. The runs use `--read-only`,
//! so the cached tree never changes. Every case runs on both backends.

#[macro_use]
mod common;

use common::{Outcome, Run, Stderr, assert_same};
use std::path::PathBuf;
use std::sync::OnceLock;

const PATH: &str = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";

/// The cached tree, built on first use.
fn debian_root() -> &'static PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .expect("HOME or XDG_CACHE_HOME")
            .join("pvm");
        let root = cache.join("debian-bookworm-minbase");
        if root.join("usr/bin/perl").exists() {
            return root;
        }
        std::fs::create_dir_all(&cache).expect("cache dir");
        let tmp = cache.join(format!("debian-bookworm-minbase.tmp{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let st = std::process::Command::new("debootstrap")
            .args(["--variant=minbase", "bookworm"])
            .arg(&tmp)
            .arg("http://deb.debian.org/debian")
            .stdout(std::process::Stdio::null())
            .status()
            .expect("running debootstrap (install it: ci/test.sh does)");
        assert!(st.success(), "debootstrap failed: {st}");
        std::fs::rename(&tmp, &root).expect("moving the tree into the cache");
        root
    })
}

fn same(script: &str) -> Outcome {
    let root = debian_root();
    let native = Run::native("/usr/sbin/chroot").env("PATH", PATH).arg(root).args(["/bin/bash", "-c", script]).run().finished();
    let guest = Run::pvm()
        .args(["run", "--read-only", "--env", &format!("PATH={PATH}"), "--rootfs"])
        .arg(root)
        .args(["--", "/bin/bash", "-c", script])
        .run()
        .finished();
    assert_same(&native, &guest, Stderr::Same);
    guest
}

fn bash() {
    let out = same("echo ${BASH_VERSINFO[0]}; for i in 1 2 3; do echo $((i * i)); done; x=(c a b); echo ${#x[@]} ${x[1]}");
    assert!(out.out().ends_with("1\n4\n9\n3 a\n"), "{}", out.describe());
}

fn coreutils() {
    same("ls /etc/apt | sort; wc -l /etc/passwd; head -c 64 /usr/share/common-licenses/GPL-3 | sha256sum; \
          cat /etc/debian_version; sort -r /etc/shells | uniq | tail -n 2; id -u; basename /usr/bin/perl; \
          stat -c '%n %s %a %u %g %h' /usr/bin/perl /etc/passwd /usr/bin");
}

fn perl_and_its_hard_link() {
    let out = same("perl -e 'print join(\",\", map { $_ * 2 } 1..5), \"\\n\"; printf(\"%.3f\\n\", atan2(1, 1) * 4)'; \
                    stat -c '%i %h' /usr/bin/perl /usr/bin/perl5.36.0");
    let lines: Vec<String> = out.out().lines().map(String::from).collect();
    assert_eq!(lines[0], "2,4,6,8,10");
    assert_eq!(lines[2], lines[3], "perl and perl5.36.0 are one inode:\n{}", out.describe());
    assert!(lines[2].ends_with(" 2"), "{}", out.describe());
}

fn writes_are_refused_on_the_read_only_tree() {
    let root = debian_root();
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
