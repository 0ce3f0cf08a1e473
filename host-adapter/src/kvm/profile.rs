//! Guest RIP sampling for the KVM backend, a developer tool: with `PVM_KVM_PROFILE=FILE` in
//! the environment, H kicks every vCPU out of `KVM_RUN` once a millisecond, reads its RIP
//! (`KVM_GET_REGS`) and, when the VM ends, writes one line per sampled RIP to FILE:
//! `count rip`, most frequent first. Symbolize with `addr2line -f -C -e` on the guest kernel
//! ELF (`target/release/build/pvm-core-*/out/guest-kernel/...`); user-half RIPs belong to the
//! guest program. This finds where emulated ring-0 time goes on software KVM, where no host
//! profiler can see inside the guest.

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use parking_lot::Mutex;

/// Environment variable naming the output file.
pub(crate) const ENV: &str = "PVM_KVM_PROFILE";

/// Interval between kicks while profiling.
pub(crate) const INTERVAL: Duration = Duration::from_millis(1);

/// RIP histogram of one run.
pub(crate) struct Profile {
    path: std::path::PathBuf,
    samples: Mutex<HashMap<u64, u64>>,
}

impl Profile {
    /// A profile when [`ENV`] is set, else `None`.
    pub(crate) fn from_env() -> Option<Self> {
        let path = std::env::var_os(ENV)?;
        Some(Profile { path: path.into(), samples: Mutex::new(HashMap::new()) })
    }

    /// Counts one sample at `rip`.
    pub(crate) fn record(&self, rip: u64) {
        *self.samples.lock().entry(rip).or_default() += 1;
    }

    /// Writes the histogram (most frequent first); errors are reported on stderr, not fatal.
    pub(crate) fn write(&self) {
        let mut v: Vec<(u64, u64)> = self.samples.lock().iter().map(|(&r, &c)| (c, r)).collect();
        v.sort_unstable_by(|a, b| b.cmp(a));
        let text: String = v.iter().map(|(c, r)| format!("{c} {r:#x}\n")).collect();
        if let Err(e) = std::fs::File::create(&self.path).and_then(|mut f| f.write_all(text.as_bytes())) {
            eprintln!("pvm: {ENV}: cannot write {}: {e}", self.path.display());
        }
    }
}
