//! Path resolution (`path_resolution(7)`): absolute and dirfd/cwd-relative paths, `.` and
//! `..` (which stops at the process root), symlinks anywhere (at most [`MAX_SYMLINKS`]
//! followed per lookup, then `ELOOP`), trailing slashes, `PATH_MAX` and `NAME_MAX`.

use crate::context::FsContext;
use crate::errno::{Errno, Result};
use crate::fdtable::FdTable;
use crate::inode::{Body, FileType, InodeRef};
use crate::perm::{self, MAY_EXEC};
use alloc::sync::Arc;
use alloc::vec::Vec;
use linux_raw_sys::general as g;

/// `PATH_MAX`: the longest path, including its terminating NUL.
pub const PATH_MAX: usize = 4096;
/// `NAME_MAX`: the longest path component.
pub const NAME_MAX: usize = 255;
/// Symlinks followed in one resolution before `ELOOP` (Linux `MAXSYMLINKS`).
pub const MAX_SYMLINKS: u32 = 40;
/// `AT_FDCWD`: resolve relative paths against the working directory.
pub const AT_FDCWD: i32 = linux_raw_sys::general::AT_FDCWD;

/// What the last component of a path is (Linux `LAST_NORM`, `LAST_DOT`...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Last {
    /// An ordinary name.
    Norm(Vec<u8>),
    /// `.`
    Dot,
    /// `..`
    DotDot,
    /// The path was only slashes.
    Root,
}

/// A resolved parent directory and the final component, for operations that create or
/// remove names.
pub(crate) struct Parent {
    pub dir: InodeRef,
    pub last: Last,
    /// The path ended in `/` (the final object must be a directory).
    pub trailing_slash: bool,
}

/// Validates a user path: `ENOENT` if empty, `ENAMETOOLONG` if it does not fit `PATH_MAX`
/// with its NUL.
pub(crate) fn check_path(path: &[u8]) -> Result<()> {
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    if path.len() >= PATH_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(())
}

/// Directory a relative `path` starts from: the root for absolute paths, the cwd for
/// `AT_FDCWD`, else the directory open as `dirfd` (`EBADF`, `ENOTDIR`).
pub(crate) fn start_dir(ctx: &FsContext, fds: &FdTable, dirfd: i32, path: &[u8]) -> Result<InodeRef> {
    if path.first() == Some(&b'/') {
        return Ok(ctx.root.clone());
    }
    if dirfd == AT_FDCWD {
        return Ok(ctx.cwd.clone());
    }
    let f = fds.get(dirfd)?;
    let inode = f.inode().ok_or(Errno::ENOTDIR)?;
    if !inode.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    Ok(inode.clone())
}

/// The root of the latest mount on `dir` when `dir` is a mount point (repeatedly, for
/// stacked mounts), else `dir`: what a walk that reaches `dir` continues from.
pub(crate) fn enter_mounts(ctx: &FsContext, dir: InodeRef) -> InodeRef {
    let mut cur = dir;
    while let Some(r) = ctx.mounts.covering(&cur) {
        cur = r;
    }
    cur
}

/// [`enter_mounts`] for a walk: `EXDEV` under `RESOLVE_NO_XDEV` when it would cross.
fn enter_checked(ctx: &FsContext, dir: InodeRef) -> Result<InodeRef> {
    if ctx.resolve & g::RESOLVE_NO_XDEV != 0 && ctx.mounts.covering(&dir).is_some() {
        return Err(Errno::EXDEV);
    }
    Ok(enter_mounts(ctx, dir))
}

/// Checks a symlink met by a walk against `RESOLVE_NO_SYMLINKS` / `RESOLVE_NO_MAGICLINKS`
/// (`ELOOP`, `openat2(2)`), and counts it against [`MAX_SYMLINKS`].
pub(crate) fn may_follow(ctx: &FsContext, link: &InodeRef, name: &[u8], links: &mut u32) -> Result<()> {
    if ctx.resolve & g::RESOLVE_NO_SYMLINKS != 0 {
        return Err(Errno::ELOOP);
    }
    if ctx.resolve & g::RESOLVE_NO_MAGICLINKS != 0
        && link.shared.magic_links.load(core::sync::atomic::Ordering::Relaxed)
        && name != b"self"
        && name != b"thread-self"
    {
        return Err(Errno::ELOOP);
    }
    *links += 1;
    if *links > MAX_SYMLINKS {
        return Err(Errno::ELOOP);
    }
    Ok(())
}

/// The directory an absolute path (or absolute symlink target) starts from: the process
/// root, or `EXDEV` under `RESOLVE_BENEATH`.
fn absolute_start(ctx: &FsContext) -> Result<InodeRef> {
    if ctx.resolve & g::RESOLVE_BENEATH != 0 {
        return Err(Errno::EXDEV);
    }
    Ok(ctx.root.clone())
}

/// The parent of directory `dir` inside its own filesystem (itself at the filesystem's root);
/// `ENOENT` for a removed directory whose parent is gone.
pub(crate) fn fs_parent(dir: &InodeRef) -> Result<InodeRef> {
    let st = dir.lock();
    match &st.body {
        Body::Dir(d) => d.parent.upgrade().ok_or(Errno::ENOENT),
        Body::Foreign(f) => f.parent.upgrade().ok_or(Errno::ENOENT),
        _ => Err(Errno::ENOTDIR),
    }
}

/// The parent of directory `dir` for `..`: stays at the process root; at the root of a mount
/// it is the parent of the directory the mount covers (`path_resolution(7)`); `ENOENT` for a
/// removed directory whose parent is gone.
fn parent_of(ctx: &FsContext, dir: &InodeRef) -> Result<InodeRef> {
    let mut cur = dir.clone();
    loop {
        if Arc::ptr_eq(&cur, &ctx.root) {
            // `RESOLVE_BENEATH`: `..` may not leave the starting directory.
            return if ctx.resolve & g::RESOLVE_BENEATH != 0 { Err(Errno::EXDEV) } else { Ok(cur) };
        }
        match ctx.mounts.mountpoint_of(&cur) {
            Some(_) if ctx.resolve & g::RESOLVE_NO_XDEV != 0 => return Err(Errno::EXDEV),
            Some(p) => cur = p,
            None => break,
        }
    }
    enter_checked(ctx, fs_parent(&cur)?)
}

/// The root of the mount `dir` is in, as seen from `ctx` (walking `..` inside the
/// filesystem until a mount root or the process root).
pub(crate) fn mount_root_of(ctx: &FsContext, dir: &InodeRef) -> InodeRef {
    let mut cur = dir.clone();
    for _ in 0..4096 {
        if Arc::ptr_eq(&cur, &ctx.root) || cur.mount_flags() & crate::inode::MOUNT_ROOT != 0 {
            break;
        }
        match fs_parent(&cur) {
            Ok(p) if !Arc::ptr_eq(&p, &cur) => cur = p,
            _ => break,
        }
    }
    cur
}

/// Looks up one ordinary component in directory `dir` after checking search permission
/// (without entering mounts on the result). For a mounted filesystem's directory, a name
/// not in the dentry cache is asked of the filesystem and cached.
pub(crate) fn lookup_child(ctx: &FsContext, dir: &InodeRef, name: &[u8]) -> Result<Option<InodeRef>> {
    let st = dir.lock();
    if !dir.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    perm::check(ctx, FileType::Directory, &st, MAY_EXEC)?;
    if name.len() > NAME_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    match &st.body {
        Body::Dir(d) => Ok(d.get(name)),
        Body::Foreign(f) => {
            if let Some(c) = f.children.get(name) {
                return Ok(Some(c.clone()));
            }
            let ops = f.ops.clone();
            drop(st);
            crate::foreign::lookup(dir, &ops, name)
        }
        _ => Ok(None),
    }
}

/// The target of a symlink inode.
pub(crate) fn link_target(inode: &InodeRef) -> Option<Vec<u8>> {
    let ops = match &inode.lock().body {
        Body::Symlink(t) => return Some(t.clone()),
        Body::Foreign(f) if inode.file_type() == FileType::Symlink => f.ops.clone(),
        _ => return None,
    };
    ops.readlink().ok()
}

/// Resolves `path` from `start`. Follows a final symlink when `follow` (a trailing slash
/// always follows). `links` counts symlinks followed so far in this lookup.
pub(crate) fn walk(
    ctx: &FsContext,
    start: &InodeRef,
    path: &[u8],
    follow: bool,
    links: &mut u32,
) -> Result<InodeRef> {
    let mut cur = if path.first() == Some(&b'/') { absolute_start(ctx)? } else { start.clone() };
    let trailing = path.last() == Some(&b'/');
    let comps: Vec<&[u8]> = path.split(|&b| b == b'/').filter(|c| !c.is_empty()).collect();
    for (i, comp) in comps.iter().enumerate() {
        let is_last = i + 1 == comps.len();
        match *comp {
            b"." | b".." => {
                let st = cur.lock();
                if !cur.is_dir() {
                    return Err(Errno::ENOTDIR);
                }
                perm::check(ctx, FileType::Directory, &st, MAY_EXEC)?;
                drop(st);
                if *comp == b".." {
                    cur = parent_of(ctx, &cur)?;
                }
            }
            name => {
                let child = lookup_child(ctx, &cur, name)?.ok_or(Errno::ENOENT)?;
                if child.file_type() == FileType::Symlink && (!is_last || follow || trailing) {
                    may_follow(ctx, &child, name, links)?;
                    let target = link_target(&child).ok_or(Errno::EINVAL)?;
                    if target.is_empty() {
                        return Err(Errno::ENOENT);
                    }
                    cur = walk(ctx, &cur, &target, true, links)?;
                } else {
                    cur = enter_checked(ctx, child)?;
                }
            }
        }
    }
    if trailing && !cur.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    Ok(cur)
}

/// Resolves a whole user path (validated) relative to `dirfd`.
pub(crate) fn resolve(
    ctx: &FsContext,
    fds: &FdTable,
    dirfd: i32,
    path: &[u8],
    follow: bool,
) -> Result<InodeRef> {
    check_path(path)?;
    let start = start_dir(ctx, fds, dirfd, path)?;
    walk(ctx, &start, path, follow, &mut 0)
}

/// Splits `path` into its parent directory (resolved, must be a directory) and its last
/// component. `links` is shared with the caller for symlink chains it follows itself.
pub(crate) fn walk_parent(ctx: &FsContext, start: &InodeRef, path: &[u8], links: &mut u32) -> Result<Parent> {
    let trimmed_len = path.iter().rposition(|&b| b != b'/').map_or(0, |p| p + 1);
    let trailing_slash = trimmed_len < path.len();
    if trimmed_len == 0 {
        // Only slashes (or empty, rejected earlier): the root itself.
        return Ok(Parent { dir: ctx.root.clone(), last: Last::Root, trailing_slash: false });
    }
    let trimmed = &path[..trimmed_len];
    let (dir_part, name) = match trimmed.iter().rposition(|&b| b == b'/') {
        Some(p) => (&trimmed[..=p], &trimmed[p + 1..]),
        None => (&b""[..], trimmed),
    };
    let dir = if dir_part.is_empty() { start.clone() } else { walk(ctx, start, dir_part, true, links)? };
    if !dir.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    let last = match name {
        b"." => Last::Dot,
        b".." => Last::DotDot,
        n if n.len() > NAME_MAX => return Err(Errno::ENAMETOOLONG),
        n => Last::Norm(n.to_vec()),
    };
    Ok(Parent { dir, last, trailing_slash })
}

/// [`walk_parent`] for a user path relative to `dirfd`.
pub(crate) fn resolve_parent(ctx: &FsContext, fds: &FdTable, dirfd: i32, path: &[u8]) -> Result<Parent> {
    check_path(path)?;
    let start = start_dir(ctx, fds, dirfd, path)?;
    walk_parent(ctx, &start, path, &mut 0)
}
