//! `struct stat`, `struct statx` and `struct statfs` in the Linux x86-64 layout
//! (`asm/stat.h`, `linux/stat.h`, `asm-generic/statfs.h`), built from inodes.

use crate::filedata::PAGE;
use crate::inode::{Body, Inode, encode_dev};
use crate::ops::Attr;
use crate::time::Timespec;
use crate::vfs::FsStats;
use linux_raw_sys::general as g;

/// Device number of this filesystem (`st_dev`), as (major, minor): an anonymous device
/// like tmpfs's `0:N`.
pub const FS_DEV: (u32, u32) = (0, 0x16);

/// Preferred I/O size (`st_blksize`), bytes.
pub const BLKSIZE: u32 = PAGE as u32;

/// `struct stat` of `newfstatat(2)`/`fstat(2)` on x86-64: 144 bytes, no implicit padding.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stat {
    /// Device containing the file.
    pub st_dev: u64,
    /// Inode number.
    pub st_ino: u64,
    /// Hard links.
    pub st_nlink: u64,
    /// Type and permissions.
    pub st_mode: u32,
    /// Owner.
    pub st_uid: u32,
    /// Group.
    pub st_gid: u32,
    /// Padding (zero).
    pub __pad0: u32,
    /// Device number of a device node.
    pub st_rdev: u64,
    /// Size, bytes.
    pub st_size: i64,
    /// Preferred I/O size, bytes.
    pub st_blksize: i64,
    /// 512-byte blocks allocated.
    pub st_blocks: i64,
    /// Last access, seconds.
    pub st_atime: i64,
    /// Last access, nanoseconds.
    pub st_atime_nsec: i64,
    /// Last modification, seconds.
    pub st_mtime: i64,
    /// Last modification, nanoseconds.
    pub st_mtime_nsec: i64,
    /// Last status change, seconds.
    pub st_ctime: i64,
    /// Last status change, nanoseconds.
    pub st_ctime_nsec: i64,
    /// Reserved (zero).
    pub __unused: [i64; 3],
}

const _: () = assert!(core::mem::size_of::<Stat>() == 144);
const _: () = assert!(core::mem::size_of::<Stat>() == core::mem::size_of::<g::stat>());
const _: () = assert!(core::mem::offset_of!(Stat, st_rdev) == 40);
const _: () = assert!(core::mem::offset_of!(Stat, st_mtime) == 88);

/// `struct statx_timestamp`: 16 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatxTimestamp {
    /// Seconds since the epoch.
    pub tv_sec: i64,
    /// Nanoseconds.
    pub tv_nsec: u32,
    /// Reserved (zero).
    pub __reserved: i32,
}

impl From<Timespec> for StatxTimestamp {
    fn from(t: Timespec) -> Self {
        Self { tv_sec: t.sec, tv_nsec: t.nsec as u32, __reserved: 0 }
    }
}

/// `struct statx` of `statx(2)`: 256 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Statx {
    /// Which fields are filled (`STATX_*`).
    pub stx_mask: u32,
    /// Preferred I/O size.
    pub stx_blksize: u32,
    /// File attributes (`STATX_ATTR_*`).
    pub stx_attributes: u64,
    /// Hard links.
    pub stx_nlink: u32,
    /// Owner.
    pub stx_uid: u32,
    /// Group.
    pub stx_gid: u32,
    /// Type and permissions.
    pub stx_mode: u16,
    /// Padding (zero).
    pub __spare0: u16,
    /// Inode number.
    pub stx_ino: u64,
    /// Size, bytes.
    pub stx_size: u64,
    /// 512-byte blocks.
    pub stx_blocks: u64,
    /// Attributes this filesystem supports.
    pub stx_attributes_mask: u64,
    /// Last access.
    pub stx_atime: StatxTimestamp,
    /// Creation.
    pub stx_btime: StatxTimestamp,
    /// Last status change.
    pub stx_ctime: StatxTimestamp,
    /// Last modification.
    pub stx_mtime: StatxTimestamp,
    /// Device node major.
    pub stx_rdev_major: u32,
    /// Device node minor.
    pub stx_rdev_minor: u32,
    /// Containing device major.
    pub stx_dev_major: u32,
    /// Containing device minor.
    pub stx_dev_minor: u32,
    /// Mount id.
    pub stx_mnt_id: u64,
    /// Newer fields (dio alignment, subvolume, atomic writes) and spare: zero.
    pub __spare: [u64; 13],
}

const _: () = assert!(core::mem::size_of::<Statx>() == 256);
const _: () = assert!(core::mem::offset_of!(Statx, stx_mtime) == 112);
const _: () = assert!(core::mem::offset_of!(Statx, stx_mnt_id) == 144);

/// `struct statfs` of `statfs(2)` on x86-64: 120 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Statfs {
    /// Filesystem type (`TMPFS_MAGIC`).
    pub f_type: i64,
    /// Block size.
    pub f_bsize: i64,
    /// Total blocks.
    pub f_blocks: u64,
    /// Free blocks.
    pub f_bfree: u64,
    /// Free blocks for unprivileged users.
    pub f_bavail: u64,
    /// Total inodes.
    pub f_files: u64,
    /// Free inodes.
    pub f_ffree: u64,
    /// Filesystem id.
    pub f_fsid: [i32; 2],
    /// Longest name.
    pub f_namelen: i64,
    /// Fragment size.
    pub f_frsize: i64,
    /// Mount flags (`ST_*`).
    pub f_flags: i64,
    /// Spare (zero).
    pub f_spare: [i64; 4],
}

const _: () = assert!(core::mem::size_of::<Statfs>() == 120);

macro_rules! as_bytes {
    ($t:ty) => {
        impl $t {
            /// The structure's bytes, as the kernel copies them to user memory.
            pub fn as_bytes(&self) -> &[u8] {
                // SAFETY: the type is `repr(C)`, made only of integers, with explicit padding
                // fields and no implicit padding (sizes asserted above), so every byte is
                // initialised; the slice borrows `self` for its lifetime.
                unsafe {
                    core::slice::from_raw_parts(
                        (self as *const Self).cast::<u8>(),
                        core::mem::size_of::<Self>(),
                    )
                }
            }
        }
    };
}
as_bytes!(Stat);
as_bytes!(Statx);
as_bytes!(Statfs);

/// `stat` of an inode.
pub(crate) fn stat_inode(inode: &Inode) -> Stat {
    let dev = inode.shared.dev;
    let ops = inode.foreign_ops();
    if let Some(ops) = ops {
        // A mounted filesystem's attributes are asked every time (they may change on the
        // host); if that fails, the cached ones are shown.
        if let Ok(a) = ops.getattr() {
            inode.lock().set_attr(&a);
            return stat_attr(&a, dev);
        }
    }
    let st = inode.lock();
    let blocks = match &st.body {
        Body::File(f) => f.blocks(),
        _ => 0,
    };
    Stat {
        st_dev: encode_dev(dev.0, dev.1),
        st_ino: inode.ino(),
        st_nlink: u64::from(st.nlink),
        st_mode: inode.file_type().mode_bits() | st.perm,
        st_uid: st.uid,
        st_gid: st.gid,
        __pad0: 0,
        st_rdev: encode_dev(st.rdev.0, st.rdev.1),
        st_size: st.size() as i64,
        st_blksize: i64::from(BLKSIZE),
        st_blocks: blocks as i64,
        st_atime: st.atime.sec,
        st_atime_nsec: st.atime.nsec,
        st_mtime: st.mtime.sec,
        st_mtime_nsec: st.mtime.nsec,
        st_ctime: st.ctime.sec,
        st_ctime_nsec: st.ctime.nsec,
        __unused: [0; 3],
    }
}

/// `stat` from a mounted filesystem's attributes, on device `dev`.
pub(crate) fn stat_attr(a: &Attr, dev: (u32, u32)) -> Stat {
    Stat {
        st_dev: encode_dev(dev.0, dev.1),
        st_ino: a.ino,
        st_nlink: u64::from(a.nlink),
        st_mode: a.ftype.mode_bits() | (a.perm & 0o7777),
        st_uid: a.uid,
        st_gid: a.gid,
        __pad0: 0,
        st_rdev: encode_dev(a.rdev.0, a.rdev.1),
        st_size: a.size.min(i64::MAX as u64) as i64,
        st_blksize: i64::from(if a.blksize == 0 { BLKSIZE } else { a.blksize }),
        st_blocks: a.blocks.min(i64::MAX as u64) as i64,
        st_atime: a.atime.sec,
        st_atime_nsec: a.atime.nsec,
        st_mtime: a.mtime.sec,
        st_mtime_nsec: a.mtime.nsec,
        st_ctime: a.ctime.sec,
        st_ctime_nsec: a.ctime.nsec,
        __unused: [0; 3],
    }
}

/// `statx` of an inode: all basic fields plus birth time, whatever `mask` asked
/// (`statx(2)` allows filling more than requested).
pub(crate) fn statx_inode(inode: &Inode) -> Statx {
    let s = stat_inode(inode);
    let st = inode.lock();
    Statx {
        stx_mask: g::STATX_BASIC_STATS | g::STATX_BTIME,
        stx_blksize: BLKSIZE,
        stx_attributes: 0,
        stx_nlink: s.st_nlink as u32,
        stx_uid: s.st_uid,
        stx_gid: s.st_gid,
        stx_mode: s.st_mode as u16,
        __spare0: 0,
        stx_ino: s.st_ino,
        stx_size: s.st_size as u64,
        stx_blocks: s.st_blocks as u64,
        stx_attributes_mask: 0,
        stx_atime: st.atime.into(),
        stx_btime: st.btime.into(),
        stx_ctime: st.ctime.into(),
        stx_mtime: st.mtime.into(),
        stx_rdev_major: st.rdev.0,
        stx_rdev_minor: st.rdev.1,
        stx_dev_major: inode.shared.dev.0,
        stx_dev_minor: inode.shared.dev.1,
        stx_mnt_id: 1,
        __spare: [0; 13],
    }
}

/// `statx` from a `stat` (for files that are not inodes: pipes, sockets).
pub fn statx_from_stat(s: &Stat) -> Statx {
    let ts = |sec, nsec| StatxTimestamp::from(Timespec::new(sec, nsec));
    Statx {
        stx_mask: g::STATX_BASIC_STATS,
        stx_blksize: s.st_blksize as u32,
        stx_nlink: s.st_nlink as u32,
        stx_uid: s.st_uid,
        stx_gid: s.st_gid,
        stx_mode: s.st_mode as u16,
        stx_ino: s.st_ino,
        stx_size: s.st_size as u64,
        stx_blocks: s.st_blocks as u64,
        stx_atime: ts(s.st_atime, s.st_atime_nsec),
        stx_ctime: ts(s.st_ctime, s.st_ctime_nsec),
        stx_mtime: ts(s.st_mtime, s.st_mtime_nsec),
        stx_rdev_major: ((s.st_rdev >> 8) & 0xfff) as u32,
        stx_rdev_minor: ((s.st_rdev & 0xff) | ((s.st_rdev >> 12) & !0xff)) as u32,
        stx_dev_major: ((s.st_dev >> 8) & 0xfff) as u32,
        stx_dev_minor: ((s.st_dev & 0xff) | ((s.st_dev >> 12) & !0xff)) as u32,
        ..Statx::default()
    }
}

/// tmpfs-like `statfs`: block counts from the data limit (or 1 GiB when unlimited) and use.
pub(crate) fn statfs_of(stats: &FsStats) -> Statfs {
    let bsize = PAGE as u64;
    let total_bytes = if stats.data_limit == u64::MAX { 1 << 30 } else { stats.data_limit };
    let blocks = (total_bytes / bsize).max(stats.data_bytes / bsize);
    let free = blocks - stats.data_bytes / bsize;
    let files = (blocks / 2).max(stats.inodes + 1024);
    Statfs {
        f_type: i64::from(g::TMPFS_MAGIC),
        f_bsize: bsize as i64,
        f_blocks: blocks,
        f_bfree: free,
        f_bavail: free,
        f_files: files,
        f_ffree: files - stats.inodes,
        f_fsid: [0, 0],
        f_namelen: crate::path::NAME_MAX as i64,
        f_frsize: bsize as i64,
        f_flags: 0x20 | 0x1000, // ST_VALID | ST_RELATIME
        f_spare: [0; 4],
    }
}
