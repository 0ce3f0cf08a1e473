//! Futexes (futex(2)): `FUTEX_WAIT`/`FUTEX_WAKE`, their `_BITSET` forms, `FUTEX_REQUEUE`,
//! `FUTEX_CMP_REQUEUE` and `FUTEX_WAKE_OP`, private or not, with timeouts.
//!
//! A waiter registers in [`WAITERS`] under the same lock as it compares the futex word, so a
//! waker that changes the word and then calls `FUTEX_WAKE` either makes the waiter see the
//! new value (`EAGAIN`) or finds it registered (Linux's hash-bucket rule: no lost wake-ups).
//! The thread then blocks with its syscall to re-run (`crate::sched`): a re-run finds its
//! entry and returns 0 once a waker marked it, `ETIMEDOUT` past its deadline, or blocks again.
//! A wake also calls `crate::sched::notify`, so blocked waiters re-check at once.
//!
//! Keys are (address space, user address): futexes shared between processes through shared
//! memory are not supported (this kernel has no shared anonymous or file mappings).

use alloc::vec::Vec;
use spin::Mutex;

/// One registered waiter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Waiter {
    /// Thread id.
    pub tid: i32,
    /// Futex key: (address of the address space's lock, user address).
    pub key: (usize, u64),
    /// `FUTEX_WAIT_BITSET` mask (`u32::MAX` for `FUTEX_WAIT`).
    pub bitset: u32,
    /// A waker chose this waiter: its wait returns 0.
    pub woken: bool,
}

/// Registered waiters, oldest first (wakes go in FIFO order).
pub static WAITERS: Mutex<Vec<Waiter>> = Mutex::new(Vec::new());

/// What a (re-)run of a wait finds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitState {
    /// Not registered: a fresh call.
    Fresh,
    /// Registered and not woken yet.
    Waiting,
    /// Woken (the entry is gone now).
    Woken,
}

/// Looks up `tid`'s registration; a woken entry is removed.
pub fn state(tid: i32) -> WaitState {
    let mut w = WAITERS.lock();
    match w.iter().position(|x| x.tid == tid) {
        None => WaitState::Fresh,
        Some(i) if w[i].woken => {
            w.remove(i);
            WaitState::Woken
        }
        Some(_) => WaitState::Waiting,
    }
}

/// Registers `tid` on `key` if `check()` (the comparison of the futex word, made under the
/// lock) holds. Returns whether it registered.
pub fn register(tid: i32, key: (usize, u64), bitset: u32, check: impl FnOnce() -> bool) -> bool {
    let mut w = WAITERS.lock();
    if !check() {
        return false;
    }
    w.retain(|x| x.tid != tid);
    w.push(Waiter { tid, key, bitset, woken: false });
    true
}

/// Removes `tid`'s registration (timeout, signal, exit).
pub fn cancel(tid: i32) {
    WAITERS.lock().retain(|x| x.tid != tid);
}

/// Marks up to `n` waiters on `key` whose bitset meets `bitset` as woken; returns how many.
pub fn wake(key: (usize, u64), n: u32, bitset: u32) -> u32 {
    let count = {
        let mut w = WAITERS.lock();
        let mut count = 0;
        for x in w.iter_mut() {
            if count >= n {
                break;
            }
            if !x.woken && x.key == key && x.bitset & bitset != 0 {
                x.woken = true;
                count += 1;
            }
        }
        count
    };
    if count > 0 {
        crate::sched::notify();
    }
    count
}

/// Wakes up to `n` waiters on `from` and moves up to `m` more to `to` (`FUTEX_REQUEUE`).
/// Returns the number woken plus the number moved.
pub fn requeue(from: (usize, u64), to: (usize, u64), n: u32, m: u32) -> u32 {
    let woken = wake(from, n, u32::MAX);
    let mut moved = 0;
    let mut w = WAITERS.lock();
    for x in w.iter_mut() {
        if moved >= m {
            break;
        }
        if !x.woken && x.key == from {
            x.key = to;
            moved += 1;
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
        assert_eq!(state(7), WaitState::Fresh);
        assert!(!register(7, k, u32::MAX, || false), "word changed: no registration");
        assert!(register(7, k, u32::MAX, || true));
        assert!(register(8, k, 0b10, || true));
        assert_eq!(state(7), WaitState::Waiting);
        // Bitset 0b01 reaches only thread 7.
        assert_eq!(wake(k, 5, 0b01), 1);
        assert_eq!(state(7), WaitState::Woken);
        assert_eq!(state(7), WaitState::Fresh, "a woken entry is consumed");
        // Requeue thread 8 to another word, then wake it there.
        let k2 = (1usize, 0x2000u64);
        assert_eq!(requeue(k, k2, 0, 1), 1);
        assert_eq!(wake(k, 1, u32::MAX), 0);
        assert_eq!(wake(k2, 1, u32::MAX), 1);
        assert_eq!(state(8), WaitState::Woken);
        assert!(register(9, k, u32::MAX, || true));
        cancel(9);
        assert_eq!(state(9), WaitState::Fresh);
    }
}
