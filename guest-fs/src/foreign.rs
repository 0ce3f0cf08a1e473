//! The VFS side of mounted filesystems ([`crate::Filesystem`]): VFS inodes standing for
//! their objects (the dentry cache), and the calls the syscall layer makes on them.
//!
//! Trust: what a filesystem answers is checked before use where the VFS relies on it: a
//! looked-up object's type comes from its [`Attr`] once and never changes for the cached
//! inode; `readdir` names must be valid single components; byte counts are clamped.

use crate::context::FsContext;
use crate::errno::{Errno, Result};
use crate::inode::{Body, FileType, ForeignData, Inode, InodeRef};
use crate::ops::{Attr, Creds, InodeOps};
use crate::path::NAME_MAX;
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;

/// The object behind a foreign inode (`EINVAL` for inodes of the in-memory store).
pub(crate) fn ops_of(inode: &InodeRef) -> Result<Arc<dyn InodeOps>> {
    inode.foreign_ops().ok_or(Errno::EINVAL)
}

/// True when `inode` stands for an object of a mounted filesystem.
pub(crate) fn is_foreign(inode: &InodeRef) -> bool {
    inode.shared.fs.is_some()
}

/// [`is_foreign`] on a borrowed inode.
pub(crate) fn is_foreign_inode(inode: &Inode) -> bool {
    inode.shared.fs.is_some()
}

/// The VFS inode for `ops`, found as `name` in the foreign directory `dir`, cached there.
pub(crate) fn wrap(dir: &InodeRef, name: &[u8], ops: Arc<dyn InodeOps>) -> Result<InodeRef> {
    let attr = ops.getattr()?;
    let body = Body::Foreign(ForeignData {
        ops,
        children: BTreeMap::new(),
        parent: Arc::downgrade(dir),
        name: name.to_vec(),
    });
    let node = Arc::new(Inode::with_ino(&dir.shared, attr.ino, attr.ftype, attr.perm, attr.uid, attr.gid, body));
    node.lock().set_attr(&attr);
    let mut d = dir.lock();
    let f = d.foreign_mut().ok_or(Errno::ENOTDIR)?;
    Ok(f.children.entry(name.to_vec()).or_insert(node).clone())
}

/// Looks `name` up in the foreign directory `dir` (not in its cache): `None` for `ENOENT`.
pub(crate) fn lookup(dir: &InodeRef, ops: &Arc<dyn InodeOps>, name: &[u8]) -> Result<Option<InodeRef>> {
    match ops.lookup(name) {
        Ok(child) => wrap(dir, name, child).map(Some),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Drops `name` from `dir`'s dentry cache (after the filesystem removed or renamed it).
pub(crate) fn forget(dir: &InodeRef, name: &[u8]) -> Option<InodeRef> {
    dir.lock().foreign_mut().and_then(|f| f.children.remove(name))
}

/// Current attributes of a foreign inode, also copied into its cached state (which
/// permission checks read).
pub(crate) fn getattr(inode: &InodeRef) -> Result<Attr> {
    let a = ops_of(inode)?.getattr()?;
    inode.lock().set_attr(&a);
    Ok(a)
}

/// Credentials for a new object: the caller's fs uid and the group the VFS chose.
pub(crate) fn creds(ctx: &FsContext, gid: u32) -> Creds {
    Creds { uid: ctx.uid, gid, pid: 0 }
}

/// A `readdir` name the VFS accepts.
pub(crate) fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name.len() <= NAME_MAX && name != b"." && name != b".." && !name.iter().any(|&b| b == b'/' || b == 0)
}

/// Creates a node through the foreign directory `dir` and caches it under `name`.
pub(crate) fn create(
    dir: &InodeRef,
    name: &[u8],
    ftype: FileType,
    perm: u32,
    rdev: (u32, u32),
    target: Option<&[u8]>,
    creds: &Creds,
) -> Result<InodeRef> {
    let ops = ops_of(dir)?;
    let child = match (ftype, target) {
        (FileType::Directory, _) => ops.mkdir(name, perm, creds)?,
        (FileType::Symlink, Some(t)) => ops.symlink(name, t, creds)?,
        (FileType::Symlink, None) => return Err(Errno::EINVAL),
        _ => ops.mknod(name, ftype, perm, rdev, creds)?,
    };
    forget(dir, name);
    wrap(dir, name, child)
}

/// Reads the whole regular file behind a foreign inode (for the ELF loader).
pub(crate) fn read_all(inode: &InodeRef) -> Result<Vec<u8>> {
    let size = usize::try_from(getattr(inode)?.size).map_err(|_| Errno::EFBIG)?;
    let file = ops_of(inode)?.open(linux_raw_sys::general::O_RDONLY)?;
    let mut buf = alloc::vec![0u8; size];
    let mut done = 0;
    while done < size {
        match file.pread(&mut buf[done..], done as u64)? {
            0 => break,
            n => done += n.min(size - done),
        }
    }
    buf.truncate(done);
    Ok(buf)
}

/// Records that the cached object `node` was renamed to `name` in `dir`, so `..` and
/// `getcwd` from inside it (a working directory) follow. The new name is not cached with
/// this object: the next lookup asks the filesystem (whose objects may be path-based).
pub(crate) fn moved(node: &InodeRef, dir: &InodeRef, name: &[u8]) {
    if let Some(f) = node.lock().foreign_mut() {
        f.parent = Arc::downgrade(dir);
        f.name = name.to_vec();
    }
}
