//! Per-vCPU identity: which vCPU the calling code runs on, found from the stack pointer (each
//! vCPU thread has its own 1 MiB stack, recorded at entry), so that deep code (logging,
//! hypercalls) needs no `current` pointer threaded through every call and no global without a
//! vCPU index.

use core::sync::atomic::{AtomicU64, Ordering};
use guest_abi::MAX_VCPUS;

/// Stack size the stub gives each vCPU thread, bytes.
const STACK_SPAN: u64 = guest_abi::layout::STUB_STACK_SIZE;

/// Highest stack address seen at entry per vCPU (0 = not started).
static STACK_TOPS: [AtomicU64; MAX_VCPUS as usize] = [const { AtomicU64::new(0) }; MAX_VCPUS as usize];

/// Records the calling thread as vCPU `vcpu` (called first thing in `_start`).
pub fn register(vcpu: u32, rsp: u64) {
    if let Some(slot) = STACK_TOPS.get(vcpu as usize) {
        slot.store(rsp, Ordering::Relaxed);
    }
}

/// Current stack pointer (approximately: the address of a local).
#[inline(always)]
pub fn stack_pointer() -> u64 {
    let marker = 0u8;
    core::ptr::addr_of!(marker) as u64
}

/// The vCPU the caller runs on (0 if it cannot be told, e.g. in host unit tests).
pub fn current() -> u32 {
    let sp = stack_pointer();
    for (i, top) in STACK_TOPS.iter().enumerate() {
        let t = top.load(Ordering::Relaxed);
        if t != 0 && sp <= t + 4096 && t - sp.min(t) < STACK_SPAN {
            return i as u32;
        }
    }
    0
}
