//! Copying between kernel buffers and guest user memory by walking the process's page table
//! through the physmap (design section 8), page by page, demand-filling allowed pages.
//! Every failure is `EFAULT` for the syscall layer.

use super::space::{Access, AddrSpace};
use super::{phys_to_virt, PAGE_SIZE};
use alloc::vec::Vec;

/// A user access failed (the syscall returns `EFAULT`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Efault;

/// Calls `f(kernel_ptr, offset, n)` for each page-bounded piece of `[va, va+len)`.
fn for_pieces(
    mm: &mut AddrSpace,
    va: u64,
    len: usize,
    access: Access,
    mut f: impl FnMut(*mut u8, usize, usize),
) -> Result<(), Efault> {
    let end = va.checked_add(len as u64).ok_or(Efault)?;
    let mut at = va;
    let mut r = Ok(());
    while at < end {
        let n = ((PAGE_SIZE - at % PAGE_SIZE).min(end - at)) as usize;
        let Ok(gpa) = mm.user_gpa(at, access) else {
            r = Err(Efault);
            break;
        };
        f(phys_to_virt(gpa), (at - va) as usize, n);
        at += n as u64;
    }
    // Demand fills and copy-on-write breaks above changed present PTEs: the shadow must not
    // keep mapping the old frames once user code runs again.
    mm.flush();
    r
}

/// Copies `buf.len()` bytes from user `va` into `buf`.
pub fn copy_from_user(mm: &mut AddrSpace, va: u64, buf: &mut [u8]) -> Result<(), Efault> {
    let len = buf.len();
    for_pieces(mm, va, len, Access::Read, |p, off, n| {
        // SAFETY: p..p+n is inside one guest frame mapped for this user page; buf[off..off+n]
        // is in bounds by construction.
        unsafe { core::ptr::copy_nonoverlapping(p, buf[off..off + n].as_mut_ptr(), n) };
    })
}

/// Copies `data` to user `va`.
pub fn copy_to_user(mm: &mut AddrSpace, va: u64, data: &[u8]) -> Result<(), Efault> {
    for_pieces(mm, va, data.len(), Access::Write, |p, off, n| {
        // SAFETY: p..p+n is inside one writable guest frame; data[off..off+n] is in bounds.
        unsafe { core::ptr::copy_nonoverlapping(data[off..off + n].as_ptr(), p, n) };
    })
}

/// Zeroes `len` user bytes at `va`.
pub fn clear_user(mm: &mut AddrSpace, va: u64, len: usize) -> Result<(), Efault> {
    for_pieces(mm, va, len, Access::Write, |p, _, n| {
        // SAFETY: p..p+n is inside one writable guest frame.
        unsafe { core::ptr::write_bytes(p, 0, n) };
    })
}

/// Reads a plain value (any bit pattern valid) from user memory.
pub fn read_val<T: Copy + Default>(mm: &mut AddrSpace, va: u64) -> Result<T, Efault> {
    let mut v = T::default();
    // SAFETY: T is Copy and callers use it only for integer/`repr(C)` POD types, for which any
    // byte pattern is valid; the slice covers exactly v.
    let bytes = unsafe { core::slice::from_raw_parts_mut((&raw mut v).cast::<u8>(), size_of::<T>()) };
    copy_from_user(mm, va, bytes)?;
    Ok(v)
}

/// Writes a plain value to user memory.
pub fn write_val<T: Copy>(mm: &mut AddrSpace, va: u64, v: &T) -> Result<(), Efault> {
    // SAFETY: reading the bytes of a Copy POD value.
    let bytes = unsafe { core::slice::from_raw_parts((v as *const T).cast::<u8>(), size_of::<T>()) };
    copy_to_user(mm, va, bytes)
}

/// Reads a NUL-terminated string of at most `max` bytes (without the NUL). `Err` on a fault
/// or when no NUL is found within `max` bytes (`ENAMETOOLONG` for the caller: `Ok(None)`).
pub fn read_cstr(mm: &mut AddrSpace, va: u64, max: usize) -> Result<Option<Vec<u8>>, Efault> {
    let mut out = Vec::new();
    let mut at = va;
    loop {
        let n = (PAGE_SIZE - at % PAGE_SIZE) as usize;
        let gpa = mm.user_gpa(at, Access::Read).map_err(|_| Efault);
        mm.flush();
        let gpa = gpa?;
        // SAFETY: the n bytes from gpa stay within one guest frame.
        let chunk = unsafe { core::slice::from_raw_parts(phys_to_virt(gpa), n) };
        if let Some(z) = chunk.iter().position(|&b| b == 0) {
            out.extend_from_slice(&chunk[..z]);
            return Ok((out.len() <= max).then_some(out));
        }
        out.extend_from_slice(chunk);
        if out.len() > max {
            return Ok(None);
        }
        at += n as u64;
    }
}
