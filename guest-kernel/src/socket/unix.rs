//! AF_UNIX sockets (`unix(7)`): stream, datagram and seqpacket; names in the filesystem
//! (a `S_IFSOCK` inode made through the VFS, so on tmpfs and on hostfs alike), abstract
//! names, unnamed pairs; `SCM_RIGHTS`, `SCM_CREDENTIALS`, `SO_PEERCRED`, `shutdown`.
//! Behaviour follows Linux's `net/unix/af_unix.c` (cited per function).
//!
//! A connection is two [`UnixSock`]s linked as each other's peer; the bytes one sends go to
//! the other's receive queue. A path name is only the inode: the kernel keys bound sockets by
//! (device, inode number) in [`PATHS`], so a connect resolves the path through the VFS and
//! finds the socket by the inode it reaches (on hostfs the inode is a host special file made
//! by the file server's `mknod`; the connection itself never leaves the guest). Removing the
//! file does not unbind the socket, as in Linux; the name is forgotten when the socket closes.
//!
//! Locks: each socket has one lock; no code holds two socket locks at once (it takes what it
//! needs from one, drops it, then locks the other), so there is no lock order to break.
//! Passed descriptions are dropped only with no socket lock held (a dropped socket file
//! releases its socket, which locks its peer).
//!
//! Limits: a stream send that finds the peer's queue partly full takes what fits and returns
//! the short count (Linux would block for the rest); `SO_SNDTIMEO`/`SO_RCVTIMEO` are kept
//! but not honoured; descriptions in flight that reference each other's sockets in a cycle
//! are never freed (Linux has a garbage collector for them).

use super::{Caller, Family, RCV_SHUTDOWN, Recvd, SEND_SHUTDOWN, SendMsg, Socket, Ucred};
use super::{MSG_PEEK, MSG_TRUNC, MSG_WAITALL, SOCK_DGRAM, SOCK_SEQPACKET, SOCK_STREAM};
use crate::sync::Mutex;
use crate::waitq::WaitQueue;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use guest_fs::{Errno, OpenFile};

/// `sizeof(struct sockaddr_un)`.
const SOCKADDR_UN: usize = 110;
/// Default and maximum `SO_SNDBUF`/`SO_RCVBUF` as Linux reports them (`wmem_default`,
/// `wmem_max` = 212992; a set value is doubled, `sock_setsockopt`).
const BUF_DEFAULT: usize = 212_992;
/// `SOCK_MIN_SNDBUF` / `SOCK_MIN_RCVBUF` on x86-64.
const MIN_SNDBUF: usize = 4608;
const MIN_RCVBUF: usize = 2304;
/// Datagrams a receive queue holds (`net.unix.max_dgram_qlen` as Debian sets it).
const MAX_DGRAM_QLEN: usize = 512;
/// `somaxconn`: the largest backlog.
const SOMAXCONN: usize = 4096;

/// A name a socket is bound to.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Name {
    /// A filesystem name (as given to `bind`) and the inode it made.
    Path(Vec<u8>, (u64, u64)),
    /// An abstract name (the bytes after the leading NUL).
    Abstract(Vec<u8>),
}

/// An address parsed from a `sockaddr_un`.
#[derive(Debug, PartialEq, Eq)]
enum Spec {
    /// Only the family (`bind`: autobind).
    Unnamed,
    Path(Vec<u8>),
    Abstract(Vec<u8>),
}

/// Parses raw `sockaddr_un` bytes (`unix_validate_addr`, `unix_mkname_bsd`): `EINVAL` for
/// a short or long address or another family.
fn parse(raw: &[u8]) -> Result<Spec, Errno> {
    if raw.len() < 2 || raw.len() > SOCKADDR_UN || u16::from_le_bytes([raw[0], raw[1]]) != super::AF_UNIX {
        return Err(Errno::EINVAL);
    }
    let path = &raw[2..];
    Ok(match path.first() {
        None => Spec::Unnamed,
        Some(0) => Spec::Abstract(path[1..].to_vec()),
        Some(_) => Spec::Path(path.iter().copied().take_while(|&b| b != 0).collect()),
    })
}

/// The `sockaddr_un` bytes `getsockname` returns for `name` (Linux keeps the path with its
/// NUL, the abstract name with its length; unnamed is the family alone).
fn sockaddr(name: Option<&Name>) -> Vec<u8> {
    let mut v = Vec::from(super::AF_UNIX.to_le_bytes());
    match name {
        Some(Name::Path(p, _)) => {
            v.extend_from_slice(p);
            v.push(0);
        }
        Some(Name::Abstract(a)) => {
            v.push(0);
            v.extend_from_slice(a);
        }
        None => {}
    }
    v
}

/// The `msg_name` a receiver gets for a message from a socket named `name`: nothing for an
/// unnamed sender (`unix_copy_addr` leaves `msg_namelen` 0).
fn sender_name(name: Option<&Name>) -> Vec<u8> {
    if name.is_some() { sockaddr(name) } else { Vec::new() }
}

/// Connection state (`sk_state`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Conn {
    Unconnected,
    Listening(usize),
    Connected,
}

/// One queued message (a datagram, a seqpacket record, or a stream segment).
struct Msg {
    data: Vec<u8>,
    /// Bytes of `data` already read (stream).
    off: usize,
    fds: Vec<Arc<OpenFile>>,
    cred: Ucred,
    from: Vec<u8>,
}

struct St {
    name: Option<Name>,
    /// Stream/seqpacket: the other end; datagram: the default destination.
    peer: Option<Arc<UnixSock>>,
    conn: Conn,
    /// Connections waiting for `accept` (listening sockets).
    backlog: VecDeque<Arc<UnixSock>>,
    rx: VecDeque<Msg>,
    rx_bytes: usize,
    shutdown: u32,
    err: i32,
    sndbuf: usize,
    rcvbuf: usize,
    passcred: bool,
    peercred: Option<Ucred>,
    /// Credentials of whoever called `listen` (what connecting clients see as peer).
    owner: Ucred,
    /// Other `SOL_SOCKET` options, stored and reported but without effect.
    other: BTreeMap<i32, Vec<u8>>,
    dead: bool,
    /// Events for readers (data, connections, shutdown, errors) / the queue being read.
    in_seq: u64,
    rd_seq: u64,
}

/// One AF_UNIX socket.
pub struct UnixSock {
    ty: u32,
    ino: u64,
    me: Weak<UnixSock>,
    st: Mutex<St>,
    /// Who waits for this socket: its readers, acceptors and pollers, and senders waiting for
    /// room in its receive queue.
    wq: WaitQueue,
}

static NEXT_INO: AtomicU64 = AtomicU64::new(1);
static AUTOBIND: AtomicU64 = AtomicU64::new(0);
/// Sockets bound to filesystem names, by (device, inode).
static PATHS: Mutex<BTreeMap<(u64, u64), Weak<UnixSock>>> = Mutex::new(BTreeMap::new());
/// Sockets bound to abstract names.
static ABSTRACT: Mutex<BTreeMap<Vec<u8>, Weak<UnixSock>>> = Mutex::new(BTreeMap::new());

impl UnixSock {
    fn new(ty: u32) -> Arc<UnixSock> {
        Arc::new_cyclic(|me| UnixSock {
            ty,
            ino: NEXT_INO.fetch_add(1, Ordering::Relaxed),
            me: me.clone(),
            st: Mutex::new(St {
                name: None,
                peer: None,
                conn: Conn::Unconnected,
                backlog: VecDeque::new(),
                rx: VecDeque::new(),
                rx_bytes: 0,
                shutdown: 0,
                err: 0,
                sndbuf: BUF_DEFAULT,
                rcvbuf: BUF_DEFAULT,
                passcred: false,
                peercred: None,
                owner: Ucred::default(),
                other: BTreeMap::new(),
                dead: false,
                in_seq: 0,
                rd_seq: 0,
            }),
            wq: WaitQueue::new(),
        })
    }

    fn connection(&self) -> bool {
        self.ty != SOCK_DGRAM
    }

    fn is(&self, other: &Arc<UnixSock>) -> bool {
        core::ptr::eq(self, Arc::as_ptr(other))
    }

    /// Finds the socket bound to `spec` (`unix_find_other`): `ECONNREFUSED` when nobody is,
    /// `EPROTOTYPE` for a socket of another type, VFS errors (`ENOENT`...) for paths.
    fn find(cx: &Caller, spec: &Spec, ty: u32) -> Result<Arc<UnixSock>, Errno> {
        let s = match spec {
            Spec::Unnamed => return Err(Errno::EINVAL),
            Spec::Abstract(a) => ABSTRACT.lock().get(a).and_then(Weak::upgrade),
            Spec::Path(p) => {
                let fs = cx.fs.as_ref().ok_or(Errno::EINVAL)?;
                let st = guest_fs::newfstatat(crate::fs::vfs(), fs, &cx.fds, guest_fs::AT_FDCWD, p, 0)?;
                if st.st_mode & 0o170_000 != 0o140_000 {
                    return Err(Errno::ECONNREFUSED);
                }
                PATHS.lock().get(&(st.st_dev, st.st_ino)).and_then(Weak::upgrade)
            }
        };
        let s = s.ok_or(Errno::ECONNREFUSED)?;
        if s.st.lock().dead {
            return Err(Errno::ECONNREFUSED);
        }
        if s.ty != ty {
            return Err(Errno::EPROTOTYPE);
        }
        Ok(s)
    }

    fn name_bytes(&self) -> Vec<u8> {
        sockaddr(self.st.lock().name.as_ref())
    }

    /// Links two fresh sockets as a connection (`socketpair`, `connect`).
    fn link(a: &Arc<UnixSock>, b: &Arc<UnixSock>, a_sees: Ucred, b_sees: Ucred) {
        let mut s = a.st.lock();
        s.peer = Some(b.clone());
        s.conn = Conn::Connected;
        s.peercred = Some(a_sees);
        s.in_seq += 1;
        drop(s);
        let mut s = b.st.lock();
        s.peer = Some(a.clone());
        s.conn = Conn::Connected;
        s.peercred = Some(b_sees);
        s.in_seq += 1;
    }

    fn bind_abstract(&self, name: Vec<u8>) -> Result<(), Errno> {
        let mut map = ABSTRACT.lock();
        if map.get(&name).and_then(Weak::upgrade).is_some() {
            return Err(Errno::EADDRINUSE);
        }
        let mut st = self.st.lock();
        if st.name.is_some() {
            return Err(Errno::EINVAL);
        }
        map.insert(name.clone(), self.me.clone());
        st.name = Some(Name::Abstract(name));
        Ok(())
    }

    /// Gives an unnamed socket an abstract name of five hex digits (`unix_autobind`).
    fn autobind(&self) -> Result<(), Errno> {
        for _ in 0..0x10_0000 {
            let n = AUTOBIND.fetch_add(1, Ordering::Relaxed) & 0xf_ffff;
            let mut name = Vec::with_capacity(5);
            for shift in [16, 12, 8, 4, 0] {
                name.push(b"0123456789abcdef"[((n >> shift) & 0xf) as usize]);
            }
            match self.bind_abstract(name) {
                Err(Errno::EADDRINUSE) => continue,
                r => return r,
            }
        }
        Err(Errno::ENOSPC)
    }

    /// Appends `m` to this socket's receive queue and wakes its waiters.
    fn deliver(&self, st: &mut St, m: Msg) {
        st.rx_bytes += m.data.len();
        st.rx.push_back(m);
        st.in_seq += 1;
    }

    fn send_stream(&self, cx: &Caller, msg: SendMsg) -> Result<usize, Errno> {
        if msg.addr.is_some() {
            return Err(if self.st.lock().conn == Conn::Connected { Errno::EISCONN } else { Errno::EOPNOTSUPP });
        }
        let (peer, sndbuf, from) = {
            let st = self.st.lock();
            if st.shutdown & SEND_SHUTDOWN != 0 {
                return Err(Errno::EPIPE);
            }
            match (&st.peer, st.conn) {
                (Some(p), Conn::Connected) => (p.clone(), st.sndbuf, sender_name(st.name.as_ref())),
                _ => return Err(Errno::ENOTCONN),
            }
        };
        if msg.data.is_empty() && self.ty == SOCK_STREAM {
            return Ok(0);
        }
        let cred = msg.cred.unwrap_or(cx.cred);
        let mut ps = peer.st.lock();
        if ps.dead || ps.shutdown & RCV_SHUTDOWN != 0 {
            return Err(Errno::EPIPE);
        }
        let len = msg.data.len();
        let n = if self.ty == SOCK_SEQPACKET {
            if len > sndbuf.saturating_sub(32) {
                return Err(Errno::EMSGSIZE);
            }
            if ps.rx_bytes + len > sndbuf && !ps.rx.is_empty() {
                peer.wq.register_current();
                return Err(Errno::EAGAIN);
            }
            len
        } else {
            let room = sndbuf.saturating_sub(ps.rx_bytes);
            if room == 0 {
                peer.wq.register_current();
                return Err(Errno::EAGAIN);
            }
            room.min(len)
        };
        let mut data = msg.data;
        data.truncate(n);
        peer.deliver(&mut ps, Msg { data, off: 0, fds: msg.fds, cred, from });
        drop(ps);
        peer.wq.wake_all();
        Ok(n)
    }

    fn send_dgram(&self, cx: &Caller, msg: SendMsg) -> Result<usize, Errno> {
        let (target, sndbuf, shut) = {
            let st = self.st.lock();
            (st.peer.clone(), st.sndbuf, st.shutdown)
        };
        let target = match &msg.addr {
            Some(raw) => Self::find(cx, &parse(raw)?, self.ty)?,
            None => target.ok_or(Errno::ENOTCONN)?,
        };
        if shut & SEND_SHUTDOWN != 0 {
            return Err(Errno::EPIPE);
        }
        let len = msg.data.len();
        if len > sndbuf.saturating_sub(32) {
            return Err(Errno::EMSGSIZE);
        }
        let from = sender_name(self.st.lock().name.as_ref());
        let cred = msg.cred.unwrap_or(cx.cred);
        let mut ts = target.st.lock();
        if ts.dead {
            return Err(Errno::ECONNREFUSED);
        }
        if ts.peer.as_ref().is_some_and(|p| !self.is(p)) {
            return Err(Errno::EPERM);
        }
        if ts.shutdown & RCV_SHUTDOWN != 0 {
            return Err(Errno::EPIPE);
        }
        if ts.rx.len() >= MAX_DGRAM_QLEN || (ts.rx_bytes + len > ts.rcvbuf && !ts.rx.is_empty()) {
            target.wq.register_current();
            return Err(Errno::EAGAIN);
        }
        target.deliver(&mut ts, Msg { data: msg.data, off: 0, fds: msg.fds, cred, from });
        drop(ts);
        target.wq.wake_all();
        Ok(len)
    }

    fn recv_stream(&self, len: usize, flags: u32) -> Result<Recvd, Errno> {
        let mut st = self.st.lock();
        if st.conn != Conn::Connected {
            return Err(Errno::EINVAL);
        }
        let eof = st.shutdown & RCV_SHUTDOWN != 0;
        if st.rx.is_empty() {
            if eof || len == 0 {
                return Ok(Recvd::default());
            }
            self.wq.register_current();
            return Err(Errno::EAGAIN);
        }
        if flags & MSG_WAITALL != 0 && flags & MSG_PEEK == 0 && st.rx_bytes < len && !eof && st.rx_bytes < BUF_DEFAULT {
            self.wq.register_current();
            return Err(Errno::EAGAIN);
        }
        let passcred = st.passcred;
        let mut out = Recvd::default();
        let mut first_cred = None;
        let mut i = 0;
        while out.data.len() < len && i < st.rx.len() {
            let m = &st.rx[i];
            if first_cred.is_some_and(|c| passcred && c != m.cred) || (i > 0 && !m.fds.is_empty() && !out.data.is_empty()) {
                break;
            }
            if first_cred.is_none() {
                first_cred = Some(m.cred);
                out.from = Some(m.from.clone());
            }
            let k = (len - out.data.len()).min(m.data.len() - m.off);
            out.data.extend_from_slice(&m.data[m.off..m.off + k]);
            let had_fds = !m.fds.is_empty();
            if flags & MSG_PEEK != 0 {
                out.fds.extend(m.fds.iter().cloned());
                i += 1;
            } else {
                let m = &mut st.rx[i];
                out.fds.append(&mut m.fds);
                m.off += k;
                if m.off == m.data.len() {
                    st.rx.remove(i);
                }
                st.rx_bytes -= k;
            }
            if had_fds {
                break;
            }
        }
        out.len = out.data.len();
        if passcred {
            out.cred = first_cred;
        }
        if flags & MSG_PEEK == 0 {
            st.rd_seq += 1;
            drop(st);
            self.wq.wake_all();
        }
        Ok(out)
    }

    fn recv_dgram(&self, len: usize, flags: u32) -> Result<Recvd, Errno> {
        let mut st = self.st.lock();
        if self.ty == SOCK_SEQPACKET && st.conn != Conn::Connected {
            return Err(Errno::ENOTCONN);
        }
        let Some(m) = st.rx.front() else {
            // End of file on a shut-down receive side, but a nonblocking datagram read gets
            // `EAGAIN` (it does not wait, and only the wait notices the shutdown).
            if st.shutdown & RCV_SHUTDOWN != 0 && (self.ty == SOCK_SEQPACKET || flags & super::MSG_DONTWAIT == 0) {
                return Ok(Recvd::default());
            }
            self.wq.register_current();
            return Err(Errno::EAGAIN);
        };
        let full = m.data.len();
        let k = len.min(full);
        let mut out = Recvd {
            data: m.data[..k].to_vec(),
            len: if flags & MSG_TRUNC != 0 { full } else { k },
            flags: if k < full { MSG_TRUNC } else { 0 },
            from: Some(m.from.clone()),
            fds: Vec::new(),
            cred: st.passcred.then_some(m.cred),
        };
        if flags & MSG_PEEK != 0 {
            out.fds = m.fds.clone();
            return Ok(out);
        }
        if let Some(mut m) = st.rx.pop_front() {
            st.rx_bytes -= m.data.len();
            out.fds = core::mem::take(&mut m.fds);
        }
        st.rd_seq += 1;
        drop(st);
        self.wq.wake_all();
        Ok(out)
    }
}

impl Socket for UnixSock {
    fn family(&self) -> u16 {
        super::AF_UNIX
    }

    fn sock_type(&self) -> u32 {
        self.ty
    }

    /// `unix_bind`: `EINVAL` if already bound, `EADDRINUSE` for a taken name (an existing
    /// file, for paths).
    fn bind(&self, cx: &Caller, addr: &[u8]) -> Result<(), Errno> {
        let spec = parse(addr)?;
        // A path is made first (`unix_bind_bsd`: a taken name is `EADDRINUSE` even for a
        // bound socket); the others check "already bound" first.
        if !matches!(spec, Spec::Path(_)) && self.st.lock().name.is_some() {
            return Err(Errno::EINVAL);
        }
        match spec {
            Spec::Unnamed => self.autobind(),
            Spec::Abstract(a) => self.bind_abstract(a),
            Spec::Path(p) => {
                let fs = cx.fs.as_ref().ok_or(Errno::EINVAL)?;
                let vfs = crate::fs::vfs();
                match guest_fs::mknodat(vfs, fs, &cx.fds, guest_fs::AT_FDCWD, &p, 0o140_777, 0) {
                    Err(Errno::EEXIST) => return Err(Errno::EADDRINUSE),
                    r => r?,
                }
                let undo = || {
                    let _ = guest_fs::unlinkat(vfs, fs, &cx.fds, guest_fs::AT_FDCWD, &p, 0);
                };
                let st = match guest_fs::newfstatat(vfs, fs, &cx.fds, guest_fs::AT_FDCWD, &p, 0x100) {
                    Ok(st) => st,
                    Err(e) => {
                        undo();
                        return Err(e);
                    }
                };
                let key = (st.st_dev, st.st_ino);
                let mut s = self.st.lock();
                if s.name.is_some() {
                    drop(s);
                    undo();
                    return Err(Errno::EINVAL);
                }
                s.name = Some(Name::Path(p, key));
                drop(s);
                PATHS.lock().insert(key, self.me.clone());
                Ok(())
            }
        }
    }

    /// `unix_listen`: stream and seqpacket only (`EOPNOTSUPP`), bound (`EINVAL`).
    fn listen(&self, cx: &Caller, backlog: i32) -> Result<(), Errno> {
        if !self.connection() {
            return Err(Errno::EOPNOTSUPP);
        }
        let mut st = self.st.lock();
        if st.name.is_none() || st.conn == Conn::Connected {
            return Err(Errno::EINVAL);
        }
        let b = if backlog < 0 { SOMAXCONN } else { (backlog as usize).min(SOMAXCONN) };
        st.conn = Conn::Listening(b);
        st.owner = cx.cred;
        st.in_seq += 1;
        drop(st);
        self.wq.wake_all();
        Ok(())
    }

    /// `unix_stream_connect` / `unix_dgram_connect`. A stream connection is complete once
    /// queued on the listener (the listener's backlog full: `EAGAIN`, the caller waits on the
    /// listener's queue).
    fn connect(&self, cx: &Caller, addr: &[u8]) -> Result<(), Errno> {
        if !self.connection() {
            if addr.len() >= 2 && u16::from_le_bytes([addr[0], addr[1]]) == 0 {
                self.st.lock().peer = None; // AF_UNSPEC: dissolve the association
                return Ok(());
            }
            let target = Self::find(cx, &parse(addr)?, self.ty)?;
            if target.st.lock().peer.as_ref().is_some_and(|p| !self.is(p)) {
                return Err(Errno::EPERM);
            }
            let mut st = self.st.lock();
            st.peer = Some(target);
            st.in_seq += 1;
            return Ok(());
        }
        let spec = parse(addr)?;
        if spec == Spec::Unnamed {
            return Err(Errno::EINVAL);
        }
        // `unix_stream_connect`'s order: the listener and its backlog are checked before
        // this socket's own state.
        let listener = Self::find(cx, &spec, self.ty)?;
        let room = |ls: &St| -> Result<(), Errno> {
            let Conn::Listening(backlog) = ls.conn else { return Err(Errno::ECONNREFUSED) };
            if ls.dead || ls.shutdown & RCV_SHUTDOWN != 0 {
                return Err(Errno::ECONNREFUSED);
            }
            if ls.backlog.len() > backlog {
                listener.wq.register_current();
                return Err(Errno::EAGAIN);
            }
            Ok(())
        };
        let (owner, name) = {
            let ls = listener.st.lock();
            room(&ls)?;
            (ls.owner, ls.name.clone())
        };
        match self.st.lock().conn {
            Conn::Connected => return Err(Errno::EISCONN),
            Conn::Listening(_) => return Err(Errno::EINVAL),
            Conn::Unconnected => {}
        }
        // The server end is made and linked with no other lock held, then queued if the
        // listener still has room (it may have changed meanwhile: then the link is undone).
        let server = UnixSock::new(self.ty);
        server.st.lock().name = name;
        let Some(me) = self.me.upgrade() else { return Err(Errno::ECONNREFUSED) };
        UnixSock::link(&server, &me, cx.cred, owner);
        let mut ls = listener.st.lock();
        if let Err(e) = room(&ls) {
            drop(ls);
            let mut st = self.st.lock();
            st.peer = None;
            st.peercred = None;
            st.conn = Conn::Unconnected;
            return Err(e);
        }
        ls.backlog.push_back(server);
        ls.in_seq += 1;
        drop(ls);
        listener.wq.wake_all();
        Ok(())
    }

    /// `unix_accept`: `EINVAL` unless listening.
    fn accept(&self, _cx: &Caller) -> Result<Arc<dyn Socket>, Errno> {
        let mut st = self.st.lock();
        if !matches!(st.conn, Conn::Listening(_)) {
            return Err(Errno::EINVAL);
        }
        let Some(s) = st.backlog.pop_front() else {
            self.wq.register_current();
            return Err(Errno::EAGAIN);
        };
        st.rd_seq += 1;
        drop(st);
        // Connectors waiting for room in the backlog.
        self.wq.wake_all();
        Ok(s)
    }

    fn send(&self, cx: &Caller, msg: SendMsg) -> Result<usize, Errno> {
        if self.connection() { self.send_stream(cx, msg) } else { self.send_dgram(cx, msg) }
    }

    fn recv(&self, _cx: &Caller, len: usize, flags: u32) -> Result<Recvd, Errno> {
        if self.ty == SOCK_STREAM { self.recv_stream(len, flags) } else { self.recv_dgram(len, flags) }
    }

    /// `unix_shutdown`: our side, and the mirror image on a connected peer.
    fn shutdown(&self, how: u32) -> Result<(), Errno> {
        if how > 2 {
            return Err(Errno::EINVAL);
        }
        let mode = how + 1;
        let peer = {
            let mut st = self.st.lock();
            st.shutdown |= mode;
            st.in_seq += 1;
            st.peer.clone()
        };
        self.wq.wake_all();
        if let Some(p) = peer.filter(|_| self.connection()) {
            let mirrored = (if mode & RCV_SHUTDOWN != 0 { SEND_SHUTDOWN } else { 0 })
                | (if mode & SEND_SHUTDOWN != 0 { RCV_SHUTDOWN } else { 0 });
            let mut ps = p.st.lock();
            ps.shutdown |= mirrored;
            ps.in_seq += 1;
            drop(ps);
            p.wq.wake_all();
        }
        Ok(())
    }

    fn local_name(&self) -> Vec<u8> {
        self.name_bytes()
    }

    fn peer_name(&self) -> Result<Vec<u8>, Errno> {
        let peer = {
            let st = self.st.lock();
            if self.connection() && st.conn != Conn::Connected {
                return Err(Errno::ENOTCONN);
            }
            st.peer.clone().ok_or(Errno::ENOTCONN)?
        };
        Ok(peer.name_bytes())
    }

    fn getsockopt(&self, level: i32, name: i32) -> Result<Vec<u8>, Errno> {
        if level != super::SOL_SOCKET {
            return Err(Errno::EOPNOTSUPP);
        }
        let int = |v: u32| Ok(Vec::from(v.to_le_bytes()));
        let mut st = self.st.lock();
        match name {
            super::SO_TYPE => int(self.ty),
            super::SO_DOMAIN => int(u32::from(super::AF_UNIX)),
            super::SO_PROTOCOL => int(0),
            super::SO_ACCEPTCONN => int(u32::from(matches!(st.conn, Conn::Listening(_)))),
            super::SO_ERROR => int(core::mem::take(&mut st.err) as u32),
            super::SO_SNDBUF => int(st.sndbuf as u32),
            super::SO_RCVBUF => int(st.rcvbuf as u32),
            super::SO_PASSCRED => int(u32::from(st.passcred)),
            super::SO_PEERCRED => {
                // `cred_to_ucred`: no peer is pid 0, uid and gid -1.
                let c = st.peercred.unwrap_or(Ucred { pid: 0, uid: u32::MAX, gid: u32::MAX });
                let mut v = Vec::with_capacity(12);
                v.extend_from_slice(&c.pid.to_le_bytes());
                v.extend_from_slice(&c.uid.to_le_bytes());
                v.extend_from_slice(&c.gid.to_le_bytes());
                Ok(v)
            }
            n => match other_option_size(n) {
                Some(size) => Ok(st.other.get(&n).cloned().unwrap_or_else(|| alloc::vec![0; size])),
                None => Err(Errno::ENOPROTOOPT),
            },
        }
    }

    fn setsockopt(&self, level: i32, name: i32, val: &[u8]) -> Result<(), Errno> {
        if level != super::SOL_SOCKET {
            return Err(Errno::EOPNOTSUPP);
        }
        if val.len() < 4 {
            return Err(Errno::EINVAL);
        }
        let v = u32::from_le_bytes([val[0], val[1], val[2], val[3]]);
        let mut st = self.st.lock();
        match name {
            // `sock_setsockopt`: min(val, wmem_max) doubled, at least the minimum.
            super::SO_SNDBUF => st.sndbuf = ((v as usize).min(BUF_DEFAULT) * 2).max(MIN_SNDBUF),
            super::SO_RCVBUF => st.rcvbuf = ((v as usize).min(BUF_DEFAULT) * 2).max(MIN_RCVBUF),
            super::SO_PASSCRED => st.passcred = v != 0,
            n => match other_option_size(n) {
                Some(size) if val.len() >= size => {
                    st.other.insert(n, val[..size].to_vec());
                }
                Some(_) => return Err(Errno::EINVAL),
                None => return Err(Errno::ENOPROTOOPT),
            },
        }
        Ok(())
    }

    /// `unix_poll` / `unix_dgram_poll`.
    fn poll(&self, events: u32) -> u32 {
        const IN: u32 = 0x1 | 0x40; // POLLIN | POLLRDNORM
        const OUT: u32 = 0x4 | 0x100 | 0x200; // POLLOUT | POLLWRNORM | POLLWRBAND
        const ERR: u32 = 0x8;
        const HUP: u32 = 0x10;
        const RDHUP: u32 = 0x2000;
        let (mut r, peer, listening) = {
            let st = self.st.lock();
            let mut r = 0;
            if st.err != 0 {
                r |= ERR;
            }
            if st.shutdown == RCV_SHUTDOWN | SEND_SHUTDOWN {
                r |= HUP;
            }
            if st.shutdown & RCV_SHUTDOWN != 0 {
                r |= RDHUP | IN;
            }
            if !st.rx.is_empty() || !st.backlog.is_empty() {
                r |= IN;
            }
            if self.connection() && st.conn == Conn::Unconnected {
                r |= HUP;
            }
            (r, st.peer.clone(), matches!(st.conn, Conn::Listening(_)))
        };
        if !listening {
            let writable = match &peer {
                None => true,
                Some(p) => {
                    let ps = p.st.lock();
                    if self.connection() {
                        ps.rx_bytes * 4 <= BUF_DEFAULT
                    } else {
                        ps.dead || ps.rx.len() < MAX_DGRAM_QLEN
                    }
                }
            };
            if writable {
                r |= OUT;
            }
        }
        let r = r & (events | ERR | HUP);
        if r == 0 {
            self.wq.register_current();
            if let Some(p) = peer.filter(|_| events & OUT != 0) {
                p.wq.register_current();
            }
        }
        r
    }

    fn poll_seq(&self, events: u32) -> u64 {
        let (mine, peer) = {
            let st = self.st.lock();
            (st.in_seq, st.peer.clone())
        };
        let out = if events & 0x4 != 0 { peer.map_or(0, |p| p.st.lock().rd_seq) } else { 0 };
        mine.wrapping_add(out)
    }

    /// `unix_release_sock`: the peer sees a full shutdown (and `ECONNRESET` if we left data
    /// unread), the name is forgotten, queued connections and messages are dropped.
    fn release(&self) {
        let (name, peer, backlog, rx) = {
            let mut st = self.st.lock();
            st.dead = true;
            st.shutdown = RCV_SHUTDOWN | SEND_SHUTDOWN;
            st.in_seq += 1;
            let rx = core::mem::take(&mut st.rx);
            st.rx_bytes = 0;
            (st.name.clone(), st.peer.take(), core::mem::take(&mut st.backlog), rx)
        };
        let unread = !rx.is_empty() || !backlog.is_empty();
        match name {
            Some(Name::Abstract(a)) => {
                let mut m = ABSTRACT.lock();
                if m.get(&a).is_some_and(|w| w.as_ptr() == self.me.as_ptr()) {
                    m.remove(&a);
                }
            }
            Some(Name::Path(_, key)) => {
                let mut m = PATHS.lock();
                if m.get(&key).is_some_and(|w| w.as_ptr() == self.me.as_ptr()) {
                    m.remove(&key);
                }
            }
            None => {}
        }
        if let Some(p) = peer.filter(|_| self.connection()) {
            let mut ps = p.st.lock();
            ps.shutdown = RCV_SHUTDOWN | SEND_SHUTDOWN;
            if unread {
                ps.err = linux_raw_sys::errno::ECONNRESET as i32;
            }
            ps.in_seq += 1;
            drop(ps);
            p.wq.wake_all();
        }
        self.wq.wake_all();
        // Connections never accepted die with the listener; their clients see the reset.
        for s in backlog {
            s.release();
        }
        drop(rx);
    }

    fn ino(&self) -> u64 {
        self.ino
    }
}

/// Sizes of the `SOL_SOCKET` options kept without effect: `SO_REUSEADDR` (2),
/// `SO_BROADCAST` (6), `SO_KEEPALIVE` (9), `SO_OOBINLINE` (10), `SO_LINGER` (13, a `struct
/// linger`), `SO_RCVLOWAT` (18), `SO_SNDLOWAT` (19), `SO_RCVTIMEO`/`SO_SNDTIMEO` (20, 21, a
/// `struct timeval`), `SO_REUSEPORT` (15).
fn other_option_size(name: i32) -> Option<usize> {
    match name {
        2 | 6 | 9 | 10 | 15 | 18 | 19 => Some(4),
        13 => Some(8),
        20 | 21 => Some(16),
        _ => None,
    }
}

/// The AF_UNIX family (`unix_create`).
pub struct Unix;

impl Family for Unix {
    fn domain(&self) -> u16 {
        super::AF_UNIX
    }

    fn create(&self, ty: u32, protocol: u32) -> Result<Arc<dyn Socket>, Errno> {
        if protocol != 0 && protocol != u32::from(super::AF_UNIX) {
            return Err(Errno(linux_raw_sys::errno::EPROTONOSUPPORT));
        }
        let ty = match ty {
            SOCK_STREAM | SOCK_DGRAM | SOCK_SEQPACKET => ty,
            3 => SOCK_DGRAM, // SOCK_RAW is taken as SOCK_DGRAM
            _ => return Err(Errno(linux_raw_sys::errno::ESOCKTNOSUPPORT)),
        };
        Ok(UnixSock::new(ty))
    }

    fn pair(&self, cx: &Caller, ty: u32, protocol: u32) -> Result<super::Pair, Errno> {
        self.create(ty, protocol)?;
        let ty = if ty == 3 { SOCK_DGRAM } else { ty };
        let (a, b) = (UnixSock::new(ty), UnixSock::new(ty));
        UnixSock::link(&a, &b, cx.cred, cx.cred);
        Ok((a, b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sockaddr_un() {
        assert_eq!(parse(&[1, 0]), Ok(Spec::Unnamed));
        assert_eq!(parse(&[1, 0, 0, b'x', b'y']), Ok(Spec::Abstract(b"xy".to_vec())));
        assert_eq!(parse(&[1, 0, b'/', b't', 0, b'z']), Ok(Spec::Path(b"/t".to_vec())));
        assert_eq!(parse(&[2, 0, b'/']), Err(Errno::EINVAL));
        assert_eq!(parse(&[1]), Err(Errno::EINVAL));
        assert_eq!(parse(&[1u8; 111]), Err(Errno::EINVAL));
        assert_eq!(sockaddr(None), alloc::vec![1, 0]);
        assert_eq!(sockaddr(Some(&Name::Abstract(b"a".to_vec()))), alloc::vec![1, 0, 0, b'a']);
        assert_eq!(sockaddr(Some(&Name::Path(b"/a".to_vec(), (0, 0)))), alloc::vec![1, 0, b'/', b'a', 0]);
    }
}
