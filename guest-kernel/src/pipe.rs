//! Pipes (`pipe2(2)`): a bounded byte ring shared by a read end and a write end, each a
//! `guest_fs::FileOps` object. Reading an empty pipe with writers left returns `EAGAIN`
//! (the syscall layer blocks or fails per `O_NONBLOCK`); with no writers left, end of file.
//! Writing with no readers left is `EPIPE`. A reader that finds no data, or a poller that
//! finds the end not ready, registers on the pipe's wait queue under the pipe's lock
//! (`crate::waitq`); writes, reads and closes wake only that queue.

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use guest_fs::{Errno, FileOps, OpenFile, Stat};
use crate::sync::Mutex;
use crate::waitq::WaitQueue;

/// Pipe capacity, bytes (Linux default: 16 pages).
pub const PIPE_BUF_SIZE: usize = 65536;

struct Shared {
    buf: VecDeque<u8>,
    readers: usize,
    writers: usize,
    ino: u64,
    /// Events for readers so far (writes, writer closes) and for writers (reads, reader
    /// closes): `FileOps::poll_seq` for edge-triggered epoll.
    in_seq: u64,
    out_seq: u64,
}

/// A pipe: its state and who waits for it (readers and pollers for data or hang-up,
/// writers for room). Lock order: `state` before the queues' own locks.
struct Pipe {
    state: Mutex<Shared>,
    waiters: WaitQueue,
}

impl Pipe {
    fn lock(&self) -> crate::sync::SpinGuard<'_, Shared> {
        self.state.lock()
    }
}

/// The read end.
pub struct ReadEnd(Arc<Pipe>);
/// The write end.
pub struct WriteEnd(Arc<Pipe>);

static NEXT_INO: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(1);

fn pipe_stat(ino: u64, size: usize) -> Stat {
    Stat { st_dev: 0xd, st_ino: ino, st_nlink: 1, st_mode: 0o010_600, st_size: size as i64, st_blksize: 4096, ..Stat::default() }
}

/// Creates a pipe; returns (read end, write end) descriptions with status `flags`.
pub fn new_pair(flags: u32) -> (Arc<OpenFile>, Arc<OpenFile>) {
    let ino = NEXT_INO.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
    let sh = Arc::new(Pipe { state: Mutex::new(Shared { buf: VecDeque::new(), readers: 1, writers: 1, ino, in_seq: 0, out_seq: 0 }), waiters: WaitQueue::new() });
    let status = flags & 0o4000; // O_NONBLOCK
    (
        OpenFile::new_custom(Arc::new(ReadEnd(sh.clone())), status),
        OpenFile::new_custom(Arc::new(WriteEnd(sh)), status | 1),
    )
}

impl Drop for ReadEnd {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        s.readers -= 1;
        s.out_seq += 1;
        drop(s);
        self.0.waiters.wake_all();
    }
}

impl Drop for WriteEnd {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        s.writers -= 1;
        s.in_seq += 1;
        drop(s);
        self.0.waiters.wake_all();
    }
}

impl FileOps for ReadEnd {
    fn read(&self, buf: &mut [u8], _flags: u32) -> Result<usize, Errno> {
        let mut s = self.0.lock();
        if s.buf.is_empty() {
            if s.writers == 0 || buf.is_empty() {
                return Ok(0);
            }
            self.0.waiters.register_current();
            return Err(Errno::EAGAIN);
        }
        let n = buf.len().min(s.buf.len());
        let (a, b) = s.buf.as_slices();
        let k = n.min(a.len());
        buf[..k].copy_from_slice(&a[..k]);
        buf[k..n].copy_from_slice(&b[..n - k]);
        s.buf.drain(..n);
        s.out_seq += 1;
        drop(s);
        self.0.waiters.wake_all();
        Ok(n)
    }
    fn write(&self, _buf: &[u8], _flags: u32) -> Result<usize, Errno> {
        Err(Errno::EBADF)
    }
    fn stat(&self) -> Stat {
        let s = self.0.lock();
        pipe_stat(s.ino, s.buf.len())
    }
    fn poll(&self, events: u32) -> u32 {
        let s = self.0.lock();
        let mut r = 0;
        if !s.buf.is_empty() {
            r |= 0x1;
        }
        if s.writers == 0 {
            r |= 0x10; // POLLHUP
        }
        if r & (events | 0x18) == 0 {
            self.0.waiters.register_current();
        }
        r & (events | 0x18)
    }
    fn poll_seq(&self, _events: u32) -> u64 {
        self.0.lock().in_seq
    }
}

impl FileOps for WriteEnd {
    fn write(&self, buf: &[u8], _flags: u32) -> Result<usize, Errno> {
        let mut s = self.0.lock();
        if s.readers == 0 {
            return Err(Errno::EPIPE);
        }
        let room = PIPE_BUF_SIZE - s.buf.len();
        if room == 0 && !buf.is_empty() {
            self.0.waiters.register_current();
            return Err(Errno::EAGAIN);
        }
        let n = room.min(buf.len());
        // The buffer lives in the kernel heap: it grows only outside the kernel reserve
        // (Linux's pipe_write fails with ENOMEM when it cannot get a page).
        let spare = s.buf.capacity() - s.buf.len();
        if n > spare && (!crate::heap::user_may_grow((n - spare) as u64) || s.buf.try_reserve(n).is_err()) {
            return Err(Errno::ENOMEM);
        }
        s.buf.extend(&buf[..n]);
        s.in_seq += u64::from(n > 0);
        drop(s);
        if n > 0 {
            self.0.waiters.wake_all();
        }
        Ok(n)
    }
    fn stat(&self) -> Stat {
        let s = self.0.lock();
        pipe_stat(s.ino, s.buf.len())
    }
    fn poll(&self, events: u32) -> u32 {
        let s = self.0.lock();
        let mut r = 0;
        if s.buf.len() < PIPE_BUF_SIZE {
            r |= 0x4;
        }
        if s.readers == 0 {
            r |= 0x8; // POLLERR
        }
        if r & (events | 0x18) == 0 {
            self.0.waiters.register_current();
        }
        r & (events | 0x18)
    }
    fn poll_seq(&self, _events: u32) -> u64 {
        self.0.lock().out_seq
    }
}

/// The pipe behind a named pipe (`fifo(7)`): every open of the FIFO attaches a new end to
/// it (`crate::fifo` keeps one per FIFO inode). Data left when the last end closes is
/// discarded at the next open, as Linux frees the pipe.
pub struct Named(Arc<Pipe>);

impl Default for Named {
    fn default() -> Self {
        let ino = NEXT_INO.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
        Self(Arc::new(Pipe {
            state: Mutex::new(Shared { buf: VecDeque::new(), readers: 0, writers: 0, ino, in_seq: 0, out_seq: 0 }),
            waiters: WaitQueue::new(),
        }))
    }
}

/// Both ends at once: a FIFO opened `O_RDWR`.
struct BothEnds(ReadEnd, WriteEnd);

impl FileOps for BothEnds {
    fn read(&self, buf: &mut [u8], flags: u32) -> Result<usize, Errno> {
        self.0.read(buf, flags)
    }
    fn write(&self, buf: &[u8], flags: u32) -> Result<usize, Errno> {
        self.1.write(buf, flags)
    }
    fn stat(&self) -> Stat {
        self.0.stat()
    }
    fn poll(&self, events: u32) -> u32 {
        // Both ends are here: no hang-up or error from our own side.
        (self.0.poll(events) | self.1.poll(events)) & events
    }
    fn poll_seq(&self, events: u32) -> u64 {
        let s = self.0.0.lock();
        (if events & 0x1 != 0 { s.in_seq } else { 0 }) + (if events & 0x4 != 0 { s.out_seq } else { 0 })
    }
}

impl Named {
    fn attach(&self, read: bool, write: bool) {
        let mut s = self.0.lock();
        if s.readers == 0 && s.writers == 0 {
            s.buf.clear();
        }
        s.readers += usize::from(read);
        s.writers += usize::from(write);
        s.in_seq += 1;
        s.out_seq += 1;
        drop(s);
        // Readers and pollers of the pipe, and openers blocked in `crate::fifo` (they wait
        // for the other side with no queue of their own).
        self.0.waiters.wake_all();
        crate::sched::notify();
    }

    /// A new end: reading, writing, or both (`O_RDWR`).
    pub fn open_end(&self, read: bool, write: bool) -> Arc<dyn FileOps> {
        self.attach(read, write);
        match (read, write) {
            (true, true) => Arc::new(BothEnds(ReadEnd(self.0.clone()), WriteEnd(self.0.clone()))),
            (true, false) => Arc::new(ReadEnd(self.0.clone())),
            _ => Arc::new(WriteEnd(self.0.clone())),
        }
    }

    /// Open (readers, writers).
    pub fn ends(&self) -> (usize, usize) {
        let s = self.0.lock();
        (s.readers, s.writers)
    }
}
