//! The shared memfd ([`guest_abi::layout::SHARED_SIZE`] bytes, sparse): per-vCPU hypercall
//! pages and one PVCS per (space, vCPU), created and mapped by H, passed to K and U.

use crate::SwitcherError;
use crate::sys::{Mapping, memfd};
use guest_abi::layout;
use guest_abi::pvcs::{Pvcs, SwitchState, TrapKind, TrapRecord, VcpuPage};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::Ordering;

/// The shared memfd and H's mapping of all of it.
///
/// The pages are also writable by K (all of them) and by each U (its own space's PVCSs):
/// fields that are not atomics may change under H at any time. Read them with
/// `std::ptr::read_volatile` through [`SharedMemory::pvcs_ptr`], copy once, validate.
pub struct SharedMemory {
    fd: OwnedFd,
    map: Mapping,
}

impl SharedMemory {
    /// Creates the memfd (`MFD_CLOEXEC`, sized `SHARED_SIZE`) and maps it read-write.
    /// Errors: `memfd_create`, `ftruncate` or `mmap` failures.
    pub fn create() -> Result<Self, SwitcherError> {
        let fd = memfd(c"pvm-shared", layout::SHARED_SIZE, 0)?;
        let map = Mapping::shared(fd.as_fd(), layout::SHARED_SIZE as usize, 0)?;
        Ok(Self { fd, map })
    }

    /// The memfd (to pass to K and U).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Raw pointer to vCPU `vcpu`'s hypercall page. Panics if `vcpu >= MAX_VCPUS`.
    pub fn vcpu_page_ptr(&self, vcpu: u32) -> *mut VcpuPage {
        assert!(vcpu < guest_abi::MAX_VCPUS, "vcpu {vcpu} out of range");
        // SAFETY: the offset is inside the mapping (vcpu < MAX_VCPUS, layout asserts).
        unsafe { self.map.ptr().add(layout::vcpu_page_offset(vcpu) as usize).cast() }
    }

    /// vCPU `vcpu`'s hypercall page. Panics if `vcpu >= MAX_VCPUS`.
    pub fn vcpu_page(&self, vcpu: u32) -> &VcpuPage {
        // SAFETY: mapped, aligned (page offsets), lives as long as self.
        unsafe { &*self.vcpu_page_ptr(vcpu) }
    }

    /// Raw pointer to the PVCS of (`space`, `vcpu`). Panics if `space >= MAX_SPACES` or
    /// `vcpu >= MAX_VCPUS`.
    pub fn pvcs_ptr(&self, space: u32, vcpu: u32) -> *mut Pvcs {
        assert!(space < guest_abi::MAX_SPACES && vcpu < guest_abi::MAX_VCPUS, "pvcs ({space}, {vcpu}) out of range");
        // SAFETY: the offset is inside the mapping (layout asserts).
        unsafe { self.map.ptr().add(layout::pvcs_offset(space, vcpu) as usize).cast() }
    }

    /// The PVCS of (`space`, `vcpu`). Panics as [`SharedMemory::pvcs_ptr`]. Only the atomics
    /// (`state`) may be used through this reference; read other fields with
    /// `read_volatile` through [`SharedMemory::pvcs_ptr`].
    pub fn pvcs(&self, space: u32, vcpu: u32) -> &Pvcs {
        // SAFETY: mapped, page aligned, lives as long as self.
        unsafe { &*self.pvcs_ptr(space, vcpu) }
    }

    /// Resets the PVCS header pages of `space` for vCPUs `0..vcpus` to a fresh state (`Empty`,
    /// zero registers, trap record, tid, counters) before a new U process uses them.
    pub(crate) fn reset_space(&self, space: u32, vcpus: u32) {
        for v in 0..vcpus {
            let p = self.pvcs_ptr(space, v);
            // SAFETY: the header page of a mapped PVCS; no U owns it yet (spawn_space calls this
            // before spawning), so only a hostile K could race, which only hurts itself.
            unsafe { std::ptr::write_bytes(p.cast::<u8>(), 0, guest_abi::pvcs::PVCS_FPU_OFFSET) };
        }
    }

    /// Marks the PVCSs of `space` (vCPUs `0..vcpus`) dead after its U process died: writes a
    /// [`TrapKind::SpaceDied`] record, sets [`SwitchState::SpaceDead`] and wakes K's waiters.
    pub fn mark_space_dead(&self, space: u32, vcpus: u32) -> Result<(), SwitcherError> {
        for v in 0..vcpus.min(guest_abi::MAX_VCPUS) {
            let p = self.pvcs_ptr(space, v);
            let trap = TrapRecord { kind: TrapKind::SpaceDied as u32, ..TrapRecord::default() };
            // SAFETY: mapped PVCS; the trap record is plain data.
            unsafe { std::ptr::write_volatile(std::ptr::addr_of_mut!((*p).trap), trap) };
            let pv = self.pvcs(space, v);
            pv.state.store(SwitchState::SpaceDead as u32, Ordering::Release);
            crate::futex::wake(&pv.state, i32::MAX)?;
        }
        Ok(())
    }
}
