//! The console: host stdin/stdout/stderr through the `CONSOLE_READ`/`CONSOLE_WRITE`
//! hypercalls, as the first process's fds 0, 1, 2 ([`StdioFile`]) and as the character devices
//! `/dev/console` (5:1) and `/dev/tty` (5:0) ([`ConsoleDevice`]).

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};
use guest_fs::{CharDevice, Errno, FileOps, Stat};

/// Host stdin/stdout/stderr tty flags (`guest_abi::boot::CONSOLE_*`).
static CONSOLE_FLAGS: AtomicU32 = AtomicU32::new(0);
/// Terminal size (rows << 16 | cols).
static WINSIZE: AtomicU32 = AtomicU32::new(0);

/// Records the console facts from `BootInfo`.
pub fn init(flags: u32, rows: u16, cols: u16) {
    CONSOLE_FLAGS.store(flags, Ordering::Relaxed);
    WINSIZE.store((u32::from(rows) << 16) | u32::from(cols), Ordering::Relaxed);
}

/// Largest single console transfer, bytes.
const CHUNK: usize = 64 << 10;

/// Writes `data` to host fd 1 or 2. Returns bytes written.
pub fn write(fd: u64, data: &[u8]) -> Result<usize, Errno> {
    let mut done = 0;
    while done < data.len() {
        let n = (data.len() - done).min(CHUNK);
        // The heap lives in the physmap, so a heap copy has a GPA H can read.
        let bounce: Vec<u8> = data[done..done + n].to_vec();
        let gpa = crate::mm::kva_to_gpa(bounce.as_ptr() as u64).ok_or(Errno::EIO)?;
        let r = crate::hcall::console_write(fd, gpa, n as u64);
        if r < 0 {
            return if done > 0 { Ok(done) } else { Err(Errno((-r) as u32)) };
        }
        done += (r as usize).min(n);
        if r == 0 {
            break;
        }
    }
    Ok(done)
}

/// Reads host stdin into `buf`. Returns bytes read (0 = end of file).
pub fn read(buf: &mut [u8]) -> Result<usize, Errno> {
    let n = buf.len().min(CHUNK);
    if n == 0 {
        return Ok(0);
    }
    let bounce: Vec<u8> = alloc::vec![0u8; n];
    let gpa = crate::mm::kva_to_gpa(bounce.as_ptr() as u64).ok_or(Errno::EIO)?;
    let r = crate::hcall::console_read(gpa, n as u64);
    if r < 0 {
        return Err(Errno((-r) as u32));
    }
    let got = (r as usize).min(n);
    buf[..got].copy_from_slice(&bounce[..got]);
    Ok(got)
}

/// `TCGETS`.
const TCGETS: u32 = 0x5401;
/// `TIOCGWINSZ`.
const TIOCGWINSZ: u32 = 0x5413;
/// `TIOCGPGRP`.
const TIOCGPGRP: u32 = 0x540f;

/// One of the first process's standard streams.
pub struct StdioFile {
    /// Host fd: 0, 1 or 2.
    pub host_fd: u64,
}

impl StdioFile {
    fn is_tty(&self) -> bool {
        CONSOLE_FLAGS.load(Ordering::Relaxed) & (1 << self.host_fd) != 0
    }
}

/// Linux default termios for a terminal in cooked mode (c_iflag ICRNL|IXON, c_oflag
/// OPOST|ONLCR, c_cflag B38400|CS8|CREAD|HUPCL, c_lflag ISIG|ICANON|ECHO|ECHOE|ECHOK|
/// ECHOCTL|ECHOKE|IEXTEN), 36 bytes (`struct termios` of the kernel ABI).
fn default_termios() -> [u8; 36] {
    let mut t = [0u8; 36];
    t[0..4].copy_from_slice(&0x0500u32.to_le_bytes());
    t[4..8].copy_from_slice(&0x0005u32.to_le_bytes());
    t[8..12].copy_from_slice(&0x04bfu32.to_le_bytes());
    t[12..16].copy_from_slice(&0x8a3bu32.to_le_bytes());
    let cc: [u8; 17] = [3, 28, 127, 21, 4, 0, 1, 0, 17, 19, 26, 0, 18, 15, 23, 22, 0];
    t[17..34].copy_from_slice(&cc);
    t
}

impl FileOps for StdioFile {
    fn read(&self, buf: &mut [u8], _flags: u32) -> Result<usize, Errno> {
        if self.host_fd != 0 {
            return Err(Errno::EBADF);
        }
        read(buf)
    }

    fn write(&self, buf: &[u8], _flags: u32) -> Result<usize, Errno> {
        match self.host_fd {
            1 | 2 => write(self.host_fd, buf),
            _ => Err(Errno::EBADF),
        }
    }

    fn stat(&self) -> Stat {
        let tty = self.is_tty();
        Stat {
            st_dev: 0x16,
            st_ino: 3 + self.host_fd,
            st_nlink: 1,
            st_mode: if tty { 0o020_620 } else { 0o010_600 },
            st_rdev: if tty { 136 << 8 } else { 0 },
            st_blksize: 4096,
            ..Stat::default()
        }
    }

    fn ioctl(&self, cmd: u32, arg: &mut [u8]) -> Result<i64, Errno> {
        if !self.is_tty() {
            return Err(Errno::ENOTTY);
        }
        match cmd {
            TCGETS if arg.len() >= 36 => {
                arg[..36].copy_from_slice(&default_termios());
                Ok(0)
            }
            TIOCGWINSZ if arg.len() >= 8 => {
                let ws = WINSIZE.load(Ordering::Relaxed);
                let (rows, cols) = ((ws >> 16) as u16, ws as u16);
                let (rows, cols) = if rows == 0 { (24, 80) } else { (rows, cols) };
                arg[..2].copy_from_slice(&rows.to_le_bytes());
                arg[2..4].copy_from_slice(&cols.to_le_bytes());
                arg[4..8].fill(0);
                Ok(0)
            }
            TIOCGPGRP if arg.len() >= 4 => {
                arg[..4].copy_from_slice(&1i32.to_le_bytes());
                Ok(0)
            }
            // TCSETS* and friends: accepted (the host terminal is not ours to change).
            0x5402..=0x5404 => Ok(0),
            _ => Err(Errno::ENOTTY),
        }
    }
}

/// `/dev/console` and `/dev/tty`: reads host stdin, writes host stdout.
pub struct ConsoleDevice;

impl CharDevice for ConsoleDevice {
    fn read(&self, buf: &mut [u8]) -> Result<usize, Errno> {
        read(buf)
    }
    fn write(&self, buf: &[u8]) -> Result<usize, Errno> {
        write(1, buf)
    }
    fn is_tty(&self) -> bool {
        true
    }
}
