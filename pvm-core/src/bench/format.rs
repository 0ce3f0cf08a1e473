//! Human formatting of figures: times with an SI unit, bandwidths in MB/s, ratios to native.

use super::catalog::{Bench, Kind};
use super::results::{Record, mb_per_s};

/// `ns` as `123 ns`, `12.3 us`, `4.56 ms`, `1.23 s` (three significant digits).
pub fn time(ns: f64) -> String {
    let (v, unit) = if ns < 1e3 {
        (ns, "ns")
    } else if ns < 1e6 {
        (ns / 1e3, "us")
    } else if ns < 1e9 {
        (ns / 1e6, "ms")
    } else {
        (ns / 1e9, "s")
    };
    format!("{} {unit}", sig3(v))
}

/// A ratio as `x1.23`, `x12.3`, `x123`.
pub fn ratio(r: f64) -> String {
    format!("x{}", sig3(r))
}

fn sig3(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Which summary of the samples a table shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stat {
    /// The median (the headline figure).
    Median,
    /// The minimum (the best case, least disturbed by other load on the host).
    Min,
}

/// `ns` per operation as the benchmark is read: a time, or MB/s for bandwidths.
pub fn figure(bench: &Bench, ns: f64) -> String {
    match bench.kind {
        Kind::Latency => time(ns),
        Kind::Bandwidth => format!("{:.0} MB/s", mb_per_s(ns)),
    }
}

/// A table cell for `stat` of a record: `figure (ratio)`, just the figure for native, `failed`
/// when there is none.
pub fn cell(bench: &Bench, rec: &Record, stat: Stat, is_native: bool) -> String {
    let (value, ratio_to_native) = match stat {
        Stat::Median => (rec.median, rec.ratio_to_native),
        Stat::Min => (rec.min, rec.min_ratio_to_native),
    };
    match (value, ratio_to_native) {
        (None, _) => "failed".into(),
        (Some(v), Some(r)) if !is_native => format!("{} ({})", figure(bench, v), ratio(r)),
        (Some(v), _) => figure(bench, v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_switch_at_powers_of_a_thousand() {
        assert_eq!(time(84.0), "84.0 ns");
        assert_eq!(time(1234.0), "1.23 us");
        assert_eq!(time(466_000.0), "466 us");
        assert_eq!(time(3_550_000.0), "3.55 ms");
        assert_eq!(time(11e9), "11.0 s");
        assert_eq!(ratio(0.5), "x0.50");
        assert_eq!(ratio(47.23), "x47.2");
    }
}
