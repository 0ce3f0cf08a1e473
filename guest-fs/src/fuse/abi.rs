//! The FUSE wire structures and constants the hostfs client uses, transcribed from the Linux
//! UAPI header `linux/fuse.h` (protocol 7.31 layouts, as virtio-fs uses them; `linux-raw-sys`
//! has no FUSE module). Every struct is `#[repr(C)]`, has no implicit padding and is checked
//! against the header's size with a compile-time assert.

/// Plain old data: a `#[repr(C)]` struct of integers with no padding, so every byte pattern
/// is a valid value and its bytes can be sent as they are.
///
/// # Safety
/// Implement only for `#[repr(C)]` structs made of integers (or arrays of them) without
/// implicit padding.
pub unsafe trait Pod: Copy + Default {}

/// The bytes of `v` (native endianness: x86-64 little-endian, as FUSE on x86-64).
pub fn as_bytes<T: Pod>(v: &T) -> &[u8] {
    // SAFETY: `T: Pod` has no padding, so all `size_of::<T>()` bytes are initialised; the
    // slice borrows `v` for its lifetime.
    unsafe { core::slice::from_raw_parts((v as *const T).cast::<u8>(), core::mem::size_of::<T>()) }
}

/// Reads a `T` from the start of `bytes` (any alignment); `None` if `bytes` is shorter.
pub fn read_pod<T: Pod>(bytes: &[u8]) -> Option<T> {
    if bytes.len() < core::mem::size_of::<T>() {
        return None;
    }
    // SAFETY: the source has at least `size_of::<T>()` readable bytes (checked above), any
    // byte pattern is a valid `T` (`Pod`), and `read_unaligned` has no alignment requirement.
    Some(unsafe { core::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

macro_rules! pod_structs {
    ($( $(#[$m:meta])* struct $name:ident [$size:expr] { $( $(#[$fm:meta])* $field:ident : $ty:ty ),* $(,)? } )*) => {
        $(
            $(#[$m])*
            ///
            /// Fields as named and documented in `linux/fuse.h`.
            #[allow(missing_docs)]
            #[repr(C)]
            #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
            pub struct $name { $( $(#[$fm])* pub $field: $ty ),* }
            // SAFETY: `#[repr(C)]` of integer fields; the size assert below proves there is
            // no padding (the header's size is the sum of the fields).
            unsafe impl Pod for $name {}
            const _: () = assert!(core::mem::size_of::<$name>() == $size);
            const _: () = assert!(core::mem::size_of::<$name>() == 0 $(+ core::mem::size_of::<$ty>())*);
        )*
    };
}

/// Protocol major version (`FUSE_KERNEL_VERSION`).
pub const KERNEL_VERSION: u32 = 7;
/// The protocol minor version this client speaks: 7.31 (the layouts below; no
/// `FUSE_SETXATTR_EXT`, no `FUSE_INIT_EXT`).
pub const KERNEL_MINOR_VERSION: u32 = 31;
/// Node id of the root directory (`FUSE_ROOT_ID`).
pub const ROOT_ID: u64 = 1;

/// `fuse_opcode` values used by the client.
#[allow(missing_docs)]
pub mod op {
    pub const LOOKUP: u32 = 1;
    pub const FORGET: u32 = 2;
    pub const GETATTR: u32 = 3;
    pub const SETATTR: u32 = 4;
    pub const READLINK: u32 = 5;
    pub const SYMLINK: u32 = 6;
    pub const MKNOD: u32 = 8;
    pub const MKDIR: u32 = 9;
    pub const UNLINK: u32 = 10;
    pub const RMDIR: u32 = 11;
    pub const RENAME: u32 = 12;
    pub const LINK: u32 = 13;
    pub const OPEN: u32 = 14;
    pub const READ: u32 = 15;
    pub const WRITE: u32 = 16;
    pub const STATFS: u32 = 17;
    pub const RELEASE: u32 = 18;
    pub const FSYNC: u32 = 20;
    pub const SETXATTR: u32 = 21;
    pub const GETXATTR: u32 = 22;
    pub const LISTXATTR: u32 = 23;
    pub const REMOVEXATTR: u32 = 24;
    pub const FLUSH: u32 = 25;
    pub const INIT: u32 = 26;
    pub const OPENDIR: u32 = 27;
    pub const READDIR: u32 = 28;
    pub const RELEASEDIR: u32 = 29;
    pub const FSYNCDIR: u32 = 30;
    pub const GETLK: u32 = 31;
    pub const SETLK: u32 = 32;
    pub const SETLKW: u32 = 33;
    pub const ACCESS: u32 = 34;
    pub const CREATE: u32 = 35;
    pub const BATCH_FORGET: u32 = 42;
    pub const FALLOCATE: u32 = 43;
    pub const READDIRPLUS: u32 = 44;
    pub const RENAME2: u32 = 45;
    pub const LSEEK: u32 = 46;
    pub const COPY_FILE_RANGE: u32 = 47;
    pub const SYNCFS: u32 = 50;
}

/// `fuse_init_in.flags` / `fuse_init_out.flags` bits (`FUSE_*` in `linux/fuse.h`).
#[allow(missing_docs)]
pub mod init_flags {
    pub const ASYNC_READ: u32 = 1 << 0;
    pub const POSIX_LOCKS: u32 = 1 << 1;
    pub const ATOMIC_O_TRUNC: u32 = 1 << 3;
    pub const BIG_WRITES: u32 = 1 << 5;
    pub const DONT_MASK: u32 = 1 << 6;
    pub const FLOCK_LOCKS: u32 = 1 << 10;
    pub const DO_READDIRPLUS: u32 = 1 << 13;
    pub const PARALLEL_DIROPS: u32 = 1 << 18;
    pub const MAX_PAGES: u32 = 1 << 22;
}

/// `fuse_setattr_in.valid` bits (`FATTR_*`).
#[allow(missing_docs)]
pub mod fattr {
    pub const MODE: u32 = 1 << 0;
    pub const UID: u32 = 1 << 1;
    pub const GID: u32 = 1 << 2;
    pub const SIZE: u32 = 1 << 3;
    pub const ATIME: u32 = 1 << 4;
    pub const MTIME: u32 = 1 << 5;
    pub const FH: u32 = 1 << 6;
    pub const ATIME_NOW: u32 = 1 << 7;
    pub const MTIME_NOW: u32 = 1 << 8;
    pub const CTIME: u32 = 1 << 10;
}

/// `fuse_getattr_in.getattr_flags`: `fh` is valid (`FUSE_GETATTR_FH`).
pub const GETATTR_FH: u32 = 1;
/// `fuse_release_in.release_flags`: drop the flock locks of `lock_owner`
/// (`FUSE_RELEASE_FLOCK_UNLOCK`).
pub const RELEASE_FLOCK_UNLOCK: u32 = 1 << 1;
/// `fuse_lk_in.lk_flags`: a `flock(2)` lock rather than a POSIX record lock (`FUSE_LK_FLOCK`).
pub const LK_FLOCK: u32 = 1;
/// `fuse_fsync_in.fsync_flags`: data only (`FUSE_FSYNC_FDATASYNC`).
pub const FSYNC_FDATASYNC: u32 = 1;
/// Offset of the name in a `fuse_dirent` (`FUSE_NAME_OFFSET`).
pub const DIRENT_NAME_OFFSET: usize = 24;

pod_structs! {
    /// `struct fuse_in_header`.
    struct InHeader [40] {
        len: u32, opcode: u32, unique: u64, nodeid: u64, uid: u32, gid: u32, pid: u32,
        total_extlen: u16, padding: u16,
    }
    /// `struct fuse_out_header`.
    struct OutHeader [16] { len: u32, error: i32, unique: u64 }
    /// `struct fuse_attr`.
    struct Attr [88] {
        ino: u64, size: u64, blocks: u64, atime: u64, mtime: u64, ctime: u64,
        atimensec: u32, mtimensec: u32, ctimensec: u32, mode: u32, nlink: u32, uid: u32,
        gid: u32, rdev: u32, blksize: u32, flags: u32,
    }
    /// `struct fuse_entry_out`.
    struct EntryOut [128] {
        nodeid: u64, generation: u64, entry_valid: u64, attr_valid: u64,
        entry_valid_nsec: u32, attr_valid_nsec: u32, attr: Attr,
    }
    /// `struct fuse_attr_out`.
    struct AttrOut [104] { attr_valid: u64, attr_valid_nsec: u32, dummy: u32, attr: Attr }
    /// `struct fuse_kstatfs` (the whole of `fuse_statfs_out`).
    struct Kstatfs [80] {
        blocks: u64, bfree: u64, bavail: u64, files: u64, ffree: u64, bsize: u32,
        namelen: u32, frsize: u32, padding: u32, spare: [u32; 6],
    }
    /// `struct fuse_file_lock`.
    struct FileLock [24] { start: u64, end: u64, typ: u32, pid: u32 }
    /// `struct fuse_forget_in`.
    struct ForgetIn [8] { nlookup: u64 }
    /// `struct fuse_forget_one`.
    struct ForgetOne [16] { nodeid: u64, nlookup: u64 }
    /// `struct fuse_batch_forget_in`.
    struct BatchForgetIn [8] { count: u32, dummy: u32 }
    /// `struct fuse_getattr_in`.
    struct GetattrIn [16] { getattr_flags: u32, dummy: u32, fh: u64 }
    /// `struct fuse_mknod_in`.
    struct MknodIn [16] { mode: u32, rdev: u32, umask: u32, padding: u32 }
    /// `struct fuse_mkdir_in`.
    struct MkdirIn [8] { mode: u32, umask: u32 }
    /// `struct fuse_rename2_in`.
    struct Rename2In [16] { newdir: u64, flags: u32, padding: u32 }
    /// `struct fuse_rename_in`.
    struct RenameIn [8] { newdir: u64 }
    /// `struct fuse_link_in`.
    struct LinkIn [8] { oldnodeid: u64 }
    /// `struct fuse_setattr_in`.
    struct SetattrIn [88] {
        valid: u32, padding: u32, fh: u64, size: u64, lock_owner: u64, atime: u64,
        mtime: u64, ctime: u64, atimensec: u32, mtimensec: u32, ctimensec: u32, mode: u32,
        unused4: u32, uid: u32, gid: u32, unused5: u32,
    }
    /// `struct fuse_open_in`.
    struct OpenIn [8] { flags: u32, open_flags: u32 }
    /// `struct fuse_create_in`.
    struct CreateIn [16] { flags: u32, mode: u32, umask: u32, open_flags: u32 }
    /// `struct fuse_open_out`.
    struct OpenOut [16] { fh: u64, open_flags: u32, padding: u32 }
    /// `struct fuse_release_in`.
    struct ReleaseIn [24] { fh: u64, flags: u32, release_flags: u32, lock_owner: u64 }
    /// `struct fuse_flush_in`.
    struct FlushIn [24] { fh: u64, unused: u32, padding: u32, lock_owner: u64 }
    /// `struct fuse_read_in` (also READDIR's argument).
    struct ReadIn [40] {
        fh: u64, offset: u64, size: u32, read_flags: u32, lock_owner: u64, flags: u32,
        padding: u32,
    }
    /// `struct fuse_write_in`.
    struct WriteIn [40] {
        fh: u64, offset: u64, size: u32, write_flags: u32, lock_owner: u64, flags: u32,
        padding: u32,
    }
    /// `struct fuse_write_out`.
    struct WriteOut [8] { size: u32, padding: u32 }
    /// `struct fuse_fsync_in`.
    struct FsyncIn [16] { fh: u64, fsync_flags: u32, padding: u32 }
    /// `struct fuse_setxattr_in` as of 7.31 (`FUSE_COMPAT_SETXATTR_IN_SIZE`).
    struct SetxattrIn [8] { size: u32, flags: u32 }
    /// `struct fuse_getxattr_in`.
    struct GetxattrIn [8] { size: u32, padding: u32 }
    /// `struct fuse_getxattr_out`.
    struct GetxattrOut [8] { size: u32, padding: u32 }
    /// `struct fuse_lk_in`.
    struct LkIn [48] { fh: u64, owner: u64, lk: FileLock, lk_flags: u32, padding: u32 }
    /// `struct fuse_lk_out`.
    struct LkOut [24] { lk: FileLock }
    /// `struct fuse_access_in`.
    struct AccessIn [8] { mask: u32, padding: u32 }
    /// `struct fuse_init_in` (7.36 size; the extra words are zero at 7.31).
    struct InitIn [64] {
        major: u32, minor: u32, max_readahead: u32, flags: u32, flags2: u32, unused: [u32; 11],
    }
    /// `struct fuse_init_out`.
    struct InitOut [64] {
        major: u32, minor: u32, max_readahead: u32, flags: u32, max_background: u16,
        congestion_threshold: u16, max_write: u32, time_gran: u32, max_pages: u16,
        map_alignment: u16, flags2: u32, unused: [u32; 7],
    }
    /// `struct fuse_fallocate_in`.
    struct FallocateIn [32] { fh: u64, offset: u64, length: u64, mode: u32, padding: u32 }
    /// `struct fuse_lseek_in`.
    struct LseekIn [24] { fh: u64, offset: u64, whence: u32, padding: u32 }
    /// `struct fuse_lseek_out`.
    struct LseekOut [8] { offset: u64 }
    /// `struct fuse_copy_file_range_in`.
    struct CopyFileRangeIn [56] {
        fh_in: u64, off_in: u64, nodeid_out: u64, fh_out: u64, off_out: u64, len: u64,
        flags: u64,
    }
    /// `struct fuse_syncfs_in`.
    struct SyncfsIn [8] { padding: u64 }
    /// The fixed part of `struct fuse_dirent` (the name follows).
    struct DirentHead [24] { ino: u64, off: u64, namelen: u32, typ: u32 }
}

/// Bytes of the smallest `fuse_init_out` a 7.23+ server sends (`FUSE_COMPAT_22_INIT_OUT_SIZE`
/// is for older ones, which this client refuses).
pub const INIT_OUT_MIN: usize = 64;
