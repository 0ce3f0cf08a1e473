//! Hypercalls on the `hw` platform. Those that reach H use port I/O: `out dx, eax` to
//! `guest_abi::hypercall::HYPERCALL_PORT` with `rax` = number, `rdi`, `rsi`, `r10`, `r8` =
//! arguments 0..3 (`rdx` holds the port), result in `rax`. The MMU, timer, IPI and halt
//! calls are served here without leaving the guest (the guest owns its CR3, TLB and LAPIC).

use core::arch::asm;

use guest_abi::hypercall::{FlushRange, Hypercall, FAULT_FILLED, FLUSH_LIST_MAX, HYPERCALL_PORT};
use guest_abi::MAX_SPACES;

use super::{apic, cpu, mmu, percpu};

/// Issues hypercall `nr` with `args`.
pub fn call(nr: Hypercall, args: [u64; 4]) -> i64 {
    let [a0, a1, a2, a3] = args;
    match nr {
        // Space ids only name roots for the scheduler's bookkeeping here (no PVCS): derive
        // one from the root's frame number.
        Hypercall::LoadPgtbl => ((a0 >> 12) % u64::from(MAX_SPACES)) as i64,
        Hypercall::ReleasePgtbl => {
            mmu::release(percpu(), a0);
            0
        }
        Hypercall::FlushTlb => {
            mmu::flush(percpu(), a0, a1, a2);
            0
        }
        Hypercall::FlushTlbList => {
            let n = a2.min(FLUSH_LIST_MAX) as usize;
            let recs = crate::mm::phys_to_virt(a1).cast::<FlushRange>();
            for i in 0..n {
                // SAFETY: `hcall::flush_tlb_ranges` passes a frame it owns holding `n` records
                // (n <= FLUSH_LIST_MAX fill at most one page).
                let r = unsafe { recs.add(i).read() };
                mmu::flush(percpu(), a0, r.gva, r.len);
            }
            0
        }
        Hypercall::FlushTlbAll => {
            mmu::flush_all(percpu(), a0);
            0
        }
        Hypercall::Prefault => {
            mmu::sync(percpu(), a0, a1, a2);
            0
        }
        Hypercall::ShadowFault => {
            mmu::sync(percpu(), a0, a1, 1);
            cpu::invlpg(a1);
            FAULT_FILLED
        }
        Hypercall::SetTimer => {
            super::set_timer(a0);
            0
        }
        Hypercall::Halt => {
            if percpu().cpu.pending == 0 {
                cpu::halt();
            }
            0
        }
        Hypercall::SendIpi => {
            apic::send_ipi(a0 as u32);
            0
        }
        _ => out(nr as u64, a0, a1, a2, a3),
    }
}

fn out(nr: u64, a0: u64, a1: u64, a2: u64, a3: u64) -> i64 {
    let ret: u64;
    // SAFETY: the port write exits to H, which reads the registers and writes rax; nothing
    // else changes.
    unsafe {
        asm!("out dx, eax", in("dx") HYPERCALL_PORT, inlateout("rax") nr => ret, in("rdi") a0,
             in("rsi") a1, in("r10") a2, in("r8") a3, options(nostack, preserves_flags));
    }
    ret as i64
}
