//! Bad input ends like `docker run` does: 127 when the program is not found, 126 when it cannot
//! be run (not an ELF, dynamically linked, truncated, wrong architecture), 125 for pvm's own
//! failure (bad options, too little memory); each time with exactly one clear line on stderr
//! and nothing on stdout.

mod common;

use common::{Libc, Link, Outcome, Run, assert_one_line_error, build, executable, program, pvm_run_args};
use std::path::Path;

fn pvm_run(program: &Path) -> Outcome {
    Run::pvm().args(pvm_run_args(&[], &[], None, program, &[])).run().finished()
}

#[test]
fn missing_program_is_127() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("no-such-program");
    let out = pvm_run(&missing);
    assert_one_line_error(&out, 127, &["no-such-program"]);
}

#[test]
fn missing_program_in_rootfs_is_127() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("bin")).expect("mkdir");
    let out = Run::pvm()
        .arg("run")
        .arg("--rootfs")
        .arg(dir.path())
        .args(["--", "/bin/no-such-program"])
        .run()
        .finished();
    assert_one_line_error(&out, 127, &["no-such-program"]);
}

#[test]
fn text_file_is_126() {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = dir.path().join("notes.txt");
    executable(&text, b"this is a text file, not a program\nsecond line\n");
    // Natively: execve fails with ENOEXEC.
    let native = std::process::Command::new(&text).output();
    assert!(native.is_err(), "the host must refuse to exec a text file too");
    let out = pvm_run(&text);
    assert_one_line_error(&out, 126, &["notes.txt"]);
}

#[test]
fn text_file_in_rootfs_is_126() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("bin")).expect("mkdir");
    executable(&dir.path().join("bin/notes"), b"plain text\n");
    let out = Run::pvm().arg("run").arg("--rootfs").arg(dir.path()).args(["--", "/bin/notes"]).run().finished();
    assert_one_line_error(&out, 126, &["notes"]);
}

#[test]
fn dynamically_linked_elf_is_126() {
    let exe = build("hello", Libc::Glibc, Link::Dynamic);
    // Natively it runs (the host has the interpreter)...
    let native = Run::native(&exe).run().finished();
    assert_eq!((native.status, native.out().as_str()), (0, "Hello, world!\n"));
    // ...in pvm's minimal root filesystem there is no /lib64/ld-linux-x86-64.so.2.
    let out = pvm_run(&exe);
    assert_one_line_error(&out, 126, &["hello"]);
}

#[test]
fn elf_truncated_in_its_headers_is_126() {
    let dir = tempfile::tempdir().expect("temp dir");
    let whole = std::fs::read(program("hello", Libc::Glibc)).expect("read");
    let cut = dir.path().join("truncated-header");
    executable(&cut, &whole[..100]);
    let out = pvm_run(&cut);
    assert_one_line_error(&out, 126, &["truncated-header"]);
}

#[test]
fn elf_truncated_in_its_segments_is_126() {
    // Headers intact, but the loadable segments extend past the end of the file.
    let dir = tempfile::tempdir().expect("temp dir");
    let whole = std::fs::read(program("hello", Libc::Glibc)).expect("read");
    let cut = dir.path().join("truncated-half");
    executable(&cut, &whole[..whole.len() / 2]);
    let out = pvm_run(&cut);
    assert_one_line_error(&out, 126, &["truncated-half"]);
}

#[test]
fn wrong_architecture_is_126() {
    // A valid static x86-64 ELF with e_machine changed to EM_386 (3).
    let dir = tempfile::tempdir().expect("temp dir");
    let mut elf = std::fs::read(program("hello", Libc::Glibc)).expect("read");
    assert_eq!(&elf[..4], b"\x7fELF");
    elf[18] = 3;
    elf[19] = 0;
    let path = dir.path().join("i386-machine");
    executable(&path, &elf);
    assert!(std::process::Command::new(&path).output().is_err(), "the host refuses it too");
    let out = pvm_run(&path);
    assert_one_line_error(&out, 126, &["i386-machine"]);
}

#[test]
fn too_little_memory_is_125() {
    let exe = program("hello", Libc::Glibc);
    let out = Run::pvm().args(pvm_run_args(&["--memory", "1M"], &[], None, &exe, &[])).run().finished();
    assert_one_line_error(&out, 125, &["memory"]);
}

#[test]
fn unknown_option_is_125() {
    let exe = program("hello", Libc::Glibc);
    let out = Run::pvm().args(pvm_run_args(&["--no-such-option"], &[], None, &exe, &[])).run().finished();
    assert_eq!(out.status, 125, "a usage error is pvm's own failure\n{}", out.describe());
    assert!(out.stdout.is_empty(), "{}", out.describe());
    assert!(out.err().contains("--no-such-option"), "{}", out.describe());
}
