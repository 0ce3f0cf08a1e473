//! Extended attributes (`xattr(7)`, `getxattr(2)`, `setxattr(2)`, `listxattr(2)`,
//! `removexattr(2)`): the in-memory store keeps `user.*`, `trusted.*` and `security.*` like
//! Linux's tmpfs (`user.*` only on regular files and directories; `trusted.*` needs root,
//! others never see it); POSIX ACLs (`system.posix_acl_*`) read as absent (`ENODATA`) and
//! cannot be set (`EOPNOTSUPP`), other `system.*` names are `EOPNOTSUPP`. Mounted filesystems get
//! the calls after the same checks. Never `ENOSYS`.

use super::{At, resolve_at};
use crate::context::FsContext;
use crate::errno::{Errno, Result};
use crate::fdtable::FdTable;
use crate::inode::{FileType, InodeRef};
use crate::ops::{XATTR_CREATE, XATTR_REPLACE};
use crate::perm::{self, MAY_READ, MAY_WRITE};
use alloc::vec::Vec;
use linux_raw_sys::general as g;

/// Largest attribute value, bytes (`XATTR_SIZE_MAX`).
pub const XATTR_SIZE_MAX: usize = 65536;
/// Longest attribute name, bytes (`XATTR_NAME_MAX`).
pub const XATTR_NAME_MAX: usize = 255;
/// Largest `listxattr` answer, bytes (`XATTR_LIST_MAX`).
pub const XATTR_LIST_MAX: usize = 65536;

/// Where an xattr call acts: a path (following symlinks unless `l*`) or an open fd.
#[derive(Clone, Copy, Debug)]
pub enum XattrTarget<'a> {
    /// `getxattr`/`setxattr`... on `path`: `follow` false for the `l*` variants.
    Path {
        /// The path (relative to the working directory).
        path: &'a [u8],
        /// Follow a final symlink.
        follow: bool,
    },
    /// The `f*` variants on an open fd (`O_PATH` descriptions: `EBADF`).
    Fd(i32),
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum Space {
    User,
    Trusted,
    Security,
}

fn space(name: &[u8]) -> Result<Space> {
    if name.is_empty() || name.len() > XATTR_NAME_MAX {
        return Err(Errno::ERANGE);
    }
    let has = |p: &[u8]| name.len() > p.len() && name.starts_with(p);
    if has(b"user.") {
        Ok(Space::User)
    } else if has(b"trusted.") {
        Ok(Space::Trusted)
    } else if has(b"security.") {
        Ok(Space::Security)
    } else {
        Err(Errno::EOPNOTSUPP)
    }
}

fn target_inode(ctx: &FsContext, fds: &FdTable, t: XattrTarget<'_>) -> Result<InodeRef> {
    match t {
        XattrTarget::Path { path, follow } => {
            let flags = if follow { 0 } else { g::AT_SYMLINK_NOFOLLOW };
            match resolve_at(ctx, fds, crate::path::AT_FDCWD, path, flags)? {
                At::Inode(i) => Ok(i),
                At::File(f) => f.inode().cloned().ok_or(Errno::EOPNOTSUPP),
            }
        }
        XattrTarget::Fd(fd) => {
            let f = fds.get(fd)?;
            if f.is_path_only() {
                return Err(Errno::EBADF);
            }
            f.inode().cloned().ok_or(Errno::EOPNOTSUPP)
        }
    }
}

/// Linux `xattr_permission`: `trusted.*` is root's; `user.*` only on regular files and
/// directories (others: `ENODATA` to read, `EPERM` to write) with read/write permission.
fn may(ctx: &FsContext, i: &InodeRef, sp: Space, write: bool) -> Result<()> {
    match sp {
        Space::Trusted if ctx.uid != 0 => Err(if write { Errno::EPERM } else { Errno::ENODATA }),
        Space::User if !matches!(i.file_type(), FileType::Regular | FileType::Directory) => {
            Err(if write { Errno::EPERM } else { Errno::ENODATA })
        }
        Space::User => perm::check(ctx, i.file_type(), &i.lock(), if write { MAY_WRITE } else { MAY_READ }),
        Space::Security if write && !perm::is_owner(ctx, &i.lock()) => Err(Errno::EPERM),
        _ => Ok(()),
    }
}

/// `getxattr(2)` family: copies the value of `name` into `buf` (or returns its size when
/// `buf` is empty). `ENODATA`, `ERANGE` (buffer too small or bad name), `EOPNOTSUPP`
/// (unknown namespace), `EACCES`, path errors.
pub fn getxattr(ctx: &FsContext, fds: &FdTable, t: XattrTarget<'_>, name: &[u8], buf: &mut [u8]) -> Result<usize> {
    // POSIX ACLs: none is set on the in-memory store (Linux's tmpfs with POSIX ACLs answers
    // ENODATA; setting one is EOPNOTSUPP here).
    if (name == b"system.posix_acl_access" || name == b"system.posix_acl_default")
        && target_inode(ctx, fds, t)?.foreign_ops().is_none()
    {
        return Err(Errno::ENODATA);
    }
    let sp = space(name)?;
    let i = target_inode(ctx, fds, t)?;
    may(ctx, &i, sp, false)?;
    let buf_len = buf.len().min(XATTR_SIZE_MAX);
    let buf = &mut buf[..buf_len];
    if let Some(ops) = i.foreign_ops() {
        return ops.getxattr(name, buf).map(|n| n.min(XATTR_SIZE_MAX));
    }
    let st = i.lock();
    let v = st.xattrs.get(name).ok_or(Errno::ENODATA)?;
    if buf.is_empty() {
        return Ok(v.len());
    }
    if v.len() > buf.len() {
        return Err(Errno::ERANGE);
    }
    buf[..v.len()].copy_from_slice(v);
    Ok(v.len())
}

/// `setxattr(2)` family: `flags` `XATTR_CREATE` (`EEXIST`), `XATTR_REPLACE` (`ENODATA`),
/// others `EINVAL`; `E2BIG` past [`XATTR_SIZE_MAX`]; `EPERM`, `EACCES`, `EROFS`.
pub fn setxattr(ctx: &FsContext, fds: &FdTable, t: XattrTarget<'_>, name: &[u8], value: &[u8], flags: u32) -> Result<()> {
    if flags & !(XATTR_CREATE | XATTR_REPLACE) != 0 {
        return Err(Errno::EINVAL);
    }
    let sp = space(name)?;
    if value.len() > XATTR_SIZE_MAX {
        return Err(Errno::E2BIG);
    }
    let i = target_inode(ctx, fds, t)?;
    i.shared.check_writable()?;
    may(ctx, &i, sp, true)?;
    if let Some(ops) = i.foreign_ops() {
        return ops.setxattr(name, value, flags);
    }
    let now = i.shared.now();
    let mut st = i.lock();
    let exists = st.xattrs.contains_key(name);
    if flags & XATTR_CREATE != 0 && exists {
        return Err(Errno::EEXIST);
    }
    if flags & XATTR_REPLACE != 0 && !exists {
        return Err(Errno::ENODATA);
    }
    st.xattrs.insert(name.to_vec(), value.to_vec());
    st.ctime = now;
    Ok(())
}

/// `listxattr(2)` family: the NUL-terminated names (those the caller may see) copied into
/// `buf`, or their total size when `buf` is empty; `ERANGE` if too small.
pub fn listxattr(ctx: &FsContext, fds: &FdTable, t: XattrTarget<'_>, buf: &mut [u8]) -> Result<usize> {
    let i = target_inode(ctx, fds, t)?;
    let buf_len = buf.len().min(XATTR_LIST_MAX);
    let buf = &mut buf[..buf_len];
    if let Some(ops) = i.foreign_ops() {
        return ops.listxattr(buf).map(|n| n.min(XATTR_LIST_MAX));
    }
    let mut out = Vec::new();
    for k in i.lock().xattrs.keys() {
        if k.starts_with(b"trusted.") && ctx.uid != 0 {
            continue;
        }
        out.extend_from_slice(k);
        out.push(0);
    }
    if buf.is_empty() {
        return Ok(out.len());
    }
    if out.len() > buf.len() {
        return Err(Errno::ERANGE);
    }
    buf[..out.len()].copy_from_slice(&out);
    Ok(out.len())
}

/// `removexattr(2)` family: `ENODATA` if absent; `EPERM`, `EACCES`, `EROFS`.
pub fn removexattr(ctx: &FsContext, fds: &FdTable, t: XattrTarget<'_>, name: &[u8]) -> Result<()> {
    let sp = space(name)?;
    let i = target_inode(ctx, fds, t)?;
    i.shared.check_writable()?;
    may(ctx, &i, sp, true)?;
    if let Some(ops) = i.foreign_ops() {
        return ops.removexattr(name);
    }
    let now = i.shared.now();
    let mut st = i.lock();
    st.xattrs.remove(name).ok_or(Errno::ENODATA)?;
    st.ctime = now;
    Ok(())
}
