//! Guest statistics for `pvm run --stats` (`guest_abi::stats::GuestStats` at `STATS_GPA`):
//! counters updated with atomic adds so every vCPU can count without a lock.

use core::sync::atomic::{AtomicU64, Ordering};
use guest_abi::layout::STATS_GPA;
use guest_abi::stats::{GuestStats, STATS_MAGIC, SYSCALL_SLOTS, TRAP_SLOTS};

static ENABLED: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

fn block() -> Option<*mut GuestStats> {
    ENABLED.load(Ordering::Relaxed).then(|| crate::mm::phys_to_virt(STATS_GPA).cast::<GuestStats>())
}

fn add(field: *mut u64, v: u64) {
    // SAFETY: field points into the statistics block in guest RAM (8-aligned, inside
    // STATS_MAX); it is only ever accessed atomically by the kernel (H reads it after
    // shutdown).
    unsafe { AtomicU64::from_ptr(field) }.fetch_add(v, Ordering::Relaxed);
}

fn set_max(field: *mut u64, v: u64) {
    // SAFETY: as in `add`.
    unsafe { AtomicU64::from_ptr(field) }.fetch_max(v, Ordering::Relaxed);
}

/// Zeroes the block and writes the magic (boot, vCPU 0).
pub fn init() {
    let p = crate::mm::phys_to_virt(STATS_GPA).cast::<GuestStats>();
    // SAFETY: the block is guest RAM reserved for statistics; nobody else uses it yet.
    unsafe {
        core::ptr::write_bytes(p.cast::<u8>(), 0, size_of::<GuestStats>());
        (*p).magic = STATS_MAGIC;
    }
    ENABLED.store(true, Ordering::Relaxed);
}

/// Counts one syscall `nr` that took `ns`.
pub fn syscall(nr: u64, ns: u64) {
    if let Some(p) = block() {
        let i = (nr as usize).min(SYSCALL_SLOTS - 1);
        // SAFETY: i < SYSCALL_SLOTS; raw field projections inside the block.
        unsafe {
            add(core::ptr::addr_of_mut!((*p).syscall_count[i]), 1);
            add(core::ptr::addr_of_mut!((*p).syscall_ns[i]), ns);
        }
    }
}

/// Counts a trap of kind `kind` (`TrapKind` as index).
pub fn trap(kind: usize) {
    if let Some(p) = block() {
        // SAFETY: index clamped.
        unsafe { add(core::ptr::addr_of_mut!((*p).traps[kind.min(TRAP_SLOTS - 1)]), 1) };
    }
}

/// Counts a direct switch (user → kernel → user without H) of `ns`.
pub fn direct_switch(ns: u64) {
    if let Some(p) = block() {
        // SAFETY: field projections inside the block.
        unsafe {
            add(core::ptr::addr_of_mut!((*p).direct_switches), 1);
            add(core::ptr::addr_of_mut!((*p).direct_switch_ns), ns);
        }
    }
}

/// Counts a page fault resolved by the kernel (`true`) or turned into a signal.
pub fn page_fault(resolved: bool) {
    if let Some(p) = block() {
        // SAFETY: field projections inside the block.
        unsafe {
            if resolved {
                add(core::ptr::addr_of_mut!((*p).page_faults_resolved), 1);
            } else {
                add(core::ptr::addr_of_mut!((*p).page_faults_signalled), 1);
            }
        }
    }
}

/// Counts a created process.
pub fn process_created() {
    if let Some(p) = block() {
        // SAFETY: field projection inside the block.
        unsafe { add(core::ptr::addr_of_mut!((*p).processes), 1) };
    }
}

/// Records memory use (bytes) now and as peak.
pub fn memory(used: u64, peak: u64) {
    if let Some(p) = block() {
        // SAFETY: field projections inside the block.
        unsafe {
            AtomicU64::from_ptr(core::ptr::addr_of_mut!((*p).mem_used)).store(used, Ordering::Relaxed);
            set_max(core::ptr::addr_of_mut!((*p).mem_used_peak), peak);
        }
    }
}

macro_rules! counter {
    ($(#[$doc:meta])* $name:ident, $field:ident) => {
        $(#[$doc])*
        pub fn $name() {
            if let Some(p) = block() {
                // SAFETY: field projection inside the block.
                unsafe { add(core::ptr::addr_of_mut!((*p).$field), 1) };
            }
        }
    };
}

counter!(
    /// Counts a lock wait that spun past `crate::sync::SPIN_THRESHOLD`.
    lock_spin_long, lock_spins_long
);
counter!(
    /// Counts a `YIELD_TO` lock-holder hint.
    lock_yield, lock_yields
);
counter!(
    /// Counts a thread stolen from another vCPU's run queue.
    sched_steal, sched_steals
);
counter!(
    /// Counts a wake-up sent to a halted vCPU.
    sched_ipi_wake, sched_ipi_wakes
);
