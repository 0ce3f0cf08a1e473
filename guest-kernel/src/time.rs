//! Guest clocks: `CLOCK_MONOTONIC`/`CLOCK_REALTIME` from the boot time base in `BootInfo` and
//! `rdtsc` (integer arithmetic only), or the `GET_TIME` hypercall when the TSC rate is unknown.

use core::sync::atomic::{AtomicU64, Ordering};

static TSC_KHZ: AtomicU64 = AtomicU64::new(0);
static BOOT_TSC: AtomicU64 = AtomicU64::new(0);
static BOOT_REAL: AtomicU64 = AtomicU64::new(0);
static BOOT_MONO: AtomicU64 = AtomicU64::new(0);

/// Records the time base H measured at boot.
pub fn init(tsc_khz: u64, boot_tsc: u64, boot_realtime_ns: u64, boot_monotonic_ns: u64) {
    TSC_KHZ.store(tsc_khz, Ordering::Relaxed);
    BOOT_TSC.store(boot_tsc, Ordering::Relaxed);
    BOOT_REAL.store(boot_realtime_ns, Ordering::Relaxed);
    BOOT_MONO.store(boot_monotonic_ns, Ordering::Relaxed);
}

/// Converts a TSC delta to ns at `khz` kHz without overflow.
pub fn tsc_to_ns(delta: u64, khz: u64) -> u64 {
    if khz == 0 {
        return 0;
    }
    (u128::from(delta) * 1_000_000 / u128::from(khz)) as u64
}

/// ns elapsed since boot.
fn since_boot() -> Option<u64> {
    let khz = TSC_KHZ.load(Ordering::Relaxed);
    if khz == 0 {
        return None;
    }
    let now = crate::arch::rdtsc();
    Some(tsc_to_ns(now.saturating_sub(BOOT_TSC.load(Ordering::Relaxed)), khz))
}

/// `CLOCK_MONOTONIC`, ns.
pub fn monotonic_ns() -> u64 {
    match since_boot() {
        Some(d) => BOOT_MONO.load(Ordering::Relaxed) + d,
        None => crate::hcall::get_time(1).max(0) as u64,
    }
}

/// `CLOCK_REALTIME`, ns since the epoch.
pub fn realtime_ns() -> u64 {
    match since_boot() {
        Some(d) => BOOT_REAL.load(Ordering::Relaxed) + d,
        None => crate::hcall::get_time(0).max(0) as u64,
    }
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
