//! Metadata calls: `fstat`/`newfstatat`/`statx(2)`, `statfs`/`fstatfs(2)`, `faccessat(2)`,
//! `fchmod`/`fchmodat(2)`, `fchown`/`fchownat(2)`, `utimensat(2)`.

use super::{At, check_flags, resolve_at};
use crate::context::FsContext;
use crate::errno::{Errno, Result};
use crate::fdtable::FdTable;
use crate::inode::{FileType, Inode};
use crate::path;
use crate::perm::{self, MAY_WRITE};
use crate::stat::{Stat, Statfs, Statx, stat_inode, statfs_of, statx_inode};
use crate::time::Timespec;
use crate::vfs::Vfs;
use linux_raw_sys::general as g;

/// `AT_NO_AUTOMOUNT` (accepted and ignored: no automounts here).
const AT_NO_AUTOMOUNT: u32 = 0x800;

/// `fstat(2)`: `EBADF` if `fd` is not open (`O_PATH` descriptions may be stat'ed).
pub fn fstat(fds: &FdTable, fd: i32) -> Result<Stat> {
    Ok(fds.get(fd)?.stat())
}

/// `newfstatat(2)` (`fstatat`, `stat`, `lstat`): flags `AT_SYMLINK_NOFOLLOW`,
/// `AT_EMPTY_PATH`, `AT_NO_AUTOMOUNT`; others `EINVAL`.
pub fn newfstatat(_vfs: &Vfs, ctx: &FsContext, fds: &FdTable, dirfd: i32, path: &[u8], flags: u32) -> Result<Stat> {
    check_flags(flags, g::AT_SYMLINK_NOFOLLOW | g::AT_EMPTY_PATH | AT_NO_AUTOMOUNT)?;
    Ok(match resolve_at(ctx, fds, dirfd, path, flags)? {
        At::Inode(i) => stat_inode(&i),
        At::File(f) => f.stat(),
    })
}

/// `statx(2)`: fills all basic fields and the birth time whatever `mask` asks; `EINVAL` for
/// `STATX__RESERVED` in `mask`, unknown flags, or both `AT_STATX_FORCE_SYNC` and
/// `AT_STATX_DONT_SYNC`.
pub fn statx(
    _vfs: &Vfs,
    ctx: &FsContext,
    fds: &FdTable,
    dirfd: i32,
    path: &[u8],
    flags: u32,
    mask: u32,
) -> Result<Statx> {
    check_flags(flags, g::AT_SYMLINK_NOFOLLOW | g::AT_EMPTY_PATH | AT_NO_AUTOMOUNT | g::AT_STATX_SYNC_TYPE)?;
    if mask & 0x8000_0000 != 0 || flags & g::AT_STATX_SYNC_TYPE == g::AT_STATX_SYNC_TYPE {
        return Err(Errno::EINVAL);
    }
    Ok(match resolve_at(ctx, fds, dirfd, path, flags)? {
        At::Inode(i) => statx_inode(&i),
        At::File(f) => f.statx(),
    })
}

/// `statfs(2)`: tmpfs-like numbers (`TMPFS_MAGIC`, 4 KiB blocks, the data limit or 1 GiB).
pub fn statfs(_vfs: &Vfs, ctx: &FsContext, fds: &FdTable, path: &[u8]) -> Result<Statfs> {
    let i = path::resolve(ctx, fds, path::AT_FDCWD, path, true)?;
    statfs_inode(&i)
}

/// `statfs` of the filesystem `i` is on: a mounted filesystem's own answer, or tmpfs numbers
/// of its in-memory instance; `ST_RDONLY` set when mounted read-only.
pub(crate) fn statfs_inode(i: &Inode) -> Result<Statfs> {
    let mut s = match &i.shared.fs {
        Some(fs) => fs.statfs()?,
        None => statfs_of(&crate::vfs::stats_of(&i.shared)),
    };
    if i.is_read_only() {
        s.f_flags |= 1; // ST_RDONLY
    }
    s.f_fsid = [i.shared.dev.1 as i32, i.shared.dev.0 as i32];
    Ok(s)
}

/// Sends `set` to a mounted filesystem's object and caches the answer (`Ok(false)` for
/// inodes of the in-memory store, which the caller changes itself).
fn set_foreign(ctx: &FsContext, i: &Inode, set: crate::ops::SetAttr) -> Result<bool> {
    let Some(ops) = i.foreign_ops() else {
        return Ok(false);
    };
    let a = ops.setattr(&set, &crate::foreign::creds(ctx, ctx.gid))?;
    i.lock().set_attr(&a);
    Ok(true)
}

/// `fstatfs(2)` (`EBADF` if `fd` is not open).
pub fn fstatfs(vfs: &Vfs, fds: &FdTable, fd: i32) -> Result<Statfs> {
    let f = fds.get(fd)?;
    match f.inode() {
        Some(i) => statfs_inode(i),
        None => Ok(statfs_of(&vfs.stats())),
    }
}

/// `faccessat2(2)` / `faccessat` (`flags` 0): `mode` is `F_OK` (0) or `R_OK|W_OK|X_OK`
/// (4|2|1), else `EINVAL`; flags `AT_EACCESS`, `AT_SYMLINK_NOFOLLOW`, `AT_EMPTY_PATH`.
/// Root passes read/write checks; execute needs an `x` bit on non-directories.
pub fn faccessat(
    _vfs: &Vfs,
    ctx: &FsContext,
    fds: &FdTable,
    dirfd: i32,
    path: &[u8],
    mode: u32,
    flags: u32,
) -> Result<()> {
    if mode & !7 != 0 {
        return Err(Errno::EINVAL);
    }
    check_flags(flags, g::AT_EACCESS | g::AT_SYMLINK_NOFOLLOW | g::AT_EMPTY_PATH)?;
    let at = resolve_at(ctx, fds, dirfd, path, flags)?;
    let Some(i) = at.inode() else {
        return Ok(());
    };
    if mode == 0 {
        return Ok(());
    }
    perm::check(ctx, i.file_type(), &i.lock(), mode)
}

fn chmod_inode(ctx: &FsContext, i: &Inode, mode: u32) -> Result<()> {
    i.shared.check_writable()?;
    let now = i.shared.now();
    let mut st = i.lock();
    if !perm::is_owner(ctx, &st) {
        return Err(Errno::EPERM);
    }
    let mut mode = mode & 0o7777;
    if ctx.uid != 0 && !ctx.in_group(st.gid) {
        mode &= !0o2000;
    }
    if crate::foreign::is_foreign_inode(i) {
        drop(st);
        set_foreign(ctx, i, crate::ops::SetAttr { perm: Some(mode), ..Default::default() })?;
        return Ok(());
    }
    st.perm = mode;
    st.ctime = now;
    Ok(())
}

/// `fchmodat(2)`/`fchmodat2`: sets the permission bits (`mode & 07777`); `EPERM` unless
/// owner or root; `AT_SYMLINK_NOFOLLOW` on a symlink is `EOPNOTSUPP` (as Linux).
pub fn fchmodat(
    _vfs: &Vfs,
    ctx: &FsContext,
    fds: &FdTable,
    dirfd: i32,
    path: &[u8],
    mode: u32,
    flags: u32,
) -> Result<()> {
    check_flags(flags, g::AT_SYMLINK_NOFOLLOW | g::AT_EMPTY_PATH)?;
    let at = resolve_at(ctx, fds, dirfd, path, flags)?;
    let i = at.inode().ok_or(Errno::EOPNOTSUPP)?;
    if i.file_type() == FileType::Symlink {
        return Err(Errno::EOPNOTSUPP);
    }
    chmod_inode(ctx, i, mode)
}

/// `fchmod(2)`: `EBADF` for `O_PATH`; kernel objects (pipes) accept and ignore it.
pub fn fchmod(ctx: &FsContext, fds: &FdTable, fd: i32, mode: u32) -> Result<()> {
    let f = fds.get(fd)?;
    if f.is_path_only() {
        return Err(Errno::EBADF);
    }
    match f.inode() {
        Some(i) => chmod_inode(ctx, i, mode),
        None => Ok(()),
    }
}

fn chown_inode(ctx: &FsContext, i: &Inode, uid: u32, gid: u32) -> Result<()> {
    i.shared.check_writable()?;
    let now = i.shared.now();
    let mut st = i.lock();
    if ctx.uid != 0 {
        let uid_ok = uid == u32::MAX || uid == st.uid;
        let gid_ok = gid == u32::MAX || (ctx.uid == st.uid && ctx.in_group(gid));
        if !uid_ok || !gid_ok || ctx.uid != st.uid {
            return Err(Errno::EPERM);
        }
    }
    if crate::foreign::is_foreign_inode(i) {
        drop(st);
        let set = crate::ops::SetAttr {
            uid: (uid != u32::MAX).then_some(uid),
            gid: (gid != u32::MAX).then_some(gid),
            ..Default::default()
        };
        set_foreign(ctx, i, set)?;
        return Ok(());
    }
    if uid != u32::MAX {
        st.uid = uid;
    }
    if gid != u32::MAX {
        st.gid = gid;
    }
    if (uid != u32::MAX || gid != u32::MAX) && i.file_type() != FileType::Directory {
        st.perm &= !0o4000;
        if st.perm & 0o2010 == 0o2010 {
            st.perm &= !0o2000;
        }
    }
    st.ctime = now;
    Ok(())
}

/// `fchownat(2)` (`chown`, `lchown`): `uid`/`gid` of `u32::MAX` (-1) leave that id alone.
/// Root may set anything; others may only change the group of their own files to one of
/// their groups (`EPERM`). Clears set-user-ID (and set-group-ID with group execute) on
/// non-directories.
#[allow(clippy::too_many_arguments)]
pub fn fchownat(
    _vfs: &Vfs,
    ctx: &FsContext,
    fds: &FdTable,
    dirfd: i32,
    path: &[u8],
    uid: u32,
    gid: u32,
    flags: u32,
) -> Result<()> {
    check_flags(flags, g::AT_SYMLINK_NOFOLLOW | g::AT_EMPTY_PATH)?;
    let at = resolve_at(ctx, fds, dirfd, path, flags)?;
    match at.inode() {
        Some(i) => chown_inode(ctx, i, uid, gid),
        None => Ok(()),
    }
}

/// `fchown(2)`: `EBADF` for `O_PATH`.
pub fn fchown(ctx: &FsContext, fds: &FdTable, fd: i32, uid: u32, gid: u32) -> Result<()> {
    let f = fds.get(fd)?;
    if f.is_path_only() {
        return Err(Errno::EBADF);
    }
    match f.inode() {
        Some(i) => chown_inode(ctx, i, uid, gid),
        None => Ok(()),
    }
}

/// `UTIME_NOW`: set this time to now.
pub const UTIME_NOW: i64 = g::UTIME_NOW as i64;
/// `UTIME_OMIT`: leave this time alone.
pub const UTIME_OMIT: i64 = g::UTIME_OMIT as i64;

/// `utimensat(2)`: `times` = `[atime, mtime]` (`None` = both now; `nsec` may be
/// `UTIME_NOW`/`UTIME_OMIT`); `path` `None` acts on `dirfd` (futimens). `EINVAL` for a bad
/// nsec or flag (or `AT_SYMLINK_NOFOLLOW` with no path); setting explicit times needs
/// ownership (`EPERM`), setting "now" ownership or write permission (`EACCES`).
pub fn utimensat(
    _vfs: &Vfs,
    ctx: &FsContext,
    fds: &FdTable,
    dirfd: i32,
    path: Option<&[u8]>,
    times: Option<[Timespec; 2]>,
    flags: u32,
) -> Result<()> {
    check_flags(flags, g::AT_SYMLINK_NOFOLLOW | g::AT_EMPTY_PATH)?;
    let times = times.unwrap_or([Timespec::new(0, UTIME_NOW); 2]);
    for t in &times {
        if t.nsec != UTIME_NOW && t.nsec != UTIME_OMIT && !(0..1_000_000_000).contains(&t.nsec) {
            return Err(Errno::EINVAL);
        }
    }
    let at = match path {
        Some(p) => resolve_at(ctx, fds, dirfd, p, flags)?,
        None if flags & g::AT_SYMLINK_NOFOLLOW != 0 => return Err(Errno::EINVAL),
        None if dirfd == path::AT_FDCWD => return Err(Errno::EFAULT),
        None => At::File(fds.get(dirfd)?),
    };
    if times.iter().all(|t| t.nsec == UTIME_OMIT) {
        return Ok(());
    }
    let Some(i) = at.inode() else {
        return Ok(());
    };
    i.shared.check_writable()?;
    let now = i.shared.now();
    let mut st = i.lock();
    let all_now = times.iter().all(|t| t.nsec == UTIME_NOW || t.nsec == UTIME_OMIT);
    if !perm::is_owner(ctx, &st) {
        if !all_now {
            return Err(Errno::EPERM);
        }
        perm::check(ctx, i.file_type(), &st, MAY_WRITE)?;
    }
    if crate::foreign::is_foreign_inode(i) {
        drop(st);
        let conv = |t: Timespec| match t.nsec {
            UTIME_OMIT => None,
            UTIME_NOW => Some(crate::ops::SetTime::Now),
            _ => Some(crate::ops::SetTime::At(t)),
        };
        let set = crate::ops::SetAttr { atime: conv(times[0]), mtime: conv(times[1]), ..Default::default() };
        set_foreign(ctx, i, set)?;
        return Ok(());
    }
    let pick = |t: Timespec| if t.nsec == UTIME_NOW { now } else { t };
    if times[0].nsec != UTIME_OMIT {
        st.atime = pick(times[0]);
    }
    if times[1].nsec != UTIME_OMIT {
        st.mtime = pick(times[1]);
    }
    st.ctime = now;
    Ok(())
}
