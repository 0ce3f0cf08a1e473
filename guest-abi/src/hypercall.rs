//! Hypercall numbers and results: requests from the guest kernel to H.
//!
//! The same numbers on both backends (design section 7). Soft backend: the guest kernel writes
//! the request into its vCPU's [`crate::pvcs::VcpuPage`] and hands off with a futex. KVM
//! backend: the arguments go in registers and the guest executes `out dx, eax` with
//! `dx` = [`HYPERCALL_PORT`]: `rax` = number, `rdi`, `rsi`, `r10`, `r8` = arguments 0..3 (not
//! `rdx`: it holds the port), result in `rax` (H writes it with `KVM_SET_REGS`). Under KVM the
//! MMU calls (`LOAD_PGTBL`, `FLUSH_TLB*`, `RELEASE_PGTBL`, `PREFAULT`, `SHADOW_FAULT`),
//! `SET_TIMER`, `HALT` and `SEND_IPI` are served inside the guest (CR3, `invlpg`, LAPIC, `hlt`)
//! and never reach H, which answers them with `-ENOSYS` if they do.
//!
//! Results are `i64`: `>= 0` success (meaning per call), `< 0` a negated Linux errno.

/// I/O port the KVM backend's guest writes to for a hypercall (`out dx, eax`).
pub const HYPERCALL_PORT: u16 = 0x0cf0;

/// Hypercall numbers. Arguments are listed as `(a0, a1, a2, a3)`.
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hypercall {
    /// `(root_gpa)`: make `root_gpa` (GPA of a PML4) a live shadow space. Returns the space id
    /// (`0 .. MAX_SPACES`) whose PVCS the guest uses to enter user code in that address space.
    /// Idempotent: the same root returns the same id until released.
    LoadPgtbl = 1,
    /// `(root_gpa, gva, len)`: the guest changed present PTEs in `gva .. gva+len`; drop their
    /// shadow. Returns 0.
    FlushTlb = 2,
    /// `(root_gpa)`: drop the whole shadow of `root_gpa`. Returns 0.
    FlushTlbAll = 3,
    /// `(root_gpa)`: the guest freed this page-table root; its space id becomes invalid.
    ReleasePgtbl = 4,
    /// `(root_gpa, gva, len)`: fill the shadow for present PTEs in the range now. Returns the
    /// number of pages mapped.
    Prefault = 5,
    /// Guarantees of the soft backend's fills (`SHADOW_FAULT`, `PREFAULT`) the guest kernel
    /// may rely on to skip flushes: a fill maps only present leaves of the page-table page it
    /// walks to (for 4 KiB leaves: inside the anchor's aligned 2 MiB region; for 2 MiB leaves:
    /// inside its page-directory page, at most 64 leaves), and a fill re-maps a page whose
    /// effective rights grew since it was mapped (so an upgrade needs no flush).
    ///
    /// `(root_gpa, gva, error_code)`: a user access at `gva` with x86 #PF error code bits
    /// faulted in the shadow. Returns [`FAULT_FILLED`] when the guest page table allows the
    /// access (the shadow now maps it), [`FAULT_INJECT`] when the guest must handle it as a
    /// #PF of its own.
    ShadowFault = 6,
    /// `(fd, gpa, len)`: write `len` bytes at `gpa` to host fd 1 (stdout), 2 (stderr) or
    /// [`CONSOLE_KERNEL_LOG`]. Returns bytes written.
    ConsoleWrite = 7,
    /// `(gpa, len)`: read up to `len` bytes from host stdin into `gpa`. Returns bytes read, 0 at
    /// end of file. Blocks the vCPU.
    ConsoleRead = 8,
    /// `(deadline_ns)`: raise a timer interrupt on this vCPU at `CLOCK_MONOTONIC` deadline
    /// (0 cancels).
    SetTimer = 9,
    /// `()`: idle this vCPU until an interrupt is pending. Returns 0.
    Halt = 10,
    /// `(vcpu)`: raise an IPI on `vcpu`.
    SendIpi = 11,
    /// `(vcpu[, lock_va, seen])`: a spin lock held by `vcpu` spun too long: step this vCPU
    /// aside (at most about 200 us on the soft backend) and let `vcpu` run. Optional: `lock_va`
    /// (0: none) is the guest-kernel virtual address (physmap or kernel image) of the 4-byte
    /// lock word and `seen` the value this vCPU saw in it; H then ends the yield as soon as
    /// the word changes (the guest may `FUTEX_WAKE` it on release to end it at once). Returns
    /// 0, or `-EINVAL` for a `vcpu` outside the VM. Offered when `BootInfo::pv_features` has
    /// `PV_LOCK_HINTS`.
    YieldTo = 12,
    /// `(kind, value)`: the VM is over; see [`ShutdownKind`]. Does not return.
    Shutdown = 13,
    /// `(clock_id)`: current time of Linux clock `clock_id` (0 realtime, 1 monotonic), ns.
    GetTime = 14,
    /// `(root_gpa, list_gpa, count)`: `FLUSH_TLB` of `count` (`<= FLUSH_LIST_MAX`) ranges given
    /// as [`FlushRange`] records at `list_gpa`, applied with one handoff to the U mapper (the
    /// copy-on-write write-protect of a fork touches many ranges). Returns 0.
    FlushTlbList = 15,
    /// `(dst_gpa, src_gpa, len)`: copy `len` bytes inside guest RAM (overlap allowed, as
    /// `memmove`). Returns 0, or `-EINVAL` when a range leaves RAM. Only issued when
    /// [`crate::boot::BootInfo::bulk_mem_min`] is nonzero (see there).
    CopyMem = 16,
    /// `(gpa, len)`: zero `len` bytes of guest RAM. Returns 0, or `-EINVAL` when the range
    /// leaves RAM. Only issued when [`crate::boot::BootInfo::bulk_mem_min`] is nonzero.
    ZeroMem = 17,
}

/// One range of [`Hypercall::FlushTlbList`]: 16 bytes, written by the guest, read once by H.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlushRange {
    /// Start GVA, bytes.
    pub gva: u64,
    /// Length, bytes.
    pub len: u64,
}

/// Most ranges in one [`Hypercall::FlushTlbList`].
pub const FLUSH_LIST_MAX: u64 = 256;

impl Hypercall {
    /// Decodes a raw number read from shared memory or a register.
    pub fn from_raw(raw: u64) -> Option<Self> {
        Some(match raw {
            1 => Self::LoadPgtbl,
            2 => Self::FlushTlb,
            3 => Self::FlushTlbAll,
            4 => Self::ReleasePgtbl,
            5 => Self::Prefault,
            6 => Self::ShadowFault,
            7 => Self::ConsoleWrite,
            8 => Self::ConsoleRead,
            9 => Self::SetTimer,
            10 => Self::Halt,
            11 => Self::SendIpi,
            12 => Self::YieldTo,
            13 => Self::Shutdown,
            14 => Self::GetTime,
            15 => Self::FlushTlbList,
            16 => Self::CopyMem,
            17 => Self::ZeroMem,
            _ => return None,
        })
    }

    /// Short name for statistics tables.
    pub fn name(self) -> &'static str {
        match self {
            Self::LoadPgtbl => "load_pgtbl",
            Self::FlushTlb => "flush_tlb",
            Self::FlushTlbAll => "flush_tlb_all",
            Self::ReleasePgtbl => "release_pgtbl",
            Self::Prefault => "prefault",
            Self::ShadowFault => "shadow_fault",
            Self::ConsoleWrite => "console_write",
            Self::ConsoleRead => "console_read",
            Self::SetTimer => "set_timer",
            Self::Halt => "halt",
            Self::SendIpi => "send_ipi",
            Self::YieldTo => "yield_to",
            Self::Shutdown => "shutdown",
            Self::GetTime => "get_time",
            Self::FlushTlbList => "flush_tlb_list",
            Self::CopyMem => "copy_mem",
            Self::ZeroMem => "zero_mem",
        }
    }
}

/// Number of hypercall kinds (numbers are `1 ..= HYPERCALL_COUNT`).
pub const HYPERCALL_COUNT: usize = 17;

/// [`Hypercall::ShadowFault`] result: the shadow now maps the page; resume user code.
pub const FAULT_FILLED: i64 = 0;
/// [`Hypercall::ShadowFault`] result: the guest page table does not allow the access; the
/// guest kernel handles it as its own #PF.
pub const FAULT_INJECT: i64 = 1;

/// [`Hypercall::ConsoleWrite`] fd for the guest kernel's own log (H prefixes and routes it to
/// its stderr according to its log level).
pub const CONSOLE_KERNEL_LOG: u64 = 3;

/// Longest shutdown reason H reads at [`crate::layout::LAUNCH_GPA`], bytes.
pub const SHUTDOWN_REASON_MAX: usize = 256;

/// First argument of [`Hypercall::Shutdown`]: why the VM ends.
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShutdownKind {
    /// The first guest process exited; `value` = its exit status (0..=255).
    Exited = 0,
    /// The first guest process was killed by a signal; `value` = the signal number.
    Signaled = 1,
    /// The first program could not be found; `value` = errno (ENOENT, ENOTDIR, ...).
    /// H exits with 127. For this kind and `CannotExecute` the kernel may leave a
    /// NUL-terminated UTF-8 reason of at most [`SHUTDOWN_REASON_MAX`] bytes at
    /// [`crate::layout::LAUNCH_GPA`] (the launch block is consumed by then); H prints it,
    /// sanitised, as its one line about the failure.
    NotFound = 2,
    /// The first program could not be executed; `value` = errno (ENOEXEC, EACCES, ELIBBAD,
    /// ...). H exits with 126.
    CannotExecute = 3,
    /// The guest kernel hit a fatal error; `value` is one of the [`panic_code`]s. The kernel
    /// logs the reason before (except for [`panic_code::BOOT_OUT_OF_MEMORY`], which H
    /// explains in its own line). H exits with 125.
    KernelPanic = 4,
}

/// [`ShutdownKind::KernelPanic`] codes.
pub mod panic_code {
    /// A Rust panic or a fatal kernel error.
    pub const PANIC: u64 = 1;
    /// Boot failed (bad boot information, no usable memory).
    pub const BOOT: u64 = 2;
    /// Guest memory cannot hold the root filesystem: H prints its own one line for it.
    pub const BOOT_OUT_OF_MEMORY: u64 = 3;
    /// A CPU exception in guest-kernel code (hw platform).
    pub const KERNEL_EXCEPTION: u64 = 4;
}

impl ShutdownKind {
    /// Decodes a raw value.
    pub fn from_raw(raw: u64) -> Option<Self> {
        Some(match raw {
            0 => Self::Exited,
            1 => Self::Signaled,
            2 => Self::NotFound,
            3 => Self::CannotExecute,
            4 => Self::KernelPanic,
            _ => return None,
        })
    }
}
