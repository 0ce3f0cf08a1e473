//! The OCI runtime's command line, shaped after runc's (runc(8), `runc --help`) and youki's:
//! the global flags containerd's runc shim and podman's conmon pass, and one subcommand per
//! lifecycle operation of the OCI runtime spec (`runtime.md`, "Operations").

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// The subcommand names of [`OciCommand`] (for the usage-error status in `cli::parse`).
pub const VERBS: &[&str] =
    &["create", "start", "state", "kill", "delete", "ps", "list", "features", "spec", "exec", "pause", "resume", "update", "events"];

/// runc's global flags. Given before or after the subcommand.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// OCI: directory of the containers' state (one subdirectory per container ID).
    #[arg(long, global = true, default_value = "/run/pvm", value_name = "DIR")]
    pub root: PathBuf,
    /// OCI: append errors and warnings to FILE (containerd reads `log.json` on failure).
    #[arg(long, global = true, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// OCI: format of --log lines: `text` (logrus' key=value) or `json` (one object per line
    /// with `level`, `msg` and `time`, as runc writes).
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    /// OCI: log debug lines too (and the guest kernel's log, as `pvm run --verbose`).
    #[arg(long, global = true)]
    pub debug: bool,
    /// OCI: accepted and ignored: pvm makes no cgroup of its own (the container's limits are
    /// the VM's memory and vCPUs; the caller's cgroup holds pvm's processes).
    #[arg(long, global = true)]
    pub systemd_cgroup: bool,
    /// OCI: accepted and ignored (`true`, `false` or `auto`): pvm needs no privilege of its own
    /// (and `spec --rootless` writes the same default config).
    #[arg(long, global = true, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub rootless: Option<String>,
}

/// OCI runtime operations.
#[derive(Debug, Subcommand)]
pub enum OciCommand {
    /// Create a container from a bundle: boot its VM and wait for `start` (OCI `create`).
    Create(CreateArgs),
    /// Start the process of a created container (OCI `start`).
    Start(IdArg),
    /// Print the state of a container as JSON (OCI `state`).
    State(IdArg),
    /// Send a signal to a container (OCI `kill`): KILL, TERM, INT, HUP (names or numbers).
    Kill(KillArgs),
    /// Delete a stopped container's state (OCI `delete`); --force kills it first.
    Delete(DeleteArgs),
    /// List the host processes of a container.
    Ps(PsArgs),
    /// List the containers under --root.
    List(ListArgs),
    /// Print what this runtime supports, as runc's `features` JSON.
    Features,
    /// Write a default config.json into a bundle directory.
    Spec(SpecArgs),
    /// Run a process in a running container (not supported yet).
    Exec(Unsupported),
    /// Pause a container (not supported).
    Pause(Unsupported),
    /// Resume a paused container (not supported).
    Resume(Unsupported),
    /// Update a container's resources (not supported).
    Update(Unsupported),
    /// Stream a container's events (not supported).
    Events(Unsupported),
}

/// A container ID.
#[derive(Debug, Args)]
pub struct IdArg {
    /// Container ID.
    pub id: String,
}

/// `create` options (runc's).
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The bundle directory (holding config.json); default: the current directory.
    #[arg(long, short = 'b', default_value = ".", value_name = "DIR")]
    pub bundle: PathBuf,
    /// Write the container's host pid (pvm's container monitor) to FILE.
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// The console socket (refused: pvm has no consoles yet).
    #[arg(long, value_name = "SOCKET")]
    pub console_socket: Option<PathBuf>,
    /// Accepted and ignored (runc's pivot_root choice; the guest has its own root).
    #[arg(long)]
    pub no_pivot: bool,
    /// Accepted and ignored (runc's session keyring; the guest has no keyrings).
    #[arg(long)]
    pub no_new_keyring: bool,
    /// Extra fds to pass (only 0 is supported: the guest gets stdio only).
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    /// Container ID.
    pub id: String,
}

/// `kill` options.
#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal every process of the container (pvm: the same as without it, the VM is one).
    #[arg(long, short = 'a')]
    pub all: bool,
    /// Container ID.
    pub id: String,
    /// Signal, by name (`TERM`, `SIGTERM`) or number; default TERM.
    #[arg(default_value = "TERM")]
    pub signal: String,
}

/// `delete` options.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Kill the container first if it is not stopped.
    #[arg(long, short = 'f')]
    pub force: bool,
    /// Container ID.
    pub id: String,
}

/// `ps` options.
#[derive(Debug, Args)]
#[command(trailing_var_arg = true)]
pub struct PsArgs {
    /// `table` or `json` (a JSON array of host pids).
    #[arg(long, short = 'f', default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    /// Container ID.
    pub id: String,
    /// ps(1) options of runc's table format (refused: pvm prints PID and CMD).
    #[arg(allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

/// `list` options.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// `table` or `json`.
    #[arg(long, short = 'f', default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    /// Print the IDs only.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// `spec` options.
#[derive(Debug, Args)]
pub struct SpecArgs {
    /// Directory to write config.json into.
    #[arg(long, short = 'b', default_value = ".", value_name = "DIR")]
    pub bundle: PathBuf,
}

/// Arguments of an operation pvm does not support: taken whole so the error names it.
#[derive(Debug, Args)]
pub struct Unsupported {
    /// Anything.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

/// The hidden `oci-monitor` subcommand: the container's host process, started by `create`.
#[derive(Debug, Args)]
pub struct MonitorArgs {
    /// The fd to report readiness on (`ok` or `err STATUS MESSAGE`, then EOF).
    #[arg(long)]
    pub ready_fd: i32,
    /// Container ID.
    pub id: String,
}
