//! Futexes (futex(2)): `FUTEX_WAIT`/`FUTEX_WAKE`, their `_BITSET` forms, `FUTEX_REQUEUE`,
//! `FUTEX_CMP_REQUEUE` and `FUTEX_WAKE_OP`, private or not, with timeouts.
//!
//! Waiters live in a hash of [`BUCKETS`] buckets, each with its own lock (Linux's
//! `futex_hash_bucket`). A waiter registers in its key's bucket under the same lock as it
//! compares the futex word, so a waker that changes the word and then calls `FUTEX_WAKE`
//! either makes the waiter see the new value (`EAGAIN`) or finds it registered (no lost
//! wake-ups). The thread then blocks with its syscall to re-run (`crate::sched`); a wake marks
//! it woken (`ThreadShared::futex_state`) and wakes just that thread, whose re-run returns 0.
//! A re-run past its deadline returns `ETIMEDOUT`.
//!
//! Keys are (address space, user address): futexes shared between processes through shared
//! memory are not supported (this kernel has no shared anonymous or file mappings).

use crate::proc::ThreadShared;
use crate::sync::Mutex;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

/// Number of hash buckets.
pub const BUCKETS: usize = 64;

const NONE: u32 = 0;
const WAITING: u32 = 1;
const WOKEN: u32 = 2;

/// A futex key: (address of the address space's lock, user address).
pub type Key = (usize, u64);

/// One registered waiter.
struct Waiter {
    t: Arc<ThreadShared>,
    key: Key,
    /// `FUTEX_WAIT_BITSET` mask (`u32::MAX` for `FUTEX_WAIT`).
    bitset: u32,
}

/// The buckets; waiters oldest first within one (wakes go in FIFO order).
static TABLE: [Mutex<Vec<Waiter>>; BUCKETS] = [const { Mutex::new(Vec::new()) }; BUCKETS];

fn bucket(key: Key) -> usize {
    let h = (key.0 as u64 ^ (key.1 >> 2)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (h >> 58) as usize % BUCKETS
}

/// What a (re-)run of a wait finds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitState {
    /// Not registered: a fresh call.
    Fresh,
    /// Registered and not woken yet.
    Waiting,
    /// Woken (the registration is consumed now).
    Woken,
}

/// Looks up `t`'s registration; a woken one is consumed.
pub fn state(t: &ThreadShared) -> WaitState {
    match t.futex_state.load(Ordering::Acquire) {
        WAITING => WaitState::Waiting,
        WOKEN => {
            t.futex_state.store(NONE, Ordering::Relaxed);
            WaitState::Woken
        }
        _ => WaitState::Fresh,
    }
}

/// Registers `t` on `key` if `check()` (the comparison of the futex word, made under the
/// bucket lock) holds. Returns whether it registered.
pub fn register(t: &Arc<ThreadShared>, key: Key, bitset: u32, check: impl FnOnce() -> bool) -> bool {
    cancel(t);
    let b = bucket(key);
    let mut w = TABLE[b].lock();
    if !check() {
        return false;
    }
    t.futex_bucket.store(b as u32, Ordering::Relaxed);
    t.futex_state.store(WAITING, Ordering::Release);
    w.push(Waiter { t: t.clone(), key, bitset });
    true
}

/// Removes `t`'s registration (timeout, signal, exit); a woken state is dropped too.
pub fn cancel(t: &ThreadShared) {
    loop {
        if t.futex_state.load(Ordering::Acquire) != WAITING {
            t.futex_state.store(NONE, Ordering::Relaxed);
            return;
        }
        let b = t.futex_bucket.load(Ordering::Relaxed) as usize % BUCKETS;
        let mut w = TABLE[b].lock();
        // A requeue may have moved the entry to another bucket meanwhile (it updates the
        // bucket index holding both locks): look again there.
        if t.futex_bucket.load(Ordering::Relaxed) as usize % BUCKETS != b && t.futex_state.load(Ordering::Acquire) == WAITING {
            continue;
        }
        w.retain(|x| !core::ptr::eq(&*x.t, t));
        t.futex_state.store(NONE, Ordering::Relaxed);
        return;
    }
}

/// Marks up to `n` waiters on `key` whose bitset meets `bitset` as woken and wakes them;
/// returns how many.
pub fn wake(key: Key, n: u32, bitset: u32) -> u32 {
    let mut woken: Vec<Arc<ThreadShared>> = Vec::new();
    {
        let mut w = TABLE[bucket(key)].lock();
        let mut i = 0;
        while i < w.len() && woken.len() < n as usize {
            if w[i].key == key && w[i].bitset & bitset != 0 {
                let x = w.remove(i);
                x.t.futex_state.store(WOKEN, Ordering::Release);
                woken.push(x.t);
            } else {
                i += 1;
            }
        }
    }
    for t in &woken {
        crate::sched::wake(t);
    }
    woken.len() as u32
}

/// Wakes up to `n` waiters on `from` and moves up to `m` more to `to` (`FUTEX_REQUEUE`).
/// Returns the number woken plus the number moved.
pub fn requeue(from: Key, to: Key, n: u32, m: u32) -> u32 {
    let woken = wake(from, n, u32::MAX);
    let (bf, bt) = (bucket(from), bucket(to));
    let mut moved = 0;
    if bf == bt {
        let mut w = TABLE[bf].lock();
        for x in w.iter_mut().filter(|x| x.key == from).take(m as usize) {
            x.key = to;
            moved += 1;
        }
        return woken + moved;
    }
    // Both locks, lower bucket first (the one lock order among buckets).
    let (lo, hi) = (bf.min(bt), bf.max(bt));
    let mut a = TABLE[lo].lock();
    let mut b = TABLE[hi].lock();
    let (src, dst) = if bf == lo { (&mut *a, &mut *b) } else { (&mut *b, &mut *a) };
    let mut i = 0;
    while i < src.len() && moved < m {
        if src[i].key == from {
            let mut x = src.remove(i);
            x.key = to;
            x.t.futex_bucket.store(bt as u32, Ordering::Relaxed);
            dst.push(x);
            moved += 1;
        } else {
            i += 1;
        }
    }
    woken + moved
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_wake_protocol() {
        let k = (1usize, 0x1000u64);
        let t7 = ThreadShared::new(7, 0);
        let t8 = ThreadShared::new(8, 0);
        let t9 = ThreadShared::new(9, 0);
        assert_eq!(state(&t7), WaitState::Fresh);
        assert!(!register(&t7, k, u32::MAX, || false), "word changed: no registration");
        assert!(register(&t7, k, u32::MAX, || true));
        assert!(register(&t8, k, 0b10, || true));
        assert_eq!(state(&t7), WaitState::Waiting);
        // Bitset 0b01 reaches only thread 7.
        assert_eq!(wake(k, 5, 0b01), 1);
        assert_eq!(t7.wakeups.load(Ordering::Relaxed), 1, "the woken thread itself is woken");
        assert_eq!(state(&t7), WaitState::Woken);
        assert_eq!(state(&t7), WaitState::Fresh, "a woken entry is consumed");
        // Requeue thread 8 to another word (in whatever bucket), then wake it there.
        for k2 in [(1usize, 0x2000u64), (1usize, 0x1000u64 + 4 * 4096)] {
            assert_eq!(requeue(k, k2, 0, 1), 1);
            assert_eq!(wake(k, 1, u32::MAX), 0);
            assert_eq!(wake(k2, 1, u32::MAX), 1);
            assert_eq!(state(&t8), WaitState::Woken);
            assert!(register(&t8, k, 0b10, || true));
        }
        cancel(&t8);
        assert!(register(&t9, k, u32::MAX, || true));
        cancel(&t9);
        assert_eq!(state(&t9), WaitState::Fresh);
        assert_eq!(wake(k, 9, u32::MAX), 0, "cancelled waiters are gone");
    }

    #[test]
    fn cancel_follows_a_requeued_entry() {
        let a = (2usize, 0x40u64);
        let b = (2usize, 0x40u64 + 0x1_0000);
        let t = ThreadShared::new(3, 0);
        assert!(register(&t, a, u32::MAX, || true));
        assert_eq!(requeue(a, b, 0, 1), 1);
        cancel(&t);
        assert_eq!(wake(b, 1, u32::MAX), 0);
    }
}
