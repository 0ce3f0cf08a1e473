//! Ring transitions of the `hw` platform, in assembly: `hw_enter_user` (kernel -> user with
//! `iretq`), the `syscall` entry at LSTAR, and the 256 IDT stubs with their common path.
//!
//! Model (rCore `trapframe` style): `hw_enter_user(cpu)` saves the kernel's callee-saved
//! registers and stack pointer in [`HwCpu`], loads the user registers and `iretq`s. Every
//! trap from user mode (`syscall`, exception, interrupt) stores the user registers into the
//! `HwCpu` that `GS` points at (after `swapgs`), switches back to the saved kernel stack and
//! returns from `hw_enter_user`. In kernel mode `GS` base = this vCPU's `HwCpu` and
//! `KERNEL_GS_BASE` = the user's GS base; in user mode they are swapped (Intel SDM vol. 2B,
//! SWAPGS). Interrupts that arrive in kernel mode (only while halting) are noted in
//! `HwCpu::pending`, acknowledged and returned from; exceptions in kernel mode are fatal.
//!
//! On software KVM (`kvm_pvm`, design section 9) `syscall` does not leave CPL 3: the guest
//! sees a #PF (error 0x15) at RIP = LSTAR. The common path therefore treats a trap whose
//! RIP is `hw_syscall_entry` as coming from user mode, and the Rust side turns it into the
//! system call it is (RCX/R11 hold what SYSCALL put there).

use core::mem::offset_of;

use guest_abi::pvcs::UserRegs;

/// Vector number the syscall entry records (outside the IDT's 0..=255).
pub const SYSCALL_VECTOR: u64 = 256;
/// User code selector (GDT entry 6, RPL 3).
pub const USER_CS: u64 = 0x33;
/// User data selector (GDT entry 5, RPL 3).
pub const USER_SS: u64 = 0x2b;
/// Interrupt vector of the LAPIC timer.
pub const TIMER_VECTOR: u64 = 0x20;
/// Interrupt vector of inter-processor interrupts.
pub const IPI_VECTOR: u64 = 0x21;
/// Spurious-interrupt vector of the LAPIC.
pub const SPURIOUS_VECTOR: u64 = 0xff;

/// Per-vCPU state the assembly reads and writes through `GS` (layout fixed by the asserts).
#[repr(C)]
#[derive(Debug, Default)]
pub struct HwCpu {
    /// Address of this structure.
    pub self_ptr: u64,
    /// The user `rsp` while the syscall entry saves registers.
    pub scratch: u64,
    /// Kernel `rsp` saved by `hw_enter_user` (points at its saved callee-saved registers).
    pub kernel_rsp: u64,
    /// Vector of the last trap ([`SYSCALL_VECTOR`] for `syscall`).
    pub vector: u64,
    /// Error code of the last trap (0 when the vector has none).
    pub error: u64,
    /// CR2 at the last trap.
    pub cr2: u64,
    /// Interrupts that arrived (bits `guest_abi::pvcs::IRQ_*`), set by the handlers.
    pub pending: u32,
    /// Padding.
    pub pad: [u32; 3],
    /// User registers (loaded on entry, stored on a trap). `fs_base`/`gs_base` are not
    /// touched by the assembly.
    pub regs: UserRegs,
}

const _: () = assert!(offset_of!(HwCpu, scratch) == 8);
const _: () = assert!(offset_of!(HwCpu, kernel_rsp) == 16);
const _: () = assert!(offset_of!(HwCpu, vector) == 24);
const _: () = assert!(offset_of!(HwCpu, error) == 32);
const _: () = assert!(offset_of!(HwCpu, cr2) == 40);
const _: () = assert!(offset_of!(HwCpu, pending) == 48);
const _: () = assert!(offset_of!(HwCpu, regs) == 64);

unsafe extern "C" {
    /// Runs user code with the registers in `cpu.regs` until the next trap (see the module
    /// docs). Interrupts must be disabled; `GS` base must be `cpu`.
    pub fn hw_enter_user(cpu: *mut HwCpu);
    /// The `syscall` entry (LSTAR).
    pub fn hw_syscall_entry();
    /// The 256 IDT stubs, 16 bytes apart: vector `v` at `hw_vectors + 16 * v`.
    pub fn hw_vectors();
}

/// The registers pushed by the kernel-trap path before it calls [`super::hw_kernel_fault`]:
/// `rax`, `rbx`, `rcx`, `rdx`, `rsi`, `rdi`, `rbp`, `r8`..`r15`, then vector, error code and
/// the CPU's interrupt frame (`rip`, `cs`, `rflags`, `rsp`, `ss`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KernelFrame {
    /// General registers in push order reversed (`rax` first).
    pub gprs: [u64; 15],
    /// Vector.
    pub vector: u64,
    /// Error code.
    pub error: u64,
    /// Faulting `rip`.
    pub rip: u64,
    /// `cs`.
    pub cs: u64,
    /// `rflags`.
    pub rflags: u64,
    /// `rsp`.
    pub rsp: u64,
    /// `ss`.
    pub ss: u64,
}

macro_rules! r {
    ($f:ident) => {
        offset_of!(HwCpu, regs) + offset_of!(UserRegs, $f)
    };
}

core::arch::global_asm!(
    ".pushsection .text.hw_entry, \"ax\"",
    // ---- kernel -> user ----
    ".global hw_enter_user",
    ".balign 16",
    "hw_enter_user:",
    "push rbx",
    "push rbp",
    "push r12",
    "push r13",
    "push r14",
    "push r15",
    "mov [rdi + {krsp}], rsp",
    "push {user_ss}",
    "push qword ptr [rdi + {rsp}]",
    "push qword ptr [rdi + {rflags}]",
    "push {user_cs}",
    "push qword ptr [rdi + {rip}]",
    "mov rax, [rdi + {rax}]",
    "mov rbx, [rdi + {rbx}]",
    "mov rcx, [rdi + {rcx}]",
    "mov rdx, [rdi + {rdx}]",
    "mov rsi, [rdi + {rsi}]",
    "mov rbp, [rdi + {rbp}]",
    "mov r8, [rdi + {r8}]",
    "mov r9, [rdi + {r9}]",
    "mov r10, [rdi + {r10}]",
    "mov r11, [rdi + {r11}]",
    "mov r12, [rdi + {r12}]",
    "mov r13, [rdi + {r13}]",
    "mov r14, [rdi + {r14}]",
    "mov r15, [rdi + {r15}]",
    "mov rdi, [rdi + {rdi}]",
    "swapgs",
    "iretq",
    // ---- back to the kernel: rsp = the saved kernel rsp ----
    "hw_return_to_kernel:",
    "pop r15",
    "pop r14",
    "pop r13",
    "pop r12",
    "pop rbp",
    "pop rbx",
    "ret",
    // ---- syscall (LSTAR): rcx = user rip, r11 = user rflags, rsp = user rsp ----
    ".global hw_syscall_entry",
    ".balign 16",
    "hw_syscall_entry:",
    "swapgs",
    "mov gs:[{scratch}], rsp",
    "mov gs:[{rax}], rax",
    "mov gs:[{rbx}], rbx",
    "mov gs:[{rcx}], rcx",
    "mov gs:[{rdx}], rdx",
    "mov gs:[{rsi}], rsi",
    "mov gs:[{rdi}], rdi",
    "mov gs:[{rbp}], rbp",
    "mov gs:[{r8}], r8",
    "mov gs:[{r9}], r9",
    "mov gs:[{r10}], r10",
    "mov gs:[{r11}], r11",
    "mov gs:[{r12}], r12",
    "mov gs:[{r13}], r13",
    "mov gs:[{r14}], r14",
    "mov gs:[{r15}], r15",
    "mov rax, gs:[{scratch}]",
    "mov gs:[{rsp}], rax",
    "mov gs:[{rip}], rcx",
    "mov gs:[{rflags}], r11",
    "mov qword ptr gs:[{vector}], {syscall_vector}",
    "mov qword ptr gs:[{error}], 0",
    "mov rsp, gs:[{krsp}]",
    "jmp hw_return_to_kernel",
    // ---- IDT stubs: [push 0 if the CPU pushes no error code]; push vector; jmp common ----
    ".global hw_vectors",
    ".balign 16",
    "hw_vectors:",
    ".set hw_v, 0",
    ".rept 256",
    ".balign 16",
    ".if (hw_v == 8) || (hw_v == 10) || (hw_v == 11) || (hw_v == 12) || (hw_v == 13) || (hw_v == 14) || (hw_v == 17) || (hw_v == 21) || (hw_v == 29) || (hw_v == 30)",
    ".else",
    ".byte 0x6a, 0x00",
    ".endif",
    ".byte 0x68",
    ".long hw_v",
    ".byte 0xe9",
    ".long hw_trap_common - . - 4",
    ".set hw_v, hw_v + 1",
    ".endr",
    // ---- common path: [rsp] vector, +8 error, +16 rip, +24 cs, +32 rflags, +40 rsp, +48 ss
    ".balign 16",
    "hw_trap_common:",
    "test byte ptr [rsp + 24], 3",
    "jnz 1f",
    "push rax",
    "lea rax, [rip + hw_syscall_entry]",
    "cmp [rsp + 24], rax",
    "pop rax",
    "jne hw_kernel_trap",
    "1:",
    "swapgs",
    "mov gs:[{rax}], rax",
    "mov gs:[{rbx}], rbx",
    "mov gs:[{rcx}], rcx",
    "mov gs:[{rdx}], rdx",
    "mov gs:[{rsi}], rsi",
    "mov gs:[{rdi}], rdi",
    "mov gs:[{rbp}], rbp",
    "mov gs:[{r8}], r8",
    "mov gs:[{r9}], r9",
    "mov gs:[{r10}], r10",
    "mov gs:[{r11}], r11",
    "mov gs:[{r12}], r12",
    "mov gs:[{r13}], r13",
    "mov gs:[{r14}], r14",
    "mov gs:[{r15}], r15",
    "mov rax, [rsp]",
    "mov gs:[{vector}], rax",
    "mov rax, [rsp + 8]",
    "mov gs:[{error}], rax",
    "mov rax, cr2",
    "mov gs:[{cr2}], rax",
    "mov rax, [rsp + 16]",
    "mov gs:[{rip}], rax",
    "mov rax, [rsp + 32]",
    "mov gs:[{rflags}], rax",
    "mov rax, [rsp + 40]",
    "mov gs:[{rsp}], rax",
    "mov rsp, gs:[{krsp}]",
    "jmp hw_return_to_kernel",
    // ---- a trap in kernel mode ----
    "hw_kernel_trap:",
    "cmp qword ptr [rsp], 32",
    "jb 2f",
    // An interrupt while halting: note it, acknowledge it (x2APIC EOI), return.
    "push rax",
    "push rcx",
    "push rdx",
    "mov rax, [rsp + 24]",
    "cmp rax, {spurious}",
    "je 5f",
    "cmp rax, {timer}",
    "jne 3f",
    "lock or dword ptr gs:[{pending}], {irq_timer}",
    "jmp 4f",
    "3:",
    "cmp rax, {ipi}",
    "jne 4f",
    "lock or dword ptr gs:[{pending}], {irq_ipi}",
    "4:",
    "mov ecx, 0x80b",
    "xor eax, eax",
    "xor edx, edx",
    "wrmsr",
    "5:",
    "pop rdx",
    "pop rcx",
    "pop rax",
    "add rsp, 16",
    "iretq",
    // An exception in the kernel: fatal; hand every register to Rust.
    "2:",
    "push r15",
    "push r14",
    "push r13",
    "push r12",
    "push r11",
    "push r10",
    "push r9",
    "push r8",
    "push rbp",
    "push rdi",
    "push rsi",
    "push rdx",
    "push rcx",
    "push rbx",
    "push rax",
    "mov rdi, rsp",
    "and rsp, -16",
    "lea rax, [rip + {fault}]",
    "call rax",
    "ud2",
    ".popsection",
    krsp = const offset_of!(HwCpu, kernel_rsp),
    scratch = const offset_of!(HwCpu, scratch),
    vector = const offset_of!(HwCpu, vector),
    error = const offset_of!(HwCpu, error),
    cr2 = const offset_of!(HwCpu, cr2),
    pending = const offset_of!(HwCpu, pending),
    rax = const r!(rax),
    rbx = const r!(rbx),
    rcx = const r!(rcx),
    rdx = const r!(rdx),
    rsi = const r!(rsi),
    rdi = const r!(rdi),
    rbp = const r!(rbp),
    rsp = const r!(rsp),
    r8 = const r!(r8),
    r9 = const r!(r9),
    r10 = const r!(r10),
    r11 = const r!(r11),
    r12 = const r!(r12),
    r13 = const r!(r13),
    r14 = const r!(r14),
    r15 = const r!(r15),
    rip = const r!(rip),
    rflags = const r!(rflags),
    user_cs = const USER_CS,
    user_ss = const USER_SS,
    syscall_vector = const SYSCALL_VECTOR,
    spurious = const SPURIOUS_VECTOR,
    timer = const TIMER_VECTOR,
    ipi = const IPI_VECTOR,
    irq_timer = const guest_abi::pvcs::IRQ_TIMER,
    irq_ipi = const guest_abi::pvcs::IRQ_IPI,
    fault = sym super::hw_kernel_fault,
);
