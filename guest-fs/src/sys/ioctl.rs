//! `ioctl(2)` for files and terminals (`ioctl_tty(2)`, `ioctl_fionread`): the kernel copies
//! [`ioctl_arg_size`] bytes of the argument in, calls [`ioctl`], and copies them back out.

use crate::errno::{Errno, Result};
use crate::fdtable::FdTable;
use crate::file::Target;
use crate::tty::Termios;
use linux_raw_sys::general as g;

/// `TCGETS`: read termios.
pub const TCGETS: u32 = 0x5401;
/// `TCSETS`: set termios now.
pub const TCSETS: u32 = 0x5402;
/// `TCSETSW`: set termios after output drains.
pub const TCSETSW: u32 = 0x5403;
/// `TCSETSF`: drain, flush input, set termios.
pub const TCSETSF: u32 = 0x5404;
/// `TCSBRK`: drain / send break.
pub const TCSBRK: u32 = 0x5409;
/// `TCXONC`: flow control.
pub const TCXONC: u32 = 0x540A;
/// `TCFLSH`: flush queues.
pub const TCFLSH: u32 = 0x540B;
/// `TIOCSCTTY`: make controlling terminal.
pub const TIOCSCTTY: u32 = 0x540E;
/// `TIOCGPGRP`: foreground process group.
pub const TIOCGPGRP: u32 = 0x540F;
/// `TIOCSPGRP`: set foreground process group.
pub const TIOCSPGRP: u32 = 0x5410;
/// `TIOCOUTQ`: bytes in the output queue.
pub const TIOCOUTQ: u32 = 0x5411;
/// `TIOCGWINSZ`: window size.
pub const TIOCGWINSZ: u32 = 0x5413;
/// `TIOCSWINSZ`: set window size.
pub const TIOCSWINSZ: u32 = 0x5414;
/// `FIONREAD` (`TIOCINQ`): bytes readable.
pub const FIONREAD: u32 = 0x541B;
/// `FIONBIO`: set/clear `O_NONBLOCK`.
pub const FIONBIO: u32 = 0x5421;
/// `TIOCNOTTY`: give up the controlling terminal.
pub const TIOCNOTTY: u32 = 0x5422;
/// `TIOCGSID`: session of the terminal.
pub const TIOCGSID: u32 = 0x5429;
/// `FIONCLEX`: clear close-on-exec.
pub const FIONCLEX: u32 = 0x5450;
/// `FIOCLEX`: set close-on-exec.
pub const FIOCLEX: u32 = 0x5451;

/// Bytes of argument memory `cmd` reads or writes (0 for none or an integer argument
/// passed by value, which the kernel puts in `arg` as 8 little-endian bytes for `TCSBRK`,
/// `TCXONC`, `TCFLSH`, `TIOCSCTTY`). `None`: unknown here (the kernel passes an empty slice
/// and a device hook may still answer).
pub fn ioctl_arg_size(cmd: u32) -> Option<usize> {
    Some(match cmd {
        TCGETS | TCSETS | TCSETSW | TCSETSF => 36,
        TIOCGWINSZ | TIOCSWINSZ => 8,
        TIOCGPGRP | TIOCSPGRP | TIOCGSID | FIONREAD | FIONBIO | TIOCOUTQ => 4,
        TCSBRK | TCXONC | TCFLSH | TIOCSCTTY => 8,
        TIOCNOTTY | FIONCLEX | FIOCLEX => 0,
        _ => return None,
    })
}

fn arg_n<const N: usize>(arg: &mut [u8]) -> Result<&mut [u8; N]> {
    arg.get_mut(..N).and_then(|s| s.try_into().ok()).ok_or(Errno::EFAULT)
}

fn get_i32(arg: &mut [u8]) -> Result<i32> {
    Ok(i32::from_le_bytes(*arg_n::<4>(arg)?))
}

/// `ioctl(2)` on `fd` with `arg` holding the argument bytes (see [`ioctl_arg_size`]).
///
/// Any fd: `FIOCLEX`, `FIONCLEX`, `FIONBIO`. Regular files: `FIONREAD` (bytes from the
/// offset to the end). Terminals (a [`crate::CharDevice`] with `is_tty`): `TCGETS`,
/// `TCSETS*`, `TIOCGWINSZ`, `TIOCSWINSZ`, `TIOCGPGRP`, `TIOCSPGRP`, `TIOCGSID`, `FIONREAD`
/// (0), `TIOCOUTQ` (0), `TCSBRK`, `TCXONC`, `TCFLSH`, `TIOCSCTTY`, `TIOCNOTTY`, after the
/// driver's own [`crate::CharDevice::ioctl`] hook declines. Otherwise `ENOTTY`; `EFAULT`
/// when `arg` is shorter than the command needs; `EBADF` on `O_PATH`.
pub fn ioctl(fds: &mut FdTable, fd: i32, cmd: u32, arg: &mut [u8]) -> Result<i64> {
    let f = fds.get(fd)?;
    if f.is_path_only() {
        return Err(Errno::EBADF);
    }
    match cmd {
        FIOCLEX | FIONCLEX => {
            fds.set_cloexec(fd, cmd == FIOCLEX)?;
            return Ok(0);
        }
        FIONBIO => {
            let on = get_i32(arg)? != 0;
            let fl = f.status_flags();
            f.set_status_flags(if on { fl | g::O_NONBLOCK } else { fl & !g::O_NONBLOCK });
            return Ok(0);
        }
        _ => {}
    }
    match &f.target {
        Target::Inode(i) => {
            if cmd == FIONREAD && !i.is_dir() {
                let avail = i.size().saturating_sub(f.offset()).min(i32::MAX as u64) as i32;
                arg_n::<4>(arg)?.copy_from_slice(&avail.to_le_bytes());
                return Ok(0);
            }
            Err(Errno::ENOTTY)
        }
        Target::Custom { ops, .. } => ops.ioctl(cmd, arg),
        Target::Foreign { file, inode } => {
            if cmd == FIONREAD && !inode.is_dir() {
                let size = crate::foreign::getattr(inode)?.size;
                let avail = size.saturating_sub(f.offset()).min(i32::MAX as u64) as i32;
                arg_n::<4>(arg)?.copy_from_slice(&avail.to_le_bytes());
                return Ok(0);
            }
            file.ioctl(cmd, arg)
        }
        Target::Device { dev, tty, .. } => {
            if let Some(r) = dev.ioctl(cmd, arg) {
                return r;
            }
            let Some(tty) = tty else {
                return Err(Errno::ENOTTY);
            };
            let mut t = tty.lock();
            match cmd {
                TCGETS => arg_n::<36>(arg)?.copy_from_slice(&t.termios.to_bytes()),
                TCSETS | TCSETSW | TCSETSF => t.termios = Termios::from_bytes(arg_n::<36>(arg)?),
                TIOCGWINSZ => {
                    let a = arg_n::<8>(arg)?;
                    for (k, v) in t.winsize.iter().enumerate() {
                        a[k * 2..k * 2 + 2].copy_from_slice(&v.to_le_bytes());
                    }
                }
                TIOCSWINSZ => {
                    let a = *arg_n::<8>(arg)?;
                    for (k, v) in t.winsize.iter_mut().enumerate() {
                        *v = u16::from_le_bytes([a[k * 2], a[k * 2 + 1]]);
                    }
                }
                TIOCGPGRP => arg_n::<4>(arg)?.copy_from_slice(&t.pgrp.to_le_bytes()),
                TIOCSPGRP => {
                    let p = get_i32(arg)?;
                    if p < 0 {
                        return Err(Errno::EINVAL);
                    }
                    t.pgrp = p;
                }
                TIOCGSID => arg_n::<4>(arg)?.copy_from_slice(&t.sid.to_le_bytes()),
                FIONREAD | TIOCOUTQ => arg_n::<4>(arg)?.copy_from_slice(&0i32.to_le_bytes()),
                TCSBRK | TCXONC | TCFLSH | TIOCSCTTY | TIOCNOTTY => {}
                _ => return Err(Errno::ENOTTY),
            }
            Ok(0)
        }
    }
}
