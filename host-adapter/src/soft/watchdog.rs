//! The watchdog of guest threads: a vCPU that runs guest user code must take the interrupts
//! H raises for it and must not sleep in the host, or the guest kernel loses that vCPU to its
//! guest (no preemption, no kill).
//!
//! The guest kernel counts its user runs in `VcpuPage::user_seq` (odd while the vCPU runs user
//! code; only K writes it). Every [`PERIOD`], for each vCPU in a user run:
//! - while an interrupt is pending, H signals the guest thread again every [`REKICK`] (an
//!   interrupt that landed while the thread handed off is normally reported at its next entry
//!   into user code; this covers the few instructions where it cannot be);
//! - once the same user run has lasted [`LIMIT`], H judges the guest thread every [`LIMIT`]:
//!   it is guilty when it ran on a CPU for [`CPU_LIMIT`] with an interrupt pending, or when it
//!   sleeps in the host at two judgments in a row without having published a trap (guest code
//!   never sleeps in the host: only stub code entered by a jump does; H wakes the PVCS word at
//!   each judgment in case a wakeup went missing). H then kills that space's U process: the guest kernel sees the space
//!   die and kills its guest processes as a fatal signal would (SIGKILL), and the VM goes on.
//!   A thread that only waits for a host CPU is never judged guilty.

use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::Vm;

/// How often the watchdog looks.
const PERIOD: Duration = Duration::from_millis(10);
/// How often a pending interrupt is signalled again.
const REKICK: Duration = Duration::from_millis(10);
/// How long a user run lasts before its guest thread is judged, and how often after that.
const LIMIT: Duration = Duration::from_millis(100);
/// CPU time the guest thread may use with an interrupt pending before it is guilty.
const CPU_LIMIT: Duration = Duration::from_millis(20);

/// One vCPU's user run under watch.
struct Watch {
    user_seq: u32,
    since: Instant,
    kicked: Instant,
    judged: Instant,
    /// The guest thread's CPU time when an interrupt was first seen pending (ns).
    cpu_at_pending: Option<u64>,
    /// Judgments in a row that found the guest thread asleep in the host.
    asleep: u32,
}

/// Runs until the VM stops.
pub(crate) fn run(vm: &Vm) {
    let mut watches: Vec<Option<Watch>> = (0..vm.setup.vcpus).map(|_| None).collect();
    while !vm.stop.load(Ordering::Acquire) {
        let mut p = libc::pollfd { fd: vm.stop_event.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd for the call.
        unsafe { libc::poll(&mut p, 1, PERIOD.as_millis() as i32) };
        let now = Instant::now();
        for (id, slot) in (0..vm.setup.vcpus).zip(watches.iter_mut()) {
            let page = vm.shared.vcpu_page(id);
            let seq = page.user_seq.load(Ordering::SeqCst);
            if seq.is_multiple_of(2) {
                *slot = None;
                continue;
            }
            let w = match slot {
                Some(w) if w.user_seq == seq => w,
                _ => slot.insert(Watch {
                    user_seq: seq,
                    since: now,
                    kicked: now,
                    judged: now,
                    cpu_at_pending: None,
                    asleep: 0,
                }),
            };
            let pending = page.pending_irq.load(Ordering::SeqCst) != 0;
            if pending {
                if w.cpu_at_pending.is_none() {
                    w.cpu_at_pending = thread_cpu_ns(vm, id);
                }
                if now.duration_since(w.kicked) >= REKICK {
                    super::vcpu::kick(vm, id);
                    w.kicked = now;
                }
            } else {
                w.cpu_at_pending = None;
            }
            if now.duration_since(w.since) >= LIMIT && now.duration_since(w.judged) >= LIMIT {
                w.judged = now;
                if judge(vm, id, w) {
                    end_space(vm, id);
                    *slot = None;
                }
            }
        }
    }
}

/// Whether vCPU `id`'s guest thread is guilty (see the module docs); updates `w.asleep`.
fn judge(vm: &Vm, id: u32, w: &mut Watch) -> bool {
    let Some((pid, tid)) = thread_of(vm, id) else { return false };
    let asleep = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next()))
        .is_some_and(|c| c == 'S');
    if asleep {
        let space = vm.shared.vcpu_page(id).current_space.load(Ordering::SeqCst);
        if space >= guest_abi::MAX_SPACES {
            return false;
        }
        let state = &vm.shared.pvcs(space, id).state;
        // A thread that published a trap waits for K: K's delay, not the thread's fault.
        if state.load(Ordering::SeqCst) != guest_abi::pvcs::SwitchState::UserToKernel as u32 {
            w.asleep += 1;
            if w.asleep >= 2 {
                return true;
            }
        }
        let _ = switcher::futex::wake(state, i32::MAX);
        return false;
    }
    w.asleep = 0;
    match (w.cpu_at_pending, thread_cpu_ns(vm, id)) {
        (Some(a), Some(b)) => b.saturating_sub(a) >= CPU_LIMIT.as_nanos() as u64,
        _ => false,
    }
}

/// (U pid, guest thread tid) of the space vCPU `id` runs user code in.
fn thread_of(vm: &Vm, id: u32) -> Option<(i32, i32)> {
    let space = vm.spaces.by_id(vm.shared.vcpu_page(id).current_space.load(Ordering::SeqCst))?;
    Some((space.process.pid(), space.threads.tid(id)?))
}

/// CPU time of vCPU `id`'s guest thread, ns (`/proc/PID/task/TID/schedstat`, first field).
fn thread_cpu_ns(vm: &Vm, id: u32) -> Option<u64> {
    let (pid, tid) = thread_of(vm, id)?;
    let s = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/schedstat")).ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// Ends the space vCPU `id` runs user code in (its U process is killed; the monitor marks it
/// dead and the guest kernel kills the guest processes that used it).
fn end_space(vm: &Vm, id: u32) {
    let space_id = vm.shared.vcpu_page(id).current_space.load(Ordering::SeqCst);
    if let Some(space) = vm.spaces.by_id(space_id) {
        tracing::warn!(vcpu = id, space = space_id, "a guest thread did not take interrupts for {LIMIT:?}: ending its address space");
        space.process.kill();
    }
}
