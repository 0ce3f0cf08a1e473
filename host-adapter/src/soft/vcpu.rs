//! H's side of one vCPU: waits for the guest kernel's hypercalls on the vCPU page, copies each
//! request once, validates it, serves it, and hands the page back.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use guest_abi::hypercall::{FAULT_FILLED, FAULT_INJECT, HYPERCALL_COUNT, Hypercall};
use guest_abi::layout::{USER_END, USER_START};
use guest_abi::pvcs::{HcallState, IRQ_IPI, IRQ_TIMER};
use shadow_mmu::FaultOutcome;

use super::Vm;
use crate::devices;
use crate::stats::Counter;

const EINVAL: i64 = 22;
const ENOSYS: i64 = 38;
const ENOMEM: i64 = 12;
const EAGAIN: i64 = 11;
const EIO: i64 = 5;

/// How long H sleeps in one futex wait before it rechecks whether the VM stopped.
const WAIT_SLICE: Duration = Duration::from_millis(100);

/// What one vCPU thread counted.
#[derive(Default)]
pub(crate) struct VcpuCounters {
    pub(crate) hypercalls: [Counter; HYPERCALL_COUNT],
    pub(crate) filled: Counter,
    pub(crate) injected: Counter,
    pub(crate) prefaults: Counter,
    pub(crate) flushes: Counter,
    pub(crate) yields: super::yield_to::YieldCounters,
}

/// The vCPU's `SET_TIMER` deadline (`CLOCK_MONOTONIC` ns).
#[derive(Default)]
struct IdleState {
    deadline_ns: Option<i64>,
}

impl IdleState {
    /// If the deadline passed, clears it and raises the timer interrupt. Returns how long to
    /// wait at most before checking again.
    fn expire(&mut self, vm: &Vm, id: u32) -> Duration {
        let Some(deadline) = self.deadline_ns else { return WAIT_SLICE };
        let now = devices::get_time(1);
        if now >= deadline {
            self.deadline_ns = None;
            raise(vm, id, IRQ_TIMER);
            return WAIT_SLICE;
        }
        Duration::from_nanos((deadline - now) as u64).min(WAIT_SLICE)
    }
}

/// Posts interrupt `bit` for vCPU `id`: sets it in `pending_irq`, wakes an H thread halted
/// on it, and kicks the vCPU ([`kick`]).
pub(crate) fn raise(vm: &Vm, id: u32, bit: u32) {
    let page = vm.shared.vcpu_page(id);
    page.pending_irq.fetch_or(bit, Ordering::SeqCst);
    let _ = switcher::futex::wake(&page.pending_irq, i32::MAX);
    kick(vm, id);
}

/// Signals the guest thread of vCPU `id` in the space it last entered user code through
/// (`VcpuPage::current_space`), by H's own record of that thread's tid. A signal that lands
/// while the thread hands off is reported at its next entry into user code.
pub(crate) fn kick(vm: &Vm, id: u32) {
    let space_id = vm.shared.vcpu_page(id).current_space.load(Ordering::SeqCst);
    if let Some(space) = vm.spaces.by_id(space_id) {
        space.threads.interrupt(id);
    }
}

/// Serves vCPU `id` until the VM stops.
pub(crate) fn run(vm: &Vm, id: u32) -> VcpuCounters {
    vm.cpus.place(0, id);
    // Short sleeps (YIELD_TO, timer deadlines) should not be stretched by the default 50 us
    // timer slack (`prctl(2)` PR_SET_TIMERSLACK, ns).
    // SAFETY: plain prctl on the calling thread.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1000u64, 0u64, 0u64, 0u64) };
    super::spaces::set_current_vcpu(id);
    let page = vm.shared.vcpu_page(id);
    let mut counters = VcpuCounters::default();
    let mut idle = IdleState::default();
    loop {
        if vm.stop.load(Ordering::Acquire) {
            return counters;
        }
        let state = page.state.load(Ordering::Acquire);
        if state != HcallState::Request as u32 {
            let slice = idle.expire(vm, id);
            let _ = switcher::futex::wait(&page.state, state, Some(slice));
            continue;
        }
        // Copy the request once; everything after works on the copy.
        let nr = page.nr.load(Ordering::Relaxed);
        let args = [0, 1, 2, 3].map(|i| page.args[i].load(Ordering::Relaxed));
        let t0 = Instant::now();
        tracing::trace!(vcpu = id, nr, ?args, "hypercall");
        let ret = match Hypercall::from_raw(nr) {
            Some(call) => {
                let ret = serve(vm, id, call, args, &mut counters, &mut idle);
                let ns = t0.elapsed().as_nanos() as u64;
                counters.hypercalls[nr as usize - 1].add(ns);
                ret
            }
            None => -ENOSYS,
        };
        if vm.stop.load(Ordering::Acquire) {
            return counters;
        }
        page.ret.store(ret, Ordering::Relaxed);
        page.state.store(HcallState::Response as u32, Ordering::Release);
        let _ = switcher::futex::wake(&page.state, i32::MAX);
    }
}

/// Whether `space` already has as many host VMAs as one U process may hold (its own
/// `vm.max_map_count`, less what the stub uses). The guest gets ENOMEM for the fill and kills
/// the process, as Linux's mmap would fail past the limit.
fn over_vma_budget(vm: &Vm, space: &super::spaces::Space) -> bool {
    let over = space.shadow.stats().vmas_current >= vm.vma_budget;
    if over {
        tracing::warn!(space = space.id, budget = vm.vma_budget, "a guest address space reached its host VMA budget");
    }
    over
}

/// A shadow operation failed: the U process's mappings are no longer known, so the space is
/// ended (its U process killed; the monitor marks it dead and the guest kernel kills what
/// used it). Returns the errno for the guest.
fn mapper_failed(vm: &Vm, space: &super::spaces::Space, what: &str, e: &shadow_mmu::ShadowError) -> i64 {
    if vm.stop.load(Ordering::Acquire) {
        // The VM is ending (its U processes are killed at a stop request): not news.
        return -EIO;
    }
    match e {
        shadow_mmu::ShadowError::Mapper(m) if m.errno == libc::ENOMEM => {
            tracing::error!(space = space.id, "{what}: the host refused more mappings (vm.max_map_count)");
        }
        shadow_mmu::ShadowError::RetriesExhausted { .. } => {
            // The guest kept rewriting its page table under the walk: its own problem.
            return -EAGAIN;
        }
        _ => tracing::error!(space = space.id, "{what}: {e}"),
    }
    space.process.kill();
    -EIO
}

/// Copies a `FLUSH_TLB_LIST` list out of guest memory once. `None` if `count` is above
/// `FLUSH_LIST_MAX` or the list is outside guest memory.
fn read_flush_list(ram: &crate::GuestRam, gpa: u64, count: u64) -> Option<Vec<(u64, u64)>> {
    use guest_abi::hypercall::{FLUSH_LIST_MAX, FlushRange};
    if count > FLUSH_LIST_MAX {
        return None;
    }
    let mut raw = vec![0u8; count as usize * size_of::<FlushRange>()];
    ram.read(gpa, &mut raw).ok()?;
    Some(
        raw.chunks_exact(size_of::<FlushRange>())
            .map(|c| {
                let word = |i: usize| u64::from_le_bytes(c[i..i + 8].try_into().unwrap_or([0; 8]));
                (word(0), word(8))
            })
            .collect(),
    )
}

/// Clamps a guest-given GVA range to the user range; `None` if empty.
fn user_range(gva: u64, len: u64) -> Option<(u64, u64)> {
    let start = gva.max(USER_START) & !(guest_abi::PAGE_SIZE - 1);
    let end = gva.saturating_add(len).min(USER_END).next_multiple_of(guest_abi::PAGE_SIZE);
    (start < end).then_some((start, end - start))
}

fn serve(
    vm: &Vm,
    id: u32,
    call: Hypercall,
    [a0, a1, a2, _a3]: [u64; 4],
    counters: &mut VcpuCounters,
    idle: &mut IdleState,
) -> i64 {
    let ram = &vm.setup.memory;
    match call {
        Hypercall::LoadPgtbl => match vm.spaces.load(ram, &vm.shared, a0) {
            Ok(space) => i64::from(space),
            Err(super::spaces::SpaceError::BadRoot(_)) => -EINVAL,
            Err(super::spaces::SpaceError::Exhausted) => -EAGAIN,
            Err(e) => {
                tracing::error!("{e}");
                -ENOMEM
            }
        },
        Hypercall::ReleasePgtbl => {
            if vm.spaces.release(a0, true) { 0 } else { -EINVAL }
        }
        Hypercall::FlushTlb | Hypercall::FlushTlbAll => {
            let t0 = Instant::now();
            let Some(space) = vm.spaces.get(a0) else { return -EINVAL };
            let result = vm.spaces.accounted(&space, || {
                if call == Hypercall::FlushTlbAll {
                    space.shadow.flush_all()
                } else {
                    match user_range(a1, a2) {
                        Some((gva, len)) => space.shadow.flush(gva, len),
                        None => Ok(()),
                    }
                }
            });
            counters.flushes.add(t0.elapsed().as_nanos() as u64);
            match result {
                Ok(()) => 0,
                Err(e) => mapper_failed(vm, &space, "flush", &e),
            }
        }
        Hypercall::FlushTlbList => {
            let t0 = Instant::now();
            let Some(space) = vm.spaces.get(a0) else { return -EINVAL };
            let Some(ranges) = read_flush_list(ram, a1, a2) else { return -EINVAL };
            let result = vm.spaces.accounted(&space, || space.shadow.flush_ranges(&ranges));
            counters.flushes.add(t0.elapsed().as_nanos() as u64);
            match result {
                Ok(()) => 0,
                Err(e) => mapper_failed(vm, &space, "flush", &e),
            }
        }
        Hypercall::Prefault => {
            let t0 = Instant::now();
            let Some(space) = vm.spaces.get(a0) else { return -EINVAL };
            if over_vma_budget(vm, &space) {
                return -ENOMEM;
            }
            let Some((gva, len)) = user_range(a1, a2) else { return 0 };
            let r = vm.spaces.accounted(&space, || space.shadow.prefault(ram, gva, len));
            counters.prefaults.add(t0.elapsed().as_nanos() as u64);
            match r {
                Ok(pages) => pages as i64,
                Err(e) => mapper_failed(vm, &space, "prefault", &e),
            }
        }
        Hypercall::ShadowFault => {
            let t0 = Instant::now();
            let Some(space) = vm.spaces.get(a0) else { return -EINVAL };
            if over_vma_budget(vm, &space) {
                return -ENOMEM;
            }
            match vm.spaces.accounted(&space, || space.shadow.fault(ram, a1, a2)) {
                Ok(FaultOutcome::Filled { .. }) => {
                    counters.filled.add(t0.elapsed().as_nanos() as u64);
                    FAULT_FILLED
                }
                Ok(FaultOutcome::Inject { .. }) => {
                    counters.injected.add(t0.elapsed().as_nanos() as u64);
                    FAULT_INJECT
                }
                Err(e) => mapper_failed(vm, &space, "shadow fault", &e),
            }
        }
        Hypercall::ConsoleWrite => vm.console.write(ram, a0, a1, a2),
        Hypercall::ConsoleRead => vm.console.read(ram, a0, a1),
        Hypercall::GetTime => devices::get_time(a0),
        Hypercall::CopyMem => devices::copy_mem(ram, a0, a1, a2),
        Hypercall::ZeroMem => devices::zero_mem(ram, a0, a1),
        Hypercall::SetTimer => {
            idle.deadline_ns = (a0 != 0).then_some(a0 as i64);
            0
        }
        Hypercall::Halt => {
            halt(vm, id, idle);
            0
        }
        Hypercall::SendIpi => {
            let Ok(target) = u32::try_from(a0) else { return -EINVAL };
            if target >= vm.setup.vcpus {
                return -EINVAL;
            }
            raise(vm, target, IRQ_IPI);
            0
        }
        Hypercall::YieldTo => super::yield_to::serve(vm, id, [a0, a1, a2], &mut counters.yields),
        Hypercall::Shutdown => {
            vm.finish(devices::shutdown_reason(ram, a0, a1));
            0
        }
    }
}

/// `HALT`: sleeps until an interrupt is pending (the timer deadline passed, an IPI came) or
/// the VM stops.
fn halt(vm: &Vm, id: u32, idle: &mut IdleState) {
    let page = vm.shared.vcpu_page(id);
    loop {
        if vm.stop.load(Ordering::Acquire) {
            return;
        }
        let slice = idle.expire(vm, id);
        let pending = page.pending_irq.load(Ordering::SeqCst);
        if pending != 0 {
            return;
        }
        let _ = switcher::futex::wait(&page.pending_irq, pending, Some(slice));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ranges_are_clamped() {
        assert_eq!(user_range(0, 0x2000), None);
        assert_eq!(user_range(0x1_0000, 1), Some((0x1_0000, 0x1000)));
        assert_eq!(user_range(0x1_0800, 0x1000), Some((0x1_0000, 0x2000)));
        assert_eq!(user_range(USER_END - 0x1000, u64::MAX), Some((USER_END - 0x1000, 0x1000)));
        assert_eq!(user_range(USER_END, 0x1000), None);
    }
}
