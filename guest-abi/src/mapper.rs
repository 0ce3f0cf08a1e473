//! The mapper channel: how H changes a U process's mappings (the shadow).
//!
//! Each vCPU has its own mapper thread in every U, with its own command area, completion page
//! and completion pipe (`crate::stub::mapper_cmd_offset`), so shadow fills of different
//! vCPUs in one address space reach the host in parallel. Everything below holds for each
//! mapper on its own.
//!
//! Only U's mapper thread may call `mmap`/`munmap`/`mprotect` (its seccomp filter allows them
//! for the guest-memory fd and the user range only). H writes a batch of [`MapOp`]s into the
//! command area ([`MapperCmd`], read-only in U), bumps [`MapperCmd::seq`] and wakes it; the
//! mapper applies the batch with registers only and reports completion with one `write` of a
//! *packet* to the completion pipe ([`crate::stub::COMPLETION_FD`], a pipe in packet mode,
//! `O_DIRECT`, whose read end only H holds).
//!
//! Trust rules (who may write what, what the reader checks):
//! - The command area is written only by H; U maps it read-only and sealed.
//! - The completion *is the packet*, and only the mapper thread can send one: U's guest
//!   threads share its fd table, but their seccomp filter traps every `write` (it becomes a
//!   guest syscall for the guest kernel), and the mapper's own filter allows `write` only to
//!   [`crate::stub::COMPLETION_FD`]. The mapper's loop uses registers only, so guest threads
//!   cannot steer it either. The packet's *length* carries the outcome ([`COMPLETION_OK`], or
//!   [`COMPLETION_FAILED_BASE`] `+ index`); its bytes are ignored. H keeps one batch in flight
//!   per channel and reads exactly one packet per batch, so a packet always answers the batch
//!   H sent last.
//! - [`MapperDone`] (read-write in U) only carries the errno of a failed operation for H's
//!   error message: guest code can forge it, and H never decides anything on it.
//! - [`MapperCmd::run`] (H writes, read-only in U) tells each guest thread of a pooled U
//!   whether it may take guest contexts from its PVCS ([`RUN`]) or must stay parked
//!   ([`PARK`]); see `switcher::space` for the reset of a pooled U.

use core::sync::atomic::{AtomicI32, AtomicU32};

/// Size of the command area, bytes.
pub const CMD_AREA_SIZE: u64 = 16 << 10;
/// Bytes of the command area before the operations: `seq`, `count`, padding to a cache line,
/// then one [`MapperCmd::run`] word per vCPU, padded to 64 bytes.
pub const CMD_HEADER_SIZE: usize = 128;
/// Maximum operations in one batch.
pub const MAX_OPS: usize = (CMD_AREA_SIZE as usize - CMD_HEADER_SIZE) / core::mem::size_of::<MapOp>();
/// Length of the completion packet of a batch whose every operation succeeded, bytes.
pub const COMPLETION_OK: usize = 1;
/// Length of the completion packet of a batch whose operation `i` failed (the rest were
/// skipped) is `COMPLETION_FAILED_BASE + i` bytes (at most `COMPLETION_FAILED_BASE + MAX_OPS`,
/// below `PIPE_BUF`, so the write is one atomic packet).
pub const COMPLETION_FAILED_BASE: usize = 2;
/// [`MapperCmd::run`] value: the guest thread stays parked (also the zero value of a fresh
/// command area).
pub const PARK: u32 = 0;
/// [`MapperCmd::run`] value: the guest thread may take guest contexts from its PVCS.
pub const RUN: u32 = 1;
/// File descriptor of the guest-memory memfd in U (the only fd U keeps).
pub const U_GUEST_MEM_FD: i32 = 3;

/// Operation kinds.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapOpKind {
    /// `mmap(addr, len, prot, MAP_SHARED | MAP_FIXED, U_GUEST_MEM_FD, offset)`: map GPA `offset`.
    Map = 1,
    /// `munmap(addr, len)`.
    Unmap = 2,
    /// `mprotect(addr, len, prot)`.
    Protect = 3,
}

/// Linux `PROT_READ`.
pub const PROT_READ: u32 = 1;
/// Linux `PROT_WRITE`.
pub const PROT_WRITE: u32 = 2;
/// Linux `PROT_EXEC`.
pub const PROT_EXEC: u32 = 4;

/// One operation. `addr`, `len`, `offset` are page aligned; `addr .. addr+len` lies inside
/// the guest user range.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MapOp {
    /// [`MapOpKind`] as `u32`.
    pub kind: u32,
    /// `PROT_*` bits.
    pub prot: u32,
    /// GVA, bytes.
    pub addr: u64,
    /// Length, bytes.
    pub len: u64,
    /// GPA (offset in the guest-memory memfd) for [`MapOpKind::Map`].
    pub offset: u64,
}

/// The command area (H writes, U's mapper reads).
#[repr(C, align(4096))]
pub struct MapperCmd {
    /// Batch sequence number; H increments it after writing `count`/`ops` (futex word).
    pub seq: AtomicU32,
    /// Operations in this batch (`<= MAX_OPS`).
    pub count: u32,
    /// The user FPU state of a U process on this host, as H computed it before spawning U
    /// (the stub loads guest FPU images with it; read-only in U, so guest code cannot change
    /// it): state components (an XCR0 subset, without those the host kernel arms XFD for,
    /// such as AMX tile data), `0` without XSAVE.
    pub fpu_features: u64,
    /// Size of the signal-frame FPU image with those components (`FP_XSTATE_MAGIC2`
    /// included), bytes; 512 without XSAVE.
    pub fpu_len: u32,
    /// The CPU's MXCSR mask (bits MXCSR may hold).
    pub mxcsr_mask: u32,
    /// The fd this command area's mapper writes its completion packets to
    /// ([`crate::stub::COMPLETION_FD`] `+ vcpu`); H writes it before U starts, read-only in U.
    pub completion_fd: u32,
    _pad: [u8; 36],
    /// Per vCPU: [`PARK`] or [`RUN`] (futex word of that vCPU's guest thread while parked).
    pub run: [AtomicU32; crate::MAX_VCPUS as usize],
    /// The operations.
    pub ops: [MapOp; MAX_OPS],
}

const _: () = assert!(core::mem::size_of::<MapperCmd>() as u64 == CMD_AREA_SIZE);
const _: () = assert!(core::mem::offset_of!(MapperCmd, run) == 64);
const _: () = assert!(core::mem::offset_of!(MapperCmd, fpu_features) == 8);
const _: () = assert!(core::mem::offset_of!(MapperCmd, completion_fd) == 24);
const _: () = assert!(core::mem::offset_of!(MapperDone, tid) == 12);
const _: () = assert!(core::mem::offset_of!(MapperCmd, ops) == CMD_HEADER_SIZE);
const _: () = assert!(64 + 4 * crate::MAX_VCPUS as usize <= CMD_HEADER_SIZE);
const _: () = assert!(COMPLETION_FAILED_BASE + MAX_OPS < 4096, "one atomic pipe packet");

/// The completion page (U's mapper writes, H reads): the source buffer of the completion
/// packet, and the errno of a failed operation. Guest-writable: informational only.
#[repr(C, align(4096))]
pub struct MapperDone {
    /// Sequence number of the last batch completed (informational).
    pub seq: AtomicU32,
    /// 0, or the negated errno of the first operation that failed (for H's message only).
    pub result: AtomicI32,
    /// Index of the operation that failed (informational; the packet length is authoritative).
    pub failed_index: u32,
    /// The mapper thread's host tid, written once at start; H reads it once, before any guest
    /// code runs in U, and keeps its own copy (for placement).
    pub tid: i32,
    _pad: [u8; 4096 - 16],
}

const _: () = assert!(core::mem::size_of::<MapperDone>() == 4096);
