//! The doorbell words of the hostfs config page ([`guest_abi::hostfs::QueueDoorbell`]) and
//! shared futex waits and wakes on them (futex(2): the words live in the guest-memory memfd,
//! mapped by the guest kernel, F and H in different processes, so the futexes are shared, not
//! `FUTEX_PRIVATE_FLAG`).
//!
//! Writers (guest-abi/src/hostfs.rs): `kick` the guest, `done` F, `broken` H. F only ever
//! reads `kick` as a hint to look at the available ring; it never trusts it for more.

use std::mem::offset_of;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use guest_abi::hostfs::{HostfsConfig, MAX_HOSTFS_MOUNTS, QueueDoorbell};

/// One of the three words of a queue's doorbell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Word {
    /// [`QueueDoorbell::kick`] (guest).
    Kick,
    /// [`QueueDoorbell::done`] (F).
    Done,
    /// [`QueueDoorbell::broken`] (H).
    Broken,
}

/// The doorbells of one hostfs config page, borrowed from a mapping that outlives `'a`.
#[derive(Clone, Copy)]
pub struct Doorbells<'a> {
    page: &'a [AtomicU32; 1024],
}

impl<'a> Doorbells<'a> {
    /// Borrows the doorbells of the config page at `page`.
    ///
    /// # Safety
    /// `page` must point to 4096 bytes, 4-byte aligned, of a shared mapping that stays mapped
    /// for `'a` (other processes may write it at any time: every access here is atomic).
    pub unsafe fn new(page: *mut u8) -> Self {
        // SAFETY: the caller guarantees a live, aligned 4 KiB mapping; AtomicU32 has the size
        // and alignment of u32 and any bit pattern is valid.
        Self { page: unsafe { &*page.cast::<[AtomicU32; 1024]>() } }
    }

    /// The word `w` of queue `queue` (`queue < MAX_HOSTFS_MOUNTS`, else `None`).
    pub fn word(&self, queue: u32, w: Word) -> Option<&'a AtomicU32> {
        if queue as usize >= MAX_HOSTFS_MOUNTS {
            return None;
        }
        let field = match w {
            Word::Kick => offset_of!(QueueDoorbell, kick),
            Word::Done => offset_of!(QueueDoorbell, done),
            Word::Broken => offset_of!(QueueDoorbell, broken),
        };
        let off = offset_of!(HostfsConfig, doorbells) + queue as usize * size_of::<QueueDoorbell>() + field;
        self.page.get(off / 4)
    }

    /// H's part when F is gone: `broken = 1` on every queue, then wake `kick` and `done` so
    /// that nobody keeps waiting for F.
    pub fn mark_all_broken(&self) {
        for q in 0..MAX_HOSTFS_MOUNTS as u32 {
            if let Some(b) = self.word(q, Word::Broken) {
                b.store(1, Ordering::SeqCst);
            }
            for w in [Word::Kick, Word::Done] {
                if let Some(word) = self.word(q, w) {
                    futex_wake(word);
                }
            }
        }
    }
}

/// `FUTEX_WAIT` (shared) on `word` while it holds `expected`, at most `timeout` (`None`:
/// forever). Returns when woken, on a value change, a timeout or a signal; callers re-check.
pub fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    let ts = timeout.map(|t| libc::timespec {
        tv_sec: t.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: t.subsec_nanos() as libc::c_long,
    });
    let ts_ptr = ts.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `word` is a live, aligned u32; the timeout pointer is null or points to `ts`,
    // which lives across the call. The result is only a hint (EAGAIN, ETIMEDOUT, EINTR).
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAIT, expected, ts_ptr, 0usize, 0u32);
    }
}

/// `FUTEX_WAKE` (shared) of every waiter on `word`.
pub fn futex_wake(word: &AtomicU32) {
    // SAFETY: `word` is a live, aligned u32; FUTEX_WAKE only reads the address.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, i32::MAX, 0usize, 0usize, 0u32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_where_the_abi_says() {
        let mut page = vec![0u32; 1024];
        // SAFETY: a live, aligned 4 KiB buffer for the test's duration.
        let d = unsafe { Doorbells::new(page.as_mut_ptr().cast()) };
        d.word(2, Word::Done).expect("in range").store(7, Ordering::SeqCst);
        d.mark_all_broken();
        assert!(d.word(MAX_HOSTFS_MOUNTS as u32, Word::Kick).is_none());
        // SAFETY: the buffer is a HostfsConfig's first 4 KiB (its size is asserted <= 4096).
        let cfg = unsafe { &*page.as_ptr().cast::<HostfsConfig>() };
        assert_eq!(cfg.doorbells[2].done, 7);
        assert!(cfg.doorbells.iter().all(|d| d.broken == 1 && d.kick == 0));
    }
}
