//! Descriptor operations: `close(2)`, `dup`/`dup2`/`dup3(2)`, `fcntl(2)`.

use crate::errno::{Errno, Result};
use crate::fdtable::FdTable;
use linux_raw_sys::general as g;

/// `close(2)`: `EBADF` if `fd` is not open. The description is dropped here when this was
/// its last fd (use [`FdTable::close`] to get it back instead).
pub fn close(fds: &mut FdTable, fd: i32) -> Result<()> {
    fds.close(fd).map(drop)
}

/// `dup(2)`: the lowest free fd now refers to `oldfd`'s description (close-on-exec clear).
pub fn dup(fds: &mut FdTable, oldfd: i32) -> Result<i32> {
    let f = fds.get(oldfd)?;
    fds.alloc(f, false, 0)
}

/// `dup2(2)`: `newfd` refers to `oldfd`'s description, closing what `newfd` was; returns
/// `newfd` unchanged when equal to a valid `oldfd`. `EBADF` for a bad `oldfd` or `newfd`
/// out of range.
pub fn dup2(fds: &mut FdTable, oldfd: i32, newfd: i32) -> Result<i32> {
    let f = fds.get(oldfd)?;
    if oldfd == newfd {
        return Ok(newfd);
    }
    fds.install_at(newfd, f, false)?;
    Ok(newfd)
}

/// `dup3(2)`: as `dup2` with `O_CLOEXEC` in `flags`; `EINVAL` if `oldfd == newfd` or other
/// flags are set.
pub fn dup3(fds: &mut FdTable, oldfd: i32, newfd: i32, flags: u32) -> Result<i32> {
    if flags & !g::O_CLOEXEC != 0 || oldfd == newfd {
        return Err(Errno::EINVAL);
    }
    let f = fds.get(oldfd)?;
    fds.install_at(newfd, f, flags & g::O_CLOEXEC != 0)?;
    Ok(newfd)
}

/// `fcntl(2)` with an integer argument.
///
/// `F_DUPFD`/`F_DUPFD_CLOEXEC` (lowest fd `>= arg`; `EINVAL` if `arg` is past the limit,
/// `EMFILE`), `F_GETFD`/`F_SETFD` (`FD_CLOEXEC`), `F_GETFL`/`F_SETFL` (`O_APPEND`,
/// `O_NONBLOCK`, `O_ASYNC`, `O_NOATIME`; `EBADF` on `O_PATH`), record locks
/// (`F_GETLK`, `F_SETLK`, `F_SETLKW`, `F_OFD_*`) succeed without locking: for `F_GETLK`
/// the kernel must store `F_UNLCK` (2) in the caller's `l_type`; `F_SETOWN`/`F_GETOWN` 0;
/// anything else `EINVAL`.
pub fn fcntl(fds: &mut FdTable, fd: i32, cmd: u32, arg: u64) -> Result<i64> {
    let f = fds.get(fd)?;
    match cmd {
        g::F_DUPFD | g::F_DUPFD_CLOEXEC => {
            let min = i32::try_from(arg).map_err(|_| Errno::EINVAL)?;
            Ok(i64::from(fds.alloc(f, cmd == g::F_DUPFD_CLOEXEC, min)?))
        }
        g::F_GETFD => Ok(if fds.cloexec(fd)? { i64::from(g::FD_CLOEXEC) } else { 0 }),
        g::F_SETFD => {
            fds.set_cloexec(fd, arg & u64::from(g::FD_CLOEXEC) != 0)?;
            Ok(0)
        }
        g::F_GETFL => Ok(i64::from(f.status_flags())),
        g::F_SETFL => {
            if f.is_path_only() {
                return Err(Errno::EBADF);
            }
            f.set_status_flags(arg as u32);
            Ok(0)
        }
        g::F_GETLK | g::F_SETLK | g::F_SETLKW | g::F_OFD_GETLK | g::F_OFD_SETLK | g::F_OFD_SETLKW => {
            if f.is_path_only() {
                return Err(Errno::EBADF);
            }
            Ok(0)
        }
        g::F_SETOWN | g::F_GETOWN => Ok(0),
        _ => Err(Errno::EINVAL),
    }
}
