//! `gvisor`: Debian's `runsc` (gVisor), ptrace platform, one `runsc do` sandbox per benchmark
//! with the benchmark root filesystem as its root (`runsc do -root`).

use std::path::PathBuf;
use std::process::Command;

use super::{Outcome, Runner, check_lists, in_path, per_process, probe_output, version_line};
use crate::bench::catalog::Bench;
use crate::bench::env::Env;

/// gVisor's `runsc`.
#[derive(Default)]
pub struct Gvisor {
    runsc: PathBuf,
}

impl Gvisor {
    fn command(&self, env: &Env, args: &[String]) -> Command {
        let mut cmd = Command::new(&self.runsc);
        cmd.arg("--platform=ptrace")
            .arg("--network=none")
            .arg(format!(
                "--root={}",
                env.scratch.join("runsc-state").display()
            ))
            .arg("do")
            .arg("-quiet")
            .arg("-cwd")
            .arg("/")
            .arg("-root")
            .arg(&env.rootfs)
            .arg("/lmb")
            .args(args);
        cmd
    }
}

impl Runner for Gvisor {
    fn name(&self) -> &'static str {
        "gvisor"
    }

    fn summary(&self) -> &'static str {
        "gVisor (Debian runsc), ptrace platform, `runsc do`"
    }

    fn probe(&mut self, env: &Env) -> Result<String, String> {
        self.runsc =
            in_path("runsc").ok_or("runsc is not installed (ci/bench-peers.sh installs it)")?;
        let version = version_line(env, &self.runsc.to_string_lossy(), &["--version"])?;
        check_lists(&probe_output(env, self.command(env, &["list".into()]))?)?;
        Ok(format!("{version}, --platform=ptrace"))
    }

    fn run(
        &mut self,
        env: &Env,
        benches: &[&'static Bench],
        progress: &mut dyn FnMut(&str),
    ) -> Vec<Outcome> {
        per_process(env, benches, progress, &|b| {
            let mut args = env.lmb_args("");
            args.push(b.lmb.to_string());
            Ok(self.command(env, &args))
        })
    }
}
