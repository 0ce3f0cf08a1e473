//! The local APIC in x2APIC mode (H enables it in IA32_APIC_BASE): a one-shot timer for
//! `SET_TIMER` deadlines and fixed IPIs. KVM's in-kernel LAPIC runs its timer from a 1 GHz bus
//! clock (Linux `arch/x86/kvm/lapic.c`, APIC_BUS_CYCLE_NS_DEFAULT = 1), so with divide-by-1 a
//! count is nanoseconds. MSR numbers: Intel SDM vol. 3A, 11.12.1.2 (x2APIC register map).

use super::cpu::wrmsr;
use super::entry::{IPI_VECTOR, SPURIOUS_VECTOR, TIMER_VECTOR};

const MSR_EOI: u32 = 0x80b;
const MSR_SVR: u32 = 0x80f;
const MSR_ICR: u32 = 0x830;
const MSR_LVT_TIMER: u32 = 0x832;
const MSR_TIMER_INIT: u32 = 0x838;
const MSR_TIMER_DIV: u32 = 0x83e;

/// Enables the APIC with a one-shot timer on [`TIMER_VECTOR`], stopped.
pub fn init() {
    // SAFETY: x2APIC MSRs exist (H enabled x2APIC mode); these writes only configure it.
    unsafe {
        wrmsr(MSR_SVR, 0x100 | SPURIOUS_VECTOR);
        wrmsr(MSR_TIMER_DIV, 0xb);
        wrmsr(MSR_LVT_TIMER, TIMER_VECTOR);
        wrmsr(MSR_TIMER_INIT, 0);
    }
}

/// Fires the timer interrupt in `ns` nanoseconds (clamped to 1 ..= u32::MAX); 0 stops it.
pub fn arm_in(ns: u64) {
    let count = if ns == 0 { 0 } else { ns.clamp(1, u64::from(u32::MAX)) };
    // SAFETY: as in `init`.
    unsafe { wrmsr(MSR_TIMER_INIT, count) };
}

/// Acknowledges the interrupt in service.
pub fn eoi() {
    // SAFETY: as in `init`.
    unsafe { wrmsr(MSR_EOI, 0) };
}

/// Sends an IPI to the vCPU whose APIC id is `vcpu` (KVM gives vCPU `i` APIC id `i`).
pub fn send_ipi(vcpu: u32) {
    // SAFETY: as in `init`; fixed delivery, physical destination.
    unsafe { wrmsr(MSR_ICR, (u64::from(vcpu) << 32) | IPI_VECTOR) };
}
