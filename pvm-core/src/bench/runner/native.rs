//! `native`: the benchmark program straight on the host kernel, pinned like every contender.
//! Every ratio in the report is to this runner.

use std::process::Command;

use super::{Outcome, Runner, check_lists, per_process, probe_output};
use crate::bench::catalog::Bench;
use crate::bench::env::Env;

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
            args.push(b.lmb.to_string());
            Self::command(env, &args)
        })
    }
}
