//! End to end, without the guest kernel: the test process plays K for one U and checks each
//! kind of trap and the register/FPU/fs-base round trips.

mod common;

use common::*;
use guest_abi::mapper::{MapOpKind, PROT_READ, PROT_WRITE};
use guest_abi::pvcs::{FpuOp, TrapKind, pf_error, vector};

#[test]
fn syscall_arrives_with_registers_intact_and_resumes_with_result() {
    // syscall; syscall
    let h = Harness::new(&[0x0f, 0x05, 0x0f, 0x05]);
    let mut r = Harness::regs(CODE_GVA);
    r.rax = 39;
    r.rbx = 0x1111;
    r.rcx = 0xdead;
    r.rdx = 0x3333;
    r.rsi = 0x4444;
    r.rdi = 0x5555;
    r.rbp = 0x6666;
    r.r8 = 8;
    r.r9 = 9;
    r.r10 = 10;
    r.r11 = 0xbeef;
    r.r12 = 12;
    r.r13 = 13;
    r.r14 = 14;
    r.r15 = 15;
    let (t, g) = h.run(r, FpuOp::Reset);
    assert_eq!(kind(&t), Some(TrapKind::Syscall));
    assert_eq!(t.syscall_nr, 39);
    assert_eq!(t.host_signo, libc::SIGSYS as u32);
    assert_eq!(g.rip, CODE_GVA + 2, "rip after the syscall");
    assert_eq!(g.rcx, CODE_GVA + 2, "SYSCALL put the next rip in rcx");
    assert_eq!(g.r11 & 0xcd5, r.rflags & 0xcd5, "SYSCALL put rflags in r11");
    assert_eq!((g.rax, g.rbx, g.rdx, g.rsi, g.rdi, g.rbp), (39, 0x1111, 0x3333, 0x4444, 0x5555, 0x6666));
    assert_eq!((g.r8, g.r9, g.r10, g.r12, g.r13, g.r14, g.r15), (8, 9, 10, 12, 13, 14, 15));
    assert_eq!(g.rsp, r.rsp);
    // Resume with a result: the next syscall traps with that value as its number.
    let mut g2 = g;
    g2.rax = 1234;
    let (t, g3) = h.run(g2, FpuOp::Keep);
    assert_eq!(kind(&t), Some(TrapKind::Syscall));
    assert_eq!(t.syscall_nr, 1234);
    assert_eq!(g3.rip, CODE_GVA + 4);
    assert_eq!(g3.rbx, 0x1111);
}

#[test]
fn page_fault_reports_gva_and_error_code_then_completes_after_mapping() {
    // mov rax, [rbx]; syscall; mov [rbx], rax; syscall
    let code = [0x48, 0x8b, 0x03, 0x0f, 0x05, 0x48, 0x89, 0x03, 0x0f, 0x05];
    let h = Harness::new(&code);
    let mut r = Harness::regs(CODE_GVA);
    r.rbx = HOLE_GVA + 0x18;
    let (t, g) = h.run(r, FpuOp::Reset);
    assert_eq!(kind(&t), Some(TrapKind::PageFault));
    assert_eq!(t.vector, vector::PF);
    assert_eq!(t.fault_addr, HOLE_GVA + 0x18);
    assert_eq!(t.error_code, pf_error::USER, "user read of a not-present page");
    assert_eq!(g.rip, CODE_GVA, "the faulting instruction restarts");
    h.write(HOLE_GPA + 0x18, &0x4242_4242_u64.to_le_bytes());
    h.mapper
        .apply(&[map_op(MapOpKind::Map, HOLE_GVA, 0x1000, PROT_READ, HOLE_GPA)])
        .expect("map");
    let (t, g) = h.run(g, FpuOp::Keep);
    assert_eq!(kind(&t), Some(TrapKind::Syscall));
    assert_eq!(t.syscall_nr, 0x4242_4242, "the load completed");
    // The write to the read-only page is a protection fault.
    let (t, g) = h.run(g, FpuOp::Keep);
    assert_eq!(kind(&t), Some(TrapKind::PageFault));
    assert_eq!(t.error_code, pf_error::USER | pf_error::WRITE | pf_error::PRESENT);
    h.mapper
        .apply(&[map_op(MapOpKind::Protect, HOLE_GVA, 0x1000, PROT_READ | PROT_WRITE, 0)])
        .expect("protect");
    let mut g = g;
    g.rax = 0x77;
    let (t, _) = h.run(g, FpuOp::Keep);
    assert_eq!(kind(&t), Some(TrapKind::Syscall));
    assert_eq!(h.read_u64(HOLE_GPA + 0x18), 0x77, "the store reached guest memory");
    // Unmap: the next access faults again.
    h.mapper.apply(&[map_op(MapOpKind::Unmap, HOLE_GVA, 0x1000, 0, 0)]).expect("unmap");
    let (t, _) = h.run(Harness::regs(CODE_GVA).with_rbx(HOLE_GVA), FpuOp::Keep);
    assert_eq!(kind(&t), Some(TrapKind::PageFault));
}

trait WithRbx {
    fn with_rbx(self, v: u64) -> Self;
}
impl WithRbx for guest_abi::pvcs::UserRegs {
    fn with_rbx(mut self, v: u64) -> Self {
        self.rbx = v;
        self
    }
}

#[test]
fn exceptions_report_their_vector() {
    // ud2 at 0; int3 at 2; xor ecx,ecx; div ecx at 3
    let h = Harness::new(&[0x0f, 0x0b, 0xcc, 0x31, 0xc9, 0xf7, 0xf1]);
    let (t, g) = h.run(Harness::regs(CODE_GVA), FpuOp::Reset);
    assert_eq!((kind(&t), t.vector, t.host_signo), (Some(TrapKind::Exception), vector::UD, libc::SIGILL as u32));
    assert_eq!(g.rip, CODE_GVA);
    let (t, g) = h.run(Harness::regs(CODE_GVA + 2), FpuOp::Keep);
    assert_eq!((kind(&t), t.vector, t.host_signo), (Some(TrapKind::Exception), vector::BP, libc::SIGTRAP as u32));
    assert_eq!(g.rip, CODE_GVA + 3, "int3 reports the next instruction");
    let (t, g) = h.run(Harness::regs(CODE_GVA + 3), FpuOp::Keep);
    assert_eq!((kind(&t), t.vector, t.host_signo), (Some(TrapKind::Exception), vector::DE, libc::SIGFPE as u32));
    assert_eq!(t.si_code, 1, "FPE_INTDIV");
    assert_eq!(g.rip, CODE_GVA + 5);
}

#[test]
fn xmm_state_round_trips_through_k_and_reset_clears_it() {
    // movq xmm0, rax; syscall; movq rax, xmm0; syscall
    let code = [0x66, 0x48, 0x0f, 0x6e, 0xc0, 0x0f, 0x05, 0x66, 0x48, 0x0f, 0x7e, 0xc0, 0x0f, 0x05];
    let h = Harness::new(&code);
    let mut r = Harness::regs(CODE_GVA);
    r.rax = 0x1122_3344_5566_7788;
    let (t, g) = h.run(r, FpuOp::Reset);
    assert_eq!(kind(&t), Some(TrapKind::Syscall));
    let img = h.fpu_image();
    assert!(img.len() >= 512, "image of {} bytes", img.len());
    assert_eq!(&img[160..168], &0x1122_3344_5566_7788_u64.to_le_bytes(), "xmm0 in the saved image");
    // Restore the image with xmm0 changed by K: the guest sees K's value.
    let mut img2 = img.clone();
    img2[160..168].copy_from_slice(&0x0a0b_0c0d_u64.to_le_bytes());
    h.set_fpu_image(&img2);
    let mut g1 = g;
    g1.rax = 0;
    let (t, g2) = h.run(g1, FpuOp::Restore);
    assert_eq!(kind(&t), Some(TrapKind::Syscall));
    assert_eq!(g2.rax, 0x0a0b_0c0d, "xmm0 came from the PVCS image");
    // Keep: the frame's state stays (same value again).
    let (_, g3) = h.run(Harness::regs(CODE_GVA + 7), FpuOp::Keep);
    assert_eq!(g3.rax, 0x0a0b_0c0d);
    // Reset: xmm0 is zero.
    let (_, g4) = h.run(Harness::regs(CODE_GVA + 7), FpuOp::Reset);
    assert_eq!(g4.rax, 0);
    let img = h.fpu_image();
    assert_eq!(u16::from_le_bytes([img[0], img[1]]), 0x37f, "FCW");
    assert_eq!(u32::from_le_bytes([img[24], img[25], img[26], img[27]]), 0x1f80, "MXCSR");
}

#[test]
fn fs_base_goes_both_ways() {
    // rdfsbase rax; syscall; mov rax, rbx (48 89 d8); wrfsbase rax; syscall
    let code = [0xf3, 0x48, 0x0f, 0xae, 0xc0, 0x0f, 0x05, 0x48, 0x89, 0xd8, 0xf3, 0x48, 0x0f, 0xae, 0xd0, 0x0f, 0x05];
    let h = Harness::new(&code);
    let mut r = Harness::regs(CODE_GVA);
    r.fs_base = 0x12_3000;
    r.gs_base = 0x45_6000;
    r.rbx = 0x78_9000;
    let (t, g) = h.run(r, FpuOp::Reset);
    assert_eq!(kind(&t), Some(TrapKind::Syscall));
    assert_eq!(g.rax, 0x12_3000, "guest read K's fs base");
    assert_eq!((g.fs_base, g.gs_base), (0x12_3000, 0x45_6000));
    let (_, g) = h.run(g, FpuOp::Keep);
    assert_eq!(g.fs_base, 0x78_9000, "guest wrfsbase reported back");
    // A non-canonical base from K is refused (0).
    let mut r = Harness::regs(CODE_GVA);
    r.fs_base = 0xffff_8000_0000_0000;
    let (_, g) = h.run(r, FpuOp::Keep);
    assert_eq!(g.rax, 0);
}

#[test]
fn rflags_and_selectors_are_sanitised() {
    // pushfq; pop rax; mov rbx, cs (48 8c cb); syscall
    let code = [0x9c, 0x58, 0x48, 0x8c, 0xcb, 0x0f, 0x05];
    let h = Harness::new(&code);
    let mut r = Harness::regs(CODE_GVA);
    r.rflags = !0x100; // everything but TF: IOPL, NT, VM, ... must not stick
    let (t, g) = h.run(r, FpuOp::Reset);
    assert_eq!(kind(&t), Some(TrapKind::Syscall));
    assert_eq!(g.rax & 0x3000, 0, "IOPL stays 0");
    assert_eq!(g.rax & (1 << 17), 0, "VM stays 0");
    assert_eq!(g.rax & 0x200, 0x200, "IF stays 1");
    assert_eq!(g.rax & 0xcd5, 0xcd5 & !0x100, "arithmetic flags and DF taken from K");
    assert_eq!(g.rbx, 0x33, "64-bit user code segment");
}

#[test]
fn interrupt_signal_becomes_an_interrupt_trap() {
    // jmp $ (eb fe)
    let h = Harness::new(&[0xeb, 0xfe]);
    h.enter(Harness::regs(CODE_GVA), FpuOp::Reset);
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert!(h.threads.interrupt(0));
    let (t, g) = h.wait_trap().expect("trap");
    assert_eq!(kind(&t), Some(TrapKind::Interrupt));
    assert_eq!(g.rip, CODE_GVA, "interrupted inside the loop");
}

#[test]
fn interrupts_while_waiting_for_k_are_not_lost() {
    // syscall; jmp $ : the interrupt lands while U waits for K after the syscall trap.
    let h = Harness::new(&[0x0f, 0x05, 0xeb, 0xfe]);
    let (t, _) = h.run(Harness::regs(CODE_GVA), FpuOp::Reset);
    assert_eq!(kind(&t), Some(TrapKind::Syscall));
    assert!(h.threads.interrupt(0));
    std::thread::sleep(std::time::Duration::from_millis(20));
    // K resumes the thread: the interrupt seen in stub code is reported before guest code runs.
    let (t, g) = h.run(Harness::regs(CODE_GVA + 2), FpuOp::Keep);
    assert_eq!(kind(&t), Some(TrapKind::Interrupt));
    assert_eq!(g.rip, CODE_GVA + 2, "reported at the entry K asked for");
    // And then guest code runs normally.
    assert!(h.threads.interrupt(0));
    let (t, g) = h.run(Harness::regs(CODE_GVA + 2), FpuOp::Keep);
    assert_eq!(kind(&t), Some(TrapKind::Interrupt));
    assert_eq!(g.rip, CODE_GVA + 2);
}
