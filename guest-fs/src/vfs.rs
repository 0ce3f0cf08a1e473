//! The inode store: the root directory, registered devices, terminal states, the random
//! generator and the namespace primitives (link an inode into a directory, make nodes).

use crate::device::{CharDevice, FullDevice, NullDevice, RandomDevice, ZeroDevice};
use crate::dir::DirData;
use crate::errno::{Errno, Result};
use crate::file::FifoOpener;
use crate::inode::{Body, FileType, ForeignData, FsShared, Inode, InodeRef};
use crate::mount::{Mount, MountTable};
use crate::ops::{FS_READ_ONLY, Filesystem};
use crate::stat::FS_DEV;
use crate::time::Clock;
use alloc::string::{String, ToString};
use crate::tty::TtyState;
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};
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
    /// The superblock of the store made with the VFS (the initramfs / first root).
    pub(crate) shared: Arc<FsShared>,
    /// The root directory of the root mount (replaced when `/` is mounted at boot).
    root: RwLock<InodeRef>,
    mounts: Arc<MountTable>,
    /// Minor number of the next anonymous device (`st_dev` 0:N of a new filesystem).
    next_dev: AtomicU32,
    devices: RwLock<BTreeMap<(u32, u32), Arc<dyn CharDevice>>>,
    ttys: Mutex<TtyMap>,
    random: Arc<RandomDevice>,
    fifo: RwLock<Option<Arc<dyn FifoOpener>>>,
    /// Namespace lock: held by every operation that changes a directory.
    ns: Mutex<()>,
}

impl Vfs {
    /// An empty filesystem: a root directory (mode 0755, uid/gid 0) and the built-in memory
    /// devices registered (1:3 null, 1:5 zero, 1:7 full, 1:8 random, 1:9 urandom), but no nodes for
    /// them yet (see [`Vfs::create_standard_nodes`]).
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        let shared = Arc::new(FsShared::new(clock, FS_DEV, None));
        let root = Self::tmpfs_root(&shared, 0o755);
        let random = Arc::new(RandomDevice::new(&[0; 32]));
        let mut devices: BTreeMap<(u32, u32), Arc<dyn CharDevice>> = BTreeMap::new();
        devices.insert((1, 3), Arc::new(NullDevice));
        devices.insert((1, 5), Arc::new(ZeroDevice));
        devices.insert((1, 7), Arc::new(FullDevice));
        devices.insert((1, 8), random.clone());
        devices.insert((1, 9), random.clone());
        let mounts = Arc::new(MountTable::default());
        mounts.set_root(Mount {
            id: 0,
            parent: 0,
            point: None,
            root: root.clone(),
            path: b"/".to_vec(),
            fs_root: b"/".to_vec(),
            fs_type: "tmpfs".to_string(),
            source: "tmpfs".to_string(),
            read_only: false,
        });
        Self {
            shared,
            root: RwLock::new(root),
            mounts,
            next_dev: AtomicU32::new(FS_DEV.1 + 1),
            devices: RwLock::new(devices),
            ttys: Mutex::new(BTreeMap::new()),
            random,
            fifo: RwLock::new(None),
            ns: Mutex::new(()),
        }
    }

    fn tmpfs_root(shared: &Arc<FsShared>, perm: u32) -> InodeRef {
        let root = Arc::new_cyclic(|me| {
            Inode::new(shared, FileType::Directory, perm, 0, 0, Body::Dir(DirData::new(me.clone(), Vec::new())))
        });
        root.lock().nlink = 2;
        root
    }

    /// The root directory of the root mount.
    pub fn root(&self) -> InodeRef {
        self.root.read().clone()
    }

    /// The mount table.
    pub fn mounts(&self) -> &Arc<MountTable> {
        &self.mounts
    }

    fn new_dev(&self) -> (u32, u32) {
        (0, self.next_dev.fetch_add(1, Ordering::Relaxed))
    }

    /// A new, unmounted tmpfs instance (its own device number, inode numbers and
    /// `size_limit` bytes of file data, `u64::MAX` for none) and its root directory with `perm`.
    pub fn new_tmpfs(&self, size_limit: u64, perm: u32) -> InodeRef {
        let shared = Arc::new(FsShared::new(self.shared.clock.clone(), self.new_dev(), None));
        shared.limit.store(size_limit, Ordering::Relaxed);
        if let Some(room) = *self.shared.room.read() {
            *shared.room.write() = Some(room);
        }
        Self::tmpfs_root(&shared, perm)
    }

    /// The root directory of `fs` as a VFS inode (an unmounted filesystem instance with its
    /// own device number). `ENOTDIR` when `fs`'s root is not a directory; errors of
    /// [`Filesystem::root`] and [`crate::InodeOps::getattr`].
    pub fn new_foreign_root(&self, fs: Arc<dyn Filesystem>, read_only: bool) -> Result<InodeRef> {
        let ops = fs.root()?;
        let attr = ops.getattr()?;
        if attr.ftype != FileType::Directory {
            return Err(Errno::ENOTDIR);
        }
        let ro = read_only || fs.flags() & FS_READ_ONLY != 0;
        let shared = Arc::new(FsShared::new(self.shared.clock.clone(), self.new_dev(), Some(fs)));
        shared.read_only.store(ro, Ordering::Relaxed);
        let root = Arc::new_cyclic(|me| {
            let body = Body::Foreign(ForeignData { ops, children: BTreeMap::new(), parent: me.clone(), name: Vec::new() });
            Inode::with_ino(&shared, attr.ino, FileType::Directory, attr.perm, attr.uid, attr.gid, body)
        });
        root.lock().set_attr(&attr);
        Ok(root)
    }

    /// Mounts the directory `root` (from [`Vfs::new_tmpfs`], [`Vfs::new_foreign_root`], or
    /// any directory for a bind mount) on the directory at absolute path `target`, resolved
    /// from the VFS root with symlinks followed. `target` `/` replaces the root mount (for
    /// boot, before the first process: contexts made earlier keep the old root).
    /// Errors: path errors of the walk, `ENOTDIR` (target or `root` not a directory),
    /// `EINVAL` for a relative target.
    pub fn mount(&self, target: &[u8], root: InodeRef, fs_type: &str, source: &str, read_only: bool) -> Result<()> {
        if target.first() != Some(&b'/') {
            return Err(Errno::EINVAL);
        }
        if !root.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        // A bind mount of a directory inside a filesystem shows its path there.
        let is_fs_root = crate::path::fs_parent(&root).is_ok_and(|p| Arc::ptr_eq(&p, &root));
        let fs_root = if !is_fs_root {
            crate::sys::cwd::path_of(&crate::context::FsContext::new(self), &root).unwrap_or_else(|_| b"/".to_vec())
        } else {
            b"/".to_vec()
        };
        let mut m = Mount {
            id: 0,
            parent: 0,
            point: None,
            root: root.clone(),
            path: b"/".to_vec(),
            fs_root,
            fs_type: String::from(fs_type),
            source: String::from(source),
            read_only: read_only || root.is_read_only(),
        };
        if target.iter().all(|&b| b == b'/') {
            self.mounts.set_root(m);
            *self.root.write() = root;
            return Ok(());
        }
        let ctx = crate::context::FsContext::new(self);
        let fds = crate::fdtable::FdTable::new();
        let point = crate::path::resolve(&ctx, &fds, crate::path::AT_FDCWD, target, true)?;
        if !point.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        let parent_root = crate::path::mount_root_of(&ctx, &point);
        m.parent = self.mounts.mount_with_root(&parent_root).map_or(1, |p| p.id);
        m.path = crate::sys::cwd::path_of(&ctx, &point)?;
        m.point = Some(point);
        self.mounts.add(m);
        Ok(())
    }

    /// Unmounts the filesystem mounted at absolute path `target` (`umount(2)`): `EINVAL` if
    /// it is no mount point (or the root), `EBUSY` if other mounts are inside it.
    pub fn umount(&self, target: &[u8]) -> Result<()> {
        let ctx = crate::context::FsContext::new(self);
        let fds = crate::fdtable::FdTable::new();
        let root = crate::path::resolve(&ctx, &fds, crate::path::AT_FDCWD, target, true)?;
        if root.mount_flags() & crate::inode::MOUNT_ROOT == 0 || Arc::ptr_eq(&root, &ctx.root) {
            return Err(Errno::EINVAL);
        }
        if self.mounts.remove(&root) { Ok(()) } else { Err(Errno::EBUSY) }
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

    /// Installs `notify`, called when a description's last reference goes while it held a
    /// `flock(2)` lock (the kernel wakes threads blocked in `flock`). Process-wide: the last
    /// call wins.
    pub fn set_unlock_notify(&self, notify: fn()) {
        *crate::file::UNLOCK_NOTIFY.write() = Some(notify);
    }

    /// Limits the bytes of file data (tmpfs `size=`); `u64::MAX` for no limit.
    pub fn set_data_limit(&self, bytes: u64) {
        self.shared.limit.store(bytes, Ordering::Relaxed);
    }

    /// Current usage of the store made with the VFS (the initramfs).
    pub fn stats(&self) -> FsStats {
        stats_of(&self.shared)
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
        Arc::new(Inode::new(&parent.shared, ftype, perm, owner.0, owner.1, body))
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
    /// `/dev` (0755) with the device nodes of [`Vfs::populate_dev`]; `/tmp` (1777);
    /// `/proc` (0555).
    pub fn create_standard_nodes(&self) -> Result<()> {
        let root = self.root();
        let dev = self.ensure_dir(&root, b"dev", 0o755)?;
        self.populate_dev(&dev)?;
        self.ensure_dir(&root, b"tmp", 0o1777)?;
        self.ensure_dir(&root, b"proc", 0o555)?;
        Ok(())
    }

    /// Fills the in-memory directory `dev` with what a container's `/dev` has, leaving
    /// existing entries alone: `null` 1:3, `zero` 1:5, `full` 1:7, `random` 1:8, `urandom`
    /// 1:9 (all 0666), `tty` 5:0 (0666), `console` 5:1 (0600), the `shm` directory (1777),
    /// and the symlinks `fd` -> `/proc/self/fd`, `stdin`/`stdout`/`stderr` ->
    /// `/proc/self/fd/0`..`2` (as Docker and systemd make them).
    pub fn populate_dev(&self, dev: &InodeRef) -> Result<()> {
        let nodes: [(&[u8], u32, u32, u32); 7] = [
            (b"null", 1, 3, 0o666),
            (b"zero", 1, 5, 0o666),
            (b"full", 1, 7, 0o666),
            (b"random", 1, 8, 0o666),
            (b"urandom", 1, 9, 0o666),
            (b"tty", 5, 0, 0o666),
            (b"console", 5, 1, 0o600),
        ];
        for (name, major, minor, perm) in nodes {
            let exists = dev.lock().dir().ok_or(Errno::ENOTDIR)?.get(name).is_some();
            if !exists {
                let spec = NodeSpec { rdev: (major, minor), ..NodeSpec::new(FileType::CharDevice, perm) };
                self.make_node(dev, name, spec)?;
            }
        }
        self.ensure_dir(dev, b"shm", 0o1777)?;
        let links: [(&[u8], &[u8]); 4] = [
            (b"fd", b"/proc/self/fd"),
            (b"stdin", b"/proc/self/fd/0"),
            (b"stdout", b"/proc/self/fd/1"),
            (b"stderr", b"/proc/self/fd/2"),
        ];
        for (name, target) in links {
            let exists = dev.lock().dir().ok_or(Errno::ENOTDIR)?.get(name).is_some();
            if !exists {
                let spec = NodeSpec { body: Some(Body::Symlink(target.to_vec())), ..NodeSpec::new(FileType::Symlink, 0o777) };
                self.make_node(dev, name, spec)?;
            }
        }
        Ok(())
    }

    /// The directory at absolute `path` as a mount point: found, or created (mode `perm`,
    /// parents must exist) when the root is writable. `ENOENT`/`EROFS` when absent and not
    /// creatable, `ENOTDIR`.
    fn mount_point(&self, path: &[u8], perm: u32) -> Result<()> {
        let ctx = crate::context::FsContext::new(self);
        let fds = crate::fdtable::FdTable::new();
        match crate::path::resolve(&ctx, &fds, crate::path::AT_FDCWD, path, true) {
            Ok(i) if i.is_dir() => Ok(()),
            Ok(_) => Err(Errno::ENOTDIR),
            Err(Errno::ENOENT) => {
                let mut ctx = ctx;
                ctx.umask = 0;
                crate::sys::names::mkdirat(self, &ctx, &fds, crate::path::AT_FDCWD, path, perm)
            }
            Err(e) => Err(e),
        }
    }

    /// Mounts a new tmpfs of at most `size_limit` bytes of data (`u64::MAX`: no limit but
    /// the kernel's memory) with root mode `perm` on the directory at absolute `target`,
    /// which is created when missing and the filesystem holding it is writable.
    pub fn mount_tmpfs(&self, target: &[u8], size_limit: u64, perm: u32) -> Result<()> {
        self.mount_point(target, perm)?;
        let root = self.new_tmpfs(size_limit, perm);
        self.mount(target, root, "tmpfs", "tmpfs", false)
    }

    /// Mounts `fs` on the directory at absolute `target` (`/` replaces the root: for boot,
    /// before the first process). Errors of [`Vfs::new_foreign_root`] and [`Vfs::mount`].
    pub fn mount_filesystem(&self, target: &[u8], fs: Arc<dyn Filesystem>, read_only: bool) -> Result<()> {
        let (fs_type, source) = (String::from(fs.fs_type()), String::from(fs.source()));
        let root = self.new_foreign_root(fs, read_only)?;
        self.mount(target, root, &fs_type, &source, read_only)
    }

    /// The standard mounts of a container, on whatever root is mounted: `/proc` (a tmpfs the
    /// kernel's procfs fills, type `proc`), `/dev` (a tmpfs with [`Vfs::populate_dev`]'s
    /// nodes) with a tmpfs on `/dev/shm`, and, when the root is a mounted filesystem (not the
    /// in-memory store, whose `/tmp` already is memory), a tmpfs on `/tmp`. Mount points
    /// missing on a writable root are created. Returns the first error after trying all.
    pub fn mount_standard(&self) -> Result<()> {
        let mut first = Ok(());
        let mut note = |r: Result<()>| {
            if first.is_ok() && r.is_err() {
                first = r;
            }
        };
        note(self.mount_point(b"/proc", 0o555).and_then(|()| {
            let root = self.new_tmpfs(u64::MAX, 0o555);
            root.shared.magic_links.store(true, Ordering::Relaxed);
            self.mount(b"/proc", root, "proc", "proc", false)
        }));
        note(self.mount_point(b"/dev", 0o755).and_then(|()| {
            let root = self.new_tmpfs(u64::MAX, 0o755);
            self.populate_dev(&root)?;
            self.mount(b"/dev", root, "tmpfs", "tmpfs", false)?;
            let shm = self.new_tmpfs(u64::MAX, 0o1777);
            self.mount(b"/dev/shm", shm, "tmpfs", "shm", false)
        }));
        if self.root().shared.fs.is_some() {
            note(self.mount_tmpfs(b"/tmp", u64::MAX, 0o1777));
        }
        first
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

/// Usage of one in-memory filesystem instance.
pub(crate) fn stats_of(shared: &FsShared) -> FsStats {
    FsStats {
        inodes: shared.inodes.load(Ordering::Relaxed),
        data_bytes: shared.data_bytes.load(Ordering::Relaxed),
        data_limit: shared.limit.load(Ordering::Relaxed),
    }
}
