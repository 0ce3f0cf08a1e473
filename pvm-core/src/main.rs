//! `pvm`: run a static Linux program in a guest on the software backend, or a container as an
//! OCI runtime (runc's command line, `oci`).
//!
//! Exit statuses follow `docker run`: the guest program's status (128+N when signal N killed
//! it), 125 for pvm's own failure, 126 when the program cannot be run, 127 when it is not
//! found.

mod bench;
mod boot;
mod cli;
mod exit;
mod info;
mod initramfs;
mod kernel_image;
mod mounts;
mod oci;
mod program;
mod signals;
mod stats_table;
mod tsc;

use std::process::ExitCode;

fn main() -> ExitCode {
    // F, the file server: pvm re-executed by itself (file_server::host).
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == file_server::SUBCOMMAND) {
        return file_server::process::main(&args[2..]);
    }
    let cli = match cli::parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    init_tracing(cli.verbose());
    match cli.command {
        cli::Command::Run(args) if args.bundle.is_some() => oci::run(&cli.global, &args),
        cli::Command::Run(args) => exit::run_and_exit(&args),
        cli::Command::Oci(cmd) => oci::main(&cli.global, &cmd),
        cli::Command::OciMonitor(args) => oci::monitor(&cli.global, &args),
        cli::Command::Info(args) => info::print(args.json),
        cli::Command::Bench(args) => bench::run(&args),
    }
}

fn init_tracing(verbose: bool) {
    let filter = if verbose { "debug" } else { "warn" };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PVM_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .try_init();
}
