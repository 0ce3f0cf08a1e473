//! Backends of pvm: the boundary between VM assembly (`pvm-core`) and what runs the vCPUs.
//!
//! `pvm-core` builds a [`VmSetup`] (guest memory with the kernel image, boot info, launch
//! block and initramfs already written) and hands it to a [`Backend`], which runs the guest
//! kernel until it shuts down and returns a [`RunOutcome`] with statistics. Hypercalls that
//! every backend serves the same way (console, time, shutdown) live in [`devices`].
#![deny(missing_docs)]

pub mod devices;
pub mod detect;
pub mod kvm;
pub mod memory;
pub mod soft;
pub mod stats;
pub mod stop;

use std::time::Duration;

pub use memory::GuestRam;
pub use stats::RunStats;

/// One loadable segment of the guest kernel image, already copied into guest memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelSegment {
    /// Kernel virtual address (page aligned).
    pub vaddr: u64,
    /// GPA the segment was copied to (page aligned).
    pub gpa: u64,
    /// Length, bytes (page multiple).
    pub len: u64,
    /// `PROT_*` bits (`guest_abi::mapper::PROT_*`).
    pub prot: u32,
}

/// Everything a backend needs to start the VM.
pub struct VmSetup {
    /// Guest memory, with the kernel image, boot info, launch block and initramfs written.
    pub memory: GuestRam,
    /// Kernel segments (for the soft backend's K mapping and the KVM page tables).
    pub kernel_segments: Vec<KernelSegment>,
    /// Kernel entry point (virtual).
    pub kernel_entry: u64,
    /// Number of vCPUs.
    pub vcpus: u32,
    /// Where the VM's host threads run.
    pub placement: Placement,
    /// Guest kernel log lines are printed to stderr when their level is at most this.
    pub verbose: bool,
}

/// Where the host threads of a VM run (soft backend; `docs/ARCHITECTURE.md`, "Placement").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Placement {
    /// vCPU *i* on its own host CPU of the allowed set (round-robin when vCPUs outnumber
    /// CPUs), every thread working for vCPU *i* with it (`pvm run` without `--pin`).
    #[default]
    PerVcpu,
    /// Every thread and process of the VM on this host CPU (`--pin CPU`, for benchmarks).
    OneCpu(usize),
    /// No pinning (`--pin none`).
    Unpinned,
}

/// Why the VM ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExitReason {
    /// The first guest process exited with this status (0..=255).
    Exited(u8),
    /// The first guest process was killed by this signal.
    Signaled(u32),
    /// The first program was not found (errno and the guest kernel's reason, sanitised).
    NotFound(u64, Option<String>),
    /// The first program could not be executed (errno and the guest kernel's reason).
    CannotExecute(u64, Option<String>),
    /// The guest kernel reported a fatal error (it logged the reason).
    KernelPanic(u64),
    /// The guest-kernel process died without a shutdown hypercall (a guest kernel bug or a
    /// seccomp violation): how it ended.
    KernelDied(String),
    /// The guest kernel sent a shutdown this host does not understand.
    BadShutdown(u64, u64),
    /// pvm received this signal (SIGTERM, SIGINT, SIGHUP) and ended the VM ([`stop`]).
    Stopped(i32),
}

/// The result of a run.
#[derive(Debug)]
pub struct RunOutcome {
    /// Why the VM ended.
    pub reason: ExitReason,
    /// Wall time from backend start to shutdown.
    pub wall: Duration,
    /// Statistics gathered by the backend (and copied from the guest's block).
    pub stats: RunStats,
}

/// Errors of a backend (the VM could not run; a guest's own failure is an [`ExitReason`]).
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The switcher failed to create or drive a sandbox process.
    #[error("switcher: {0}")]
    Switcher(#[from] switcher::SwitcherError),
    /// A host system call failed.
    #[error("{what}: {source}")]
    Host {
        /// What was attempted.
        what: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// Guest memory could not be set up.
    #[error("guest memory: {0}")]
    Memory(#[from] memory::MemoryError),
    /// The requested backend cannot run on this host (e.g. `--backend kvm` without a usable
    /// `/dev/kvm`): the reason.
    #[error("{0}")]
    Unavailable(String),
    /// A KVM ioctl failed while setting up or running the VM.
    #[error("kvm: {what}: {source}")]
    Kvm {
        /// What was attempted.
        what: &'static str,
        /// The error the ioctl returned.
        source: vmm_sys_util::errno::Error,
    },
}

/// A way to run the guest kernel: `soft` (this crate's [`soft::SoftBackend`]) or `kvm`.
pub trait Backend {
    /// Short name (`"soft"`, `"kvm"`).
    fn name(&self) -> &'static str;
    /// Runs the VM to completion. Returns `Err` only when the VM could not run at all.
    fn run(&mut self, setup: VmSetup) -> Result<RunOutcome, BackendError>;
}
