//! The three per-role seccomp filters (design section 5), built on the host and handed to the
//! stub in its setup record, which installs them verbatim:
//! - [`u_guest`]: U guest threads. `futex` and `rt_sigreturn` only from inside the stub text;
//!   every other system call `SECCOMP_RET_TRAP` (that is how guest syscalls reach the guest
//!   kernel); a non-x86-64 architecture (int 0x80, compat mode) kills the process.
//! - [`u_mapper`]: U's mapper thread. `mmap(addr, len, prot, MAP_SHARED|MAP_FIXED, 3, off)`,
//!   `munmap`/`mprotect` inside the guest user range, `futex`; anything else kills.
//! - [`k_thread`]: K's vCPU threads. `futex`, `exit`; anything else kills.

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

/// The U guest-thread filter. `text` is the stub text range `[start, end)` (from
/// [`crate::image::StubImage::text`]): the instruction pointer seccomp reports is the address
/// after the `syscall` instruction, which lies inside it for the stub's own calls.
pub fn u_guest(text_start: u64, text_end: u64) -> Result<Vec<Insn>, SwitcherError> {
    let mut b = Builder::new();
    let (kill, trap, check_ip) = (b.label(), b.label(), b.label());
    arch_check(&mut b, kill);
    b.load(OFF_NR).jeq(nr::FUTEX, check_ip).jeq(nr::RT_SIGRETURN, check_ip).ret(RET_TRAP);
    b.bind(check_ip).ip_in(text_start, text_end, trap).ret(RET_ALLOW);
    b.bind(trap).ret(RET_TRAP);
    b.bind(kill).ret(RET_KILL_PROCESS);
    b.build()
}

/// The U mapper-thread filter.
pub fn u_mapper() -> Result<Vec<Insn>, SwitcherError> {
    let mut b = Builder::new();
    let (kill, mmap, mprotect, range, allow) = (b.label(), b.label(), b.label(), b.label(), b.label());
    arch_check(&mut b, kill);
    b.load(OFF_NR)
        .jeq(nr::MMAP, mmap)
        .jeq(nr::MPROTECT, mprotect)
        .jeq(nr::MUNMAP, range)
        .jeq(nr::FUTEX, allow)
        .ret(RET_KILL_PROCESS);
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

/// The K vCPU-thread filter.
pub fn k_thread() -> Result<Vec<Insn>, SwitcherError> {
    let mut b = Builder::new();
    let (kill, allow) = (b.label(), b.label());
    arch_check(&mut b, kill);
    b.load(OFF_NR).jeq(nr::FUTEX, allow).jeq(nr::EXIT, allow).ret(RET_KILL_PROCESS);
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

    fn sys(nr: u32, ip: u64) -> Data {
        Data { nr: nr as i32, ip, ..Data::default() }
    }

    #[test]
    fn guest_filter_allows_futex_and_sigreturn_only_from_stub_text() {
        let p = u_guest(TEXT.0, TEXT.1).expect("builds");
        let inside = TEXT.0 + 0x123;
        for n in [nr::FUTEX, nr::RT_SIGRETURN] {
            assert_eq!(run(&p, &sys(n, inside)), RET_ALLOW);
            assert_eq!(run(&p, &sys(n, TEXT.0)), RET_ALLOW);
            assert_eq!(run(&p, &sys(n, TEXT.1)), RET_TRAP, "end is exclusive");
            assert_eq!(run(&p, &sys(n, TEXT.0 - 1)), RET_TRAP);
            assert_eq!(run(&p, &sys(n, 0x40_1000)), RET_TRAP, "guest code");
            assert_eq!(run(&p, &sys(n, TEXT.0 + (1 << 32))), RET_TRAP, "same low half");
            assert_eq!(run(&p, &sys(n, inside - (1 << 32))), RET_TRAP);
        }
        for n in [0u32, 1, 9, 39, 57, 59, 60, 62, 101, 165, 169, 231, 0x4000_0000 | 202, 0xffff_ffff] {
            assert_eq!(run(&p, &sys(n, inside)), RET_TRAP, "nr {n:#x} from stub text");
            assert_eq!(run(&p, &sys(n, 0x40_1000)), RET_TRAP, "nr {n:#x} from guest");
        }
        let mut d = sys(nr::FUTEX, inside);
        d.arch = AUDIT_ARCH_I386;
        assert_eq!(run(&p, &d), RET_KILL_PROCESS);
        d.nr = 39;
        assert_eq!(run(&p, &d), RET_KILL_PROCESS);
    }

    fn mmap(addr: u64, len: u64, prot: u64, flags: u64, fd: u64) -> Data {
        Data { nr: nr::MMAP as i32, args: [addr, len, prot, flags, fd, 0x1000], ..Data::default() }
    }

    #[test]
    fn mapper_filter_checks_mmap_arguments() {
        let p = u_mapper().expect("builds");
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
        for n in [0u32, 1, 2, 39, 56, 57, 59, 60, 62, 231, 257, 462] {
            assert_eq!(other(n, [0x40_0000, 0x1000, 3, 0x11, 3, 0]), RET_KILL_PROCESS, "nr {n}");
        }
        let mut d = mmap(0x40_0000, 0x1000, 5, 0x11, 3);
        d.arch = AUDIT_ARCH_I386;
        assert_eq!(run(&p, &d), RET_KILL_PROCESS);
    }

    #[test]
    fn k_filter_allows_futex_and_exit_only() {
        let p = k_thread().expect("builds");
        assert_eq!(run(&p, &sys(nr::FUTEX, 0)), RET_ALLOW);
        assert_eq!(run(&p, &sys(nr::EXIT, 0)), RET_ALLOW);
        for n in [0u32, 1, 9, 15, 39, 56, 231, 0x4000_0000 | 202] {
            assert_eq!(run(&p, &sys(n, 0)), RET_KILL_PROCESS, "nr {n:#x}");
        }
        let mut d = sys(nr::FUTEX, 0);
        d.arch = AUDIT_ARCH_I386;
        assert_eq!(run(&p, &d), RET_KILL_PROCESS);
    }
}
