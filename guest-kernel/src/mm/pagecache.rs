//! The page cache: guest frames holding pages of files (tmpfs and hostfs) and of shared
//! anonymous memory, shared by every address space that maps them.
//!
//! Structure: an [`Object`] is a sparse array of pages (`BTreeMap` from page index to frame)
//! with the size of what it caches. A file's object is found through [`OBJECTS`], keyed by
//! the address of its inode (the object holds the inode, so the key stays unique); an
//! anonymous object (`MAP_SHARED | MAP_ANONYMOUS`) belongs to the VMAs that map it only, so it
//! stays shared across `fork` and goes with the last of them. VMAs hold `Arc<Object>`
//! (`super::vma::Backing`).
//!
//! Frames: the object owns one reference on each of its frames; every page-table leaf that
//! maps one owns another (`frame::share_all` when it is mapped, `frame::free` when unmapped).
//! So a frame with a single owner is mapped nowhere, and eviction drops exactly those pages
//! (no reverse map needed). Truncation, which must take pages away from mappings, walks every
//! address space for VMAs of the object ([`zap_everywhere`]), like Linux's `i_mmap` walk.
//!
//! Coherence (the file is the authority; `guest_fs::cachehook` has the model): `write(2)`
//! copies the written bytes into cached pages; pages that a writable `MAP_SHARED` mapping
//! may have changed are *dirty* (marked when such a mapping first writes; leaves of shared
//! file mappings start read-only for that) and written back before a `read(2)` of their range,
//! on `fsync`, `msync`, `munmap` (and exit), and before eviction. hostfs pages are validated
//! against the file's size and mtime whenever the file is mapped again (FUSE's model without
//! `FUSE_WRITEBACK_CACHE`: writes are write-through, and a change made on the host is seen at
//! the next `mmap` once the attribute cache lets the new attributes in).
//!
//! Locking: address-space lock, then an object's lock, then (through `guest_fs`) an inode's
//! lock or a hostfs request; the registry lock is taken before an object's, never inside one.
//!
//! Trust: file contents that come from the file server are data only: they are copied into
//! frames and mapped into user space, never interpreted by the kernel; byte counts the server
//! reports are clamped by `guest_fs`, and a failed read makes the access fault with SIGBUS.

use super::{frame, phys_to_virt, PAGE_SIZE};
use crate::sync::Mutex;
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};
use guest_fs::cachehook;
use guest_fs::{Errno, FileOps, Inode, InodeRef, OpenFile};

/// Pages a read fault maps around the faulting one (Linux's `fault_around_bytes`, 64 KiB).
pub const FAULT_AROUND: u64 = 16;

/// One cached page.
#[derive(Clone, Copy, Debug)]
struct Page {
    /// Its frame (one owner reference is the object's).
    gpa: u64,
    /// A shared writable mapping may have changed it since it was last written back.
    dirty: bool,
}

struct Inner {
    pages: BTreeMap<u64, Page>,
    /// Bytes of the file (anonymous objects: `u64::MAX`, no end).
    size: u64,
    /// `(size, mtime sec, mtime nsec)` of a hostfs file when last validated.
    stamp: (u64, i64, i64),
    /// An open file to read pages through (hostfs).
    rd: Option<Arc<dyn FileOps>>,
    /// An open file to write pages back through (hostfs, from a writable shared mapping).
    wr: Option<Arc<dyn FileOps>>,
}

/// A page-cache object: the cached pages of one file, or one shared anonymous mapping.
pub struct Object {
    file: Option<InodeRef>,
    inner: Mutex<Inner>,
}

impl core::fmt::Debug for Object {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Object").field("file", &self.file.as_ref().map(|i| i.ino())).finish_non_exhaustive()
    }
}

/// File objects by inode address.
static OBJECTS: Mutex<BTreeMap<usize, Arc<Object>>> = Mutex::new(BTreeMap::new());
/// Pages held by all objects.
static PAGES: AtomicUsize = AtomicUsize::new(0);
/// Cache size (pages) above which a fault makes the next budget scan (see `fault_pages`).
static RECLAIM_AT: AtomicUsize = AtomicUsize::new(0);
/// Dirty pages of all objects (a `read(2)` checks for writeback only when nonzero).
static DIRTY: AtomicUsize = AtomicUsize::new(0);

fn key(i: &Inode) -> usize {
    i as *const Inode as usize
}

/// Pages of the cache (all objects), for statistics and tests.
pub fn cached_pages() -> usize {
    PAGES.load(Ordering::Relaxed)
}

/// Most pages the cache keeps mapped by nobody before it evicts (an eighth of guest memory).
fn budget_pages() -> usize {
    (super::mem_size() / PAGE_SIZE / 8) as usize
}

/// Number of pages holding `size` bytes.
pub fn pages_for(size: u64) -> u64 {
    size.div_ceil(PAGE_SIZE)
}

/// Bytes of page `pg` that lie inside a file of `size` bytes (0 past its end).
pub fn bytes_in_page(pg: u64, size: u64) -> usize {
    size.saturating_sub(pg.saturating_mul(PAGE_SIZE)).min(PAGE_SIZE) as usize
}

/// The window of pages a fault at object page `pg` fills and maps: `[lo, hi)` inside
/// `[first, end)` (the VMA's pages) and the file's `eof` pages, [`FAULT_AROUND`] pages long
/// when there is room. `None` when `pg` is at or past the end of the file (SIGBUS).
pub fn fault_window(pg: u64, first: u64, end: u64, eof: u64) -> Option<(u64, u64)> {
    if pg >= eof || pg < first || pg >= end {
        return None;
    }
    let hi_lim = end.min(eof);
    let lo = pg.saturating_sub(FAULT_AROUND / 2).max(first);
    let hi = lo.saturating_add(FAULT_AROUND).min(hi_lim);
    let lo = hi.saturating_sub(FAULT_AROUND).max(first).min(pg);
    Some((lo, hi))
}

/// The object of regular file `inode`, opened as `of`, made on first use. Its size is
/// refreshed; for hostfs, when the file's size or mtime changed since it was last seen, the
/// pages nobody maps are dropped (a change made on the host). `of`'s hostfs file is kept to
/// read pages through, and to write them back when `of` is writable.
pub fn file_object(inode: &InodeRef, of: &OpenFile) -> Result<Arc<Object>, Errno> {
    let size = cachehook::data_size(inode)?;
    let (sec, nsec) = cachehook::data_mtime(inode);
    let io = cachehook::foreign_file(of);
    let hostfs = io.is_some();
    let obj = OBJECTS
        .lock()
        .entry(key(inode))
        .or_insert_with(|| Arc::new(Object::new(Some(inode.clone()), size)))
        .clone();
    let stale = {
        let mut g = obj.inner.lock();
        if let Some(f) = io {
            if of.readable() {
                g.rd = Some(f.clone());
            }
            if of.writable() {
                g.wr = Some(f);
            }
        }
        let stamp = (size, sec, nsec);
        let stale = hostfs && g.stamp != stamp;
        g.stamp = stamp;
        g.size = size;
        stale
    };
    if stale {
        obj.evict(false);
    }
    Ok(obj)
}

/// A new shared anonymous object (`MAP_SHARED | MAP_ANONYMOUS`): zero pages on demand.
pub fn anon_object() -> Arc<Object> {
    Arc::new(Object::new(None, u64::MAX))
}

/// Why [`Object::fault_pages`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageError {
    /// The page is past the end of the file, or could not be read (SIGBUS).
    Bus,
    /// No free frame.
    NoMemory,
}

impl Object {
    fn new(file: Option<InodeRef>, size: u64) -> Object {
        Object { file, inner: Mutex::new(Inner { pages: BTreeMap::new(), size, stamp: (u64::MAX, 0, 0), rd: None, wr: None }) }
    }

    /// True for a file's object (false: shared anonymous memory).
    pub fn is_file(&self) -> bool {
        self.file.is_some()
    }

    /// Pages of the file (anonymous: no end).
    pub fn eof_pages(&self) -> u64 {
        let size = self.inner.lock().size;
        if size == u64::MAX { u64::MAX } else { pages_for(size) }
    }

    /// The pages `[lo, hi)` around page `pg` (a window from [`fault_window`]) for a fault:
    /// the run of missing pages around `pg` is read from the file (zeroed for anonymous
    /// objects); other missing pages of the window are left out. Each page returned,
    /// `(page index, gpa)`, carries one more frame owner for the caller's mapping (the caller
    /// maps it or frees that reference). `Bus` when `pg` is past the end of the file or the
    /// read failed.
    pub fn fault_pages(&self, pg: u64, lo: u64, hi: u64) -> Result<Vec<(u64, u64)>, PageError> {
        let mut g = self.inner.lock();
        let eof = if g.size == u64::MAX { u64::MAX } else { pages_for(g.size) };
        let hi = hi.min(eof);
        if pg >= hi || pg < lo {
            return Err(PageError::Bus);
        }
        if !g.pages.contains_key(&pg) {
            let mut a = pg;
            while a > lo && !g.pages.contains_key(&(a - 1)) {
                a -= 1;
            }
            let mut b = pg + 1;
            while b < hi && !g.pages.contains_key(&b) {
                b += 1;
            }
            self.fill(&mut g, pg, a, b)?;
        }
        let out: Vec<(u64, u64)> = g.pages.range(lo..hi).map(|(&i, p)| (i, p.gpa)).collect();
        let gpas: Vec<u64> = out.iter().map(|&(_, gpa)| gpa).collect();
        if !frame::share_all(&gpas) {
            return Err(PageError::NoMemory);
        }
        let over = PAGES.load(Ordering::Relaxed) > budget_pages().max(RECLAIM_AT.load(Ordering::Relaxed));
        drop(g);
        if over {
            reclaim();
            // Mapped pages cannot go: scan again only after another quarter budget of growth,
            // so that a cache full of mapped pages does not make every fault scan it.
            RECLAIM_AT.store(PAGES.load(Ordering::Relaxed) + budget_pages() / 4, Ordering::Relaxed);
        }
        Ok(out)
    }

    /// Reads pages `[a, b)` (all missing, containing `pg`) into new frames: one run of frames
    /// when there is one free, else page `pg` alone.
    fn fill(&self, g: &mut Inner, pg: u64, a: u64, b: u64) -> Result<(), PageError> {
        let (a, b, gpa) = match frame::alloc_user_run((b - a) as usize, 1) {
            Some(gpa) => (a, b, gpa),
            None => (pg, pg + 1, frame::alloc_user_run(1, 1).ok_or(PageError::NoMemory)?),
        };
        let n = (b - a) as usize;
        let len = n * PAGE_SIZE as usize;
        match &self.file {
            None => frame::zero_new(gpa, n),
            Some(inode) => {
                // SAFETY: `n` frames just allocated for us, inside guest RAM; nothing else
                // references them until they are inserted below.
                let buf = unsafe { core::slice::from_raw_parts_mut(phys_to_virt(gpa), len) };
                match cachehook::read_data(inode, g.rd.as_ref(), a * PAGE_SIZE, buf) {
                    Ok(got) => buf[got.min(len)..].fill(0),
                    Err(_) => {
                        frame::free(gpa, n);
                        return Err(PageError::Bus);
                    }
                }
            }
        }
        for i in 0..n as u64 {
            g.pages.insert(a + i, Page { gpa: gpa + i * PAGE_SIZE, dirty: false });
        }
        PAGES.fetch_add(n, Ordering::Relaxed);
        Ok(())
    }

    /// Records that a shared mapping is about to write page `pg` (its leaf becomes writable).
    pub fn mark_dirty(&self, pg: u64) {
        if self.file.is_none() {
            return;
        }
        let mut g = self.inner.lock();
        if let Some(p) = g.pages.get_mut(&pg)
            && !p.dirty
        {
            p.dirty = true;
            DIRTY.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Writes the dirty pages of `[lo, hi)` back to the file (the part of each inside the
    /// file). A page stays dirty while a mapping may still write it (its frame has another
    /// owner). Errors of the file (`ENOSPC`, a broken hostfs queue) are returned after every
    /// page was tried; those pages stay dirty.
    pub fn writeback(&self, lo: u64, hi: u64) -> Result<(), Errno> {
        let Some(inode) = &self.file else { return Ok(()) };
        if DIRTY.load(Ordering::Relaxed) == 0 {
            return Ok(());
        }
        let mut g = self.inner.lock();
        let dirty: Vec<(u64, u64)> = g.pages.range(lo..hi).filter(|(_, p)| p.dirty).map(|(&i, p)| (i, p.gpa)).collect();
        let mut res = Ok(());
        for (i, gpa) in dirty {
            let n = bytes_in_page(i, g.size);
            // SAFETY: the frame is a page of this object (its reference keeps it), a whole
            // page in guest RAM; user mappings may write it concurrently (byte data, as
            // any writeback of a mapped page sees).
            let data = unsafe { core::slice::from_raw_parts(phys_to_virt(gpa), n) };
            match cachehook::write_data(inode, g.wr.as_ref(), i * PAGE_SIZE, data) {
                Ok(_) => {
                    if !frame::is_shared(gpa)
                        && let Some(p) = g.pages.get_mut(&i)
                    {
                        p.dirty = false;
                        DIRTY.fetch_sub(1, Ordering::Relaxed);
                    }
                }
                Err(e) => res = Err(e),
            }
        }
        res
    }

    /// `write(2)` wrote `data` at `off` to the file: the cached pages it covers get the same
    /// bytes; the size grows to cover it.
    fn write_through(&self, off: u64, data: &[u8]) {
        let mut g = self.inner.lock();
        let end = off.saturating_add(data.len() as u64);
        if g.size != u64::MAX {
            g.size = g.size.max(end);
        }
        for (&i, p) in g.pages.range(off / PAGE_SIZE..pages_for(end)) {
            let page_start = i * PAGE_SIZE;
            let from = off.max(page_start);
            let to = end.min(page_start + PAGE_SIZE);
            let src = &data[(from - off) as usize..(to - off) as usize];
            // SAFETY: a page of this object; the range stays inside it.
            unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), phys_to_virt(p.gpa + (from - page_start)), src.len()) };
        }
    }

    /// `[off, off + len)` of the file reads as zeros now: so do the cached pages.
    fn zero_range(&self, off: u64, len: u64) {
        let g = self.inner.lock();
        let end = off.saturating_add(len);
        for (&i, p) in g.pages.range(off / PAGE_SIZE..pages_for(end)) {
            let page_start = i * PAGE_SIZE;
            let from = off.max(page_start);
            let to = end.min(page_start + PAGE_SIZE);
            super::zero_phys(p.gpa + (from - page_start), to - from);
        }
    }

    /// The file was truncated (or grown) to `size`: the tail of the last page is zeroed, the
    /// pages past it leave the cache and every mapping of them (later accesses there get
    /// SIGBUS, as in Linux; copy-on-write copies of private mappings stay).
    fn resize(self: &Arc<Self>, size: u64) {
        let gone: Vec<u64> = {
            let mut g = self.inner.lock();
            g.size = size;
            let keep = pages_for(size);
            if let Some(p) = g.pages.get(&(size / PAGE_SIZE))
                && !size.is_multiple_of(PAGE_SIZE)
            {
                let cut = size % PAGE_SIZE;
                super::zero_phys(p.gpa + cut, PAGE_SIZE - cut);
            }
            let tail = g.pages.split_off(&keep);
            let dirty = tail.values().filter(|p| p.dirty).count();
            DIRTY.fetch_sub(dirty, Ordering::Relaxed);
            tail.values().map(|p| p.gpa).collect()
        };
        if gone.is_empty() {
            return;
        }
        zap_everywhere(self, pages_for(size), &gone);
        PAGES.fetch_sub(gone.len(), Ordering::Relaxed);
        for gpa in gone {
            frame::free(gpa, 1);
        }
    }

    /// Drops the pages no address space maps (after writing back dirty ones when `dirty`; a
    /// dirty page is kept if its writeback fails, and when `dirty` is false). Returns the
    /// pages dropped.
    fn evict(&self, dirty: bool) -> usize {
        let mut g = self.inner.lock();
        let cands: Vec<(u64, Page)> = g.pages.iter().map(|(&i, p)| (i, *p)).filter(|(_, p)| !frame::is_shared(p.gpa)).collect();
        let mut freed = 0;
        for (i, p) in cands {
            if p.dirty {
                if !dirty {
                    continue;
                }
                let Some(inode) = &self.file else { continue };
                let n = bytes_in_page(i, g.size);
                // SAFETY: a page of this object that nothing maps; a whole page in guest RAM.
                let data = unsafe { core::slice::from_raw_parts(phys_to_virt(p.gpa), n) };
                if cachehook::write_data(inode, g.wr.as_ref(), i * PAGE_SIZE, data).is_err() {
                    continue;
                }
                DIRTY.fetch_sub(1, Ordering::Relaxed);
            }
            g.pages.remove(&i);
            frame::free(p.gpa, 1);
            freed += 1;
        }
        PAGES.fetch_sub(freed, Ordering::Relaxed);
        freed
    }
}

impl Drop for Object {
    fn drop(&mut self) {
        let g = self.inner.get_mut();
        let dirty = g.pages.values().filter(|p| p.dirty).count();
        DIRTY.fetch_sub(dirty, Ordering::Relaxed);
        PAGES.fetch_sub(g.pages.len(), Ordering::Relaxed);
        for p in g.pages.values() {
            frame::free(p.gpa, 1);
        }
    }
}

/// Removes the mappings of `obj`'s pages from `first` on from every address space: all of
/// them in shared mappings, and in private ones the leaves that still map one of the cache's
/// frames `gpas` (copy-on-write copies stay). Takes each address space's lock in turn; the
/// caller holds no address-space or object lock.
fn zap_everywhere(obj: &Arc<Object>, first: u64, gpas: &[u64]) {
    let mut seen: Vec<usize> = Vec::new();
    let procs: Vec<_> = crate::proc::PROCESSES.read().values().cloned().collect();
    for p in procs {
        let Some(mm) = p.mm() else { continue };
        let id = Arc::as_ptr(&mm) as usize;
        if seen.contains(&id) {
            continue;
        }
        seen.push(id);
        let mut s = mm.lock();
        s.zap_object(obj, first, gpas);
        s.flush();
    }
}

/// Evicts every page no address space maps, writing dirty ones back first, and forgets file
/// objects that hold no page and that no VMA maps. Returns the pages freed (memory pressure:
/// the fault path's out-of-memory retry, and a cache over its budget).
pub fn reclaim() -> usize {
    let objs: Vec<Arc<Object>> = OBJECTS.lock().values().cloned().collect();
    let freed = objs.iter().map(|o| o.evict(true)).sum();
    drop(objs);
    OBJECTS.lock().retain(|_, o| Arc::strong_count(o) > 1 || !o.inner.lock().pages.is_empty());
    freed
}

fn lookup(inode: &Inode) -> Option<Arc<Object>> {
    OBJECTS.lock().get(&key(inode)).cloned()
}

/// The hooks `guest_fs` calls (see `guest_fs::cachehook`).
pub struct Hooks;

/// The instance installed at boot.
pub static HOOKS: Hooks = Hooks;

impl cachehook::PageCache for Hooks {
    fn before_read(&self, inode: &Inode, off: u64, len: u64) {
        if DIRTY.load(Ordering::Relaxed) == 0 {
            return;
        }
        if let Some(o) = lookup(inode) {
            let _ = o.writeback(off / PAGE_SIZE, pages_for(off.saturating_add(len)));
        }
    }

    fn after_write(&self, inode: &Inode, off: u64, data: &[u8]) {
        if PAGES.load(Ordering::Relaxed) == 0 {
            return;
        }
        if let Some(o) = lookup(inode) {
            o.write_through(off, data);
        }
    }

    fn after_resize(&self, inode: &Inode, size: u64) {
        if let Some(o) = lookup(inode) {
            o.resize(size);
        }
    }

    fn after_zero(&self, inode: &Inode, off: u64, len: u64) {
        if let Some(o) = lookup(inode) {
            o.zero_range(off, len);
        }
    }

    fn sync(&self, inode: &Inode) {
        if let Some(o) = lookup(inode) {
            let _ = o.writeback(0, u64::MAX);
        }
    }
}

/// Installs the hooks into the filesystem layer (boot).
pub fn init() {
    cachehook::set_page_cache(&HOOKS);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_stays_inside_vma_and_file() {
        // Middle of a large file and VMA: 16 pages around the fault.
        assert_eq!(fault_window(100, 0, 1000, 1000), Some((92, 108)));
        // Near the VMA's start: shifted right, still 16 pages.
        assert_eq!(fault_window(2, 0, 1000, 1000), Some((0, 16)));
        // Near the end of the file: shifted left.
        assert_eq!(fault_window(998, 0, 1000, 999), Some((983, 999)));
        // A VMA of 3 pages starting at page 10.
        assert_eq!(fault_window(11, 10, 13, 1000), Some((10, 13)));
        // Past the end of the file: SIGBUS.
        assert_eq!(fault_window(5, 0, 10, 5), None);
        assert_eq!(fault_window(0, 0, 10, 0), None);
        // Anonymous objects have no end.
        assert_eq!(fault_window(7, 0, 8, u64::MAX), Some((0, 8)));
    }

    #[test]
    fn page_byte_counts() {
        assert_eq!(pages_for(0), 0);
        assert_eq!(pages_for(1), 1);
        assert_eq!(pages_for(4096), 1);
        assert_eq!(pages_for(4097), 2);
        assert_eq!(bytes_in_page(0, 100), 100);
        assert_eq!(bytes_in_page(1, 100), 0);
        assert_eq!(bytes_in_page(1, 5000), 904);
        assert_eq!(bytes_in_page(0, 5000), 4096);
        assert_eq!(bytes_in_page(u64::MAX, u64::MAX), 0);
    }
}
