//! pvm as an OCI runtime with runc's command line (`create`, `start`, `state`, `kill`,
//! `delete`, `ps`, `list`, `features`, `spec`; `run --bundle`), for podman, containerd's runc
//! shim and Kubernetes' RuntimeClass. See docs/oci.md for what config.json fields mean here.
//!
//! Files: [`cli`] (flags), [`state`] (state directory, lock, status), [`config`] (config.json
//! to the VM), [`lifecycle`] (operations), [`monitor`] (the container's host process), [`hooks`], [`features`]
//! (`features` and `spec`), [`signal`] (names), [`log`] (`--log`), [`rootfs`] (mount points).

pub mod cli;
pub mod config;
pub mod features;
pub mod hooks;
pub mod lifecycle;
pub mod log;
pub mod monitor;
pub mod rootfs;
pub mod signal;
pub mod state;

use std::process::ExitCode;

use cli::{GlobalArgs, OciCommand};

/// Runs one OCI command; errors are one line on stderr and in --log, with status 1 (runc's).
pub fn main(g: &GlobalArgs, cmd: &OciCommand) -> ExitCode {
    log::init(g, true);
    let r = match cmd {
        OciCommand::Create(a) => lifecycle::create(g, &a.into()).map(drop),
        OciCommand::Start(a) => lifecycle::start(g, &a.id),
        OciCommand::State(a) => lifecycle::print_state(g, &a.id),
        OciCommand::Kill(a) => lifecycle::kill(g, &a.id, &a.signal),
        OciCommand::Delete(a) => lifecycle::delete(g, &a.id, a.force),
        OciCommand::Ps(a) => lifecycle::ps(g, &a.id, &a.format, &a.ps_args),
        OciCommand::List(a) => lifecycle::list(g, &a.format, a.quiet),
        OciCommand::Features => serde_json::to_string_pretty(&features::features()).map(|s| println!("{s}")).map_err(Into::into),
        OciCommand::Spec(a) => features::write_spec(&a.bundle),
        OciCommand::Exec(_) => Err(anyhow::anyhow!(
            "exec is not supported yet: it needs a control channel from pvm into the running guest kernel (issue 14, item 5)"
        )),
        OciCommand::Pause(_) | OciCommand::Resume(_) => {
            Err(anyhow::anyhow!("pause and resume are not supported by pvm (no freezer for the VM yet)"))
        }
        OciCommand::Update(_) => Err(anyhow::anyhow!("update is not supported: a VM's memory and vCPUs are fixed at create")),
        OciCommand::Events(_) => Err(anyhow::anyhow!("events is not supported by pvm")),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error(&format!("{e:#}"));
            ExitCode::from(1)
        }
    }
}

/// The container monitor (`pvm oci-monitor`), started by `create`.
pub fn monitor(g: &GlobalArgs, a: &cli::MonitorArgs) -> ExitCode {
    log::init(g, false);
    monitor::monitor(g, a)
}

/// `pvm run --bundle DIR ID`.
pub fn run(g: &GlobalArgs, args: &crate::cli::RunArgs) -> ExitCode {
    log::init(g, true);
    lifecycle::run(g, args)
}
