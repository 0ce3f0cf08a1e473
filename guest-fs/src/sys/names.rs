//! Calls that change names: `mkdirat(2)`, `mknodat(2)`, `symlinkat(2)`, `linkat(2)`,
//! `unlinkat(2)`, `renameat2(2)`, and `readlinkat(2)`. Each resolves the parent directory,
//! then takes the namespace lock and does its final lookup, checks and change under it.

use crate::context::FsContext;
use crate::errno::{Errno, Result};
use crate::fdtable::FdTable;
use crate::foreign;
use crate::inode::{Body, FileType, InodeRef};
use crate::path::{self, Last, PATH_MAX, Parent};
use crate::perm::{self, MAY_EXEC, MAY_WRITE};
use crate::vfs::{NodeSpec, Vfs};
use alloc::sync::Arc;
use alloc::vec::Vec;
use linux_raw_sys::general as g;

/// Looks up the last component of `p` (search permission on the directory).
fn lookup_last(ctx: &FsContext, p: &Parent, name: &[u8]) -> Result<Option<InodeRef>> {
    path::lookup_child(ctx, &p.dir, name)
}

/// `may_create`: write and search permission on the directory.
fn may_create(ctx: &FsContext, dir: &InodeRef) -> Result<()> {
    perm::check(ctx, FileType::Directory, &dir.lock(), MAY_WRITE | MAY_EXEC)
}

/// `may_delete`: write+search on `dir`, the sticky rule, then the type rule.
fn may_delete(ctx: &FsContext, dir: &InodeRef, victim: &InodeRef, want_dir: bool) -> Result<()> {
    {
        let d = dir.lock();
        perm::check(ctx, FileType::Directory, &d, MAY_WRITE | MAY_EXEC)?;
        let v = victim.lock();
        if !perm::sticky_ok(ctx, &d, &v) {
            return Err(Errno::EPERM);
        }
    }
    match (want_dir, victim.is_dir()) {
        (true, false) => Err(Errno::ENOTDIR),
        (false, true) => Err(Errno::EISDIR),
        _ => Ok(()),
    }
}

/// Group of a new inode: the directory's when it is set-group-ID, else the creator's.
fn new_gid(ctx: &FsContext, dir: &InodeRef) -> u32 {
    let d = dir.lock();
    if d.perm & 0o2000 != 0 { d.gid } else { ctx.gid }
}

/// The name of a component to be created; `EEXIST` for `.`, `..`, `/`; a trailing slash
/// (allowed only for `mkdir`) gives `EEXIST` if the name exists, else `ENOENT`.
fn create_name(ctx: &FsContext, p: &Parent, allow_slash: bool) -> Result<Vec<u8>> {
    let Last::Norm(name) = &p.last else {
        return Err(Errno::EEXIST);
    };
    if lookup_last(ctx, p, name)?.is_some() {
        return Err(Errno::EEXIST);
    }
    if p.trailing_slash && !allow_slash {
        return Err(Errno::ENOENT);
    }
    Ok(name.clone())
}

/// Creates `spec.ftype` at `dirfd`/`path` with `spec.perm & !umask`, owned by the caller.
fn create_node(vfs: &Vfs, ctx: &FsContext, fds: &FdTable, dirfd: i32, path: &[u8], spec: NodeSpec) -> Result<()> {
    let ftype = spec.ftype;
    let p = path::resolve_parent(ctx, fds, dirfd, path)?;
    let is_foreign = foreign::is_foreign(&p.dir);
    let _ns = (!is_foreign).then(|| vfs.ns_lock());
    let name = create_name(ctx, &p, ftype == FileType::Directory)?;
    may_create(ctx, &p.dir)?;
    p.dir.shared.check_writable()?;
    let gid = new_gid(ctx, &p.dir);
    let mut perm_bits = spec.perm & !ctx.umask;
    if ftype == FileType::Directory && p.dir.lock().perm & 0o2000 != 0 {
        perm_bits |= 0o2000;
    }
    if is_foreign {
        let target = match &spec.body {
            Some(Body::Symlink(t)) => Some(t.as_slice()),
            _ => None,
        };
        foreign::create(&p.dir, &name, ftype, perm_bits, spec.rdev, target, &foreign::creds(ctx, gid))?;
        return Ok(());
    }
    let node = vfs.new_inode(ftype, perm_bits, (ctx.uid, gid), &p.dir, &name, spec.body);
    node.lock().rdev = spec.rdev;
    vfs.attach_locked(&p.dir, &name, &node)
}

/// `mkdirat(2)`: mode bits `mode & 01777 & !umask` (set-group-ID inherited from the
/// parent). `EEXIST` (also for `.`, `..`, `/`), `ENOENT`, `ENOTDIR`, `EACCES`.
pub fn mkdirat(vfs: &Vfs, ctx: &FsContext, fds: &FdTable, dirfd: i32, path: &[u8], mode: u32) -> Result<()> {
    create_node(vfs, ctx, fds, dirfd, path, NodeSpec::new(FileType::Directory, mode & 0o1777))
}

/// Decodes a `dev_t` like Linux `new_decode_dev`: (major, minor).
pub fn decode_dev(dev: u64) -> (u32, u32) {
    (((dev & 0xfff00) >> 8) as u32, ((dev & 0xff) | ((dev >> 12) & 0xfff00)) as u32)
}

/// `mknodat(2)`: `S_IFREG` (or 0), `S_IFCHR`, `S_IFBLK` (root only, else `EPERM`),
/// `S_IFIFO`, `S_IFSOCK`; `S_IFDIR` is `EPERM`, other types `EINVAL`. `dev` as `makedev`.
pub fn mknodat(vfs: &Vfs, ctx: &FsContext, fds: &FdTable, dirfd: i32, path: &[u8], mode: u32, dev: u64) -> Result<()> {
    let ftype = match mode & g::S_IFMT {
        0 => FileType::Regular,
        g::S_IFDIR => return Err(Errno::EPERM),
        t => FileType::from_mode(t).ok_or(Errno::EINVAL)?,
    };
    if matches!(ftype, FileType::CharDevice | FileType::BlockDevice) && ctx.uid != 0 {
        return Err(Errno::EPERM);
    }
    let rdev = if matches!(ftype, FileType::CharDevice | FileType::BlockDevice) { decode_dev(dev) } else { (0, 0) };
    create_node(vfs, ctx, fds, dirfd, path, NodeSpec { rdev, ..NodeSpec::new(ftype, mode & 0o7777) })
}

/// `symlinkat(2)`: a symlink at `newdirfd`/`linkpath` containing `target` (not checked).
/// `ENOENT` for an empty target, `ENAMETOOLONG`, `EEXIST`.
pub fn symlinkat(vfs: &Vfs, ctx: &FsContext, fds: &FdTable, target: &[u8], newdirfd: i32, linkpath: &[u8]) -> Result<()> {
    if target.is_empty() {
        return Err(Errno::ENOENT);
    }
    if target.len() >= PATH_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    let p = path::resolve_parent(ctx, fds, newdirfd, linkpath)?;
    if foreign::is_foreign(&p.dir) {
        let name = create_name(ctx, &p, false)?;
        may_create(ctx, &p.dir)?;
        p.dir.shared.check_writable()?;
        let gid = new_gid(ctx, &p.dir);
        foreign::create(&p.dir, &name, FileType::Symlink, 0o777, (0, 0), Some(target), &foreign::creds(ctx, gid))?;
        return Ok(());
    }
    let _ns = vfs.ns_lock();
    let name = create_name(ctx, &p, false)?;
    may_create(ctx, &p.dir)?;
    p.dir.shared.check_writable()?;
    let gid = new_gid(ctx, &p.dir);
    let node = vfs.new_inode(FileType::Symlink, 0o777, (ctx.uid, gid), &p.dir, &name, Some(Body::Symlink(target.to_vec())));
    vfs.attach_locked(&p.dir, &name, &node)
}

/// `readlinkat(2)`: copies the target (no NUL, truncated to `buf`); `EINVAL` if `buf` is
/// empty or the path is not a symlink. An empty path reads `dirfd` itself (an
/// `O_PATH|O_NOFOLLOW` fd on a symlink).
pub fn readlinkat(_vfs: &Vfs, ctx: &FsContext, fds: &FdTable, dirfd: i32, path: &[u8], buf: &mut [u8]) -> Result<usize> {
    if buf.is_empty() {
        return Err(Errno::EINVAL);
    }
    let i = if path.is_empty() {
        let f = fds.get(dirfd)?;
        match f.inode() {
            Some(i) if i.file_type() == FileType::Symlink => i.clone(),
            _ => return Err(Errno::ENOENT),
        }
    } else {
        path::resolve(ctx, fds, dirfd, path, false)?
    };
    let target = path::link_target(&i).ok_or(Errno::EINVAL)?;
    let n = target.len().min(buf.len());
    buf[..n].copy_from_slice(&target[..n]);
    Ok(n)
}

/// `linkat(2)`: flags `AT_SYMLINK_FOLLOW`, `AT_EMPTY_PATH`. `EPERM` for directories,
/// `EEXIST`, `ENOENT` (also for an unlinked source), `EMLINK` past 65000 links.
#[allow(clippy::too_many_arguments)]
pub fn linkat(
    vfs: &Vfs,
    ctx: &FsContext,
    fds: &FdTable,
    olddirfd: i32,
    oldpath: &[u8],
    newdirfd: i32,
    newpath: &[u8],
    flags: u32,
) -> Result<()> {
    super::check_flags(flags, g::AT_SYMLINK_FOLLOW | g::AT_EMPTY_PATH)?;
    let old = if oldpath.is_empty() && flags & g::AT_EMPTY_PATH != 0 {
        fds.get(olddirfd)?.inode().cloned().ok_or(Errno::ENOENT)?
    } else {
        path::resolve(ctx, fds, olddirfd, oldpath, flags & g::AT_SYMLINK_FOLLOW != 0)?
    };
    let p = path::resolve_parent(ctx, fds, newdirfd, newpath)?;
    let is_foreign = foreign::is_foreign(&p.dir);
    let _ns = (!is_foreign).then(|| vfs.ns_lock());
    let name = create_name(ctx, &p, false)?;
    may_create(ctx, &p.dir)?;
    if !Arc::ptr_eq(&old.shared, &p.dir.shared) {
        return Err(Errno::EXDEV);
    }
    p.dir.shared.check_writable()?;
    if old.is_dir() {
        return Err(Errno::EPERM);
    }
    if is_foreign {
        foreign::ops_of(&p.dir)?.link(&name, &foreign::ops_of(&old)?)?;
        foreign::forget(&p.dir, &name);
        return Ok(());
    }
    {
        let st = old.lock();
        if st.nlink == 0 {
            return Err(Errno::ENOENT);
        }
        if st.nlink >= 65000 {
            return Err(Errno::EMLINK);
        }
    }
    vfs.attach_locked(&p.dir, &name, &old)
}

/// Removes entry `name` (naming `victim`) from `dir`; must hold the namespace lock.
fn detach_locked(vfs: &Vfs, dir: &InodeRef, name: &[u8], victim: &InodeRef) {
    let now = vfs.shared.now();
    {
        let mut d = dir.lock();
        if let Some(entries) = d.dir_mut() {
            entries.remove(name);
        }
        if victim.is_dir() {
            d.nlink -= 1;
        }
        d.touch_modify(now);
    }
    let mut v = victim.lock();
    v.nlink = if victim.is_dir() { 0 } else { v.nlink.saturating_sub(1) };
    v.ctime = now;
}

/// `unlinkat(2)`: with `AT_REMOVEDIR` as `rmdir(2)` (`ENOTEMPTY`, `ENOTDIR`, `EINVAL` for
/// `.`, `ENOTEMPTY` for `..`, `EBUSY` for `/`), else as `unlink(2)` (`EISDIR` for
/// directories); `EACCES`, `EPERM` (sticky directory), `ENOENT`.
pub fn unlinkat(vfs: &Vfs, ctx: &FsContext, fds: &FdTable, dirfd: i32, path: &[u8], flags: u32) -> Result<()> {
    super::check_flags(flags, g::AT_REMOVEDIR)?;
    let rmdir = flags & g::AT_REMOVEDIR != 0;
    let p = path::resolve_parent(ctx, fds, dirfd, path)?;
    let name = match (&p.last, rmdir) {
        (Last::Norm(n), _) => n.clone(),
        (Last::Dot, true) => return Err(Errno::EINVAL),
        (Last::DotDot, true) => return Err(Errno::ENOTEMPTY),
        (Last::Root, true) => return Err(Errno::EBUSY),
        (_, false) => return Err(Errno::EISDIR),
    };
    p.dir.shared.check_writable()?;
    let is_foreign = foreign::is_foreign(&p.dir);
    let _ns = (!is_foreign).then(|| vfs.ns_lock());
    let victim = lookup_last(ctx, &p, &name)?;
    if p.trailing_slash && !rmdir {
        return Err(match victim {
            None => Errno::ENOENT,
            Some(v) if v.is_dir() => Errno::EISDIR,
            Some(_) => Errno::ENOTDIR,
        });
    }
    let victim = victim.ok_or(Errno::ENOENT)?;
    may_delete(ctx, &p.dir, &victim, rmdir)?;
    if victim.mount_flags() & crate::inode::MOUNTPOINT != 0 {
        return Err(Errno::EBUSY);
    }
    if is_foreign {
        let ops = foreign::ops_of(&p.dir)?;
        if rmdir { ops.rmdir(&name)? } else { ops.unlink(&name)? }
        foreign::forget(&p.dir, &name);
        return Ok(());
    }
    if rmdir {
        if Arc::ptr_eq(&victim, &ctx.root) || Arc::ptr_eq(&victim, &vfs.root()) {
            return Err(Errno::EBUSY);
        }
        if !victim.lock().dir().is_none_or(|d| d.is_empty()) {
            return Err(Errno::ENOTEMPTY);
        }
    }
    detach_locked(vfs, &p.dir, &name, &victim);
    Ok(())
}

/// True when `a` is `b` or one of its ancestors (walks `..` links; namespace lock held).
fn is_ancestor(a: &InodeRef, b: &InodeRef) -> bool {
    let mut cur = b.clone();
    loop {
        if Arc::ptr_eq(a, &cur) {
            return true;
        }
        let parent = path::fs_parent(&cur).ok();
        match parent {
            Some(p) if !Arc::ptr_eq(&p, &cur) => cur = p,
            _ => return false,
        }
    }
}

/// Points directory `child`'s `..` at `dir` under `name`.
fn set_parent(child: &InodeRef, dir: &InodeRef, name: &[u8]) {
    if let Some(d) = child.lock().dir_mut() {
        d.parent = Arc::downgrade(dir);
        d.name = name.to_vec();
    }
}

/// `renameat2(2)`: flags `RENAME_NOREPLACE` (`EEXIST` if the target exists) and
/// `RENAME_EXCHANGE` (swap; `ENOENT` if the target is missing); others `EINVAL`.
/// Errors as `rename(2)`: `EBUSY` for `.`/`..`/`/`, `EINVAL` moving a directory into
/// itself, `ENOTEMPTY`, `EISDIR`, `ENOTDIR`, `EACCES`, `EPERM` (sticky), `ENOENT`.
#[allow(clippy::too_many_arguments)]
pub fn renameat2(
    vfs: &Vfs,
    ctx: &FsContext,
    fds: &FdTable,
    olddirfd: i32,
    oldpath: &[u8],
    newdirfd: i32,
    newpath: &[u8],
    flags: u32,
) -> Result<()> {
    super::check_flags(flags, g::RENAME_NOREPLACE | g::RENAME_EXCHANGE)?;
    let noreplace = flags & g::RENAME_NOREPLACE != 0;
    let exchange = flags & g::RENAME_EXCHANGE != 0;
    if noreplace && exchange {
        return Err(Errno::EINVAL);
    }
    let op = path::resolve_parent(ctx, fds, olddirfd, oldpath)?;
    let np = path::resolve_parent(ctx, fds, newdirfd, newpath)?;
    let Last::Norm(old_name) = &op.last else {
        return Err(Errno::EBUSY);
    };
    let Last::Norm(new_name) = &np.last else {
        return Err(if noreplace { Errno::EEXIST } else { Errno::EBUSY });
    };
    if !Arc::ptr_eq(&op.dir.shared, &np.dir.shared) {
        return Err(Errno::EXDEV);
    }
    op.dir.shared.check_writable()?;
    let is_foreign = foreign::is_foreign(&op.dir);
    let _ns = (!is_foreign).then(|| vfs.ns_lock());
    let old = lookup_last(ctx, &op, old_name)?.ok_or(Errno::ENOENT)?;
    let target = lookup_last(ctx, &np, new_name)?;
    let busy = |i: &InodeRef| i.mount_flags() & crate::inode::MOUNTPOINT != 0;
    if busy(&old) || target.as_ref().is_some_and(busy) {
        return Err(Errno::EBUSY);
    }
    if noreplace && target.is_some() {
        return Err(Errno::EEXIST);
    }
    if exchange && target.is_none() {
        return Err(Errno::ENOENT);
    }
    if !old.is_dir() && (op.trailing_slash || (!exchange && np.trailing_slash)) {
        return Err(Errno::ENOTDIR);
    }
    if exchange && np.trailing_slash && !target.as_ref().is_some_and(|t| t.is_dir()) {
        return Err(Errno::ENOTDIR);
    }
    // Linux's lock_rename trap: the source may not be an ancestor of the target's parent,
    // and the target may not be an ancestor of the source's parent.
    if is_ancestor(&old, &np.dir) {
        return Err(Errno::EINVAL);
    }
    if let Some(t) = &target
        && is_ancestor(t, &op.dir)
    {
        return Err(if exchange { Errno::EINVAL } else { Errno::ENOTEMPTY });
    }
    if let Some(t) = &target
        && Arc::ptr_eq(t, &old)
    {
        return Ok(());
    }
    may_delete(ctx, &op.dir, &old, old.is_dir())?;
    match &target {
        Some(t) if exchange => may_delete(ctx, &np.dir, t, t.is_dir())?,
        Some(t) => may_delete(ctx, &np.dir, t, old.is_dir())?,
        None => may_create(ctx, &np.dir)?,
    }
    let cross = !Arc::ptr_eq(&op.dir, &np.dir);
    // Moving a directory to another parent rewrites its `..`: needs write permission on it.
    if cross {
        if old.is_dir() {
            perm::check(ctx, FileType::Directory, &old.lock(), MAY_WRITE)?;
        }
        if exchange && let Some(t) = &target && t.is_dir() {
            perm::check(ctx, FileType::Directory, &t.lock(), MAY_WRITE)?;
        }
    }
    if !exchange
        && let Some(t) = &target
        && t.is_dir()
        && !t.lock().dir().is_none_or(|d| d.is_empty())
    {
        return Err(Errno::ENOTEMPTY);
    }
    if is_foreign {
        foreign::ops_of(&op.dir)?.rename(old_name, &foreign::ops_of(&np.dir)?, new_name, flags)?;
        foreign::forget(&op.dir, old_name);
        foreign::forget(&np.dir, new_name);
        foreign::moved(&old, &np.dir, new_name);
        return Ok(());
    }
    let now = vfs.shared.now();
    if exchange {
        let t = target.ok_or(Errno::ENOENT)?;
        np.dir.lock().dir_mut().and_then(|d| d.replace(new_name, old.clone()));
        op.dir.lock().dir_mut().and_then(|d| d.replace(old_name, t.clone()));
        if cross && old.is_dir() != t.is_dir() {
            let (gains, loses) = if old.is_dir() { (&np.dir, &op.dir) } else { (&op.dir, &np.dir) };
            gains.lock().nlink += 1;
            loses.lock().nlink -= 1;
        }
        set_parent(&old, &np.dir, new_name);
        set_parent(&t, &op.dir, old_name);
        t.lock().ctime = now;
    } else {
        let victim = match &target {
            Some(_) => np.dir.lock().dir_mut().and_then(|d| d.replace(new_name, old.clone())),
            None => {
                if let Some(d) = np.dir.lock().dir_mut() {
                    d.insert(new_name, old.clone());
                }
                None
            }
        };
        op.dir.lock().dir_mut().map(|d| d.remove(old_name));
        if let Some(v) = &victim {
            let mut vs = v.lock();
            vs.nlink = if v.is_dir() { 0 } else { vs.nlink.saturating_sub(1) };
            vs.ctime = now;
        }
        if old.is_dir() {
            // New parent: +1 for the moved directory's `..`, -1 for a replaced directory.
            let replaced_dir = victim.as_ref().is_some_and(|v| v.is_dir());
            if cross {
                op.dir.lock().nlink -= 1;
                if !replaced_dir {
                    np.dir.lock().nlink += 1;
                }
            } else if replaced_dir {
                np.dir.lock().nlink -= 1;
            }
        }
        set_parent(&old, &np.dir, new_name);
    }
    old.lock().ctime = now;
    op.dir.lock().touch_modify(now);
    if cross {
        np.dir.lock().touch_modify(now);
    }
    Ok(())
}
