//! `native`: the benchmark program straight on the host kernel, pinned like every contender.
//! Every ratio in the report is to this runner.

use std::process::Command;

use super::{Outcome, Runner, check_lists, per_process, probe_output};
use crate::bench::catalog::{Bench, Hostfs};
use crate::bench::env::Env;
use crate::bench::startup;

/// The host itself.
pub struct Native;

impl Native {
    fn command(env: &Env, args: &[String]) -> Command {
        let mut cmd = Command::new(env.rootfs.join("lmb"));
        cmd.args(args).env_clear();
        cmd
    }
}

impl Runner for Native {
    fn name(&self) -> &'static str {
        "native"
    }

    fn summary(&self) -> &'static str {
        "the host kernel, no sandbox"
    }

    fn smp(&self) -> bool {
        true
    }

    fn hostfs(&self) -> bool {
        true
    }

    fn probe(&mut self, env: &Env) -> Result<String, String> {
        check_lists(&probe_output(env, Self::command(env, &["list".into()]))?)?;
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        Ok(format!("Linux {}", release.trim()))
    }

    fn run(
        &mut self,
        env: &Env,
        benches: &[&'static Bench],
        progress: &mut dyn FnMut(&str),
    ) -> Vec<Outcome> {
        let root = env.rootfs.to_string_lossy().into_owned();
        per_process(env, benches, progress, &|b| {
            let mut args = env.lmb_args(&root);
            match b.hostfs {
                None => {}
                Some(Hostfs::Data | Hostfs::Cold) => {
                    args.push("--data".into());
                    args.push(env.hostfs.data.clone()?.to_string_lossy().into_owned());
                }
                // The same tree pvm serves, as a chroot (lmb calls chroot(2) itself).
                Some(Hostfs::Debian) => {
                    args.push("--chroot".into());
                    args.push(env.hostfs.debian_copy.clone()?.to_string_lossy().into_owned());
                }
                Some(Hostfs::Startup(t)) => return startup::native_chroot_true(env.hostfs.tree(t)?),
            }
            args.push(b.lmb.to_string());
            Ok(Self::command(env, &args))
        })
    }
}
