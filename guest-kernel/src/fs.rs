//! The kernel's filesystem instance (`guest_fs::Vfs`) and the glue the loader needs.

use alloc::sync::Arc;
use alloc::vec::Vec;
use guest_fs::{Errno, FdTable, FsContext, Vfs};
use spin::Once;

static VFS: Once<Vfs> = Once::new();

/// Creates the filesystem (boot, once).
pub fn init() -> &'static Vfs {
    VFS.call_once(|| Vfs::new(Arc::new(crate::time::FsClock)))
}

/// The filesystem (after boot).
pub fn vfs() -> &'static Vfs {
    init()
}

/// `AT_FDCWD`.
const AT_FDCWD: i32 = -100;

/// Reads a whole executable regular file (`ENOENT`, `EACCES`, ... as `execve(2)`).
pub fn read_exec_file(ctx: &FsContext, path: &[u8]) -> Result<Vec<u8>, Errno> {
    let inode = guest_fs::open_exec(vfs(), ctx, &FdTable::new(), AT_FDCWD, path, 0)?;
    guest_fs::read_inode(&inode)
}
