//! The host CPU set every contender is pinned to (`--pin`), applied with
//! `sched_setaffinity(2)` in the child before it execs, so all its threads and children inherit
//! it.

use std::fmt;

/// Host CPUs to pin to; empty means "no pinning".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CpuSet {
    cpus: Vec<usize>,
}

impl CpuSet {
    /// Parses `none`, `3`, `0-1`, `0,2-3`; rejects CPUs at or above `CPU_SETSIZE`.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s == "none" {
            return Ok(Self::default());
        }
        let mut cpus = Vec::new();
        for part in s.split(',') {
            let (lo, hi) = match part.split_once('-') {
                Some((a, b)) => (parse_cpu(a)?, parse_cpu(b)?),
                None => (parse_cpu(part)?, parse_cpu(part)?),
            };
            if lo > hi {
                return Err(format!("empty CPU range `{part}`"));
            }
            cpus.extend(lo..=hi);
        }
        cpus.sort_unstable();
        cpus.dedup();
        Ok(Self { cpus })
    }

    /// The default: the last CPU this process may run on (CPU 0 usually takes more of the
    /// host's interrupts), or no pinning when the affinity cannot be read.
    pub fn default_single() -> Self {
        let allowed = allowed_cpus();
        Self {
            cpus: allowed.last().map(|&c| vec![c]).unwrap_or_default(),
        }
    }

    /// The first `n` CPUs this process may run on (for the SMP cases); `None` when fewer are
    /// allowed.
    pub fn first_allowed(n: usize) -> Option<Self> {
        let allowed = allowed_cpus();
        (allowed.len() >= n).then(|| Self { cpus: allowed[..n].to_vec() })
    }

    /// The CPUs, ascending; empty when not pinned.
    pub fn cpus(&self) -> &[usize] {
        &self.cpus
    }

    /// Every CPU must be one this process may use.
    pub fn check_allowed(&self) -> Result<(), String> {
        let allowed = allowed_cpus();
        match self.cpus.iter().find(|c| !allowed.contains(c)) {
            Some(c) => Err(format!(
                "CPU {c} is not in this process's affinity mask {allowed:?}"
            )),
            None => Ok(()),
        }
    }

    /// The raw mask, or `None` when unpinned.
    pub fn mask(&self) -> Option<libc::cpu_set_t> {
        if self.cpus.is_empty() {
            return None;
        }
        // SAFETY: cpu_set_t is a plain bitmask; all-zero is the empty set.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        for &c in &self.cpus {
            // SAFETY: `c < CPU_SETSIZE` (checked by `parse`/`allowed_cpus`), `set` is valid.
            unsafe { libc::CPU_SET(c, &mut set) };
        }
        Some(set)
    }
}

impl fmt::Display for CpuSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.cpus.is_empty() {
            return f.write_str("none");
        }
        let list: Vec<String> = self.cpus.iter().map(usize::to_string).collect();
        f.write_str(&list.join(","))
    }
}

fn parse_cpu(s: &str) -> Result<usize, String> {
    s.trim()
        .parse::<usize>()
        .ok()
        .filter(|&c| c < libc::CPU_SETSIZE as usize)
        .ok_or_else(|| format!("expected a CPU number, a range such as 0-1, or `none`, got `{s}`"))
}

/// The CPUs this process may run on (`sched_getaffinity(2)`), ascending.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is a plain bitmask the kernel fills.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: pid 0 = this thread; `set` is valid for its size.
    if unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) } != 0 {
        return Vec::new();
    }
    // SAFETY: CPU_ISSET only reads `set`, for indices below CPU_SETSIZE.
    (0..libc::CPU_SETSIZE as usize)
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_ranges_parse() {
        assert_eq!(CpuSet::parse("1").expect("cpu").cpus(), [1]);
        assert_eq!(CpuSet::parse("0-2,1").expect("range").cpus(), [0, 1, 2]);
        assert!(CpuSet::parse("none").expect("none").cpus().is_empty());
        assert!(CpuSet::parse("2-1").is_err());
        assert!(CpuSet::parse("x").is_err());
        assert!(CpuSet::parse("99999").is_err());
        assert_eq!(CpuSet::parse("0,3").expect("list").to_string(), "0,3");
    }

    #[test]
    fn default_is_one_allowed_cpu() {
        let d = CpuSet::default_single();
        assert_eq!(d.cpus().len(), 1);
        assert!(d.check_allowed().is_ok());
        assert!(d.mask().is_some());
    }
}
