//! Linux error numbers as a small newtype, with the names `Debug` prints.

use core::fmt;
use linux_raw_sys::errno as e;

/// A Linux errno value (positive, as in `errno(3)`; the kernel negates it for the syscall
/// return). Numbers come from `linux-raw-sys` (the kernel's `asm-generic/errno*.h`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno(pub u32);

/// Result of a guest-fs operation: a value or a Linux errno.
pub type Result<T> = core::result::Result<T, Errno>;

macro_rules! errnos {
    ($($name:ident),* $(,)?) => {
        impl Errno {
            $(
                #[doc = concat!("`", stringify!($name), "` (see `errno(3)`).")]
                pub const $name: Errno = Errno(e::$name);
            )*

            /// The symbolic name (`"ENOENT"`), or `None` for a number not listed here.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $(x if x == e::$name => Some(stringify!($name)),)*
                    _ => None,
                }
            }
        }
    };
}

errnos!(
    EPERM, ENOENT, ESRCH, EINTR, EIO, ENXIO, E2BIG, ENOEXEC, EBADF, ECHILD, EAGAIN, ENOMEM,
    EACCES, EFAULT, ENOTBLK, EBUSY, EEXIST, EXDEV, ENODEV, ENOTDIR, EISDIR, EINVAL, ENFILE,
    EMFILE, ENOTTY, ETXTBSY, EFBIG, ENOSPC, ESPIPE, EROFS, EMLINK, EPIPE, EDOM, ERANGE,
    EDEADLK, ENAMETOOLONG, ENOLCK, ENOSYS, ENOTEMPTY, ELOOP, ENODATA, EOVERFLOW, EBADFD,
    ENOTSOCK, EOPNOTSUPP, ETIMEDOUT, ENOTCONN, ECONNREFUSED, EINPROGRESS, EALREADY,
    ESTALE, EDQUOT, ECANCELED, ENOTRECOVERABLE, EWOULDBLOCK, EPROTOTYPE, EADDRINUSE, EISCONN,
    EMSGSIZE, ENOPROTOOPT, ENOBUFS, ECONNRESET, EAFNOSUPPORT, EPROTONOSUPPORT, ESOCKTNOSUPPORT,
);

impl Errno {
    /// The value a Linux syscall returns for this error: `-errno`.
    pub fn as_syscall_ret(self) -> i64 {
        -i64::from(self.0)
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // EAGAIN and EWOULDBLOCK (and ENOTSUP/EOPNOTSUPP) share a number; the first name wins.
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "Errno({})", self.0),
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::format;

    #[test]
    fn debug_prints_names() {
        assert_eq!(format!("{:?}", Errno::ENOENT), "ENOENT");
        assert_eq!(format!("{:?}", Errno::EAGAIN), "EAGAIN");
        assert_eq!(format!("{:?}", Errno(9999)), "Errno(9999)");
        assert_eq!(Errno::EBADF.as_syscall_ret(), -9);
    }
}
