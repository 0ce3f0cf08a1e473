//! Parses what `lmb` prints: `lmb-result NAME PER... ITERS REPS MEDIAN MIN S1,S2,...` and
//! `lmb-failed NAME REASON...` (see `benches/programs/lmb.c`). Lines may carry a console
//! prefix (a guest kernel's serial console), so the tag is searched for within the line.

/// One benchmark run by one `lmb` invocation.
#[derive(Clone, Debug, PartialEq)]
pub enum Line {
    /// Samples of one benchmark: ns per operation, one per repetition.
    Result {
        /// Benchmark name.
        name: String,
        /// Operations per repetition, after calibration.
        iters: u64,
        /// ns per operation, one per repetition.
        samples: Vec<f64>,
    },
    /// The benchmark failed inside the program.
    Failed {
        /// Benchmark name.
        name: String,
        /// What the program said.
        reason: String,
    },
}

/// Parses one stdout line; `None` for lines that are not `lmb`'s.
pub fn line(text: &str) -> Option<Line> {
    if let Some(i) = text.find("lmb-result ") {
        return result(&text[i + "lmb-result ".len()..]);
    }
    let i = text.find("lmb-failed ")?;
    let rest = text[i + "lmb-failed ".len()..].trim();
    let (name, reason) = rest.split_once(' ').unwrap_or((rest, "no reason given"));
    Some(Line::Failed {
        name: name.to_string(),
        reason: reason.trim().to_string(),
    })
}

/// `NAME PER... ITERS REPS MEDIAN MIN SAMPLES`: PER may contain spaces, so the fixed fields are
/// taken from the right.
fn result(rest: &str) -> Option<Line> {
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if fields.len() < 7 {
        return None;
    }
    let n = fields.len();
    let name = fields[0].to_string();
    let iters: u64 = fields[n - 5].parse().ok()?;
    let reps: usize = fields[n - 4].parse().ok()?;
    let samples: Vec<f64> = fields[n - 1]
        .split(',')
        .map(|s| s.parse::<f64>().ok().filter(|v| v.is_finite()))
        .collect::<Option<_>>()?;
    if samples.len() != reps || reps == 0 {
        return None;
    }
    Some(Line::Result {
        name,
        iters,
        samples,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_parse_with_spaced_units_and_console_prefixes() {
        let l = line("[  1.2] lmb-result pipe_rtt round trip 256 3 13.5 6.5 6.5,13.5,20.0")
            .expect("a result");
        assert_eq!(
            l,
            Line::Result {
                name: "pipe_rtt".into(),
                iters: 256,
                samples: vec![6.5, 13.5, 20.0]
            }
        );
    }

    #[test]
    fn failures_and_garbage() {
        assert_eq!(
            line("lmb-failed fork_exit fork: Function not implemented"),
            Some(Line::Failed {
                name: "fork_exit".into(),
                reason: "fork: Function not implemented".into()
            })
        );
        assert_eq!(line("Linux version 6.1"), None);
        // Wrong sample count, non-numbers, truncated lines.
        assert_eq!(line("lmb-result x call 1 3 1 1 1,2"), None);
        assert_eq!(line("lmb-result x call 1 1 1 1 nan"), None);
        assert_eq!(line("lmb-result x call 1 1"), None);
    }
}
