//! `YIELD_TO(vcpu[, lock_va, seen])`: a guest-kernel spin lock that spun past its threshold
//! names the vCPU holding it (paravirtual lock-holder hints, `BootInfo::pv_features` bit
//! `PV_LOCK_HINTS`). H makes the waiter step aside and helps the holder run:
//!
//! - The waiter's K thread already sleeps in its hypercall (futex wait on its vCPU page), and
//!   H's thread for it sleeps too (futex waits of at most [`POLL`]), so the waiter burns no
//!   host CPU: a holder that shares the waiter's CPU (vCPUs outnumber CPUs, round-robin
//!   placement) gets it at once.
//! - A holder placed on another CPU may be preempted there by another vCPU's thread; for the
//!   yield H widens the holder's K thread to the waiter's CPU as well (restored after the last
//!   concurrent yield to it ends), so the idle balancer of the CPU the waiter just freed can
//!   pull it in (`sched_setaffinity`, the holder never runs outside its own and the waiter's
//!   CPU).
//! - The yield ends when the holder made progress, when an interrupt is pending for the
//!   waiter, when the VM stops, or after [`TIMEOUT`] at most. Progress: the lock word changed
//!   (when the optional second and third arguments name it: the guest-kernel virtual address
//!   of a 4-byte-aligned `u32` in the physmap or kernel image, and the value the waiter saw;
//!   the guest kernel may `FUTEX_WAKE` that word on release to end the yield at once), or the
//!   holder's vCPU page shows it started or finished a hypercall or entered or left user
//!   code (`state`, `user_seq`).
//!
//! Everything the guest passes is validated: a vCPU id outside the VM is `-EINVAL`; the
//! waiter naming itself returns 0 at once; a lock address outside guest memory is ignored
//! (the call still works as `YIELD_TO(vcpu)`). A yield costs the waiter at most [`TIMEOUT`]
//! and nobody else anything, so floods of it cannot stall H or other vCPUs.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use guest_abi::layout::{KERNEL_BASE, KERNEL_GPA, PHYSMAP_BASE};

use super::Vm;
use crate::stats::Counter;

/// Longest a yield keeps the waiter aside.
pub(crate) const TIMEOUT: Duration = Duration::from_micros(200);
/// Longest single sleep of a yield, between checks of the holder.
const POLL: Duration = Duration::from_micros(20);

const EINVAL: i64 = 22;

/// How yields ended (for `--stats`).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct YieldCounters {
    /// Yields that ended because the holder made progress (time aside, ns).
    pub(crate) progressed: Counter,
    /// Yields that ended at [`TIMEOUT`].
    pub(crate) timed_out: Counter,
    /// Yields for which the holder's K thread was widened to the waiter's CPU.
    pub(crate) boosted: u64,
}

/// What shows the holder's progress, read before and during the yield.
fn holder_mark(vm: &Vm, holder: u32) -> (u32, u32) {
    let page = vm.shared.vcpu_page(holder);
    (page.state.load(Ordering::Acquire), page.user_seq.load(Ordering::Acquire))
}

/// The lock word at guest-kernel virtual address `va` as an atomic in H's mapping of guest
/// RAM (physmap or kernel image, 4-byte aligned, inside guest memory), if it is one.
fn lock_word(vm: &Vm, va: u64) -> Option<&AtomicU32> {
    if va == 0 || !va.is_multiple_of(4) {
        return None;
    }
    let gpa = if va >= KERNEL_BASE { va - KERNEL_BASE + KERNEL_GPA } else { va.checked_sub(PHYSMAP_BASE)? };
    vm.setup.memory.atomic_u32(gpa)
}

/// Serves `YIELD_TO` for vCPU `id`: `[holder, lock_va, seen]`.
pub(crate) fn serve(vm: &Vm, id: u32, [holder, lock_va, seen]: [u64; 3], counters: &mut YieldCounters) -> i64 {
    let Ok(holder) = u32::try_from(holder) else { return -EINVAL };
    if holder >= vm.setup.vcpus {
        return -EINVAL;
    }
    if holder == id {
        return 0;
    }
    let t0 = Instant::now();
    let word = lock_word(vm, lock_va);
    let seen = seen as u32;
    let mark = holder_mark(vm, holder);
    let boost = vm.cpus.apart(id, holder).then(|| Boost::start(vm, holder, id));
    counters.boosted += u64::from(boost.is_some());
    let own = vm.shared.vcpu_page(id);
    let progressed = loop {
        if word.is_some_and(|w| w.load(Ordering::Acquire) != seen) || holder_mark(vm, holder) != mark {
            break true;
        }
        let left = TIMEOUT.saturating_sub(t0.elapsed());
        if left.is_zero() || vm.stop.load(Ordering::Acquire) || own.pending_irq.load(Ordering::Acquire) != 0 {
            break false;
        }
        let slice = left.min(POLL);
        // Sleep on the lock word (a guest FUTEX_WAKE on release ends it) or on our own
        // interrupt word (H's `raise` wakes it); both return at `slice` otherwise.
        let _ = match word {
            Some(w) => switcher::futex::wait(w, seen, Some(slice)),
            None => switcher::futex::wait(&own.pending_irq, 0, Some(slice)),
        };
    };
    drop(boost);
    let ns = t0.elapsed().as_nanos() as u64;
    if progressed { counters.progressed.add(ns) } else { counters.timed_out.add(ns) }
    0
}

/// The holder's K thread allowed on the waiter's CPU too, while at least one yield to it
/// lasts (`Vm::boosts` counts them per holder).
struct Boost<'a> {
    vm: &'a Vm,
    holder: u32,
}

impl<'a> Boost<'a> {
    fn start(vm: &'a Vm, holder: u32, waiter: u32) -> Self {
        let mut n = vm.boosts[holder as usize].lock();
        *n += 1;
        if *n == 1
            && let (Some(&tid), Some(home), Some(extra)) =
                (vm.k_tids.get(holder as usize), vm.cpus.of(holder), vm.cpus.of(waiter))
        {
            super::placement::Cpus::place_on(tid, &[home, extra]);
        }
        Self { vm, holder }
    }
}

impl Drop for Boost<'_> {
    fn drop(&mut self) {
        let mut n = self.vm.boosts[self.holder as usize].lock();
        *n = n.saturating_sub(1);
        if *n == 0
            && let Some(&tid) = self.vm.k_tids.get(self.holder as usize)
        {
            self.vm.cpus.place(tid, self.holder);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{GuestRam, Placement, VmSetup};
    use parking_lot::Mutex;
    use std::sync::atomic::AtomicBool;

    const LOCK_GPA: u64 = 0x20_0000;

    fn vm(vcpus: u32) -> Vm {
        let setup = VmSetup {
            memory: GuestRam::new(16 << 20).expect("guest RAM"),
            kernel_segments: Vec::new(),
            kernel_entry: 0,
            vcpus,
            placement: Placement::Unpinned,
            verbose: false,
        };
        Vm {
            spaces: super::super::Spaces::new(vcpus, super::super::placement::Cpus::default()),
            shared: switcher::SharedMemory::create().expect("shared memory"),
            console: crate::devices::Console::new(),
            stop: AtomicBool::new(false),
            reason: Mutex::new(None),
            vma_budget: 1000,
            stop_event: super::super::eventfd().expect("eventfd"),
            k_tids: Vec::new(),
            boosts: (0..vcpus).map(|_| Mutex::new(0)).collect(),
            cpus: super::super::placement::Cpus::default(),
            setup,
        }
    }

    #[test]
    fn bogus_holders_are_refused_and_self_returns_at_once() {
        let vm = vm(2);
        let mut c = YieldCounters::default();
        for bad in [2, 3, u64::from(u32::MAX), u64::MAX, 1 << 32] {
            assert_eq!(serve(&vm, 0, [bad, 0, 0], &mut c), -EINVAL, "holder {bad}");
        }
        assert_eq!(serve(&vm, 1, [1, 0, 0], &mut c), 0);
        assert_eq!(c.progressed.count + c.timed_out.count, 0, "nothing waited");
    }

    #[test]
    fn a_released_lock_ends_the_yield_and_a_held_one_times_out() {
        let vm = vm(2);
        let va = PHYSMAP_BASE + LOCK_GPA;
        let word = lock_word(&vm, va).expect("lock word in RAM");
        word.store(7, Ordering::Release);
        let mut c = YieldCounters::default();
        // The waiter saw 5; the word is 7 now: the holder already released it.
        assert_eq!(serve(&vm, 0, [1, va, 5], &mut c), 0);
        assert_eq!((c.progressed.count, c.timed_out.count), (1, 0));
        // Still 7 and the holder does nothing: the yield ends at its bound.
        assert_eq!(serve(&vm, 0, [1, va, 7], &mut c), 0);
        assert_eq!((c.progressed.count, c.timed_out.count), (1, 1));
        assert!(c.timed_out.total_ns >= TIMEOUT.as_nanos() as u64);
    }

    #[test]
    fn lock_addresses_outside_guest_memory_are_ignored() {
        let vm = vm(2);
        for va in [1, 0x1000, PHYSMAP_BASE + 2, PHYSMAP_BASE + (16 << 20), KERNEL_BASE - 4, u64::MAX - 3] {
            assert!(lock_word(&vm, va).is_none(), "{va:#x}");
        }
        let mut c = YieldCounters::default();
        assert_eq!(serve(&vm, 0, [1, u64::MAX - 3, 0], &mut c), 0, "works as YIELD_TO(vcpu)");
        assert_eq!(c.timed_out.count, 1);
    }

    #[test]
    fn a_pending_interrupt_or_a_stopped_vm_ends_a_yield_early() {
        let vm = vm(2);
        let mut c = YieldCounters::default();
        vm.shared.vcpu_page(0).pending_irq.store(1, Ordering::Release);
        assert_eq!(serve(&vm, 0, [1, 0, 0], &mut c), 0);
        vm.shared.vcpu_page(0).pending_irq.store(0, Ordering::Release);
        vm.stop.store(true, Ordering::Release);
        assert_eq!(serve(&vm, 0, [1, 0, 0], &mut c), 0);
        assert_eq!(c.timed_out.count, 2);
    }

    #[test]
    fn a_flood_of_yields_always_returns() {
        let vm = std::sync::Arc::new(vm(3));
        let waiters: Vec<_> = (0..2u32)
            .map(|id| {
                let vm = vm.clone();
                std::thread::spawn(move || {
                    let mut c = YieldCounters::default();
                    for i in 0..50u64 {
                        // Each names the other waiter or the idle vCPU 2, sometimes with junk.
                        let holder = if i % 2 == 0 { 2 } else { u64::from(1 - id) };
                        assert_eq!(serve(&vm, id, [holder, i * 0x1234_5678, i], &mut c), 0);
                    }
                    c
                })
            })
            .collect();
        for w in waiters {
            let c = w.join().expect("waiter");
            assert_eq!(c.progressed.count + c.timed_out.count, 50);
        }
        assert!(vm.boosts.iter().all(|b| *b.lock() == 0), "no boost left behind");
    }
}
