//! Wait queues: the threads waiting for one object (a pipe's data or room, the OOM victim's
//! death). A blocking syscall registers the calling thread on the object's queue while it
//! holds the object's lock and finds the condition false, then returns `EBLOCK`; whoever
//! changes the object wakes only that queue ([`WaitQueue::wake_all`]).
//!
//! No lost wake-up: a wake-up bumps the thread's `ThreadShared::wakeups`; the scheduler
//! parks a blocking thread only if that count did not change since its syscall started
//! (`crate::sched::block`). A registration made under the object's lock therefore either
//! precedes the waker's change (the waker finds it) or follows it (the thread saw the change).
//!
//! A queue is drained when woken; a thread woken for another reason may stay registered
//! until the object's next wake-up, which then re-runs its syscall once for nothing (a thread
//! is registered at most once per queue).

use crate::proc::ThreadShared;
use crate::sync::Mutex;
use alloc::sync::Arc;
use alloc::vec::Vec;
use guest_abi::MAX_VCPUS;

/// Threads waiting for one object.
pub struct WaitQueue {
    waiters: Mutex<Vec<Arc<ThreadShared>>>,
    /// Wake-ups so far ([`WaitQueue::seq`]).
    seq: core::sync::atomic::AtomicU64,
}

impl Default for WaitQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl WaitQueue {
    /// An empty queue.
    pub const fn new() -> Self {
        WaitQueue { waiters: Mutex::new(Vec::new()), seq: core::sync::atomic::AtomicU64::new(0) }
    }

    /// Registers `t` (once).
    pub fn register(&self, t: &Arc<ThreadShared>) {
        let mut w = self.waiters.lock();
        if !w.iter().any(|x| Arc::ptr_eq(x, t)) {
            w.push(t.clone());
        }
    }

    /// Registers the thread running a syscall on this vCPU, if any (see [`set_current`]).
    pub fn register_current(&self) {
        if let Some(t) = current() {
            self.register(&t);
        }
    }

    /// Wakes and unregisters every waiter; returns how many there were.
    pub fn wake_all(&self) -> usize {
        self.seq.fetch_add(1, core::sync::atomic::Ordering::SeqCst);
        let woken = core::mem::take(&mut *self.waiters.lock());
        for t in &woken {
            crate::sched::wake(t);
        }
        woken.len()
    }

    /// How many times the queue was woken: a change of the object's state (for
    /// `guest_fs::FileOps::poll_seq`, which edge-triggered epoll compares).
    pub fn seq(&self) -> u64 {
        self.seq.load(core::sync::atomic::Ordering::SeqCst)
    }

    /// Whether nobody waits (a hint).
    pub fn is_empty(&self) -> bool {
        self.waiters.lock().is_empty()
    }
}

/// The thread whose syscall each vCPU runs (for objects that register "the caller" from deep
/// inside a file operation, such as a pipe's `read`). Each slot is written only by its vCPU.
static CURRENT: [Mutex<Option<Arc<ThreadShared>>>; MAX_VCPUS as usize] = [const { Mutex::new(None) }; MAX_VCPUS as usize];

/// Records `t` as the thread running on this vCPU (the scheduler, before a syscall).
pub fn set_current(t: &Arc<ThreadShared>) {
    let v = crate::percpu::current() as usize;
    let mut c = CURRENT[v.min(MAX_VCPUS as usize - 1)].lock();
    if !c.as_ref().is_some_and(|x| Arc::ptr_eq(x, t)) {
        *c = Some(t.clone());
    }
}

/// The thread running on this vCPU, if the scheduler recorded one.
pub fn current() -> Option<Arc<ThreadShared>> {
    let v = crate::percpu::current() as usize;
    CURRENT[v.min(MAX_VCPUS as usize - 1)].lock().clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wake_reaches_each_registered_thread_once() {
        let q = WaitQueue::new();
        let a = ThreadShared::new(1, 0);
        let b = ThreadShared::new(2, 0);
        q.register(&a);
        q.register(&a);
        q.register(&b);
        assert_eq!(q.wake_all(), 2, "registered once each");
        assert_eq!(a.wakeups.load(core::sync::atomic::Ordering::Relaxed), 1);
        assert_eq!(b.wakeups.load(core::sync::atomic::Ordering::Relaxed), 1);
        assert!(q.is_empty());
        assert_eq!(q.wake_all(), 0);
    }
}
