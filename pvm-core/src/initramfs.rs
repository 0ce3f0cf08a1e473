//! Builds the guest's initramfs: a cpio `newc` archive (Linux's initramfs format,
//! Documentation/driver-api/early-userspace/buffer-format.rst) holding the built-in demo or a
//! host program without `--rootfs` (a `--rootfs` tree is served in place by the file server,
//! never packed).

use std::collections::BTreeSet;
use std::io::Write;

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;

/// What an archive entry says besides its name and data.
#[derive(Clone, Copy, Default)]
struct Meta {
    /// File type and permission bits.
    mode: u32,
    uid: u32,
    gid: u32,
    /// Seconds since the epoch.
    mtime: u32,
    /// Device number (major, minor) of a device node.
    rdev: (u32, u32),
}

impl Meta {
    /// Root-owned, with `mode`.
    fn root(mode: u32) -> Self {
        Self { mode, ..Self::default() }
    }
}

/// An archive under construction. Parent directories are added automatically.
#[derive(Default)]
pub struct Initramfs {
    out: Vec<u8>,
    dirs: BTreeSet<String>,
    next_ino: u32,
}

/// Turns `/a/b` or `a/b` into the archive's `a/b`.
fn archive_name(path: &str) -> String {
    path.trim_start_matches('/').trim_end_matches('/').to_string()
}

impl Initramfs {
    /// An empty archive.
    pub fn new() -> Self {
        Self::default()
    }

    fn entry(&mut self, name: &str, meta: Meta, data: &[u8]) -> std::io::Result<()> {
        self.next_ino += 1;
        let builder = cpio::newc::Builder::new(name)
            .ino(self.next_ino)
            .mode(meta.mode)
            .uid(meta.uid)
            .gid(meta.gid)
            .mtime(meta.mtime)
            .nlink(if meta.mode & 0o170000 == S_IFDIR { 2 } else { 1 })
            .rdev_major(meta.rdev.0)
            .rdev_minor(meta.rdev.1);
        let mut w = builder.write(&mut self.out, data.len() as u32);
        w.write_all(data)?;
        w.finish()?;
        Ok(())
    }

    fn ensure_parents(&mut self, name: &str) -> std::io::Result<()> {
        let mut prefix = String::new();
        let parts: Vec<&str> = name.split('/').collect();
        for part in &parts[..parts.len().saturating_sub(1)] {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            if self.dirs.insert(prefix.clone()) {
                let p = prefix.clone();
                self.entry(&p, Meta::root(S_IFDIR | 0o755), &[])?;
            }
        }
        Ok(())
    }

    /// Adds a directory (and its parents).
    pub fn add_dir(&mut self, path: &str, perm: u32) -> std::io::Result<()> {
        let name = archive_name(path);
        if name.is_empty() || self.dirs.contains(&name) {
            return Ok(());
        }
        self.ensure_parents(&name)?;
        self.dirs.insert(name.clone());
        self.entry(&name, Meta::root(S_IFDIR | (perm & 0o7777)), &[])
    }

    /// Adds a regular file (and its parent directories).
    pub fn add_file(&mut self, path: &str, perm: u32, data: &[u8]) -> std::io::Result<()> {
        let name = archive_name(path);
        self.ensure_parents(&name)?;
        self.entry(&name, Meta::root(S_IFREG | (perm & 0o7777)), data)
    }

    /// Adds the trailer and returns the archive bytes.
    ///
    /// # Errors
    /// Only if writing to memory failed (never in practice).
    pub fn finish(mut self) -> std::io::Result<Vec<u8>> {
        cpio::newc::trailer(&mut self.out)?;
        Ok(self.out)
    }
}

/// Guest memory the guest kernel's filesystem needs to hold `archive` once unpacked, bytes:
/// every regular file's data in whole 4 KiB pages plus [`ENTRY_COST`] per entry (inode,
/// directory entry, name). Parses only the `newc` headers; stops at the trailer or at the
/// first malformed header (what follows is not counted).
pub fn unpacked_size(archive: &[u8]) -> u64 {
    let hex = |b: &[u8]| std::str::from_utf8(b).ok().and_then(|s| u64::from_str_radix(s, 16).ok());
    let (mut at, mut total) = (0usize, 0u64);
    while let Some(h) = archive.get(at..at + 110) {
        let (Some(mode), Some(size), Some(namesize)) = (hex(&h[14..22]), hex(&h[54..62]), hex(&h[94..102])) else { break };
        if &h[..6] != b"070701" || archive.get(at + 110..at + 110 + namesize as usize) == Some(b"TRAILER!!!\0") {
            break;
        }
        if mode as u32 & 0o170000 == S_IFREG {
            total += size.div_ceil(4096) * 4096;
        }
        total += ENTRY_COST;
        let name_end = (at as u64 + 110 + namesize).next_multiple_of(4);
        at = match usize::try_from((name_end + size).next_multiple_of(4)) {
            Ok(next) => next,
            Err(_) => break,
        };
    }
    total
}

/// Kernel heap bytes one archive entry costs once unpacked (inode, directory entry, name),
/// an upper estimate.
pub const ENTRY_COST: u64 = 512;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpacked_size_counts_whole_pages() {
        let mut a = Initramfs::new();
        a.add_file("/bin/a", 0o755, &[1u8; 5000]).expect("add");
        a.add_file("/b", 0o644, b"x").expect("add");
        a.add_dir("/tmp", 0o1777).expect("dir");
        let bytes = a.finish().expect("finish");
        // /bin, /bin/a, /b, /tmp: two files of 2 and 1 pages.
        assert_eq!(unpacked_size(&bytes), 3 * 4096 + 4 * ENTRY_COST);
        assert_eq!(unpacked_size(&bytes[..50]), 0, "a cut header counts nothing");
    }

    #[test]
    fn archive_round_trips_through_a_reader() {
        let mut a = Initramfs::new();
        a.add_file("/usr/bin/hello", 0o755, b"\x7fELF...").expect("add");
        a.add_dir("/tmp", 0o1777).expect("dir");
        let bytes = a.finish().expect("finish");
        let mut names = Vec::new();
        let mut rest: &[u8] = &bytes;
        loop {
            let r = cpio::newc::Reader::new(rest).expect("entry");
            if r.entry().is_trailer() {
                break;
            }
            names.push((r.entry().name().to_string(), r.entry().mode()));
            rest = r.finish().expect("skip");
        }
        assert_eq!(
            names,
            [
                ("usr".to_string(), S_IFDIR | 0o755),
                ("usr/bin".to_string(), S_IFDIR | 0o755),
                ("usr/bin/hello".to_string(), S_IFREG | 0o755),
                ("tmp".to_string(), S_IFDIR | 0o1777),
            ]
        );
    }
}
