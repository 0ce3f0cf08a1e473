//! guest-fs: the pvm guest kernel's in-memory filesystem (a tmpfs) and the Linux
//! file-syscall layer over it, working on kernel buffers.
//!
//! `no_std` + `alloc`: compiled into the freestanding guest kernel and tested on the host.
//! Shapes and errors follow the Linux man pages (section 2 for calls, `path_resolution(7)`,
//! `inode(7)`); layouts follow the x86-64 UAPI headers (via `linux-raw-sys`).
//!
//! - [`Vfs`]: the inode store (`Sync`; share as `Arc<Vfs>`), the initramfs loader
//!   ([`Vfs::load_cpio_newc`]), device registry, statistics.
//! - [`FsContext`] (cwd, root, umask, fs credentials) and [`FdTable`] per process, holding
//!   shared [`OpenFile`] descriptions; kernel objects (pipes) enter fd tables via [`FileOps`].
//! - One function per syscall ([`openat`], [`read`], [`getdents64`], [`renameat2`]...).
#![no_std]
#![deny(missing_docs)]

extern crate alloc;

pub mod cachehook;
mod context;
mod cpio;
mod device;
mod dir;
mod errno;
mod fdtable;
mod file;
mod filedata;
mod foreign;
pub mod fuse;
mod inode;
mod mount;
mod ops;
mod path;
mod perm;
mod rng;
mod stat;
mod sys;
mod time;
mod tty;
mod vfs;

pub use context::FsContext;
pub use device::{CharDevice, FullDevice, NullDevice, RandomDevice, ZeroDevice, poll};
pub use errno::{Errno, Result};
pub use fdtable::{DEFAULT_FD_LIMIT, FdTable};
pub use file::{FifoOpener, FileOps, OpenFile, SETFL_MASK};
pub use filedata::MAX_FILE_SIZE;
pub use inode::{FileType, Inode, InodeRef, encode_dev};
pub use mount::{Mount, MountTable};
pub use ops::{
    Attr, Creds, DirEntry, FS_READ_ONLY, Filesystem, InodeOps, SetAttr, SetTime, XATTR_CREATE, XATTR_REPLACE,
};
pub use path::{AT_FDCWD, MAX_SYMLINKS, NAME_MAX, PATH_MAX};
pub use stat::{BLKSIZE, FS_DEV, Stat, Statfs, Statx, StatxTimestamp, statx_from_stat};
pub use sys::cwd::{chdir, chroot, fchdir, getcwd, path_of};
pub use sys::dents::getdents64;
pub use sys::exec::{open_exec, read_inode, read_whole_file};
pub use sys::fd::{close, dup, dup2, dup3, fcntl};
pub use sys::ioctl::{self as ioctls, ioctl, ioctl_arg_size};
pub use sys::lock::{LOCK_EX, LOCK_NB, LOCK_SH, LOCK_UN, flock};
pub use sys::meta::{
    UTIME_NOW, UTIME_OMIT, faccessat, fchmod, fchmodat, fchown, fchownat, fstat, fstatfs, newfstatat, statfs,
    statx, utimensat,
};
pub use sys::names::{decode_dev, linkat, mkdirat, mknodat, readlinkat, renameat2, symlinkat, unlinkat};
pub use sys::open::{open_file, open_file2, openat, openat2};
pub use sys::rw::{FALLOC_FL_KEEP_SIZE, MAX_RW_COUNT, fallocate, fsync, fsync_data, ftruncate, syncfs, lseek, pread64, pwrite64, read, truncate, write};
pub use sys::xattr::{XATTR_NAME_MAX, XATTR_SIZE_MAX, XattrTarget, getxattr, listxattr, removexattr, setxattr};
pub use time::{Clock, Timespec};
pub use tty::{Termios, TtyState};
pub use vfs::{FsStats, Vfs};

/// Compile-time check that the shared types can cross vCPUs (the kernel is SMP).
const _: () = {
    const fn shared<T: Send + Sync>() {}
    shared::<Vfs>();
    shared::<OpenFile>();
    shared::<FdTable>();
    shared::<FsContext>();
    shared::<Inode>();
};
