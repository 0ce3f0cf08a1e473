//! A test driver for F's queue: a memfd-backed guest RAM, one hostfs queue set up the way the
//! guest kernel's driver will (descriptor table, available and used rings at the ABI's
//! offsets), and FUSE requests built by hand (Linux include/uapi/linux/fuse.h, protocol 7.31).

#![allow(dead_code)]

use std::fs::File;
use std::os::fd::FromRawFd;
use std::path::Path;

use file_server::memory::GuestRam;
use file_server::queue::QueueServer;
use guest_abi::hostfs::{AVAIL_OFFSET, QUEUE_SIZE, USED_OFFSET};
use vm_memory::{Bytes, GuestAddress};

pub const RAM: u64 = 16 << 20;
pub const AREA: u64 = 0x10_0000;
const REQ_BUF: u64 = 0x20_0000;
const REPLY_BUF: u64 = 0x40_0000;
pub const REPLY_CAP: u32 = 1 << 20;

pub const ROOT: u64 = 1;

/// FUSE opcodes, from the server crate's own `Opcode` (not numbers written again here).
pub mod op {
    use fuse_backend_rs::abi::fuse_abi::Opcode;
    pub const LOOKUP: u32 = Opcode::Lookup as u32;
    pub const GETATTR: u32 = Opcode::Getattr as u32;
    pub const SETATTR: u32 = Opcode::Setattr as u32;
    pub const READLINK: u32 = Opcode::Readlink as u32;
    pub const SYMLINK: u32 = Opcode::Symlink as u32;
    pub const MKDIR: u32 = Opcode::Mkdir as u32;
    pub const UNLINK: u32 = Opcode::Unlink as u32;
    pub const RENAME: u32 = Opcode::Rename as u32;
    pub const LINK: u32 = Opcode::Link as u32;
    pub const OPEN: u32 = Opcode::Open as u32;
    pub const READ: u32 = Opcode::Read as u32;
    pub const WRITE: u32 = Opcode::Write as u32;
    pub const STATFS: u32 = Opcode::Statfs as u32;
    pub const RELEASE: u32 = Opcode::Release as u32;
    pub const GETXATTR: u32 = Opcode::Getxattr as u32;
    pub const INIT: u32 = Opcode::Init as u32;
    pub const OPENDIR: u32 = Opcode::Opendir as u32;
    pub const READDIR: u32 = Opcode::Readdir as u32;
    pub const CREATE: u32 = Opcode::Create as u32;
}

/// Guest RAM in a memfd, mapped the way F maps it.
pub fn guest_ram() -> GuestRam {
    // SAFETY: a valid NUL-terminated name; the result is checked.
    let fd = unsafe { libc::memfd_create(c"fsrv-test".as_ptr(), libc::MFD_CLOEXEC) };
    assert!(fd >= 0, "memfd_create");
    // SAFETY: a fresh descriptor owned by nobody else.
    let f = unsafe { File::from_raw_fd(fd) };
    f.set_len(RAM).expect("ftruncate");
    GuestRam::map(f, RAM).expect("map")
}

/// A FUSE reply: the header's error (0 or a negative errno) and the payload.
#[derive(Debug)]
pub struct Reply {
    pub error: i32,
    pub body: Vec<u8>,
    /// The used entry's length (header included).
    pub used_len: u32,
}

impl Reply {
    pub fn ok(&self) -> &[u8] {
        assert_eq!(self.error, 0, "request failed: {}", std::io::Error::from_raw_os_error(-self.error));
        &self.body
    }
    pub fn u64_at(&self, off: usize) -> u64 {
        u64::from_le_bytes(self.ok()[off..off + 8].try_into().expect("8 bytes"))
    }
    pub fn u32_at(&self, off: usize) -> u32 {
        u32::from_le_bytes(self.ok()[off..off + 4].try_into().expect("4 bytes"))
    }
}

/// `struct fuse_attr` offsets inside an entry_out (40 bytes of entry fields first).
pub const ENTRY_ATTR: usize = 40;
/// Offsets in `struct fuse_attr`.
pub const ATTR_INO: usize = 0;
pub const ATTR_SIZE: usize = 8;
pub const ATTR_MODE: usize = 60;
pub const ATTR_NLINK: usize = 64;

/// The driver side of one queue plus the server under test.
pub struct Driver<'m> {
    ram: &'m GuestRam,
    pub server: QueueServer<'m>,
    avail_idx: u16,
    used_idx: u16,
    unique: u64,
    rings: u64,
    bufs: u64,
}

impl<'m> Driver<'m> {
    /// Serves `root` (read-only when asked) on queue 0 and sends INIT.
    pub fn new(ram: &'m GuestRam, root: &Path, read_only: bool) -> Self {
        Self::on_queue(ram, 0, root, read_only)
    }

    /// As [`Driver::new`], on queue `queue` (its own rings and buffers).
    pub fn on_queue(ram: &'m GuestRam, queue: u32, root: &Path, read_only: bool) -> Self {
        let fs = file_server::process::open_mount(&file_server::MountSpec { queue, read_only, source: root.to_path_buf() })
            .expect("open mount");
        let bells = ram.doorbells(AREA).expect("doorbells");
        let server = QueueServer::new(ram.mem(), bells, AREA, queue, fs).expect("queue");
        let rings = AREA + 4096 * (1 + u64::from(queue));
        let bufs = u64::from(queue) * 0x40_0000;
        let mut d = Self { ram, server, avail_idx: 0, used_idx: 0, unique: 0, rings, bufs };
        let mut init = Vec::new();
        for v in [7u32, 31, 1 << 17, 0] {
            init.extend_from_slice(&v.to_le_bytes());
        }
        let r = d.request(op::INIT, 0, &init);
        assert_eq!(r.error, 0, "INIT failed: {r:?}");
        d
    }

    fn write(&self, gpa: u64, bytes: &[u8]) {
        self.ram.mem().write_slice(bytes, GuestAddress(gpa)).expect("write guest RAM");
    }
    fn read(&self, gpa: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        self.ram.mem().read_slice(&mut v, GuestAddress(gpa)).expect("read guest RAM");
        v
    }

    /// Writes descriptor `i`.
    pub fn desc(&self, i: u16, addr: u64, len: u32, flags: u16, next: u16) {
        let mut d = Vec::new();
        d.extend_from_slice(&addr.to_le_bytes());
        d.extend_from_slice(&len.to_le_bytes());
        d.extend_from_slice(&flags.to_le_bytes());
        d.extend_from_slice(&next.to_le_bytes());
        self.write(self.rings + u64::from(i) * 16, &d);
    }

    /// Makes chain `head` available, lets the server serve, returns the used entry (id, len).
    pub fn submit(&mut self, head: u16) -> (u32, u32) {
        self.write(self.rings + AVAIL_OFFSET + 4 + 2 * u64::from(self.avail_idx % QUEUE_SIZE), &head.to_le_bytes());
        self.avail_idx = self.avail_idx.wrapping_add(1);
        self.write(self.rings + AVAIL_OFFSET + 2, &self.avail_idx.to_le_bytes());
        let served = self.server.serve_available();
        assert_eq!(served, 1, "one chain served");
        let idx = u16::from_le_bytes(self.read(self.rings + USED_OFFSET + 2, 2).try_into().expect("2"));
        assert_eq!(idx, self.used_idx.wrapping_add(1), "one used entry published");
        let e = self.read(self.rings + USED_OFFSET + 4 + 8 * u64::from(self.used_idx % QUEUE_SIZE), 8);
        self.used_idx = idx;
        (u32::from_le_bytes(e[..4].try_into().expect("4")), u32::from_le_bytes(e[4..].try_into().expect("4")))
    }

    /// Makes chain `head` available and checks that the server takes it but publishes no used
    /// entry (a head outside the descriptor table has nothing to return).
    pub fn submit_unanswered(&mut self, head: u16) {
        self.write(self.rings + AVAIL_OFFSET + 4 + 2 * u64::from(self.avail_idx % QUEUE_SIZE), &head.to_le_bytes());
        self.avail_idx = self.avail_idx.wrapping_add(1);
        self.write(self.rings + AVAIL_OFFSET + 2, &self.avail_idx.to_le_bytes());
        assert_eq!(self.server.serve_available(), 1, "the chain is taken");
        let idx = u16::from_le_bytes(self.read(self.rings + USED_OFFSET + 2, 2).try_into().expect("2"));
        assert_eq!(idx, self.used_idx, "no used entry");
    }

    /// One FUSE request with `body` after the in-header; the reply through a second,
    /// device-writable descriptor.
    pub fn request(&mut self, opcode: u32, nodeid: u64, body: &[u8]) -> Reply {
        self.unique += 1;
        let len = 40 + body.len() as u32;
        let mut req = Vec::new();
        req.extend_from_slice(&len.to_le_bytes());
        req.extend_from_slice(&opcode.to_le_bytes());
        req.extend_from_slice(&self.unique.to_le_bytes());
        req.extend_from_slice(&nodeid.to_le_bytes());
        for v in [0u32, 0, 1, 0] {
            // uid, gid, pid, padding
            req.extend_from_slice(&v.to_le_bytes());
        }
        req.extend_from_slice(body);
        self.write(self.bufs + REQ_BUF, &req);
        self.write(self.bufs + REPLY_BUF, &[0u8; 64]);
        self.desc(0, self.bufs + REQ_BUF, len, 1, 1);
        self.desc(1, self.bufs + REPLY_BUF, REPLY_CAP, 2, 0);
        let (id, used_len) = self.submit(0);
        assert_eq!(id, 0, "the used entry names the chain's head");
        if used_len == 0 {
            return Reply { error: i32::MIN, body: Vec::new(), used_len };
        }
        let out = self.read(self.bufs + REPLY_BUF, used_len as usize);
        let hdr_len = u32::from_le_bytes(out[..4].try_into().expect("4"));
        assert_eq!(hdr_len, used_len, "out header length = used length");
        let error = i32::from_le_bytes(out[4..8].try_into().expect("4"));
        assert_eq!(u64::from_le_bytes(out[8..16].try_into().expect("8")), self.unique, "unique echoed");
        Reply { error, body: out[16..].to_vec(), used_len }
    }

    pub fn lookup(&mut self, parent: u64, name: &str) -> Reply {
        self.request(op::LOOKUP, parent, &cstr(name))
    }
    /// LOOKUP that must succeed: returns (nodeid, mode).
    pub fn lookup_ok(&mut self, parent: u64, name: &str) -> (u64, u32) {
        let r = self.lookup(parent, name);
        (r.u64_at(0), r.u32_at(ENTRY_ATTR + ATTR_MODE))
    }
    pub fn getattr(&mut self, nodeid: u64) -> Reply {
        self.request(op::GETATTR, nodeid, &[0u8; 16])
    }
    pub fn open(&mut self, nodeid: u64, flags: i32) -> Reply {
        let mut b = (flags as u32).to_le_bytes().to_vec();
        b.extend_from_slice(&0u32.to_le_bytes());
        self.request(op::OPEN, nodeid, &b)
    }
    pub fn read_file(&mut self, nodeid: u64, fh: u64, offset: u64, size: u32) -> Reply {
        let mut b = Vec::new();
        b.extend_from_slice(&fh.to_le_bytes());
        b.extend_from_slice(&offset.to_le_bytes());
        b.extend_from_slice(&size.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&0u64.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        self.request(op::READ, nodeid, &b)
    }
    pub fn write_file(&mut self, nodeid: u64, fh: u64, offset: u64, data: &[u8]) -> Reply {
        let mut b = Vec::new();
        b.extend_from_slice(&fh.to_le_bytes());
        b.extend_from_slice(&offset.to_le_bytes());
        b.extend_from_slice(&(data.len() as u32).to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&0u64.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(data);
        self.request(op::WRITE, nodeid, &b)
    }
    pub fn create(&mut self, parent: u64, name: &str, flags: i32, mode: u32) -> Reply {
        let mut b = Vec::new();
        for v in [flags as u32, mode, 0, 0] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(&cstr(name));
        self.request(op::CREATE, parent, &b)
    }
    pub fn release(&mut self, nodeid: u64, fh: u64) -> Reply {
        let mut b = fh.to_le_bytes().to_vec();
        b.extend_from_slice(&[0u8; 16]);
        self.request(op::RELEASE, nodeid, &b)
    }
    /// SETATTR of the mode only (FATTR_MODE).
    pub fn chmod(&mut self, nodeid: u64, mode: u32) -> Reply {
        let mut b = vec![0u8; 88];
        b[..4].copy_from_slice(&1u32.to_le_bytes());
        b[68..72].copy_from_slice(&mode.to_le_bytes());
        self.request(op::SETATTR, nodeid, &b)
    }
    /// SETATTR of the size only (FATTR_SIZE).
    pub fn truncate(&mut self, nodeid: u64, size: u64) -> Reply {
        let mut b = vec![0u8; 88];
        b[..4].copy_from_slice(&8u32.to_le_bytes());
        b[16..24].copy_from_slice(&size.to_le_bytes());
        self.request(op::SETATTR, nodeid, &b)
    }
}

pub fn cstr(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

pub fn errno(r: &Reply) -> i32 {
    -r.error
}
