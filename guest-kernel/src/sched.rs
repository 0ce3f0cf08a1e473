//! The per-vCPU loop: pick a thread from this vCPU's run queue and run it
//! (`loop { trap = platform.enter_user(ctx); handle(trap) }`), handling syscalls, page faults
//! (shadow fill, demand paging, SIGSEGV), exceptions (signal deaths) and process exit. An idle
//! vCPU halts.

use crate::mm::space::{Access, FaultError};
use crate::platform::{pv::Pv, FpuAction, Platform, SpaceRef, Trap};
use crate::proc::{ExitReason, Thread, PROCESSES};
use crate::sys::{self, Ctx, SysRet};
use alloc::collections::VecDeque;
use guest_abi::hypercall::{ShutdownKind, FAULT_FILLED};
use guest_abi::pvcs::{pf_error, vector};
use guest_abi::MAX_VCPUS;
use spin::Mutex;
use x86_64::structures::paging::PageTableFlags as F;

/// Run queues, one per vCPU.
pub static RUNQ: [Mutex<VecDeque<Thread>>; MAX_VCPUS as usize] = [const { Mutex::new(VecDeque::new()) }; MAX_VCPUS as usize];

static PLATFORM: Pv = Pv;

/// Linux signal numbers used for faults.
mod sig {
    pub const SIGILL: u32 = 4;
    pub const SIGTRAP: u32 = 5;
    pub const SIGBUS: u32 = 7;
    pub const SIGFPE: u32 = 8;
    pub const SIGKILL: u32 = 9;
    pub const SIGSEGV: u32 = 11;
}

/// Runs vCPU `vcpu` forever.
pub fn run_vcpu(vcpu: u32) -> ! {
    loop {
        let next = RUNQ[vcpu as usize].lock().pop_front();
        match next {
            Some(t) => run_thread(vcpu, t),
            None => crate::hcall::halt(),
        }
    }
}

/// What happens after a trap.
enum Next {
    Resume,
    Exit(ExitReason),
}

fn run_thread(vcpu: u32, mut t: Thread) {
    let mut last_fault = (u64::MAX, 0u32);
    loop {
        let space = {
            let mut mm = t.proc.mm.lock();
            match mm.space_id {
                Some(s) => SpaceRef { root: mm.root(), space: s },
                None => {
                    let r = crate::hcall::load_pgtbl(mm.root());
                    if r < 0 || r >= i64::from(guest_abi::MAX_SPACES) {
                        drop(mm);
                        crate::klog!(crate::log::ERROR, "pid {}: LOAD_PGTBL failed ({r})", t.proc.pid);
                        exit_process(&t, ExitReason::Signaled(sig::SIGKILL));
                        return;
                    }
                    mm.space_id = Some(r as u32);
                    SpaceRef { root: mm.root(), space: r as u32 }
                }
            }
        };
        let fpu = t.fpu;
        t.fpu = FpuAction::Keep;
        let t0 = crate::arch::rdtsc();
        let trap = PLATFORM.enter_user(vcpu, space, &mut t.ctx, fpu);
        let t1 = crate::arch::rdtsc();
        let next = match trap {
            Trap::Syscall(n) => {
                crate::stats::trap(1);
                let r = handle_syscall(vcpu, &mut t, n);
                let t2 = crate::arch::rdtsc();
                let khz = crate::boot::tsc_khz();
                crate::stats::direct_switch(crate::time::tsc_to_ns(t1.saturating_sub(t0), khz));
                let ns = crate::time::tsc_to_ns(t2.saturating_sub(t1), khz);
                crate::stats::syscall(n, ns);
                t.proc.sys_ns.fetch_add(ns, core::sync::atomic::Ordering::Relaxed);
                r
            }
            Trap::PageFault { addr, error } => {
                crate::stats::trap(2);
                if last_fault.0 == addr {
                    last_fault.1 += 1;
                } else {
                    last_fault = (addr, 0);
                }
                if last_fault.1 > 8 {
                    crate::klog!(crate::log::WARN, "pid {}: fault loop at {addr:#x} (error {error:#x})", t.proc.pid);
                    Next::Exit(ExitReason::Signaled(sig::SIGSEGV))
                } else {
                    handle_page_fault(&t, space, addr, error)
                }
            }
            Trap::Exception { vector: v, addr, si_code, .. } => {
                crate::stats::trap(3);
                let s = match v {
                    vector::DE | vector::MF | vector::XM => sig::SIGFPE,
                    vector::BP | vector::DB => sig::SIGTRAP,
                    vector::UD => sig::SIGILL,
                    vector::AC => sig::SIGBUS,
                    _ => sig::SIGSEGV,
                };
                crate::klog!(crate::log::INFO, "pid {}: exception {v} at rip {:#x} addr {addr:#x} code {si_code}: signal {s}", t.proc.pid, t.ctx.regs.rip);
                Next::Exit(ExitReason::Signaled(s))
            }
            Trap::Interrupt => {
                crate::stats::trap(4);
                Next::Resume
            }
            Trap::SpaceDied => {
                crate::stats::trap(5);
                crate::klog!(crate::log::WARN, "pid {}: user space process died", t.proc.pid);
                Next::Exit(ExitReason::Signaled(sig::SIGKILL))
            }
        };
        if let Next::Exit(e) = next {
            exit_process(&t, e);
            return;
        }
    }
}

fn handle_syscall(vcpu: u32, t: &mut Thread, n: u64) -> Next {
    let r = {
        let mut cx = Ctx { vcpu, t };
        sys::dispatch(&mut cx, n)
    };
    match r {
        SysRet::Ret(v) => {
            let regs = &mut t.ctx.regs;
            regs.rax = v as u64;
            // As SYSRET leaves them.
            regs.rcx = regs.rip;
            regs.r11 = regs.rflags;
            Next::Resume
        }
        SysRet::Replaced => Next::Resume,
        SysRet::Exit(e) => Next::Exit(e),
    }
}

fn handle_page_fault(t: &Thread, space: SpaceRef, addr: u64, error: u64) -> Next {
    let access = if error & pf_error::FETCH != 0 {
        Access::Exec
    } else if error & pf_error::WRITE != 0 {
        Access::Write
    } else {
        Access::Read
    };
    let mut mm = t.proc.mm.lock();
    if addr < guest_abi::layout::USER_END
        && let Some(leaf) = mm.pt.translate(addr & !0xfff) {
            let ok = leaf.flags.contains(F::USER_ACCESSIBLE)
                && match access {
                    Access::Write => leaf.flags.contains(F::WRITABLE),
                    Access::Exec => !leaf.flags.contains(F::NO_EXECUTE),
                    Access::Read => true,
                };
            if ok && crate::hcall::shadow_fault(space.root, addr, error) == FAULT_FILLED {
                return Next::Resume;
            }
        }
    let r = if addr < guest_abi::layout::USER_END { mm.fault_in(addr, access) } else { Err(FaultError::Unmapped) };
    match r {
        Ok((start, len)) => {
            mm.flush();
            drop(mm);
            crate::hcall::prefault(space.root, start, len);
            crate::stats::page_fault(true);
            Next::Resume
        }
        Err(FaultError::OutOfMemory) => {
            crate::klog!(crate::log::ERROR, "out of memory: killing pid {}", t.proc.pid);
            crate::stats::page_fault(false);
            Next::Exit(ExitReason::Signaled(sig::SIGKILL))
        }
        Err(e) => {
            crate::klog!(crate::log::INFO, "pid {}: segfault at {addr:#x} rip {:#x} error {error:#x} ({e:?})", t.proc.pid, t.ctx.regs.rip);
            crate::stats::page_fault(false);
            Next::Exit(ExitReason::Signaled(sig::SIGSEGV))
        }
    }
}

/// Ends `t`'s process with `reason`: frees its address space and files, records the status,
/// and shuts the VM down when it is the first process.
fn exit_process(t: &Thread, reason: ExitReason) {
    let p = &t.proc;
    *p.exit.lock() = Some(reason);
    {
        let mut mm = p.mm.lock();
        if mm.space_id.take().is_some() {
            crate::hcall::release_pgtbl(mm.root());
        }
        let dead = core::mem::replace(&mut *mm, match crate::mm::space::AddrSpace::new() {
            Ok(m) => m,
            Err(_) => return finish(p.pid, reason),
        });
        dead.destroy();
    }
    *p.fds.lock() = guest_fs::FdTable::new();
    finish(p.pid, reason);
}

fn finish(pid: i32, reason: ExitReason) {
    crate::boot::update_memory_stats();
    if pid == crate::boot::init_pid() {
        match reason {
            ExitReason::Exited(c) => crate::hcall::shutdown(ShutdownKind::Exited, (c & 0xff) as u64),
            ExitReason::Signaled(s) => crate::hcall::shutdown(ShutdownKind::Signaled, u64::from(s)),
        }
    }
    PROCESSES.lock().remove(&pid);
}
