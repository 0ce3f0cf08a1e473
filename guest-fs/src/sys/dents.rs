//! `getdents64(2)`: `struct linux_dirent64` records (`d_ino` u64, `d_off` i64, `d_reclen`
//! u16, `d_type` u8, NUL-terminated `d_name`, padded to 8 bytes), `.` and `..` first, then
//! entries in creation order; `d_off` is the position to resume from (see `dir.rs`).

use crate::dir::FIRST_COOKIE;
use crate::errno::{Errno, Result};
use crate::fdtable::FdTable;
use crate::inode::FileType;

/// Size of the fixed part of `linux_dirent64`.
const HEADER: usize = 19;

fn put(buf: &mut [u8], at: usize, ino: u64, off: u64, dtype: u8, name: &[u8]) -> Option<usize> {
    let reclen = (HEADER + name.len() + 1).next_multiple_of(8);
    let rec = buf.get_mut(at..at + reclen)?;
    rec[0..8].copy_from_slice(&ino.to_le_bytes());
    rec[8..16].copy_from_slice(&off.to_le_bytes());
    rec[16..18].copy_from_slice(&(reclen as u16).to_le_bytes());
    rec[18] = dtype;
    rec[HEADER..HEADER + name.len()].copy_from_slice(name);
    rec[HEADER + name.len()..].fill(0);
    Some(reclen)
}

/// `getdents64(2)`: fills `buf` with as many records as fit, starting at the description's
/// position, and returns the bytes used (0 at the end). `EBADF` (also `O_PATH`),
/// `ENOTDIR`, `EINVAL` if `buf` cannot hold the next record, `ENOENT` for a removed
/// directory.
pub fn getdents64(fds: &FdTable, fd: i32, buf: &mut [u8]) -> Result<usize> {
    let f = fds.get(fd)?;
    if f.is_path_only() {
        return Err(Errno::EBADF);
    }
    let dir = f.inode().filter(|i| i.is_dir()).ok_or(Errno::ENOTDIR)?;
    if crate::foreign::is_foreign(dir) {
        return foreign_dents(dir, &mut f.pos.lock(), buf);
    }
    let mut pos = f.pos.lock();
    let st = dir.lock();
    if st.nlink == 0 {
        return Err(Errno::ENOENT);
    }
    let d = st.dir().ok_or(Errno::ENOTDIR)?;
    let dtype_dir = FileType::Directory.dirent_type();
    let mut used = 0;
    loop {
        let (ino, off, dtype, name): (u64, u64, u8, &[u8]) = match *pos {
            0 => (dir.ino(), 1, dtype_dir, b"."),
            1 => {
                let parent = d.parent.upgrade().map_or(dir.ino(), |p| p.ino());
                (parent, 2, dtype_dir, b"..")
            }
            p => match d.next_after(p.max(FIRST_COOKIE - 1)) {
                Some((cookie, e)) => (e.inode.ino(), cookie, e.inode.file_type().dirent_type(), &e.name),
                None => break,
            },
        };
        match put(buf, used, ino, off, dtype, name) {
            Some(n) => used += n,
            None if used == 0 => return Err(Errno::EINVAL),
            None => break,
        }
        *pos = off;
    }
    Ok(used)
}

/// `getdents64` of a mounted filesystem's directory: `.` and `..` here, the rest from
/// [`crate::InodeOps::readdir`] (names checked; positions are the filesystem's).
fn foreign_dents(dir: &crate::inode::InodeRef, pos: &mut u64, buf: &mut [u8]) -> Result<usize> {
    let dtype_dir = FileType::Directory.dirent_type();
    let mut used = 0;
    while *pos < 2 {
        let (ino, name): (u64, &[u8]) = if *pos == 0 {
            (dir.ino(), b".")
        } else {
            (crate::path::fs_parent(dir).map_or(dir.ino(), |p| p.ino()), b"..")
        };
        match put(buf, used, ino, *pos + 1, dtype_dir, name) {
            Some(n) => used += n,
            None if used == 0 => return Err(Errno::EINVAL),
            None => return Ok(used),
        }
        *pos += 1;
    }
    let ops = crate::foreign::ops_of(dir)?;
    let start = if *pos == 2 { 0 } else { *pos };
    let mut err = None;
    let mut last = *pos;
    ops.readdir(start, &mut |e| {
        if !crate::foreign::valid_name(&e.name) || e.next <= 2 {
            err = Some(Errno::EIO);
            return false;
        }
        let dtype = e.ftype.map_or(0, |t| t.dirent_type());
        match put(buf, used, e.ino, e.next, dtype, &e.name) {
            Some(n) => {
                used += n;
                last = e.next;
                true
            }
            None => false,
        }
    })?;
    *pos = last;
    if used == 0 && let Some(e) = err {
        return Err(e);
    }
    if used == 0 && last == start.max(2) && buf.len() < HEADER + 2 {
        return Err(Errno::EINVAL);
    }
    Ok(used)
}
