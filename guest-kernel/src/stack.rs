//! The initial user stack of a new program, laid out exactly as Linux's `create_elf_tables`
//! (fs/binfmt_elf.c) does on x86-64: from the top, an 8-byte end marker, the exec file name,
//! the environment and argument strings, the platform string, 16 random bytes; then, 16-byte
//! aligned at the new `rsp`: argc, argv pointers, NULL, envp pointers, NULL, auxv pairs ending
//! with `AT_NULL`. Pure: builds the bytes for `[rsp, top)`, the loader copies them.

use alloc::vec;
use alloc::vec::Vec;

/// `AT_NULL`.
pub const AT_NULL: u64 = 0;
/// `AT_PHDR`.
pub const AT_PHDR: u64 = 3;
/// `AT_PHENT`.
pub const AT_PHENT: u64 = 4;
/// `AT_PHNUM`.
pub const AT_PHNUM: u64 = 5;
/// `AT_PAGESZ`.
pub const AT_PAGESZ: u64 = 6;
/// `AT_BASE`.
pub const AT_BASE: u64 = 7;
/// `AT_FLAGS`.
pub const AT_FLAGS: u64 = 8;
/// `AT_ENTRY`.
pub const AT_ENTRY: u64 = 9;
/// `AT_UID`.
pub const AT_UID: u64 = 11;
/// `AT_EUID`.
pub const AT_EUID: u64 = 12;
/// `AT_GID`.
pub const AT_GID: u64 = 13;
/// `AT_EGID`.
pub const AT_EGID: u64 = 14;
/// `AT_PLATFORM`.
pub const AT_PLATFORM: u64 = 15;
/// `AT_HWCAP`.
pub const AT_HWCAP: u64 = 16;
/// `AT_CLKTCK`.
pub const AT_CLKTCK: u64 = 17;
/// `AT_SECURE`.
pub const AT_SECURE: u64 = 23;
/// `AT_RANDOM`.
pub const AT_RANDOM: u64 = 25;
/// `AT_HWCAP2`.
pub const AT_HWCAP2: u64 = 26;
/// `AT_EXECFN`.
pub const AT_EXECFN: u64 = 31;
/// `AT_MINSIGSTKSZ`.
pub const AT_MINSIGSTKSZ: u64 = 51;

/// The platform string (`AT_PLATFORM`).
pub const PLATFORM: &[u8] = b"x86_64";

/// Inputs of [`build`].
pub struct StackSpec<'a> {
    /// Arguments (argv[0] first), without NULs.
    pub argv: &'a [Vec<u8>],
    /// Environment `KEY=VALUE` strings, without NULs.
    pub envp: &'a [Vec<u8>],
    /// `AT_EXECFN` string (the path given to execve).
    pub execfn: &'a [u8],
    /// `AT_RANDOM` bytes.
    pub random: [u8; 16],
    /// Auxiliary vector entries other than `AT_RANDOM`, `AT_PLATFORM`, `AT_EXECFN`, `AT_NULL`.
    pub aux: &'a [(u64, u64)],
}

/// The stack image: `bytes` go at `[rsp, top)`.
pub struct StackImage {
    /// Initial `rsp` (16-byte aligned, points at argc).
    pub rsp: u64,
    /// Contents from `rsp` to the top.
    pub bytes: Vec<u8>,
}

/// Builds the initial stack below `top` (16-byte aligned). Returns `None` when the strings do
/// not fit in `limit` bytes (E2BIG).
pub fn build(top: u64, spec: &StackSpec<'_>, limit: usize) -> Option<StackImage> {
    let strings: usize = spec.argv.iter().chain(spec.envp).map(|s| s.len() + 1).sum::<usize>()
        + spec.execfn.len() + 1 + PLATFORM.len() + 1 + 16 + 8;
    if strings > limit {
        return None;
    }
    let mut sp = top - 8; // end marker (NULL)
    let put_str = |sp: &mut u64, s: &[u8]| -> u64 {
        *sp -= s.len() as u64 + 1;
        *sp
    };
    let execfn_at = put_str(&mut sp, spec.execfn);
    let env_at: Vec<u64> = spec.envp.iter().rev().map(|s| put_str(&mut sp, s)).collect::<Vec<_>>().into_iter().rev().collect();
    let arg_at: Vec<u64> = spec.argv.iter().rev().map(|s| put_str(&mut sp, s)).collect::<Vec<_>>().into_iter().rev().collect();
    let plat_at = put_str(&mut sp, PLATFORM);
    sp &= !15;
    sp -= 16;
    let random_at = sp;
    let mut aux: Vec<(u64, u64)> = spec.aux.to_vec();
    aux.push((AT_RANDOM, random_at));
    aux.push((AT_PLATFORM, plat_at));
    aux.push((AT_EXECFN, execfn_at));
    aux.push((AT_NULL, 0));
    let words = 1 + spec.argv.len() + 1 + spec.envp.len() + 1 + aux.len() * 2;
    let rsp = (sp - words as u64 * 8) & !15;
    let mut bytes = vec![0u8; (top - rsp) as usize];
    let mut w = |addr: u64, data: &[u8]| {
        let o = (addr - rsp) as usize;
        bytes[o..o + data.len()].copy_from_slice(data);
    };
    w(execfn_at, spec.execfn);
    for (s, &a) in spec.envp.iter().zip(&env_at) {
        w(a, s);
    }
    for (s, &a) in spec.argv.iter().zip(&arg_at) {
        w(a, s);
    }
    w(plat_at, PLATFORM);
    w(random_at, &spec.random);
    let mut table: Vec<u64> = Vec::with_capacity(words);
    table.push(spec.argv.len() as u64);
    table.extend(&arg_at);
    table.push(0);
    table.extend(&env_at);
    table.push(0);
    for (k, v) in aux {
        table.push(k);
        table.push(v);
    }
    for (i, v) in table.iter().enumerate() {
        w(rsp + i as u64 * 8, &v.to_le_bytes());
    }
    Some(StackImage { rsp, bytes })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(img: &StackImage, addr: u64) -> u64 {
        let o = (addr - img.rsp) as usize;
        u64::from_le_bytes(img.bytes[o..o + 8].try_into().unwrap())
    }
    fn cstr(img: &StackImage, addr: u64) -> Vec<u8> {
        let o = (addr - img.rsp) as usize;
        img.bytes[o..].iter().take_while(|&&b| b != 0).copied().collect()
    }

    #[test]
    fn linux_layout() {
        let argv = [b"/bin/prog".to_vec(), b"a b".to_vec()];
        let envp = [b"HOME=/".to_vec()];
        let top = 0x7000_0000_0000u64 - 4096;
        let img = build(top, &StackSpec {
            argv: &argv, envp: &envp, execfn: b"/bin/prog", random: [7; 16],
            aux: &[(AT_PAGESZ, 4096), (AT_ENTRY, 0x401000)],
        }, 1 << 20).unwrap();
        assert_eq!(img.rsp % 16, 0);
        assert_eq!(img.rsp + img.bytes.len() as u64, top);
        assert_eq!(word(&img, img.rsp), 2, "argc");
        assert_eq!(cstr(&img, word(&img, img.rsp + 8)), b"/bin/prog");
        assert_eq!(cstr(&img, word(&img, img.rsp + 16)), b"a b");
        assert_eq!(word(&img, img.rsp + 24), 0);
        assert_eq!(cstr(&img, word(&img, img.rsp + 32)), b"HOME=/");
        assert_eq!(word(&img, img.rsp + 40), 0);
        let mut at = img.rsp + 48;
        let mut seen = alloc::vec::Vec::new();
        loop {
            let (k, v) = (word(&img, at), word(&img, at + 8));
            at += 16;
            if k == AT_NULL { break; }
            seen.push((k, v));
        }
        assert!(seen.contains(&(AT_PAGESZ, 4096)));
        let random = seen.iter().find(|e| e.0 == AT_RANDOM).unwrap().1;
        assert_eq!(&img.bytes[(random - img.rsp) as usize..][..16], &[7; 16]);
        let plat = seen.iter().find(|e| e.0 == AT_PLATFORM).unwrap().1;
        assert_eq!(cstr(&img, plat), b"x86_64");
        let execfn = seen.iter().find(|e| e.0 == AT_EXECFN).unwrap().1;
        assert_eq!(cstr(&img, execfn), b"/bin/prog");
        assert_eq!(word(&img, top - 8), 0, "end marker");
    }

    #[test]
    fn too_big() {
        let argv = [alloc::vec![b'x'; 5000]];
        assert!(build(0x10000, &StackSpec { argv: &argv, envp: &[], execfn: b"/x", random: [0; 16], aux: &[] }, 4096).is_none());
    }
}
