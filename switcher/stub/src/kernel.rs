//! Role K: the guest-kernel sandbox. Maps the physmap, the kernel segments and the shared
//! window, starts one thread per vCPU (each records its tid in `VcpuPage::k_tid` and installs
//! the K filter: futex and exit only), then every thread calls the kernel entry once all of
//! them are filtered.

use crate::{global::Global, setup, sys, thread};
use core::sync::atomic::{AtomicU32, Ordering};
use guest_abi::layout;
use guest_abi::pvcs::VcpuPage;
use guest_abi::stub::{SetupRecord, StubExit};

/// Threads that installed their filter.
static READY: AtomicU32 = AtomicU32::new(0);
/// Set to 1 once every thread is filtered: nobody runs kernel code before that.
static GO: AtomicU32 = AtomicU32::new(0);
/// The setup record (written once before any thread exists).
static REC: Global<Option<&'static SetupRecord>> = Global::new(None);

/// Runs role K; never returns.
pub fn run(rec: &'static SetupRecord) -> ! {
    let n = rec.vcpus as u64;
    let rw = sys::PROT_READ | sys::PROT_WRITE;
    setup::map_fixed(layout::PHYSMAP_BASE, rec.guest_mem_size, rw, guest_abi::stub::GUEST_MEM_FD, 0);
    for seg in &rec.segments[..rec.nsegments as usize] {
        setup::map_fixed(seg.vaddr, seg.len, seg.prot as u64 & 7, guest_abi::stub::GUEST_MEM_FD, seg.gpa);
    }
    setup::map_fixed(layout::K_SHARED_BASE, layout::SHARED_SIZE, rw, guest_abi::stub::SHARED_FD, 0);
    for slot in 0..n {
        setup::map_stack_slot(slot);
    }
    // SAFETY: close_range takes no memory arguments.
    if unsafe { sys::syscall3(sys::NR_CLOSE_RANGE, 0, u32::MAX as u64, 0) } != 0 {
        sys::exit_group(StubExit::SyscallFailed as i32);
    }
    let _sealed = setup::seal_image_and_stacks(n);
    // SAFETY: single-threaded here; REC is read-only once threads exist.
    unsafe { *REC.get() = Some(rec) };
    for vcpu in 1..n {
        thread::spawn(vcpu, k_thread, vcpu);
    }
    loop {
        let r = READY.load(Ordering::Acquire);
        if r as u64 == n - 1 {
            break;
        }
        sys::futex_wait(&READY, r);
    }
    prepare(0, rec);
    GO.store(1, Ordering::Release);
    sys::futex_wake(&GO);
    enter(0, rec)
}

/// Records the tid and installs the K filter for the calling thread (vCPU `vcpu`).
fn prepare(vcpu: u64, rec: &SetupRecord) {
    let tid = sys::gettid();
    let page = (layout::K_SHARED_BASE + layout::vcpu_page_offset(vcpu as u32)) as *mut VcpuPage;
    // SAFETY: the shared window is mapped read-write; k_tid is a plain i32 field.
    unsafe { (&raw mut (*page).k_tid).write_volatile(tid) };
    if sys::install_filter(setup::filter_a(rec)) != 0 {
        sys::exit_group(StubExit::FilterFailed as i32);
    }
}

fn enter(vcpu: u64, rec: &SetupRecord) -> ! {
    let boot = layout::PHYSMAP_BASE + layout::BOOT_INFO_GPA;
    thread::enter_kernel(vcpu, rec.entry, vcpu, boot, guest_abi::Backend::Soft as u64)
}

extern "C" fn k_thread(vcpu: u64) -> ! {
    // SAFETY: REC was set before this thread was created and is never written again.
    let Some(rec) = (unsafe { *REC.get() }) else { crate::die() };
    prepare(vcpu, rec);
    READY.fetch_add(1, Ordering::Release);
    sys::futex_wake(&READY);
    while GO.load(Ordering::Acquire) == 0 {
        sys::futex_wait(&GO, 0);
    }
    enter(vcpu, rec)
}
