//! The state directory of OCI containers: `ROOT/ID/` holds `state.json` (a [`Record`]),
//! `config.json` (the validated copy the monitor boots from), `exec.fifo` (until `start`) and
//! `lock`. Every operation that changes a container holds `flock(ROOT/ID/lock, LOCK_EX)` while
//! it reads and writes `state.json`, which is replaced atomically (write `state.json.tmp`,
//! fsync, rename); `state`, `list` and `ps` only read it, without the lock.
//!
//! The status is derived, never trusted from the file alone (OCI runtime spec `runtime.md`,
//! "State"): a container whose monitor process is gone (no `/proc/PID`, a zombie, or a pid
//! reused by a process with another start time, field 22 of `/proc/PID/stat`) is `stopped`,
//! whatever phase the record says; so a crashed or SIGKILLed pvm reads as stopped.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::fd::AsRawFd as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use oci_spec::runtime::{ContainerState, Hooks, State};
use serde::{Deserialize, Serialize};

/// The OCI runtime spec version pvm implements (`ociVersion` of `state`).
pub const OCI_VERSION: &str = "1.2.0";

/// Files of a container's state directory, all that `create` makes and `delete` removes.
pub const STATE_FILE: &str = "state.json";
/// The copy of the bundle's config.json the monitor boots from.
pub const CONFIG_FILE: &str = "config.json";
/// The FIFO `start` writes one byte into to release the monitor (runc's `exec.fifo`).
pub const FIFO_FILE: &str = "exec.fifo";
/// The lock file.
pub const LOCK_FILE: &str = "lock";
const TMP_FILE: &str = "state.json.tmp";

/// Where a container is in its life, as far as pvm wrote down; see [`status`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// `create` runs: the monitor boots the VM.
    Creating,
    /// The VM is ready; the monitor waits for `start`.
    Created,
    /// `start` released the monitor.
    Running,
}

/// `state.json`: pvm's record of one container (not the OCI state itself, which
/// [`oci_state`] derives from it).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    /// Container ID.
    pub id: String,
    /// Absolute, canonical bundle directory.
    pub bundle: PathBuf,
    /// Phase written by the last operation.
    pub phase: Phase,
    /// Host pid of the container monitor (0 until it is spawned).
    pub pid: i32,
    /// The monitor's start time, clock ticks after boot (`/proc/PID/stat` field 22).
    pub pid_start: u64,
    /// When `create` began, RFC 3339 UTC.
    pub created: String,
    /// config.json's annotations.
    pub annotations: HashMap<String, String>,
    /// config.json's network namespace path, if any (for `--network netns=`, not used yet).
    pub network_namespace: Option<PathBuf>,
    /// config.json's hooks (startContainer, poststart and poststop run after `create`).
    pub hooks: Option<Hooks>,
}

/// Checks a container ID as runc does: 1 to 255 bytes of letters, digits, `_`, `+`, `-`, `.`,
/// not `.` or `..` (it names a directory under --root).
///
/// # Errors
/// One line naming the ID.
pub fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 255
        && id != "."
        && id != ".."
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b));
    if !ok {
        bail!("invalid container ID `{id}` (1 to 255 letters, digits, `_`, `+`, `-`, `.`)");
    }
    Ok(())
}

/// A container's state directory, locked for as long as this lives.
pub struct Locked {
    dir: PathBuf,
    _lock: File,
}

fn flock(file: &File) -> Result<()> {
    loop {
        // SAFETY: flock on an fd we own; no memory is passed.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e).context("locking the container's state");
        }
    }
}

/// Makes `root/id` (failing if it exists) and locks it.
///
/// # Errors
/// The ID exists, or the directory cannot be made.
pub fn create_dir(root: &Path, id: &str) -> Result<Locked> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(root)
        .with_context(|| format!("--root {}", root.display()))?;
    let dir = root.join(id);
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => bail!("container with id {id} already exists"),
        Err(e) => return Err(e).with_context(|| format!("making {}", dir.display())),
    }
    let lock = OpenOptions::new().create_new(true).write(true).mode(0o600).open(dir.join(LOCK_FILE))?;
    flock(&lock)?;
    Ok(Locked { dir, _lock: lock })
}

/// Locks the state of container `id` under `root`.
///
/// # Errors
/// `container ID does not exist` (no directory, or deleted while we waited for the lock).
pub fn open_dir(root: &Path, id: &str) -> Result<Locked> {
    check_id(id)?;
    let dir = root.join(id);
    let lock = match File::open(dir.join(LOCK_FILE)) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!("container {id} does not exist"),
        Err(e) => return Err(e).with_context(|| format!("opening {}", dir.display())),
    };
    flock(&lock)?;
    if !dir.join(STATE_FILE).exists() {
        bail!("container {id} does not exist");
    }
    Ok(Locked { dir, _lock: lock })
}

impl Locked {
    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Reads `state.json`.
    ///
    /// # Errors
    /// Unreadable or malformed (someone else wrote it).
    pub fn read(&self) -> Result<Record> {
        let path = self.dir.join(STATE_FILE);
        let text = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_slice(&text).with_context(|| format!("{} is malformed", path.display()))
    }

    /// Replaces `state.json` atomically with `record`.
    ///
    /// # Errors
    /// I/O.
    pub fn write(&self, record: &Record) -> Result<()> {
        write_atomic(&self.dir.join(STATE_FILE), &serde_json::to_vec(record)?, &self.dir.join(TMP_FILE))
    }

    /// Removes what [`create_dir`] and `create` made (the files named in this module, then
    /// the directory), and nothing else: a directory holding other files stays, with an error.
    ///
    /// # Errors
    /// I/O, or files pvm did not make.
    pub fn remove(self) -> Result<()> {
        for f in [FIFO_FILE, CONFIG_FILE, TMP_FILE, STATE_FILE, LOCK_FILE] {
            match std::fs::remove_file(self.dir.join(f)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).with_context(|| format!("removing {}", self.dir.join(f).display())),
            }
        }
        std::fs::remove_dir(&self.dir).with_context(|| format!("removing {}", self.dir.display()))
    }
}

/// Writes `data` to `path` atomically: to `tmp` first, fsync, then rename over `path`.
///
/// # Errors
/// I/O.
pub fn write_atomic(path: &Path, data: &[u8], tmp: &Path) -> Result<()> {
    let mut f = OpenOptions::new().create(true).truncate(true).write(true).mode(0o600).open(tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    std::fs::rename(tmp, path).with_context(|| format!("writing {}", path.display()))
}

/// The state letter (`/proc/PID/stat` field 3) and start time (field 22, clock ticks after
/// boot) of process `pid`, if it exists (proc(5)).
pub fn proc_stat(pid: i32) -> Option<(char, u64)> {
    if pid <= 0 {
        return None;
    }
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm may hold spaces and parentheses: the fields start after the last `)`.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

/// Whether the monitor of `record` is alive: its pid exists, is not a zombie (exited, not
/// reaped yet) and started when the record says (not a reused pid).
pub fn monitor_alive(record: &Record) -> bool {
    matches!(proc_stat(record.pid), Some((s, start)) if s != 'Z' && s != 'X' && start == record.pid_start)
}

/// The OCI status of `record` (`runtime.md`, "State"): its phase while the monitor lives,
/// `stopped` after.
pub fn status(record: &Record) -> ContainerState {
    if !monitor_alive(record) {
        // While `create` has not spawned the monitor yet, it holds the lock, so nobody sees
        // pid 0 with phase Creating except after a crashed `create`: stopped then.
        return ContainerState::Stopped;
    }
    match record.phase {
        Phase::Creating => ContainerState::Creating,
        Phase::Created => ContainerState::Created,
        Phase::Running => ContainerState::Running,
    }
}

/// The OCI state of `record`: ociVersion, id, status, pid (while the monitor lives), bundle,
/// annotations.
pub fn oci_state(record: &Record) -> State {
    let status = status(record);
    let mut s = State::default();
    s.set_version(OCI_VERSION.to_string());
    s.set_id(record.id.clone());
    s.set_status(status);
    s.set_pid((status != ContainerState::Stopped && record.pid > 0).then_some(record.pid));
    s.set_bundle(record.bundle.clone());
    s.set_annotations(Some(record.annotations.clone()));
    s
}

/// Now as RFC 3339 UTC with nanoseconds (`2026-12-03T17:20:18.123456789Z`).
pub fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = libc::time_t::try_from(now.as_secs()).unwrap_or(0);
    // SAFETY: a zeroed tm is valid storage; gmtime_r writes one tm into it from a time_t.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are to live locals.
    unsafe { libc::gmtime_r(&secs, &mut tm) };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        now.subsec_nanos()
    )
}

/// Reads the record of container `id` without the lock (for `state` and `list`, which must
/// not wait for a `create` in progress: `state.json` is only ever replaced whole, by rename,
/// so a reader sees the old or the new record).
///
/// # Errors
/// `container ID does not exist`, or a malformed record.
pub fn read_unlocked(root: &Path, id: &str) -> Result<Record> {
    check_id(id)?;
    let path = root.join(id).join(STATE_FILE);
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!("container {id} does not exist"),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    serde_json::from_slice(&text).with_context(|| format!("{} is malformed", path.display()))
}

/// The records of every container under `root`, by ID (directories that are not containers
/// are skipped).
pub fn list(root: &Path) -> Vec<Record> {
    let Ok(entries) = std::fs::read_dir(root) else { return Vec::new() };
    let mut ids: Vec<String> = entries.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect();
    ids.sort();
    ids.iter().filter_map(|id| read_unlocked(root, id).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked() {
        for ok in ["a", "abc-1.2_3+x", &"x".repeat(255)] {
            assert!(check_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "a b", &"x".repeat(256), "é"] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn own_stat_parses() {
        let (s, start) = proc_stat(std::process::id() as i32).expect("own /proc/PID/stat");
        assert!("RSD".contains(s), "{s}");
        assert!(start > 0);
        assert!(proc_stat(0).is_none());
    }

    #[test]
    fn a_reused_pid_reads_as_stopped() {
        let pid = std::process::id() as i32;
        let (_, start) = proc_stat(pid).expect("own /proc/PID/stat");
        let mut r = Record {
            id: "x".into(),
            bundle: "/".into(),
            phase: Phase::Running,
            pid,
            pid_start: start,
            created: now_rfc3339(),
            annotations: HashMap::new(),
            network_namespace: None,
            hooks: None,
        };
        assert_eq!(status(&r), ContainerState::Running);
        assert_eq!(oci_state(&r).pid(), &Some(pid));
        r.pid_start = start + 1;
        assert_eq!(status(&r), ContainerState::Stopped, "another process now has the pid");
        assert_eq!(oci_state(&r).pid(), &None);
        r.pid = 0;
        r.phase = Phase::Creating;
        assert_eq!(status(&r), ContainerState::Stopped, "a crashed create");
    }

    #[test]
    fn rfc3339_shape() {
        let t = now_rfc3339();
        assert_eq!(t.len(), "2026-12-03T17:20:18.123456789Z".len(), "{t}");
        assert!(t.ends_with('Z') && t.as_bytes()[10] == b'T', "{t}");
    }
}
