//! `pvm run --rootfs DIR` serves DIR in place through the file server (hostfs): what the guest
//! writes reaches the host directory and persists to the next run, hard links and inode
//! numbers are the host's, `-v HOST:GUEST[:ro]` volumes and `--read-only` behave like
//! Docker's, and nothing outside the tree is ever reached through symlinks or `..`.
//!
//! Each case builds its own tree in a temp dir (Debian's static busybox as `/bin/busybox`) and,
//! where the outcome is defined by Linux, compares with a native `chroot` of the same tree.
//! Every case runs on both backends: `soft::*` and `kvm::*` (skipped without `/dev/kvm`).

#[macro_use]
mod common;

use common::{Outcome, Run, Stderr, assert_same};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

const HOST_BUSYBOX: &str = "/bin/busybox";

/// A temp dir holding `root/` (the guest's tree: `bin/busybox`, `data/`) and, beside it,
/// `canary` (a file outside the tree that no run may read or change).
struct Tree {
    dir: TempDir,
}

const CANARY: &str = "canary: outside the tree, never to be read\n";

impl Tree {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("root");
        for d in ["bin", "data/sub", "tmp", "proc", "dev", "sys"] {
            std::fs::create_dir_all(root.join(d)).expect("mkdir in rootfs");
        }
        common::copy_executable(Path::new(HOST_BUSYBOX), &root.join("bin/busybox"));
        // The applets the scripts use, as links (a chroot has no /proc/self/exe, so busybox
        // sh cannot run its applets without them).
        for applet in ["sh", "cat", "ls", "stat", "ln", "mkdir", "rm", "tar", "touch", "wc", "echo"] {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).expect("symlink");
        }
        std::fs::write(root.join("data/hello.txt"), "hello\n").expect("write");
        std::fs::write(root.join("data/sub/nested.txt"), "nested\n").expect("write");
        std::fs::write(dir.path().join("canary"), CANARY).expect("write canary");
        Self { dir }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn canary(&self) -> PathBuf {
        self.dir.path().join("canary")
    }

    fn assert_canary_untouched(&self) {
        assert_eq!(std::fs::read_to_string(self.canary()).expect("canary"), CANARY, "the canary outside the tree changed");
    }
}

/// `pvm run OPTS --rootfs ROOT -- /bin/busybox sh -c SCRIPT`.
fn guest(root: &Path, opts: &[&str], script: &str) -> Outcome {
    Run::pvm()
        .arg("run")
        .args(opts)
        .arg("--rootfs")
        .arg(root)
        .args(["--env", "PATH=/bin", "--workdir", "/", "--", "/bin/busybox", "sh", "-c", script])
        .run()
        .finished()
}

/// `chroot ROOT /bin/busybox sh -c SCRIPT`, natively.
fn chroot(root: &Path, script: &str) -> Outcome {
    Run::native("/usr/sbin/chroot").env("PATH", "/bin").arg(root).args(["/bin/busybox", "sh", "-c", script]).run().finished()
}

fn writes_reach_the_host_and_persist() {
    let t = Tree::new();
    let root = t.root();
    let out = guest(&root, &[], "echo written > /data/out && mkdir /data/newdir && echo two >> /data/out && rm /data/hello.txt");
    assert_eq!(out.status, 0, "{}", out.describe());
    assert_eq!(std::fs::read_to_string(root.join("data/out")).unwrap(), "written\ntwo\n");
    assert!(root.join("data/newdir").is_dir());
    assert!(!root.join("data/hello.txt").exists());
    // A second run sees what the first one left.
    let out = guest(&root, &[], "cat /data/out; ls /data");
    assert_eq!(out.status, 0, "{}", out.describe());
    assert_eq!(out.out(), "written\ntwo\nnewdir\nout\nsub\n");
}

fn hard_links_and_inode_numbers_are_the_hosts() {
    let t = Tree::new();
    let root = t.root();
    std::fs::hard_link(root.join("data/hello.txt"), root.join("data/alias")).unwrap();
    // Made on the host, seen in the guest as in a chroot.
    let script = "stat -c '%n %i %h %s %a %u %g %Y' /data/hello.txt /data/alias /data/sub";
    assert_same(&chroot(&root, script), &guest(&root, &[], script), Stderr::Same);
    // Made in the guest, seen on the host.
    let out = guest(&root, &[], "ln /data/sub/nested.txt /data/nested-link && stat -c '%i %h' /data/nested-link");
    assert_eq!(out.status, 0, "{}", out.describe());
    let (a, b) = (std::fs::metadata(root.join("data/sub/nested.txt")).unwrap(), std::fs::metadata(root.join("data/nested-link")).unwrap());
    assert_eq!((a.ino(), a.nlink()), (b.ino(), 2));
    assert_eq!(out.out(), format!("{} 2\n", a.ino()));
}

fn tar_into_a_volume_leaves_the_archive_on_the_host() {
    let t = Tree::new();
    let vol = tempfile::tempdir().unwrap();
    let spec = format!("{}:/vol", vol.path().display());
    let out = guest(&t.root(), &["-v", &spec], "mkdir -p /vol && tar cf /vol/data.tar -C /data . && echo done");
    assert_eq!(out.status, 0, "{}", out.describe());
    let list = Run::native("/bin/busybox").args(["tar", "tf"]).arg(vol.path().join("data.tar")).run().finished();
    assert_eq!(list.status, 0, "{}", list.describe());
    let text = list.out();
    let owned: Vec<String> =
        text.lines().map(|l| l.trim_start_matches("./").trim_end_matches('/').to_string()).filter(|l| !l.is_empty()).collect();
    assert!(owned.contains(&"hello.txt".to_string()) && owned.contains(&"sub/nested.txt".to_string()), "{owned:?}");
}

fn read_only_root_and_volumes_give_erofs() {
    let t = Tree::new();
    let root = t.root();
    let out = guest(&root, &["--read-only"], "cat /data/hello.txt; touch /data/new; echo status $?");
    assert!(out.err().contains("Read-only file system"), "{}", out.describe());
    assert!(out.out().starts_with("hello\n") && out.out().ends_with("status 1\n"), "{}", out.describe());
    assert!(!root.join("data/new").exists());
    let vol = tempfile::tempdir().unwrap();
    std::fs::write(vol.path().join("f"), "vol\n").unwrap();
    let spec = format!("{}:/data/ro:ro", vol.path().display());
    let out = guest(&root, &["-v", &spec], "cat /data/ro/f; echo x > /data/ro/f; echo status $?; echo rw > /data/rw-ok");
    assert!(out.err().contains("Read-only file system"), "{}", out.describe());
    assert_eq!(out.out(), "vol\nstatus 1\n", "{}", out.describe());
    assert_eq!(std::fs::read_to_string(vol.path().join("f")).unwrap(), "vol\n");
    assert_eq!(std::fs::read_to_string(root.join("data/rw-ok")).unwrap(), "rw\n");
}

fn symlinks_and_dotdot_never_leave_the_tree() {
    let t = Tree::new();
    let root = t.root();
    let canary = t.canary();
    // Absolute and relative links aimed at the canary, and `..` chains.
    std::os::unix::fs::symlink(&canary, root.join("data/abs")).unwrap();
    std::os::unix::fs::symlink("../../canary", root.join("data/rel")).unwrap();
    std::os::unix::fs::symlink("../../../../../../..", root.join("data/up")).unwrap();
    let script = "cat /data/abs; cat /data/rel; cat /../canary; cat /data/../../../canary; cat /data/up/canary; \
                  ls /data/up; cd /../../..; pwd";
    let native = chroot(&root, script);
    let vm = guest(&root, &[], script);
    assert_same(&native, &vm, Stderr::Same);
    assert!(!vm.out().contains("never to be read"), "{}", vm.describe());
    // Writing through the relative link creates /canary inside the tree, as in a chroot.
    let vm = guest(&root, &[], "echo overwrite > /data/rel; echo more >> /data/abs; cat /canary");
    assert_eq!(vm.out(), "overwrite\n", "{}", vm.describe());
    assert_eq!(std::fs::read_to_string(root.join("canary")).unwrap(), "overwrite\n");
    t.assert_canary_untouched();
}

fn start_up_does_not_depend_on_tree_size() {
    // A 10 MB tree and a much larger one (sparse files: hostfs reads nothing at start-up)
    // behave the same.
    let small = Tree::new();
    std::fs::write(small.root().join("data/ten-mb"), vec![7u8; 10 << 20]).unwrap();
    let large = Tree::new();
    for i in 0..8 {
        let f = std::fs::File::create(large.root().join(format!("data/big{i}"))).unwrap();
        f.set_len(1 << 30).unwrap();
    }
    for t in [&small, &large] {
        let out = guest(&t.root(), &["--memory", "128M"], "cat /data/hello.txt; ls /data | wc -l");
        assert_eq!(out.status, 0, "{}", out.describe());
        assert!(out.out().starts_with("hello\n"), "{}", out.describe());
    }
}

on_both_backends!(
    writes_reach_the_host_and_persist,
    hard_links_and_inode_numbers_are_the_hosts,
    tar_into_a_volume_leaves_the_archive_on_the_host,
    read_only_root_and_volumes_give_erofs,
    symlinks_and_dotdot_never_leave_the_tree,
    start_up_does_not_depend_on_tree_size,
);
