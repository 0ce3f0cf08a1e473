//! `pvm run` from parsed arguments to an exit status, mapped in one place:
//! guest status, 128+N for a guest killed by signal N, 125 for pvm's own failure, 126 when
//! the program cannot be run, 127 when it is not found (`docker run`'s convention).

use std::process::ExitCode;

use guest_abi::Backend as BackendKind;
use guest_abi::hypercall::panic_code::BOOT_OUT_OF_MEMORY;
use host_adapter::detect::{self, BackendChoice, BackendRequest, KvmKind, KvmProbe};
use host_adapter::kvm::KvmBackend;
use host_adapter::soft::SoftBackend;
use host_adapter::{Backend, ExitReason, Placement};

use crate::boot::{self, BootOptions};
use crate::cli::{Pin, RunArgs};
use crate::program::{self, ProgramError};
use crate::stats_table;

/// pvm's own failure.
const PVM_FAILED: u8 = 125;
/// The program cannot be run.
const CANNOT_EXECUTE: u8 = 126;
/// The program was not found.
const NOT_FOUND: u8 = 127;

fn fail(code: u8, msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("pvm: {msg}");
    ExitCode::from(code)
}

/// Why a VM did not get to run: the exit status (125, 126, 127, or 128+N after stop signal N)
/// and the line to print (`None`: already printed, or nothing to say).
#[derive(Debug)]
pub struct Failure {
    /// Exit status.
    pub code: u8,
    /// One line, without the `pvm: ` prefix.
    pub msg: Option<String>,
}

fn failure(code: u8, msg: impl std::fmt::Display) -> Failure {
    Failure { code, msg: Some(msg.to_string()) }
}

/// What waits between assembling a VM and starting its first vCPU: nothing for `pvm run`;
/// for an OCI container, the monitor reports to `pvm create` and waits for `pvm start`
/// (`crate::oci::lifecycle`).
pub trait Gate {
    /// The VM could not be assembled (called once, before the status is returned); returns
    /// whether the gate reported the failure's line itself (else it goes to stderr).
    fn failed(&mut self, failure: &Failure) -> bool;
    /// The VM is assembled and F serves; returns when it may run, or why it must not.
    ///
    /// # Errors
    /// A [`Failure`] ends the run with its status.
    fn ready(&mut self) -> Result<(), Failure>;
}

/// `pvm run`'s gate: the VM runs at once.
struct NoGate;

impl Gate for NoGate {
    fn failed(&mut self, _: &Failure) -> bool {
        false
    }
    fn ready(&mut self) -> Result<(), Failure> {
        Ok(())
    }
}

/// The message a shell prints for a child killed by `sig` (bash prints none for SIGINT and
/// SIGPIPE).
fn signal_message(sig: u32) -> Option<String> {
    if sig == libc::SIGINT as u32 || sig == libc::SIGPIPE as u32 {
        return None;
    }
    // SAFETY: strsignal returns a pointer to a static or thread-local NUL-terminated string.
    let p = unsafe { libc::strsignal(sig as i32) };
    if p.is_null() {
        return Some(format!("Signal {sig}"));
    }
    // SAFETY: non-null, NUL-terminated (strsignal's contract); copied out at once.
    Some(unsafe { std::ffi::CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

/// The guest kernel's reason without its own `exec PATH: ` prefix (pvm names the program).
fn strip_exec_prefix(reason: String) -> String {
    match reason.strip_prefix("exec ").and_then(|r| r.split_once(": ")) {
        Some((_, rest)) => rest.to_string(),
        None => reason,
    }
}

fn errno_text(errno: u64) -> String {
    std::io::Error::from_raw_os_error(i32::try_from(errno).unwrap_or(0)).to_string()
}

/// Runs `pvm run` and returns the exit status. Every process pvm started has been killed
/// and reaped by then, on every path (the backends own their sandbox processes and reap them
/// before they return). After SIGTERM, SIGINT or SIGHUP pvm ends the VM the same way and then
/// dies of that signal ([`crate::signals`]).
pub fn run_and_exit(args: &RunArgs) -> ExitCode {
    crate::signals::watch();
    let code = run_gated(args, &mut NoGate);
    crate::signals::die_if_stopped();
    code
}

/// The one way pvm boots a guest, for `pvm run` and the OCI container monitor: assembles the
/// VM from `args`, starts F, asks `gate` whether to run, runs the VM and maps its end to an
/// exit status. Call [`crate::signals::watch`] first and [`crate::signals::die_if_stopped`]
/// after.
pub fn run_gated(args: &RunArgs, gate: &mut dyn Gate) -> ExitCode {
    match run(args, gate) {
        Ok(code) => code,
        Err(f) => {
            if !gate.failed(&f)
                && let Some(msg) = &f.msg
            {
                eprintln!("pvm: {msg}");
            }
            ExitCode::from(f.code)
        }
    }
}

fn run(args: &RunArgs, gate: &mut dyn Gate) -> Result<ExitCode, Failure> {
    let t_start = std::time::Instant::now();
    // The TSC is compared with CLOCK_MONOTONIC over the set-up below (crate::tsc).
    let tsc = crate::tsc::TscCalibration::start();
    let request = match args.backend.as_str() {
        "kvm" => BackendRequest::Kvm,
        "auto" => BackendRequest::Auto,
        _ => BackendRequest::Soft,
    };
    let (choice, software_kvm) = if request == BackendRequest::Soft {
        (BackendChoice::Soft, false)
    } else {
        let probe = KvmProbe::probe();
        match detect::select(request, &probe) {
            Ok((choice, why)) => {
                if args.verbose > 0 {
                    eprintln!("pvm: {why}");
                }
                (choice, probe.kind() == KvmKind::Software)
            }
            Err(e) => return Err(failure(PVM_FAILED, format!("--backend kvm: {e}"))),
        }
    };
    let launch = match program::resolve(args) {
        Ok(l) => l,
        Err(e @ ProgramError::NotFound(_)) => return Err(failure(NOT_FOUND, e)),
        Err(e @ ProgramError::CannotExecute { .. }) => return Err(failure(CANNOT_EXECUTE, e)),
        Err(e) => return Err(failure(PVM_FAILED, e)),
    };
    let placement = match args.pin {
        Some(Pin::None) => Placement::Unpinned,
        Some(Pin::Cpu(c)) => Placement::OneCpu(c),
        None => Placement::PerVcpu,
    };
    let opts = BootOptions {
        memory: args.memory,
        vcpus: args.cpus,
        placement,
        verbose: args.verbose,
        pids_limit: args.pids_limit,
        // Only where guest ring 0 is emulated (software KVM) are copies cheaper in H.
        bulk_mem_min: if choice == BackendChoice::Kvm && software_kvm { boot::SOFTWARE_KVM_BULK_MEM_MIN } else { 0 },
        pv_features: if args.no_pv_lock_hints { 0 } else { guest_abi::boot::PV_LOCK_HINTS },
        hostname: args.hostname.clone(),
    };
    let kind = match choice {
        BackendChoice::Soft => BackendKind::Soft,
        BackendChoice::Kvm => BackendKind::Kvm,
    };
    let t_resolved = t_start.elapsed();
    let (memory, server) = match boot::memory(&launch, &opts) {
        Ok(m) => m,
        Err(e) => return Err(failure(PVM_FAILED, e)),
    };
    // F is spawned as soon as guest memory holds its config page, and H goes on setting up
    // and booting the VM while F execs and enters its sandbox (file_server::host). F runs
    // while the VM does; dropping it (after `backend.run`, or on an early return) kills and
    // reaps it. Spawned from this thread, which lives as long as the VM (the parent-death
    // signal follows the forking thread).
    let file_server = match server.map(|cfg| file_server::FileServer::start(&cfg, memory.fd())).transpose() {
        Ok(f) => f,
        Err(e) => return Err(failure(PVM_FAILED, e)),
    };
    if let Some(f) = &file_server {
        tracing::debug!(pid = f.pid(), "file server spawned");
    }
    let t_spawned = t_start.elapsed();
    let setup = match boot::assemble(memory, &launch, &opts, kind, &tsc) {
        Ok(s) => s,
        Err(e) => return Err(failure(PVM_FAILED, e)),
    };
    let t_assembled = t_start.elapsed();
    let mut backend: Box<dyn Backend> = match choice {
        BackendChoice::Soft => Box::new(SoftBackend),
        BackendChoice::Kvm => Box::new(KvmBackend),
    };
    if let Some(sig) = host_adapter::stop::requested() {
        // A stop signal came during setup: start nothing (run_and_exit dies of it).
        return Err(Failure { code: 128u8.saturating_add(sig as u8), msg: None });
    }
    gate.ready()?;
    tracing::debug!(backend = backend.name(), "starting the VM");
    let outcome = match backend.run(setup) {
        Ok(o) => o,
        Err(e) => return Ok(fail(PVM_FAILED, format!("the {} backend failed: {e}", backend.name()))),
    };
    tracing::debug!(resolved = ?t_resolved, spawned = ?t_spawned, assembled = ?t_assembled, ran = ?t_start.elapsed(), "run phases");
    if file_server.as_ref().is_some_and(file_server::FileServer::failed_to_start) {
        // The guest saw EIO from hostfs; F (or its watcher) printed why.
        return Ok(ExitCode::from(PVM_FAILED));
    }
    if args.stats {
        stats_table::print(&outcome, backend.name());
    }
    let shown = launch.argv.first().cloned().unwrap_or_default();
    Ok(match outcome.reason {
        ExitReason::Exited(code) => ExitCode::from(code),
        ExitReason::Signaled(sig) => {
            if let Some(msg) = signal_message(sig) {
                eprintln!("{msg}");
            }
            ExitCode::from(128u8.saturating_add(sig as u8))
        }
        ExitReason::NotFound(errno, reason) => {
            fail(NOT_FOUND, format!("{shown}: {}", reason.map_or_else(|| errno_text(errno), strip_exec_prefix)))
        }
        ExitReason::CannotExecute(errno, reason) => fail(
            CANNOT_EXECUTE,
            format!("{shown}: cannot execute: {}", reason.map_or_else(|| errno_text(errno), strip_exec_prefix)),
        ),
        ExitReason::KernelPanic(BOOT_OUT_OF_MEMORY) => fail(
            PVM_FAILED,
            format!("--memory {} is too small for this root filesystem: the guest kernel ran out of memory unpacking it", boot::show_size(args.memory)),
        ),
        ExitReason::KernelPanic(code) => {
            fail(PVM_FAILED, format!("the guest kernel failed (code {code}); run with --verbose for its log"))
        }
        ExitReason::KernelDied(how) => fail(PVM_FAILED, format!("the VM failed: {how}")),
        // Not reached in practice: run_and_exit dies of the signal first.
        ExitReason::Stopped(sig) => ExitCode::from(128u8.saturating_add(sig as u8)),
        ExitReason::BadShutdown(kind, value) => {
            fail(PVM_FAILED, format!("the guest kernel sent an unknown shutdown ({kind}, {value})"))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_signal_messages() {
        assert_eq!(signal_message(11).as_deref(), Some("Segmentation fault"));
        assert_eq!(signal_message(9).as_deref(), Some("Killed"));
        assert_eq!(signal_message(13), None);
    }
}
