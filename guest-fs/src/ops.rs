//! The filesystem trait boundary of the VFS: what a filesystem that keeps its files outside
//! the in-memory store (hostfs, the FUSE client) implements so that the VFS can mount it.
//!
//! The split follows gVisor's `pkg/sentry/vfs` (FilesystemImpl / DentryImpl /
//! FileDescriptionImpl) and Linux's `super_operations` / `inode_operations` /
//! `file_operations`:
//!
//! - [`Filesystem`]: one mounted instance (a superblock): its root, `statfs(2)`, flags, `syncfs(2)`.
//! - [`InodeOps`]: one object of it (a directory, file, symlink, special file): attributes,
//!   the namespace operations on directories, symlink targets, directory listing, xattrs, and
//!   `open`, which returns the file-operations object of a new open file description.
//! - [`crate::FileOps`]: an open file (the same trait kernel objects such as pipes implement);
//!   files of a mounted filesystem also implement the positional calls
//!   ([`crate::FileOps::pread`], [`crate::FileOps::pwrite`], `fsync`, `fallocate`).
//!
//! The VFS does everything above the filesystem: path walks (mount crossing, `.`/`..`, symlinks
//! with the 40-link limit, `openat2` RESOLVE rules), permission checks against [`Attr`]
//! (`generic_permission`), `EROFS` for read-only mounts, fd tables, offsets and `O_APPEND`,
//! the dentry cache (it caches the objects `lookup` returns and drops them when the name is
//! removed or renamed through the VFS; `stat` always asks [`InodeOps::getattr`], so
//! attributes changed behind the VFS's back show, while a name the host removed stays cached
//! until the VFS gets `ENOENT`/`ESTALE` from an operation on it). A filesystem does not check permissions; it may refuse
//! anything with its own errno (a file server's `EACCES`, `EIO`).
//!
//! Every call may block the calling vCPU (a hostfs request waits for the file server); no VFS
//! lock is held across a call. Errors are Linux errnos; `ENOSYS` is never returned for a call
//! a filesystem does not support (`EOPNOTSUPP` for xattrs and `fallocate` modes, `EPERM` for
//! `link`, `EINVAL` otherwise), as `xattr(7)` and `fallocate(2)` require.
//!
//! Trust: the VFS does not trust what a filesystem returns more than what it needs to stay
//! sound: names from `readdir` are checked (non-empty, no `/` or NUL, at most `NAME_MAX`),
//! sizes and counts are clamped to the caller's buffers, file types come from [`Attr::ftype`].

use crate::errno::{Errno, Result};
use crate::file::FileOps;
use crate::inode::FileType;
use crate::stat::Statfs;
use crate::time::Timespec;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;

/// [`Filesystem::flags`]: the filesystem cannot be written (every mount of it is read-only).
pub const FS_READ_ONLY: u32 = 1 << 0;

/// One mounted filesystem instance (Linux `super_block`, gVisor `FilesystemImpl`).
/// Share it as `Arc<dyn Filesystem>`.
pub trait Filesystem: Send + Sync {
    /// The type name `/proc/mounts` shows (`"tmpfs"`, `"fuse.hostfs"`...).
    fn fs_type(&self) -> &str;
    /// The source field of `/proc/mounts` (`"hostfs"`, a host path...).
    fn source(&self) -> &str {
        self.fs_type()
    }
    /// The root directory. Called once, when the filesystem is mounted.
    fn root(&self) -> Result<Arc<dyn InodeOps>>;
    /// `statfs(2)` of the filesystem (`f_type` is the filesystem's magic, `FUSE_SUPER_MAGIC`
    /// `0x65735546` for FUSE).
    fn statfs(&self) -> Result<Statfs>;
    /// `FS_*` bits.
    fn flags(&self) -> u32 {
        0
    }
    /// `syncfs(2)`: writes everything back (a no-op for memory filesystems).
    fn sync(&self) -> Result<()> {
        Ok(())
    }
}

/// Attributes of an object (`getattr`; the fields of `struct statx` the VFS uses).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attr {
    /// Inode number (`st_ino`), stable for the object's life.
    pub ino: u64,
    /// File type (the `S_IFMT` part of the mode).
    pub ftype: FileType,
    /// Permission bits with set-id and sticky bits (`0o7777`).
    pub perm: u32,
    /// Hard links.
    pub nlink: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Device number of a device node (major, minor); (0, 0) otherwise.
    pub rdev: (u32, u32),
    /// Size, bytes.
    pub size: u64,
    /// 512-byte blocks allocated.
    pub blocks: u64,
    /// Preferred I/O size, bytes.
    pub blksize: u32,
    /// Last access.
    pub atime: Timespec,
    /// Last modification.
    pub mtime: Timespec,
    /// Last status change.
    pub ctime: Timespec,
    /// Birth, when the filesystem knows it.
    pub btime: Option<Timespec>,
}

/// A time to set with [`InodeOps::setattr`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetTime {
    /// The current time (`UTIME_NOW`; the filesystem's clock decides).
    Now,
    /// This time.
    At(Timespec),
}

/// What [`InodeOps::setattr`] changes (`None`: leave alone). The VFS has checked permissions
/// (`chmod(2)`, `chown(2)`, `utimensat(2)`, `truncate(2)` rules) and cleared set-id bits
/// where Linux does; the filesystem updates `ctime` itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetAttr {
    /// New permission bits (`0o7777`).
    pub perm: Option<u32>,
    /// New owner.
    pub uid: Option<u32>,
    /// New group.
    pub gid: Option<u32>,
    /// New size (regular files), bytes.
    pub size: Option<u64>,
    /// New access time.
    pub atime: Option<SetTime>,
    /// New modification time.
    pub mtime: Option<SetTime>,
}

/// Who creates an object: ownership of new objects and the credentials a file server puts in
/// its request header (`fuse_in_header.uid/gid/pid`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Creds {
    /// Filesystem uid.
    pub uid: u32,
    /// Group for the new object (the directory's group under a set-gid directory, else the
    /// filesystem gid: the VFS has decided).
    pub gid: u32,
    /// Thread group id of the caller (0 for the kernel).
    pub pid: u32,
}

/// One directory entry from [`InodeOps::readdir`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// Inode number.
    pub ino: u64,
    /// Position to resume after this entry (`d_off`; never 0, 1 or 2, which the VFS uses
    /// for the start, `.` and `..`).
    pub next: u64,
    /// File type (`d_type`), `None` when unknown (`DT_UNKNOWN`).
    pub ftype: Option<FileType>,
    /// Name (not `.` or `..`, which the VFS produces itself).
    pub name: Vec<u8>,
}

/// [`InodeOps::setxattr`] flag: fail with `EEXIST` if the attribute exists (`XATTR_CREATE`).
pub const XATTR_CREATE: u32 = 1;
/// [`InodeOps::setxattr`] flag: fail with `ENODATA` if it does not (`XATTR_REPLACE`).
pub const XATTR_REPLACE: u32 = 2;

/// One object of a filesystem (Linux `inode` + `inode_operations`, gVisor `DentryImpl`).
/// Object-safe; share as `Arc<dyn InodeOps>`. Names are single components: no `/`, no NUL,
/// not `.` or `..`, at most `NAME_MAX` bytes (the VFS checks before calling).
pub trait InodeOps: Send + Sync {
    /// Current attributes.
    fn getattr(&self) -> Result<Attr>;
    /// Changes attributes and returns the new ones (`EPERM`, `EROFS`, `EFBIG`...).
    fn setattr(&self, set: &SetAttr, creds: &Creds) -> Result<Attr>;

    /// The child `name` of this directory (`ENOENT` when absent, `ENOTDIR` for a
    /// non-directory).
    fn lookup(&self, name: &[u8]) -> Result<Arc<dyn InodeOps>>;
    /// Creates a node of `ftype` (regular file, FIFO, socket, device with `rdev`) named
    /// `name` with permission bits `perm` (umask applied) (`EEXIST`, `ENOSPC`...).
    fn mknod(&self, name: &[u8], ftype: FileType, perm: u32, rdev: (u32, u32), creds: &Creds)
    -> Result<Arc<dyn InodeOps>>;
    /// Creates a regular file and opens it in one step (FUSE `CREATE`): the default calls
    /// [`InodeOps::mknod`] then [`InodeOps::open`]. `flags` as for `open`.
    fn create(&self, name: &[u8], perm: u32, flags: u32, creds: &Creds) -> Result<(Arc<dyn InodeOps>, Arc<dyn FileOps>)> {
        let node = self.mknod(name, FileType::Regular, perm, (0, 0), creds)?;
        let file = node.open(flags)?;
        Ok((node, file))
    }
    /// Creates a directory.
    fn mkdir(&self, name: &[u8], perm: u32, creds: &Creds) -> Result<Arc<dyn InodeOps>>;
    /// Creates a symlink to `target` (any bytes but NUL, at most `PATH_MAX`).
    fn symlink(&self, name: &[u8], target: &[u8], creds: &Creds) -> Result<Arc<dyn InodeOps>>;
    /// Links `target` (an object of the same filesystem; the VFS checked) as `name`
    /// (`EPERM` when the filesystem has no hard links, `EMLINK`).
    fn link(&self, name: &[u8], target: &Arc<dyn InodeOps>) -> Result<()> {
        let _ = (name, target);
        Err(Errno::EPERM)
    }
    /// Removes the non-directory `name` (`ENOENT`, `EISDIR`).
    fn unlink(&self, name: &[u8]) -> Result<()>;
    /// Removes the empty directory `name` (`ENOTEMPTY`, `ENOTDIR`).
    fn rmdir(&self, name: &[u8]) -> Result<()>;
    /// Renames `name` here to `new_name` in `new_dir` (a directory of the same filesystem;
    /// the VFS checked, and that the move makes no loop) with `renameat2(2)` `flags`
    /// (`RENAME_NOREPLACE`, `RENAME_EXCHANGE`; `EINVAL` for ones it does not support).
    fn rename(&self, name: &[u8], new_dir: &Arc<dyn InodeOps>, new_name: &[u8], flags: u32) -> Result<()>;
    /// The target of this symlink (`EINVAL` for other objects).
    fn readlink(&self) -> Result<Vec<u8>>;
    /// Lists this directory from position `pos` (0 = the start, else an entry's
    /// [`DirEntry::next`]), calling `sink` per entry until it returns `false` (buffer full:
    /// that entry was not taken) or the directory ends.
    fn readdir(&self, pos: u64, sink: &mut dyn FnMut(DirEntry) -> bool) -> Result<()>;

    /// The value of extended attribute `name` (`namespace.name`) copied into `buf`, or its
    /// size when `buf` is empty; `ENODATA` if absent, `ERANGE` if `buf` is too small,
    /// `EOPNOTSUPP` when the filesystem has no xattrs.
    fn getxattr(&self, name: &[u8], buf: &mut [u8]) -> Result<usize> {
        let _ = (name, buf);
        Err(Errno::EOPNOTSUPP)
    }
    /// Sets extended attribute `name` to `value` (`XATTR_CREATE`/`XATTR_REPLACE` flags).
    fn setxattr(&self, name: &[u8], value: &[u8], flags: u32) -> Result<()> {
        let _ = (name, value, flags);
        Err(Errno::EOPNOTSUPP)
    }
    /// The NUL-terminated names of all extended attributes copied into `buf`, or their total
    /// size when `buf` is empty (`ERANGE` if too small).
    fn listxattr(&self, buf: &mut [u8]) -> Result<usize> {
        let _ = buf;
        Ok(0)
    }
    /// Removes extended attribute `name` (`ENODATA` if absent).
    fn removexattr(&self, name: &[u8]) -> Result<()> {
        let _ = name;
        Err(Errno::EOPNOTSUPP)
    }

    /// Opens this object: `flags` are the access mode and status flags of `open(2)` (with
    /// `O_TRUNC` when the VFS wants the file truncated; no `O_CREAT`). Only regular files and
    /// directories are opened through here (the VFS binds devices and FIFOs itself).
    fn open(&self, flags: u32) -> Result<Arc<dyn FileOps>>;

    /// The object as `Any`, so a filesystem can recognise its own objects in `link` and
    /// `rename` (downcast the argument; `EXDEV` when it is not one of its own).
    fn as_any(&self) -> &dyn Any;
}
