//! The `hw` platform (KVM backend, design section 9): the kernel runs at ring 0 in long mode
//! set up by H, with its own GDT (Linux's layout), a TSS whose IST stacks serve every vector
//! (the precompiled `core` assumes a red zone, so nothing may interrupt onto a kernel stack),
//! an IDT, `syscall` through STAR/LSTAR/FMASK, CR3 per address space (see [`mmu`]), its own
//! #PF handling, FXSAVE/XSAVE for user FPU state, the x2APIC timer, and hypercalls by port
//! I/O ([`hcall`]). H starts every vCPU at `_start(vcpu, boot_info_va, 2)`; [`init_cpu`] runs
//! first on each.

pub mod apic;
pub mod cpu;
pub mod entry;
pub mod fpu;
pub mod hcall;
pub mod mmu;

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::{FpuAction, Platform, SpaceRef, Trap, UserContext};
use entry::{HwCpu, KernelFrame, IPI_VECTOR, SPURIOUS_VECTOR, SYSCALL_VECTOR, TIMER_VECTOR};
use fpu::FPU_MAX;
use guest_abi::pvcs::{pf_error, vector, IRQ_IPI, IRQ_TIMER};
use guest_abi::MAX_VCPUS;

/// Bytes of the IST stack every trap starts on.
const IST1_SIZE: usize = 16 << 10;
/// Bytes of the IST stack of #DF, NMI and #MC.
const IST2_SIZE: usize = 8 << 10;

/// Everything one vCPU owns on this platform (in the kernel image's .bss).
#[repr(C, align(4096))]
pub struct PerCpu {
    /// The PML4 this vCPU runs on (first: page aligned).
    pml4: [u64; 512],
    /// FPU image of the last user trap (64-byte aligned: page offset 4096).
    fpu: [u8; FPU_MAX],
    ist1: [u8; IST1_SIZE],
    ist2: [u8; IST2_SIZE],
    /// What the entry assembly uses (GS base in kernel mode).
    cpu: HwCpu,
    gdt: [u64; 10],
    tss: cpu::Tss,
    /// Root whose user half `pml4` holds (`u64::MAX`: none).
    root: u64,
    /// `mmu` generation of that copy.
    generation: u64,
    /// FS base last written to the MSR.
    fs_base: u64,
    /// GS base last written to KERNEL_GS_BASE.
    gs_base: u64,
    /// `SET_TIMER` deadline (CLOCK_MONOTONIC ns; 0 = none).
    deadline: u64,
}

struct PerCpus(UnsafeCell<[PerCpu; MAX_VCPUS as usize]>);

// SAFETY: each vCPU touches only its own element (indexed by its own id).
unsafe impl Sync for PerCpus {}

// SAFETY: all-zero bytes are a valid PerCpu (integers and arrays of integers).
static PERCPU: PerCpus = PerCpus(UnsafeCell::new(unsafe { core::mem::zeroed() }));

/// The IDT, shared by all vCPUs (filled once).
struct Idt(UnsafeCell<[[u64; 2]; 256]>);
// SAFETY: written once under `IDT_READY`'s protocol before any vCPU loads it.
unsafe impl Sync for Idt {}
static IDT: Idt = Idt(UnsafeCell::new([[0; 2]; 256]));
static IDT_READY: spin::Once<()> = spin::Once::new();

/// Set when the kernel runs on this platform.
static ACTIVE: AtomicBool = AtomicBool::new(false);
/// Address of `hw_syscall_entry` (LSTAR), for recognising the kvm_pvm SYSCALL #PF.
static LSTAR: AtomicU64 = AtomicU64::new(0);

/// Whether the kernel runs on the `hw` platform (KVM backend).
pub fn active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

fn percpu_of(vcpu: u32) -> &'static mut PerCpu {
    let i = (vcpu as usize).min(MAX_VCPUS as usize - 1);
    // SAFETY: vCPU `vcpu` is the only user of its element and calls in here from one
    // thread of control at a time (interrupt handlers only touch `cpu.pending`, atomically).
    unsafe { &mut (*PERCPU.0.get())[i] }
}

/// This vCPU's state.
pub(crate) fn percpu() -> &'static mut PerCpu {
    percpu_of(crate::percpu::current())
}

fn top(stack: &[u8]) -> u64 {
    (stack.as_ptr() as u64 + stack.len() as u64) & !15
}

/// Sets up vCPU `vcpu` (called first thing at the kernel entry when `backend` is KVM): GDT,
/// TSS, IDT, syscall MSRs, GS base, the per-vCPU PML4, the FPU format and the LAPIC.
pub fn init_cpu(vcpu: u32) {
    ACTIVE.store(true, Ordering::Relaxed);
    let lstar = entry::hw_syscall_entry as *const () as u64;
    LSTAR.store(lstar, Ordering::Relaxed);
    IDT_READY.call_once(|| {
        let base = entry::hw_vectors as *const () as u64;
        // SAFETY: only this closure writes the IDT, once, before any vCPU loads it.
        let idt = unsafe { &mut *IDT.0.get() };
        for (v, gate) in idt.iter_mut().enumerate() {
            let ist = if v == 2 || v == 8 || v == 18 { 2 } else { 1 };
            // int3 may come from user code (a DPL 3 gate), like Linux.
            let dpl = if v == vector::BP as usize { 3 } else { 0 };
            *gate = cpu::idt_gate(base + 16 * v as u64, ist, dpl);
        }
    });
    let c = percpu_of(vcpu);
    c.tss.ist[0] = top(&c.ist1);
    c.tss.ist[1] = top(&c.ist2);
    c.tss.rsp0 = top(&c.ist1);
    c.tss.iomap_base = size_of::<cpu::Tss>() as u16;
    c.gdt = cpu::GDT_TEMPLATE;
    let [lo, hi] = cpu::tss_descriptor(&c.tss as *const cpu::Tss as u64);
    c.gdt[8] = lo;
    c.gdt[9] = hi;
    c.cpu.self_ptr = &c.cpu as *const HwCpu as u64;
    // SAFETY: the GDT, TSS and IDT live in .bss forever; the selectors in use (CS 0x10, DS
    // 0x18) mean the same in our GDT as in H's boot GDT; GS base = this vCPU's HwCpu as the
    // entry code expects in kernel mode.
    unsafe {
        cpu::load_gdt_and_tr(c.gdt.as_ptr() as u64, c.gdt.len());
        cpu::load_idt(IDT.0.get() as u64);
        cpu::wrmsr(cpu::MSR_STAR, cpu::STAR);
        cpu::wrmsr(cpu::MSR_LSTAR, lstar);
        cpu::wrmsr(cpu::MSR_FMASK, cpu::FMASK);
        cpu::wrmsr(cpu::MSR_GS_BASE, c.cpu.self_ptr);
        cpu::wrmsr(cpu::MSR_KERNEL_GS_BASE, 0);
        cpu::wrmsr(cpu::MSR_FS_BASE, 0);
    }
    mmu::init(c);
    fpu::init();
    apic::init();
}

/// Kernel-mode exception: log everything and stop the VM.
extern "C" fn hw_kernel_fault(f: &KernelFrame) -> ! {
    let cr2: u64;
    // SAFETY: reading CR2 has no side effects.
    unsafe { core::arch::asm!("mov {}, cr2", out(reg) cr2, options(nomem, nostack, preserves_flags)) };
    crate::log::write_line(format_args!(
        "hw: kernel exception {} (error {:#x}) at rip {:#x}, rsp {:#x}, cr2 {cr2:#x}, rax {:#x}, rdi {:#x}, rsi {:#x}",
        f.vector, f.error, f.rip, f.rsp, f.gprs[0], f.gprs[5], f.gprs[4]
    ));
    crate::hcall::shutdown(guest_abi::hypercall::ShutdownKind::KernelPanic, guest_abi::hypercall::panic_code::KERNEL_EXCEPTION)
}

/// `SET_TIMER(deadline_ns)` on this vCPU.
pub(crate) fn set_timer(deadline: u64) {
    let c = percpu();
    c.deadline = deadline;
    if deadline == 0 {
        apic::arm_in(0);
        return;
    }
    let now = crate::time::monotonic_ns();
    apic::arm_in(deadline.saturating_sub(now).max(1));
}

/// Takes this vCPU's pending interrupt bits. A timer interrupt that came before the deadline
/// (the LAPIC count saturates at about 4.3 s) re-arms and is not reported.
pub fn take_irq(vcpu: u32) -> u32 {
    let c = percpu_of(vcpu);
    // SAFETY: `pending` is only accessed atomically (the handlers use `lock or`).
    let pending = unsafe { core::sync::atomic::AtomicU32::from_ptr(&mut c.cpu.pending) };
    let mut bits = pending.swap(0, Ordering::AcqRel);
    if bits & IRQ_TIMER != 0 && c.deadline != 0 {
        let now = crate::time::monotonic_ns();
        if now < c.deadline {
            bits &= !IRQ_TIMER;
            apic::arm_in(c.deadline - now);
        } else {
            c.deadline = 0;
        }
    }
    bits
}

fn note_irq(c: &mut PerCpu, bit: u32) {
    // SAFETY: as in `take_irq`.
    let pending = unsafe { core::sync::atomic::AtomicU32::from_ptr(&mut c.cpu.pending) };
    pending.fetch_or(bit, Ordering::AcqRel);
}

fn canonical_user(va: u64) -> bool {
    va < (1 << 47)
}

/// The KVM-backend platform.
pub struct Hw;

impl Platform for Hw {
    fn enter_user(&self, vcpu: u32, space: SpaceRef, ctx: &mut UserContext, fpu: FpuAction) -> Trap {
        let c = percpu_of(vcpu);
        if !canonical_user(ctx.regs.rip) {
            return Trap::Exception { vector: vector::GP, error: 0, addr: 0, si_code: 128 };
        }
        mmu::switch_to(c, space.root);
        let fs = if canonical_user(ctx.regs.fs_base) { ctx.regs.fs_base } else { 0 };
        let gs = if canonical_user(ctx.regs.gs_base) { ctx.regs.gs_base } else { 0 };
        // SAFETY: canonical user addresses; FS is unused by the kernel, KERNEL_GS_BASE is the
        // user's GS base while in kernel mode.
        unsafe {
            if c.fs_base != fs {
                cpu::wrmsr(cpu::MSR_FS_BASE, fs);
                c.fs_base = fs;
            }
            if c.gs_base != gs {
                cpu::wrmsr(cpu::MSR_KERNEL_GS_BASE, gs);
                c.gs_base = gs;
            }
        }
        match fpu {
            FpuAction::Reset => fpu::reset(&mut c.fpu),
            FpuAction::Restore if ctx.fpu.len() == fpu::size() => c.fpu[..ctx.fpu.len()].copy_from_slice(&ctx.fpu),
            FpuAction::Restore => fpu::reset(&mut c.fpu),
            FpuAction::Keep => {}
        }
        fpu::restore(&c.fpu);
        // One copy of the registers each way (under software KVM every struct copy is
        // emulated, and a syscall used to copy them four times).
        c.cpu.regs = ctx.regs;
        // User-modifiable flags (CF PF AF ZF SF TF DF OF AC ID), plus IF and the fixed bit 1.
        c.cpu.regs.rflags = (c.cpu.regs.rflags & 0x0024_0dd5) | 0x202;
        // SAFETY: interrupts are off in the kernel; GS base is this vCPU's HwCpu; the regs
        // were sanitised (canonical user rip, user flags only).
        unsafe { entry::hw_enter_user(&mut c.cpu) };
        fpu::save(&mut c.fpu);
        let (fs_base, gs_base) = (ctx.regs.fs_base, ctx.regs.gs_base);
        ctx.regs = c.cpu.regs;
        let r = &mut ctx.regs;
        r.fs_base = fs_base;
        r.gs_base = gs_base;
        let (v, error, cr2) = (c.cpu.vector, c.cpu.error, c.cpu.cr2);
        match v {
            SYSCALL_VECTOR => Trap::Syscall(r.rax),
            // kvm_pvm: SYSCALL stayed at CPL 3 and faulted fetching LSTAR (design section 9).
            14 if r.rip == LSTAR.load(Ordering::Relaxed) && error == pf_error::USER | pf_error::FETCH | pf_error::PRESENT => {
                r.rip = r.rcx;
                r.rflags = r.r11;
                Trap::Syscall(r.rax)
            }
            14 => Trap::PageFault { addr: cr2, error },
            TIMER_VECTOR => {
                apic::eoi();
                note_irq(c, IRQ_TIMER);
                Trap::Interrupt
            }
            IPI_VECTOR => {
                apic::eoi();
                note_irq(c, IRQ_IPI);
                Trap::Interrupt
            }
            SPURIOUS_VECTOR | 2 => Trap::Interrupt,
            v if v >= 32 => {
                apic::eoi();
                Trap::Interrupt
            }
            v => {
                let si_code = match v as u32 {
                    vector::DE => 1, // FPE_INTDIV
                    vector::UD => 2, // ILL_ILLOPN
                    _ => 128,        // SI_KERNEL
                };
                Trap::Exception { vector: v as u32, error, addr: 0, si_code }
            }
        }
    }

    fn save_fpu(&self, vcpu: u32, _space: SpaceRef, ctx: &mut UserContext) {
        let c = percpu_of(vcpu);
        let n = fpu::size();
        ctx.fpu.clear();
        ctx.fpu.extend_from_slice(&c.fpu[..n]);
    }
}
