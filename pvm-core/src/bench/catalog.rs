//! The benchmarks of `benches/programs/lmb.c`: names, what one operation is, how to read them,
//! for the SMP cases how many host CPUs and vCPUs they run on, and for the hostfs cases what
//! they need (the data directory, the Debian tree, a start-up tree timed by the harness).

/// How a benchmark's figure is best read (every sample is a time per operation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A latency: nanoseconds per operation, lower is better.
    Latency,
    /// A bandwidth: the operation is one MiB, shown as MB/s (10^6 bytes per second) too.
    Bandwidth,
}

/// How an SMP case runs: on the first `host_cpus` CPUs this process may use (natively with
/// `sched_setaffinity`, as `taskset` would), pvm with `--cpus vcpus` and its default
/// placement, with or without the paravirtual lock hints. SMP cases run on `native` and
/// `pvm-soft` only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Smp {
    /// Host CPUs the contender may use.
    pub host_cpus: u32,
    /// vCPUs of the pvm guest.
    pub vcpus: u32,
    /// Whether pvm offers the guest its lock-holder hints (`--no-pv-lock-hints` when not).
    pub hints: bool,
}

/// A tree whose start-up the harness times (`pvm run --read-only --rootfs TREE /bin/true`
/// against native `chroot TREE /bin/true`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tree {
    /// About 10 MB: a static busybox as `/bin/true` and 8 MiB of files (built per run).
    Small,
    /// The cached Debian bookworm minbase tree of `pvm-core/tests/debian.rs`.
    Debian,
    /// About 1 GiB of real files (4,096 of 256 KiB in 16 directories), built once and cached.
    Large,
}

/// What a hostfs case (issue 11) needs; these run on `native`, `pvm-soft` and `pvm-kvm` only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hostfs {
    /// `lmb --data DIR`: the 256 MiB file and the 1,000 small files in the benchmark root.
    Data,
    /// As `Data`, cold: the harness drops the host's page cache of the file before each run
    /// (`posix_fadvise(DONTNEED)`, checked with `mincore`), one run per round, in a fresh VM.
    Cold,
    /// Inside the Debian tree (natively `lmb --chroot`).
    Debian,
    /// Not an `lmb` benchmark: the harness times whole runs of `/bin/true` in a tree.
    Startup(Tree),
}

/// One benchmark of the `lmb` program.
#[derive(Clone, Copy, Debug)]
pub struct Bench {
    /// The benchmark's name in reports (unique).
    pub name: &'static str,
    /// The name `lmb` takes and prints (equal to `name` except for SMP variants).
    pub lmb: &'static str,
    /// A short human title.
    pub title: &'static str,
    /// What one operation is (the `per` field `lmb` prints).
    pub per: &'static str,
    /// How to read the figure.
    pub kind: Kind,
    /// For SMP cases: the CPUs it runs on (`None`: the run's `--pin` set, one vCPU each).
    pub smp: Option<Smp>,
    /// For hostfs cases: what they need (`None`: the benchmark root alone).
    pub hostfs: Option<Hostfs>,
}

const fn lat(name: &'static str, title: &'static str, per: &'static str) -> Bench {
    Bench {
        name,
        lmb: name,
        title,
        per,
        kind: Kind::Latency,
        smp: None,
        hostfs: None,
    }
}

/// A hostfs case (`kind`, `per` as for the others).
const fn hfs(name: &'static str, title: &'static str, per: &'static str, kind: Kind, needs: Hostfs) -> Bench {
    Bench {
        name,
        lmb: name,
        title,
        per,
        kind,
        smp: None,
        hostfs: Some(needs),
    }
}

const fn bw(name: &'static str, title: &'static str) -> Bench {
    Bench {
        name,
        lmb: name,
        title,
        per: "MiB",
        kind: Kind::Bandwidth,
        smp: None,
        hostfs: None,
    }
}

/// An SMP variant of `lmb` benchmark `lmb` on `cpus` host CPUs and as many vCPUs.
const fn smp(name: &'static str, lmb: &'static str, title: &'static str, per: &'static str, cpus: u32) -> Bench {
    Bench {
        name,
        lmb,
        title,
        per,
        kind: Kind::Latency,
        smp: Some(Smp {
            host_cpus: cpus,
            vcpus: cpus,
            hints: true,
        }),
        hostfs: None,
    }
}

/// The overcommitted scheduling-latency case: 4 vCPUs on 2 host CPUs (natively: the same
/// threads on 2 CPUs), with or without the lock hints.
const fn over(name: &'static str, lmb: &'static str, title: &'static str, hints: bool) -> Bench {
    Bench {
        name,
        lmb,
        title,
        per: "wakeup",
        kind: Kind::Latency,
        smp: Some(Smp {
            host_cpus: 2,
            vcpus: 4,
            hints,
        }),
        hostfs: None,
    }
}

/// Every benchmark, in report order (lmbench's order: system calls, signals, processes,
/// memory).
pub const ALL: &[Bench] = &[
    lat("getppid", "null syscall (getppid)", "call"),
    lat("clock_gettime", "clock_gettime(MONOTONIC), vDSO", "call"),
    lat("read_zero", "read 1 byte of /dev/zero", "call"),
    lat("write_null", "write 1 byte to /dev/null", "call"),
    lat("stat", "stat", "call"),
    lat("open_close", "open + close", "call"),
    lat("sig_install", "signal handler install", "call"),
    lat("sig_catch", "signal catch (kill self)", "signal"),
    lat("prot_fault", "protection fault + handler", "fault"),
    lat("pipe_rtt", "pipe round trip, 2 processes", "round trip"),
    lat("ctx_switch", "context switch, 2 processes", "switch"),
    lat("fork_exit", "fork + exit + wait", "process"),
    lat("fork_exec", "fork + exec + wait", "process"),
    lat("sh_true", "sh -c true", "process"),
    lat("page_fault", "anonymous page fault", "4KiB page"),
    lat("mmap_1m", "mmap + munmap 1 MiB", "call pair"),
    bw("mem_read", "memory read bandwidth"),
    bw("mem_write", "memory write bandwidth"),
    bw("sha256", "SHA-256 (CPU bound)"),
    lat("touch_p1", "allocate+touch, 1 process", "run"),
    lat("touch_p2", "allocate+touch, 2 processes", "run"),
    lat("touch_p4", "allocate+touch, 4 processes", "run"),
    // SMP scaling (issue 10): each case on 1 and on 2 host CPUs / vCPUs.
    smp("touch_p1_c1", "touch_p1", "allocate+touch, 1 process, 1 CPU", "run", 1),
    smp("touch_p1_c2", "touch_p1", "allocate+touch, 1 process, 2 CPUs", "run", 2),
    smp("touch_p2_c1", "touch_p2", "allocate+touch, 2 processes, 1 CPU", "run", 1),
    smp("touch_p2_c2", "touch_p2", "allocate+touch, 2 processes, 2 CPUs", "run", 2),
    smp("touch_p4_c1", "touch_p4", "allocate+touch, 4 processes, 1 CPU", "run", 1),
    smp("touch_p4_c2", "touch_p4", "allocate+touch, 4 processes, 2 CPUs", "run", 2),
    smp("touch_p8_c1", "touch_p8", "allocate+touch, 8 processes, 1 CPU", "run", 1),
    smp("touch_p8_c2", "touch_p8", "allocate+touch, 8 processes, 2 CPUs", "run", 2),
    smp("touch_t1_c1", "touch_t1", "allocate+touch, 1 thread, 1 CPU", "run", 1),
    smp("touch_t1_c2", "touch_t1", "allocate+touch, 1 thread, 2 CPUs", "run", 2),
    smp("touch_t2_c1", "touch_t2", "allocate+touch, 2 threads, 1 CPU", "run", 1),
    smp("touch_t2_c2", "touch_t2", "allocate+touch, 2 threads, 2 CPUs", "run", 2),
    smp("fork_exec_x2_c1", "fork_exec_x2", "2 parallel fork+exec loops, 1 CPU", "2 processes", 1),
    smp("fork_exec_x2_c2", "fork_exec_x2", "2 parallel fork+exec loops, 2 CPUs", "2 processes", 2),
    over("sched_lat_p50_hints", "sched_lat_p50", "sched. latency p50, lock load, 4 vCPUs on 2 CPUs, hints", true),
    over("sched_lat_p50_nohints", "sched_lat_p50", "sched. latency p50, lock load, 4 vCPUs on 2 CPUs, no hints", false),
    over("sched_lat_p90_hints", "sched_lat_p90", "sched. latency p90, lock load, 4 vCPUs on 2 CPUs, hints", true),
    over("sched_lat_p90_nohints", "sched_lat_p90", "sched. latency p90, lock load, 4 vCPUs on 2 CPUs, no hints", false),
    over("sched_lat_p99_hints", "sched_lat_p99", "sched. latency p99, lock load, 4 vCPUs on 2 CPUs, hints", true),
    over("sched_lat_p99_nohints", "sched_lat_p99", "sched. latency p99, lock load, 4 vCPUs on 2 CPUs, no hints", false),
    // hostfs (issue 11): files served in place from the host, natively the same directory.
    hfs("hostfs_read_warm", "hostfs: sequential read 256 MiB, warm", "MiB", Kind::Bandwidth, Hostfs::Data),
    hfs("hostfs_read_cold", "hostfs: sequential read 256 MiB, cold", "MiB", Kind::Bandwidth, Hostfs::Cold),
    hfs("hostfs_stat", "hostfs: stat of 1,000 files in turn", "call", Kind::Latency, Hostfs::Data),
    hfs("hostfs_open_close", "hostfs: open + close of 1,000 files in turn", "call", Kind::Latency, Hostfs::Data),
    hfs("deb_fork_exec", "Debian: fork + exec + wait of /bin/true (dynamic)", "process", Kind::Latency, Hostfs::Debian),
    hfs("deb_tar_usr", "Debian: tar cf - /usr > /dev/null", "run", Kind::Latency, Hostfs::Debian),
    hfs("startup_small", "start-up: /bin/true, 10 MB tree", "run", Kind::Latency, Hostfs::Startup(Tree::Small)),
    hfs("startup_debian", "start-up: /bin/true, Debian tree", "run", Kind::Latency, Hostfs::Startup(Tree::Debian)),
    hfs("startup_large", "start-up: /bin/true, 1 GiB tree", "run", Kind::Latency, Hostfs::Startup(Tree::Large)),
];

/// The hostfs cases in the closing summary: (label, benchmark).
pub const HOSTFS: &[(&str, &str)] = &[
    ("read 256 MiB, warm", "hostfs_read_warm"),
    ("read 256 MiB, cold", "hostfs_read_cold"),
    ("stat", "hostfs_stat"),
    ("open + close", "hostfs_open_close"),
    ("fork + exec, dynamic", "deb_fork_exec"),
    ("tar cf - /usr", "deb_tar_usr"),
    ("start-up, 10 MB tree", "startup_small"),
    ("start-up, Debian tree", "startup_debian"),
    ("start-up, 1 GiB tree", "startup_large"),
];

/// The SMP scaling pairs: (case title, its 1-CPU benchmark, its 2-CPU benchmark).
pub const SCALING: &[(&str, &str, &str)] = &[
    ("allocate+touch, 1 process", "touch_p1_c1", "touch_p1_c2"),
    ("allocate+touch, 2 processes", "touch_p2_c1", "touch_p2_c2"),
    ("allocate+touch, 4 processes", "touch_p4_c1", "touch_p4_c2"),
    ("allocate+touch, 8 processes", "touch_p8_c1", "touch_p8_c2"),
    ("allocate+touch, 1 thread", "touch_t1_c1", "touch_t1_c2"),
    ("allocate+touch, 2 threads", "touch_t2_c1", "touch_t2_c2"),
    ("2 parallel fork+exec loops", "fork_exec_x2_c1", "fork_exec_x2_c2"),
];

/// The overcommitted latency rows: (percentile, with hints, without hints).
pub const LATENCY: &[(&str, &str, &str)] = &[
    ("p50", "sched_lat_p50_hints", "sched_lat_p50_nohints"),
    ("p90", "sched_lat_p90_hints", "sched_lat_p90_nohints"),
    ("p99", "sched_lat_p99_hints", "sched_lat_p99_nohints"),
];

/// Looks a benchmark up by name.
pub fn find(name: &str) -> Option<&'static Bench> {
    ALL.iter().find(|b| b.name == name)
}

/// The benchmarks named in `only` (all when `None`), in report order; an unknown name is an
/// error naming it.
pub fn select(only: Option<&[String]>) -> Result<Vec<&'static Bench>, String> {
    let Some(names) = only else {
        return Ok(ALL.iter().collect());
    };
    if let Some(bad) = names.iter().find(|n| find(n).is_none()) {
        let known: Vec<&str> = ALL.iter().map(|b| b.name).collect();
        return Err(format!(
            "unknown benchmark `{bad}` (known: {})",
            known.join(", ")
        ));
    }
    Ok(ALL
        .iter()
        .filter(|b| names.iter().any(|n| n == b.name))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The catalog and lmb.c must agree on names and units: lmb.c's table is the source.
    #[test]
    fn catalog_matches_the_c_program() {
        let src = include_str!("../../../benches/programs/lmb.c");
        let lmb_benches = || ALL.iter().filter(|b| !matches!(b.hostfs, Some(Hostfs::Startup(_))));
        for b in lmb_benches() {
            let entry = format!("{{\"{}\", \"{}\",", b.lmb, b.per);
            assert!(src.contains(&entry), "lmb.c has no entry {entry}");
            assert_eq!(b.smp.is_none(), b.name == b.lmb, "{}: only SMP variants rename", b.name);
        }
        let mut lmb_names: Vec<&str> = lmb_benches().map(|b| b.lmb).collect();
        lmb_names.sort_unstable();
        lmb_names.dedup();
        let c_entries = src.matches("    {\"").count();
        assert_eq!(
            c_entries,
            lmb_names.len(),
            "lmb.c has benchmarks the catalog lacks"
        );
        let mut names: Vec<&str> = ALL.iter().map(|b| b.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len(), "report names are unique");
        for (_, a, b) in SCALING.iter().chain(LATENCY) {
            assert!(find(a).is_some() && find(b).is_some(), "{a} / {b}");
        }
        for (_, b) in HOSTFS {
            assert!(find(b).is_some_and(|b| b.hostfs.is_some()), "{b}");
        }
    }

    #[test]
    fn select_keeps_report_order_and_rejects_unknown_names() {
        let picked = select(Some(&["stat".into(), "getppid".into()])).expect("known names");
        let names: Vec<&str> = picked.iter().map(|b| b.name).collect();
        assert_eq!(names, ["getppid", "stat"]);
        assert!(select(Some(&["nope".into()])).unwrap_err().contains("nope"));
        assert_eq!(select(None).expect("all").len(), ALL.len());
    }
}
