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
    assert_eq!(exit, switcher::ExitInfo::Signaled(libc::SIGSYS), "a non-futex syscall from stub text: seccomp kill");
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
    // mmap(guest range), and rt_sigreturn, through syscall sites of the stub, one U each.
    for (n, &site) in sites.iter().enumerate().take(6) {
        let h = Harness::new(&[0xff, 0xe3]); // jmp rbx
        let mut r = Harness::regs(CODE_GVA);
        r.rbx = site;
        r.rax = if n % 2 == 0 { 9 } else { 15 };
        r.rdi = 0x80_0000;
        r.rsi = 0x1000;
        r.rdx = 7;
        r.r10 = 0x11;
        r.r8 = 3;
        contained(&h, r);
        let exit = h.proc().wait().expect("wait");
        assert_eq!(exit, switcher::ExitInfo::Signaled(libc::SIGSYS), "site {site:#x}");
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
fn forged_mapper_completions_never_end_a_batch_early() {
    // loop: mov eax, [rbx] (cmd.seq); mov [rbp], eax (done.seq); jmp loop  (8b 03 89 45 00 eb f9)
    let h = Harness::new(&[0x8b, 0x03, 0x89, 0x45, 0x00, 0xeb, 0xf9]);
    let mut r = Harness::regs(CODE_GVA);
    r.rbx = layout::U_MAPPER_CMD_BASE;
    r.rbp = layout::U_MAPPER_DONE_BASE;
    h.enter(r, FpuOp::Reset);
    std::thread::sleep(std::time::Duration::from_millis(10));
    let pid = h.proc().pid();
    for round in 0..50u64 {
        let base = 0x100_0000 + round * 0x40_0000;
        // 256 separate pages (alternating protections, so no two merge into one VMA).
        let ops: Vec<_> = (0..256u64)
            .map(|i| map_op(guest_abi::mapper::MapOpKind::Map, base + i * 0x2000, 0x1000, if i % 2 == 0 { 1 } else { 3 }, HOLE_GPA))
            .collect();
        h.mapper.apply(&ops).expect("map batch");
        // When apply returns, every mapping is there: the batch really completed.
        let Some(maps) = stub_proc(pid, "maps") else { break };
        let last = format!("{:x}-", base + 255 * 0x2000);
        assert!(maps.contains(&last), "round {round}: apply returned before the mapper finished");
        let unmap = [map_op(guest_abi::mapper::MapOpKind::Unmap, base, 256 * 0x2000, 0, 0)];
        h.mapper.apply(&unmap).expect("unmap batch");
        let Some(maps) = stub_proc(pid, "maps") else { break };
        assert!(!maps.contains(&format!("{base:x}-")), "round {round}: unmap returned early");
    }
    assert!(h.threads.interrupt(0));
    let (t, _) = h.wait_trap().expect("the spinner is interrupted");
    assert_eq!(kind(&t), Some(TrapKind::Interrupt));
}

#[test]
fn overwritten_u_tid_does_not_redirect_interrupts() {
    // mov [rbx], eax (89 03); jmp $ (eb fe): writes garbage over Pvcs::u_tid, then spins.
    let h = Harness::new(&[0x89, 0x03, 0xeb, 0xfe]);
    let mut r = Harness::regs(CODE_GVA);
    r.rbx = layout::U_PVCS_BASE + core::mem::offset_of!(guest_abi::pvcs::Pvcs, u_tid) as u64;
    r.rax = h.proc().pid() as u64; // the mapper thread's tid
    h.enter(r, FpuOp::Reset);
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert!(h.threads.interrupt(0));
    let (t, g) = h.wait_trap().expect("the interrupt still reaches the guest thread");
    assert_eq!(kind(&t), Some(TrapKind::Interrupt));
    assert_eq!(g.rip, CODE_GVA + 2);
}

#[test]
fn parking_for_the_pool_stops_every_guest_thread() {
    // loop: inc qword [rbx]; jmp loop  (48 ff 03 eb fb): a guest that keeps running.
    let h = Harness::new(&[0x48, 0xff, 0x03, 0xeb, 0xfb]);
    let mut r = Harness::regs(CODE_GVA);
    r.rbx = DATA_GVA;
    h.enter(r, FpuOp::Reset);
    std::thread::sleep(std::time::Duration::from_millis(10));
    assert_ne!(h.read_u64(DATA_GPA), 0, "the guest runs");
    assert!(h.threads.park(&h.mapper), "parking");
    assert_eq!(h.threads.confirm_parked(&h.shm, 0, true), Some(true), "parked");
    let before = h.read_u64(DATA_GPA);
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(h.read_u64(DATA_GPA), before, "no guest code runs in a parked U");
    let st = h.shm.pvcs(0, 0).state.load(std::sync::atomic::Ordering::Acquire);
    assert_eq!(st, guest_abi::pvcs::SwitchState::Empty as u32, "PVCS cleared");
    // A forged KernelToUser (as a guest would write it) does not wake a parked thread.
    h.enter(Harness::regs(CODE_GVA), FpuOp::Reset);
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(h.read_u64(DATA_GPA), before, "parked threads ignore the PVCS");
    // Unparked (after H resets the PVCS as LOAD_PGTBL does), it serves the next space.
    h.shm.pvcs(0, 0).state.store(guest_abi::pvcs::SwitchState::Empty as u32, std::sync::atomic::Ordering::Release);
    h.threads.unpark(&h.mapper);
    let mut r = Harness::regs(CODE_GVA + 3); // jmp loop -> inc; ... then interrupt it
    r.rbx = DATA_GVA + 8;
    h.enter(r, FpuOp::Reset);
    std::thread::sleep(std::time::Duration::from_millis(10));
    assert!(h.threads.interrupt(0));
    let (t, _) = h.wait_trap().expect("serves again");
    assert_eq!(kind(&t), Some(TrapKind::Interrupt));
    assert_ne!(h.read_u64(DATA_GPA + 8), 0);
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
