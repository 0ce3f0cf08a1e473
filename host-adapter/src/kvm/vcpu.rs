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
}

/// Names of [`ExitKind`]s, in order.
pub(crate) const EXIT_NAMES: [&str; 3] = ["io (hypercall port)", "intr (signal)", "fatal"];

/// What one vCPU thread counted.
#[derive(Default)]
pub(crate) struct VcpuCounters {
    pub(crate) hypercalls: [Counter; HYPERCALL_COUNT],
    pub(crate) exits: [Counter; 3],
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
        let kind = match exit {
            Ok(VcpuExit::IoOut(HYPERCALL_PORT, _)) => {
                match hypercall(vm, id, &vcpu, &mut counters) {
                    Ok(()) => ExitKind::Hypercall,
                    Err(e) => fatal(vm, e),
                }
            }
            Ok(VcpuExit::Intr) => ExitKind::Interrupted,
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => ExitKind::Interrupted,
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
            Ok(VcpuExit::InternalError) => {
                let run = vcpu.get_kvm_run();
                // SAFETY: exit_reason is KVM_EXIT_INTERNAL_ERROR, so `internal` is the live
                // union member.
                let internal = unsafe { run.__bindgen_anon_1.internal };
                let n = (internal.ndata as usize).min(internal.data.len());
                let msg = format!(
                    "KVM_EXIT_INTERNAL_ERROR suberror {}{} (data {:x?})",
                    internal.suberror,
                    if internal.suberror == 1 { " (emulation failure)" } else { "" },
                    &internal.data[..n]
                );
                fatal(vm, describe(vm, &vcpu, &msg))
            }
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
