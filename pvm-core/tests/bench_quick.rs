//! `pvm bench --quick` end to end on the two contenders every CI host has (native and
//! pvm-soft): the JSON holds, per benchmark and contender, the median, minimum, repetitions and
//! unit; the SVG chart and the generated Markdown section are written; bad options are usage
//! errors. Needs gcc (static glibc) and a static busybox, as `pvm bench` itself does.

use std::path::Path;
use std::process::Command;

const PVM: &str = env!("CARGO_BIN_EXE_pvm");
const BENCHES: &[&str] = &["getppid", "stat", "mmap_1m", "mem_read", "fork_exit"];

fn json_of(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).expect("pvm bench wrote its JSON");
    serde_json::from_str(&text).expect("the JSON parses")
}

#[test]
fn quick_run_records_every_benchmark_on_both_contenders() {
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("bench.json");
    let svg = dir.path().join("bench.svg");
    let md = dir.path().join("benchmarks.md");
    std::fs::write(&md, "# Benchmarks\n\nHand-written intro.\n").expect("seed markdown");
    let out = Command::new(PVM)
        .args(["bench", "--quick", "--runners", "native,pvm-soft", "--only", &BENCHES.join(",")])
        .arg("--json")
        .arg(&json)
        .arg("--svg")
        .arg(&svg)
        .arg("--markdown")
        .arg(&md)
        .output()
        .expect("pvm bench runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "pvm bench failed: {stderr}");
    // The progress line names what runs.
    assert!(stderr.contains("round 2/2") && stderr.contains("pvm-soft"), "{stderr}");

    let doc = json_of(&json);
    assert_eq!(doc["schema"], "pvm-bench/1");
    assert_eq!(doc["mode"], "quick");
    assert_eq!(doc["rounds"], 2);
    assert_eq!(doc["pinned_cpus"].as_array().map(Vec::len), Some(1), "one CPU by default");
    let results = doc["results"].as_array().expect("results");
    assert_eq!(results.len(), BENCHES.len() * 2, "one record per benchmark and contender");
    for runner in ["native", "pvm-soft"] {
        for bench in BENCHES {
            let r = results
                .iter()
                .find(|r| r["runner"] == runner && r["benchmark"] == *bench)
                .unwrap_or_else(|| panic!("no record for {bench} on {runner}"));
            assert_eq!(r["unit"], "ns");
            assert!(r["per"].as_str().is_some_and(|p| !p.is_empty()));
            let reps = r["reps"].as_u64().expect("reps");
            if r["status"] == "ok" {
                let (median, min) = (r["median"].as_f64().expect("median"), r["min"].as_f64().expect("min"));
                assert!(min > 0.0 && min <= median, "{bench} on {runner}: min {min} median {median}");
                // Two rounds of at least three repetitions each.
                assert!(reps >= 6, "{bench} on {runner}: {reps} reps");
                assert_eq!(r["samples"].as_array().map(Vec::len), Some(reps as usize));
                let ratio = r["ratio_to_native"].as_f64().expect("ratio to native");
                assert!((ratio - median / native_median(results, bench)).abs() < 1e-9 * ratio.max(1.0));
            } else {
                assert_eq!(r["status"], "failed");
                assert_eq!(reps, 0);
                assert!(!r["failures"].as_array().expect("failures").is_empty(), "a failure says why");
            }
        }
    }
    // Native runs everything; pvm runs at least the system call and the memory benchmarks.
    for bench in BENCHES {
        let ok = |runner: &str| results.iter().any(|r| r["runner"] == runner && r["benchmark"] == *bench && r["status"] == "ok");
        assert!(ok("native"), "native failed {bench}");
        if ["getppid", "stat", "mem_read"].contains(bench) {
            assert!(ok("pvm-soft"), "pvm-soft failed {bench}");
        }
    }
    // A bandwidth has its MB/s.
    let read = results.iter().find(|r| r["runner"] == "native" && r["benchmark"] == "mem_read").expect("mem_read");
    assert!(read["mb_per_s"].as_f64().is_some_and(|v| v > 10.0));

    let chart = std::fs::read_to_string(&svg).expect("svg written");
    assert!(chart.contains("<svg") && chart.contains("pvm-soft"), "the chart names the contender");
    let text = std::fs::read_to_string(&md).expect("markdown written");
    assert!(text.starts_with("# Benchmarks\n\nHand-written intro.\n"), "hand-written text kept");
    assert!(text.contains("<!-- pvm-bench:begin") && text.contains("<!-- pvm-bench:end -->"));
    assert!(text.contains("| null syscall (getppid) | call |"), "{text}");
    assert!(text.contains("](bench.svg)"), "the chart is linked relative to the markdown file");
}

fn native_median(results: &[serde_json::Value], bench: &str) -> f64 {
    results
        .iter()
        .find(|r| r["runner"] == "native" && r["benchmark"] == bench)
        .and_then(|r| r["median"].as_f64())
        .expect("native median")
}

#[test]
fn unknown_names_are_usage_errors() {
    for args in [["--runners", "native,vmware"], ["--only", "getppid,nosuch"], ["--pin", "banana"]] {
        let out = Command::new(PVM).arg("bench").args(args).output().expect("runs");
        assert_eq!(out.status.code(), Some(125), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(args[1].split(',').next_back().unwrap_or("")), "{err}");
    }
}

/// The SMP cases run on native and pvm-soft only, each on the CPUs its variant names, and the
/// report pairs their 1- and 2-CPU runs into the scaling table.
#[test]
fn smp_cases_give_the_scaling_table() {
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("bench.json");
    let md = dir.path().join("benchmarks.md");
    let only = "touch_t2_c1,touch_t2_c2,getppid";
    let out = Command::new(PVM)
        .args(["bench", "--quick", "--rounds", "1", "--runners", "native,pvm-soft", "--only", only])
        .arg("--json")
        .arg(&json)
        .arg("--markdown")
        .arg(&md)
        .output()
        .expect("pvm bench runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "pvm bench failed: {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("native speed-up") && stdout.contains("allocate+touch, 2 threads"), "{stdout}");
    let doc = json_of(&json);
    let results = doc["results"].as_array().expect("results");
    assert_eq!(results.len(), 6, "three benchmarks on two contenders");
    let two_cpus = allowed_cpus() >= 2;
    for runner in ["native", "pvm-soft"] {
        for bench in ["touch_t2_c1", "touch_t2_c2"] {
            let r = results.iter().find(|r| r["runner"] == runner && r["benchmark"] == bench).expect("record");
            if bench.ends_with("c1") || two_cpus {
                assert_eq!(r["status"], "ok", "{bench} on {runner}: {r}");
            } else {
                assert!(r["failures"].to_string().contains("needs 2 host CPUs"), "{r}");
            }
        }
    }
    let text = std::fs::read_to_string(&md).expect("markdown written");
    assert!(text.contains("SMP scaling") && text.contains("| allocate+touch, 2 threads |"), "{text}");
}

fn allowed_cpus() -> usize {
    // SAFETY: zeroed cpu_set_t is valid; sched_getaffinity writes at most its size.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: pid 0 = this thread; `set` is valid for its size.
    if unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) } != 0 {
        return 1;
    }
    // SAFETY: CPU_COUNT reads `set` only.
    unsafe { libc::CPU_COUNT(&set) as usize }
}
