//! The contenders. Each runner is a small module that says whether this host has it (or why it
//! is skipped) and runs a list of benchmarks, one `lmb` process per benchmark; the shared
//! plumbing (spawning, parsing, turning a missing result into a failure with its reason) lives
//! here.

mod gvisor;
mod native;
mod pvm;
mod qemu;
mod uml;

use std::process::Command;

use super::catalog::{Bench, Hostfs};
use super::cpuset::CpuSet;
use super::env::Env;
use super::exec;
use super::parse::{self, Line};

/// What one benchmark gave in one round on one contender.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Samples (ns per operation) and the calibrated operations per repetition.
    Ok {
        /// Operations per repetition.
        iters: u64,
        /// ns per operation, one per repetition.
        samples: Vec<f64>,
    },
    /// No result, and why.
    Failed(String),
}

/// A contender.
pub trait Runner {
    /// Its name on the command line and in reports (`native`, `pvm-soft`, ...).
    fn name(&self) -> &'static str;
    /// One line on what it is; the CI and docs name exact versions.
    fn summary(&self) -> &'static str;
    /// Whether this host can run it: its version/configuration, or why it is skipped.
    fn probe(&mut self, env: &Env) -> Result<String, String>;
    /// Whether it runs the SMP cases (`Bench::smp`): native and pvm-soft.
    fn smp(&self) -> bool {
        false
    }
    /// Whether it runs the hostfs cases (`Bench::hostfs`): native, pvm-soft and pvm-kvm.
    fn hostfs(&self) -> bool {
        false
    }
    /// Whether it runs `b` at all.
    fn runs(&self, b: &Bench) -> bool {
        (b.smp.is_none() || self.smp()) && (b.hostfs.is_none() || self.hostfs())
    }
    /// Runs `benches` once each, calling `progress` with each benchmark's name as it starts.
    fn run(
        &mut self,
        env: &Env,
        benches: &[&'static Bench],
        progress: &mut dyn FnMut(&str),
    ) -> Vec<Outcome>;
}

/// Every runner name, in the default order (native first: every ratio is to it).
pub const NAMES: &[&str] = &["native", "pvm-soft", "pvm-kvm", "gvisor", "qemu-tcg", "uml"];

/// The runner called `name`.
pub fn by_name(name: &str) -> Option<Box<dyn Runner>> {
    Some(match name {
        "native" => Box::new(native::Native),
        "pvm-soft" => Box::new(pvm::Pvm::soft()),
        "pvm-kvm" => Box::new(pvm::Pvm::kvm()),
        "gvisor" => Box::new(gvisor::Gvisor::default()),
        "qemu-tcg" => Box::new(qemu::Qemu::default()),
        "uml" => Box::new(uml::Uml::default()),
        _ => return None,
    })
}

/// The outcome of `bench` among the lines of one process that ended as `finished` says.
fn outcome_of(bench: &str, lines: &[String], finished: &exec::Finished) -> Outcome {
    for l in lines {
        match parse::line(l) {
            Some(Line::Result {
                name,
                iters,
                samples,
            }) if name == bench => {
                return Outcome::Ok { iters, samples };
            }
            Some(Line::Failed { name, reason }) if name == bench => return Outcome::Failed(reason),
            _ => {}
        }
    }
    let tail = finished.stderr_tail(2);
    let mut why = format!("no result ({})", finished.status_text());
    if !tail.is_empty() {
        why.push_str(": ");
        why.push_str(&tail.chars().take(300).collect::<String>());
    }
    Outcome::Failed(why)
}

/// Runs `make(bench)` once per benchmark (for contenders that start quickly): an `lmb`
/// process, after dropping the host's page cache of the data file for the cold read; for a
/// start-up case `env.startup_reps` timed runs of the command. `make` fails with the reason
/// when the case's tree or data is missing.
fn per_process(
    env: &Env,
    benches: &[&'static Bench],
    progress: &mut dyn FnMut(&str),
    make: &dyn Fn(&Bench) -> Result<Command, String>,
) -> Vec<Outcome> {
    benches
        .iter()
        .map(|b| {
            progress(b.name);
            if matches!(b.hostfs, Some(Hostfs::Startup(_))) {
                return super::startup::time(env, &|| make(b));
            }
            if b.hostfs == Some(Hostfs::Cold) {
                let dropped = env.hostfs.big.clone().and_then(|big| super::hostfs::drop_cached(&big));
                if let Err(why) = dropped {
                    return Outcome::Failed(why);
                }
            }
            let cmd = match make(b) {
                Ok(c) => c,
                Err(why) => return Outcome::Failed(why),
            };
            let limit = env.per_bench_timeout;
            let cpus = match b.smp {
                None => env.cpus.clone(),
                Some(smp) => match CpuSet::first_allowed(smp.host_cpus as usize) {
                    Some(c) => c,
                    None => {
                        return Outcome::Failed(format!("needs {} host CPUs", smp.host_cpus));
                    }
                },
            };
            match exec::run(cmd, &cpus, limit, limit, &mut |_| {}) {
                Ok(f) => outcome_of(b.lmb, &f.stdout, &f),
                Err(e) => Outcome::Failed(format!("cannot start: {e}")),
            }
        })
        .collect()
}

/// Boots a guest with `cmd` whose `/init` (benches/programs/init.sh) runs every benchmark
/// (for contenders whose boot is too slow to repeat per benchmark).
fn booted(
    env: &Env,
    benches: &[&'static Bench],
    progress: &mut dyn FnMut(&str),
    cmd: Command,
) -> Vec<Outcome> {
    let n = u32::try_from(benches.len()).unwrap_or(u32::MAX);
    let timeout = env.boot_timeout + env.per_bench_timeout * n;
    // A guest that hangs in one benchmark prints nothing more: stop it after one benchmark's
    // limit (or the boot's, before the first) rather than after the whole batch's.
    let silence = env.boot_timeout.max(env.per_bench_timeout);
    let mut on_line = |l: &str| {
        if let Some(i) = l.find("lmb-start ") {
            progress(l[i + "lmb-start ".len()..].trim());
        }
    };
    match exec::run(cmd, &env.cpus, timeout, silence, &mut on_line) {
        Ok(f) => {
            let booted = f.stdout.iter().any(|l| l.contains("lmb-boot-ok"));
            benches
                .iter()
                .map(|b| {
                    if !booted {
                        return Outcome::Failed(format!(
                            "guest did not boot ({}): {}",
                            f.status_text(),
                            boot_failure(&f.stdout)
                        ));
                    }
                    outcome_of(b.lmb, &f.stdout, &f)
                })
                .collect()
        }
        Err(e) => benches
            .iter()
            .map(|_| Outcome::Failed(format!("cannot start: {e}")))
            .collect(),
    }
}

/// The guest arguments of [`booted`]: `LMB-OPTIONS BENCHMARKS`, each comma-separated (Linux
/// passes at most 32 arguments to init, fewer than the options and benchmarks together).
fn init_args(env: &Env, benches: &[&'static Bench]) -> [String; 2] {
    let names: Vec<&str> = benches.iter().map(|b| b.lmb).collect();
    [env.lmb_args("").join(","), names.join(",")]
}

/// The console line that says why a boot failed (a panic or a `Too many` complaint), else the
/// last lines.
fn boot_failure(lines: &[String]) -> String {
    lines
        .iter()
        .find(|l| l.contains("Kernel panic") || l.contains("Too many"))
        .map_or_else(
            || last_lines(lines, 2),
            |l| l.trim().chars().take(300).collect(),
        )
}

fn last_lines(lines: &[String], n: usize) -> String {
    let kept: Vec<&str> = lines
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .collect();
    kept[kept.len().saturating_sub(n)..]
        .join(" | ")
        .chars()
        .take(300)
        .collect()
}

/// Runs `cmd` to completion within `env.per_bench_timeout`, for probes: its stdout, or why not.
fn probe_output(env: &Env, cmd: Command) -> Result<String, String> {
    let limit = env.per_bench_timeout;
    let f = exec::run(cmd, &env.cpus, limit, limit, &mut |_| {})
        .map_err(|e| format!("cannot start: {e}"))?;
    match f.status {
        Some(s) if s.success() => Ok(f.stdout.join("\n")),
        _ => Err(format!("{}: {}", f.status_text(), f.stderr_tail(2))),
    }
}

/// The first line of `prog --version`-like output, or why it failed.
fn version_line(env: &Env, prog: &str, args: &[&str]) -> Result<String, String> {
    let mut cmd = Command::new(prog);
    cmd.args(args);
    let out = probe_output(env, cmd)?;
    Ok(out.lines().next().unwrap_or("").trim().to_string())
}

/// Whether `prog` is an executable in `PATH`; its full path.
fn in_path(prog: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(prog))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| {
                use std::os::unix::fs::PermissionsExt;
                m.is_file() && m.permissions().mode() & 0o111 != 0
            })
        })
}

/// `lmb list` in the guest must name the benchmarks: the functional probe of quick runners.
fn check_lists(out: &str) -> Result<(), String> {
    if out.lines().any(|l| l.starts_with("getppid ")) {
        Ok(())
    } else {
        Err(format!(
            "`lmb list` printed no benchmarks: {}",
            out.chars().take(200).collect::<String>()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_has_a_runner() {
        for n in NAMES {
            assert_eq!(by_name(n).map(|r| r.name()), Some(*n));
        }
        assert!(by_name("vmware").is_none());
    }

    #[test]
    fn a_missing_result_is_a_failure_with_the_reason() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo 'lmb-result a call 1 1 2.0 2.0 2.0'; echo 'lmb-failed b fork: ENOSYS'; echo oops >&2; exit 1"]);
        let f = exec::run(
            cmd,
            &super::super::cpuset::CpuSet::default(),
            std::time::Duration::from_secs(20),
            std::time::Duration::from_secs(20),
            &mut |_| {},
        )
        .expect("runs");
        assert_eq!(
            outcome_of("a", &f.stdout, &f),
            Outcome::Ok {
                iters: 1,
                samples: vec![2.0]
            }
        );
        assert_eq!(
            outcome_of("b", &f.stdout, &f),
            Outcome::Failed("fork: ENOSYS".into())
        );
        match outcome_of("c", &f.stdout, &f) {
            Outcome::Failed(why) => assert!(
                why.contains("exit status: 1") && why.contains("oops"),
                "{why}"
            ),
            Outcome::Ok { .. } => panic!("c has no result"),
        }
    }
}
