//! Helpers for `execve(2)`: find an executable regular file with the errno Linux gives, and
//! read a whole file for the ELF loader.

use super::{At, resolve_at};
use crate::context::FsContext;
use crate::errno::{Errno, Result};
use crate::fdtable::FdTable;
use crate::inode::{FileType, InodeRef};
use crate::path;
use crate::perm::{self, MAY_EXEC};
use crate::vfs::Vfs;
use alloc::vec;
use alloc::vec::Vec;

/// Resolves the program of `execveat(2)` (`flags`: `AT_EMPTY_PATH`, `AT_SYMLINK_NOFOLLOW`)
/// and checks it may be executed: path errors (`ENOENT`, `ENOTDIR`, `ELOOP`, `EACCES` on a
/// search, `ENAMETOOLONG`), `EACCES` for a directory or any non-regular file or without
/// execute permission (root needs one `x` bit). `ENOEXEC` is the loader's business.
pub fn open_exec(
    _vfs: &Vfs,
    ctx: &FsContext,
    fds: &FdTable,
    dirfd: i32,
    path: &[u8],
    flags: u32,
) -> Result<InodeRef> {
    super::check_flags(flags, linux_raw_sys::general::AT_EMPTY_PATH | linux_raw_sys::general::AT_SYMLINK_NOFOLLOW)?;
    let at = resolve_at(ctx, fds, dirfd, path, flags)?;
    let i = match &at {
        At::Inode(i) => i.clone(),
        At::File(f) => f.inode().cloned().ok_or(Errno::EACCES)?,
    };
    if i.file_type() == FileType::Symlink {
        return Err(Errno::ELOOP);
    }
    if i.file_type() != FileType::Regular {
        return Err(Errno::EACCES);
    }
    perm::check(ctx, FileType::Regular, &i.lock(), MAY_EXEC)?;
    Ok(i)
}

/// The whole contents of regular file `inode` (`EISDIR` for directories, `EINVAL` for
/// other non-files).
pub fn read_inode(inode: &InodeRef) -> Result<Vec<u8>> {
    if crate::foreign::is_foreign(inode) {
        if inode.is_dir() {
            return Err(Errno::EISDIR);
        }
        return crate::foreign::read_all(inode);
    }
    let st = inode.lock();
    let f = match inode.file_type() {
        FileType::Directory => return Err(Errno::EISDIR),
        _ => st.file().ok_or(Errno::EINVAL)?,
    };
    let size = usize::try_from(f.size()).map_err(|_| Errno::EFBIG)?;
    let mut buf = vec![0u8; size];
    f.read_at(0, &mut buf);
    Ok(buf)
}

/// Reads the whole regular file at `path` (relative to the cwd, symlinks followed) without
/// a read-permission check, as the kernel's ELF loader reads binaries.
pub fn read_whole_file(_vfs: &Vfs, ctx: &FsContext, path: &[u8]) -> Result<Vec<u8>> {
    let fds = FdTable::new();
    let i = path::resolve(ctx, &fds, path::AT_FDCWD, path, true)?;
    read_inode(&i)
}
