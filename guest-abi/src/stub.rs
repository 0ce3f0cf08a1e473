//! Contract between H's `switcher` library and the switcher stub executable (soft backend):
//! the file descriptors H hands a stub, the setup record, the stack slots, the interrupt
//! signal and the stub's exit codes. The guest kernel does not use this module.
//!
//! H spawns the stub with exactly these fds open (everything else closed):
//!
//! | fd | K role | U role |
//! |---|---|---|
//! | [`GUEST_MEM_FD`] (3) | guest-memory memfd | guest-memory memfd (kept) |
//! | [`SHARED_FD`] (4) | shared memfd | shared memfd |
//! | [`MAPPER_FD`] (5) | - | this space's mapper memfd |
//! | [`SETUP_FD`] (6) | setup memfd ([`SetupRecord`]) | setup memfd |
//! | [`COMPLETION_FD`] + *i* (7 ..) | - | write end of vCPU *i*'s mapper completion pipe (kept) |
//!
//! The stub reads the setup record once into its own memory, maps what it describes, then
//! closes every fd but (in U) [`GUEST_MEM_FD`] and the `vcpus` completion fds from
//! [`COMPLETION_FD`] on.

use crate::layout;
use crate::mapper;

/// Signal H sends with `tgkill(u_pid, tid, INTERRUPT_SIGNAL)` to a U vCPU thread (H's own
/// record of the tid, taken at spawn) that runs guest user code; the stub reports it as
/// [`crate::pvcs::TrapKind::Interrupt`]. `SIGUSR1`. A signal that lands while the thread runs
/// stub code (handing off) is remembered by the stub and reported as an interrupt trap at the
/// next entry into user code instead (a spurious interrupt trap K must tolerate); H also
/// repeats an interrupt the vCPU has not taken (its watchdog).
pub const INTERRUPT_SIGNAL: i32 = 10;
/// Signal H sends to every guest thread of a U it resets for the pool: wherever the thread
/// is, it abandons its context and parks (see [`crate::mapper::MapperCmd::run`]). `SIGUSR2`.
pub const RESET_SIGNAL: i32 = 12;

/// fd of the guest-memory memfd in K and U (equal to [`mapper::U_GUEST_MEM_FD`]).
pub const GUEST_MEM_FD: i32 = mapper::U_GUEST_MEM_FD;
/// fd of the shared memfd ([`layout::SHARED_SIZE`] bytes) at stub start.
pub const SHARED_FD: i32 = 4;
/// fd of the mapper memfd ([`MAPPER_MEMFD_SIZE`] bytes) at U stub start.
pub const MAPPER_FD: i32 = 5;
/// fd of the setup memfd (one [`SetupRecord`]) at stub start.
pub const SETUP_FD: i32 = 6;
/// fd of the write end of vCPU 0's mapper completion pipe in U; vCPU *i*'s mapper has
/// `COMPLETION_FD + i` (packet mode; the only fds the mapper filter lets a mapper `write` to,
/// and each mapper writes only the one its read-only command area names,
/// [`mapper::MapperCmd::completion_fd`]). See [`crate::mapper`].
pub const COMPLETION_FD: i32 = 7;

/// Bytes of the mapper memfd per vCPU mapper: its command area, then its completion page.
pub const MAPPER_STRIDE: u64 = mapper::CMD_AREA_SIZE + crate::PAGE_SIZE;
/// Offset of vCPU `vcpu`'s mapper command area in the mapper memfd.
pub const fn mapper_cmd_offset(vcpu: u32) -> u64 {
    vcpu as u64 * MAPPER_STRIDE
}
/// Offset of vCPU `vcpu`'s [`mapper::MapperDone`] page in the mapper memfd.
pub const fn mapper_done_offset(vcpu: u32) -> u64 {
    mapper_cmd_offset(vcpu) + mapper::CMD_AREA_SIZE
}
/// Offset of the [`mapper::MapperDone`] page of vCPU 0's mapper (the command area is at 0).
pub const MAPPER_DONE_OFFSET: u64 = mapper_done_offset(0);
/// Size of the mapper memfd, bytes: one command area and completion page per possible vCPU.
pub const MAPPER_MEMFD_SIZE: u64 = crate::MAX_VCPUS as u64 * MAPPER_STRIDE;

/// One stack slot in the stub stacks area: an unmapped-equivalent guard page (`PROT_NONE`)
/// followed by [`layout::STUB_STACK_SIZE`] bytes of stack.
pub const STACK_SLOT_SIZE: u64 = layout::STUB_STACK_SIZE + crate::PAGE_SIZE;

/// Base (guard page) of stack slot `slot`. K: slot `i` is vCPU `i`'s stack. U: slot `2 i` is
/// vCPU `i`'s thread stack (stub code before launch), slot `2 i + 1` its sigaltstack, and
/// slot `2 vcpus + i - 1` (for `i >= 1`) the start-up stack of vCPU `i`'s mapper thread (its
/// loop uses no stack; vCPU 0's mapper is the main thread).
pub const fn stack_slot_base(slot: u64) -> u64 {
    layout::STUB_STACKS_BASE + slot * STACK_SLOT_SIZE
}

/// One past the top of stack slot `slot` (the initial stack pointer, 16-byte aligned).
pub const fn stack_slot_top(slot: u64) -> u64 {
    stack_slot_base(slot) + STACK_SLOT_SIZE
}

/// Number of stack slots a stub maps (U needs two per vCPU).
pub const STACK_SLOTS: u64 = 3 * crate::MAX_VCPUS as u64;

/// Magic in [`SetupRecord::magic`] (`"PVMSTUB\0"`).
pub const SETUP_MAGIC: u64 = u64::from_le_bytes(*b"PVMSTUB\0");
/// Maximum classic-BPF instructions in one filter of a [`SetupRecord`].
pub const MAX_FILTER_INSNS: usize = 512;
/// Maximum kernel segments in a [`SetupRecord`].
pub const MAX_SEGMENTS: usize = 16;

/// Role of a stub process, [`SetupRecord::role`].
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StubRole {
    /// K: the guest-kernel sandbox.
    Kernel = 1,
    /// U: one guest address space.
    Space = 2,
}

/// One classic-BPF instruction (Linux `struct sock_filter`, `linux/filter.h`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SockFilter {
    /// Opcode (`BPF_LD | BPF_W | BPF_ABS`, ...).
    pub code: u16,
    /// Jump offset if true.
    pub jt: u8,
    /// Jump offset if false.
    pub jf: u8,
    /// Constant operand.
    pub k: u32,
}

/// A kernel segment for K: map `len` bytes of guest memory at GPA `gpa` to `vaddr` with
/// `prot` (`PROT_*`). All page aligned.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SegmentRecord {
    /// Virtual address in K, bytes.
    pub vaddr: u64,
    /// Guest physical address (offset in the guest-memory memfd), bytes.
    pub gpa: u64,
    /// Length, bytes.
    pub len: u64,
    /// `PROT_*` bits.
    pub prot: u32,
    /// Reserved, zero.
    pub reserved: u32,
}

/// The setup record H writes into the setup memfd ([`SETUP_FD`]). Written by H (trusted),
/// read once by the stub at start.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SetupRecord {
    /// [`SETUP_MAGIC`].
    pub magic: u64,
    /// [`crate::ABI_VERSION`].
    pub abi_version: u32,
    /// [`StubRole`] as `u32`.
    pub role: u32,
    /// U: the space id (selects the PVCS pages). K: 0.
    pub space: u32,
    /// Number of vCPUs (`1 ..= MAX_VCPUS`): K creates one thread each, U one guest thread each.
    pub vcpus: u32,
    /// Size of the guest-memory memfd, bytes.
    pub guest_mem_size: u64,
    /// K: virtual address of the guest kernel entry,
    /// `extern "sysv64" fn(vcpu_id: u64, boot_info_va: u64, backend: u64) -> !`. U: 0.
    pub entry: u64,
    /// K: number of valid entries in `segments`.
    pub nsegments: u32,
    /// Instructions in `filter_a`.
    pub filter_a_len: u32,
    /// Instructions in `filter_b`.
    pub filter_b_len: u32,
    /// Reserved, zero.
    pub reserved: u32,
    /// K: the kernel image segments.
    pub segments: [SegmentRecord; MAX_SEGMENTS],
    /// K: the K-thread filter. U: the guest-thread filter.
    pub filter_a: [SockFilter; MAX_FILTER_INSNS],
    /// U: the mapper-thread filter. K: unused.
    pub filter_b: [SockFilter; MAX_FILTER_INSNS],
}

const _: () = assert!(core::mem::size_of::<SetupRecord>().is_multiple_of(8));

/// Exit codes of a stub that fails during setup (before its filters are installed). Once
/// filtered, a stub that meets something it cannot handle dies by a signal instead.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StubExit {
    /// The setup record was missing, malformed or of another ABI version.
    BadSetup = 100,
    /// An `mmap` of the setup failed.
    MapFailed = 101,
    /// The host's signal-frame XSAVE image is larger than [`crate::pvcs::PVCS_FPU_SIZE`].
    FpuTooLarge = 102,
    /// The host kernel does not enable `FSGSBASE` for user mode (`AT_HWCAP2` bit 1).
    NoFsGsBase = 103,
    /// Creating a thread failed.
    CloneFailed = 104,
    /// Installing a seccomp filter failed.
    FilterFailed = 105,
    /// Installing a signal handler or the sigaltstack failed.
    SignalSetupFailed = 106,
    /// `mseal` failed with an error other than `ENOSYS`.
    SealFailed = 107,
    /// Another setup system call (`prctl`, `close_range`) failed.
    SyscallFailed = 108,
    /// The stub panicked during setup.
    Panic = 109,
    /// The stub gave up on a broken state before its filters were installed (afterwards the
    /// same call kills the process through seccomp).
    Died = 110,
}

impl StubExit {
    /// Decodes an exit code.
    pub fn from_raw(raw: i32) -> Option<Self> {
        Some(match raw {
            100 => Self::BadSetup,
            101 => Self::MapFailed,
            102 => Self::FpuTooLarge,
            103 => Self::NoFsGsBase,
            104 => Self::CloneFailed,
            105 => Self::FilterFailed,
            106 => Self::SignalSetupFailed,
            107 => Self::SealFailed,
            108 => Self::SyscallFailed,
            109 => Self::Panic,
            110 => Self::Died,
            _ => return None,
        })
    }
}

const _: () = assert!(stack_slot_top(STACK_SLOTS) <= layout::K_SHARED_BASE);
const _: () = assert!(MAPPER_STRIDE == mapper::CMD_AREA_SIZE + 4096);
