//! The vDSO, kernel side: the image built from guest-kernel/vdso (`PVM_VDSO_IMAGE`, see
//! build.rs) and the vvar page, copied into frames once at boot and mapped into every
//! process at exec (`AT_SYSINFO_EHDR`) as Linux's `arch_setup_additional_pages`:
//! `[vvar]` (one page, read-only) directly below `[vdso]` (read+exec).
//!
//! Trust rules: the vvar frame is written only here, by the guest kernel
//! ([`publish`], seqlocked, `pvm_vdso::vvar`); processes map it read-only. A process may
//! `mprotect` its mapping writable, but a write then copies the shared frame (copy-on-write,
//! `crate::mm::space`), so it can only confuse its own clocks, never another process or the
//! kernel, whose own clocks (`crate::time`) keep their private copy of the parameters. The
//! kernel holds one owner of each frame forever, so unmapping never frees them.
//! `fork` shares the mappings (the VMAs and frames are copied as any read-only mapping),
//! `mremap` moves them whole (the VMA kinds move along), and a page dropped with
//! `MADV_DONTNEED` is mapped again from these frames on the next fault ([`refault`]).

use crate::mm::paging::flags_for_prot;
use crate::mm::space::{AddrSpace, FaultError};
use crate::mm::vma::{Vma, VmaKind};
use crate::mm::{frame, page_up, phys_to_virt, PAGE_SIZE};
use pvm_vdso::vvar::{Params, Vvar, VVAR_SIZE};
use x86_64::structures::paging::PageTableFlags as F;

/// `AT_SYSINFO_EHDR` (include/uapi/linux/auxvec.h): the vDSO's ELF header address.
pub const AT_SYSINFO_EHDR: u64 = 33;

/// The linked vDSO image (an ELF shared object linked at 0, see guest-kernel/vdso/vdso.lds).
static IMAGE: &[u8] = include_bytes!(env!("PVM_VDSO_IMAGE"));

/// Where the kernel keeps the vDSO: the vvar frame and the image's first frame (contiguous).
struct Frames {
    vvar: u64,
    text: u64,
    pages: u64,
}

static FRAMES: spin::Once<Frames> = spin::Once::new();

/// Pages of the image.
fn image_pages() -> u64 {
    page_up(IMAGE.len() as u64) / PAGE_SIZE
}

fn vvar_at(gpa: u64) -> &'static Vvar {
    // SAFETY: `gpa` is the vvar frame this module allocated and zeroed at boot, kept for the
    // kernel's lifetime; `Vvar` is atomics only (any bit pattern valid) and smaller than a page.
    unsafe { &*(phys_to_virt(gpa) as *const Vvar) }
}

/// Boot: copies the image into fresh frames and publishes `params` in the vvar page. Without
/// memory for it (a few pages at boot) processes simply get no vDSO.
pub fn init(params: &Params) {
    const _: () = assert!(core::mem::size_of::<Vvar>() as u64 <= VVAR_SIZE && VVAR_SIZE == PAGE_SIZE);
    let pages = image_pages();
    let Some(gpa) = frame::alloc_run(1 + pages as usize, 1) else {
        crate::klog!(crate::log::WARN, "vdso: no frames, processes run without a vDSO");
        return;
    };
    frame::zero_new(gpa, 1 + pages as usize);
    // SAFETY: the frames after the vvar page were just allocated for us and hold `pages`
    // whole pages, at least IMAGE.len() bytes.
    unsafe { core::ptr::copy_nonoverlapping(IMAGE.as_ptr(), phys_to_virt(gpa + PAGE_SIZE), IMAGE.len()) };
    vvar_at(gpa).publish(params);
    FRAMES.call_once(|| Frames { vvar: gpa, text: gpa + PAGE_SIZE, pages });
}

/// Publishes new clock parameters to every process (seqlocked; callers serialise).
pub fn publish(params: &Params) {
    if let Some(f) = FRAMES.get() {
        vvar_at(f.vvar).publish(params);
    }
}

/// Maps `[vvar]` and `[vdso]` into the fresh address space `mm` (exec); returns the image's
/// address for `AT_SYSINFO_EHDR`, or `None` when there is no vDSO or no room (then the
/// process runs without one and its C library makes syscalls).
pub fn map_into(mm: &mut AddrSpace) -> Option<u64> {
    let f = FRAMES.get()?;
    let len = (1 + f.pages) * PAGE_SIZE;
    let base = mm.find_free(len)?;
    let ro = flags_for_prot(1) - F::WRITABLE;
    let rx = flags_for_prot(5) - F::WRITABLE;
    // One owner per mapping of each frame; map_frames drops the ones it could not map.
    if !frame::share_all(&[f.vvar]) {
        return None;
    }
    mm.add_vma(base, base + PAGE_SIZE, 1, VmaKind::Vvar);
    mm.map_frames(base, f.vvar, 1, ro).ok()?;
    for i in 0..f.pages {
        if !frame::share_all(&[f.text + i * PAGE_SIZE]) {
            return None;
        }
    }
    mm.add_vma(base + PAGE_SIZE, base + len, 5, VmaKind::Vdso);
    mm.map_frames(base + PAGE_SIZE, f.text, f.pages as usize, rx).ok()?;
    mm.prefault_on_load.push((base, len));
    Some(base + PAGE_SIZE)
}

/// A fault on a not-present page of a `[vvar]`/`[vdso]` VMA (after `MADV_DONTNEED`): maps the
/// kernel's frame again. A VMA that no longer spans the whole object (partly unmapped) has no
/// page offset to go by: the access is refused (`SIGSEGV`) rather than given a zero page.
pub fn refault(mm: &mut AddrSpace, vma: &Vma, page: u64) -> Result<(u64, u64), FaultError> {
    let f = FRAMES.get().ok_or(FaultError::Denied)?;
    let (first, pages) = match vma.kind {
        VmaKind::Vvar => (f.vvar, 1),
        VmaKind::Vdso => (f.text, f.pages),
        _ => return Err(FaultError::Denied),
    };
    if vma.len() != pages * PAGE_SIZE {
        return Err(FaultError::Denied);
    }
    let gpa = first + (page - vma.start);
    if !frame::share_all(&[gpa]) {
        return Err(FaultError::OutOfMemory);
    }
    // Read-only even in a VMA made writable: the frame is shared, a write copies it.
    mm.map_frames(page, gpa, 1, flags_for_prot(vma.prot) - F::WRITABLE).map_err(|_| FaultError::OutOfMemory)?;
    Ok((page, PAGE_SIZE))
}
