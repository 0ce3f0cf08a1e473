//! Working and root directory: `getcwd(2)`, `chdir(2)`, `fchdir(2)`, `chroot(2)`.

use crate::context::FsContext;
use crate::errno::{Errno, Result};
use crate::fdtable::FdTable;
use crate::inode::{FileType, InodeRef};
use crate::path;
use crate::perm::{self, MAY_EXEC};
use crate::vfs::Vfs;
use alloc::sync::Arc;
use alloc::vec::Vec;

/// The absolute path of `dir` as seen from `ctx`'s root; a directory outside that root
/// gets the `(unreachable)` prefix as Linux gives it. `ENOENT` for a removed directory.
pub fn path_of(ctx: &FsContext, dir: &InodeRef) -> Result<Vec<u8>> {
    let mut names: Vec<Vec<u8>> = Vec::new();
    let mut cur = dir.clone();
    let mut reachable = true;
    loop {
        if Arc::ptr_eq(&cur, &ctx.root) {
            break;
        }
        // At a mount's root, continue from the directory it covers.
        if let Some(point) = ctx.mounts.mountpoint_of(&cur) {
            cur = point;
            continue;
        }
        let (nlink, parent, name) = {
            let st = cur.lock();
            match &st.body {
                crate::inode::Body::Dir(d) => (st.nlink, d.parent.upgrade(), d.name.clone()),
                crate::inode::Body::Foreign(f) => (1, f.parent.upgrade(), f.name.clone()),
                _ => return Err(Errno::ENOTDIR),
            }
        };
        if nlink == 0 {
            return Err(Errno::ENOENT);
        }
        match parent {
            Some(p) if !Arc::ptr_eq(&p, &cur) => {
                names.push(name);
                cur = p;
            }
            _ => {
                reachable = false;
                break;
            }
        }
    }
    let mut out = Vec::new();
    if !reachable {
        out.extend_from_slice(b"(unreachable)");
    }
    for n in names.iter().rev() {
        out.push(b'/');
        out.extend_from_slice(n);
    }
    if names.is_empty() {
        out.push(b'/');
    }
    Ok(out)
}

/// `getcwd(2)`: writes the NUL-terminated path into `buf` and returns its length including
/// the NUL (the raw syscall's return value). `ERANGE` if it does not fit, `ENOENT` if the
/// working directory was removed.
pub fn getcwd(ctx: &FsContext, buf: &mut [u8]) -> Result<usize> {
    let p = path_of(ctx, &ctx.cwd)?;
    if p.len() + 1 > buf.len() {
        return Err(Errno::ERANGE);
    }
    buf[..p.len()].copy_from_slice(&p);
    buf[p.len()] = 0;
    Ok(p.len() + 1)
}

fn enter_dir(ctx: &FsContext, i: &InodeRef) -> Result<()> {
    if !i.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    perm::check(ctx, FileType::Directory, &i.lock(), MAY_EXEC)
}

/// `chdir(2)`: `ENOENT`, `ENOTDIR`, `EACCES` (search permission), `ELOOP`, `ENAMETOOLONG`.
pub fn chdir(_vfs: &Vfs, ctx: &mut FsContext, fds: &FdTable, path: &[u8]) -> Result<()> {
    let i = path::resolve(ctx, fds, path::AT_FDCWD, path, true)?;
    enter_dir(ctx, &i)?;
    ctx.cwd = i;
    Ok(())
}

/// `fchdir(2)`: `EBADF`, `ENOTDIR`, `EACCES`. `O_PATH` descriptions are accepted.
pub fn fchdir(ctx: &mut FsContext, fds: &FdTable, fd: i32) -> Result<()> {
    let f = fds.get(fd)?;
    let i = f.inode().ok_or(Errno::ENOTDIR)?.clone();
    enter_dir(ctx, &i)?;
    ctx.cwd = i;
    Ok(())
}

/// `chroot(2)`: root only (`EPERM`); the working directory is left alone, as Linux does.
pub fn chroot(_vfs: &Vfs, ctx: &mut FsContext, fds: &FdTable, path: &[u8]) -> Result<()> {
    let i = path::resolve(ctx, fds, path::AT_FDCWD, path, true)?;
    enter_dir(ctx, &i)?;
    if ctx.uid != 0 {
        return Err(Errno::EPERM);
    }
    ctx.root = i;
    Ok(())
}
