//! Spawning a U process for one guest address space (design sections 3-6; stub role U), H's
//! own record of its guest threads, and the reset of a U that goes back to the pool.
//!
//! Reset for the pool: a released space's U may still run guest code on some thread (a
//! hostile guest need not be where the guest kernel thinks), so it is not enough to unmap its
//! memory. At release ([`SpaceThreads::park`]) H sets every vCPU's run word in the command
//! area to `PARK` (read-only in U) and sends each guest thread
//! [`guest_abi::stub::RESET_SIGNAL`]; before the U serves another space
//! ([`SpaceThreads::confirm_parked`]) H checks that the kernel has dequeued it on every thread
//! (`SigPnd` in `/proc/PID/task/TID/status`). From then on each thread runs only the stub's
//! register-only park loop, whatever it did before (the handler entry reads nothing
//! guest-writable while the run word says `PARK`), so no guest code is left running; H then
//! clears the PVCS pages.
//! [`SpaceThreads::unpark`] lets the threads serve the next guest address space; on leaving
//! the park loop they re-derive the stub's own state (FPU format, pending-interrupt flags).

use crate::image::stub_image;
use crate::mapper::MapperChannel;
use crate::process::StubProcess;
use crate::sys::{has_user_fsgsbase, host_fpu_image_size, memfd};
use crate::{SharedMemory, SwitcherError, filters, setup, spawn};
use guest_abi::mapper::{PARK, RUN};
use guest_abi::stub::{self, StubRole};
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How long H waits for every guest thread of a U to take the reset signal before it gives
/// the process up (kills it instead of pooling it).
const PARK_TIMEOUT: Duration = Duration::from_millis(200);

/// A spawned U: the process, its mapper channels and its guest threads.
#[derive(Debug)]
pub struct SpawnedSpace {
    /// The U process.
    pub process: StubProcess,
    /// Its mapper channels, one per vCPU (index = vCPU). Channel 0's command area also holds
    /// the guest threads' run words ([`SpaceThreads::park`] takes it).
    pub channels: Vec<MapperChannel>,
    /// Its guest threads, one per vCPU.
    pub threads: SpaceThreads,
}

/// H's record of a U's guest threads: host tid by vCPU, read once at spawn before any guest
/// code ran in U and checked to be distinct threads of U other than its main (mapper) thread.
/// H never reads `Pvcs::u_tid` again.
#[derive(Debug)]
pub struct SpaceThreads {
    pid: i32,
    tids: Vec<i32>,
    /// Mapper thread of each vCPU (index 0: U's main thread).
    mapper_tids: Vec<i32>,
}

impl SpaceThreads {
    /// Host tid of the guest thread of `vcpu`.
    pub fn tid(&self, vcpu: u32) -> Option<i32> {
        self.tids.get(vcpu as usize).copied()
    }

    /// Host tid of the mapper thread that serves `vcpu`'s shadow faults (U's main thread).
    pub fn mapper_tid(&self, vcpu: u32) -> Option<i32> {
        self.mapper_tids.get(vcpu as usize).copied()
    }

    /// Sends `sig` to the guest thread of `vcpu` (`tgkill` with U's pid, so never to another
    /// process). Returns whether it was sent.
    pub fn signal(&self, vcpu: u32, sig: i32) -> bool {
        let Some(tid) = self.tid(vcpu) else { return false };
        // SAFETY: plain syscall with integer arguments.
        unsafe { libc::syscall(libc::SYS_tgkill, self.pid, tid, sig) == 0 }
    }

    /// Raises an interrupt on the guest thread of `vcpu` ([`crate::INTERRUPT_SIGNAL`]).
    pub fn interrupt(&self, vcpu: u32) -> bool {
        self.signal(vcpu, crate::INTERRUPT_SIGNAL)
    }

    /// Starts parking every guest thread for the pool (see the module docs): run words to
    /// `PARK`, the reset signal to each thread. [`Self::confirm_parked`] must succeed before
    /// the U serves another address space. Returns false when a signal could not be sent (the
    /// process is gone): the caller must kill the process instead of pooling it.
    pub fn park(&self, channel: &MapperChannel) -> bool {
        for word in &channel.run_words()[..self.tids.len()] {
            word.store(PARK, Ordering::SeqCst);
        }
        (0..self.tids.len() as u32).all(|v| self.signal(v, stub::RESET_SIGNAL))
    }

    /// Whether the host kernel has dequeued the reset signal of [`Self::park`] on every guest
    /// thread: `Some(true)` yes (and the space's PVCS pages are then cleared), `None` not yet,
    /// `Some(false)` never will (the process or a thread is gone: kill it). With `wait`, waits
    /// up to 200 ms for it (then `Some(false)`).
    pub fn confirm_parked(&self, shared: &SharedMemory, space: u32, wait: bool) -> Option<bool> {
        let deadline = Instant::now() + PARK_TIMEOUT;
        let mut polls = 0u32;
        for &tid in &self.tids {
            loop {
                match signal_pending(self.pid, tid, stub::RESET_SIGNAL) {
                    Some(false) => break,
                    Some(true) if !wait => return None,
                    Some(true) if Instant::now() < deadline => {
                        // The thread usually shares H's CPU (pinned): let it run first.
                        polls += 1;
                        if polls < 32 {
                            std::thread::yield_now();
                        } else {
                            std::thread::sleep(Duration::from_micros(200));
                        }
                    }
                    _ => return Some(false),
                }
            }
        }
        shared.reset_space(space, self.tids.len() as u32);
        Some(true)
    }

    /// Lets every guest thread of a parked U serve its vCPU again.
    pub fn unpark(&self, channel: &MapperChannel) {
        for word in &channel.run_words()[..self.tids.len()] {
            word.store(RUN, Ordering::SeqCst);
            let _ = crate::futex::wake(word, i32::MAX);
        }
    }
}

/// Whether `sig` is pending for thread `tid` of `pid` (`SigPnd` of its status file, `man 5
/// proc`); `None` when the thread is gone or the file unreadable.
fn signal_pending(pid: i32, tid: i32, sig: i32) -> Option<bool> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("SigPnd:"))?;
    let mask = u64::from_str_radix(line.trim(), 16).ok()?;
    Some(mask & (1u64 << (sig - 1)) != 0)
}

/// The guest-thread tids U recorded, checked: one per vCPU, distinct, none the main thread,
/// each a thread of `pid`.
fn read_tids(cfg: &SpaceSpawn<'_>, pid: i32) -> Result<Vec<i32>, SwitcherError> {
    let mut tids = Vec::with_capacity(cfg.vcpus as usize);
    for v in 0..cfg.vcpus {
        let p = cfg.shared.pvcs_ptr(cfg.space, v);
        // SAFETY: mapped PVCS; one racy read of an i32 (validated below).
        let tid = unsafe { std::ptr::read_volatile(std::ptr::addr_of!((*p).u_tid)) };
        let own = std::path::Path::new(&format!("/proc/{pid}/task/{tid}")).exists();
        if tid <= 0 || tid == pid || tids.contains(&tid) || !own {
            return Err(SwitcherError::InvalidConfig(format!("U reported an invalid thread id {tid} for vCPU {v}")));
        }
        tids.push(tid);
    }
    Ok(tids)
}

/// The mapper-thread tids U recorded in its completion pages, checked: one per vCPU,
/// distinct, none a guest thread, each a thread of `pid`, vCPU 0's the main thread.
fn read_mapper_tids(channels: &[MapperChannel], pid: i32, guest: &[i32]) -> Result<Vec<i32>, SwitcherError> {
    let mut tids = Vec::with_capacity(channels.len());
    for (v, ch) in channels.iter().enumerate() {
        let tid = ch.recorded_tid();
        let own = std::path::Path::new(&format!("/proc/{pid}/task/{tid}")).exists();
        if tid <= 0 || (v == 0) != (tid == pid) || tids.contains(&tid) || guest.contains(&tid) || !own {
            return Err(SwitcherError::InvalidConfig(format!("U reported an invalid mapper thread id {tid} for vCPU {v}")));
        }
        tids.push(tid);
    }
    Ok(tids)
}

/// A pipe in packet mode (`O_DIRECT`), both ends nonblocking and close-on-exec: (read, write).
fn packet_pipe() -> Result<(OwnedFd, OwnedFd), SwitcherError> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into the array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_DIRECT | libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
        return Err(SwitcherError::last_os("pipe2 (completion)"));
    }
    // SAFETY: two fresh fds we own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// What [`spawn_space`] needs.
pub struct SpaceSpawn<'a> {
    /// The guest-memory memfd (U keeps it as fd 3; only its mapper maps from it).
    pub guest_mem: BorrowedFd<'a>,
    /// Its size, bytes (the mapper channel refuses maps beyond it).
    pub guest_mem_size: u64,
    /// The shared memfd (U maps its space's PVCSs from it).
    pub shared: &'a SharedMemory,
    /// Space id (`0 .. MAX_SPACES`): selects the PVCS pages.
    pub space: u32,
    /// vCPUs (`1 ..= MAX_VCPUS`): one guest thread each.
    pub vcpus: u32,
}

/// Spawns U (argv[0] `pvm-stub-u`) for `cfg.space` and returns it with its mapper channel and
/// its guest threads, once every guest thread recorded `Pvcs::u_tid`.
///
/// Before spawning it resets the space's PVCS header pages (`state = Empty`): K may publish
/// the first `KernelToUser` right after this returns (or even before U is ready: the guest
/// thread picks it up when it launches).
///
/// Errors: [`SwitcherError::InvalidConfig`], [`SwitcherError::FpuTooLarge`],
/// [`SwitcherError::NoFsGsBase`], OS failures, [`SwitcherError::StartFailed`],
/// [`SwitcherError::StartTimeout`].
pub fn spawn_space(cfg: &SpaceSpawn<'_>) -> Result<SpawnedSpace, SwitcherError> {
    if cfg.space >= guest_abi::MAX_SPACES {
        return Err(SwitcherError::InvalidConfig(format!("space {} >= {}", cfg.space, guest_abi::MAX_SPACES)));
    }
    if cfg.vcpus == 0 || cfg.vcpus > guest_abi::MAX_VCPUS {
        return Err(SwitcherError::InvalidConfig(format!("vcpus {} not in 1..={}", cfg.vcpus, guest_abi::MAX_VCPUS)));
    }
    let fpu = host_fpu_image_size();
    if fpu > guest_abi::pvcs::PVCS_FPU_SIZE as u64 {
        return Err(SwitcherError::FpuTooLarge(fpu));
    }
    if !has_user_fsgsbase() {
        return Err(SwitcherError::NoFsGsBase);
    }
    let image = stub_image()?;
    let words = filters::StubWords { text: image.text(), data: image.data(), vcpus: cfg.vcpus };
    let mut rec = setup::new_record(StubRole::Space, cfg.space, cfg.vcpus, cfg.guest_mem_size);
    rec.filter_a_len = setup::put_filter(&mut rec.filter_a, &filters::u_guest(&words)?)?;
    rec.filter_b_len = setup::put_filter(&mut rec.filter_b, &filters::u_mapper(cfg.vcpus)?)?;
    let setup_fd = setup::record_memfd(&rec)?;
    let mapper_fd = memfd(c"pvm-mapper", stub::MAPPER_MEMFD_SIZE, 0)?;
    let (fpu_features, fpu_len, mxcsr_mask) = crate::sys::host_fpu_format();
    if fpu_len as usize > guest_abi::pvcs::PVCS_FPU_SIZE {
        return Err(SwitcherError::FpuTooLarge(u64::from(fpu_len)));
    }
    let mut fds = vec![
        (setup::dup(cfg.guest_mem)?, stub::GUEST_MEM_FD),
        (setup::dup(cfg.shared.fd())?, stub::SHARED_FD),
        (setup::dup(mapper_fd.as_fd())?, stub::MAPPER_FD),
        (setup_fd, stub::SETUP_FD),
    ];
    // Per vCPU: its mapper's command area + completion page, and its completion pipe.
    let mut parts = Vec::with_capacity(cfg.vcpus as usize);
    for v in 0..cfg.vcpus {
        let map = crate::sys::Mapping::shared(mapper_fd.as_fd(), stub::MAPPER_STRIDE as usize, stub::mapper_cmd_offset(v))?;
        let (rd, wr) = packet_pipe()?;
        let fd = stub::COMPLETION_FD + v as i32;
        // SAFETY: the fresh mapper memfd is mapped read-write here and nobody else maps it
        // yet; these plain header fields are written once, before U exists.
        unsafe {
            let cmd = map.ptr().cast::<guest_abi::mapper::MapperCmd>();
            std::ptr::addr_of_mut!((*cmd).fpu_features).write_volatile(fpu_features);
            std::ptr::addr_of_mut!((*cmd).fpu_len).write_volatile(fpu_len);
            std::ptr::addr_of_mut!((*cmd).mxcsr_mask).write_volatile(mxcsr_mask);
            std::ptr::addr_of_mut!((*cmd).completion_fd).write_volatile(fd as u32);
        }
        fds.push((wr, fd));
        parts.push((map, rd));
    }
    drop(mapper_fd);
    cfg.shared.reset_space(cfg.space, cfg.vcpus);
    let proc = spawn::spawn(spawn::Request { fds, argv0: c"pvm-stub-u", affinity: spawn::current_affinity() })?;
    let mut channels = Vec::with_capacity(parts.len());
    for (map, rd) in parts {
        channels.push(MapperChannel::new(map, setup::dup(proc.pidfd())?, rd, cfg.guest_mem_size));
    }
    setup::wait_ready(&proc, Duration::from_secs(10), || {
        let guests = (0..cfg.vcpus).all(|v| {
            let p = cfg.shared.pvcs_ptr(cfg.space, v);
            // SAFETY: mapped PVCS; a racy read of a U-written i32 (only compared to 0).
            unsafe { std::ptr::read_volatile(std::ptr::addr_of!((*p).u_tid)) != 0 }
        });
        guests && channels.iter().all(|c| c.recorded_tid() != 0)
    })?;
    let tids = read_tids(cfg, proc.pid())?;
    let mapper_tids = read_mapper_tids(&channels, proc.pid(), &tids)?;
    let threads = SpaceThreads { pid: proc.pid(), tids, mapper_tids };
    threads.unpark(&channels[0]);
    Ok(SpawnedSpace { process: proc, channels, threads })
}
