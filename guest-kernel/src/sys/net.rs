//! Socket syscalls (`socket(2)` ... `recvmmsg(2)`): copy `sockaddr`s, `msghdr`s, iovecs and
//! control buffers in from user memory, call the socket (`crate::socket`), copy results
//! back. `EAGAIN` from a socket on a blocking description without `MSG_DONTWAIT` becomes a
//! block-and-re-run (`EBLOCK`); `EPIPE` from a send raises `SIGPIPE` unless `MSG_NOSIGNAL`.
//!
//! Trust: every user length is bounded before anything is allocated (addresses by
//! `sockaddr_storage`, iovecs by `UIO_MAXIOV` and `MAX_RW_COUNT`, control buffers by
//! `optmem_max`, option values by [`OPT_MAX`]); control messages are parsed by
//! `crate::socket::cmsg`, which checks every header.

use super::{Ctx, EBLOCK, KResult};
use crate::socket::{self as so, Caller, SendMsg, Socket, Ucred, cmsg};
use alloc::sync::Arc;
use alloc::vec::Vec;
use guest_fs::{Errno, OpenFile};

/// `sizeof(struct sockaddr_storage)`.
const SOCKADDR_MAX: usize = 128;
/// `UIO_MAXIOV`.
const UIO_MAXIOV: u64 = 1024;
/// `net.core.optmem_max`: the largest control buffer `sendmsg` takes (`ENOBUFS` past it).
const OPTMEM_MAX: usize = 20480;
/// Largest option value copied in, bytes.
const OPT_MAX: usize = 256;
/// Largest message gathered for one send, bytes (above every `SO_SNDBUF`).
const SEND_MAX: usize = 1 << 20;
/// `MSG_WAITFORONE`.
const MSG_WAITFORONE: u32 = 0x10000;

fn caller(cx: &Ctx<'_>) -> Caller {
    let p = cx.proc();
    let fs = p.fs.lock().clone();
    Caller { cred: Ucred { pid: p.pid, uid: 0, gid: 0 }, fs: Some(fs), fds: guest_fs::FdTable::new() }
}

fn socket_of(cx: &Ctx<'_>, fd: u64) -> Result<(Arc<OpenFile>, Arc<dyn Socket>), Errno> {
    let f = cx.proc().fds.lock().get(fd as i32)?;
    let s = so::of_file(&f)?;
    Ok((f, s))
}

/// `EAGAIN` on a blocking description (and no `MSG_DONTWAIT`) is "block and re-run".
fn would_block(f: &OpenFile, flags: u32, e: Errno) -> Errno {
    if e == Errno::EAGAIN && !f.is_nonblocking() && flags & so::MSG_DONTWAIT == 0 { EBLOCK } else { e }
}

/// The flags a receive passes down: `MSG_DONTWAIT` also for a nonblocking description.
fn recv_flags(f: &OpenFile, flags: u32) -> u32 {
    if f.is_nonblocking() { flags | so::MSG_DONTWAIT } else { flags }
}

fn read_addr(cx: &Ctx<'_>, va: u64, len: u64) -> Result<Vec<u8>, Errno> {
    if len as usize > SOCKADDR_MAX || (len as i32) < 0 {
        return Err(Errno::EINVAL);
    }
    cx.copy_in(va, len as usize)
}

/// Writes `addr` to `va` (cut to `*lenp`) and its full length to `lenp`, as
/// `move_addr_to_user` does; nothing when `va` is 0.
fn write_addr(cx: &Ctx<'_>, va: u64, lenp: u64, addr: &[u8]) -> Result<(), Errno> {
    if va == 0 || lenp == 0 {
        return Ok(());
    }
    let len: i32 = cx.read(lenp)?;
    if len < 0 {
        return Err(Errno::EINVAL);
    }
    let n = (len as usize).min(addr.len());
    cx.copy_out(va, &addr[..n])?;
    cx.write(lenp, &(addr.len() as u32))
}

fn install(cx: &Ctx<'_>, f: Arc<OpenFile>, cloexec: bool) -> Result<i32, Errno> {
    cx.proc().fds.lock().alloc(f, cloexec, 0)
}

/// `socket(2)`: dispatches on the family (`EAFNOSUPPORT` for unknown ones).
pub fn socket(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let ty = a[1] as u32;
    let flags = ty & (so::SOCK_NONBLOCK | so::SOCK_CLOEXEC);
    if ty & !(flags | 0xf) != 0 {
        return Err(Errno::EINVAL);
    }
    let s = so::family(a[0] as u32)?.create(ty & 0xf, a[2] as u32)?;
    let f = so::open_file(s, flags & so::SOCK_NONBLOCK != 0);
    install(cx, f, flags & so::SOCK_CLOEXEC != 0).map(i64::from)
}

/// `socketpair(2)`.
pub fn socketpair(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let ty = a[1] as u32;
    let flags = ty & (so::SOCK_NONBLOCK | so::SOCK_CLOEXEC);
    if ty & !(flags | 0xf) != 0 {
        return Err(Errno::EINVAL);
    }
    let (x, y) = so::family(a[0] as u32)?.pair(&caller(cx), ty & 0xf, a[2] as u32)?;
    let nb = flags & so::SOCK_NONBLOCK != 0;
    let cloexec = flags & so::SOCK_CLOEXEC != 0;
    let p = cx.proc();
    let (fx, fy) = {
        let mut fds = p.fds.lock();
        let fx = fds.alloc(so::open_file(x, nb), cloexec, 0)?;
        match fds.alloc(so::open_file(y, nb), cloexec, 0) {
            Ok(fy) => (fx, fy),
            Err(e) => {
                let closed = fds.close(fx);
                drop(fds);
                drop(closed);
                return Err(e);
            }
        }
    };
    if let Err(e) = cx.write(a[3], &[fx, fy]) {
        let mut fds = p.fds.lock();
        let c = (fds.close(fx), fds.close(fy));
        drop(fds);
        drop(c);
        return Err(e);
    }
    Ok(0)
}

/// `bind(2)`.
pub fn bind(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let (_, s) = socket_of(cx, a[0])?;
    let addr = read_addr(cx, a[1], a[2])?;
    s.bind(&caller(cx), &addr).map(|()| 0)
}

/// `listen(2)`.
pub fn listen(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let (_, s) = socket_of(cx, a[0])?;
    s.listen(&caller(cx), a[1] as i32).map(|()| 0)
}

/// `connect(2)`: a nonblocking socket whose listener's backlog is full gets `EAGAIN`.
pub fn connect(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let (f, s) = socket_of(cx, a[0])?;
    let addr = read_addr(cx, a[1], a[2])?;
    s.connect(&caller(cx), &addr).map(|()| 0).map_err(|e| would_block(&f, 0, e))
}

/// `accept4(2)` (`accept(2)` with `flags` 0).
pub fn accept4(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let flags = a[3] as u32;
    if flags & !(so::SOCK_NONBLOCK | so::SOCK_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    let (f, s) = socket_of(cx, a[0])?;
    let new = s.accept(&caller(cx)).map_err(|e| would_block(&f, 0, e))?;
    let peer = new.peer_name().unwrap_or_else(|_| Vec::from(so::AF_UNIX.to_le_bytes()));
    let fd = install(cx, so::open_file(new, flags & so::SOCK_NONBLOCK != 0), flags & so::SOCK_CLOEXEC != 0)?;
    write_addr(cx, a[1], a[2], &peer)?;
    Ok(i64::from(fd))
}

/// `shutdown(2)`.
pub fn shutdown(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let (_, s) = socket_of(cx, a[0])?;
    s.shutdown(a[1] as u32).map(|()| 0)
}

/// `getsockname(2)`.
pub fn getsockname(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let (_, s) = socket_of(cx, a[0])?;
    write_addr(cx, a[1], a[2], &s.local_name()).map(|()| 0)
}

/// `getpeername(2)`.
pub fn getpeername(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let (_, s) = socket_of(cx, a[0])?;
    let name = s.peer_name()?;
    write_addr(cx, a[1], a[2], &name).map(|()| 0)
}

/// `getsockopt(2)`: the value cut to `*optlen`, which becomes the length written.
pub fn getsockopt(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let (_, s) = socket_of(cx, a[0])?;
    let len: i32 = cx.read(a[4])?;
    if len < 0 {
        return Err(Errno::EINVAL);
    }
    let v = s.getsockopt(a[1] as i32, a[2] as i32)?;
    let n = (len as usize).min(v.len());
    cx.copy_out(a[3], &v[..n])?;
    cx.write(a[4], &(n as u32))?;
    Ok(0)
}

/// `setsockopt(2)`.
pub fn setsockopt(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let (_, s) = socket_of(cx, a[0])?;
    if (a[4] as i32) < 0 {
        return Err(Errno::EINVAL);
    }
    let v = cx.copy_in(a[3], (a[4] as usize).min(OPT_MAX))?;
    s.setsockopt(a[1] as i32, a[2] as i32, &v).map(|()| 0)
}

/// The `struct msghdr` fields (x86-64 layout, 56 bytes).
#[derive(Clone, Copy, Default)]
struct MsgHdr {
    name: u64,
    namelen: u32,
    iov: u64,
    iovlen: u64,
    control: u64,
    controllen: u64,
}

fn read_msghdr(cx: &Ctx<'_>, va: u64) -> Result<MsgHdr, Errno> {
    let w: [u64; 7] = cx.read(va)?;
    Ok(MsgHdr { name: w[0], namelen: w[1] as u32, iov: w[2], iovlen: w[3], control: w[4], controllen: w[5] })
}

fn iovecs(cx: &Ctx<'_>, h: &MsgHdr) -> Result<Vec<(u64, usize)>, Errno> {
    if h.iovlen > UIO_MAXIOV {
        return Err(Errno::EMSGSIZE);
    }
    super::fs::iovecs(cx, h.iov, h.iovlen)
}

/// Sends one message described by `h`.
fn send_one(cx: &Ctx<'_>, f: &OpenFile, s: &Arc<dyn Socket>, h: &MsgHdr, flags: u32) -> KResult {
    let iov = iovecs(cx, h)?;
    let total: usize = iov.iter().map(|v| v.1).sum();
    if total > SEND_MAX && s.sock_type() != so::SOCK_STREAM {
        return Err(Errno::EMSGSIZE);
    }
    let mut data = Vec::with_capacity(total.min(SEND_MAX));
    for &(base, len) in &iov {
        let len = len.min(SEND_MAX - data.len());
        data.extend_from_slice(&cx.copy_in(base, len)?);
    }
    let addr = if h.name != 0 && h.namelen != 0 { Some(read_addr(cx, h.name, u64::from(h.namelen))?) } else { None };
    let mut fds = Vec::new();
    let mut cred = None;
    if h.controllen > 0 {
        if h.controllen as usize > OPTMEM_MAX {
            return Err(Errno::ENOBUFS);
        }
        let ctl = cx.copy_in(h.control, h.controllen as usize)?;
        let table = cx.proc().fds.lock().clone();
        for m in cmsg::parse(&ctl)? {
            if m.level != so::SOL_SOCKET {
                continue;
            }
            match m.ty {
                cmsg::SCM_RIGHTS => {
                    let list = cmsg::rights(&m.data)?;
                    if fds.len() + list.len() > cmsg::SCM_MAX_FD {
                        return Err(Errno::EINVAL);
                    }
                    for fd in list {
                        fds.push(table.get(fd)?);
                    }
                }
                cmsg::SCM_CREDENTIALS => {
                    let (pid, uid, gid) = cmsg::credentials(&m.data)?;
                    cred = Some(Ucred { pid, uid, gid });
                }
                _ => return Err(Errno::EINVAL),
            }
        }
    }
    let msg = SendMsg { data, addr, fds, cred, flags };
    match s.send(&caller(cx), msg) {
        Ok(n) => Ok(n as i64),
        Err(Errno::EPIPE) => {
            if flags & so::MSG_NOSIGNAL == 0 {
                crate::signal::post(&cx.proc(), crate::signal::SIGPIPE);
            }
            Err(Errno::EPIPE)
        }
        Err(e) => Err(would_block(f, flags, e)),
    }
}

/// `sendmsg(2)`.
pub fn sendmsg(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let (f, s) = socket_of(cx, a[0])?;
    let h = read_msghdr(cx, a[1])?;
    send_one(cx, &f, &s, &h, a[2] as u32)
}

/// `sendto(2)` (`send(2)` with no address).
pub fn sendto(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let (f, s) = socket_of(cx, a[0])?;
    // A one-vector message on the caller's stack frame is not needed: build the header here.
    let h = MsgHdr { name: a[4], namelen: a[5] as u32, iov: 0, iovlen: 0, control: 0, controllen: 0 };
    let len = (a[2] as usize).min(guest_fs::MAX_RW_COUNT);
    if len > SEND_MAX && s.sock_type() != so::SOCK_STREAM {
        return Err(Errno::EMSGSIZE);
    }
    let data = cx.copy_in(a[1], len.min(SEND_MAX))?;
    let addr = if h.name != 0 && h.namelen != 0 { Some(read_addr(cx, h.name, u64::from(h.namelen))?) } else { None };
    let flags = a[3] as u32;
    let msg = SendMsg { data, addr, fds: Vec::new(), cred: None, flags };
    match s.send(&caller(cx), msg) {
        Ok(n) => Ok(n as i64),
        Err(Errno::EPIPE) => {
            if flags & so::MSG_NOSIGNAL == 0 {
                crate::signal::post(&cx.proc(), crate::signal::SIGPIPE);
            }
            Err(Errno::EPIPE)
        }
        Err(e) => Err(would_block(&f, flags, e)),
    }
}

/// `sendmmsg(2)`: sends until one fails; returns how many went (the error if none did).
pub fn sendmmsg(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let (f, s) = socket_of(cx, a[0])?;
    let vlen = a[2].min(UIO_MAXIOV);
    let flags = a[3] as u32;
    let mut sent = 0u64;
    while sent < vlen {
        let va = a[1] + sent * 64;
        let r = read_msghdr(cx, va).and_then(|h| send_one(cx, &f, &s, &h, flags | if sent > 0 { so::MSG_DONTWAIT } else { 0 }));
        match r {
            Ok(n) => cx.write(va + 56, &(n as u32))?,
            Err(e) if sent == 0 => return Err(e),
            Err(_) => break,
        }
        sent += 1;
    }
    Ok(sent as i64)
}

/// Receives one message into the buffers `h` describes; returns the byte count and writes
/// `msg_namelen`, `msg_controllen` and `msg_flags` back at `hva`.
fn recv_one(cx: &Ctx<'_>, f: &OpenFile, s: &Arc<dyn Socket>, hva: u64, h: &MsgHdr, flags: u32) -> KResult {
    let iov = iovecs(cx, h)?;
    let total: usize = iov.iter().map(|v| v.1).sum();
    let r = s.recv(&caller(cx), total, recv_flags(f, flags)).map_err(|e| would_block(f, flags, e))?;
    let mut at = 0;
    for &(base, len) in &iov {
        if at >= r.data.len() {
            break;
        }
        let n = len.min(r.data.len() - at);
        cx.copy_out(base, &r.data[at..at + n])?;
        at += n;
    }
    let mut w = cmsg::Writer::new((h.controllen as usize).min(OPTMEM_MAX));
    if let Some(c) = r.cred {
        let mut v = Vec::with_capacity(12);
        v.extend_from_slice(&c.pid.to_le_bytes());
        v.extend_from_slice(&c.uid.to_le_bytes());
        v.extend_from_slice(&c.gid.to_le_bytes());
        w.put(so::SOL_SOCKET, cmsg::SCM_CREDENTIALS, &v);
    }
    let mut left = r.fds;
    let offered = left.len();
    if offered > 0 {
        let room = w.fd_room().min(left.len());
        let cloexec = flags & so::MSG_CMSG_CLOEXEC != 0;
        let mut nums = Vec::with_capacity(room);
        let p = cx.proc();
        let mut fds = p.fds.lock();
        for file in left.drain(..room) {
            match fds.alloc(file, cloexec, 0) {
                Ok(n) => nums.push(n),
                Err(_) => break,
            }
        }
        drop(fds);
        w.put_fds(so::SOL_SOCKET, &nums, offered);
    }
    // Descriptions that did not fit are closed here, with no lock held.
    drop(left);
    let mut mflags = r.flags;
    if w.truncated {
        mflags |= so::MSG_CTRUNC;
    }
    if h.controllen > 0 {
        cx.copy_out(h.control, &w.out)?;
    }
    cx.write(hva + 40, &(w.out.len() as u64))?;
    cx.write(hva + 48, &mflags)?;
    let from = r.from.unwrap_or_default();
    if h.name != 0 {
        let n = (h.namelen as usize).min(from.len());
        cx.copy_out(h.name, &from[..n])?;
        cx.write(hva + 8, &(from.len() as u32))?;
    } else {
        cx.write(hva + 8, &0u32)?;
    }
    Ok(r.len as i64)
}

/// `recvmsg(2)`.
pub fn recvmsg(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let (f, s) = socket_of(cx, a[0])?;
    let h = read_msghdr(cx, a[1])?;
    recv_one(cx, &f, &s, a[1], &h, a[2] as u32)
}

/// `recvfrom(2)` (`recv(2)` with no address).
pub fn recvfrom(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let (f, s) = socket_of(cx, a[0])?;
    let flags = a[3] as u32;
    let len = (a[2] as usize).min(guest_fs::MAX_RW_COUNT).min(SEND_MAX);
    let r = s.recv(&caller(cx), len, recv_flags(&f, flags)).map_err(|e| would_block(&f, flags, e))?;
    cx.copy_out(a[1], &r.data)?;
    if let Some(from) = &r.from {
        write_addr(cx, a[4], a[5], from)?;
    } else if a[4] != 0 && a[5] != 0 {
        cx.write(a[5], &0u32)?;
    }
    Ok(r.len as i64)
}

/// `recvmmsg(2)`: the first message may block; later ones are taken only if already queued
/// (the timeout argument is not used: a departure from Linux, which keeps waiting for `vlen`
/// messages without `MSG_WAITFORONE`).
pub fn recvmmsg(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let (f, s) = socket_of(cx, a[0])?;
    let vlen = a[2].min(UIO_MAXIOV);
    let flags = a[3] as u32 & !MSG_WAITFORONE;
    let mut got = 0u64;
    while got < vlen {
        let va = a[1] + got * 64;
        let r = read_msghdr(cx, va).and_then(|h| recv_one(cx, &f, &s, va, &h, flags | if got > 0 { so::MSG_DONTWAIT } else { 0 }));
        match r {
            Ok(n) => cx.write(va + 56, &(n as u32))?,
            Err(e) if got == 0 => return Err(e),
            Err(_) => break,
        }
        got += 1;
    }
    Ok(got as i64)
}
