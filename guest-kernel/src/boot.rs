//! Boot: validate `BootInfo`, set up the physmap view, frame allocator, heap, statistics,
//! clocks, console, the filesystem from the initramfs, then launch the first program from the
//! launch block on vCPU 0. Other vCPUs wait for boot to finish and idle in their run loop.

use crate::console::{ConsoleDevice, StdioFile};
use crate::mm::frame::FrameAllocator;
use crate::mm::{page_up, phys_to_virt, PAGE_SIZE};
use crate::platform::FpuAction;
use crate::proc::{alloc_pid, Process, Thread};
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};
use guest_abi::boot::{BootInfo, LaunchHeader, BOOT_MAGIC};
use guest_abi::hypercall::ShutdownKind;
use guest_abi::layout::{LAUNCH_GPA, LAUNCH_MAX, PHYSMAP_BASE};
use guest_abi::pvcs::UserRegs;
use guest_fs::{Errno, FdTable, FsContext, OpenFile};

static BOOTED: AtomicBool = AtomicBool::new(false);
static VCPUS: AtomicU32 = AtomicU32::new(1);
static INIT_PID: AtomicI32 = AtomicI32::new(1);
static TSC_KHZ: AtomicU64 = AtomicU64::new(0);

/// Number of vCPUs.
pub fn vcpus() -> u32 {
    VCPUS.load(Ordering::Relaxed)
}

/// pid of the first process (its exit ends the VM).
pub fn init_pid() -> i32 {
    INIT_PID.load(Ordering::Relaxed)
}

/// TSC frequency, kHz (0 if unknown).
pub fn tsc_khz() -> u64 {
    TSC_KHZ.load(Ordering::Relaxed)
}

/// Publishes memory use to the statistics block.
pub fn update_memory_stats() {
    let (used, peak, _) = crate::mm::frame::usage();
    crate::stats::memory(used as u64 * PAGE_SIZE, peak as u64 * PAGE_SIZE);
}


fn panic_boot(msg: &str) -> ! {
    crate::log::write_line(format_args!("boot: {msg}"));
    crate::hcall::shutdown(ShutdownKind::KernelPanic, guest_abi::hypercall::panic_code::BOOT)
}

/// Entry of every vCPU thread.
pub fn start(vcpu: u64, boot_info_va: u64, _backend: u64) -> ! {
    let vcpu = vcpu as u32;
    crate::percpu::register(vcpu, crate::percpu::stack_pointer() + 512);
    if vcpu != 0 {
        while !BOOTED.load(Ordering::Acquire) {
            crate::arch::pause();
        }
        crate::sched::run_vcpu(vcpu);
    }
    // SAFETY: H wrote BootInfo at BOOT_INFO_GPA in the physmap before starting vCPUs; we copy it
    // once (it is plain data, any bit pattern is a valid BootInfo).
    let bi: BootInfo = unsafe { core::ptr::read_volatile(boot_info_va as *const BootInfo) };
    if bi.magic != BOOT_MAGIC || bi.abi_version != guest_abi::ABI_VERSION {
        panic_boot("bad boot info magic or ABI version");
    }
    crate::log::set_level(bi.log_level);
    crate::sync::init(bi.pv_features);
    VCPUS.store(bi.vcpus.max(1), Ordering::Relaxed);
    TSC_KHZ.store(bi.tsc_khz, Ordering::Relaxed);
    crate::sys::clone::PIDS_LIMIT.store(bi.pids_limit, Ordering::Relaxed);
    crate::mm::set_physmap(PHYSMAP_BASE, bi.mem_size);
    #[cfg(not(test))]
    crate::rt::BULK_MEM_MIN.store(bi.bulk_mem_min, Ordering::Relaxed);
    let t0 = crate::arch::rdtsc();
    init_frames(&bi);
    let t1 = crate::arch::rdtsc();
    crate::stats::init();
    crate::time::init(bi.tsc_khz, bi.boot_tsc, bi.boot_realtime_ns, bi.boot_monotonic_ns);
    crate::console::init(bi.console_flags, bi.console_rows, bi.console_cols);
    crate::rand::seed(&bi.random_seed);
    {
        let mut h = crate::sys::process::HOSTNAME.lock();
        let n = bi.hostname.iter().position(|&b| b == 0).unwrap_or(64).min(64);
        h[..n].copy_from_slice(&bi.hostname[..n]);
    }
    let t2 = crate::arch::rdtsc();
    init_fs(&bi);
    let t3 = crate::arch::rdtsc();
    crate::klog!(crate::log::INFO, "booted: {} MiB, {} vCPUs", bi.mem_size >> 20, bi.vcpus);
    launch_first(&bi);
    let t4 = crate::arch::rdtsc();
    // Where boot time goes (with -vv): under software KVM guest ring 0 is emulated and these
    // phases were once seconds long.
    let us = |a: u64, b: u64| crate::time::tsc_to_ns(b.wrapping_sub(a), bi.tsc_khz) / 1000;
    crate::klog!(
        crate::log::DEBUG,
        "boot phases (us): H to entry {}, frames {}, clocks/console {}, initramfs {}, first exec {}",
        us(bi.boot_tsc, t0),
        us(t0, t1),
        us(t1, t2),
        us(t2, t3),
        us(t3, t4)
    );
    update_memory_stats();
    BOOTED.store(true, Ordering::Release);
    crate::sched::run_vcpu(0)
}

fn init_frames(bi: &BootInfo) {
    let mem = bi.mem_size;
    let nframes = (mem / PAGE_SIZE) as usize;
    let bitmap_bytes = page_up((nframes.div_ceil(64) * 8) as u64);
    let bitmap_gpa = page_up(bi.kernel_end_gpa);
    let refs_bytes = page_up(nframes as u64 * 4);
    let refs_gpa = bitmap_gpa + bitmap_bytes;
    let pristine_gpa = refs_gpa + refs_bytes;
    if pristine_gpa + bitmap_bytes >= mem {
        panic_boot("guest memory too small");
    }
    // SAFETY: the bitmap frames lie in free RAM after the kernel image, inside the physmap,
    // and are never handed out (they are outside the ranges freed below).
    let bitmap: &'static mut [u64] = unsafe {
        core::slice::from_raw_parts_mut(phys_to_virt(bitmap_gpa).cast::<u64>(), nframes.div_ceil(64))
    };
    // SAFETY: as for the bitmap: the reference counts follow it in free RAM, never handed out.
    let refs: &'static mut [u32] =
        unsafe { core::slice::from_raw_parts_mut(phys_to_virt(refs_gpa).cast::<u32>(), nframes) };
    // SAFETY: as for the bitmap: the pristine bitmap follows the reference counts.
    let pristine: &'static mut [u64] = unsafe {
        core::slice::from_raw_parts_mut(phys_to_virt(pristine_gpa).cast::<u64>(), nframes.div_ceil(64))
    };
    let mut fa = FrameAllocator::new(0, nframes, bitmap, refs, pristine);
    let free_start = pristine_gpa + bitmap_bytes;
    let free_end = if bi.initramfs_gpa != 0 && bi.initramfs_gpa > free_start && bi.initramfs_gpa <= mem {
        bi.initramfs_gpa & !(PAGE_SIZE - 1)
    } else {
        mem
    };
    // H wrote nothing between the kernel image and the initramfs (but the hostfs area, which
    // is never handed out): those frames are zero.
    outside_hostfs(bi, free_start, free_end, |gpa, n| {
        fa.release_initial(gpa, n, true);
    });
    fa.set_reserve(crate::mm::frame::reserve_for(nframes));
    crate::mm::frame::install(fa);
}

/// Calls `release(gpa, frames)` for the parts of the page-aligned range `[start, end)` that
/// lie outside the hostfs area (its rings and config page are never handed out).
fn outside_hostfs(bi: &BootInfo, start: u64, end: u64, mut release: impl FnMut(u64, usize)) {
    let (hs, he) = crate::hostfs::area(bi).map_or((end, end), |(gpa, len)| (gpa, gpa + len));
    for (a, b) in [(start, hs.min(end)), (he.max(start), end)] {
        if b > a {
            release(a, ((b - a) / PAGE_SIZE) as usize);
        }
    }
}

fn init_fs(bi: &BootInfo) {
    let vfs = crate::fs::init();
    vfs.seed_random(&bi.random_seed);
    // File data lives in the heap: growth past what user memory may take fails with ENOSPC
    // (the initramfs loader included, which then ends the boot with a clear error).
    vfs.set_room_check(crate::heap::user_may_grow);
    vfs.set_unlock_notify(crate::sys::fsx::unlock_notify);
    vfs.set_fifo_opener(Arc::new(crate::fifo::Opener));
    let len_ok = bi.initramfs_gpa != 0
        && bi.initramfs_len > 0
        && bi.initramfs_gpa.checked_add(bi.initramfs_len).is_some_and(|e| e <= bi.mem_size);
    if len_ok {
        // SAFETY: H placed the archive at [initramfs_gpa, +len) inside RAM (checked above); the
        // frame allocator does not hand out these frames until we free them below.
        let archive = unsafe { core::slice::from_raw_parts(phys_to_virt(bi.initramfs_gpa), bi.initramfs_len as usize) };
        match vfs.load_cpio_newc(archive) {
            Err(Errno::ENOSPC | Errno::ENOMEM) => {
                crate::klog!(crate::log::INFO, "initramfs: out of memory after {} KiB of files", vfs.stats().data_bytes >> 10);
                // H prints its own one line for this code; the kernel logs nothing.
                crate::hcall::shutdown(ShutdownKind::KernelPanic, guest_abi::hypercall::panic_code::BOOT_OUT_OF_MEMORY)
            }
            Err(e) => crate::klog!(crate::log::ERROR, "initramfs: {}", e.name().unwrap_or("error")),
            Ok(()) => {}
        }
        let start = bi.initramfs_gpa & !(PAGE_SIZE - 1);
        let end = page_up(bi.initramfs_gpa + bi.initramfs_len).min(bi.mem_size);
        outside_hostfs(bi, start, end, crate::mm::frame::free);
    }
    // Mount points on the initramfs root (a read-only hostfs root brings its own).
    if let Err(e) = vfs.create_standard_nodes() {
        crate::klog!(crate::log::WARN, "standard nodes: {}", e.name().unwrap_or("error"));
    }
    // The boot mount table: the hostfs root (if any) replaces the initramfs root, volumes and
    // --tmpfs mounts go on it, then the standard mounts on whatever root is final.
    crate::hostfs::mount_boot_table(bi);
    crate::fs::mount_standard();
    crate::procfs::mount_sys();
    vfs.register_device(5, 1, Arc::new(ConsoleDevice));
    vfs.register_device(5, 0, Arc::new(ConsoleDevice));
}

/// The first program: (path, argv, envp, working directory).
type Launch = (Vec<u8>, Vec<Vec<u8>>, Vec<Vec<u8>>, Vec<u8>);

/// Splits the launch block into (path, argv, envp, cwd).
fn parse_launch(bi: &BootInfo) -> Option<Launch> {
    let hdr_len = size_of::<LaunchHeader>() as u64;
    if bi.launch_len < hdr_len || bi.launch_len > LAUNCH_MAX {
        return None;
    }
    // SAFETY: the launch block lies at LAUNCH_GPA in RAM, launch_len <= LAUNCH_MAX bytes; we
    // copy it once.
    let block: Vec<u8> = unsafe { core::slice::from_raw_parts(phys_to_virt(LAUNCH_GPA), bi.launch_len as usize) }.to_vec();
    // SAFETY: block holds at least a header; LaunchHeader is plain integers.
    let hdr: LaunchHeader = unsafe { core::ptr::read_unaligned(block.as_ptr().cast()) };
    let strings = block.get(hdr_len as usize..hdr_len as usize + hdr.strings_len as usize)?;
    let mut it = strings.split(|&b| b == 0);
    let path = it.next()?.to_vec();
    let argv: Vec<Vec<u8>> = (0..hdr.argc).map(|_| it.next().map(<[u8]>::to_vec)).collect::<Option<_>>()?;
    let envp: Vec<Vec<u8>> = (0..hdr.envc).map(|_| it.next().map(<[u8]>::to_vec)).collect::<Option<_>>()?;
    let cwd = it.next().unwrap_or(b"/").to_vec();
    Some((path, argv, envp, cwd))
}

fn launch_first(bi: &BootInfo) {
    let Some((path, mut argv, envp, cwd)) = parse_launch(bi) else { panic_boot("bad launch block") };
    if argv.is_empty() {
        argv.push(path.clone());
    }
    let vfs = crate::fs::vfs();
    let mut ctx = FsContext::new(vfs);
    if !cwd.is_empty() && guest_fs::chdir(vfs, &mut ctx, &FdTable::new(), &cwd).is_err() {
        crate::klog!(crate::log::WARN, "working directory {} not found, using /", String::from_utf8_lossy(&cwd));
    }
    let cmdline = crate::proc::cmdline_of(&argv);
    let environ = crate::proc::cmdline_of(&envp);
    let loaded = match crate::exec::load(&ctx, &path, argv, &envp) {
        Ok(l) => l,
        Err(e) => {
            // H prints this reason as its one line about the failure (guest_abi ShutdownKind).
            let reason = e.reason.as_bytes();
            let n = reason.len().min(guest_abi::hypercall::SHUTDOWN_REASON_MAX - 1);
            let at = (guest_abi::layout::PHYSMAP_BASE + guest_abi::layout::LAUNCH_GPA) as *mut u8;
            // SAFETY: the launch block (LAUNCH_MAX bytes at LAUNCH_GPA in the physmap) was
            // copied out above and is not used again; n + 1 <= SHUTDOWN_REASON_MAX fits in it.
            unsafe {
                core::ptr::copy_nonoverlapping(reason.as_ptr(), at, n);
                at.add(n).write(0);
            }
            let kind = if matches!(e.errno, Errno::ENOENT | Errno::ENOTDIR | Errno::ENAMETOOLONG | Errno::ELOOP)
                && !e.reason.contains("interpreter")
            {
                ShutdownKind::NotFound
            } else {
                ShutdownKind::CannotExecute
            };
            crate::hcall::shutdown(kind, u64::from(e.errno.0));
        }
    };
    let mut fds = FdTable::new();
    for (fd, flags) in [(0u64, 0u32), (1, 1), (2, 1)] {
        let f = OpenFile::new_custom(Arc::new(StdioFile { host_fd: fd }), flags);
        if fds.install_at(fd as i32, f, false).is_err() {
            panic_boot("cannot install stdio");
        }
    }
    let pid = alloc_pid();
    INIT_PID.store(pid, Ordering::Relaxed);
    let mm = crate::proc::new_mm(loaded.mm);
    let proc = Process::new(pid, 0, mm.clone(), fds, ctx);
    *proc.exe.lock() = loaded.exe;
    *proc.cmdline.lock() = cmdline;
    *proc.environ.lock() = environ;
    let mut t = Thread::new(pid, proc, mm);
    t.ctx.regs = UserRegs { rip: loaded.entry, rsp: loaded.rsp, rflags: 0x202, ..UserRegs::default() };
    t.fpu = FpuAction::Reset;
    crate::sched::enqueue(t);
}
