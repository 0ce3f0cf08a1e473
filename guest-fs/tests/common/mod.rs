//! Shared helpers for guest-fs integration tests: a ticking clock and a fresh filesystem.
#![allow(dead_code, unused_imports)]

use guest_fs::{AT_FDCWD, Clock, FdTable, FsContext, Timespec, Vfs};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// A clock that advances one second per call, from 2023-11-14.
pub struct TickClock(pub AtomicI64);

impl Clock for TickClock {
    fn now(&self) -> Timespec {
        Timespec::new(1_700_000_000 + self.0.fetch_add(1, Ordering::Relaxed), 500)
    }
}

/// A filesystem with the standard nodes, a root context and an empty fd table.
pub fn setup() -> (Arc<Vfs>, FsContext, FdTable) {
    let vfs = Arc::new(Vfs::new(Arc::new(TickClock(AtomicI64::new(0)))));
    vfs.create_standard_nodes().expect("standard nodes");
    let ctx = FsContext::new(&vfs);
    (vfs, ctx, FdTable::new())
}

/// Opens `path` relative to the cwd.
pub fn open(vfs: &Vfs, ctx: &FsContext, fds: &mut FdTable, path: &str, flags: u32, mode: u32) -> guest_fs::Result<i32> {
    guest_fs::openat(vfs, ctx, fds, AT_FDCWD, path.as_bytes(), flags, mode)
}

/// Creates a file with `data`.
pub fn put(vfs: &Vfs, ctx: &FsContext, path: &str, data: &[u8]) {
    let mut fds = FdTable::new();
    let fd = open(vfs, ctx, &mut fds, path, O_CREAT | O_WRONLY | O_TRUNC, 0o644).expect("create");
    assert_eq!(guest_fs::write(&fds, fd, data), Ok(data.len()));
}

pub use linux_raw_sys::general::{
    AT_EMPTY_PATH, AT_REMOVEDIR, AT_SYMLINK_FOLLOW, AT_SYMLINK_NOFOLLOW, O_APPEND, O_CLOEXEC, O_CREAT, O_DIRECTORY,
    O_EXCL, O_NOFOLLOW, O_NONBLOCK, O_PATH, O_RDONLY, O_RDWR, O_TMPFILE, O_TRUNC, O_WRONLY, RENAME_EXCHANGE,
    RENAME_NOREPLACE, S_IFBLK, S_IFCHR, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, SEEK_CUR, SEEK_DATA, SEEK_END, SEEK_HOLE,
    SEEK_SET,
};
