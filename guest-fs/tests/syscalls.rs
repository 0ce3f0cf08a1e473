//! Behaviour of the file syscalls against the Linux man pages (section 2).

mod common;

use common::*;
use guest_fs::*;
use std::sync::Arc;

fn stat(vfs: &Vfs, ctx: &FsContext, path: &str) -> Result<Stat> {
    newfstatat(vfs, ctx, &FdTable::new(), AT_FDCWD, path.as_bytes(), 0)
}

fn lstat(vfs: &Vfs, ctx: &FsContext, path: &str) -> Result<Stat> {
    newfstatat(vfs, ctx, &FdTable::new(), AT_FDCWD, path.as_bytes(), AT_SYMLINK_NOFOLLOW)
}

fn mkdir(vfs: &Vfs, ctx: &FsContext, path: &str, mode: u32) -> Result<()> {
    mkdirat(vfs, ctx, &FdTable::new(), AT_FDCWD, path.as_bytes(), mode)
}

fn read_all(fds: &FdTable, fd: i32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 7];
    loop {
        let n = read(fds, fd, &mut buf).expect("read");
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n]);
    }
}

/// Parses getdents64 output into (ino, off, type, name).
fn parse_dents(buf: &[u8]) -> Vec<(u64, i64, u8, String)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        let ino = u64::from_le_bytes(buf[at..at + 8].try_into().unwrap());
        let off = i64::from_le_bytes(buf[at + 8..at + 16].try_into().unwrap());
        let reclen = u16::from_le_bytes(buf[at + 16..at + 18].try_into().unwrap()) as usize;
        assert_eq!(reclen % 8, 0);
        let dtype = buf[at + 18];
        let name = &buf[at + 19..at + reclen];
        let end = name.iter().position(|&b| b == 0).expect("NUL");
        out.push((ino, off, dtype, String::from_utf8(name[..end].to_vec()).unwrap()));
        at += reclen;
    }
    out
}

fn list(vfs: &Vfs, ctx: &FsContext, path: &str) -> Vec<String> {
    let mut fds = FdTable::new();
    let fd = open(vfs, ctx, &mut fds, path, O_RDONLY | O_DIRECTORY, 0).unwrap();
    let mut names = Vec::new();
    let mut buf = [0u8; 64];
    loop {
        let n = getdents64(&fds, fd, &mut buf).unwrap();
        if n == 0 {
            return names;
        }
        names.extend(parse_dents(&buf[..n]).into_iter().map(|e| e.3));
    }
}

#[test]
fn create_write_read_seek() {
    let (vfs, ctx, mut fds) = setup();
    let fd = open(&vfs, &ctx, &mut fds, "/tmp/a", O_CREAT | O_RDWR, 0o666).unwrap();
    assert_eq!(fd, 0, "lowest free fd");
    assert_eq!(write(&fds, fd, b"hello world"), Ok(11));
    assert_eq!(lseek(&fds, fd, 0, SEEK_CUR), Ok(11));
    assert_eq!(lseek(&fds, fd, 6, SEEK_SET), Ok(6));
    let mut b = [0u8; 16];
    assert_eq!(read(&fds, fd, &mut b), Ok(5));
    assert_eq!(&b[..5], b"world");
    assert_eq!(read(&fds, fd, &mut b), Ok(0));
    assert_eq!(lseek(&fds, fd, -3, SEEK_END), Ok(8));
    assert_eq!(lseek(&fds, fd, -100, SEEK_CUR), Err(Errno::EINVAL));
    assert_eq!(lseek(&fds, fd, 0, 99), Err(Errno::EINVAL));
    let st = fstat(&fds, fd).unwrap();
    assert_eq!(st.st_mode, S_IFREG | 0o644, "umask 022 applied");
    assert_eq!(st.st_size, 11);
    assert_eq!(st.st_nlink, 1);
    assert_eq!(st.st_blocks, 8);
    // pread/pwrite leave the offset alone.
    assert_eq!(pwrite64(&fds, fd, b"HELLO", 0), Ok(5));
    assert_eq!(pread64(&fds, fd, &mut b[..5], 0), Ok(5));
    assert_eq!(&b[..5], b"HELLO");
    assert_eq!(pread64(&fds, fd, &mut b, -1), Err(Errno::EINVAL));
    assert_eq!(lseek(&fds, fd, 0, SEEK_CUR), Ok(8));
    // Sparse write past EOF zero-fills.
    assert_eq!(pwrite64(&fds, fd, b"Z", 20), Ok(1));
    assert_eq!(pread64(&fds, fd, &mut b, 10), Ok(11));
    assert_eq!(&b[..11], b"d\0\0\0\0\0\0\0\0\0Z");
    assert_eq!(close(&mut fds, fd), Ok(()));
    assert_eq!(close(&mut fds, fd), Err(Errno::EBADF));
}

#[test]
fn access_modes_and_ebadf() {
    let (vfs, ctx, mut fds) = setup();
    put(&vfs, &ctx, "/f", b"data");
    let ro = open(&vfs, &ctx, &mut fds, "/f", O_RDONLY, 0).unwrap();
    assert_eq!(write(&fds, ro, b"x"), Err(Errno::EBADF));
    assert_eq!(ftruncate(&fds, ro, 0), Err(Errno::EINVAL));
    let wo = open(&vfs, &ctx, &mut fds, "/f", O_WRONLY, 0).unwrap();
    assert_eq!(read(&fds, wo, &mut [0; 4]), Err(Errno::EBADF));
    assert_eq!(ftruncate(&fds, wo, -1), Err(Errno::EINVAL));
    assert_eq!(ftruncate(&fds, wo, 2), Ok(()));
    assert_eq!(read_all(&fds, ro), b"da");
    let p = open(&vfs, &ctx, &mut fds, "/f", O_PATH, 0).unwrap();
    assert_eq!(read(&fds, p, &mut [0; 4]), Err(Errno::EBADF));
    assert_eq!(write(&fds, p, b"x"), Err(Errno::EBADF));
    assert_eq!(lseek(&fds, p, 0, SEEK_SET), Err(Errno::EBADF));
    assert_eq!(fstat(&fds, p).unwrap().st_size, 2, "O_PATH fds can be stat'ed");
    assert_eq!(fcntl(&mut fds, p, F_GETFL, 0).map(|f| f as u32 & O_PATH), Ok(O_PATH));
    assert_eq!(read(&fds, 99, &mut [0; 1]), Err(Errno::EBADF));
    assert_eq!(read(&fds, -1, &mut [0; 1]), Err(Errno::EBADF));
}

const F_GETFL: u32 = linux_raw_sys::general::F_GETFL;
const F_SETFL: u32 = linux_raw_sys::general::F_SETFL;
const F_GETFD: u32 = linux_raw_sys::general::F_GETFD;
const F_SETFD: u32 = linux_raw_sys::general::F_SETFD;
const F_DUPFD: u32 = linux_raw_sys::general::F_DUPFD;
const F_DUPFD_CLOEXEC: u32 = linux_raw_sys::general::F_DUPFD_CLOEXEC;

#[test]
fn append_trunc_excl() {
    let (vfs, ctx, mut fds) = setup();
    put(&vfs, &ctx, "/f", b"abc");
    let fd = open(&vfs, &ctx, &mut fds, "/f", O_WRONLY | O_APPEND, 0).unwrap();
    assert_eq!(lseek(&fds, fd, 0, SEEK_SET), Ok(0));
    assert_eq!(write(&fds, fd, b"def"), Ok(3));
    assert_eq!(lseek(&fds, fd, 0, SEEK_CUR), Ok(6), "append moves the offset to the end");
    assert_eq!(pwrite64(&fds, fd, b"g", 0), Ok(1), "pwrite with O_APPEND appends (Linux bug)");
    assert_eq!(read_whole_file(&vfs, &ctx, b"/f").unwrap(), b"abcdefg");
    assert_eq!(open(&vfs, &ctx, &mut fds, "/f", O_CREAT | O_EXCL | O_WRONLY, 0o600), Err(Errno::EEXIST));
    let t = open(&vfs, &ctx, &mut fds, "/f", O_WRONLY | O_TRUNC, 0).unwrap();
    assert_eq!(fstat(&fds, t).unwrap().st_size, 0);
    assert_eq!(open(&vfs, &ctx, &mut fds, "/tmp", O_RDONLY | O_TMPFILE, 0o600), Err(Errno::EOPNOTSUPP));
}

#[test]
fn dup_fcntl_and_shared_offsets() {
    let (vfs, ctx, mut fds) = setup();
    put(&vfs, &ctx, "/f", b"0123456789");
    let a = open(&vfs, &ctx, &mut fds, "/f", O_RDONLY | O_CLOEXEC, 0).unwrap();
    assert_eq!(fcntl(&mut fds, a, F_GETFD, 0), Ok(1));
    let b = dup(&mut fds, a).unwrap();
    assert_eq!(b, a + 1);
    assert_eq!(fcntl(&mut fds, b, F_GETFD, 0), Ok(0), "dup clears close-on-exec");
    let mut buf = [0u8; 3];
    read(&fds, a, &mut buf).unwrap();
    assert_eq!(lseek(&fds, b, 0, SEEK_CUR), Ok(3), "dup shares the offset");
    // fork: the clone shares the open file description.
    let child = fds.clone();
    read(&child, b, &mut buf).unwrap();
    assert_eq!(lseek(&fds, a, 0, SEEK_CUR), Ok(6));
    assert_eq!(dup2(&mut fds, a, a), Ok(a));
    assert_eq!(dup2(&mut fds, 77, 5), Err(Errno::EBADF));
    assert_eq!(dup3(&mut fds, a, a, 0), Err(Errno::EINVAL));
    assert_eq!(dup3(&mut fds, a, 9, O_CLOEXEC), Ok(9));
    assert_eq!(fcntl(&mut fds, 9, F_GETFD, 0), Ok(1));
    assert_eq!(dup3(&mut fds, a, 9, 0x4), Err(Errno::EINVAL));
    assert_eq!(fcntl(&mut fds, a, F_DUPFD, 5), Ok(5));
    assert_eq!(fcntl(&mut fds, a, F_DUPFD_CLOEXEC, 5), Ok(6));
    assert_eq!(fcntl(&mut fds, a, F_DUPFD, 5000), Err(Errno::EINVAL));
    assert_eq!(fcntl(&mut fds, a, F_SETFD, 0), Ok(0));
    assert_eq!(fcntl(&mut fds, a, F_GETFD, 0), Ok(0));
    assert_eq!(fcntl(&mut fds, a, F_SETFL, u64::from(O_NONBLOCK | O_APPEND | O_WRONLY)), Ok(0));
    let fl = fcntl(&mut fds, b, F_GETFL, 0).unwrap() as u32;
    assert_eq!(fl & (O_NONBLOCK | O_APPEND), O_NONBLOCK | O_APPEND, "status flags are shared");
    assert_eq!(fl & 3, O_RDONLY, "F_SETFL cannot change the access mode");
    assert_eq!(fcntl(&mut fds, a, 0xdead, 0), Err(Errno::EINVAL));
    // close-on-exec
    let closed = fds.close_on_exec();
    assert_eq!(closed.len(), 2);
    assert_eq!(fds.get(9).err(), Some(Errno::EBADF));
    assert_eq!(fds.get(6).err(), Some(Errno::EBADF));
    assert!(fds.get(a).is_ok());
}

#[test]
fn emfile_and_lowest_fd() {
    let (vfs, ctx, mut fds) = setup();
    fds.set_limit(4);
    for i in 0..4 {
        assert_eq!(open(&vfs, &ctx, &mut fds, "/dev/null", O_RDONLY, 0), Ok(i));
    }
    assert_eq!(open(&vfs, &ctx, &mut fds, "/tmp/new", O_CREAT | O_RDWR, 0o644), Err(Errno::EMFILE));
    assert_eq!(stat(&vfs, &ctx, "/tmp/new").err(), Some(Errno::ENOENT), "EMFILE before creating");
    close(&mut fds, 1).unwrap();
    assert_eq!(open(&vfs, &ctx, &mut fds, "/dev/null", O_RDONLY, 0), Ok(1));
    assert_eq!(dup2(&mut fds, 0, 4), Err(Errno::EBADF));
}

#[test]
fn getdents_lists_dot_entries_and_survives_unlinks() {
    let (vfs, ctx, mut fds) = setup();
    mkdir(&vfs, &ctx, "/d", 0o755).unwrap();
    for i in 0..20 {
        put(&vfs, &ctx, &format!("/d/file{i:02}"), b"x");
    }
    mkdir(&vfs, &ctx, "/d/sub", 0o755).unwrap();
    symlinkat(&vfs, &ctx, &fds, b"file00", AT_FDCWD, b"/d/link").unwrap();
    let names = list(&vfs, &ctx, "/d");
    assert_eq!(names.len(), 24);
    assert_eq!(&names[..3], &[".", "..", "file00"]);
    let fd = open(&vfs, &ctx, &mut fds, "/d", O_RDONLY | O_DIRECTORY, 0).unwrap();
    let mut buf = [0u8; 4096];
    let n = getdents64(&fds, fd, &mut buf).unwrap();
    let ents = parse_dents(&buf[..n]);
    let d_ino = stat(&vfs, &ctx, "/d").unwrap().st_ino;
    let root_ino = stat(&vfs, &ctx, "/").unwrap().st_ino;
    assert_eq!(ents[0].0, d_ino);
    assert_eq!(ents[1].0, root_ino);
    let types: std::collections::HashMap<_, _> = ents.iter().map(|e| (e.3.clone(), e.2)).collect();
    assert_eq!(types["sub"], 4);
    assert_eq!(types["link"], 10);
    assert_eq!(types["file03"], 8);
    assert_eq!(getdents64(&fds, fd, &mut buf), Ok(0));
    // Too small for one record.
    assert_eq!(lseek(&fds, fd, 0, SEEK_SET), Ok(0));
    assert_eq!(getdents64(&fds, fd, &mut buf[..8]), Err(Errno::EINVAL));
    // rm -rf pattern: read a few, unlink them, continue: nothing is skipped.
    let mut seen = Vec::new();
    loop {
        let n = getdents64(&fds, fd, &mut buf[..100]).unwrap();
        if n == 0 {
            break;
        }
        for e in parse_dents(&buf[..n]) {
            if e.3.starts_with("file") {
                unlinkat(&vfs, &ctx, &fds, fd, e.3.as_bytes(), 0).unwrap();
            }
            seen.push(e.3);
        }
    }
    assert_eq!(seen.len(), 24);
    assert_eq!(list(&vfs, &ctx, "/d"), [".", "..", "sub", "link"]);
    // Seeking back to a d_off resumes after that entry.
    lseek(&fds, fd, 0, SEEK_SET).unwrap();
    let n = getdents64(&fds, fd, &mut buf).unwrap();
    let ents = parse_dents(&buf[..n]);
    lseek(&fds, fd, ents[2].1, SEEK_SET).unwrap();
    let n = getdents64(&fds, fd, &mut buf).unwrap();
    assert_eq!(parse_dents(&buf[..n]).iter().map(|e| e.3.as_str()).collect::<Vec<_>>(), ["link"]);
    // ENOTDIR on files.
    let f = open(&vfs, &ctx, &mut fds, "/d/link", O_RDONLY, 0);
    assert_eq!(f.err(), Some(Errno::ENOENT), "dangling after unlink");
    let f = open(&vfs, &ctx, &mut fds, "/dev/null", O_RDONLY, 0).unwrap();
    assert_eq!(getdents64(&fds, f, &mut buf), Err(Errno::ENOTDIR));
    assert_eq!(read(&fds, fd, &mut buf), Err(Errno::EISDIR));
}

#[test]
fn directories_mkdir_rmdir_nlink() {
    let (vfs, ctx, fds) = setup();
    let root_links = stat(&vfs, &ctx, "/").unwrap().st_nlink;
    mkdir(&vfs, &ctx, "/a", 0o777).unwrap();
    assert_eq!(stat(&vfs, &ctx, "/a").unwrap().st_mode, S_IFDIR | 0o755);
    assert_eq!(stat(&vfs, &ctx, "/a").unwrap().st_nlink, 2);
    assert_eq!(stat(&vfs, &ctx, "/").unwrap().st_nlink, root_links + 1);
    mkdir(&vfs, &ctx, "/a/b", 0o700).unwrap();
    assert_eq!(stat(&vfs, &ctx, "/a").unwrap().st_nlink, 3);
    assert_eq!(mkdir(&vfs, &ctx, "/a/b", 0o700), Err(Errno::EEXIST));
    assert_eq!(mkdir(&vfs, &ctx, "/a/x/y", 0o700), Err(Errno::ENOENT));
    assert_eq!(mkdir(&vfs, &ctx, "/", 0o700), Err(Errno::EEXIST));
    assert_eq!(unlinkat(&vfs, &ctx, &fds, AT_FDCWD, b"/a", AT_REMOVEDIR), Err(Errno::ENOTEMPTY));
    assert_eq!(unlinkat(&vfs, &ctx, &fds, AT_FDCWD, b"/a", 0), Err(Errno::EISDIR));
    assert_eq!(unlinkat(&vfs, &ctx, &fds, AT_FDCWD, b"/", AT_REMOVEDIR), Err(Errno::EBUSY));
    assert_eq!(unlinkat(&vfs, &ctx, &fds, AT_FDCWD, b"/a/b", 0x1), Err(Errno::EINVAL));
    unlinkat(&vfs, &ctx, &fds, AT_FDCWD, b"/a/b", AT_REMOVEDIR).unwrap();
    assert_eq!(stat(&vfs, &ctx, "/a").unwrap().st_nlink, 2);
    unlinkat(&vfs, &ctx, &fds, AT_FDCWD, b"/a", AT_REMOVEDIR).unwrap();
    assert_eq!(stat(&vfs, &ctx, "/").unwrap().st_nlink, root_links);
}

#[test]
fn unlinked_open_file_keeps_data_until_close() {
    let (vfs, ctx, mut fds) = setup();
    let before = vfs.stats();
    let fd = open(&vfs, &ctx, &mut fds, "/tmp/x", O_CREAT | O_RDWR, 0o600).unwrap();
    write(&fds, fd, &vec![1u8; 10000]).unwrap();
    assert_eq!(vfs.stats().data_bytes, before.data_bytes + 3 * 4096);
    assert_eq!(vfs.stats().inodes, before.inodes + 1);
    unlinkat(&vfs, &ctx, &fds, AT_FDCWD, b"/tmp/x", 0).unwrap();
    assert_eq!(fstat(&fds, fd).unwrap().st_nlink, 0);
    let mut b = [0u8; 4];
    assert_eq!(pread64(&fds, fd, &mut b, 9996), Ok(4));
    assert_eq!(b, [1; 4]);
    close(&mut fds, fd).unwrap();
    assert_eq!(vfs.stats(), before, "inode and pages freed on last close");
}

#[test]
fn rename_semantics() {
    let (vfs, ctx, fds) = setup();
    let rn = |a: &str, b: &str, f: u32| renameat2(&vfs, &ctx, &fds, AT_FDCWD, a.as_bytes(), AT_FDCWD, b.as_bytes(), f);
    mkdir(&vfs, &ctx, "/d1", 0o755).unwrap();
    mkdir(&vfs, &ctx, "/d2", 0o755).unwrap();
    put(&vfs, &ctx, "/d1/f", b"one");
    put(&vfs, &ctx, "/d2/g", b"two");
    assert_eq!(rn("/d1/f", "/d2/g", RENAME_NOREPLACE), Err(Errno::EEXIST));
    assert_eq!(rn("/d1/f", "/d2/none", RENAME_EXCHANGE), Err(Errno::ENOENT));
    assert_eq!(rn("/d1/f", "/d2/g", RENAME_EXCHANGE | RENAME_NOREPLACE), Err(Errno::EINVAL));
    rn("/d1/f", "/d2/g", RENAME_EXCHANGE).unwrap();
    assert_eq!(read_whole_file(&vfs, &ctx, b"/d1/f").unwrap(), b"two");
    assert_eq!(read_whole_file(&vfs, &ctx, b"/d2/g").unwrap(), b"one");
    rn("/d1/f", "/d2/g", 0).unwrap();
    assert_eq!(stat(&vfs, &ctx, "/d1/f").err(), Some(Errno::ENOENT));
    assert_eq!(read_whole_file(&vfs, &ctx, b"/d2/g").unwrap(), b"two");
    // Directory moves update link counts and `..`.
    mkdir(&vfs, &ctx, "/d1/sub", 0o755).unwrap();
    put(&vfs, &ctx, "/d1/sub/inner", b"i");
    rn("/d1/sub", "/d2/sub", 0).unwrap();
    assert_eq!(stat(&vfs, &ctx, "/d1").unwrap().st_nlink, 2);
    assert_eq!(stat(&vfs, &ctx, "/d2").unwrap().st_nlink, 3);
    assert_eq!(stat(&vfs, &ctx, "/d2/sub/..").unwrap().st_ino, stat(&vfs, &ctx, "/d2").unwrap().st_ino);
    assert_eq!(rn("/d2", "/d2/sub/x", 0), Err(Errno::EINVAL));
    assert_eq!(rn("/d2/sub", "/d2", 0), Err(Errno::ENOTEMPTY));
    assert_eq!(rn("/d2/sub", "/d2/g", 0), Err(Errno::ENOTDIR));
    assert_eq!(rn("/d2/g", "/d2/sub", 0), Err(Errno::EISDIR));
    mkdir(&vfs, &ctx, "/d1/empty", 0o755).unwrap();
    assert_eq!(rn("/d1/empty", "/d2/sub", 0), Err(Errno::ENOTEMPTY));
    rn("/d2/sub", "/d1/empty", 0).unwrap();
    assert_eq!(stat(&vfs, &ctx, "/d1").unwrap().st_nlink, 3);
    assert_eq!(stat(&vfs, &ctx, "/d2").unwrap().st_nlink, 2);
    assert_eq!(read_whole_file(&vfs, &ctx, b"/d1/empty/inner").unwrap(), b"i");
    assert_eq!(rn("/d1/.", "/x", 0), Err(Errno::EBUSY));
    assert_eq!(rn("/d2/g", "/d1/..", RENAME_NOREPLACE), Err(Errno::EEXIST));
    // Same inode: nothing happens.
    linkat(&vfs, &ctx, &fds, AT_FDCWD, b"/d2/g", AT_FDCWD, b"/d2/h", 0).unwrap();
    rn("/d2/g", "/d2/h", 0).unwrap();
    assert_eq!(stat(&vfs, &ctx, "/d2/g").unwrap().st_nlink, 2);
}

#[test]
fn links_symlinks_readlink() {
    let (vfs, ctx, mut fds) = setup();
    put(&vfs, &ctx, "/f", b"content");
    linkat(&vfs, &ctx, &fds, AT_FDCWD, b"/f", AT_FDCWD, b"/g", 0).unwrap();
    assert_eq!(stat(&vfs, &ctx, "/f").unwrap().st_nlink, 2);
    assert_eq!(stat(&vfs, &ctx, "/f").unwrap().st_ino, stat(&vfs, &ctx, "/g").unwrap().st_ino);
    assert_eq!(linkat(&vfs, &ctx, &fds, AT_FDCWD, b"/tmp", AT_FDCWD, b"/t2", 0), Err(Errno::EPERM));
    assert_eq!(linkat(&vfs, &ctx, &fds, AT_FDCWD, b"/f", AT_FDCWD, b"/g", 0), Err(Errno::EEXIST));
    symlinkat(&vfs, &ctx, &fds, b"f", AT_FDCWD, b"/s").unwrap();
    assert_eq!(lstat(&vfs, &ctx, "/s").unwrap().st_mode, S_IFLNK | 0o777);
    assert_eq!(lstat(&vfs, &ctx, "/s").unwrap().st_size, 1);
    assert_eq!(symlinkat(&vfs, &ctx, &fds, b"", AT_FDCWD, b"/e"), Err(Errno::ENOENT));
    let mut buf = [0u8; 64];
    assert_eq!(readlinkat(&vfs, &ctx, &fds, AT_FDCWD, b"/s", &mut buf), Ok(1));
    assert_eq!(readlinkat(&vfs, &ctx, &fds, AT_FDCWD, b"/f", &mut buf), Err(Errno::EINVAL));
    assert_eq!(readlinkat(&vfs, &ctx, &fds, AT_FDCWD, b"/s", &mut []), Err(Errno::EINVAL));
    // linkat follows only with AT_SYMLINK_FOLLOW.
    linkat(&vfs, &ctx, &fds, AT_FDCWD, b"/s", AT_FDCWD, b"/s2", 0).unwrap();
    assert_eq!(lstat(&vfs, &ctx, "/s2").unwrap().st_mode & S_IFMT, S_IFLNK);
    linkat(&vfs, &ctx, &fds, AT_FDCWD, b"/s", AT_FDCWD, b"/f3", AT_SYMLINK_FOLLOW).unwrap();
    assert_eq!(stat(&vfs, &ctx, "/f").unwrap().st_nlink, 3);
    // O_PATH|O_NOFOLLOW on a symlink, readlinkat with an empty path.
    let p = open(&vfs, &ctx, &mut fds, "/s", O_PATH | O_NOFOLLOW, 0).unwrap();
    assert_eq!(readlinkat(&vfs, &ctx, &fds, p, b"", &mut buf), Ok(1));
    assert_eq!(fstat(&fds, p).unwrap().st_mode & S_IFMT, S_IFLNK);
    assert_eq!(open(&vfs, &ctx, &mut fds, "/s", O_RDONLY | O_NOFOLLOW, 0), Err(Errno::ELOOP));
    // linkat AT_EMPTY_PATH of an open file.
    let f = open(&vfs, &ctx, &mut fds, "/f", O_RDONLY, 0).unwrap();
    linkat(&vfs, &ctx, &fds, f, b"", AT_FDCWD, b"/f4", AT_EMPTY_PATH).unwrap();
    assert_eq!(stat(&vfs, &ctx, "/f4").unwrap().st_nlink, 4);
}

#[test]
fn symlink_resolution_and_eloop() {
    let (vfs, ctx, mut fds) = setup();
    mkdir(&vfs, &ctx, "/real", 0o755).unwrap();
    put(&vfs, &ctx, "/real/file", b"R");
    symlinkat(&vfs, &ctx, &fds, b"/real", AT_FDCWD, b"/abs").unwrap();
    symlinkat(&vfs, &ctx, &fds, b"../real/file", AT_FDCWD, b"/real/../rel").unwrap();
    assert_eq!(read_whole_file(&vfs, &ctx, b"/abs/file").unwrap(), b"R");
    assert_eq!(read_whole_file(&vfs, &ctx, b"/rel").unwrap(), b"R", "`..` at / stays at /");
    symlinkat(&vfs, &ctx, &fds, b"real/file", AT_FDCWD, b"/rel2").unwrap();
    assert_eq!(read_whole_file(&vfs, &ctx, b"/rel2").unwrap(), b"R");
    // A chain of 40 links resolves, 41 is ELOOP.
    for i in 0..41 {
        let target = if i == 40 { "real/file".to_string() } else { format!("c{}", i + 1) };
        symlinkat(&vfs, &ctx, &fds, target.as_bytes(), AT_FDCWD, format!("/c{i}").as_bytes()).unwrap();
    }
    assert_eq!(read_whole_file(&vfs, &ctx, b"/c1").unwrap(), b"R");
    assert_eq!(read_whole_file(&vfs, &ctx, b"/c0").unwrap_err(), Errno::ELOOP);
    symlinkat(&vfs, &ctx, &fds, b"loop", AT_FDCWD, b"/loop").unwrap();
    assert_eq!(open(&vfs, &ctx, &mut fds, "/loop", O_RDONLY, 0), Err(Errno::ELOOP));
    // O_CREAT through a dangling symlink creates its target.
    symlinkat(&vfs, &ctx, &fds, b"real/made", AT_FDCWD, b"/dangling").unwrap();
    open(&vfs, &ctx, &mut fds, "/dangling", O_CREAT | O_WRONLY, 0o600).unwrap();
    assert_eq!(stat(&vfs, &ctx, "/real/made").unwrap().st_mode, S_IFREG | 0o600);
    assert_eq!(open(&vfs, &ctx, &mut fds, "/abs", O_CREAT | O_EXCL | O_WRONLY, 0o600), Err(Errno::EEXIST));
    // Trailing slashes.
    assert_eq!(stat(&vfs, &ctx, "/real/file/").err(), Some(Errno::ENOTDIR));
    assert_eq!(lstat(&vfs, &ctx, "/abs/").unwrap().st_mode & S_IFMT, S_IFDIR);
    assert_eq!(lstat(&vfs, &ctx, "/abs").unwrap().st_mode & S_IFMT, S_IFLNK);
    // Length limits.
    let long = "x".repeat(256);
    assert_eq!(stat(&vfs, &ctx, &format!("/{long}")).err(), Some(Errno::ENAMETOOLONG));
    assert_eq!(stat(&vfs, &ctx, &"/".repeat(4096)).err(), Some(Errno::ENAMETOOLONG));
    assert!(stat(&vfs, &ctx, &"/".repeat(4095)).is_ok());
    assert_eq!(stat(&vfs, &ctx, "").err(), Some(Errno::ENOENT));
    // .. stops at the root.
    assert_eq!(stat(&vfs, &ctx, "/../../..").unwrap().st_ino, stat(&vfs, &ctx, "/").unwrap().st_ino);
}

#[test]
fn dirfd_relative_and_empty_path() {
    let (vfs, ctx, mut fds) = setup();
    mkdir(&vfs, &ctx, "/d", 0o755).unwrap();
    put(&vfs, &ctx, "/d/f", b"xyz");
    let d = open(&vfs, &ctx, &mut fds, "/d", O_RDONLY | O_DIRECTORY, 0).unwrap();
    let f = openat(&vfs, &ctx, &mut fds, d, b"f", O_RDONLY, 0).unwrap();
    assert_eq!(newfstatat(&vfs, &ctx, &fds, d, b"f", 0).unwrap().st_size, 3);
    assert_eq!(newfstatat(&vfs, &ctx, &fds, f, b"x", 0).err(), Some(Errno::ENOTDIR));
    assert_eq!(newfstatat(&vfs, &ctx, &fds, 42, b"x", 0).err(), Some(Errno::EBADF));
    assert!(newfstatat(&vfs, &ctx, &fds, 42, b"/d", 0).is_ok(), "absolute paths ignore dirfd");
    assert_eq!(newfstatat(&vfs, &ctx, &fds, f, b"", AT_EMPTY_PATH).unwrap().st_size, 3);
    assert_eq!(newfstatat(&vfs, &ctx, &fds, f, b"", 0).err(), Some(Errno::ENOENT));
    assert_eq!(newfstatat(&vfs, &ctx, &fds, f, b"", 0x1), Err(Errno::EINVAL));
    let sx = statx(&vfs, &ctx, &fds, d, b"f", 0, 0x7ff).unwrap();
    assert_eq!(sx.stx_size, 3);
    assert_eq!(sx.stx_mode as u32, S_IFREG | 0o644);
    assert_eq!(sx.stx_mask & 0x7ff, 0x7ff);
    assert_eq!(statx(&vfs, &ctx, &fds, d, b"f", 0, 0x8000_0000).err(), Some(Errno::EINVAL));
    let st = fstat(&fds, f).unwrap();
    assert_eq!(sx.stx_mtime.tv_sec, st.st_mtime);
    assert_eq!(st.as_bytes().len(), 144);
    assert_eq!(&st.as_bytes()[8..16], &st.st_ino.to_le_bytes());
}

#[test]
fn cwd_chdir_getcwd() {
    let (vfs, mut ctx, mut fds) = setup();
    mkdir(&vfs, &ctx, "/a", 0o755).unwrap();
    mkdir(&vfs, &ctx, "/a/b", 0o755).unwrap();
    let mut buf = [0u8; 64];
    assert_eq!(getcwd(&ctx, &mut buf), Ok(2));
    assert_eq!(&buf[..2], b"/\0");
    chdir(&vfs, &mut ctx, &fds, b"/a/b").unwrap();
    assert_eq!(getcwd(&ctx, &mut buf), Ok(5));
    assert_eq!(&buf[..5], b"/a/b\0");
    assert_eq!(getcwd(&ctx, &mut buf[..4]), Err(Errno::ERANGE));
    put(&vfs, &ctx, "rel", b"r");
    assert_eq!(read_whole_file(&vfs, &ctx, b"/a/b/rel").unwrap(), b"r");
    assert_eq!(chdir(&vfs, &mut ctx, &fds, b"rel"), Err(Errno::ENOTDIR));
    chdir(&vfs, &mut ctx, &fds, b"..").unwrap();
    assert_eq!(getcwd(&ctx, &mut buf), Ok(3));
    renameat2(&vfs, &ctx, &fds, AT_FDCWD, b"/a", AT_FDCWD, b"/z", 0).unwrap();
    assert_eq!(getcwd(&ctx, &mut buf), Ok(3));
    assert_eq!(&buf[..3], b"/z\0", "getcwd follows renames");
    let b = open(&vfs, &ctx, &mut fds, "b", O_PATH | O_DIRECTORY, 0).unwrap();
    fchdir(&mut ctx, &fds, b).unwrap();
    assert_eq!(getcwd(&ctx, &mut buf), Ok(5));
    unlinkat(&vfs, &ctx, &fds, AT_FDCWD, b"rel", 0).unwrap();
    unlinkat(&vfs, &ctx, &fds, AT_FDCWD, b"/z/b", AT_REMOVEDIR).unwrap();
    assert_eq!(getcwd(&ctx, &mut buf), Err(Errno::ENOENT));
    assert_eq!(open(&vfs, &ctx, &mut fds, "new", O_CREAT | O_WRONLY, 0o644), Err(Errno::ENOENT));
    // chroot: / and .. stay inside.
    let mut c2 = FsContext::new(&vfs);
    chroot(&vfs, &mut c2, &fds, b"/z").unwrap();
    chdir(&vfs, &mut c2, &fds, b"/").unwrap();
    assert_eq!(newfstatat(&vfs, &c2, &fds, AT_FDCWD, b"/..", 0).unwrap().st_ino, stat(&vfs, &ctx, "/z").unwrap().st_ino);
}

#[test]
fn permissions_for_non_root() {
    let (vfs, root, mut fds) = setup();
    mkdir(&vfs, &root, "/priv", 0o700).unwrap();
    put(&vfs, &root, "/priv/secret", b"s");
    put(&vfs, &root, "/ro", b"r");
    let mut user = FsContext::new(&vfs);
    user.uid = 1000;
    user.gid = 1000;
    assert_eq!(open(&vfs, &user, &mut fds, "/priv/secret", O_RDONLY, 0), Err(Errno::EACCES));
    assert_eq!(open(&vfs, &user, &mut fds, "/ro", O_WRONLY, 0), Err(Errno::EACCES));
    assert!(open(&vfs, &user, &mut fds, "/ro", O_RDONLY, 0).is_ok());
    assert_eq!(mkdirat(&vfs, &user, &fds, AT_FDCWD, b"/mine", 0o755), Err(Errno::EACCES));
    assert_eq!(faccessat(&vfs, &user, &fds, AT_FDCWD, b"/ro", 2, 0), Err(Errno::EACCES));
    assert_eq!(faccessat(&vfs, &user, &fds, AT_FDCWD, b"/ro", 4, 0), Ok(()));
    assert_eq!(faccessat(&vfs, &user, &fds, AT_FDCWD, b"/ro", 8, 0), Err(Errno::EINVAL));
    // Root: read/write pass, execute needs an x bit.
    assert_eq!(faccessat(&vfs, &root, &fds, AT_FDCWD, b"/priv/secret", 6, 0), Ok(()));
    assert_eq!(faccessat(&vfs, &root, &fds, AT_FDCWD, b"/priv/secret", 1, 0), Err(Errno::EACCES));
    assert_eq!(faccessat(&vfs, &root, &fds, AT_FDCWD, b"/priv", 1, 0), Ok(()));
    assert_eq!(fchmodat(&vfs, &user, &fds, AT_FDCWD, b"/ro", 0o777, 0), Err(Errno::EPERM));
    fchmodat(&vfs, &root, &fds, AT_FDCWD, b"/ro", 0o4755, 0).unwrap();
    assert_eq!(stat(&vfs, &root, "/ro").unwrap().st_mode, S_IFREG | 0o4755);
    assert_eq!(faccessat(&vfs, &root, &fds, AT_FDCWD, b"/ro", 1, 0), Ok(()));
    fchownat(&vfs, &root, &fds, AT_FDCWD, b"/ro", 1000, u32::MAX, 0).unwrap();
    let st = stat(&vfs, &root, "/ro").unwrap();
    assert_eq!((st.st_uid, st.st_gid, st.st_mode), (1000, 0, S_IFREG | 0o755), "chown clears set-uid");
    assert_eq!(fchownat(&vfs, &user, &fds, AT_FDCWD, b"/ro", 0, u32::MAX, 0), Err(Errno::EPERM));
    fchmodat(&vfs, &user, &fds, AT_FDCWD, b"/ro", 0o600, 0).unwrap();
    // Sticky /tmp: others cannot remove root's file.
    put(&vfs, &root, "/tmp/rootfile", b"x");
    assert_eq!(unlinkat(&vfs, &user, &fds, AT_FDCWD, b"/tmp/rootfile", 0), Err(Errno::EPERM));
    let ufd = open(&vfs, &user, &mut fds, "/tmp/userfile", O_CREAT | O_WRONLY, 0o644).unwrap();
    assert_eq!(fstat(&fds, ufd).unwrap().st_uid, 1000);
    unlinkat(&vfs, &user, &fds, AT_FDCWD, b"/tmp/userfile", 0).unwrap();
    // exec checks
    assert_eq!(open_exec(&vfs, &root, &fds, AT_FDCWD, b"/tmp", 0).err(), Some(Errno::EACCES));
    assert_eq!(open_exec(&vfs, &root, &fds, AT_FDCWD, b"/tmp/rootfile", 0).err(), Some(Errno::EACCES));
    assert_eq!(open_exec(&vfs, &root, &fds, AT_FDCWD, b"/nope", 0).err(), Some(Errno::ENOENT));
    assert_eq!(open_exec(&vfs, &root, &fds, AT_FDCWD, b"/tmp/rootfile/x", 0).err(), Some(Errno::ENOTDIR));
    assert_eq!(open_exec(&vfs, &user, &fds, AT_FDCWD, b"/priv/secret", 0).err(), Some(Errno::EACCES));
    fchmodat(&vfs, &root, &fds, AT_FDCWD, b"/tmp/rootfile", 0o755, 0).unwrap();
    assert!(open_exec(&vfs, &user, &fds, AT_FDCWD, b"/tmp/rootfile", 0).is_ok());
}

#[test]
fn utimens_and_times() {
    let (vfs, ctx, mut fds) = setup();
    put(&vfs, &ctx, "/f", b"x");
    let t = [Timespec::new(100, 5), Timespec::new(200, 6)];
    utimensat(&vfs, &ctx, &fds, AT_FDCWD, Some(b"/f"), Some(t), 0).unwrap();
    let st = stat(&vfs, &ctx, "/f").unwrap();
    assert_eq!((st.st_atime, st.st_atime_nsec, st.st_mtime, st.st_mtime_nsec), (100, 5, 200, 6));
    let omit = [Timespec::new(0, UTIME_OMIT), Timespec::new(0, UTIME_NOW)];
    utimensat(&vfs, &ctx, &fds, AT_FDCWD, Some(b"/f"), Some(omit), 0).unwrap();
    let st2 = stat(&vfs, &ctx, "/f").unwrap();
    assert_eq!(st2.st_atime, 100);
    assert!(st2.st_mtime > 1_700_000_000);
    assert_eq!(
        utimensat(&vfs, &ctx, &fds, AT_FDCWD, Some(b"/f"), Some([Timespec::new(0, 1_000_000_000); 2]), 0),
        Err(Errno::EINVAL)
    );
    let fd = open(&vfs, &ctx, &mut fds, "/f", O_RDONLY, 0).unwrap();
    utimensat(&vfs, &ctx, &fds, fd, None, Some(t), 0).unwrap();
    assert_eq!(fstat(&fds, fd).unwrap().st_mtime, 200);
    // Writes update mtime and ctime.
    let w = open(&vfs, &ctx, &mut fds, "/f", O_WRONLY, 0).unwrap();
    write(&fds, w, b"y").unwrap();
    let st3 = fstat(&fds, w).unwrap();
    assert!(st3.st_mtime > 200 && st3.st_ctime >= st3.st_mtime);
}

#[test]
fn devices_and_tty_ioctls() {
    struct Console(std::sync::Mutex<Vec<u8>>);
    impl CharDevice for Console {
        fn read(&self, buf: &mut [u8]) -> Result<usize> {
            buf[..2].copy_from_slice(b"in");
            Ok(2)
        }
        fn write(&self, buf: &[u8]) -> Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn is_tty(&self) -> bool {
            true
        }
    }
    let (vfs, ctx, mut fds) = setup();
    assert_eq!(open(&vfs, &ctx, &mut fds, "/dev/console", O_RDWR, 0), Err(Errno::ENXIO));
    let con = Arc::new(Console(Default::default()));
    vfs.register_device(5, 1, con.clone());
    let c = open(&vfs, &ctx, &mut fds, "/dev/console", O_RDWR, 0).unwrap();
    assert_eq!(write(&fds, c, b"hi\n"), Ok(3));
    assert_eq!(con.0.lock().unwrap().as_slice(), b"hi\n");
    let mut b = [0u8; 8];
    assert_eq!(read(&fds, c, &mut b), Ok(2));
    assert_eq!(lseek(&fds, c, 0, SEEK_SET), Err(Errno::ESPIPE));
    let st = fstat(&fds, c).unwrap();
    assert_eq!(st.st_mode, S_IFCHR | 0o600);
    assert_eq!(st.st_rdev, encode_dev(5, 1));
    let mut t = [0u8; 36];
    assert_eq!(ioctl(&mut fds, c, ioctls::TCGETS, &mut t), Ok(0));
    let termios = Termios::from_bytes(&t);
    assert_ne!(termios.c_lflag & 0o2, 0, "ICANON by default");
    let mut raw = termios;
    raw.c_lflag &= !0o12;
    let mut tb = raw.to_bytes();
    assert_eq!(ioctl(&mut fds, c, ioctls::TCSETS, &mut tb), Ok(0));
    let c2 = open(&vfs, &ctx, &mut fds, "/dev/console", O_RDWR, 0).unwrap();
    assert_eq!(ioctl(&mut fds, c2, ioctls::TCGETS, &mut t), Ok(0));
    assert_eq!(Termios::from_bytes(&t), raw, "state is per device");
    assert_eq!(vfs.tty_state(5, 1).lock().termios, raw);
    let mut ws = [0u8; 8];
    ioctl(&mut fds, c, ioctls::TIOCGWINSZ, &mut ws).unwrap();
    assert_eq!(&ws[..4], &[24, 0, 80, 0]);
    let mut pg = 42i32.to_le_bytes();
    ioctl(&mut fds, c, ioctls::TIOCSPGRP, &mut pg).unwrap();
    let mut pg2 = [0u8; 4];
    ioctl(&mut fds, c, ioctls::TIOCGPGRP, &mut pg2).unwrap();
    assert_eq!(i32::from_le_bytes(pg2), 42);
    assert_eq!(ioctl(&mut fds, c, ioctls::TCGETS, &mut [0u8; 10]), Err(Errno::EFAULT));
    assert_eq!(ioctl(&mut fds, c, 0x1234, &mut []), Err(Errno::ENOTTY));
    // Non-ttys.
    let n = open(&vfs, &ctx, &mut fds, "/dev/null", O_RDWR, 0).unwrap();
    assert_eq!(ioctl(&mut fds, n, ioctls::TCGETS, &mut t), Err(Errno::ENOTTY));
    assert_eq!(read(&fds, n, &mut b), Ok(0));
    assert_eq!(write(&fds, n, b"gone"), Ok(4));
    assert_eq!(lseek(&fds, n, 100, SEEK_SET), Ok(0));
    let z = open(&vfs, &ctx, &mut fds, "/dev/zero", O_RDONLY, 0).unwrap();
    b = [9; 8];
    assert_eq!(read(&fds, z, &mut b), Ok(8));
    assert_eq!(b, [0; 8]);
    vfs.seed_random(&[7; 32]);
    let u = open(&vfs, &ctx, &mut fds, "/dev/urandom", O_RDONLY, 0).unwrap();
    let mut r1 = [0u8; 32];
    read(&fds, u, &mut r1).unwrap();
    assert_ne!(r1, [0; 32]);
    // FIONREAD on a file, FIOCLEX/FIONBIO on any fd.
    put(&vfs, &ctx, "/f", b"0123456789");
    let f = open(&vfs, &ctx, &mut fds, "/f", O_RDONLY, 0).unwrap();
    lseek(&fds, f, 4, SEEK_SET).unwrap();
    let mut avail = [0u8; 4];
    ioctl(&mut fds, f, ioctls::FIONREAD, &mut avail).unwrap();
    assert_eq!(i32::from_le_bytes(avail), 6);
    ioctl(&mut fds, f, ioctls::FIOCLEX, &mut []).unwrap();
    assert_eq!(fds.cloexec(f), Ok(true));
    ioctl(&mut fds, f, ioctls::FIONBIO, &mut 1i32.to_le_bytes()).unwrap();
    assert!(fds.get(f).unwrap().is_nonblocking());
    assert_eq!(ioctl_arg_size(ioctls::TCGETS), Some(36));
}

#[test]
fn custom_file_ops_in_fd_table() {
    struct Pipe;
    impl FileOps for Pipe {
        fn read(&self, buf: &mut [u8], flags: u32) -> Result<usize> {
            if flags & O_NONBLOCK != 0 {
                return Err(Errno::EAGAIN);
            }
            buf[0] = b'p';
            Ok(1)
        }
        fn stat(&self) -> Stat {
            Stat { st_mode: 0o010600, st_ino: 77, ..Default::default() }
        }
    }
    let (_vfs, _ctx, mut fds) = setup();
    let fd = fds.alloc(OpenFile::new_custom(Arc::new(Pipe), O_RDONLY | O_CLOEXEC), true, 0).unwrap();
    let mut b = [0u8; 2];
    assert_eq!(read(&fds, fd, &mut b), Ok(1));
    assert_eq!(write(&fds, fd, b"x"), Err(Errno::EBADF));
    assert_eq!(lseek(&fds, fd, 0, SEEK_SET), Err(Errno::ESPIPE));
    assert_eq!(fstat(&fds, fd).unwrap().st_ino, 77);
    fcntl(&mut fds, fd, F_SETFL, u64::from(O_NONBLOCK)).unwrap();
    assert_eq!(read(&fds, fd, &mut b), Err(Errno::EAGAIN));
    assert_eq!(fcntl(&mut fds, fd, F_GETFL, 0).map(|f| f as u32 & O_CLOEXEC), Ok(0));
}

#[test]
fn truncate_statfs_fsync_mknod() {
    let (vfs, ctx, mut fds) = setup();
    put(&vfs, &ctx, "/f", b"0123456789");
    truncate(&vfs, &ctx, &fds, b"/f", 4).unwrap();
    assert_eq!(read_whole_file(&vfs, &ctx, b"/f").unwrap(), b"0123");
    truncate(&vfs, &ctx, &fds, b"/f", 6).unwrap();
    assert_eq!(read_whole_file(&vfs, &ctx, b"/f").unwrap(), b"0123\0\0");
    assert_eq!(truncate(&vfs, &ctx, &fds, b"/tmp", 0), Err(Errno::EISDIR));
    assert_eq!(truncate(&vfs, &ctx, &fds, b"/f", -1), Err(Errno::EINVAL));
    let sfs = statfs(&vfs, &ctx, &fds, b"/").unwrap();
    assert_eq!(sfs.f_type, 0x0102_1994);
    assert_eq!(sfs.f_bsize, 4096);
    assert_eq!(sfs.f_namelen, 255);
    vfs.set_data_limit(8192);
    let fd = open(&vfs, &ctx, &mut fds, "/big", O_CREAT | O_WRONLY, 0o644).unwrap();
    assert_eq!(write(&fds, fd, &[0u8; 8192]), Err(Errno::ENOSPC));
    assert_eq!(fstatfs(&vfs, &fds, fd).unwrap().f_blocks, 2);
    assert_eq!(fsync(&fds, fd), Ok(()));
    mknodat(&vfs, &ctx, &fds, AT_FDCWD, b"/dev/mynull", S_IFCHR | 0o666, 0x103).unwrap();
    assert_eq!(stat(&vfs, &ctx, "/dev/mynull").unwrap().st_rdev, encode_dev(1, 3));
    let n = open(&vfs, &ctx, &mut fds, "/dev/mynull", O_WRONLY, 0).unwrap();
    assert_eq!(write(&fds, n, b"abc"), Ok(3));
    assert_eq!(fsync(&fds, n), Err(Errno::EINVAL));
    assert_eq!(mknodat(&vfs, &ctx, &fds, AT_FDCWD, b"/dir", S_IFDIR | 0o755, 0), Err(Errno::EPERM));
    mknodat(&vfs, &ctx, &fds, AT_FDCWD, b"/fifo", 0o010644, 0).unwrap();
    assert_eq!(open(&vfs, &ctx, &mut fds, "/fifo", O_RDONLY | O_NONBLOCK, 0), Err(Errno::ENXIO));
}

#[test]
fn large_file_tens_of_mib() {
    let (vfs, ctx, mut fds) = setup();
    let fd = open(&vfs, &ctx, &mut fds, "/big", O_CREAT | O_RDWR, 0o644).unwrap();
    let chunk: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
    for _ in 0..40 {
        assert_eq!(write(&fds, fd, &chunk), Ok(chunk.len()));
    }
    assert_eq!(fstat(&fds, fd).unwrap().st_size, 40 << 20);
    assert_eq!(vfs.stats().data_bytes, 40 << 20);
    let data = read_whole_file(&vfs, &ctx, b"/big").unwrap();
    assert_eq!(data.len(), 40 << 20);
    assert_eq!(&data[(39 << 20)..], &chunk[..]);
    // Sparse: a write far out costs one page.
    let s = open(&vfs, &ctx, &mut fds, "/sparse", O_CREAT | O_RDWR, 0o644).unwrap();
    pwrite64(&fds, s, b"end", 1 << 40).unwrap();
    assert_eq!(fstat(&fds, s).unwrap().st_blocks, 8);
    assert_eq!(lseek(&fds, s, 0, SEEK_DATA), Ok(1 << 40));
    assert_eq!(lseek(&fds, s, 0, SEEK_HOLE), Ok(0));
    assert_eq!(lseek(&fds, s, (1 << 40) + 3, SEEK_DATA), Err(Errno::ENXIO));
}

#[test]
fn standard_nodes_leave_existing_alone() {
    let (vfs, ctx, mut fds) = setup();
    put(&vfs, &ctx, "/dev/null2", b"");
    fchmodat(&vfs, &ctx, &fds, AT_FDCWD, b"/tmp", 0o700, 0).unwrap();
    vfs.create_standard_nodes().unwrap();
    assert_eq!(stat(&vfs, &ctx, "/tmp").unwrap().st_mode, S_IFDIR | 0o700);
    assert_eq!(stat(&vfs, &ctx, "/dev/null").unwrap().st_rdev, encode_dev(1, 3));
    assert_eq!(stat(&vfs, &ctx, "/proc").unwrap().st_mode & S_IFMT, S_IFDIR);
    let names = list(&vfs, &ctx, "/dev");
    for n in ["null", "zero", "random", "urandom", "tty", "console", "null2"] {
        assert!(names.iter().any(|x| x == n), "{n} missing");
    }
    assert!(open(&vfs, &ctx, &mut fds, "/dev/random", O_RDONLY, 0).is_ok());
}

#[test]
fn vfs_is_shared_between_threads() {
    let (vfs, ctx, _) = setup();
    std::thread::scope(|s| {
        for t in 0..4 {
            let (vfs, ctx) = (vfs.clone(), ctx.clone());
            s.spawn(move || {
                let mut fds = FdTable::new();
                let dir = format!("/tmp/t{t}");
                mkdirat(&vfs, &ctx, &fds, AT_FDCWD, dir.as_bytes(), 0o755).unwrap();
                for i in 0..200 {
                    let p = format!("{dir}/f{i}");
                    let fd = open(&vfs, &ctx, &mut fds, &p, O_CREAT | O_WRONLY, 0o644).unwrap();
                    write(&fds, fd, p.as_bytes()).unwrap();
                    close(&mut fds, fd).unwrap();
                    let q = format!("/tmp/shared{}", i % 7);
                    let _ = renameat2(&vfs, &ctx, &fds, AT_FDCWD, p.as_bytes(), AT_FDCWD, q.as_bytes(), 0);
                }
            });
        }
    });
    let names = list(&vfs, &ctx, "/tmp");
    assert_eq!(names.iter().filter(|n| n.starts_with("shared")).count(), 7);
    for i in 0..7 {
        let d = read_whole_file(&vfs, &ctx, format!("/tmp/shared{i}").as_bytes()).unwrap();
        assert!(d.starts_with(b"/tmp/t"));
    }
}

#[test]
fn fifos_open_through_the_kernel_opener() {
    use std::collections::HashMap;
    use std::sync::Mutex;
    struct Pipe(Mutex<Vec<u8>>);
    impl FileOps for Pipe {
        fn read(&self, buf: &mut [u8], _flags: u32) -> Result<usize> {
            let mut q = self.0.lock().unwrap();
            let n = q.len().min(buf.len());
            buf[..n].copy_from_slice(&q[..n]);
            q.drain(..n);
            Ok(n)
        }
        fn write(&self, buf: &[u8], _flags: u32) -> Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn stat(&self) -> Stat {
            Stat::default()
        }
    }
    #[derive(Default)]
    struct Opener(Mutex<HashMap<u64, Arc<Pipe>>>);
    impl FifoOpener for Opener {
        fn open_fifo(&self, fifo: &InodeRef, flags: u32) -> Result<Arc<dyn FileOps>> {
            if flags & O_NONBLOCK != 0 && flags & 3 == O_WRONLY {
                return Err(Errno::ENXIO);
            }
            Ok(self.0.lock().unwrap().entry(fifo.ino()).or_insert_with(|| Arc::new(Pipe(Mutex::default()))).clone())
        }
    }
    let (vfs, ctx, mut fds) = setup();
    mknodat(&vfs, &ctx, &fds, AT_FDCWD, b"/tmp/fifo", 0o010666, 0).unwrap();
    assert_eq!(open(&vfs, &ctx, &mut fds, "/tmp/fifo", O_RDONLY, 0), Err(Errno::ENXIO), "no opener yet");
    vfs.set_fifo_opener(Arc::new(Opener::default()));
    let r = open(&vfs, &ctx, &mut fds, "/tmp/fifo", O_RDONLY, 0).unwrap();
    let w = open(&vfs, &ctx, &mut fds, "/tmp/fifo", O_WRONLY, 0).unwrap();
    assert_eq!(open(&vfs, &ctx, &mut fds, "/tmp/fifo", O_WRONLY | O_NONBLOCK, 0), Err(Errno::ENXIO));
    assert_eq!(write(&fds, w, b"through"), Ok(7));
    let mut b = [0u8; 16];
    assert_eq!(read(&fds, r, &mut b), Ok(7));
    assert_eq!(&b[..7], b"through");
    assert_eq!(read(&fds, w, &mut b), Err(Errno::EBADF));
    assert_eq!(lseek(&fds, r, 0, SEEK_SET), Err(Errno::ESPIPE));
    assert_eq!(pread64(&fds, r, &mut b, 0), Err(Errno::ESPIPE));
    let st = fstat(&fds, r).unwrap();
    assert_eq!(st.st_mode, 0o010644, "fstat shows the FIFO inode (umask applied)");
    fchmod(&ctx, &fds, r, 0o600).unwrap();
    assert_eq!(stat(&vfs, &ctx, "/tmp/fifo").unwrap().st_mode, 0o010600);
    assert_eq!(fsync(&fds, r), Err(Errno::EINVAL));
}
