//! `pvm bench` options (clap).

use std::path::PathBuf;

use clap::Args;

/// `pvm bench` options.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Contenders to run, comma-separated, in this order (default: all of native, pvm-soft,
    /// pvm-kvm, gvisor, qemu-tcg, uml; each is skipped with a reason when the host lacks it).
    #[arg(long, value_delimiter = ',')]
    pub runners: Option<Vec<String>>,
    /// Benchmarks to run, comma-separated (default: all; `pvm bench --list` names them).
    #[arg(long, value_delimiter = ',')]
    pub only: Option<Vec<String>>,
    /// Short calibration, few repetitions and small buffers: a smoke run for CI, not for claims.
    #[arg(long)]
    pub quick: bool,
    /// Rounds: every contender runs every benchmark once per round, contenders interleaved
    /// (default: 2 with --quick, 5 otherwise).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub rounds: Option<u32>,
    /// Host CPUs every contender is pinned to: a list such as `1` or `0-1`, or `none`
    /// (default: the last CPU this process may use).
    #[arg(long)]
    pub pin: Option<String>,
    /// Write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Draw the ratios to native as an SVG bar chart into this file.
    #[arg(long)]
    pub svg: Option<PathBuf>,
    /// Rewrite the generated section of this Markdown file (between the `pvm-bench` markers;
    /// created when missing) with the machine, the command, the table and a link to --svg.
    #[arg(long)]
    pub markdown: Option<PathBuf>,
    /// Directory for the built benchmark programs, root filesystem and logs (default: a fresh
    /// directory under the system temporary directory, removed afterwards).
    #[arg(long)]
    pub workdir: Option<PathBuf>,
    /// Print the benchmarks and contenders and exit.
    #[arg(long)]
    pub list: bool,
}
