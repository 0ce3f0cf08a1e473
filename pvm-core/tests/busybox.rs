//! Debian's busybox-static applets that run in one process give the same output and status
//! under `pvm run --rootfs DIR /bin/busybox APPLET ...` as the same binary run natively.
//!
//! The root filesystem is a temp dir with `/bin/busybox` (a copy of the host's) and a `data`
//! tree. Natively busybox runs with its working directory at the tree's root, in the guest with
//! `--workdir /`, and all paths are relative, so every output is byte-identical.
//!
//! Every case runs on both backends: `soft::*` and `kvm::*` (skipped without `/dev/kvm`).

#[macro_use]
mod common;

use common::{Outcome, Run, Stderr, assert_same};
use std::path::{Path, PathBuf};
use tempfile::TempDir;

const HOST_BUSYBOX: &str = "/bin/busybox";

/// Builds a root filesystem tree in a fresh temp dir.
fn rootfs() -> TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    for d in ["bin", "data/sub", "tmp"] {
        std::fs::create_dir_all(root.join(d)).expect("mkdir in rootfs");
    }
    common::copy_executable(Path::new(HOST_BUSYBOX), &root.join("bin/busybox"));
    let hello = "hello from the data directory\nsecond line\n\nfourth line, after an empty one\n";
    std::fs::write(root.join("data/hello.txt"), hello).expect("write");
    let words: String = (0..2000).map(|i| format!("word{i} {}\n", i * i % 977)).collect();
    std::fs::write(root.join("data/words.txt"), words).expect("write");
    // 3 MiB of deterministic bytes (xorshift64).
    let mut x: u64 = 0x0123_4567_89ab_cdef;
    let big: Vec<u8> = (0..3 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[3]
        })
        .collect();
    std::fs::write(root.join("data/big.bin"), big).expect("write");
    std::fs::write(root.join("data/empty"), "").expect("write");
    std::fs::write(root.join("data/sub/nested.txt"), "nested\n").expect("write");
    dir
}

/// Runs `busybox ARGS` natively in `root/cwd` and in the guest with `--workdir /cwd`; asserts the
/// same stdout, stderr and status. Returns the pvm outcome.
fn same(root: &Path, cwd: &str, args: &[&str]) -> Outcome {
    let busybox: PathBuf = root.join("bin/busybox");
    let native = Run::native(&busybox).args(args).cwd(root.join(cwd.trim_start_matches('/'))).run().finished();
    let guest = Run::pvm()
        .arg("run")
        .arg("--rootfs")
        .arg(root)
        .args(["--workdir", cwd, "--", "/bin/busybox"])
        .args(args)
        .run()
        .finished();
    assert_same(&native, &guest, Stderr::Same);
    guest
}

fn echo() {
    let fs = rootfs();
    let out = same(fs.path(), "/", &["echo", "hello", "from", "busybox", ""]);
    assert_eq!(out.out(), "hello from busybox \n");
    same(fs.path(), "/", &["echo", "-n", "-e", "tab\\there\\nnewline"]);
}

fn cat() {
    let fs = rootfs();
    same(fs.path(), "/", &["cat", "data/hello.txt", "data/empty", "data/words.txt"]);
    // 3 MiB of binary data (every byte value) through the guest console, unchanged.
    let out = same(fs.path(), "/", &["cat", "data/big.bin"]);
    assert_eq!(out.stdout.len(), 3 << 20);
    // A missing file: status 1 and busybox's message on stderr.
    let out = same(fs.path(), "/", &["cat", "data/hello.txt", "data/missing"]);
    assert_eq!(out.status, 1);
}

fn wc() {
    let fs = rootfs();
    same(fs.path(), "/", &["wc", "data/hello.txt", "data/words.txt", "data/big.bin"]);
    same(fs.path(), "/", &["wc", "-l", "data/words.txt"]);
}

fn sha256sum() {
    let fs = rootfs();
    let out = same(fs.path(), "/", &["sha256sum", "data/big.bin", "data/hello.txt", "data/empty"]);
    assert!(
        out.out().contains("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  data/empty"),
        "{}",
        out.describe()
    );
}

fn md5sum() {
    let fs = rootfs();
    same(fs.path(), "/", &["md5sum", "data/big.bin", "data/words.txt"]);
}

fn seq() {
    let fs = rootfs();
    same(fs.path(), "/", &["seq", "1", "3", "10000"]);
    same(fs.path(), "/", &["seq", "-s", ",", "-w", "98", "102"]);
    // About 3.4 MB of output through the guest console, byte for byte.
    let out = same(fs.path(), "/", &["seq", "500000"]);
    assert_eq!(out.stdout.len(), 3_388_895);
}

fn expr() {
    let fs = rootfs();
    let out = same(fs.path(), "/", &["expr", "6", "*", "7"]);
    assert_eq!((out.out().as_str(), out.status), ("42\n", 0));
    // expr exits 1 when the result is zero or empty.
    let out = same(fs.path(), "/", &["expr", "3", "-", "3"]);
    assert_eq!(out.status, 1);
    same(fs.path(), "/", &["expr", "length", "hello world"]);
    // A syntax error: status 2 and a message on stderr.
    let out = same(fs.path(), "/", &["expr", "1", "+"]);
    assert_eq!(out.status, 2);
}

fn ls() {
    let fs = rootfs();
    let out = same(fs.path(), "/", &["ls", "data"]);
    assert_eq!(out.out(), "big.bin\nempty\nhello.txt\nsub\nwords.txt\n");
    same(fs.path(), "/", &["ls", "-1a", "data/sub"]);
    // The working directory given by --workdir.
    same(fs.path(), "/data", &["ls"]);
    same(fs.path(), "/data/sub", &["ls", "-1", "..", "."]);
}

on_both_backends!(echo, cat, wc, sha256sum, md5sum, seq, expr, ls);
