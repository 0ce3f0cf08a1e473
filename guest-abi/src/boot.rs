//! Boot information: what H tells the guest kernel before the first vCPU starts.
//!
//! H writes [`BootInfo`] at [`crate::layout::BOOT_INFO_GPA`] and the launch block at
//! [`crate::layout::LAUNCH_GPA`] before starting any vCPU; the guest kernel only reads them.
//! Both are guest memory afterwards: H never reads them back.

/// Magic value in [`BootInfo::magic`] (`"PVMBOOT\0"` little-endian).
pub const BOOT_MAGIC: u64 = u64::from_le_bytes(*b"PVMBOOT\0");

/// Console flag: host stdin is a terminal.
pub const CONSOLE_STDIN_TTY: u32 = 1 << 0;
/// Console flag: host stdout is a terminal.
pub const CONSOLE_STDOUT_TTY: u32 = 1 << 1;
/// Console flag: host stderr is a terminal.
pub const CONSOLE_STDERR_TTY: u32 = 1 << 2;

/// Boot information at [`crate::layout::BOOT_INFO_GPA`]. Written by H, read by the guest kernel.
///
/// RAM H did not write (everything but the kernel image, this page, the launch block and the
/// initramfs) is zero when the first vCPU starts: it is a fresh memfd.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct BootInfo {
    /// [`BOOT_MAGIC`].
    pub magic: u64,
    /// [`crate::ABI_VERSION`] of the host that wrote this.
    pub abi_version: u32,
    /// [`crate::Backend`] as `u32`.
    pub backend: u32,
    /// Guest memory size, bytes (GPAs `0 .. mem_size` are RAM).
    pub mem_size: u64,
    /// Number of vCPUs; vCPU ids are `0 .. vcpus`.
    pub vcpus: u32,
    /// Log level for the guest kernel's own messages (0 = errors only .. 4 = trace).
    pub log_level: u32,
    /// First GPA past the loaded kernel image (page aligned); free RAM starts here.
    pub kernel_end_gpa: u64,
    /// GPA of the initramfs (cpio `newc` archive), page aligned; 0 if none.
    pub initramfs_gpa: u64,
    /// Length of the initramfs, bytes.
    pub initramfs_len: u64,
    /// Length of the launch block at [`crate::layout::LAUNCH_GPA`], bytes.
    pub launch_len: u64,
    /// Host TSC frequency, kHz (0 if unknown: the guest then uses the `GET_TIME` hypercall).
    pub tsc_khz: u64,
    /// TSC value read by H at boot.
    pub boot_tsc: u64,
    /// `CLOCK_REALTIME` at `boot_tsc`, ns since the Unix epoch.
    pub boot_realtime_ns: u64,
    /// `CLOCK_MONOTONIC` at `boot_tsc`, ns.
    pub boot_monotonic_ns: u64,
    /// `CONSOLE_*` flags.
    pub console_flags: u32,
    /// Terminal size of host stdout if it is a terminal: rows.
    pub console_rows: u16,
    /// Terminal size of host stdout if it is a terminal: columns.
    pub console_cols: u16,
    /// Random seed from the host's `getrandom`, for the guest's entropy pool.
    pub random_seed: [u8; 32],
    /// Maximum number of guest processes (`--pids-limit`; 0 = no limit).
    pub pids_limit: u32,
    /// Host VMA budget for all shadow spaces together (mappings H may create).
    pub vma_budget: u32,
    /// Host name of the guest (NUL-padded).
    pub hostname: [u8; 64],
    /// Smallest copy or fill, bytes, that the guest kernel hands to H as a `COPY_MEM` /
    /// `ZERO_MEM` hypercall instead of doing it itself; 0 = never. H sets it where guest ring
    /// 0 is emulated instruction by instruction (software KVM such as `kvm_pvm`): there a
    /// 4 KiB `rep movsq` costs about 2 ms of emulation, the hypercall about 40 us.
    pub bulk_mem_min: u64,
    /// Paravirtual features the guest kernel may use: `PV_*` bits. H sets them from its
    /// options (all on by default; benchmarks turn some off to compare).
    pub pv_features: u32,
    /// Reserved, zero.
    pub reserved0: u32,
    /// GPA of the hostfs area ([`crate::hostfs`]: config page, then one page of rings per
    /// mount), page aligned; 0 when the VM has no hostfs mount.
    pub hostfs_gpa: u64,
    /// Length of the hostfs area, bytes ([`crate::hostfs::area_len`]).
    pub hostfs_len: u64,
}

/// [`BootInfo::pv_features`]: guest-kernel spin locks that spin past a threshold tell H which
/// vCPU holds the lock (`YIELD_TO`), so H can let the holder run (lock-holder preemption).
pub const PV_LOCK_HINTS: u32 = 1 << 0;

const _: () = assert!(core::mem::size_of::<BootInfo>() <= 4096);

/// Header of the launch block at [`crate::layout::LAUNCH_GPA`]: what the first guest process
/// runs. Followed by `strings_len` bytes of NUL-terminated strings, in this order: the program
/// path (absolute, inside the guest filesystem), `argc` arguments, `envc` environment entries
/// (`KEY=VALUE`), and the working directory.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct LaunchHeader {
    /// Number of arguments (argv[0] included).
    pub argc: u32,
    /// Number of environment entries.
    pub envc: u32,
    /// Bytes of strings following this header.
    pub strings_len: u32,
    /// Reserved, zero.
    pub reserved: u32,
}

/// Frames of guest RAM the guest kernel keeps for itself out of `total` frames: user memory
/// never takes them (page tables may use half, the kernel heap all). 1/32 of RAM, at least
/// 4 MiB and at most 64 MiB, never more than a quarter of RAM. H uses the same formula to
/// refuse a `--memory` too small for the root filesystem before boot.
pub const fn kernel_reserve_frames(total: u64) -> u64 {
    let r = total / 32;
    let r = if r < 1024 { 1024 } else if r > 16 * 1024 { 16 * 1024 } else { r };
    if r > total / 4 { total / 4 } else { r }
}
