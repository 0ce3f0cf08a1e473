//! Spawning a U process for one guest address space (design sections 3-6; stub role U).

use crate::image::stub_image;
use crate::mapper::MapperChannel;
use crate::process::StubProcess;
use crate::sys::{has_user_fsgsbase, host_fpu_image_size, memfd};
use crate::{SharedMemory, SwitcherError, filters, setup, spawn};
use guest_abi::stub::{self, StubRole};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

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

/// Spawns U (argv[0] `pvm-stub-u`) for `cfg.space` and returns it with its mapper channel,
/// once every guest thread recorded `Pvcs::u_tid`.
///
/// Before spawning it resets the space's PVCS header pages (`state = Empty`): K may publish
/// the first `KernelToUser` right after this returns (or even before U is ready: the guest
/// thread picks it up when it launches).
///
/// Errors: [`SwitcherError::InvalidConfig`], [`SwitcherError::FpuTooLarge`],
/// [`SwitcherError::NoFsGsBase`], OS failures, [`SwitcherError::StartFailed`],
/// [`SwitcherError::StartTimeout`].
pub fn spawn_space(cfg: &SpaceSpawn<'_>) -> Result<(StubProcess, MapperChannel), SwitcherError> {
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
    let (ts, te) = stub_image()?.text();
    let mut rec = setup::new_record(StubRole::Space, cfg.space, cfg.vcpus, cfg.guest_mem_size);
    rec.filter_a_len = setup::put_filter(&mut rec.filter_a, &filters::u_guest(ts, te)?)?;
    rec.filter_b_len = setup::put_filter(&mut rec.filter_b, &filters::u_mapper()?)?;
    let setup_fd = setup::record_memfd(&rec)?;
    let mapper_fd = memfd(c"pvm-mapper", stub::MAPPER_MEMFD_SIZE, 0)?;
    let channel_map = crate::sys::Mapping::shared(mapper_fd.as_fd(), stub::MAPPER_MEMFD_SIZE as usize, 0)?;
    cfg.shared.reset_space(cfg.space, cfg.vcpus);
    let proc = spawn::spawn(spawn::Request {
        fds: vec![
            (setup::dup(cfg.guest_mem)?, stub::GUEST_MEM_FD),
            (setup::dup(cfg.shared.fd())?, stub::SHARED_FD),
            (mapper_fd, stub::MAPPER_FD),
            (setup_fd, stub::SETUP_FD),
        ],
        argv0: c"pvm-stub-u",
        affinity: spawn::current_affinity(),
    })?;
    setup::wait_ready(&proc, Duration::from_secs(10), || {
        (0..cfg.vcpus).all(|v| {
            let p = cfg.shared.pvcs_ptr(cfg.space, v);
            // SAFETY: mapped PVCS; a racy read of a U-written i32 (only compared to 0).
            unsafe { std::ptr::read_volatile(std::ptr::addr_of!((*p).u_tid)) != 0 }
        })
    })?;
    let channel = MapperChannel::new(channel_map, setup::dup(proc.pidfd())?, cfg.guest_mem_size);
    Ok((proc, channel))
}
