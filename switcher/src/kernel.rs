//! Spawning K, the guest-kernel sandbox (design section 3; stub role K).

use crate::process::StubProcess;
use crate::{SharedMemory, SwitcherError, filters, setup, spawn};
use guest_abi::layout;
use guest_abi::stub::{self, StubRole};
use std::os::fd::BorrowedFd;
use std::time::Duration;

/// A guest-kernel segment K maps: `len` bytes of guest memory at GPA `gpa` to virtual `vaddr`
/// with `prot` (`PROT_*` bits). All page aligned; `vaddr` inside `[KERNEL_BASE, STUB_BASE)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelSegment {
    /// Virtual address in K, bytes.
    pub vaddr: u64,
    /// Guest physical address, bytes.
    pub gpa: u64,
    /// Length, bytes.
    pub len: u64,
    /// `PROT_READ | PROT_WRITE | PROT_EXEC` subset.
    pub prot: u32,
}

/// What [`spawn_kernel`] needs.
pub struct KernelSpawn<'a> {
    /// The guest-memory memfd (K maps all of it at `PHYSMAP_BASE`).
    pub guest_mem: BorrowedFd<'a>,
    /// Its size, bytes (page aligned).
    pub guest_mem_size: u64,
    /// The shared memfd (K maps all of it at `K_SHARED_BASE`).
    pub shared: &'a SharedMemory,
    /// Kernel image segments (at most [`guest_abi::stub::MAX_SEGMENTS`]).
    pub segments: &'a [KernelSegment],
    /// Kernel entry `extern "sysv64" fn(vcpu_id, boot_info_va, backend) -> !`; must lie in an
    /// executable segment.
    pub entry: u64,
    /// vCPU threads (`1 ..= MAX_VCPUS`).
    pub vcpus: u32,
}

fn invalid(m: String) -> SwitcherError {
    SwitcherError::InvalidConfig(m)
}

fn validate(cfg: &KernelSpawn<'_>) -> Result<(), SwitcherError> {
    let page = guest_abi::PAGE_SIZE;
    if cfg.vcpus == 0 || cfg.vcpus > guest_abi::MAX_VCPUS {
        return Err(invalid(format!("vcpus {} not in 1..={}", cfg.vcpus, guest_abi::MAX_VCPUS)));
    }
    if cfg.guest_mem_size == 0 || !cfg.guest_mem_size.is_multiple_of(page) || cfg.guest_mem_size > layout::KERNEL_BASE - layout::PHYSMAP_BASE {
        return Err(invalid(format!("guest memory size {:#x}", cfg.guest_mem_size)));
    }
    if cfg.segments.len() > stub::MAX_SEGMENTS {
        return Err(invalid(format!("{} kernel segments (max {})", cfg.segments.len(), stub::MAX_SEGMENTS)));
    }
    let mut sorted: Vec<KernelSegment> = cfg.segments.to_vec();
    sorted.sort_by_key(|s| s.vaddr);
    let mut prev_end = layout::KERNEL_BASE;
    for s in &sorted {
        let end = s.vaddr.checked_add(s.len);
        let gend = s.gpa.checked_add(s.len);
        let ok = s.len > 0
            && (s.vaddr | s.gpa | s.len).is_multiple_of(page)
            && s.vaddr >= prev_end
            && end.is_some_and(|e| e <= layout::STUB_BASE)
            && gend.is_some_and(|e| e <= cfg.guest_mem_size)
            && s.prot & !7 == 0;
        if !ok {
            return Err(invalid(format!("kernel segment {s:x?}")));
        }
        prev_end = end.unwrap_or(layout::STUB_BASE);
    }
    let entry_ok = sorted.iter().any(|s| s.prot & 4 != 0 && cfg.entry >= s.vaddr && cfg.entry < s.vaddr + s.len);
    if !entry_ok {
        return Err(invalid(format!("entry {:#x} not in an executable segment", cfg.entry)));
    }
    Ok(())
}

/// Spawns K (argv[0] `pvm-stub-k`) and waits until every vCPU thread recorded its tid in
/// `VcpuPage::k_tid` (then each installs its filter and calls the kernel entry).
///
/// Errors: [`SwitcherError::InvalidConfig`], OS failures, [`SwitcherError::StartFailed`]
/// with the stub's exit status, [`SwitcherError::StartTimeout`].
pub fn spawn_kernel(cfg: &KernelSpawn<'_>) -> Result<StubProcess, SwitcherError> {
    validate(cfg)?;
    let mut rec = setup::new_record(StubRole::Kernel, 0, cfg.vcpus, cfg.guest_mem_size);
    rec.entry = cfg.entry;
    rec.nsegments = cfg.segments.len() as u32;
    for (slot, s) in rec.segments.iter_mut().zip(cfg.segments) {
        *slot = stub::SegmentRecord { vaddr: s.vaddr, gpa: s.gpa, len: s.len, prot: s.prot, reserved: 0 };
    }
    rec.filter_a_len = setup::put_filter(&mut rec.filter_a, &filters::k_thread()?)?;
    let setup_fd = setup::record_memfd(&rec)?;
    for v in 0..cfg.vcpus {
        let p = cfg.shared.vcpu_page_ptr(v);
        // SAFETY: mapped vCPU page; k_tid is a plain i32 only the new K writes.
        unsafe { std::ptr::write_volatile(std::ptr::addr_of_mut!((*p).k_tid), 0) };
    }
    let proc = spawn::spawn(spawn::Request {
        fds: vec![
            (setup::dup(cfg.guest_mem)?, stub::GUEST_MEM_FD),
            (setup::dup(cfg.shared.fd())?, stub::SHARED_FD),
            (setup_fd, stub::SETUP_FD),
        ],
        argv0: c"pvm-stub-k",
        affinity: spawn::current_affinity(),
    })?;
    setup::wait_ready(&proc, Duration::from_secs(10), || {
        (0..cfg.vcpus).all(|v| {
            let p = cfg.shared.vcpu_page_ptr(v);
            // SAFETY: mapped vCPU page; a racy read of a K-written i32 (only compared to 0).
            unsafe { std::ptr::read_volatile(std::ptr::addr_of!((*p).k_tid)) != 0 }
        })
    })?;
    Ok(proc)
}

/// The host tids of K's vCPU threads (index = vCPU), read once from `VcpuPage::k_tid` right
/// after [`spawn_kernel`] (K wrote them before any guest-kernel code ran; H never reads them
/// again) and checked: distinct threads of `proc`.
///
/// Errors: [`SwitcherError::InvalidConfig`] for a tid that is not such a thread.
pub fn kernel_threads(proc: &StubProcess, shared: &SharedMemory, vcpus: u32) -> Result<Vec<i32>, SwitcherError> {
    let mut tids = Vec::with_capacity(vcpus as usize);
    for v in 0..vcpus.min(guest_abi::MAX_VCPUS) {
        let p = shared.vcpu_page_ptr(v);
        // SAFETY: mapped vCPU page; one racy read of an i32 (validated below).
        let tid = unsafe { std::ptr::read_volatile(std::ptr::addr_of!((*p).k_tid)) };
        let own = std::path::Path::new(&format!("/proc/{}/task/{tid}", proc.pid())).exists();
        if tid <= 0 || tids.contains(&tid) || !own {
            return Err(invalid(format!("K reported an invalid thread id {tid} for vCPU {v}")));
        }
        tids.push(tid);
    }
    Ok(tids)
}
