//! The mount table: which filesystem root covers which directory. Path walks consult it
//! only at directories whose mount flags are set ([`crate::inode::MOUNTPOINT`] when a walk
//! enters one, [`crate::inode::MOUNT_ROOT`] when `..` leaves one), so a walk that crosses no
//! mount costs one atomic load per component.
//!
//! Model: Linux's `vfsmount` tree (`mount(2)`, `proc_pid_mountinfo(5)`). Mounts stack: the
//! last mount on a directory is the one a walk enters. A bind mount's root is an existing
//! directory; its mounts and its filesystem's are those of the place it came from.
//! Departure: Linux's walk carries (mount, dentry) pairs; here an inode that is the root of
//! several mounts (a directory bind-mounted twice) leaves by `..` through the latest of them.

use crate::inode::{InodeRef, MOUNT_ROOT, MOUNTPOINT};
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use spin::RwLock;

/// One mount.
#[derive(Clone)]
pub struct Mount {
    /// Mount id (`mountinfo` field 1), from 1.
    pub id: u32,
    /// The id of the mount it is mounted in (its own id for the root mount).
    pub parent: u32,
    /// The directory it covers (`None` for the root mount).
    pub point: Option<InodeRef>,
    /// Its root directory.
    pub root: InodeRef,
    /// Absolute path of the mount point, as it was mounted.
    pub path: Vec<u8>,
    /// Path of `root` inside its filesystem (`/` except for bind mounts; `mountinfo` field 4).
    pub fs_root: Vec<u8>,
    /// Filesystem type (`tmpfs`, `proc`...).
    pub fs_type: String,
    /// Source field (`tmpfs`, `hostfs`...).
    pub source: String,
    /// Mounted read-only.
    pub read_only: bool,
}

/// The mount table of a VFS (one mount namespace). Shared as `Arc<MountTable>` by the VFS
/// and every process's [`crate::FsContext`].
#[derive(Default)]
pub struct MountTable {
    mounts: RwLock<Vec<Mount>>,
}

impl MountTable {
    /// Adds a mount (flags its point and root) and returns its id.
    pub(crate) fn add(&self, mut m: Mount) -> u32 {
        let mut t = self.mounts.write();
        m.id = t.last().map_or(1, |l| l.id + 1);
        if m.point.is_none() {
            m.parent = m.id;
        }
        if let Some(p) = &m.point {
            p.set_mount_flags(MOUNTPOINT, true);
        }
        m.root.set_mount_flags(MOUNT_ROOT, true);
        let id = m.id;
        t.push(m);
        id
    }

    /// Replaces the root mount (before any process runs: `/` mounted at boot). Mounts made
    /// before stay in the table, on the old root's tree.
    pub(crate) fn set_root(&self, mut m: Mount) {
        let mut t = self.mounts.write();
        m.root.set_mount_flags(MOUNT_ROOT, true);
        match t.iter_mut().find(|x| x.point.is_none()) {
            Some(old) => {
                m.id = old.id;
                m.parent = old.id;
                *old = m;
            }
            None => {
                m.id = t.last().map_or(1, |l| l.id + 1);
                m.parent = m.id;
                t.push(m);
            }
        }
    }

    /// The root of the latest mount on `dir`, if `dir` is a mount point.
    pub(crate) fn covering(&self, dir: &InodeRef) -> Option<InodeRef> {
        if dir.mount_flags() & MOUNTPOINT == 0 {
            return None;
        }
        let t = self.mounts.read();
        t.iter().rev().find(|m| m.point.as_ref().is_some_and(|p| Arc::ptr_eq(p, dir))).map(|m| m.root.clone())
    }

    /// The directory the latest mount whose root is `root` covers (`None` for the root mount
    /// or a directory that is no mount's root).
    pub(crate) fn mountpoint_of(&self, root: &InodeRef) -> Option<InodeRef> {
        if root.mount_flags() & MOUNT_ROOT == 0 {
            return None;
        }
        let t = self.mounts.read();
        t.iter().rev().find(|m| Arc::ptr_eq(&m.root, root)).and_then(|m| m.point.clone())
    }

    /// The mount a directory found under `root` belongs to: the latest mount with that root.
    pub fn mount_with_root(&self, root: &InodeRef) -> Option<Mount> {
        self.mounts.read().iter().rev().find(|m| Arc::ptr_eq(&m.root, root)).cloned()
    }

    /// Removes the latest mount on the directory at `root` (`umount(2)`); `false` if `root`
    /// is no mount's root or other mounts are inside it (`EBUSY`).
    pub(crate) fn remove(&self, root: &InodeRef) -> bool {
        let mut t = self.mounts.write();
        let Some(i) = t.iter().rposition(|m| Arc::ptr_eq(&m.root, root) && m.point.is_some()) else {
            return false;
        };
        let id = t[i].id;
        if t.iter().any(|m| m.parent == id && m.id != id) {
            return false;
        }
        let m = t.remove(i);
        if !t.iter().any(|x| Arc::ptr_eq(&x.root, &m.root)) {
            m.root.set_mount_flags(MOUNT_ROOT, false);
        }
        if let Some(p) = &m.point
            && !t.iter().any(|x| x.point.as_ref().is_some_and(|q| Arc::ptr_eq(q, p)))
        {
            p.set_mount_flags(MOUNTPOINT, false);
        }
        true
    }

    /// A copy of the table, in mount order (for `/proc/mounts` and `mountinfo`).
    pub fn list(&self) -> Vec<Mount> {
        self.mounts.read().clone()
    }
}

/// `\` escapes of `/proc/mounts` (space, tab, newline, backslash as octal, as Linux's
/// `mangle`).
fn escaped(out: &mut Vec<u8>, s: &[u8]) {
    for &b in s {
        match b {
            b' ' | b'\t' | b'\n' | b'\\' => out.extend_from_slice(alloc::format!("\\{b:03o}").as_bytes()),
            _ => out.push(b),
        }
    }
}

impl MountTable {
    /// `/proc/mounts` (`proc_mounts(5)`, the `fstab(5)` format): one line per mount,
    /// "source point type options 0 0".
    pub fn proc_mounts(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for m in self.list() {
            escaped(&mut out, m.source.as_bytes());
            out.push(b' ');
            escaped(&mut out, &m.path);
            out.push(b' ');
            escaped(&mut out, m.fs_type.as_bytes());
            out.extend_from_slice(if m.read_only { b" ro,relatime 0 0\n" } else { b" rw,relatime 0 0\n" });
        }
        out
    }

    /// `/proc/<pid>/mountinfo` (`proc_pid_mountinfo(5)`): "id parent major:minor root point
    /// options - type source superoptions" per mount.
    pub fn mountinfo(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for m in self.list() {
            let (major, minor) = m.root.dev();
            out.extend_from_slice(alloc::format!("{} {} {major}:{minor} ", m.id, m.parent).as_bytes());
            escaped(&mut out, &m.fs_root);
            out.push(b' ');
            escaped(&mut out, &m.path);
            let opts: &[u8] = if m.read_only { b"ro" } else { b"rw" };
            out.push(b' ');
            out.extend_from_slice(opts);
            out.extend_from_slice(b",relatime - ");
            escaped(&mut out, m.fs_type.as_bytes());
            out.push(b' ');
            escaped(&mut out, m.source.as_bytes());
            out.push(b' ');
            out.extend_from_slice(opts);
            out.push(b'\n');
        }
        out
    }
}
