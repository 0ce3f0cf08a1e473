//! The hostfs FUSE client against the real file server code: fuse-backend-rs's `Server` with
//! its `PassthroughFs` on a per-test temporary directory, in-process (`fuse_server`).
//! Every check compares what the client reports with what the host sees in the directory.

mod fuse_server;

use fuse_server::{scratch, serve};
use guest_fs::Errno;
use guest_fs::fuse::{Caller, SetAttr, abi::ROOT_ID};
use std::ffi::CString;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

const ME: Caller = Caller {
    uid: 0,
    gid: 0,
    pid: 1,
};

#[test]
fn init_negotiates_7_31() {
    let dir = scratch("init");
    let c = serve(&dir);
    let conn = c.connection();
    assert!(conn.minor >= 31, "{conn:?}");
    assert!(conn.max_write >= 4096);
}

#[test]
fn create_write_read_stat_match_the_host() {
    let dir = scratch("rw");
    let c = serve(&dir);
    let (e, o) = c
        .create(ME, ROOT_ID, b"a.txt", libc::O_RDWR as u32, 0o100640, 0)
        .unwrap();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(c.write(ME, e.nodeid, o.fh, 0, &data).unwrap(), data.len());
    c.fsync(ME, e.nodeid, o.fh, false).unwrap();
    c.flush(ME, e.nodeid, o.fh, 7).unwrap();
    assert_eq!(fs::read(dir.join("a.txt")).unwrap(), data);
    let mut back = vec![0u8; data.len() + 10];
    assert_eq!(
        c.read(ME, e.nodeid, o.fh, 0, &mut back).unwrap(),
        data.len()
    );
    assert_eq!(&back[..data.len()], &data[..]);
    let mut tail = [0u8; 8];
    assert_eq!(c.read(ME, e.nodeid, o.fh, 299_996, &mut tail).unwrap(), 4);
    let a = c.getattr(ME, e.nodeid, None).unwrap().attr;
    let m = fs::metadata(dir.join("a.txt")).unwrap();
    assert_eq!(
        (a.ino, a.size, a.mode, a.nlink, a.uid, a.gid),
        (m.ino(), m.size(), m.mode(), 1, m.uid(), m.gid())
    );
    assert_eq!((a.mtime.sec, a.mtime.nsec), (m.mtime(), m.mtime_nsec()));
    // Lookup of the same name gives the same node.
    let l = c.lookup(ME, ROOT_ID, b"a.txt").unwrap();
    assert_eq!(l.nodeid, e.nodeid);
    assert_eq!(c.lookups(e.nodeid), 2);
    c.release(ME, e.nodeid, o.fh, libc::O_RDWR as u32, None);
    c.forget(e.nodeid, 2);
    assert_eq!(c.lookups(e.nodeid), 0);
    assert_eq!(
        c.lookup(ME, ROOT_ID, b"missing").unwrap_err(),
        Errno::ENOENT
    );
}

#[test]
fn open_trunc_setattr_and_persistence() {
    let dir = scratch("trunc");
    fs::write(dir.join("f"), b"0123456789").unwrap();
    let c = serve(&dir);
    let e = c.lookup(ME, ROOT_ID, b"f").unwrap();
    let o = c
        .open(ME, e.nodeid, (libc::O_WRONLY | libc::O_TRUNC) as u32)
        .unwrap();
    assert_eq!(fs::metadata(dir.join("f")).unwrap().len(), 0);
    c.write(ME, e.nodeid, o.fh, 0, b"xy").unwrap();
    c.release(ME, e.nodeid, o.fh, 0, None);
    assert_eq!(fs::read(dir.join("f")).unwrap(), b"xy");
    let set = SetAttr {
        mode: Some(0o600),
        size: Some(5),
        ..Default::default()
    };
    let a = c.setattr(ME, e.nodeid, &set).unwrap().attr;
    let m = fs::metadata(dir.join("f")).unwrap();
    assert_eq!((a.size, a.mode & 0o7777), (5, 0o600));
    assert_eq!((m.len(), m.permissions().mode() & 0o7777), (5, 0o600));
    let t = guest_fs::Timespec::new(1_000_000, 5);
    let a = c
        .setattr(
            ME,
            e.nodeid,
            &SetAttr {
                mtime: Some(Some(t)),
                ..Default::default()
            },
        )
        .unwrap()
        .attr;
    assert_eq!(a.mtime, t);
    assert_eq!(fs::metadata(dir.join("f")).unwrap().mtime(), 1_000_000);
}

#[test]
fn directories_rename_unlink_rmdir() {
    let dir = scratch("dirs");
    let c = serve(&dir);
    let d = c.mkdir(ME, ROOT_ID, b"sub", 0o755, 0).unwrap();
    assert_eq!(d.attr.kind, guest_fs::FileType::Directory);
    assert!(dir.join("sub").is_dir());
    let (f, o) = c
        .create(ME, d.nodeid, b"x", libc::O_WRONLY as u32, 0o644, 0)
        .unwrap();
    c.release(ME, f.nodeid, o.fh, 0, None);
    c.rename(ME, d.nodeid, b"x", ROOT_ID, b"y", 0).unwrap();
    assert!(!dir.join("sub/x").exists() && dir.join("y").is_file());
    // RENAME_NOREPLACE onto an existing name fails.
    fs::write(dir.join("z"), b"").unwrap();
    assert_eq!(
        c.rename(ME, ROOT_ID, b"y", ROOT_ID, b"z", libc::RENAME_NOREPLACE)
            .unwrap_err(),
        Errno::EEXIST
    );
    // READDIR lists what the host has.
    let h = c.opendir(ME, ROOT_ID, libc::O_RDONLY as u32).unwrap();
    let mut names: Vec<Vec<u8>> = Vec::new();
    let mut off = 0;
    loop {
        let v = c.readdir(ME, ROOT_ID, h.fh, off, 4096).unwrap();
        let Some(last) = v.last() else { break };
        off = last.off;
        names.extend(v.into_iter().map(|e| e.name));
    }
    c.releasedir(ME, ROOT_ID, h.fh);
    names.retain(|n| n != b"." && n != b"..");
    names.sort();
    let mut host: Vec<Vec<u8>> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_encoded_bytes())
        .collect();
    host.sort();
    assert_eq!(names, host);
    assert_eq!(c.rmdir(ME, ROOT_ID, b"y").unwrap_err(), Errno::ENOTDIR);
    c.unlink(ME, ROOT_ID, b"y").unwrap();
    c.rmdir(ME, ROOT_ID, b"sub").unwrap();
    assert!(!dir.join("y").exists() && !dir.join("sub").exists());
}

#[test]
fn readdirplus_counts_lookups() {
    let dir = scratch("rdplus");
    fs::write(dir.join("one"), b"1").unwrap();
    fs::write(dir.join("two"), b"22").unwrap();
    let c = serve(&dir);
    let h = c.opendir(ME, ROOT_ID, 0).unwrap();
    let v = c.readdirplus(ME, ROOT_ID, h.fh, 0, 8192).unwrap();
    c.releasedir(ME, ROOT_ID, h.fh);
    let two = v
        .iter()
        .find(|(d, _)| d.name == b"two")
        .and_then(|(_, e)| *e)
        .unwrap();
    assert_eq!(two.attr.size, 2);
    assert_eq!(two.attr.ino, fs::metadata(dir.join("two")).unwrap().ino());
    assert_eq!(c.lookups(two.nodeid), 1);
    let ids: Vec<(u64, u64)> = v.iter().filter_map(|(_, e)| e.map(|e| (e.nodeid, 1))).collect();
    c.forget_many(&ids);
    assert_eq!(c.lookups(two.nodeid), 0);
}

#[test]
fn hard_links_share_the_inode() {
    let dir = scratch("link");
    fs::write(dir.join("orig"), b"data").unwrap();
    let c = serve(&dir);
    let e = c.lookup(ME, ROOT_ID, b"orig").unwrap();
    let l = c.link(ME, e.nodeid, ROOT_ID, b"alias").unwrap();
    assert_eq!(l.nodeid, e.nodeid);
    assert_eq!(l.attr.nlink, 2);
    assert_eq!(c.lookups(e.nodeid), 2);
    let (m1, m2) = (
        fs::metadata(dir.join("orig")).unwrap(),
        fs::metadata(dir.join("alias")).unwrap(),
    );
    assert_eq!((m1.ino(), m1.nlink()), (m2.ino(), 2));
    assert_eq!(l.attr.ino, m1.ino());
}

#[test]
fn symlinks_fifos_and_statfs() {
    let dir = scratch("special");
    let c = serve(&dir);
    let s = c.symlink(ME, ROOT_ID, b"ln", b"../../etc/passwd").unwrap();
    assert_eq!(s.attr.kind, guest_fs::FileType::Symlink);
    assert_eq!(c.readlink(ME, s.nodeid).unwrap(), b"../../etc/passwd");
    assert_eq!(
        fs::read_link(dir.join("ln")).unwrap(),
        Path::new("../../etc/passwd")
    );
    let f = c
        .mknod(ME, ROOT_ID, b"fifo", libc::S_IFIFO | 0o644, 0, 0)
        .unwrap();
    assert_eq!(f.attr.kind, guest_fs::FileType::Fifo);
    assert!(
        fs::symlink_metadata(dir.join("fifo"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
    let st = c.statfs(ME, ROOT_ID).unwrap();
    let path = CString::new(dir.to_str().unwrap()).unwrap();
    // SAFETY: `path` is NUL-terminated; `sv` is writable.
    let mut sv: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    assert_eq!(unsafe { libc::statvfs(path.as_ptr(), &mut sv) }, 0);
    assert_eq!((st.blocks, u64::from(st.bsize)), (sv.f_blocks, sv.f_bsize));
    assert_eq!(st.files, sv.f_files);
    c.access(ME, ROOT_ID, libc::W_OK as u32).unwrap();
}

#[test]
fn xattrs_pass_through() {
    let dir = scratch("xattr");
    fs::write(dir.join("f"), b"").unwrap();
    let c = serve(&dir);
    let e = c.lookup(ME, ROOT_ID, b"f").unwrap();
    c.setxattr(ME, e.nodeid, b"user.pvm", b"value-1", 0)
        .unwrap();
    assert_eq!(c.getxattr(ME, e.nodeid, b"user.pvm", &mut []).unwrap(), 7);
    let mut buf = [0u8; 64];
    let n = c.getxattr(ME, e.nodeid, b"user.pvm", &mut buf).unwrap();
    assert_eq!(&buf[..n], b"value-1");
    assert_eq!(
        c.getxattr(ME, e.nodeid, b"user.pvm", &mut [0u8; 3])
            .unwrap_err(),
        Errno::ERANGE
    );
    let path = CString::new(dir.join("f").to_str().unwrap()).unwrap();
    let name = CString::new("user.pvm").unwrap();
    let mut host = [0u8; 64];
    // SAFETY: NUL-terminated strings; `host` is writable for its length.
    let hn = unsafe {
        libc::getxattr(
            path.as_ptr(),
            name.as_ptr(),
            host.as_mut_ptr().cast(),
            host.len(),
        )
    };
    assert_eq!(&host[..hn as usize], b"value-1");
    let n = c.listxattr(ME, e.nodeid, &mut buf).unwrap();
    assert!(buf[..n].split(|&b| b == 0).any(|s| s == b"user.pvm"));
    assert_eq!(
        c.setxattr(ME, e.nodeid, b"user.pvm", b"x", libc::XATTR_CREATE as u32)
            .unwrap_err(),
        Errno::EEXIST
    );
    c.removexattr(ME, e.nodeid, b"user.pvm").unwrap();
    assert_eq!(
        c.getxattr(ME, e.nodeid, b"user.pvm", &mut buf).unwrap_err(),
        Errno::ENODATA
    );
}

#[test]
fn fallocate_lseek_copy_file_range() {
    let dir = scratch("ranges");
    fs::write(dir.join("src"), b"hello world").unwrap();
    let c = serve(&dir);
    let s = c.lookup(ME, ROOT_ID, b"src").unwrap();
    let so = c.open(ME, s.nodeid, libc::O_RDONLY as u32).unwrap();
    let (d, dopen) = c
        .create(ME, ROOT_ID, b"dst", libc::O_RDWR as u32, 0o644, 0)
        .unwrap();
    c.fallocate(ME, d.nodeid, dopen.fh, 0, 0, 8192).unwrap();
    assert_eq!(fs::metadata(dir.join("dst")).unwrap().len(), 8192);
    match c.copy_file_range(ME, s.nodeid, so.fh, 6, d.nodeid, dopen.fh, 0, 5) {
        Ok(n) => {
            assert_eq!(n, 5);
            assert_eq!(&fs::read(dir.join("dst")).unwrap()[..5], b"world");
        }
        Err(e) => assert_eq!(e, Errno::ENOSYS, "copy_file_range: {e:?}"),
    }
    assert_eq!(
        c.lseek(ME, s.nodeid, so.fh, 0, libc::SEEK_DATA as u32)
            .unwrap(),
        0
    );
    c.release(ME, s.nodeid, so.fh, 0, None);
    c.release(ME, d.nodeid, dopen.fh, 0, None);
}
