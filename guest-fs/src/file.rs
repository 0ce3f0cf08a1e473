//! Open file descriptions (`open(2)`: "the open file description records the file offset
//! and the file status flags"), shared by `dup(2)` and `fork(2)`, and the [`FileOps`] trait
//! through which the kernel puts its own objects (pipes, sockets, eventfds) in fd tables.

use crate::device::{CharDevice, poll};
use crate::errno::{Errno, Result};
use crate::inode::{FileType, InodeRef};
use crate::stat::{Stat, Statx, stat_inode, statx_from_stat, statx_inode};
use crate::tty::TtyState;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};
use linux_raw_sys::general as g;
use spin::Mutex;

/// A file object implemented by the kernel (pipe end, socket, eventfd...). Calls are made
/// without filesystem locks; return `EAGAIN` to make the kernel block or fail per
/// `O_NONBLOCK` (`flags` carries the description's status flags).
pub trait FileOps: Send + Sync {
    /// `read(2)`.
    fn read(&self, buf: &mut [u8], flags: u32) -> Result<usize> {
        let _ = (buf, flags);
        Err(Errno::EINVAL)
    }
    /// `write(2)`.
    fn write(&self, buf: &[u8], flags: u32) -> Result<usize> {
        let _ = (buf, flags);
        Err(Errno::EINVAL)
    }
    /// `fstat(2)` (files of a mounted filesystem are stat'ed through their
    /// [`crate::InodeOps::getattr`] instead; the default is all zeros).
    fn stat(&self) -> Stat {
        Stat::default()
    }
    /// Readiness among `events` ([`poll`] bits; `POLLERR` and `POLLHUP` are reported even
    /// when not asked for). The readiness contract every pollable kernel object keeps
    /// (`poll`, `select`, `epoll`): when nothing among `events | POLLERR | POLLHUP` is
    /// ready, the object registers the calling thread on its wait queue, so that its next
    /// change of state wakes the thread (which then polls again). `poll(0)` therefore only
    /// registers (an edge-triggered epoll uses it for objects already reported).
    fn poll(&self, events: u32) -> u32 {
        events & (poll::POLLIN | poll::POLLOUT)
    }
    /// A counter that changes whenever an event among `events` may have newly happened
    /// (data arrived, room appeared, hang-up): edge-triggered `epoll` reports an item again
    /// only when this moved since its last report. 0 (never changes) by default, for
    /// objects whose readiness never changes.
    fn poll_seq(&self, events: u32) -> u64 {
        let _ = events;
        0
    }
    /// The object as `Any`, for kernel objects with calls beyond these (a socket's `bind`,
    /// an epoll's `ctl`): the kernel downcasts to its own type. `None` by default.
    fn as_any(&self) -> Option<&dyn core::any::Any> {
        None
    }
    /// `ioctl(2)` (`ENOTTY` by default).
    fn ioctl(&self, cmd: u32, arg: &mut [u8]) -> Result<i64> {
        let _ = (cmd, arg);
        Err(Errno::ENOTTY)
    }
    /// Reads at `offset` (files of a mounted filesystem, opened by
    /// [`crate::InodeOps::open`]: the VFS keeps the file offset and calls this for `read`
    /// and `pread`); returns the bytes read, 0 at end of file. `ESPIPE` by default.
    fn pread(&self, buf: &mut [u8], offset: u64) -> Result<usize> {
        let _ = (buf, offset);
        Err(Errno::ESPIPE)
    }
    /// Writes at `offset` (with `O_APPEND` the VFS passes the size from
    /// [`crate::InodeOps::getattr`]); returns the bytes written. `ESPIPE` by default.
    fn pwrite(&self, buf: &[u8], offset: u64) -> Result<usize> {
        let _ = (buf, offset);
        Err(Errno::ESPIPE)
    }
    /// `fsync(2)` (`datasync`: `fdatasync(2)`). `EINVAL` by default (as for pipes).
    fn fsync(&self, datasync: bool) -> Result<()> {
        let _ = datasync;
        Err(Errno::EINVAL)
    }
    /// `fallocate(2)` with `mode` (`FALLOC_FL_*`), `offset` and `len` in bytes (checked:
    /// `len > 0`, no overflow). `EOPNOTSUPP` by default.
    fn fallocate(&self, mode: u32, offset: u64, len: u64) -> Result<()> {
        let _ = (mode, offset, len);
        Err(Errno::EOPNOTSUPP)
    }
}

/// Opens named pipes: the kernel's pipe implementation, registered with
/// [`crate::Vfs::set_fifo_opener`]. Without one, opening a FIFO fails with `ENXIO`.
pub trait FifoOpener: Send + Sync {
    /// Returns the pipe end for `fifo` opened with `flags` (access mode, `O_NONBLOCK`).
    /// Every open of one inode must reach the same pipe (key it by [`crate::Inode::ino`]).
    /// Blocking until the other end opens (`fifo(7)`) is the kernel's business; errors as
    /// `open(2)` (`ENXIO` for `O_WRONLY|O_NONBLOCK` without a reader).
    fn open_fifo(&self, fifo: &InodeRef, flags: u32) -> Result<Arc<dyn FileOps>>;
}

/// What an open file description refers to.
pub(crate) enum Target {
    /// A regular file, directory or (with `O_PATH`) any inode.
    Inode(InodeRef),
    /// A character device with the driver bound at open, and its tty state if a terminal.
    Device { inode: InodeRef, dev: Arc<dyn CharDevice>, tty: Option<Arc<Mutex<TtyState>>> },
    /// A kernel object; `inode` is set for a named pipe opened through the filesystem.
    Custom { ops: Arc<dyn FileOps>, inode: Option<InodeRef> },
    /// A regular file or directory of a mounted filesystem, with the file object its
    /// [`crate::InodeOps::open`] returned (positional calls; the VFS keeps the offset).
    Foreign { file: Arc<dyn FileOps>, inode: InodeRef },
}

/// The kernel's "a lock was released" hook (one per kernel; see
/// [`crate::Vfs::set_unlock_notify`]).
pub(crate) static UNLOCK_NOTIFY: spin::RwLock<Option<fn()>> = spin::RwLock::new(None);

/// Status flags `F_SETFL` may change (Linux `SETFL_MASK` less `O_DIRECT`).
pub const SETFL_MASK: u32 = g::O_APPEND | g::O_NONBLOCK | g::O_NDELAY | g::FASYNC | g::O_NOATIME;

/// An open file description. Share it as `Arc<OpenFile>`.
pub struct OpenFile {
    pub(crate) target: Target,
    /// Access mode (`O_ACCMODE` bits), status flags and `O_PATH`.
    flags: AtomicU32,
    /// File offset, bytes (for directories, the `getdents64` cursor).
    pub(crate) pos: Mutex<u64>,
    /// Absolute path it was opened by, if the opener recorded one (`/proc/<pid>/fd/N`).
    path: Mutex<Option<Vec<u8>>>,
    /// The inode this description holds a `flock(2)` lock on.
    flocked: Mutex<crate::sys::lock::Holder>,
    /// Called after a lock was released by a drop (the kernel wakes lock waiters).
    unlock_notify: Option<fn()>,
}

impl Drop for OpenFile {
    fn drop(&mut self) {
        if let Some(i) = self.flocked.get_mut().take()
            && crate::sys::lock::release_on_drop(self, &i)
            && let Some(n) = self.unlock_notify
        {
            n();
        }
    }
}

impl OpenFile {
    pub(crate) fn new(target: Target, flags: u32) -> Arc<Self> {
        Arc::new(Self {
            target,
            flags: AtomicU32::new(flags),
            pos: Mutex::new(0),
            path: Mutex::new(None),
            flocked: Mutex::new(None),
            unlock_notify: *UNLOCK_NOTIFY.read(),
        })
    }

    /// Wraps a kernel object; `flags` = access mode and status flags (`O_RDONLY`,
    /// `O_WRONLY|O_NONBLOCK`...; `O_CLOEXEC` belongs to the fd, not here).
    pub fn new_custom(ops: Arc<dyn FileOps>, flags: u32) -> Arc<Self> {
        Self::new(Target::Custom { ops, inode: None }, flags & !g::O_CLOEXEC)
    }

    /// Records the absolute path this description was opened by (shown by
    /// `/proc/<pid>/fd/N`; Linux keeps the dentry, we keep the name).
    pub fn set_path(&self, path: Vec<u8>) {
        *self.path.lock() = Some(path);
    }

    pub(crate) fn set_flocked(&self, inode: crate::sys::lock::Holder) {
        *self.flocked.lock() = inode;
    }

    /// The path recorded with [`Self::set_path`].
    pub fn path(&self) -> Option<Vec<u8>> {
        self.path.lock().clone()
    }

    /// Access mode and status flags, as `F_GETFL` returns them (plus `O_LARGEFILE`).
    pub fn status_flags(&self) -> u32 {
        self.flags.load(Ordering::Relaxed) | g::O_LARGEFILE
    }

    /// `F_SETFL`: replaces the changeable status flags ([`SETFL_MASK`]).
    pub fn set_status_flags(&self, new: u32) {
        let _ = self.flags.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
            Some((old & !SETFL_MASK) | (new & SETFL_MASK))
        });
    }

    /// True with `O_NONBLOCK`.
    pub fn is_nonblocking(&self) -> bool {
        self.flags.load(Ordering::Relaxed) & g::O_NONBLOCK != 0
    }

    /// True for an `O_PATH` description (only fstat, fchdir, dirfd use, close, dup).
    pub fn is_path_only(&self) -> bool {
        self.flags.load(Ordering::Relaxed) & g::O_PATH != 0
    }

    /// True if opened for reading.
    pub fn readable(&self) -> bool {
        let f = self.flags.load(Ordering::Relaxed);
        f & g::O_PATH == 0 && matches!(f & g::O_ACCMODE, g::O_RDONLY | g::O_RDWR)
    }

    /// True if opened for writing.
    pub fn writable(&self) -> bool {
        let f = self.flags.load(Ordering::Relaxed);
        f & g::O_PATH == 0 && matches!(f & g::O_ACCMODE, g::O_WRONLY | g::O_RDWR)
    }

    /// The inode, for files that are inodes (not kernel objects).
    pub fn inode(&self) -> Option<&InodeRef> {
        match &self.target {
            Target::Inode(i) | Target::Device { inode: i, .. } | Target::Foreign { inode: i, .. } => Some(i),
            Target::Custom { inode, .. } => inode.as_ref(),
        }
    }

    /// The kernel object of a description made with [`OpenFile::new_custom`].
    pub fn custom(&self) -> Option<&Arc<dyn FileOps>> {
        match &self.target {
            Target::Custom { ops, .. } => Some(ops),
            _ => None,
        }
    }

    /// The character device driver, for device files.
    pub fn device(&self) -> Option<&Arc<dyn CharDevice>> {
        match &self.target {
            Target::Device { dev, .. } => Some(dev),
            _ => None,
        }
    }

    /// True for a terminal device (`isatty(3)`).
    pub fn is_tty(&self) -> bool {
        matches!(&self.target, Target::Device { tty: Some(_), .. })
    }

    /// The current offset, bytes.
    pub fn offset(&self) -> u64 {
        *self.pos.lock()
    }

    /// `fstat(2)`.
    pub fn stat(&self) -> Stat {
        match &self.target {
            Target::Inode(i)
            | Target::Device { inode: i, .. }
            | Target::Custom { inode: Some(i), .. }
            | Target::Foreign { inode: i, .. } => stat_inode(i),
            Target::Custom { ops, inode: None } => ops.stat(),
        }
    }

    /// `statx(2)` on this description.
    pub fn statx(&self) -> Statx {
        match &self.target {
            Target::Inode(i)
            | Target::Device { inode: i, .. }
            | Target::Custom { inode: Some(i), .. }
            | Target::Foreign { inode: i, .. } => statx_inode(i),
            Target::Custom { ops, inode: None } => statx_from_stat(&ops.stat()),
        }
    }

    /// `poll(2)` readiness among `events`: regular files and directories are always ready;
    /// `O_PATH` descriptions report `POLLNVAL`.
    pub fn poll(&self, events: u32) -> u32 {
        if self.is_path_only() {
            return poll::POLLNVAL;
        }
        match &self.target {
            Target::Inode(_) | Target::Foreign { .. } => events & (poll::POLLIN | poll::POLLOUT),
            Target::Device { dev, .. } => dev.poll_ready(events),
            Target::Custom { ops, .. } => ops.poll(events),
        }
    }

    /// [`FileOps::poll_seq`] of this description (0 for files whose readiness never changes).
    pub fn poll_seq(&self, events: u32) -> u64 {
        match &self.target {
            Target::Custom { ops, .. } => ops.poll_seq(events),
            _ => 0,
        }
    }

    /// True for descriptions `epoll_ctl(2)` refuses with `EPERM`: regular files and
    /// directories (Linux: files without a `poll` file operation).
    pub fn always_ready(&self) -> bool {
        match &self.target {
            Target::Inode(i) | Target::Foreign { inode: i, .. } => matches!(i.file_type(), FileType::Regular | FileType::Directory),
            _ => false,
        }
    }

    /// True when this description refers to a regular file.
    pub fn is_regular(&self) -> bool {
        matches!(&self.target, Target::Inode(i) | Target::Foreign { inode: i, .. } if i.file_type() == FileType::Regular)
    }
}
