//! What H tells F on its command line: the guest-memory memfd, where the hostfs area is, and
//! which host directory each queue serves. H is trusted; F takes this, never the config page in
//! guest memory (which the guest can rewrite), as the truth about its mounts.
//!
//! Command line (after the hidden subcommand): `MEMFD READY_FD PARENT_PID RAM_SIZE AREA_GPA` then one
//! `QUEUE:ro|rw:SOURCE` per hostfs mount (SOURCE may contain `:`; it is everything after the
//! second one). `READY_FD` is -1 for none.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

use guest_abi::hostfs::MAX_HOSTFS_MOUNTS;

/// One hostfs mount as F serves it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountSpec {
    /// Queue index (rings at page `1 + queue` of the hostfs area).
    pub queue: u32,
    /// Serve the tree read-only (Landlock grants read access only).
    pub read_only: bool,
    /// Absolute host directory served as the mount's root.
    pub source: PathBuf,
}

/// Everything F needs to serve a VM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// File descriptor number of the guest-memory memfd in F.
    pub memfd: i32,
    /// Write end of a pipe F writes one byte to once it serves (sandbox entered), then
    /// closes; -1 for none. H waits for it, so a failure to start is pvm's own (125).
    pub ready_fd: i32,
    /// H's pid: F arms `PR_SET_PDEATHSIG` and then exits unless its parent is still this
    /// process (0: no check).
    pub parent_pid: i32,
    /// Guest RAM size, bytes (the memfd's length; GPAs `0 .. ram_size`).
    pub ram_size: u64,
    /// GPA of the hostfs area (page aligned; page 0 the config, page `1 + q` queue `q`).
    pub area_gpa: u64,
    /// The hostfs mounts (tmpfs mounts are the guest's own and not listed).
    pub mounts: Vec<MountSpec>,
}

/// A malformed F command line (H and F are the same binary, so this is a bug or a user
/// calling the hidden subcommand by hand).
#[derive(Debug, thiserror::Error)]
#[error("file server arguments: {0}")]
pub struct ConfigError(String);

fn num<T: std::str::FromStr>(arg: Option<&OsString>, what: &str) -> Result<T, ConfigError> {
    arg.and_then(|a| a.to_str())
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ConfigError(format!("expected {what}")))
}

impl ServerConfig {
    /// The arguments that [`ServerConfig::parse`] reads back.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut out = vec![
            OsString::from(self.memfd.to_string()),
            OsString::from(self.ready_fd.to_string()),
            OsString::from(self.parent_pid.to_string()),
            OsString::from(self.ram_size.to_string()),
            OsString::from(self.area_gpa.to_string()),
        ];
        for m in &self.mounts {
            let mut a = format!("{}:{}:", m.queue, if m.read_only { "ro" } else { "rw" }).into_bytes();
            a.extend_from_slice(m.source.as_os_str().as_bytes());
            out.push(OsString::from_vec(a));
        }
        out
    }

    /// Parses `args` (without the program name and subcommand).
    ///
    /// # Errors
    /// [`ConfigError`] for a missing or malformed field, more than
    /// [`MAX_HOSTFS_MOUNTS`] mounts, a queue index out of range or used twice, or a relative
    /// source path.
    pub fn parse(args: &[OsString]) -> Result<Self, ConfigError> {
        let memfd = num(args.first(), "the memfd number")?;
        let ready_fd = num(args.get(1), "the ready pipe number")?;
        let parent_pid = num(args.get(2), "the parent pid")?;
        let ram_size = num(args.get(3), "the guest RAM size")?;
        let area_gpa = num(args.get(4), "the hostfs area GPA")?;
        let mut mounts: Vec<MountSpec> = Vec::new();
        for a in args.iter().skip(5) {
            let bytes = a.as_bytes();
            let mut parts = bytes.splitn(3, |&b| b == b':');
            let queue = parts
                .next()
                .and_then(|q| std::str::from_utf8(q).ok())
                .and_then(|q| q.parse::<u32>().ok())
                .filter(|&q| (q as usize) < MAX_HOSTFS_MOUNTS)
                .ok_or_else(|| ConfigError(format!("bad mount `{}`", a.to_string_lossy())))?;
            let read_only = match parts.next() {
                Some(b"ro") => true,
                Some(b"rw") => false,
                _ => return Err(ConfigError(format!("bad mount `{}`", a.to_string_lossy()))),
            };
            let source = PathBuf::from(OsStr::from_bytes(parts.next().unwrap_or_default()));
            if !source.is_absolute() {
                return Err(ConfigError(format!("mount source `{}` is not absolute", source.display())));
            }
            if mounts.iter().any(|m| m.queue == queue) {
                return Err(ConfigError(format!("queue {queue} given twice")));
            }
            mounts.push(MountSpec { queue, read_only, source });
        }
        if mounts.len() > MAX_HOSTFS_MOUNTS {
            return Err(ConfigError(format!("more than {MAX_HOSTFS_MOUNTS} mounts")));
        }
        Ok(Self { memfd, ready_fd, parent_pid, ram_size, area_gpa, mounts })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let cfg = ServerConfig {
            memfd: 3,
            ready_fd: 5,
            parent_pid: 77,
            ram_size: 1 << 30,
            area_gpa: 0x3000_0000,
            mounts: vec![
                MountSpec { queue: 0, read_only: false, source: "/srv/root".into() },
                MountSpec { queue: 1, read_only: true, source: "/a:b:c".into() },
            ],
        };
        assert_eq!(ServerConfig::parse(&cfg.to_args()).expect("parses"), cfg);
    }

    #[test]
    fn rejects_bad_mounts() {
        let base = || vec![OsString::from("3"), OsString::from("-1"), OsString::from("0"), OsString::from("4096"), OsString::from("0")];
        for bad in ["0:rx:/a", "99:ro:/a", "x:ro:/a", "0:ro:rel", "0:ro"] {
            let mut a = base();
            a.push(bad.into());
            assert!(ServerConfig::parse(&a).is_err(), "{bad}");
        }
        let mut a = base();
        a.push("1:ro:/a".into());
        a.push("1:rw:/b".into());
        assert!(ServerConfig::parse(&a).is_err());
        assert!(ServerConfig::parse(&base()[..4]).is_err());
    }
}
