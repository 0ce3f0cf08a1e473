//! Per-vCPU time accounting for `/proc/stat` (and so `vmstat`, `top`): ns each vCPU spent
//! halted for lack of work (idle) and handling syscalls (system), and context switches. The
//! scheduler adds to them (`crate::sched`); user time is the rest of the vCPU's uptime.

use alloc::sync::Arc;
use core::sync::atomic::{AtomicU64, Ordering};
use guest_abi::MAX_VCPUS;

static IDLE_NS: [AtomicU64; MAX_VCPUS as usize] = [const { AtomicU64::new(0) }; MAX_VCPUS as usize];
static SYS_NS: [AtomicU64; MAX_VCPUS as usize] = [const { AtomicU64::new(0) }; MAX_VCPUS as usize];
static SWITCHES: AtomicU64 = AtomicU64::new(0);

/// vCPU `v` was halted for `ns`.
pub fn add_idle(v: u32, ns: u64) {
    if let Some(c) = IDLE_NS.get(v as usize) {
        c.fetch_add(ns, Ordering::Relaxed);
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

/// (user, system, idle) ns of vCPU `v` since boot.
pub fn times(v: u32) -> (u64, u64, u64) {
    let i = v as usize;
    let idle = IDLE_NS.get(i).map_or(0, |c| c.load(Ordering::Relaxed));
    let sys = SYS_NS.get(i).map_or(0, |c| c.load(Ordering::Relaxed));
    let up = crate::time::uptime_ns();
    (up.saturating_sub(idle).saturating_sub(sys), sys, idle)
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

/// (user, system) ns of process `p`: its time on a vCPU split by the syscall time.
pub fn process_times(p: &crate::proc::Process) -> (u64, u64) {
    let sys = p.sys_ns.load(Ordering::Relaxed);
    let run = p.run_ns.load(Ordering::Relaxed).max(sys);
    (run - sys, sys)
}
