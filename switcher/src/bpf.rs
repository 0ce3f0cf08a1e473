//! A small classic-BPF builder for seccomp filters: instructions, forward labels, and helpers
//! for 64-bit argument and instruction-pointer checks (the `seccompiler` crate cannot test
//! `instruction_pointer`, design section 5). Encoding: Linux `linux/filter.h`,
//! `linux/bpf_common.h`; `struct seccomp_data` and return actions: `man 2 seccomp`.
//!
//! Classic BPF jumps only forward, by at most 255 instructions for conditional jumps: labels
//! must be bound after the jumps that use them; [`Builder::build`] reports violations.

pub use guest_abi::stub::SockFilter as Insn;

/// `BPF_LD | BPF_W | BPF_ABS`: load a 32-bit word of `seccomp_data` at offset `k`.
pub const LD_W_ABS: u16 = 0x20;
/// `BPF_JMP | BPF_JA`: unconditional jump by `k`.
pub const JMP_JA: u16 = 0x05;
/// `BPF_JMP | BPF_JEQ | BPF_K`.
pub const JMP_JEQ_K: u16 = 0x05 | 0x10;
/// `BPF_JMP | BPF_JGT | BPF_K` (unsigned).
pub const JMP_JGT_K: u16 = 0x05 | 0x20;
/// `BPF_JMP | BPF_JGE | BPF_K` (unsigned).
pub const JMP_JGE_K: u16 = 0x05 | 0x30;
/// `BPF_JMP | BPF_JSET | BPF_K` (`A & k != 0`).
pub const JMP_JSET_K: u16 = 0x05 | 0x40;
/// `BPF_RET | BPF_K`: return `k`.
pub const RET_K: u16 = 0x06;

/// `SECCOMP_RET_KILL_PROCESS`.
pub const RET_KILL_PROCESS: u32 = 0x8000_0000;
/// `SECCOMP_RET_TRAP`: deliver SIGSYS (the syscall is not executed).
pub const RET_TRAP: u32 = 0x0003_0000;
/// `SECCOMP_RET_ERRNO` (low 16 bits: errno).
pub const RET_ERRNO: u32 = 0x0005_0000;
/// `SECCOMP_RET_ALLOW`.
pub const RET_ALLOW: u32 = 0x7fff_0000;

/// `AUDIT_ARCH_X86_64` (`linux/audit.h`).
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// `AUDIT_ARCH_I386`.
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;

/// Offset of `seccomp_data.nr` (i32).
pub const OFF_NR: u32 = 0;
/// Offset of `seccomp_data.arch` (u32).
pub const OFF_ARCH: u32 = 4;
/// Offset of `seccomp_data.instruction_pointer` (u64, little endian).
pub const OFF_IP: u32 = 8;
/// Offset of `seccomp_data.args[i]` (u64, little endian).
pub const fn off_arg(i: u32) -> u32 {
    16 + 8 * i
}

/// A jump target: a label, or the next instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Fall through to the next instruction.
    Next,
    /// A label made by [`Builder::label`].
    Label(Label),
}

/// A forward jump target. Bind it with [`Builder::bind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Label(usize);

#[derive(Clone, Copy, Debug)]
enum Op {
    Plain(Insn),
    Cond { code: u16, k: u32, jt: Target, jf: Target },
    Jump(Label),
}

/// Builds a classic-BPF program.
#[derive(Debug, Default)]
pub struct Builder {
    ops: Vec<Op>,
    labels: Vec<Option<usize>>,
}

impl Builder {
    /// An empty program.
    pub fn new() -> Self {
        Self::default()
    }

    /// A new, unbound label.
    pub fn label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() - 1)
    }

    /// Binds `l` to the next instruction emitted. Binding twice is an error at build time.
    pub fn bind(&mut self, l: Label) -> &mut Self {
        if self.labels[l.0].is_some() {
            self.labels[l.0] = Some(usize::MAX);
        } else {
            self.labels[l.0] = Some(self.ops.len());
        }
        self
    }

    /// Emits a raw instruction.
    pub fn insn(&mut self, i: Insn) -> &mut Self {
        self.ops.push(Op::Plain(i));
        self
    }

    /// `A = seccomp_data[off .. off + 4]`.
    pub fn load(&mut self, off: u32) -> &mut Self {
        self.insn(Insn { code: LD_W_ABS, jt: 0, jf: 0, k: off })
    }

    /// `return action`.
    pub fn ret(&mut self, action: u32) -> &mut Self {
        self.insn(Insn { code: RET_K, jt: 0, jf: 0, k: action })
    }

    /// Conditional jump (`code` one of the `JMP_*_K`) comparing `A` with `k`.
    pub fn cond(&mut self, code: u16, k: u32, jt: Target, jf: Target) -> &mut Self {
        self.ops.push(Op::Cond { code, k, jt, jf });
        self
    }

    /// Unconditional jump to `l`.
    pub fn jump(&mut self, l: Label) -> &mut Self {
        self.ops.push(Op::Jump(l));
        self
    }

    /// If `A == k` go to `l`.
    pub fn jeq(&mut self, k: u32, l: Label) -> &mut Self {
        self.cond(JMP_JEQ_K, k, Target::Label(l), Target::Next)
    }

    /// If `A != k` go to `l`.
    pub fn jne(&mut self, k: u32, l: Label) -> &mut Self {
        self.cond(JMP_JEQ_K, k, Target::Next, Target::Label(l))
    }

    /// Unless the 64-bit field at `off` equals `v`, go to `fail`.
    pub fn arg64_eq(&mut self, off: u32, v: u64, fail: Label) -> &mut Self {
        self.load(off + 4).jne((v >> 32) as u32, fail);
        self.load(off).jne(v as u32, fail)
    }

    /// Unless the 64-bit field at `off` is `< limit` (unsigned), go to `fail`.
    pub fn arg64_lt(&mut self, off: u32, limit: u64, fail: Label) -> &mut Self {
        let (hi, lo) = ((limit >> 32) as u32, limit as u32);
        let ok = self.label();
        self.load(off + 4);
        self.cond(JMP_JGT_K, hi, Target::Label(fail), Target::Next);
        self.cond(JMP_JEQ_K, hi, Target::Next, Target::Label(ok));
        self.load(off);
        self.cond(JMP_JGE_K, lo, Target::Label(fail), Target::Next);
        self.bind(ok)
    }

    /// Unless the 64-bit field at `off` is `>= min` (unsigned), go to `fail`.
    pub fn arg64_ge(&mut self, off: u32, min: u64, fail: Label) -> &mut Self {
        let (hi, lo) = ((min >> 32) as u32, min as u32);
        let ok = self.label();
        self.load(off + 4);
        self.cond(JMP_JGT_K, hi, Target::Label(ok), Target::Next);
        self.cond(JMP_JEQ_K, hi, Target::Next, Target::Label(fail));
        self.load(off);
        self.cond(JMP_JGE_K, lo, Target::Next, Target::Label(fail));
        self.bind(ok)
    }

    /// Unless `start <= field(off) < end`, go to `fail`.
    pub fn arg64_in(&mut self, off: u32, start: u64, end: u64, fail: Label) -> &mut Self {
        self.arg64_ge(off, start, fail);
        self.arg64_lt(off, end, fail)
    }

    /// Unless `(field(off) & mask) == 0` (64-bit), go to `fail`.
    pub fn arg64_clear(&mut self, off: u32, mask: u64, fail: Label) -> &mut Self {
        self.load(off + 4);
        self.cond(JMP_JSET_K, (mask >> 32) as u32, Target::Label(fail), Target::Next);
        self.load(off);
        self.cond(JMP_JSET_K, mask as u32, Target::Label(fail), Target::Next)
    }

    /// Unless `start <= instruction_pointer < end`, go to `fail`.
    pub fn ip_in(&mut self, start: u64, end: u64, fail: Label) -> &mut Self {
        self.arg64_in(OFF_IP, start, end, fail)
    }

    /// Resolves labels and returns the program.
    ///
    /// Errors: an unbound or doubly bound label, a backward jump, a conditional jump farther
    /// than 255 instructions, or a program longer than [`guest_abi::stub::MAX_FILTER_INSNS`].
    pub fn build(&self) -> Result<Vec<Insn>, crate::SwitcherError> {
        let err = |m: String| crate::SwitcherError::Bpf(m);
        if self.ops.len() > guest_abi::stub::MAX_FILTER_INSNS {
            return Err(err(format!("{} instructions", self.ops.len())));
        }
        let target = |i: usize, t: Target| -> Result<usize, crate::SwitcherError> {
            match t {
                Target::Next => Ok(0),
                Target::Label(l) => match self.labels[l.0] {
                    None => Err(err(format!("label {} unbound", l.0))),
                    Some(usize::MAX) => Err(err(format!("label {} bound twice", l.0))),
                    Some(pos) if pos <= i => Err(err(format!("backward jump at {i}"))),
                    Some(pos) => Ok(pos - i - 1),
                },
            }
        };
        let mut out = Vec::with_capacity(self.ops.len());
        for (i, op) in self.ops.iter().enumerate() {
            out.push(match *op {
                Op::Plain(insn) => insn,
                Op::Cond { code, k, jt, jf } => {
                    let (t, f) = (target(i, jt)?, target(i, jf)?);
                    let (Ok(t), Ok(f)) = (u8::try_from(t), u8::try_from(f)) else {
                        return Err(err(format!("jump too far at {i}")));
                    };
                    Insn { code, jt: t, jf: f, k }
                }
                Op::Jump(l) => Insn { code: JMP_JA, jt: 0, jf: 0, k: target(i, Target::Label(l))? as u32 },
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpf_interp::{Data, run};

    fn prog_lt(limit: u64) -> Vec<Insn> {
        let mut b = Builder::new();
        let fail = b.label();
        b.arg64_lt(off_arg(0), limit, fail).ret(RET_ALLOW).bind(fail).ret(RET_TRAP);
        b.build().expect("valid program")
    }

    #[test]
    fn arg64_lt_compares_both_halves() {
        let limit = 0x7000_0000_0000;
        let p = prog_lt(limit);
        for (v, allowed) in [
            (0u64, true),
            (limit - 1, true),
            (limit, false),
            (limit + 1, false),
            (0x6fff_ffff_ffff, true),
            (0x7000_0000_0001, false),
            (0x0000_0001_ffff_ffff, true),
            (u64::MAX, false),
        ] {
            let d = Data { args: [v, 0, 0, 0, 0, 0], ..Data::default() };
            assert_eq!(run(&p, &d) == RET_ALLOW, allowed, "value {v:#x}");
        }
    }

    #[test]
    fn arg64_ge_and_in() {
        let mut b = Builder::new();
        let fail = b.label();
        b.arg64_in(off_arg(1), 0x1_0000, 0x2_0000_0000, fail).ret(RET_ALLOW).bind(fail).ret(RET_TRAP);
        let p = b.build().expect("valid program");
        for (v, allowed) in [
            (0xffffu64, false),
            (0x1_0000, true),
            (0x1_ffff_ffff, true),
            (0x2_0000_0000, false),
            (0x1_0000_0000, true),
            (0x0_ffff_0000, true),
            (0x0_0000_ffff, false),
        ] {
            let d = Data { args: [0, v, 0, 0, 0, 0], ..Data::default() };
            assert_eq!(run(&p, &d) == RET_ALLOW, allowed, "value {v:#x}");
        }
    }

    #[test]
    fn arg64_eq_and_clear() {
        let mut b = Builder::new();
        let fail = b.label();
        b.arg64_eq(off_arg(4), 3, fail).arg64_clear(off_arg(2), !7, fail).ret(RET_ALLOW).bind(fail).ret(RET_TRAP);
        let p = b.build().expect("valid program");
        let d = |fd: u64, prot: u64| Data { args: [0, 0, prot, 0, fd, 0], ..Data::default() };
        assert_eq!(run(&p, &d(3, 7)), RET_ALLOW);
        assert_eq!(run(&p, &d(3, 8)), RET_TRAP);
        assert_eq!(run(&p, &d(3, 1 << 40)), RET_TRAP);
        assert_eq!(run(&p, &d(4, 1)), RET_TRAP);
        assert_eq!(run(&p, &d((1 << 32) | 3, 1)), RET_TRAP);
    }

    #[test]
    fn build_rejects_bad_labels() {
        let mut b = Builder::new();
        let l = b.label();
        b.jeq(1, l).ret(RET_ALLOW);
        assert!(b.build().is_err(), "unbound label");
        let mut b = Builder::new();
        let l = b.label();
        b.bind(l).ret(RET_ALLOW).jeq(1, l);
        assert!(b.build().is_err(), "backward jump");
        let mut b = Builder::new();
        let l = b.label();
        b.jeq(1, l);
        for _ in 0..300 {
            b.ret(RET_ALLOW);
        }
        b.bind(l).ret(RET_TRAP);
        assert!(b.build().is_err(), "too far");
        let mut b = Builder::new();
        let l = b.label();
        b.jump(l);
        for _ in 0..300 {
            b.ret(RET_ALLOW);
        }
        b.bind(l).ret(RET_TRAP);
        let p = b.build().expect("JA has a 32-bit offset");
        assert_eq!(run(&p, &Data::default()), RET_TRAP);
    }
}
