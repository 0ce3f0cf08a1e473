//! Inodes: the objects of the in-memory store (regular files, directories, symlinks, device
//! nodes, FIFOs, sockets) with their metadata, and the filesystem-wide counters.
//!
//! Locking: each inode has one spin lock ([`Inode::lock`]) over its metadata and contents.
//! Code holds at most one inode lock at a time, except under the VFS namespace lock
//! (`Vfs::ns`), which every operation that changes a directory takes first; so at most one
//! thread ever holds two inode locks and no lock-order cycle can form.

use crate::dir::DirData;
use crate::errno::{Errno, Result};
use crate::filedata::FileData;
use crate::ops::{Filesystem, InodeOps};
use crate::time::{Clock, Timespec};
use alloc::collections::BTreeMap;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use linux_raw_sys::general as g;
use spin::{Mutex, MutexGuard};

/// The type of an inode, the `S_IFMT` part of its mode (`inode(7)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileType {
    /// Regular file (`S_IFREG`).
    Regular,
    /// Directory (`S_IFDIR`).
    Directory,
    /// Symbolic link (`S_IFLNK`).
    Symlink,
    /// Character device (`S_IFCHR`).
    CharDevice,
    /// Block device (`S_IFBLK`).
    BlockDevice,
    /// Named pipe (`S_IFIFO`).
    Fifo,
    /// Unix socket node (`S_IFSOCK`).
    Socket,
}

impl FileType {
    /// The `S_IFMT` bits of this type.
    pub fn mode_bits(self) -> u32 {
        match self {
            Self::Regular => g::S_IFREG,
            Self::Directory => g::S_IFDIR,
            Self::Symlink => g::S_IFLNK,
            Self::CharDevice => g::S_IFCHR,
            Self::BlockDevice => g::S_IFBLK,
            Self::Fifo => g::S_IFIFO,
            Self::Socket => g::S_IFSOCK,
        }
    }

    /// Decodes the `S_IFMT` bits of `mode`; `None` for an invalid type.
    pub fn from_mode(mode: u32) -> Option<Self> {
        Some(match mode & g::S_IFMT {
            g::S_IFREG => Self::Regular,
            g::S_IFDIR => Self::Directory,
            g::S_IFLNK => Self::Symlink,
            g::S_IFCHR => Self::CharDevice,
            g::S_IFBLK => Self::BlockDevice,
            g::S_IFIFO => Self::Fifo,
            g::S_IFSOCK => Self::Socket,
            _ => return None,
        })
    }

    /// The `d_type` of `getdents64(2)` (`DT_REG`...).
    pub fn dirent_type(self) -> u8 {
        (match self {
            Self::Regular => g::DT_REG,
            Self::Directory => g::DT_DIR,
            Self::Symlink => g::DT_LNK,
            Self::CharDevice => g::DT_CHR,
            Self::BlockDevice => g::DT_BLK,
            Self::Fifo => g::DT_FIFO,
            Self::Socket => g::DT_SOCK,
        }) as u8
    }
}

/// Encodes a device number like Linux `new_encode_dev` (`st_dev`/`st_rdev` of `stat(2)`).
pub fn encode_dev(major: u32, minor: u32) -> u64 {
    let (major, minor) = (u64::from(major), u64::from(minor));
    (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & !0xff) << 12) | ((major & !0xfff) << 32)
}

/// Asked before file data grows by the given bytes; `false` refuses the growth.
pub type RoomCheck = fn(u64) -> bool;

/// Filesystem-wide state shared by every inode of one filesystem instance (its superblock):
/// device number, read-only flag, counters, limit and clock; for a mounted [`Filesystem`]
/// the filesystem itself.
pub(crate) struct FsShared {
    pub clock: Arc<dyn Clock>,
    /// `st_dev` of every inode here: (major, minor).
    pub dev: (u32, u32),
    /// Mounted read-only: every change fails with `EROFS`.
    pub read_only: AtomicBool,
    /// A procfs: its symlinks other than `self` are "magic links" (`RESOLVE_NO_MAGICLINKS`).
    pub magic_links: AtomicBool,
    /// The filesystem behind [`Body::Foreign`] inodes; `None` for the in-memory store.
    pub fs: Option<Arc<dyn Filesystem>>,
    pub next_ino: AtomicU64,
    pub inodes: AtomicU64,
    /// Bytes of file data pages allocated.
    pub data_bytes: AtomicU64,
    /// Upper bound of `data_bytes`; writes past it fail with `ENOSPC`.
    pub limit: AtomicU64,
    /// Asked before file data grows by `bytes`: `false` refuses the write with `ENOSPC`
    /// (the guest kernel's memory check: file pages live in its heap).
    pub room: spin::RwLock<Option<RoomCheck>>,
}

impl FsShared {
    /// A fresh superblock with device number `dev`, no limit.
    pub fn new(clock: Arc<dyn Clock>, dev: (u32, u32), fs: Option<Arc<dyn Filesystem>>) -> Self {
        Self {
            clock,
            dev,
            read_only: AtomicBool::new(false),
            magic_links: AtomicBool::new(false),
            fs,
            next_ino: AtomicU64::new(1),
            inodes: AtomicU64::new(0),
            data_bytes: AtomicU64::new(0),
            limit: AtomicU64::new(u64::MAX),
            room: spin::RwLock::new(None),
        }
    }

    /// `EROFS` when mounted read-only.
    pub fn check_writable(&self) -> Result<()> {
        if self.read_only.load(Ordering::Relaxed) { Err(Errno::EROFS) } else { Ok(()) }
    }

    pub fn now(&self) -> Timespec {
        self.clock.now()
    }

    /// Accounts `bytes` more of file data, or fails with `ENOSPC` past the limit.
    pub fn charge(&self, bytes: u64) -> Result<()> {
        if bytes > 0 && let Some(room) = *self.room.read() && !room(bytes) {
            return Err(Errno::ENOSPC);
        }
        let limit = self.limit.load(Ordering::Relaxed);
        self.data_bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |cur| {
                cur.checked_add(bytes).filter(|&n| n <= limit)
            })
            .map(|_| ())
            .map_err(|_| Errno::ENOSPC)
    }

    pub fn uncharge(&self, bytes: u64) {
        self.data_bytes.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// Contents of an inode, by type.
pub(crate) enum Body {
    /// Regular file data.
    File(FileData),
    /// Directory entries.
    Dir(DirData),
    /// Symlink target (no NUL).
    Symlink(Vec<u8>),
    /// Device nodes, FIFOs, sockets: no contents here.
    Special,
    /// An object of a mounted [`Filesystem`] (the VFS's dentry for it).
    Foreign(ForeignData),
}

/// The VFS's side of an object of a mounted filesystem: the object, the cached names below
/// it (the dentry cache: filled by lookups, kept in step by changes made through the VFS) and
/// where it was found (for `..` and `getcwd`).
pub(crate) struct ForeignData {
    pub ops: Arc<dyn InodeOps>,
    pub children: BTreeMap<Vec<u8>, InodeRef>,
    /// The directory it was looked up in (itself for the filesystem's root). Weak: no cycles.
    pub parent: Weak<Inode>,
    /// Its name there.
    pub name: Vec<u8>,
}

/// Mutable state of an inode, behind its lock.
pub(crate) struct InodeState {
    /// Permission bits and set-id/sticky (`0o7777`).
    pub perm: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    /// Device number of a device node: (major, minor).
    pub rdev: (u32, u32),
    pub atime: Timespec,
    pub mtime: Timespec,
    pub ctime: Timespec,
    pub btime: Timespec,
    pub body: Body,
    /// Extended attributes (`xattr(7)`), name -> value (in-memory store only).
    pub xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
    /// `flock(2)` locks held on this inode.
    pub flocks: crate::sys::lock::Flocks,
}

impl InodeState {
    pub fn file(&self) -> Option<&FileData> {
        match &self.body {
            Body::File(f) => Some(f),
            _ => None,
        }
    }
    pub fn file_mut(&mut self) -> Option<&mut FileData> {
        match &mut self.body {
            Body::File(f) => Some(f),
            _ => None,
        }
    }
    pub fn dir(&self) -> Option<&DirData> {
        match &self.body {
            Body::Dir(d) => Some(d),
            _ => None,
        }
    }
    pub fn dir_mut(&mut self) -> Option<&mut DirData> {
        match &mut self.body {
            Body::Dir(d) => Some(d),
            _ => None,
        }
    }
    pub fn foreign(&self) -> Option<&ForeignData> {
        match &self.body {
            Body::Foreign(f) => Some(f),
            _ => None,
        }
    }
    pub fn foreign_mut(&mut self) -> Option<&mut ForeignData> {
        match &mut self.body {
            Body::Foreign(f) => Some(f),
            _ => None,
        }
    }
    /// Copies `a`'s metadata into the cached state of a foreign object.
    pub fn set_attr(&mut self, a: &crate::ops::Attr) {
        self.perm = a.perm & 0o7777;
        self.uid = a.uid;
        self.gid = a.gid;
        self.nlink = a.nlink;
        self.rdev = a.rdev;
        self.atime = a.atime;
        self.mtime = a.mtime;
        self.ctime = a.ctime;
        self.btime = a.btime.unwrap_or(a.ctime);
    }
    /// Size as `st_size` reports it.
    pub fn size(&self) -> u64 {
        match &self.body {
            Body::File(f) => f.size(),
            Body::Symlink(t) => t.len() as u64,
            // tmpfs reports directories as (entries + 2) * 20 bytes (BOGO_DIRENT_SIZE).
            Body::Dir(d) => (d.len() as u64 + 2) * 20,
            Body::Special | Body::Foreign(_) => 0,
        }
    }
    /// Touches mtime and ctime (content changed).
    pub fn touch_modify(&mut self, now: Timespec) {
        self.mtime = now;
        self.ctime = now;
    }
}

/// One inode. Shared as [`InodeRef`]; freed when neither a directory entry nor an open file
/// nor a process context refers to it any more (so unlinked open files keep their data).
pub struct Inode {
    ino: u64,
    ftype: FileType,
    /// [`MOUNTPOINT`] and [`MOUNT_ROOT`] bits: checked without a lock on every walk step.
    mount_flags: AtomicU8,
    state: Mutex<InodeState>,
    pub(crate) shared: Arc<FsShared>,
}

/// Shared reference to an inode.
pub type InodeRef = Arc<Inode>;

/// [`Inode`] mount flag: a filesystem is mounted on this directory.
pub(crate) const MOUNTPOINT: u8 = 1;
/// [`Inode`] mount flag: this directory is the root of a mount.
pub(crate) const MOUNT_ROOT: u8 = 2;

impl Inode {
    /// Creates an inode with a fresh number; `nlink` starts at 0 (the caller links it).
    pub(crate) fn new(
        shared: &Arc<FsShared>,
        ftype: FileType,
        perm: u32,
        uid: u32,
        gid: u32,
        body: Body,
    ) -> Self {
        let ino = shared.next_ino.fetch_add(1, Ordering::Relaxed);
        Self::with_ino(shared, ino, ftype, perm, uid, gid, body)
    }

    /// Creates an inode numbered `ino` (a foreign object keeps its filesystem's number).
    pub(crate) fn with_ino(
        shared: &Arc<FsShared>,
        ino: u64,
        ftype: FileType,
        perm: u32,
        uid: u32,
        gid: u32,
        body: Body,
    ) -> Self {
        let now = shared.now();
        shared.inodes.fetch_add(1, Ordering::Relaxed);
        Self {
            ino,
            ftype,
            mount_flags: AtomicU8::new(0),
            state: Mutex::new(InodeState {
                perm: perm & 0o7777,
                uid,
                gid,
                nlink: 0,
                rdev: (0, 0),
                atime: now,
                mtime: now,
                ctime: now,
                btime: now,
                body,
                xattrs: BTreeMap::new(),
                flocks: Default::default(),
            }),
            shared: shared.clone(),
        }
    }

    /// The inode number (`st_ino`).
    pub fn ino(&self) -> u64 {
        self.ino
    }

    /// The device number (`st_dev`) of the filesystem it is on: (major, minor). With
    /// [`Inode::ino`], identifies the object (keys of FIFOs, locks).
    pub fn dev(&self) -> (u32, u32) {
        self.shared.dev
    }

    /// The file type.
    pub fn file_type(&self) -> FileType {
        self.ftype
    }

    /// True for directories.
    pub fn is_dir(&self) -> bool {
        self.ftype == FileType::Directory
    }

    /// Full `st_mode` (type and permission bits).
    pub fn mode(&self) -> u32 {
        self.ftype.mode_bits() | self.lock().perm
    }

    /// Size in bytes (`st_size`).
    pub fn size(&self) -> u64 {
        self.lock().size()
    }

    /// Device numbers (major, minor) of a device node; (0, 0) otherwise.
    pub fn rdev(&self) -> (u32, u32) {
        self.lock().rdev
    }

    /// Reads file data at `offset` into `buf` without touching times; returns bytes read
    /// (0 at or past end of file). `EISDIR` for directories, `EINVAL` for other non-files.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let st = self.lock();
        match &st.body {
            Body::File(f) => Ok(f.read_at(offset, buf)),
            Body::Dir(_) => Err(Errno::EISDIR),
            _ => Err(Errno::EINVAL),
        }
    }

    /// Identity of a regular file's contents: `(inode number, content generation, size)`.
    /// Two equal answers for the same inode mean the bytes did not change in between (see
    /// `FileData::generation`). `None` for non-files.
    pub fn content_id(&self) -> Option<(u64, u64, u64)> {
        let st = self.lock();
        match &st.body {
            Body::File(f) => Some((self.ino, f.generation(), f.size())),
            _ => None,
        }
    }

    /// The mount flags ([`MOUNTPOINT`], [`MOUNT_ROOT`]).
    pub(crate) fn mount_flags(&self) -> u8 {
        self.mount_flags.load(Ordering::Acquire)
    }

    pub(crate) fn set_mount_flags(&self, bits: u8, on: bool) {
        if on {
            self.mount_flags.fetch_or(bits, Ordering::AcqRel);
        } else {
            self.mount_flags.fetch_and(!bits, Ordering::AcqRel);
        }
    }

    /// The object of a mounted filesystem this inode stands for, if any.
    pub(crate) fn foreign_ops(&self) -> Option<Arc<dyn InodeOps>> {
        self.lock().foreign().map(|f| f.ops.clone())
    }

    /// True when the inode's filesystem is read-only.
    pub fn is_read_only(&self) -> bool {
        self.shared.read_only.load(Ordering::Relaxed)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, InodeState> {
        self.state.lock()
    }
}

impl Drop for Inode {
    fn drop(&mut self) {
        let st = self.state.get_mut();
        if let Body::File(f) = &mut st.body {
            let bytes = f.allocated_bytes();
            self.shared.uncharge(bytes);
        }
        self.shared.inodes.fetch_sub(1, Ordering::Relaxed);
    }
}
