//! `epoll(7)` instances: an interest list of (fd, description) items and the scan that finds
//! which are ready. An epoll does not get callbacks from the files it watches: `epoll_wait`
//! polls every item (`guest_fs::FileOps::poll`), and an item not ready registers the waiting
//! thread on that file's wait queue (the readiness contract of `FileOps::poll`), so the
//! file's next change wakes the thread, which scans again.
//!
//! - Level-triggered items are reported whenever ready; the scan starts after the last item
//!   reported so that a small `maxevents` does not starve later items (Linux moves reported
//!   items to the end of its ready list).
//! - Edge-triggered (`EPOLLET`) items are reported again only after the file's
//!   `poll_seq` moved (an event happened since the last report); a suppressed item calls
//!   `poll(0)` so that the thread is still woken by the next event.
//! - `EPOLLONESHOT` items are disabled after one report until `EPOLL_CTL_MOD`.
//! - `EPOLLEXCLUSIVE` is accepted where Linux accepts it, but every waiter is woken (Linux
//!   wakes one): a departure that costs only spurious wake-ups.
//! - Items hold the description weakly: when its last reference goes the item disappears,
//!   as in Linux (closing one of two fds of a description leaves the item).
//! - An epoll is itself pollable (readable when an item is ready), so epolls nest; adding
//!   one that reaches back to this one is `ELOOP`, nesting deeper than 4 is `EINVAL`
//!   (`EP_MAX_NESTS`).
//!
//! No lock of the epoll is held while files are polled (a snapshot of the items is taken).

use crate::sync::Mutex;
use crate::waitq::WaitQueue;
use alloc::collections::BTreeMap;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use guest_fs::{Errno, FileOps, OpenFile, Stat};

/// `EPOLLIN`.
pub const EPOLLIN: u32 = 0x1;
/// `EPOLLERR`.
pub const EPOLLERR: u32 = 0x8;
/// `EPOLLHUP`.
pub const EPOLLHUP: u32 = 0x10;
/// `EPOLLRDNORM`.
pub const EPOLLRDNORM: u32 = 0x40;
/// `EPOLLEXCLUSIVE`.
pub const EPOLLEXCLUSIVE: u32 = 1 << 28;
/// `EPOLLWAKEUP` (accepted, no effect: there is no suspend).
pub const EPOLLWAKEUP: u32 = 1 << 29;
/// `EPOLLONESHOT`.
pub const EPOLLONESHOT: u32 = 1 << 30;
/// `EPOLLET`.
pub const EPOLLET: u32 = 1 << 31;
/// The flag bits (not events).
const FLAGS: u32 = EPOLLEXCLUSIVE | EPOLLWAKEUP | EPOLLONESHOT | EPOLLET;
/// `EP_MAX_NESTS`.
const MAX_NESTS: usize = 4;

/// `EPOLL_CTL_ADD`.
pub const CTL_ADD: u32 = 1;
/// `EPOLL_CTL_DEL`.
pub const CTL_DEL: u32 = 2;
/// `EPOLL_CTL_MOD`.
pub const CTL_MOD: u32 = 3;

#[derive(Clone)]
struct Item {
    file: Weak<OpenFile>,
    /// Requested events and flags.
    events: u32,
    data: u64,
    /// `poll_seq` at the last report (edge-triggered).
    last_seq: Option<u64>,
    /// A one-shot item already reported.
    disabled: bool,
}

/// Items are keyed by (fd, description address), as Linux keys them by (fd, file).
type Key = (i32, usize);

/// One epoll instance.
pub struct Epoll {
    items: Mutex<BTreeMap<Key, Item>>,
    /// Where the next level-triggered scan starts.
    cursor: Mutex<Option<Key>>,
    /// Waiters in `epoll_wait` (woken by `epoll_ctl`, which may add a ready item).
    wq: WaitQueue,
}

/// The epoll behind a description, if it is one.
pub fn of_file(f: &OpenFile) -> Option<&Epoll> {
    f.custom()?.as_any()?.downcast_ref::<Epoll>()
}

/// A new epoll description (`O_RDWR`).
pub fn new_file() -> Arc<OpenFile> {
    OpenFile::new_custom(Arc::new(Epoll::new()), 2)
}

impl Default for Epoll {
    fn default() -> Self {
        Self::new()
    }
}

impl Epoll {
    /// An empty interest list.
    pub fn new() -> Self {
        Epoll { items: Mutex::new(BTreeMap::new()), cursor: Mutex::new(None), wq: WaitQueue::new() }
    }

    /// How deep epolls nest below this one, or `None` if `target` is among them.
    fn depth_avoiding(&self, target: *const Epoll, level: usize) -> Option<usize> {
        if core::ptr::eq(self, target) {
            return None;
        }
        if level > MAX_NESTS + 1 {
            return Some(level);
        }
        let files: Vec<Arc<OpenFile>> = self.items.lock().values().filter_map(|i| i.file.upgrade()).collect();
        let mut deepest = level;
        for f in &files {
            if let Some(e) = of_file(f) {
                deepest = deepest.max(e.depth_avoiding(target, level + 1)?);
            }
        }
        Some(deepest)
    }

    /// `epoll_ctl(2)` for `fd` open as `file` (the caller checked `EBADF`, `EPERM`, and that
    /// `file` is not this epoll's own description); `ev` = (events, data) for ADD and MOD.
    pub fn ctl(&self, op: u32, fd: i32, file: &Arc<OpenFile>, ev: (u32, u64)) -> Result<(), Errno> {
        let key = (fd, Arc::as_ptr(file) as usize);
        let (events, data) = ev;
        if (op == CTL_ADD || op == CTL_MOD)
            && let Some(inner) = of_file(file)
        {
            if events & EPOLLEXCLUSIVE != 0 {
                return Err(Errno::EINVAL);
            }
            match inner.depth_avoiding(self, 1) {
                None => return Err(Errno(linux_raw_sys::errno::ELOOP)),
                Some(d) if d > MAX_NESTS => return Err(Errno::EINVAL),
                Some(_) => {}
            }
        }
        let mut items = self.items.lock();
        match op {
            CTL_ADD => {
                if items.contains_key(&key) {
                    return Err(Errno::EEXIST);
                }
                items.insert(key, Item { file: Arc::downgrade(file), events: events | EPOLLERR | EPOLLHUP, data, last_seq: None, disabled: false });
            }
            CTL_MOD => {
                let it = items.get_mut(&key).ok_or(Errno::ENOENT)?;
                if events & EPOLLEXCLUSIVE != 0 || it.events & EPOLLEXCLUSIVE != 0 {
                    return Err(Errno::EINVAL);
                }
                *it = Item { file: Arc::downgrade(file), events: events | EPOLLERR | EPOLLHUP, data, last_seq: None, disabled: false };
            }
            CTL_DEL => {
                items.remove(&key).ok_or(Errno::ENOENT)?;
            }
            _ => return Err(Errno::EINVAL),
        }
        drop(items);
        self.wq.wake_all();
        Ok(())
    }

    /// The ready items, at most `max` of them, as (events, data); with `consume`, marks them
    /// reported (edge-triggered and one-shot state) as `epoll_wait` does. Items whose
    /// description went are dropped.
    pub fn collect(&self, max: usize, consume: bool) -> Vec<(u32, u64)> {
        let snapshot: Vec<(Key, Item)> = self.items.lock().iter().map(|(k, v)| (*k, v.clone())).collect();
        let start = self.cursor.lock().map_or(0, |c| snapshot.iter().position(|(k, _)| *k > c).unwrap_or(0));
        let mut out = Vec::new();
        let mut dead = Vec::new();
        let mut reported: Vec<(Key, Option<u64>, bool)> = Vec::new();
        let n = snapshot.len();
        for j in 0..n {
            let (key, it) = &snapshot[(start + j) % n];
            if it.disabled {
                continue;
            }
            let Some(file) = it.file.upgrade() else {
                dead.push(*key);
                continue;
            };
            if out.len() >= max {
                break;
            }
            let want = it.events & !FLAGS;
            let mut r = file.poll(want) & want;
            let mut seq = None;
            if it.events & EPOLLET != 0 {
                let s = file.poll_seq(want);
                if r != 0 && it.last_seq == Some(s) {
                    r = 0;
                    let _ = file.poll(0);
                }
                seq = Some(s);
            }
            if r != 0 {
                out.push((r, it.data));
                reported.push((*key, seq, it.events & EPOLLONESHOT != 0));
            }
        }
        if consume || !dead.is_empty() {
            let mut items = self.items.lock();
            for k in dead {
                items.remove(&k);
            }
            if consume {
                for (k, seq, oneshot) in &reported {
                    if let Some(it) = items.get_mut(k) {
                        if seq.is_some() {
                            it.last_seq = *seq;
                        }
                        it.disabled |= *oneshot;
                    }
                }
            }
        }
        if consume && let Some((k, _, _)) = reported.last() {
            *self.cursor.lock() = Some(*k);
        }
        out
    }

    /// Registers the calling thread for `epoll_ctl` changes (before it blocks in a wait).
    pub fn register_waiter(&self) {
        self.wq.register_current();
    }

    /// Number of items (for tests and `/proc`).
    pub fn len(&self) -> usize {
        self.items.lock().len()
    }

    /// True with no items.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl FileOps for Epoll {
    fn stat(&self) -> Stat {
        Stat { st_dev: 0xe, st_nlink: 1, st_mode: 0o600, st_blksize: 4096, ..Stat::default() }
    }

    /// Readable when an item is ready (`ep_eventpoll_poll`).
    fn poll(&self, events: u32) -> u32 {
        let ready = !self.collect(1, false).is_empty();
        if !ready {
            self.wq.register_current();
        }
        if ready { events & (EPOLLIN | EPOLLRDNORM) } else { 0 }
    }

    fn poll_seq(&self, events: u32) -> u64 {
        let files: Vec<(Arc<OpenFile>, u32)> =
            self.items.lock().values().filter_map(|i| i.file.upgrade().map(|f| (f, i.events & !FLAGS))).collect();
        let _ = events;
        files.iter().fold(self.wq.seq(), |a, (f, e)| a.wrapping_add(f.poll_seq(*e)))
    }

    fn as_any(&self) -> Option<&dyn core::any::Any> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

    /// A file whose readiness and event counter the test sets.
    #[derive(Default)]
    struct Fake {
        ready: AtomicU32,
        seq: AtomicU64,
    }
    impl FileOps for Fake {
        fn poll(&self, events: u32) -> u32 {
            self.ready.load(Ordering::SeqCst) & (events | 0x18)
        }
        fn poll_seq(&self, _events: u32) -> u64 {
            self.seq.load(Ordering::SeqCst)
        }
    }

    fn fake() -> (Arc<Fake>, Arc<OpenFile>) {
        let f = Arc::new(Fake::default());
        let file = OpenFile::new_custom(f.clone(), 2);
        (f, file)
    }

    #[test]
    fn level_triggered_reports_while_ready() {
        let ep = Epoll::new();
        let (f, file) = fake();
        ep.ctl(CTL_ADD, 3, &file, (EPOLLIN, 7)).expect("add");
        assert_eq!(ep.ctl(CTL_ADD, 3, &file, (EPOLLIN, 7)), Err(Errno::EEXIST));
        assert!(ep.collect(8, true).is_empty());
        f.ready.store(EPOLLIN | 0x4, Ordering::SeqCst);
        assert_eq!(ep.collect(8, true), alloc::vec![(EPOLLIN, 7)], "only asked-for events");
        assert_eq!(ep.collect(8, true), alloc::vec![(EPOLLIN, 7)], "again: level-triggered");
        ep.ctl(CTL_DEL, 3, &file, (0, 0)).expect("del");
        assert!(ep.collect(8, true).is_empty());
        assert_eq!(ep.ctl(CTL_MOD, 3, &file, (EPOLLIN, 0)), Err(Errno::ENOENT));
    }

    #[test]
    fn edge_triggered_and_oneshot() {
        let ep = Epoll::new();
        let (f, file) = fake();
        let (g, file2) = fake();
        ep.ctl(CTL_ADD, 4, &file, (EPOLLIN | EPOLLET, 1)).expect("add et");
        ep.ctl(CTL_ADD, 5, &file2, (EPOLLIN | EPOLLONESHOT, 2)).expect("add oneshot");
        f.ready.store(EPOLLIN, Ordering::SeqCst);
        g.ready.store(EPOLLIN, Ordering::SeqCst);
        assert_eq!(ep.collect(8, true), alloc::vec![(EPOLLIN, 1), (EPOLLIN, 2)]);
        assert!(ep.collect(8, true).is_empty(), "no new edge, one-shot disabled");
        f.seq.fetch_add(1, Ordering::SeqCst);
        assert_eq!(ep.collect(8, true), alloc::vec![(EPOLLIN, 1)], "a new event re-arms the edge");
        ep.ctl(CTL_MOD, 5, &file2, (EPOLLIN | EPOLLONESHOT, 3)).expect("mod re-arms");
        assert_eq!(ep.collect(8, true), alloc::vec![(EPOLLIN, 3)]);
        assert_eq!(ep.ctl(CTL_MOD, 5, &file2, (EPOLLIN | EPOLLEXCLUSIVE, 3)), Err(Errno::EINVAL));
    }

    #[test]
    fn hangup_always_reported_and_closed_files_vanish() {
        let ep = Epoll::new();
        let (f, file) = fake();
        ep.ctl(CTL_ADD, 6, &file, (0x4, 9)).expect("add");
        f.ready.store(EPOLLHUP, Ordering::SeqCst);
        assert_eq!(ep.collect(8, true), alloc::vec![(EPOLLHUP, 9)]);
        drop(file);
        assert!(ep.collect(8, true).is_empty());
        assert!(ep.is_empty(), "the item went with its description");
    }

    #[test]
    fn small_maxevents_rotates() {
        let ep = Epoll::new();
        let (f1, a) = fake();
        let (f2, b) = fake();
        f1.ready.store(EPOLLIN, Ordering::SeqCst);
        f2.ready.store(EPOLLIN, Ordering::SeqCst);
        ep.ctl(CTL_ADD, 1, &a, (EPOLLIN, 1)).expect("add");
        ep.ctl(CTL_ADD, 2, &b, (EPOLLIN, 2)).expect("add");
        assert_eq!(ep.collect(1, true), alloc::vec![(EPOLLIN, 1)]);
        assert_eq!(ep.collect(1, true), alloc::vec![(EPOLLIN, 2)]);
        assert_eq!(ep.collect(1, true), alloc::vec![(EPOLLIN, 1)]);
    }

    #[test]
    fn nesting_loops_are_refused() {
        let outer = new_file();
        let inner = new_file();
        let (eo, ei) = (of_file(&outer).expect("epoll"), of_file(&inner).expect("epoll"));
        eo.ctl(CTL_ADD, 1, &inner, (EPOLLIN, 0)).expect("nest");
        assert_eq!(ei.ctl(CTL_ADD, 2, &outer, (EPOLLIN, 0)), Err(Errno(linux_raw_sys::errno::ELOOP)));
        let (f, file) = fake();
        ei.ctl(CTL_ADD, 3, &file, (EPOLLIN, 0)).expect("add");
        assert!(eo.collect(8, true).is_empty());
        f.ready.store(EPOLLIN, Ordering::SeqCst);
        assert_eq!(eo.collect(8, true), alloc::vec![(EPOLLIN, 0)], "inner readiness shows outside");
    }
}
