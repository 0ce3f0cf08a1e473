//! The `pv` platform (soft backend): user code runs in the U process of the address space;
//! the kernel publishes registers in the PVCS of (space, vCPU), flips `state` to
//! `KernelToUser`, wakes U and sleeps until U publishes a trap (`UserToKernel`) or H marks the
//! space dead (`SpaceDead`). See `guest_abi::pvcs::SwitchState` for who owns what when.

use super::{FpuAction, Platform, SpaceRef, Trap, UserContext};
use crate::arch::{futex_wait, futex_wake};
use core::sync::atomic::Ordering;
use guest_abi::layout::{pvcs_offset, K_SHARED_BASE};
use guest_abi::pvcs::{FpuOp, Pvcs, SwitchState, TrapKind, PVCS_FPU_SIZE};

/// The soft-backend platform.
pub struct Pv;

fn pvcs(space: u32, vcpu: u32) -> *mut Pvcs {
    (K_SHARED_BASE + pvcs_offset(space, vcpu)) as *mut Pvcs
}

impl Platform for Pv {
    fn enter_user(&self, vcpu: u32, space: SpaceRef, ctx: &mut UserContext, fpu: FpuAction) -> Trap {
        let p = pvcs(space.space, vcpu);
        // SAFETY: the PVCS window is mapped in K for every space id < MAX_SPACES (H returned
        // this id from LOAD_PGTBL); K owns the PVCS now (state is Empty or UserToKernel), so
        // writing its plain fields races with nobody honest; U may be hostile but can only
        // corrupt its own space's state, which we copy once and validate.
        unsafe {
            core::ptr::addr_of_mut!((*p).regs).write_volatile(ctx.regs);
            let op = match fpu {
                FpuAction::Restore if !ctx.fpu.is_empty() && ctx.fpu.len() <= PVCS_FPU_SIZE => {
                    let dst = core::ptr::addr_of_mut!((*p).fpu).cast::<u8>();
                    core::ptr::copy_nonoverlapping(ctx.fpu.as_ptr(), dst, ctx.fpu.len());
                    core::ptr::addr_of_mut!((*p).fpu_len).write_volatile(ctx.fpu.len() as u32);
                    FpuOp::Restore
                }
                FpuAction::Restore | FpuAction::Reset => FpuOp::Reset,
                FpuAction::Keep => FpuOp::Keep,
            };
            core::ptr::addr_of_mut!((*p).fpu_op).write_volatile(op as u32);
            let state = &(*p).state;
            crate::hcall::count_user_run(vcpu);
            // A swap, not a store: H marks the PVCS `SpaceDead` when U dies, possibly while K
            // still owns it (after U's last trap). A plain store overwrote that mark, and K
            // then waited forever for a U that was gone (2-vCPU fork bombs hung that way, one
            // run in a few). With the swap, H's mark is either seen here or made after it
            // (H then wakes K's waiters, and the loop below sees it).
            if state.swap(SwitchState::KernelToUser as u32, Ordering::AcqRel) == SwitchState::SpaceDead as u32 {
                state.store(SwitchState::SpaceDead as u32, Ordering::Release);
                crate::hcall::count_user_run(vcpu);
                return Trap::SpaceDied;
            }
            futex_wake(state, 1);
            loop {
                let s = state.load(Ordering::Acquire);
                if s == SwitchState::UserToKernel as u32 {
                    break;
                }
                if s == SwitchState::SpaceDead as u32 {
                    crate::hcall::count_user_run(vcpu);
                    return Trap::SpaceDied;
                }
                futex_wait(state, s);
            }
            crate::hcall::count_user_run(vcpu);
            ctx.regs = core::ptr::addr_of!((*p).regs).read_volatile();
            let rec = core::ptr::addr_of!((*p).trap).read_volatile();
            match TrapKind::from_raw(rec.kind) {
                Some(TrapKind::Syscall) => Trap::Syscall(rec.syscall_nr),
                Some(TrapKind::PageFault) => Trap::PageFault { addr: rec.fault_addr, error: rec.error_code },
                Some(TrapKind::Exception) => Trap::Exception {
                    vector: rec.vector,
                    error: rec.error_code,
                    addr: rec.fault_addr,
                    si_code: rec.si_code,
                },
                Some(TrapKind::Interrupt) => Trap::Interrupt,
                Some(TrapKind::SpaceDied) => Trap::SpaceDied,
                // Garbage from U: treat like a fatal exception of that process.
                Some(TrapKind::None) | None => Trap::Exception { vector: 13, error: 0, addr: 0, si_code: 0 },
            }
        }
    }

    fn save_fpu(&self, vcpu: u32, space: SpaceRef, ctx: &mut UserContext) {
        let p = pvcs(space.space, vcpu);
        // SAFETY: K owns the PVCS after a trap; fpu_len is clamped to the array size.
        unsafe {
            let len = (core::ptr::addr_of!((*p).fpu_len).read_volatile() as usize).min(PVCS_FPU_SIZE);
            ctx.fpu.clear();
            ctx.fpu.extend_from_slice(core::slice::from_raw_parts(core::ptr::addr_of!((*p).fpu).cast::<u8>(), len));
        }
    }
}
