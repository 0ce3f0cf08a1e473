//! Process creation: `fork(2)`, `vfork(2)`, `clone(2)` and `clone3(2)` with the flags a
//! process (not a thread) uses: a copy-on-write address space (or the parent's own with
//! `CLONE_VM|CLONE_VFORK`, the parent then waiting until the child execs or exits), a copy of
//! the file table and filesystem context, the exit signal, `CLONE_SETTLS`,
//! `CLONE_PARENT_SETTID`, `CLONE_CHILD_SETTID`, `CLONE_CHILD_CLEARTID`. `--pids-limit`
//! applies (`EAGAIN`).

use super::{Ctx, SysRet};
use crate::proc::{alloc_pid, Process, Thread, PROCESSES};
use core::sync::atomic::{AtomicU32, Ordering};
use guest_fs::Errno;

/// `CLONE_VM`.
pub const CLONE_VM: u64 = 0x100;
/// `CLONE_FS`.
pub const CLONE_FS: u64 = 0x200;
/// `CLONE_FILES`.
pub const CLONE_FILES: u64 = 0x400;
/// `CLONE_SIGHAND`.
pub const CLONE_SIGHAND: u64 = 0x800;
/// `CLONE_VFORK`.
pub const CLONE_VFORK: u64 = 0x4000;
/// `CLONE_PARENT`.
pub const CLONE_PARENT: u64 = 0x8000;
/// `CLONE_THREAD`.
pub const CLONE_THREAD: u64 = 0x10000;
/// `CLONE_SETTLS`.
pub const CLONE_SETTLS: u64 = 0x80000;
/// `CLONE_PARENT_SETTID`.
pub const CLONE_PARENT_SETTID: u64 = 0x100000;
/// `CLONE_CHILD_CLEARTID`.
pub const CLONE_CHILD_CLEARTID: u64 = 0x200000;
/// `CLONE_CHILD_SETTID`.
pub const CLONE_CHILD_SETTID: u64 = 0x1000000;
/// `CLONE_SYSVSEM` (no System V semaphores here: nothing to share).
pub const CLONE_SYSVSEM: u64 = 0x40000;
/// `CLONE_DETACHED` (ignored by Linux since 2.6).
pub const CLONE_DETACHED: u64 = 0x400000;

/// Flags this kernel accepts and ignores (namespaces and the like are refused with EINVAL).
const HARMLESS: u64 = 0x0080_0000 /* CLONE_UNTRACED */ | 0x2000 /* CLONE_PTRACE */ | 0x8000_0000 /* CLONE_IO */ | 0x0008_0000_0000 /* unused */;

/// Maximum number of processes allowed by `--pids-limit` (0 = unlimited).
pub static PIDS_LIMIT: AtomicU32 = AtomicU32::new(0);

/// The arguments of a clone request.
#[derive(Clone, Copy, Debug, Default)]
pub struct Args {
    /// `CLONE_*` flags; low byte: exit signal.
    pub flags: u64,
    /// New stack pointer (0 = the parent's).
    pub stack: u64,
    /// `CLONE_PARENT_SETTID` target.
    pub parent_tid: u64,
    /// `CLONE_CHILD_SETTID` / `CLONE_CHILD_CLEARTID` target.
    pub child_tid: u64,
    /// `CLONE_SETTLS` value (new FS base).
    pub tls: u64,
}

/// Reads `struct clone_args` (clone3(2)) into [`Args`].
pub fn clone3_args(cx: &Ctx<'_>, va: u64, size: u64) -> Result<Args, Errno> {
    if !(64..=4096).contains(&size) {
        return Err(Errno::EINVAL);
    }
    let raw: [u64; 8] = cx.read(va)?;
    let [flags, _pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls] = raw;
    if flags & 0x1000 != 0 || exit_signal > 64 || flags & 0xff != 0 {
        // CLONE_PIDFD is not supported; the exit signal goes in its own field.
        return Err(Errno::EINVAL);
    }
    let stack = if stack != 0 { stack.checked_add(stack_size).ok_or(Errno::EINVAL)? } else { 0 };
    Ok(Args { flags: flags | exit_signal, stack, parent_tid, child_tid, tls })
}

fn err(e: Errno) -> SysRet {
    SysRet::Ret(-(i64::from(e.0)))
}

/// `clone` in all its spellings.
pub fn clone(cx: &mut Ctx<'_>, a: Args) -> SysRet {
    let flags = a.flags & !0xff;
    let exit_signal = (a.flags & 0xff) as u32;
    let known = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_VFORK | CLONE_PARENT | CLONE_SETTLS
        | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID | CLONE_CHILD_SETTID | CLONE_THREAD | CLONE_SYSVSEM
        | CLONE_DETACHED | HARMLESS;
    if flags & !known != 0 || exit_signal as usize > crate::proc::NSIG {
        return err(Errno::EINVAL);
    }
    if flags & CLONE_THREAD != 0 {
        // As Linux: a thread shares the signal handlers, which needs a shared address space.
        if flags & (CLONE_VM | CLONE_SIGHAND) != CLONE_VM | CLONE_SIGHAND {
            return err(Errno::EINVAL);
        }
        return clone_thread(cx, flags, a);
    }
    if flags & CLONE_VM != 0 && flags & CLONE_VFORK == 0 {
        // A separate process in the same address space (without vfork's wait) is not
        // supported.
        crate::klog!(crate::log::INFO, "pid {}: clone flags {flags:#x}: CLONE_VM process not supported", cx.t.proc.pid);
        return err(Errno::ENOSYS);
    }
    let limit = PIDS_LIMIT.load(Ordering::Relaxed);
    if limit != 0 && PROCESSES.read().len() >= limit as usize {
        return err(Errno::EAGAIN);
    }
    let parent = cx.proc();
    let mm = if flags & CLONE_VM != 0 {
        cx.t.mm.clone()
    } else {
        // Pages parent and child write first: the stack around rsp and the TLS block.
        let r = &cx.t.ctx.regs;
        let sp = crate::mm::page_down(r.rsp);
        let hot = [sp.wrapping_sub(crate::mm::PAGE_SIZE), sp, sp.wrapping_add(crate::mm::PAGE_SIZE), crate::mm::page_down(r.fs_base)];
        let forked = cx.t.mm.lock().fork(&hot);
        match forked {
            Ok(m) => crate::proc::new_mm(m),
            Err(_) => {
                crate::klog!(crate::log::WARN, "pid {}: fork: out of memory", parent.pid);
                return err(Errno::ENOMEM);
            }
        }
    };
    let pid = alloc_pid();
    let fds = parent.fds.lock().clone();
    let fs = parent.fs.lock().clone();
    let ppid = if flags & CLONE_PARENT != 0 { parent.ppid.load(Ordering::Relaxed) } else { parent.pid };
    let child = Process::new(pid, ppid, mm.clone(), fds, fs);
    child.pgid.store(parent.pgid.load(Ordering::Relaxed), Ordering::Relaxed);
    child.sid.store(parent.sid.load(Ordering::Relaxed), Ordering::Relaxed);
    *child.exe.lock() = parent.exe.lock().clone();
    *child.name.lock() = parent.name.lock().clone();
    *child.cmdline.lock() = parent.cmdline.lock().clone();
    *child.environ.lock() = parent.environ.lock().clone();
    *child.sigactions.lock() = *parent.sigactions.lock();
    *child.rlimits.lock() = *parent.rlimits.lock();
    child.exit_signal.store(exit_signal, Ordering::Relaxed);
    let mut t = Thread::new(pid, child, mm);
    start_like_caller(cx, &mut t, flags, &a);
    t.altstack = cx.t.altstack;
    if flags & CLONE_CHILD_CLEARTID != 0 {
        t.clear_child_tid = a.child_tid;
    }
    if flags & CLONE_PARENT_SETTID != 0 {
        let _ = cx.write(a.parent_tid, &pid);
    }
    if flags & CLONE_CHILD_SETTID != 0 {
        let mut m = t.mm.lock();
        let _ = crate::mm::uaccess::write_val(&mut m, a.child_tid, &pid);
    }
    crate::sched::enqueue(t);
    if flags & CLONE_VFORK != 0 {
        SysRet::Vfork(pid)
    } else {
        SysRet::Ret(i64::from(pid))
    }
}

/// The new task's CPU state: the caller's registers returning 0 from the syscall (rcx/r11
/// as SYSRET leaves them), the requested stack and TLS, the caller's FPU image and signal mask.
fn start_like_caller(cx: &Ctx<'_>, t: &mut Thread, flags: u64, a: &Args) {
    t.ctx.regs = cx.t.ctx.regs;
    t.ctx.regs.rax = 0;
    t.ctx.regs.rcx = t.ctx.regs.rip;
    t.ctx.regs.r11 = t.ctx.regs.rflags;
    if a.stack != 0 {
        t.ctx.regs.rsp = a.stack;
    }
    if flags & CLONE_SETTLS != 0 {
        t.ctx.regs.fs_base = a.tls;
    }
    t.ctx.fpu = crate::sched::current_fpu(cx.vcpu, cx.t);
    t.fpu = crate::platform::FpuAction::Restore;
    t.sigmask = cx.t.sigmask;
}

/// A new thread in the caller's thread group (`CLONE_THREAD`, as `pthread_create` asks):
/// same process, address space, files and handlers; its own tid, stack, TLS, signal mask.
fn clone_thread(cx: &mut Ctx<'_>, flags: u64, a: Args) -> SysRet {
    let p = cx.proc();
    if p.group_exit.lock().is_some() {
        return err(Errno::EAGAIN);
    }
    let tid = alloc_pid();
    let mut t = Thread::new(tid, p, cx.t.mm.clone());
    start_like_caller(cx, &mut t, flags, &a);
    // A thread with a new stack does not inherit the alternate signal stack (Linux clears it
    // for CLONE_VM without CLONE_VFORK).
    if flags & CLONE_CHILD_CLEARTID != 0 {
        t.clear_child_tid = a.child_tid;
    }
    if flags & CLONE_PARENT_SETTID != 0 {
        let _ = cx.write(a.parent_tid, &tid);
    }
    if flags & CLONE_CHILD_SETTID != 0 {
        let _ = cx.write(a.child_tid, &tid);
    }
    crate::sched::enqueue(t);
    SysRet::Ret(i64::from(tid))
}
