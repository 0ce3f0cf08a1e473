//! The mount table and the filesystem trait boundary: tmpfs mounts (crossing, `..` at a
//! mount root, `getcwd`, `st_dev`, `EXDEV`, `EBUSY`, umount), bind mounts, `/proc/mounts`
//! text, and a filesystem behind [`guest_fs::Filesystem`] / [`guest_fs::InodeOps`] that keeps
//! its files in a host directory (what hostfs does through a file server): the calls reach the
//! host tree, and a read-only mount gives `EROFS`.

mod common;

use common::*;
use guest_fs::*;
use std::any::Any;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::Arc;

#[allow(clippy::needless_pass_by_value)] // used as `map_err(errno)`
fn errno(e: std::io::Error) -> Errno {
    Errno(e.raw_os_error().unwrap_or(5) as u32)
}

fn ts(sec: i64, nsec: i64) -> Timespec {
    Timespec::new(sec, nsec)
}

/// A filesystem over a host directory, path based (a test double for hostfs).
struct HostDir {
    root: PathBuf,
}

struct Node {
    path: PathBuf,
}

fn node(path: PathBuf) -> Arc<dyn InodeOps> {
    Arc::new(Node { path })
}

impl Filesystem for HostDir {
    fn fs_type(&self) -> &str {
        "hostdir"
    }
    fn root(&self) -> Result<Arc<dyn InodeOps>> {
        Ok(node(self.root.clone()))
    }
    fn statfs(&self) -> Result<Statfs> {
        Ok(Statfs { f_type: 0x6573_5546, f_bsize: 4096, f_blocks: 100, f_bfree: 50, f_bavail: 50, ..Default::default() })
    }
}

struct HostFile {
    file: std::fs::File,
}

impl FileOps for HostFile {
    fn pread(&self, buf: &mut [u8], offset: u64) -> Result<usize> {
        std::os::unix::fs::FileExt::read_at(&self.file, buf, offset).map_err(errno)
    }
    fn pwrite(&self, buf: &[u8], offset: u64) -> Result<usize> {
        std::os::unix::fs::FileExt::write_at(&self.file, buf, offset).map_err(errno)
    }
    fn fsync(&self, _datasync: bool) -> Result<()> {
        self.file.sync_all().map_err(errno)
    }
}

fn ftype(m: &std::fs::Metadata) -> FileType {
    FileType::from_mode(m.mode()).unwrap_or(FileType::Regular)
}

impl Node {
    fn child(&self, name: &[u8]) -> PathBuf {
        self.path.join(std::str::from_utf8(name).unwrap())
    }
}

impl InodeOps for Node {
    fn getattr(&self) -> Result<Attr> {
        let m = std::fs::symlink_metadata(&self.path).map_err(errno)?;
        Ok(Attr {
            ino: m.ino(),
            ftype: ftype(&m),
            perm: m.mode() & 0o7777,
            nlink: m.nlink() as u32,
            uid: m.uid(),
            gid: m.gid(),
            rdev: (0, 0),
            size: m.size(),
            blocks: m.blocks(),
            blksize: m.blksize() as u32,
            atime: ts(m.atime(), m.atime_nsec()),
            mtime: ts(m.mtime(), m.mtime_nsec()),
            ctime: ts(m.ctime(), m.ctime_nsec()),
            btime: None,
        })
    }
    fn setattr(&self, set: &SetAttr, _creds: &Creds) -> Result<Attr> {
        if let Some(p) = set.perm {
            std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(p)).map_err(errno)?;
        }
        if let Some(size) = set.size {
            std::fs::OpenOptions::new().write(true).open(&self.path).and_then(|f| f.set_len(size)).map_err(errno)?;
        }
        self.getattr()
    }
    fn lookup(&self, name: &[u8]) -> Result<Arc<dyn InodeOps>> {
        let p = self.child(name);
        std::fs::symlink_metadata(&p).map_err(errno)?;
        Ok(node(p))
    }
    fn mknod(&self, name: &[u8], ftype: FileType, perm: u32, _rdev: (u32, u32), _c: &Creds) -> Result<Arc<dyn InodeOps>> {
        if ftype != FileType::Regular {
            return Err(Errno::EPERM);
        }
        let p = self.child(name);
        std::fs::OpenOptions::new().write(true).create_new(true).open(&p).map_err(errno)?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(perm)).map_err(errno)?;
        Ok(node(p))
    }
    fn mkdir(&self, name: &[u8], perm: u32, _c: &Creds) -> Result<Arc<dyn InodeOps>> {
        let p = self.child(name);
        std::fs::create_dir(&p).map_err(errno)?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(perm)).map_err(errno)?;
        Ok(node(p))
    }
    fn symlink(&self, name: &[u8], target: &[u8], _c: &Creds) -> Result<Arc<dyn InodeOps>> {
        let p = self.child(name);
        std::os::unix::fs::symlink(std::str::from_utf8(target).unwrap(), &p).map_err(errno)?;
        Ok(node(p))
    }
    fn link(&self, name: &[u8], target: &Arc<dyn InodeOps>) -> Result<()> {
        let t = target.as_any().downcast_ref::<Node>().ok_or(Errno::EXDEV)?;
        std::fs::hard_link(&t.path, self.child(name)).map_err(errno)
    }
    fn unlink(&self, name: &[u8]) -> Result<()> {
        std::fs::remove_file(self.child(name)).map_err(errno)
    }
    fn rmdir(&self, name: &[u8]) -> Result<()> {
        std::fs::remove_dir(self.child(name)).map_err(errno)
    }
    fn rename(&self, name: &[u8], new_dir: &Arc<dyn InodeOps>, new_name: &[u8], flags: u32) -> Result<()> {
        if flags != 0 {
            return Err(Errno::EINVAL);
        }
        let d = new_dir.as_any().downcast_ref::<Node>().ok_or(Errno::EXDEV)?;
        std::fs::rename(self.child(name), d.child(new_name)).map_err(errno)
    }
    fn readlink(&self) -> Result<Vec<u8>> {
        std::fs::read_link(&self.path).map(|p| p.into_os_string().into_encoded_bytes()).map_err(|_| Errno::EINVAL)
    }
    fn readdir(&self, pos: u64, sink: &mut dyn FnMut(DirEntry) -> bool) -> Result<()> {
        let mut names: Vec<_> = std::fs::read_dir(&self.path).map_err(errno)?.map(|e| e.unwrap()).collect();
        names.sort_by_key(|e| e.file_name());
        for (i, e) in names.iter().enumerate().skip(pos.saturating_sub(3) as usize) {
            let m = e.metadata().map_err(errno)?;
            let entry = DirEntry {
                ino: m.ino(),
                next: i as u64 + 4,
                ftype: Some(ftype(&m)),
                name: e.file_name().into_encoded_bytes(),
            };
            if !sink(entry) {
                break;
            }
        }
        Ok(())
    }
    fn open(&self, flags: u32) -> Result<Arc<dyn FileOps>> {
        let acc = flags & O_ACCMODE_BITS;
        let meta = std::fs::metadata(&self.path).map_err(errno)?;
        if meta.is_dir() {
            return Ok(Arc::new(HostFile { file: std::fs::File::open(&self.path).map_err(errno)? }));
        }
        let file = std::fs::OpenOptions::new()
            .read(acc != O_WRONLY)
            .write(acc != O_RDONLY)
            .truncate(flags & O_TRUNC != 0)
            .open(&self.path)
            .map_err(errno)?;
        Ok(Arc::new(HostFile { file }))
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

const O_ACCMODE_BITS: u32 = 3;

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("guest-fs-mounts-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn stat(vfs: &Vfs, ctx: &FsContext, path: &str) -> Result<Stat> {
    newfstatat(vfs, ctx, &FdTable::new(), AT_FDCWD, path.as_bytes(), 0)
}

fn mkdir(vfs: &Vfs, ctx: &FsContext, path: &str) -> Result<()> {
    mkdirat(vfs, ctx, &FdTable::new(), AT_FDCWD, path.as_bytes(), 0o755)
}

fn cwd(ctx: &FsContext) -> String {
    let mut b = [0u8; 256];
    let n = getcwd(ctx, &mut b).unwrap();
    String::from_utf8(b[..n - 1].to_vec()).unwrap()
}

fn read_file(vfs: &Vfs, ctx: &FsContext, path: &str) -> Result<Vec<u8>> {
    let mut fds = FdTable::new();
    let fd = open(vfs, ctx, &mut fds, path, O_RDONLY, 0)?;
    let mut out = vec![0u8; 4096];
    let n = read(&fds, fd, &mut out)?;
    out.truncate(n);
    Ok(out)
}

fn names(vfs: &Vfs, ctx: &FsContext, path: &str) -> Vec<String> {
    let mut fds = FdTable::new();
    let fd = open(vfs, ctx, &mut fds, path, O_RDONLY | O_DIRECTORY, 0).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 80];
    loop {
        let n = getdents64(&fds, fd, &mut buf).unwrap();
        if n == 0 {
            return out;
        }
        let mut at = 0;
        while at < n {
            let reclen = u16::from_le_bytes([buf[at + 16], buf[at + 17]]) as usize;
            let name = &buf[at + 19..at + reclen];
            let end = name.iter().position(|&b| b == 0).unwrap();
            out.push(String::from_utf8(name[..end].to_vec()).unwrap());
            at += reclen;
        }
    }
}

#[test]
fn tmpfs_mounts_cross_and_dotdot_leaves() {
    let (vfs, _, _) = setup();
    let root_dev = stat(&vfs, &FsContext::new(&vfs), "/").unwrap().st_dev;
    vfs.mount_tmpfs(b"/mnt", 8192, 0o1777).unwrap();
    let mut ctx = FsContext::new(&vfs);
    let m = stat(&vfs, &ctx, "/mnt").unwrap();
    assert_ne!(m.st_dev, root_dev, "a mount has its own device");
    assert_eq!(m.st_mode & 0o7777, 0o1777);
    put(&vfs, &ctx, "/mnt/a", b"x");
    mkdir(&vfs, &ctx, "/mnt/d").unwrap();
    assert_eq!(stat(&vfs, &ctx, "/mnt/../tmp").unwrap().st_dev, root_dev, "`..` at a mount root leaves it");
    assert_eq!(stat(&vfs, &ctx, "/mnt/d/../../dev/null").unwrap().st_rdev, encode_dev(1, 3));
    chdir(&vfs, &mut ctx, &FdTable::new(), b"/mnt/d").unwrap();
    assert_eq!(cwd(&ctx), "/mnt/d");
    assert_eq!(stat(&vfs, &ctx, "../..").unwrap().st_dev, root_dev);
    let fds = FdTable::new();
    let r = renameat2(&vfs, &ctx, &fds, AT_FDCWD, b"/mnt/a", AT_FDCWD, b"/tmp/a", 0);
    assert_eq!(r, Err(Errno::EXDEV));
    assert_eq!(linkat(&vfs, &ctx, &fds, AT_FDCWD, b"/mnt/a", AT_FDCWD, b"/tmp/a", 0), Err(Errno::EXDEV));
    assert_eq!(unlinkat(&vfs, &ctx, &fds, AT_FDCWD, b"/mnt", AT_REMOVEDIR), Err(Errno::EBUSY));
    // The size limit is per mount.
    let mut fds = FdTable::new();
    let fd = open(&vfs, &ctx, &mut fds, "/mnt/big", O_CREAT | O_WRONLY, 0o644).unwrap();
    assert_eq!(write(&fds, fd, &[1u8; 16384]), Err(Errno::ENOSPC));
    let s = statfs(&vfs, &ctx, &fds, b"/mnt").unwrap();
    assert_eq!(s.f_blocks, 2);
    drop(fds);
    // A bind mount shows the same objects; `..` at its root leaves to the bind point's parent.
    mkdir(&vfs, &ctx, "/bind").unwrap();
    let target = vfs.root();
    let d = guest_fs::path_of(&FsContext::new(&vfs), &target).unwrap();
    assert_eq!(d, b"/");
    let table = String::from_utf8(vfs.mounts().proc_mounts()).unwrap();
    assert!(table.contains("tmpfs /mnt tmpfs rw,relatime 0 0\n"), "{table}");
    let info = String::from_utf8(vfs.mounts().mountinfo()).unwrap();
    assert!(info.lines().any(|l| l.starts_with("2 1 0:") && l.contains(" / /mnt rw,relatime - tmpfs tmpfs rw")), "{info}");
    chdir(&vfs, &mut ctx, &FdTable::new(), b"/").unwrap();
    vfs.umount(b"/mnt").unwrap();
    assert_eq!(stat(&vfs, &ctx, "/mnt/d"), Err(Errno::ENOENT), "the mount's files are gone with it");
    assert_eq!(stat(&vfs, &ctx, "/mnt").unwrap().st_dev, root_dev);
    assert_eq!(vfs.umount(b"/mnt"), Err(Errno::EINVAL));
}

#[test]
fn bind_mounts_and_stacking() {
    let (vfs, ctx, _) = setup();
    mkdir(&vfs, &ctx, "/src").unwrap();
    put(&vfs, &ctx, "/src/f", b"bound");
    mkdir(&vfs, &ctx, "/a").unwrap();
    mkdir(&vfs, &ctx, "/a/b").unwrap();
    let src = {
        let mut fds = FdTable::new();
        let fd = open(&vfs, &ctx, &mut fds, "/src", O_RDONLY | O_DIRECTORY, 0).unwrap();
        fds.get(fd).unwrap().inode().unwrap().clone()
    };
    vfs.mount(b"/a/b", src, "none", "/src", false).unwrap();
    let ctx = FsContext::new(&vfs);
    assert_eq!(read_file(&vfs, &ctx, "/a/b/f").unwrap(), b"bound");
    assert_eq!(stat(&vfs, &ctx, "/a/b/..").unwrap().st_ino, stat(&vfs, &ctx, "/a").unwrap().st_ino);
    // A second mount on the same point hides the first until it goes.
    vfs.mount_tmpfs(b"/a/b", u64::MAX, 0o755).unwrap();
    assert_eq!(stat(&vfs, &ctx, "/a/b/f"), Err(Errno::ENOENT));
    vfs.umount(b"/a/b").unwrap();
    assert_eq!(read_file(&vfs, &ctx, "/a/b/f").unwrap(), b"bound");
}

#[test]
fn standard_mounts() {
    let (vfs, _, _) = setup();
    vfs.mount_standard().unwrap();
    let ctx = FsContext::new(&vfs);
    for (p, t) in [("/proc", "proc"), ("/dev", "tmpfs"), ("/dev/shm", "tmpfs")] {
        let table = String::from_utf8(vfs.mounts().proc_mounts()).unwrap();
        assert!(table.lines().any(|l| l.split(' ').nth(1) == Some(p) && l.split(' ').nth(2) == Some(t)), "{table}");
    }
    for (n, dev) in [("null", (1, 3)), ("zero", (1, 5)), ("full", (1, 7)), ("urandom", (1, 9)), ("tty", (5, 0))] {
        assert_eq!(stat(&vfs, &ctx, &format!("/dev/{n}")).unwrap().st_rdev, encode_dev(dev.0, dev.1), "{n}");
    }
    let mut fds = FdTable::new();
    let fd = open(&vfs, &ctx, &mut fds, "/dev/full", O_RDWR, 0).unwrap();
    assert_eq!(write(&fds, fd, b"x"), Err(Errno::ENOSPC));
    let mut b = [7u8; 4];
    assert_eq!(read(&fds, fd, &mut b), Ok(4));
    assert_eq!(b, [0; 4]);
    assert_eq!(stat(&vfs, &ctx, "/dev/shm").unwrap().st_mode & 0o7777, 0o1777);
}

#[test]
fn a_host_directory_behind_the_trait() {
    let host = scratch("rw");
    std::fs::write(host.join("hello"), b"from the host").unwrap();
    std::fs::create_dir(host.join("sub")).unwrap();
    let (vfs, _, _) = setup();
    mkdir(&vfs, &FsContext::new(&vfs), "/host").unwrap();
    vfs.mount_filesystem(b"/host", Arc::new(HostDir { root: host.clone() }), false).unwrap();
    let ctx = FsContext::new(&vfs);
    assert_eq!(read_file(&vfs, &ctx, "/host/hello").unwrap(), b"from the host");
    let st = stat(&vfs, &ctx, "/host/hello").unwrap();
    assert_eq!(st.st_ino, std::fs::metadata(host.join("hello")).unwrap().ino(), "inode numbers as on the host");
    assert_eq!(st.st_size, 13);
    // Writes reach the host.
    put(&vfs, &ctx, "/host/sub/new", b"written in the guest");
    assert_eq!(std::fs::read(host.join("sub/new")).unwrap(), b"written in the guest");
    let mut fds = FdTable::new();
    let fd = open(&vfs, &ctx, &mut fds, "/host/sub/new", O_WRONLY | O_APPEND, 0).unwrap();
    assert_eq!(write(&fds, fd, b"!"), Ok(1));
    assert_eq!(std::fs::read(host.join("sub/new")).unwrap(), b"written in the guest!");
    assert_eq!(lseek(&fds, fd, 0, SEEK_END), Ok(21));
    assert_eq!(ftruncate(&fds, fd, 7), Ok(()));
    assert_eq!(std::fs::read(host.join("sub/new")).unwrap(), b"written");
    drop(fds);
    // Names: mkdir, symlink, link, rename, unlink, rmdir, readdir.
    mkdir(&vfs, &ctx, "/host/sub/d").unwrap();
    assert!(host.join("sub/d").is_dir());
    let fds = FdTable::new();
    symlinkat(&vfs, &ctx, &fds, b"../hello", AT_FDCWD, b"/host/sub/ln").unwrap();
    assert_eq!(read_file(&vfs, &ctx, "/host/sub/ln").unwrap(), b"from the host", "relative symlink followed");
    let mut b = [0u8; 32];
    let n = readlinkat(&vfs, &ctx, &fds, AT_FDCWD, b"/host/sub/ln", &mut b).unwrap();
    assert_eq!(&b[..n], b"../hello");
    linkat(&vfs, &ctx, &fds, AT_FDCWD, b"/host/hello", AT_FDCWD, b"/host/sub/hard", 0).unwrap();
    assert_eq!(stat(&vfs, &ctx, "/host/sub/hard").unwrap().st_nlink, 2, "hard links as on the host");
    renameat2(&vfs, &ctx, &fds, AT_FDCWD, b"/host/sub/new", AT_FDCWD, b"/host/renamed", 0).unwrap();
    assert_eq!(std::fs::read(host.join("renamed")).unwrap(), b"written");
    assert_eq!(stat(&vfs, &ctx, "/host/sub/new"), Err(Errno::ENOENT));
    let mut listed = names(&vfs, &ctx, "/host/sub");
    listed.sort();
    assert_eq!(listed, [".", "..", "d", "hard", "ln"]);
    unlinkat(&vfs, &ctx, &fds, AT_FDCWD, b"/host/sub/hard", 0).unwrap();
    unlinkat(&vfs, &ctx, &fds, AT_FDCWD, b"/host/sub/d", AT_REMOVEDIR).unwrap();
    assert!(!host.join("sub/d").exists() && !host.join("sub/hard").exists());
    assert_eq!(unlinkat(&vfs, &ctx, &fds, AT_FDCWD, b"/host/sub", AT_REMOVEDIR), Err(Errno::ENOTEMPTY));
    fchmodat(&vfs, &ctx, &fds, AT_FDCWD, b"/host/renamed", 0o600, 0).unwrap();
    assert_eq!(std::fs::metadata(host.join("renamed")).unwrap().mode() & 0o777, 0o600);
    // Walks: `..` out of the mount, getcwd inside, cross-mount rename, statfs, xattrs.
    let mut c2 = ctx.clone();
    chdir(&vfs, &mut c2, &fds, b"/host/sub").unwrap();
    assert_eq!(cwd(&c2), "/host/sub");
    assert!(stat(&vfs, &c2, "../../dev/null").is_ok());
    assert_eq!(renameat2(&vfs, &ctx, &fds, AT_FDCWD, b"/host/renamed", AT_FDCWD, b"/tmp/x", 0), Err(Errno::EXDEV));
    assert_eq!(statfs(&vfs, &ctx, &fds, b"/host").unwrap().f_type, 0x6573_5546);
    let t = XattrTarget::Path { path: b"/host/hello", follow: true };
    assert_eq!(getxattr(&ctx, &fds, t, b"user.x", &mut b), Err(Errno::EOPNOTSUPP), "never ENOSYS");
    let _ = std::fs::remove_dir_all(&host);
}

#[test]
fn read_only_mounts_give_erofs() {
    let host = scratch("ro");
    std::fs::write(host.join("f"), b"data").unwrap();
    let (vfs, _, _) = setup();
    mkdir(&vfs, &FsContext::new(&vfs), "/ro").unwrap();
    vfs.mount_filesystem(b"/ro", Arc::new(HostDir { root: host.clone() }), true).unwrap();
    let ctx = FsContext::new(&vfs);
    let mut fds = FdTable::new();
    assert_eq!(read_file(&vfs, &ctx, "/ro/f").unwrap(), b"data");
    assert_eq!(open(&vfs, &ctx, &mut fds, "/ro/f", O_WRONLY, 0), Err(Errno::EROFS));
    assert_eq!(open(&vfs, &ctx, &mut fds, "/ro/f", O_RDONLY | O_TRUNC, 0), Err(Errno::EROFS));
    assert_eq!(open(&vfs, &ctx, &mut fds, "/ro/new", O_CREAT | O_WRONLY, 0o644), Err(Errno::EROFS));
    assert_eq!(mkdir(&vfs, &ctx, "/ro/d"), Err(Errno::EROFS));
    assert_eq!(mkdir(&vfs, &ctx, "/ro/f"), Err(Errno::EEXIST), "EEXIST before EROFS, as Linux");
    assert_eq!(unlinkat(&vfs, &ctx, &fds, AT_FDCWD, b"/ro/f", 0), Err(Errno::EROFS));
    assert_eq!(fchmodat(&vfs, &ctx, &fds, AT_FDCWD, b"/ro/f", 0o600, 0), Err(Errno::EROFS));
    assert_eq!(truncate(&vfs, &ctx, &fds, b"/ro/f", 0), Err(Errno::EROFS));
    assert_eq!(statfs(&vfs, &ctx, &fds, b"/ro").unwrap().f_flags & 1, 1, "ST_RDONLY");
    assert_eq!(std::fs::read(host.join("f")).unwrap(), b"data");
    let info = String::from_utf8(vfs.mounts().mountinfo()).unwrap();
    assert!(info.contains(" / /ro ro,relatime - hostdir hostdir ro"), "{info}");
    let _ = std::fs::remove_dir_all(&host);
}

#[test]
fn host_root_replaces_the_root() {
    let host = scratch("root");
    std::fs::create_dir(host.join("proc")).unwrap();
    std::fs::create_dir(host.join("tmp")).unwrap();
    std::fs::write(host.join("etc-hostname"), b"box").unwrap();
    let (vfs, _, _) = setup();
    vfs.mount_filesystem(b"/", Arc::new(HostDir { root: host.clone() }), false).unwrap();
    vfs.mount_standard().unwrap();
    let ctx = FsContext::new(&vfs);
    assert_eq!(read_file(&vfs, &ctx, "/etc-hostname").unwrap(), b"box");
    assert_eq!(read_file(&vfs, &ctx, "/../etc-hostname").unwrap(), b"box", "`..` at the process root stays");
    assert!(host.join("dev").is_dir(), "a missing mount point is made on a writable root");
    put(&vfs, &ctx, "/tmp/scratch", b"memory");
    assert!(!host.join("tmp/scratch").exists(), "/tmp is a tmpfs over a mounted root");
    assert!(stat(&vfs, &ctx, "/dev/null").is_ok());
    let _ = std::fs::remove_dir_all(&host);
}


#[test]
fn openat2_resolve_rules() {
    let (vfs, ctx, _) = setup();
    mkdir(&vfs, &ctx, "/jail").unwrap();
    mkdir(&vfs, &ctx, "/jail/d").unwrap();
    put(&vfs, &ctx, "/jail/d/f", b"in");
    put(&vfs, &ctx, "/outside", b"out");
    let fds0 = FdTable::new();
    symlinkat(&vfs, &ctx, &fds0, b"/outside", AT_FDCWD, b"/jail/abs").unwrap();
    symlinkat(&vfs, &ctx, &fds0, b"../outside", AT_FDCWD, b"/jail/rel").unwrap();
    symlinkat(&vfs, &ctx, &fds0, b"d/f", AT_FDCWD, b"/jail/inner").unwrap();
    vfs.mount_tmpfs(b"/jail/m", u64::MAX, 0o755).unwrap();
    let ctx = FsContext::new(&vfs);
    let mut fds = FdTable::new();
    let jail = open(&vfs, &ctx, &mut fds, "/jail", O_RDONLY | O_DIRECTORY, 0).unwrap();
    let o2 = |fds: &mut FdTable, p: &str, resolve: u32| -> Result<Vec<u8>> {
        let fd = openat2(&vfs, &ctx, fds, jail, p.as_bytes(), u64::from(O_RDONLY), 0, u64::from(resolve))?;
        let mut b = [0u8; 16];
        let n = read(fds, fd, &mut b).unwrap_or(0);
        close(fds, fd).unwrap();
        Ok(b[..n].to_vec())
    };
    use linux_raw_sys::general::{RESOLVE_BENEATH, RESOLVE_IN_ROOT, RESOLVE_NO_SYMLINKS, RESOLVE_NO_XDEV};
    assert_eq!(o2(&mut fds, "d/f", RESOLVE_BENEATH).unwrap(), b"in");
    assert_eq!(o2(&mut fds, "inner", RESOLVE_BENEATH).unwrap(), b"in");
    assert_eq!(o2(&mut fds, "d/../d/f", RESOLVE_BENEATH).unwrap(), b"in");
    assert_eq!(o2(&mut fds, "../outside", RESOLVE_BENEATH), Err(Errno::EXDEV));
    assert_eq!(o2(&mut fds, "/outside", RESOLVE_BENEATH), Err(Errno::EXDEV));
    assert_eq!(o2(&mut fds, "abs", RESOLVE_BENEATH), Err(Errno::EXDEV));
    assert_eq!(o2(&mut fds, "rel", RESOLVE_BENEATH), Err(Errno::EXDEV));
    // IN_ROOT: "/" and ".." stop at the starting directory.
    assert_eq!(o2(&mut fds, "/d/f", RESOLVE_IN_ROOT).unwrap(), b"in");
    assert_eq!(o2(&mut fds, "../../d/f", RESOLVE_IN_ROOT).unwrap(), b"in");
    assert_eq!(o2(&mut fds, "abs", RESOLVE_IN_ROOT), Err(Errno::ENOENT), "/outside inside the root is absent");
    assert_eq!(o2(&mut fds, "inner", RESOLVE_NO_SYMLINKS), Err(Errno::ELOOP));
    assert_eq!(o2(&mut fds, "d/f", RESOLVE_NO_SYMLINKS).unwrap(), b"in");
    assert_eq!(o2(&mut fds, "m/.", RESOLVE_NO_XDEV), Err(Errno::EXDEV), "entering a mount");
    assert_eq!(o2(&mut fds, "m", 0).unwrap(), b"");
    let r = openat2(&vfs, &ctx, &mut fds, jail, b"d/f", 0, 0, u64::from(RESOLVE_BENEATH | RESOLVE_IN_ROOT));
    assert_eq!(r, Err(Errno::EINVAL));
    assert_eq!(openat2(&vfs, &ctx, &mut fds, jail, b"d/f", 0, 0o644, 0), Err(Errno::EINVAL), "mode without O_CREAT");
    assert_eq!(openat2(&vfs, &ctx, &mut fds, jail, b"d/f", 1 << 40, 0, 0), Err(Errno::EINVAL));
    assert_eq!(openat2(&vfs, &ctx, &mut fds, jail, b"d/f", 0, 0, 1 << 6), Err(Errno::EINVAL));
}
