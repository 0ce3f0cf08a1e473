//! Emulation of the few SSE integer instructions the precompiled `core` uses in ring-0 paths
//! (decimal integer formatting: `movd`/`movq` to and from XMM, `pinsrw`), for software KVM
//! (`kvm_pvm`), whose instruction emulator runs guest CPL 0 and cannot execute them: KVM then
//! queues #UD and exits with `KVM_EXIT_INTERNAL_ERROR` (emulation failure). H decodes the
//! instruction, performs it on the vCPU's registers/memory, drops the queued #UD and resumes.
//! On hardware KVM these instructions run natively and this code is never reached.
//!
//! Encodings: Intel SDM vol. 2 (MOVD/MOVQ 66 [REX] 0F 6E /r and 66 [REX] 0F 7E /r; PINSRW
//! 66 [REX] 0F C4 /r ib; ModRM/SIB addressing, 2.1 and 2.2.1).

use kvm_bindings::kvm_regs;

/// The instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `movd/movq xmm, r/m`: zero-extends into the XMM register.
    ToXmm,
    /// `movd/movq r/m, xmm`.
    FromXmm,
    /// `pinsrw xmm, r/m16, imm8`.
    Pinsrw(u8),
}

/// The register-or-memory operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rm {
    /// General register, x86 encoding order (rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi, r8..r15).
    Reg(u8),
    /// Memory at this guest virtual address.
    Mem(u64),
}

/// A decoded instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    /// What it does.
    pub op: Op,
    /// XMM register number.
    pub xmm: u8,
    /// The other operand.
    pub rm: Rm,
    /// 8-byte operand (REX.W) rather than 4 (2 for `pinsrw`).
    pub wide: bool,
    /// Instruction length, bytes.
    pub len: u64,
}

/// General register `i` (encoding order) of `r`.
pub fn gpr(r: &kvm_regs, i: u8) -> u64 {
    [r.rax, r.rcx, r.rdx, r.rbx, r.rsp, r.rbp, r.rsi, r.rdi, r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15]
        [usize::from(i & 15)]
}

/// Sets general register `i` of `r`.
pub fn set_gpr(r: &mut kvm_regs, i: u8, v: u64) {
    let slot = match i & 15 {
        0 => &mut r.rax,
        1 => &mut r.rcx,
        2 => &mut r.rdx,
        3 => &mut r.rbx,
        4 => &mut r.rsp,
        5 => &mut r.rbp,
        6 => &mut r.rsi,
        7 => &mut r.rdi,
        8 => &mut r.r8,
        9 => &mut r.r9,
        10 => &mut r.r10,
        11 => &mut r.r11,
        12 => &mut r.r12,
        13 => &mut r.r13,
        14 => &mut r.r14,
        _ => &mut r.r15,
    };
    *slot = v;
}

/// Decodes `code` (bytes at `regs.rip`); `None` for anything but the supported forms.
pub fn decode(code: &[u8], regs: &kvm_regs) -> Option<Insn> {
    let mut i = 0;
    if *code.first()? != 0x66 {
        return None;
    }
    i += 1;
    let mut rex = 0u8;
    if (0x40..0x50).contains(code.get(i)?) {
        rex = code[i];
        i += 1;
    }
    if *code.get(i)? != 0x0f {
        return None;
    }
    let opcode = *code.get(i + 1)?;
    i += 2;
    let modrm = *code.get(i)?;
    i += 1;
    let (md, reg, rm) = (modrm >> 6, (modrm >> 3) & 7 | (rex & 4) << 1, modrm & 7);
    let operand = if md == 3 {
        Rm::Reg(rm | (rex & 1) << 3)
    } else {
        let mut addr: u64 = 0;
        let mut rip_relative = false;
        if rm == 4 {
            let sib = *code.get(i)?;
            i += 1;
            let (scale, index, base) = (sib >> 6, (sib >> 3) & 7 | (rex & 2) << 2, sib & 7);
            if index != 4 {
                addr = addr.wrapping_add(gpr(regs, index) << scale);
            }
            if !(base == 5 && md == 0) {
                addr = addr.wrapping_add(gpr(regs, base | (rex & 1) << 3));
            }
            if base == 5 && md == 0 {
                let d = i32::from_le_bytes(code.get(i..i + 4)?.try_into().ok()?);
                addr = addr.wrapping_add(d as i64 as u64);
                i += 4;
            }
        } else if rm == 5 && md == 0 {
            rip_relative = true;
        } else {
            addr = gpr(regs, rm | (rex & 1) << 3);
        }
        match md {
            0 if rip_relative => {
                let d = i32::from_le_bytes(code.get(i..i + 4)?.try_into().ok()?);
                addr = d as i64 as u64;
                i += 4;
            }
            1 => {
                addr = addr.wrapping_add(*code.get(i)? as i8 as i64 as u64);
                i += 1;
            }
            2 => {
                let d = i32::from_le_bytes(code.get(i..i + 4)?.try_into().ok()?);
                addr = addr.wrapping_add(d as i64 as u64);
                i += 4;
            }
            _ => {}
        }
        if rip_relative {
            // Relative to the next instruction; pinsrw's immediate follows the displacement.
            let extra = u64::from(opcode == 0xc4);
            addr = addr.wrapping_add(regs.rip + i as u64 + extra);
        }
        Rm::Mem(addr)
    };
    let op = match opcode {
        0x6e => Op::ToXmm,
        0x7e => Op::FromXmm,
        0xc4 => {
            let imm = *code.get(i)?;
            i += 1;
            Op::Pinsrw(imm & 7)
        }
        _ => return None,
    };
    Some(Insn { op, xmm: reg, rm: operand, wide: rex & 8 != 0, len: i as u64 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_core_formatting_sequence() {
        let mut r = kvm_regs { rip: 0x1000, rdi: 0x5000, rbp: 0x8000, rdx: 3, r11: 2, rax: 0x10, ..Default::default() };
        // movd xmm0, eax
        let i = decode(&[0x66, 0x0f, 0x6e, 0xc0], &r).expect("movd");
        assert_eq!(i, Insn { op: Op::ToXmm, xmm: 0, rm: Rm::Reg(0), wide: false, len: 4 });
        // pinsrw xmm0, word [rdi + r11*2], 1
        let i = decode(&[0x66, 0x42, 0x0f, 0xc4, 0x04, 0x5f, 0x01], &r).expect("pinsrw");
        assert_eq!(i, Insn { op: Op::Pinsrw(1), xmm: 0, rm: Rm::Mem(0x5004), wide: false, len: 7 });
        // movd dword [rbp + rdx - 0x16], xmm0   (66 0f 7e 44 15 ea)
        let i = decode(&[0x66, 0x0f, 0x7e, 0x44, 0x15, 0xea], &r).expect("movd store");
        assert_eq!(i, Insn { op: Op::FromXmm, xmm: 0, rm: Rm::Mem(0x8003 - 0x16), wide: false, len: 6 });
        // movq r9, xmm10 (66 4d 0f 7e d1)
        let i = decode(&[0x66, 0x4d, 0x0f, 0x7e, 0xd1], &r).expect("movq");
        assert_eq!(i, Insn { op: Op::FromXmm, xmm: 10, rm: Rm::Reg(9), wide: true, len: 5 });
        // rip-relative: movd xmm1, [rip + 0x10]
        r.rip = 0x2000;
        let i = decode(&[0x66, 0x0f, 0x6e, 0x0d, 0x10, 0, 0, 0], &r).expect("rip-relative");
        assert_eq!(i.rm, Rm::Mem(0x2000 + 8 + 0x10));
        assert_eq!(decode(&[0x0f, 0x57, 0xc0], &r), None, "xorps is not supported");
        assert_eq!(decode(&[0x66, 0x0f], &r), None);
    }

    #[test]
    fn registers_round_trip() {
        let mut r = kvm_regs::default();
        for i in 0..16 {
            set_gpr(&mut r, i, u64::from(i) * 3 + 1);
        }
        for i in 0..16 {
            assert_eq!(gpr(&r, i), u64::from(i) * 3 + 1);
        }
    }
}
