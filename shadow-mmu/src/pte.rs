//! x86-64 paging-structure entry bits and per-level facts for 4-level paging
//! (Intel SDM vol. 3A, 4.5, tables 4-15 .. 4-20), with EFER.NXE = 1 and MAXPHYADDR = 52.
//!
//! With MAXPHYADDR = 52 no address bit is reserved; a GPA beyond guest memory is reported
//! like a reserved-bit violation instead (the guest cannot tell the two apart: both give #PF
//! with P=1, RSVD=1). Bits 62:52 are ignored (CR4.PKE = 0).

/// Present.
pub const P: u64 = 1 << 0;
/// Read/write: writes allowed if set at every level.
pub const RW: u64 = 1 << 1;
/// User/supervisor: user accesses allowed if set at every level.
pub const US: u64 = 1 << 2;
/// Accessed: set by the walker on every entry used for a translation.
pub const A: u64 = 1 << 5;
/// Dirty (leaf entries only): set by the walker before a write through the translation.
pub const D: u64 = 1 << 6;
/// Page size: the entry is a leaf (PDPTE: 1 GiB, PDE: 2 MiB); reserved in a PML4E.
pub const PS: u64 = 1 << 7;
/// Execute-disable: instruction fetches forbidden if set at any level.
pub const NX: u64 = 1 << 63;
/// Physical-address bits 51:12 of an entry (next table or 4 KiB frame).
pub const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

/// Entries per paging-structure page.
pub const ENTRIES: u64 = 512;

/// A paging level: 4 = PML4, 3 = PDPT, 2 = PD, 1 = PT (the level of the *table* an entry is in).
pub type Level = u8;

/// Shift of the address span one entry of `level` maps: 39, 30, 21, 12.
pub const fn shift(level: Level) -> u32 {
    12 + 9 * (level as u32 - 1)
}

/// Bytes one entry of `level` maps: 512 GiB, 1 GiB, 2 MiB, 4 KiB.
pub const fn span(level: Level) -> u64 {
    1 << shift(level)
}

/// Index of `gva`'s entry in its table at `level`.
pub const fn index(gva: u64, level: Level) -> u64 {
    (gva >> shift(level)) & (ENTRIES - 1)
}

/// Whether `entry` (present) at `level` is a leaf: always at level 1, with PS at levels 3, 2.
/// (A PML4E with PS is a reserved-bit violation, see [`reserved`].)
pub const fn is_leaf(entry: u64, level: Level) -> bool {
    level == 1 || ((level == 2 || level == 3) && entry & PS != 0)
}

/// Reserved bits set in present `entry` at `level` (0 if none): PS in a PML4E; bits 29:13 of a
/// 1 GiB PDPTE; bits 20:13 of a 2 MiB PDE (SDM tables 4-15, 4-16, 4-18).
pub const fn reserved(entry: u64, level: Level) -> u64 {
    const RSVD_1G: u64 = ((1 << 30) - 1) & !((1 << 13) - 1);
    const RSVD_2M: u64 = ((1 << 21) - 1) & !((1 << 13) - 1);
    match level {
        4 => entry & PS,
        3 if entry & PS != 0 => entry & RSVD_1G,
        2 if entry & PS != 0 => entry & RSVD_2M,
        _ => 0,
    }
}

/// GPA of the frame a leaf `entry` at `level` maps (aligned to [`span`]`(level)`).
pub const fn frame(entry: u64, level: Level) -> u64 {
    entry & ADDR_MASK & !(span(level) - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_geometry() {
        assert_eq!(span(4), 512 << 30);
        assert_eq!(span(3), 1 << 30);
        assert_eq!(span(2), 2 << 20);
        assert_eq!(span(1), 4096);
        let gva = (3 << 39) | (5 << 30) | (7 << 21) | (9 << 12) | 0x123;
        assert_eq!([index(gva, 4), index(gva, 3), index(gva, 2), index(gva, 1)], [3, 5, 7, 9]);
    }

    #[test]
    fn reserved_bits_per_level() {
        assert_eq!(reserved(P | PS, 4), PS);
        assert_eq!(reserved(P | (1 << 13), 3), 0, "non-leaf PDPTE has no reserved low bits");
        assert_eq!(reserved(P | PS | (1 << 13), 3), 1 << 13);
        assert_eq!(reserved(P | PS | (1 << 29), 3), 1 << 29);
        assert_eq!(reserved(P | PS | (1 << 12), 3), 0, "bit 12 is PAT");
        assert_eq!(reserved(P | PS | (1 << 20), 2), 1 << 20);
        assert_eq!(reserved(P | PS | (1 << 21), 2), 0);
        assert_eq!(reserved(P | PS | (1 << 13) | NX, 1), 0);
    }

    #[test]
    fn frames_and_leaves() {
        assert_eq!(frame(0x8000_0000_4020_1067 | PS, 3), 0x4000_0000);
        assert_eq!(frame(0x0000_0000_0060_00e7, 2), 0x60_0000);
        assert_eq!(frame(0x8000_0000_0060_1067, 1), 0x60_1000);
        assert!(is_leaf(P, 1) && is_leaf(P | PS, 2) && is_leaf(P | PS, 3));
        assert!(!is_leaf(P | PS, 4) && !is_leaf(P, 2));
    }
}
