//! Collects every round's outcomes per (benchmark, contender) and summarises them: the median
//! and minimum over all repetitions of all rounds, the repetition count, the ratio to native,
//! and the failures with their reasons. These are also the JSON records (`serde`).

use serde::Serialize;

use super::catalog::{Bench, Kind};
use super::runner::Outcome;

/// Everything one contender gave for one benchmark, over all rounds.
#[derive(Clone, Debug, Default)]
pub struct Cell {
    /// ns per operation, every repetition of every round.
    pub samples: Vec<f64>,
    /// Calibrated operations per repetition, one per successful round.
    pub iters: Vec<u64>,
    /// Why a round gave no result, one entry per failed round.
    pub failures: Vec<String>,
}

impl Cell {
    /// Adds one round's outcome.
    pub fn add(&mut self, o: Outcome) {
        match o {
            Outcome::Ok { iters, samples } => {
                self.iters.push(iters);
                self.samples.extend(samples);
            }
            Outcome::Failed(why) => self.failures.push(why),
        }
    }

    /// Median of all samples (mean of the middle two for an even count); `None` when empty.
    pub fn median(&self) -> Option<f64> {
        let mut s = self.samples.clone();
        if s.is_empty() {
            return None;
        }
        s.sort_by(f64::total_cmp);
        let n = s.len();
        Some(if n % 2 == 1 {
            s[n / 2]
        } else {
            (s[n / 2 - 1] + s[n / 2]) / 2.0
        })
    }

    /// Smallest sample.
    pub fn min(&self) -> Option<f64> {
        self.samples.iter().copied().min_by(f64::total_cmp)
    }
}

/// One JSON result record: one benchmark on one contender.
#[derive(Clone, Debug, Serialize)]
pub struct Record {
    /// Benchmark name (`lmb`'s).
    pub benchmark: &'static str,
    /// Contender name.
    pub runner: String,
    /// `ok` (at least one round gave samples) or `failed`.
    pub status: &'static str,
    /// Unit of `median`, `min` and `samples`: always `ns` (per `per`).
    pub unit: &'static str,
    /// What one operation is: `call`, `4KiB page`, `MiB`, `run`, ...
    pub per: &'static str,
    /// Median ns per operation over all repetitions of all rounds.
    pub median: Option<f64>,
    /// Minimum ns per operation.
    pub min: Option<f64>,
    /// Number of repetitions (samples).
    pub reps: usize,
    /// Rounds that gave samples.
    pub rounds_ok: usize,
    /// Median relative to native's median (time ratio: above 1 is slower than native).
    pub ratio_to_native: Option<f64>,
    /// Minimum relative to native's minimum.
    pub min_ratio_to_native: Option<f64>,
    /// For bandwidth benchmarks: MB/s (10^6 bytes per second) at the median.
    pub mb_per_s: Option<f64>,
    /// Calibrated operations per repetition, per successful round.
    pub iters: Vec<u64>,
    /// Every sample, ns per operation, in the order measured.
    pub samples: Vec<f64>,
    /// Why rounds failed.
    pub failures: Vec<String>,
}

/// MB/s (10^6 bytes/s) of an operation of one MiB taking `ns_per_mib`.
pub fn mb_per_s(ns_per_mib: f64) -> f64 {
    1_048_576.0 / ns_per_mib * 1e3
}

/// Builds the record of `bench` on `runner` from its cell and native's cell.
pub fn record(bench: &'static Bench, runner: &str, cell: &Cell, native: Option<&Cell>) -> Record {
    let median = cell.median();
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    };
    Record {
        benchmark: bench.name,
        runner: runner.to_string(),
        status: if median.is_some() { "ok" } else { "failed" },
        unit: "ns",
        per: bench.per,
        median,
        min: cell.min(),
        reps: cell.samples.len(),
        rounds_ok: cell.iters.len(),
        ratio_to_native: ratio(median, native.and_then(Cell::median)),
        min_ratio_to_native: ratio(cell.min(), native.and_then(Cell::min)),
        mb_per_s: match (bench.kind, median) {
            (Kind::Bandwidth, Some(m)) if m > 0.0 => Some(mb_per_s(m)),
            _ => None,
        },
        iters: cell.iters.clone(),
        samples: cell.samples.clone(),
        failures: cell.failures.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::catalog;

    #[test]
    fn medians_pool_every_round_and_failures_are_kept() {
        let mut c = Cell::default();
        c.add(Outcome::Ok {
            iters: 10,
            samples: vec![5.0, 1.0, 3.0],
        });
        c.add(Outcome::Failed("boom".into()));
        c.add(Outcome::Ok {
            iters: 12,
            samples: vec![2.0],
        });
        assert_eq!(c.median(), Some(2.5));
        assert_eq!(c.min(), Some(1.0));
        let mut native = Cell::default();
        native.add(Outcome::Ok {
            iters: 1,
            samples: vec![0.5],
        });
        let b = catalog::find("getppid").expect("exists");
        let r = record(b, "pvm-soft", &c, Some(&native));
        assert_eq!((r.status, r.reps, r.rounds_ok), ("ok", 4, 2));
        assert_eq!(r.ratio_to_native, Some(5.0));
        assert_eq!(r.min_ratio_to_native, Some(2.0));
        assert_eq!(r.failures, ["boom"]);
        assert_eq!(r.mb_per_s, None);
    }

    #[test]
    fn all_failed_is_failed_and_bandwidth_converts() {
        let mut c = Cell::default();
        c.add(Outcome::Failed("no fork".into()));
        let b = catalog::find("fork_exit").expect("exists");
        let r = record(b, "x", &c, None);
        assert_eq!(
            (r.status, r.median, r.ratio_to_native),
            ("failed", None, None)
        );
        // 1 MiB per millisecond is 1048.576 MB/s.
        assert!((mb_per_s(1e6) - 1048.576).abs() < 1e-9);
    }
}
