//! The OOM killer: what happens when a user page cannot be allocated because guest memory
//! (outside the kernel reserve, `crate::mm::frame::Class`) is exhausted.
//!
//! Policy (Linux's `mm/oom_kill.c`, simplified): the victim is the live process with the
//! largest resident set; the first process (the guest's init) only when no other process
//! holds user memory. Every process sharing the victim's address space (a `vfork` parent and
//! child) dies with it, by `SIGKILL`, so its parent sees "killed by signal 9" and pvm exits
//! 137 when init is the victim. One victim at a time: until the victim's address space is
//! gone (its frames are back in the allocator), a failed allocation does not pick another
//! victim; the faulting thread waits for that event and retries its fault. A faulting thread
//! whose own address space is the victim's dies at once.

use crate::proc::{ExitReason, Mm, Process, Thread, PROCESSES};
use crate::signal::SIGKILL;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use crate::sync::Mutex;

/// Threads waiting for the victim's memory to come back (woken by every process exit).
pub static VICTIM_GONE: crate::waitq::WaitQueue = crate::waitq::WaitQueue::new();

/// What the thread whose allocation failed does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Its process is (part of) the victim: it exits, killed by `SIGKILL`.
    KillCurrent,
    /// Another victim is dying: wait for a process to exit (`VICTIM_GONE`), then retry.
    Wait,
}

/// The address space of the last victim: while it has strong references its memory has not
/// come back yet.
static VICTIM: Mutex<Option<Weak<Mm>>> = Mutex::new(None);

/// A candidate: (process, its address space, resident pages).
type Candidate = (Arc<Process>, Arc<Mm>, u64);

/// Picks the victim among `candidates` (resident pages): the largest resident set, the first
/// process only when nothing else holds user memory. Returns its index. Pure, for tests.
pub fn choose(candidates: &[(i32, u64)], init: i32) -> Option<usize> {
    let best = |skip_init: bool| {
        candidates
            .iter()
            .enumerate()
            .filter(|(_, c)| !(skip_init && c.0 == init) && c.1 > 0)
            .max_by_key(|(_, c)| (c.1, core::cmp::Reverse(c.0)))
            .map(|(i, _)| i)
    };
    best(true).or_else(|| best(false))
}

/// The live processes with an address space and their resident pages.
fn candidates() -> Vec<Candidate> {
    let procs: Vec<Arc<Process>> = PROCESSES.read().values().filter(|p| !p.is_zombie()).cloned().collect();
    procs
        .into_iter()
        .filter_map(|p| {
            let mm = p.mm()?;
            let rss = mm.lock().resident;
            Some((p, mm, rss))
        })
        .collect()
}

/// Guest memory ran out for a user allocation of thread `t` (which holds no address-space
/// lock). Kills a victim unless one is still dying and says what `t` does next.
pub fn out_of_memory(t: &Thread) -> Verdict {
    let mut victim = VICTIM.lock();
    if let Some(alive) = victim.as_ref().and_then(Weak::upgrade) {
        // Still dying: its memory is on the way back.
        return if Arc::ptr_eq(&alive, &t.mm) { Verdict::KillCurrent } else { Verdict::Wait };
    }
    let all = candidates();
    let keys: Vec<(i32, u64)> = all.iter().map(|c| (c.0.pid, c.2)).collect();
    let Some(i) = choose(&keys, crate::boot::init_pid()) else {
        *victim = Some(Arc::downgrade(&t.mm));
        report(&t.proc, t.mm.lock().resident);
        return Verdict::KillCurrent;
    };
    let (chosen, mm, rss) = &all[i];
    report(chosen, *rss);
    *victim = Some(Arc::downgrade(mm));
    drop(victim);
    let mut current_dies = Arc::ptr_eq(mm, &t.mm);
    for (p, m, _) in &all {
        if !Arc::ptr_eq(m, mm) {
            continue;
        }
        if p.pid == t.proc.pid {
            current_dies = true;
            continue;
        }
        kill(p);
        crate::proc::wake_all_threads(p);
    }
    crate::sched::kick_others();
    if current_dies { Verdict::KillCurrent } else { Verdict::Wait }
}

/// Ends every thread of `p` with `SIGKILL` at its next scheduling point (blocked ones,
/// `vfork` parents included, are woken by the caller's `notify`; running ones interrupted).
fn kill(p: &Process) {
    let mut g = p.group_exit.lock();
    if g.is_none() {
        *g = Some(ExitReason::Signaled(SIGKILL));
    }
}

/// Logs the kill (error level: pvm shows it without `--verbose`).
fn report(p: &Process, resident: u64) {
    let comm = p.comm();
    crate::klog!(
        crate::log::ERROR,
        "out of memory: killed process {} ({}), {} KiB resident",
        p.pid,
        alloc::string::String::from_utf8_lossy(&comm),
        resident * (crate::mm::PAGE_SIZE >> 10)
    );
}

#[cfg(test)]
mod tests {
    use super::choose;

    #[test]
    fn largest_resident_set_other_than_init() {
        assert_eq!(choose(&[(1, 500), (2, 100), (3, 300)], 1), Some(2), "pid 3, not init");
        assert_eq!(choose(&[(1, 500), (2, 0)], 1), Some(0), "init when nothing else holds memory");
        assert_eq!(choose(&[(1, 5), (7, 9), (4, 9)], 1), Some(2), "ties: the lower pid");
        assert_eq!(choose(&[], 1), None);
        assert_eq!(choose(&[(1, 0)], 1), None);
    }
}
