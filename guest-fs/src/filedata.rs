//! Regular-file contents as a sparse list of 4 KiB pages: holes read as zeros and cost no
//! memory, writes past the end zero-fill, and no allocation is larger than one page.

use crate::errno::{Errno, Result};
use crate::inode::FsShared;
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::collections::btree_map::Entry;
use alloc::vec;

/// Bytes per data page.
pub const PAGE: usize = 4096;
const PAGE64: u64 = PAGE as u64;

/// Largest file size, bytes (`MAX_LFS_FILESIZE` on 64-bit Linux: `i64::MAX`).
pub const MAX_FILE_SIZE: u64 = i64::MAX as u64;

/// Contents of a regular file: page index -> page, and the logical size.
#[derive(Default)]
pub struct FileData {
    pages: BTreeMap<u64, Box<[u8]>>,
    size: u64,
    /// Bumped by every change of the contents or size (a cache of the contents, such as the
    /// kernel's executable page cache, is valid while this stays the same).
    generation: u64,
}

impl FileData {
    /// Logical size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The content generation: changes whenever the contents or the size change.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Bytes of pages allocated (what the file costs in the heap).
    pub fn allocated_bytes(&self) -> u64 {
        self.pages.len() as u64 * PAGE64
    }

    /// Number of 512-byte blocks allocated (`st_blocks`).
    pub fn blocks(&self) -> u64 {
        self.allocated_bytes() / 512
    }

    /// Copies bytes at `offset..` into `buf`, stopping at end of file; returns the count.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> usize {
        if offset >= self.size {
            return 0;
        }
        let n = (self.size - offset).min(buf.len() as u64) as usize;
        let mut done = 0;
        while done < n {
            let pos = offset + done as u64;
            let (idx, within) = (pos / PAGE64, (pos % PAGE64) as usize);
            let chunk = (PAGE - within).min(n - done);
            let out = &mut buf[done..done + chunk];
            match self.pages.get(&idx) {
                Some(p) => out.copy_from_slice(&p[within..within + chunk]),
                None => out.fill(0),
            }
            done += chunk;
        }
        n
    }

    /// Writes `data` at `offset`, growing the file (the gap reads as zeros). All or nothing:
    /// `EFBIG` past [`MAX_FILE_SIZE`], `ENOSPC` when the filesystem limit would be exceeded
    /// (then nothing is written).
    pub fn write_at(&mut self, shared: &FsShared, offset: u64, data: &[u8]) -> Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        let end = offset.checked_add(data.len() as u64).ok_or(Errno::EFBIG)?;
        if end > MAX_FILE_SIZE {
            return Err(Errno::EFBIG);
        }
        let (first, last) = (offset / PAGE64, (end - 1) / PAGE64);
        // Appending past the last page (the common case, and how the initramfs loader writes
        // whole files): every page is missing, without one lookup per page.
        let missing = if self.pages.range(first..).next().is_none() {
            last - first + 1
        } else {
            (first..=last).filter(|i| !self.pages.contains_key(i)).count() as u64
        };
        shared.charge(missing * PAGE64)?;
        self.generation += 1;
        let mut done = 0;
        while done < data.len() {
            let pos = offset + done as u64;
            let (idx, within) = (pos / PAGE64, (pos % PAGE64) as usize);
            let chunk = (PAGE - within).min(data.len() - done);
            let src = &data[done..done + chunk];
            match self.pages.entry(idx) {
                // A new page written whole: one copy, no zero fill first (the initramfs loader
                // writes every file this way; under software KVM each fill is a hypercall).
                Entry::Vacant(v) if chunk == PAGE => {
                    v.insert(src.to_vec().into_boxed_slice());
                }
                e => e.or_insert_with(|| vec![0u8; PAGE].into_boxed_slice())[within..within + chunk].copy_from_slice(src),
            }
            done += chunk;
        }
        self.size = self.size.max(end);
        Ok(data.len())
    }

    /// Sets the size (`truncate(2)`): shrinking frees whole pages past the end and zeroes the
    /// tail of the last page; growing leaves a hole. `EFBIG` past [`MAX_FILE_SIZE`].
    pub fn set_size(&mut self, shared: &FsShared, len: u64) -> Result<()> {
        if len > MAX_FILE_SIZE {
            return Err(Errno::EFBIG);
        }
        self.generation += 1;
        if len < self.size {
            let keep = len.div_ceil(PAGE64);
            let dropped = self.pages.split_off(&keep);
            shared.uncharge(dropped.len() as u64 * PAGE64);
            let within = (len % PAGE64) as usize;
            if within != 0
                && let Some(p) = self.pages.get_mut(&(len / PAGE64))
            {
                p[within..].fill(0);
            }
        }
        self.size = len;
        Ok(())
    }

    /// `fallocate(FALLOC_FL_PUNCH_HOLE)`: bytes `offset..offset+len` (clamped to the size)
    /// read as zeros afterwards; whole pages inside are freed. The size does not change.
    pub fn punch_hole(&mut self, shared: &FsShared, offset: u64, len: u64) {
        let end = offset.saturating_add(len).min(self.size);
        if offset >= end {
            return;
        }
        self.generation += 1;
        let (first_full, last_full) = (offset.div_ceil(PAGE64), end / PAGE64);
        if first_full < last_full {
            let inside: alloc::vec::Vec<u64> = self.pages.range(first_full..last_full).map(|(&k, _)| k).collect();
            for k in inside {
                self.pages.remove(&k);
                shared.uncharge(PAGE64);
            }
        }
        let mut zero = |from: u64, to: u64| {
            let mut pos = from;
            while pos < to {
                let (idx, within) = (pos / PAGE64, (pos % PAGE64) as usize);
                let chunk = (PAGE - within).min((to - pos) as usize);
                if let Some(p) = self.pages.get_mut(&idx) {
                    p[within..within + chunk].fill(0);
                }
                pos += chunk as u64;
            }
        };
        zero(offset, end.min(first_full * PAGE64));
        zero((last_full * PAGE64).max(offset).max(first_full * PAGE64).min(end), end);
    }

    /// `SEEK_DATA`: the first offset `>= offset` inside an allocated page (clamped to
    /// `offset`), `ENXIO` if none before end of file (`lseek(2)`).
    pub fn seek_data(&self, offset: u64) -> Result<u64> {
        if offset >= self.size {
            return Err(Errno::ENXIO);
        }
        match self.pages.range(offset / PAGE64..).next() {
            Some((&idx, _)) if idx * PAGE64 < self.size => Ok((idx * PAGE64).max(offset)),
            _ => Err(Errno::ENXIO),
        }
    }

    /// `SEEK_HOLE`: the first offset `>= offset` in an unallocated page, or end of file
    /// (there is an implicit hole at the end); `ENXIO` if `offset >= size`.
    pub fn seek_hole(&self, offset: u64) -> Result<u64> {
        if offset >= self.size {
            return Err(Errno::ENXIO);
        }
        let mut idx = offset / PAGE64;
        while self.pages.contains_key(&idx) {
            idx += 1;
        }
        Ok((idx * PAGE64).max(offset).min(self.size))
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::time::{Clock, Timespec};
    use alloc::sync::Arc;
    use core::sync::atomic::Ordering;

    struct Zero;
    impl Clock for Zero {
        fn now(&self) -> Timespec {
            Timespec::default()
        }
    }

    fn shared(limit: u64) -> FsShared {
        let s = FsShared::new(Arc::new(Zero), (0, 1), None);
        s.limit.store(limit, Ordering::Relaxed);
        s
    }

    #[test]
    fn sparse_write_zero_fills_and_costs_only_touched_pages() {
        let s = shared(u64::MAX);
        let mut f = FileData::default();
        f.write_at(&s, 1 << 30, b"end").unwrap();
        assert_eq!(f.size(), (1 << 30) + 3);
        assert_eq!(s.data_bytes.load(Ordering::Relaxed), 4096);
        let mut b = [9u8; 8];
        assert_eq!(f.read_at(100, &mut b), 8);
        assert_eq!(b, [0; 8]);
        let mut b = [0u8; 8];
        assert_eq!(f.read_at((1 << 30) - 2, &mut b), 5);
        assert_eq!(&b[..5], b"\0\0end");
        assert_eq!(f.seek_data(0), Ok(1 << 30));
        assert_eq!(f.seek_hole(0), Ok(0));
        assert_eq!(f.seek_hole(1 << 30), Ok((1 << 30) + 3));
        assert_eq!(f.seek_data((1 << 30) + 3), Err(Errno::ENXIO));
    }

    #[test]
    fn generation_changes_with_contents() {
        let s = shared(u64::MAX);
        let mut f = FileData::default();
        let g0 = f.generation();
        f.write_at(&s, 0, b"abc").unwrap();
        let g1 = f.generation();
        assert_ne!(g0, g1, "a write changes it");
        let mut b = [0u8; 3];
        f.read_at(0, &mut b);
        assert_eq!(f.generation(), g1, "a read does not");
        f.write_at(&s, 0, b"xyz").unwrap();
        assert_ne!(f.generation(), g1, "a same-size overwrite does");
        let g2 = f.generation();
        f.set_size(&s, 3).unwrap();
        assert_ne!(f.generation(), g2, "a truncate does");
    }

    #[test]
    fn truncate_frees_and_zeroes_tail() {
        let s = shared(u64::MAX);
        let mut f = FileData::default();
        f.write_at(&s, 0, &[0xaa; 10000]).unwrap();
        assert_eq!(s.data_bytes.load(Ordering::Relaxed), 3 * 4096);
        f.set_size(&s, 5000).unwrap();
        assert_eq!(s.data_bytes.load(Ordering::Relaxed), 2 * 4096);
        f.set_size(&s, 9000).unwrap();
        let mut b = [1u8; 4000];
        assert_eq!(f.read_at(5000, &mut b), 4000);
        assert!(b.iter().all(|&x| x == 0), "re-extended region reads zeros");
        assert_eq!(f.set_size(&s, MAX_FILE_SIZE + 1), Err(Errno::EFBIG));
    }

    #[test]
    fn limit_gives_enospc_and_writes_nothing() {
        let s = shared(8192);
        let mut f = FileData::default();
        assert_eq!(f.write_at(&s, 0, &[1; 8192]), Ok(8192));
        assert_eq!(f.write_at(&s, 8192, &[1; 1]), Err(Errno::ENOSPC));
        assert_eq!(f.size(), 8192);
        assert_eq!(f.write_at(&s, 100, &[2; 100]), Ok(100), "overwrite needs no new page");
        assert_eq!(f.write_at(&s, u64::MAX - 1, &[1; 4]), Err(Errno::EFBIG));
    }

    #[test]
    fn large_sequential_write() {
        let s = shared(u64::MAX);
        let mut f = FileData::default();
        let chunk = std::vec![0x5au8; 65536];
        for i in 0..(32 * 16) {
            f.write_at(&s, i * 65536, &chunk).unwrap();
        }
        assert_eq!(f.size(), 32 << 20);
        let mut b = [0u8; 3];
        assert_eq!(f.read_at((32 << 20) - 2, &mut b), 2);
        assert_eq!(&b[..2], &[0x5a, 0x5a]);
    }
}
