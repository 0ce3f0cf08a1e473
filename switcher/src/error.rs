//! The crate's error type.

use crate::process::ExitInfo;

/// Errors of the switcher host library.
#[derive(Debug, thiserror::Error)]
pub enum SwitcherError {
    /// A host system call failed.
    #[error("{op} failed: {source}")]
    Os {
        /// What was attempted (the system call or step).
        op: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A spawn configuration was invalid (message says which field and why).
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// A mapper operation failed validation before anything was sent.
    #[error("invalid mapper operation {index}: {reason}")]
    InvalidMapOp {
        /// Index in the slice passed to [`crate::MapperChannel::apply`].
        index: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// U's mapper reported a failed operation (the ops after it were not applied).
    #[error("mapper operation {index} failed with errno {errno}")]
    MapperFailed {
        /// Index in the slice passed to [`crate::MapperChannel::apply`].
        index: usize,
        /// Linux errno.
        errno: i32,
    },
    /// The stub process exited or was killed.
    #[error("stub process is dead ({0})")]
    ProcessDead(ExitInfo),
    /// The stub process died during setup.
    #[error("stub process failed to start: {0}")]
    StartFailed(ExitInfo),
    /// The U mapper did not complete a batch in time although U is alive.
    #[error("timed out waiting for the U mapper")]
    MapperTimeout,
    /// The mapper channel broke (a timeout or a completion packet outside the protocol
    /// earlier): nothing more is sent through it, the U process must be ended.
    #[error("the U mapper channel is broken")]
    MapperBroken,
    /// The stub did not report ready in time.
    #[error("timed out waiting for the stub to start")]
    StartTimeout,
    /// Executing the stub in the child failed (errno from `execveat`).
    #[error("executing the stub failed: {0}")]
    Exec(std::io::Error),
    /// The host's signal-frame XSAVE image (bytes) does not fit the PVCS FPU area.
    #[error("host XSAVE image of {0} bytes exceeds the PVCS FPU area")]
    FpuTooLarge(u64),
    /// The host kernel does not enable FSGSBASE for user mode (needed by U).
    #[error("the host kernel does not enable user-mode FSGSBASE (Linux 5.9+ on a CPU with FSGSBASE)")]
    NoFsGsBase,
    /// The spawner thread is gone (a previous spawn panicked).
    #[error("the switcher spawner thread is gone")]
    SpawnerGone,
    /// A BPF program could not be assembled (message says why).
    #[error("BPF program error: {0}")]
    Bpf(String),
    /// The embedded stub image is malformed.
    #[error("embedded stub image is malformed: {0}")]
    BadImage(&'static str),
}

impl SwitcherError {
    /// The last OS error, tagged with `op`.
    pub(crate) fn last_os(op: &'static str) -> Self {
        Self::Os { op, source: std::io::Error::last_os_error() }
    }
}
