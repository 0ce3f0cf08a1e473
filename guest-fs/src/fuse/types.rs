//! Validated forms of the FUSE replies: what the hostfs client hands to the VFS once a reply
//! from the (untrusted) file server has passed its checks.

use super::abi;
use crate::errno::{Errno, Result};
use crate::inode::FileType;
use crate::time::Timespec;
use alloc::vec::Vec;

/// Who asks: the credentials and thread group id carried in every `fuse_in_header`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Caller {
    /// Filesystem user id of the calling process.
    pub uid: u32,
    /// Filesystem group id.
    pub gid: u32,
    /// Thread group id (the guest pid).
    pub pid: u32,
}

/// A cache lifetime granted by the server (`entry_valid`/`attr_valid` + nanoseconds).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Validity {
    /// Seconds.
    pub sec: u64,
    /// Nanoseconds, below 10^9.
    pub nsec: u32,
}

impl Validity {
    fn new(sec: u64, nsec: u32) -> Result<Self> {
        if nsec >= 1_000_000_000 {
            return Err(Errno::EIO);
        }
        Ok(Self { sec, nsec })
    }
}

/// The attributes of a file as the server reports them (`struct fuse_attr`), checked: the
/// file type is one of the seven, nanoseconds are below 10^9, times fit `i64`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileAttr {
    /// Inode number on the host (`st_ino`).
    pub ino: u64,
    /// Size, bytes.
    pub size: u64,
    /// 512-byte blocks allocated.
    pub blocks: u64,
    /// Last access.
    pub atime: Timespec,
    /// Last modification.
    pub mtime: Timespec,
    /// Last status change.
    pub ctime: Timespec,
    /// Type and permission bits (`st_mode`).
    pub mode: u32,
    /// File type decoded from `mode`.
    pub kind: FileType,
    /// Hard links.
    pub nlink: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Device number of a device node, in the kernel's `new_encode_dev` form.
    pub rdev: u32,
    /// Preferred I/O size, bytes (a power of two in `512..=1 MiB`; 4096 if the server gave
    /// another value).
    pub blksize: u32,
}

fn time(sec: u64, nsec: u32) -> Result<Timespec> {
    if nsec >= 1_000_000_000 {
        return Err(Errno::EIO);
    }
    // The wire carries the signed seconds in an unsigned field.
    Ok(Timespec::new(sec as i64, i64::from(nsec)))
}

impl FileAttr {
    /// Checks `a`. Errors: `EIO` for an impossible mode or time.
    pub fn from_wire(a: &abi::Attr) -> Result<Self> {
        let kind = FileType::from_mode(a.mode).ok_or(Errno::EIO)?;
        if a.mode & !0o177_777 != 0 {
            return Err(Errno::EIO);
        }
        let blksize = if a.blksize.is_power_of_two() && (512..=1 << 20).contains(&a.blksize) {
            a.blksize
        } else {
            4096
        };
        Ok(Self {
            ino: a.ino,
            size: a.size,
            blocks: a.blocks,
            atime: time(a.atime, a.atimensec)?,
            mtime: time(a.mtime, a.mtimensec)?,
            ctime: time(a.ctime, a.ctimensec)?,
            mode: a.mode,
            kind,
            nlink: a.nlink,
            uid: a.uid,
            gid: a.gid,
            rdev: a.rdev,
            blksize,
        })
    }
}

/// A positive directory entry (`struct fuse_entry_out` with a non-zero node id). Each one the
/// client returns counts one lookup of `nodeid` that [`super::FuseClient::forget`] repays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The server's node id (never 0).
    pub nodeid: u64,
    /// Generation of the node id.
    pub generation: u64,
    /// How long the name may be cached.
    pub entry_valid: Validity,
    /// How long the attributes may be cached.
    pub attr_valid: Validity,
    /// The attributes.
    pub attr: FileAttr,
}

impl Entry {
    /// Checks `e`; `Ok(None)` for a negative entry (node id 0). Errors: `EIO`.
    pub fn from_wire(e: &abi::EntryOut) -> Result<Option<Self>> {
        if e.nodeid == 0 {
            return Ok(None);
        }
        Ok(Some(Self {
            nodeid: e.nodeid,
            generation: e.generation,
            entry_valid: Validity::new(e.entry_valid, e.entry_valid_nsec)?,
            attr_valid: Validity::new(e.attr_valid, e.attr_valid_nsec)?,
            attr: FileAttr::from_wire(&e.attr)?,
        }))
    }
}

/// Attributes with their cache lifetime (`struct fuse_attr_out`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttrReply {
    /// How long they may be cached.
    pub valid: Validity,
    /// The attributes.
    pub attr: FileAttr,
}

impl AttrReply {
    /// Checks `a`. Errors: `EIO`.
    pub fn from_wire(a: &abi::AttrOut) -> Result<Self> {
        Ok(Self {
            valid: Validity::new(a.attr_valid, a.attr_valid_nsec)?,
            attr: FileAttr::from_wire(&a.attr)?,
        })
    }
}

/// An open file or directory handle (`struct fuse_open_out`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Opened {
    /// The server's handle, passed back in READ, WRITE, RELEASE...
    pub fh: u64,
    /// `FOPEN_*` bits.
    pub open_flags: u32,
}

/// One `READDIR` record (`struct fuse_dirent`), checked: the name is 1..=255 bytes with no
/// `/` or NUL, the type is a `DT_*` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// Inode number.
    pub ino: u64,
    /// The offset to pass to the next `READDIR` to continue after this entry.
    pub off: u64,
    /// `DT_*` type (`DT_UNKNOWN` allowed).
    pub typ: u8,
    /// The name.
    pub name: Vec<u8>,
}

/// Attribute changes for `SETATTR` (each `Some` sets that attribute).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetAttr {
    /// New permission bits (type bits are ignored by servers).
    pub mode: Option<u32>,
    /// New owner.
    pub uid: Option<u32>,
    /// New group.
    pub gid: Option<u32>,
    /// New size (truncate or extend).
    pub size: Option<u64>,
    /// New access time; `Some(None)` means "now".
    pub atime: Option<Option<Timespec>>,
    /// New modification time; `Some(None)` means "now".
    pub mtime: Option<Option<Timespec>>,
    /// The open handle the change comes through (`ftruncate`), if any.
    pub fh: Option<u64>,
}

/// The filesystem statistics of `STATFS` (`struct fuse_kstatfs`).
pub type StatfsReply = abi::Kstatfs;

/// A record lock (`struct fuse_file_lock`): `typ` is `F_RDLCK`, `F_WRLCK` or `F_UNLCK`,
/// `start..=end` the byte range (`end` = `u64::MAX` for "to the end").
pub type Lock = abi::FileLock;

/// What the server agreed at `INIT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Connection {
    /// Negotiated minor version (at least 31).
    pub minor: u32,
    /// Negotiated `FUSE_*` feature bits (the intersection of ours and the server's).
    pub flags: u32,
    /// Largest WRITE payload, bytes (at least 4096).
    pub max_write: u32,
    /// Largest READ the client sends, bytes.
    pub max_read: u32,
}

impl Connection {
    /// Whether the server takes POSIX record locks (`FUSE_POSIX_LOCKS`); otherwise locks are
    /// the guest kernel's own, as Linux does.
    pub fn posix_locks(&self) -> bool {
        self.flags & abi::init_flags::POSIX_LOCKS != 0
    }
    /// Whether the server takes `flock(2)` locks (`FUSE_FLOCK_LOCKS`).
    pub fn flock_locks(&self) -> bool {
        self.flags & abi::init_flags::FLOCK_LOCKS != 0
    }
    /// Whether `READDIRPLUS` is supported.
    pub fn readdirplus(&self) -> bool {
        self.flags & abi::init_flags::DO_READDIRPLUS != 0
    }
}
