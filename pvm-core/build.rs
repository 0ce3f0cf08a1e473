//! Builds the freestanding guest kernel with a nested cargo (see
//! shared/design/freestanding-build.md) and the built-in demo program with `cc -static`, and
//! hands both paths to the crate for `include_bytes!`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it"));
    let root = manifest.parent().expect("pvm-core sits in the workspace").to_path_buf();
    build_kernel(&root.join("guest-kernel"), &root.join("guest-abi"), &root.join("guest-fs"), &out);
    build_demo(&manifest.join("demo/demo.c"), &out);
}

fn rerun_tree(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            if p.is_dir() {
                rerun_tree(&p);
            } else {
                println!("cargo:rerun-if-changed={}", p.display());
            }
        }
    }
}

fn build_kernel(kernel: &Path, abi: &Path, fs: &Path, out: &Path) {
    for dir in [kernel, abi, fs] {
        rerun_tree(dir);
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target_dir = out.join("guest-kernel");
    let mut cmd = Command::new(cargo);
    cmd.current_dir(kernel)
        .args(["build", "--release", "--locked", "--target-dir"])
        .arg(&target_dir);
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "CARGO_MAKEFLAGS",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("running the nested cargo for the guest kernel");
    assert!(status.success(), "building the guest kernel failed");
    let elf = target_dir.join("x86_64-unknown-linux-gnu/release/guest-kernel");
    assert!(elf.exists(), "guest kernel ELF missing at {}", elf.display());
    println!("cargo:rustc-env=PVM_GUEST_KERNEL={}", elf.display());
}

fn build_demo(src: &Path, out: &Path) {
    println!("cargo:rerun-if-changed={}", src.display());
    let exe = out.join("pvm-demo");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&cc)
        .args(["-static", "-O2", "-Wall", "-o"])
        .arg(&exe)
        .arg(src)
        .status()
        .unwrap_or_else(|e| panic!("running {cc} for the demo program: {e}"));
    assert!(status.success(), "building the demo program failed");
    println!("cargo:rustc-env=PVM_DEMO={}", exe.display());
}
