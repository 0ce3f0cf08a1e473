//! The H side of a U's mapper channel (protocol: [`guest_abi::mapper`]): validates a batch,
//! writes it into the command area, wakes the mapper thread and waits for its completion,
//! checking the U's pidfd so a dead U gives an error, never a hang.

use crate::process::pidfd_exited;
use crate::sys::Mapping;
use crate::{ExitInfo, SwitcherError, futex};
use guest_abi::layout::{USER_END, USER_START};
use guest_abi::mapper::{MAX_OPS, MapOp, MapOpKind, MapperCmd, MapperDone};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How long one futex wait lasts before H checks whether U is still alive.
const POLL: Duration = Duration::from_millis(20);
/// How long a batch may take while U is alive before [`SwitcherError::MapperTimeout`].
const BATCH_TIMEOUT: Duration = Duration::from_secs(10);

/// H's handle on one U's mapper. `Send + Sync`; batches are serialised internally.
pub struct MapperChannel {
    map: Mapping,
    pidfd: OwnedFd,
    guest_mem_size: u64,
    /// Sequence number of the last batch sent.
    seq: Mutex<u32>,
}

impl std::fmt::Debug for MapperChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MapperChannel").field("guest_mem_size", &self.guest_mem_size).finish()
    }
}

impl MapperChannel {
    pub(crate) fn new(map: Mapping, pidfd: OwnedFd, guest_mem_size: u64) -> Self {
        Self { map, pidfd, guest_mem_size, seq: Mutex::new(0) }
    }

    fn cmd(&self) -> *mut MapperCmd {
        self.map.ptr().cast()
    }

    fn done(&self) -> &MapperDone {
        // SAFETY: the completion page follows the command area in the mapping; MapperDone's
        // fields are atomics apart from failed_index, which we read with read_volatile.
        unsafe { &*self.map.ptr().add(guest_abi::stub::MAPPER_DONE_OFFSET as usize).cast::<MapperDone>() }
    }

    /// Checks one operation: known kind, page-aligned nonzero range inside
    /// `[USER_START, USER_END)`, `prot` within `PROT_READ|PROT_WRITE|PROT_EXEC`, and for maps a
    /// page-aligned GPA range inside guest memory.
    fn validate(&self, index: usize, op: &MapOp) -> Result<(), SwitcherError> {
        let bad = |reason| Err(SwitcherError::InvalidMapOp { index, reason });
        let page = guest_abi::PAGE_SIZE;
        let kind = match op.kind {
            k if k == MapOpKind::Map as u32 => MapOpKind::Map,
            k if k == MapOpKind::Unmap as u32 => MapOpKind::Unmap,
            k if k == MapOpKind::Protect as u32 => MapOpKind::Protect,
            _ => return bad("unknown kind"),
        };
        if op.len == 0 || !op.addr.is_multiple_of(page) || !op.len.is_multiple_of(page) {
            return bad("address or length not page aligned, or empty");
        }
        if op.addr < USER_START || op.addr.checked_add(op.len).is_none_or(|e| e > USER_END) {
            return bad("outside the guest user range");
        }
        if op.prot & !7 != 0 {
            return bad("unknown protection bits");
        }
        if kind == MapOpKind::Map
            && (!op.offset.is_multiple_of(page) || op.offset.checked_add(op.len).is_none_or(|e| e > self.guest_mem_size))
        {
            return bad("guest-physical range outside guest memory or unaligned");
        }
        Ok(())
    }

    /// Applies `ops` in order (split into batches of at most [`MAX_OPS`]). Validates all of
    /// them before sending any.
    ///
    /// Errors: [`SwitcherError::InvalidMapOp`] (nothing sent), [`SwitcherError::MapperFailed`]
    /// (ops before `index` were applied, the rest not), [`SwitcherError::ProcessDead`] when U
    /// is gone, [`SwitcherError::MapperTimeout`] when a live U does not answer within 10 s.
    /// A guest that forges the completion page only confuses its own shadow.
    pub fn apply(&self, ops: &[MapOp]) -> Result<(), SwitcherError> {
        for (i, op) in ops.iter().enumerate() {
            self.validate(i, op)?;
        }
        let mut seq = self.seq.lock().unwrap_or_else(|p| p.into_inner());
        for (n, chunk) in ops.chunks(MAX_OPS).enumerate() {
            self.send(&mut seq, chunk).map_err(|e| match e {
                SwitcherError::MapperFailed { index, errno } => {
                    SwitcherError::MapperFailed { index: n * MAX_OPS + index, errno }
                }
                e => e,
            })?;
        }
        Ok(())
    }

    fn send(&self, last: &mut u32, chunk: &[MapOp]) -> Result<(), SwitcherError> {
        let seq = last.wrapping_add(1);
        let cmd = self.cmd();
        // SAFETY: the command area is mapped read-write in H; U only reads it after seeing the
        // new seq (Release store below).
        let cmd_seq = unsafe {
            let ops = std::ptr::addr_of_mut!((*cmd).ops).cast::<MapOp>();
            std::ptr::copy_nonoverlapping(chunk.as_ptr(), ops, chunk.len());
            std::ptr::write_volatile(std::ptr::addr_of_mut!((*cmd).count), chunk.len() as u32);
            &(*cmd).seq
        };
        cmd_seq.store(seq, Ordering::Release);
        *last = seq;
        futex::wake(cmd_seq, 1)?;
        let done = self.done();
        let deadline = Instant::now() + BATCH_TIMEOUT;
        loop {
            let d = done.seq.load(Ordering::Acquire);
            if d == seq {
                break;
            }
            if pidfd_exited(self.pidfd.as_fd()) {
                return Err(SwitcherError::ProcessDead(exit_info(&self.pidfd)));
            }
            if Instant::now() > deadline {
                return Err(SwitcherError::MapperTimeout);
            }
            futex::wait(&done.seq, d, Some(POLL))?;
        }
        let result = done.result.load(Ordering::Acquire);
        if result != 0 {
            // SAFETY: plain u32 in the mapped completion page (guest-writable: validated).
            let idx = unsafe { std::ptr::read_volatile(std::ptr::addr_of!(done.failed_index)) } as usize;
            return Err(SwitcherError::MapperFailed { index: idx.min(chunk.len()), errno: result.wrapping_neg() });
        }
        Ok(())
    }
}

/// Exit status of a dead U without reaping it (`WNOWAIT`), for error messages.
fn exit_info(pidfd: &OwnedFd) -> ExitInfo {
    use std::os::fd::AsRawFd;
    // SAFETY: zeroed siginfo is a valid output buffer; WNOWAIT leaves the zombie for
    // StubProcess to reap.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let r = libc::waitid(libc::P_PIDFD, pidfd.as_raw_fd() as libc::id_t, &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT);
        if r == 0 && info.si_code == libc::CLD_EXITED {
            ExitInfo::Exited(info.si_status())
        } else if r == 0 && info.si_pid() != 0 {
            ExitInfo::Signaled(info.si_status())
        } else {
            ExitInfo::Signaled(libc::SIGKILL)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn channel_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<super::MapperChannel>();
        check::<crate::StubProcess>();
        check::<crate::SharedMemory>();
    }
}
