//! The mapper channel: how H changes a U process's mappings (the shadow).
//!
//! Only U's mapper thread may call `mmap`/`munmap`/`mprotect` (its seccomp filter allows them
//! for the guest-memory fd and the user range only). H writes a batch of [`MapOp`]s into the
//! command area ([`MapperCmd`], read-only in U), bumps [`MapperCmd::seq`] and wakes it; the
//! mapper applies the batch with registers only and publishes [`MapperDone`] (read-write in U,
//! so guest code can forge it: a forged completion only hurts the guest's own address space).

use core::sync::atomic::{AtomicI32, AtomicU32};

/// Size of the command area, bytes.
pub const CMD_AREA_SIZE: u64 = 16 << 10;
/// Maximum operations in one batch.
pub const MAX_OPS: usize = (CMD_AREA_SIZE as usize - 64) / core::mem::size_of::<MapOp>();
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
    _pad: [u8; 56],
    /// The operations.
    pub ops: [MapOp; MAX_OPS],
}

const _: () = assert!(core::mem::size_of::<MapperCmd>() as u64 == CMD_AREA_SIZE);

/// The completion page (U's mapper writes, H reads).
#[repr(C, align(4096))]
pub struct MapperDone {
    /// Sequence number of the last batch completed (futex word).
    pub seq: AtomicU32,
    /// 0, or the negated errno of the first operation that failed (the rest were skipped).
    pub result: AtomicI32,
    /// Index of the operation that failed.
    pub failed_index: u32,
    _pad: [u8; 4096 - 12],
}

const _: () = assert!(core::mem::size_of::<MapperDone>() == 4096);
