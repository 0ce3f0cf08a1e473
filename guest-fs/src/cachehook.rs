//! The boundary between file I/O and the guest kernel's page cache (`guest-kernel/src/mm/
//! pagecache.rs`): the hooks the syscall layer calls so that cached pages, and the user
//! mappings of them, stay coherent with `read(2)`, `write(2)`, `truncate(2)` and `fsync(2)`,
//! and the raw data access the cache fills and writes back pages with.
//!
//! The model (the kernel's page cache holds copies of file bytes; the file, tmpfs's
//! `FileData` or the host file behind hostfs, stays the authority): writes through
//! `write(2)` go to the file and are copied into the cached pages ([`PageCache::after_write`]);
//! pages that writable `MAP_SHARED` mappings may have changed are written back to the file
//! before any read of that range ([`PageCache::before_read`]), on `fsync`, `msync`, `munmap`
//! and eviction; a size change drops the pages past the new end ([`PageCache::after_resize`]).
//! Hooks are called with no inode lock held (lock order: address space, cache object, inode).

use crate::errno::{Errno, Result};
use crate::file::{FileOps, OpenFile, Target};
use crate::inode::{Inode, InodeRef};
use alloc::sync::Arc;

/// What the page cache is told about file I/O. Inodes are identified by address (the cache
/// holds a reference on every inode it has pages of, so the address stays unique).
pub trait PageCache: Send + Sync {
    /// `[off, off + len)` of `inode` is about to be read from the file: write back pages of
    /// that range that shared mappings may have made dirty.
    fn before_read(&self, inode: &Inode, off: u64, len: u64);
    /// `data` was written to `inode` at `off` (the file already holds it).
    fn after_write(&self, inode: &Inode, off: u64, data: &[u8]);
    /// The file's size changed to `size` by truncation (or its bytes in `[size, ∞)` changed
    /// in some other way): cached pages past it go, the tail of the last one is re-read.
    fn after_resize(&self, inode: &Inode, size: u64);
    /// `[off, off + len)` of `inode` now reads as zeros (a punched hole, a zeroed range).
    fn after_zero(&self, inode: &Inode, off: u64, len: u64);
    /// `fsync(2)` of `inode`: write back every dirty page.
    fn sync(&self, inode: &Inode);
}

static HOOK: spin::RwLock<Option<&'static dyn PageCache>> = spin::RwLock::new(None);

fn hook() -> Option<&'static dyn PageCache> {
    *HOOK.read()
}

/// Installs the kernel's page cache (at boot).
pub fn set_page_cache(cache: &'static dyn PageCache) {
    *HOOK.write() = Some(cache);
}

pub(crate) fn before_read(inode: &Inode, off: u64, len: u64) {
    if let Some(h) = hook() {
        h.before_read(inode, off, len);
    }
}

pub(crate) fn after_write(inode: &Inode, off: u64, data: &[u8]) {
    if let Some(h) = hook()
        && !data.is_empty()
    {
        h.after_write(inode, off, data);
    }
}

pub(crate) fn after_resize(inode: &Inode, size: u64) {
    if let Some(h) = hook() {
        h.after_resize(inode, size);
    }
}

pub(crate) fn after_zero(inode: &Inode, off: u64, len: u64) {
    if let Some(h) = hook() {
        h.after_zero(inode, off, len);
    }
}

pub(crate) fn sync(inode: &Inode) {
    if let Some(h) = hook() {
        h.sync(inode);
    }
}

/// The mounted filesystem's open file behind `f` (hostfs), through which the page cache
/// reads and writes the file's data; `None` for tmpfs files and everything else.
pub fn foreign_file(f: &OpenFile) -> Option<Arc<dyn FileOps>> {
    match &f.target {
        Target::Foreign { file, .. } => Some(file.clone()),
        _ => None,
    }
}

/// Current size of regular file `inode`, bytes (a `GETATTR` for a mounted filesystem).
pub fn data_size(inode: &InodeRef) -> Result<u64> {
    if crate::foreign::is_foreign(inode) {
        return Ok(crate::foreign::getattr(inode)?.size);
    }
    inode.lock().file().map(|f| f.size()).ok_or(Errno::EINVAL)
}

/// Modification time of regular file `inode` as `(seconds, nanoseconds)` (from the last
/// `GETATTR` for a mounted filesystem; call [`data_size`] first to refresh it).
pub fn data_mtime(inode: &InodeRef) -> (i64, i64) {
    let st = inode.lock();
    (st.mtime.sec, st.mtime.nsec)
}

/// Reads file bytes at `off` into `buf` with no permission check and no hook: through
/// `file` (the mounted filesystem's open file) for hostfs, from memory for tmpfs. Returns
/// the bytes read (short at end of file). Byte counts a filesystem reports are clamped.
pub fn read_data(inode: &InodeRef, file: Option<&Arc<dyn FileOps>>, off: u64, buf: &mut [u8]) -> Result<usize> {
    if crate::foreign::is_foreign(inode) {
        let file = file.ok_or(Errno::EBADF)?;
        let mut done = 0;
        while done < buf.len() {
            match file.pread(&mut buf[done..], off + done as u64)? {
                0 => break,
                n => done += n.min(buf.len() - done),
            }
        }
        return Ok(done);
    }
    inode.read_at(off, buf)
}

/// Writes `data` at `off` with no permission check and no hook (page-cache writeback):
/// through `file` for hostfs, into memory for tmpfs (touching mtime). Returns the bytes
/// written. `EBADF` without a writable open file for hostfs; the store's `ENOSPC`/`EFBIG`.
pub fn write_data(inode: &InodeRef, file: Option<&Arc<dyn FileOps>>, off: u64, data: &[u8]) -> Result<usize> {
    if crate::foreign::is_foreign(inode) {
        let file = file.ok_or(Errno::EBADF)?;
        let mut done = 0;
        while done < data.len() {
            match file.pwrite(&data[done..], off + done as u64)? {
                0 => return Err(Errno::EIO),
                n => done += n.min(data.len() - done),
            }
        }
        return Ok(done);
    }
    let now = inode.shared.now();
    let mut st = inode.lock();
    let f = st.file_mut().ok_or(Errno::EINVAL)?;
    let n = f.write_at(&inode.shared, off, data)?;
    if n > 0 {
        st.touch_modify(now);
    }
    Ok(n)
}
