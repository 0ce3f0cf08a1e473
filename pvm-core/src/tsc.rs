//! The TSC frequency the guest kernel's clocks run on (`BootInfo::tsc_khz`), measured while
//! pvm sets the VM up instead of in a busy loop of its own.
//!
//! Where CPUID leaf 0x15 gives the TSC/crystal ratio and the crystal frequency (Intel SDM
//! vol. 2A, CPUID leaf 15H) that is the answer. Otherwise (many VMs, this host included) the
//! TSC is compared with `CLOCK_MONOTONIC` over at least [`MIN_WINDOW_NS`], the same window
//! `host_adapter::devices::tsc_khz` spins for; here the window starts when `pvm run` starts,
//! so the set-up work (mount plan, guest memory, spawning the file server) fills it and only
//! the remainder, if any, is spun.

use host_adapter::devices::{get_time, rdtsc};

/// Shortest comparison window, ns (2 ms: the error of the two clock reads, tens of ns, is
/// then about 10^-5 of the window).
const MIN_WINDOW_NS: i64 = 2_000_000;

/// A started measurement.
pub struct TscCalibration {
    t0: i64,
    c0: u64,
}

impl TscCalibration {
    /// Starts the window now.
    pub fn start() -> Self {
        Self { t0: get_time(1), c0: rdtsc() }
    }

    /// The TSC frequency, kHz: from CPUID leaf 0x15 when it has it, else measured over the
    /// window since [`Self::start`] (waiting for the rest of [`MIN_WINDOW_NS`] if less has
    /// passed).
    pub fn khz(&self) -> u64 {
        let max = core::arch::x86_64::__cpuid(0).eax;
        if max >= 0x15 {
            let l = core::arch::x86_64::__cpuid(0x15);
            if l.eax != 0 && l.ebx != 0 && l.ecx != 0 {
                return u64::from(l.ecx) * u64::from(l.ebx) / u64::from(l.eax) / 1000;
            }
        }
        let (mut t1, mut c1) = (get_time(1), rdtsc());
        while t1 - self.t0 < MIN_WINDOW_NS {
            std::hint::spin_loop();
            t1 = get_time(1);
            c1 = rdtsc();
        }
        let ns = u64::try_from(t1 - self.t0).unwrap_or(1).max(1);
        c1.wrapping_sub(self.c0).saturating_mul(1_000_000) / ns
    }
}
