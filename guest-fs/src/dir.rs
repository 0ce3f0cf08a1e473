//! Directory contents: entries in creation order, each with a stable cookie that
//! `getdents64(2)` uses as `d_off`, so entries removed while a reader walks the directory
//! never make it skip others (the `rm -rf` pattern).

use crate::inode::{Inode, InodeRef};
use alloc::collections::BTreeMap;
use alloc::sync::Weak;
use alloc::vec::Vec;

/// Directory positions: 0 = start (".") and 1 = after "."; 2 = after ".."; entry cookies
/// start at [`FIRST_COOKIE`].
pub const FIRST_COOKIE: u64 = 3;

/// One directory entry.
pub struct DirEntry {
    /// Name (no `/`, no NUL, not `.` or `..`).
    pub name: Vec<u8>,
    /// The inode it names.
    pub inode: InodeRef,
}

/// Contents of a directory.
pub struct DirData {
    by_cookie: BTreeMap<u64, DirEntry>,
    by_name: BTreeMap<Vec<u8>, u64>,
    next_cookie: u64,
    /// The parent directory (`..`); the root's parent is itself. Weak: no cycles.
    pub parent: Weak<Inode>,
    /// This directory's name in its parent (empty for the root), for `getcwd(2)`.
    pub name: Vec<u8>,
}

impl DirData {
    /// An empty directory under `parent`, named `name` there.
    pub fn new(parent: Weak<Inode>, name: Vec<u8>) -> Self {
        Self {
            by_cookie: BTreeMap::new(),
            by_name: BTreeMap::new(),
            next_cookie: FIRST_COOKIE,
            parent,
            name,
        }
    }

    /// Number of entries (excluding `.` and `..`).
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// True when the directory has no entries besides `.` and `..`.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// The inode named `name`.
    pub fn get(&self, name: &[u8]) -> Option<InodeRef> {
        let c = self.by_name.get(name)?;
        self.by_cookie.get(c).map(|e| e.inode.clone())
    }

    /// Adds an entry; the caller has checked that `name` is absent.
    pub fn insert(&mut self, name: &[u8], inode: InodeRef) {
        let c = self.next_cookie;
        self.next_cookie += 1;
        self.by_name.insert(name.to_vec(), c);
        self.by_cookie.insert(c, DirEntry { name: name.to_vec(), inode });
    }

    /// Removes and returns the entry `name`.
    pub fn remove(&mut self, name: &[u8]) -> Option<InodeRef> {
        let c = self.by_name.remove(name)?;
        self.by_cookie.remove(&c).map(|e| e.inode)
    }

    /// Points the existing entry `name` at `inode` (keeps its position); returns the old one.
    pub fn replace(&mut self, name: &[u8], inode: InodeRef) -> Option<InodeRef> {
        let c = *self.by_name.get(name)?;
        let e = self.by_cookie.get_mut(&c)?;
        Some(core::mem::replace(&mut e.inode, inode))
    }

    /// The first entry with cookie greater than `after`, with its cookie.
    pub fn next_after(&self, after: u64) -> Option<(u64, &DirEntry)> {
        self.by_cookie.range(after + 1..).next().map(|(&c, e)| (c, e))
    }
}
