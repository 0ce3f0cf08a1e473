//! Hypercalls every backend serves the same way: the console, time, and shutdown.
//!
//! The guest's console is pvm's own stdin/stdout/stderr, byte for byte.

use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use guest_abi::hypercall::{CONSOLE_KERNEL_LOG, ShutdownKind};

use crate::{ExitReason, GuestRam};

/// Largest console transfer per hypercall, bytes (the guest loops for more).
pub const CONSOLE_CHUNK: u64 = 1 << 20;

const EINVAL: i64 = 22;
const EFAULT: i64 = 14;
const EIO: i64 = 5;

/// The console: host stdio.
#[derive(Default)]
pub struct Console {
    stdin_eof: AtomicBool,
    /// Set by [`Console::close`]: reads return at once.
    closed: AtomicBool,
    /// An eventfd [`Console::close`] writes, polled with stdin so that a read blocked on an
    /// idle stdin returns when the VM ends (`None` if eventfd failed: then such a read only
    /// returns when stdin has data, or when a signal interrupts it).
    cancel: Option<OwnedFd>,
    /// Serialises readers, so that what `poll` saw readable is still there for `read`.
    reading: Mutex<()>,
}

impl Console {
    /// A console.
    pub fn new() -> Self {
        // SAFETY: plain syscall; the returned fd is owned by the OwnedFd below.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        // SAFETY: a fresh descriptor nobody else owns.
        let cancel = (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) });
        Self { stdin_eof: AtomicBool::new(false), closed: AtomicBool::new(false), cancel, reading: Mutex::new(()) }
    }

    /// Ends console input for this run: a `CONSOLE_READ` blocked on stdin (and every later
    /// one) returns `-EIO`. Called when the VM stops, so that no H thread stays in a read and
    /// the backend can reap its processes and return.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        if let Some(fd) = &self.cancel {
            let one = 1u64.to_ne_bytes();
            // SAFETY: writes 8 bytes from a live buffer to the eventfd we own; it can only
            // fail on counter overflow, which a few writes never reach.
            let _ = unsafe { libc::write(fd.as_raw_fd(), one.as_ptr().cast(), one.len()) };
        }
    }

    /// Waits until stdin is readable (true) or the console is closed (false).
    fn wait_stdin(&self) -> bool {
        loop {
            if self.closed.load(Ordering::Acquire) {
                return false;
            }
            let mut fds = [
                libc::pollfd { fd: 0, events: libc::POLLIN, revents: 0 },
                libc::pollfd { fd: self.cancel.as_ref().map_or(-1, AsRawFd::as_raw_fd), events: libc::POLLIN, revents: 0 },
            ];
            // SAFETY: `fds` is a valid array of two pollfd entries for the call.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
            if n < 0 {
                // EINTR (a vCPU kick): look at `closed` again.
                continue;
            }
            if fds[1].revents != 0 {
                return false;
            }
            // Readable, end of file, an error or no stdin at all: read(2) tells which.
            if fds[0].revents != 0 {
                return true;
            }
        }
    }

    /// `CONSOLE_WRITE(fd, gpa, len)`: copies the guest bytes once, then writes them all.
    /// Returns bytes written or a negated errno.
    pub fn write(&self, ram: &GuestRam, fd: u64, gpa: u64, len: u64) -> i64 {
        if len > CONSOLE_CHUNK {
            return -EINVAL;
        }
        let mut buf = vec![0u8; len as usize];
        if ram.read(gpa, &mut buf).is_err() {
            return -EFAULT;
        }
        let result = match fd {
            1 => {
                let mut out = std::io::stdout().lock();
                out.write_all(&buf).and_then(|()| out.flush())
            }
            2 => std::io::stderr().lock().write_all(&buf),
            // The guest kernel filters by the log level H gave it (errors even when quiet).
            CONSOLE_KERNEL_LOG => {
                {
                    let text = String::from_utf8_lossy(&buf);
                    let mut err = std::io::stderr().lock();
                    for line in text.lines() {
                        let _ = writeln!(err, "pvm: guest kernel: {line}");
                    }
                }
                Ok(())
            }
            _ => return -EINVAL,
        };
        match result {
            Ok(()) => len as i64,
            // A closed pipe on our side: the guest sees EPIPE like a native program would.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => -32,
            Err(_) => -EIO,
        }
    }

    /// `CONSOLE_READ(gpa, len)`: reads what host stdin has (blocking), 0 at end of file.
    pub fn read(&self, ram: &GuestRam, gpa: u64, len: u64) -> i64 {
        if len > CONSOLE_CHUNK || gpa.checked_add(len).is_none_or(|end| end > ram.size()) {
            return -EFAULT;
        }
        if self.stdin_eof.load(Ordering::Relaxed) || len == 0 {
            return 0;
        }
        let mut buf = vec![0u8; len as usize];
        // fd 0 directly, not std's buffered stdin: bytes kept in a user-space buffer would be
        // invisible to poll. The lock keeps concurrent readers from taking each other's data.
        let _reading = self.reading.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = loop {
            if !self.wait_stdin() {
                return -EIO;
            }
            // SAFETY: reads at most `buf.len()` bytes into the live buffer `buf`.
            let r = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
            match usize::try_from(r) {
                Ok(n) => break n,
                Err(_) if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) if std::io::Error::last_os_error().kind() == std::io::ErrorKind::WouldBlock => {}
                // No stdin at all reads as end of file (as std's stdin does).
                Err(_) if std::io::Error::last_os_error().raw_os_error() == Some(libc::EBADF) => break 0,
                Err(_) => return -EIO,
            }
        };
        if n == 0 {
            self.stdin_eof.store(true, Ordering::Relaxed);
        }
        match ram.write(gpa, &buf[..n]) {
            Ok(()) => n as i64,
            Err(_) => -EFAULT,
        }
    }
}

/// `COPY_MEM(dst, src, len)`: 0, or `-EINVAL` when a range leaves RAM.
pub fn copy_mem(ram: &GuestRam, dst: u64, src: u64, len: u64) -> i64 {
    if ram.copy_within(dst, src, len).is_ok() { 0 } else { -i64::from(libc::EINVAL) }
}

/// `ZERO_MEM(gpa, len)`: 0, or `-EINVAL` when the range leaves RAM.
pub fn zero_mem(ram: &GuestRam, gpa: u64, len: u64) -> i64 {
    if ram.zero(gpa, len).is_ok() { 0 } else { -i64::from(libc::EINVAL) }
}

/// `GET_TIME(clock_id)`: Linux clock 0 (realtime) or 1 (monotonic), ns; negated errno else.
pub fn get_time(clock_id: u64) -> i64 {
    let id = match clock_id {
        0 => libc::CLOCK_REALTIME,
        1 => libc::CLOCK_MONOTONIC,
        _ => return -EINVAL,
    };
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid out-pointer for the duration of the call.
    if unsafe { libc::clock_gettime(id, &mut ts) } != 0 {
        return -EINVAL;
    }
    ts.tv_sec.saturating_mul(1_000_000_000).saturating_add(ts.tv_nsec)
}

/// Reads the guest kernel's exec-failure reason at `LAUNCH_GPA` once: at most
/// `SHUTDOWN_REASON_MAX` bytes up to a NUL, printable ASCII kept, anything else shown as `?`.
pub fn exec_failure_reason(ram: &GuestRam) -> Option<String> {
    let mut buf = [0u8; guest_abi::hypercall::SHUTDOWN_REASON_MAX];
    ram.read(guest_abi::layout::LAUNCH_GPA, &mut buf).ok()?;
    let end = buf.iter().position(|&b| b == 0)?;
    let text: String =
        buf[..end].iter().map(|&b| if (0x20..0x7f).contains(&b) { b as char } else { '?' }).collect();
    (!text.is_empty()).then_some(text)
}

/// Decodes `SHUTDOWN(kind, value)` into why the VM ends (`ram` for the exec-failure reason).
pub fn shutdown_reason(ram: &GuestRam, kind: u64, value: u64) -> ExitReason {
    match ShutdownKind::from_raw(kind) {
        Some(ShutdownKind::Exited) if value <= 255 => ExitReason::Exited(value as u8),
        Some(ShutdownKind::Signaled) if (1..=64).contains(&value) => {
            ExitReason::Signaled(value as u32)
        }
        Some(ShutdownKind::NotFound) => ExitReason::NotFound(value, exec_failure_reason(ram)),
        Some(ShutdownKind::CannotExecute) => ExitReason::CannotExecute(value, exec_failure_reason(ram)),
        Some(ShutdownKind::KernelPanic) => ExitReason::KernelPanic(value),
        _ => ExitReason::BadShutdown(kind, value),
    }
}

/// TSC frequency of this host in kHz, from CPUID leaf 0x15 when it is complete, else measured
/// against `CLOCK_MONOTONIC` over a 2 ms busy wait (about 1e-5 relative error; a sleep would
/// cost more startup time for no better figure). Source: Intel SDM vol. 2A, CPUID leaf 15H.
pub fn tsc_khz() -> u64 {
    let max = core::arch::x86_64::__cpuid(0).eax;
    if max >= 0x15 {
        let l = core::arch::x86_64::__cpuid(0x15);
        if l.eax != 0 && l.ebx != 0 && l.ecx != 0 {
            return u64::from(l.ecx) * u64::from(l.ebx) / u64::from(l.eax) / 1000;
        }
    }
    let t0 = get_time(1);
    let c0 = rdtsc();
    let (mut t1, mut c1) = (t0, c0);
    while t1 - t0 < 2_000_000 {
        t1 = get_time(1);
        c1 = rdtsc();
    }
    let ns = (t1 - t0).max(1) as u64;
    (c1 - c0).saturating_mul(1_000_000) / ns
}

/// Reads the TSC.
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC has no memory effects and is allowed at CPL 3 on Linux.
    unsafe { core::arch::x86_64::_rdtsc() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shutdown_kinds_decode() {
        let ram = GuestRam::new(1 << 20).expect("memfd");
        assert_eq!(shutdown_reason(&ram, 0, 42), ExitReason::Exited(42));
        assert_eq!(shutdown_reason(&ram, 0, 256), ExitReason::BadShutdown(0, 256));
        assert_eq!(shutdown_reason(&ram, 1, 11), ExitReason::Signaled(11));
        assert_eq!(shutdown_reason(&ram, 2, 2), ExitReason::NotFound(2, None));
        ram.write(guest_abi::layout::LAUNCH_GPA, b"not an ELF\x1b[0m\0garbage").expect("write");
        assert_eq!(
            shutdown_reason(&ram, 3, 8),
            ExitReason::CannotExecute(8, Some("not an ELF?[0m".to_string()))
        );
        assert_eq!(shutdown_reason(&ram, 9, 0), ExitReason::BadShutdown(9, 0));
    }

    #[test]
    fn console_rejects_out_of_range() {
        let ram = GuestRam::new(1 << 20).expect("memfd");
        let c = Console::new();
        assert_eq!(c.write(&ram, 1, (1 << 20) - 1, 2), -EFAULT);
        assert_eq!(c.write(&ram, 7, 0, 1), -EINVAL);
        assert_eq!(c.write(&ram, 1, 0, CONSOLE_CHUNK + 1), -EINVAL);
    }

    #[test]
    fn tsc_frequency_is_plausible() {
        let khz = tsc_khz();
        assert!((100_000..10_000_000).contains(&khz), "{khz}");
    }
}
