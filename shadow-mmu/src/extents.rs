//! An interval map of host mappings (GVA range -> GPA offset and protection), kept canonical:
//! extents never overlap, and touching extents that Linux would merge into one VMA (same
//! protection, contiguous GPA, i.e. contiguous offset in the same memfd) are merged, so the
//! number of extents is the number of VMAs they would form (mm/vma.c, `vma_merge`).

use std::collections::BTreeMap;

/// One mapped range `start .. end` (GVA, bytes) whose first byte is at GPA `gpa`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Extent {
    pub start: u64,
    pub end: u64,
    pub gpa: u64,
    pub prot: u32,
}

impl Extent {
    /// GPA one past the end of the extent.
    pub fn gpa_end(&self) -> u64 {
        self.gpa + (self.end - self.start)
    }

    /// Whether `next` continues `self` into one VMA.
    fn merges_with(&self, next: &Extent) -> bool {
        self.end == next.start && self.gpa_end() == next.gpa && self.prot == next.prot
    }
}

/// The extent set. Keys are start GVAs.
#[derive(Debug, Default)]
pub(crate) struct ExtentSet {
    map: BTreeMap<u64, Extent>,
}

impl ExtentSet {
    /// Number of extents (= VMAs they form on their own).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// First extent, if any.
    pub fn first(&self) -> Option<&Extent> {
        self.map.values().next()
    }

    /// Last extent, if any.
    pub fn last(&self) -> Option<&Extent> {
        self.map.values().next_back()
    }

    /// Extents overlapping `start .. end`, in order, clipped to it.
    pub fn overlapping(&self, start: u64, end: u64) -> impl Iterator<Item = Extent> + '_ {
        let before = self.map.range(..start).next_back().map(|(_, e)| *e);
        before
            .into_iter()
            .chain(self.map.range(start..end).map(|(_, e)| *e))
            .filter(move |e| e.end > start && e.start < end)
            .map(move |e| {
                let s = e.start.max(start);
                Extent { start: s, end: e.end.min(end), gpa: e.gpa + (s - e.start), prot: e.prot }
            })
    }

    /// Whether every byte of `start .. end` is mapped at GPA `gpa + (x - start)` with `prot`.
    pub fn covers(&self, start: u64, end: u64, gpa: u64, prot: u32) -> bool {
        let mut at = start;
        for e in self.overlapping(start, end) {
            if e.start != at || e.prot != prot || e.gpa != gpa + (at - start) {
                return false;
            }
            at = e.end;
        }
        at >= end
    }

    /// Removes `start .. end` from the set, splitting extents that straddle its ends.
    pub fn remove(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        if let Some((&k, &e)) = self.map.range(..start).next_back()
            && e.end > start
        {
            self.map.insert(k, Extent { end: start, ..e });
            if e.end > end {
                let tail_gpa = e.gpa + (end - e.start);
                self.map.insert(end, Extent { start: end, end: e.end, gpa: tail_gpa, prot: e.prot });
            }
        }
        let inside: Vec<u64> = self.map.range(start..end).map(|(&k, _)| k).collect();
        for k in inside {
            if let Some(e) = self.map.remove(&k)
                && e.end > end
            {
                let tail_gpa = e.gpa + (end - e.start);
                self.map.insert(end, Extent { start: end, end: e.end, gpa: tail_gpa, prot: e.prot });
            }
        }
    }

    /// Records `start .. end` as mapped at `gpa` with `prot`, replacing what was there
    /// (`MAP_FIXED` semantics), and merges it with its neighbours where Linux would.
    pub fn insert(&mut self, start: u64, end: u64, gpa: u64, prot: u32) {
        if start >= end {
            return;
        }
        self.remove(start, end);
        let mut new = Extent { start, end, gpa, prot };
        if let Some((&k, &prev)) = self.map.range(..start).next_back()
            && prev.merges_with(&new)
        {
            new.start = prev.start;
            new.gpa = prev.gpa;
            self.map.remove(&k);
        }
        if let Some(next) = self.map.get(&end).copied()
            && new.merges_with(&next)
        {
            self.map.remove(&end);
            new.end = next.end;
        }
        self.map.insert(new.start, new);
    }

    /// All extents, in order.
    #[cfg(test)]
    pub fn iter(&self) -> impl Iterator<Item = &Extent> {
        self.map.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    const PG: u64 = 4096;

    #[test]
    fn insert_merges_and_remove_splits() {
        let mut s = ExtentSet::default();
        s.insert(0, 2 * PG, 100 * PG, 1);
        s.insert(2 * PG, 4 * PG, 102 * PG, 1);
        assert_eq!(s.len(), 1);
        s.insert(4 * PG, 5 * PG, 104 * PG, 3);
        assert_eq!(s.len(), 2, "different prot does not merge");
        s.insert(5 * PG, 6 * PG, 900 * PG, 3);
        assert_eq!(s.len(), 3, "discontiguous GPA does not merge");
        s.remove(PG, 3 * PG);
        let v: Vec<_> = s.iter().copied().collect();
        assert_eq!(v[0], Extent { start: 0, end: PG, gpa: 100 * PG, prot: 1 });
        assert_eq!(v[1], Extent { start: 3 * PG, end: 4 * PG, gpa: 103 * PG, prot: 1 });
        assert!(s.covers(3 * PG, 4 * PG, 103 * PG, 1));
        assert!(!s.covers(2 * PG, 4 * PG, 102 * PG, 1));
        assert!(!s.covers(3 * PG, 4 * PG, 103 * PG, 3));
        s.insert(PG, 3 * PG, 101 * PG, 1);
        assert_eq!(s.len(), 3, "refilling the hole merges both sides");
        assert!(s.covers(0, 4 * PG, 100 * PG, 1));
    }

    #[derive(Clone, Debug)]
    enum Op {
        Insert(u64, u64, u64, u32),
        Remove(u64, u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u64..64, 1u64..8, 0u64..16, 1u32..3).prop_map(|(s, n, g, p)| Op::Insert(s, s + n, g, p)),
            (0u64..64, 1u64..16).prop_map(|(s, n)| Op::Remove(s, s + n)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// The set agrees with a page-by-page model, and its length is the number of
        /// maximal mergeable runs of that model.
        #[test]
        fn matches_page_model(ops in proptest::collection::vec(op(), 1..40)) {
            let mut s = ExtentSet::default();
            let mut model: BTreeMap<u64, (u64, u32)> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Insert(a, b, g, p) => {
                        s.insert(a * PG, b * PG, g * PG, p);
                        for (i, page) in (a..b).enumerate() {
                            model.insert(page, (g + i as u64, p));
                        }
                    }
                    Op::Remove(a, b) => {
                        s.remove(a * PG, b * PG);
                        for page in a..b {
                            model.remove(&page);
                        }
                    }
                }
                let mut pages = BTreeMap::new();
                for e in s.iter() {
                    prop_assert!(e.start < e.end);
                    for (i, page) in (e.start / PG..e.end / PG).enumerate() {
                        prop_assert!(pages.insert(page, (e.gpa / PG + i as u64, e.prot)).is_none());
                    }
                }
                prop_assert_eq!(&pages, &model);
                let mut runs = 0;
                let mut prev: Option<(u64, u64, u32)> = None;
                for (&page, &(g, p)) in &model {
                    if prev != Some((page.wrapping_sub(1), g.wrapping_sub(1), p)) {
                        runs += 1;
                    }
                    prev = Some((page, g, p));
                }
                prop_assert_eq!(s.len(), runs);
            }
        }
    }
}
