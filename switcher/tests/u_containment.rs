//! Guest code in U cannot reach the host: raw syscalls meant for the host arrive as traps and
//! never happen, and jumping into or scribbling over the stub area ends in a trap to K or in
//! the death of U, never in an escape.

mod common;

use common::*;
use guest_abi::layout;
use guest_abi::pvcs::{FpuOp, TrapKind};

/// Runs one guest `syscall` with `nr` and args; asserts it arrived as that trap.
fn trap_syscall(h: &Harness, nr: u64, args: [u64; 6]) {
    let mut r = Harness::regs(CODE_GVA);
    r.rax = nr;
    r.rdi = args[0];
    r.rsi = args[1];
    r.rdx = args[2];
    r.r10 = args[3];
    r.r8 = args[4];
    r.r9 = args[5];
    let (t, g) = h.run(r, FpuOp::Reset);
    assert_eq!(kind(&t), Some(TrapKind::Syscall), "nr {nr}");
    assert_eq!(t.syscall_nr, nr);
    assert_eq!((g.rdi, g.rsi, g.rdx, g.r10, g.r8, g.r9), (args[0], args[1], args[2], args[3], args[4], args[5]));
}

#[test]
fn host_syscalls_from_guest_code_trap_and_never_happen() {
    let h = Harness::new(&[0x0f, 0x05]);
    // A victim process the guest tries to kill.
    let mut victim = std::process::Command::new("sleep").arg("30").spawn().expect("sleep");
    let path = std::env::temp_dir().join(format!("pvm-switcher-escape-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let cpath = std::ffi::CString::new(path.to_str().expect("utf8")).expect("cstring");
    // Place the path in guest memory so a real open would have a valid pointer.
    let mut bytes = cpath.as_bytes_with_nul().to_vec();
    bytes.resize(256, 0);
    h.write(DATA_GPA, &bytes);
    let ptr = DATA_GVA;
    trap_syscall(&h, 39, [0; 6]); // getpid
    trap_syscall(&h, 62, [victim.id() as u64, 9, 0, 0, 0, 0]); // kill(victim, SIGKILL)
    trap_syscall(&h, 62, [1, 9, 0, 0, 0, 0]); // kill(1, SIGKILL)
    trap_syscall(&h, 2, [ptr, (libc::O_CREAT | libc::O_WRONLY) as u64, 0o644, 0, 0, 0]); // open
    trap_syscall(&h, 257, [(-100i64) as u64, ptr, (libc::O_CREAT | libc::O_WRONLY) as u64, 0o644, 0, 0]); // openat
    trap_syscall(&h, 2, [c"/etc/passwd".as_ptr() as u64, 0, 0, 0, 0, 0]); // open of a host file
    trap_syscall(&h, 41, [2, 1, 0, 0, 0, 0]); // socket(AF_INET, SOCK_STREAM)
    trap_syscall(&h, 101, [0, 0, 0, 0, 0, 0]); // ptrace(PTRACE_TRACEME)
    trap_syscall(&h, 165, [0, ptr, 0, 0, 0, 0]); // mount
    trap_syscall(&h, 169, [0, 0, 0, 0, 0, 0]); // reboot with bad magic
    trap_syscall(&h, 57, [0; 6]); // fork
    trap_syscall(&h, 9, [0x80_0000, 0x1000, 7, 0x11, 3, 0]); // mmap of guest memory
    trap_syscall(&h, 202, [layout::U_PVCS_BASE, 1, 1, 0, 0, 0]); // futex from guest code
    trap_syscall(&h, 15, [0; 6]); // rt_sigreturn from guest code
    trap_syscall(&h, 231, [0; 6]); // exit_group
    trap_syscall(&h, 0x4000_0000 | 39, [0; 6]); // x32 getpid
    assert!(!path.exists(), "open(O_CREAT) must not have happened");
    assert!(victim.try_wait().expect("wait").is_none(), "the victim must still run");
    assert!(!h.proc().has_exited(), "U survives all of it");
    victim.kill().expect("kill victim");
    victim.wait().expect("reap victim");
}

/// Runs guest code that misbehaves; the outcome must be U dead or a trap to K with rip outside
/// the stub text.
fn contained(h: &Harness, regs: guest_abi::pvcs::UserRegs) {
    h.enter(regs, FpuOp::Reset);
    match h.wait_trap() {
        None => assert!(h.proc().has_exited(), "U neither trapped nor died"),
        Some((t, g)) => {
            let (ts, te) = switcher::image::stub_image().expect("image").text();
            assert!(!(ts..te).contains(&g.rip), "trap reported from stub text: {t:?}");
        }
    }
}

#[test]
fn jumping_into_the_stub_entry_kills_u() {
    // jmp rax
    let h = Harness::new(&[0xff, 0xe0]);
    let mut r = Harness::regs(CODE_GVA);
    r.rax = layout::STUB_BASE;
    contained(&h, r);
    let exit = h.proc().wait().expect("wait");
    assert_eq!(exit, switcher::ExitInfo::Signaled(libc::SIGILL), "the stub's die() on a stub-text trap");
}

#[test]
fn jumping_onto_a_stub_syscall_instruction_kills_u() {
    let img = switcher::image::stub_image().expect("image");
    let (ts, te) = img.text();
    let elf = switcher::image::elf_bytes();
    // The text segment is the first page-aligned block in the file at offset 0x1000.
    let text = &elf[0x1000..0x1000 + (te - ts) as usize];
    let sites: Vec<u64> = text.windows(2).enumerate().filter(|(_, w)| w == &[0x0f, 0x05]).map(|(i, _)| ts + i as u64).collect();
    assert!(!sites.is_empty());
    // mmap(guest range) through every syscall site of the stub, one U each for a few sites.
    for &site in sites.iter().take(3) {
        let h = Harness::new(&[0xff, 0xe3]); // jmp rbx
        let mut r = Harness::regs(CODE_GVA);
        r.rbx = site;
        r.rax = 9;
        r.rdi = 0x80_0000;
        r.rsi = 0x1000;
        r.rdx = 7;
        r.r10 = 0x11;
        r.r8 = 3;
        contained(&h, r);
        let exit = h.proc().wait().expect("wait");
        assert_eq!(exit, switcher::ExitInfo::Signaled(libc::SIGILL), "site {site:#x}");
    }
}

#[test]
fn scribbling_over_pvcs_and_stub_data_cannot_escape() {
    // rep stosb (rdi, rcx, al); syscall
    let h = Harness::new(&[0xf3, 0xaa, 0x0f, 0x05]);
    let (ds, de) = switcher::image::stub_image().expect("image").data();
    // Stub data and bss with 0xff: the next trap must still be handled or kill U.
    let mut r = Harness::regs(CODE_GVA);
    r.rdi = ds;
    r.rcx = de - ds;
    r.rax = 0xff;
    contained(&h, r);
    // PVCS header with garbage, then a syscall.
    if !h.proc().has_exited() {
        let mut r = Harness::regs(CODE_GVA);
        r.rdi = layout::U_PVCS_BASE + 64;
        r.rcx = 4096 - 64;
        r.rax = 0xee;
        contained(&h, r);
    }
    // Writing to the stub text or the mapper command page faults (read-only): a trap to K.
    let h = Harness::new(&[0xf3, 0xaa, 0x0f, 0x05]);
    for target in [layout::STUB_BASE, layout::U_MAPPER_CMD_BASE] {
        let mut r = Harness::regs(CODE_GVA);
        r.rdi = target;
        r.rcx = 16;
        let (t, _) = h.run(r, FpuOp::Reset);
        assert_eq!(kind(&t), Some(TrapKind::PageFault));
        assert_eq!(t.fault_addr, target);
    }
}

#[test]
fn forged_mapper_completion_only_confuses_the_guest() {
    // mov dword [rbx], eax (89 03); syscall
    let h = Harness::new(&[0x89, 0x03, 0x0f, 0x05]);
    let mut r = Harness::regs(CODE_GVA);
    r.rbx = layout::U_MAPPER_DONE_BASE;
    r.rax = 1000;
    let (t, _) = h.run(r, FpuOp::Reset);
    assert_eq!(kind(&t), Some(TrapKind::Syscall));
    // The channel still works (it waits for its own sequence number).
    h.mapper
        .apply(&[map_op(guest_abi::mapper::MapOpKind::Map, HOLE_GVA, 0x1000, 1, HOLE_GPA)])
        .expect("map after forgery");
}
