//! `uml`: Debian's `user-mode-linux` (the `linux` binary, ptrace-based) with the benchmark
//! root filesystem as its hostfs root; one boot per round, its `/init` runs each benchmark as
//! its own process.

use std::path::PathBuf;
use std::process::Command;

use super::{Outcome, Runner, booted, in_path, init_args, version_line};
use crate::bench::catalog::Bench;
use crate::bench::env::Env;

/// User-mode Linux.
#[derive(Default)]
pub struct Uml {
    linux: PathBuf,
}

impl Runner for Uml {
    fn name(&self) -> &'static str {
        "uml"
    }

    fn summary(&self) -> &'static str {
        "User-mode Linux (Debian user-mode-linux), hostfs root"
    }

    fn probe(&mut self, env: &Env) -> Result<String, String> {
        self.linux = in_path("linux")
            .ok_or("user-mode-linux is not installed (ci/bench-peers.sh installs it)")?;
        let version = version_line(env, &self.linux.to_string_lossy(), &["--version"])?;
        Ok(format!("user-mode-linux {version}"))
    }

    fn run(
        &mut self,
        env: &Env,
        benches: &[&'static Bench],
        progress: &mut dyn FnMut(&str),
    ) -> Vec<Outcome> {
        progress("booting");
        let mut cmd = Command::new(&self.linux);
        cmd.arg(format!("mem={}M", env.guest_mib))
            .args([
                "rootfstype=hostfs",
                "rw",
                "init=/init",
                "con0=null,fd:1",
                "con=null",
                "quiet",
            ])
            .arg(format!("rootflags={}", env.rootfs.display()))
            .arg("--")
            .args(init_args(env, benches))
            .env("TMPDIR", &env.scratch);
        booted(env, benches, progress, cmd)
    }
}
