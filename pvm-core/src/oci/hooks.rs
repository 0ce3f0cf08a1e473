//! OCI hooks (`config.md`, "POSIX-platform Hooks"): each hook is `path` run with `args`
//! (`args[0]` its argv[0]) and exactly `env`, the container's state JSON on its stdin, killed
//! and counted as failed after `timeout` seconds. pvm runs every hook on the host, in pvm's own
//! namespaces (createContainer and startContainer too, which runc runs inside the container's
//! namespaces: the guest has none a host program could enter).

use std::io::Write as _;
use std::os::unix::process::CommandExt as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use oci_spec::runtime::{Hook, State};

/// Runs `hooks` in order with `state` on stdin; stops at the first that fails.
///
/// # Errors
/// One line naming the hook `kind` and path: cannot start, exit status not 0, killed by a
/// signal, or past its timeout.
pub fn run(kind: &str, hooks: &[Hook], state: &State) -> Result<()> {
    let json = serde_json::to_vec(state)?;
    for hook in hooks {
        run_one(kind, hook, &json)?;
    }
    Ok(())
}

fn run_one(kind: &str, hook: &Hook, state: &[u8]) -> Result<()> {
    let path = hook.path();
    let shown = path.display();
    let args = hook.args().clone().unwrap_or_default();
    let mut cmd = Command::new(path);
    if let Some((argv0, rest)) = args.split_first() {
        cmd.arg0(argv0).args(rest);
    }
    cmd.env_clear();
    for e in hook.env().as_deref().unwrap_or_default() {
        if let Some((k, v)) = e.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped()).stdout(Stdio::null());
    let mut child = cmd.spawn().with_context(|| format!("{kind} hook {shown}: cannot run"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin gets EPIPE here, which is not its failure.
        let _ = stdin.write_all(state);
    }
    let deadline = hook.timeout().filter(|&t| t > 0).map(|t| Instant::now() + Duration::from_secs(t as u64));
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{kind} hook {shown}: timed out after {} s", hook.timeout().unwrap_or(0));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    if !status.success() {
        bail!("{kind} hook {shown}: failed ({status})");
    }
    Ok(())
}
