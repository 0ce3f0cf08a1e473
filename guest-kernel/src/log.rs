//! Kernel log (`CONSOLE_WRITE(CONSOLE_KERNEL_LOG, ...)`) filtered by `BootInfo::log_level`,
//! fatal errors and the panic path (log message + location, then `SHUTDOWN(KernelPanic)`).

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU32, Ordering};
use guest_abi::hypercall::{ShutdownKind, CONSOLE_KERNEL_LOG};
use guest_abi::MAX_VCPUS;

/// Errors only.
pub const ERROR: u32 = 0;
/// Warnings.
pub const WARN: u32 = 1;
/// Informational.
pub const INFO: u32 = 2;
/// Debug.
pub const DEBUG: u32 = 3;
/// Trace (every syscall).
pub const TRACE: u32 = 4;

static LEVEL: AtomicU32 = AtomicU32::new(ERROR);

/// Sets the log level (from `BootInfo::log_level`).
pub fn set_level(level: u32) {
    LEVEL.store(level, Ordering::Relaxed);
}

/// True when messages at `level` are shown.
pub fn enabled(level: u32) -> bool {
    level <= LEVEL.load(Ordering::Relaxed)
}

/// Size of a per-vCPU log line buffer, bytes.
const LINE: usize = 512;

/// One line buffer per vCPU (in .bss, so its GPA is known).
struct LineBuf {
    buf: [u8; LINE],
    len: usize,
}

impl Write for LineBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let n = s.len().min(LINE - 1 - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

static BUFS: [spin::Mutex<LineBuf>; MAX_VCPUS as usize] =
    [const { spin::Mutex::new(LineBuf { buf: [0; LINE], len: 0 }) }; MAX_VCPUS as usize];

/// Writes one formatted line to the kernel log (no level check).
pub fn write_line(args: fmt::Arguments<'_>) {
    let vcpu = crate::percpu::current() as usize;
    let Some(slot) = BUFS.get(vcpu) else { return };
    let Some(mut b) = slot.try_lock() else {
        emit(b"pvm-kernel: log re-entered\n");
        return;
    };
    b.len = 0;
    let _ = write!(b, "[vcpu{vcpu}] ");
    let _ = b.write_fmt(args);
    let len = b.len;
    b.buf[len] = b'\n';
    emit(&b.buf[..len + 1]);
}

/// Sends bytes that live in the kernel image or the physmap to the kernel log.
fn emit(bytes: &[u8]) {
    if cfg!(test) {
        return;
    }
    if let Some(gpa) = crate::mm::kva_to_gpa(bytes.as_ptr() as u64) {
        crate::hcall::console_write(CONSOLE_KERNEL_LOG, gpa, bytes.len() as u64);
    }
}

/// Logs at a level: `klog!(INFO, "x = {}", x)`.
#[macro_export]
macro_rules! klog {
    ($lvl:expr, $($arg:tt)*) => {
        if $crate::log::enabled($lvl) {
            $crate::log::write_line(format_args!($($arg)*));
        }
    };
}

/// Logs `msg` and shuts the VM down as a kernel panic.
pub fn fatal(msg: &str) -> ! {
    write_line(format_args!("fatal: {msg}"));
    crate::hcall::shutdown(ShutdownKind::KernelPanic, guest_abi::hypercall::panic_code::PANIC)
}

/// The panic handler's body.
pub fn panic_and_shutdown(info: &core::panic::PanicInfo<'_>) -> ! {
    match info.location() {
        Some(l) => write_line(format_args!("kernel panic at {}:{}: {}", l.file(), l.line(), info.message())),
        None => write_line(format_args!("kernel panic: {}", info.message())),
    }
    crate::hcall::shutdown(ShutdownKind::KernelPanic, guest_abi::hypercall::panic_code::PANIC)
}
