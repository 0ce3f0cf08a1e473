//! Guest clocks: `CLOCK_MONOTONIC`/`CLOCK_REALTIME` from the boot time base in `BootInfo` and
//! `rdtsc` (integer arithmetic only), or the `GET_TIME` hypercall when the TSC rate is unknown.
//!
//! The TSC-to-ns arithmetic is `pvm_vdso::vvar::Params`, the same code the vDSO runs on the
//! vvar page (`crate::vdso`), so a clock read by the syscall and through the vDSO agree to the
//! nanosecond and never go backwards between the two. On the soft backend guest code reads
//! the host's TSC (K and U are host processes); under KVM the VM's TSC, which H set to the
//! host's at vCPU creation. `BootInfo.tsc_khz` is H's measurement of its rate (0 = unknown).

use core::sync::atomic::{AtomicU64, Ordering};
use pvm_vdso::vvar::{self, Params};

static BOOT_MONO: AtomicU64 = AtomicU64::new(0);
/// The clock parameters (set once at boot; the kernel's private copy of the vvar page).
static PARAMS: spin::Once<Params> = spin::Once::new();

/// Records the time base H measured at boot and publishes it to the vDSO.
pub fn init(tsc_khz: u64, boot_tsc: u64, boot_realtime_ns: u64, boot_monotonic_ns: u64) {
    BOOT_MONO.store(boot_monotonic_ns, Ordering::Relaxed);
    let p = PARAMS.call_once(|| Params::from_khz(tsc_khz, boot_tsc, boot_realtime_ns, boot_monotonic_ns));
    crate::vdso::init(p);
}

/// Converts a TSC delta to ns at `khz` kHz without overflow.
pub fn tsc_to_ns(delta: u64, khz: u64) -> u64 {
    if khz == 0 {
        return 0;
    }
    (u128::from(delta) * 1_000_000 / u128::from(khz)) as u64
}

/// `clock`'s value now, ns, for the clocks the vDSO also serves (REALTIME, MONOTONIC,
/// MONOTONIC_RAW, BOOTTIME, TAI and the two COARSE ones); `None` for other ids. Without a TSC
/// rate, H's clock (`GET_TIME`).
pub fn clock_ns(clock: i32) -> Option<u64> {
    if let Some(p) = PARAMS.get()
        && p.mode == vvar::MODE_TSC
    {
        return p.clock_ns(clock, crate::arch::rdtsc());
    }
    let real = || crate::hcall::get_time(0).max(0) as u64;
    let mono = || crate::hcall::get_time(1).max(0) as u64;
    Some(match clock {
        vvar::CLOCK_REALTIME | vvar::CLOCK_TAI => real(),
        vvar::CLOCK_MONOTONIC | vvar::CLOCK_MONOTONIC_RAW | vvar::CLOCK_BOOTTIME => mono(),
        vvar::CLOCK_REALTIME_COARSE => vvar::coarse(real()),
        vvar::CLOCK_MONOTONIC_COARSE => vvar::coarse(mono()),
        _ => return None,
    })
}

/// `CLOCK_MONOTONIC`, ns.
pub fn monotonic_ns() -> u64 {
    clock_ns(vvar::CLOCK_MONOTONIC).unwrap_or(0)
}

/// `CLOCK_REALTIME`, ns since the epoch.
pub fn realtime_ns() -> u64 {
    clock_ns(vvar::CLOCK_REALTIME).unwrap_or(0)
}

/// ns since the guest booted (for uptime, process times).
pub fn uptime_ns() -> u64 {
    monotonic_ns().saturating_sub(BOOT_MONO.load(Ordering::Relaxed))
}

/// Splits ns into (seconds, nanoseconds).
pub fn split(ns: u64) -> (i64, i64) {
    ((ns / 1_000_000_000) as i64, (ns % 1_000_000_000) as i64)
}

/// The filesystem's clock (realtime).
pub struct FsClock;

impl guest_fs::Clock for FsClock {
    fn now(&self) -> guest_fs::Timespec {
        let (sec, nsec) = split(realtime_ns());
        guest_fs::Timespec { sec, nsec }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn tsc_conversion() {
        assert_eq!(super::tsc_to_ns(3_000_000, 3_000_000), 1_000_000);
        assert_eq!(super::tsc_to_ns(u64::MAX, 1_000_000), u64::MAX);
        assert_eq!(super::tsc_to_ns(5, 0), 0);
    }
}
