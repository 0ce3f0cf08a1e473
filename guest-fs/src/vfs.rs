//! The inode store: the root directory, registered devices, terminal states, the random
//! generator and the namespace primitives (link an inode into a directory, make nodes).

use crate::device::{CharDevice, NullDevice, RandomDevice, ZeroDevice};
use crate::dir::DirData;
use crate::errno::{Errno, Result};
use crate::file::FifoOpener;
use crate::inode::{Body, FileType, FsShared, Inode, InodeRef};
use crate::time::Clock;
use crate::tty::TtyState;
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use spin::{Mutex, MutexGuard, RwLock};

/// Terminal states by device number.
type TtyMap = BTreeMap<(u32, u32), Arc<Mutex<TtyState>>>;

/// What to create: type, permission bits, (uid, gid), contents (default for the type when
/// `None`) and device number.
pub(crate) struct NodeSpec {
    pub ftype: FileType,
    pub perm: u32,
    pub owner: (u32, u32),
    pub body: Option<Body>,
    pub rdev: (u32, u32),
}

impl NodeSpec {
    /// A node of `ftype` with `perm`, owned by root, default contents, no device number.
    pub fn new(ftype: FileType, perm: u32) -> Self {
        Self { ftype, perm, owner: (0, 0), body: None, rdev: (0, 0) }
    }
}

/// Filesystem usage, for the kernel's statistics and `statfs(2)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FsStats {
    /// Live inodes (linked, open or otherwise referenced).
    pub inodes: u64,
    /// Bytes of file data pages held in the kernel heap.
    pub data_bytes: u64,
    /// Limit on `data_bytes` (`u64::MAX` = none); writes past it fail with `ENOSPC`.
    pub data_limit: u64,
}

/// The in-memory filesystem. `Sync`: share it as `Arc<Vfs>` between vCPUs.
pub struct Vfs {
    pub(crate) shared: Arc<FsShared>,
    root: InodeRef,
    devices: RwLock<BTreeMap<(u32, u32), Arc<dyn CharDevice>>>,
    ttys: Mutex<TtyMap>,
    random: Arc<RandomDevice>,
    fifo: RwLock<Option<Arc<dyn FifoOpener>>>,
    /// Namespace lock: held by every operation that changes a directory.
    ns: Mutex<()>,
}

impl Vfs {
    /// An empty filesystem: a root directory (mode 0755, uid/gid 0) and the built-in memory
    /// devices registered (1:3 null, 1:5 zero, 1:8 random, 1:9 urandom), but no nodes for
    /// them yet (see [`Vfs::create_standard_nodes`]).
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        let shared = Arc::new(FsShared {
            clock,
            next_ino: AtomicU64::new(1),
            inodes: AtomicU64::new(0),
            data_bytes: AtomicU64::new(0),
            limit: AtomicU64::new(u64::MAX),
            room: spin::RwLock::new(None),
        });
        let root = Arc::new_cyclic(|me| {
            Inode::new(
                &shared,
                FileType::Directory,
                0o755,
                0,
                0,
                Body::Dir(DirData::new(me.clone(), Vec::new())),
            )
        });
        root.lock().nlink = 2;
        let random = Arc::new(RandomDevice::new(&[0; 32]));
        let mut devices: BTreeMap<(u32, u32), Arc<dyn CharDevice>> = BTreeMap::new();
        devices.insert((1, 3), Arc::new(NullDevice));
        devices.insert((1, 5), Arc::new(ZeroDevice));
        devices.insert((1, 8), random.clone());
        devices.insert((1, 9), random.clone());
        Self {
            shared,
            root,
            devices: RwLock::new(devices),
            ttys: Mutex::new(BTreeMap::new()),
            random,
            fifo: RwLock::new(None),
            ns: Mutex::new(()),
        }
    }

    /// The root directory.
    pub fn root(&self) -> InodeRef {
        self.root.clone()
    }

    /// Registers (or replaces) the driver of character device `major:minor`. Files opened
    /// before keep the driver they were opened with (as Linux binds `f_op` at open).
    pub fn register_device(&self, major: u32, minor: u32, dev: Arc<dyn CharDevice>) {
        self.devices.write().insert((major, minor), dev);
    }

    /// The driver of `major:minor`, if registered.
    pub fn device(&self, major: u32, minor: u32) -> Option<Arc<dyn CharDevice>> {
        self.devices.read().get(&(major, minor)).cloned()
    }

    /// Registers the kernel's named-pipe implementation (used when a FIFO is opened).
    pub fn set_fifo_opener(&self, opener: Arc<dyn FifoOpener>) {
        *self.fifo.write() = Some(opener);
    }

    pub(crate) fn fifo_opener(&self) -> Option<Arc<dyn FifoOpener>> {
        self.fifo.read().clone()
    }

    /// The terminal state of tty device `major:minor` (created with defaults on first use);
    /// the kernel's tty driver reads `termios` from it (ICANON, ECHO...).
    pub fn tty_state(&self, major: u32, minor: u32) -> Arc<Mutex<TtyState>> {
        self.ttys.lock().entry((major, minor)).or_default().clone()
    }

    /// Keys `/dev/random` and `/dev/urandom` (ChaCha20) with 32 bytes of kernel entropy.
    pub fn seed_random(&self, seed: &[u8; 32]) {
        self.random.reseed(seed);
    }

    /// Installs `room(bytes)`, asked before file data grows by `bytes`; when it answers
    /// `false` the write fails with `ENOSPC` and nothing is written (the guest kernel refuses
    /// file growth its memory cannot hold).
    pub fn set_room_check(&self, room: fn(u64) -> bool) {
        *self.shared.room.write() = Some(room);
    }

    /// Limits the bytes of file data (tmpfs `size=`); `u64::MAX` for no limit.
    pub fn set_data_limit(&self, bytes: u64) {
        self.shared.limit.store(bytes, Ordering::Relaxed);
    }

    /// Current usage.
    pub fn stats(&self) -> FsStats {
        FsStats {
            inodes: self.shared.inodes.load(Ordering::Relaxed),
            data_bytes: self.shared.data_bytes.load(Ordering::Relaxed),
            data_limit: self.shared.limit.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn ns_lock(&self) -> MutexGuard<'_, ()> {
        self.ns.lock()
    }

    /// A new unlinked inode of `ftype` (directories get `parent`'s weak ref and `name`).
    pub(crate) fn new_inode(
        &self,
        ftype: FileType,
        perm: u32,
        owner: (u32, u32),
        parent: &InodeRef,
        name: &[u8],
        body: Option<Body>,
    ) -> InodeRef {
        let body = match (ftype, body) {
            (_, Some(b)) => b,
            (FileType::Regular, None) => Body::File(Default::default()),
            (FileType::Directory, None) => Body::Dir(DirData::new(Arc::downgrade(parent), name.to_vec())),
            (_, None) => Body::Special,
        };
        Arc::new(Inode::new(&self.shared, ftype, perm, owner.0, owner.1, body))
    }

    /// Links the new inode `child` into `dir` as `name`. Must hold the namespace lock.
    /// `ENOENT` if `dir` was removed, `EEXIST` if `name` exists, `ENOTDIR` if `dir` is not
    /// a directory. Updates link counts and the directory's mtime/ctime.
    pub(crate) fn attach_locked(&self, dir: &InodeRef, name: &[u8], child: &InodeRef) -> Result<()> {
        let now = self.shared.now();
        let is_dir = child.is_dir();
        {
            let mut d = dir.lock();
            if d.nlink == 0 {
                return Err(Errno::ENOENT);
            }
            let entries = d.dir_mut().ok_or(Errno::ENOTDIR)?;
            if entries.get(name).is_some() {
                return Err(Errno::EEXIST);
            }
            entries.insert(name, child.clone());
            if is_dir {
                d.nlink += 1;
            }
            d.touch_modify(now);
        }
        let mut c = child.lock();
        c.nlink += if is_dir { 2 } else { 1 };
        c.ctime = now;
        if let Some(cd) = c.dir_mut() {
            cd.parent = Arc::downgrade(dir);
            cd.name = name.to_vec();
        }
        Ok(())
    }

    /// Creates a node `name` in `dir` (no permission checks: for loaders and the kernel).
    pub(crate) fn make_node(&self, dir: &InodeRef, name: &[u8], spec: NodeSpec) -> Result<InodeRef> {
        let node = self.new_inode(spec.ftype, spec.perm, spec.owner, dir, name, spec.body);
        node.lock().rdev = spec.rdev;
        let _ns = self.ns_lock();
        self.attach_locked(dir, name, &node)?;
        Ok(node)
    }

    /// Creates the standard nodes a container expects, leaving existing entries alone:
    /// `/dev` (0755) with `null` 1:3, `zero` 1:5, `random` 1:8, `urandom` 1:9 (all 0666),
    /// `tty` 5:0 (0666), `console` 5:1 (0600); `/tmp` (1777); `/proc` (0555).
    pub fn create_standard_nodes(&self) -> Result<()> {
        let root = self.root();
        let dev = self.ensure_dir(&root, b"dev", 0o755)?;
        let nodes: [(&[u8], u32, u32, u32); 6] = [
            (b"null", 1, 3, 0o666),
            (b"zero", 1, 5, 0o666),
            (b"random", 1, 8, 0o666),
            (b"urandom", 1, 9, 0o666),
            (b"tty", 5, 0, 0o666),
            (b"console", 5, 1, 0o600),
        ];
        for (name, major, minor, perm) in nodes {
            let exists = dev.lock().dir().ok_or(Errno::ENOTDIR)?.get(name).is_some();
            if !exists {
                let spec = NodeSpec { rdev: (major, minor), ..NodeSpec::new(FileType::CharDevice, perm) };
                self.make_node(&dev, name, spec)?;
            }
        }
        self.ensure_dir(&root, b"tmp", 0o1777)?;
        self.ensure_dir(&root, b"proc", 0o555)?;
        Ok(())
    }

    /// The directory `name` in `dir`, created with `perm` if absent; `ENOTDIR` if a
    /// non-directory has that name.
    pub(crate) fn ensure_dir(&self, dir: &InodeRef, name: &[u8], perm: u32) -> Result<InodeRef> {
        let existing = dir.lock().dir().ok_or(Errno::ENOTDIR)?.get(name);
        match existing {
            Some(i) if i.is_dir() => Ok(i),
            Some(_) => Err(Errno::ENOTDIR),
            None => self.make_node(dir, name, NodeSpec::new(FileType::Directory, perm)),
        }
    }
}
