//! Named pipes (`fifo(7)`): the `guest_fs::FifoOpener` the VFS calls when a FIFO inode is
//! opened, and the blocking rules of `open(2)` on one.
//!
//! Every open of one FIFO (keyed by device and inode number, so FIFOs on different
//! filesystems never meet) attaches an end to the same `crate::pipe::Named`. `O_RDONLY` and
//! `O_WRONLY` without `O_NONBLOCK` wait until the other side has been opened at least once
//! since (Linux's `r_counter`/`w_counter` rule, so a writer that opened and closed again still
//! releases the reader); `O_RDONLY|O_NONBLOCK` succeeds at once; `O_WRONLY|O_NONBLOCK`
//! without a reader is `ENXIO`; `O_RDWR` never waits.
//!
//! Waiting: a syscall here re-runs when woken, so the waiting end is kept per thread in
//! [`PENDING`] (it counts as an open end meanwhile, as in Linux) and handed back when the
//! same thread re-runs the same open.

use crate::pipe::Named;
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;
use guest_fs::{Errno, FifoOpener, FileOps, InodeRef, OpenFile};
use spin::Mutex;

const O_ACCMODE: u32 = 3;
const O_WRONLY: u32 = 1;
const O_RDWR: u32 = 2;
const O_NONBLOCK: u32 = 0o4000;

type Key = (u32, u32, u64);

struct Fifo {
    pipe: Named,
    /// Opens for reading / writing so far.
    r_opens: u64,
    w_opens: u64,
}

static FIFOS: Mutex<BTreeMap<Key, Fifo>> = Mutex::new(BTreeMap::new());

fn key(i: &InodeRef) -> Key {
    let (major, minor) = i.dev();
    (major, minor, i.ino())
}

/// The kernel's FIFO opener (registered at boot with `Vfs::set_fifo_opener`).
pub struct Opener;

impl FifoOpener for Opener {
    fn open_fifo(&self, fifo: &InodeRef, flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        let mut all = FIFOS.lock();
        // Drop entries nobody has open (the map does not grow with every FIFO ever opened).
        all.retain(|_, x| x.pipe.ends() != (0, 0));
        let f = all.entry(key(fifo)).or_insert_with(|| Fifo { pipe: Named::default(), r_opens: 0, w_opens: 0 });
        let (read, write) = match flags & O_ACCMODE {
            O_WRONLY => (false, true),
            O_RDWR => (true, true),
            _ => (true, false),
        };
        if write && !read && flags & O_NONBLOCK != 0 && f.pipe.ends().0 == 0 {
            return Err(Errno::ENXIO);
        }
        f.r_opens += u64::from(read);
        f.w_opens += u64::from(write);
        Ok(f.pipe.open_end(read, write))
    }
}

/// (opens for reading, opens for writing, open readers, open writers) of `fifo`.
fn counters(fifo: &InodeRef) -> Option<(u64, u64, usize, usize)> {
    let all = FIFOS.lock();
    all.get(&key(fifo)).map(|f| {
        let (r, w) = f.pipe.ends();
        (f.r_opens, f.w_opens, r, w)
    })
}

/// An open waiting for the other side: the thread, what it opened, the description, and the
/// partner's open count when it started.
struct Pending {
    tid: i32,
    dirfd: i32,
    path: Vec<u8>,
    flags: u32,
    file: Arc<OpenFile>,
    partner_opens: u64,
}

static PENDING: Mutex<Vec<Pending>> = Mutex::new(Vec::new());

/// The waiting end of thread `tid` for this same open, if it is re-running one; a stale
/// entry of `tid` (an open interrupted by a signal) is dropped, closing its end.
pub fn resume(tid: i32, dirfd: i32, path: &[u8], flags: u32) -> Option<(Arc<OpenFile>, u64)> {
    let mut p = PENDING.lock();
    let i = p.iter().position(|x| x.tid == tid)?;
    let e = p.swap_remove(i);
    drop(p);
    if e.dirfd == dirfd && e.path == path && e.flags == flags {
        Some((e.file, e.partner_opens))
    } else {
        None
    }
}

/// For a FIFO description just opened: the partner's open count now (0 for other files).
pub fn partner_opens(file: &OpenFile) -> u64 {
    let Some(i) = fifo_inode(file) else { return 0 };
    let Some((r, w, _, _)) = counters(&i) else { return 0 };
    if file.readable() && !file.writable() { w } else { r }
}

fn fifo_inode(file: &OpenFile) -> Option<InodeRef> {
    file.custom()?;
    file.inode().filter(|i| i.file_type() == guest_fs::FileType::Fifo).cloned()
}

/// True when this FIFO open must wait: blocking, one-sided, no partner end open and none
/// opened since `partner_at_start`.
pub fn must_wait(file: &OpenFile, partner_at_start: u64) -> bool {
    if file.is_nonblocking() || (file.readable() && file.writable()) {
        return false;
    }
    let Some(i) = fifo_inode(file) else { return false };
    let Some((r_opens, w_opens, readers, writers)) = counters(&i) else { return false };
    if file.readable() { writers == 0 && w_opens == partner_at_start } else { readers == 0 && r_opens == partner_at_start }
}

/// Parks `file` for thread `tid` until it re-runs the open.
pub fn park(tid: i32, dirfd: i32, path: &[u8], flags: u32, file: Arc<OpenFile>, partner_opens: u64) {
    reap_dead();
    PENDING.lock().push(Pending { tid, dirfd, path: path.to_vec(), flags, file, partner_opens });
}

/// Drops the waiting ends of threads that no longer exist (killed while waiting), so their
/// ends close; called before parking another.
fn reap_dead() {
    let live: Vec<i32> = crate::proc::PROCESSES
        .lock()
        .values()
        .flat_map(|p| p.threads.lock().iter().map(|t| t.tid).collect::<Vec<_>>())
        .collect();
    let stale: Vec<Pending> = {
        let mut p = PENDING.lock();
        let (keep, gone) = core::mem::take(&mut *p).into_iter().partition(|x| live.contains(&x.tid));
        *p = keep;
        gone
    };
    drop(stale);
}
