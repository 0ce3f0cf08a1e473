//! `eventfd(2)` objects: a 64-bit counter that `write` adds to and `read` takes (all of it,
//! or 1 with `EFD_SEMAPHORE`). Reading 0 or overflowing past `u64::MAX - 1` is `EAGAIN`
//! (block or fail per `O_NONBLOCK`); waiters and pollers wait on the eventfd's queue.

use crate::sync::Mutex;
use crate::waitq::WaitQueue;
use alloc::sync::Arc;
use guest_fs::{Errno, FileOps, OpenFile, Stat};

/// `EFD_SEMAPHORE`.
pub const EFD_SEMAPHORE: u32 = 1;
/// `EFD_NONBLOCK` (= `O_NONBLOCK`).
pub const EFD_NONBLOCK: u32 = 0o4000;
/// `EFD_CLOEXEC` (= `O_CLOEXEC`).
pub const EFD_CLOEXEC: u32 = 0o2_000_000;

/// The counter, with event counts for edge-triggered epoll: (value, in_seq, out_seq).
struct State {
    count: u64,
    in_seq: u64,
    out_seq: u64,
}

/// One eventfd.
pub struct EventFd {
    st: Mutex<State>,
    semaphore: bool,
    wq: WaitQueue,
}

static NEXT_INO: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(1);

/// Makes an eventfd description with counter `init` and `EFD_*` `flags` (checked by the
/// caller).
pub fn new(init: u32, flags: u32) -> Arc<OpenFile> {
    let e = EventFd {
        st: Mutex::new(State { count: u64::from(init), in_seq: 0, out_seq: 0 }),
        semaphore: flags & EFD_SEMAPHORE != 0,
        wq: WaitQueue::new(),
    };
    OpenFile::new_custom(Arc::new(e), 2 | (flags & EFD_NONBLOCK))
}

impl FileOps for EventFd {
    /// `eventfd_read`: an 8-byte buffer at least (`EINVAL`).
    fn read(&self, buf: &mut [u8], _flags: u32) -> Result<usize, Errno> {
        if buf.len() < 8 {
            return Err(Errno::EINVAL);
        }
        let mut s = self.st.lock();
        if s.count == 0 {
            self.wq.register_current();
            return Err(Errno::EAGAIN);
        }
        let v = if self.semaphore { 1 } else { s.count };
        s.count -= v;
        s.out_seq += 1;
        drop(s);
        self.wq.wake_all();
        buf[..8].copy_from_slice(&v.to_le_bytes());
        Ok(8)
    }

    /// `eventfd_write`: `u64::MAX` is `EINVAL`; a sum past `u64::MAX - 1` waits.
    fn write(&self, buf: &[u8], _flags: u32) -> Result<usize, Errno> {
        if buf.len() < 8 {
            return Err(Errno::EINVAL);
        }
        let mut w = [0u8; 8];
        w.copy_from_slice(&buf[..8]);
        let v = u64::from_le_bytes(w);
        if v == u64::MAX {
            return Err(Errno::EINVAL);
        }
        let mut s = self.st.lock();
        if u64::MAX - 1 - s.count < v {
            self.wq.register_current();
            return Err(Errno::EAGAIN);
        }
        s.count += v;
        s.in_seq += 1;
        drop(s);
        self.wq.wake_all();
        Ok(8)
    }

    fn stat(&self) -> Stat {
        Stat { st_dev: 0xe, st_ino: NEXT_INO.load(core::sync::atomic::Ordering::Relaxed), st_nlink: 1, st_mode: 0o600, st_blksize: 4096, ..Stat::default() }
    }

    fn poll(&self, events: u32) -> u32 {
        let s = self.st.lock();
        let mut r = 0;
        if s.count > 0 {
            r |= 0x1 | 0x40;
        }
        if s.count < u64::MAX - 1 {
            r |= 0x4 | 0x100;
        }
        let r = r & (events | 0x18);
        if r == 0 {
            self.wq.register_current();
        }
        r
    }

    fn poll_seq(&self, events: u32) -> u64 {
        let s = self.st.lock();
        (if events & 0x1 != 0 { s.in_seq } else { 0 }).wrapping_add(if events & 0x4 != 0 { s.out_seq } else { 0 })
    }
}
