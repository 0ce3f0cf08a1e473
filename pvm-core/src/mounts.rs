//! The guest's boot mount table from `--rootfs`, `--read-only`, `-v/--volume` and `--tmpfs`:
//! which host directories the file server serves (one hostfs queue each) and where the guest
//! kernel mounts them and the tmpfs mounts (`guest_abi::hostfs::HostfsMount`).

use std::path::{Path, PathBuf};

use file_server::MountSpec;
use guest_abi::hostfs::{HostfsMount, MAX_HOSTFS_MOUNTS, MOUNT_PATH_MAX, MOUNT_READ_ONLY, MOUNT_ROOT, MOUNT_TMPFS};

use crate::cli::RunArgs;

/// The mounts of one VM.
#[derive(Default)]
pub struct MountPlan {
    /// The boot mount table, in mount order: the root first, then parents before children.
    pub table: Vec<HostfsMount>,
    /// What F serves: one entry per hostfs (non-tmpfs) row of `table`, by queue.
    pub served: Vec<MountSpec>,
    /// The host directory of the root, when `--rootfs` was given (canonical).
    pub root: Option<PathBuf>,
}

impl MountPlan {
    /// Whether the VM needs a hostfs area (any mount at all).
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }
}

fn entry(path: &str, flags: u32, queue: u32, size: u64) -> HostfsMount {
    let mut p = [0u8; MOUNT_PATH_MAX];
    // Paths were checked shorter than MOUNT_PATH_MAX by the CLI (`cli::parse_guest_path`).
    let n = path.len().min(MOUNT_PATH_MAX - 1);
    p[..n].copy_from_slice(&path.as_bytes()[..n]);
    HostfsMount { path: p, flags, queue, size }
}

/// A mount besides the root: a volume (canonical host source, read-only) or a tmpfs (size).
enum Extra {
    Volume(PathBuf, bool),
    Tmpfs(u64),
}

/// A host directory to serve: absolute and canonical (symlinks on the host side are the
/// user's to choose), and a directory.
fn host_dir(what: &str, dir: &Path) -> Result<PathBuf, String> {
    let canon = std::fs::canonicalize(dir).map_err(|e| format!("{what} {}: {e}", dir.display()))?;
    if !canon.is_dir() {
        return Err(format!("{what} {}: not a directory", dir.display()));
    }
    if canon.to_str().is_none() {
        return Err(format!("{what} {}: path is not UTF-8", dir.display()));
    }
    Ok(canon)
}

/// Builds the plan for `args`.
///
/// # Errors
/// One line naming the option: a host directory that is missing or not a directory, a guest
/// path given twice, more than [`MAX_HOSTFS_MOUNTS`] mounts.
pub fn plan(args: &RunArgs) -> Result<MountPlan, String> {
    let mut plan = MountPlan::default();
    let mut queue = 0u32;
    if let Some(dir) = &args.rootfs {
        let root = host_dir("--rootfs", dir)?;
        let flags = MOUNT_ROOT | if args.read_only { MOUNT_READ_ONLY } else { 0 };
        plan.table.push(entry("/", flags, queue, 0));
        plan.served.push(MountSpec { queue, read_only: args.read_only, source: root.clone() });
        plan.root = Some(root);
        queue += 1;
    }
    let mut rest: Vec<(usize, String, Extra)> = Vec::new();
    for v in &args.volumes {
        rest.push((0, v.guest.clone(), Extra::Volume(host_dir("--volume", &v.host)?, v.read_only)));
    }
    for t in &args.tmpfs {
        rest.push((0, t.guest.clone(), Extra::Tmpfs(t.size)));
    }
    for r in &mut rest {
        r.0 = r.1.matches('/').count();
    }
    // Parents before children; otherwise in the order given (a stable sort).
    rest.sort_by_key(|r| r.0);
    for (i, r) in rest.iter().enumerate() {
        if rest[..i].iter().any(|o| o.1 == r.1) {
            return Err(format!("{} is mounted twice (--volume/--tmpfs)", r.1));
        }
    }
    if plan.table.len() + rest.len() > MAX_HOSTFS_MOUNTS {
        return Err(format!("too many mounts: pvm supports {MAX_HOSTFS_MOUNTS} (--rootfs, --volume and --tmpfs together)"));
    }
    for (_, guest, what) in rest {
        match what {
            Extra::Volume(source, read_only) => {
                plan.table.push(entry(&guest, if read_only { MOUNT_READ_ONLY } else { 0 }, queue, 0));
                plan.served.push(MountSpec { queue, read_only, source });
                queue += 1;
            }
            Extra::Tmpfs(size) => plan.table.push(entry(&guest, MOUNT_TMPFS, 0, size)),
        }
    }
    Ok(plan)
}
