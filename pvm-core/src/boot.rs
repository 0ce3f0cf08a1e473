//! Assembles a VM before its first vCPU runs: guest memory, the kernel image, boot info, the
//! launch block and the initramfs (guest-physical layout in `guest_abi::layout`).

use guest_abi::boot::{BOOT_MAGIC, BootInfo, CONSOLE_STDERR_TTY, CONSOLE_STDIN_TTY, CONSOLE_STDOUT_TTY, LaunchHeader};
use guest_abi::layout::{BOOT_INFO_GPA, KERNEL_GPA, LAUNCH_GPA, LAUNCH_MAX, MIN_GUEST_MEMORY};
use guest_abi::hostfs::{HOSTFS_MAGIC, HostfsConfig, MAX_HOSTFS_MOUNTS, QUEUE_SIZE, QueueDoorbell, area_len};
use guest_abi::{ABI_VERSION, Backend, PAGE_SIZE};
use host_adapter::{GuestRam, VmSetup, devices};

use file_server::ServerConfig;

use crate::initramfs;
use crate::kernel_image;
use crate::mounts::MountPlan;
use crate::program::Launch;
use crate::tsc::TscCalibration;

/// Guest memory the kernel needs beyond its image, the initramfs, the unpacked files and its
/// reserve to run anything, bytes.
const WORKING_MEMORY: u64 = 8 << 20;

/// The guest kernel's reserve for `memory` bytes of RAM, bytes.
fn kernel_reserve(memory: u64) -> u64 {
    guest_abi::boot::kernel_reserve_frames(memory / PAGE_SIZE) * PAGE_SIZE
}

/// The guest kernel's frame tables for `memory` bytes of RAM (bitmap, pristine bitmap and a
/// 4-byte reference count per frame), bytes.
fn frame_tables(memory: u64) -> u64 {
    let frames = memory / PAGE_SIZE;
    2 * frames.div_ceil(64) * 8 + frames * 4 + 3 * PAGE_SIZE
}

/// Smallest guest memory that holds `fixed` bytes (kernel image, archive, unpacked files,
/// working memory) plus the parts that grow with memory itself (reserve, frame tables).
fn memory_needed(fixed: u64) -> u64 {
    let mut m = fixed;
    for _ in 0..8 {
        m = fixed + kernel_reserve(m) + frame_tables(m);
    }
    m.max(MIN_GUEST_MEMORY)
}

/// A size as the user would write it: `256M` for whole MiB, else bytes.
pub fn show_size(bytes: u64) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{}M", bytes >> 20)
    } else {
        format!("{bytes}")
    }
}
/// Host VMAs pvm lets all shadows of a VM use together (host `vm.max_map_count` is 65530).
const VMA_BUDGET: u32 = 60_000;

/// Why a VM could not be assembled (pvm's own failure, exit status 125).
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// `--memory` cannot hold the kernel, the root filesystem and working memory.
    #[error("--memory {given} is too small: this guest needs at least {needed} MiB")]
    MemoryTooSmall {
        /// What the user gave, bytes, shown in MiB or bytes.
        given: String,
        /// Minimum, MiB.
        needed: u64,
    },
    /// argv + environment do not fit the launch block (Linux would say E2BIG).
    #[error("arguments and environment are too long ({0} bytes; the limit is {LAUNCH_MAX})")]
    ArgsTooLong(usize),
    /// Host resources.
    #[error("{0}")]
    Host(String),
}

/// Options that shape the VM.
pub struct BootOptions {
    /// Guest memory, bytes.
    pub memory: u64,
    /// vCPUs.
    pub vcpus: u32,
    /// Where the VM's host threads run.
    pub placement: host_adapter::Placement,
    /// Verbosity: 0 quiet (guest kernel errors only), 1 guest kernel log, 2 and more also its
    /// per-syscall trace.
    pub verbose: u8,
    /// Most guest processes at once (0: no limit).
    pub pids_limit: u32,
    /// `BootInfo::bulk_mem_min`: smallest copy the guest kernel hands to H (0: never).
    pub bulk_mem_min: u64,
    /// `BootInfo::pv_features`: `guest_abi::boot::PV_*` bits.
    pub pv_features: u32,
    /// The guest's hostname (`BootInfo::hostname`): at most 63 bytes, checked by the CLI
    /// (`cli::parse_hostname`); longer names are cut.
    pub hostname: String,
}

/// [`BootOptions::bulk_mem_min`] under software KVM, bytes: measured on `kvm_pvm` (guest
/// kernel copies timed by wall clock), a `COPY_MEM` hypercall costs about 170 us whatever the
/// size and an emulated `rep movsq` about 30 us plus 1.1 us per 8 bytes, so they cross near
/// 800 bytes.
pub const SOFTWARE_KVM_BULK_MEM_MIN: u64 = 1024;

fn launch_block(launch: &Launch) -> Result<Vec<u8>, BootError> {
    let mut strings = Vec::new();
    for s in std::iter::once(&launch.path).chain(&launch.argv).chain(&launch.env).chain(std::iter::once(&launch.workdir)) {
        strings.extend_from_slice(s.as_bytes());
        strings.push(0);
    }
    let header = LaunchHeader {
        argc: launch.argv.len() as u32,
        envc: launch.env.len() as u32,
        strings_len: strings.len() as u32,
        reserved: 0,
    };
    let mut block = Vec::with_capacity(size_of::<LaunchHeader>() + strings.len());
    // SAFETY: LaunchHeader is a #[repr(C)] struct of u32s: its bytes are its value.
    block.extend_from_slice(unsafe {
        std::slice::from_raw_parts((&header as *const LaunchHeader).cast::<u8>(), size_of::<LaunchHeader>())
    });
    block.extend_from_slice(&strings);
    if block.len() as u64 > LAUNCH_MAX {
        return Err(BootError::ArgsTooLong(block.len()));
    }
    Ok(block)
}

fn console_flags() -> (u32, u16, u16) {
    let mut flags = 0;
    for (fd, flag) in [(0, CONSOLE_STDIN_TTY), (1, CONSOLE_STDOUT_TTY), (2, CONSOLE_STDERR_TTY)] {
        // SAFETY: isatty only inspects the descriptor.
        if unsafe { libc::isatty(fd) } == 1 {
            flags |= flag;
        }
    }
    let mut ws = libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCGWINSZ writes one winsize into `ws`.
    if flags & CONSOLE_STDOUT_TTY == 0 || unsafe { libc::ioctl(1, libc::TIOCGWINSZ, &mut ws) } != 0 {
        ws.ws_row = 24;
        ws.ws_col = 80;
    }
    (flags, ws.ws_row, ws.ws_col)
}

fn random_seed() -> Result<[u8; 32], BootError> {
    let mut seed = [0u8; 32];
    // SAFETY: getrandom writes at most `seed.len()` bytes into `seed`.
    let n = unsafe { libc::getrandom(seed.as_mut_ptr().cast(), seed.len(), 0) };
    if n != seed.len() as isize {
        return Err(BootError::Host(format!("getrandom: {}", std::io::Error::last_os_error())));
    }
    Ok(seed)
}

/// The hostfs config page for `plan` ([`guest_abi::hostfs`]), as bytes: magic, the mount
/// table, queue size, zeroed doorbells.
fn hostfs_config_page(plan: &MountPlan) -> Vec<u8> {
    let mut cfg = HostfsConfig {
        magic: HOSTFS_MAGIC,
        mounts_len: plan.table.len() as u32,
        queue_size: u32::from(QUEUE_SIZE),
        mounts: [guest_abi::hostfs::HostfsMount { path: [0; guest_abi::hostfs::MOUNT_PATH_MAX], flags: 0, queue: 0, size: 0 };
            MAX_HOSTFS_MOUNTS],
        doorbells: Default::default(),
    };
    for (slot, m) in cfg.mounts.iter_mut().zip(&plan.table) {
        *slot = *m;
    }
    let _: &[QueueDoorbell; MAX_HOSTFS_MOUNTS] = &cfg.doorbells;
    // SAFETY: HostfsConfig is #[repr(C)] of integers and byte arrays without padding
    // (8 + 4 + 4 + 16 * 208 + 16 * 16 bytes, asserted below), so its bytes are its value.
    unsafe { std::slice::from_raw_parts((&cfg as *const HostfsConfig).cast::<u8>(), size_of::<HostfsConfig>()) }.to_vec()
}
const _: () = assert!(size_of::<HostfsConfig>() == 16 + MAX_HOSTFS_MOUNTS * 208 + MAX_HOSTFS_MOUNTS * 16);

/// Guest memory with the initramfs and the hostfs config page in place: what the file server
/// needs to start ([`assemble`] finishes the rest while it does).
pub struct Memory {
    ram: GuestRam,
    initrd_gpa: u64,
    hostfs_gpa: u64,
    hostfs_len: u64,
}

impl Memory {
    /// The memfd of guest RAM (the file server maps it).
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.ram.fd()
    }
}

/// Creates guest memory for `launch` and writes the initramfs and the hostfs config page, and
/// says what the file server must serve (`None` when the VM has no hostfs mount).
///
/// The hostfs area (config page and one ring page per hostfs mount) sits right below the
/// initramfs at the top of RAM; `BootInfo::hostfs_gpa/hostfs_len` tell the guest kernel, which
/// keeps it out of its frame allocator. Everything the file server reads at its start (the
/// config page) is written here, so it can be spawned before [`assemble`] loads the kernel.
///
/// # Errors
/// [`BootError`].
pub fn memory(launch: &Launch, opts: &BootOptions) -> Result<(Memory, Option<ServerConfig>), BootError> {
    let memory = opts.memory & !(PAGE_SIZE - 1);
    let image = kernel_image::image_span().map_err(BootError::Host)?;
    let initrd_len = (launch.initramfs.len() as u64).next_multiple_of(PAGE_SIZE);
    // While the kernel unpacks the archive, the archive and the files it holds are both in
    // guest memory.
    let unpacked = initramfs::unpacked_size(&launch.initramfs);
    let plan = &launch.mounts;
    let hostfs_len = if plan.is_empty() { 0 } else { area_len(plan.served.len()) };
    let needed = memory_needed(KERNEL_GPA + image + initrd_len + hostfs_len + unpacked + WORKING_MEMORY);
    if memory < needed {
        return Err(BootError::MemoryTooSmall { given: show_size(opts.memory), needed: needed.div_ceil(1 << 20) });
    }
    let ram = GuestRam::new(memory).map_err(|e| BootError::Host(e.to_string()))?;
    let initrd_gpa = memory - initrd_len;
    ram.write(initrd_gpa, &launch.initramfs).map_err(|e| BootError::Host(e.to_string()))?;
    let hostfs_gpa = if plan.is_empty() { 0 } else { initrd_gpa - hostfs_len };
    if !plan.is_empty() {
        ram.write(hostfs_gpa, &hostfs_config_page(plan)).map_err(|e| BootError::Host(e.to_string()))?;
    }
    let server = (!plan.served.is_empty()).then(|| ServerConfig {
        memfd: std::os::fd::AsRawFd::as_raw_fd(&ram.fd()),
        ready_fd: -1,
        parent_pid: 0,
        ram_size: memory,
        area_gpa: hostfs_gpa,
        mounts: plan.served.clone(),
    });
    Ok((Memory { ram, initrd_gpa, hostfs_gpa, hostfs_len }, server))
}

/// Loads the kernel, the launch block and the boot info into `mem` and returns what a backend
/// needs; `tsc` was started when `pvm run` did ([`crate::tsc`]).
///
/// # Errors
/// [`BootError`].
pub fn assemble(mem: Memory, launch: &Launch, opts: &BootOptions, backend: Backend, tsc: &TscCalibration) -> Result<VmSetup, BootError> {
    let Memory { ram, initrd_gpa, hostfs_gpa, hostfs_len } = mem;
    let memory = ram.size();
    let kernel = kernel_image::load(&ram).map_err(BootError::Host)?;
    let block = launch_block(launch)?;
    ram.write(LAUNCH_GPA, &block).map_err(|e| BootError::Host(e.to_string()))?;

    let (console_flags, console_rows, console_cols) = console_flags();
    let mut hostname = [0u8; 64];
    let name = &opts.hostname.as_bytes()[..opts.hostname.len().min(63)];
    hostname[..name.len()].copy_from_slice(name);
    let tsc_khz = tsc.khz();
    let boot_tsc = devices::rdtsc();
    let info = BootInfo {
        magic: BOOT_MAGIC,
        abi_version: ABI_VERSION,
        backend: backend as u32,
        mem_size: memory,
        vcpus: opts.vcpus,
        log_level: match opts.verbose {
            0 => 0,
            1 => 3,
            _ => 4,
        },
        kernel_end_gpa: kernel.end_gpa,
        initramfs_gpa: initrd_gpa,
        initramfs_len: launch.initramfs.len() as u64,
        launch_len: block.len() as u64,
        tsc_khz,
        boot_tsc,
        boot_realtime_ns: devices::get_time(0) as u64,
        boot_monotonic_ns: devices::get_time(1) as u64,
        console_flags,
        console_rows,
        console_cols,
        random_seed: random_seed()?,
        pids_limit: opts.pids_limit,
        vma_budget: VMA_BUDGET,
        hostname,
        bulk_mem_min: opts.bulk_mem_min,
        pv_features: opts.pv_features,
        reserved0: 0,
        hostfs_gpa,
        hostfs_len,
    };
    ram.write_pod(BOOT_INFO_GPA, &info).map_err(|e| BootError::Host(e.to_string()))?;
    Ok(VmSetup {
        memory: ram,
        kernel_segments: kernel.segments,
        kernel_entry: kernel.entry,
        vcpus: opts.vcpus,
        placement: opts.placement,
        verbose: opts.verbose > 0,
    })
}
