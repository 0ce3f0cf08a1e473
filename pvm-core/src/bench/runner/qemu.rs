//! `qemu-tcg`: Debian's `qemu-system-x86_64` in software emulation (TCG, no KVM) booting
//! Debian's `linux-image-amd64` kernel with the benchmark initramfs; one boot per round, its
//! `/init` runs each benchmark as its own process.

use std::path::PathBuf;
use std::process::Command;

use super::{Outcome, Runner, booted, in_path, init_args, version_line};
use crate::bench::catalog::Bench;
use crate::bench::env::Env;

/// QEMU, TCG.
#[derive(Default)]
pub struct Qemu {
    qemu: PathBuf,
    kernel: PathBuf,
}

/// The newest readable `/boot/vmlinuz-*` (Debian's linux-image-amd64 puts it there).
fn find_kernel() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/boot")
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
        })
        .filter(|p| std::fs::File::open(p).is_ok())
        .collect();
    found.sort();
    found.pop()
}

impl Runner for Qemu {
    fn name(&self) -> &'static str {
        "qemu-tcg"
    }

    fn summary(&self) -> &'static str {
        "QEMU full-system emulation (TCG), Debian kernel, initramfs"
    }

    fn probe(&mut self, env: &Env) -> Result<String, String> {
        self.qemu = in_path("qemu-system-x86_64")
            .ok_or("qemu-system-x86_64 is not installed (ci/bench-peers.sh installs it)")?;
        self.kernel =
            find_kernel().ok_or("no readable /boot/vmlinuz-* (install linux-image-amd64)")?;
        let version = version_line(env, &self.qemu.to_string_lossy(), &["--version"])?;
        let kernel = self
            .kernel
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(format!(
            "{version}, -accel tcg -cpu max -smp {}, kernel {kernel}",
            env.vcpus()
        ))
    }

    fn run(
        &mut self,
        env: &Env,
        benches: &[&'static Bench],
        progress: &mut dyn FnMut(&str),
    ) -> Vec<Outcome> {
        progress("booting");
        let mut cmd = Command::new(&self.qemu);
        cmd.args([
            "-accel",
            "tcg",
            "-cpu",
            "max",
            "-nographic",
            "-no-reboot",
            "-nodefaults",
        ])
        .args(["-serial", "stdio", "-smp", &env.vcpus().to_string()])
        .arg("-m")
        .arg(format!("{}M", env.guest_mib))
        .arg("-kernel")
        .arg(&self.kernel)
        .arg("-initrd")
        .arg(&env.initramfs)
        .arg("-append")
        .arg(format!(
            "console=ttyS0 quiet panic=-1 rdinit=/init -- {}",
            init_args(env, benches).join(" ")
        ));
        booted(env, benches, progress, cmd)
    }
}
