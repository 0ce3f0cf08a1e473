//! hostfs: the VFS filesystem ([`Filesystem`], [`InodeOps`], [`FileOps`]) whose objects are
//! nodes of the file server F, reached through a [`FuseClient`].
//!
//! Semantics: nothing is cached here (correctness first: every `getattr` asks F, so sizes,
//! owners, modes, timestamps, link counts and inode numbers are the host's as of the call);
//! writes go to F at once (no write-back), so they are in the host directory when the call
//! returns. Each [`HostNode`] holds one FUSE lookup of its node id and gives it back
//! (`FORGET`) when dropped; each [`HostFile`] holds one open handle and sends `FLUSH` and
//! `RELEASE` when dropped. A read-only mount refuses every change with `EROFS` without asking
//! F (which also serves the tree read-only).
//!
//! Trust: the client has validated every reply (see [`super::client`]); this layer adds the
//! checks the VFS contract needs: a looked-up or created object's type comes from F's
//! attributes, readdir offsets are shifted past the VFS's reserved positions 0..=2, `.` and
//! `..` from F are dropped (the VFS makes its own).

use super::client::FuseClient;
use super::types::{Caller, FileAttr, SetAttr as FuseSetAttr};
use crate::errno::{Errno, Result};
use crate::file::FileOps;
use crate::inode::FileType;
use crate::ops::{Attr, Creds, DirEntry, FS_READ_ONLY, Filesystem, InodeOps, SetAttr, SetTime};
use crate::stat::Statfs;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;
use linux_raw_sys::general as g;

/// `f_type` of FUSE filesystems (`FUSE_SUPER_MAGIC`, `linux/magic.h`).
pub const FUSE_SUPER_MAGIC: i64 = 0x6573_5546;
/// `statfs(2)` `f_flags` bit of a read-only mount (`ST_RDONLY`).
const ST_RDONLY: i64 = 1;
/// The VFS reserves directory positions 0 (start), 1 (`.`) and 2 (`..`); F's offsets are
/// shifted by this much.
const DIR_POS_SHIFT: u64 = 3;
/// Bytes of dirents asked for per READDIR.
const READDIR_CHUNK: u32 = 16 * 1024;

struct Shared {
    client: Arc<FuseClient>,
    read_only: bool,
}

/// One mounted hostfs tree (a FUSE session with one file server queue).
pub struct HostFs {
    sh: Arc<Shared>,
    source: String,
}

impl HostFs {
    /// A hostfs over the session `client` (already INIT'ed); `read_only` makes the mount
    /// refuse changes; `source` is the `/proc/mounts` source field.
    pub fn new(client: Arc<FuseClient>, read_only: bool, source: &str) -> Self {
        Self { sh: Arc::new(Shared { client, read_only }), source: String::from(source) }
    }
}

fn caller(c: &Creds) -> Caller {
    Caller { uid: c.uid, gid: c.gid, pid: c.pid }
}

/// Requests the VFS makes without credentials (lookups, reads, attribute reads) carry the
/// kernel's: F checks no permissions on them (the VFS did).
const KERNEL: Caller = Caller { uid: 0, gid: 0, pid: 0 };

/// `new_decode_dev` of Linux (`kdev_t.h`): (major, minor) of a 32-bit device number.
fn decode_dev(rdev: u32) -> (u32, u32) {
    ((rdev >> 8) & 0xfff, (rdev & 0xff) | ((rdev >> 12) & 0xfff00))
}

/// `new_encode_dev` of Linux.
fn encode_dev((major, minor): (u32, u32)) -> u32 {
    (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & !0xff) << 12)
}

fn to_attr(a: &FileAttr) -> Attr {
    Attr {
        ino: a.ino,
        ftype: a.kind,
        perm: a.mode & 0o7777,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        rdev: decode_dev(a.rdev),
        size: a.size,
        blocks: a.blocks,
        blksize: a.blksize,
        atime: a.atime,
        mtime: a.mtime,
        ctime: a.ctime,
        btime: None,
    }
}

fn dirent_type(t: u8) -> Option<FileType> {
    Some(match u32::from(t) {
        g::DT_REG => FileType::Regular,
        g::DT_DIR => FileType::Directory,
        g::DT_LNK => FileType::Symlink,
        g::DT_CHR => FileType::CharDevice,
        g::DT_BLK => FileType::BlockDevice,
        g::DT_FIFO => FileType::Fifo,
        g::DT_SOCK => FileType::Socket,
        _ => return None,
    })
}

impl Filesystem for HostFs {
    fn fs_type(&self) -> &str {
        "fuse.hostfs"
    }

    fn source(&self) -> &str {
        &self.source
    }

    fn root(&self) -> Result<Arc<dyn InodeOps>> {
        let a = self.sh.client.getattr(KERNEL, super::abi::ROOT_ID, None)?;
        if a.attr.kind != FileType::Directory {
            return Err(Errno::ENOTDIR);
        }
        // The root's lookup is implicit in FUSE (never forgotten).
        Ok(Arc::new(HostNode { sh: self.sh.clone(), nodeid: super::abi::ROOT_ID, kind: FileType::Directory, counted: false }))
    }

    fn statfs(&self) -> Result<Statfs> {
        let s = self.sh.client.statfs(KERNEL, super::abi::ROOT_ID)?;
        Ok(Statfs {
            f_type: FUSE_SUPER_MAGIC,
            f_bsize: i64::from(s.bsize),
            f_blocks: s.blocks,
            f_bfree: s.bfree,
            f_bavail: s.bavail,
            f_files: s.files,
            f_ffree: s.ffree,
            f_fsid: [0, 0],
            f_namelen: i64::from(s.namelen),
            f_frsize: i64::from(s.frsize),
            f_flags: if self.sh.read_only { ST_RDONLY } else { 0 },
            f_spare: [0; 4],
        })
    }

    fn flags(&self) -> u32 {
        if self.sh.read_only { FS_READ_ONLY } else { 0 }
    }

    fn sync(&self) -> Result<()> {
        if self.sh.read_only {
            return Ok(());
        }
        self.sh.client.syncfs(KERNEL)
    }
}

/// One node of F: holds one lookup of `nodeid` (except the root).
pub struct HostNode {
    sh: Arc<Shared>,
    nodeid: u64,
    kind: FileType,
    counted: bool,
}

impl Drop for HostNode {
    fn drop(&mut self) {
        if self.counted {
            self.sh.client.forget(self.nodeid, 1);
        }
    }
}

impl HostNode {
    fn child(&self, e: super::types::Entry) -> Arc<dyn InodeOps> {
        Arc::new(HostNode { sh: self.sh.clone(), nodeid: e.nodeid, kind: e.attr.kind, counted: true })
    }

    fn writable(&self) -> Result<()> {
        if self.sh.read_only { Err(Errno::EROFS) } else { Ok(()) }
    }

    fn client(&self) -> &FuseClient {
        &self.sh.client
    }

    /// `other` as a node of this same mount (`EXDEV` otherwise).
    fn same_fs<'a>(&self, other: &'a Arc<dyn InodeOps>) -> Result<&'a HostNode> {
        let n = other.as_any().downcast_ref::<HostNode>().ok_or(Errno::EXDEV)?;
        if !Arc::ptr_eq(&n.sh, &self.sh) {
            return Err(Errno::EXDEV);
        }
        Ok(n)
    }

    fn expect(&self, e: super::types::Entry, kind: FileType) -> Result<Arc<dyn InodeOps>> {
        let node = self.child(e);
        if e.attr.kind != kind {
            // F made something else than asked: refuse it (the node is forgotten on drop).
            return Err(Errno::EIO);
        }
        Ok(node)
    }
}

impl InodeOps for HostNode {
    fn getattr(&self) -> Result<Attr> {
        let a = self.client().getattr(KERNEL, self.nodeid, None)?;
        if a.attr.kind != self.kind {
            // The object changed type behind our back (replaced on the host): stale.
            return Err(Errno::ESTALE);
        }
        Ok(to_attr(&a.attr))
    }

    fn setattr(&self, set: &SetAttr, creds: &Creds) -> Result<Attr> {
        self.writable()?;
        let time = |t: Option<SetTime>| {
            t.map(|t| match t {
                SetTime::Now => None,
                SetTime::At(ts) => Some(ts),
            })
        };
        let f = FuseSetAttr {
            mode: set.perm,
            uid: set.uid,
            gid: set.gid,
            size: set.size,
            atime: time(set.atime),
            mtime: time(set.mtime),
            fh: None,
        };
        let a = self.client().setattr(caller(creds), self.nodeid, &f)?;
        Ok(to_attr(&a.attr))
    }

    fn lookup(&self, name: &[u8]) -> Result<Arc<dyn InodeOps>> {
        if self.kind != FileType::Directory {
            return Err(Errno::ENOTDIR);
        }
        let e = self.client().lookup(KERNEL, self.nodeid, name)?;
        Ok(self.child(e))
    }

    fn mknod(&self, name: &[u8], ftype: FileType, perm: u32, rdev: (u32, u32), creds: &Creds) -> Result<Arc<dyn InodeOps>> {
        self.writable()?;
        if ftype == FileType::Directory || ftype == FileType::Symlink {
            return Err(Errno::EINVAL);
        }
        let mode = ftype.mode_bits() | (perm & 0o7777);
        let e = self.client().mknod(caller(creds), self.nodeid, name, mode, encode_dev(rdev), 0)?;
        self.expect(e, ftype)
    }

    fn create(&self, name: &[u8], perm: u32, flags: u32, creds: &Creds) -> Result<(Arc<dyn InodeOps>, Arc<dyn FileOps>)> {
        self.writable()?;
        let (e, o) = self.client().create(caller(creds), self.nodeid, name, flags, g::S_IFREG | (perm & 0o7777), 0)?;
        let node = self.child(e);
        let file = Arc::new(HostFile { sh: self.sh.clone(), nodeid: e.nodeid, fh: o.fh, flags, dir: false });
        Ok((node, file))
    }

    fn mkdir(&self, name: &[u8], perm: u32, creds: &Creds) -> Result<Arc<dyn InodeOps>> {
        self.writable()?;
        let e = self.client().mkdir(caller(creds), self.nodeid, name, g::S_IFDIR | (perm & 0o7777), 0)?;
        self.expect(e, FileType::Directory)
    }

    fn symlink(&self, name: &[u8], target: &[u8], creds: &Creds) -> Result<Arc<dyn InodeOps>> {
        self.writable()?;
        let e = self.client().symlink(caller(creds), self.nodeid, name, target)?;
        self.expect(e, FileType::Symlink)
    }

    fn link(&self, name: &[u8], target: &Arc<dyn InodeOps>) -> Result<()> {
        self.writable()?;
        let t = self.same_fs(target)?;
        let e = self.client().link(KERNEL, t.nodeid, self.nodeid, name)?;
        // The VFS keeps `target` for the new name; the entry's own lookup is given back.
        self.client().forget(e.nodeid, 1);
        if e.nodeid != t.nodeid {
            return Err(Errno::EIO);
        }
        Ok(())
    }

    fn unlink(&self, name: &[u8]) -> Result<()> {
        self.writable()?;
        self.client().unlink(KERNEL, self.nodeid, name)
    }

    fn rmdir(&self, name: &[u8]) -> Result<()> {
        self.writable()?;
        self.client().rmdir(KERNEL, self.nodeid, name)
    }

    fn rename(&self, name: &[u8], new_dir: &Arc<dyn InodeOps>, new_name: &[u8], flags: u32) -> Result<()> {
        self.writable()?;
        let d = self.same_fs(new_dir)?;
        self.client().rename(KERNEL, self.nodeid, name, d.nodeid, new_name, flags)
    }

    fn readlink(&self) -> Result<Vec<u8>> {
        if self.kind != FileType::Symlink {
            return Err(Errno::EINVAL);
        }
        self.client().readlink(KERNEL, self.nodeid)
    }

    fn readdir(&self, pos: u64, sink: &mut dyn FnMut(DirEntry) -> bool) -> Result<()> {
        if self.kind != FileType::Directory {
            return Err(Errno::ENOTDIR);
        }
        let mut off = pos.saturating_sub(DIR_POS_SHIFT);
        let h = self.client().opendir(KERNEL, self.nodeid, g::O_RDONLY)?;
        let r = (|| loop {
            let batch = self.client().readdir(KERNEL, self.nodeid, h.fh, off, READDIR_CHUNK)?;
            if batch.is_empty() {
                return Ok(());
            }
            let start = off;
            for d in batch {
                // Offset 0 means "the start": a server sending it would make us loop.
                if d.off == 0 {
                    return Err(Errno::EIO);
                }
                off = d.off;
                if d.name == b"." || d.name == b".." {
                    continue;
                }
                let next = d.off.checked_add(DIR_POS_SHIFT).ok_or(Errno::EIO)?;
                let e = DirEntry { ino: d.ino, next, ftype: dirent_type(d.typ), name: d.name };
                if !sink(e) {
                    return Ok(());
                }
            }
            // A batch that ends where it began would be asked for again forever.
            if off == start {
                return Err(Errno::EIO);
            }
        })();
        self.client().releasedir(KERNEL, self.nodeid, h.fh);
        r
    }

    fn getxattr(&self, name: &[u8], buf: &mut [u8]) -> Result<usize> {
        self.client().getxattr(KERNEL, self.nodeid, name, buf)
    }

    fn setxattr(&self, name: &[u8], value: &[u8], flags: u32) -> Result<()> {
        self.writable()?;
        self.client().setxattr(KERNEL, self.nodeid, name, value, flags)
    }

    fn listxattr(&self, buf: &mut [u8]) -> Result<usize> {
        self.client().listxattr(KERNEL, self.nodeid, buf)
    }

    fn removexattr(&self, name: &[u8]) -> Result<()> {
        self.writable()?;
        self.client().removexattr(KERNEL, self.nodeid, name)
    }

    fn open(&self, flags: u32) -> Result<Arc<dyn FileOps>> {
        let access = flags & g::O_ACCMODE;
        if self.sh.read_only && (access != g::O_RDONLY || flags & g::O_TRUNC != 0) {
            return Err(Errno::EROFS);
        }
        let (o, dir) = match self.kind {
            FileType::Directory => (self.client().opendir(KERNEL, self.nodeid, flags)?, true),
            FileType::Regular => (self.client().open(KERNEL, self.nodeid, flags)?, false),
            _ => return Err(Errno::ENXIO),
        };
        Ok(Arc::new(HostFile { sh: self.sh.clone(), nodeid: self.nodeid, fh: o.fh, flags, dir }))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// An open file or directory handle of F.
pub struct HostFile {
    sh: Arc<Shared>,
    nodeid: u64,
    fh: u64,
    flags: u32,
    dir: bool,
}

impl Drop for HostFile {
    fn drop(&mut self) {
        let c = &self.sh.client;
        if self.dir {
            c.releasedir(KERNEL, self.nodeid, self.fh);
        } else {
            // FLUSH reports write-back errors at close(2); nobody is left to hear them here.
            let _ = c.flush(KERNEL, self.nodeid, self.fh, 0);
            c.release(KERNEL, self.nodeid, self.fh, self.flags, None);
        }
    }
}

impl FileOps for HostFile {
    fn pread(&self, buf: &mut [u8], offset: u64) -> Result<usize> {
        if self.dir {
            return Err(Errno::EISDIR);
        }
        self.sh.client.read(KERNEL, self.nodeid, self.fh, offset, buf)
    }

    fn pwrite(&self, buf: &[u8], offset: u64) -> Result<usize> {
        if self.dir {
            return Err(Errno::EISDIR);
        }
        if self.sh.read_only {
            return Err(Errno::EROFS);
        }
        self.sh.client.write(KERNEL, self.nodeid, self.fh, offset, buf)
    }

    fn fsync(&self, datasync: bool) -> Result<()> {
        if self.sh.read_only {
            return Ok(());
        }
        if self.dir {
            self.sh.client.fsyncdir(KERNEL, self.nodeid, self.fh, datasync)
        } else {
            self.sh.client.fsync(KERNEL, self.nodeid, self.fh, datasync)
        }
    }

    fn fallocate(&self, mode: u32, offset: u64, len: u64) -> Result<()> {
        if self.dir {
            return Err(Errno::EISDIR);
        }
        if self.sh.read_only {
            return Err(Errno::EROFS);
        }
        match self.sh.client.fallocate(KERNEL, self.nodeid, self.fh, mode, offset, len) {
            Err(Errno::ENOSYS) => Err(Errno::EOPNOTSUPP),
            r => r,
        }
    }
}
