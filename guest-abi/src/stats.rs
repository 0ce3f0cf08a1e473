//! Guest-side statistics for `pvm run --stats`: the guest kernel counts what H cannot see
//! (direct switches, syscalls by number) at [`crate::layout::STATS_GPA`]; H reads the block
//! once after shutdown and only displays it (it is guest-written, never trusted).

/// Magic in [`GuestStats::magic`] (`"PVMSTAT\0"`).
pub const STATS_MAGIC: u64 = u64::from_le_bytes(*b"PVMSTAT\0");
/// Syscall numbers counted individually (`0 .. SYSCALL_SLOTS`); others go to the last slot.
pub const SYSCALL_SLOTS: usize = 512;
/// Trap kinds counted (indexed by [`crate::pvcs::TrapKind`]).
pub const TRAP_SLOTS: usize = 8;

/// The statistics block, written by the guest kernel, read by H after shutdown.
#[repr(C)]
pub struct GuestStats {
    /// [`STATS_MAGIC`] once the kernel initialised the block.
    pub magic: u64,
    /// Count of guest syscalls by number.
    pub syscall_count: [u64; SYSCALL_SLOTS],
    /// Total time in the guest kernel handling each syscall number, ns.
    pub syscall_ns: [u64; SYSCALL_SLOTS],
    /// User -> kernel -> user round trips that did not involve H (direct switches).
    pub direct_switches: u64,
    /// Total time of those round trips seen from the kernel (enter_user until trap, minus user
    /// time is not separable: this is wall time spent outside the kernel), ns.
    pub direct_switch_ns: u64,
    /// Traps by [`crate::pvcs::TrapKind`].
    pub traps: [u64; TRAP_SLOTS],
    /// Guest #PFs the kernel resolved itself (demand paging, copy-on-write).
    pub page_faults_resolved: u64,
    /// Guest #PFs that became a signal (SIGSEGV/SIGBUS) for the process.
    pub page_faults_signalled: u64,
    /// Peak guest memory in use (frames allocated), bytes.
    pub mem_used_peak: u64,
    /// Guest memory in use at shutdown, bytes.
    pub mem_used: u64,
    /// Processes created.
    pub processes: u64,
    /// Guest-kernel lock waits that spun past the spin threshold (each time the threshold is
    /// reached again counts once more).
    pub lock_spins_long: u64,
    /// `YIELD_TO(holder)` hypercalls made by those waiters (lock-holder hints).
    pub lock_yields: u64,
    /// Threads a vCPU took from another vCPU's run queue (idle stealing).
    pub sched_steals: u64,
    /// Wake-ups of a thread onto a halted vCPU (sent with `SEND_IPI`).
    pub sched_ipi_wakes: u64,
}

const _: () = assert!(core::mem::size_of::<GuestStats>() as u64 <= crate::layout::STATS_MAX);
