//! Run statistics: the VM-exit-style breakdown `pvm run --stats` prints.

use guest_abi::hypercall::HYPERCALL_COUNT;

/// Count and total time of one kind of transition.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counter {
    /// Number of events.
    pub count: u64,
    /// Total time, ns.
    pub total_ns: u64,
}

impl Counter {
    /// Adds one event of `ns` nanoseconds.
    pub fn add(&mut self, ns: u64) {
        self.count += 1;
        self.total_ns += ns;
    }

    /// Adds another counter.
    pub fn merge(&mut self, other: Counter) {
        self.count += other.count;
        self.total_ns += other.total_ns;
    }

    /// Mean time per event, ns (0 without events).
    pub fn mean_ns(&self) -> u64 {
        self.total_ns.checked_div(self.count).unwrap_or(0)
    }
}

/// Shadow-MMU totals over all spaces of the run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShadowTotals {
    /// Shadow faults the shadow filled.
    pub filled: Counter,
    /// Shadow faults the guest had to handle as its own #PF.
    pub injected: Counter,
    /// Prefault hypercalls.
    pub prefaults: Counter,
    /// Flushes (range and full).
    pub flushes: Counter,
    /// Pages mapped into shadows.
    pub pages_mapped: u64,
    /// Mapper operations issued (mmap/munmap/mprotect in U processes).
    pub mapper_ops: u64,
    /// Mapper batches (handoffs to a mapper thread).
    pub mapper_batches: Counter,
    /// Host VMAs: the most live at once in all shadows together (from the shadows' interval
    /// maps, which model Linux's merging of adjacent mappings).
    pub host_vmas_peak: u64,
    /// Shadow spaces (U processes) created.
    pub spaces_created: u64,
    /// Shadow spaces that reused a pooled U process.
    pub spaces_reused: u64,
    /// Most shadow spaces live at once.
    pub spaces_peak: u64,
}

/// Guest-side figures copied from the guest statistics block (guest-written: display only).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GuestFigures {
    /// `(syscall number, count, total ns)`, most frequent first.
    pub syscalls: Vec<(u32, u64, u64)>,
    /// Direct switches (user -> guest kernel -> user without H).
    pub direct_switches: Counter,
    /// Traps by kind name.
    pub traps: Vec<(&'static str, u64)>,
    /// Guest page faults resolved by the guest kernel.
    pub page_faults_resolved: u64,
    /// Guest page faults that became signals.
    pub page_faults_signalled: u64,
    /// Peak guest memory in use, bytes.
    pub mem_used_peak: u64,
    /// Guest processes created.
    pub processes: u64,
    /// Guest-kernel lock waits past the spin threshold, and `YIELD_TO` hints they made.
    pub lock_spins_long: u64,
    /// `YIELD_TO` lock-holder hints.
    pub lock_yields: u64,
    /// Threads stolen from another vCPU's run queue by an idle vCPU.
    pub sched_steals: u64,
    /// Wake-ups of threads onto halted vCPUs (IPIs sent).
    pub sched_ipi_wakes: u64,
}

/// How `YIELD_TO` hypercalls ended (soft backend).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct YieldTotals {
    /// Yields that ended because the lock holder made progress, with the time spent aside.
    pub progressed: Counter,
    /// Yields that ended at the timeout.
    pub timed_out: Counter,
    /// Yields that let the holder's thread run on the waiter's host CPU too.
    pub boosted: u64,
}

/// Everything `--stats` shows.
#[derive(Clone, Debug, Default)]
pub struct RunStats {
    /// Hypercalls by number (index = number - 1).
    pub hypercalls: [Counter; HYPERCALL_COUNT],
    /// Shadow MMU totals.
    pub shadow: ShadowTotals,
    /// Guest-side figures (absent if the guest never initialised its block).
    pub guest: Option<GuestFigures>,
    /// VM exits to H by reason, with H's handling time (KVM backend; empty on soft).
    pub exits: Vec<(&'static str, Counter)>,
    /// How `YIELD_TO` hypercalls ended.
    pub yields: YieldTotals,
}

/// Reads the guest statistics block once (guest-written; sizes are fixed so nothing in it can
/// make H misbehave). `None` if the guest never initialised it.
pub fn read_guest_stats(ram: &crate::GuestRam) -> Option<GuestFigures> {
    use guest_abi::stats::{GuestStats, STATS_MAGIC, SYSCALL_SLOTS};
    let mut raw = vec![0u8; size_of::<GuestStats>()];
    ram.read(guest_abi::layout::STATS_GPA, &mut raw).ok()?;
    // SAFETY: `raw` holds exactly size_of::<GuestStats>() bytes and GuestStats is plain u64s,
    // valid for any bit pattern; read_unaligned copes with the Vec's alignment.
    let s: GuestStats = unsafe { std::ptr::read_unaligned(raw.as_ptr().cast::<GuestStats>()) };
    if s.magic != STATS_MAGIC {
        return None;
    }
    let mut syscalls: Vec<(u32, u64, u64)> = (0..SYSCALL_SLOTS)
        .filter(|&i| s.syscall_count[i] != 0)
        .map(|i| (i as u32, s.syscall_count[i], s.syscall_ns[i]))
        .collect();
    syscalls.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    const KINDS: [&str; 6] = ["none", "syscall", "page fault", "exception", "interrupt", "space died"];
    let traps = KINDS.iter().enumerate().skip(1).map(|(i, k)| (*k, s.traps[i])).collect();
    Some(GuestFigures {
        syscalls,
        direct_switches: Counter { count: s.direct_switches, total_ns: s.direct_switch_ns },
        traps,
        page_faults_resolved: s.page_faults_resolved,
        page_faults_signalled: s.page_faults_signalled,
        mem_used_peak: s.mem_used_peak,
        processes: s.processes,
        lock_spins_long: s.lock_spins_long,
        lock_yields: s.lock_yields,
        sched_steals: s.sched_steals,
        sched_ipi_wakes: s.sched_ipi_wakes,
    })
}
