//! Role U: one guest address space. Maps this space's PVCS pages and the mapper pages, keeps
//! only the guest-memory fd and the completion fds, installs the trap handlers, starts one
//! guest thread and one mapper thread per vCPU (vCPU 0's mapper is the main thread; see
//! [`crate::mapper`]).
//!
//! Start-up order (nothing guest-controlled runs before the last step):
//! 1. main maps everything, closes fds, seals the stub area, installs the handlers;
//! 2. each guest thread records `Pvcs::u_tid` (H reads it once, before step 4), sets its
//!    sigaltstack and its signal mask (for good: no handler ever changes it), installs the
//!    guest filter, counts itself in `READY` and waits for `GO`;
//! 3. each further mapper thread records its tid in its completion page, installs the mapper
//!    filter and enters the register-only mapper loop, whose first action is to set and wake
//!    its word in `MAPPER_UP`; main, once all guest threads are ready and every mapper is up,
//!    installs the mapper filter and enters vCPU 0's mapper loop, whose first action is to
//!    set and wake `GO`;
//! 4. each guest thread then parks ([`handler::pvm_stub_restart`]) and, once H's run word
//!    says so, serves its vCPU: waits for K's `KernelToUser` and enters guest code.

use crate::handler::pvcs_ptr;
use crate::{global::Global, handler, setup, sys, thread};
use core::sync::atomic::{AtomicU32, Ordering};
use guest_abi::layout;
use guest_abi::pvcs::PVCS_FPU_SIZE;
use guest_abi::stub::{self, SetupRecord, StubExit};

static READY: AtomicU32 = AtomicU32::new(0);
static GO: AtomicU32 = AtomicU32::new(0);
/// Per vCPU `i >= 1`: set by its mapper thread's loop on entry (no stack use after that).
static MAPPER_UP: [AtomicU32; guest_abi::MAX_VCPUS as usize] =
    [const { AtomicU32::new(0) }; guest_abi::MAX_VCPUS as usize];
static REC: Global<Option<&'static SetupRecord>> = Global::new(None);

/// Signals whose handler is [`handler::pvm_stub_trap_entry`]: the guest traps, H's interrupt
/// and H's reset. A guest thread never blocks them (and nothing can block them later: the
/// handlers never return through `rt_sigreturn`, which would load a mask from the frame).
pub const TRAP_SIGNALS: [i32; 8] = [
    sys::SIGSYS,
    sys::SIGSEGV,
    sys::SIGILL,
    sys::SIGFPE,
    sys::SIGTRAP,
    sys::SIGBUS,
    stub::INTERRUPT_SIGNAL,
    stub::RESET_SIGNAL,
];

/// The signals a guest thread accepts ([`TRAP_SIGNALS`]); all others stay blocked.
const TRAP_MASK: u64 = {
    let mut m = 0;
    let mut i = 0;
    while i < TRAP_SIGNALS.len() {
        m |= sys::sigbit(TRAP_SIGNALS[i]);
        i += 1;
    }
    m
};

/// Size of the host's XSAVE signal-frame image (CPUID.(EAX=0DH,ECX=0).EBX plus the 4-byte
/// `FP_XSTATE_MAGIC2`), or the 512-byte FXSAVE image without XSAVE (Intel SDM vol. 1, 13.2).
fn host_fpu_image_size() -> u64 {
    let leaf1 = core::arch::x86_64::__cpuid(1);
    if leaf1.ecx & (1 << 27) == 0 {
        return 512;
    }
    let d = core::arch::x86_64::__cpuid_count(0xd, 0);
    d.ebx as u64 + 4
}

/// Runs role U; never returns.
pub fn run(rec: &'static SetupRecord) -> ! {
    if host_fpu_image_size() > PVCS_FPU_SIZE as u64 {
        sys::exit_group(StubExit::FpuTooLarge as i32);
    }
    let n = rec.vcpus as u64;
    let rw = sys::PROT_READ | sys::PROT_WRITE;
    setup::map_fixed(layout::U_PVCS_BASE, n * layout::PVCS_SIZE, rw, stub::SHARED_FD,
        layout::pvcs_offset(rec.space, 0));
    for v in 0..rec.vcpus {
        setup::map_fixed(layout::u_mapper_cmd(v), guest_abi::mapper::CMD_AREA_SIZE, sys::PROT_READ,
            stub::MAPPER_FD, stub::mapper_cmd_offset(v));
        setup::map_fixed(layout::u_mapper_done(v), guest_abi::PAGE_SIZE, rw, stub::MAPPER_FD,
            stub::mapper_done_offset(v));
    }
    // Slots: 2 per guest thread, then one start-up stack per mapper thread but main's.
    let slots = 3 * n - 1;
    for slot in 0..slots {
        setup::map_stack_slot(slot);
    }
    // Keep only GUEST_MEM_FD (3) and the completion fds (COMPLETION_FD ..= COMPLETION_FD + n - 1).
    let last = stub::COMPLETION_FD as u64 + n - 1;
    // SAFETY: close_range takes no memory arguments.
    let closed = unsafe {
        sys::syscall3(sys::NR_CLOSE_RANGE, 0, 2, 0) == 0
            && sys::syscall3(sys::NR_CLOSE_RANGE, 4, 6, 0) == 0
            && sys::syscall3(sys::NR_CLOSE_RANGE, last + 1, u32::MAX as u64, 0) == 0
    };
    if !closed {
        sys::exit_group(StubExit::SyscallFailed as i32);
    }
    if setup::seal_image_and_stacks(slots) {
        setup::seal(layout::U_PVCS_BASE, n * layout::PVCS_SIZE);
        for v in 0..rec.vcpus {
            setup::seal(layout::u_mapper_cmd(v), guest_abi::mapper::CMD_AREA_SIZE);
            setup::seal(layout::u_mapper_done(v), guest_abi::PAGE_SIZE);
        }
    }
    install_handlers();
    // SAFETY: single-threaded here; REC is read-only once threads exist.
    unsafe { *REC.get() = Some(rec) };
    record_mapper_tid(0);
    for vcpu in 0..n {
        thread::spawn(2 * vcpu, guest_thread, vcpu);
    }
    for vcpu in 1..n {
        thread::spawn(2 * n + vcpu - 1, mapper_thread, vcpu);
    }
    loop {
        let r = READY.load(Ordering::Acquire);
        if r as u64 == n {
            break;
        }
        sys::futex_wait(&READY, r);
    }
    for up in &MAPPER_UP[1..n as usize] {
        while up.load(Ordering::Acquire) == 0 {
            sys::futex_wait(up, 0);
        }
    }
    if sys::install_filter(setup::filter_b(rec)) != 0 {
        sys::exit_group(StubExit::FilterFailed as i32);
    }
    // The loop itself sets GO: once guest code can run, main holds nothing on its stack.
    crate::mapper::run(&GO, 0)
}

/// Writes the calling thread's tid into vCPU `vcpu`'s completion page (H reads it once at
/// spawn, before any guest code runs).
fn record_mapper_tid(vcpu: u32) {
    let done = layout::u_mapper_done(vcpu) as *mut guest_abi::mapper::MapperDone;
    // SAFETY: the completion page is mapped read-write; `tid` is a plain i32 field.
    unsafe { (&raw mut (*done).tid).write_volatile(sys::gettid()) };
}

/// vCPU `vcpu`'s mapper thread (`vcpu >= 1`): created by main with every signal blocked (the
/// mask is inherited), it records its tid, installs the mapper filter and becomes the loop,
/// which sets its `MAPPER_UP` word before guest code may run anywhere in U.
extern "C" fn mapper_thread(vcpu: u64) -> ! {
    // SAFETY: REC was set before this thread was created and is never written again.
    let Some(rec) = (unsafe { *REC.get() }) else { crate::die() };
    record_mapper_tid(vcpu as u32);
    if sys::install_filter(setup::filter_b(rec)) != 0 {
        sys::exit_group(StubExit::FilterFailed as i32);
    }
    let Some(up) = MAPPER_UP.get(vcpu as usize) else { crate::die() };
    crate::mapper::run(up, vcpu as u32)
}

fn install_handlers() {
    for sig in TRAP_SIGNALS {
        // SA_NODEFER and an empty mask: delivering a signal never changes the thread's mask.
        let act = sys::KernelSigaction {
            handler: handler::pvm_stub_trap_entry as *const () as u64,
            flags: sys::SA_SIGINFO | sys::SA_ONSTACK | sys::SA_RESTORER | sys::SA_NODEFER,
            restorer: handler::pvm_stub_restorer as *const () as u64,
            mask: 0,
        };
        // SAFETY: `act` is a valid kernel sigaction for the duration of the call.
        let r = unsafe {
            sys::syscall6(sys::NR_RT_SIGACTION, sig as u64, (&raw const act) as u64, 0, 8, 0, 0)
        };
        if r != 0 {
            sys::exit_group(StubExit::SignalSetupFailed as i32);
        }
    }
}

extern "C" fn guest_thread(vcpu: u64) -> ! {
    // SAFETY: REC was set before this thread was created and is never written again.
    let Some(rec) = (unsafe { *REC.get() }) else { crate::die() };
    let tid = sys::gettid();
    // SAFETY: this vCPU's PVCS is mapped read-write; u_tid is a plain i32 field.
    unsafe { (&raw mut (*pvcs_ptr(vcpu)).u_tid).write_volatile(tid) };
    let ss = sys::StackT {
        sp: stub::stack_slot_base(2 * vcpu + 1) + guest_abi::PAGE_SIZE,
        flags: 0,
        pad: 0,
        size: layout::STUB_STACK_SIZE,
    };
    // SAFETY: `ss` describes this thread's own mapped altstack slot.
    let r = unsafe { sys::syscall3(sys::NR_SIGALTSTACK, (&raw const ss) as u64, 0, 0) };
    if r != 0 || sys::set_sigmask(!TRAP_MASK) != 0 {
        sys::exit_group(StubExit::SignalSetupFailed as i32);
    }
    if sys::install_filter(setup::filter_a(rec)) != 0 {
        sys::exit_group(StubExit::FilterFailed as i32);
    }
    READY.fetch_add(1, Ordering::Release);
    sys::futex_wake(&READY);
    while GO.load(Ordering::Acquire) == 0 {
        sys::futex_wait(&GO, 0);
    }
    // SAFETY: leaves this start-up stack for good: the park loop runs on the sigaltstack.
    unsafe { handler::pvm_stub_restart(vcpu) }
}
