//! Differential test: the same sequence of path operations run on the host kernel (in a
//! temporary directory, through libc `*at` calls) and on guest-fs must give the same
//! results and errno values.

mod common;

use common::*;
use guest_fs::{Errno, FdTable, FsContext, Vfs};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;

/// One operation; paths are relative to the test directory.
#[derive(Clone, Copy, Debug)]
enum Op {
    Mkdir(&'static str, u32),
    Open(&'static str, u32, u32),
    Put(&'static str, &'static str),
    Unlink(&'static str),
    Rmdir(&'static str),
    Rename(&'static str, &'static str, u32),
    Symlink(&'static str, &'static str),
    Link(&'static str, &'static str, u32),
    Stat(&'static str),
    Lstat(&'static str),
    Readlink(&'static str),
    Access(&'static str, i32),
    Chmod(&'static str, u32),
    Truncate(&'static str, i64),
}

type Outcome = Result<String, i32>;

fn kind(mode: u32) -> &'static str {
    match mode & S_IFMT {
        S_IFREG => "reg",
        S_IFDIR => "dir",
        S_IFLNK => "lnk",
        S_IFCHR => "chr",
        _ => "other",
    }
}

/// Whether the host directory is on tmpfs, whose directory sizes and link counts guest-fs
/// reproduces; other filesystems differ there, so those fields are compared only on tmpfs.
static HOST_TMPFS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn summary(mode: u32, size: i64, nlink: u64) -> String {
    match mode & S_IFMT {
        S_IFDIR if HOST_TMPFS.load(std::sync::atomic::Ordering::Relaxed) => {
            format!("dir {:o} size={size} nlink={nlink}", mode & 0o7777)
        }
        S_IFDIR => format!("dir {:o}", mode & 0o7777),
        S_IFLNK => format!("lnk {size}"),
        _ => format!("{} {:o} size={size} nlink={nlink}", kind(mode), mode & 0o7777),
    }
}

struct Host {
    base: i32,
    root: std::path::PathBuf,
}

fn c(p: &str) -> CString {
    CString::new(p).unwrap()
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn check(r: i32) -> Result<(), i32> {
    if r < 0 { Err(errno()) } else { Ok(()) }
}

impl Host {
    fn new() -> Self {
        // Prefer tmpfs (/dev/shm), the filesystem guest-fs imitates.
        let parent = ["/dev/shm"]
            .into_iter()
            .map(std::path::PathBuf::from)
            .find(|p| std::fs::create_dir(p.join(format!("guestfs-probe-{}", std::process::id()))).is_ok())
            .inspect(|p| {
                let _ = std::fs::remove_dir(p.join(format!("guestfs-probe-{}", std::process::id())));
            })
            .unwrap_or_else(std::env::temp_dir);
        let root = parent.join(format!("guestfs-diff-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir(&root).unwrap();
        let cr = CString::new(root.as_os_str().as_bytes()).unwrap();
        // SAFETY: `cr` is a valid NUL-terminated path.
        let base = unsafe { libc::open(cr.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY) };
        assert!(base >= 0);
        // SAFETY: zeroed `statfs` is a valid value to be overwritten by the kernel.
        let mut sfs: libc::statfs = unsafe { std::mem::zeroed() };
        // SAFETY: valid fd and out pointer.
        let tmpfs = unsafe { libc::fstatfs(base, &mut sfs) } == 0 && sfs.f_type == libc::TMPFS_MAGIC;
        HOST_TMPFS.store(tmpfs, std::sync::atomic::Ordering::Relaxed);
        eprintln!("host directory {} (tmpfs: {tmpfs})", root.display());
        Self { base, root }
    }

    fn stat(&self, p: &str, flags: i32) -> Outcome {
        // SAFETY: zeroed `stat` is a valid value to be overwritten by the kernel.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: valid dirfd, NUL-terminated path, valid out pointer.
        check(unsafe { libc::fstatat(self.base, c(p).as_ptr(), &mut st, flags) })?;
        Ok(summary(st.st_mode, st.st_size, st.st_nlink))
    }

    fn run(&self, op: Op) -> Outcome {
        // SAFETY: in every call below the dirfd is open, paths are NUL-terminated CStrings
        // that outlive the call, and buffers are valid for their stated lengths.
        unsafe {
            match op {
                Op::Mkdir(p, m) => check(libc::mkdirat(self.base, c(p).as_ptr(), m)).map(|_| String::new()),
                Op::Open(p, f, m) => {
                    let fd = libc::openat(self.base, c(p).as_ptr(), f as i32, m);
                    check(fd)?;
                    let mut st: libc::stat = std::mem::zeroed();
                    libc::fstat(fd, &mut st);
                    libc::close(fd);
                    Ok(kind(st.st_mode).to_string())
                }
                Op::Put(p, data) => {
                    let fd = libc::openat(self.base, c(p).as_ptr(), libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC, 0o644);
                    check(fd)?;
                    let n = libc::write(fd, data.as_ptr().cast(), data.len());
                    libc::close(fd);
                    Ok(format!("{n}"))
                }
                Op::Unlink(p) => check(libc::unlinkat(self.base, c(p).as_ptr(), 0)).map(|_| String::new()),
                Op::Rmdir(p) => check(libc::unlinkat(self.base, c(p).as_ptr(), libc::AT_REMOVEDIR)).map(|_| String::new()),
                Op::Rename(a, b, f) => check(libc::syscall(
                    libc::SYS_renameat2,
                    self.base,
                    c(a).as_ptr(),
                    self.base,
                    c(b).as_ptr(),
                    f,
                ) as i32)
                .map(|_| String::new()),
                Op::Symlink(t, p) => check(libc::symlinkat(c(t).as_ptr(), self.base, c(p).as_ptr())).map(|_| String::new()),
                Op::Link(a, b, f) => {
                    check(libc::linkat(self.base, c(a).as_ptr(), self.base, c(b).as_ptr(), f as i32)).map(|_| String::new())
                }
                Op::Stat(p) => self.stat(p, 0),
                Op::Lstat(p) => self.stat(p, libc::AT_SYMLINK_NOFOLLOW),
                Op::Readlink(p) => {
                    let mut buf = [0u8; 256];
                    let n = libc::readlinkat(self.base, c(p).as_ptr(), buf.as_mut_ptr().cast(), buf.len());
                    if n < 0 {
                        return Err(errno());
                    }
                    Ok(String::from_utf8_lossy(&buf[..n as usize]).into_owned())
                }
                Op::Access(p, m) => check(libc::faccessat(self.base, c(p).as_ptr(), m, 0)).map(|_| String::new()),
                Op::Chmod(p, m) => check(libc::fchmodat(self.base, c(p).as_ptr(), m, 0)).map(|_| String::new()),
                Op::Truncate(p, len) => {
                    let full = self.root.join(p);
                    let cf = CString::new(full.as_os_str().as_bytes()).unwrap();
                    check(libc::truncate(cf.as_ptr(), len)).map(|_| String::new())
                }
            }
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        // SAFETY: closing our own fd.
        unsafe { libc::close(self.base) };
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

struct Guest {
    vfs: std::sync::Arc<Vfs>,
    ctx: FsContext,
    fds: FdTable,
    base: i32,
}

fn gerr<T>(r: guest_fs::Result<T>) -> Result<T, i32> {
    r.map_err(|e: Errno| e.0 as i32)
}

impl Guest {
    fn new() -> Self {
        let (vfs, mut ctx, mut fds) = setup();
        guest_fs::mkdirat(&vfs, &ctx, &fds, guest_fs::AT_FDCWD, b"/base", 0o755).unwrap();
        guest_fs::chdir(&vfs, &mut ctx, &fds, b"/").unwrap();
        let base = open(&vfs, &ctx, &mut fds, "/base", O_RDONLY | O_DIRECTORY, 0).unwrap();
        Self { vfs, ctx, fds, base }
    }

    fn stat(&self, p: &str, flags: u32) -> Outcome {
        let st = gerr(guest_fs::newfstatat(&self.vfs, &self.ctx, &self.fds, self.base, p.as_bytes(), flags))?;
        Ok(summary(st.st_mode, st.st_size, st.st_nlink))
    }

    fn run(&mut self, op: Op) -> Outcome {
        let (v, c, b) = (&*self.vfs, &self.ctx, self.base);
        let none = |r: guest_fs::Result<()>| gerr(r).map(|_| String::new());
        match op {
            Op::Mkdir(p, m) => none(guest_fs::mkdirat(v, c, &self.fds, b, p.as_bytes(), m)),
            Op::Open(p, f, m) => {
                let fd = gerr(guest_fs::openat(v, c, &mut self.fds, b, p.as_bytes(), f, m))?;
                let st = guest_fs::fstat(&self.fds, fd).unwrap();
                guest_fs::close(&mut self.fds, fd).unwrap();
                Ok(kind(st.st_mode).to_string())
            }
            Op::Put(p, data) => {
                let fd = gerr(guest_fs::openat(v, c, &mut self.fds, b, p.as_bytes(), O_CREAT | O_WRONLY | O_TRUNC, 0o644))?;
                let n = guest_fs::write(&self.fds, fd, data.as_bytes()).unwrap();
                guest_fs::close(&mut self.fds, fd).unwrap();
                Ok(format!("{n}"))
            }
            Op::Unlink(p) => none(guest_fs::unlinkat(v, c, &self.fds, b, p.as_bytes(), 0)),
            Op::Rmdir(p) => none(guest_fs::unlinkat(v, c, &self.fds, b, p.as_bytes(), AT_REMOVEDIR)),
            Op::Rename(a, n, f) => none(guest_fs::renameat2(v, c, &self.fds, b, a.as_bytes(), b, n.as_bytes(), f)),
            Op::Symlink(t, p) => none(guest_fs::symlinkat(v, c, &self.fds, t.as_bytes(), b, p.as_bytes())),
            Op::Link(a, n, f) => none(guest_fs::linkat(v, c, &self.fds, b, a.as_bytes(), b, n.as_bytes(), f)),
            Op::Stat(p) => self.stat(p, 0),
            Op::Lstat(p) => self.stat(p, AT_SYMLINK_NOFOLLOW),
            Op::Readlink(p) => {
                let mut buf = [0u8; 256];
                let n = gerr(guest_fs::readlinkat(v, c, &self.fds, b, p.as_bytes(), &mut buf))?;
                Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
            }
            Op::Access(p, m) => none(guest_fs::faccessat(v, c, &self.fds, b, p.as_bytes(), m as u32, 0)),
            Op::Chmod(p, m) => none(guest_fs::fchmodat(v, c, &self.fds, b, p.as_bytes(), m, 0)),
            Op::Truncate(p, len) => {
                let full = format!("/base/{p}");
                none(guest_fs::truncate(v, c, &self.fds, full.as_bytes(), len))
            }
        }
    }
}

fn long_name(n: usize) -> &'static str {
    Box::leak("n".repeat(n).into_boxed_str())
}

fn script() -> Vec<Op> {
    use Op::*;
    let rd = O_RDONLY;
    vec![
        Mkdir("d", 0o755),
        Mkdir("d", 0o755),
        Mkdir("d/", 0o755),
        Mkdir("d2/", 0o700),
        Mkdir("d2/.", 0o700),
        Mkdir("d2/..", 0o700),
        Mkdir("missing/x", 0o755),
        Open("d/f", O_CREAT | O_WRONLY, 0o640),
        Open("d/f", O_CREAT | O_EXCL | O_WRONLY, 0o640),
        Open("missing/f", O_CREAT | O_WRONLY, 0o640),
        Open("d/f/x", O_CREAT | O_WRONLY, 0o640),
        Open("d/f/", rd, 0),
        Open("d/f/", O_CREAT | O_WRONLY, 0o644),
        Open("d/", O_CREAT | O_WRONLY, 0o644),
        Open("d", O_CREAT | rd, 0o644),
        Open("newfile/", O_CREAT | O_WRONLY, 0o644),
        Open(".", O_CREAT | rd, 0o644),
        Open(".", O_CREAT | O_EXCL | rd, 0o644),
        Open("d", O_WRONLY, 0),
        Open("d", O_RDWR, 0),
        Open("d", rd | O_TRUNC, 0),
        Open("d", rd, 0),
        Open("d/f", O_DIRECTORY | rd, 0),
        Open("", rd, 0),
        Put("d/f", "hello"),
        Stat("d/f"),
        Stat("d/f/"),
        Stat("d/./f"),
        Stat("d/../d/f"),
        Stat("d/f/.."),
        Stat("d/nope/.."),
        Symlink("d/f", "ls"),
        Symlink("nowhere", "dangling"),
        Symlink("loop2", "loop1"),
        Symlink("loop1", "loop2"),
        Symlink("d", "ld"),
        Symlink("x", "ls"),
        Symlink("x", "d2/"),
        Symlink("x", "newlink/"),
        Open("ls", rd, 0),
        Open("ls", rd | O_NOFOLLOW, 0),
        Open("ls", O_PATH | O_NOFOLLOW, 0),
        Open("ls/", rd, 0),
        Open("dangling", rd, 0),
        Open("dangling", O_CREAT | O_EXCL | O_WRONLY, 0o600),
        Open("dangling", O_CREAT | O_WRONLY, 0o600),
        Stat("nowhere"),
        Open("loop1", rd, 0),
        Open("loop1", O_CREAT | O_WRONLY, 0o600),
        Stat("loop1"),
        Lstat("loop1"),
        Open("ld/f", rd, 0),
        Stat("ld/"),
        Lstat("ld"),
        Lstat("ld/"),
        Lstat("ls/"),
        Stat("ls/.."),
        Readlink("ls"),
        Readlink("d"),
        Readlink("ld/"),
        Readlink("missing"),
        Unlink("ld/"),
        Rmdir("ld"),
        Rmdir("ld/"),
        Mkdir("d/sub", 0o755),
        Put("d/sub/inner", "i"),
        Rmdir("d"),
        Unlink("d"),
        Rmdir("d/f"),
        Rmdir("d/sub/."),
        Rmdir("d/sub/.."),
        Rmdir("missing"),
        Unlink("missing/"),
        Unlink("d/f/"),
        Unlink("."),
        Unlink(".."),
        Rename("d/f", "d/sub", 0),
        Rename("d/sub", "d/f", 0),
        Rename("d", "d/sub/x", 0),
        Rename("d/sub", "d/sub", 0),
        Rename("d/sub", "d/sub2", 0),
        Rename("d/f/", "d/g", 0),
        Rename("d/f", "d/g/", 0),
        Rename("d/f", "d/g", 0),
        Rename("d/missing", "d/x", 0),
        Rename("d/g", "d/g", 0),
        Rename(".", "x", 0),
        Rename("d/g", "..", 0),
        Rename("d/g", "..", RENAME_NOREPLACE),
        Rename("d/g", "nowhere", RENAME_NOREPLACE),
        Rename("d/g", "d/nothere", RENAME_EXCHANGE),
        Rename("d/g", "nowhere", RENAME_EXCHANGE),
        Stat("d/g"),
        Stat("nowhere"),
        Rename("d/sub2", "d2", 0),
        Mkdir("empty", 0o755),
        Rename("d/sub2", "empty", 0),
        Stat("empty/inner"),
        Rename("empty/", "d3/", 0),
        Rename("d/g", "ls", 0),
        Lstat("ls"),
        Link("ls", "hard", 0),
        Stat("hard"),
        Link("d", "d4", 0),
        Link("ls", "hard", 0),
        Link("ls", "newdir/", 0),
        Link("missing", "x", 0),
        Link("dangling", "dl", 0),
        Lstat("dl"),
        Link("dangling", "dl2", AT_SYMLINK_FOLLOW),
        Unlink("hard"),
        Stat("ls"),
        Access("ls", 1),
        Access("d", 1),
        Access("ls", 2),
        Access("ls", 4),
        Access("missing", 0),
        Chmod("ls", 0o4755),
        Stat("ls"),
        Access("ls", 1),
        Truncate("ls", 2),
        Stat("ls"),
        Truncate("d", 0),
        Truncate("ls", -1),
        Stat(long_name(255)),
        Mkdir(long_name(255), 0o755),
        Stat(long_name(256)),
        Mkdir(long_name(256), 0o755),
        Open(long_name(256), O_CREAT | O_WRONLY, 0o644),
        Mkdir("full", 0o755),
        Put("full/x", "x"),
        Rename("d2", "full", 0),
        Rename("full", "d2", 0),
        Stat("d2/x"),
        Rename("d3", "d2/x", 0),
        Rename("d2/x", "d3", 0),
        Stat("."),
        Stat("d"),
        Stat("d2"),
        Stat("d3"),
        Stat("full"),
        Mkdir("d/m1", 0o755),
        Mkdir("d/m1/m2", 0o755),
        Rename("d/m1", "full/m1", 0),
        Stat("d"),
        Stat("full"),
        Stat("full/m1/m2/.."),
        Mkdir("d/m3", 0o755),
        Rename("d/m3", "full/m1", RENAME_EXCHANGE),
        Stat("full/m1"),
        Stat("d/m3/m2"),
        Rename("full", "d/m3", RENAME_EXCHANGE),
        Rename("full/m1", "d", RENAME_EXCHANGE),
        Stat("d"),
        Mkdir("sticky", 0o1777),
        Stat("sticky"),
        Mkdir("sticky/sg", 0o2755),
        Stat("sticky/sg"),
    ]
}

/// `outcome` with the setuid and setgid bits taken out of a `reg MODE ...` summary.
fn without_set_id(outcome: Outcome) -> Outcome {
    outcome.map(|s| match s.strip_prefix("reg ").and_then(|r| r.split_once(' ')) {
        Some((mode, rest)) => match u32::from_str_radix(mode, 8) {
            Ok(m) => format!("reg {:o} {rest}", m & !0o6000),
            Err(_) => s,
        },
        None => s,
    })
}

#[test]
fn host_and_guest_agree() {
    // SAFETY: umask only changes this process's file creation mask.
    unsafe { libc::umask(0o022) };
    let host = Host::new();
    let mut guest = Guest::new();
    let mut diffs = Vec::new();
    let mut errors = std::collections::BTreeSet::new();
    // The guest runs everything as root. The host side run by another user lacks CAP_FSETID,
    // so Linux clears setuid/setgid when it truncates or writes a file (`file_remove_privs`)
    // where root keeps them: compare modes without those two bits then.
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        println!("not root: setuid/setgid bits are not compared (the host clears them on truncate)");
    }
    for op in script() {
        let (h, g) = (host.run(op), guest.run(op));
        let (h, g) = if root { (h, g) } else { (without_set_id(h), without_set_id(g)) };
        if std::env::var_os("GUESTFS_DIFF_VERBOSE").is_some() {
            eprintln!("{op:?}: host {h:?} guest {g:?}");
        }
        if let Err(e) = h {
            errors.insert(e);
        }
        if h != g {
            diffs.push(format!("{op:?}: host {h:?} guest {g:?}"));
        }
    }
    // The script must exercise many distinct errors, or it tests little.
    for e in [Errno::EEXIST, Errno::ENOENT, Errno::ENOTDIR, Errno::EISDIR, Errno::ELOOP, Errno::EINVAL, Errno::ENOTEMPTY, Errno::EBUSY, Errno::EPERM, Errno::EACCES, Errno::ENAMETOOLONG] {
        assert!(errors.contains(&(e.0 as i32)), "script never hit {e:?}");
    }
    assert!(diffs.is_empty(), "{} differences:\n{}", diffs.len(), diffs.join("\n"));
}
