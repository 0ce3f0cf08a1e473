//! Page cache of executed files: the contents of a file that `execve` loads, kept in one run
//! of guest frames so that every exec of the same unchanged file maps the same frames
//! (read-only segments are shared, not copied: exec of a 2 MiB busybox copies nothing).
//!
//! An [`Image`] owns one reference on each of its frames (`frame::share` adds one per user
//! mapping; `frame::free` drops one), so a frame stays while the cache or any address space
//! maps it, and copy-on-write protects it from writes while the cache holds it. Entries are
//! keyed by the inode (a weak reference: a deleted file's entry goes at the next lookup or
//! eviction) and its content generation (`guest_fs::Inode::content_id`), so a file that changed
//! since it was cached is read again. The cache holds at most [`budget_pages`] pages, least
//! recently used out first.

use super::{frame, phys_to_virt, PAGE_SIZE};
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use guest_fs::{Inode, InodeRef};
use spin::Mutex;

/// A cached file: its bytes from offset 0 in `pages` physically contiguous frames.
pub struct Image {
    inode: Weak<Inode>,
    /// `(ino, generation, size)` when read.
    id: (u64, u64, u64),
    /// GPA of the first frame.
    gpa: u64,
    /// Number of frames.
    pages: usize,
}

impl Image {
    /// The file's bytes (exactly its size).
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: the frames are owned by this image (one owner reference each) for as long
        // as it lives and hold `id.2 <= pages * PAGE_SIZE` bytes of file data; nothing writes
        // them while the image holds its reference: user mappings of them are read-only
        // (copy-on-write, since the frames have more than one owner) and the kernel never
        // writes a shared frame.
        unsafe { core::slice::from_raw_parts(phys_to_virt(self.gpa), self.id.2 as usize) }
    }

    /// GPA of the frame holding file offset `off` (page aligned), if inside the image.
    pub fn frame_at(&self, off: u64) -> Option<u64> {
        (off.is_multiple_of(PAGE_SIZE) && off / PAGE_SIZE < self.pages as u64).then(|| self.gpa + off)
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        frame::free(self.gpa, self.pages);
    }
}

struct Cache {
    /// Least recently used first.
    entries: Vec<Arc<Image>>,
    /// Pages held by `entries`.
    pages: usize,
}

static CACHE: Mutex<Cache> = Mutex::new(Cache { entries: Vec::new(), pages: 0 });

/// Most pages the cache holds: an eighth of guest memory, at most 64 MiB.
pub fn budget_pages() -> usize {
    ((super::mem_size() / PAGE_SIZE / 8) as usize).min(16 * 1024)
}

/// The cached image of regular file `inode`, reading it into fresh frames on a miss. `None`
/// when the file is empty, larger than the budget, or no contiguous run of frames is free
/// (the caller then reads the file the ordinary way).
pub fn get(inode: &InodeRef) -> Option<Arc<Image>> {
    let id = inode.content_id()?;
    let pages = usize::try_from(id.2.div_ceil(PAGE_SIZE)).ok()?;
    if pages == 0 || pages > budget_pages() {
        return None;
    }
    {
        let mut c = CACHE.lock();
        let same = |e: &Arc<Image>| e.inode.upgrade().is_some_and(|i| Arc::ptr_eq(&i, inode));
        if let Some(pos) = c.entries.iter().position(|e| same(e) && e.id == id) {
            let e = c.entries.remove(pos);
            c.entries.push(e.clone());
            return Some(e);
        }
        // Older versions of this file and entries of deleted files go now.
        let (keep, gone): (Vec<_>, Vec<_>) =
            core::mem::take(&mut c.entries).into_iter().partition(|e| e.inode.strong_count() > 0 && !same(e));
        c.entries = keep;
        c.pages -= gone.iter().map(|e| e.pages).sum::<usize>();
    }
    let gpa = frame::alloc_user_run(pages, 1)?;
    // SAFETY: `pages` frames just allocated for us, inside guest RAM.
    let buf = unsafe { core::slice::from_raw_parts_mut(phys_to_virt(gpa), pages * PAGE_SIZE as usize) };
    let n = inode.read_at(0, buf).unwrap_or(0);
    buf[n..].fill(0);
    let img = Arc::new(Image { inode: Arc::downgrade(inode), id, gpa, pages });
    if n as u64 != id.2 || inode.content_id() != Some(id) {
        // Changed while we read it: use nothing (dropping `img` frees the frames).
        return None;
    }
    let mut c = CACHE.lock();
    c.pages += pages;
    c.entries.push(img.clone());
    while c.pages > budget_pages() && !c.entries.is_empty() {
        let old = c.entries.remove(0);
        c.pages -= old.pages;
    }
    Some(img)
}

/// Drops every cached image (frames still mapped by processes stay until they unmap them).
/// Returns the pages released from the cache.
pub fn shrink() -> usize {
    let mut c = CACHE.lock();
    c.entries.clear();
    core::mem::take(&mut c.pages)
}
