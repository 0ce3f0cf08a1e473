//! The hostfs doorbell under KVM (`out` to `guest_abi::hostfs::HOSTFS_PORT`): the guest's vCPU
//! cannot futex there, so H does it for it, on the same doorbell words F uses on both backends
//! (guest-abi/src/hostfs.rs has the register convention).
//!
//! Trust: the registers and `BootInfo::hostfs_gpa` (re-read from guest RAM on each call) are
//! guest-controlled. H checks the op bits, the queue index and that each word is an aligned
//! word of guest RAM; the worst a guest can make H do is wake waiters on, or wait at most
//! `HOSTFS_WAIT_MAX_NS` for, a word of its own RAM.

use std::mem::offset_of;
use std::sync::atomic::Ordering;
use std::time::Duration;

use guest_abi::boot::BootInfo;
use guest_abi::hostfs::{HOSTFS_OP_KICK, HOSTFS_OP_WAIT, HOSTFS_WAIT_MAX_NS, HostfsConfig, MAX_HOSTFS_MOUNTS, QueueDoorbell};
use guest_abi::layout::BOOT_INFO_GPA;
use kvm_ioctls::VcpuFd;

use super::Vm;

const EINVAL: i64 = 22;

/// GPA of `field` (an offset in [`QueueDoorbell`]) of queue `queue`, from the guest's boot info.
fn word_gpa(vm: &Vm, queue: u64, field: usize) -> Option<u64> {
    if queue >= MAX_HOSTFS_MOUNTS as u64 {
        return None;
    }
    let mut raw = [0u8; 8];
    vm.setup.memory.read(BOOT_INFO_GPA + offset_of!(BootInfo, hostfs_gpa) as u64, &mut raw).ok()?;
    let area = u64::from_le_bytes(raw);
    if area == 0 {
        return None;
    }
    let off = offset_of!(HostfsConfig, doorbells) as u64 + queue * size_of::<QueueDoorbell>() as u64 + field as u64;
    area.checked_add(off)
}

/// Serves one doorbell `out`: returns the value for `rax`.
fn serve(vm: &Vm, op: u64, queue: u64, seen: u64, timeout_ns: u64) -> i64 {
    if op == 0 || op & !(HOSTFS_OP_KICK | HOSTFS_OP_WAIT) != 0 {
        return -EINVAL;
    }
    let ram = &vm.setup.memory;
    let word = |field| word_gpa(vm, queue, field).and_then(|g| ram.atomic_u32(g));
    let (Some(kick), Some(done), Some(broken)) = (
        word(offset_of!(QueueDoorbell, kick)),
        word(offset_of!(QueueDoorbell, done)),
        word(offset_of!(QueueDoorbell, broken)),
    ) else {
        return -EINVAL;
    };
    if op & HOSTFS_OP_KICK != 0 {
        let _ = switcher::futex::wake(kick, i32::MAX);
    }
    if op & HOSTFS_OP_WAIT == 0 {
        return 0;
    }
    let seen = seen as u32;
    let timeout = Duration::from_nanos(timeout_ns.min(HOSTFS_WAIT_MAX_NS));
    let end = std::time::Instant::now() + timeout;
    loop {
        if done.load(Ordering::Acquire) != seen || broken.load(Ordering::Acquire) != 0 {
            return 0;
        }
        let left = end.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() || vm.stop.load(Ordering::Acquire) {
            return 1;
        }
        let _ = switcher::futex::wait(done, seen, Some(left));
    }
}

/// Handles an `out` to `HOSTFS_PORT` on `vcpu`: reads the request registers, serves it and
/// writes the result into `rax`.
///
/// # Errors
/// A KVM register ioctl failed (the VM cannot go on).
pub(crate) fn doorbell(vm: &Vm, vcpu: &VcpuFd) -> Result<(), String> {
    let mut regs = vcpu.get_regs().map_err(|e| format!("KVM_GET_REGS: {e}"))?;
    let ret = serve(vm, regs.rax, regs.rdi, regs.rsi, regs.r10);
    regs.rax = ret as u64;
    vcpu.set_regs(&regs).map_err(|e| format!("KVM_SET_REGS: {e}"))
}
