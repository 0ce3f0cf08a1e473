//! Privileged x86-64 instructions and descriptor tables of the `hw` platform: MSRs, control
//! registers, the GDT in Linux's layout with a per-vCPU TSS, and the IDT.
//! Formats: Intel SDM vol. 3A, 3.4.5 (segment descriptors), 6.14.1 (64-bit IDT gates),
//! 8.7 (64-bit TSS).

use core::arch::asm;

/// IA32_FS_BASE.
pub const MSR_FS_BASE: u32 = 0xc000_0100;
/// IA32_GS_BASE.
pub const MSR_GS_BASE: u32 = 0xc000_0101;
/// IA32_KERNEL_GS_BASE.
pub const MSR_KERNEL_GS_BASE: u32 = 0xc000_0102;
/// IA32_STAR.
pub const MSR_STAR: u32 = 0xc000_0081;
/// IA32_LSTAR.
pub const MSR_LSTAR: u32 = 0xc000_0082;
/// IA32_FMASK.
pub const MSR_FMASK: u32 = 0xc000_0084;
/// STAR: SYSCALL CS 0x10 / SS 0x18; SYSRET CS 0x33 / SS 0x2b (Linux's layout).
pub const STAR: u64 = 0x0023_0010_0000_0000;
/// RFLAGS bits SYSCALL clears: TF, IF, DF, NT, AC.
pub const FMASK: u64 = 0x0004_4700;

/// Kernel code selector.
pub const KERNEL_CS: u16 = 0x10;
/// TSS selector.
pub const TSS_SEL: u16 = 0x40;

/// GDT in Linux's layout: kernel CS 0x10, kernel DS 0x18, user CS32 0x20, user DS 0x28, user
/// CS64 0x30, TSS 0x40 (two entries, filled per vCPU).
pub const GDT_TEMPLATE: [u64; 10] = [
    0,
    0,
    0x00af_9b00_0000_ffff,
    0x00cf_9300_0000_ffff,
    0x00cf_fb00_0000_ffff,
    0x00cf_f300_0000_ffff,
    0x00af_fb00_0000_ffff,
    0,
    0,
    0,
];

/// A 64-bit TSS.
#[repr(C, packed(4))]
#[derive(Clone, Copy, Debug, Default)]
pub struct Tss {
    reserved0: u32,
    /// Stack for CPL 0 (used when a gate has no IST).
    pub rsp0: u64,
    rsp1: u64,
    rsp2: u64,
    reserved1: u64,
    /// Interrupt stack table, IST1..IST7.
    pub ist: [u64; 7],
    reserved2: u64,
    reserved3: u16,
    /// Offset of the I/O permission bitmap (past the limit: none).
    pub iomap_base: u16,
}

const _: () = assert!(size_of::<Tss>() == 104);

/// Descriptor-table pointer for `lgdt`/`lidt`.
#[repr(C, packed(2))]
struct TablePtr {
    limit: u16,
    base: u64,
}

/// The two GDT words of a 64-bit available TSS at `base`.
pub fn tss_descriptor(base: u64) -> [u64; 2] {
    let lo = 0x67 | ((base & 0xff_ffff) << 16) | (0x89 << 40) | (((base >> 24) & 0xff) << 56);
    [lo, base >> 32]
}

/// An interrupt gate to `handler` through kernel CS, with `ist` and `dpl`.
pub fn idt_gate(handler: u64, ist: u8, dpl: u8) -> [u64; 2] {
    let lo = (handler & 0xffff)
        | (u64::from(KERNEL_CS) << 16)
        | (u64::from(ist & 7) << 32)
        | ((0x8e | (u64::from(dpl & 3) << 5)) << 40)
        | (((handler >> 16) & 0xffff) << 48);
    [lo, handler >> 32]
}

/// Loads the GDT at `base` (`entries` 8-byte entries) and the task register.
///
/// # Safety
/// `base` must hold a valid GDT in the layout above that lives forever, with an available TSS
/// descriptor at [`TSS_SEL`].
pub unsafe fn load_gdt_and_tr(base: u64, entries: usize) {
    let p = TablePtr { limit: (entries * 8 - 1) as u16, base };
    // SAFETY: per the contract; the current CS/DS selectors (0x10/0x18) keep their meaning.
    unsafe {
        asm!("lgdt [{}]", in(reg) &p, options(readonly, nostack, preserves_flags));
        asm!("ltr {0:x}", in(reg) TSS_SEL, options(nostack, preserves_flags));
    }
}

/// Loads the IDT at `base` (256 gates).
///
/// # Safety
/// `base` must hold 256 valid gates that live forever.
pub unsafe fn load_idt(base: u64) {
    let p = TablePtr { limit: 256 * 16 - 1, base };
    // SAFETY: per the contract.
    unsafe { asm!("lidt [{}]", in(reg) &p, options(readonly, nostack, preserves_flags)) };
}

/// Writes an MSR.
///
/// # Safety
/// `msr` must exist and `value` be valid for it; the write must not break the kernel's own
/// invariants (e.g. GS base while in kernel mode).
pub unsafe fn wrmsr(msr: u32, value: u64) {
    // SAFETY: per the contract.
    unsafe {
        asm!("wrmsr", in("ecx") msr, in("eax") value as u32, in("edx") (value >> 32) as u32,
             options(nostack, preserves_flags));
    }
}

/// Reads CR3.
pub fn read_cr3() -> u64 {
    let v: u64;
    // SAFETY: reading CR3 has no side effects (ring 0 only: the hw platform runs there).
    unsafe { asm!("mov {}, cr3", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// Reads CR4.
pub fn read_cr4() -> u64 {
    let v: u64;
    // SAFETY: as for CR3.
    unsafe { asm!("mov {}, cr4", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// Loads CR3 (flushes non-global TLB entries).
///
/// # Safety
/// `root` must be a PML4 that maps the kernel half exactly as the current one does.
pub unsafe fn write_cr3(root: u64) {
    // SAFETY: per the contract the kernel keeps running unchanged.
    unsafe { asm!("mov cr3, {}", in(reg) root, options(nostack, preserves_flags)) };
}

/// Invalidates the TLB entry of `va`.
pub fn invlpg(va: u64) {
    // SAFETY: invlpg only drops a cached translation.
    unsafe { asm!("invlpg [{}]", in(reg) va, options(nostack, preserves_flags)) };
}

/// Waits for an interrupt with interrupts enabled, then disables them again.
pub fn halt() {
    // SAFETY: `sti; hlt` is the race-free idle idiom (the interrupt shadow of STI covers HLT);
    // kernel-mode interrupts are handled on IST stacks and return here.
    unsafe { asm!("sti", "hlt", "cli", options(nomem, nostack)) };
}
