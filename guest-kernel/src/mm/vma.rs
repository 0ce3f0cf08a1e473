//! Virtual memory areas of one address space: page-aligned, non-overlapping `[start, end)`
//! ranges with Linux `PROT_*` permissions, kept in a `BTreeMap` keyed by start. Splitting on
//! partial unmap/protect follows Linux `mm/mmap.c` semantics. Pure bookkeeping: the page
//! tables and frames are handled by `space`.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

/// What backs a VMA (file mappings are private copies made at mmap time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmaKind {
    /// Anonymous memory (zero-filled on demand), also ELF segments and private file copies.
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

/// One area.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vma {
    /// First byte (page aligned).
    pub start: u64,
    /// One past the last byte (page aligned).
    pub end: u64,
    /// `PROT_READ | PROT_WRITE | PROT_EXEC` bits.
    pub prot: u32,
    /// Backing kind.
    pub kind: VmaKind,
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
            && prev.end == v.start && prev.prot == v.prot && prev.kind == v.kind {
                v.start = s;
                self.map.remove(&s);
            }
        if let Some(next) = self.map.get(&v.end).copied()
            && next.prot == v.prot && next.kind == v.kind {
                self.map.remove(&next.start);
                v.end = next.end;
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
                self.map.insert(v.start, Vma { end: start, ..v });
            }
            if v.end > end {
                self.map.insert(end, Vma { start: end, ..v });
            }
            removed.push(Vma { start: v.start.max(start), end: v.end.min(end), ..v });
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
            self.insert(Vma { prot, ..*v });
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

    /// All VMAs in address order.
    pub fn iter(&self) -> impl Iterator<Item = &Vma> {
        self.map.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(start: u64, end: u64, prot: u32) -> Vma {
        Vma { start, end, prot, kind: VmaKind::Anon }
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
        let left: alloc::vec::Vec<_> = s.iter().copied().collect();
        assert_eq!(left, [v(0x1000, 0x3000, 3), v(0x4000, 0x9000, 3)]);
        assert!(!s.overlaps(0x3000, 0x4000));
        assert!(s.overlaps(0x2fff, 0x3001));
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
