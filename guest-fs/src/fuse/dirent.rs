//! Parsing of `READDIR` and `READDIRPLUS` reply payloads: a sequence of 8-byte-aligned
//! `fuse_dirent` (or `fuse_direntplus`) records, each checked before use (`linux/fuse.h`,
//! `FUSE_DIRENT_SIZE`; Linux `fs/fuse/readdir.c` applies the same checks).

use super::abi::{self, DIRENT_NAME_OFFSET, DirentHead, EntryOut, read_pod};
use super::types::{DirEntry, Entry};
use crate::errno::{Errno, Result};
use crate::path::NAME_MAX;
use alloc::vec::Vec;

/// Largest `d_type` value (`DT_WHT` = 14).
const DT_MAX: u32 = 14;

fn check_name(name: &[u8]) -> Result<()> {
    if name.is_empty() || name.len() > NAME_MAX || name.iter().any(|&c| c == b'/' || c == 0) {
        return Err(Errno::EIO);
    }
    Ok(())
}

/// Parses one `fuse_dirent` at the start of `buf`; returns it and the record's padded size.
fn parse_dirent(buf: &[u8]) -> Result<(DirEntry, usize)> {
    let head: DirentHead = read_pod(buf).ok_or(Errno::EIO)?;
    let namelen = head.namelen as usize;
    if namelen > NAME_MAX || head.typ > DT_MAX {
        return Err(Errno::EIO);
    }
    let end = DIRENT_NAME_OFFSET + namelen;
    let name = buf.get(DIRENT_NAME_OFFSET..end).ok_or(Errno::EIO)?;
    check_name(name)?;
    // The last record's padding may be cut off by the buffer end (as Linux accepts).
    let padded = (end + 7) & !7;
    Ok((
        DirEntry {
            ino: head.ino,
            off: head.off,
            typ: head.typ as u8,
            name: name.to_vec(),
        },
        padded.min(buf.len()),
    ))
}

/// Parses a `READDIR` payload. Errors: `EIO` for a malformed record.
pub fn parse_readdir(mut buf: &[u8]) -> Result<Vec<DirEntry>> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let (e, size) = parse_dirent(buf)?;
        out.push(e);
        buf = &buf[size..];
    }
    Ok(out)
}

/// Parses a `READDIRPLUS` payload: each record is an entry (`None` for node id 0, which
/// carries no lookup) and a dirent. On a malformed record the error holds the node ids whose
/// lookups the server counted in this reply (so they can be forgotten).
pub fn parse_readdirplus(
    mut buf: &[u8],
) -> core::result::Result<Vec<(DirEntry, Option<Entry>)>, Vec<u64>> {
    let mut out: Vec<(DirEntry, Option<Entry>)> = Vec::new();
    let mut counted: Vec<u64> = Vec::new();
    let esize = core::mem::size_of::<EntryOut>();
    while !buf.is_empty() {
        let Some(raw) = read_pod::<abi::EntryOut>(buf) else {
            return Err(counted);
        };
        if raw.nodeid != 0 {
            counted.push(raw.nodeid);
        }
        let Ok(entry) = Entry::from_wire(&raw) else {
            return Err(counted);
        };
        let Ok((d, size)) = parse_dirent(&buf[esize..]) else {
            return Err(counted);
        };
        out.push((d, entry));
        buf = &buf[esize + size..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn rec(ino: u64, off: u64, typ: u32, name: &[u8]) -> Vec<u8> {
        let h = DirentHead {
            ino,
            off,
            namelen: name.len() as u32,
            typ,
        };
        let mut v = abi::as_bytes(&h).to_vec();
        v.extend_from_slice(name);
        while !v.len().is_multiple_of(8) {
            v.push(0);
        }
        v
    }

    #[test]
    fn parses_records() {
        let mut b = rec(5, 1, 4, b".");
        b.extend(rec(9, 2, 8, b"hello-world"));
        let v = parse_readdir(&b).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[1].name, b"hello-world");
        assert_eq!(v[1].off, 2);
    }

    #[test]
    fn rejects_bad_names_and_sizes() {
        assert_eq!(parse_readdir(&rec(1, 1, 8, b"a/b")), Err(Errno::EIO));
        assert_eq!(parse_readdir(&rec(1, 1, 8, b"a\0b")), Err(Errno::EIO));
        assert_eq!(parse_readdir(&rec(1, 1, 8, b"")), Err(Errno::EIO));
        assert_eq!(parse_readdir(&rec(1, 1, 99, b"x")), Err(Errno::EIO));
        let mut long = rec(1, 1, 8, b"abc");
        long[16] = 200; // namelen past the buffer
        assert_eq!(parse_readdir(&long), Err(Errno::EIO));
        assert_eq!(parse_readdir(&[0u8; 7]), Err(Errno::EIO));
        let name = vec![b'x'; 256];
        assert_eq!(parse_readdir(&rec(1, 1, 8, &name)), Err(Errno::EIO));
    }
}
