//! `pvm bench`: one reproducible run that measures pvm against native, the KVM backend, gVisor,
//! QEMU (TCG) and User-mode Linux side by side, on the same machine, with the same benchmark
//! binaries (`benches/programs/lmb.c`, compiled at bench time), contenders interleaved round by
//! round and pinned to the same CPUs; prints a table of medians and ratios to native, and writes
//! JSON, an SVG chart and the generated section of `docs/benchmarks.md`. The hostfs cases
//! (files served in place, a Debian tree, start-up against tree size) run on native and pvm.

mod args;
mod catalog;
mod chart;
mod cpuset;
mod env;
mod exec;
mod format;
mod hostfs;
mod machine;
mod parse;
mod prepare;
mod progress;
mod report;
mod results;
mod runner;
mod startup;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

pub use args::BenchArgs;
use catalog::Bench;
use cpuset::CpuSet;
use env::Env;
use machine::Machine;
use progress::Progress;
use report::{Document, RunnerInfo};
use results::Cell;
use runner::Runner;

/// The settings of one mode.
struct Mode {
    name: &'static str,
    rounds: u32,
    lmb_options: &'static [&'static str],
    guest_mib: u64,
    per_bench_timeout: Duration,
    boot_timeout: Duration,
    /// Timed runs per start-up case and round.
    startup_reps: usize,
}

/// `--quick`: 1 ms repetitions, 5 of them within 0.1 s, small buffers: minutes, for CI.
const QUICK: Mode = Mode {
    name: "quick",
    rounds: 2,
    lmb_options: &[
        "--target-ns",
        "1000000",
        "--reps",
        "5",
        "--budget-ns",
        "100000000",
        "--mib",
        "8",
        "--touch-mib",
        "32",
    ],
    guest_mib: 512,
    per_bench_timeout: Duration::from_secs(60),
    boot_timeout: Duration::from_secs(150),
    startup_reps: 5,
};

/// The full run: 2 ms repetitions (short enough that most escape preemption on a shared host),
/// up to 15 within 0.4 s per round, 5 rounds, 64 MiB buffers, 256 MiB touched.
const FULL: Mode = Mode {
    name: "full",
    rounds: 5,
    lmb_options: &[
        "--target-ns",
        "2000000",
        "--reps",
        "15",
        "--budget-ns",
        "400000000",
        "--mib",
        "64",
        "--touch-mib",
        "256",
    ],
    guest_mib: 2048,
    per_bench_timeout: Duration::from_secs(180),
    boot_timeout: Duration::from_secs(240),
    startup_reps: 11,
};

/// Runs `pvm bench`; 0 when the run completed (failed benchmarks are reported in it), 1 when
/// the harness itself could not run or write its outputs, 125 for bad options.
pub fn run(args: &BenchArgs) -> ExitCode {
    match run_inner(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(msg)) => {
            eprintln!("pvm bench: {msg}");
            ExitCode::from(125)
        }
        Err(Failure::Harness(msg)) => {
            eprintln!("pvm bench: {msg}");
            ExitCode::from(1)
        }
    }
}

enum Failure {
    Usage(String),
    Harness(String),
}

fn run_inner(args: &BenchArgs) -> Result<(), Failure> {
    if args.list {
        list();
        return Ok(());
    }
    let benches = catalog::select(args.only.as_deref()).map_err(Failure::Usage)?;
    let names: Vec<String> = args
        .runners
        .clone()
        .unwrap_or_else(|| runner::NAMES.iter().map(|s| (*s).to_string()).collect());
    let mut runners: Vec<Box<dyn Runner>> = Vec::new();
    for n in &names {
        let r = runner::by_name(n).ok_or_else(|| {
            Failure::Usage(format!(
                "unknown runner `{n}` (known: {})",
                runner::NAMES.join(", ")
            ))
        })?;
        if runners.iter().any(|x| x.name() == r.name()) {
            return Err(Failure::Usage(format!("runner `{n}` given twice")));
        }
        runners.push(r);
    }
    let cpus = match &args.pin {
        Some(s) => CpuSet::parse(s).map_err(Failure::Usage)?,
        None => CpuSet::default_single(),
    };
    cpus.check_allowed().map_err(Failure::Usage)?;
    let mode = if args.quick { &QUICK } else { &FULL };
    let rounds = args.rounds.unwrap_or(mode.rounds);

    let mut machine = Machine::read();
    let (work, remove_work) = match &args.workdir {
        Some(w) => (w.clone(), false),
        None => (
            std::env::temp_dir().join(format!("pvm-bench-{}", std::process::id())),
            true,
        ),
    };
    std::fs::create_dir_all(&work)
        .map_err(|e| Failure::Harness(format!("mkdir {}: {e}", work.display())))?;
    let outcome = measure(
        args.runners.as_deref().unwrap_or_default(),
        &benches,
        &mut runners,
        &cpus,
        mode,
        rounds,
        &work,
        &mut machine,
    );
    if remove_work {
        let _ = std::fs::remove_dir_all(&work);
    }
    let doc = outcome?;
    publish(args, &doc)
}

/// Builds the programs, probes the contenders, runs the rounds: the report.
#[allow(clippy::too_many_arguments)] // one call site, every argument distinct
fn measure(
    named: &[String],
    benches: &[&'static Bench],
    runners: &mut [Box<dyn Runner>],
    cpus: &CpuSet,
    mode: &Mode,
    rounds: u32,
    work: &Path,
    machine: &mut Machine,
) -> Result<Document, Failure> {
    eprintln!(
        "pvm bench: building benches/programs/lmb.c (gcc -static) and the guest root filesystem"
    );
    let built = prepare::build(work).map_err(Failure::Harness)?;
    let needs: Vec<catalog::Hostfs> = benches.iter().filter_map(|b| b.hostfs).collect();
    let hostfs = if needs.is_empty() {
        hostfs::HostfsEnv::none()
    } else {
        eprintln!("pvm bench: preparing the hostfs cases (256 MiB file, 1,000 files, Debian copy, start-up trees)");
        hostfs::prepare(work, &built.rootfs, &built.rootfs.join("lmb"), &built.busybox, &needs)
    };
    let scratch = work.join("scratch");
    std::fs::create_dir_all(&scratch)
        .map_err(|e| Failure::Harness(format!("mkdir {}: {e}", scratch.display())))?;
    let env = Env {
        rootfs: built.rootfs,
        initramfs: built.initramfs,
        scratch,
        pvm_exe: std::env::current_exe()
            .map_err(|e| Failure::Harness(format!("cannot find the pvm binary: {e}")))?,
        cpus: cpus.clone(),
        lmb_options: mode.lmb_options.iter().map(|s| (*s).to_string()).collect(),
        guest_mib: mode.guest_mib,
        per_bench_timeout: mode.per_bench_timeout,
        boot_timeout: mode.boot_timeout,
        named: named.to_vec(),
        hostfs,
        startup_reps: mode.startup_reps,
    };

    let mut infos = Vec::new();
    let mut active = Vec::new();
    for (i, r) in runners.iter_mut().enumerate() {
        let probed = r.probe(&env);
        match &probed {
            Ok(v) => eprintln!("pvm bench: {:<8} ok: {v}", r.name()),
            Err(why) => eprintln!("pvm bench: {:<8} skipped: {why}", r.name()),
        }
        if probed.is_ok() {
            active.push(i);
        }
        infos.push(RunnerInfo {
            name: r.name().to_string(),
            summary: r.summary().to_string(),
            status: if probed.is_ok() { "ran" } else { "skipped" },
            detail: probed.unwrap_or_else(|why| why),
        });
    }
    eprintln!(
        "pvm bench: {} mode, {rounds} rounds x {} contenders x {} benchmarks, pinned to CPU {cpus}; load average {:.2}",
        mode.name,
        active.len(),
        benches.len(),
        machine.load_start[0]
    );

    let mut cells: BTreeMap<(usize, &'static str), Cell> = BTreeMap::new();
    let per_round: usize = active
        .iter()
        .map(|&i| benches.iter().filter(|b| runners[i].runs(b)).count())
        .sum();
    let mut progress = Progress::new(rounds as usize * per_round);
    for round in 0..rounds {
        // Rotate the order every round so no contender always runs first (A B C, B C A, ...).
        let k = active.len().max(1);
        let shift = round as usize % k;
        for &i in active[shift..].iter().chain(&active[..shift]) {
            let name = runners[i].name();
            // SMP and hostfs cases only on the contenders that run them.
            let theirs: Vec<&'static Bench> = benches
                .iter()
                .copied()
                .filter(|b| runners[i].runs(b))
                .collect();
            let outcomes = runners[i].run(&env, &theirs, &mut |what| {
                progress.show(round + 1, rounds, name, what);
            });
            for (b, o) in theirs.iter().zip(outcomes) {
                cells.entry((i, b.name)).or_default().add(o);
            }
        }
    }
    progress.finish();
    machine.finish();

    let native = runners.iter().position(|r| r.name() == "native");
    let mut records = Vec::new();
    for &i in &active {
        for b in benches {
            if !runners[i].runs(b) {
                continue;
            }
            let empty = Cell::default();
            let cell = cells.get(&(i, b.name)).unwrap_or(&empty);
            let native_cell = native
                .filter(|n| active.contains(n))
                .and_then(|n| cells.get(&(n, b.name)));
            records.push(results::record(b, runners[i].name(), cell, native_cell));
        }
    }
    let command = std::iter::once("pvm".to_string())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ");
    Ok(Document {
        schema: "pvm-bench/1",
        command,
        mode: mode.name,
        rounds,
        duration_s: progress.elapsed_s(),
        machine: machine.clone(),
        pinned_cpus: cpus.cpus().to_vec(),
        lmb_options: env.lmb_options.clone(),
        compiler: built.compiler,
        busybox: built.busybox.display().to_string(),
        runners: infos,
        benchmarks: report::bench_infos(benches),
        results: records,
    })
}

/// Prints the table and writes JSON, SVG and Markdown as asked.
fn publish(args: &BenchArgs, doc: &Document) -> Result<(), Failure> {
    println!("{}", doc.table());
    for n in doc.notes() {
        println!("note: {n}");
    }
    println!(
        "{} mode, {} rounds, {:.0} s; pinned to CPU {}; {}",
        doc.mode,
        doc.rounds,
        doc.duration_s,
        if doc.pinned_cpus.is_empty() {
            "none".to_string()
        } else {
            format!("{:?}", doc.pinned_cpus)
        },
        doc.machine.describe()
    );
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(doc)
            .map_err(|e| Failure::Harness(format!("json: {e}")))?;
        std::fs::write(path, text + "\n")
            .map_err(|e| Failure::Harness(format!("write {}: {e}", path.display())))?;
    }
    if let Some(path) = &args.svg {
        chart::draw(doc, path).map_err(Failure::Harness)?;
    }
    if let Some(md) = &args.markdown {
        let svg_rel = args.svg.as_deref().map(|svg| relative_to(svg, md));
        report::write_markdown(md, &doc.markdown(svg_rel.as_deref())).map_err(Failure::Harness)?;
    }
    Ok(())
}

/// `target` as a link from the Markdown file `md` (same directory: the file name).
fn relative_to(target: &Path, md: &Path) -> String {
    let md_dir = md.parent().map(Path::to_path_buf).unwrap_or_default();
    let abs = |p: &Path| -> PathBuf { std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()) };
    let (t, d) = (abs(target), abs(&md_dir));
    t.strip_prefix(&d)
        .map_or_else(|_| t.display().to_string(), |r| r.display().to_string())
}

fn list() {
    println!("benchmarks (lmb name, per operation, title):");
    for b in catalog::ALL {
        println!("  {:<12} {:<11} {}", b.name, b.per, b.title);
    }
    println!("contenders:");
    for n in runner::NAMES {
        if let Some(r) = runner::by_name(n) {
            println!("  {:<9} {}", n, r.summary());
        }
    }
}
