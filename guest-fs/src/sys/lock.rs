//! `flock(2)`: BSD locks, held by open file descriptions (shared by `dup` and `fork`),
//! released by `LOCK_UN` or when the description's last reference goes. The lock state lives
//! in the VFS inode, so it also covers mounted filesystems (within this guest: locks are not
//! passed to a file server).

use crate::errno::{Errno, Result};
use crate::fdtable::FdTable;
use crate::file::OpenFile;
use crate::inode::InodeRef;
use alloc::sync::Arc;
use alloc::vec::Vec;

/// `LOCK_SH`: shared lock.
pub const LOCK_SH: u32 = 1;
/// `LOCK_EX`: exclusive lock.
pub const LOCK_EX: u32 = 2;
/// `LOCK_NB`: fail with `EWOULDBLOCK` instead of blocking.
pub const LOCK_NB: u32 = 4;
/// `LOCK_UN`: unlock.
pub const LOCK_UN: u32 = 8;

/// The BSD locks on one inode: holders are open file descriptions (by address, valid
/// while they hold: a description releases its lock when dropped).
#[derive(Default)]
pub(crate) struct Flocks {
    shared: Vec<usize>,
    exclusive: Option<usize>,
}

impl Flocks {
    fn release(&mut self, owner: usize) -> bool {
        let before = self.shared.len() + usize::from(self.exclusive.is_some());
        self.shared.retain(|&o| o != owner);
        if self.exclusive == Some(owner) {
            self.exclusive = None;
        }
        before != self.shared.len() + usize::from(self.exclusive.is_some())
    }
}

fn owner_of(f: &OpenFile) -> usize {
    f as *const OpenFile as usize
}

/// `flock(2)` on `fd` with `op` (`LOCK_SH`, `LOCK_EX` or `LOCK_UN`, optionally `|LOCK_NB`).
/// A conflicting lock gives `EWOULDBLOCK` with `LOCK_NB`, else `EAGAIN`, which the kernel
/// turns into "block and retry" (it retries when a lock is released: [`crate::Vfs::set_unlock_notify`]).
/// `EBADF` (also `O_PATH`), `EINVAL` for a bad `op`. Converting a lock (shared to exclusive
/// or back) first releases the old one, as Linux does. Returns true when a lock was
/// released (waiters may proceed).
pub fn flock(fds: &FdTable, fd: i32, op: u32) -> Result<bool> {
    let f = fds.get(fd)?;
    if f.is_path_only() {
        return Err(Errno::EBADF);
    }
    let kind = op & !LOCK_NB;
    if !matches!(kind, LOCK_SH | LOCK_EX | LOCK_UN) {
        return Err(Errno::EINVAL);
    }
    let Some(inode) = f.inode().cloned() else {
        // Pipes and sockets: Linux locks them too; nobody else can see them here.
        return Ok(false);
    };
    let me = owner_of(&f);
    let mut st = inode.lock();
    let locks = &mut st.flocks;
    if kind == LOCK_UN {
        let released = locks.release(me);
        f.set_flocked(None);
        return Ok(released);
    }
    let held_ex = locks.exclusive == Some(me);
    let held_sh = locks.shared.contains(&me);
    if (kind == LOCK_EX && held_ex) || (kind == LOCK_SH && held_sh) {
        return Ok(false);
    }
    let conflict = match kind {
        LOCK_EX => locks.exclusive.is_some_and(|o| o != me) || locks.shared.iter().any(|&o| o != me),
        _ => locks.exclusive.is_some_and(|o| o != me),
    };
    let released = held_ex || held_sh;
    if released {
        locks.release(me);
        f.set_flocked(None);
    }
    if conflict {
        return Err(if op & LOCK_NB != 0 { Errno::EWOULDBLOCK } else { Errno::EAGAIN });
    }
    if kind == LOCK_EX {
        locks.exclusive = Some(me);
    } else {
        locks.shared.push(me);
    }
    drop(st);
    f.set_flocked(Some(inode));
    Ok(released)
}

/// Releases the lock `f` holds on `inode` (its last reference is going away).
pub(crate) fn release_on_drop(f: &OpenFile, inode: &InodeRef) -> bool {
    inode.lock().flocks.release(owner_of(f))
}

/// What a description records of its lock: the inode it holds one on.
pub(crate) type Holder = Option<Arc<crate::inode::Inode>>;
