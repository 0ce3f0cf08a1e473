//! The progress line on stderr: round, contender, benchmark, how far, elapsed time. Rewritten in
//! place on a terminal, one line per step otherwise (CI logs).

use std::io::{IsTerminal, Write};
use std::time::Instant;

/// Progress of a run of `total` steps (a step is one benchmark on one contender in one round).
pub struct Progress {
    start: Instant,
    total: usize,
    done: usize,
    tty: bool,
}

impl Progress {
    /// Starts the clock.
    pub fn new(total: usize) -> Self {
        Self {
            start: Instant::now(),
            total,
            done: 0,
            tty: std::io::stderr().is_terminal(),
        }
    }

    /// Seconds since the start.
    pub fn elapsed_s(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// Shows that `what` runs on `runner` in round `round` (1-based) of `rounds`; a benchmark
    /// name counts as a step, `booting` does not.
    pub fn show(&mut self, round: u32, rounds: u32, runner: &str, what: &str) {
        if what != "booting" {
            self.done += 1;
        }
        let secs = self.start.elapsed().as_secs();
        let line = format!(
            "pvm bench: round {round}/{rounds}  {runner:<8}  {what:<12}  step {}/{}  {:02}:{:02}",
            self.done.min(self.total),
            self.total,
            secs / 60,
            secs % 60
        );
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[2K{line}");
        } else {
            let _ = writeln!(err, "{line}");
        }
        let _ = err.flush();
    }

    /// Ends the in-place line.
    pub fn finish(&self) {
        if self.tty {
            let _ = writeln!(std::io::stderr());
        }
    }
}
