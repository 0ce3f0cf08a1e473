//! ELF64 parser for the program loader (System V gABI + x86-64 psABI): file header and
//! program headers with full bounds checks. Garbage, truncation, a wrong class, endianness or
//! machine all give `ENOEXEC`, never a panic.

use alloc::vec::Vec;

/// `PT_LOAD`.
pub const PT_LOAD: u32 = 1;
/// `PT_INTERP`.
pub const PT_INTERP: u32 = 3;
/// `PT_PHDR`.
pub const PT_PHDR: u32 = 6;
/// `PT_GNU_STACK`.
pub const PT_GNU_STACK: u32 = 0x6474_e551;
/// Segment flag: executable.
pub const PF_X: u32 = 1;
/// Segment flag: writable.
pub const PF_W: u32 = 2;
/// Segment flag: readable.
pub const PF_R: u32 = 4;
/// `ET_EXEC`.
pub const ET_EXEC: u16 = 2;
/// `ET_DYN`.
pub const ET_DYN: u16 = 3;
/// `EM_X86_64`.
pub const EM_X86_64: u16 = 62;
/// Size of an ELF64 program header.
pub const PHDR_SIZE: usize = 56;

/// Why a file is not a loadable x86-64 ELF.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElfError {
    /// No ELF magic (maybe a script).
    NotElf,
    /// ELF but not ELF64 little-endian x86-64 executable or shared object.
    WrongArch,
    /// Headers or segments point outside the file, or are inconsistent.
    Malformed,
}

/// One program header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Phdr {
    /// `p_type`.
    pub p_type: u32,
    /// `p_flags` (`PF_*`).
    pub flags: u32,
    /// File offset, bytes.
    pub offset: u64,
    /// Virtual address (before the load bias).
    pub vaddr: u64,
    /// Bytes in the file.
    pub filesz: u64,
    /// Bytes in memory (`>= filesz`).
    pub memsz: u64,
    /// Alignment.
    pub align: u64,
}

/// A parsed ELF64 executable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Elf {
    /// `e_type` ([`ET_EXEC`] or [`ET_DYN`]).
    pub e_type: u16,
    /// Entry point (before the load bias).
    pub entry: u64,
    /// File offset of the program headers.
    pub phoff: u64,
    /// Number of program headers.
    pub phnum: u16,
    /// Program headers.
    pub phdrs: Vec<Phdr>,
    /// `PT_INTERP` path without the NUL, if any.
    pub interp: Option<Vec<u8>>,
    /// `PT_GNU_STACK` asks for an executable stack.
    pub exec_stack: bool,
}

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(off..off + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(off..off + 4)?.try_into().ok()?))
}
fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(off..off + 8)?.try_into().ok()?))
}

impl Elf {
    /// Parses and validates `file`.
    pub fn parse(file: &[u8]) -> Result<Elf, ElfError> {
        if file.len() < 4 || &file[..4] != b"\x7fELF" {
            return Err(ElfError::NotElf);
        }
        if file.len() < 64 {
            return Err(ElfError::Malformed);
        }
        // EI_CLASS = ELFCLASS64, EI_DATA = ELFDATA2LSB, EI_VERSION = 1.
        if file[4] != 2 || file[5] != 1 || file[6] != 1 {
            return Err(ElfError::WrongArch);
        }
        let m = ElfError::Malformed;
        let e_type = u16_at(file, 16).ok_or(m)?;
        let machine = u16_at(file, 18).ok_or(m)?;
        if machine != EM_X86_64 || (e_type != ET_EXEC && e_type != ET_DYN) {
            return Err(ElfError::WrongArch);
        }
        let entry = u64_at(file, 24).ok_or(m)?;
        let phoff = u64_at(file, 32).ok_or(m)?;
        let phentsize = u16_at(file, 54).ok_or(m)?;
        let phnum = u16_at(file, 56).ok_or(m)?;
        if phentsize as usize != PHDR_SIZE || phnum == 0 || phnum > 1024 {
            return Err(m);
        }
        let table_end = phoff.checked_add(u64::from(phnum) * PHDR_SIZE as u64).ok_or(m)?;
        if table_end > file.len() as u64 {
            return Err(m);
        }
        let mut phdrs = Vec::with_capacity(phnum as usize);
        let mut interp = None;
        let mut exec_stack = false;
        for i in 0..phnum as usize {
            let o = phoff as usize + i * PHDR_SIZE;
            let p = Phdr {
                p_type: u32_at(file, o).ok_or(m)?,
                flags: u32_at(file, o + 4).ok_or(m)?,
                offset: u64_at(file, o + 8).ok_or(m)?,
                vaddr: u64_at(file, o + 16).ok_or(m)?,
                filesz: u64_at(file, o + 32).ok_or(m)?,
                memsz: u64_at(file, o + 40).ok_or(m)?,
                align: u64_at(file, o + 48).ok_or(m)?,
            };
            match p.p_type {
                PT_LOAD => {
                    let fend = p.offset.checked_add(p.filesz).ok_or(m)?;
                    let vend = p.vaddr.checked_add(p.memsz).ok_or(m)?;
                    if p.filesz > p.memsz || fend > file.len() as u64 || vend > 1 << 47 {
                        return Err(m);
                    }
                    if p.vaddr % 4096 != p.offset % 4096 {
                        return Err(m);
                    }
                }
                PT_INTERP => {
                    let fend = p.offset.checked_add(p.filesz).ok_or(m)?;
                    if fend > file.len() as u64 || p.filesz < 2 || p.filesz > 4096 {
                        return Err(m);
                    }
                    let s = &file[p.offset as usize..fend as usize];
                    let z = s.iter().position(|&b| b == 0).ok_or(m)?;
                    interp = Some(s[..z].to_vec());
                }
                PT_GNU_STACK => exec_stack = p.flags & PF_X != 0,
                _ => {}
            }
            phdrs.push(p);
        }
        if !phdrs.iter().any(|p| p.p_type == PT_LOAD) {
            return Err(m);
        }
        Ok(Elf { e_type, entry, phoff, phnum, phdrs, interp, exec_stack })
    }

    /// Loadable segments.
    pub fn loads(&self) -> impl Iterator<Item = &Phdr> {
        self.phdrs.iter().filter(|p| p.p_type == PT_LOAD)
    }

    /// (lowest page-aligned vaddr, highest vaddr end) over the `PT_LOAD`s.
    pub fn span(&self) -> (u64, u64) {
        let lo = self.loads().map(|p| p.vaddr & !4095).min().unwrap_or(0);
        let hi = self.loads().map(|p| p.vaddr + p.memsz).max().unwrap_or(0);
        (lo, hi)
    }

    /// Virtual address (before bias) of the program headers in memory: `PT_PHDR` if present,
    /// else the load segment that contains `e_phoff`.
    pub fn phdr_vaddr(&self) -> Option<u64> {
        if let Some(p) = self.phdrs.iter().find(|p| p.p_type == PT_PHDR) {
            return Some(p.vaddr);
        }
        self.loads()
            .find(|p| p.offset <= self.phoff && self.phoff < p.offset + p.filesz)
            .map(|p| p.vaddr + (self.phoff - p.offset))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    /// A minimal ELF64 x86-64 ET_EXEC with one PT_LOAD covering the file.
    fn tiny(e_type: u16, machine: u16) -> Vec<u8> {
        let mut f = vec![0u8; 0x200];
        f[..4].copy_from_slice(b"\x7fELF");
        f[4] = 2;
        f[5] = 1;
        f[6] = 1;
        f[16..18].copy_from_slice(&e_type.to_le_bytes());
        f[18..20].copy_from_slice(&machine.to_le_bytes());
        f[24..32].copy_from_slice(&0x40_1000u64.to_le_bytes());
        f[32..40].copy_from_slice(&64u64.to_le_bytes());
        f[54..56].copy_from_slice(&56u16.to_le_bytes());
        f[56..58].copy_from_slice(&1u16.to_le_bytes());
        let ph = 64;
        f[ph..ph + 4].copy_from_slice(&PT_LOAD.to_le_bytes());
        f[ph + 4..ph + 8].copy_from_slice(&(PF_R | PF_X).to_le_bytes());
        f[ph + 16..ph + 24].copy_from_slice(&0x40_0000u64.to_le_bytes());
        f[ph + 32..ph + 40].copy_from_slice(&0x200u64.to_le_bytes());
        f[ph + 40..ph + 48].copy_from_slice(&0x3000u64.to_le_bytes());
        f
    }

    #[test]
    fn parses_minimal_exec() {
        let e = Elf::parse(&tiny(ET_EXEC, EM_X86_64)).unwrap();
        assert_eq!(e.entry, 0x40_1000);
        assert_eq!(e.span(), (0x40_0000, 0x40_3000));
        assert_eq!(e.phdr_vaddr(), Some(0x40_0040));
        assert!(e.interp.is_none());
    }

    #[test]
    fn rejects_bad_files() {
        assert_eq!(Elf::parse(b"#!/bin/sh\n"), Err(ElfError::NotElf));
        assert_eq!(Elf::parse(&tiny(ET_EXEC, 3)), Err(ElfError::WrongArch));
        assert_eq!(Elf::parse(&tiny(1, EM_X86_64)), Err(ElfError::WrongArch));
        let f = tiny(ET_EXEC, EM_X86_64);
        for cut in [10, 63, 100, 0x1ff] {
            assert!(Elf::parse(&f[..cut]).is_err(), "truncated at {cut}");
        }
        let mut g = f.clone();
        g[64 + 32..64 + 40].copy_from_slice(&0x4000u64.to_le_bytes()); // filesz > memsz
        assert_eq!(Elf::parse(&g), Err(ElfError::Malformed));
        let mut h = f;
        h[32..40].copy_from_slice(&u64::MAX.to_le_bytes()); // phoff overflow
        assert_eq!(Elf::parse(&h), Err(ElfError::Malformed));
    }

    #[test]
    fn finds_interp() {
        let mut f = tiny(ET_DYN, EM_X86_64);
        f[56..58].copy_from_slice(&2u16.to_le_bytes());
        let ph = 64 + 56;
        f[ph..ph + 4].copy_from_slice(&PT_INTERP.to_le_bytes());
        f[ph + 8..ph + 16].copy_from_slice(&0x100u64.to_le_bytes());
        f[ph + 32..ph + 40].copy_from_slice(&5u64.to_le_bytes());
        f[0x100..0x105].copy_from_slice(b"/ld\0\0");
        let e = Elf::parse(&f).unwrap();
        assert_eq!(e.interp.as_deref(), Some(&b"/ld"[..]));
    }
}
