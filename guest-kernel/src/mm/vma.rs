//! Virtual memory areas of one address space: page-aligned, non-overlapping `[start, end)`
//! ranges with Linux `PROT_*` permissions, kept in a `BTreeMap` keyed by start. Splitting on
//! partial unmap/protect follows Linux `mm/mmap.c` semantics. Pure bookkeeping: the page
//! tables and frames are handled by `space`. A VMA backed by a page-cache object (a file
//! mapping, or `MAP_SHARED | MAP_ANONYMOUS` memory) carries it in [`Backing`], with the page
//! offset of its first page; splits advance the offset of the right-hand piece.

use super::pagecache::Object;
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;

/// What backs a VMA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmaKind {
    /// Anonymous memory (zero-filled on demand), also ELF segments, or (with a [`Backing`]) a
    /// mapping of a page-cache object.
    Anon,
    /// The main thread's stack (grows down; demand-filled in smaller chunks).
    Stack,
    /// The `brk` heap.
    Heap,
    /// The vDSO's data page (`[vvar]`, `crate::vdso`): the kernel's shared frame, read-only.
    Vvar,
    /// The vDSO image (`[vdso]`, `crate::vdso`): the kernel's shared frames, read+exec.
    Vdso,
}

/// The page-cache object a VMA maps (`mmap` of a file, shared anonymous memory).
#[derive(Clone, Debug)]
pub struct Backing {
    /// The object (file pages or shared anonymous pages).
    pub obj: Arc<Object>,
    /// Object page (file offset / 4096) of the VMA's first page.
    pub pgoff: u64,
    /// `MAP_SHARED`: writes go to the object's pages (and the file); otherwise a write
    /// copies the page (`MAP_PRIVATE`).
    pub shared: bool,
}

impl PartialEq for Backing {
    fn eq(&self, o: &Self) -> bool {
        Arc::ptr_eq(&self.obj, &o.obj) && self.pgoff == o.pgoff && self.shared == o.shared
    }
}
impl Eq for Backing {}

impl Backing {
    /// The backing of the part of a VMA that starts `bytes` (page aligned) after it.
    pub fn advanced(&self, bytes: u64) -> Backing {
        Backing { obj: self.obj.clone(), pgoff: self.pgoff + bytes / guest_abi::PAGE_SIZE, shared: self.shared }
    }
}

/// One area.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vma {
    /// First byte (page aligned).
    pub start: u64,
    /// One past the last byte (page aligned).
    pub end: u64,
    /// `PROT_READ | PROT_WRITE | PROT_EXEC` bits.
    pub prot: u32,
    /// Backing kind.
    pub kind: VmaKind,
    /// The page-cache object mapped, if any.
    pub backing: Option<Backing>,
}

impl Vma {
    /// Length in bytes.
    pub fn len(&self) -> u64 {
        self.end - self.start
    }
    /// Never true for a stored VMA (kept for clippy's `len_without_is_empty`).
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    /// An unbacked VMA.
    pub fn new(start: u64, end: u64, prot: u32, kind: VmaKind) -> Vma {
        Vma { start, end, prot, kind, backing: None }
    }

    /// The piece `[start, end)` of this VMA (inside it), with its backing offset adjusted.
    pub fn piece(&self, start: u64, end: u64) -> Vma {
        Vma { start, end, prot: self.prot, kind: self.kind, backing: self.backing.as_ref().map(|b| b.advanced(start - self.start)) }
    }

    /// True when a shared (`MAP_SHARED`) mapping of a page-cache object.
    pub fn is_shared(&self) -> bool {
        self.backing.as_ref().is_some_and(|b| b.shared)
    }

    /// Object page of the page at `va` (inside the VMA), with its backing.
    pub fn object_page(&self, va: u64) -> Option<(&Backing, u64)> {
        self.backing.as_ref().map(|b| (b, b.pgoff + (va - self.start) / guest_abi::PAGE_SIZE))
    }

    /// True when `next` (starting at `self.end`) continues this VMA: same prot, kind and
    /// object, and the next object page.
    fn continues_into(&self, next: &Vma) -> bool {
        self.end == next.start
            && self.prot == next.prot
            && self.kind == next.kind
            && match (&self.backing, &next.backing) {
                (None, None) => true,
                (Some(a), Some(b)) => *b == a.advanced(self.len()),
                _ => false,
            }
    }
}

/// The VMAs of one address space.
#[derive(Clone, Debug, Default)]
pub struct VmaSet {
    map: BTreeMap<u64, Vma>,
}

impl VmaSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// The VMA containing `addr`.
    pub fn find(&self, addr: u64) -> Option<&Vma> {
        self.map.range(..=addr).next_back().map(|(_, v)| v).filter(|v| addr < v.end)
    }

    /// True when any VMA overlaps `[start, end)`.
    pub fn overlaps(&self, start: u64, end: u64) -> bool {
        self.map.range(..end).next_back().is_some_and(|(_, v)| v.end > start)
    }

    /// Inserts `vma`; the range must be free (callers remove overlaps first). Merges with an
    /// adjacent VMA of equal prot and kind.
    pub fn insert(&mut self, vma: Vma) {
        debug_assert!(!self.overlaps(vma.start, vma.end));
        let mut v = vma;
        if let Some((&s, prev)) = self.map.range(..v.start).next_back()
            && prev.continues_into(&v) {
                v.start = s;
                v.backing = prev.backing.clone();
                self.map.remove(&s);
            }
        if let Some(next) = self.map.get(&v.end)
            && v.continues_into(next) {
                v.end = next.end;
                let k = next.start;
                self.map.remove(&k);
            }
        self.map.insert(v.start, v);
    }

    /// Removes `[start, end)` from the set, splitting VMAs that straddle it. Returns the
    /// removed pieces.
    pub fn remove(&mut self, start: u64, end: u64) -> Vec<Vma> {
        let mut removed = Vec::new();
        let keys: Vec<u64> = self
            .map
            .range(..end)
            .rev()
            .take_while(|(_, v)| v.end > start)
            .map(|(&k, _)| k)
            .collect();
        for k in keys {
            let Some(v) = self.map.remove(&k) else { continue };
            if v.start < start {
                self.map.insert(v.start, v.piece(v.start, start));
            }
            if v.end > end {
                self.map.insert(end, v.piece(end, v.end));
            }
            removed.push(v.piece(v.start.max(start), v.end.min(end)));
        }
        removed.sort_by_key(|v| v.start);
        removed
    }

    /// Sets `prot` on `[start, end)`, which must be fully covered by VMAs (else `false` and
    /// nothing changes, like Linux's ENOMEM). Returns the pieces as they were before.
    pub fn protect(&mut self, start: u64, end: u64, prot: u32) -> Option<Vec<Vma>> {
        if !self.covered(start, end) {
            return None;
        }
        let old = self.remove(start, end);
        for v in &old {
            self.insert(Vma { prot, ..v.clone() });
        }
        Some(old)
    }

    /// True when every byte of `[start, end)` is inside some VMA.
    pub fn covered(&self, start: u64, end: u64) -> bool {
        let mut at = start;
        while at < end {
            match self.find(at) {
                Some(v) => at = v.end,
                None => return false,
            }
        }
        true
    }

    /// Highest free range of `len` bytes, aligned to `align`, ending at or below `top` and
    /// starting at or above `bottom` (top-down search as Linux's default mmap layout).
    pub fn find_free_top_down(&self, len: u64, align: u64, bottom: u64, top: u64) -> Option<u64> {
        let mut hi = top;
        let mut iter = self.map.range(..top).rev().peekable();
        loop {
            // The gap is [lo, hi) where lo is the end of the next VMA below hi.
            let lo = iter.peek().map_or(bottom, |(_, v)| v.end.max(bottom));
            if hi >= lo + len {
                let cand = (hi - len) & !(align - 1);
                if cand >= lo {
                    return Some(cand);
                }
            }
            match iter.next() {
                Some((_, v)) => {
                    hi = hi.min(v.start);
                    if hi <= bottom {
                        return None;
                    }
                }
                None => return None,
            }
        }
    }

    /// Number of VMAs.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when the set has no VMA.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// True when removing `[start, end)` would split a VMA in two (one more VMA).
    pub fn splits(&self, start: u64, end: u64) -> bool {
        self.find(start).is_some_and(|v| v.start < start && v.end > end)
    }

    /// The VMAs overlapping `[start, end)`, highest first (a range query, not a scan).
    pub fn overlapping(&self, start: u64, end: u64) -> impl Iterator<Item = &Vma> {
        self.map.range(..end).rev().map(|(_, v)| v).take_while(move |v| v.end > start)
    }

    /// All VMAs in address order.
    pub fn iter(&self) -> impl Iterator<Item = &Vma> {
        self.map.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(start: u64, end: u64, prot: u32) -> Vma {
        Vma::new(start, end, prot, VmaKind::Anon)
    }

    #[test]
    fn find_and_merge() {
        let mut s = VmaSet::new();
        s.insert(v(0x1000, 0x3000, 3));
        s.insert(v(0x3000, 0x5000, 3));
        assert_eq!(s.iter().count(), 1, "adjacent equal VMAs merge");
        assert_eq!(s.find(0x4fff).map(|x| x.start), Some(0x1000));
        assert!(s.find(0x5000).is_none());
        assert!(s.find(0x0fff).is_none());
    }

    #[test]
    fn remove_splits() {
        let mut s = VmaSet::new();
        s.insert(v(0x1000, 0x9000, 3));
        let r = s.remove(0x3000, 0x4000);
        assert_eq!(r, [v(0x3000, 0x4000, 3)]);
        let left: alloc::vec::Vec<_> = s.iter().cloned().collect();
        assert_eq!(left, [v(0x1000, 0x3000, 3), v(0x4000, 0x9000, 3)]);
        assert!(!s.overlaps(0x3000, 0x4000));
        assert!(s.overlaps(0x2fff, 0x3001));
    }

    #[test]
    fn backed_vmas_split_and_merge_by_object_page() {
        let obj = crate::mm::pagecache::anon_object();
        let b = |pgoff| Some(Backing { obj: obj.clone(), pgoff, shared: true });
        let mut s = VmaSet::new();
        s.insert(Vma { backing: b(10), ..v(0x1000, 0x5000, 3) });
        let r = s.remove(0x2000, 0x3000);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].backing.as_ref().map(|x| x.pgoff), Some(11), "the removed piece starts at page 11");
        let right = s.find(0x3000).unwrap();
        assert_eq!(right.backing.as_ref().map(|x| x.pgoff), Some(12));
        assert_eq!(s.find(0x1000).unwrap().backing.as_ref().map(|x| x.pgoff), Some(10));
        // Putting page 11 back merges all three; a piece of another offset does not merge.
        s.insert(Vma { backing: b(11), ..v(0x2000, 0x3000, 3) });
        assert_eq!(s.len(), 1);
        s.insert(Vma { backing: b(99), ..v(0x5000, 0x6000, 3) });
        assert_eq!(s.len(), 2);
        s.insert(v(0x6000, 0x7000, 3));
        assert_eq!(s.len(), 3, "an anonymous VMA does not merge with a backed one");
        assert!(s.find(0x1000).unwrap().is_shared());
        assert_eq!(s.find(0x4000).unwrap().object_page(0x4000).map(|(_, pg)| pg), Some(13));
    }

    #[test]
    fn protect_requires_cover() {
        let mut s = VmaSet::new();
        s.insert(v(0x1000, 0x3000, 3));
        s.insert(v(0x4000, 0x6000, 3));
        assert!(s.protect(0x2000, 0x5000, 1).is_none(), "hole at 0x3000");
        let old = s.protect(0x2000, 0x3000, 1).unwrap();
        assert_eq!(old, [v(0x2000, 0x3000, 3)]);
        assert_eq!(s.find(0x2000).map(|x| x.prot), Some(1));
        assert_eq!(s.find(0x1000).map(|x| x.prot), Some(3));
    }

    #[test]
    fn top_down_gaps() {
        let mut s = VmaSet::new();
        s.insert(v(0x10_0000, 0x20_0000, 3));
        s.insert(v(0x30_0000, 0x40_0000, 3));
        assert_eq!(s.find_free_top_down(0x1000, 0x1000, 0x1_0000, 0x40_0000), Some(0x2f_f000));
        assert_eq!(s.find_free_top_down(0x10_0000, 0x1000, 0x1_0000, 0x40_0000), Some(0x20_0000));
        assert_eq!(s.find_free_top_down(0x10_0001, 0x1000, 0x1_0000, 0x40_0000), None);
        assert_eq!(s.find_free_top_down(0xf_0000, 0x1000, 0x1_0000, 0x40_0000), Some(0x21_0000));
        assert_eq!(s.find_free_top_down(0x100_0000, 0x1000, 0x1_0000, 0x40_0000), None);
    }
}
