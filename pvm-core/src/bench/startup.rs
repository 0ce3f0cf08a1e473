//! The start-up cases: the harness times whole runs of a command (natively `chroot TREE
//! /bin/true` done as a `chroot(2)` in the child before its exec, so no `chroot` program is
//! exec'd; in pvm `pvm run --read-only --rootfs TREE /bin/true`), from spawn to reaped exit,
//! pinned like every contender. One sample per run, in ns.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use super::env::Env;
use super::exec;
use super::runner::Outcome;

/// `env.startup_reps` runs of `make()`, each timed; the first failure ends the case with its
/// reason.
pub fn time(env: &Env, make: &dyn Fn() -> Result<Command, String>) -> Outcome {
    let limit = env.per_bench_timeout;
    let mut samples = Vec::with_capacity(env.startup_reps);
    for _ in 0..env.startup_reps {
        let cmd = match make() {
            Ok(c) => c,
            Err(why) => return Outcome::Failed(why),
        };
        match exec::run(cmd, &env.cpus, limit, limit, &mut |_| {}) {
            Ok(f) if f.status.is_some_and(|s| s.success()) => samples.push(f.elapsed.as_nanos() as f64),
            Ok(f) => return Outcome::Failed(format!("{}: {}", f.status_text(), f.stderr_tail(2))),
            Err(e) => return Outcome::Failed(format!("cannot start: {e}")),
        }
    }
    Outcome::Ok { iters: 1, samples }
}

/// `/bin/true` of `tree`, natively: the child calls `chroot(tree)` and `chdir("/")` before
/// its exec (needs root; the failure is the case's reason otherwise).
pub fn native_chroot_true(tree: &Path) -> Result<Command, String> {
    let root = CString::new(tree.as_os_str().as_bytes()).map_err(|_| format!("{} has a NUL byte", tree.display()))?;
    let mut cmd = Command::new("/bin/true");
    cmd.env_clear().env("PATH", "/usr/bin:/bin");
    // SAFETY: the closure runs between fork and exec and calls only chroot and chdir
    // (async-signal-safe) on memory it owns (`root` is moved in).
    unsafe {
        cmd.pre_exec(move || {
            if libc::chroot(root.as_ptr()) != 0 || libc::chdir(c"/".as_ptr()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(cmd)
}
