//! Link arguments of the freestanding guest-kernel image (see
//! shared/design/freestanding-build.md): no C runtime, static, our own linker script. Also
//! builds the vDSO image (guest-kernel/vdso: nested cargo for the staticlib, then `cc -shared`
//! with vdso.lds and vdso.map) and hands its path to `include_bytes!` as `PVM_VDSO_IMAGE`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    for arg in ["-nostartfiles", "-nostdlib", "-static", "-Wl,--build-id=none"] {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
    println!("cargo:rustc-link-arg-bins=-T{dir}/linker.ld");
    println!("cargo:rerun-if-changed=linker.ld");
    println!("cargo:rerun-if-changed=build.rs");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    build_vdso(&Path::new(&dir).join("vdso"), &out);
}

/// The exported functions (`-u` pulls them out of the archive; vdso.map versions them).
const VDSO_EXPORTS: [&str; 5] = ["clock_gettime", "gettimeofday", "time", "clock_getres", "getcpu"];

fn build_vdso(src: &Path, out: &Path) {
    for f in ["Cargo.toml", "Cargo.lock", "vdso.lds", "vdso.map", "src/lib.rs", "src/vvar.rs", "src/image.rs"] {
        println!("cargo:rerun-if-changed={}", src.join(f).display());
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target_dir = out.join("vdso-target");
    let mut cmd = Command::new(cargo);
    cmd.current_dir(src)
        .args(["rustc", "--release", "--locked", "--features", "image", "--crate-type", "staticlib"])
        .args(["--target", "x86_64-unknown-linux-gnu", "--target-dir"])
        .arg(&target_dir);
    for var in ["RUSTFLAGS", "CARGO_BUILD_RUSTFLAGS", "CARGO_TARGET_DIR", "CARGO_BUILD_TARGET", "RUSTC_WORKSPACE_WRAPPER", "RUSTC_WRAPPER", "CARGO_MAKEFLAGS", "CARGO_PRIMARY_PACKAGE"] {
        cmd.env_remove(var);
    }
    // Position independent (the guest kernel's config asks for a static relocation model and
    // the large code model, which the encoded flags override entirely).
    cmd.env("CARGO_ENCODED_RUSTFLAGS", "-Crelocation-model=pic\x1f-Cpanic=abort");
    let status = cmd.status().expect("running the nested cargo for the vDSO");
    assert!(status.success(), "building the vDSO library failed");
    let lib = target_dir.join("x86_64-unknown-linux-gnu/release/libpvm_vdso.a");
    let so = out.join("vdso.so");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let mut link = Command::new(&cc);
    link.args(["-shared", "-nostdlib", "-Wl,-soname=linux-vdso.so.1", "-Wl,--hash-style=both", "-Wl,--gc-sections"])
        .args(["-Wl,-z,max-page-size=4096", "-Wl,--build-id=none", "-Wl,-Bsymbolic", "-Wl,--no-undefined", "-Wl,--eh-frame-hdr", "-Wl,-S"])
        .arg(format!("-Wl,-T,{}", src.join("vdso.lds").display()))
        .arg(format!("-Wl,--version-script={}", src.join("vdso.map").display()));
    for s in VDSO_EXPORTS {
        link.arg(format!("-Wl,-u,__vdso_{s}"));
    }
    link.arg(&lib).arg("-o").arg(&so);
    let status = link.status().unwrap_or_else(|e| panic!("running {cc} to link the vDSO: {e}"));
    assert!(status.success(), "linking the vDSO failed");
    println!("cargo:rustc-env=PVM_VDSO_IMAGE={}", so.display());
}
