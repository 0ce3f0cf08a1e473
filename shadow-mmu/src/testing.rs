//! Test and benchmark doubles: a `Vec<AtomicU64>`-backed [`GuestMemory`], a builder of guest
//! page tables in it, a counting no-op [`Mapper`] and a recording [`Mapper`] that models the
//! host mappings page by page. Used by this crate's tests and benches, and usable by H's.

use crate::error::MapperError;
use crate::mapper::Mapper;
use crate::memory::GuestMemory;
use crate::pte;
use guest_abi::PAGE_SIZE;
use guest_abi::mapper::{MapOp, MapOpKind};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

/// Guest memory of `size` bytes whose first `backed` bytes are real (`Vec<AtomicU64>`); the
/// rest reads as zero and cannot be written (compare-exchange reports `Err(0)`), which lets a
/// test have 1 GiB frames without allocating them.
#[derive(Debug)]
pub struct VecGuestMemory {
    words: Vec<AtomicU64>,
    size: u64,
}

impl VecGuestMemory {
    /// `size` bytes, all backed.
    pub fn new(size: u64) -> Self {
        Self::sparse(size, size)
    }

    /// `size` bytes, the first `backed` (rounded down to 8) backed.
    pub fn sparse(backed: u64, size: u64) -> Self {
        let backed = backed.min(size) / 8;
        Self { words: (0..backed).map(|_| AtomicU64::new(0)).collect(), size }
    }

    fn word(&self, gpa: u64) -> Option<Option<&AtomicU64>> {
        if !gpa.is_multiple_of(8) || gpa.checked_add(8)? > self.size {
            return None;
        }
        Some(usize::try_from(gpa / 8).ok().and_then(|i| self.words.get(i)))
    }

    /// Stores `value` at `gpa` (`Release`), as the guest kernel would. False if `gpa` is not
    /// a backed, aligned word.
    pub fn store_u64(&self, gpa: u64, value: u64) -> bool {
        match self.word(gpa) {
            Some(Some(w)) => {
                w.store(value, Ordering::Release);
                true
            }
            _ => false,
        }
    }
}

impl GuestMemory for VecGuestMemory {
    fn size(&self) -> u64 {
        self.size
    }

    fn load_u64(&self, gpa: u64) -> Option<u64> {
        Some(self.word(gpa)?.map_or(0, |w| w.load(Ordering::Acquire)))
    }

    fn compare_exchange_u64(&self, gpa: u64, current: u64, new: u64) -> Option<Result<u64, u64>> {
        Some(match self.word(gpa)? {
            Some(w) => w.compare_exchange(current, new, Ordering::AcqRel, Ordering::Acquire),
            None => Err(0),
        })
    }
}

/// Builds x86-64 4-level page tables in a [`VecGuestMemory`], allocating table pages from a
/// GPA range.
#[derive(Debug)]
pub struct PageTableBuilder<'a> {
    mem: &'a VecGuestMemory,
    next: u64,
    end: u64,
    root: u64,
}

/// Flags of the non-leaf entries the builder creates: present, writable, user.
pub const TABLE_FLAGS: u64 = pte::P | pte::RW | pte::US;

impl<'a> PageTableBuilder<'a> {
    /// A builder whose tables come from `tables_start .. tables_end` (page aligned, backed);
    /// allocates the root (PML4) first. `None` if the range cannot hold one table.
    pub fn new(mem: &'a VecGuestMemory, tables_start: u64, tables_end: u64) -> Option<Self> {
        let mut b = Self { mem, next: tables_start, end: tables_end, root: 0 };
        b.root = b.alloc_table()?;
        Some(b)
    }

    /// GPA of the PML4.
    pub fn root(&self) -> u64 {
        self.root
    }

    /// The memory.
    pub fn mem(&self) -> &'a VecGuestMemory {
        self.mem
    }

    /// A fresh zeroed table page, or `None` if the table range is exhausted.
    pub fn alloc_table(&mut self) -> Option<u64> {
        if self.next + PAGE_SIZE > self.end {
            return None;
        }
        let t = self.next;
        self.next += PAGE_SIZE;
        for i in 0..512 {
            self.mem.store_u64(t + i * 8, 0);
        }
        Some(t)
    }

    /// GPA of the entry for `gva` at `level` (4 = PML4E .. 1 = PTE), creating the tables above
    /// it (with [`TABLE_FLAGS`]) where an entry is not present or is a leaf. `None` if tables
    /// run out.
    pub fn entry_gpa(&mut self, gva: u64, level: u8) -> Option<u64> {
        let mut table = self.root;
        for l in (level + 1..=4).rev() {
            let e_gpa = table + pte::index(gva, l) * 8;
            let e = self.mem.load_u64(e_gpa)?;
            if e & pte::P == 0 || pte::is_leaf(e, l) {
                let t = self.alloc_table()?;
                self.mem.store_u64(e_gpa, t | TABLE_FLAGS);
                table = t;
            } else {
                table = e & pte::ADDR_MASK;
            }
        }
        Some(table + pte::index(gva, level) * 8)
    }

    /// Maps `gva` to `gpa` with a leaf at `level` (1: 4 KiB, 2: 2 MiB, 3: 1 GiB): writes
    /// `gpa | flags | P` (and PS for levels 2, 3). Returns the entry's GPA.
    pub fn map(&mut self, gva: u64, gpa: u64, level: u8, flags: u64) -> Option<u64> {
        let e_gpa = self.entry_gpa(gva, level)?;
        let ps = if level > 1 { pte::PS } else { 0 };
        self.mem.store_u64(e_gpa, gpa | flags | ps | pte::P);
        Some(e_gpa)
    }

    /// Reads the entry at `gpa`.
    pub fn get(&self, gpa: u64) -> u64 {
        self.mem.load_u64(gpa).unwrap_or(0)
    }

    /// Writes the entry at `gpa`.
    pub fn set(&self, gpa: u64, value: u64) {
        self.mem.store_u64(gpa, value);
    }
}

/// A no-op mapper that counts what it is asked to do (for benchmarks).
#[derive(Debug, Default)]
pub struct CountingMapper {
    /// Batches.
    pub calls: AtomicU64,
    /// Operations.
    pub ops: AtomicU64,
    /// 4 KiB pages covered by map operations.
    pub pages: AtomicU64,
}

impl Mapper for CountingMapper {
    fn apply(&self, ops: &[MapOp]) -> Result<(), MapperError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.ops.fetch_add(ops.len() as u64, Ordering::Relaxed);
        let pages: u64 = ops.iter().filter(|o| o.kind == MapOpKind::Map as u32).map(|o| o.len / PAGE_SIZE).sum();
        self.pages.fetch_add(pages, Ordering::Relaxed);
        Ok(())
    }
}

/// One mapped range of the [`RecordingMapper`] model: pages `start .. end` at GPA
/// `gpa + (x - start)` with `prot`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// First GVA.
    pub start: u64,
    /// One past the last GVA.
    pub end: u64,
    /// GPA of `start`.
    pub gpa: u64,
    /// `PROT_*` bits.
    pub prot: u32,
}

#[derive(Debug, Default)]
struct Model {
    /// Host mappings by start GVA, never overlapping (not merged: split on every change).
    segs: BTreeMap<u64, Segment>,
    /// Every operation applied, in order.
    log: Vec<MapOp>,
}

impl Model {
    /// Cuts the segments so that no segment crosses `at`.
    fn cut(&mut self, at: u64) {
        if let Some((&k, &s)) = self.segs.range(..at).next_back()
            && s.end > at
        {
            self.segs.insert(k, Segment { end: at, ..s });
            self.segs.insert(at, Segment { start: at, end: s.end, gpa: s.gpa + (at - s.start), prot: s.prot });
        }
    }

    fn unmap(&mut self, start: u64, end: u64) {
        self.cut(start);
        self.cut(end);
        let keys: Vec<u64> = self.segs.range(start..end).map(|(&k, _)| k).collect();
        for k in keys {
            self.segs.remove(&k);
        }
    }
}

/// A mapper that models the host mappings of one process page by page (`mmap MAP_FIXED`
/// replaces, `munmap` removes, `mprotect` changes protection of mapped pages), logs every
/// operation, and can be told to fail.
#[derive(Debug, Default)]
pub struct RecordingMapper {
    model: Mutex<Model>,
    fail_errno: AtomicI32,
}

impl RecordingMapper {
    /// An empty model.
    pub fn new() -> Self {
        Self::default()
    }

    fn model(&self) -> std::sync::MutexGuard<'_, Model> {
        self.model.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes the next batch fail at its first operation with `errno` (applying nothing).
    pub fn fail_next(&self, errno: i32) {
        self.fail_errno.store(errno, Ordering::Relaxed);
    }

    /// Mapping of the page containing `gva`: (GPA of that page, prot).
    pub fn lookup(&self, gva: u64) -> Option<(u64, u32)> {
        let page = gva & !(PAGE_SIZE - 1);
        let m = self.model();
        let (_, s) = m.segs.range(..=page).next_back()?;
        (s.end > page).then(|| (s.gpa + (page - s.start), s.prot))
    }

    /// The mapped segments, in GVA order (split wherever operations cut them).
    pub fn segments(&self) -> Vec<Segment> {
        self.model().segs.values().copied().collect()
    }

    /// Number of mapped 4 KiB pages.
    pub fn mapped_pages(&self) -> u64 {
        self.model().segs.values().map(|s| (s.end - s.start) / PAGE_SIZE).sum()
    }

    /// VMAs Linux would have: maximal runs of mapped pages with contiguous GVA, contiguous
    /// GPA and equal prot.
    pub fn vma_count(&self) -> u64 {
        let mut count = 0;
        let mut prev: Option<Segment> = None;
        for s in self.model().segs.values() {
            let joins = prev.is_some_and(|p| p.end == s.start && p.gpa + (p.end - p.start) == s.gpa && p.prot == s.prot);
            if !joins {
                count += 1;
            }
            prev = Some(*s);
        }
        count
    }

    /// Takes the log of operations applied so far.
    pub fn take_log(&self) -> Vec<MapOp> {
        std::mem::take(&mut self.model().log)
    }
}

impl Mapper for RecordingMapper {
    fn apply(&self, ops: &[MapOp]) -> Result<(), MapperError> {
        let errno = self.fail_errno.swap(0, Ordering::Relaxed);
        if errno != 0 {
            return Err(MapperError { failed_index: 0, errno });
        }
        let mut m = self.model();
        for (i, op) in ops.iter().enumerate() {
            let aligned = op.addr.is_multiple_of(PAGE_SIZE) && op.len.is_multiple_of(PAGE_SIZE) && op.len > 0;
            let in_user = op.addr >= guest_abi::layout::USER_START
                && op.addr.checked_add(op.len).is_some_and(|e| e <= guest_abi::layout::USER_END);
            if !aligned || !in_user {
                return Err(MapperError { failed_index: i, errno: 22 });
            }
            let (start, end) = (op.addr, op.addr + op.len);
            match op.kind {
                k if k == MapOpKind::Map as u32 => {
                    if !op.offset.is_multiple_of(PAGE_SIZE) {
                        return Err(MapperError { failed_index: i, errno: 22 });
                    }
                    m.unmap(start, end);
                    m.segs.insert(start, Segment { start, end, gpa: op.offset, prot: op.prot });
                }
                k if k == MapOpKind::Unmap as u32 => m.unmap(start, end),
                k if k == MapOpKind::Protect as u32 => {
                    m.cut(start);
                    m.cut(end);
                    for s in m.segs.range_mut(start..end).map(|(_, s)| s) {
                        s.prot = op.prot;
                    }
                }
                _ => return Err(MapperError { failed_index: i, errno: 22 }),
            }
            m.log.push(*op);
        }
        Ok(())
    }
}
