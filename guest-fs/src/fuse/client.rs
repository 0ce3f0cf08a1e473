//! The FUSE protocol client: encodes each request as `fuse(4)` and virtio-fs lay it out,
//! sends it through a [`FuseTransport`] and validates the reply before anything in it is used.
//!
//! Trust: the file server F is untrusted. For every reply the client checks that
//! `fuse_out_header.len` equals the bytes the transport says were written, that `unique` is the
//! request's, that `error` is 0 or a negated errno below 512 (Linux `fs/fuse/dev.c` applies
//! the same bound) and that an error reply carries no payload; fixed-size payloads must have
//! exactly their size, variable ones at most the size asked for, and the typed payloads
//! (attributes, entries, dirents, link targets, xattr lists, locks) are checked by
//! [`super::types`] and [`super::dirent`]. A malformed reply is `EIO`.
//!
//! Lookup counts: each positive entry the server returns (LOOKUP, CREATE, MKNOD, MKDIR,
//! SYMLINK, LINK, READDIRPLUS) is one lookup the server keeps until a FORGET; the client
//! counts them per node id and [`FuseClient::forget`] gives back what an object held (never
//! more than the client holds), so the server's node table never leaks and never drops a
//! node the guest still uses.

use super::abi::{self, InHeader, OutHeader, Pod, as_bytes, op, read_pod};
use super::dirent;
use super::transport::FuseTransport;
use super::types::{
    AttrReply, Caller, Connection, DirEntry, Entry, Lock, Opened, SetAttr, StatfsReply,
};
use crate::errno::{Errno, Result};
use crate::path::{NAME_MAX, PATH_MAX};
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use linux_raw_sys::general as g;
use spin::Mutex;

/// Largest xattr name, bytes (`XATTR_NAME_MAX`, `linux/limits.h`).
pub const XATTR_NAME_MAX: usize = 255;
/// Largest xattr value or list, bytes (`XATTR_SIZE_MAX`, `linux/limits.h`).
pub const XATTR_SIZE_MAX: usize = 65536;
/// Largest READ/READDIR the client sends in one request, bytes (when the server agreed to
/// no larger `max_pages`).
pub const DEFAULT_MAX_READ: u32 = 128 * 1024;
/// Errors the server may return: 1..512 (Linux rejects others as `EINVAL`; we say `EIO`).
const ERRNO_LIMIT: i32 = 512;
/// `FUSE_*` features the client asks for at INIT.
const WANTED: u32 = abi::init_flags::POSIX_LOCKS
    | abi::init_flags::FLOCK_LOCKS
    | abi::init_flags::ATOMIC_O_TRUNC
    | abi::init_flags::BIG_WRITES
    | abi::init_flags::DONT_MASK
    | abi::init_flags::DO_READDIRPLUS
    | abi::init_flags::PARALLEL_DIROPS
    | abi::init_flags::MAX_PAGES;

/// A FUSE session with one file server: negotiated parameters, the request counter and the
/// lookup counts of the node ids the guest holds. `Sync`: every vCPU calls it concurrently.
pub struct FuseClient {
    transport: Arc<dyn FuseTransport>,
    unique: AtomicU64,
    conn: Connection,
    nodes: Mutex<BTreeMap<u64, u64>>,
}

/// Checks a file name sent to the server: 1..=255 bytes, no `/`, no NUL.
/// Errors: `ENAMETOOLONG`, `EINVAL`.
fn check_name(name: &[u8]) -> Result<()> {
    if name.len() > NAME_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    if name.is_empty() || name.iter().any(|&c| c == b'/' || c == 0) {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// `name` followed by a NUL, as FUSE carries names.
fn cstr(name: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(name.len() + 1);
    v.extend_from_slice(name);
    v.push(0);
    v
}

/// xattr operations answer ENOSYS when the server has no xattr support; the VFS promises
/// `EOPNOTSUPP` instead (`xattr(7)`).
fn xattr_errno(e: Errno) -> Errno {
    if e == Errno::ENOSYS {
        Errno::EOPNOTSUPP
    } else {
        e
    }
}

impl FuseClient {
    /// Opens a session: sends `INIT` (7.31, asking for locks, big writes, readdirplus,
    /// `DONT_MASK`, `ATOMIC_O_TRUNC`) and records what the server agreed.
    ///
    /// Errors: `EPROTO` (71) for a server that is not 7.31 or later, `EIO` for a malformed reply,
    /// the transport's errors.
    pub fn init(transport: Arc<dyn FuseTransport>) -> Result<Self> {
        let mut client = Self {
            transport,
            unique: AtomicU64::new(1),
            conn: Connection {
                minor: 0,
                flags: 0,
                max_write: 4096,
                max_read: DEFAULT_MAX_READ,
            },
            nodes: Mutex::new(BTreeMap::new()),
        };
        let init = abi::InitIn {
            major: abi::KERNEL_VERSION,
            minor: abi::KERNEL_MINOR_VERSION,
            max_readahead: DEFAULT_MAX_READ,
            flags: WANTED,
            ..Default::default()
        };
        let mut out = [0u8; core::mem::size_of::<abi::InitOut>()];
        let n = client.request(
            Caller::default(),
            op::INIT,
            0,
            &[as_bytes(&init)],
            &mut [&mut out],
        )?;
        if n < abi::INIT_OUT_MIN {
            return Err(Errno::EIO);
        }
        let reply: abi::InitOut = read_pod(&out).ok_or(Errno::EIO)?;
        if reply.major != abi::KERNEL_VERSION || reply.minor < abi::KERNEL_MINOR_VERSION {
            return Err(Errno(linux_raw_sys::errno::EPROTO));
        }
        let flags = reply.flags & WANTED;
        let max_write = reply.max_write.clamp(4096, 1 << 20);
        let max_read = if flags & abi::init_flags::MAX_PAGES != 0 && reply.max_pages > 0 {
            (u32::from(reply.max_pages) * 4096).clamp(4096, 1 << 20)
        } else {
            DEFAULT_MAX_READ
        };
        client.conn = Connection {
            minor: reply.minor.min(abi::KERNEL_MINOR_VERSION),
            flags,
            max_write,
            max_read,
        };
        Ok(client)
    }

    /// What INIT negotiated.
    pub fn connection(&self) -> Connection {
        self.conn
    }

    /// Lookups of `nodeid` the client holds (not yet forgotten).
    pub fn lookups(&self, nodeid: u64) -> u64 {
        self.nodes.lock().get(&nodeid).copied().unwrap_or(0)
    }

    /// Sends one request and checks the reply header; returns the payload length written into
    /// `out`. Errors: the server's errno, `EIO` for a malformed reply, `EINVAL` for a request
    /// too large to describe.
    fn request(
        &self,
        caller: Caller,
        opcode: u32,
        nodeid: u64,
        args: &[&[u8]],
        out: &mut [&mut [u8]],
    ) -> Result<usize> {
        let body: usize = args.iter().map(|a| a.len()).sum();
        let len =
            u32::try_from(core::mem::size_of::<InHeader>() + body).map_err(|_| Errno::EINVAL)?;
        let unique = self.unique.fetch_add(1, Ordering::Relaxed);
        let header = InHeader {
            len,
            opcode,
            unique,
            nodeid,
            uid: caller.uid,
            gid: caller.gid,
            pid: caller.pid,
            total_extlen: 0,
            padding: 0,
        };
        let mut req: Vec<&[u8]> = Vec::with_capacity(args.len() + 1);
        req.push(as_bytes(&header));
        req.extend_from_slice(args);
        let mut head = [0u8; core::mem::size_of::<OutHeader>()];
        let capacity = head.len() + out.iter().map(|o| o.len()).sum::<usize>();
        let mut reply: Vec<&mut [u8]> = Vec::with_capacity(out.len() + 1);
        reply.push(&mut head);
        for o in out.iter_mut() {
            reply.push(o);
        }
        let n = self.transport.call(&req, &mut reply)?;
        drop(reply);
        if n < head.len() || n > capacity {
            return Err(Errno::EIO);
        }
        let h: OutHeader = read_pod(&head).ok_or(Errno::EIO)?;
        if h.len as usize != n || h.unique != unique {
            return Err(Errno::EIO);
        }
        if h.error != 0 {
            if n != head.len() || h.error > 0 || h.error <= -ERRNO_LIMIT {
                return Err(Errno::EIO);
            }
            return Err(Errno(h.error.unsigned_abs()));
        }
        Ok(n - head.len())
    }

    /// A request whose reply payload is exactly one `T`.
    fn request_pod<T: Pod>(
        &self,
        caller: Caller,
        opcode: u32,
        nodeid: u64,
        args: &[&[u8]],
    ) -> Result<T> {
        let mut buf = vec![0u8; core::mem::size_of::<T>()];
        let n = self.request(caller, opcode, nodeid, args, &mut [&mut buf])?;
        if n != buf.len() {
            return Err(Errno::EIO);
        }
        read_pod(&buf).ok_or(Errno::EIO)
    }

    /// A request whose reply has no payload.
    fn request_empty(
        &self,
        caller: Caller,
        opcode: u32,
        nodeid: u64,
        args: &[&[u8]],
    ) -> Result<()> {
        match self.request(caller, opcode, nodeid, args, &mut [])? {
            0 => Ok(()),
            _ => Err(Errno::EIO),
        }
    }

    /// Counts the lookup a positive `fuse_entry_out` carries and checks it; a malformed one
    /// with a node id is forgotten at once (the server counted it). Negative: `ENOENT`.
    fn take_entry(&self, raw: &abi::EntryOut) -> Result<Entry> {
        match Entry::from_wire(raw) {
            Ok(Some(e)) => {
                *self.nodes.lock().entry(e.nodeid).or_insert(0) += 1;
                Ok(e)
            }
            Ok(None) => Err(Errno::ENOENT),
            Err(e) => {
                self.send_forget(raw.nodeid, 1);
                Err(e)
            }
        }
    }

    fn entry_request(
        &self,
        caller: Caller,
        opcode: u32,
        nodeid: u64,
        args: &[&[u8]],
    ) -> Result<Entry> {
        let raw: abi::EntryOut = self.request_pod(caller, opcode, nodeid, args)?;
        self.take_entry(&raw)
    }

    /// `LOOKUP` of `name` in directory `parent`. Errors: `ENOENT` (also for a negative entry),
    /// the server's errno, `EIO`.
    pub fn lookup(&self, caller: Caller, parent: u64, name: &[u8]) -> Result<Entry> {
        check_name(name)?;
        self.entry_request(caller, op::LOOKUP, parent, &[&cstr(name)])
    }

    /// Gives back `nlookup` lookups of `nodeid` (`FORGET`; no reply), at most as many as the
    /// client holds. Call when the guest drops an object that held them (each [`Entry`] the
    /// client returned is one lookup). Never fails (a lost FORGET only leaks server memory).
    pub fn forget(&self, nodeid: u64, nlookup: u64) {
        let n = self.take_lookups(nodeid, nlookup);
        if n > 0 {
            self.send_forget(nodeid, n);
        }
    }

    /// Removes up to `n` lookups of `nodeid` from the table; returns how many were held.
    fn take_lookups(&self, nodeid: u64, n: u64) -> u64 {
        let mut nodes = self.nodes.lock();
        let Some(held) = nodes.get_mut(&nodeid) else { return 0 };
        let n = n.min(*held);
        *held -= n;
        if *held == 0 {
            nodes.remove(&nodeid);
        }
        n
    }

    /// Gives back the lookups of several nodes, `(nodeid, nlookup)`, in one `BATCH_FORGET`.
    pub fn forget_many(&self, items: &[(u64, u64)]) {
        let ones: Vec<abi::ForgetOne> = items
            .iter()
            .filter_map(|&(id, n)| match self.take_lookups(id, n) {
                0 => None,
                n => Some(abi::ForgetOne { nodeid: id, nlookup: n }),
            })
            .collect();
        if ones.is_empty() {
            return;
        }
        let head = abi::BatchForgetIn { count: ones.len() as u32, dummy: 0 };
        let mut body = Vec::with_capacity(ones.len() * 16);
        for o in &ones {
            body.extend_from_slice(as_bytes(o));
        }
        // No reply is expected; a transport error changes nothing for the guest.
        let _ = self.request_noreply(op::BATCH_FORGET, 0, &[as_bytes(&head), &body]);
    }

    fn send_forget(&self, nodeid: u64, nlookup: u64) {
        let arg = abi::ForgetIn { nlookup };
        // No reply is expected; a transport error changes nothing for the guest.
        let _ = self.request_noreply(op::FORGET, nodeid, &[as_bytes(&arg)]);
    }

    /// Sends a request that has no reply (FORGET, BATCH_FORGET).
    fn request_noreply(&self, opcode: u32, nodeid: u64, args: &[&[u8]]) -> Result<()> {
        let body: usize = args.iter().map(|a| a.len()).sum();
        let len =
            u32::try_from(core::mem::size_of::<InHeader>() + body).map_err(|_| Errno::EINVAL)?;
        let header = InHeader {
            len,
            opcode,
            unique: self.unique.fetch_add(1, Ordering::Relaxed),
            nodeid,
            ..Default::default()
        };
        let mut req: Vec<&[u8]> = Vec::with_capacity(args.len() + 1);
        req.push(as_bytes(&header));
        req.extend_from_slice(args);
        self.transport.call(&req, &mut []).map(|_| ())
    }

    /// `GETATTR` (through the open handle `fh` if given).
    pub fn getattr(&self, caller: Caller, nodeid: u64, fh: Option<u64>) -> Result<AttrReply> {
        let arg = abi::GetattrIn {
            getattr_flags: if fh.is_some() { abi::GETATTR_FH } else { 0 },
            dummy: 0,
            fh: fh.unwrap_or(0),
        };
        let raw: abi::AttrOut = self.request_pod(caller, op::GETATTR, nodeid, &[as_bytes(&arg)])?;
        AttrReply::from_wire(&raw)
    }

    /// `SETATTR`: applies the `Some` fields of `set`; returns the new attributes.
    pub fn setattr(&self, caller: Caller, nodeid: u64, set: &SetAttr) -> Result<AttrReply> {
        use abi::fattr as f;
        let mut arg = abi::SetattrIn::default();
        if let Some(m) = set.mode {
            arg.valid |= f::MODE;
            arg.mode = m & 0o7777;
        }
        if let Some(u) = set.uid {
            arg.valid |= f::UID;
            arg.uid = u;
        }
        if let Some(gid) = set.gid {
            arg.valid |= f::GID;
            arg.gid = gid;
        }
        if let Some(s) = set.size {
            arg.valid |= f::SIZE;
            arg.size = s;
        }
        match set.atime {
            Some(Some(t)) => {
                arg.valid |= f::ATIME;
                arg.atime = t.sec as u64;
                arg.atimensec = u32::try_from(t.nsec).map_err(|_| Errno::EINVAL)?;
            }
            Some(None) => arg.valid |= f::ATIME | f::ATIME_NOW,
            None => {}
        }
        match set.mtime {
            Some(Some(t)) => {
                arg.valid |= f::MTIME;
                arg.mtime = t.sec as u64;
                arg.mtimensec = u32::try_from(t.nsec).map_err(|_| Errno::EINVAL)?;
            }
            Some(None) => arg.valid |= f::MTIME | f::MTIME_NOW,
            None => {}
        }
        if let Some(fh) = set.fh {
            arg.valid |= f::FH;
            arg.fh = fh;
        }
        let raw: abi::AttrOut = self.request_pod(caller, op::SETATTR, nodeid, &[as_bytes(&arg)])?;
        AttrReply::from_wire(&raw)
    }

    /// `READLINK`: the target, 1..PATH_MAX bytes without NUL. Errors: `EIO` for a target
    /// that is empty, too long or holds a NUL.
    pub fn readlink(&self, caller: Caller, nodeid: u64) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; PATH_MAX];
        let n = self.request(caller, op::READLINK, nodeid, &[], &mut [&mut buf])?;
        buf.truncate(n);
        if n == 0 || n >= PATH_MAX || buf.contains(&0) {
            return Err(Errno::EIO);
        }
        Ok(buf)
    }

    /// `SYMLINK`: creates `name` in `parent` pointing to `target`.
    pub fn symlink(
        &self,
        caller: Caller,
        parent: u64,
        name: &[u8],
        target: &[u8],
    ) -> Result<Entry> {
        check_name(name)?;
        if target.is_empty() || target.len() >= PATH_MAX || target.contains(&0) {
            return Err(Errno::EINVAL);
        }
        self.entry_request(caller, op::SYMLINK, parent, &[&cstr(name), &cstr(target)])
    }

    /// `MKNOD`: a regular file, FIFO, socket or device node; `mode` carries the type bits.
    pub fn mknod(
        &self,
        caller: Caller,
        parent: u64,
        name: &[u8],
        mode: u32,
        rdev: u32,
        umask: u32,
    ) -> Result<Entry> {
        check_name(name)?;
        let arg = abi::MknodIn {
            mode,
            rdev,
            umask,
            padding: 0,
        };
        self.entry_request(caller, op::MKNOD, parent, &[as_bytes(&arg), &cstr(name)])
    }

    /// `MKDIR`.
    pub fn mkdir(
        &self,
        caller: Caller,
        parent: u64,
        name: &[u8],
        mode: u32,
        umask: u32,
    ) -> Result<Entry> {
        check_name(name)?;
        let arg = abi::MkdirIn { mode, umask };
        self.entry_request(caller, op::MKDIR, parent, &[as_bytes(&arg), &cstr(name)])
    }

    /// `UNLINK`.
    pub fn unlink(&self, caller: Caller, parent: u64, name: &[u8]) -> Result<()> {
        check_name(name)?;
        self.request_empty(caller, op::UNLINK, parent, &[&cstr(name)])
    }

    /// `RMDIR`.
    pub fn rmdir(&self, caller: Caller, parent: u64, name: &[u8]) -> Result<()> {
        check_name(name)?;
        self.request_empty(caller, op::RMDIR, parent, &[&cstr(name)])
    }

    /// `RENAME2` with `renameat2(2)` flags (`RENAME_NOREPLACE`, `RENAME_EXCHANGE`); plain
    /// `RENAME` when the server lacks RENAME2 and `flags` is 0.
    pub fn rename(
        &self,
        caller: Caller,
        olddir: u64,
        oldname: &[u8],
        newdir: u64,
        newname: &[u8],
        flags: u32,
    ) -> Result<()> {
        check_name(oldname)?;
        check_name(newname)?;
        let (old, new) = (cstr(oldname), cstr(newname));
        let arg = abi::Rename2In {
            newdir,
            flags,
            padding: 0,
        };
        match self.request_empty(caller, op::RENAME2, olddir, &[as_bytes(&arg), &old, &new]) {
            Err(Errno::ENOSYS) if flags == 0 => {
                let arg = abi::RenameIn { newdir };
                self.request_empty(caller, op::RENAME, olddir, &[as_bytes(&arg), &old, &new])
            }
            Err(Errno::ENOSYS) => Err(Errno::EINVAL),
            r => r,
        }
    }

    /// `LINK`: a new name `newname` in `newparent` for `nodeid`.
    pub fn link(
        &self,
        caller: Caller,
        nodeid: u64,
        newparent: u64,
        newname: &[u8],
    ) -> Result<Entry> {
        check_name(newname)?;
        let arg = abi::LinkIn { oldnodeid: nodeid };
        self.entry_request(
            caller,
            op::LINK,
            newparent,
            &[as_bytes(&arg), &cstr(newname)],
        )
    }

    /// `OPEN` with `open(2)` flags (`O_CREAT`, `O_EXCL`, `O_NOCTTY` are the VFS's; `O_TRUNC`
    /// is done by a SETATTR when the server did not agree to `ATOMIC_O_TRUNC`).
    pub fn open(&self, caller: Caller, nodeid: u64, flags: u32) -> Result<Opened> {
        let mut flags = flags & !(g::O_CREAT | g::O_EXCL | g::O_NOCTTY);
        let atomic_trunc = self.conn.flags & abi::init_flags::ATOMIC_O_TRUNC != 0;
        let trunc = flags & g::O_TRUNC != 0 && !atomic_trunc;
        if trunc {
            flags &= !g::O_TRUNC;
        }
        let o = self.open_op(caller, op::OPEN, nodeid, flags)?;
        if trunc {
            let set = SetAttr {
                size: Some(0),
                fh: Some(o.fh),
                ..Default::default()
            };
            if let Err(e) = self.setattr(caller, nodeid, &set) {
                self.release(caller, nodeid, o.fh, flags, None);
                return Err(e);
            }
        }
        Ok(o)
    }

    /// `OPENDIR`.
    pub fn opendir(&self, caller: Caller, nodeid: u64, flags: u32) -> Result<Opened> {
        self.open_op(
            caller,
            op::OPENDIR,
            nodeid,
            flags & !(g::O_CREAT | g::O_EXCL | g::O_NOCTTY | g::O_TRUNC),
        )
    }

    fn open_op(&self, caller: Caller, opcode: u32, nodeid: u64, flags: u32) -> Result<Opened> {
        let arg = abi::OpenIn {
            flags,
            open_flags: 0,
        };
        let raw: abi::OpenOut = self.request_pod(caller, opcode, nodeid, &[as_bytes(&arg)])?;
        Ok(Opened {
            fh: raw.fh,
            open_flags: raw.open_flags,
        })
    }

    /// `CREATE`: creates and opens `name` (a regular file of `mode`).
    pub fn create(
        &self,
        caller: Caller,
        parent: u64,
        name: &[u8],
        flags: u32,
        mode: u32,
        umask: u32,
    ) -> Result<(Entry, Opened)> {
        check_name(name)?;
        let arg = abi::CreateIn {
            flags: flags & !g::O_NOCTTY,
            mode,
            umask,
            open_flags: 0,
        };
        let mut e = [0u8; core::mem::size_of::<abi::EntryOut>()];
        let mut o = [0u8; core::mem::size_of::<abi::OpenOut>()];
        let n = self.request(
            caller,
            op::CREATE,
            parent,
            &[as_bytes(&arg), &cstr(name)],
            &mut [&mut e, &mut o],
        )?;
        let raw: abi::EntryOut = read_pod(&e).ok_or(Errno::EIO)?;
        if n != e.len() + o.len() {
            if n >= e.len() && raw.nodeid != 0 {
                self.send_forget(raw.nodeid, 1);
            }
            return Err(Errno::EIO);
        }
        let open: abi::OpenOut = read_pod(&o).ok_or(Errno::EIO)?;
        let entry = match self.take_entry(&raw) {
            Ok(entry) => entry,
            Err(err) => {
                self.release(caller, raw.nodeid, open.fh, flags, None);
                return Err(if err == Errno::ENOENT {
                    Errno::EIO
                } else {
                    err
                });
            }
        };
        if entry.attr.kind != crate::inode::FileType::Regular {
            self.release(caller, entry.nodeid, open.fh, flags, None);
            self.forget(entry.nodeid, 1);
            return Err(Errno::EIO);
        }
        Ok((
            entry,
            Opened {
                fh: open.fh,
                open_flags: open.open_flags,
            },
        ))
    }

    /// `READ` of `buf.len()` bytes at `offset` through `fh`, in requests of at most
    /// `max_read`; returns the bytes read (short at end of file).
    pub fn read(
        &self,
        caller: Caller,
        nodeid: u64,
        fh: u64,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            let chunk = (buf.len() - done).min(self.conn.max_read as usize);
            let arg = abi::ReadIn {
                fh,
                offset: offset + done as u64,
                size: chunk as u32,
                ..Default::default()
            };
            let n = match self.request(
                caller,
                op::READ,
                nodeid,
                &[as_bytes(&arg)],
                &mut [&mut buf[done..done + chunk]],
            ) {
                Ok(n) => n,
                Err(e) if done == 0 => return Err(e),
                Err(_) => break,
            };
            done += n;
            if n < chunk {
                break;
            }
        }
        Ok(done)
    }

    /// `WRITE` of `data` at `offset` through `fh`, in requests of at most `max_write`;
    /// returns the bytes written. Errors: the server's errno if nothing was written, `EIO`
    /// when the server claims more than was sent.
    pub fn write(
        &self,
        caller: Caller,
        nodeid: u64,
        fh: u64,
        offset: u64,
        data: &[u8],
    ) -> Result<usize> {
        let mut done = 0;
        while done < data.len() {
            let chunk = (data.len() - done).min(self.conn.max_write as usize);
            let arg = abi::WriteIn {
                fh,
                offset: offset + done as u64,
                size: chunk as u32,
                ..Default::default()
            };
            let r: Result<abi::WriteOut> = self.request_pod(
                caller,
                op::WRITE,
                nodeid,
                &[as_bytes(&arg), &data[done..done + chunk]],
            );
            let n = match r {
                Ok(w) if w.size as usize <= chunk => w.size as usize,
                Ok(_) => return Err(Errno::EIO),
                Err(e) if done == 0 => return Err(e),
                Err(_) => break,
            };
            done += n;
            if n < chunk {
                break;
            }
        }
        Ok(done)
    }

    /// `STATFS` of the filesystem `nodeid` is on.
    pub fn statfs(&self, caller: Caller, nodeid: u64) -> Result<StatfsReply> {
        let mut s: abi::Kstatfs = self.request_pod(caller, op::STATFS, nodeid, &[])?;
        s.namelen = s.namelen.min(NAME_MAX as u32);
        if s.bsize == 0 {
            s.bsize = 4096;
        }
        if s.frsize == 0 {
            s.frsize = s.bsize;
        }
        Ok(s)
    }

    /// `RELEASE` of an open file (and its flock locks held by `flock_owner`, if given).
    /// Never fails: the handle is gone for the guest either way.
    pub fn release(
        &self,
        caller: Caller,
        nodeid: u64,
        fh: u64,
        flags: u32,
        flock_owner: Option<u64>,
    ) {
        let arg = abi::ReleaseIn {
            fh,
            flags,
            release_flags: if flock_owner.is_some() {
                abi::RELEASE_FLOCK_UNLOCK
            } else {
                0
            },
            lock_owner: flock_owner.unwrap_or(0),
        };
        let _ = self.request_empty(caller, op::RELEASE, nodeid, &[as_bytes(&arg)]);
    }

    /// `RELEASEDIR`. Never fails.
    pub fn releasedir(&self, caller: Caller, nodeid: u64, fh: u64) {
        let arg = abi::ReleaseIn {
            fh,
            ..Default::default()
        };
        let _ = self.request_empty(caller, op::RELEASEDIR, nodeid, &[as_bytes(&arg)]);
    }

    /// `FSYNC` (data only if `datasync`).
    pub fn fsync(&self, caller: Caller, nodeid: u64, fh: u64, datasync: bool) -> Result<()> {
        let arg = abi::FsyncIn {
            fh,
            fsync_flags: if datasync { abi::FSYNC_FDATASYNC } else { 0 },
            padding: 0,
        };
        self.request_empty(caller, op::FSYNC, nodeid, &[as_bytes(&arg)])
    }

    /// `FSYNCDIR`.
    pub fn fsyncdir(&self, caller: Caller, nodeid: u64, fh: u64, datasync: bool) -> Result<()> {
        let arg = abi::FsyncIn {
            fh,
            fsync_flags: if datasync { abi::FSYNC_FDATASYNC } else { 0 },
            padding: 0,
        };
        self.request_empty(caller, op::FSYNCDIR, nodeid, &[as_bytes(&arg)])
    }

    /// `FLUSH` (on every `close(2)` of a descriptor; releases POSIX locks of `lock_owner`).
    pub fn flush(&self, caller: Caller, nodeid: u64, fh: u64, lock_owner: u64) -> Result<()> {
        let arg = abi::FlushIn {
            fh,
            unused: 0,
            padding: 0,
            lock_owner,
        };
        match self.request_empty(caller, op::FLUSH, nodeid, &[as_bytes(&arg)]) {
            Err(Errno::ENOSYS) => Ok(()),
            r => r,
        }
    }

    /// `SYNCFS`. A server without it: success (nothing more can be done).
    pub fn syncfs(&self, caller: Caller) -> Result<()> {
        let arg = abi::SyncfsIn::default();
        match self.request_empty(caller, op::SYNCFS, abi::ROOT_ID, &[as_bytes(&arg)]) {
            Err(Errno::ENOSYS) => Ok(()),
            r => r,
        }
    }

    fn check_xattr_name(name: &[u8]) -> Result<()> {
        if name.is_empty() || name.len() > XATTR_NAME_MAX || name.contains(&0) {
            return Err(Errno::ERANGE);
        }
        Ok(())
    }

    /// `SETXATTR` with `setxattr(2)` flags (`XATTR_CREATE`, `XATTR_REPLACE`).
    pub fn setxattr(
        &self,
        caller: Caller,
        nodeid: u64,
        name: &[u8],
        value: &[u8],
        flags: u32,
    ) -> Result<()> {
        Self::check_xattr_name(name)?;
        if value.len() > XATTR_SIZE_MAX {
            return Err(Errno::E2BIG);
        }
        let arg = abi::SetxattrIn {
            size: value.len() as u32,
            flags,
        };
        self.request_empty(
            caller,
            op::SETXATTR,
            nodeid,
            &[as_bytes(&arg), &cstr(name), value],
        )
        .map_err(xattr_errno)
    }

    /// Shared by GETXATTR and LISTXATTR: with an empty `buf` asks for the size, otherwise reads
    /// the value into `buf` (`ERANGE` if it is too small, as the server says).
    fn xattr_read(
        &self,
        caller: Caller,
        opcode: u32,
        nodeid: u64,
        name: Option<&[u8]>,
        buf: &mut [u8],
    ) -> Result<usize> {
        let size = buf.len().min(XATTR_SIZE_MAX);
        let arg = abi::GetxattrIn {
            size: size as u32,
            padding: 0,
        };
        let n = name.map(cstr);
        let mut args: Vec<&[u8]> = vec![as_bytes(&arg)];
        if let Some(n) = &n {
            args.push(n);
        }
        if size == 0 {
            let out: abi::GetxattrOut = self
                .request_pod(caller, opcode, nodeid, &args)
                .map_err(xattr_errno)?;
            if out.size as usize > XATTR_SIZE_MAX {
                return Err(Errno::EIO);
            }
            return Ok(out.size as usize);
        }
        self.request(caller, opcode, nodeid, &args, &mut [&mut buf[..size]])
            .map_err(xattr_errno)
    }

    /// `GETXATTR`: with an empty `buf`, the value's size; else the value's bytes in `buf`.
    pub fn getxattr(
        &self,
        caller: Caller,
        nodeid: u64,
        name: &[u8],
        buf: &mut [u8],
    ) -> Result<usize> {
        Self::check_xattr_name(name)?;
        self.xattr_read(caller, op::GETXATTR, nodeid, Some(name), buf)
    }

    /// `LISTXATTR`: with an empty `buf`, the list's size; else the NUL-terminated names in
    /// `buf`. Errors: `EIO` for a list whose names are empty or not NUL-terminated.
    pub fn listxattr(&self, caller: Caller, nodeid: u64, buf: &mut [u8]) -> Result<usize> {
        let n = self.xattr_read(caller, op::LISTXATTR, nodeid, None, buf)?;
        if !buf.is_empty() {
            let list = &buf[..n];
            if n > 0
                && (list[n - 1] != 0
                    || list[..n - 1]
                        .split(|&c| c == 0)
                        .any(|s| s.is_empty() || s.len() > XATTR_NAME_MAX))
            {
                return Err(Errno::EIO);
            }
        }
        Ok(n)
    }

    /// `REMOVEXATTR`.
    pub fn removexattr(&self, caller: Caller, nodeid: u64, name: &[u8]) -> Result<()> {
        Self::check_xattr_name(name)?;
        self.request_empty(caller, op::REMOVEXATTR, nodeid, &[&cstr(name)])
            .map_err(xattr_errno)
    }

    /// `READDIR` from `offset` (0 or an entry's `off`), at most `size` bytes of records.
    pub fn readdir(
        &self,
        caller: Caller,
        nodeid: u64,
        fh: u64,
        offset: u64,
        size: u32,
    ) -> Result<Vec<DirEntry>> {
        let buf = self.read_dir_records(caller, op::READDIR, nodeid, fh, offset, size)?;
        dirent::parse_readdir(&buf)
    }

    /// The raw records of a `READDIR` or `READDIRPLUS` (`opcode`) of at most `size` bytes
    /// (clamped to 4 KiB ..= `max_read`), unparsed.
    fn read_dir_records(&self, caller: Caller, opcode: u32, nodeid: u64, fh: u64, offset: u64, size: u32) -> Result<Vec<u8>> {
        let size = size.clamp(4096, self.conn.max_read);
        let arg = abi::ReadIn { fh, offset, size, ..Default::default() };
        let mut buf = vec![0u8; size as usize];
        let n = self.request(caller, opcode, nodeid, &[as_bytes(&arg)], &mut [&mut buf])?;
        buf.truncate(n);
        Ok(buf)
    }

    /// `READDIRPLUS`: records with their entries; each `Some` entry counts a lookup (forget
    /// it when not kept). Errors: `EIO` (the reply's lookups are then forgotten).
    pub fn readdirplus(
        &self,
        caller: Caller,
        nodeid: u64,
        fh: u64,
        offset: u64,
        size: u32,
    ) -> Result<Vec<(DirEntry, Option<Entry>)>> {
        let buf = self.read_dir_records(caller, op::READDIRPLUS, nodeid, fh, offset, size)?;
        match dirent::parse_readdirplus(&buf) {
            Ok(v) => {
                let mut nodes = self.nodes.lock();
                for e in v.iter().filter_map(|(_, e)| e.as_ref()) {
                    *nodes.entry(e.nodeid).or_insert(0) += 1;
                }
                Ok(v)
            }
            Err(counted) => {
                for id in counted {
                    self.send_forget(id, 1);
                }
                Err(Errno::EIO)
            }
        }
    }

    fn check_lock(l: &Lock) -> Result<()> {
        let known = [g::F_RDLCK, g::F_WRLCK, g::F_UNLCK].contains(&l.typ);
        if !known || l.start > l.end {
            return Err(Errno::EIO);
        }
        Ok(())
    }

    /// `GETLK`: the first lock that would conflict with `lock` (type `F_UNLCK` if none).
    pub fn getlk(
        &self,
        caller: Caller,
        nodeid: u64,
        fh: u64,
        owner: u64,
        lock: Lock,
    ) -> Result<Lock> {
        let arg = abi::LkIn {
            fh,
            owner,
            lk: lock,
            lk_flags: 0,
            padding: 0,
        };
        let out: abi::LkOut = self.request_pod(caller, op::GETLK, nodeid, &[as_bytes(&arg)])?;
        Self::check_lock(&out.lk)?;
        Ok(out.lk)
    }

    /// `SETLK` (or `SETLKW` when `wait`): takes or drops `lock` for `owner`; `flock` marks a
    /// `flock(2)` lock. Errors: `EAGAIN` on conflict without `wait`, the server's errno.
    #[allow(clippy::too_many_arguments)]
    pub fn setlk(
        &self,
        caller: Caller,
        nodeid: u64,
        fh: u64,
        owner: u64,
        lock: Lock,
        wait: bool,
        flock: bool,
    ) -> Result<()> {
        let arg = abi::LkIn {
            fh,
            owner,
            lk: lock,
            lk_flags: if flock { abi::LK_FLOCK } else { 0 },
            padding: 0,
        };
        let opcode = if wait { op::SETLKW } else { op::SETLK };
        self.request_empty(caller, opcode, nodeid, &[as_bytes(&arg)])
    }

    /// `ACCESS` with an `access(2)` mask.
    pub fn access(&self, caller: Caller, nodeid: u64, mask: u32) -> Result<()> {
        let arg = abi::AccessIn { mask, padding: 0 };
        self.request_empty(caller, op::ACCESS, nodeid, &[as_bytes(&arg)])
    }

    /// `FALLOCATE` with `fallocate(2)` mode bits.
    pub fn fallocate(
        &self,
        caller: Caller,
        nodeid: u64,
        fh: u64,
        mode: u32,
        offset: u64,
        length: u64,
    ) -> Result<()> {
        let arg = abi::FallocateIn {
            fh,
            offset,
            length,
            mode,
            padding: 0,
        };
        self.request_empty(caller, op::FALLOCATE, nodeid, &[as_bytes(&arg)])
    }

    /// `LSEEK` for `SEEK_DATA`/`SEEK_HOLE`; returns the new offset (at most `i64::MAX`).
    pub fn lseek(
        &self,
        caller: Caller,
        nodeid: u64,
        fh: u64,
        offset: u64,
        whence: u32,
    ) -> Result<u64> {
        let arg = abi::LseekIn {
            fh,
            offset,
            whence,
            padding: 0,
        };
        let out: abi::LseekOut = self.request_pod(caller, op::LSEEK, nodeid, &[as_bytes(&arg)])?;
        if out.offset > i64::MAX as u64 {
            return Err(Errno::EIO);
        }
        Ok(out.offset)
    }

    /// `COPY_FILE_RANGE` of `len` bytes between two open files; returns the bytes copied
    /// (at most `len`).
    #[allow(clippy::too_many_arguments)]
    pub fn copy_file_range(
        &self,
        caller: Caller,
        nodeid_in: u64,
        fh_in: u64,
        off_in: u64,
        nodeid_out: u64,
        fh_out: u64,
        off_out: u64,
        len: u64,
    ) -> Result<u64> {
        let arg = abi::CopyFileRangeIn {
            fh_in,
            off_in,
            nodeid_out,
            fh_out,
            off_out,
            len,
            flags: 0,
        };
        let out: abi::WriteOut =
            self.request_pod(caller, op::COPY_FILE_RANGE, nodeid_in, &[as_bytes(&arg)])?;
        if u64::from(out.size) > len {
            return Err(Errno::EIO);
        }
        Ok(u64::from(out.size))
    }
}

#[cfg(test)]
mod tests {
    //! A hostile server: each test transport answers with crafted bytes and the client must
    //! refuse them (`EIO`) without panicking.
    extern crate std;
    use super::*;
    use abi::{EntryOut, InitOut, OutHeader};
    use std::sync::Mutex as StdMutex;

    type Answer = std::boxed::Box<dyn Fn(&InHeader, &[u8]) -> Vec<u8> + Send + Sync>;

    /// Serves INIT correctly, then every other request with `answer` (given the request's
    /// header and body); records the requests it saw.
    struct Hostile {
        answer: Answer,
        seen: StdMutex<Vec<InHeader>>,
    }

    fn reply(unique: u64, error: i32, payload: &[u8]) -> Vec<u8> {
        let h = OutHeader {
            len: (16 + payload.len()) as u32,
            error,
            unique,
        };
        let mut v = as_bytes(&h).to_vec();
        v.extend_from_slice(payload);
        v
    }

    impl FuseTransport for Hostile {
        fn call(&self, request: &[&[u8]], out: &mut [&mut [u8]]) -> Result<usize> {
            let req = request.concat();
            let h: InHeader = read_pod(&req).unwrap();
            self.seen.lock().unwrap().push(h);
            let bytes = if h.opcode == op::INIT {
                let o = InitOut {
                    major: 7,
                    minor: 31,
                    max_write: 4096,
                    ..Default::default()
                };
                reply(h.unique, 0, as_bytes(&o))
            } else {
                (self.answer)(&h, &req[40..])
            };
            let mut copied = 0;
            for o in out.iter_mut() {
                let take = o.len().min(bytes.len() - copied);
                o[..take].copy_from_slice(&bytes[copied..copied + take]);
                copied += take;
            }
            Ok(copied)
        }
    }

    fn client(
        answer: impl Fn(&InHeader, &[u8]) -> Vec<u8> + Send + Sync + 'static,
    ) -> (FuseClient, Arc<Hostile>) {
        let t = Arc::new(Hostile {
            answer: std::boxed::Box::new(answer),
            seen: StdMutex::new(Vec::new()),
        });
        (FuseClient::init(t.clone()).unwrap(), t)
    }

    fn good_entry(nodeid: u64) -> EntryOut {
        let mut e = EntryOut {
            nodeid,
            ..Default::default()
        };
        e.attr.mode = g::S_IFREG | 0o644;
        e.attr.nlink = 1;
        e
    }

    const C: Caller = Caller {
        uid: 0,
        gid: 0,
        pid: 1,
    };

    #[test]
    fn header_checks() {
        // Wrong unique.
        let (c, _) = client(|h, _| reply(h.unique + 1, 0, as_bytes(&good_entry(5))));
        assert_eq!(c.lookup(C, 1, b"a"), Err(Errno::EIO));
        // len disagrees with the bytes written.
        let (c, _) = client(|h, _| {
            let mut v = reply(h.unique, 0, as_bytes(&good_entry(5)));
            v[0] = 200;
            v
        });
        assert_eq!(c.lookup(C, 1, b"a"), Err(Errno::EIO));
        // Positive error, out-of-range error, error with payload.
        let (c, _) = client(|h, _| reply(h.unique, 5, &[]));
        assert_eq!(c.unlink(C, 1, b"a"), Err(Errno::EIO));
        let (c, _) = client(|h, _| reply(h.unique, -600, &[]));
        assert_eq!(c.unlink(C, 1, b"a"), Err(Errno::EIO));
        let (c, _) = client(|h, _| reply(h.unique, -2, &[0; 8]));
        assert_eq!(c.unlink(C, 1, b"a"), Err(Errno::EIO));
        // A proper error passes through.
        let (c, _) = client(|h, _| reply(h.unique, -13, &[]));
        assert_eq!(c.unlink(C, 1, b"a"), Err(Errno::EACCES));
        // Short reply (less than a header).
        let (c, _) = client(|_, _| std::vec![1, 2, 3]);
        assert_eq!(c.unlink(C, 1, b"a"), Err(Errno::EIO));
        // Payload where none belongs.
        let (c, _) = client(|h, _| reply(h.unique, 0, &[0; 4]));
        assert_eq!(c.unlink(C, 1, b"a"), Err(Errno::EIO));
    }

    #[test]
    fn payload_checks() {
        // Wrong payload size for an entry.
        let (c, _) = client(|h, _| reply(h.unique, 0, &as_bytes(&good_entry(5))[..100]));
        assert_eq!(c.lookup(C, 1, b"a"), Err(Errno::EIO));
        // A bad file type: refused, and the node's lookup is forgotten at once.
        let (c, t) = client(|h, _| {
            let mut e = good_entry(9);
            e.attr.mode = 0o170_000 | 0o644;
            reply(h.unique, 0, as_bytes(&e))
        });
        assert_eq!(c.lookup(C, 1, b"a"), Err(Errno::EIO));
        assert_eq!(c.lookups(9), 0);
        assert!(
            t.seen
                .lock()
                .unwrap()
                .iter()
                .any(|h| h.opcode == op::FORGET && h.nodeid == 9)
        );
        // Nanoseconds out of range.
        let (c, _) = client(|h, _| {
            let mut e = good_entry(5);
            e.attr.mtimensec = 1_000_000_000;
            reply(h.unique, 0, as_bytes(&e))
        });
        assert_eq!(c.lookup(C, 1, b"a"), Err(Errno::EIO));
        // A negative entry is ENOENT and counts nothing.
        let (c, _) = client(|h, _| reply(h.unique, 0, as_bytes(&good_entry(0))));
        assert_eq!(c.lookup(C, 1, b"a"), Err(Errno::ENOENT));
        // WRITE claiming more than was sent.
        let (c, _) = client(|h, _| {
            reply(
                h.unique,
                0,
                as_bytes(&abi::WriteOut {
                    size: 99,
                    padding: 0,
                }),
            )
        });
        assert_eq!(c.write(C, 5, 1, 0, b"abc"), Err(Errno::EIO));
        // READLINK with a NUL or empty.
        let (c, _) = client(|h, _| reply(h.unique, 0, b"a\0b"));
        assert_eq!(c.readlink(C, 5), Err(Errno::EIO));
        let (c, _) = client(|h, _| reply(h.unique, 0, b""));
        assert_eq!(c.readlink(C, 5), Err(Errno::EIO));
        // An xattr list not NUL-terminated, an oversized xattr size.
        let (c, _) = client(|h, _| reply(h.unique, 0, b"user.a"));
        assert_eq!(c.listxattr(C, 5, &mut [0u8; 32]), Err(Errno::EIO));
        let (c, _) = client(|h, _| {
            reply(
                h.unique,
                0,
                as_bytes(&abi::GetxattrOut {
                    size: 1 << 20,
                    padding: 0,
                }),
            )
        });
        assert_eq!(c.getxattr(C, 5, b"user.a", &mut []), Err(Errno::EIO));
        // A lock with start past end.
        let (c, _) = client(|h, _| {
            let lk = abi::FileLock {
                start: 10,
                end: 5,
                typ: g::F_WRLCK,
                pid: 1,
            };
            reply(h.unique, 0, as_bytes(&abi::LkOut { lk }))
        });
        assert_eq!(
            c.getlk(C, 5, 1, 1, abi::FileLock::default()),
            Err(Errno::EIO)
        );
        // A READ reply larger than asked cannot be written (the transport bounds it), a
        // READDIR with a bad name is refused.
        let (c, _) = client(|h, _| {
            let d = abi::DirentHead {
                ino: 1,
                off: 1,
                namelen: 3,
                typ: 8,
            };
            let mut p = as_bytes(&d).to_vec();
            p.extend_from_slice(b"a/b\0\0\0\0\0");
            reply(h.unique, 0, &p)
        });
        assert_eq!(c.readdir(C, 1, 1, 0, 4096), Err(Errno::EIO));
        // ENOSYS for an xattr call reads as EOPNOTSUPP.
        let (c, _) = client(|h, _| reply(h.unique, -(linux_raw_sys::errno::ENOSYS as i32), &[]));
        assert_eq!(c.removexattr(C, 5, b"user.a"), Err(Errno::EOPNOTSUPP));
    }

    #[test]
    fn forget_repays_every_lookup_once() {
        let (c, t) = client(|h, _| reply(h.unique, 0, as_bytes(&good_entry(7))));
        for _ in 0..3 {
            c.lookup(C, 1, b"a").unwrap();
        }
        assert_eq!(c.lookups(7), 3);
        c.forget(7, 2);
        assert_eq!(c.lookups(7), 1);
        c.forget(7, 5);
        c.forget(7, 1);
        assert_eq!(c.lookups(7), 0);
        let seen = t.seen.lock().unwrap();
        let forgets: Vec<_> = seen.iter().filter(|h| h.opcode == op::FORGET).collect();
        assert_eq!(forgets.len(), 2);
        assert!(forgets.iter().all(|h| h.nodeid == 7));
    }

    #[test]
    fn names_are_checked_before_sending() {
        let (c, t) = client(|h, _| reply(h.unique, 0, &[]));
        assert_eq!(c.unlink(C, 1, b"a/b"), Err(Errno::EINVAL));
        assert_eq!(c.unlink(C, 1, b""), Err(Errno::EINVAL));
        assert_eq!(c.unlink(C, 1, &[b'x'; 256]), Err(Errno::ENAMETOOLONG));
        assert_eq!(t.seen.lock().unwrap().len(), 1); // INIT only
    }

    #[test]
    fn old_servers_are_refused() {
        struct Old;
        impl FuseTransport for Old {
            fn call(&self, request: &[&[u8]], out: &mut [&mut [u8]]) -> Result<usize> {
                let h: InHeader = read_pod(request[0]).unwrap();
                let o = InitOut {
                    major: 7,
                    minor: 22,
                    ..Default::default()
                };
                let r = reply(h.unique, 0, as_bytes(&o));
                out[0].copy_from_slice(&r[..16]);
                out[1].copy_from_slice(&r[16..]);
                Ok(r.len())
            }
        }
        assert_eq!(
            FuseClient::init(Arc::new(Old)).err(),
            Some(Errno(linux_raw_sys::errno::EPROTO))
        );
    }
}
