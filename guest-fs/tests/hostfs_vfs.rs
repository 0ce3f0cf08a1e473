//! hostfs mounted in the VFS as the root, over fuse-backend-rs's passthrough server on a temp
//! directory (in-process, `fuse_server`), driven through the syscall layer as the guest kernel
//! drives it; every result is compared with what the host sees in the directory.

mod common;
mod fuse_server;

use common::{O_CREAT, O_DIRECTORY, O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY, TickClock};
use fuse_server::{scratch, serve};
use guest_fs::fuse::HostFs;
use guest_fs::{AT_FDCWD, Errno, FdTable, FsContext, Vfs, XattrTarget};
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicI64;

struct Guest {
    vfs: Arc<Vfs>,
    ctx: FsContext,
    fds: FdTable,
}

fn mount(dir: &Path, read_only: bool) -> Guest {
    let vfs = Arc::new(Vfs::new(Arc::new(TickClock(AtomicI64::new(0)))));
    vfs.create_standard_nodes().expect("standard nodes");
    let fs = HostFs::new(Arc::new(serve(dir)), read_only, "hostfs");
    vfs.mount_filesystem(b"/", Arc::new(fs), read_only).expect("mount hostfs on /");
    let ctx = FsContext::new(&vfs);
    Guest { vfs, ctx, fds: FdTable::new() }
}

impl Guest {
    fn open(&mut self, path: &str, flags: u32, mode: u32) -> guest_fs::Result<i32> {
        guest_fs::openat(&self.vfs, &self.ctx, &mut self.fds, AT_FDCWD, path.as_bytes(), flags, mode)
    }
    fn stat(&self, path: &str) -> guest_fs::Result<guest_fs::Stat> {
        guest_fs::newfstatat(&self.vfs, &self.ctx, &self.fds, AT_FDCWD, path.as_bytes(), 0)
    }
    fn read_all(&mut self, path: &str) -> guest_fs::Result<Vec<u8>> {
        let fd = self.open(path, O_RDONLY, 0)?;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 100_000];
        loop {
            let n = guest_fs::read(&self.fds, fd, &mut buf)?;
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        guest_fs::close(&mut self.fds, fd)?;
        Ok(out)
    }
    fn names(&mut self, path: &str) -> Vec<String> {
        let fd = self.open(path, O_RDONLY | O_DIRECTORY, 0).expect("opendir");
        let mut names = Vec::new();
        let mut buf = vec![0u8; 512];
        loop {
            let n = guest_fs::getdents64(&self.fds, fd, &mut buf).expect("getdents64");
            if n == 0 {
                break;
            }
            let mut off = 0;
            while off < n {
                let reclen = u16::from_ne_bytes([buf[off + 16], buf[off + 17]]) as usize;
                let name = &buf[off + 19..off + reclen];
                let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
                names.push(String::from_utf8_lossy(name).into_owned());
                off += reclen;
            }
        }
        guest_fs::close(&mut self.fds, fd).unwrap();
        names.retain(|n| n != "." && n != "..");
        names.sort();
        names
    }
}

fn host_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    v.sort();
    v
}

#[test]
fn writes_reach_the_host_and_reads_see_it() {
    let dir = scratch("vfs-rw");
    fs::write(dir.join("existing"), b"from the host\n").unwrap();
    let mut g = mount(&dir, false);
    assert_eq!(g.read_all("/existing").unwrap(), b"from the host\n");
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 253) as u8).collect();
    let fd = g.open("/big", O_CREAT | O_WRONLY | O_TRUNC, 0o640).unwrap();
    assert_eq!(guest_fs::write(&g.fds, fd, &data).unwrap(), data.len());
    guest_fs::close(&mut g.fds, fd).unwrap();
    assert_eq!(fs::read(dir.join("big")).unwrap(), data);
    assert_eq!(g.read_all("/big").unwrap(), data);
    let st = g.stat("/big").unwrap();
    let m = fs::metadata(dir.join("big")).unwrap();
    assert_eq!((st.st_ino, st.st_size as u64, st.st_mode, st.st_nlink), (m.ino(), m.len(), m.mode(), 1));
    assert_eq!((st.st_uid, st.st_gid, st.st_mtime, st.st_mtime_nsec), (m.uid(), m.gid(), m.mtime(), m.mtime_nsec()));
    // O_TRUNC of an existing file, then an append.
    let fd = g.open("/existing", O_WRONLY | O_TRUNC, 0).unwrap();
    guest_fs::write(&g.fds, fd, b"new").unwrap();
    guest_fs::close(&mut g.fds, fd).unwrap();
    let fd = g.open("/existing", O_WRONLY | common::O_APPEND, 0).unwrap();
    guest_fs::write(&g.fds, fd, b"+more").unwrap();
    guest_fs::close(&mut g.fds, fd).unwrap();
    assert_eq!(fs::read(dir.join("existing")).unwrap(), b"new+more");
    // Changes made on the host show at once (nothing is cached).
    fs::write(dir.join("existing"), b"changed on the host").unwrap();
    assert_eq!(g.stat("/existing").unwrap().st_size, 19);
    assert_eq!(g.read_all("/existing").unwrap(), b"changed on the host");
}

#[test]
fn names_links_and_special_files() {
    let dir = scratch("vfs-names");
    let mut g = mount(&dir, false);
    guest_fs::mkdirat(&g.vfs, &g.ctx, &g.fds, AT_FDCWD, b"/d", 0o755).unwrap();
    let fd = g.open("/d/f", O_CREAT | O_RDWR, 0o600).unwrap();
    guest_fs::close(&mut g.fds, fd).unwrap();
    guest_fs::linkat(&g.vfs, &g.ctx, &g.fds, AT_FDCWD, b"/d/f", AT_FDCWD, b"/hard", 0).unwrap();
    let (a, b) = (g.stat("/d/f").unwrap(), g.stat("/hard").unwrap());
    assert_eq!((a.st_ino, a.st_nlink), (b.st_ino, 2));
    let m = fs::metadata(dir.join("hard")).unwrap();
    assert_eq!((m.ino(), m.nlink()), (a.st_ino, 2));
    guest_fs::symlinkat(&g.vfs, &g.ctx, &g.fds, b"d/f", AT_FDCWD, b"/sym").unwrap();
    assert_eq!(fs::read_link(dir.join("sym")).unwrap(), Path::new("d/f"));
    let mut buf = [0u8; 64];
    let n = guest_fs::readlinkat(&g.vfs, &g.ctx, &g.fds, AT_FDCWD, b"/sym", &mut buf).unwrap();
    assert_eq!(&buf[..n], b"d/f");
    guest_fs::mknodat(&g.vfs, &g.ctx, &g.fds, AT_FDCWD, b"/fifo", linux_raw_sys::general::S_IFIFO | 0o644, 0).unwrap();
    assert!(fs::symlink_metadata(dir.join("fifo")).unwrap().file_type().is_fifo());
    assert_eq!(g.names("/"), host_names(&dir));
    guest_fs::renameat2(&g.vfs, &g.ctx, &g.fds, AT_FDCWD, b"/hard", AT_FDCWD, b"/d/moved", 0).unwrap();
    assert!(dir.join("d/moved").exists() && !dir.join("hard").exists());
    assert_eq!(g.names("/d"), vec!["f".to_string(), "moved".to_string()]);
    guest_fs::unlinkat(&g.vfs, &g.ctx, &g.fds, AT_FDCWD, b"/d/moved", 0).unwrap();
    assert_eq!(fs::metadata(dir.join("d/f")).unwrap().nlink(), 1);
    assert_eq!(g.stat("/d/f").unwrap().st_nlink, 1);
    // Many entries: getdents64 in small buffers still lists every one.
    for i in 0..300 {
        fs::write(dir.join(format!("d/n{i:03}")), b"").unwrap();
    }
    assert_eq!(g.names("/d"), host_names(&dir.join("d")));
}

#[test]
fn xattrs_and_statfs_pass_through() {
    let dir = scratch("vfs-xattr");
    fs::write(dir.join("f"), b"").unwrap();
    let g = mount(&dir, false);
    let t = XattrTarget::Path { path: b"/f", follow: true };
    guest_fs::setxattr(&g.ctx, &g.fds, t, b"user.k", b"v1", 0).unwrap();
    let mut buf = [0u8; 16];
    let t = XattrTarget::Path { path: b"/f", follow: true };
    let n = guest_fs::getxattr(&g.ctx, &g.fds, t, b"user.k", &mut buf).unwrap();
    assert_eq!(&buf[..n], b"v1");
    let out = std::process::Command::new("getfattr").args(["-n", "user.k", "--only-values"]).arg(dir.join("f")).output();
    if let Ok(o) = out
        && o.status.success()
    {
        assert_eq!(o.stdout, b"v1");
    }
    let t = XattrTarget::Path { path: b"/f", follow: true };
    assert_eq!(guest_fs::getxattr(&g.ctx, &g.fds, t, b"user.none", &mut buf), Err(Errno::ENODATA));
    let st = guest_fs::statfs(&g.vfs, &g.ctx, &g.fds, b"/").unwrap();
    assert_eq!(st.f_type, guest_fs::fuse::FUSE_SUPER_MAGIC);
    assert!(st.f_blocks > 0 && st.f_bsize > 0);
}

#[test]
fn read_only_mounts_refuse_changes() {
    let dir = scratch("vfs-ro");
    fs::write(dir.join("f"), b"keep").unwrap();
    let mut g = mount(&dir, true);
    assert_eq!(g.read_all("/f").unwrap(), b"keep");
    assert_eq!(g.open("/f", O_WRONLY, 0), Err(Errno::EROFS));
    assert_eq!(g.open("/new", O_CREAT | O_WRONLY, 0o644), Err(Errno::EROFS));
    assert_eq!(guest_fs::mkdirat(&g.vfs, &g.ctx, &g.fds, AT_FDCWD, b"/d", 0o755), Err(Errno::EROFS));
    assert_eq!(guest_fs::unlinkat(&g.vfs, &g.ctx, &g.fds, AT_FDCWD, b"/f", 0), Err(Errno::EROFS));
    let t = XattrTarget::Path { path: b"/f", follow: true };
    assert_eq!(guest_fs::setxattr(&g.ctx, &g.fds, t, b"user.k", b"v", 0), Err(Errno::EROFS));
    assert_eq!(fs::read(dir.join("f")).unwrap(), b"keep");
    assert!(!dir.join("new").exists());
}

#[test]
fn symlinks_and_dotdot_stay_inside_the_tree() {
    let base = scratch("vfs-escape");
    let root = base.join("root");
    fs::create_dir_all(root.join("sub")).unwrap();
    fs::write(base.join("canary"), b"secret").unwrap();
    std::os::unix::fs::symlink(base.join("canary"), root.join("abs")).unwrap();
    std::os::unix::fs::symlink("../canary", root.join("rel")).unwrap();
    std::os::unix::fs::symlink("../../../../..", root.join("sub/up")).unwrap();
    let mut g = mount(&root, false);
    for p in ["/abs", "/rel", "/../canary", "/sub/../../canary", "/sub/up/canary", "/sub/up/../canary"] {
        assert_eq!(g.read_all(p), Err(Errno::ENOENT), "{p}");
    }
    // Writing through the relative link creates the file inside the tree, as in a chroot.
    let fd = g.open("/rel", O_CREAT | O_WRONLY, 0o644).unwrap();
    guest_fs::write(&g.fds, fd, b"inside").unwrap();
    guest_fs::close(&mut g.fds, fd).unwrap();
    assert_eq!(fs::read(root.join("canary")).unwrap(), b"inside");
    assert_eq!(fs::read(base.join("canary")).unwrap(), b"secret");
    assert_eq!(g.names("/sub/up"), host_names(&root));
}
