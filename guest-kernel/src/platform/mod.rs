//! The platform layer (design section 8): how the kernel runs user code and gets it back. One
//! small trait, rCore-`trapframe` style (`enter_user(&mut ctx) -> Trap`), with the `pv`
//! implementation (soft backend: PVCS + futex handoff) now and room for `hw` (KVM, ring 0).

pub mod hw;
pub mod pv;

use alloc::vec::Vec;
use guest_abi::pvcs::UserRegs;

/// What to do with the FPU state when entering user code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FpuAction {
    /// Architectural initial state (after execve).
    Reset,
    /// The same thread re-enters on the same vCPU and space: keep what is loaded.
    Keep,
    /// Load the thread's saved image (`UserContext::fpu`).
    Restore,
}

/// A user thread's CPU state as the kernel keeps it.
#[derive(Clone, Debug, Default)]
pub struct UserContext {
    /// General registers, rip, rflags, fs/gs base.
    pub regs: UserRegs,
    /// Saved FPU/XSAVE image (opaque, host signal-frame layout); empty until first saved.
    pub fpu: Vec<u8>,
}

/// Where to run: the address space's page-table root and its shadow space id.
#[derive(Clone, Copy, Debug)]
pub struct SpaceRef {
    /// GPA of the PML4.
    pub root: u64,
    /// Shadow space id from `LOAD_PGTBL`.
    pub space: u32,
}

/// Why user code stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trap {
    /// `syscall` with this number (args in the regs; rip already after the instruction).
    Syscall(u64),
    /// Page fault at `addr` with x86 error code `error`.
    PageFault {
        /// Faulting GVA (CR2).
        addr: u64,
        /// #PF error code bits (`guest_abi::pvcs::pf_error`).
        error: u64,
    },
    /// Another exception.
    Exception {
        /// x86 vector.
        vector: u32,
        /// Error code.
        error: u64,
        /// Faulting address (`si_addr`).
        addr: u64,
        /// Host `si_code`, passed on to the guest's signal.
        si_code: i32,
    },
    /// An interrupt arrived (timer, IPI).
    Interrupt,
    /// The address space's user-side process died: kill everything using it.
    SpaceDied,
}

/// The platform interface.
pub trait Platform: Sync {
    /// Runs `ctx` in address space `space` on this vCPU until the next trap; `ctx` then holds
    /// the registers at the trap (and, if `save_fpu`, the FPU image).
    fn enter_user(&self, vcpu: u32, space: SpaceRef, ctx: &mut UserContext, fpu: FpuAction) -> Trap;

    /// Copies the FPU image the last trap on (`vcpu`, `space`) left into `ctx.fpu` (lazy save
    /// when the vCPU switches to another thread).
    fn save_fpu(&self, vcpu: u32, space: SpaceRef, ctx: &mut UserContext);
}

/// The platform this kernel runs on, chosen at entry by the `backend` argument: [`hw::Hw`]
/// under KVM, [`pv::Pv`] on the soft backend.
pub struct Current;

impl Platform for Current {
    fn enter_user(&self, vcpu: u32, space: SpaceRef, ctx: &mut UserContext, fpu: FpuAction) -> Trap {
        if hw::active() {
            hw::Hw.enter_user(vcpu, space, ctx, fpu)
        } else {
            pv::Pv.enter_user(vcpu, space, ctx, fpu)
        }
    }

    fn save_fpu(&self, vcpu: u32, space: SpaceRef, ctx: &mut UserContext) {
        if hw::active() {
            hw::Hw.save_fpu(vcpu, space, ctx);
        } else {
            pv::Pv.save_fpu(vcpu, space, ctx);
        }
    }
}
