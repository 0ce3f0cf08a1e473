//! Per-process filesystem context: root, working directory, umask and filesystem
//! credentials (what Linux keeps in `fs_struct` and the fs part of `cred`).

use crate::inode::InodeRef;
use crate::mount::MountTable;
use crate::vfs::Vfs;
use alloc::sync::Arc;
use alloc::vec::Vec;

/// A process's view of the filesystem. `Clone` for `fork(2)` (Linux copies `fs_struct`
/// unless `CLONE_FS`; a kernel that supports `CLONE_FS` shares one behind a lock).
#[derive(Clone)]
pub struct FsContext {
    pub(crate) root: InodeRef,
    pub(crate) cwd: InodeRef,
    /// The mount table walks consult (the process's mount namespace).
    pub(crate) mounts: Arc<MountTable>,
    /// `openat2` `RESOLVE_*` flags of the walk in progress (0 for every other call).
    pub(crate) resolve: u32,
    /// File mode creation mask (`umask(2)`), `0o777` bits; default `0o022`.
    pub umask: u32,
    /// Filesystem user id used for permission checks and new-file ownership (0 = root).
    pub uid: u32,
    /// Filesystem group id.
    pub gid: u32,
    /// Supplementary groups (`getgroups(2)`).
    pub groups: Vec<u32>,
}

impl FsContext {
    /// Root context: root and cwd at the filesystem root, uid/gid 0, umask 022.
    pub fn new(vfs: &Vfs) -> Self {
        Self {
            root: vfs.root(),
            cwd: vfs.root(),
            mounts: vfs.mounts().clone(),
            resolve: 0,
            umask: 0o022,
            uid: 0,
            gid: 0,
            groups: Vec::new(),
        }
    }

    /// Sets the umask (`umask(2)`), returning the previous one.
    pub fn set_umask(&mut self, mask: u32) -> u32 {
        core::mem::replace(&mut self.umask, mask & 0o777)
    }

    /// The working directory.
    pub fn cwd(&self) -> &InodeRef {
        &self.cwd
    }

    /// The root directory (`chroot(2)`).
    pub fn root(&self) -> &InodeRef {
        &self.root
    }

    /// True when `gid` is the fs gid or a supplementary group.
    pub(crate) fn in_group(&self, gid: u32) -> bool {
        self.gid == gid || self.groups.contains(&gid)
    }
}
