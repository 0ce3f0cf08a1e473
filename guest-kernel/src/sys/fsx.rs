//! File syscalls that came with the VFS: `creat(2)`, `flock(2)`, the xattr family
//! (`getxattr(2)`, `setxattr(2)`, `listxattr(2)`, `removexattr(2)` with their `l` and `f`
//! variants), `syncfs(2)`, `fdatasync(2)`, `sync_file_range(2)`, `copy_file_range(2)`,
//! `fallocate(2)`. Arguments are copied in once and validated here; the semantics are
//! guest-fs's.

use super::{Ctx, KResult};
use alloc::vec;
use alloc::vec::Vec;
use guest_fs as gfs;
use guest_fs::{Errno, XattrTarget};
use linux_raw_sys::general as g;

fn fd(v: u64) -> i32 {
    v as i32
}

/// `creat(2)`: `open(path, O_CREAT|O_WRONLY|O_TRUNC, mode)`.
pub fn creat(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let flags = u64::from(g::O_CREAT | g::O_WRONLY | g::O_TRUNC);
    super::fs::openat(cx, super::fs::AT_FDCWD as u64, a[0], flags, a[1])
}

/// `flock(2)`: a conflicting lock blocks (retried when a lock is released) unless
/// `LOCK_NB` (`EWOULDBLOCK`).
pub fn flock(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let p = cx.proc();
    let fds = p.fds.lock().clone();
    match gfs::flock(&fds, fd(a[0]), a[1] as u32) {
        Ok(released) => {
            if released {
                crate::sched::notify();
            }
            Ok(0)
        }
        Err(Errno::EAGAIN) if a[1] as u32 & gfs::LOCK_NB == 0 => Err(super::EBLOCK),
        Err(e) => Err(e),
    }
}

/// The waker guest-fs calls when a dropped description released a lock.
pub fn unlock_notify() {
    crate::sched::notify();
}

/// An xattr name argument: at most `XATTR_NAME_MAX` bytes before the NUL (`ERANGE`), `EFAULT`.
fn xattr_name(cx: &Ctx<'_>, va: u64) -> Result<Vec<u8>, Errno> {
    match cx.mm(|mm| crate::mm::uaccess::read_cstr(mm, va, gfs::XATTR_NAME_MAX + 1)) {
        Ok(Some(n)) if n.len() <= gfs::XATTR_NAME_MAX => Ok(n),
        Ok(_) => Err(Errno::ERANGE),
        Err(_) => Err(Errno::EFAULT),
    }
}

/// Which file an xattr call names: `kind` 0 = path (follow), 1 = `l*` path, 2 = `f*` fd.
fn xtarget(cx: &Ctx<'_>, kind: u8, arg: u64) -> Result<(Vec<u8>, i32), Errno> {
    if kind == 2 {
        return Ok((Vec::new(), fd(arg)));
    }
    let path = cx.path(arg)?;
    super::fs::refresh_proc(cx, &path);
    Ok((path, -1))
}

fn target(kind: u8, path: &[u8], f: i32) -> XattrTarget<'_> {
    match kind {
        2 => XattrTarget::Fd(f),
        k => XattrTarget::Path { path, follow: k == 0 },
    }
}

/// `getxattr`, `lgetxattr`, `fgetxattr` (`kind` as [`xtarget`]).
pub fn getxattr(cx: &mut Ctx<'_>, a: [u64; 6], kind: u8) -> KResult {
    let (path, f) = xtarget(cx, kind, a[0])?;
    let name = xattr_name(cx, a[1])?;
    let size = (a[3] as usize).min(gfs::XATTR_SIZE_MAX);
    let p = cx.proc();
    let ctx = p.fs.lock().clone();
    let fds = p.fds.lock().clone();
    let mut buf = vec![0u8; size];
    let n = gfs::getxattr(&ctx, &fds, target(kind, &path, f), &name, &mut buf)?;
    if size > 0 {
        cx.copy_out(a[2], &buf[..n.min(size)])?;
    }
    Ok(n as i64)
}

/// `setxattr`, `lsetxattr`, `fsetxattr`: `E2BIG` past `XATTR_SIZE_MAX`.
pub fn setxattr(cx: &mut Ctx<'_>, a: [u64; 6], kind: u8) -> KResult {
    let (path, f) = xtarget(cx, kind, a[0])?;
    let name = xattr_name(cx, a[1])?;
    let size = a[3] as usize;
    if size > gfs::XATTR_SIZE_MAX {
        return Err(Errno::E2BIG);
    }
    let value = cx.copy_in(a[2], size)?;
    let p = cx.proc();
    let ctx = p.fs.lock().clone();
    let fds = p.fds.lock().clone();
    gfs::setxattr(&ctx, &fds, target(kind, &path, f), &name, &value, a[4] as u32).map(|()| 0)
}

/// `listxattr`, `llistxattr`, `flistxattr`.
pub fn listxattr(cx: &mut Ctx<'_>, a: [u64; 6], kind: u8) -> KResult {
    let (path, f) = xtarget(cx, kind, a[0])?;
    let size = (a[2] as usize).min(65536);
    let p = cx.proc();
    let ctx = p.fs.lock().clone();
    let fds = p.fds.lock().clone();
    let mut buf = vec![0u8; size];
    let n = gfs::listxattr(&ctx, &fds, target(kind, &path, f), &mut buf)?;
    if size > 0 {
        cx.copy_out(a[1], &buf[..n.min(size)])?;
    }
    Ok(n as i64)
}

/// `removexattr`, `lremovexattr`, `fremovexattr`.
pub fn removexattr(cx: &mut Ctx<'_>, a: [u64; 6], kind: u8) -> KResult {
    let (path, f) = xtarget(cx, kind, a[0])?;
    let name = xattr_name(cx, a[1])?;
    let p = cx.proc();
    let ctx = p.fs.lock().clone();
    let fds = p.fds.lock().clone();
    gfs::removexattr(&ctx, &fds, target(kind, &path, f), &name).map(|()| 0)
}

/// `syncfs(2)`.
pub fn syncfs(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let p = cx.proc();
    let fds = p.fds.lock().clone();
    gfs::syncfs(&fds, fd(a[0])).map(|()| 0)
}

/// `fdatasync(2)`.
pub fn fdatasync(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let p = cx.proc();
    let fds = p.fds.lock().clone();
    gfs::fsync_data(&fds, fd(a[0]), true).map(|()| 0)
}

/// `sync_file_range(2)`: `EINVAL` for unknown flags or a negative offset or length,
/// `ESPIPE` for pipes and sockets, `EBADF`; regular files are written back with
/// `fdatasync` semantics (memory needs nothing).
pub fn sync_file_range(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let (offset, nbytes, flags) = (a[1] as i64, a[2] as i64, a[3] as u32);
    if flags & !7 != 0 || offset < 0 || nbytes < 0 || offset.checked_add(nbytes).is_none() {
        return Err(Errno::EINVAL);
    }
    let p = cx.proc();
    let fds = p.fds.lock().clone();
    let f = fds.get(fd(a[0]))?;
    if f.is_path_only() {
        return Err(Errno::EBADF);
    }
    match f.inode() {
        None => Err(Errno::ESPIPE),
        Some(i) if i.file_type() == gfs::FileType::Fifo => Err(Errno::ESPIPE),
        Some(i) if i.file_type() == gfs::FileType::Regular && flags != 0 => {
            match gfs::fsync_data(&fds, fd(a[0]), true) {
                Err(Errno::EINVAL) => Ok(0),
                r => r.map(|()| 0),
            }
        }
        Some(_) => Ok(0),
    }
}

/// `fallocate(2)`.
pub fn fallocate(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let p = cx.proc();
    let fds = p.fds.lock().clone();
    gfs::fallocate(&fds, fd(a[0]), a[1] as u32, a[2] as i64, a[3] as i64).map(|()| 0)
}

/// Largest piece copied at once by `copy_file_range`, bytes.
const COPY_CHUNK: usize = 256 << 10;

/// `copy_file_range(2)`: copies up to `len` bytes between regular files (any filesystems,
/// as Linux 5.19+), at `*off_in`/`*off_out` when given (updated) else at and advancing the
/// file offsets. `EINVAL` for flags, non-regular files, or overlapping ranges of one file;
/// `EBADF` for wrong access modes; `EISDIR`; partial copies return what was copied.
pub fn copy_file_range(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let (fd_in, offp_in, fd_out, offp_out) = (fd(a[0]), a[1], fd(a[2]), a[3]);
    let len = (a[4] as usize).min(gfs::MAX_RW_COUNT);
    if a[5] != 0 {
        return Err(Errno::EINVAL);
    }
    let p = cx.proc();
    let fds = p.fds.lock().clone();
    let (fin, fout) = (fds.get(fd_in)?, fds.get(fd_out)?);
    if !fin.readable() || !fout.writable() || fout.status_flags() & g::O_APPEND != 0 {
        return Err(Errno::EBADF);
    }
    let (iin, iout) = match (fin.inode(), fout.inode()) {
        (Some(i), Some(o)) => (i.clone(), o.clone()),
        _ => return Err(Errno::EINVAL),
    };
    if iin.is_dir() || iout.is_dir() {
        return Err(Errno::EISDIR);
    }
    if !fin.is_regular() || !fout.is_regular() {
        return Err(Errno::EINVAL);
    }
    let read_off = |va: u64| -> Result<Option<i64>, Errno> {
        if va == 0 {
            return Ok(None);
        }
        let o: i64 = cx.read(va)?;
        if o < 0 { Err(Errno::EINVAL) } else { Ok(Some(o)) }
    };
    let mut off_in = read_off(offp_in)?;
    let mut off_out = read_off(offp_out)?;
    let pos_in = off_in.unwrap_or(fin.offset() as i64);
    let pos_out = off_out.unwrap_or(fout.offset() as i64);
    if alloc::sync::Arc::ptr_eq(&iin, &iout) && pos_in < pos_out + len as i64 && pos_out < pos_in + len as i64 {
        return Err(Errno::EINVAL);
    }
    let mut done = 0usize;
    let mut buf = vec![0u8; len.min(COPY_CHUNK)];
    while done < len {
        let want = (len - done).min(COPY_CHUNK);
        let r = match off_in {
            Some(o) => gfs::pread64(&fds, fd_in, &mut buf[..want], o),
            None => gfs::read(&fds, fd_in, &mut buf[..want]),
        };
        let n = match r {
            Ok(0) => break,
            Ok(n) => n,
            Err(_) if done > 0 => break,
            Err(e) => return Err(e),
        };
        let w = match off_out {
            Some(o) => gfs::pwrite64(&fds, fd_out, &buf[..n], o),
            None => gfs::write(&fds, fd_out, &buf[..n]),
        };
        let w = match w {
            Ok(w) => w,
            Err(e) => {
                if off_in.is_none() {
                    let _ = gfs::lseek(&fds, fd_in, -(n as i64), g::SEEK_CUR);
                }
                if done > 0 {
                    break;
                }
                return Err(e);
            }
        };
        if w < n && off_in.is_none() {
            let _ = gfs::lseek(&fds, fd_in, -((n - w) as i64), g::SEEK_CUR);
        }
        if let Some(o) = off_in.as_mut() {
            *o += w as i64;
        }
        if let Some(o) = off_out.as_mut() {
            *o += w as i64;
        }
        done += w;
        if w < want {
            break;
        }
    }
    if let Some(o) = off_in {
        cx.write(offp_in, &o)?;
    }
    if let Some(o) = off_out {
        cx.write(offp_out, &o)?;
    }
    Ok(done as i64)
}
