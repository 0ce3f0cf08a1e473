//! Memory syscalls: `brk`, `mmap` (anonymous, shared anonymous, file mappings of page-cache
//! pages (`crate::mm::pagecache`), `MAP_FIXED`, `MAP_FIXED_NOREPLACE`, `MAP_POPULATE`),
//! `munmap` (writing back shared file pages), `mprotect`, `mremap` (moving page-table
//! entries, not data), `madvise(MADV_DONTNEED)`, `mincore`, `mlock`/`munlock`, `msync`.
//! Semantics per the man pages; ranges are checked the way Linux checks them (`mm/mmap.c`,
//! `mm/mprotect.c`, `mm/madvise.c`, `mm/mincore.c`, `mm/mlock.c`, `mm/msync.c`), so an
//! `addr + len` that wraps past 2^64 gets Linux's errno, and no call allocates in proportion
//! to `len`. An address space holds at most [`MAX_MAP_COUNT`] VMAs (`vm.max_map_count`).

use super::{Ctx, KResult};
use crate::mm::space::{AddrSpace, FaultError};
use crate::mm::vma::{Backing, Vma, VmaKind};
use crate::mm::{page_down, page_up, PAGE_SIZE};
use alloc::vec::Vec;
use guest_abi::layout::{USER_END, USER_START};
use guest_fs::Errno;

const MAP_SHARED: u64 = 0x01;
const MAP_PRIVATE: u64 = 0x02;
const MAP_SHARED_VALIDATE: u64 = 0x03;
const MAP_FIXED: u64 = 0x10;
const MAP_ANONYMOUS: u64 = 0x20;
const MAP_POPULATE: u64 = 0x8000;
const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;
const MREMAP_MAYMOVE: u64 = 1;
const MREMAP_FIXED: u64 = 2;
const MADV_DONTNEED: u64 = 4;
const MADV_FREE: u64 = 8;
const MS_ASYNC: u64 = 1;
const MS_INVALIDATE: u64 = 2;
const MS_SYNC: u64 = 4;

/// Most VMAs per address space (Linux's default `vm.max_map_count`); calls that could split
/// or add VMAs past it fail with `ENOMEM`.
pub const MAX_MAP_COUNT: usize = 65_530;
/// Pages `mincore` reports per copy to user memory (its kernel buffer, bytes).
const MINCORE_CHUNK: u64 = 4096;

/// `PAGE_ALIGN(len)` as Linux computes it: wraps to 0 past the top.
fn page_align(len: u64) -> u64 {
    len.wrapping_add(PAGE_SIZE - 1) & !(PAGE_SIZE - 1)
}

/// `ENOMEM` when another VMA (or two, from a split) may not be added to `mm`, or when the
/// kernel heap that holds VMAs cannot grow for user requests any more.
fn vma_room(mm: &AddrSpace) -> Result<(), Errno> {
    if mm.vmas.len() + 2 > MAX_MAP_COUNT || !crate::heap::user_may_grow(PAGE_SIZE) {
        return Err(Errno::ENOMEM);
    }
    Ok(())
}

fn range_ok(start: u64, len: u64) -> bool {
    start >= USER_START && start.is_multiple_of(PAGE_SIZE) && start.checked_add(len).is_some_and(|e| e <= USER_END)
}

/// `brk(2)`: returns the new (or unchanged) break.
pub fn brk(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    Ok(cx.mm(|mm| mm.set_brk(a[0])) as i64)
}

/// `mmap(2)`.
pub fn mmap(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let (addr, len, flags, fd, off) = (a[0], a[1], a[3], a[4] as i32, a[5]);
    // `prot` is checked whole: bits above the low 32 used to be dropped by a cast, so a
    // garbage `prot` mapped memory. Unknown bits are EINVAL here.
    if len == 0 || a[2] & !7 != 0 {
        return Err(Errno::EINVAL);
    }
    let prot = a[2] as u32;
    let len = page_up(len);
    if len == 0 || len > USER_END {
        return Err(Errno::ENOMEM);
    }
    match flags & MAP_SHARED_VALIDATE {
        MAP_SHARED | MAP_PRIVATE | MAP_SHARED_VALIDATE => {}
        _ => return Err(Errno::EINVAL),
    }
    let anon = flags & MAP_ANONYMOUS != 0;
    let shared = flags & MAP_SHARED_VALIDATE != MAP_PRIVATE;
    if !anon && off % PAGE_SIZE != 0 {
        return Err(Errno::EINVAL);
    }
    // The mapping's last byte must have a file offset (mm/mmap.c: `EOVERFLOW` when
    // `pgoff + pages` wraps); this also keeps every page index's byte offset in a u64.
    if !anon && off.checked_add(len).is_none() {
        return Err(Errno::EOVERFLOW);
    }
    // File pages are the page cache's frames (no copy); shared anonymous memory is an object
    // of its own, so that it stays shared across fork.
    let backing = if anon {
        shared.then(|| Backing { obj: crate::mm::pagecache::anon_object(), pgoff: 0, shared: true })
    } else {
        let p = cx.proc();
        let file = p.fds.lock().get(fd)?;
        if !file.is_regular() {
            return Err(Errno::ENODEV);
        }
        if !file.readable() || (shared && prot & 2 != 0 && !file.writable()) {
            return Err(Errno::EACCES);
        }
        let inode = file.inode().ok_or(Errno::ENODEV)?;
        let obj = crate::mm::pagecache::file_object(inode, &file)?;
        Some(Backing { obj, pgoff: off / PAGE_SIZE, shared })
    };
    let fixed = flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) != 0;
    cx.mm(|mm| {
        vma_room(mm)?;
        let start = if fixed {
            if !range_ok(addr, len) {
                return Err(if addr % PAGE_SIZE != 0 { Errno::EINVAL } else { Errno::ENOMEM });
            }
            if flags & MAP_FIXED_NOREPLACE != 0 && mm.vmas.overlaps(addr, addr + len) {
                return Err(Errno::EEXIST);
            }
            mm.unmap(addr, addr + len);
            mm.flush();
            addr
        } else if addr != 0 && range_ok(addr & !(PAGE_SIZE - 1), len) && !mm.vmas.overlaps(addr & !(PAGE_SIZE - 1), (addr & !(PAGE_SIZE - 1)) + len) {
            addr & !(PAGE_SIZE - 1)
        } else {
            mm.find_free(len).ok_or(Errno::ENOMEM)?
        };
        mm.insert_vma(Vma { backing, ..Vma::new(start, start + len, prot, VmaKind::Anon) });
        if flags & MAP_POPULATE != 0 {
            // Best effort, like Linux: nothing for PROT_NONE, stops when memory is short,
            // never fails the mmap.
            mm.populate_best_effort(start, start + len);
        }
        Ok(start as i64)
    })
}

/// `munmap(2)`.
pub fn munmap(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let (addr, len) = (a[0], page_align(a[1]));
    if addr % PAGE_SIZE != 0 || a[1] > USER_END || len == 0 || !range_ok(addr, len) {
        return Err(Errno::EINVAL);
    }
    cx.mm(|mm| {
        // Unmapping the middle of a VMA splits it.
        if mm.vmas.splits(addr, addr + len) {
            vma_room(mm)?;
        }
        mm.unmap(addr, addr + len);
        mm.flush();
        Ok(0)
    })
}

/// `mprotect(2)`.
pub fn mprotect(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    // The whole 64-bit `prot` is checked below (mm/mprotect.c: unknown bits are EINVAL).
    let (addr, prot) = (a[0], a[2]);
    if addr % PAGE_SIZE != 0 {
        return Err(Errno::EINVAL);
    }
    if a[1] == 0 {
        return Ok(0);
    }
    let len = page_align(a[1]);
    if addr.checked_add(len).is_none_or(|end| end <= addr) {
        return Err(Errno::ENOMEM);
    }
    if prot & !(7 | 0x0100_0000 | 0x0200_0000) != 0 {
        return Err(Errno::EINVAL);
    }
    if !range_ok(addr, len) {
        return Err(Errno::ENOMEM);
    }
    cx.mm(|mm| {
        vma_room(mm)?;
        let ok = mm.protect(addr, addr + len, (prot & 7) as u32);
        mm.flush();
        if ok { Ok(0) } else { Err(Errno::ENOMEM) }
    })
}

/// `mremap(2)`.
pub fn mremap(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let (old, old_len, new_len, flags, new_addr) = (a[0], page_align(a[1]), page_align(a[2]), a[3], a[4]);
    if old % PAGE_SIZE != 0 || new_len == 0 || flags & !(MREMAP_MAYMOVE | MREMAP_FIXED | 4) != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & MREMAP_FIXED != 0 && flags & MREMAP_MAYMOVE == 0 {
        return Err(Errno::EINVAL);
    }
    cx.mm(|mm| {
        vma_room(mm)?;
        let vma = mm.vmas.find(old).ok_or(Errno::EFAULT)?.clone();
        if old_len == 0 || old_len > vma.end - old {
            return Err(Errno::EFAULT);
        }
        if flags & MREMAP_FIXED == 0 {
            if new_len <= old_len {
                mm.unmap(old + new_len, old + old_len);
                mm.flush();
                return Ok(old as i64);
            }
            // Grow in place if the following range is free.
            if range_ok(old, new_len) && !mm.vmas.overlaps(old + old_len, old + new_len) {
                mm.insert_vma(grown(&vma, old + old_len, old + new_len));
                return Ok(old as i64);
            }
            if flags & MREMAP_MAYMOVE == 0 {
                return Err(Errno::ENOMEM);
            }
        }
        let dest = if flags & MREMAP_FIXED != 0 {
            if !range_ok(new_addr, new_len) || (new_addr < old + old_len && old < new_addr + new_len) {
                return Err(Errno::EINVAL);
            }
            mm.unmap(new_addr, new_addr + new_len);
            new_addr
        } else {
            mm.find_free(new_len).ok_or(Errno::ENOMEM)?
        };
        let keep = old_len.min(new_len);
        mm.move_range(old, dest, keep).map_err(|_| Errno::ENOMEM)?;
        if old_len > keep {
            mm.unmap(old + keep, old + old_len);
        }
        if new_len > keep {
            let piece = grown(&vma, old + keep, old + new_len);
            mm.insert_vma(Vma { start: dest + keep, end: dest + new_len, ..piece });
        }
        mm.flush();
        Ok(dest as i64)
    })
}

/// The VMA that extends `vma` over `[start, end)` (at or past its end) for `mremap`: same
/// prot and kind, and for an object's mapping the object pages that follow.
fn grown(vma: &Vma, start: u64, end: u64) -> Vma {
    Vma { start, end, prot: vma.prot, kind: vma.kind, backing: vma.backing.as_ref().map(|b| b.advanced(start - vma.start)) }
}

/// `madvise(2)`: `MADV_DONTNEED`/`MADV_FREE` drop anonymous pages (they read back as zero);
/// other advice is accepted. `EINVAL` for an unaligned `addr` or a range that wraps,
/// `ENOMEM` when part of the range is not mapped.
pub fn madvise(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let (addr, advice) = (a[0], a[2]);
    let len = page_align(a[1]);
    if addr % PAGE_SIZE != 0 || (a[1] != 0 && len == 0) {
        return Err(Errno::EINVAL);
    }
    let end = addr.checked_add(len).ok_or(Errno::EINVAL)?;
    if end == addr {
        return Ok(0);
    }
    cx.mm(|mm| {
        if !mm.vmas.covered(addr, end) {
            return Err(Errno::ENOMEM);
        }
        if advice == MADV_DONTNEED || advice == MADV_FREE {
            mm.zap(addr, end);
            mm.flush();
        }
        Ok(0)
    })
}

/// `mlock(2)`/`munlock(2)`/`mlock2(2)` (`op` names which; memory is never swapped, so only
/// the range is checked): `EINVAL` when it wraps, `ENOMEM` when part of it is not mapped.
pub fn mlock(cx: &mut Ctx<'_>, a: [u64; 6], with_flags: bool) -> KResult {
    if with_flags && a[2] & !1 != 0 {
        return Err(Errno::EINVAL);
    }
    let start = page_down(a[0]);
    let len = page_align(a[1].wrapping_add(a[0] % PAGE_SIZE));
    let end = start.checked_add(len).ok_or(Errno::EINVAL)?;
    if end == start {
        return Ok(0);
    }
    cx.mm(|mm| if mm.vmas.covered(start, end) { Ok(0) } else { Err(Errno::ENOMEM) })
}

/// `msync(2)`: writes back the dirty page-cache pages of the shared file mappings in the
/// range (`MS_ASYNC` too: the write is made now); `EINVAL` for an unaligned `addr` or bad
/// flags, `ENOMEM` when the range wraps or is not all mapped, `EIO` when the file refused a
/// write.
pub fn msync(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let (addr, flags) = (a[0], a[2]);
    if addr % PAGE_SIZE != 0 || flags & !(MS_ASYNC | MS_INVALIDATE | MS_SYNC) != 0 || flags & (MS_ASYNC | MS_SYNC) == (MS_ASYNC | MS_SYNC) {
        return Err(Errno::EINVAL);
    }
    let len = page_align(a[1]);
    let end = addr.checked_add(len).ok_or(Errno::ENOMEM)?;
    if end == addr {
        return Ok(0);
    }
    cx.mm(|mm| {
        if !mm.vmas.covered(addr, end) {
            return Err(Errno::ENOMEM);
        }
        mm.writeback(addr, end).map(|()| 0).map_err(|_| Errno::EIO)
    })
}

/// `mincore(2)`: one byte per page, 1 if resident. `EINVAL` for an unaligned `addr`;
/// `ENOMEM` when `[addr, addr + len)` wraps, leaves user space or is not all mapped;
/// `EFAULT` when `vec` cannot hold the answer. Reported in chunks of [`MINCORE_CHUNK`]
/// pages, so the kernel buffer never grows with `len`.
pub fn mincore(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let (addr, len, vec) = (a[0], a[1], a[2]);
    if addr % PAGE_SIZE != 0 {
        return Err(Errno::EINVAL);
    }
    if addr.checked_add(len).is_none_or(|end| end > USER_END) {
        return Err(Errno::ENOMEM);
    }
    let pages = len.div_ceil(PAGE_SIZE);
    if vec.checked_add(pages).is_none_or(|end| end > USER_END) {
        return Err(Errno::EFAULT);
    }
    let end = addr + pages * PAGE_SIZE;
    let mut at = addr;
    let mut buf = Vec::new();
    while at < end {
        let n = ((end - at) / PAGE_SIZE).min(MINCORE_CHUNK);
        buf.clear();
        cx.mm(|mm| {
            if !mm.vmas.covered(at, at + n * PAGE_SIZE) {
                return Err(Errno::ENOMEM);
            }
            buf.extend((0..n).map(|i| u8::from(mm.pt.translate(at + i * PAGE_SIZE).is_some())));
            Ok(())
        })?;
        cx.copy_out(vec + (at - addr) / PAGE_SIZE, &buf)?;
        at += n * PAGE_SIZE;
    }
    Ok(0)
}

/// Maps a fault error to the errno of a kernel-side access.
pub fn fault_errno(e: FaultError) -> Errno {
    match e {
        FaultError::OutOfMemory => Errno::ENOMEM,
        _ => Errno::EFAULT,
    }
}
