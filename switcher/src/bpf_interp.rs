//! A classic-BPF interpreter over `struct seccomp_data`, for testing the filters this crate
//! builds without installing them (semantics: Linux `net/core/filter.c`, seccomp subset).

use crate::bpf::Insn;

/// A `struct seccomp_data` (`man 2 seccomp`).
#[derive(Clone, Copy, Debug)]
pub struct Data {
    pub nr: i32,
    pub arch: u32,
    pub ip: u64,
    pub args: [u64; 6],
}

impl Default for Data {
    fn default() -> Self {
        Self { nr: 0, arch: crate::bpf::AUDIT_ARCH_X86_64, ip: 0, args: [0; 6] }
    }
}

impl Data {
    fn word(&self, off: u32) -> u32 {
        let mut bytes = [0u8; 64];
        bytes[0..4].copy_from_slice(&self.nr.to_le_bytes());
        bytes[4..8].copy_from_slice(&self.arch.to_le_bytes());
        bytes[8..16].copy_from_slice(&self.ip.to_le_bytes());
        for (i, a) in self.args.iter().enumerate() {
            bytes[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
        }
        let o = off as usize;
        assert!(o.is_multiple_of(4) && o + 4 <= 64, "bad load offset {off}");
        u32::from_le_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]])
    }
}

/// Runs `prog` on `data` and returns the action. Panics on anything the seccomp verifier would
/// reject (unknown opcode, running off the end).
pub fn run(prog: &[Insn], data: &Data) -> u32 {
    let mut a: u32 = 0;
    let mut pc = 0usize;
    loop {
        let i = prog[pc];
        pc += 1;
        match i.code {
            0x20 => a = data.word(i.k),
            0x06 => return i.k,
            0x05 => pc += i.k as usize,
            0x15 | 0x25 | 0x35 | 0x45 => {
                let taken = match i.code {
                    0x15 => a == i.k,
                    0x25 => a > i.k,
                    0x35 => a >= i.k,
                    _ => a & i.k != 0,
                };
                pc += if taken { i.jt as usize } else { i.jf as usize };
            }
            0x54 => a &= i.k,
            c => panic!("opcode {c:#x} not supported"),
        }
    }
}
