//! Entry point, panic handler and global allocator of the freestanding guest-kernel image.
//! Everything else lives in the library (`guest_kernel`), which is host-testable.
#![no_std]
#![no_main]

use guest_kernel::{boot, heap, log};

#[global_allocator]
static ALLOCATOR: heap::KernelHeap = heap::KernelHeap::new();

/// Called by the K stub on every vCPU thread (1 MiB stack, aligned as after a `call`).
///
/// # Safety
/// `boot_info_va` must point at the boot information page in the physmap.
#[unsafe(no_mangle)]
#[unsafe(link_section = ".text._start")]
pub unsafe extern "sysv64" fn _start(vcpu_id: u64, boot_info_va: u64, backend: u64) -> ! {
    // hw platform: under KVM (backend 2) set up the vCPU's descriptor tables, MSRs and LAPIC
    // before anything else runs.
    if backend == guest_abi::Backend::Kvm as u64 {
        guest_kernel::platform::hw::init_cpu(vcpu_id as u32);
    }
    boot::start(vcpu_id, boot_info_va, backend)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    log::panic_and_shutdown(info)
}
