//! Hypercalls to H (design section 7, `guest_abi::hypercall`), soft backend: the request goes
//! into this vCPU's `VcpuPage` in the shared window, handed over with a shared futex.

use crate::arch::{futex_wait, futex_wake};
use core::sync::atomic::Ordering;
use guest_abi::hypercall::{FlushRange, Hypercall, ShutdownKind, FLUSH_LIST_MAX};
use guest_abi::layout::{vcpu_page_offset, K_SHARED_BASE};
use guest_abi::pvcs::{HcallState, VcpuPage};

/// The hypercall page of `vcpu` in K's shared window.
fn page(vcpu: u32) -> *mut VcpuPage {
    (K_SHARED_BASE + vcpu_page_offset(vcpu)) as *mut VcpuPage
}

/// Issues hypercall `nr` with `args` on the calling vCPU and returns H's result
/// (`>= 0` success, `< 0` negated errno).
pub fn call(nr: Hypercall, args: [u64; 4]) -> i64 {
    // hw platform: under KVM hypercalls are port I/O or served in the guest itself.
    if crate::platform::hw::active() {
        return crate::platform::hw::hcall::call(nr, args);
    }
    // SAFETY: the stub mapped the shared window at K_SHARED_BASE before calling _start; all
    // fields of the page are atomics, so a shared reference is sound even though H writes it.
    let p = unsafe { &*page(crate::percpu::current()) };
    p.nr.store(nr as u64, Ordering::Relaxed);
    for (slot, v) in p.args.iter().zip(args) {
        slot.store(v, Ordering::Relaxed);
    }
    p.state.store(HcallState::Request as u32, Ordering::Release);
    futex_wake(&p.state, 1);
    loop {
        let s = p.state.load(Ordering::Acquire);
        if s == HcallState::Response as u32 {
            break;
        }
        futex_wait(&p.state, s);
    }
    let ret = p.ret.load(Ordering::Relaxed);
    p.state.store(HcallState::Idle as u32, Ordering::Release);
    ret
}

/// Takes the pending interrupt bits of `vcpu` (`IRQ_TIMER`, `IRQ_IPI`), clearing them.
pub fn take_irq(vcpu: u32) -> u32 {
    // hw platform: the interrupt handlers note pending interrupts per vCPU.
    if crate::platform::hw::active() {
        return crate::platform::hw::take_irq(vcpu);
    }
    // SAFETY: as in `call`: the page is mapped and all its fields are atomics.
    let p = unsafe { &*page(vcpu) };
    if p.pending_irq.load(Ordering::Relaxed) == 0 {
        return 0;
    }
    p.pending_irq.swap(0, Ordering::AcqRel)
}

/// Tells H which space `vcpu` enters user code through (where to send interrupt signals).
pub fn set_current_space(vcpu: u32, space: u32) {
    // hw platform: interrupts reach the vCPU directly; there is no U process to signal.
    if crate::platform::hw::active() {
        return;
    }
    // SAFETY: as in `call`.
    let p = unsafe { &*page(vcpu) };
    if p.current_space.load(Ordering::Relaxed) != space {
        p.current_space.store(space, Ordering::Release);
    }
}

/// Counts an entry into (`entering`) or a return from user code of `vcpu` in
/// `VcpuPage::user_seq` (odd while user code runs), for H's interrupt watchdog.
pub fn count_user_run(vcpu: u32) {
    // SAFETY: as in `call`.
    let p = unsafe { &*page(vcpu) };
    p.user_seq.fetch_add(1, Ordering::Release);
}

/// `LOAD_PGTBL(root)` → space id.
pub fn load_pgtbl(root: u64) -> i64 {
    call(Hypercall::LoadPgtbl, [root, 0, 0, 0])
}
/// `RELEASE_PGTBL(root)`.
pub fn release_pgtbl(root: u64) {
    call(Hypercall::ReleasePgtbl, [root, 0, 0, 0]);
}
/// `FLUSH_TLB(root, gva, len)`.
pub fn flush_tlb(root: u64, gva: u64, len: u64) {
    call(Hypercall::FlushTlb, [root, gva, len, 0]);
}
/// Flushes every `(gva, len)` of `ranges` in `root`'s shadow: one `FLUSH_TLB` for a single
/// range, else `FLUSH_TLB_LIST` with up to `FLUSH_LIST_MAX` [`FlushRange`] records per call,
/// written into one borrowed frame (H applies each list with one mapper batch).
pub fn flush_tlb_ranges(root: u64, ranges: &[(u64, u64)]) {
    if let [(gva, len)] = ranges {
        flush_tlb(root, *gva, *len);
        return;
    }
    if ranges.is_empty() {
        return;
    }
    let Some(list) = crate::mm::frame::alloc_run(1, 1) else {
        // No frame for the list: one call per range.
        for &(gva, len) in ranges {
            flush_tlb(root, gva, len);
        }
        return;
    };
    for chunk in ranges.chunks(FLUSH_LIST_MAX as usize) {
        let recs = crate::mm::phys_to_virt(list).cast::<FlushRange>();
        for (i, &(gva, len)) in chunk.iter().enumerate() {
            // SAFETY: `list` is a frame we own for this call; FLUSH_LIST_MAX records of 16
            // bytes fill exactly one 4 KiB page; the physmap pointer is 16-byte aligned.
            unsafe { recs.add(i).write(FlushRange { gva, len }) };
        }
        call(Hypercall::FlushTlbList, [root, list, chunk.len() as u64, 0]);
    }
    crate::mm::frame::free(list, 1);
}
/// `FLUSH_TLB_ALL(root)`.
pub fn flush_tlb_all(root: u64) {
    call(Hypercall::FlushTlbAll, [root, 0, 0, 0]);
}
/// `SET_TIMER(deadline_ns)` (0 cancels).
pub fn set_timer(deadline_ns: u64) {
    call(Hypercall::SetTimer, [deadline_ns, 0, 0, 0]);
}
/// `SEND_IPI(vcpu)`.
pub fn send_ipi(vcpu: u32) {
    call(Hypercall::SendIpi, [u64::from(vcpu), 0, 0, 0]);
}
/// `YIELD_TO(vcpu)`: let lock holder `vcpu` run (soft backend; see `crate::sync`).
pub fn yield_to(vcpu: u32) {
    call(Hypercall::YieldTo, [u64::from(vcpu), 0, 0, 0]);
}
/// `PREFAULT(root, gva, len)` → pages mapped.
pub fn prefault(root: u64, gva: u64, len: u64) -> i64 {
    call(Hypercall::Prefault, [root, gva, len, 0])
}
/// `SHADOW_FAULT(root, gva, error_code)` → `FAULT_FILLED` or `FAULT_INJECT`.
pub fn shadow_fault(root: u64, gva: u64, error_code: u64) -> i64 {
    call(Hypercall::ShadowFault, [root, gva, error_code, 0])
}
/// `CONSOLE_WRITE(fd, gpa, len)` → bytes written.
pub fn console_write(fd: u64, gpa: u64, len: u64) -> i64 {
    call(Hypercall::ConsoleWrite, [fd, gpa, len, 0])
}
/// `CONSOLE_READ(gpa, len)` → bytes read (0 = end of file).
pub fn console_read(gpa: u64, len: u64) -> i64 {
    call(Hypercall::ConsoleRead, [gpa, len, 0, 0])
}
/// `HALT()`: idle until an interrupt is pending.
pub fn halt() {
    call(Hypercall::Halt, [0; 4]);
}
/// `GET_TIME(clock)` → ns.
pub fn get_time(clock: u64) -> i64 {
    call(Hypercall::GetTime, [clock, 0, 0, 0])
}
/// `SHUTDOWN(kind, value)`: never returns.
pub fn shutdown(kind: ShutdownKind, value: u64) -> ! {
    call(Hypercall::Shutdown, [kind as u64, value, 0, 0]);
    crate::arch::host_exit(1)
}
