//! The benchmarks of `benches/programs/lmb.c`: names, what one operation is, how to read them.

/// How a benchmark's figure is best read (every sample is a time per operation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A latency: nanoseconds per operation, lower is better.
    Latency,
    /// A bandwidth: the operation is one MiB, shown as MB/s (10^6 bytes per second) too.
    Bandwidth,
}

/// One benchmark of the `lmb` program.
#[derive(Clone, Copy, Debug)]
pub struct Bench {
    /// The name `lmb` takes and prints.
    pub name: &'static str,
    /// A short human title.
    pub title: &'static str,
    /// What one operation is (the `per` field `lmb` prints).
    pub per: &'static str,
    /// How to read the figure.
    pub kind: Kind,
}

const fn lat(name: &'static str, title: &'static str, per: &'static str) -> Bench {
    Bench {
        name,
        title,
        per,
        kind: Kind::Latency,
    }
}

const fn bw(name: &'static str, title: &'static str) -> Bench {
    Bench {
        name,
        title,
        per: "MiB",
        kind: Kind::Bandwidth,
    }
}

/// Every benchmark, in report order (lmbench's order: system calls, signals, processes,
/// memory).
pub const ALL: &[Bench] = &[
    lat("getppid", "null syscall (getppid)", "call"),
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
        for b in ALL {
            let entry = format!("{{\"{}\", \"{}\",", b.name, b.per);
            assert!(src.contains(&entry), "lmb.c has no entry {entry}");
        }
        let c_entries = src.matches("    {\"").count();
        assert_eq!(
            c_entries,
            ALL.len(),
            "lmb.c has benchmarks the catalog lacks"
        );
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
