//! File syscalls: copy the user's arguments into kernel buffers, call the guest-fs layer
//! (`guest_fs::sys`), copy results back. Transfers are chunked so a huge `count` never needs a
//! huge kernel buffer.

use super::{Ctx, KResult};
use crate::fs::vfs;
use alloc::vec;
use alloc::vec::Vec;
use guest_fs as gfs;
use guest_fs::{Errno, Timespec};

/// `AT_FDCWD`.
pub const AT_FDCWD: i32 = -100;
/// `AT_SYMLINK_NOFOLLOW`.
pub const AT_SYMLINK_NOFOLLOW: u64 = 0x100;
/// `AT_REMOVEDIR`.
pub const AT_REMOVEDIR: u64 = 0x200;
/// Largest piece of a read/write moved at once, bytes.
const CHUNK: usize = 256 << 10;

fn fd(v: u64) -> i32 {
    v as i32
}

/// Refreshes `/proc` before a lookup that may need it (for other syscall modules).
pub fn refresh_proc(cx: &Ctx<'_>, path: &[u8]) {
    proc_hook(cx, path);
}

/// Refreshes `/proc` before a lookup that may need it (the part of it `path` names).
fn proc_hook(cx: &Ctx<'_>, path: &[u8]) {
    let abs = if path.first() == Some(&b'/') {
        crate::procfs::normalize(b"", path)
    } else {
        let p = cx.proc();
        let ctx = p.fs.lock().clone();
        let mut buf = [0u8; 256];
        match gfs::getcwd(&ctx, &mut buf) {
            Ok(n) if buf[..n].starts_with(b"/proc") => crate::procfs::normalize(&buf[..n.saturating_sub(1)], path),
            _ => return,
        }
    };
    if abs.starts_with(b"/proc") {
        crate::procfs::refresh_for(cx.t.proc.pid, cx.t.tid, &abs);
    }
}

/// `read(2)`.
pub fn read(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    rw_read(cx, fd(a[0]), a[1], a[2] as usize, None)
}

fn rw_read(cx: &mut Ctx<'_>, f: i32, buf: u64, count: usize, offset: Option<i64>) -> KResult {
    // Linux's vfs_read clamps every transfer to MAX_RW_COUNT.
    let count = count.min(gfs::MAX_RW_COUNT);
    let p = cx.proc();
    let mut done = 0usize;
    let mut kbuf = vec![0u8; count.min(CHUNK)];
    while done < count {
        let want = (count - done).min(CHUNK);
        let r = {
            let fds = p.fds.lock().clone();
            match offset {
                Some(o) => gfs::pread64(&fds, f, &mut kbuf[..want], o + done as i64),
                None => gfs::read(&fds, f, &mut kbuf[..want]),
            }
        };
        let n = match r {
            Ok(n) => n,
            Err(Errno::EAGAIN) if done == 0 && blocking(&p, f) => return Err(super::EBLOCK),
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        };
        if let Err(e) = cx.copy_out(buf + done as u64, &kbuf[..n]) {
            if done == 0 {
                return Err(e);
            }
            break;
        }
        done += n;
        if n < want {
            break;
        }
    }
    Ok(done as i64)
}

/// `write(2)`.
pub fn write(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    rw_write(cx, fd(a[0]), a[1], a[2] as usize, None)
}

fn rw_write(cx: &mut Ctx<'_>, f: i32, buf: u64, count: usize, offset: Option<i64>) -> KResult {
    // Linux's vfs_write clamps every transfer to MAX_RW_COUNT.
    let count = count.min(gfs::MAX_RW_COUNT);
    let p = cx.proc();
    if let Some(n) = discarded_write(&p, f, buf, count, offset) {
        return n;
    }
    let mut done = 0usize;
    while done < count {
        let want = (count - done).min(CHUNK);
        let data = match cx.copy_in(buf + done as u64, want) {
            Ok(d) => d,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        };
        let r = {
            let fds = p.fds.lock().clone();
            match offset {
                Some(o) => gfs::pwrite64(&fds, f, &data, o + done as i64),
                None => gfs::write(&fds, f, &data),
            }
        };
        let n = match r {
            Ok(n) => n,
            Err(e) => {
                let e = write_failed(&p, f, e);
                if done == 0 {
                    return Err(e);
                }
                break;
            }
        };
        done += n;
        if n < want {
            break;
        }
    }
    Ok(done as i64)
}

/// A write of `count` bytes at `buf` to a device that discards writes (`/dev/null`,
/// `/dev/zero`): Linux's `write_null` (drivers/char/mem.c) returns the count without reading
/// the buffer, so a huge untouched buffer is never faulted in (it used to take a frame per
/// page until memory ran out). `None` for any other file. The checks Linux makes first stay:
/// the description must be writable (an empty write makes the same checks, and a `pwrite`
/// the same offset checks) and `vfs_write`'s `access_ok` (`count` was already clamped to
/// `MAX_RW_COUNT`, which only shortens the range checked).
fn discarded_write(p: &crate::proc::Process, f: i32, buf: u64, count: usize, offset: Option<i64>) -> Option<KResult> {
    let fds = p.fds.lock().clone();
    let discards = fds.get(f).ok().and_then(|file| file.device().map(|d| d.discards_writes())).unwrap_or(false);
    if !discards {
        return None;
    }
    let probe = match offset {
        Some(o) => gfs::pwrite64(&fds, f, &[], o),
        None => gfs::write(&fds, f, &[]),
    };
    if let Err(e) = probe {
        return Some(Err(e));
    }
    if buf.checked_add(count as u64).is_none_or(|end| end > guest_abi::layout::USER_END) {
        return Some(Err(Errno::EFAULT));
    }
    Some(Ok(count as i64))
}

/// True when `fd` is open without `O_NONBLOCK` (an `EAGAIN` from it means: block).
fn blocking(p: &crate::proc::Process, f: i32) -> bool {
    p.fds.lock().get(f).is_ok_and(|file| !file.is_nonblocking())
}

/// What a failed write to `f` means for the caller: `EAGAIN` on a blocking fd is "block and
/// retry" (`EBLOCK`); `EPIPE` also raises SIGPIPE (write(2)).
fn write_failed(p: &crate::proc::Process, f: i32, e: Errno) -> Errno {
    if e == Errno::EPIPE {
        crate::signal::post(p, crate::signal::SIGPIPE);
    }
    if e == Errno::EAGAIN && blocking(p, f) { super::EBLOCK } else { e }
}

/// `pread64(2)`.
pub fn pread(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    if (a[3] as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    rw_read(cx, fd(a[0]), a[1], a[2] as usize, Some(a[3] as i64))
}

/// `pwrite64(2)`.
pub fn pwrite(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    if (a[3] as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    rw_write(cx, fd(a[0]), a[1], a[2] as usize, Some(a[3] as i64))
}

pub(crate) fn iovecs(cx: &Ctx<'_>, va: u64, cnt: u64) -> Result<Vec<(u64, usize)>, Errno> {
    if cnt > 1024 {
        return Err(Errno::EINVAL);
    }
    let mut v = Vec::with_capacity(cnt as usize);
    // Linux's import_iovec: the vectors are cut so that they add up to at most MAX_RW_COUNT
    // (without it, lengths near 2^63 summed past usize::MAX and a wrapped small total made
    // writev allocate exabytes: a kernel panic found by tests/fuzz.rs).
    let mut total = 0usize;
    for i in 0..cnt {
        let base: u64 = cx.read(va + i * 16)?;
        let len: u64 = cx.read(va + i * 16 + 8)?;
        if (len as i64) < 0 {
            return Err(Errno::EINVAL);
        }
        // Linux's `access_ok` on each vector: a range past user space is EFAULT before any
        // transfer.
        if base.checked_add(len).is_none_or(|end| end > guest_abi::layout::USER_END) {
            return Err(Errno::EFAULT);
        }
        let len = (len as usize).min(gfs::MAX_RW_COUNT - total);
        total += len;
        v.push((base, len));
    }
    Ok(v)
}

/// `readv(2)` / `preadv(2)`.
pub fn readv(cx: &mut Ctx<'_>, a: [u64; 6], offset: Option<u64>) -> KResult {
    let iov = iovecs(cx, a[1], a[2])?;
    each_iovec(&iov, offset, |base, len, off| rw_read(cx, fd(a[0]), base, len, off))
}

/// Runs `op(base, len, offset)` over the vectors in order, as readv/writev do: stops at the
/// first short transfer, and reports an error only if nothing was transferred before it.
fn each_iovec(
    iov: &[(u64, usize)],
    offset: Option<u64>,
    mut op: impl FnMut(u64, usize, Option<i64>) -> KResult,
) -> KResult {
    let mut total = 0i64;
    for &(base, len) in iov.iter().filter(|v| v.1 != 0) {
        let n = match op(base, len, offset.map(|o| o as i64 + total)) {
            Ok(n) => n,
            Err(e) if total == 0 => return Err(e),
            Err(_) => break,
        };
        total += n;
        if (n as usize) < len {
            break;
        }
    }
    Ok(total)
}

/// `writev(2)` / `pwritev(2)`.
pub fn writev(cx: &mut Ctx<'_>, a: [u64; 6], offset: Option<u64>) -> KResult {
    let iov = iovecs(cx, a[1], a[2])?;
    // Gather into one buffer so a line written in pieces reaches the console in one write.
    let total_len: usize = iov.iter().map(|v| v.1).sum();
    if total_len <= CHUNK {
        let mut data = Vec::with_capacity(total_len);
        for (base, len) in &iov {
            data.extend_from_slice(&cx.copy_in(*base, *len)?);
        }
        let p = cx.proc();
        let fds = p.fds.lock().clone();
        let r = match offset {
            Some(o) => gfs::pwrite64(&fds, fd(a[0]), &data, o as i64),
            None => gfs::write(&fds, fd(a[0]), &data),
        };
        return r.map(|n| n as i64).map_err(|e| write_failed(&p, fd(a[0]), e));
    }
    each_iovec(&iov, offset, |base, len, off| rw_write(cx, fd(a[0]), base, len, off))
}

/// `openat(2)` (and `open(2)` with `AT_FDCWD`).
pub fn openat(cx: &mut Ctx<'_>, dirfd: u64, path: u64, flags: u64, mode: u64) -> KResult {
    open_common(cx, dirfd, path, flags, mode, None)
}

/// `openat2(2)`: `struct open_how` is `{ u64 flags, u64 mode, u64 resolve }` (24 bytes);
/// `EINVAL` for a smaller `size` or more than a page, `E2BIG` when bytes past the known
/// fields are not zero (the extensible-struct rule).
pub fn openat2(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let size = a[3] as usize;
    if !(24..=4096).contains(&size) {
        return Err(Errno::EINVAL);
    }
    let how = cx.copy_in(a[2], size)?;
    if how[24..].iter().any(|&b| b != 0) {
        return Err(Errno::E2BIG);
    }
    let word = |i: usize| u64::from_le_bytes(how[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
    open_common(cx, a[0], a[1], word(0), word(1), Some(word(2)))
}

fn open_common(cx: &mut Ctx<'_>, dirfd: u64, path: u64, flags: u64, mode: u64, resolve: Option<u64>) -> KResult {
    let path = cx.path(path)?;
    proc_hook(cx, &path);
    let p = cx.proc();
    let ctx = p.fs.lock().clone();
    let (tid, dirfd32, flags32) = (cx.t.tid, fd(dirfd), flags as u32);
    // A FIFO open waiting for its other side re-runs here (crate::fifo).
    let resumed = crate::fifo::resume(tid, dirfd32, &path, flags32);
    let (file, partner) = match resumed {
        Some(r) => r,
        None => {
            p.fds.lock().lowest_free(0)?;
            let snapshot = p.fds.lock().clone();
            let file = match resolve {
                None => gfs::open_file(vfs(), &ctx, &snapshot, dirfd32, &path, flags32, mode as u32)?,
                Some(r) => gfs::open_file2(vfs(), &ctx, &snapshot, dirfd32, &path, flags, mode, r)?,
            };
            let partner = crate::fifo::partner_opens(&file);
            (file, partner)
        }
    };
    if crate::fifo::must_wait(&file, partner) {
        crate::fifo::park(tid, dirfd32, &path, flags32, file, partner);
        return Err(super::EBLOCK);
    }
    let mut fds = p.fds.lock();
    let new_fd = fds.alloc(file, flags32 & 0o2_000_000 != 0, 0)?;
    if let Ok(file) = fds.get(new_fd) {
        let base = if path.first() == Some(&b'/') {
            Some(Vec::new())
        } else if fd(dirfd) == AT_FDCWD {
            let mut buf = vec![0u8; 4096];
            gfs::getcwd(&ctx, &mut buf).ok().map(|n| buf[..n.saturating_sub(1)].to_vec())
        } else {
            fds.get(fd(dirfd)).ok().and_then(|d| d.path())
        };
        if let Some(base) = base {
            file.set_path(crate::procfs::normalize(&base, &path));
        }
    }
    Ok(i64::from(new_fd))
}

/// `close(2)`.
pub fn close(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let p = cx.proc();
    let closed = {
        let mut fds = p.fds.lock();
        gfs::close(&mut fds, fd(a[0]))
    };
    closed.map(|()| 0)
}

/// `newfstatat(2)`, `stat(2)`, `lstat(2)`.
pub fn fstatat(cx: &mut Ctx<'_>, dirfd: u64, path: u64, buf: u64, flags: u64) -> KResult {
    let path = cx.path(path)?;
    proc_hook(cx, &path);
    let p = cx.proc();
    let st = {
        let ctx = p.fs.lock().clone();
        let fds = p.fds.lock().clone();
        gfs::newfstatat(vfs(), &ctx, &fds, fd(dirfd), &path, flags as u32)?
    };
    cx.write(buf, &st)?;
    Ok(0)
}

/// `fstat(2)`.
pub fn fstat(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let p = cx.proc();
    let st = {
        let fds = p.fds.lock().clone();
        gfs::fstat(&fds, fd(a[0]))?
    };
    cx.write(a[1], &st)?;
    Ok(0)
}

/// `statx(2)`.
pub fn statx(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let path = cx.path(a[1])?;
    proc_hook(cx, &path);
    let p = cx.proc();
    let st = {
        let ctx = p.fs.lock().clone();
        let fds = p.fds.lock().clone();
        gfs::statx(vfs(), &ctx, &fds, fd(a[0]), &path, a[2] as u32, a[3] as u32)?
    };
    cx.write(a[4], &st)?;
    Ok(0)
}

/// `lseek(2)`.
pub fn lseek(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let p = cx.proc();
    let fds = p.fds.lock().clone();
    gfs::lseek(&fds, fd(a[0]), a[1] as i64, a[2] as u32)
}

/// `faccessat2(2)` and friends.
pub fn faccessat(cx: &mut Ctx<'_>, dirfd: u64, path: u64, mode: u64, flags: u64) -> KResult {
    let path = cx.path(path)?;
    proc_hook(cx, &path);
    let p = cx.proc();
    let ctx = p.fs.lock().clone();
    let fds = p.fds.lock().clone();
    gfs::faccessat(vfs(), &ctx, &fds, fd(dirfd), &path, mode as u32, flags as u32).map(|()| 0)
}

/// `getdents64(2)`.
pub fn getdents64(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let mut kbuf = vec![0u8; (a[2] as usize).min(CHUNK)];
    let p = cx.proc();
    let n = {
        let fds = p.fds.lock().clone();
        gfs::getdents64(&fds, fd(a[0]), &mut kbuf)?
    };
    cx.copy_out(a[1], &kbuf[..n])?;
    Ok(n as i64)
}

/// `getcwd(2)`.
pub fn getcwd(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let mut kbuf = vec![0u8; (a[1] as usize).min(super::PATH_MAX)];
    let p = cx.proc();
    let n = {
        let ctx = p.fs.lock().clone();
        gfs::getcwd(&ctx, &mut kbuf)?
    };
    cx.copy_out(a[0], &kbuf[..n])?;
    Ok(n as i64)
}

/// `chdir(2)`.
pub fn chdir(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let path = cx.path(a[0])?;
    proc_hook(cx, &path);
    let p = cx.proc();
    let fds = p.fds.lock().clone();
    let mut ctx = p.fs.lock();
    gfs::chdir(vfs(), &mut ctx, &fds, &path).map(|()| 0)
}

/// `fchdir(2)`.
pub fn fchdir(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let p = cx.proc();
    let fds = p.fds.lock().clone();
    let mut ctx = p.fs.lock();
    gfs::fchdir(&mut ctx, &fds, fd(a[0])).map(|()| 0)
}

/// `mkdirat(2)`.
pub fn mkdirat(cx: &mut Ctx<'_>, dirfd: u64, path: u64, mode: u64) -> KResult {
    let path = cx.path(path)?;
    let p = cx.proc();
    let ctx = p.fs.lock().clone();
    let fds = p.fds.lock().clone();
    gfs::mkdirat(vfs(), &ctx, &fds, fd(dirfd), &path, mode as u32).map(|()| 0)
}

/// `mknodat(2)`.
pub fn mknodat(cx: &mut Ctx<'_>, dirfd: u64, path: u64, mode: u64, dev: u64) -> KResult {
    let path = cx.path(path)?;
    let p = cx.proc();
    let ctx = p.fs.lock().clone();
    let fds = p.fds.lock().clone();
    gfs::mknodat(vfs(), &ctx, &fds, fd(dirfd), &path, mode as u32, dev).map(|()| 0)
}

/// `unlinkat(2)`, `unlink(2)`, `rmdir(2)`.
pub fn unlinkat(cx: &mut Ctx<'_>, dirfd: u64, path: u64, flags: u64) -> KResult {
    let path = cx.path(path)?;
    let p = cx.proc();
    let ctx = p.fs.lock().clone();
    let fds = p.fds.lock().clone();
    gfs::unlinkat(vfs(), &ctx, &fds, fd(dirfd), &path, flags as u32).map(|()| 0)
}

/// `renameat2(2)` and friends.
pub fn renameat2(cx: &mut Ctx<'_>, od: u64, op: u64, nd: u64, np: u64, flags: u64) -> KResult {
    let op = cx.path(op)?;
    let np = cx.path(np)?;
    let p = cx.proc();
    let ctx = p.fs.lock().clone();
    let fds = p.fds.lock().clone();
    gfs::renameat2(vfs(), &ctx, &fds, fd(od), &op, fd(nd), &np, flags as u32).map(|()| 0)
}

/// `symlinkat(2)`.
pub fn symlinkat(cx: &mut Ctx<'_>, target: u64, nd: u64, linkpath: u64) -> KResult {
    let target = cx.path(target)?;
    let linkpath = cx.path(linkpath)?;
    let p = cx.proc();
    let ctx = p.fs.lock().clone();
    let fds = p.fds.lock().clone();
    gfs::symlinkat(vfs(), &ctx, &fds, &target, fd(nd), &linkpath).map(|()| 0)
}

/// `readlinkat(2)`; `/proc/self/exe` names the running program.
pub fn readlinkat(cx: &mut Ctx<'_>, dirfd: u64, path: u64, buf: u64, size: u64) -> KResult {
    let path = cx.path(path)?;
    proc_hook(cx, &path);
    if (size as i64) <= 0 {
        return Err(Errno::EINVAL);
    }
    let p = cx.proc();
    let pid_exe = alloc::format!("/proc/{}/exe", p.pid);
    let out: Vec<u8> = if path == b"/proc/self/exe" || path == pid_exe.as_bytes() {
        // The file that runs, symlinks followed (Linux keeps the resolved dentry).
        let ctx = p.fs.lock().clone();
        crate::procfs::resolve(&ctx, &p.exe.lock().clone())
    } else {
        let mut kbuf = vec![0u8; (size as usize).min(super::PATH_MAX)];
        let ctx = p.fs.lock().clone();
        let fds = p.fds.lock().clone();
        let n = gfs::readlinkat(vfs(), &ctx, &fds, fd(dirfd), &path, &mut kbuf)?;
        kbuf.truncate(n);
        kbuf
    };
    let n = out.len().min(size as usize);
    cx.copy_out(buf, &out[..n])?;
    Ok(n as i64)
}

/// `linkat(2)`.
pub fn linkat(cx: &mut Ctx<'_>, od: u64, op: u64, nd: u64, np: u64, flags: u64) -> KResult {
    let op = cx.path(op)?;
    let np = cx.path(np)?;
    let p = cx.proc();
    let ctx = p.fs.lock().clone();
    let fds = p.fds.lock().clone();
    gfs::linkat(vfs(), &ctx, &fds, fd(od), &op, fd(nd), &np, flags as u32).map(|()| 0)
}

/// `fchmodat(2)`, `chmod(2)`.
pub fn fchmodat(cx: &mut Ctx<'_>, dirfd: u64, path: u64, mode: u64, flags: u64) -> KResult {
    let path = cx.path(path)?;
    let p = cx.proc();
    let ctx = p.fs.lock().clone();
    let fds = p.fds.lock().clone();
    gfs::fchmodat(vfs(), &ctx, &fds, fd(dirfd), &path, mode as u32, flags as u32).map(|()| 0)
}

/// `fchmod(2)`.
pub fn fchmod(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let p = cx.proc();
    let ctx = p.fs.lock().clone();
    let fds = p.fds.lock().clone();
    gfs::fchmod(&ctx, &fds, fd(a[0]), a[1] as u32).map(|()| 0)
}

/// `fchownat(2)`, `chown(2)`, `lchown(2)`.
pub fn fchownat(cx: &mut Ctx<'_>, dirfd: u64, path: u64, uid: u64, gid: u64, flags: u64) -> KResult {
    let path = cx.path(path)?;
    let p = cx.proc();
    let ctx = p.fs.lock().clone();
    let fds = p.fds.lock().clone();
    gfs::fchownat(vfs(), &ctx, &fds, fd(dirfd), &path, uid as u32, gid as u32, flags as u32).map(|()| 0)
}

/// `fchown(2)`.
pub fn fchown(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let p = cx.proc();
    let ctx = p.fs.lock().clone();
    let fds = p.fds.lock().clone();
    gfs::fchown(&ctx, &fds, fd(a[0]), a[1] as u32, a[2] as u32).map(|()| 0)
}

/// `umask(2)`.
pub fn umask(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let p = cx.proc();
    let mut ctx = p.fs.lock();
    Ok(i64::from(ctx.set_umask(a[0] as u32 & 0o777)))
}

/// `utimensat(2)`.
pub fn utimensat(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let path = if a[1] == 0 { None } else { Some(cx.path(a[1])?) };
    let times = if a[2] == 0 {
        None
    } else {
        let raw: [i64; 4] = cx.read(a[2])?;
        Some([Timespec { sec: raw[0], nsec: raw[1] }, Timespec { sec: raw[2], nsec: raw[3] }])
    };
    let p = cx.proc();
    let ctx = p.fs.lock().clone();
    let fds = p.fds.lock().clone();
    gfs::utimensat(vfs(), &ctx, &fds, fd(a[0]), path.as_deref(), times, a[3] as u32).map(|()| 0)
}

/// `truncate(2)`.
pub fn truncate(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let path = cx.path(a[0])?;
    let p = cx.proc();
    let ctx = p.fs.lock().clone();
    let fds = p.fds.lock().clone();
    gfs::truncate(vfs(), &ctx, &fds, &path, a[1] as i64).map(|()| 0)
}

/// `ftruncate(2)`.
pub fn ftruncate(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let p = cx.proc();
    let fds = p.fds.lock().clone();
    gfs::ftruncate(&fds, fd(a[0]), a[1] as i64).map(|()| 0)
}

/// `fsync(2)`, `fdatasync(2)`, `syncfs(2)`.
pub fn fsync(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let p = cx.proc();
    let fds = p.fds.lock().clone();
    gfs::fsync(&fds, fd(a[0])).map(|()| 0)
}

/// `dup(2)`.
pub fn dup(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let p = cx.proc();
    let mut fds = p.fds.lock();
    gfs::dup(&mut fds, fd(a[0])).map(i64::from)
}

/// `dup2(2)`.
pub fn dup2(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let p = cx.proc();
    let mut fds = p.fds.lock();
    gfs::dup2(&mut fds, fd(a[0]), fd(a[1])).map(i64::from)
}

/// `dup3(2)`.
pub fn dup3(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let p = cx.proc();
    let mut fds = p.fds.lock();
    gfs::dup3(&mut fds, fd(a[0]), fd(a[1]), a[2] as u32).map(i64::from)
}

/// `fcntl(2)`.
pub fn fcntl(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let p = cx.proc();
    let mut fds = p.fds.lock();
    gfs::fcntl(&mut fds, fd(a[0]), a[1] as u32, a[2])
}

/// Integer-by-value ioctls (`TCSBRK`, `TCXONC`, `TCFLSH`, `TIOCSCTTY`).
fn ioctl_by_value(cmd: u32) -> bool {
    matches!(cmd, 0x5409 | 0x540a | 0x540b | 0x540e)
}

/// `ioctl(2)`.
pub fn ioctl(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let cmd = a[1] as u32;
    let size = gfs::ioctl_arg_size(cmd);
    let by_value = ioctl_by_value(cmd);
    let mut arg: Vec<u8> = match size {
        Some(_) if by_value => a[2].to_le_bytes().to_vec(),
        Some(n) if n > 0 => cx.copy_in(a[2], n)?,
        _ => Vec::new(),
    };
    let p = cx.proc();
    let r = {
        let mut fds = p.fds.lock().clone();
        let r = gfs::ioctl(&mut fds, fd(a[0]), cmd, &mut arg);
        // FIOCLEX/FIONCLEX change the fd table itself.
        if r.is_ok() && matches!(cmd, 0x5450 | 0x5451) {
            *p.fds.lock() = fds;
        }
        r?
    };
    if !by_value && !arg.is_empty() {
        cx.copy_out(a[2], &arg)?;
    }
    Ok(r)
}

/// `statfs(2)`.
pub fn statfs(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let path = cx.path(a[0])?;
    let p = cx.proc();
    let st = {
        let ctx = p.fs.lock().clone();
        let fds = p.fds.lock().clone();
        gfs::statfs(vfs(), &ctx, &fds, &path)?
    };
    cx.write(a[1], &st)?;
    Ok(0)
}

/// `fstatfs(2)`.
pub fn fstatfs(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let p = cx.proc();
    let st = {
        let fds = p.fds.lock().clone();
        gfs::fstatfs(vfs(), &fds, fd(a[0]))?
    };
    cx.write(a[1], &st)?;
    Ok(0)
}

/// `pipe2(2)`.
pub fn pipe2(cx: &mut Ctx<'_>, fdsp: u64, flags: u64) -> KResult {
    let (r, w) = crate::pipe::new_pair(flags as u32);
    let cloexec = flags & 0o2_000_000 != 0;
    let p = cx.proc();
    let (rfd, wfd) = {
        let mut fds = p.fds.lock();
        let rfd = fds.alloc(r, cloexec, 0)?;
        match fds.alloc(w, cloexec, 0) {
            Ok(wfd) => (rfd, wfd),
            Err(e) => {
                let _ = fds.close(rfd);
                return Err(e);
            }
        }
    };
    if let Err(e) = cx.write(fdsp, &[rfd, wfd]) {
        let mut fds = p.fds.lock();
        let _ = fds.close(rfd);
        let _ = fds.close(wfd);
        return Err(e);
    }
    Ok(0)
}

fn poll_one(cx: &Ctx<'_>, f: i32, events: u32) -> u32 {
    let p = cx.proc();
    let fds = p.fds.lock();
    match fds.get(f) {
        Ok(file) => file.poll(events | 0x18) & (events | 0x18),
        Err(_) => 0x20, // POLLNVAL
    }
}

/// Ends a readiness wait with nothing ready: `Ok(())` to return 0 now (zero timeout or the
/// deadline passed), `EBLOCK` to sleep until an event or the deadline (`None`: no timeout).
fn wait_ready(cx: &mut Ctx<'_>, timeout_ns: Option<u64>) -> Result<(), Errno> {
    match timeout_ns {
        Some(0) => Ok(()),
        Some(ns) => crate::sys::time::block_for(cx, || ns),
        None => Err(super::EBLOCK),
    }
}

/// `poll(2)`: blocks until an fd is ready, a signal arrives or the timeout passes.
pub fn poll(cx: &mut Ctx<'_>, fdsp: u64, nfds: u64, timeout_ms: i64) -> KResult {
    let timeout = (timeout_ms >= 0).then(|| timeout_ms as u64 * 1_000_000);
    poll_ns(cx, fdsp, nfds, timeout)
}

fn poll_ns(cx: &mut Ctx<'_>, fdsp: u64, nfds: u64, timeout: Option<u64>) -> KResult {
    if nfds > 4096 {
        return Err(Errno::EINVAL);
    }
    let raw = cx.copy_in(fdsp, nfds as usize * 8)?;
    let mut out = raw.clone();
    let mut ready = 0;
    for (i, e) in raw.chunks_exact(8).enumerate() {
        let f = i32::from_le_bytes([e[0], e[1], e[2], e[3]]);
        let events = u16::from_le_bytes([e[4], e[5]]);
        let rev = if f < 0 { 0 } else { poll_one(cx, f, u32::from(events)) as u16 };
        out[i * 8 + 6..i * 8 + 8].copy_from_slice(&rev.to_le_bytes());
        if rev != 0 {
            ready += 1;
        }
    }
    if ready == 0 {
        wait_ready(cx, timeout)?;
    }
    cx.copy_out(fdsp, &out)?;
    Ok(ready)
}

/// `ppoll(2)`: with the signal mask at `a[3]` for the wait (`super::epoll::set_wait_mask`).
pub fn ppoll(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let timeout = super::epoll::read_timeout(cx, a[2])?;
    super::epoll::set_wait_mask(cx, a[3], a[4])?;
    let r = poll_ns(cx, a[0], a[1], timeout);
    super::epoll::end_wait_mask(cx, r)
}

/// `select(2)` / `pselect6(2)` (`pselect` = true: the timeout is a timespec and `a[5]`
/// points to `{ const sigset_t *ss; size_t ss_len; }`, the mask for the wait).
pub fn select(cx: &mut Ctx<'_>, a: [u64; 6], pselect: bool) -> KResult {
    if pselect && a[5] != 0 {
        let m: [u64; 2] = cx.read(a[5])?;
        super::epoll::set_wait_mask(cx, m[0], m[1])?;
    }
    let r = select_inner(cx, a, pselect);
    super::epoll::end_wait_mask(cx, r)
}

fn select_inner(cx: &mut Ctx<'_>, a: [u64; 6], pselect: bool) -> KResult {
    if (a[0] as i32) < 0 {
        return Err(Errno::EINVAL);
    }
    let nfds = a[0].min(1024) as usize;
    let words = nfds.div_ceil(64);
    let timeout = if a[4] == 0 {
        None
    } else {
        let t: [i64; 2] = cx.read(a[4])?;
        let sub = if pselect { t[1].max(0) as u64 } else { t[1].max(0) as u64 * 1000 };
        Some((t[0].max(0) as u64).saturating_mul(1_000_000_000).saturating_add(sub))
    };
    let mut ready = 0i64;
    let mut results: Vec<(u64, Vec<u64>)> = Vec::new();
    for (set, events) in [(a[1], 0x1u32), (a[2], 0x4), (a[3], 0x2)] {
        if set == 0 {
            continue;
        }
        let mut bits: Vec<u64> = Vec::with_capacity(words);
        for w in 0..words {
            bits.push(cx.read(set + w as u64 * 8)?);
        }
        for (w, word) in bits.iter_mut().enumerate() {
            for b in 0..64 {
                let f = w * 64 + b;
                if f >= nfds || *word & (1 << b) == 0 {
                    continue;
                }
                let rev = poll_one(cx, f as i32, events);
                if rev & 0x20 != 0 {
                    return Err(Errno::EBADF);
                }
                if rev & (events | 0x18) != 0 {
                    ready += 1;
                } else {
                    *word &= !(1 << b);
                }
            }
        }
        results.push((set, bits));
    }
    if ready == 0 {
        wait_ready(cx, timeout)?;
    }
    for (set, bits) in results {
        for (w, word) in bits.iter().enumerate() {
            cx.write(set + w as u64 * 8, word)?;
        }
    }
    Ok(ready)
}

/// `sendfile(2)`: copies through a kernel buffer.
pub fn sendfile(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    // Linux's do_sendfile clamps the count to MAX_RW_COUNT: without it, /dev/zero to /dev/null
    // with a count of 2^46 kept a vCPU in the kernel for an hour (found by tests/fuzz.rs).
    let (out_fd, in_fd, offp, count) = (fd(a[0]), fd(a[1]), a[2], (a[3] as usize).min(gfs::MAX_RW_COUNT));
    let p = cx.proc();
    let fds = p.fds.lock().clone();
    let mut off: Option<i64> = if offp == 0 { None } else { Some(cx.read(offp)?) };
    let mut done = 0usize;
    let mut buf = vec![0u8; count.min(CHUNK)];
    while done < count {
        let want = (count - done).min(CHUNK);
        let read = match off {
            Some(o) => gfs::pread64(&fds, in_fd, &mut buf[..want], o),
            None => gfs::read(&fds, in_fd, &mut buf[..want]),
        };
        let n = match read {
            Ok(n) => n,
            // What was copied already stays copied: report it, not the error.
            Err(_) if done > 0 => break,
            Err(Errno::EAGAIN) if blocking(&p, in_fd) => return Err(super::EBLOCK),
            Err(e) => return Err(e),
        };
        if n == 0 {
            break;
        }
        // Bytes read but not written go back to the input (a full pipe takes only part):
        // with an explicit offset nothing moved; otherwise rewind the file offset.
        let rewind = off.is_none();
        let unread = |k: usize| {
            if rewind && k > 0 {
                let _ = gfs::lseek(&fds, in_fd, -(k as i64), linux_raw_sys::general::SEEK_CUR);
            }
        };
        let w = match gfs::write(&fds, out_fd, &buf[..n]) {
            Ok(w) => w,
            Err(e) => {
                unread(n);
                let e = write_failed(&p, out_fd, e);
                if done == 0 {
                    return Err(e);
                }
                break;
            }
        };
        if let Some(o) = off.as_mut() {
            *o += w as i64;
        }
        done += w;
        if w < n {
            unread(n - w);
            break;
        }
    }
    if let Some(o) = off {
        cx.write(offp, &o)?;
    }
    Ok(done as i64)
}
