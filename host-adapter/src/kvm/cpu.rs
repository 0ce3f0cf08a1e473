//! Initial vCPU state of the KVM backend: 64-bit long mode set with `KVM_SET_SREGS` (no real
//! mode), Linux's GDT selectors, x2APIC enabled, the host's TSC, XSAVE when the guest CPUID
//! has it, and the kernel entry `_start(vcpu_id, boot_info_va, backend)` in `rdi`/`rsi`/`rdx`.
//!
//! Register and MSR facts: Intel SDM vol. 3A (2.5 control registers, 3.4.5 segment
//! descriptors, 10.12 x2APIC) and vol. 4 (MSR indices).

use kvm_bindings::{CpuId, Msrs, kvm_msr_entry, kvm_regs, kvm_segment, kvm_xcrs};
use kvm_ioctls::VcpuFd;

use guest_abi::layout::{BOOT_INFO_GPA, PHYSMAP_BASE};

use super::area::AreaLayout;
use crate::BackendError;

/// CR0: protection, monitor coprocessor, extension type, numeric error, write protect, paging.
const CR0: u64 = (1 << 0) | (1 << 1) | (1 << 4) | (1 << 5) | (1 << 16) | (1 << 31);
/// CR4: PAE, PGE, OSFXSR, OSXMMEXCPT.
const CR4: u64 = (1 << 5) | (1 << 7) | (1 << 9) | (1 << 10);
/// CR4.OSXSAVE.
const CR4_OSXSAVE: u64 = 1 << 18;
/// EFER: SCE (syscall), LME, LMA, NXE.
const EFER: u64 = (1 << 0) | (1 << 8) | (1 << 10) | (1 << 11);
/// IA32_APIC_BASE: default base, global enable, x2APIC mode.
const APIC_BASE: u64 = 0xfee0_0000 | (1 << 11) | (1 << 10);
/// IA32_APIC_BASE.BSP.
const APIC_BSP: u64 = 1 << 8;
/// IA32_TIME_STAMP_COUNTER.
const MSR_TSC: u32 = 0x10;
/// XCR0 components the guest may use: x87, SSE, AVX, AVX-512 (opmask, ZMM_Hi256, Hi16_ZMM).
const XCR0_USER: u64 = 0b1110_0111;

fn ioctl<T>(what: &'static str, r: Result<T, vmm_sys_util::errno::Error>) -> Result<T, BackendError> {
    r.map_err(|source| BackendError::Kvm { what, source })
}

/// The guest CPUID for vCPU `id`: KVM's supported set with the APIC id filled in. Returns it
/// and whether it offers XSAVE.
pub fn cpuid_for(supported: &CpuId, id: u32) -> (CpuId, bool) {
    let mut c = supported.clone();
    let mut xsave = false;
    for e in c.as_mut_slice() {
        match e.function {
            1 => {
                e.ebx = (e.ebx & 0x00ff_ffff) | (id << 24);
                xsave = e.ecx & (1 << 26) != 0;
            }
            0xb | 0x1f => e.edx = id,
            _ => {}
        }
    }
    (c, xsave)
}

/// XCR0 for a guest whose supported CPUID leaf 0xD reports `eax`/`edx` (always x87 | SSE).
pub fn xcr0(supported: &CpuId) -> u64 {
    let leaf = supported.as_slice().iter().find(|e| e.function == 0xd && e.index == 0);
    let mask = leaf.map_or(3, |e| u64::from(e.eax) | (u64::from(e.edx) << 32));
    (mask & XCR0_USER) | 3
}

fn segment(selector: u16, type_: u8, long: bool) -> kvm_segment {
    kvm_segment {
        base: 0,
        limit: 0xffff_ffff,
        selector,
        type_,
        present: 1,
        dpl: 0,
        db: u8::from(!long),
        s: 1,
        l: u8::from(long),
        g: 1,
        avl: 0,
        unusable: 0,
        padding: 0,
    }
}

/// Puts vCPU `id` in long mode at the kernel entry.
pub fn configure(
    vcpu: &VcpuFd,
    id: u32,
    area: &AreaLayout,
    entry: u64,
    cpuid: &CpuId,
    xsave: Option<u64>,
) -> Result<(), BackendError> {
    ioctl("KVM_SET_CPUID2", vcpu.set_cpuid2(cpuid))?;
    let mut s = ioctl("KVM_GET_SREGS", vcpu.get_sregs())?;
    s.cs = segment(0x10, 0xb, true);
    let data = segment(0x18, 0x3, false);
    (s.ds, s.es, s.ss) = (data, data, data);
    let null = kvm_segment { unusable: 1, ..segment(0, 0x3, false) };
    (s.fs, s.gs) = (null, null);
    s.tr = kvm_segment {
        base: PHYSMAP_BASE + area.tss(),
        limit: 0x67,
        selector: 0x40,
        type_: 0xb,
        present: 1,
        dpl: 0,
        db: 0,
        s: 0,
        l: 0,
        g: 0,
        avl: 0,
        unusable: 0,
        padding: 0,
    };
    s.ldt = kvm_segment { selector: 0, type_: 2, present: 1, s: 0, db: 0, g: 0, limit: 0xffff, ..null };
    s.gdt.base = PHYSMAP_BASE + area.gdt();
    s.gdt.limit = (super::area::GDT.len() * 8 - 1) as u16 + 16;
    s.idt.base = 0;
    s.idt.limit = 0;
    s.cr0 = CR0;
    s.cr3 = area.pml4();
    s.cr4 = CR4 | if xsave.is_some() { CR4_OSXSAVE } else { 0 };
    s.efer = EFER;
    s.apic_base = APIC_BASE | if id == 0 { APIC_BSP } else { 0 };
    ioctl("KVM_SET_SREGS", vcpu.set_sregs(&s))?;
    if let Some(xcr0) = xsave {
        // SAFETY: kvm_xcrs is plain data; all-zero is a valid value.
        let mut x: kvm_xcrs = unsafe { std::mem::zeroed() };
        x.nr_xcrs = 1;
        x.xcrs[0].xcr = 0;
        x.xcrs[0].value = xcr0;
        ioctl("KVM_SET_XCRS", vcpu.set_xcrs(&x))?;
    }
    // The guest's TSC follows the host's, so the boot TSC pvm wrote into BootInfo holds.
    let msrs = Msrs::from_entries(&[kvm_msr_entry { index: MSR_TSC, data: crate::devices::rdtsc(), ..Default::default() }])
        .map_err(|_| BackendError::Unavailable("building the MSR list".into()))?;
    ioctl("KVM_SET_MSRS", vcpu.set_msrs(&msrs))?;
    let regs = kvm_regs {
        rip: entry,
        rsp: area.stack_top(id),
        rdi: u64::from(id),
        rsi: PHYSMAP_BASE + BOOT_INFO_GPA,
        rdx: guest_abi::Backend::Kvm as u64,
        rflags: 2,
        ..Default::default()
    };
    ioctl("KVM_SET_REGS", vcpu.set_regs(&regs))?;
    if id != 0 {
        // With the in-kernel irqchip, application processors wait for INIT/SIPI; ours start at
        // the kernel entry like the boot processor.
        let mp = kvm_bindings::kvm_mp_state { mp_state: kvm_bindings::KVM_MP_STATE_RUNNABLE };
        ioctl("KVM_SET_MP_STATE", vcpu.set_mp_state(mp))?;
    }
    Ok(())
}
