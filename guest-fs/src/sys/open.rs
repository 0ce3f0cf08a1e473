//! `openat(2)`: resolve or create, check the file type and permissions, bind devices.

use crate::context::FsContext;
use crate::errno::{Errno, Result};
use crate::fdtable::FdTable;
use crate::file::{OpenFile, Target};
use crate::foreign;
use crate::inode::{FileType, InodeRef};
use crate::path::{self, Last};
use crate::perm::{self, MAY_EXEC, MAY_READ, MAY_WRITE};
use crate::vfs::Vfs;
use alloc::sync::Arc;
use linux_raw_sys::general as g;

/// Flags kept in the open file description (not `O_CREAT`, `O_EXCL`, `O_NOCTTY`, `O_TRUNC`,
/// `O_CLOEXEC`, which act only at open time or belong to the fd).
const OPEN_ONLY: u32 = g::O_CREAT | g::O_EXCL | g::O_NOCTTY | g::O_TRUNC | g::O_CLOEXEC;

/// `openat(2)`: opens `path` relative to `dirfd` and installs it at the lowest free fd.
///
/// Flags: `O_RDONLY/O_WRONLY/O_RDWR`, `O_CREAT` (with `mode & !umask`), `O_EXCL`, `O_TRUNC`,
/// `O_APPEND`, `O_NONBLOCK`, `O_DIRECTORY`, `O_NOFOLLOW`, `O_CLOEXEC`, `O_PATH`; `O_TMPFILE`
/// fails with `EOPNOTSUPP`. Errors as `open(2)`: `EMFILE` (checked first, as Linux
/// allocates the fd before the lookup), `ENOENT`, `EEXIST`, `EISDIR`, `ENOTDIR`, `ELOOP`,
/// `EACCES`, `ENAMETOOLONG`, `EBADF`, `ENXIO` (device without driver, FIFO without a
/// [`crate::FifoOpener`], socket).
pub fn openat(
    vfs: &Vfs,
    ctx: &FsContext,
    fds: &mut FdTable,
    dirfd: i32,
    path: &[u8],
    flags: u32,
    mode: u32,
) -> Result<i32> {
    let fd = fds.lowest_free(0)?;
    let file = open_file(vfs, ctx, fds, dirfd, path, flags, mode)?;
    fds.install_at(fd, file, flags & g::O_CLOEXEC != 0)?;
    Ok(fd)
}

/// The open part of [`openat`] without installing an fd: returns the new description.
pub fn open_file(
    vfs: &Vfs,
    ctx: &FsContext,
    fds: &FdTable,
    dirfd: i32,
    path: &[u8],
    flags: u32,
    mode: u32,
) -> Result<Arc<OpenFile>> {
    if flags & g::__O_TMPFILE != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    let flags = if flags & g::O_PATH != 0 {
        flags & (g::O_PATH | g::O_DIRECTORY | g::O_NOFOLLOW | g::O_CLOEXEC)
    } else {
        flags
    };
    path::check_path(path)?;
    let start = path::start_dir(ctx, fds, dirfd, path)?;
    let (inode, created) = if flags & g::O_CREAT != 0 {
        open_create(vfs, ctx, &start, path, flags, mode)?
    } else {
        (path::walk(ctx, &start, path, flags & g::O_NOFOLLOW == 0, &mut 0)?, false)
    };
    finish_open(vfs, ctx, inode, flags, created)
}

/// Resolves `path` for `O_CREAT`, creating a regular file when the name is absent
/// (following a final symlink, even a dangling one, unless `O_EXCL`/`O_NOFOLLOW`).
fn open_create(
    vfs: &Vfs,
    ctx: &FsContext,
    start: &InodeRef,
    path: &[u8],
    flags: u32,
    mode: u32,
) -> Result<(InodeRef, bool)> {
    let excl = flags & g::O_EXCL != 0;
    let mut links = 0;
    let mut start = start.clone();
    let mut path = path.to_vec();
    loop {
        let p = path::walk_parent(ctx, &start, &path, &mut links)?;
        let name = match p.last {
            Last::Norm(n) => n,
            // `.`, `..` or `/` name a directory, which O_CREAT refuses.
            _ => return Err(if excl { Errno::EEXIST } else { Errno::EISDIR }),
        };
        if p.trailing_slash {
            return Err(Errno::EISDIR);
        }
        match path::lookup_child(ctx, &p.dir, &name)? {
            Some(_) if excl => return Err(Errno::EEXIST),
            Some(c) if c.file_type() == FileType::Symlink => {
                if flags & g::O_NOFOLLOW != 0 {
                    return Err(Errno::ELOOP);
                }
                path::may_follow(ctx, &c, &name, &mut links)?;
                path = path::link_target(&c).ok_or(Errno::EINVAL)?;
                if path.is_empty() {
                    return Err(Errno::ENOENT);
                }
                start = p.dir;
            }
            Some(c) => return Ok((path::enter_mounts(ctx, c), false)),
            None => {
                let (perm_ok, gid) = {
                    let st = p.dir.lock();
                    let ok = perm::check(ctx, FileType::Directory, &st, MAY_WRITE | MAY_EXEC);
                    (ok, if st.perm & 0o2000 != 0 { st.gid } else { ctx.gid })
                };
                perm_ok?;
                p.dir.shared.check_writable()?;
                let perm_bits = mode & !ctx.umask & 0o7777;
                if foreign::is_foreign(&p.dir) {
                    let creds = foreign::creds(ctx, gid);
                    match foreign::create(&p.dir, &name, FileType::Regular, perm_bits, (0, 0), None, &creds) {
                        Ok(node) => return Ok((node, true)),
                        Err(Errno::EEXIST) if !excl => continue,
                        Err(e) => return Err(e),
                    }
                }
                let node = vfs.new_inode(FileType::Regular, perm_bits, (ctx.uid, gid), &p.dir, &name, None);
                let _ns = vfs.ns_lock();
                match vfs.attach_locked(&p.dir, &name, &node) {
                    Ok(()) => return Ok((node, true)),
                    // Lost a race with another creator: look again.
                    Err(Errno::EEXIST) => continue,
                    Err(e) => return Err(e),
                }
            }
        }
    }
}

/// Type and permission checks on the resolved inode, `O_TRUNC`, device binding
/// (Linux `do_open`/`may_open`).
fn finish_open(vfs: &Vfs, ctx: &FsContext, inode: InodeRef, flags: u32, created: bool) -> Result<Arc<OpenFile>> {
    let ftype = inode.file_type();
    if flags & g::O_CREAT != 0 && ftype == FileType::Directory {
        return Err(Errno::EISDIR);
    }
    if flags & g::O_DIRECTORY != 0 && ftype != FileType::Directory {
        return Err(Errno::ENOTDIR);
    }
    let kept = flags & !OPEN_ONLY;
    if flags & g::O_PATH != 0 {
        return Ok(OpenFile::new(Target::Inode(inode), kept));
    }
    let acc = flags & g::O_ACCMODE;
    let mut mask = match acc {
        g::O_RDONLY => MAY_READ,
        g::O_WRONLY => MAY_WRITE,
        _ => MAY_READ | MAY_WRITE,
    };
    if flags & g::O_TRUNC != 0 {
        mask |= MAY_WRITE;
    }
    match ftype {
        FileType::Symlink => return Err(Errno::ELOOP),
        FileType::Directory if mask & MAY_WRITE != 0 => return Err(Errno::EISDIR),
        FileType::Socket => return Err(Errno::ENXIO),
        _ => {}
    }
    if !created {
        perm::check(ctx, ftype, &inode.lock(), mask)?;
    }
    if mask & MAY_WRITE != 0 && matches!(ftype, FileType::Regular | FileType::Directory) {
        inode.shared.check_writable()?;
    }
    if foreign::is_foreign(&inode) && matches!(ftype, FileType::Regular | FileType::Directory) {
        let trunc = if ftype == FileType::Regular && !created { flags & g::O_TRUNC } else { 0 };
        let file = foreign::ops_of(&inode)?.open(kept | trunc)?;
        if trunc != 0 {
            crate::cachehook::after_resize(&inode, 0);
        }
        return Ok(OpenFile::new(Target::Foreign { file, inode }, kept));
    }
    match ftype {
        FileType::Regular => {
            if flags & g::O_TRUNC != 0 && !created {
                let now = inode.shared.now();
                let shared = inode.shared.clone();
                let mut st = inode.lock();
                if let Some(f) = st.file_mut() {
                    f.set_size(&shared, 0)?;
                }
                st.touch_modify(now);
                drop(st);
                crate::cachehook::after_resize(&inode, 0);
            }
            Ok(OpenFile::new(Target::Inode(inode), kept))
        }
        FileType::Directory => Ok(OpenFile::new(Target::Inode(inode), kept)),
        FileType::CharDevice => {
            let (major, minor) = inode.rdev();
            let dev = vfs.device(major, minor).ok_or(Errno::ENXIO)?;
            let tty = dev.is_tty().then(|| vfs.tty_state(major, minor));
            Ok(OpenFile::new(Target::Device { inode, dev, tty }, kept))
        }
        FileType::Fifo => {
            let opener = vfs.fifo_opener().ok_or(Errno::ENXIO)?;
            let ops = opener.open_fifo(&inode, kept)?;
            Ok(OpenFile::new(Target::Custom { ops, inode: Some(inode) }, kept))
        }
        // No block drivers.
        _ => Err(Errno::ENXIO),
    }
}

/// `RESOLVE_*` bits `openat2` knows (`RESOLVE_CACHED` is accepted: every lookup here
/// completes without I/O or with it, never with `EAGAIN`).
const RESOLVE_ALL: u64 = 0x3f;
/// Open flags `openat2` accepts (Linux `VALID_OPEN_FLAGS`).
const VALID_OPEN_FLAGS: u64 = (g::O_ACCMODE
    | g::O_CREAT
    | g::O_EXCL
    | g::O_NOCTTY
    | g::O_TRUNC
    | g::O_APPEND
    | g::O_NONBLOCK
    | g::O_DSYNC
    | g::FASYNC
    | g::O_DIRECT
    | g::O_LARGEFILE
    | g::O_DIRECTORY
    | g::O_NOFOLLOW
    | g::O_NOATIME
    | g::O_CLOEXEC
    | g::O_PATH
    | g::__O_SYNC
    | g::__O_TMPFILE) as u64;

/// `openat2(2)`: `openat` with `struct open_how` (`flags`, `mode`, `resolve`) checked
/// strictly: unknown flag or resolve bits, a `mode` without `O_CREAT`/`O_TMPFILE` or with
/// bits past `07777`, `O_ACCMODE` 3, and `RESOLVE_BENEATH` with `RESOLVE_IN_ROOT` are
/// `EINVAL`. Resolution rules: `RESOLVE_BENEATH` (absolute paths, absolute symlinks and `..`
/// above the starting directory are `EXDEV`), `RESOLVE_IN_ROOT` (the starting directory is
/// the root for the walk: `/` and `..` stop there), `RESOLVE_NO_XDEV` (crossing a mount in
/// either direction is `EXDEV`), `RESOLVE_NO_SYMLINKS` (any symlink to follow is `ELOOP`),
/// `RESOLVE_NO_MAGICLINKS` (`/proc/<pid>/{fd/N,exe,cwd}` links are `ELOOP`).
#[allow(clippy::too_many_arguments)]
pub fn openat2(
    vfs: &Vfs,
    ctx: &FsContext,
    fds: &mut FdTable,
    dirfd: i32,
    path: &[u8],
    flags: u64,
    mode: u64,
    resolve: u64,
) -> Result<i32> {
    let fd = fds.lowest_free(0)?;
    let file = open_file2(vfs, ctx, fds, dirfd, path, flags, mode, resolve)?;
    fds.install_at(fd, file, flags & u64::from(g::O_CLOEXEC) != 0)?;
    Ok(fd)
}

/// The open part of [`openat2`] without installing an fd.
#[allow(clippy::too_many_arguments)]
pub fn open_file2(
    vfs: &Vfs,
    ctx: &FsContext,
    fds: &FdTable,
    dirfd: i32,
    path: &[u8],
    flags: u64,
    mode: u64,
    resolve: u64,
) -> Result<Arc<OpenFile>> {
    if flags & !VALID_OPEN_FLAGS != 0 || resolve & !RESOLVE_ALL != 0 || flags & u64::from(g::O_ACCMODE) == 3 {
        return Err(Errno::EINVAL);
    }
    let creating = flags & u64::from(g::O_CREAT | g::__O_TMPFILE) != 0;
    if mode & !0o7777 != 0 || (!creating && mode != 0) {
        return Err(Errno::EINVAL);
    }
    let resolve = resolve as u32;
    if resolve & g::RESOLVE_BENEATH != 0 && resolve & g::RESOLVE_IN_ROOT != 0 {
        return Err(Errno::EINVAL);
    }
    let mut c = ctx.clone();
    c.resolve = resolve;
    if resolve & (g::RESOLVE_BENEATH | g::RESOLVE_IN_ROOT) != 0 {
        // The walk's root is where it starts (path_resolution with a chroot of one call).
        c.root = path::start_dir(ctx, fds, dirfd, b".")?;
    }
    open_file(vfs, &c, fds, dirfd, path, flags as u32, mode as u32)
}
