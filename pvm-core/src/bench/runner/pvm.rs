//! `pvm-soft` and `pvm-kvm`: the benchmark program in a pvm guest (`pvm run` of this very
//! binary, the benchmark root filesystem as `--rootfs`), on the software backend or on KVM.

use std::process::Command;

use std::path::Path;

use super::{Outcome, Runner, check_lists, per_process, probe_output};
use crate::bench::catalog::{Bench, Hostfs, Smp};
use crate::bench::env::Env;

/// A pvm backend.
pub struct Pvm {
    backend: &'static str,
}

impl Pvm {
    /// The software backend (no hardware virtualization).
    pub fn soft() -> Self {
        Self { backend: "soft" }
    }

    /// The KVM backend (same guest kernel, `/dev/kvm`).
    pub fn kvm() -> Self {
        Self { backend: "kvm" }
    }

    fn command(&self, env: &Env, args: &[String]) -> Command {
        self.command_for(env, None, args)
    }

    /// `pvm run` of `lmb ARGS`; an SMP case gets `--cpus` and pvm's default placement (one
    /// host CPU per vCPU of the CPUs the runner restricts it to), and `--no-pv-lock-hints`
    /// when it runs without hints.
    fn command_for(&self, env: &Env, smp: Option<Smp>, args: &[String]) -> Command {
        self.command_in(env, smp, &env.rootfs, false, args)
    }

    /// `pvm run` of `/lmb ARGS` with `root` as `--rootfs` (`--read-only` when asked), as
    /// [`Self::command_for`].
    fn command_in(&self, env: &Env, smp: Option<Smp>, root: &Path, read_only: bool, args: &[String]) -> Command {
        let mut cmd = Command::new(&env.pvm_exe);
        cmd.arg("run").arg("--backend").arg(self.backend);
        if let Some(smp) = smp {
            cmd.arg("--cpus").arg(smp.vcpus.to_string());
            if !smp.hints {
                cmd.arg("--no-pv-lock-hints");
            }
        } else {
            self.pin_args(env, &mut cmd);
        }
        cmd.arg("--memory").arg(format!("{}M", env.guest_mib));
        if read_only {
            cmd.arg("--read-only");
        }
        cmd.arg("--rootfs").arg(root).arg("/lmb").args(args);
        cmd.env_remove("PVM_LOG");
        cmd
    }

    /// A start-up run: `pvm run --read-only --rootfs TREE /bin/true`, pinned as every case,
    /// with pvm's default memory (what a user types).
    fn startup_command(&self, env: &Env, tree: &Path) -> Command {
        let mut cmd = Command::new(&env.pvm_exe);
        cmd.arg("run").arg("--backend").arg(self.backend);
        self.pin_args(env, &mut cmd);
        cmd.arg("--read-only").arg("--rootfs").arg(tree).arg("/bin/true");
        cmd.env_remove("PVM_LOG");
        cmd
    }

    /// One vCPU per pinned CPU; with one CPU pvm pins the whole VM to it itself.
    fn pin_args(&self, env: &Env, cmd: &mut Command) {
        match env.cpus.cpus() {
            [one] => {
                cmd.arg("--pin").arg(one.to_string());
            }
            _ => {
                cmd.arg("--pin")
                    .arg("none")
                    .arg("--cpus")
                    .arg(env.vcpus().to_string());
            }
        }
    }
}

impl Pvm {
    /// `pvm info --json` must report hardware-accelerated KVM: on a software-only KVM (such as
    /// `kvm_pvm`, which emulates guest ring 0) pvm-kvm would measure the emulator.
    fn check_hardware_kvm(&self, env: &Env) -> Result<(), String> {
        let mut cmd = Command::new(&env.pvm_exe);
        cmd.args(["info", "--json"]);
        let out = probe_output(env, cmd).map_err(|e| format!("`pvm info --json` failed: {e}"))?;
        let info: serde_json::Value = serde_json::from_str(&out)
            .map_err(|e| format!("`pvm info --json` is not JSON: {e}"))?;
        let kvm = &info["kvm"];
        if kvm["hardware_accelerated"] == serde_json::Value::Bool(true) {
            return Ok(());
        }
        Err(format!(
            "this host's KVM is {} (module {}), not hardware-accelerated: guest ring 0 is \
             emulated, so pvm-kvm would measure the emulator (name it in --runners to run it anyway)",
            kvm["kind"].as_str().unwrap_or("unknown"),
            kvm["module"].as_str().unwrap_or("unknown"),
        ))
    }
}

impl Runner for Pvm {
    fn name(&self) -> &'static str {
        if self.backend == "kvm" {
            "pvm-kvm"
        } else {
            "pvm-soft"
        }
    }

    fn summary(&self) -> &'static str {
        if self.backend == "kvm" {
            "pvm's guest kernel on the host's /dev/kvm"
        } else {
            "pvm's software backend: seccomp/signal switcher, shadow paging, no VT-x"
        }
    }

    fn smp(&self) -> bool {
        self.backend == "soft"
    }

    fn hostfs(&self) -> bool {
        true
    }

    fn probe(&mut self, env: &Env) -> Result<String, String> {
        if self.backend == "kvm" {
            if !std::path::Path::new("/dev/kvm").exists() {
                return Err("no /dev/kvm on this host".into());
            }
            if !env.named.iter().any(|n| n == "pvm-kvm") {
                self.check_hardware_kvm(env)?;
            }
        }
        let out = probe_output(env, self.command(env, &["list".into()])).map_err(|e| {
            format!(
                "`pvm run --backend {}` does not work here: {e}",
                self.backend
            )
        })?;
        check_lists(&out)?;
        Ok(format!(
            "pvm {} --backend {}, {} vCPU",
            env!("CARGO_PKG_VERSION"),
            self.backend,
            env.vcpus()
        ))
    }

    fn run(
        &mut self,
        env: &Env,
        benches: &[&'static Bench],
        progress: &mut dyn FnMut(&str),
    ) -> Vec<Outcome> {
        per_process(env, benches, progress, &|b| {
            let mut args = env.lmb_args("");
            match b.hostfs {
                None => {}
                Some(Hostfs::Data | Hostfs::Cold) => {
                    env.hostfs.data.as_ref().map_err(Clone::clone)?;
                    args.extend(["--data".to_string(), "/data".to_string()]);
                }
                // The Debian tree (with /lmb added) as the read-only root.
                Some(Hostfs::Debian) => {
                    let root = env.hostfs.debian_copy.clone()?;
                    args.push(b.lmb.to_string());
                    return Ok(self.command_in(env, None, &root, true, &args));
                }
                Some(Hostfs::Startup(t)) => return Ok(self.startup_command(env, env.hostfs.tree(t)?)),
            }
            args.push(b.lmb.to_string());
            Ok(self.command_for(env, b.smp, &args))
        })
    }
}
