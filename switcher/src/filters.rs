//! The three per-role seccomp filters (design section 5), built on the host and handed to the
//! stub in its setup record, which installs them verbatim:
//! - [`u_guest`]: U guest threads. From guest code every system call is `SECCOMP_RET_TRAP`
//!   (that is how guest syscalls reach the guest kernel). From inside the stub text only
//!   `futex` `FUTEX_WAIT`/`FUTEX_WAKE` (shared or private) on a word of the stub's own handoff
//!   memory (this space's PVCSs, the command area's run words, the stub's data) is allowed;
//!   anything else from the stub text kills U (that is also how the stub dies). No
//!   `rt_sigreturn`: the stub's handlers return by themselves. A call of another
//!   architecture (`int 0x80`) traps from guest code (the stub turns it into a #GP) and kills
//!   from the stub text.
//! - [`u_mapper`]: U's mapper thread. `mmap(addr, len, prot, MAP_SHARED|MAP_FIXED, 3, off)`,
//!   `munmap`/`mprotect` inside the guest user range, `futex`, and `write` of at most one
//!   completion packet to one of the `vcpus` completion fds from `COMPLETION_FD` on (each
//!   mapper writes the one its read-only command area names); anything else kills.
//! - [`k_thread`]: K's vCPU threads. `futex` wait/wake, `exit`; anything else kills.

use crate::SwitcherError;
use crate::bpf::{AUDIT_ARCH_X86_64, Builder, Insn, OFF_ARCH, OFF_NR, RET_ALLOW, RET_KILL_PROCESS, RET_TRAP, off_arg};
use guest_abi::layout;

/// x86-64 syscall numbers used by the filters (`arch/x86/entry/syscalls/syscall_64.tbl`).
pub mod nr {
    /// `mmap`.
    pub const MMAP: u32 = 9;
    /// `mprotect`.
    pub const MPROTECT: u32 = 10;
    /// `munmap`.
    pub const MUNMAP: u32 = 11;
    /// `write`.
    pub const WRITE: u32 = 1;
    /// `rt_sigreturn`.
    pub const RT_SIGRETURN: u32 = 15;
    /// `exit`.
    pub const EXIT: u32 = 60;
    /// `futex`.
    pub const FUTEX: u32 = 202;
}

/// `MAP_SHARED | MAP_FIXED`, the only mmap flags the mapper may use.
pub const MAPPER_MMAP_FLAGS: u64 = 0x01 | 0x10;
/// Largest length the mapper filter lets through, bytes: with `addr < USER_END` it keeps
/// `addr + len` below `PHYSMAP_BASE`, hence below the stub area.
pub const MAPPER_MAX_LEN: u64 = layout::PHYSMAP_BASE - layout::USER_END;

fn arch_check(b: &mut Builder, kill: crate::bpf::Label) {
    b.load(OFF_ARCH).jne(AUDIT_ARCH_X86_64, kill);
}

/// `FUTEX_WAIT`, `FUTEX_WAKE` and their `FUTEX_PRIVATE_FLAG` forms: the only futex
/// operations the stub uses (`man 2 futex`).
pub const STUB_FUTEX_OPS: [u32; 4] = [0, 1, 128, 129];

/// Where the U stub's futex words live: the stub image's writable segment `data`
/// (from [`crate::image::StubImage::data`]), this space's PVCSs and the command area.
#[derive(Clone, Copy, Debug)]
pub struct StubWords {
    /// Stub text `[start, end)` ([`crate::image::StubImage::text`]).
    pub text: (u64, u64),
    /// Stub data and bss `[start, end)`.
    pub data: (u64, u64),
    /// vCPUs of the space (PVCSs mapped at `U_PVCS_BASE`).
    pub vcpus: u32,
}

/// The U guest-thread filter. The instruction pointer seccomp reports is the address after
/// the `syscall` instruction, which lies inside the stub text for the stub's own calls.
pub fn u_guest(w: &StubWords) -> Result<Vec<Insn>, SwitcherError> {
    let mut b = Builder::new();
    let (kill, trap, stub_call, word, ok) = (b.label(), b.label(), b.label(), b.label(), b.label());
    let (not_data, not_pvcs, other_arch) = (b.label(), b.label(), b.label());
    // Another architecture (`int 0x80` from 64-bit code: AUDIT_ARCH_I386) from guest code
    // traps too; the stub reports it as the #GP a kernel without IA-32 emulation raises.
    b.load(OFF_ARCH).jne(AUDIT_ARCH_X86_64, other_arch);
    b.ip_in(w.text.0, w.text.1, trap).jump(stub_call);
    b.bind(other_arch).ip_in(w.text.0, w.text.1, trap).ret(RET_KILL_PROCESS);
    b.bind(trap).ret(RET_TRAP);
    b.bind(stub_call).load(OFF_NR).jne(nr::FUTEX, kill);
    // The operation: the low word of arg 1 one of STUB_FUTEX_OPS, the high word zero.
    b.load(off_arg(1) + 4).jne(0, kill).load(off_arg(1));
    for op in STUB_FUTEX_OPS {
        b.jeq(op, word);
    }
    b.jump(kill);
    // The word: inside one of the stub's three handoff ranges.
    let pvcs_end = layout::U_PVCS_BASE + u64::from(w.vcpus) * layout::PVCS_SIZE;
    let run = layout::U_MAPPER_CMD_BASE + core::mem::offset_of!(guest_abi::mapper::MapperCmd, run) as u64;
    let run_end = run + 4 * u64::from(guest_abi::MAX_VCPUS);
    b.bind(word).arg64_in(off_arg(0), w.data.0, w.data.1, not_data).jump(ok);
    b.bind(not_data).arg64_in(off_arg(0), layout::U_PVCS_BASE, pvcs_end, not_pvcs).jump(ok);
    b.bind(not_pvcs).arg64_in(off_arg(0), run, run_end, kill);
    b.bind(ok).ret(RET_ALLOW);
    b.bind(kill).ret(RET_KILL_PROCESS);
    b.build()
}

/// The U mapper-thread filter of a U with `vcpus` mapper threads (all of them install it).
pub fn u_mapper(vcpus: u32) -> Result<Vec<Insn>, SwitcherError> {
    let mut b = Builder::new();
    let (kill, mmap, mprotect, range, allow, write) = (b.label(), b.label(), b.label(), b.label(), b.label(), b.label());
    arch_check(&mut b, kill);
    b.load(OFF_NR)
        .jeq(nr::MMAP, mmap)
        .jeq(nr::MPROTECT, mprotect)
        .jeq(nr::MUNMAP, range)
        .jeq(nr::FUTEX, allow)
        .jeq(nr::WRITE, write)
        .ret(RET_KILL_PROCESS);
    // One completion packet: write(COMPLETION_FD + i, buf, 1 ..= COMPLETION_FAILED_BASE + MAX_OPS).
    let max_packet = (guest_abi::mapper::COMPLETION_FAILED_BASE + guest_abi::mapper::MAX_OPS) as u64;
    let first_fd = guest_abi::stub::COMPLETION_FD as u64;
    b.bind(write)
        .arg64_in(off_arg(0), first_fd, first_fd + u64::from(vcpus), kill)
        .arg64_in(off_arg(2), 1, max_packet + 1, kill)
        .jump(allow);
    b.bind(mmap)
        .arg64_eq(off_arg(3), MAPPER_MMAP_FLAGS, kill)
        .arg64_eq(off_arg(4), guest_abi::mapper::U_GUEST_MEM_FD as u64, kill);
    b.bind(mprotect).arg64_clear(off_arg(2), !7, kill);
    b.bind(range)
        .arg64_in(off_arg(0), layout::USER_START, layout::USER_END, kill)
        .arg64_lt(off_arg(1), MAPPER_MAX_LEN, kill);
    b.bind(allow).ret(RET_ALLOW);
    b.bind(kill).ret(RET_KILL_PROCESS);
    b.build()
}

/// The K vCPU-thread filter: `exit`, and `futex` with one of [`STUB_FUTEX_OPS`] (the guest
/// kernel waits and wakes; requeue and PI operations could move H's waiters or probe host
/// pids).
pub fn k_thread() -> Result<Vec<Insn>, SwitcherError> {
    let mut b = Builder::new();
    let (kill, allow, futex) = (b.label(), b.label(), b.label());
    arch_check(&mut b, kill);
    b.load(OFF_NR).jeq(nr::FUTEX, futex).jeq(nr::EXIT, allow).ret(RET_KILL_PROCESS);
    b.bind(futex).load(off_arg(1) + 4).jne(0, kill).load(off_arg(1));
    for op in STUB_FUTEX_OPS {
        b.jeq(op, allow);
    }
    b.jump(kill);
    b.bind(allow).ret(RET_ALLOW);
    b.bind(kill).ret(RET_KILL_PROCESS);
    b.build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpf::AUDIT_ARCH_I386;
    use crate::bpf_interp::{Data, run};

    const TEXT: (u64, u64) = (0x7fe0_0000_0000, 0x7fe0_0000_3000);
    const DATA: (u64, u64) = (0x7fe0_0000_5000, 0x7fe0_0000_7000);
    const WORDS: StubWords = StubWords { text: TEXT, data: DATA, vcpus: 2 };

    fn sys(nr: u32, ip: u64) -> Data {
        Data { nr: nr as i32, ip, ..Data::default() }
    }

    fn futex(ip: u64, uaddr: u64, op: u64) -> Data {
        Data { nr: nr::FUTEX as i32, ip, args: [uaddr, op, 0, 0, 0, 0], ..Data::default() }
    }

    #[test]
    fn guest_filter_traps_guest_calls_and_allows_only_stub_futex_wait_wake() {
        let p = u_guest(&WORDS).expect("builds");
        let inside = TEXT.0 + 0x123;
        let pvcs = layout::U_PVCS_BASE;
        let run_word = layout::U_MAPPER_CMD_BASE + 64;
        for op in STUB_FUTEX_OPS {
            let op = u64::from(op);
            assert_eq!(run(&p, &futex(inside, pvcs, op)), RET_ALLOW, "op {op} on a PVCS word");
            assert_eq!(run(&p, &futex(inside, pvcs + layout::PVCS_SIZE + 64, op)), RET_ALLOW, "vCPU 1");
            assert_eq!(run(&p, &futex(inside, DATA.0 + 8, op)), RET_ALLOW, "stub data");
            assert_eq!(run(&p, &futex(inside, run_word, op)), RET_ALLOW, "run word");
            assert_eq!(run(&p, &futex(TEXT.0, pvcs, op)), RET_ALLOW, "start of text");
            assert_eq!(run(&p, &futex(0x40_1000, pvcs, op)), RET_TRAP, "from guest code: a guest futex");
            assert_eq!(run(&p, &futex(TEXT.1, pvcs, op)), RET_TRAP, "end is exclusive");
            assert_eq!(run(&p, &futex(TEXT.0 + (1 << 32), pvcs, op)), RET_TRAP, "same low half");
            for bad in [0x40_0000, pvcs + 2 * layout::PVCS_SIZE, DATA.1, TEXT.0, layout::U_MAPPER_DONE_BASE,
                layout::U_MAPPER_CMD_BASE, layout::U_MAPPER_CMD_BASE + 128, layout::K_SHARED_BASE, pvcs + (1 << 32)]
            {
                assert_eq!(run(&p, &futex(inside, bad, op)), RET_KILL_PROCESS, "op {op} on {bad:#x}");
            }
        }
        for op in [2u64, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 128 + 4, 128 + 6, 1 << 32, (1 << 32) | 1, 256] {
            assert_eq!(run(&p, &futex(inside, pvcs, op)), RET_KILL_PROCESS, "op {op:#x} from stub text");
            assert_eq!(run(&p, &futex(0x40_1000, pvcs, op)), RET_TRAP, "op {op:#x} from guest code");
        }
        for n in [0u32, 1, 9, 15, 39, 57, 59, 60, 62, 101, 165, 169, 231, 0x4000_0000 | 202, 0xffff_ffff] {
            assert_eq!(run(&p, &sys(n, inside)), RET_KILL_PROCESS, "nr {n:#x} from stub text");
            assert_eq!(run(&p, &sys(n, 0x40_1000)), RET_TRAP, "nr {n:#x} from guest");
        }
        let mut d = futex(inside, pvcs, 0);
        d.arch = AUDIT_ARCH_I386;
        assert_eq!(run(&p, &d), RET_KILL_PROCESS, "i386 call from stub text");
        d.nr = 39;
        assert_eq!(run(&p, &d), RET_KILL_PROCESS);
        d.ip = 0x40_1000;
        assert_eq!(run(&p, &d), RET_TRAP, "int 0x80 from guest code");
        d.nr = 202;
        assert_eq!(run(&p, &d), RET_TRAP);
    }

    fn mmap(addr: u64, len: u64, prot: u64, flags: u64, fd: u64) -> Data {
        Data { nr: nr::MMAP as i32, args: [addr, len, prot, flags, fd, 0x1000], ..Data::default() }
    }

    #[test]
    fn mapper_filter_checks_mmap_arguments() {
        let p = u_mapper(2).expect("builds");
        let ok = |d: &Data| run(&p, d) == RET_ALLOW;
        assert!(ok(&mmap(0x40_0000, 0x1000, 5, 0x11, 3)));
        assert!(ok(&mmap(layout::USER_START, 0x1000, 3, 0x11, 3)));
        assert!(ok(&mmap(layout::USER_END - 0x1000, 0x1000, 3, 0x11, 3)));
        assert!(!ok(&mmap(layout::USER_START - 0x1000, 0x1000, 3, 0x11, 3)), "below user range");
        assert!(!ok(&mmap(layout::USER_END, 0x1000, 3, 0x11, 3)), "at user end");
        assert!(!ok(&mmap(layout::STUB_BASE, 0x1000, 3, 0x11, 3)), "stub area");
        assert!(!ok(&mmap(0x40_0000, MAPPER_MAX_LEN, 3, 0x11, 3)), "too long");
        assert!(!ok(&mmap(0x40_0000, 0x1000, 3, 0x11, 4)), "other fd");
        assert!(!ok(&mmap(0x40_0000, 0x1000, 3, 0x11, (1 << 32) | 3)), "fd high bits");
        assert!(!ok(&mmap(0x40_0000, 0x1000, 3, 0x12, 3)), "private");
        assert!(!ok(&mmap(0x40_0000, 0x1000, 3, 0x31, 3)), "anonymous");
        assert!(!ok(&mmap(0x40_0000, 0x1000, 3, 0x10_0011, 3)), "extra flags");
        assert!(!ok(&mmap(0x40_0000, 0x1000, 0x0100_0000, 0x11, 3)), "PROT_GROWSDOWN");
        let other = |nr: u32, args: [u64; 6]| run(&p, &Data { nr: nr as i32, args, ..Data::default() });
        assert_eq!(other(nr::MUNMAP, [0x40_0000, 0x2000, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(other(nr::MUNMAP, [layout::STUB_BASE, 0x2000, 0, 0, 0, 0]), RET_KILL_PROCESS);
        assert_eq!(other(nr::MUNMAP, [0, 0x2000, 0, 0, 0, 0]), RET_KILL_PROCESS);
        assert_eq!(other(nr::MPROTECT, [0x40_0000, 0x2000, 1, 0, 0, 0]), RET_ALLOW);
        assert_eq!(other(nr::MPROTECT, [0x40_0000, 0x2000, 8, 0, 0, 0]), RET_KILL_PROCESS);
        assert_eq!(other(nr::MPROTECT, [layout::K_SHARED_BASE, 0x2000, 1, 0, 0, 0]), RET_KILL_PROCESS);
        assert_eq!(other(nr::FUTEX, [0; 6]), RET_ALLOW);
        let fd = guest_abi::stub::COMPLETION_FD as u64;
        let most = (guest_abi::mapper::COMPLETION_FAILED_BASE + guest_abi::mapper::MAX_OPS) as u64;
        assert_eq!(other(nr::WRITE, [fd, 0x7fe0_2010_0000, 1, 0, 0, 0]), RET_ALLOW);
        assert_eq!(other(nr::WRITE, [fd + 1, 0x7fe0_2010_0000, 1, 0, 0, 0]), RET_ALLOW, "vCPU 1's pipe");
        assert_eq!(other(nr::WRITE, [fd + 2, 0x7fe0_2010_0000, 1, 0, 0, 0]), RET_KILL_PROCESS, "no vCPU 2");
        assert_eq!(other(nr::WRITE, [fd - 1, 0x7fe0_2010_0000, 1, 0, 0, 0]), RET_KILL_PROCESS, "the setup fd");
        assert_eq!(other(nr::WRITE, [fd, 0x7fe0_2010_0000, most, 0, 0, 0]), RET_ALLOW);
        assert_eq!(other(nr::WRITE, [fd, 0x7fe0_2010_0000, most + 1, 0, 0, 0]), RET_KILL_PROCESS);
        assert_eq!(other(nr::WRITE, [fd, 0x7fe0_2010_0000, 0, 0, 0, 0]), RET_KILL_PROCESS);
        assert_eq!(other(nr::WRITE, [1, 0x7fe0_2010_0000, 1, 0, 0, 0]), RET_KILL_PROCESS, "stdout");
        assert_eq!(other(nr::WRITE, [fd | (1 << 32), 0x7fe0_2010_0000, 1, 0, 0, 0]), RET_KILL_PROCESS);
        for n in [0u32, 2, 39, 56, 57, 59, 60, 62, 231, 257, 462] {
            assert_eq!(other(n, [0x40_0000, 0x1000, 3, 0x11, 3, 0]), RET_KILL_PROCESS, "nr {n}");
        }
        let mut d = mmap(0x40_0000, 0x1000, 5, 0x11, 3);
        d.arch = AUDIT_ARCH_I386;
        assert_eq!(run(&p, &d), RET_KILL_PROCESS);
    }

    #[test]
    fn k_filter_allows_futex_wait_wake_and_exit_only() {
        let p = k_thread().expect("builds");
        assert_eq!(run(&p, &sys(nr::FUTEX, 0)), RET_ALLOW);
        assert_eq!(run(&p, &sys(nr::EXIT, 0)), RET_ALLOW);
        for op in STUB_FUTEX_OPS {
            assert_eq!(run(&p, &futex(0, 0x7fe1_0000_0000, u64::from(op))), RET_ALLOW, "op {op}");
        }
        for op in [2u64, 3, 4, 6, 9, 10, 11, 13, 128 + 3, 1 << 32] {
            assert_eq!(run(&p, &futex(0, 0x7fe1_0000_0000, op)), RET_KILL_PROCESS, "op {op:#x}");
        }
        for n in [0u32, 1, 9, 15, 39, 56, 231, 0x4000_0000 | 202] {
            assert_eq!(run(&p, &sys(n, 0)), RET_KILL_PROCESS, "nr {n:#x}");
        }
        let mut d = sys(nr::FUTEX, 0);
        d.arch = AUDIT_ARCH_I386;
        assert_eq!(run(&p, &d), RET_KILL_PROCESS);
    }
}
