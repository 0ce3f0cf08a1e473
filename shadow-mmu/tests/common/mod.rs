//! Shared by the model tests: an independent reference walker, a guest that edits its page
//! tables and issues the flushes x86 TLB semantics require, edit strategies, and the shadow
//! invariant check.
#![allow(dead_code)]

use guest_abi::mapper::{PROT_EXEC, PROT_READ, PROT_WRITE};
use proptest::prelude::*;
use shadow_mmu::GuestMemory;
use shadow_mmu::testing::{PageTableBuilder, RecordingMapper, TABLE_FLAGS, VecGuestMemory};

pub const KIB4: u64 = 4096;
pub const MIB2: u64 = 2 << 20;
pub const GIB: u64 = 1 << 30;
/// Guest memory size (frames up to here are valid).
pub const MEM: u64 = 8 * GIB;
/// GVA of the window of 2 MiB directories (PDPTE 1).
pub const WIN: u64 = GIB;
/// PDEs used in the window.
pub const NPDE: u64 = 4;
/// GVA of the 1 GiB leaf slot (PDPTE 2).
pub const HUGE: u64 = 2 * GIB;
/// Base GPA of 4 KiB frames.
pub const FRAMES: u64 = 64 << 20;
/// A frame beyond guest memory.
pub const BEYOND: u64 = 16 * GIB;

const P: u64 = 1;
const RW: u64 = 2;
const US: u64 = 4;
const A: u64 = 0x20;
const D: u64 = 0x40;
const PS: u64 = 0x80;
const NX: u64 = 1 << 63;
const ADDR: u64 = 0x000f_ffff_ffff_f000;

pub fn memory() -> VecGuestMemory {
    VecGuestMemory::sparse(4 << 20, MEM)
}

/// What the reference walk found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ref {
    NotPresent,
    Reserved,
    Leaf { gpa: u64, base: u64, size: u64, user: bool, write: bool, exec: bool, dirty: bool },
}

/// An independent, straightforward x86-64 4-level walk (SDM 4.5) of `gva`'s page.
pub fn ref_walk(mem: &VecGuestMemory, root: u64, gva: u64) -> Ref {
    let mut table = root;
    let (mut user, mut write, mut exec) = (true, true, true);
    for level in [4u32, 3, 2, 1] {
        let shift = 12 + 9 * (level - 1);
        let Some(e) = mem.load_u64(table + ((gva >> shift) & 511) * 8) else { return Ref::Reserved };
        if e & P == 0 {
            return Ref::NotPresent;
        }
        if level == 4 && e & PS != 0 {
            return Ref::Reserved;
        }
        user &= e & US != 0;
        write &= e & RW != 0;
        exec &= e & NX == 0;
        let addr = e & ADDR;
        if level == 1 || e & PS != 0 {
            let size = 1u64 << shift;
            if addr & (size - 1) & !0x1000 != 0 {
                return Ref::Reserved;
            }
            let frame = addr & !(size - 1);
            if frame + size > mem.size() {
                return Ref::Reserved;
            }
            let base = gva & !(size - 1);
            return Ref::Leaf { gpa: (frame + (gva - base)) & !0xfff, base, size, user, write, exec, dirty: e & D != 0 };
        }
        if addr + 4096 > mem.size() {
            return Ref::Reserved;
        }
        table = addr;
    }
    unreachable!()
}

/// The host prot a shadow of `r` must have.
pub fn want_prot(write: bool, exec: bool, dirty: bool) -> u32 {
    PROT_READ | if write && dirty { PROT_WRITE } else { 0 } | if exec { PROT_EXEC } else { 0 }
}

/// The invariant: every modelled host page equals a fresh walk now.
pub fn check_shadow(mem: &VecGuestMemory, root: u64, mapper: &RecordingMapper) -> Result<(), String> {
    for seg in mapper.segments() {
        let mut g = seg.start;
        while g < seg.end {
            match ref_walk(mem, root, g) {
                Ref::Leaf { gpa, base, size, user: true, write, exec, dirty } => {
                    let want = (seg.gpa + (g - seg.start), want_prot(write, exec, dirty));
                    if (gpa, seg.prot) != want {
                        return Err(format!("{g:#x}: host ({:#x}, {}) but walk gives ({gpa:#x}, {})", want.0, seg.prot, want.1));
                    }
                    g = seg.end.min(base + size);
                }
                other => return Err(format!("{g:#x}: host ({:#x}, {}) but walk gives {other:?}", seg.gpa + (g - seg.start), seg.prot)),
            }
        }
    }
    Ok(())
}

/// A guest page-table edit. Indices are into the window (PDE `pde` of PDPTE 1, PTE `pte`).
#[derive(Clone, Copy, Debug)]
pub enum Edit {
    Pte { pde: u64, pte: u64, frame: u64, flags: u64 },
    Run { pde: u64, pte: u64, n: u64, frame: u64, flags: u64 },
    ClearPte { pde: u64, pte: u64 },
    ClearAccessedDirty { pde: u64, pte: u64 },
    Pde2M { pde: u64, frame: u64, flags: u64 },
    ClearPde { pde: u64 },
    /// Sets the U/S, R/W, XD bits of a present PDE to `flags`.
    PdeFlags { pde: u64, flags: u64 },
    Huge { frame: u64, flags: u64 },
    ClearHuge,
    /// Sets the U/S, R/W, XD bits of a present upper entry (0: the PML4E, 1: PDPTE 1,
    /// 2: PDPTE 2) to `flags`.
    UpperFlags { which: u8, flags: u64 },
}

fn table_flags() -> impl Strategy<Value = u64> {
    (prop::bool::weighted(0.8), prop::bool::weighted(0.8), prop::bool::weighted(0.2))
        .prop_map(|(us, rw, nx)| (if us { US } else { 0 }) | (if rw { RW } else { 0 }) | (if nx { NX } else { 0 }))
}
fn leaf_flags() -> impl Strategy<Value = u64> {
    (prop::bool::weighted(0.85), prop::bool::weighted(0.7), any::<bool>(), any::<bool>(), any::<bool>())
        .prop_map(|(us, rw, nx, d, a)| {
            (if us { US } else { 0 }) | (if rw { RW } else { 0 }) | (if nx { NX } else { 0 }) | (if d { D } else { 0 }) | (if a { A } else { 0 })
        })
}
pub fn pte_index() -> impl Strategy<Value = u64> {
    prop_oneof![0u64..12, 500u64..512]
}
fn frame4k() -> impl Strategy<Value = u64> {
    prop_oneof![20 => (0u64..40).prop_map(|f| FRAMES + f * KIB4), 1 => Just(BEYOND)]
}
pub fn edit() -> impl Strategy<Value = Edit> {
    let pde = 0..NPDE;
    prop_oneof![
        6 => (pde.clone(), pte_index(), frame4k(), leaf_flags()).prop_map(|(pde, pte, frame, flags)| Edit::Pte { pde, pte, frame, flags }),
        4 => (pde.clone(), pte_index(), 1u64..24, frame4k(), leaf_flags())
            .prop_map(|(pde, pte, n, frame, flags)| Edit::Run { pde, pte, n, frame, flags }),
        3 => (pde.clone(), pte_index()).prop_map(|(pde, pte)| Edit::ClearPte { pde, pte }),
        2 => (pde.clone(), pte_index()).prop_map(|(pde, pte)| Edit::ClearAccessedDirty { pde, pte }),
        2 => (pde.clone(), prop_oneof![8 => (0u64..4).prop_map(|k| (128 << 20) + k * MIB2), 1 => Just(BEYOND), 1 => Just((128 << 20) | (1 << 13))], leaf_flags())
            .prop_map(|(pde, frame, flags)| Edit::Pde2M { pde, frame, flags }),
        1 => pde.clone().prop_map(|pde| Edit::ClearPde { pde }),
        2 => (pde, table_flags()).prop_map(|(pde, flags)| Edit::PdeFlags { pde, flags }),
        1 => (prop_oneof![4 => (0u64..7).prop_map(|k| k * GIB), 1 => Just(BEYOND)], leaf_flags()).prop_map(|(frame, flags)| Edit::Huge { frame, flags }),
        1 => Just(Edit::ClearHuge),
        1 => (0u8..3, table_flags()).prop_map(|(which, flags)| Edit::UpperFlags { which, flags }),
    ]
}

/// A GVA in the window or the 1 GiB slot.
pub fn gva() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => (0..NPDE, pte_index(), 0u64..4096).prop_map(|(pde, pte, off)| WIN + pde * MIB2 + pte * KIB4 + off),
        1 => (0u64..512, 0u64..512).prop_map(|(a, b)| HUGE + a * MIB2 + b * KIB4),
    ]
}

/// The guest: builds and edits its page tables, and issues the flush x86 requires after
/// changing a present entry (nothing for not-present -> present).
pub struct Guest<'a> {
    pub b: PageTableBuilder<'a>,
    pml4e: u64,
    pdpte1: u64,
    pdpte2: u64,
    pd: u64,
    free: Vec<u64>,
}

impl<'a> Guest<'a> {
    pub fn new(mem: &'a VecGuestMemory) -> Self {
        let mut b = PageTableBuilder::new(mem, 1 << 20, 4 << 20).unwrap();
        let pd = b.entry_gpa(WIN, 2).unwrap() & !0xfff;
        let pml4e = b.entry_gpa(WIN, 4).unwrap();
        let pdpte1 = b.entry_gpa(WIN, 3).unwrap();
        let pdpte2 = b.entry_gpa(HUGE, 3).unwrap();
        Self { b, pml4e, pdpte1, pdpte2, pd, free: Vec::new() }
    }

    pub fn root(&self) -> u64 {
        self.b.root()
    }

    /// Writes `new` at `gpa` (an entry mapping `span` bytes at `gva`); flushes if the old
    /// entry was present and changed. Frees a replaced page table after the flush.
    fn write(&mut self, gpa: u64, new: u64, gva: u64, span: u64, level: u8, flush: &mut dyn FnMut(u64, u64)) {
        let old = self.b.get(gpa);
        self.b.set(gpa, new);
        if old & P != 0 && old != new {
            flush(gva, span);
            if level > 1 && old & PS == 0 && new & ADDR != old & ADDR {
                self.free.push(old & ADDR);
            }
        }
    }

    fn table(&mut self) -> u64 {
        match self.free.pop() {
            Some(t) => {
                for i in 0..512 {
                    self.b.set(t + i * 8, 0);
                }
                t
            }
            None => self.b.alloc_table().expect("page-table area exhausted"),
        }
    }

    /// GPA of PTE `pte` under PDE `pde`, giving the PDE a page table if it has none.
    fn pte_gpa(&mut self, pde: u64, pte: u64, flush: &mut dyn FnMut(u64, u64)) -> u64 {
        let pde_gpa = self.pd + pde * 8;
        let v = self.b.get(pde_gpa);
        if v & P == 0 || v & PS != 0 {
            let t = self.table();
            self.write(pde_gpa, t | TABLE_FLAGS, WIN + pde * MIB2, MIB2, 2, flush);
        }
        (self.b.get(pde_gpa) & ADDR) + pte * 8
    }

    pub fn apply(&mut self, e: Edit, flush: &mut dyn FnMut(u64, u64)) {
        match e {
            Edit::Pte { pde, pte, frame, flags } => {
                let g = self.pte_gpa(pde, pte, flush);
                self.write(g, frame | flags | P, WIN + pde * MIB2 + pte * KIB4, KIB4, 1, flush);
            }
            Edit::Run { pde, pte, n, frame, flags } => {
                for i in 0..n.min(512 - pte) {
                    let g = self.pte_gpa(pde, pte + i, flush);
                    let f = if frame == BEYOND { frame } else { frame + i * KIB4 };
                    self.write(g, f | flags | P, WIN + pde * MIB2 + (pte + i) * KIB4, KIB4, 1, flush);
                }
            }
            Edit::ClearPte { pde, pte } | Edit::ClearAccessedDirty { pde, pte } => {
                let pde_v = self.b.get(self.pd + pde * 8);
                if pde_v & P == 0 || pde_v & PS != 0 {
                    return;
                }
                let g = (pde_v & ADDR) + pte * 8;
                let new = if matches!(e, Edit::ClearPte { .. }) { 0 } else { self.b.get(g) & !(A | D) };
                self.write(g, new, WIN + pde * MIB2 + pte * KIB4, KIB4, 1, flush);
            }
            Edit::Pde2M { pde, frame, flags } => {
                self.write(self.pd + pde * 8, frame | flags | PS | P, WIN + pde * MIB2, MIB2, 2, flush);
            }
            Edit::ClearPde { pde } => self.write(self.pd + pde * 8, 0, WIN + pde * MIB2, MIB2, 2, flush),
            Edit::PdeFlags { pde, flags } => {
                let g = self.pd + pde * 8;
                let v = self.b.get(g);
                if v & P != 0 {
                    self.write(g, (v & !(US | RW | NX)) | flags, WIN + pde * MIB2, MIB2, 2, flush);
                }
            }
            Edit::Huge { frame, flags } => self.write(self.pdpte2, frame | flags | PS | P, HUGE, GIB, 3, flush),
            Edit::ClearHuge => self.write(self.pdpte2, 0, HUGE, GIB, 3, flush),
            Edit::UpperFlags { which, flags } => {
                let (g, gva, span) = match which {
                    0 => (self.pml4e, 0, 512 * GIB),
                    1 => (self.pdpte1, WIN, GIB),
                    _ => (self.pdpte2, HUGE, GIB),
                };
                let v = self.b.get(g);
                if v & P != 0 {
                    self.write(g, (v & !(US | RW | NX)) | flags, gva, span, 4, flush);
                }
            }
        }
    }
}
