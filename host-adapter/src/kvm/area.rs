//! The KVM backend's own guest-physical area, right above guest RAM: the boot page tables
//! (kernel half only: the physmap and the kernel image, supervisor-only), a boot GDT and TSS,
//! and one 1 MiB boot stack per vCPU. The guest kernel's frame allocator never sees it (it
//! lies beyond `BootInfo::mem_size`); the `hw` platform reads the kernel-half PML4 entries
//! from CR3 and shares the lower tables in every address space it runs.
//!
//! Page-table formats: Intel SDM vol. 3A, 4.5 (4-level paging).

use guest_abi::layout::{KERNEL_BASE, PHYSMAP_BASE};
use guest_abi::mapper::{PROT_EXEC, PROT_WRITE};
use guest_abi::{HUGE_PAGE_SIZE, LARGE_PAGE_SIZE, PAGE_SIZE};

use crate::{BackendError, KernelSegment};

/// Entry bit: present.
const P: u64 = 1 << 0;
/// Entry bit: writable.
const RW: u64 = 1 << 1;
/// Entry bit: large page (in a PD entry: 2 MiB).
const PS: u64 = 1 << 7;
/// Entry bit: global (kept across CR3 loads when CR4.PGE is set).
const G: u64 = 1 << 8;
/// Entry bit: no execute (needs EFER.NXE).
const NX: u64 = 1 << 63;

/// Offsets inside the area (bytes from its base).
const PML4_OFF: u64 = 0;
const GDT_OFF: u64 = 0x1000;
const TSS_OFF: u64 = 0x2000;
const PDPT_PHYS_OFF: u64 = 0x3000;
const PDPT_KERN_OFF: u64 = 0x4000;
const PD_KERN_OFF: u64 = 0x5000;
const TABLES_OFF: u64 = 0x6000;
/// Boot stack per vCPU, bytes (the K stub gives the same: `percpu` assumes it).
pub const STACK_SIZE: u64 = guest_abi::layout::STUB_STACK_SIZE;

/// GDT in Linux's layout (selectors): kernel CS 0x10, kernel DS 0x18, user CS32 0x20, user
/// DS 0x28, user CS64 0x30, TSS 0x40 (16 bytes).
pub const GDT: [u64; 8] = [
    0,
    0,
    0x00af_9b00_0000_ffff, // 0x10 kernel code, 64-bit
    0x00cf_9300_0000_ffff, // 0x18 kernel data
    0x00cf_fb00_0000_ffff, // 0x20 user code, 32-bit
    0x00cf_f300_0000_ffff, // 0x28 user data
    0x00af_fb00_0000_ffff, // 0x30 user code, 64-bit
    0,
];

/// Where everything in the area is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AreaLayout {
    /// GPA of the area (2 MiB aligned, at or above the end of RAM).
    pub base: u64,
    /// Size of the area, bytes.
    pub size: u64,
    /// Number of kernel page tables (one per 2 MiB of image).
    kernel_pts: u64,
    /// Number of physmap page directories (one per GiB up to the end of the area).
    phys_pds: u64,
    /// Offset of the first boot stack.
    stacks_off: u64,
}

impl AreaLayout {
    /// Lays out the area for `mem_size` bytes of RAM, `vcpus` vCPUs and a kernel image
    /// spanning `image_len` bytes from `KERNEL_BASE`.
    pub fn new(mem_size: u64, vcpus: u32, image_len: u64) -> Self {
        let base = mem_size.next_multiple_of(LARGE_PAGE_SIZE);
        let kernel_pts = image_len.div_ceil(LARGE_PAGE_SIZE).max(1);
        let stacks = u64::from(vcpus) * STACK_SIZE;
        // Upper bound on the area first, then the physmap directories it needs.
        let mut phys_pds = 1;
        loop {
            let tables = TABLES_OFF + (kernel_pts + phys_pds) * PAGE_SIZE;
            let stacks_off = tables.next_multiple_of(STACK_SIZE);
            let size = (stacks_off + stacks).next_multiple_of(LARGE_PAGE_SIZE);
            if (base + size).div_ceil(HUGE_PAGE_SIZE) <= phys_pds {
                return Self { base, size, kernel_pts, phys_pds, stacks_off };
            }
            phys_pds += 1;
        }
    }

    /// GPA of the boot PML4 (the initial CR3).
    pub fn pml4(&self) -> u64 {
        self.base + PML4_OFF
    }

    /// GPA of the boot GDT.
    pub fn gdt(&self) -> u64 {
        self.base + GDT_OFF
    }

    /// GPA of the boot TSS.
    pub fn tss(&self) -> u64 {
        self.base + TSS_OFF
    }

    /// Kernel virtual address of the top of vCPU `id`'s boot stack, as after a `call`
    /// (`rsp % 16 == 8`).
    pub fn stack_top(&self, id: u32) -> u64 {
        PHYSMAP_BASE + self.base + self.stacks_off + (u64::from(id) + 1) * STACK_SIZE - 8
    }

    /// Builds the page tables, GDT and TSS into `area` (this layout's bytes, zeroed).
    ///
    /// # Errors
    /// [`BackendError::Unavailable`] if a kernel segment lies outside the image span.
    pub fn build(&self, area: &mut [u8], segments: &[KernelSegment]) -> Result<(), BackendError> {
        let mut put = |off: u64, value: u64| {
            let o = off as usize;
            area[o..o + 8].copy_from_slice(&value.to_le_bytes());
        };
        // PML4: physmap and kernel image, supervisor-only (U/S clear at the top level).
        put(PML4_OFF + pml4_index(PHYSMAP_BASE) * 8, (self.base + PDPT_PHYS_OFF) | P | RW);
        put(PML4_OFF + pml4_index(KERNEL_BASE) * 8, (self.base + PDPT_KERN_OFF) | P | RW);
        // Physmap: GVA PHYSMAP_BASE + x -> GPA x for x < end of the area, 2 MiB pages, NX.
        let phys_pd0 = TABLES_OFF + self.kernel_pts * PAGE_SIZE;
        for pd in 0..self.phys_pds {
            put(PDPT_PHYS_OFF + pd * 8, (self.base + phys_pd0 + pd * PAGE_SIZE) | P | RW);
        }
        let end = self.base + self.size;
        let mut gpa = 0;
        while gpa < end {
            let i = gpa / LARGE_PAGE_SIZE;
            put(phys_pd0 + i * 8, gpa | P | RW | PS | G | NX);
            gpa += LARGE_PAGE_SIZE;
        }
        // Kernel image: 4 KiB pages with each segment's permissions.
        put(PDPT_KERN_OFF, (self.base + PD_KERN_OFF) | P | RW);
        for pt in 0..self.kernel_pts {
            put(PD_KERN_OFF + pt * 8, (self.base + TABLES_OFF + pt * PAGE_SIZE) | P | RW);
        }
        for s in segments {
            let mut off = 0;
            while off < s.len {
                let va = s.vaddr + off;
                let page = va.checked_sub(KERNEL_BASE).map(|x| x / PAGE_SIZE);
                let Some(page) = page.filter(|&p| p < self.kernel_pts * 512) else {
                    return Err(BackendError::Unavailable(format!("kernel segment at {va:#x} outside the image")));
                };
                let mut e = (s.gpa + off) | P | G;
                if s.prot & PROT_WRITE != 0 {
                    e |= RW;
                }
                if s.prot & PROT_EXEC == 0 {
                    e |= NX;
                }
                put(TABLES_OFF + page * 8, e);
                off += PAGE_SIZE;
            }
        }
        for (i, d) in GDT.iter().enumerate() {
            put(GDT_OFF + i as u64 * 8, *d);
        }
        // A 64-bit TSS (Intel SDM vol. 3A, 8.7): no I/O bitmap (base past the limit).
        put(TSS_OFF + 96, 104 << 48);
        let tss = self.tss();
        let tss_desc_lo = 0x67 | ((tss & 0xff_ffff) << 16) | (0x89 << 40) | (((tss >> 24) & 0xff) << 56);
        put(GDT_OFF + 0x40, tss_desc_lo);
        put(GDT_OFF + 0x48, tss >> 32);
        Ok(())
    }
}

/// Index of `va` in the PML4.
fn pml4_index(va: u64) -> u64 {
    (va >> 39) & 511
}

#[cfg(test)]
mod tests {
    use super::*;
    use guest_abi::mapper::PROT_READ;

    fn entry(area: &[u8], off: u64) -> u64 {
        let o = off as usize;
        u64::from_le_bytes(area[o..o + 8].try_into().expect("8 bytes"))
    }

    /// Walks the built tables like the MMU: (GPA, writable, executable) of `va`.
    fn walk(l: &AreaLayout, area: &[u8], va: u64) -> Option<(u64, bool, bool)> {
        let mut table = l.pml4();
        let (mut w, mut x) = (true, true);
        for level in (1..=4).rev() {
            let idx = (va >> (12 + 9 * (level - 1))) & 511;
            let e = entry(area, table - l.base + idx * 8);
            if e & P == 0 {
                return None;
            }
            assert_eq!(e & 4, 0, "user bit set at level {level}");
            w &= e & RW != 0;
            x &= e & NX == 0;
            let addr = e & 0x000f_ffff_ffff_f000;
            if level == 2 && e & PS != 0 {
                return Some((addr + (va & (LARGE_PAGE_SIZE - 1)), w, x));
            }
            if level == 1 {
                return Some((addr + (va & 0xfff), w, x));
            }
            table = addr;
        }
        None
    }

    #[test]
    fn tables_map_physmap_and_kernel() {
        let l = AreaLayout::new(64 << 20, 2, 3 << 20);
        assert_eq!(l.base, 64 << 20);
        let mut area = vec![0u8; l.size as usize];
        let segs = [
            KernelSegment { vaddr: KERNEL_BASE, gpa: 0x10_0000, len: 0x20_0000, prot: PROT_READ | PROT_EXEC },
            KernelSegment { vaddr: KERNEL_BASE + 0x20_0000, gpa: 0x30_0000, len: 0x1000, prot: PROT_READ | PROT_WRITE },
        ];
        l.build(&mut area, &segs).expect("build");
        assert_eq!(walk(&l, &area, PHYSMAP_BASE + 0x1234), Some((0x1234, true, false)));
        let top = l.stack_top(1);
        assert_eq!(top % 16, 8);
        let (gpa, w, _) = walk(&l, &area, top).expect("stack mapped");
        assert!(gpa >= l.base && gpa < l.base + l.size);
        assert!(w);
        assert_eq!(walk(&l, &area, KERNEL_BASE + 0x1008), Some((0x10_1008, false, true)));
        assert_eq!(walk(&l, &area, KERNEL_BASE + 0x20_0010), Some((0x30_0010, true, false)));
        assert_eq!(walk(&l, &area, KERNEL_BASE + 0x20_1000), None);
        assert_eq!(walk(&l, &area, 0x40_0000), None);
    }

    #[test]
    fn segments_outside_the_image_are_refused() {
        let l = AreaLayout::new(32 << 20, 1, 1 << 20);
        let mut area = vec![0u8; l.size as usize];
        let bad = [KernelSegment { vaddr: KERNEL_BASE + (8 << 20), gpa: 0, len: 0x1000, prot: PROT_READ }];
        assert!(l.build(&mut area, &bad).is_err());
    }
}
