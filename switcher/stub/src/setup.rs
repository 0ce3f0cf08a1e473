//! Reading the setup record H passes at `SETUP_FD`, and the mapping helpers both roles use
//! (stack slots, `mseal`).

use crate::global::Global;
use crate::sys;
use core::mem::{MaybeUninit, size_of};
use guest_abi::stub::{self, SetupRecord, StubExit};

static SETUP: Global<MaybeUninit<SetupRecord>> = Global::new(MaybeUninit::uninit());

/// Copies the setup record into the stub's own memory, validates it and returns it. Exits
/// with [`StubExit::BadSetup`] when it is unusable.
pub fn load() -> &'static SetupRecord {
    let len = (size_of::<SetupRecord>() as u64).next_multiple_of(4096);
    // SAFETY: a fresh private read-only mapping chosen by the kernel.
    let p = unsafe { sys::mmap(0, len, sys::PROT_READ, sys::MAP_PRIVATE, stub::SETUP_FD, 0) };
    if p < 0 {
        sys::exit_group(StubExit::BadSetup as i32);
    }
    // SAFETY: single-threaded setup; the mapping holds a full record (H sized the memfd to
    // it), and SETUP is only read after this.
    let rec = unsafe {
        core::ptr::copy_nonoverlapping(p as *const u8, SETUP.get() as *mut u8, size_of::<SetupRecord>());
        sys::syscall3(sys::NR_MUNMAP, p as u64, len, 0);
        (*SETUP.get()).assume_init_ref()
    };
    let ok = rec.magic == stub::SETUP_MAGIC
        && rec.abi_version == guest_abi::ABI_VERSION
        && rec.vcpus >= 1
        && rec.vcpus <= guest_abi::MAX_VCPUS
        && rec.space < guest_abi::MAX_SPACES
        && rec.nsegments as usize <= stub::MAX_SEGMENTS
        && rec.filter_a_len as usize <= stub::MAX_FILTER_INSNS
        && rec.filter_b_len as usize <= stub::MAX_FILTER_INSNS;
    if !ok {
        sys::exit_group(StubExit::BadSetup as i32);
    }
    rec
}

/// Filter A of the record as a slice.
pub fn filter_a(rec: &SetupRecord) -> &[stub::SockFilter] {
    &rec.filter_a[..rec.filter_a_len as usize]
}

/// Filter B of the record as a slice.
pub fn filter_b(rec: &SetupRecord) -> &[stub::SockFilter] {
    &rec.filter_b[..rec.filter_b_len as usize]
}

/// Maps stack slot `slot`: a `PROT_NONE` guard page, then a read-write stack.
pub fn map_stack_slot(slot: u64) {
    let base = stub::stack_slot_base(slot);
    // SAFETY: the stacks area is reserved for the stub; NOREPLACE refuses to clobber anything.
    let ok = unsafe {
        sys::mmap(base, stub::STACK_SLOT_SIZE, sys::PROT_NONE,
            sys::MAP_PRIVATE | sys::MAP_ANONYMOUS | sys::MAP_NORESERVE | sys::MAP_FIXED_NOREPLACE, -1, 0) == base as i64
            && sys::syscall3(sys::NR_MPROTECT, base + 4096, guest_abi::layout::STUB_STACK_SIZE,
                sys::PROT_READ | sys::PROT_WRITE) == 0
    };
    if !ok {
        sys::exit_group(StubExit::MapFailed as i32);
    }
}

/// Maps `len` bytes of `fd` at `off` to exactly `addr`, or exits with [`StubExit::MapFailed`].
pub fn map_fixed(addr: u64, len: u64, prot: u64, fd: i32, off: u64) {
    // SAFETY: callers pass addresses of the stub-owned layout; NOREPLACE refuses overlaps.
    let r = unsafe { sys::mmap(addr, len, prot, sys::MAP_SHARED | sys::MAP_FIXED_NOREPLACE, fd, off) };
    if r != addr as i64 {
        sys::exit_group(StubExit::MapFailed as i32);
    }
}

/// `mseal(addr, len, 0)`: no later mmap/munmap/mprotect may change the range (Linux 6.10+).
/// Returns false when the kernel lacks mseal (`ENOSYS`); exits on other errors.
pub fn seal(addr: u64, len: u64) -> bool {
    // SAFETY: mseal only changes the mapping's attributes.
    let r = unsafe { sys::syscall3(sys::NR_MSEAL, addr, len, 0) };
    if r == -sys::ENOSYS {
        return false;
    }
    if r != 0 {
        sys::exit_group(StubExit::SealFailed as i32);
    }
    true
}

/// Seals the stub image segments (text, rodata, data+bss) and the given stack slots.
/// Returns false (sealing nothing) when the kernel has no `mseal`.
pub fn seal_image_and_stacks(slots: u64) -> bool {
    let start = crate::global::text_start();
    if !seal(start, crate::global::text_end() - start) {
        return false;
    }
    seal(crate::global::text_end(), crate::global::rodata_end() - crate::global::text_end());
    seal(crate::global::rodata_end(), crate::global::image_end() - crate::global::rodata_end());
    for s in 0..slots {
        seal(stub::stack_slot_base(s), stub::STACK_SLOT_SIZE);
    }
    true
}
