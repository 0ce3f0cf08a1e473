//! The PVCS (per-vCPU shared state, named after PVM's) and the per-vCPU hypercall page.
//!
//! One [`Pvcs`] exists per (shadow space, vCPU) in the shared memfd at
//! [`crate::layout::pvcs_offset`]. It is mapped in three processes: in K (the guest kernel,
//! whole window at [`crate::layout::K_SHARED_BASE`]), in the U process of that space (at
//! [`crate::layout::U_PVCS_BASE`]) and in H. Only K's vCPU thread and U's vCPU thread hand
//! it back and forth ([`SwitchState`]); H only marks it [`SwitchState::SpaceDead`], clears it
//! while no U thread can touch it (before U starts, and after it parked a pooled U's threads),
//! and futex-wakes its state word (its watchdog).
//!
//! One [`VcpuPage`] exists per vCPU (K and H only) for hypercalls ([`HcallState`]).
//!
//! All of this memory is writable by untrusted parties: guest user code can write its own
//! space's PVCS (it is mapped in U), the guest kernel can write all of it. Each reader copies
//! what it needs once and validates the copy. Handoff words sit alone on their cache line.

use core::sync::atomic::{AtomicI64, AtomicU32, AtomicU64};

/// Guest user register file, as the x86-64 SYSCALL/SYSRET and signal-frame paths see it.
/// Written by U on a trap, by K before entering user code.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UserRegs {
    /// `rax`.
    pub rax: u64,
    /// `rbx`.
    pub rbx: u64,
    /// `rcx`.
    pub rcx: u64,
    /// `rdx`.
    pub rdx: u64,
    /// `rsi`.
    pub rsi: u64,
    /// `rdi`.
    pub rdi: u64,
    /// `rbp`.
    pub rbp: u64,
    /// `rsp`.
    pub rsp: u64,
    /// `r8`.
    pub r8: u64,
    /// `r9`.
    pub r9: u64,
    /// `r10`.
    pub r10: u64,
    /// `r11`.
    pub r11: u64,
    /// `r12`.
    pub r12: u64,
    /// `r13`.
    pub r13: u64,
    /// `r14`.
    pub r14: u64,
    /// `r15`.
    pub r15: u64,
    /// Instruction pointer. On a syscall trap: the instruction after `syscall`.
    pub rip: u64,
    /// `rflags`; only the user-modifiable flags take effect on entry.
    pub rflags: u64,
    /// FS base (`arch_prctl(ARCH_SET_FS)`, or the guest's own `wrfsbase`).
    pub fs_base: u64,
    /// GS base.
    pub gs_base: u64,
}

const _: () = assert!(core::mem::size_of::<UserRegs>() == 160);

/// Why user code stopped. Written by U (or H for [`TrapKind::SpaceDied`]).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrapKind {
    /// No trap (never published).
    None = 0,
    /// A `syscall` instruction; number in [`TrapRecord::syscall_nr`], arguments in the regs
    /// (`rdi`, `rsi`, `rdx`, `r10`, `r8`, `r9`). `rip` points after the instruction.
    Syscall = 1,
    /// A page fault (vector 14) in user code that the shadow did not satisfy:
    /// [`TrapRecord::fault_addr`] is the GVA, [`TrapRecord::error_code`] the x86 #PF error code.
    PageFault = 2,
    /// Another CPU exception (#GP, #UD, #DE, #BP, #MF, #XM, #AC, ...): vector, error code and
    /// host signal information in the record.
    Exception = 3,
    /// An interrupt (timer, IPI) H raised while user code ran.
    Interrupt = 4,
    /// The U process of this space died (guest-caused: e.g. it corrupted its stub area). K
    /// must kill the guest processes of this space.
    SpaceDied = 5,
}

impl TrapKind {
    /// Decodes a raw value read from shared memory.
    pub fn from_raw(raw: u32) -> Option<Self> {
        Some(match raw {
            0 => Self::None,
            1 => Self::Syscall,
            2 => Self::PageFault,
            3 => Self::Exception,
            4 => Self::Interrupt,
            5 => Self::SpaceDied,
            _ => return None,
        })
    }
}

/// x86 exception vectors (Intel SDM vol. 3A, table 6-1).
pub mod vector {
    /// #DE divide error.
    pub const DE: u32 = 0;
    /// #DB debug.
    pub const DB: u32 = 1;
    /// #BP breakpoint (`int3`).
    pub const BP: u32 = 3;
    /// #UD invalid opcode.
    pub const UD: u32 = 6;
    /// #NM device not available.
    pub const NM: u32 = 7;
    /// #GP general protection.
    pub const GP: u32 = 13;
    /// #PF page fault.
    pub const PF: u32 = 14;
    /// #MF x87 floating-point error.
    pub const MF: u32 = 16;
    /// #AC alignment check.
    pub const AC: u32 = 17;
    /// #XM SIMD floating-point exception.
    pub const XM: u32 = 19;
}

/// x86 #PF error-code bits (Intel SDM vol. 3A, 4.7).
pub mod pf_error {
    /// The fault was a protection violation (page present).
    pub const PRESENT: u64 = 1 << 0;
    /// The access was a write.
    pub const WRITE: u64 = 1 << 1;
    /// The access came from user mode.
    pub const USER: u64 = 1 << 2;
    /// A reserved bit was set in a paging structure.
    pub const RSVD: u64 = 1 << 3;
    /// The access was an instruction fetch.
    pub const FETCH: u64 = 1 << 4;
}

/// The trap record of a [`Pvcs`]. Written by U when it publishes a trap.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrapRecord {
    /// [`TrapKind`] as `u32`.
    pub kind: u32,
    /// x86 vector ([`vector`]) for exceptions and page faults.
    pub vector: u32,
    /// x86 error code (for #PF: [`pf_error`] bits).
    pub error_code: u64,
    /// Faulting GVA (CR2) for #PF; `si_addr` of other faults.
    pub fault_addr: u64,
    /// Linux x86-64 syscall number for [`TrapKind::Syscall`].
    pub syscall_nr: u64,
    /// Host signal that carried the trap (SIGSYS, SIGSEGV, SIGILL, SIGFPE, SIGTRAP, SIGBUS).
    pub host_signo: u32,
    /// `si_code` of that signal (e.g. `FPE_INTDIV`, `SEGV_MAPERR`), to give the guest the same.
    pub si_code: i32,
    /// Reserved, zero.
    pub reserved: u64,
}

const _: () = assert!(core::mem::size_of::<TrapRecord>() == 48);

/// Ownership of a [`Pvcs`]: the handoff between K's and U's thread of one vCPU.
///
/// Both sides futex-wait on [`Pvcs::state`] for the value that hands them the PVCS, and
/// `FUTEX_WAKE` it after every change.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwitchState {
    /// Nothing published yet (fresh space). K owns the PVCS: it may write `regs`, `fpu_op`
    /// and `fpu`, then move to [`SwitchState::KernelToUser`].
    Empty = 0,
    /// K published a user context. U's vCPU thread owns the PVCS: it loads `regs` (and the FPU
    /// image per `fpu_op`) and runs guest user code. K must not touch the PVCS.
    KernelToUser = 1,
    /// U loaded the context and runs guest user code. U owns the PVCS. (Informational: K
    /// treats it like `KernelToUser`.)
    UserRunning = 2,
    /// U published a trap: `trap`, `regs`, `fpu`/`fpu_len` are valid. K owns the PVCS until it
    /// moves it to `KernelToUser` again.
    UserToKernel = 3,
    /// H saw the U process die. Terminal: K reads a [`TrapKind::SpaceDied`] and must stop
    /// using this space (release it with `RELEASE_PGTBL`).
    SpaceDead = 4,
}

impl SwitchState {
    /// Decodes a raw value read from shared memory.
    pub fn from_raw(raw: u32) -> Option<Self> {
        Some(match raw {
            0 => Self::Empty,
            1 => Self::KernelToUser,
            2 => Self::UserRunning,
            3 => Self::UserToKernel,
            4 => Self::SpaceDead,
            _ => return None,
        })
    }
}

/// What U does with the FPU state when it enters user code. Written by K.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FpuOp {
    /// Load `fpu[..fpu_len]` (an image U saved at an earlier trap, possibly of another space
    /// on this host: the layout is the host signal frame's XSAVE image).
    Restore = 0,
    /// Start from the architectural initial state (x87 FCW 0x37f, MXCSR 0x1f80, all registers
    /// zero), as after `execve`.
    Reset = 1,
    /// Keep what the U thread's signal frame already holds (the same guest thread trapped last
    /// on this vCPU of this space and nobody changed its FPU state): saves two copies.
    Keep = 2,
}

/// Offset of [`Pvcs::fpu`] in a PVCS, bytes.
pub const PVCS_FPU_OFFSET: usize = 4096;
/// Capacity of [`Pvcs::fpu`], bytes. A host whose signal-frame XSAVE image is larger cannot
/// run the soft backend (the stub reports it at start).
pub const PVCS_FPU_SIZE: usize = crate::layout::PVCS_SIZE as usize - PVCS_FPU_OFFSET;

/// The per-(space, vCPU) shared state. See the module docs for who maps it.
#[repr(C, align(4096))]
pub struct Pvcs {
    /// [`SwitchState`] as `u32`: the handoff word (futex).
    pub state: AtomicU32,
    _pad0: [u8; 60],
    /// User registers (both directions, per `state`).
    pub regs: UserRegs,
    /// Trap record (U -> K).
    pub trap: TrapRecord,
    /// [`FpuOp`] as `u32` (K -> U).
    pub fpu_op: u32,
    /// Bytes of `fpu` that hold the image U saved (U -> K).
    pub fpu_len: u32,
    /// Host thread id of U's thread for this vCPU. U writes it at start; H reads it once, when
    /// U reports ready and before any guest code ran in U, checks that the ids are distinct
    /// threads of U other than its mapper, and from then on uses only its own copy. Guest code
    /// may overwrite this field later; nobody reads it again.
    pub u_tid: i32,
    /// Number of traps U published on this PVCS (U writes; statistics only).
    pub trap_count: u32,
    _pad1: [u8; PVCS_FPU_OFFSET - 64 - 160 - 48 - 16],
    /// The user FPU/XSAVE image, in the host signal frame's layout (opaque to K).
    pub fpu: [u8; PVCS_FPU_SIZE],
}

const _: () = assert!(core::mem::size_of::<Pvcs>() as u64 == crate::layout::PVCS_SIZE);
const _: () = assert!(core::mem::offset_of!(Pvcs, regs) == 64);
const _: () = assert!(core::mem::offset_of!(Pvcs, trap) == 224);
const _: () = assert!(core::mem::offset_of!(Pvcs, fpu_op) == 272);
const _: () = assert!(core::mem::offset_of!(Pvcs, fpu) == PVCS_FPU_OFFSET);

/// Hypercall handoff between K's vCPU thread and H's vCPU thread.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HcallState {
    /// No request. K owns the page and may write `nr`/`args`, then move to `Request`.
    Idle = 0,
    /// K published a request. H owns the page: it copies `nr`/`args` once, acts, writes `ret`.
    Request = 1,
    /// H published the result in `ret`. K owns the page: it reads `ret` and moves to `Idle`.
    Response = 2,
    /// H's own marker that K died while H waited (written by H's monitor, never by K's rules).
    KernelDead = 3,
}

impl HcallState {
    /// Decodes a raw value read from shared memory.
    pub fn from_raw(raw: u32) -> Option<Self> {
        Some(match raw {
            0 => Self::Idle,
            1 => Self::Request,
            2 => Self::Response,
            3 => Self::KernelDead,
            _ => return None,
        })
    }
}

/// [`VcpuPage::pending_irq`] bit: the `SET_TIMER` deadline passed.
pub const IRQ_TIMER: u32 = 1 << 0;
/// [`VcpuPage::pending_irq`] bit: another vCPU sent an IPI (`SEND_IPI`).
pub const IRQ_IPI: u32 = 1 << 1;

/// The per-vCPU hypercall page, at [`crate::layout::vcpu_page_offset`] in the shared memfd.
/// Mapped in K and H only.
#[repr(C, align(4096))]
pub struct VcpuPage {
    /// [`HcallState`] as `u32`: the handoff word (futex).
    pub state: AtomicU32,
    _pad0: [u8; 60],
    /// [`crate::hypercall::Hypercall`] number (K -> H). Atomics so both sides can access the
    /// shared page through shared references; `Relaxed` suffices, `state` orders them.
    pub nr: AtomicU64,
    /// Arguments (K -> H).
    pub args: [AtomicU64; 4],
    /// Result (H -> K): `>= 0` success, `< 0` negated errno.
    pub ret: AtomicI64,
    /// Pending interrupt bits H posts for this vCPU ([`IRQ_TIMER`], [`IRQ_IPI`]). K takes them
    /// with an atomic swap at its interrupt points (an `Interrupt` trap, after `HALT`, before
    /// entering user code).
    pub pending_irq: AtomicU32,
    /// Host thread id of K's thread for this vCPU (K's stub writes it at start).
    pub k_tid: i32,
    /// Space id whose PVCS this vCPU enters user code through. K stores it before it checks
    /// `pending_irq` and publishes `KernelToUser`; H, after setting a `pending_irq` bit, sends
    /// the interrupt signal to that space's U thread of this vCPU. The signal stays pending
    /// while the vCPU is in the guest kernel and fires when user code resumes, so no
    /// interrupt is lost (a spurious `Interrupt` trap is possible and harmless).
    /// `u32::MAX`: none.
    pub current_space: AtomicU32,
    /// K's count of its entries into and returns from user code on this vCPU: odd while the
    /// vCPU runs user code (K incremented it before publishing `KernelToUser`), even while it
    /// runs the guest kernel (K incremented it again when the trap came back). H's interrupt
    /// watchdog uses it: an interrupt pending while the count stays at one odd value for too
    /// long means the guest user thread does not take interrupts. Only K writes it (guest user
    /// code cannot map this page).
    pub user_seq: AtomicU32,
    _pad1: [u8; 4096 - 64 - 48 - 16],
}

const _: () = assert!(core::mem::size_of::<VcpuPage>() as u64 == crate::layout::VCPU_PAGE_SIZE);
const _: () = assert!(core::mem::offset_of!(VcpuPage, nr) == 64);
const _: () = assert!(core::mem::offset_of!(VcpuPage, ret) == 104);
const _: () = assert!(core::mem::offset_of!(VcpuPage, current_space) == 120);
const _: () = assert!(core::mem::offset_of!(VcpuPage, user_seq) == 124);
