//! Describes the host a run measured: CPU model and count, memory, kernel, load before and
//! after, the date. Read from `/proc` (proc(5)).

use serde::Serialize;

/// The host.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    /// `model name` of /proc/cpuinfo.
    pub cpu_model: String,
    /// Online CPUs.
    pub cpus: usize,
    /// MemTotal of /proc/meminfo, GiB.
    pub memory_gib: f64,
    /// Kernel release.
    pub kernel: String,
    /// Whether /dev/kvm exists.
    pub kvm: bool,
    /// 1, 5 and 15 minute load averages when the run started.
    pub load_start: [f64; 3],
    /// The same when it ended.
    pub load_end: [f64; 3],
    /// UTC date and time the run started (`date -u`).
    pub date: String,
}

impl Machine {
    /// Reads the host now (`load_end` is filled by [`Machine::finish`]).
    pub fn read() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name")
                    .and_then(|r| r.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let kib: f64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        let date = std::process::Command::new("date")
            .args(["-u", "+%Y-%m-%d %H:%M UTC"])
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        let load = loadavg();
        Self {
            cpu_model,
            cpus,
            memory_gib: (kib / 1_048_576.0 * 10.0).round() / 10.0,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_string(),
            kvm: std::path::Path::new("/dev/kvm").exists(),
            load_start: load,
            load_end: load,
            date,
        }
    }

    /// Records the load at the end of the run.
    pub fn finish(&mut self) {
        self.load_end = loadavg();
    }

    /// One line for reports.
    pub fn describe(&self) -> String {
        format!(
            "{} x {}, {} GiB, Linux {}{}; load average {:.2} {:.2} {:.2} at start, {:.2} {:.2} {:.2} at end",
            self.cpus,
            self.cpu_model,
            self.memory_gib,
            self.kernel,
            if self.kvm {
                ", /dev/kvm present"
            } else {
                ", no /dev/kvm"
            },
            self.load_start[0],
            self.load_start[1],
            self.load_start[2],
            self.load_end[0],
            self.load_end[1],
            self.load_end[2],
        )
    }
}

/// /proc/loadavg's first three fields.
fn loadavg() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut it = text
        .split_whitespace()
        .map(|v| v.parse::<f64>().unwrap_or(0.0));
    [
        it.next().unwrap_or(0.0),
        it.next().unwrap_or(0.0),
        it.next().unwrap_or(0.0),
    ]
}
