//! The kernel's filesystem instance (`guest_fs::Vfs`) and the glue the loader needs.

use alloc::sync::Arc;
use alloc::vec::Vec;
use guest_fs::{Errno, FdTable, FsContext, Vfs};
use spin::Once;

static VFS: Once<Vfs> = Once::new();

/// Creates the filesystem (boot, once).
pub fn init() -> &'static Vfs {
    VFS.call_once(|| {
        crate::mm::pagecache::init();
        Vfs::new(Arc::new(crate::time::FsClock))
    })
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

/// Mounts `fs` on the directory at absolute guest path `target` (boot code: hostfs mounts).
/// `target` `/` replaces the root filesystem; do that before the first process starts and
/// before [`mount_standard`] (processes made earlier keep the old root). `read_only` (or the
/// filesystem's [`guest_fs::FS_READ_ONLY`] flag) makes every change fail with `EROFS`.
/// Errors: `EINVAL` for a relative target, the walk's `ENOENT`/`ENOTDIR`, and what
/// [`guest_fs::Filesystem::root`] or the root's `getattr` return.
pub fn mount_fs(target: &[u8], fs: Arc<dyn guest_fs::Filesystem>, read_only: bool) -> Result<(), Errno> {
    vfs().mount_filesystem(target, fs, read_only)
}

/// Mounts a new tmpfs (root mode 1777) on the directory at absolute guest path `target`,
/// created when missing on a writable filesystem. `size_limit`: bytes of file data, 0 for
/// the default (no limit but the kernel's memory check). Errors as [`mount_fs`], `EROFS`
/// when the target is missing on a read-only filesystem.
pub fn mount_tmpfs(target: &[u8], size_limit: u64) -> Result<(), Errno> {
    let limit = if size_limit == 0 { u64::MAX } else { size_limit };
    vfs().mount_tmpfs(target, limit, 0o1777)
}

/// Makes a `MOUNT_TMPFS` entry of the boot mount table H sent
/// (`guest_abi::hostfs::HostfsMount`, a copy already read out of shared memory): the path is
/// NUL-padded UTF-8, at most `MOUNT_PATH_MAX` bytes, absolute. `EINVAL` for an entry that is
/// not a tmpfs or a malformed path.
pub fn mount_config_tmpfs(m: &guest_abi::hostfs::HostfsMount) -> Result<(), Errno> {
    if m.flags & guest_abi::hostfs::MOUNT_TMPFS == 0 {
        return Err(Errno::EINVAL);
    }
    let len = m.path.iter().position(|&b| b == 0).unwrap_or(m.path.len());
    let path = &m.path[..len];
    if path.first() != Some(&b'/') || core::str::from_utf8(path).is_err() {
        return Err(Errno::EINVAL);
    }
    mount_tmpfs(path, m.size)?;
    if m.flags & guest_abi::hostfs::MOUNT_READ_ONLY != 0 {
        crate::klog!(crate::log::WARN, "tmpfs {}: read-only tmpfs mounts are not supported, mounted writable", core::str::from_utf8(path).unwrap_or("?"));
    }
    Ok(())
}

/// The standard mounts every container has, made at boot after the root is final:
/// `/proc` (procfs), `/dev` (devfs: null, zero, full, random, urandom, tty, console, the
/// `fd`/`stdin`/`stdout`/`stderr` links) with a tmpfs on `/dev/shm`, and a tmpfs on `/tmp`
/// when the root is a mounted filesystem. Failures are logged, not fatal (a read-only root
/// without `/proc` still boots).
pub fn mount_standard() {
    if let Err(e) = vfs().mount_standard() {
        crate::klog!(crate::log::WARN, "standard mounts: {}", e.name().unwrap_or("error"));
    }
}
