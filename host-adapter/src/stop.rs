//! Stop requests from outside the VM: pvm got SIGTERM, SIGINT or SIGHUP and wants the running
//! VM ended the orderly way (every sandbox process killed and reaped) before it exits. pvm's
//! signal thread calls [`request`]; each backend's control loop watches [`requested`] (the
//! soft backend's monitor also polls [`fd`], so it reacts at once) and ends the VM with
//! [`crate::ExitReason::Stopped`]. Process-wide: one pvm runs one VM.

use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI32, Ordering};

/// The first signal a stop was requested for (0: none).
static SIGNAL: AtomicI32 = AtomicI32::new(0);

/// An eventfd written by [`request`] (created on first use; `None` if eventfd failed, then
/// the backends notice the request at their next periodic check).
fn event() -> Option<&'static OwnedFd> {
    static EVENT: OnceLock<Option<OwnedFd>> = OnceLock::new();
    EVENT
        .get_or_init(|| {
            // SAFETY: plain syscall; the returned fd is owned by the OwnedFd below.
            let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
            // SAFETY: a fresh descriptor nobody else owns.
            (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
        })
        .as_ref()
}

/// Asks the running (or next) VM to stop because pvm received `signal`. The first request
/// wins; later ones change nothing. Not async-signal-safe: call it from a thread that took
/// the signal with `sigwait`, not from a handler.
pub fn request(signal: i32) {
    let _ = SIGNAL.compare_exchange(0, signal, Ordering::AcqRel, Ordering::Acquire);
    if let Some(fd) = event() {
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from a live buffer to the eventfd we own; it can only fail
        // on counter overflow, which a handful of writes never reaches.
        let _ = unsafe { libc::write(std::os::fd::AsRawFd::as_raw_fd(fd), one.as_ptr().cast(), one.len()) };
    }
}

/// The signal a stop was requested for, if any.
pub fn requested() -> Option<i32> {
    match SIGNAL.load(Ordering::Acquire) {
        0 => None,
        s => Some(s),
    }
}

/// An fd that becomes readable once a stop is requested (for `poll`), if one could be made.
pub fn fd() -> Option<BorrowedFd<'static>> {
    event().map(AsFd::as_fd)
}
