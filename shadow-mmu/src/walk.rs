//! The guest page-table walker: x86-64 4-level paging (Intel SDM vol. 3A, 4.5) over
//! [`GuestMemory`], with atomic reads, and the side-effect-free [`translate`].
//!
//! The walker never touches memory outside the guest: every table and frame GPA is checked
//! against [`GuestMemory::size`] first, and an out-of-range GPA is treated like a
//! reserved-bit violation (see [`crate::pte`]).

use crate::memory::GuestMemory;
use crate::pte::{self, Level};
use guest_abi::layout::{USER_END, USER_START};
use guest_abi::mapper::{PROT_EXEC, PROT_READ, PROT_WRITE};

/// Combined access rights of a chain of entries (SDM 4.6: user access needs U/S=1 at every
/// level, write needs R/W=1 at every level, fetch needs XD=0 at every level with NXE=1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rights {
    pub user: bool,
    pub write: bool,
    pub exec: bool,
}

impl Rights {
    /// Rights of an empty chain.
    pub const ALL: Self = Self { user: true, write: true, exec: true };

    /// Rights of this chain extended by `entry`.
    pub fn and(self, entry: u64) -> Self {
        Self {
            user: self.user && entry & pte::US != 0,
            write: self.write && entry & pte::RW != 0,
            exec: self.exec && entry & pte::NX == 0,
        }
    }

    /// Host protection for a leaf reached with these rights: `PROT_READ`, plus `PROT_WRITE`
    /// only if writable *and* `dirty` (the leaf's D bit is set, so a write needs no D
    /// update), plus `PROT_EXEC` if executable.
    pub fn host_prot(self, dirty: bool) -> u32 {
        let mut prot = PROT_READ;
        if self.write && dirty {
            prot |= PROT_WRITE;
        }
        if self.exec {
            prot |= PROT_EXEC;
        }
        prot
    }
}

/// How a descent ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum End {
    /// The entry at `level` is a present, valid leaf.
    Leaf { level: Level },
    /// The entry at `level` is not present.
    NotPresent { level: Level },
    /// The entry at `level` has reserved bits set or points outside guest memory (or the
    /// table at `level` itself is outside guest memory).
    Reserved { level: Level },
}

impl End {
    /// Level of the last entry looked at.
    pub fn level(self) -> Level {
        match self {
            Self::Leaf { level } | Self::NotPresent { level } | Self::Reserved { level } => level,
        }
    }
}

/// The entries one walk read, from the PML4E down.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Descent {
    /// GPA of the entry read at each step (`[0]` is the PML4E).
    pub entry_gpa: [u64; 4],
    /// Value read at each step.
    pub entry: [u64; 4],
    /// Entries read (`1 ..= 4`); the last one is at level `5 - depth`.
    pub depth: usize,
    /// How the walk ended.
    pub end: End,
    /// Rights of all entries read but the last one.
    pub upper: Rights,
    /// Rights of all entries read (meaningful for [`End::Leaf`]).
    pub rights: Rights,
    /// Highest level whose entry had U/S = 0, if any.
    pub user_denied: Option<Level>,
}

impl Descent {
    /// The last entry read and its GPA.
    pub fn last(&self) -> (u64, u64) {
        let i = self.depth.saturating_sub(1);
        (self.entry_gpa[i], self.entry[i])
    }
}

/// Walks the page table at `root` (a CR3 value: bits 11:0 ignored) for `gva` with atomic
/// reads, without changing anything. Only bits 47:0 of `gva` are used; callers check the
/// range.
pub(crate) fn descend(mem: &dyn GuestMemory, root: u64, gva: u64) -> Descent {
    let mut d = Descent {
        entry_gpa: [0; 4],
        entry: [0; 4],
        depth: 0,
        end: End::NotPresent { level: 4 },
        upper: Rights::ALL,
        rights: Rights::ALL,
        user_denied: None,
    };
    let mut table = root & pte::ADDR_MASK;
    for level in (1..=4u8).rev() {
        let gpa = table + pte::index(gva, level) * 8;
        let Some(entry) = mem.load_u64(gpa) else {
            d.end = End::Reserved { level };
            return d;
        };
        d.entry_gpa[d.depth] = gpa;
        d.entry[d.depth] = entry;
        d.depth += 1;
        if entry & pte::P == 0 {
            d.end = End::NotPresent { level };
            return d;
        }
        if pte::reserved(entry, level) != 0 {
            d.end = End::Reserved { level };
            return d;
        }
        d.upper = d.rights;
        d.rights = d.rights.and(entry);
        if entry & pte::US == 0 && d.user_denied.is_none() {
            d.user_denied = Some(level);
        }
        if pte::is_leaf(entry, level) {
            let in_memory = pte::frame(entry, level)
                .checked_add(pte::span(level))
                .is_some_and(|end| end <= mem.size());
            d.end = if in_memory { End::Leaf { level } } else { End::Reserved { level } };
            return d;
        }
        table = entry & pte::ADDR_MASK;
        if table + pte::ENTRIES * 8 > mem.size() {
            d.end = End::Reserved { level };
            return d;
        }
    }
    // Level 1 entries are always leaves, so the loop returned.
    d
}

/// A translation found by [`translate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// GPA the GVA translates to, bytes.
    pub gpa: u64,
    /// Size of the leaf: 4 KiB, 2 MiB or 1 GiB.
    pub page_size: u64,
    /// U/S = 1 at every level.
    pub user: bool,
    /// R/W = 1 at every level.
    pub writable: bool,
    /// XD = 0 at every level.
    pub executable: bool,
    /// The leaf's Dirty bit.
    pub dirty: bool,
}

impl Mapping {
    /// The host protection a shadow mapping of this translation has (`PROT_*` bits):
    /// `PROT_READ`, `PROT_WRITE` if writable and dirty, `PROT_EXEC` if executable. Only
    /// meaningful if `user`.
    pub fn host_prot(&self) -> u32 {
        Rights { user: self.user, write: self.writable, exec: self.executable }.host_prot(self.dirty)
    }
}

/// Result of [`translate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Translation {
    /// A present leaf maps the GVA.
    Mapped(Mapping),
    /// The entry at `level` (4 = PML4E .. 1 = PTE) is not present.
    NotPresent {
        /// Paging level of the entry.
        level: u8,
    },
    /// The entry at `level` has reserved bits set or refers to a GPA outside guest memory.
    Reserved {
        /// Paging level of the entry.
        level: u8,
    },
    /// The GVA is outside the guest user range
    /// ([`guest_abi::layout::USER_START`] .. [`guest_abi::layout::USER_END`]), which the
    /// shadow never maps (this includes every non-canonical address).
    OutOfRange,
}

/// Translates `gva` through the guest page table at `root` (GPA of the PML4; bits 11:0
/// ignored) the way the processor would for a user access, reading guest memory atomically
/// and changing nothing (no Accessed/Dirty updates). Intel SDM vol. 3A, 4.5.
pub fn translate(mem: &dyn GuestMemory, root: u64, gva: u64) -> Translation {
    if !(USER_START..USER_END).contains(&gva) {
        return Translation::OutOfRange;
    }
    let d = descend(mem, root, gva);
    match d.end {
        End::NotPresent { level } => Translation::NotPresent { level },
        End::Reserved { level } => Translation::Reserved { level },
        End::Leaf { level } => {
            let (_, leaf) = d.last();
            let page_size = pte::span(level);
            Translation::Mapped(Mapping {
                gpa: pte::frame(leaf, level) + (gva & (page_size - 1)),
                page_size,
                user: d.rights.user,
                writable: d.rights.write,
                executable: d.rights.exec,
                dirty: leaf & pte::D != 0,
            })
        }
    }
}
