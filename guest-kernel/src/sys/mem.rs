//! Memory syscalls: `brk`, `mmap` (anonymous, private file copies, `MAP_FIXED`,
//! `MAP_FIXED_NOREPLACE`, `MAP_POPULATE`), `munmap`, `mprotect`, `mremap` (moving page-table
//! entries, not data), `madvise(MADV_DONTNEED)`, `mincore`. Semantics per the man pages.

use super::{Ctx, KResult};
use crate::mm::space::{AddrSpace, FaultError};
use crate::mm::vma::VmaKind;
use crate::mm::{page_up, PAGE_SIZE};
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

fn range_ok(start: u64, len: u64) -> bool {
    start >= USER_START && start.is_multiple_of(PAGE_SIZE) && start.checked_add(len).is_some_and(|e| e <= USER_END)
}

/// `brk(2)`: returns the new (or unchanged) break.
pub fn brk(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    Ok(cx.mm(|mm| mm.set_brk(a[0])) as i64)
}

/// `mmap(2)`.
pub fn mmap(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let (addr, len, prot, flags, fd, off) = (a[0], a[1], a[2] as u32, a[3], a[4] as i32, a[5]);
    if len == 0 || prot & !7 != 0 {
        return Err(Errno::EINVAL);
    }
    let len = page_up(len);
    if len == 0 || len > USER_END {
        return Err(Errno::ENOMEM);
    }
    match flags & MAP_SHARED_VALIDATE {
        MAP_SHARED | MAP_PRIVATE | MAP_SHARED_VALIDATE => {}
        _ => return Err(Errno::EINVAL),
    }
    let anon = flags & MAP_ANONYMOUS != 0;
    if !anon && off % PAGE_SIZE != 0 {
        return Err(Errno::EINVAL);
    }
    // File contents are copied now (private semantics); shared file mappings are copies too.
    let data = if anon {
        None
    } else {
        let p = cx.proc();
        let fds = p.fds.lock().clone();
        let file = fds.get(fd)?;
        if !file.is_regular() {
            return Err(Errno::ENODEV);
        }
        if !file.readable() {
            return Err(Errno::EACCES);
        }
        let mut buf = alloc::vec![0u8; len as usize];
        let n = guest_fs::pread64(&fds, fd, &mut buf, off as i64)?;
        buf.truncate(n);
        Some(buf)
    };
    let fixed = flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) != 0;
    cx.mm(|mm| {
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
        mm.add_vma(start, start + len, prot, VmaKind::Anon);
        if let Some(d) = &data {
            if let Err(e) = fill_copy(mm, start, d) {
                mm.unmap(start, start + len);
                mm.flush();
                return Err(e);
            }
        } else if flags & MAP_POPULATE != 0 {
            // Best effort, like Linux: a populate failure does not fail the mmap.
            let _ = mm.populate(start, start + len);
        }
        Ok(start as i64)
    })
}

/// Populates `[start, start + data.len())` and copies the file bytes in (ignoring prot).
fn fill_copy(mm: &mut AddrSpace, start: u64, data: &[u8]) -> Result<(), Errno> {
    if data.is_empty() {
        return Ok(());
    }
    mm.populate(start, start + data.len() as u64).map_err(|_| Errno::ENOMEM)?;
    let mut done = 0usize;
    while done < data.len() {
        let at = start + done as u64;
        let n = (PAGE_SIZE as usize).min(data.len() - done);
        let leaf = mm.pt.translate(at).ok_or(Errno::ENOMEM)?;
        // SAFETY: the frame was just populated for this mapping; n <= one page.
        unsafe { core::ptr::copy_nonoverlapping(data[done..].as_ptr(), crate::mm::phys_to_virt(leaf.gpa), n) };
        done += n;
    }
    Ok(())
}

/// `munmap(2)`.
pub fn munmap(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let (addr, len) = (a[0], page_up(a[1]));
    if addr % PAGE_SIZE != 0 || len == 0 || !range_ok(addr, len) {
        return Err(Errno::EINVAL);
    }
    cx.mm(|mm| {
        mm.unmap(addr, addr + len);
        mm.flush();
    });
    Ok(0)
}

/// `mprotect(2)`.
pub fn mprotect(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let (addr, len, prot) = (a[0], page_up(a[1]), a[2] as u32);
    if addr % PAGE_SIZE != 0 || prot & !(7 | 0x0100_0000 | 0x0200_0000) != 0 {
        return Err(Errno::EINVAL);
    }
    if len == 0 {
        return Ok(0);
    }
    if !range_ok(addr, len) {
        return Err(Errno::ENOMEM);
    }
    cx.mm(|mm| {
        let ok = mm.protect(addr, addr + len, prot & 7);
        mm.flush();
        if ok { Ok(0) } else { Err(Errno::ENOMEM) }
    })
}

/// `mremap(2)`.
pub fn mremap(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let (old, old_len, new_len, flags, new_addr) = (a[0], page_up(a[1]), page_up(a[2]), a[3], a[4]);
    if old % PAGE_SIZE != 0 || new_len == 0 || flags & !(MREMAP_MAYMOVE | MREMAP_FIXED | 4) != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & MREMAP_FIXED != 0 && flags & MREMAP_MAYMOVE == 0 {
        return Err(Errno::EINVAL);
    }
    cx.mm(|mm| {
        let vma = *mm.vmas.find(old).ok_or(Errno::EFAULT)?;
        if old_len == 0 || old + old_len > vma.end {
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
                mm.add_vma(old + old_len, old + new_len, vma.prot, vma.kind);
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
            mm.add_vma(dest + keep, dest + new_len, vma.prot, vma.kind);
        }
        mm.flush();
        Ok(dest as i64)
    })
}

/// `madvise(2)`: `MADV_DONTNEED`/`MADV_FREE` drop anonymous pages (they read back as zero);
/// other advice is accepted.
pub fn madvise(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let (addr, len, advice) = (a[0], page_up(a[1]), a[2]);
    if addr % PAGE_SIZE != 0 {
        return Err(Errno::EINVAL);
    }
    if advice == MADV_DONTNEED || advice == MADV_FREE {
        cx.mm(|mm| {
            if !mm.vmas.covered(addr, addr + len) {
                return Err(Errno::ENOMEM);
            }
            mm.zap(addr, addr + len);
            mm.flush();
            Ok(0)
        })
    } else {
        Ok(0)
    }
}

/// `mincore(2)`: one byte per page, 1 if resident.
pub fn mincore(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let (addr, len, vec) = (a[0], page_up(a[1]), a[2]);
    if addr % PAGE_SIZE != 0 {
        return Err(Errno::EINVAL);
    }
    let pages = (len / PAGE_SIZE) as usize;
    let bytes = cx.mm(|mm| {
        if !mm.vmas.covered(addr, addr + len) {
            return Err(Errno::ENOMEM);
        }
        Ok((0..pages).map(|i| u8::from(mm.pt.translate(addr + i as u64 * PAGE_SIZE).is_some())).collect::<alloc::vec::Vec<u8>>())
    })?;
    cx.copy_out(vec, &bytes)?;
    Ok(0)
}

/// Maps a fault error to the errno of a kernel-side access.
pub fn fault_errno(e: FaultError) -> Errno {
    match e {
        FaultError::OutOfMemory => Errno::ENOMEM,
        _ => Errno::EFAULT,
    }
}
