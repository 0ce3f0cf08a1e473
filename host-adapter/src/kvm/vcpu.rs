//! One vCPU thread of the KVM backend: `KVM_RUN` until the VM stops, serving hypercalls
//! (`out` to `HYPERCALL_PORT`, arguments in registers) and turning every other exit into a
//! clear error.
//!
//! Hypercall register convention (guest_abi::hypercall): `rax` = number, `rdi`, `rsi`, `r10`,
//! `r8` = arguments 0..3, `dx` = the port; H writes the result into `rax`.

use std::sync::atomic::Ordering;
use std::time::Instant;

use guest_abi::hypercall::{HYPERCALL_COUNT, HYPERCALL_PORT, Hypercall};
use kvm_ioctls::{VcpuExit, VcpuFd};

use super::Vm;
use crate::devices;
use crate::stats::Counter;
use crate::ExitReason;

const EINVAL: i64 = 22;
const ENOSYS: i64 = 38;

/// Exit reasons counted separately in `--stats`.
#[derive(Clone, Copy)]
pub(crate) enum ExitKind {
    /// `out` to the hypercall port.
    Hypercall = 0,
    /// `KVM_RUN` interrupted by a signal (H kicking the vCPU).
    Interrupted = 1,
    /// Any exit that ends the VM.
    Fatal = 2,
    /// An SSE instruction at CPL 0 that software KVM could not emulate, done by H.
    SseEmulated = 3,
}

/// Names of [`ExitKind`]s, in order.
pub(crate) const EXIT_NAMES: [&str; 4] =
    ["io (hypercall port)", "intr (signal)", "fatal", "internal error: SSE emulated by H"];

/// What one vCPU thread counted.
#[derive(Default)]
pub(crate) struct VcpuCounters {
    pub(crate) hypercalls: [Counter; HYPERCALL_COUNT],
    pub(crate) exits: [Counter; 4],
}

/// Runs vCPU `id` until the VM stops.
pub(crate) fn run(vm: &Vm, id: u32, mut vcpu: VcpuFd) -> VcpuCounters {
    let mut counters = VcpuCounters::default();
    vm.tids[id as usize].store(
        // SAFETY: pthread_self has no preconditions.
        unsafe { libc::pthread_self() } as u64,
        Ordering::Release,
    );
    loop {
        if vm.stop.load(Ordering::Acquire) {
            return counters;
        }
        let exit = vcpu.run();
        let t0 = Instant::now();
        if matches!(exit, Ok(VcpuExit::InternalError)) {
            let kind = match emulate_sse(vm, &mut vcpu) {
                Ok(()) => ExitKind::SseEmulated,
                Err(why) => {
                    let msg = internal_error(&mut vcpu, &why);
                    fatal(vm, describe(vm, &vcpu, &msg))
                }
            };
            counters.exits[kind as usize].add(t0.elapsed().as_nanos() as u64);
            continue;
        }
        let kind = match exit {
            Ok(VcpuExit::IoOut(HYPERCALL_PORT, _)) => {
                match hypercall(vm, id, &vcpu, &mut counters) {
                    Ok(()) => ExitKind::Hypercall,
                    Err(e) => fatal(vm, e),
                }
            }
            Ok(VcpuExit::IoOut(guest_abi::hostfs::HOSTFS_PORT, _)) => match super::hostfs::doorbell(vm, &vcpu) {
                Ok(()) => ExitKind::Hypercall,
                Err(e) => fatal(vm, e),
            },
            Ok(VcpuExit::Intr) => interrupted(vm, &vcpu),
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => interrupted(vm, &vcpu),
            Ok(VcpuExit::IoOut(port, data)) => {
                let msg = format!("unexpected port write {port:#x} ({} bytes)", data.len());
                fatal(vm, describe(vm, &vcpu, &msg))
            }
            Ok(VcpuExit::IoIn(port, _)) => fatal(vm, describe(vm, &vcpu, &format!("unexpected port read {port:#x}"))),
            Ok(VcpuExit::MmioRead(gpa, _)) => {
                fatal(vm, describe(vm, &vcpu, &format!("guest read of unbacked GPA {gpa:#x}")))
            }
            Ok(VcpuExit::MmioWrite(gpa, _)) => {
                fatal(vm, describe(vm, &vcpu, &format!("guest write to unbacked GPA {gpa:#x}")))
            }
            Ok(VcpuExit::Shutdown) => fatal(vm, describe(vm, &vcpu, "triple fault (KVM_EXIT_SHUTDOWN)")),
            Ok(VcpuExit::Hlt) => fatal(vm, describe(vm, &vcpu, "hlt exit without the in-kernel irqchip")),
            Ok(VcpuExit::FailEntry(reason, cpu)) => fatal(
                vm,
                describe(vm, &vcpu, &format!("KVM_EXIT_FAIL_ENTRY: hardware reason {reason:#x} on host CPU {cpu}")),
            ),
            Ok(other) => {
                let msg = format!("unexpected KVM exit {other:?}");
                fatal(vm, describe(vm, &vcpu, &msg))
            }
            Err(e) => fatal(vm, format!("vCPU {id}: KVM_RUN failed: {e}")),
        };
        counters.exits[kind as usize].add(t0.elapsed().as_nanos() as u64);
    }
}

/// A kick: takes a RIP sample when profiling.
fn interrupted(vm: &Vm, vcpu: &VcpuFd) -> ExitKind {
    if let (Some(p), Ok(regs)) = (&vm.profile, vcpu.get_regs()) {
        p.record(regs.rip);
    }
    ExitKind::Interrupted
}

/// The message for a `KVM_EXIT_INTERNAL_ERROR` H could not resolve.
fn internal_error(vcpu: &mut VcpuFd, why: &str) -> String {
    let run = vcpu.get_kvm_run();
    // SAFETY: called for KVM_EXIT_INTERNAL_ERROR only, so `internal` is the live member.
    let internal = unsafe { run.__bindgen_anon_1.internal };
    let n = (internal.ndata as usize).min(internal.data.len());
    format!(
        "KVM_EXIT_INTERNAL_ERROR suberror {}{} (data {:x?}; H: {why})",
        internal.suberror,
        if internal.suberror == 1 { " (emulation failure)" } else { "" },
        &internal.data[..n]
    )
}

/// Ends the VM with a message about a fatal exit.
fn fatal(vm: &Vm, msg: String) -> ExitKind {
    vm.finish(ExitReason::KernelDied(msg));
    ExitKind::Fatal
}

/// `msg` with the vCPU's rip, rsp, CR2 and the instruction bytes at rip.
fn describe(vm: &Vm, vcpu: &VcpuFd, msg: &str) -> String {
    let Ok(regs) = vcpu.get_regs() else { return msg.to_string() };
    let cr2 = vcpu.get_sregs().map(|s| s.cr2).unwrap_or(0);
    let code = vcpu
        .translate_gva(regs.rip)
        .ok()
        .filter(|t| t.valid != 0)
        .and_then(|t| vm.read_gpa(t.physical_address, 16))
        .map_or_else(|| "unreadable".to_string(), |b| format!("{b:02x?}"));
    format!(
        "{msg} at rip {:#x} (code {code}), rsp {:#x}, cr2 {cr2:#x}, rax {:#x}, rdi {:#x}, rsi {:#x}",
        regs.rip, regs.rsp, regs.rax, regs.rdi, regs.rsi
    )
}

/// Serves the hypercall in the vCPU's registers and writes the result into `rax`.
fn hypercall(vm: &Vm, id: u32, vcpu: &VcpuFd, counters: &mut VcpuCounters) -> Result<(), String> {
    let mut regs = vcpu.get_regs().map_err(|e| format!("KVM_GET_REGS: {e}"))?;
    let nr = regs.rax;
    let args = [regs.rdi, regs.rsi, regs.r10, regs.r8];
    let t0 = Instant::now();
    let ret = match Hypercall::from_raw(nr) {
        Some(call) => {
            let r = serve(vm, id, call, args);
            counters.hypercalls[nr as usize - 1].add(t0.elapsed().as_nanos() as u64);
            r
        }
        None => -ENOSYS,
    };
    if vm.stop.load(Ordering::Acquire) {
        return Ok(());
    }
    regs.rax = ret as u64;
    vcpu.set_regs(&regs).map_err(|e| format!("KVM_SET_REGS: {e}"))
}

fn serve(vm: &Vm, id: u32, call: Hypercall, [a0, a1, a2, _a3]: [u64; 4]) -> i64 {
    let ram = &vm.setup.memory;
    match call {
        Hypercall::ConsoleWrite => vm.console.write(ram, a0, a1, a2),
        Hypercall::ConsoleRead => vm.console.read(ram, a0, a1),
        Hypercall::GetTime => devices::get_time(a0),
        Hypercall::CopyMem => devices::copy_mem(ram, a0, a1, a2),
        Hypercall::ZeroMem => devices::zero_mem(ram, a0, a1),
        Hypercall::Shutdown => {
            vm.finish(devices::shutdown_reason(ram, a0, a1));
            0
        }
        Hypercall::YieldTo => {
            if a0 >= u64::from(vm.setup.vcpus) {
                return -EINVAL;
            }
            std::thread::yield_now();
            0
        }
        // The hw platform loads CR3, flushes its TLB, handles its own #PF, halts with `hlt`
        // and programs its LAPIC itself: these never need H under KVM.
        Hypercall::LoadPgtbl
        | Hypercall::FlushTlb
        | Hypercall::FlushTlbAll
        | Hypercall::FlushTlbList
        | Hypercall::ReleasePgtbl
        | Hypercall::Prefault
        | Hypercall::ShadowFault
        | Hypercall::SetTimer
        | Hypercall::Halt
        | Hypercall::SendIpi => {
            tracing::debug!(vcpu = id, call = call.name(), "hypercall not served under KVM");
            -ENOSYS
        }
    }
}

/// Reads `len` bytes at guest virtual `gva` (one page at most).
fn read_gva(vm: &Vm, vcpu: &VcpuFd, gva: u64, len: usize) -> Option<Vec<u8>> {
    let t = vcpu.translate_gva(gva).ok().filter(|t| t.valid != 0)?;
    let in_page = (0x1000 - (gva & 0xfff)) as usize;
    vm.read_gpa(t.physical_address, len.min(in_page))
}

/// Performs the SSE instruction at rip that software KVM failed to emulate (see `sse`).
fn emulate_sse(vm: &Vm, vcpu: &mut VcpuFd) -> Result<(), String> {
    use super::sse::{self, Op, Rm};
    let run = vcpu.get_kvm_run();
    // SAFETY: called for KVM_EXIT_INTERNAL_ERROR only, so `internal` is the live member.
    if unsafe { run.__bindgen_anon_1.internal.suberror } != kvm_bindings::KVM_INTERNAL_ERROR_EMULATION {
        return Err("not an emulation failure".into());
    }
    let vcpu = &*vcpu;
    let mut regs = vcpu.get_regs().map_err(|e| e.to_string())?;
    let code = read_gva(vm, vcpu, regs.rip, 15).ok_or("code unreadable")?;
    let insn = sse::decode(&code, &regs).ok_or("unsupported instruction")?;
    let mut fpu = vcpu.get_fpu().map_err(|e| e.to_string())?;
    let size = match insn.op {
        Op::Pinsrw(_) => 2,
        _ if insn.wide => 8,
        _ => 4,
    };
    let load = |rm: Rm| -> Result<u64, String> {
        match rm {
            Rm::Reg(r) => Ok(sse::gpr(&regs, r)),
            Rm::Mem(a) => {
                let b = read_gva(vm, vcpu, a, size).filter(|b| b.len() == size).ok_or("operand unreadable")?;
                let mut v = [0u8; 8];
                v[..size].copy_from_slice(&b);
                Ok(u64::from_le_bytes(v))
            }
        }
    };
    let x = usize::from(insn.xmm & 15);
    match insn.op {
        Op::ToXmm => {
            let v = load(insn.rm)? & if insn.wide { u64::MAX } else { u64::from(u32::MAX) };
            fpu.xmm[x] = [0; 16];
            fpu.xmm[x][..8].copy_from_slice(&v.to_le_bytes());
        }
        Op::Pinsrw(k) => {
            let w = (load(insn.rm)? as u16).to_le_bytes();
            let k = usize::from(k) * 2;
            fpu.xmm[x][k..k + 2].copy_from_slice(&w);
        }
        Op::FromXmm => {
            let mut v = [0u8; 8];
            v[..size].copy_from_slice(&fpu.xmm[x][..size]);
            match insn.rm {
                Rm::Reg(r) => sse::set_gpr(&mut regs, r, u64::from_le_bytes(v)),
                Rm::Mem(a) => {
                    let t = vcpu.translate_gva(a).ok().filter(|t| t.valid != 0 && (a & 0xfff) as usize + size <= 0x1000);
                    let t = t.ok_or("operand unwritable")?;
                    if !vm.write_gpa(t.physical_address, &v[..size]) {
                        return Err("operand unwritable".into());
                    }
                }
            }
        }
    }
    vcpu.set_fpu(&fpu).map_err(|e| e.to_string())?;
    regs.rip += insn.len;
    vcpu.set_regs(&regs).map_err(|e| e.to_string())?;
    // KVM queued #UD for the instruction it could not emulate: drop it.
    let mut ev = vcpu.get_vcpu_events().map_err(|e| e.to_string())?;
    ev.exception.injected = 0;
    ev.exception.pending = 0;
    vcpu.set_vcpu_events(&ev).map_err(|e| e.to_string())
}
