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

/// The contents of a file being executed: the shared page-cache image when there is one,
/// else a private copy.
pub enum ExecFile {
    /// Frames of the page cache (`crate::mm::filecache`), mappable read-only.
    Cached(Arc<crate::mm::filecache::Image>),
    /// A heap copy.
    Owned(Vec<u8>),
}

impl ExecFile {
    /// The file's bytes.
    pub fn bytes(&self) -> &[u8] {
        match self {
            ExecFile::Cached(i) => i.bytes(),
            ExecFile::Owned(v) => v,
        }
    }

    /// The page-cache image, if the file is cached.
    pub fn image(&self) -> Option<&crate::mm::filecache::Image> {
        match self {
            ExecFile::Cached(i) => Some(i),
            ExecFile::Owned(_) => None,
        }
    }
}

/// Opens an executable regular file for `execve(2)` (`ENOENT`, `EACCES`, ... as it reports
/// them) and returns its contents, from the page cache when possible.
pub fn read_exec_file(ctx: &FsContext, path: &[u8]) -> Result<ExecFile, Errno> {
    let inode = guest_fs::open_exec(vfs(), ctx, &FdTable::new(), AT_FDCWD, path, 0)?;
    match crate::mm::filecache::get(&inode) {
        Some(img) => Ok(ExecFile::Cached(img)),
        None => guest_fs::read_inode(&inode).map(ExecFile::Owned),
    }
}
