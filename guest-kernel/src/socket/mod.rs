//! The socket layer: the [`Socket`] trait every protocol family implements, the
//! [`Family`] table `socket(2)` and `socketpair(2)` dispatch through, and [`SocketFile`], the
//! `guest_fs::FileOps` object a socket is in an fd table (so `read`/`write`/`poll`/`close`
//! work on it like on any file). AF_UNIX is [`unix`]; AF_INET/AF_INET6 (the networking
//! issue) plug in as another [`Family`] in [`FAMILIES`]; other families are `EAFNOSUPPORT`.
//!
//! Blocking follows the kernel's rule (`crate::waitq`): an operation that cannot complete
//! registers the caller on the socket's wait queue under the socket's lock and returns
//! `EAGAIN`; the syscall layer (`crate::sys::net`) turns that into a block-and-re-run or
//! returns it (`O_NONBLOCK`, `MSG_DONTWAIT`). An operation therefore changes nothing
//! before it knows it can complete.
//!
//! Trust: addresses, option values and control messages come from guest user memory,
//! copied in by the syscall layer; every length is checked here before use.

pub mod cmsg;
pub mod unix;

use alloc::sync::Arc;
use alloc::vec::Vec;
use guest_fs::{Errno, FileOps, OpenFile, Stat};

/// `AF_UNIX` (`<bits/socket.h>`).
pub const AF_UNIX: u16 = 1;
/// `SOCK_STREAM`.
pub const SOCK_STREAM: u32 = 1;
/// `SOCK_DGRAM`.
pub const SOCK_DGRAM: u32 = 2;
/// `SOCK_SEQPACKET`.
pub const SOCK_SEQPACKET: u32 = 5;
/// `SOCK_NONBLOCK` (= `O_NONBLOCK`), a flag of `socket(2)`'s type argument.
pub const SOCK_NONBLOCK: u32 = 0o4000;
/// `SOCK_CLOEXEC` (= `O_CLOEXEC`).
pub const SOCK_CLOEXEC: u32 = 0o2_000_000;

/// `SOL_SOCKET` (`<asm-generic/socket.h>`).
pub const SOL_SOCKET: i32 = 1;
/// `SO_TYPE`.
pub const SO_TYPE: i32 = 3;
/// `SO_ERROR`.
pub const SO_ERROR: i32 = 4;
/// `SO_SNDBUF`.
pub const SO_SNDBUF: i32 = 7;
/// `SO_RCVBUF`.
pub const SO_RCVBUF: i32 = 8;
/// `SO_PASSCRED`.
pub const SO_PASSCRED: i32 = 16;
/// `SO_PEERCRED`.
pub const SO_PEERCRED: i32 = 17;
/// `SO_ACCEPTCONN`.
pub const SO_ACCEPTCONN: i32 = 30;
/// `SO_PROTOCOL`.
pub const SO_PROTOCOL: i32 = 38;
/// `SO_DOMAIN`.
pub const SO_DOMAIN: i32 = 39;

/// `MSG_PEEK` (`<bits/socket.h>`).
pub const MSG_PEEK: u32 = 0x2;
/// `MSG_CTRUNC`.
pub const MSG_CTRUNC: u32 = 0x8;
/// `MSG_TRUNC`.
pub const MSG_TRUNC: u32 = 0x20;
/// `MSG_DONTWAIT`.
pub const MSG_DONTWAIT: u32 = 0x40;
/// `MSG_EOR`.
pub const MSG_EOR: u32 = 0x80;
/// `MSG_WAITALL`.
pub const MSG_WAITALL: u32 = 0x100;
/// `MSG_NOSIGNAL`.
pub const MSG_NOSIGNAL: u32 = 0x4000;
/// `MSG_CMSG_CLOEXEC`.
pub const MSG_CMSG_CLOEXEC: u32 = 0x4000_0000;

/// `SHUT_RD`/`SHUT_WR`/`SHUT_RDWR` + 1 as Linux's `sk_shutdown` bits: receive side.
pub const RCV_SHUTDOWN: u32 = 1;
/// Send side.
pub const SEND_SHUTDOWN: u32 = 2;

/// Credentials a message carries and `SO_PEERCRED` reports (`struct ucred`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ucred {
    /// Process id.
    pub pid: i32,
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

/// The calling process, as a socket operation needs it: credentials, and the filesystem
/// context and fd table path names are resolved against (AF_UNIX path names).
pub struct Caller {
    /// Credentials (`SO_PEERCRED`, `SCM_CREDENTIALS`).
    pub cred: Ucred,
    /// Root, cwd, umask (`None` for plain `read`/`write`, which resolve no names).
    pub fs: Option<guest_fs::FsContext>,
    /// The fd table (for `*at` resolution; sockets resolve from the cwd).
    pub fds: guest_fs::FdTable,
}

/// One message to send (`sendmsg(2)`): the gathered bytes, a destination, passed fds and
/// explicit credentials.
pub struct SendMsg {
    /// The bytes.
    pub data: Vec<u8>,
    /// Destination address (`msg_name`), raw `sockaddr` bytes.
    pub addr: Option<Vec<u8>>,
    /// `SCM_RIGHTS` descriptions.
    pub fds: Vec<Arc<OpenFile>>,
    /// `SCM_CREDENTIALS`, if given.
    pub cred: Option<Ucred>,
    /// `MSG_*` flags.
    pub flags: u32,
}

/// What a receive returns.
#[derive(Default)]
pub struct Recvd {
    /// The bytes copied (at most the buffer's length).
    pub data: Vec<u8>,
    /// The return value: bytes copied, or the datagram's full length with `MSG_TRUNC`.
    pub len: usize,
    /// `msg_flags` (`MSG_TRUNC`, `MSG_EOR`...; `MSG_CTRUNC` is added by the syscall layer).
    pub flags: u32,
    /// Sender's address (raw `sockaddr` bytes), for `msg_name`.
    pub from: Option<Vec<u8>>,
    /// Passed descriptions (`SCM_RIGHTS`), to install.
    pub fds: Vec<Arc<OpenFile>>,
    /// Sender's credentials when `SO_PASSCRED` is on (`SCM_CREDENTIALS`).
    pub cred: Option<Ucred>,
}

/// A socket of some protocol family. Errors are Linux errnos; `EAGAIN` means "would block"
/// and the socket has registered the caller on the wait queue it would wait on.
pub trait Socket: Send + Sync {
    /// `SO_DOMAIN` (`AF_*`).
    fn family(&self) -> u16;
    /// `SO_TYPE` (`SOCK_*`, without flags).
    fn sock_type(&self) -> u32;
    /// `SO_PROTOCOL`.
    fn protocol(&self) -> u32 {
        0
    }
    /// `bind(2)` to raw `sockaddr` bytes.
    fn bind(&self, cx: &Caller, addr: &[u8]) -> Result<(), Errno>;
    /// `listen(2)`.
    fn listen(&self, cx: &Caller, backlog: i32) -> Result<(), Errno>;
    /// `connect(2)`.
    fn connect(&self, cx: &Caller, addr: &[u8]) -> Result<(), Errno>;
    /// `accept4(2)`: the next connection (`EAGAIN` when none is queued).
    fn accept(&self, cx: &Caller) -> Result<Arc<dyn Socket>, Errno>;
    /// `sendmsg(2)`: bytes taken.
    fn send(&self, cx: &Caller, msg: SendMsg) -> Result<usize, Errno>;
    /// `recvmsg(2)` into at most `len` bytes with `MSG_*` `flags` (`MSG_DONTWAIT` is set
    /// for nonblocking descriptions too).
    fn recv(&self, cx: &Caller, len: usize, flags: u32) -> Result<Recvd, Errno>;
    /// `shutdown(2)` with `how` = `SHUT_RD` (0), `SHUT_WR` (1), `SHUT_RDWR` (2).
    fn shutdown(&self, how: u32) -> Result<(), Errno>;
    /// `getsockname(2)`: raw `sockaddr` bytes.
    fn local_name(&self) -> Vec<u8>;
    /// `getpeername(2)` (`ENOTCONN`).
    fn peer_name(&self) -> Result<Vec<u8>, Errno>;
    /// `getsockopt(2)`: the option's value bytes (`ENOPROTOOPT`).
    fn getsockopt(&self, level: i32, name: i32) -> Result<Vec<u8>, Errno>;
    /// `setsockopt(2)`.
    fn setsockopt(&self, level: i32, name: i32, val: &[u8]) -> Result<(), Errno>;
    /// Readiness, by the contract of `guest_fs::FileOps::poll`.
    fn poll(&self, events: u32) -> u32;
    /// Event counter, as `guest_fs::FileOps::poll_seq`.
    fn poll_seq(&self, events: u32) -> u64;
    /// The last file reference went (`close(2)` of the last fd): tell the peer, drop the name.
    fn release(&self);
    /// `fstat(2)` inode number.
    fn ino(&self) -> u64;
}

/// Two connected sockets (`socketpair(2)`).
pub type Pair = (Arc<dyn Socket>, Arc<dyn Socket>);

/// A protocol family: makes sockets of its `AF_*`.
pub trait Family: Sync {
    /// The `AF_*` value.
    fn domain(&self) -> u16;
    /// `socket(2)` with `ty` (no flags) and `protocol` (`EPROTONOSUPPORT`, `ESOCKTNOSUPPORT`).
    fn create(&self, ty: u32, protocol: u32) -> Result<Arc<dyn Socket>, Errno>;
    /// `socketpair(2)`: two connected sockets (`EOPNOTSUPP` where the family has none).
    fn pair(&self, cx: &Caller, ty: u32, protocol: u32) -> Result<Pair, Errno> {
        let _ = (cx, ty, protocol);
        Err(Errno::EOPNOTSUPP)
    }
}

/// The families `socket(2)` knows (AF_INET/AF_INET6 are added here by the networking issue).
pub static FAMILIES: &[&dyn Family] = &[&unix::Unix];

/// The family for `domain` (`EAFNOSUPPORT` when none).
pub fn family(domain: u32) -> Result<&'static dyn Family, Errno> {
    FAMILIES
        .iter()
        .copied()
        .find(|f| u32::from(f.domain()) == domain)
        .ok_or(Errno(linux_raw_sys::errno::EAFNOSUPPORT))
}

/// A socket as an open file. Dropping it (the last description went) releases the socket.
pub struct SocketFile(pub Arc<dyn Socket>);

impl Drop for SocketFile {
    fn drop(&mut self) {
        self.0.release();
    }
}

/// The caller as a plain reader/writer sees it (no VFS context: `read`/`write` never
/// resolve names).
fn anonymous_caller() -> Caller {
    let tid = crate::waitq::current().map_or(0, |t| t.tid);
    let pid = crate::proc::lookup_thread(tid).map_or(tid, |(p, _)| p.pid);
    Caller { cred: Ucred { pid, uid: 0, gid: 0 }, fs: None, fds: guest_fs::FdTable::new() }
}

impl FileOps for SocketFile {
    fn read(&self, buf: &mut [u8], flags: u32) -> Result<usize, Errno> {
        let dontwait = if flags & SOCK_NONBLOCK != 0 { MSG_DONTWAIT } else { 0 };
        let r = self.0.recv(&anonymous_caller(), buf.len(), dontwait)?;
        buf[..r.data.len()].copy_from_slice(&r.data);
        Ok(r.data.len())
    }
    fn write(&self, buf: &[u8], _flags: u32) -> Result<usize, Errno> {
        let msg = SendMsg { data: buf.to_vec(), addr: None, fds: Vec::new(), cred: None, flags: 0 };
        self.0.send(&anonymous_caller(), msg)
    }
    fn stat(&self) -> Stat {
        Stat { st_dev: 0x8, st_ino: self.0.ino(), st_nlink: 1, st_mode: 0o140_777, st_blksize: 4096, ..Stat::default() }
    }
    fn poll(&self, events: u32) -> u32 {
        self.0.poll(events)
    }
    fn poll_seq(&self, events: u32) -> u64 {
        self.0.poll_seq(events)
    }
    fn as_any(&self) -> Option<&dyn core::any::Any> {
        Some(self)
    }
}

/// Wraps `s` in a new open file description (`O_RDWR` plus `O_NONBLOCK` if asked).
pub fn open_file(s: Arc<dyn Socket>, nonblock: bool) -> Arc<OpenFile> {
    OpenFile::new_custom(Arc::new(SocketFile(s)), 2 | if nonblock { SOCK_NONBLOCK } else { 0 })
}

/// The socket behind a description (`ENOTSOCK` for other files).
pub fn of_file(f: &OpenFile) -> Result<Arc<dyn Socket>, Errno> {
    f.custom()
        .and_then(|o| o.as_any())
        .and_then(|a| a.downcast_ref::<SocketFile>())
        .map(|s| s.0.clone())
        .ok_or(Errno::ENOTSOCK)
}
