//! H's side of one vCPU: waits for the guest kernel's hypercalls on the vCPU page, copies each
//! request once, validates it, serves it, and hands the page back.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use guest_abi::hypercall::{FAULT_FILLED, FAULT_INJECT, HYPERCALL_COUNT, Hypercall};
use guest_abi::layout::{USER_END, USER_START};
use guest_abi::pvcs::HcallState;
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
}

/// A timer deadline and pending-IPI flag for `HALT`.
#[derive(Default)]
struct IdleState {
    deadline_ns: Option<i64>,
}

/// Serves vCPU `id` until the VM stops.
pub(crate) fn run(vm: &Vm, id: u32) -> VcpuCounters {
    let page = vm.shared.vcpu_page(id);
    let mut counters = VcpuCounters::default();
    let mut idle = IdleState::default();
    loop {
        if vm.stop.load(Ordering::Acquire) {
            return counters;
        }
        let state = page.state.load(Ordering::Acquire);
        if state != HcallState::Request as u32 {
            let _ = switcher::futex::wait(&page.state, state, Some(WAIT_SLICE));
            continue;
        }
        // Copy the request once; everything after works on the copy.
        let nr = page.nr.load(Ordering::Relaxed);
        let args = [0, 1, 2, 3].map(|i| page.args[i].load(Ordering::Relaxed));
        let t0 = Instant::now();
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
            if vm.spaces.release(a0) { 0 } else { -EINVAL }
        }
        Hypercall::FlushTlb | Hypercall::FlushTlbAll => {
            let t0 = Instant::now();
            let Some(space) = vm.spaces.get(a0) else { return -EINVAL };
            let result = if call == Hypercall::FlushTlbAll {
                space.shadow.flush_all()
            } else {
                match user_range(a1, a2) {
                    Some((gva, len)) => space.shadow.flush(gva, len),
                    None => Ok(()),
                }
            };
            counters.flushes.add(t0.elapsed().as_nanos() as u64);
            match result {
                Ok(()) => 0,
                Err(e) => {
                    tracing::error!("flush: {e}");
                    -EIO
                }
            }
        }
        Hypercall::Prefault => {
            let t0 = Instant::now();
            let Some(space) = vm.spaces.get(a0) else { return -EINVAL };
            let Some((gva, len)) = user_range(a1, a2) else { return 0 };
            let r = space.shadow.prefault(ram, gva, len);
            counters.prefaults.add(t0.elapsed().as_nanos() as u64);
            match r {
                Ok(pages) => pages as i64,
                Err(e) => {
                    tracing::error!("prefault: {e}");
                    -EIO
                }
            }
        }
        Hypercall::ShadowFault => {
            let t0 = Instant::now();
            let Some(space) = vm.spaces.get(a0) else { return -EINVAL };
            match space.shadow.fault(ram, a1, a2) {
                Ok(FaultOutcome::Filled { .. }) => {
                    counters.filled.add(t0.elapsed().as_nanos() as u64);
                    FAULT_FILLED
                }
                Ok(FaultOutcome::Inject { .. }) => {
                    counters.injected.add(t0.elapsed().as_nanos() as u64);
                    FAULT_INJECT
                }
                Err(e) => {
                    tracing::error!("shadow fault: {e}");
                    -EIO
                }
            }
        }
        Hypercall::ConsoleWrite => vm.console.write(ram, a0, a1, a2),
        Hypercall::ConsoleRead => vm.console.read(ram, a0, a1),
        Hypercall::GetTime => devices::get_time(a0),
        Hypercall::SetTimer => {
            idle.deadline_ns = (a0 != 0).then_some(a0 as i64);
            0
        }
        Hypercall::Halt => {
            halt(vm, id, idle);
            0
        }
        // One vCPU runs guest processes for now; IPIs and directed yields have no target yet.
        Hypercall::SendIpi | Hypercall::YieldTo => {
            if a0 < u64::from(vm.setup.vcpus) { 0 } else { -EINVAL }
        }
        Hypercall::Shutdown => {
            vm.finish(devices::shutdown_reason(a0, a1));
            0
        }
    }
}

/// `HALT`: sleeps until the timer deadline passes or the VM stops.
fn halt(vm: &Vm, _id: u32, idle: &mut IdleState) {
    loop {
        if vm.stop.load(Ordering::Acquire) {
            return;
        }
        let slice = match idle.deadline_ns {
            Some(deadline) => {
                let now = devices::get_time(1);
                if now >= deadline {
                    idle.deadline_ns = None;
                    return;
                }
                Duration::from_nanos((deadline - now) as u64).min(WAIT_SLICE)
            }
            None => WAIT_SLICE,
        };
        std::thread::sleep(slice);
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
