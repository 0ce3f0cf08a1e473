//! The H side of a U's mapper channel (protocol and trust rules: [`guest_abi::mapper`]):
//! validates a batch, writes it into the command area, wakes the mapper thread and waits for
//! its completion packet on the pipe only the mapper can write, polling the U's pidfd with it
//! so a dead U gives an error, never a hang. One batch is in flight at a time, so the one
//! packet read answers the batch sent; a batch that timed out or was answered outside the
//! protocol breaks the channel for good (its U must be ended).

use crate::sys::Mapping;
use crate::{ExitInfo, SwitcherError, futex};
use guest_abi::layout::{USER_END, USER_START};
use guest_abi::mapper::{COMPLETION_FAILED_BASE, COMPLETION_OK, MAX_OPS, MapOp, MapOpKind, MapperCmd, MapperDone};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How long a batch may take while U is alive before [`SwitcherError::MapperTimeout`].
const BATCH_TIMEOUT: Duration = Duration::from_secs(10);

/// H's handle on one U's mapper. `Send + Sync`; batches are serialised internally.
pub struct MapperChannel {
    map: Mapping,
    pidfd: OwnedFd,
    /// Read end of the completion pipe (packet mode, nonblocking).
    completion: OwnedFd,
    guest_mem_size: u64,
    state: Mutex<ChannelState>,
    /// Longest H spins for a completion before it sleeps in `poll`, ns (0: never spins);
    /// see [`MapperChannel::set_spin`].
    spin_ns: std::sync::atomic::AtomicU64,
}

/// The channel's own state, under its lock.
struct ChannelState {
    /// Sequence number of the last batch sent.
    seq: u32,
    /// A batch timed out or got an answer outside the protocol: send nothing more.
    broken: bool,
    /// Batches left before H spins again, after a spin that did not see the completion in
    /// time (the adaptive part: a mapper that is slow or on a busy CPU costs one spin per
    /// `SPIN_BACKOFF` batches, not one per batch).
    spin_holdoff: u32,
}

/// Batches without a spin after a spin that failed.
const SPIN_BACKOFF: u32 = 16;

impl std::fmt::Debug for MapperChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MapperChannel").field("guest_mem_size", &self.guest_mem_size).finish()
    }
}

impl MapperChannel {
    pub(crate) fn new(map: Mapping, pidfd: OwnedFd, completion: OwnedFd, guest_mem_size: u64) -> Self {
        Self {
            map,
            pidfd,
            completion,
            guest_mem_size,
            state: Mutex::new(ChannelState { seq: 0, broken: false, spin_holdoff: 0 }),
            spin_ns: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Lets H spin up to `bound` for each completion before it sleeps (a bounded adaptive
    /// spin, after gVisor's systrap): worth it only when the mapper thread runs on another
    /// host CPU than the caller, where a futex or pipe wakeup costs tens of microseconds; on
    /// the same CPU the spin would only delay the mapper. `Duration::ZERO` turns it off (the
    /// default). H watches the completion page's `seq` (guest-writable: a forged value only
    /// makes H try one nonblocking `read` early; the packet still decides).
    pub fn set_spin(&self, bound: Duration) {
        self.spin_ns.store(bound.as_nanos().min(u128::from(u64::MAX)) as u64, Ordering::Relaxed);
    }

    /// Spins up to the spin bound until the completion page shows `seq` or a packet is
    /// readable; returns the packet's length when one was read. Adapts: a spin that runs out
    /// turns spinning off for the next [`SPIN_BACKOFF`] batches.
    fn spin_for(&self, st: &mut ChannelState, seq: u32) -> Option<usize> {
        let bound = self.spin_ns.load(Ordering::Relaxed);
        if bound == 0 {
            return None;
        }
        if st.spin_holdoff > 0 {
            st.spin_holdoff -= 1;
            return None;
        }
        let t0 = Instant::now();
        let mut buf = [0u8; 4096];
        while (t0.elapsed().as_nanos() as u64) < bound {
            if self.done().seq.load(Ordering::Acquire) == seq {
                // SAFETY: reads at most buf.len() bytes into the live buffer from our own fd.
                let n = unsafe { libc::read(self.completion.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
                if n > 0 {
                    return Some(n as usize);
                }
            }
            std::hint::spin_loop();
        }
        st.spin_holdoff = SPIN_BACKOFF;
        None
    }

    /// The command area's run words (one per vCPU).
    pub(crate) fn run_words(&self) -> &[std::sync::atomic::AtomicU32] {
        // SAFETY: the command area is mapped for the channel's life; only the atomic `run`
        // array is borrowed (the batch fields are written through raw pointers by `send`).
        unsafe { &*std::ptr::addr_of!((*self.cmd()).run) }
    }

    fn cmd(&self) -> *mut MapperCmd {
        self.map.ptr().cast()
    }

    /// The tid the mapper thread recorded in its completion page (U-written: only read once
    /// at spawn, before guest code runs, and validated by the caller).
    pub(crate) fn recorded_tid(&self) -> i32 {
        let done = std::ptr::from_ref(self.done());
        // SAFETY: the completion page is mapped for the channel's life; a racy read of an i32.
        unsafe { std::ptr::read_volatile(std::ptr::addr_of!((*done).tid)) }
    }

    fn done(&self) -> &MapperDone {
        // SAFETY: the completion page follows the command area in the mapping; H reads only
        // its atomic `result`.
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
    /// is gone, [`SwitcherError::MapperTimeout`] when a live U does not answer within 10 s,
    /// [`SwitcherError::MapperBroken`] after either of the last two or a packet outside the
    /// protocol. Only a completion packet from U's mapper thread ends a batch: guest code
    /// cannot make H return early.
    pub fn apply(&self, ops: &[MapOp]) -> Result<(), SwitcherError> {
        for (i, op) in ops.iter().enumerate() {
            self.validate(i, op)?;
        }
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if st.broken {
            return Err(SwitcherError::MapperBroken);
        }
        for (n, chunk) in ops.chunks(MAX_OPS).enumerate() {
            let r = self.send(&mut st, chunk);
            if matches!(r, Err(SwitcherError::MapperTimeout | SwitcherError::MapperBroken | SwitcherError::ProcessDead(_))) {
                st.broken = true;
            }
            r.map_err(|e| match e {
                SwitcherError::MapperFailed { index, errno } => {
                    SwitcherError::MapperFailed { index: n * MAX_OPS + index, errno }
                }
                e => e,
            })?;
        }
        Ok(())
    }

    fn send(&self, st: &mut ChannelState, chunk: &[MapOp]) -> Result<(), SwitcherError> {
        let seq = st.seq.wrapping_add(1);
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
        st.seq = seq;
        futex::wake(cmd_seq, 1)?;
        let len = match self.spin_for(st, seq) {
            Some(len) => len,
            None => self.wait_packet()?,
        };
        if len == COMPLETION_OK {
            return Ok(());
        }
        match len.checked_sub(COMPLETION_FAILED_BASE) {
            Some(index) if index < chunk.len() => {
                // The errno is guest-writable: only the message depends on it.
                let raw = self.done().result.load(Ordering::Acquire).wrapping_neg();
                let errno = if (1..4096).contains(&raw) { raw } else { libc::EIO };
                Err(SwitcherError::MapperFailed { index, errno })
            }
            _ => Err(SwitcherError::MapperBroken),
        }
    }

    /// Waits for one completion packet and returns its length: one `poll` of the pipe and
    /// U's pidfd, then one `read` (the mapper has never answered before H asks, so reading
    /// first would only add a syscall that fails with EAGAIN to every batch).
    fn wait_packet(&self) -> Result<usize, SwitcherError> {
        let deadline = Instant::now() + BATCH_TIMEOUT;
        let mut buf = [0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(SwitcherError::MapperTimeout);
            }
            let mut fds = [
                libc::pollfd { fd: self.completion.as_raw_fd(), events: libc::POLLIN, revents: 0 },
                libc::pollfd { fd: self.pidfd.as_fd().as_raw_fd(), events: libc::POLLIN, revents: 0 },
            ];
            let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
            // SAFETY: two valid pollfd entries for the call.
            let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, ms) };
            if r <= 0 {
                continue; // timeout slice, or EINTR
            }
            if fds[0].revents == 0 {
                if fds[1].revents != 0 {
                    return Err(SwitcherError::ProcessDead(exit_info(&self.pidfd)));
                }
                continue;
            }
            // SAFETY: reads at most buf.len() bytes into the live buffer from our own fd.
            let n = unsafe { libc::read(self.completion.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n > 0 {
                return Ok(n as usize);
            }
            if n == 0 {
                // Every write end is closed: U is gone.
                return Err(SwitcherError::ProcessDead(exit_info(&self.pidfd)));
            }
            let e = std::io::Error::last_os_error();
            if !matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EINTR)) {
                return Err(SwitcherError::Os { op: "read of the mapper completion", source: e });
            }
        }
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
