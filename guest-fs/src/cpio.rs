//! Initramfs loader for SVR4 cpio archives, "newc" (`070701`) and "crc" (`070702`)
//! formats, as the Linux kernel unpacks them (`Documentation/driver-api/early-userspace/
//! buffer-format.rst`, `init/initramfs.c`). The archive is untrusted input: every length
//! is checked, nothing panics, a malformed archive is `EINVAL`.
//!
//! Header: 6-byte magic, then 13 fields of 8 ASCII hex digits: ino, mode, uid, gid, nlink,
//! mtime, filesize, devmajor, devminor, rdevmajor, rdevminor, namesize (with the NUL),
//! check (crc format: 32-bit sum of a regular file's data bytes; verified, though
//! Linux ignores it). Name and data are each padded to a
//! multiple of 4 bytes (counting from the start of the header). `TRAILER!!!` ends an
//! archive; archives may be concatenated with zero padding between them.

use crate::context::FsContext;
use crate::errno::{Errno, Result};
use crate::filedata::FileData;
use crate::inode::{Body, FileType, InodeRef};
use crate::path::{self, PATH_MAX};
use crate::time::Timespec;
use crate::vfs::{NodeSpec, Vfs};
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

const HEADER_LEN: usize = 110;
const TRAILER: &[u8] = b"TRAILER!!!";

/// One parsed header.
struct Header {
    crc: bool,
    ino: u32,
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u32,
    mtime: u32,
    filesize: u32,
    devmajor: u32,
    devminor: u32,
    rdevmajor: u32,
    rdevminor: u32,
    namesize: u32,
    check: u32,
}

fn hex8(b: &[u8]) -> Result<u32> {
    let mut v = 0u32;
    for &c in b {
        let d = (c as char).to_digit(16).ok_or(Errno::EINVAL)?;
        v = (v << 4) | d;
    }
    Ok(v)
}

fn parse_header(h: &[u8]) -> Result<Header> {
    let crc = match h.get(..6) {
        Some(b"070701") => false,
        Some(b"070702") => true,
        _ => return Err(Errno::EINVAL),
    };
    let mut f = [0u32; 13];
    for (i, v) in f.iter_mut().enumerate() {
        *v = hex8(h.get(6 + i * 8..14 + i * 8).ok_or(Errno::EINVAL)?)?;
    }
    Ok(Header {
        crc,
        ino: f[0],
        mode: f[1],
        uid: f[2],
        gid: f[3],
        nlink: f[4],
        mtime: f[5],
        filesize: f[6],
        devmajor: f[7],
        devminor: f[8],
        rdevmajor: f[9],
        rdevminor: f[10],
        namesize: f[11],
        check: f[12],
    })
}

fn align4(x: usize) -> usize {
    x.next_multiple_of(4)
}

/// Where the parser is.
enum State {
    /// Between archives (at the start or after a trailer): zeros may pad; end is fine.
    Between,
    /// Inside an archive: a header must follow; end of input is an error.
    Inside,
}

/// Path components of an archive name: leading `/` and `./` dropped, `.` skipped; `..`
/// and empty names are `EINVAL`. An empty result names the root.
fn components(name: &[u8]) -> Result<Vec<&[u8]>> {
    let mut out = Vec::new();
    for c in name.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err(Errno::EINVAL),
            c if c.len() > path::NAME_MAX => return Err(Errno::ENAMETOOLONG),
            c => out.push(c),
        }
    }
    Ok(out)
}

struct Loader<'a> {
    vfs: &'a Vfs,
    ctx: FsContext,
    links: BTreeMap<(u32, u32, u32), InodeRef>,
    dir_times: Vec<(InodeRef, Timespec)>,
}

impl Loader<'_> {
    /// The directory for `comps` (created 0755 where missing, symlinks followed).
    fn parent_dir(&self, comps: &[&[u8]]) -> Result<InodeRef> {
        let mut cur = self.vfs.root();
        for c in comps {
            let child = cur.lock().dir().ok_or(Errno::ENOTDIR)?.get(c);
            cur = match child {
                Some(ch) if ch.is_dir() => ch,
                Some(ch) if ch.file_type() == FileType::Symlink => {
                    let t = path::link_target(&ch).ok_or(Errno::EINVAL)?;
                    let d = path::walk(&self.ctx, &cur, &t, true, &mut 0)?;
                    if !d.is_dir() {
                        return Err(Errno::ENOTDIR);
                    }
                    d
                }
                Some(_) => return Err(Errno::ENOTDIR),
                None => self.vfs.ensure_dir(&cur, c, 0o755)?,
            };
        }
        Ok(cur)
    }

    /// Removes a conflicting non-directory (or empty directory) named `name` in `dir`.
    fn clear(&self, dir: &InodeRef, name: &[u8]) -> Result<()> {
        let _ns = self.vfs.ns_lock();
        let mut d = dir.lock();
        let entries = d.dir_mut().ok_or(Errno::ENOTDIR)?;
        let Some(old) = entries.get(name) else {
            return Ok(());
        };
        if old.is_dir() && !old.lock().dir().is_none_or(|x| x.is_empty()) {
            return Err(Errno::EEXIST);
        }
        entries.remove(name);
        if old.is_dir() {
            d.nlink -= 1;
        }
        drop(d);
        let mut o = old.lock();
        o.nlink = if old.is_dir() { 0 } else { o.nlink.saturating_sub(1) };
        Ok(())
    }

    fn set_meta(&mut self, node: &InodeRef, h: &Header) {
        let t = Timespec::new(i64::from(h.mtime), 0);
        {
            let mut st = node.lock();
            st.perm = h.mode & 0o7777;
            st.uid = h.uid;
            st.gid = h.gid;
            st.mtime = t;
            st.atime = t;
        }
        if node.is_dir() {
            self.dir_times.push((node.clone(), t));
        }
    }

    fn entry(&mut self, h: &Header, name: &[u8], data: &[u8]) -> Result<()> {
        let ftype = FileType::from_mode(h.mode).ok_or(Errno::EINVAL)?;
        let comps = components(name)?;
        let Some((last, parents)) = comps.split_last() else {
            // "." : the root itself.
            if ftype != FileType::Directory {
                return Err(Errno::EINVAL);
            }
            let root = self.vfs.root();
            self.set_meta(&root, h);
            return Ok(());
        };
        let dir = self.parent_dir(parents)?;
        let existing = dir.lock().dir().ok_or(Errno::ENOTDIR)?.get(last);
        if let Some(e) = &existing
            && e.is_dir()
            && ftype == FileType::Directory
        {
            self.set_meta(e, h);
            return Ok(());
        }
        if existing.is_some() {
            self.clear(&dir, last)?;
        }
        let key = (h.devmajor, h.devminor, h.ino);
        let hard = h.nlink >= 2 && ftype != FileType::Directory;
        if hard && let Some(target) = self.links.get(&key).cloned() {
            let _ns = self.vfs.ns_lock();
            self.vfs.attach_locked(&dir, last, &target)?;
            drop(_ns);
            if !data.is_empty()
                && let Some(f) = target.lock().file_mut()
            {
                f.set_size(&self.vfs.shared, 0)?;
                f.write_at(&self.vfs.shared, 0, data)?;
            }
            return Ok(());
        }
        let body = match ftype {
            FileType::Regular => {
                let mut f = FileData::default();
                f.write_at(&self.vfs.shared, 0, data)?;
                Some(Body::File(f))
            }
            FileType::Symlink => {
                let t = data.strip_suffix(b"\0").unwrap_or(data);
                if t.is_empty() || t.len() >= PATH_MAX || t.contains(&0) {
                    return Err(Errno::EINVAL);
                }
                Some(Body::Symlink(t.to_vec()))
            }
            _ => None,
        };
        let rdev = match ftype {
            FileType::CharDevice | FileType::BlockDevice => (h.rdevmajor, h.rdevminor),
            _ => (0, 0),
        };
        let spec = NodeSpec { ftype, perm: h.mode, owner: (h.uid, h.gid), body, rdev };
        let node = self.vfs.make_node(&dir, last, spec)?;
        self.set_meta(&node, h);
        if hard {
            self.links.insert(key, node);
        }
        Ok(())
    }
}

impl Vfs {
    /// Unpacks an uncompressed cpio archive (newc or crc format; several may be
    /// concatenated, zero-padded) into this filesystem, as Linux unpacks an initramfs:
    /// files, directories, symlinks, hard links (same ino/dev with `nlink >= 2`), device
    /// nodes, FIFOs and sockets with their mode, uid/gid and mtime; missing parent
    /// directories are created 0755; an existing entry is replaced (a directory is only
    /// updated). Stops at the end of the input after a `TRAILER!!!`, or at non-cpio data
    /// after one. Empty or all-zero input is an empty archive.
    ///
    /// Errors: `EINVAL` for a malformed archive (bad magic or hex, a name without NUL or
    /// with `..`, lengths past the end, a crc mismatch, unknown file type, truncation
    /// before the trailer); `ENOTDIR`, `EEXIST` (a non-empty directory in the way),
    /// `ENAMETOOLONG`, `ENOSPC`. Entries before the error stay.
    pub fn load_cpio_newc(&self, archive: &[u8]) -> Result<()> {
        let mut l = Loader { vfs: self, ctx: FsContext::new(self), links: BTreeMap::new(), dir_times: Vec::new() };
        let r = self.load_entries(&mut l, archive);
        for (d, t) in l.dir_times.drain(..) {
            let mut st = d.lock();
            st.mtime = t;
            st.atime = t;
        }
        r
    }

    fn load_entries(&self, l: &mut Loader<'_>, a: &[u8]) -> Result<()> {
        let mut off = 0usize;
        let mut state = State::Between;
        loop {
            if let State::Between = state {
                while off < a.len() && a[off] == 0 {
                    off += 1;
                }
                if off >= a.len() {
                    return Ok(());
                }
                if !a[off..].starts_with(b"07070") {
                    // Data after a trailer that is not another archive: stop there. Before
                    // any archive it means this is no cpio archive at all.
                    return if off == 0 { Err(Errno::EINVAL) } else { Ok(()) };
                }
                state = State::Inside;
            }
            let h = parse_header(a.get(off..off + HEADER_LEN).ok_or(Errno::EINVAL)?)?;
            let namesize = h.namesize as usize;
            if namesize == 0 || namesize > PATH_MAX {
                return Err(Errno::EINVAL);
            }
            let name_start = off + HEADER_LEN;
            let name = a.get(name_start..name_start + namesize).ok_or(Errno::EINVAL)?;
            let name = name.strip_suffix(b"\0").ok_or(Errno::EINVAL)?;
            if name.contains(&0) {
                return Err(Errno::EINVAL);
            }
            let data_start = align4(name_start + namesize);
            let data_end = data_start.checked_add(h.filesize as usize).ok_or(Errno::EINVAL)?;
            let data = a.get(data_start..data_end).ok_or(Errno::EINVAL)?;
            off = align4(data_end).min(a.len());
            if name == TRAILER {
                state = State::Between;
                continue;
            }
            // GNU cpio sums only regular files' data (symlinks carry check 0).
            let regular = FileType::from_mode(h.mode) == Some(FileType::Regular);
            if h.crc && regular && data.iter().fold(0u32, |s, &b| s.wrapping_add(u32::from(b))) != h.check {
                return Err(Errno::EINVAL);
            }
            l.entry(&h, name, data)?;
        }
    }
}
