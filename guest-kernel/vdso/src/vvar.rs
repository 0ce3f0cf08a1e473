//! The vvar page: clock parameters the guest kernel publishes and the vDSO reads.
//!
//! The page is written only by the guest kernel (`guest-kernel/src/vdso.rs`) and mapped
//! read-only into every process one page below the vDSO image. Updates follow a seqlock (as
//! Linux's `vdso_data.seq`, lib/vdso/gettimeofday.c): the writer makes `seq` odd, stores the
//! fields and makes `seq` even again; a reader retries while `seq` is odd or changed under it.
//!
//! Clocks are `base_ns + ((tsc - base_tsc) * mult) >> shift` with a 128-bit product (no
//! overflow for any TSC delta below 2^64 while `mult < 2^64`). The coarse clocks are the fine
//! clock rounded down to [`COARSE_NS`] (a 250 Hz tick, as Linux's `CONFIG_HZ=250`).

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

/// Size of the vvar area mapped below the image, bytes.
pub const VVAR_SIZE: u64 = 4096;
/// `mode`: no TSC clock; the vDSO makes the real syscall for every clock.
pub const MODE_NONE: u32 = 0;
/// `mode`: clocks come from `rdtsc` and the parameters below.
pub const MODE_TSC: u32 = 1;
/// Fixed-point shift of `mult` (ns = delta * mult >> SHIFT).
pub const SHIFT: u32 = 32;
/// Resolution of the `*_COARSE` clocks, ns (one tick at 250 Hz).
pub const COARSE_NS: u64 = 4_000_000;

/// `CLOCK_REALTIME` (Linux include/uapi/linux/time.h).
pub const CLOCK_REALTIME: i32 = 0;
/// `CLOCK_MONOTONIC`.
pub const CLOCK_MONOTONIC: i32 = 1;
/// `CLOCK_MONOTONIC_RAW`.
pub const CLOCK_MONOTONIC_RAW: i32 = 4;
/// `CLOCK_REALTIME_COARSE`.
pub const CLOCK_REALTIME_COARSE: i32 = 5;
/// `CLOCK_MONOTONIC_COARSE`.
pub const CLOCK_MONOTONIC_COARSE: i32 = 6;
/// `CLOCK_BOOTTIME`.
pub const CLOCK_BOOTTIME: i32 = 7;
/// `CLOCK_TAI` (TAI offset 0, Linux's default without NTP).
pub const CLOCK_TAI: i32 = 11;

/// The shared page's layout (`repr(C)`, at offset 0 of the vvar page).
#[repr(C)]
#[derive(Debug, Default)]
pub struct Vvar {
    /// Seqlock sequence: odd while the kernel writes.
    pub seq: AtomicU32,
    /// [`MODE_NONE`] or [`MODE_TSC`].
    pub mode: AtomicU32,
    /// ns per TSC tick, fixed point with `shift` fraction bits.
    pub mult: AtomicU64,
    /// Fraction bits of `mult`.
    pub shift: AtomicU32,
    /// Padding (zero).
    pub _pad: AtomicU32,
    /// TSC value at which the bases below hold.
    pub base_tsc: AtomicU64,
    /// `CLOCK_MONOTONIC` at `base_tsc`, ns (also `BOOTTIME` and `MONOTONIC_RAW`: the guest
    /// never suspends and is never slewed).
    pub base_mono: AtomicU64,
    /// `CLOCK_REALTIME` at `base_tsc`, ns since the Unix epoch.
    pub base_real: AtomicU64,
}

/// One consistent copy of the clock parameters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Params {
    /// [`MODE_NONE`] or [`MODE_TSC`].
    pub mode: u32,
    /// ns per tick, fixed point.
    pub mult: u64,
    /// Fraction bits of `mult`.
    pub shift: u32,
    /// TSC at the bases.
    pub base_tsc: u64,
    /// Monotonic ns at `base_tsc`.
    pub base_mono: u64,
    /// Realtime ns at `base_tsc`.
    pub base_real: u64,
}

impl Params {
    /// Parameters for a TSC of `khz` kHz that read `tsc` when the clocks were `real_ns` and
    /// `mono_ns`; [`MODE_NONE`] when the rate is unknown (`khz == 0`).
    pub fn from_khz(khz: u64, tsc: u64, real_ns: u64, mono_ns: u64) -> Self {
        if khz == 0 {
            return Params { base_real: real_ns, base_mono: mono_ns, ..Params::default() };
        }
        let mult = ((1_000_000u128 << SHIFT) / u128::from(khz)).min(u128::from(u64::MAX)) as u64;
        Params { mode: MODE_TSC, mult, shift: SHIFT, base_tsc: tsc, base_mono: mono_ns, base_real: real_ns }
    }

    /// ns since `base_tsc` at TSC value `tsc` (0 for a TSC behind the base).
    pub fn delta_ns(&self, tsc: u64) -> u64 {
        let d = tsc.saturating_sub(self.base_tsc);
        (u128::from(d) * u128::from(self.mult)).wrapping_shr(self.shift) as u64
    }

    /// `clock`'s value at `tsc`, ns, for the clocks the vDSO serves; `None` for the others
    /// (CPU-time clocks, alarm clocks, dynamic clocks) and in [`MODE_NONE`].
    pub fn clock_ns(&self, clock: i32, tsc: u64) -> Option<u64> {
        if self.mode != MODE_TSC {
            return None;
        }
        let d = self.delta_ns(tsc);
        let mono = self.base_mono.wrapping_add(d);
        let real = self.base_real.wrapping_add(d);
        Some(match clock {
            CLOCK_REALTIME | CLOCK_TAI => real,
            CLOCK_MONOTONIC | CLOCK_MONOTONIC_RAW | CLOCK_BOOTTIME => mono,
            CLOCK_REALTIME_COARSE => coarse(real),
            CLOCK_MONOTONIC_COARSE => coarse(mono),
            _ => return None,
        })
    }
}

/// `ns` rounded down to the coarse clocks' tick.
pub fn coarse(ns: u64) -> u64 {
    ns - ns % COARSE_NS
}

/// `clock_getres` of the clocks the vDSO serves, ns (`None` for the others).
pub fn res_ns(clock: i32) -> Option<u64> {
    match clock {
        CLOCK_REALTIME | CLOCK_TAI | CLOCK_MONOTONIC | CLOCK_MONOTONIC_RAW | CLOCK_BOOTTIME => Some(1),
        CLOCK_REALTIME_COARSE | CLOCK_MONOTONIC_COARSE => Some(COARSE_NS),
        _ => None,
    }
}

impl Vvar {
    /// Publishes `p` (writer side; one writer at a time, the caller serialises).
    pub fn publish(&self, p: &Params) {
        let s = self.seq.load(Ordering::Relaxed);
        self.seq.store(s.wrapping_add(1) | 1, Ordering::Relaxed);
        fence(Ordering::Release);
        self.mode.store(p.mode, Ordering::Relaxed);
        self.mult.store(p.mult, Ordering::Relaxed);
        self.shift.store(p.shift, Ordering::Relaxed);
        self.base_tsc.store(p.base_tsc, Ordering::Relaxed);
        self.base_mono.store(p.base_mono, Ordering::Relaxed);
        self.base_real.store(p.base_real, Ordering::Relaxed);
        self.seq.store((s.wrapping_add(1) | 1).wrapping_add(1), Ordering::Release);
    }

    /// Runs `f` on one consistent copy of the parameters, retrying while the writer is busy
    /// or was busy during `f` (`f` may run more than once: it reads the TSC inside, as Linux's
    /// `do_hres` does).
    pub fn read_with<T>(&self, mut f: impl FnMut(&Params) -> T) -> T {
        loop {
            let s1 = self.seq.load(Ordering::Acquire);
            if s1 & 1 != 0 {
                core::hint::spin_loop();
                continue;
            }
            let p = Params {
                mode: self.mode.load(Ordering::Relaxed),
                mult: self.mult.load(Ordering::Relaxed),
                shift: self.shift.load(Ordering::Relaxed),
                base_tsc: self.base_tsc.load(Ordering::Relaxed),
                base_mono: self.base_mono.load(Ordering::Relaxed),
                base_real: self.base_real.load(Ordering::Relaxed),
            };
            let out = f(&p);
            fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) == s1 {
                return out;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversion_matches_exact_division() {
        let p = Params::from_khz(3_000_000, 1000, 5_000_000_000, 7);
        // One second of a 3 GHz TSC.
        let one_s = p.delta_ns(1000 + 3_000_000_000);
        assert!((999_999_999..=1_000_000_000).contains(&one_s), "{one_s}");
        assert_eq!(p.clock_ns(CLOCK_MONOTONIC, 1000), Some(7));
        assert_eq!(p.clock_ns(CLOCK_REALTIME, 1000), Some(5_000_000_000));
        // A TSC behind the base reads as the base.
        assert_eq!(p.clock_ns(CLOCK_MONOTONIC, 10), Some(7));
        // Huge deltas do not overflow.
        let _ = p.delta_ns(u64::MAX);
    }

    #[test]
    fn coarse_and_unserved_clocks() {
        let p = Params::from_khz(1_000_000, 0, 0, 0);
        assert_eq!(p.clock_ns(CLOCK_MONOTONIC_COARSE, 5_123_456), Some(4_000_000));
        assert_eq!(p.clock_ns(2, 5), None); // PROCESS_CPUTIME_ID
        assert_eq!(p.clock_ns(-6, 5), None); // a CPU clock of a pid
        let none = Params::from_khz(0, 0, 0, 0);
        assert_eq!(none.clock_ns(CLOCK_MONOTONIC, 5), None);
        assert_eq!(res_ns(CLOCK_REALTIME_COARSE), Some(COARSE_NS));
        assert_eq!(res_ns(3), None);
    }

    #[test]
    fn seqlock_round_trip() {
        let v = Vvar::default();
        let p = Params::from_khz(2_500_000, 42, 1, 2);
        v.publish(&p);
        assert_eq!(v.seq.load(Ordering::Relaxed) & 1, 0);
        assert_eq!(v.read_with(|q| *q), p);
        v.publish(&p);
        assert_eq!(v.seq.load(Ordering::Relaxed), 4);
    }

    #[test]
    fn monotonic_in_tsc() {
        let p = Params::from_khz(2_893_202, 77, 0, 0);
        let mut last = 0;
        for t in (0..10_000_000u64).step_by(997) {
            let n = p.clock_ns(CLOCK_MONOTONIC, t).unwrap_or(0);
            assert!(n >= last);
            last = n;
        }
    }
}
