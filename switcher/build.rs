//! Builds the freestanding stub (switcher/stub) with a nested `cargo build` and exposes the
//! ELF path as `PVM_STUB_ELF` for `include_bytes!` (shared/design/freestanding-build.md).

use std::env;
use std::path::PathBuf;
use std::process::Command;

/// Environment the outer cargo sets that would override the stub's own .cargo/config.toml.
const STRIP_ENV: &[&str] = &[
    "CARGO_ENCODED_RUSTFLAGS",
    "RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
];

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let stub = manifest.join("stub");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let target_dir = out.join("stub-target");
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&stub)
        .args(["build", "--release", "--locked", "--target-dir"])
        .arg(&target_dir);
    for var in STRIP_ENV {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("failed to run cargo for switcher/stub");
    assert!(status.success(), "building switcher/stub failed: {status}");
    let elf = target_dir.join("x86_64-unknown-linux-gnu/release/pvm-stub");
    println!("cargo:rustc-env=PVM_STUB_ELF={}", elf.display());
    for path in ["stub/src", "stub/Cargo.toml", "stub/Cargo.lock", "stub/linker.ld", "stub/build.rs", "stub/.cargo/config.toml", "../guest-abi/src"] {
        println!("cargo:rerun-if-changed={path}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
