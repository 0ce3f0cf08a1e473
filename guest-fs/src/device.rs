//! Character devices: the trait the kernel implements (console, tty) and the built-in
//! memory devices `/dev/null` (1:3), `/dev/zero` (1:5), `/dev/random` (1:8) and
//! `/dev/urandom` (1:9), `/dev/full` (1:7) as described in `null(4)`, `zero(4)` and `random(4)`.

use crate::errno::Result;
use crate::rng::ChaCha20;
use spin::Mutex;

/// `poll(2)` event bits (`POLLIN` = 1, `POLLOUT` = 4, `POLLERR` = 8, `POLLHUP` = 16),
/// the values of `<asm-generic/poll.h>`.
pub mod poll {
    /// Data may be read without blocking.
    pub const POLLIN: u32 = 0x1;
    /// Urgent data.
    pub const POLLPRI: u32 = 0x2;
    /// Data may be written without blocking.
    pub const POLLOUT: u32 = 0x4;
    /// Error condition.
    pub const POLLERR: u32 = 0x8;
    /// Hang up.
    pub const POLLHUP: u32 = 0x10;
    /// Invalid request (fd not open).
    pub const POLLNVAL: u32 = 0x20;
}

/// A character device driver, provided by the kernel (console, tty) or built in (null, zero,
/// urandom). Calls are made without any filesystem lock held, so a driver may block or
/// return `EAGAIN` (the kernel then waits and retries, honouring `O_NONBLOCK` itself).
pub trait CharDevice: Send + Sync {
    /// Reads up to `buf.len()` bytes; returns how many were read (0 = end of file).
    fn read(&self, buf: &mut [u8]) -> Result<usize>;
    /// Writes up to `buf.len()` bytes; returns how many were accepted.
    fn write(&self, buf: &[u8]) -> Result<usize>;
    /// True for terminals: enables the termios ioctls (`TCGETS`...) and makes `lseek`
    /// fail with `ESPIPE`, `isatty(3)` true.
    fn is_tty(&self) -> bool {
        false
    }
    /// Readiness for `poll(2)`: a mask of [`poll`] bits among `events`. Default: always
    /// readable and writable.
    fn poll_ready(&self, events: u32) -> u32 {
        events & (poll::POLLIN | poll::POLLOUT)
    }
    /// True when writes are discarded without being looked at (`/dev/null`, `/dev/zero`):
    /// the kernel then answers a write with its count without reading the caller's buffer,
    /// as Linux's `write_null` (drivers/char/mem.c, used for both) does.
    fn discards_writes(&self) -> bool {
        false
    }
    /// Device-specific `ioctl(2)`: return `Some(result)` to answer `cmd` (with `arg` the
    /// argument bytes, see [`crate::ioctl_arg_size`]), `None` to let guest-fs answer it
    /// (terminal ioctls for ttys, `ENOTTY` otherwise).
    fn ioctl(&self, cmd: u32, arg: &mut [u8]) -> Option<Result<i64>> {
        let _ = (cmd, arg);
        None
    }
}

/// `/dev/null`: reads end of file, writes are discarded (`null(4)`).
pub struct NullDevice;

impl CharDevice for NullDevice {
    fn read(&self, _buf: &mut [u8]) -> Result<usize> {
        Ok(0)
    }
    fn write(&self, buf: &[u8]) -> Result<usize> {
        Ok(buf.len())
    }
    fn discards_writes(&self) -> bool {
        true
    }
}

/// `/dev/zero`: reads zero bytes, writes are discarded (`zero(4)`).
pub struct ZeroDevice;

impl CharDevice for ZeroDevice {
    fn read(&self, buf: &mut [u8]) -> Result<usize> {
        buf.fill(0);
        Ok(buf.len())
    }
    fn write(&self, buf: &[u8]) -> Result<usize> {
        Ok(buf.len())
    }
    fn discards_writes(&self) -> bool {
        true
    }
}

/// `/dev/full`: reads zero bytes, writes fail with `ENOSPC` (`full(4)`).
pub struct FullDevice;

impl CharDevice for FullDevice {
    fn read(&self, buf: &mut [u8]) -> Result<usize> {
        buf.fill(0);
        Ok(buf.len())
    }
    fn write(&self, _buf: &[u8]) -> Result<usize> {
        Err(crate::errno::Errno::ENOSPC)
    }
}

/// `/dev/random` and `/dev/urandom`: a ChaCha20 keystream (RFC 8439 block function) keyed by
/// [`crate::Vfs::seed_random`]; writes are mixed into the key (`random(4)`: writing adds to
/// the pool without crediting entropy). Never blocks.
pub struct RandomDevice {
    rng: Mutex<ChaCha20>,
}

impl RandomDevice {
    /// A generator with the given 32-byte key.
    pub fn new(seed: &[u8; 32]) -> Self {
        Self { rng: Mutex::new(ChaCha20::new(seed)) }
    }

    /// Replaces the key (resets the stream).
    pub fn reseed(&self, seed: &[u8; 32]) {
        *self.rng.lock() = ChaCha20::new(seed);
    }
}

impl CharDevice for RandomDevice {
    fn read(&self, buf: &mut [u8]) -> Result<usize> {
        self.rng.lock().fill(buf);
        Ok(buf.len())
    }
    fn write(&self, buf: &[u8]) -> Result<usize> {
        self.rng.lock().mix(buf);
        Ok(buf.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_zero_random() {
        let mut b = [7u8; 64];
        assert_eq!(NullDevice.read(&mut b), Ok(0));
        assert_eq!(NullDevice.write(&b), Ok(64));
        assert_eq!(ZeroDevice.read(&mut b), Ok(64));
        assert!(b.iter().all(|&x| x == 0));
        let r = RandomDevice::new(&[1; 32]);
        let mut a = [0u8; 64];
        let mut c = [0u8; 64];
        r.read(&mut a).unwrap();
        r.read(&mut c).unwrap();
        assert_ne!(a, c, "stream must advance");
        assert_ne!(a, [0u8; 64]);
        let r2 = RandomDevice::new(&[1; 32]);
        let mut a2 = [0u8; 64];
        r2.read(&mut a2).unwrap();
        assert_eq!(a, a2, "same seed, same stream");
        r2.write(b"entropy").unwrap();
        let mut c2 = [0u8; 64];
        r2.read(&mut c2).unwrap();
        assert_ne!(c, c2, "writes change the stream");
    }
}
