//! The interrupt watchdog: a vCPU that runs guest user code must take the interrupts H raises
//! for it, or the guest kernel loses the CPU to its guest (no preemption, no kill).
//!
//! Every [`PERIOD`], for each vCPU with an interrupt pending (`VcpuPage::pending_irq`) while
//! the guest kernel says the vCPU runs user code (`VcpuPage::user_seq` odd, written only by
//! K): H signals the guest thread again every [`REKICK`] (an interrupt that landed while the
//! thread handed off is normally reported at its next entry into user code; this covers the
//! few instructions where it cannot be), and once the same user run has kept an interrupt
//! pending for [`LIMIT`] *and* the guest thread either ran on a CPU for [`CPU_LIMIT`] of that
//! time or sleeps in the host (a guest thread in user mode never legitimately sleeps there), H
//! kills that space's U process: the guest kernel then sees the space die and kills its guest
//! processes as a fatal signal would (SIGKILL), and the VM goes on. A thread that merely waits
//! for a host CPU is not punished.

use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::Vm;

/// How often the watchdog looks.
const PERIOD: Duration = Duration::from_millis(10);
/// How often a pending interrupt is signalled again.
const REKICK: Duration = Duration::from_millis(10);
/// How long one user run may keep an interrupt pending before it is judged.
const LIMIT: Duration = Duration::from_millis(100);
/// CPU time the guest thread may use with an interrupt pending before it is judged guilty.
const CPU_LIMIT: Duration = Duration::from_millis(20);

/// One vCPU's pending interrupt under watch.
struct Watch {
    user_seq: u32,
    since: Instant,
    kicked: Instant,
    /// The guest thread's CPU time when the watch started (ns), if readable.
    cpu_ns: Option<u64>,
}

/// Runs until the VM stops.
pub(crate) fn run(vm: &Vm) {
    let mut watches: Vec<Option<Watch>> = (0..vm.setup.vcpus).map(|_| None).collect();
    while !vm.stop.load(Ordering::Acquire) {
        let mut p = libc::pollfd { fd: vm.stop_event.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd for the call.
        unsafe { libc::poll(&mut p, 1, PERIOD.as_millis() as i32) };
        let now = Instant::now();
        for (id, watch) in (0..vm.setup.vcpus).zip(watches.iter_mut()) {
            let page = vm.shared.vcpu_page(id);
            let pending = page.pending_irq.load(Ordering::SeqCst);
            let seq = page.user_seq.load(Ordering::SeqCst);
            if pending == 0 || seq.is_multiple_of(2) {
                *watch = None;
                continue;
            }
            match watch {
                Some(w) if w.user_seq == seq => {
                    if now.duration_since(w.since) >= LIMIT && guilty(vm, id, w.cpu_ns) {
                        end_space(vm, id);
                        *watch = None;
                    } else if now.duration_since(w.kicked) >= REKICK {
                        super::vcpu::kick(vm, id);
                        w.kicked = now;
                    }
                }
                _ => *watch = Some(Watch { user_seq: seq, since: now, kicked: now, cpu_ns: thread_cpu_ns(vm, id) }),
            }
        }
    }
}

/// The guest thread of `id` ran for [`CPU_LIMIT`] since `cpu0`, or sleeps in the host.
fn guilty(vm: &Vm, id: u32, cpu0: Option<u64>) -> bool {
    let Some((pid, tid)) = thread_of(vm, id) else { return false };
    let sleeping = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next()))
        .is_some_and(|c| c == 'S');
    let ran = match (cpu0, thread_cpu_ns(vm, id)) {
        (Some(a), Some(b)) => b.saturating_sub(a) >= CPU_LIMIT.as_nanos() as u64,
        _ => false,
    };
    sleeping || ran
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
