//! Walker and fill semantics of `ShadowSpace::fault`, `prefault` and `flush`, checked against
//! hand-built guest page tables (Intel SDM vol. 3A, 4.5 - 4.8).

use guest_abi::layout::{USER_END, USER_START};
use guest_abi::mapper::{MapOp, MapOpKind, PROT_EXEC, PROT_READ, PROT_WRITE};
use guest_abi::pvcs::pf_error::{FETCH, PRESENT, RSVD, USER, WRITE};
use shadow_mmu::pte::{A, D, NX, P, PS, RW, US};
use shadow_mmu::testing::{PageTableBuilder, RecordingMapper, VecGuestMemory};
use shadow_mmu::{FaultOutcome, GuestMemory, ShadowConfig, ShadowError, ShadowSpace};
use std::sync::atomic::{AtomicU32, Ordering};

const KIB4: u64 = 4096;
const MIB2: u64 = 2 << 20;
const GIB: u64 = 1 << 30;
/// Guest memory: 4 GiB, of which the first 8 MiB are backed (page tables live there).
fn mem() -> VecGuestMemory {
    VecGuestMemory::sparse(8 << 20, 4 * GIB)
}
fn builder(mem: &VecGuestMemory) -> PageTableBuilder<'_> {
    PageTableBuilder::new(mem, 1 << 20, 8 << 20).unwrap()
}
fn no_prefault() -> ShadowConfig {
    ShadowConfig { prefault_pages: 0, ..ShadowConfig::default() }
}
fn map_op(addr: u64, len: u64, offset: u64, prot: u32) -> MapOp {
    MapOp { kind: MapOpKind::Map as u32, prot, addr, len, offset }
}
fn unmap_op(addr: u64, len: u64) -> MapOp {
    MapOp { kind: MapOpKind::Unmap as u32, prot: 0, addr, len, offset: 0 }
}
const R: u32 = PROT_READ;
const RW_: u32 = PROT_READ | PROT_WRITE;
const RX: u32 = PROT_READ | PROT_EXEC;
const RWX: u32 = PROT_READ | PROT_WRITE | PROT_EXEC;
const GVA: u64 = 0x40_0000 + 5 * KIB4;
const FRAME: u64 = 0x100_0000;

/// GPAs of the four entries (PML4E .. PTE) translating `gva`, from the builder's tables.
fn path(b: &mut PageTableBuilder<'_>, gva: u64) -> [u64; 4] {
    [b.entry_gpa(gva, 4).unwrap(), b.entry_gpa(gva, 3).unwrap(), b.entry_gpa(gva, 2).unwrap(), b.entry_gpa(gva, 1).unwrap()]
}

/// The PTE translating `gva`.
fn leaf(b: &mut PageTableBuilder<'_>, gva: u64) -> u64 {
    let e = b.entry_gpa(gva, 1).unwrap();
    b.get(e)
}

#[test]
fn read_fault_maps_read_only_until_dirty_and_sets_accessed() {
    let mem = mem();
    let mut b = builder(&mem);
    b.map(GVA, FRAME, 1, RW | US).unwrap();
    let s = ShadowSpace::new(b.root(), RecordingMapper::new(), no_prefault());
    assert_eq!(s.fault(&mem, GVA + 0x123, USER).unwrap(), FaultOutcome::Filled { pages: 1 });
    assert_eq!(s.mapper().take_log(), [map_op(GVA, KIB4, FRAME, RX)]);
    for e in path(&mut b, GVA) {
        assert_ne!(b.get(e) & A, 0, "Accessed set on every level");
    }
    assert_eq!(leaf(&mut b, GVA) & D, 0, "no Dirty without a write");
    assert_eq!(s.fault(&mem, GVA, USER | WRITE | PRESENT).unwrap(), FaultOutcome::Filled { pages: 1 });
    assert_eq!(s.mapper().take_log(), [map_op(GVA, KIB4, FRAME, RWX)]);
    assert_ne!(leaf(&mut b, GVA) & D, 0, "Dirty set before mapping writable");
    let st = s.stats();
    assert_eq!((st.faults, st.fills, st.injects, st.map_ops, st.vmas_current), (2, 2, 0, 2, 1));
}

#[test]
fn dirty_leaf_maps_writable_on_read() {
    let mem = mem();
    let mut b = builder(&mem);
    b.map(GVA, FRAME, 1, RW | US | D | NX).unwrap();
    let s = ShadowSpace::new(b.root(), RecordingMapper::new(), no_prefault());
    s.fault(&mem, GVA, USER).unwrap();
    assert_eq!(s.mapper().take_log(), [map_op(GVA, KIB4, FRAME, RW_)]);
}

#[test]
fn large_leaves_are_one_op() {
    let mem = mem();
    let mut b = builder(&mem);
    let g2 = 2 * GIB + 0x60_0000;
    b.map(g2, 0x20_0000, 2, RW | US).unwrap();
    let g1 = GIB;
    b.map(g1, 2 * GIB, 3, US | NX).unwrap();
    b.map(0, GIB, 3, US).unwrap();
    let s = ShadowSpace::new(b.root(), RecordingMapper::new(), ShadowConfig::default());
    assert_eq!(s.fault(&mem, g2 + 0x1234, USER | WRITE).unwrap(), FaultOutcome::Filled { pages: 512 });
    assert_eq!(s.mapper().take_log(), [map_op(g2, MIB2, 0x20_0000, RWX)]);
    assert_eq!(s.fault(&mem, g1 + 0x3456_7000, USER).unwrap(), FaultOutcome::Filled { pages: GIB / KIB4 });
    assert_eq!(s.mapper().take_log(), [map_op(g1, GIB, 2 * GIB, R)]);
    // A 1 GiB leaf at GVA 0 is clipped to the user range.
    s.fault(&mem, USER_START + 0x5000, USER | FETCH).unwrap();
    assert_eq!(s.mapper().take_log(), [map_op(USER_START, GIB - USER_START, GIB + USER_START, RX)]);
    assert_eq!(s.stats().vmas_current, 3);
    assert_eq!(s.mapper().vma_count(), 3);
}

#[test]
fn each_permission_bit_at_each_level() {
    for level in 0..4 {
        for (bit, set) in [(US, false), (RW, false), (NX, true)] {
            let mem = mem();
            let mut b = builder(&mem);
            b.map(GVA, FRAME, 1, RW | US | D).unwrap();
            let e = path(&mut b, GVA)[level];
            b.set(e, if set { b.get(e) | bit } else { b.get(e) & !bit });
            let s = ShadowSpace::new(b.root(), RecordingMapper::new(), no_prefault());
            let what = format!("bit {bit:#x} at path step {level}");
            match bit {
                US => {
                    for access in [USER, USER | WRITE, USER | FETCH] {
                        assert_eq!(
                            s.fault(&mem, GVA, access).unwrap(),
                            FaultOutcome::Inject { error_code: access | PRESENT },
                            "{what}"
                        );
                    }
                    assert_eq!(s.prefault(&mem, GVA, KIB4).unwrap(), 0, "{what}");
                    assert!(s.mapper().take_log().is_empty(), "{what}");
                    assert_eq!(leaf(&mut b, GVA) & A, 0, "{what}: no Accessed on failure");
                }
                RW => {
                    assert_eq!(
                        s.fault(&mem, GVA, USER | WRITE).unwrap(),
                        FaultOutcome::Inject { error_code: USER | WRITE | PRESENT },
                        "{what}"
                    );
                    s.fault(&mem, GVA, USER).unwrap();
                    assert_eq!(s.mapper().take_log(), [map_op(GVA, KIB4, FRAME, RX)], "{what}");
                }
                _ => {
                    assert_eq!(
                        s.fault(&mem, GVA, USER | FETCH).unwrap(),
                        FaultOutcome::Inject { error_code: USER | FETCH | PRESENT },
                        "{what}"
                    );
                    s.fault(&mem, GVA, USER | WRITE).unwrap();
                    assert_eq!(s.mapper().take_log(), [map_op(GVA, KIB4, FRAME, RW_)], "{what}");
                }
            }
        }
    }
}

#[test]
fn not_present_at_each_level_injects_without_present_bit() {
    for level in 0..4 {
        let mem = mem();
        let mut b = builder(&mem);
        b.map(GVA, FRAME, 1, RW | US).unwrap();
        let e = path(&mut b, GVA)[level];
        b.set(e, b.get(e) & !P);
        let s = ShadowSpace::new(b.root(), RecordingMapper::new(), ShadowConfig::default());
        assert_eq!(s.fault(&mem, GVA, USER | WRITE).unwrap(), FaultOutcome::Inject { error_code: USER | WRITE });
        assert!(s.mapper().take_log().is_empty());
    }
}

#[test]
fn reserved_bits_and_out_of_memory_gpas_inject_rsvd() {
    let rsvd = FaultOutcome::Inject { error_code: USER | PRESENT | RSVD };
    // (path step, value transform)
    type Corrupt = fn(u64) -> u64;
    let cases: [(usize, Corrupt); 6] = [
        (0, |e| e | PS),                             // PS in a PML4E
        (1, |e| (e & !0x000f_ffff_ffff_f000) | PS | GIB | (1 << 13)), // 1 GiB leaf, bit 13
        (2, |e| (e & !0x000f_ffff_ffff_f000) | PS | MIB2 | (1 << 20)), // 2 MiB leaf, bit 20
        (2, |e| (e & !0x000f_ffff_ffff_f000) | (8 * GIB)),             // next table beyond memory
        (3, |e| (e & !0x000f_ffff_ffff_f000) | (4 * GIB)),             // frame beyond memory
        (1, |e| (e & !0x000f_ffff_ffff_f000) | PS | (4 * GIB - GIB / 2)), // misaligned 1 GiB frame
    ];
    for (i, (step, f)) in cases.into_iter().enumerate() {
        let mem = mem();
        let mut b = builder(&mem);
        b.map(GVA, FRAME, 1, RW | US).unwrap();
        let e = path(&mut b, GVA)[step];
        b.set(e, f(b.get(e)));
        let s = ShadowSpace::new(b.root(), RecordingMapper::new(), ShadowConfig::default());
        assert_eq!(s.fault(&mem, GVA, USER).unwrap(), rsvd, "case {i}");
        assert_eq!(s.prefault(&mem, 0, 1 << 40).unwrap(), 0, "case {i}");
        assert!(s.mapper().take_log().is_empty(), "case {i}");
    }
    // A root outside guest memory.
    let mem = mem();
    let s = ShadowSpace::new(16 * GIB, RecordingMapper::new(), ShadowConfig::default());
    assert_eq!(s.fault(&mem, GVA, USER).unwrap(), rsvd);
}

#[test]
fn addresses_outside_the_user_range_are_never_mapped() {
    let mem = mem();
    let mut b = builder(&mem);
    b.map(0, 0, 2, RW | US | D).unwrap();
    b.map(USER_END, FRAME, 1, RW | US | D).unwrap();
    b.map(USER_END - KIB4, FRAME, 1, RW | US | D).unwrap();
    let s = ShadowSpace::new(b.root(), RecordingMapper::new(), ShadowConfig::default());
    for gva in [0, USER_START - 1, USER_END, USER_END + 0x1000, 0x8000_0000_0000, 0xffff_8000_0000_0000, u64::MAX] {
        assert_eq!(s.fault(&mem, gva, USER | WRITE).unwrap(), FaultOutcome::Inject { error_code: USER | WRITE }, "{gva:#x}");
    }
    assert!(s.mapper().take_log().is_empty());
    // Prefault over everything maps only the user parts: the 2 MiB leaf at 0 from USER_START
    // on, and the last user page (its table's next entry is USER_END, outside).
    let pages = s.prefault(&mem, 0, u64::MAX).unwrap();
    assert_eq!(
        s.mapper().take_log(),
        [map_op(USER_START, MIB2 - USER_START, USER_START, RWX), map_op(USER_END - KIB4, KIB4, FRAME, RWX)]
    );
    assert_eq!(pages, (MIB2 - USER_START) / KIB4 + 1);
    s.flush(0, u64::MAX).unwrap();
    assert_eq!(s.mapper().take_log(), [unmap_op(USER_START, MIB2 - USER_START), unmap_op(USER_END - KIB4, KIB4)]);
    assert_eq!(s.stats().vmas_current, 0);
}

#[test]
fn coalescing_and_prefault_budget() {
    let mem = mem();
    let mut b = builder(&mem);
    let base = 0x80_0000; // region 4
    // 0..100 contiguous at FRAME, 100..200 contiguous elsewhere, 200..210 scattered,
    // 300 read-only, 301 kernel-only.
    for i in 0..100 {
        b.map(base + i * KIB4, FRAME + i * KIB4, 1, RW | US | D).unwrap();
    }
    for i in 100..200 {
        b.map(base + i * KIB4, 2 * FRAME + i * KIB4, 1, RW | US | D).unwrap();
    }
    for i in 200..210 {
        b.map(base + i * KIB4, 3 * FRAME + i * 2 * KIB4, 1, RW | US | D).unwrap();
    }
    b.map(base + 300 * KIB4, FRAME, 1, US).unwrap();
    b.map(base + 301 * KIB4, FRAME, 1, RW).unwrap();
    let cfg = |prefault_pages, coalesce| ShadowConfig { prefault_pages, coalesce, ..ShadowConfig::default() };

    let s = ShadowSpace::new(b.root(), RecordingMapper::new(), cfg(0, true));
    assert_eq!(s.fault(&mem, base + 50 * KIB4, USER).unwrap(), FaultOutcome::Filled { pages: 100 });
    assert_eq!(s.mapper().take_log(), [map_op(base, 100 * KIB4, FRAME, RWX)]);

    let s = ShadowSpace::new(b.root(), RecordingMapper::new(), cfg(0, false));
    s.fault(&mem, base + 50 * KIB4, USER).unwrap();
    assert_eq!(s.mapper().take_log(), [map_op(base + 50 * KIB4, KIB4, FRAME + 50 * KIB4, RWX)]);

    // Budget 16: the run, then 16 forward entries (one coalesced op).
    let s = ShadowSpace::new(b.root(), RecordingMapper::new(), cfg(16, true));
    assert_eq!(s.fault(&mem, base + 50 * KIB4, USER).unwrap(), FaultOutcome::Filled { pages: 116 });
    assert_eq!(
        s.mapper().take_log(),
        [map_op(base, 100 * KIB4, FRAME, RWX), map_op(base + 100 * KIB4, 16 * KIB4, 2 * FRAME + 100 * KIB4, RWX)]
    );
    // Scattered frames: one op each; read-only and kernel-only entries at the end.
    let s = ShadowSpace::new(b.root(), RecordingMapper::new(), cfg(12, true));
    assert_eq!(s.fault(&mem, base + 205 * KIB4, USER).unwrap(), FaultOutcome::Filled { pages: 13 });
    let log = s.mapper().take_log();
    let addrs: Vec<u64> = log.iter().map(|o| (o.addr - base) / KIB4).collect();
    assert_eq!(addrs, [198, 200, 201, 202, 203, 204, 205, 206, 207, 208, 209, 300]);
    assert_eq!(log.iter().find(|o| o.addr == base + 300 * KIB4).map(|o| o.prot), Some(RX));
    assert_eq!(log.iter().find(|o| o.addr == base + 198 * KIB4).map(|o| o.len), Some(2 * KIB4), "198..200 backward run");
    assert_eq!(s.stats().vmas_current, s.mapper().vma_count());
    // Neighbours got Accessed, the kernel-only entry did not.
    assert_ne!(leaf(&mut b, base + 300 * KIB4) & A, 0);
    assert_eq!(leaf(&mut b, base + 301 * KIB4) & A, 0);
}

#[test]
fn neighbours_without_dirty_map_read_only() {
    let mem = mem();
    let mut b = builder(&mem);
    for i in 0..4 {
        b.map(GVA + i * KIB4, FRAME + i * KIB4, 1, RW | US | NX).unwrap();
    }
    let s = ShadowSpace::new(b.root(), RecordingMapper::new(), ShadowConfig::default());
    s.fault(&mem, GVA + KIB4, USER | WRITE).unwrap();
    let mut log = s.mapper().take_log();
    log.sort_by_key(|o| o.addr);
    assert_eq!(
        log,
        [
            map_op(GVA, KIB4, FRAME, R),
            map_op(GVA + KIB4, KIB4, FRAME + KIB4, RW_),
            map_op(GVA + 2 * KIB4, 2 * KIB4, FRAME + 2 * KIB4, R),
        ]
    );
    assert_eq!(leaf(&mut b, GVA + 2 * KIB4) & D, 0, "no speculative Dirty");
}

#[test]
fn flush_unmaps_only_what_is_mapped_and_vmas_follow() {
    let mem = mem();
    let mut b = builder(&mem);
    let base = 0x40_0000;
    for i in 0..1024 {
        b.map(base + i * KIB4, FRAME + i * KIB4, 1, RW | US | D).unwrap();
    }
    let s = ShadowSpace::new(b.root(), RecordingMapper::new(), ShadowConfig::default());
    assert_eq!(s.prefault(&mem, base, 4 * MIB2).unwrap(), 1024);
    assert_eq!(s.mapper().take_log(), [map_op(base, MIB2, FRAME, RWX), map_op(base + MIB2, MIB2, FRAME + MIB2, RWX)]);
    assert_eq!((s.stats().vmas_current, s.mapper().vma_count()), (1, 1), "merged across the region boundary");
    s.flush(base + 7 * KIB4 + 5, 1).unwrap();
    assert_eq!(s.mapper().take_log(), [unmap_op(base + 7 * KIB4, KIB4)]);
    assert_eq!((s.stats().vmas_current, s.mapper().vma_count()), (2, 2));
    s.flush(base + 7 * KIB4, KIB4).unwrap();
    s.flush(base + 8 * MIB2, 100 * MIB2).unwrap();
    assert!(s.mapper().take_log().is_empty(), "nothing mapped there: no mapper call");
    s.flush(base + MIB2 - KIB4, 2 * KIB4).unwrap();
    assert_eq!(s.mapper().take_log(), [unmap_op(base + MIB2 - KIB4, 2 * KIB4)]);
    assert_eq!((s.stats().vmas_current, s.mapper().vma_count()), (3, 3));
    s.flush_all().unwrap();
    assert_eq!(s.mapper().mapped_pages(), 0);
    assert_eq!(s.stats().vmas_current, 0);
    assert_eq!(s.stats().vmas_peak, 3);
}

#[test]
fn flush_ranges_unmaps_many_ranges_in_one_batch() {
    let mem = mem();
    let mut b = builder(&mem);
    let base = 0x40_0000;
    for i in 0..1024 {
        b.map(base + i * KIB4, FRAME + i * KIB4, 1, RW | US | D).unwrap();
    }
    let s = ShadowSpace::new(b.root(), RecordingMapper::new(), ShadowConfig::default());
    assert_eq!(s.prefault(&mem, base, 4 * MIB2).unwrap(), 1024);
    s.mapper().take_log();
    // Unsorted, overlapping and adjacent ranges, one outside anything mapped.
    let ranges = [
        (base + MIB2 + 3 * KIB4, KIB4),
        (base + KIB4, 2 * KIB4),
        (base + 2 * KIB4, 2 * KIB4),
        (base + MIB2 - KIB4, KIB4),
        (base + 9 * MIB2, MIB2),
        (base + MIB2, KIB4),
    ];
    s.flush_ranges(&ranges).unwrap();
    assert_eq!(
        s.mapper().take_log(),
        [unmap_op(base + KIB4, 3 * KIB4), unmap_op(base + MIB2 - KIB4, 2 * KIB4), unmap_op(base + MIB2 + 3 * KIB4, KIB4)],
        "one batch, ascending, merged, nothing unmapped twice"
    );
    assert_eq!(s.mapper().mapped_pages(), 1024 - 6);
    assert_eq!(s.stats().vmas_current, s.mapper().vma_count());
    s.flush_ranges(&ranges).unwrap();
    assert!(s.mapper().take_log().is_empty(), "already unmapped: no mapper call");
}

#[test]
fn prefault_walks_mixed_directories() {
    let mem = mem();
    let mut b = builder(&mem);
    let base = GIB; // PD: [2 MiB leaf, table with 3 pages, not present, 2 MiB leaf (no D)]
    b.map(base, 0x40_0000, 2, RW | US | D).unwrap();
    for i in [0u64, 1, 511] {
        b.map(base + MIB2 + i * KIB4, FRAME + i * KIB4, 1, RW | US | D).unwrap();
    }
    b.map(base + 3 * MIB2, 0x60_0000, 2, RW | US).unwrap();
    let s = ShadowSpace::new(b.root(), RecordingMapper::new(), ShadowConfig::default());
    assert_eq!(s.prefault(&mem, base + 0x1000, 4 * MIB2).unwrap(), 512 + 3 + 512);
    assert_eq!(
        s.mapper().take_log(),
        [
            map_op(base, MIB2, 0x40_0000, RWX),
            map_op(base + MIB2, 2 * KIB4, FRAME, RWX),
            map_op(base + 2 * MIB2 - KIB4, KIB4, FRAME + 511 * KIB4, RWX),
            map_op(base + 3 * MIB2, MIB2, 0x60_0000, RX),
        ]
    );
    assert_eq!(s.prefault(&mem, base, 4 * MIB2).unwrap(), 0, "already mapped identically");
}

/// Guest memory that makes the guest "win" the first `n` compare-exchanges of the walk.
struct Racy<'a> {
    inner: &'a VecGuestMemory,
    n: AtomicU32,
}

impl GuestMemory for Racy<'_> {
    fn size(&self) -> u64 {
        self.inner.size()
    }
    fn load_u64(&self, gpa: u64) -> Option<u64> {
        self.inner.load_u64(gpa)
    }
    fn compare_exchange_u64(&self, gpa: u64, current: u64, new: u64) -> Option<Result<u64, u64>> {
        if self.n.load(Ordering::Relaxed) > 0 {
            self.n.fetch_sub(1, Ordering::Relaxed);
            // The guest flips an ignored bit (bit 9) first.
            let v = self.inner.load_u64(gpa)? ^ (1 << 9);
            self.inner.store_u64(gpa, v);
        }
        self.inner.compare_exchange_u64(gpa, current, new)
    }
}

#[test]
fn accessed_dirty_races_are_retried_then_reported() {
    let mem = mem();
    let mut b = builder(&mem);
    b.map(GVA, FRAME, 1, RW | US).unwrap();
    let s = ShadowSpace::new(b.root(), RecordingMapper::new(), no_prefault());
    let racy = Racy { inner: &mem, n: AtomicU32::new(3) };
    assert_eq!(s.fault(&racy, GVA, USER | WRITE).unwrap(), FaultOutcome::Filled { pages: 1 });
    assert_eq!(s.stats().raced_walks, 3);
    assert_eq!(leaf(&mut b, GVA) & (A | D), A | D);

    let mem = self::mem();
    let mut b = builder(&mem);
    b.map(GVA, FRAME, 1, RW | US).unwrap();
    let s = ShadowSpace::new(b.root(), RecordingMapper::new(), ShadowConfig { max_raced_walks: 5, ..no_prefault() });
    let racy = Racy { inner: &mem, n: AtomicU32::new(1000) };
    assert_eq!(s.fault(&racy, GVA, USER).unwrap_err(), ShadowError::RetriesExhausted { attempts: 6 });
    assert!(s.mapper().take_log().is_empty());
}

/// Guest memory that, on the walk's read of one PTE, returns the value read and then runs
/// `action` (what another vCPU does right after that read), `n` times.
struct Hook<'a> {
    inner: &'a VecGuestMemory,
    pte: u64,
    n: AtomicU32,
    action: Box<dyn Fn() + Send + Sync + 'a>,
}

impl GuestMemory for Hook<'_> {
    fn size(&self) -> u64 {
        self.inner.size()
    }
    fn load_u64(&self, gpa: u64) -> Option<u64> {
        let v = self.inner.load_u64(gpa)?;
        if gpa == self.pte && self.n.load(Ordering::Relaxed) > 0 {
            self.n.fetch_sub(1, Ordering::Relaxed);
            (self.action)();
        }
        Some(v)
    }
    fn compare_exchange_u64(&self, gpa: u64, current: u64, new: u64) -> Option<Result<u64, u64>> {
        self.inner.compare_exchange_u64(gpa, current, new)
    }
}

/// A page mapped with Accessed already set everywhere (so a read walk writes nothing).
fn accessed_page(mem: &VecGuestMemory, flags: u64) -> (PageTableBuilder<'_>, u64) {
    let mut b = builder(mem);
    let pte = b.map(GVA, FRAME, 1, flags | A).unwrap();
    for e in &path(&mut b, GVA)[..3] {
        b.set(*e, b.get(*e) | A);
    }
    (b, pte)
}

#[test]
fn a_flush_during_the_walk_makes_the_fill_walk_again() {
    for n in [1, 4] {
        let mem = mem();
        let (b, pte) = accessed_page(&mem, RW | US | D);
        let s = ShadowSpace::new(b.root(), RecordingMapper::new(), no_prefault());
        // Right after the fill read the PTE, the guest changes its frame and flushes.
        let action = || {
            mem.store_u64(pte, mem.load_u64(pte).unwrap() + KIB4);
            s.flush(GVA, KIB4).unwrap();
        };
        let racy = Hook { inner: &mem, pte, n: AtomicU32::new(n), action: Box::new(action) };
        assert_eq!(s.fault(&racy, GVA, USER).unwrap(), FaultOutcome::Filled { pages: 1 });
        let st = s.stats();
        assert_eq!(st.retries, u64::from(n));
        assert_eq!(st.locked_fills, u64::from(n >= ShadowConfig::default().optimistic_retries));
        assert_eq!(s.mapper().lookup(GVA), Some((FRAME + u64::from(n) * KIB4, RWX)), "the fresh frame, not a stale one");
    }
}

#[test]
fn a_dirty_update_during_a_read_walk_makes_the_read_fill_walk_again() {
    let mem = mem();
    let (b, pte) = accessed_page(&mem, RW | US);
    let s = ShadowSpace::new(b.root(), RecordingMapper::new(), no_prefault());
    // Right after a read fill saw D = 0, another vCPU's write fault sets D and maps RW.
    let action = || assert_eq!(s.fault(&mem, GVA, USER | WRITE).unwrap(), FaultOutcome::Filled { pages: 1 });
    let racy = Hook { inner: &mem, pte, n: AtomicU32::new(1), action: Box::new(action) };
    assert_eq!(s.fault(&racy, GVA, USER).unwrap(), FaultOutcome::Filled { pages: 1 });
    assert_eq!(s.stats().retries, 1);
    assert_eq!(s.mapper().lookup(GVA), Some((FRAME, RWX)), "not downgraded to the stale read-only view");
}

#[test]
fn mapper_failure_is_reported_and_the_range_still_unmaps() {
    let mem = mem();
    let mut b = builder(&mem);
    b.map(GVA, FRAME, 1, RW | US | D).unwrap();
    let s = ShadowSpace::new(b.root(), RecordingMapper::new(), no_prefault());
    s.mapper().fail_next(12);
    assert_eq!(s.fault(&mem, GVA, USER).unwrap_err(), ShadowError::Mapper(shadow_mmu::MapperError { failed_index: 0, errno: 12 }));
    s.flush(GVA, KIB4).unwrap();
    assert_eq!(s.mapper().take_log(), [unmap_op(GVA, KIB4)], "recorded as possibly mapped");
    s.fault(&mem, GVA, USER).unwrap();
    s.mapper().fail_next(3);
    assert!(matches!(s.flush(GVA, KIB4), Err(ShadowError::Mapper(_))));
    s.flush(GVA, KIB4).unwrap();
    assert_eq!(s.mapper().lookup(GVA), None);
}

#[test]
fn translate_reports_without_side_effects() {
    use shadow_mmu::{Mapping, Translation, translate};
    let mem = mem();
    let mut b = builder(&mem);
    let pte = b.map(GVA, FRAME, 1, RW | US | D | NX).unwrap();
    assert_eq!(
        translate(&mem, b.root(), GVA + 7),
        Translation::Mapped(Mapping { gpa: FRAME + 7, page_size: KIB4, user: true, writable: true, executable: false, dirty: true })
    );
    assert_eq!(b.get(pte) & A, 0);
    assert_eq!(translate(&mem, b.root(), GVA + KIB4), Translation::NotPresent { level: 1 });
    assert_eq!(translate(&mem, b.root(), GVA + MIB2), Translation::NotPresent { level: 2 });
    assert_eq!(translate(&mem, b.root(), GVA + GIB), Translation::NotPresent { level: 3 });
    assert_eq!(translate(&mem, b.root(), 0x8000_0000_0000), Translation::OutOfRange);
    b.set(pte, b.get(pte) | (1u64 << 51));
    assert_eq!(translate(&mem, b.root(), GVA), Translation::Reserved { level: 1 });
}

#[test]
fn prefault_skips_sparse_tables_in_few_walks() {
    let mem = mem();
    let mut b = builder(&mem);
    // Present tables everywhere on the path, one present PTE at the end of the PT, one PTE
    // in a far PML4 slot.
    b.map(0x40_0000 + 511 * KIB4, FRAME, 1, RW | US | D).unwrap();
    b.map(0x5000_0000_0000, FRAME, 1, RW | US | D).unwrap();
    let s = ShadowSpace::new(b.root(), RecordingMapper::new(), ShadowConfig::default());
    assert_eq!(s.prefault(&mem, 0, USER_END).unwrap(), 2);
    assert_eq!(
        s.mapper().take_log(),
        [map_op(0x40_0000 + 511 * KIB4, KIB4, FRAME, RWX), map_op(0x5000_0000_0000, KIB4, FRAME, RWX)]
    );
    assert!(s.stats().walks < 40, "{:?}", s.stats());
}
