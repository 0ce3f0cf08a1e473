//! Where the threads of a soft-backend VM run (`docs/ARCHITECTURE.md`, "Placement").
//!
//! [`crate::Placement::PerVcpu`] (the default): vCPU *i* gets host CPU `allowed[i % n]` of the
//! CPUs pvm may use (`sched_getaffinity`), and every thread that works for vCPU *i* runs there
//! only: H's hypercall thread, K's vCPU thread, and in every U the guest thread and the mapper
//! thread of vCPU *i*. A direct switch (K <-> U), a hypercall (K <-> H) and a shadow fill
//! (H <-> mapper) of one vCPU then never cross CPUs (a cross-CPU futex wakeup costs 35-60 us
//! on these VMs, one on the same CPU about 1 us). H's other threads (monitor, watchdog,
//! spawner, signal thread) keep the whole allowed set. With more vCPUs than CPUs, vCPUs share
//! CPUs round-robin.
//!
//! [`crate::Placement::OneCpu`]: the whole VM on one CPU (the process mask, inherited by K and
//! U); [`crate::Placement::Unpinned`]: the host scheduler decides.

use crate::Placement;

/// The host CPU of each vCPU, or none (one CPU for everything, or no pinning).
#[derive(Clone, Debug, Default)]
pub(crate) struct Cpus {
    /// `Some(cpus)`: vCPU `i` runs on `cpus[i % cpus.len()]` (never empty).
    per_vcpu: Option<Vec<usize>>,
    /// Whether H's thread and a mapper thread it waits for may run on different CPUs (no
    /// pinning on a host with several CPUs): then H spins briefly before it sleeps.
    may_be_apart: bool,
}

/// How long H spins for a mapper completion before it sleeps, where the mapper may run on
/// another CPU (`--pin none`): a cross-CPU wakeup costs 35-60 us on these VMs, a mapper batch
/// of a few operations 5-20 us (measured with `--stats`, `docs/benchmarks.md`).
pub(crate) const HANDOFF_SPIN: std::time::Duration = std::time::Duration::from_micros(30);

impl Cpus {
    /// The per-vCPU CPUs for `placement`; `None` inside unless it is `PerVcpu` and the
    /// allowed set could be read.
    pub(crate) fn new(placement: Placement) -> Self {
        match placement {
            Placement::PerVcpu => {
                let allowed = switcher::affinity::allowed_cpus();
                Self { per_vcpu: (!allowed.is_empty()).then_some(allowed), may_be_apart: false }
            }
            Placement::OneCpu(_) => Self { per_vcpu: None, may_be_apart: false },
            Placement::Unpinned => {
                Self { per_vcpu: None, may_be_apart: switcher::affinity::allowed_cpus().len() > 1 }
            }
        }
    }

    /// How long H may spin for a mapper's completion before sleeping: [`HANDOFF_SPIN`] when
    /// the two may be on different CPUs, else zero (a spin on a shared CPU only delays the
    /// peer). vCPU `i`'s H and mapper threads share a CPU under `PerVcpu`.
    pub(crate) fn mapper_spin(&self) -> std::time::Duration {
        if self.may_be_apart { HANDOFF_SPIN } else { std::time::Duration::ZERO }
    }

    /// The host CPU of vCPU `vcpu`, when vCPUs are placed.
    pub(crate) fn of(&self, vcpu: u32) -> Option<usize> {
        let cpus = self.per_vcpu.as_ref()?;
        cpus.get(vcpu as usize % cpus.len()).copied()
    }

    /// Whether vCPU `a` and vCPU `b` run on different host CPUs (false without placement:
    /// then nothing is known).
    pub(crate) fn apart(&self, a: u32, b: u32) -> bool {
        matches!((self.of(a), self.of(b)), (Some(x), Some(y)) if x != y)
    }

    /// Restricts host thread `tid` (0: the caller) to vCPU `vcpu`'s CPU. A failure is logged
    /// and otherwise ignored: placement is a performance matter.
    pub(crate) fn place(&self, tid: i32, vcpu: u32) {
        let Some(cpu) = self.of(vcpu) else { return };
        if let Err(e) = switcher::affinity::set_thread_cpus(tid, &[cpu]) {
            tracing::warn!(tid, vcpu, cpu, "placing a thread: {e}");
        }
    }

    /// Restricts host thread `tid` to `cpus` (for a lock holder that may borrow a CPU, see
    /// `YIELD_TO`); errors are ignored as in [`Self::place`].
    pub(crate) fn place_on(tid: i32, cpus: &[usize]) {
        if let Err(e) = switcher::affinity::set_thread_cpus(tid, cpus) {
            tracing::debug!(tid, ?cpus, "widening a thread's CPUs: {e}");
        }
    }
}

/// The CPUs the calling thread may run on; used to read back placement in tests.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_over_the_allowed_set() {
        let c = Cpus { per_vcpu: Some(vec![2, 5]), may_be_apart: false };
        assert_eq!((c.of(0), c.of(1), c.of(2), c.of(3)), (Some(2), Some(5), Some(2), Some(5)));
        assert!(c.apart(0, 1));
        assert!(!c.apart(0, 2));
        let none = Cpus::default();
        assert_eq!(none.of(0), None);
        assert!(!none.apart(0, 1));
    }
}
