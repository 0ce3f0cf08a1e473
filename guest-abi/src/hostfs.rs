//! The hostfs device: request queues between the guest kernel's FUSE client and the file
//! server F, one queue per hostfs mount, laid out as virtio split queues.
//!
//! Model: virtio-fs (virtio 1.2, section 5.11) over split virtqueues (section 2.7). Each request
//! is one descriptor chain: device-readable descriptors first (the `fuse_in_header` and the
//! opcode's arguments), then device-writable ones (the `fuse_out_header` and the reply
//! payload). Buffers live anywhere in guest RAM (F maps all of guest RAM, as virtiofsd does);
//! rings live in the hostfs area that H reserves and describes in [`HostfsConfig`].
//!
//! Layout of the area at [`crate::boot::BootInfo::hostfs_gpa`] (page aligned, written by H
//! before boot, then guest memory): page 0 is the [`HostfsConfig`]; page `1 + q` holds queue
//! `q`'s rings: the descriptor table at offset 0 ([`QUEUE_SIZE`] × 16 bytes), the available
//! ring at [`AVAIL_OFFSET`], the used ring at [`USED_OFFSET`]. The guest kernel's frame
//! allocator never hands out the area.
//!
//! Notification (soft backend): the guest publishes `avail.idx`, increments
//! [`QueueDoorbell::kick`] and `FUTEX_WAKE`s it (shared futex on the memfd page); F waits on
//! `kick`. F publishes `used.idx`, increments [`QueueDoorbell::done`] and wakes it; the guest
//! vCPU waits on `done` (with a timeout). H sets [`QueueDoorbell::broken`] to 1 and wakes both
//! words when F dies; a broken queue never recovers (requests fail with `EIO`).
//!
//! Notification (KVM backend): a vCPU thread there is H's own thread inside `KVM_RUN`, so the
//! guest cannot futex. It publishes `avail.idx` and increments `kick` as above, then executes
//! `out` to [`HOSTFS_PORT`] with `rax` = [`HOSTFS_OP_KICK`] and/or [`HOSTFS_OP_WAIT`],
//! `rdi` = queue index, `rsi` = the `done` value it last saw, `r10` = timeout in ns (H caps it
//! at [`HOSTFS_WAIT_MAX_NS`]); H wakes `kick` for F, and for a wait blocks that vCPU until
//! `done` differs from `rsi`, `broken` is set, or the timeout passes, and writes the result into
//! `rax`: 0 (done changed or broken; re-read both), 1 (timed out: the guest re-checks and may
//! wait again, e.g. after taking pending interrupts), or `-EINVAL` (bad op or queue, or no
//! hostfs area). F's side is the same on both backends.
//!
//! Trust: F never trusts the guest: every descriptor address and length is checked against
//! guest RAM, chains are bounded by [`QUEUE_SIZE`], and F serves only the directory tree of
//! the mount its queue belongs to. The guest kernel never trusts F: used-ring ids and lengths
//! are checked against what it submitted and reply headers are validated before use.

/// KVM backend: the I/O port of the hostfs doorbell (see the module docs).
pub const HOSTFS_PORT: u16 = 0x0cf4;
/// [`HOSTFS_PORT`] `rax` bit: wake F on queue `rdi`'s `kick`.
pub const HOSTFS_OP_KICK: u64 = 1;
/// [`HOSTFS_PORT`] `rax` bit: wait until queue `rdi`'s `done` differs from `rsi` (after the
/// kick, when both bits are set).
pub const HOSTFS_OP_WAIT: u64 = 2;
/// Longest wait H performs for one [`HOSTFS_OP_WAIT`], ns.
pub const HOSTFS_WAIT_MAX_NS: u64 = 10_000_000;

/// Most hostfs mounts (and queues) per VM.
pub const MAX_HOSTFS_MOUNTS: usize = 16;
/// Descriptors per queue (a power of two, as split queues require).
pub const QUEUE_SIZE: u16 = 128;
/// Offset of the available ring in a queue page, bytes (after the descriptor table).
pub const AVAIL_OFFSET: u64 = QUEUE_SIZE as u64 * 16;
/// Offset of the used ring in a queue page, bytes (4-byte aligned, after the available ring's
/// `flags`, `idx`, `ring[QUEUE_SIZE]` and `used_event`).
pub const USED_OFFSET: u64 = (AVAIL_OFFSET + 4 + 2 * QUEUE_SIZE as u64 + 2 + 3) & !3;
/// Bytes of the hostfs area for `mounts` mounts: the config page and one page per queue.
pub const fn area_len(mounts: usize) -> u64 {
    (1 + mounts as u64) * 4096
}
/// Magic value of [`HostfsConfig::magic`] (`"PVMHOSTF"` little-endian).
pub const HOSTFS_MAGIC: u64 = u64::from_le_bytes(*b"PVMHOSTF");
/// Longest guest mount path, bytes, NUL padding included.
pub const MOUNT_PATH_MAX: usize = 192;

/// [`HostfsMount::flags`]: the mount is read-only (F also opens the tree read-only; the guest
/// returns `EROFS` without asking).
pub const MOUNT_READ_ONLY: u32 = 1 << 0;
/// [`HostfsMount::flags`]: this mount is the guest's root filesystem (`path` is `/`).
pub const MOUNT_ROOT: u32 = 1 << 1;
/// [`HostfsMount::flags`]: not a hostfs mount but a tmpfs (`--tmpfs`) of at most
/// [`HostfsMount::size`] bytes (0: the guest kernel's default); `queue` is unused.
pub const MOUNT_TMPFS: u32 = 1 << 2;

/// One mount H asks the guest kernel to make at boot (a hostfs mount: where in the guest and
/// which queue serves it; or a tmpfs). Written by H.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct HostfsMount {
    /// Absolute guest path of the mount point, NUL-padded UTF-8.
    pub path: [u8; MOUNT_PATH_MAX],
    /// `MOUNT_*` bits.
    pub flags: u32,
    /// Queue index (its rings are at page `1 + queue` of the area).
    pub queue: u32,
    /// For [`MOUNT_TMPFS`]: size limit, bytes (0: default). Otherwise zero.
    pub size: u64,
}

/// Doorbell words of one queue, in the config page. Each word has the writers listed.
#[repr(C)]
#[derive(Debug, Default)]
pub struct QueueDoorbell {
    /// Guest: incremented after publishing new available entries, then futex-woken.
    pub kick: u32,
    /// F: incremented after publishing new used entries, then futex-woken.
    pub done: u32,
    /// H: 1 once F is gone; never reset.
    pub broken: u32,
    /// Reserved, zero.
    pub reserved: u32,
}

/// Page 0 of the hostfs area. Written by H before boot; afterwards only the doorbell words
/// change (by their writers above).
#[repr(C)]
#[derive(Debug)]
pub struct HostfsConfig {
    /// [`HOSTFS_MAGIC`].
    pub magic: u64,
    /// Number of valid entries in `mounts`, at most [`MAX_HOSTFS_MOUNTS`]. Queues exist for
    /// the hostfs entries only (their `queue` fields are distinct and below this number).
    pub mounts_len: u32,
    /// Descriptors per queue: [`QUEUE_SIZE`].
    pub queue_size: u32,
    /// The mounts, in the order the guest mounts them (the root first, if any).
    pub mounts: [HostfsMount; MAX_HOSTFS_MOUNTS],
    /// One doorbell per queue.
    pub doorbells: [QueueDoorbell; MAX_HOSTFS_MOUNTS],
}

const _: () = assert!(core::mem::size_of::<HostfsConfig>() <= 4096);
const _: () = assert!(USED_OFFSET + 4 + 8 * QUEUE_SIZE as u64 + 2 <= 4096);
