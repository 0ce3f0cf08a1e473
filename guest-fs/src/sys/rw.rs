//! Data transfer and offsets: `read(2)`, `write(2)`, `pread64`/`pwrite64(2)`, `lseek(2)`,
//! `ftruncate`/`truncate(2)`, `fsync(2)`.

use crate::context::FsContext;
use crate::errno::{Errno, Result};
use crate::fdtable::FdTable;
use crate::file::{OpenFile, Target};
use crate::inode::{FileType, InodeState};
use crate::path;
use crate::perm::{self, MAY_WRITE};
use crate::time::Timespec;
use crate::vfs::Vfs;
use linux_raw_sys::general as g;

/// Largest single transfer (Linux `MAX_RW_COUNT`).
pub const MAX_RW_COUNT: usize = 0x7fff_f000;

/// relatime: update atime when it is not newer than mtime or ctime, or a day old.
fn touch_atime(st: &mut InodeState, now: Timespec) {
    if st.atime <= st.mtime || st.atime <= st.ctime || now.sec - st.atime.sec >= 86400 {
        st.atime = now;
    }
}

impl OpenFile {
    /// `read(2)` at the file offset (advancing it). `EBADF` if not open for reading,
    /// `EISDIR` for directories; devices and kernel objects read through their driver.
    pub fn read(&self, buf: &mut [u8]) -> Result<usize> {
        if !self.readable() {
            return Err(Errno::EBADF);
        }
        let buf_len = buf.len().min(MAX_RW_COUNT);
        let buf = &mut buf[..buf_len];
        match &self.target {
            Target::Inode(i) => {
                let mut pos = self.pos.lock();
                crate::cachehook::before_read(i, *pos, buf_len as u64);
                let mut st = i.lock();
                let f = match i.file_type() {
                    FileType::Directory => return Err(Errno::EISDIR),
                    _ => st.file().ok_or(Errno::EINVAL)?,
                };
                let n = f.read_at(*pos, buf);
                *pos += n as u64;
                touch_atime(&mut st, i.shared.now());
                Ok(n)
            }
            Target::Device { dev, .. } => dev.read(buf),
            Target::Custom { ops, .. } => ops.read(buf, self.status_flags()),
            Target::Foreign { file, inode } => {
                if inode.is_dir() {
                    return Err(Errno::EISDIR);
                }
                let mut pos = self.pos.lock();
                crate::cachehook::before_read(inode, *pos, buf_len as u64);
                let n = file.pread(buf, *pos)?.min(buf_len);
                *pos += n as u64;
                Ok(n)
            }
        }
    }

    /// `write(2)` at the file offset (or at end of file with `O_APPEND`), advancing it.
    /// `EBADF` if not open for writing; `EFBIG`, `ENOSPC` from the store.
    pub fn write(&self, buf: &[u8]) -> Result<usize> {
        if !self.writable() {
            return Err(Errno::EBADF);
        }
        let buf = &buf[..buf.len().min(MAX_RW_COUNT)];
        match &self.target {
            Target::Inode(i) => {
                let mut pos = self.pos.lock();
                let append = self.status_flags() & g::O_APPEND != 0;
                let n = write_inode(i, if append { None } else { Some(*pos) }, buf)?;
                *pos = n.1;
                Ok(n.0)
            }
            Target::Device { dev, .. } => dev.write(buf),
            Target::Custom { ops, .. } => ops.write(buf, self.status_flags()),
            Target::Foreign { file, inode } => {
                let mut pos = self.pos.lock();
                let at = if self.status_flags() & g::O_APPEND != 0 { crate::foreign::getattr(inode)?.size } else { *pos };
                let n = file.pwrite(buf, at)?.min(buf.len());
                *pos = at + n as u64;
                crate::cachehook::after_write(inode, at, &buf[..n]);
                Ok(n)
            }
        }
    }

    /// `pread64(2)`: reads at `offset` without moving the file offset. `EINVAL` for a
    /// negative offset, `ESPIPE` for terminals and kernel objects.
    pub fn pread(&self, buf: &mut [u8], offset: i64) -> Result<usize> {
        if !self.readable() {
            return Err(Errno::EBADF);
        }
        let off = u64::try_from(offset).map_err(|_| Errno::EINVAL)?;
        let len = buf.len().min(MAX_RW_COUNT);
        match &self.target {
            Target::Inode(i) => {
                if i.is_dir() {
                    return Err(Errno::EISDIR);
                }
                crate::cachehook::before_read(i, off, len as u64);
                let mut st = i.lock();
                let n = st.file().ok_or(Errno::EINVAL)?.read_at(off, &mut buf[..len]);
                touch_atime(&mut st, i.shared.now());
                Ok(n)
            }
            Target::Device { dev, tty: None, .. } => dev.read(&mut buf[..len]),
            Target::Foreign { file, inode } => {
                if inode.is_dir() {
                    return Err(Errno::EISDIR);
                }
                crate::cachehook::before_read(inode, off, len as u64);
                Ok(file.pread(&mut buf[..len], off)?.min(len))
            }
            _ => Err(Errno::ESPIPE),
        }
    }

    /// `pwrite64(2)`: writes at `offset` without moving the file offset (with `O_APPEND`
    /// Linux appends anyway; so do we). `EINVAL` for a negative offset, `ESPIPE` for
    /// terminals and kernel objects.
    pub fn pwrite(&self, buf: &[u8], offset: i64) -> Result<usize> {
        if !self.writable() {
            return Err(Errno::EBADF);
        }
        let off = u64::try_from(offset).map_err(|_| Errno::EINVAL)?;
        let buf = &buf[..buf.len().min(MAX_RW_COUNT)];
        match &self.target {
            Target::Inode(i) => {
                let append = self.status_flags() & g::O_APPEND != 0;
                Ok(write_inode(i, if append { None } else { Some(off) }, buf)?.0)
            }
            Target::Device { dev, tty: None, .. } => dev.write(buf),
            Target::Foreign { file, inode } => {
                let at = if self.status_flags() & g::O_APPEND != 0 { crate::foreign::getattr(inode)?.size } else { off };
                let n = file.pwrite(buf, at)?.min(buf.len());
                crate::cachehook::after_write(inode, at, &buf[..n]);
                Ok(n)
            }
            _ => Err(Errno::ESPIPE),
        }
    }

    /// `lseek(2)`: `SEEK_SET`, `SEEK_CUR`, `SEEK_END`, `SEEK_DATA`, `SEEK_HOLE` on regular
    /// files; `SEEK_SET`/`SEEK_CUR` on directories (positions are `getdents64` cookies);
    /// 0 for non-tty devices (as `/dev/null`); `ESPIPE` for terminals and kernel objects;
    /// `EINVAL` for a bad `whence` or a negative result; `ENXIO` from DATA/HOLE past EOF.
    pub fn lseek(&self, offset: i64, whence: u32) -> Result<i64> {
        if self.is_path_only() {
            return Err(Errno::EBADF);
        }
        let inode = match &self.target {
            Target::Inode(i) => i,
            Target::Foreign { inode, .. } => {
                let mut pos = self.pos.lock();
                let cur = *pos as i64;
                let new = match whence {
                    g::SEEK_SET => offset,
                    g::SEEK_CUR => cur.checked_add(offset).ok_or(Errno::EINVAL)?,
                    g::SEEK_END if !inode.is_dir() => {
                        let size = crate::foreign::getattr(inode)?.size as i64;
                        size.checked_add(offset).ok_or(Errno::EINVAL)?
                    }
                    // The whole file is data (no hole map from the filesystem).
                    g::SEEK_DATA | g::SEEK_HOLE if !inode.is_dir() => {
                        let size = crate::foreign::getattr(inode)?.size as i64;
                        if offset < 0 || offset >= size {
                            return Err(Errno::ENXIO);
                        }
                        if whence == g::SEEK_DATA { offset } else { size }
                    }
                    _ => return Err(Errno::EINVAL),
                };
                if new < 0 {
                    return Err(Errno::EINVAL);
                }
                *pos = new as u64;
                return Ok(new);
            }
            Target::Device { tty: None, .. } => return Ok(0),
            _ => return Err(Errno::ESPIPE),
        };
        let mut pos = self.pos.lock();
        let cur = *pos as i64;
        let new = if inode.is_dir() {
            match whence {
                g::SEEK_SET => offset,
                g::SEEK_CUR => cur.checked_add(offset).ok_or(Errno::EINVAL)?,
                _ => return Err(Errno::EINVAL),
            }
        } else {
            let st = inode.lock();
            let size = st.size() as i64;
            match whence {
                g::SEEK_SET => offset,
                g::SEEK_CUR => cur.checked_add(offset).ok_or(Errno::EINVAL)?,
                g::SEEK_END => size.checked_add(offset).ok_or(Errno::EINVAL)?,
                g::SEEK_DATA | g::SEEK_HOLE => {
                    let off = u64::try_from(offset).map_err(|_| Errno::ENXIO)?;
                    let f = st.file().ok_or(Errno::EINVAL)?;
                    let r = if whence == g::SEEK_DATA { f.seek_data(off)? } else { f.seek_hole(off)? };
                    r as i64
                }
                _ => return Err(Errno::EINVAL),
            }
        };
        if new < 0 {
            return Err(Errno::EINVAL);
        }
        *pos = new as u64;
        Ok(new)
    }
}

/// Writes `buf` into a regular file at `at` (or its end when `None`); returns the bytes
/// written and the offset after them. Updates mtime/ctime.
fn write_inode(i: &crate::inode::Inode, at: Option<u64>, buf: &[u8]) -> Result<(usize, u64)> {
    let now = i.shared.now();
    let mut st = i.lock();
    let f = st.file_mut().ok_or(Errno::EINVAL)?;
    let off = at.unwrap_or(f.size());
    let n = f.write_at(&i.shared, off, buf)?;
    if n > 0 {
        st.touch_modify(now);
    }
    drop(st);
    crate::cachehook::after_write(i, off, &buf[..n]);
    Ok((n, off + n as u64))
}

/// `read(2)` on `fd`.
pub fn read(fds: &FdTable, fd: i32, buf: &mut [u8]) -> Result<usize> {
    fds.get(fd)?.read(buf)
}

/// `write(2)` on `fd`.
pub fn write(fds: &FdTable, fd: i32, buf: &[u8]) -> Result<usize> {
    fds.get(fd)?.write(buf)
}

/// `pread64(2)` on `fd`.
pub fn pread64(fds: &FdTable, fd: i32, buf: &mut [u8], offset: i64) -> Result<usize> {
    fds.get(fd)?.pread(buf, offset)
}

/// `pwrite64(2)` on `fd`.
pub fn pwrite64(fds: &FdTable, fd: i32, buf: &[u8], offset: i64) -> Result<usize> {
    fds.get(fd)?.pwrite(buf, offset)
}

/// `lseek(2)` on `fd`; returns the new offset.
pub fn lseek(fds: &FdTable, fd: i32, offset: i64, whence: u32) -> Result<i64> {
    fds.get(fd)?.lseek(offset, whence)
}

fn set_len(i: &crate::inode::InodeRef, len: i64) -> Result<()> {
    let len = u64::try_from(len).map_err(|_| Errno::EINVAL)?;
    i.shared.check_writable()?;
    if crate::foreign::is_foreign(i) {
        let set = crate::ops::SetAttr { size: Some(len), ..Default::default() };
        let a = crate::foreign::ops_of(i)?.setattr(&set, &crate::ops::Creds { uid: 0, gid: 0, pid: 0 })?;
        i.lock().set_attr(&a);
        crate::cachehook::after_resize(i, len);
        return Ok(());
    }
    let now = i.shared.now();
    let mut st = i.lock();
    let f = st.file_mut().ok_or(Errno::EINVAL)?;
    f.set_size(&i.shared, len)?;
    st.touch_modify(now);
    drop(st);
    crate::cachehook::after_resize(i, len);
    Ok(())
}

/// `ftruncate(2)`: `EBADF` for a bad or `O_PATH` fd, `EINVAL` if not a regular file open
/// for writing or `length < 0`, `EFBIG`.
pub fn ftruncate(fds: &FdTable, fd: i32, length: i64) -> Result<()> {
    let f = fds.get(fd)?;
    if f.is_path_only() {
        return Err(Errno::EBADF);
    }
    if length < 0 || !f.writable() || !f.is_regular() {
        return Err(Errno::EINVAL);
    }
    set_len(f.inode().ok_or(Errno::EINVAL)?, length)
}

/// `truncate(2)`: follows symlinks; `EISDIR` for directories, `EINVAL` for other
/// non-regular files or `length < 0`, `EACCES` without write permission.
pub fn truncate(_vfs: &Vfs, ctx: &FsContext, fds: &FdTable, path: &[u8], length: i64) -> Result<()> {
    let i = path::resolve(ctx, fds, path::AT_FDCWD, path, true)?;
    match i.file_type() {
        FileType::Directory => return Err(Errno::EISDIR),
        FileType::Regular => {}
        _ => return Err(Errno::EINVAL),
    }
    if length < 0 {
        return Err(Errno::EINVAL);
    }
    perm::check(ctx, FileType::Regular, &i.lock(), MAY_WRITE)?;
    set_len(&i, length)
}

/// `fsync(2)`/`fdatasync(2)`: data is always in memory, so a no-op for files and
/// directories; `EINVAL` for devices and kernel objects (as for pipes), `EBADF` for `O_PATH`.
pub fn fsync(fds: &FdTable, fd: i32) -> Result<()> {
    fsync_data(fds, fd, false)
}

/// [`fsync`] with `datasync` for `fdatasync(2)` (passed to a mounted filesystem).
pub fn fsync_data(fds: &FdTable, fd: i32, datasync: bool) -> Result<()> {
    let f = fds.get(fd)?;
    if f.is_path_only() {
        return Err(Errno::EBADF);
    }
    match &f.target {
        Target::Inode(i) => {
            crate::cachehook::sync(i);
            Ok(())
        }
        Target::Foreign { file, inode } => {
            crate::cachehook::sync(inode);
            file.fsync(datasync)
        }
        _ => Err(Errno::EINVAL),
    }
}

/// `syncfs(2)`: writes back the filesystem `fd` is on (a mounted filesystem's
/// [`crate::Filesystem::sync`]; nothing to do for memory). `EBADF`; any fd works (pipes too).
pub fn syncfs(fds: &FdTable, fd: i32) -> Result<()> {
    let f = fds.get(fd)?;
    match f.inode().and_then(|i| i.shared.fs.clone()) {
        Some(fs) => fs.sync(),
        None => Ok(()),
    }
}

/// `FALLOC_FL_KEEP_SIZE`.
pub const FALLOC_FL_KEEP_SIZE: u32 = 1;
/// `FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE` (punching requires keeping the size).
const FALLOC_PUNCH: u32 = 3;

/// `fallocate(2)`: mode 0 (allocate, extending the size like `posix_fallocate`),
/// `FALLOC_FL_KEEP_SIZE` and `FALLOC_FL_PUNCH_HOLE|FALLOC_FL_KEEP_SIZE` on the in-memory store (pages of a hole are allocated when written:
/// tmpfs reserves, we do not); a mounted filesystem gets every mode. `EINVAL` for
/// `offset < 0` or `len <= 0`, `EFBIG` past the largest size, `EBADF` unless open for
/// writing, `EISDIR`, `ENODEV` for non-regular files, `ESPIPE` for pipes, `EOPNOTSUPP` for
/// other modes, `EROFS`.
pub fn fallocate(fds: &FdTable, fd: i32, mode: u32, offset: i64, len: i64) -> Result<()> {
    let f = fds.get(fd)?;
    if offset < 0 || len <= 0 {
        return Err(Errno::EINVAL);
    }
    if !f.writable() {
        return Err(Errno::EBADF);
    }
    let end = offset.checked_add(len).ok_or(Errno::EFBIG)?;
    if end as u64 > crate::filedata::MAX_FILE_SIZE {
        return Err(Errno::EFBIG);
    }
    let inode = match &f.target {
        Target::Custom { inode: None, .. } => return Err(Errno::ESPIPE),
        Target::Custom { .. } | Target::Device { .. } => return Err(Errno::ENODEV),
        Target::Foreign { inode, .. } | Target::Inode(inode) => inode.clone(),
    };
    if inode.is_dir() {
        return Err(Errno::EISDIR);
    }
    if inode.file_type() != FileType::Regular {
        return Err(Errno::ENODEV);
    }
    inode.shared.check_writable()?;
    if let Target::Foreign { file, .. } = &f.target {
        file.fallocate(mode, offset as u64, len as u64)?;
        // FALLOC_FL_PUNCH_HOLE (2) and FALLOC_FL_ZERO_RANGE (0x10) change the bytes.
        if mode & 0x12 != 0 {
            crate::cachehook::after_zero(&inode, offset as u64, len as u64);
        }
        return Ok(());
    }
    match mode {
        0 => {
            if end as u64 > inode.size() {
                set_len(&inode, end)?;
            }
            Ok(())
        }
        FALLOC_FL_KEEP_SIZE => Ok(()),
        FALLOC_PUNCH => {
            let now = inode.shared.now();
            let shared = inode.shared.clone();
            let mut st = inode.lock();
            let f = st.file_mut().ok_or(Errno::ENODEV)?;
            f.punch_hole(&shared, offset as u64, len as u64);
            st.touch_modify(now);
            drop(st);
            crate::cachehook::after_zero(&inode, offset as u64, len as u64);
            Ok(())
        }
        _ => Err(Errno::EOPNOTSUPP),
    }
}
