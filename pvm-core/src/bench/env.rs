//! What every runner shares: the built programs and root filesystem, the hostfs cases' trees,
//! the CPU set, the `lmb` options of this mode (quick or full) and the time limits.

use std::path::PathBuf;
use std::time::Duration;

use super::cpuset::CpuSet;
use super::hostfs::HostfsEnv;

/// The benchmark environment, built once per `pvm bench` run.
#[derive(Debug)]
pub struct Env {
    /// Host directory that is the guests' root filesystem: `/lmb`, `/bin/sh`, `/bin/busybox`,
    /// `/init`, empty `/dev`, `/proc`, `/sys`, `/tmp`.
    pub rootfs: PathBuf,
    /// The same tree as a `newc` cpio archive (QEMU's initramfs).
    pub initramfs: PathBuf,
    /// Scratch directory for runner state (logs, runsc state).
    pub scratch: PathBuf,
    /// The `pvm` binary itself (the pvm runners run `pvm run`).
    pub pvm_exe: PathBuf,
    /// Host CPUs every contender is pinned to.
    pub cpus: CpuSet,
    /// `lmb` options (calibration, repetitions, sizes) of this mode.
    pub lmb_options: Vec<String>,
    /// Guest memory for the guests that need a size (pvm, QEMU, UML), MiB.
    pub guest_mib: u64,
    /// Limit for one `lmb` process running one benchmark.
    pub per_bench_timeout: Duration,
    /// Contenders named with `--runners` (a runner that would skip itself by default, such as
    /// pvm-kvm on a software-only KVM, runs when named).
    pub named: Vec<String>,
    /// Extra limit for booting a guest kernel (QEMU, UML) before the first benchmark.
    pub boot_timeout: Duration,
    /// The hostfs cases' data directory and trees.
    pub hostfs: HostfsEnv,
    /// Timed start-up runs per start-up case and round.
    pub startup_reps: usize,
}

impl Env {
    /// `lmb`'s arguments for one or more benchmarks when the root filesystem is seen at `root`
    /// (`""` inside a guest, the host path for native): options, then the paths it needs.
    pub fn lmb_args(&self, root: &str) -> Vec<String> {
        let mut a = self.lmb_options.clone();
        for (opt, path) in [("--file", "/lmb"), ("--sh", "/bin/sh"), ("--self", "/lmb")] {
            a.push(opt.to_string());
            a.push(format!("{root}{path}"));
        }
        a
    }

    /// The number of CPUs in the set (1 when unpinned: the guests get one vCPU).
    pub fn vcpus(&self) -> usize {
        self.cpus.cpus().len().max(1)
    }
}
