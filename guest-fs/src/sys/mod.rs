//! The file-syscall layer: one function per Linux syscall, with Linux semantics and errno
//! (section 2 man pages), on kernel buffers. Path arguments are the user's bytes without the
//! terminating NUL (the kernel copies at most `PATH_MAX`; a longer path is `ENAMETOOLONG`).

pub mod cwd;
pub mod dents;
pub mod exec;
pub mod fd;
pub mod ioctl;
pub mod lock;
pub mod meta;
pub mod names;
pub mod open;
pub mod rw;
pub mod xattr;

use crate::context::FsContext;
use crate::errno::{Errno, Result};
use crate::fdtable::FdTable;
use crate::file::OpenFile;
use crate::inode::InodeRef;
use crate::path::{self, AT_FDCWD};
use alloc::sync::Arc;
use linux_raw_sys::general as g;

/// What an `*at` call with `AT_EMPTY_PATH` may name: an inode or an open description.
pub(crate) enum At {
    Inode(InodeRef),
    File(Arc<OpenFile>),
}

impl At {
    pub(crate) fn inode(&self) -> Option<&InodeRef> {
        match self {
            At::Inode(i) => Some(i),
            At::File(f) => f.inode(),
        }
    }
}

/// Resolves `dirfd` + `path` for calls taking `AT_SYMLINK_NOFOLLOW` and `AT_EMPTY_PATH`:
/// an empty path with `AT_EMPTY_PATH` names `dirfd` itself (or the cwd for `AT_FDCWD`).
pub(crate) fn resolve_at(ctx: &FsContext, fds: &FdTable, dirfd: i32, path: &[u8], flags: u32) -> Result<At> {
    if path.is_empty() && flags & g::AT_EMPTY_PATH != 0 {
        if dirfd == AT_FDCWD {
            return Ok(At::Inode(ctx.cwd.clone()));
        }
        return Ok(At::File(fds.get(dirfd)?));
    }
    let follow = flags & g::AT_SYMLINK_NOFOLLOW == 0;
    path::resolve(ctx, fds, dirfd, path, follow).map(At::Inode)
}

/// Fails with `EINVAL` if `flags` has bits outside `allowed`.
pub(crate) fn check_flags(flags: u32, allowed: u32) -> Result<()> {
    if flags & !allowed != 0 { Err(Errno::EINVAL) } else { Ok(()) }
}
