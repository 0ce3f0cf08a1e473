//! Per-vCPU time accounting for `/proc/stat` (and so `vmstat`, `top`): ns each vCPU spent
//! halted for lack of work (idle) and handling syscalls (system), and context switches. The
//! scheduler adds to them (`crate::sched`); user time is the rest of the vCPU's uptime.
//!
//! Readers need each figure to be monotonic (`top` and `vmstat` print the difference of two
//! samples, and a smaller second sample shows as a huge unsigned percentage). A halt in
//! progress counts as idle up to now ([`halt_begins`]), and each reported figure is clamped to
//! at least what was reported before (as Linux's `cputime_adjust` keeps a task's times
//! monotonic), which also covers a halt ending between the two loads of a reader.

use alloc::sync::Arc;
use core::sync::atomic::{AtomicU64, Ordering};
use guest_abi::MAX_VCPUS;

static IDLE_NS: [AtomicU64; MAX_VCPUS as usize] = [const { AtomicU64::new(0) }; MAX_VCPUS as usize];
static SYS_NS: [AtomicU64; MAX_VCPUS as usize] = [const { AtomicU64::new(0) }; MAX_VCPUS as usize];
static SWITCHES: AtomicU64 = AtomicU64::new(0);
/// Monotonic ns at which vCPU `v`'s current halt began; 0 when it is not halted.
static HALTED_SINCE: [AtomicU64; MAX_VCPUS as usize] = [const { AtomicU64::new(0) }; MAX_VCPUS as usize];
/// The (user, system, idle) ns last reported for each vCPU, to keep them monotonic.
static REPORTED: [[AtomicU64; 3]; MAX_VCPUS as usize] = [const { [const { AtomicU64::new(0) }; 3] }; MAX_VCPUS as usize];

/// vCPU `v` halts now (monotonic ns `at`); [`add_idle`] ends it.
pub fn halt_begins(v: u32, at: u64) {
    if let Some(c) = HALTED_SINCE.get(v as usize) {
        c.store(at.max(1), Ordering::Relaxed);
    }
}

/// vCPU `v` was halted for `ns` (ends the halt [`halt_begins`] started).
pub fn add_idle(v: u32, ns: u64) {
    if let Some(c) = IDLE_NS.get(v as usize) {
        c.fetch_add(ns, Ordering::Relaxed);
    }
    if let Some(c) = HALTED_SINCE.get(v as usize) {
        c.store(0, Ordering::Relaxed);
    }
}

/// vCPU `v` spent `ns` in the kernel for a syscall.
pub fn add_sys(v: u32, ns: u64) {
    if let Some(c) = SYS_NS.get(v as usize) {
        c.fetch_add(ns, Ordering::Relaxed);
    }
}

/// A thread was switched to.
pub fn switched() {
    SWITCHES.fetch_add(1, Ordering::Relaxed);
}

/// (user, system, idle) ns of vCPU `v` since boot, each never less than before.
pub fn times(v: u32) -> (u64, u64, u64) {
    let i = v as usize;
    let Some(reported) = REPORTED.get(i) else { return (0, 0, 0) };
    let up = crate::time::uptime_ns();
    let now = crate::time::monotonic_ns();
    let since = HALTED_SINCE[i].load(Ordering::Relaxed);
    let ongoing = if since == 0 { 0 } else { now.saturating_sub(since) };
    let idle = IDLE_NS[i].load(Ordering::Relaxed) + ongoing;
    let sys = SYS_NS[i].load(Ordering::Relaxed);
    let user = up.saturating_sub(idle).saturating_sub(sys);
    let keep = |k: usize, x: u64| reported[k].fetch_max(x, Ordering::Relaxed).max(x);
    (keep(0, user), keep(1, sys), keep(2, idle))
}

/// Context switches since boot.
pub fn switches() -> u64 {
    SWITCHES.load(Ordering::Relaxed)
}

/// Adds the time from [`RunTime::start`] to its drop to the process's `run_ns` (one stay of a
/// thread on a vCPU, `crate::sched::run_thread`).
pub struct RunTime(Arc<crate::proc::Process>, u64);

impl RunTime {
    /// Starts timing a thread of `p`.
    pub fn start(p: &Arc<crate::proc::Process>) -> Self {
        RunTime(p.clone(), crate::time::monotonic_ns())
    }
}

impl Drop for RunTime {
    fn drop(&mut self) {
        self.0.run_ns.fetch_add(crate::time::monotonic_ns().saturating_sub(self.1), Ordering::Relaxed);
    }
}

/// (user, system) ns of process `p`: its time on a vCPU split by the syscall time, each
/// never less than before.
pub fn process_times(p: &crate::proc::Process) -> (u64, u64) {
    let sys = p.sys_ns.load(Ordering::Relaxed);
    let run = p.run_ns.load(Ordering::Relaxed).max(sys);
    // A syscall's time is added when it ends, the stay's only when the thread leaves the
    // vCPU: `run - sys` alone could shrink between two reads.
    let user = run - sys;
    (p.user_reported_ns.fetch_max(user, Ordering::Relaxed).max(user), sys)
}
