//! The scheduler and the per-vCPU loop: pick a runnable thread, run it
//! (`loop { trap = platform.enter_user(ctx); handle(trap) }`) until it blocks, is preempted
//! (10 ms slice when others wait on this vCPU) or exits; an idle vCPU steals from the other
//! vCPUs' run queues, then arms its timer for the next deadline and halts.
//!
//! Run queues are per vCPU ([`RunQueue`]); a thread made runnable goes to the least loaded
//! vCPU (queued threads plus the one running; ties keep it on the caller's vCPU), and a vCPU
//! that halted for lack of work is woken with `SEND_IPI`. Nothing here takes a VM-wide lock
//! on the syscall path.
//!
//! Blocking: a syscall that cannot complete returns `EBLOCK` after registering its thread
//! where the awaited event will look (a pipe's wait queue, `crate::waitq`; the futex hash;
//! the thread list of its process for signals and children's exits; the timer list for a
//! deadline). Its thread is parked in its own slot ([`ThreadShared::parked`]) and re-runs that
//! syscall when [`wake`] takes it out. Only the waiters of an object are woken. No lost
//! wake-ups: [`wake`] bumps the thread's wake-up count before it looks into the slot, and
//! [`block`] parks only if the count did not change since the syscall started, both under the
//! slot's lock.

use crate::mm::space::{Access, FaultError};
use crate::platform::{Current, FpuAction, Platform, SpaceRef, Trap};
use crate::proc::{ExitReason, Thread, ThreadShared, Wait, PROCESSES};
use alloc::boxed::Box;
use crate::signal::{self, SIGKILL, SIGSEGV};
use crate::sync::Mutex;
use crate::sys::{self, Ctx, SysRet};
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use guest_abi::hypercall::{ShutdownKind, FAULT_FILLED};
use guest_abi::pvcs::pf_error;
use guest_abi::MAX_VCPUS;
use x86_64::structures::paging::PageTableFlags as F;

/// Time slice when other threads are runnable, ns.
pub const SLICE_NS: u64 = 10_000_000;
/// Longest halt of an idle vCPU when there are several, ns: a safety net only, since work
/// queued for it comes with an IPI ([`kick_idle`]).
const IDLE_POLL_NS: u64 = 100_000_000;

/// vCPUs halted (or about to halt) in [`run_vcpu`] for lack of work: bit `i` = vCPU `i`.
static IDLE: AtomicU64 = AtomicU64::new(0);

/// One vCPU's runnable threads, FIFO, with their number readable without the lock.
struct RunQueue {
    q: Mutex<VecDeque<Task>>,
    len: AtomicU32,
    /// The vCPU runs a thread now.
    busy: AtomicBool,
}

static RQ: [RunQueue; MAX_VCPUS as usize] =
    [const { RunQueue { q: Mutex::new(VecDeque::new()), len: AtomicU32::new(0), busy: AtomicBool::new(false) } }; MAX_VCPUS as usize];

/// Blocked threads with a deadline: (deadline ns, thread). Entries of threads woken earlier
/// stay until their deadline and then wake them once for nothing.
static TIMERS: Mutex<Vec<(u64, Arc<ThreadShared>)>> = Mutex::new(Vec::new());
/// Earliest deadline of a blocked thread or an alarm (`u64::MAX`: none).
static NEXT_DEADLINE: AtomicU64 = AtomicU64::new(u64::MAX);
/// Deadline currently armed with `SET_TIMER` per vCPU (0: none).
static ARMED: [AtomicU64; MAX_VCPUS as usize] = [const { AtomicU64::new(0) }; MAX_VCPUS as usize];

// hw platform: the backend chosen at entry (pv or hw).
static PLATFORM: Current = Current;

/// A thread as the scheduler moves it around: boxed, so that handing it between the run
/// queues, `run_thread` and `settle` moves a pointer, not the whole `Thread` (under software
/// KVM every such move was an emulated copy of a few hundred bytes, several per syscall).
type Task = Box<Thread>;

/// Load of vCPU `v`: queued threads plus the one it runs.
fn load(v: u32) -> u32 {
    let r = &RQ[v as usize];
    r.len.load(Ordering::Relaxed) + u32::from(r.busy.load(Ordering::Relaxed))
}

/// The vCPU a newly runnable thread goes to: the least loaded, the caller's on a tie.
fn pick_vcpu() -> u32 {
    let me = crate::percpu::current();
    let n = crate::boot::vcpus().min(MAX_VCPUS);
    let (mut best, mut best_load) = (me, load(me));
    for v in (0..n).filter(|&v| v != me) {
        let l = load(v);
        if l < best_load {
            (best, best_load) = (v, l);
        }
    }
    best
}

/// If vCPU `v` is idle, wakes it with `SEND_IPI`. An idle vCPU sets its bit before it looks
/// at the run queues a last time, and a waker reads the bit after it queued (both
/// sequentially consistent), so one of them sees the other: no idle vCPU sleeps through
/// queued work.
fn kick_idle(v: u32) {
    if v == crate::percpu::current() {
        return;
    }
    if IDLE.fetch_and(!(1u64 << v), Ordering::SeqCst) & (1u64 << v) != 0 {
        crate::stats::sched_ipi_wake();
        crate::hcall::send_ipi(v);
    }
}

/// Makes `t` runnable.
pub fn enqueue(t: Thread) {
    enqueue_task(Box::new(t));
}

fn enqueue_task(t: Task) {
    enqueue_on(pick_vcpu(), t);
}

fn enqueue_on(v: u32, t: Task) {
    {
        let r = &RQ[v as usize];
        let mut q = r.q.lock();
        q.push_back(t);
        r.len.store(q.len() as u32, Ordering::SeqCst);
    }
    kick_idle(v);
}

fn pop(v: u32) -> Option<Task> {
    let r = &RQ[v as usize];
    if r.len.load(Ordering::SeqCst) == 0 {
        return None;
    }
    let mut q = r.q.lock();
    let t = q.pop_front();
    r.len.store(q.len() as u32, Ordering::Relaxed);
    t
}

/// The next thread for vCPU `me`: its own queue first, else one stolen from the vCPU with
/// the longest queue.
fn next_task(me: u32) -> Option<Task> {
    if let Some(t) = pop(me) {
        return Some(t);
    }
    let n = crate::boot::vcpus().min(MAX_VCPUS);
    let victim = (0..n).filter(|&v| v != me).max_by_key(|&v| RQ[v as usize].len.load(Ordering::SeqCst))?;
    let t = pop(victim)?;
    crate::stats::sched_steal();
    Some(t)
}

/// Wakes thread `t`: counts the wake-up and, if it is parked, makes it runnable. Wake-ups of
/// a thread that is running or queued only make its next `block` fail (it re-checks).
pub fn wake(t: &ThreadShared) {
    t.wakeups.fetch_add(1, Ordering::SeqCst);
    let task = t.parked.lock().take();
    if let Some(task) = task {
        enqueue_task(task);
    }
}

/// A signal or group exit was posted for `t`: if another vCPU runs (or is entering) its user
/// code, interrupt it with `SEND_IPI` so it comes back to the kernel and notices (Linux's
/// `signal_wake_up` / `kick_process`). A parked thread is woken by [`wake`] instead.
pub fn interrupt(t: &ThreadShared) {
    let v = t.running_on.load(Ordering::SeqCst);
    if v != crate::proc::NOT_RUNNING && v != crate::percpu::current() && v < crate::boot::vcpus() {
        crate::hcall::send_ipi(v);
    }
}

/// Wakes every thread of the VM (for events without a wait queue of their own; none of this
/// kernel's hot paths use it).
pub fn notify() {
    let procs: Vec<Arc<crate::proc::Process>> = PROCESSES.read().values().cloned().collect();
    for p in &procs {
        crate::proc::wake_all_threads(p);
    }
}

/// The wake-up count a syscall or fault of `t` starts from (see [`block`]).
pub fn seen(t: &Thread) -> u64 {
    t.shared.wakeups.load(Ordering::SeqCst)
}

/// Parks `t` until a wake-up (or its deadline), unless one came since `seen` or it has a
/// signal it can take now.
///
/// The signal check matters when the blocking syscall itself unblocked a signal that was
/// already pending (`rt_sigsuspend`): the post happened before `seen`, so no later event
/// would ever wake the thread. busybox ash's `wait` blocks all signals, polls for children
/// and then sigsuspends; a SIGCHLD in between hung it forever (`kill -9` of a child in
/// tests/scripts/trap_kill.sh, mostly on the KVM backend where each syscall is slow enough
/// for the 10 ms slice to end inside that window). Re-queued, the thread re-runs its
/// syscall through `interrupt_if_signalled`, which interrupts it or drops an ignored signal.
/// (A vfork parent takes its signals only after the child released it, as on Linux.)
fn block(t: Task, seen: u64) {
    let signalled = matches!(t.wait, Some(Wait::Syscall(_))) && signal::deliverable(&t) != 0;
    let shared = t.shared.clone();
    let mut slot = shared.parked.lock();
    if shared.wakeups.load(Ordering::SeqCst) != seen || signalled || t.proc.group_exit.lock().is_some() {
        drop(slot);
        enqueue_on(crate::percpu::current(), t);
        return;
    }
    if let Some(d) = t.deadline {
        let mut tm = TIMERS.lock();
        if !tm.iter().any(|(x, s)| *x == d && Arc::ptr_eq(s, &shared)) {
            tm.push((d, shared.clone()));
        }
        NEXT_DEADLINE.fetch_min(d, Ordering::SeqCst);
    }
    *slot = Some(t);
}

/// Wakes `t` once when `CLOCK_MONOTONIC` reaches `deadline` (ns), besides any deadline of
/// its own: for objects whose readiness comes with time (`crate::timerfd`), which register a
/// waiting thread this way as well as on their wait queue. A thread woken earlier gets one
/// spurious wake-up at `deadline`, as with [`TIMERS`] entries.
pub fn wake_at(deadline: u64, t: &Arc<ThreadShared>) {
    let mut tm = TIMERS.lock();
    if !tm.iter().any(|(x, s)| *x == deadline && Arc::ptr_eq(s, t)) {
        tm.push((deadline, t.clone()));
    }
    NEXT_DEADLINE.fetch_min(deadline, Ordering::SeqCst);
}

/// Pending `alarm(2)` deadlines: (deadline ns, pid). Lock order: `TIMERS` before `ALARMS`.
static ALARMS: Mutex<Vec<(u64, i32)>> = Mutex::new(Vec::new());

fn alarm_deadline() -> u64 {
    ALARMS.lock().iter().map(|a| a.0).min().unwrap_or(u64::MAX)
}

/// Sets (or with 0 cancels) the alarm of `pid`; returns the seconds left on the old one.
pub fn set_alarm(pid: i32, deadline: u64) -> u64 {
    let now = crate::time::monotonic_ns();
    let _timers = TIMERS.lock();
    let mut a = ALARMS.lock();
    let old = a.iter().position(|x| x.1 == pid).map(|i| a.swap_remove(i).0);
    if deadline != 0 {
        a.push((deadline, pid));
        NEXT_DEADLINE.fetch_min(deadline, Ordering::SeqCst);
    }
    old.map_or(0, |d| d.saturating_sub(now).div_ceil(1_000_000_000).max(1))
}

/// Wakes blocked threads whose deadline passed and fires due alarms.
fn expire(now: u64) {
    if NEXT_DEADLINE.load(Ordering::SeqCst) > now {
        return;
    }
    let (due, pids) = {
        let mut tm = TIMERS.lock();
        let mut due = Vec::new();
        let mut i = 0;
        while i < tm.len() {
            if tm[i].0 <= now {
                due.push(tm.swap_remove(i).1);
            } else {
                i += 1;
            }
        }
        let pids: Vec<i32> = {
            let mut a = ALARMS.lock();
            let pids = a.iter().filter(|x| x.0 <= now).map(|x| x.1).collect();
            a.retain(|x| x.0 > now);
            pids
        };
        let next = tm.iter().map(|x| x.0).min().unwrap_or(u64::MAX).min(alarm_deadline());
        NEXT_DEADLINE.store(next, Ordering::SeqCst);
        (due, pids)
    };
    for pid in pids {
        if let Some(p) = crate::proc::lookup(pid) {
            signal::post(&p, signal::SIGALRM);
        }
    }
    for t in &due {
        wake(t);
    }
}

/// Arms this vCPU's timer for `deadline` unless an earlier or equal one is armed.
fn arm(vcpu: u32, deadline: u64, now: u64) {
    let slot = &ARMED[vcpu as usize];
    let cur = slot.load(Ordering::Relaxed);
    if deadline == u64::MAX || (cur > now && cur <= deadline) {
        return;
    }
    slot.store(deadline, Ordering::Relaxed);
    crate::hcall::set_timer(deadline);
}

/// Takes this vCPU's pending interrupts. A timer interrupt means the armed deadline is
/// spent: forget it, so the next `arm` sets a timer again even for the same deadline (the
/// host's clock may fire it a little before the guest's TSC clock reaches it; without this
/// the vCPU would halt with no timer at all).
fn take_irq(vcpu: u32) -> u32 {
    let bits = crate::hcall::take_irq(vcpu);
    if bits & guest_abi::pvcs::IRQ_TIMER != 0 {
        ARMED[vcpu as usize].store(0, Ordering::Relaxed);
    }
    bits
}

/// Runs vCPU `vcpu` forever.
pub fn run_vcpu(vcpu: u32) -> ! {
    let rq = &RQ[(vcpu as usize).min(MAX_VCPUS as usize - 1)];
    loop {
        let now = crate::time::monotonic_ns();
        expire(now);
        match next_task(vcpu) {
            Some(t) => {
                rq.busy.store(true, Ordering::Relaxed);
                run_thread(vcpu, t);
                rq.busy.store(false, Ordering::Relaxed);
            }
            None => {
                let bit = 1u64 << vcpu;
                IDLE.fetch_or(bit, Ordering::SeqCst);
                if let Some(t) = next_task(vcpu) {
                    IDLE.fetch_and(!bit, Ordering::SeqCst);
                    rq.busy.store(true, Ordering::Relaxed);
                    run_thread(vcpu, t);
                    rq.busy.store(false, Ordering::Relaxed);
                    continue;
                }
                let mut d = NEXT_DEADLINE.load(Ordering::SeqCst);
                if crate::boot::vcpus() > 1 {
                    d = d.min(now + IDLE_POLL_NS);
                }
                arm(vcpu, d, now);
                let halted = crate::time::monotonic_ns();
                crate::cpustat::halt_begins(vcpu, halted);
                crate::hcall::halt();
                crate::cpustat::add_idle(vcpu, crate::time::monotonic_ns().saturating_sub(halted));
                IDLE.fetch_and(!bit, Ordering::SeqCst);
                take_irq(vcpu);
            }
        }
    }
}

/// What happens after a trap.
#[derive(Clone, Copy)]
enum Next {
    Resume,
    /// The thread blocks; its wake-up count when its syscall (or fault) started.
    Block(u64),
    /// The thread yields the CPU (sched_yield, vfork parent).
    Yield,
    Exit(ExitReason),
    /// Only this thread ends (`exit(2)`).
    ExitThread(i32),
}

/// The address space's shadow id, loading it on first use.
fn space_of(t: &Thread) -> Result<SpaceRef, i64> {
    {
        let mm = t.mm.read();
        if let Some(s) = mm.space_id {
            return Ok(SpaceRef { root: mm.root(), space: s });
        }
    }
    // First entry into this address space: LOAD_PGTBL once, exclusive (another thread of the
    // process may race to load it; the second finds it loaded).
    let mut mm = t.mm.lock();
    match mm.space_id {
        Some(s) => Ok(SpaceRef { root: mm.root(), space: s }),
        None => {
            let r = crate::hcall::load_pgtbl(mm.root());
            if r < 0 || r >= i64::from(guest_abi::MAX_SPACES) {
                return Err(r);
            }
            mm.space_id = Some(r as u32);
            for (gva, len) in core::mem::take(&mut mm.prefault_on_load) {
                mm.prefault(gva, len);
            }
            Ok(SpaceRef { root: mm.root(), space: r as u32 })
        }
    }
}

/// Saves the FPU image of a thread that leaves the CPU, so any thread may run here next.
fn save_fpu(vcpu: u32, t: &mut Thread, trapped_in: Option<SpaceRef>) {
    if t.fpu == FpuAction::Keep
        && let Some(space) = trapped_in
    {
        PLATFORM.save_fpu(vcpu, space, &mut t.ctx);
        t.fpu = FpuAction::Restore;
    }
}

/// Copies the FPU image the thread's last trap left (for fork and signal frames).
pub fn current_fpu(vcpu: u32, t: &Thread) -> alloc::vec::Vec<u8> {
    if t.fpu != FpuAction::Keep {
        return t.ctx.fpu.clone();
    }
    let Some(space) = t.mm.lock().space_id.map(|s| SpaceRef { root: 0, space: s }) else { return Vec::new() };
    let mut c = crate::platform::UserContext::default();
    PLATFORM.save_fpu(vcpu, space, &mut c);
    c.fpu
}

/// Carries out what a syscall or trap decided: `Some(t)` to keep running `t` on this vCPU,
/// `None` when it blocked, yielded or exited (it left this vCPU).
fn settle(vcpu: u32, mut t: Task, trapped_in: Option<SpaceRef>, next: Next) -> Option<Task> {
    match next {
        Next::Resume => return Some(t),
        Next::Block(seen) => {
            save_fpu(vcpu, &mut t, trapped_in);
            block(t, seen);
        }
        Next::Yield => {
            save_fpu(vcpu, &mut t, trapped_in);
            enqueue_task(t);
        }
        Next::Exit(e) => exit_thread(t, e, true),
        Next::ExitThread(c) => exit_thread(t, ExitReason::Exited(c), false),
    }
    None
}

fn run_thread(vcpu: u32, mut t: Task) {
    crate::cpustat::switched();
    let _run = crate::cpustat::RunTime::start(&t.proc);
    let mut last_fault = (u64::MAX, 0u32);
    let slice_end = crate::time::monotonic_ns() + SLICE_NS;
    let mut trapped_in: Option<SpaceRef> = None;
    loop {
        // Another thread ended the thread group (exit_group, fatal signal): this one goes too.
        let group = *t.proc.group_exit.lock();
        if let Some(e) = group {
            exit_thread(t, e, false);
            return;
        }
        // Another thread called execve: this one is no longer in the group; it just ends.
        // (Its futex registration went at the execve: its tid may be the caller's now.)
        if !t.proc.threads.lock().iter().any(|s| Arc::ptr_eq(s, &t.shared)) {
            drop(t);
            return;
        }
        // A blocked call resumes first.
        if let Some(w) = t.wait.take() {
            let seen = seen(&t);
            let next = match w {
                Wait::Syscall(n) => {
                    if interrupt_if_signalled(&mut t, n) {
                        Next::Resume
                    } else {
                        handle_syscall(vcpu, &mut t, n, seen)
                    }
                }
                Wait::Vfork(pid) => {
                    let done = crate::proc::lookup(pid).is_none_or(|c| c.vfork_done.load(Ordering::Acquire));
                    if done {
                        t.ctx.regs.rax = pid as u64;
                        Next::Resume
                    } else {
                        t.wait = Some(w);
                        Next::Block(seen)
                    }
                }
            };
            match settle(vcpu, t, trapped_in, next) {
                Some(back) => t = back,
                None => return,
            }
        }
        // Signals, on the way back to user code.
        if signal::deliverable(&t) != 0
            && let Some(e) = deliver_signal(vcpu, &mut t)
        {
            exit_thread(t, e, true);
            return;
        }
        let now = crate::time::monotonic_ns();
        if now >= NEXT_DEADLINE.load(Ordering::Relaxed) {
            expire(now);
        }
        let others = RQ[vcpu as usize].len.load(Ordering::Relaxed) > 0;
        if others && now >= slice_end {
            save_fpu(vcpu, &mut t, trapped_in);
            enqueue_task(t);
            return;
        }
        let space = match space_of(&t) {
            Ok(s) => s,
            Err(r) => {
                crate::klog!(crate::log::ERROR, "pid {}: LOAD_PGTBL failed ({r})", t.proc.pid);
                exit_thread(t, ExitReason::Signaled(SIGKILL), true);
                return;
            }
        };
        let mut deadline = NEXT_DEADLINE.load(Ordering::Relaxed);
        if others {
            deadline = deadline.min(slice_end);
        }
        arm(vcpu, deadline, now);
        crate::hcall::set_current_space(vcpu, space.space);
        // From here a signal's sender sees this vCPU in `running_on` and interrupts it
        // (`interrupt`); an IPI that `take_irq` swallows was sent after the signal or group
        // exit was posted, so the check below sees it (both sides sequentially consistent).
        t.shared.running_on.store(vcpu, Ordering::SeqCst);
        take_irq(vcpu);
        if signal::deliverable(&t) != 0 || t.proc.group_exit.lock().is_some() {
            t.shared.running_on.store(crate::proc::NOT_RUNNING, Ordering::SeqCst);
            continue;
        }
        if trapped_in.is_some_and(|s| s.space != space.space) && t.fpu == FpuAction::Keep {
            // exec switched spaces within this run: the new space starts fresh.
            t.fpu = FpuAction::Reset;
        }
        let fpu = t.fpu;
        t.fpu = FpuAction::Keep;
        let t0 = crate::arch::rdtsc();
        let trap = PLATFORM.enter_user(vcpu, space, &mut t.ctx, fpu);
        t.shared.running_on.store(crate::proc::NOT_RUNNING, Ordering::SeqCst);
        trapped_in = Some(space);
        let t1 = crate::arch::rdtsc();
        let next = match trap {
            Trap::Syscall(n) => {
                crate::stats::trap(1);
                // A syscall is progress: the fault-loop detector counts faults in a row only.
                last_fault = (u64::MAX, 0);
                let seen = seen(&t);
                let r = handle_syscall(vcpu, &mut t, n, seen);
                let t2 = crate::arch::rdtsc();
                let khz = crate::boot::tsc_khz();
                crate::stats::direct_switch(crate::time::tsc_to_ns(t1.saturating_sub(t0), khz));
                let ns = crate::time::tsc_to_ns(t2.saturating_sub(t1), khz);
                crate::stats::syscall(n, ns);
                t.proc.sys_ns.fetch_add(ns, Ordering::Relaxed);
                crate::cpustat::add_sys(vcpu, ns);
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
                    Next::Exit(ExitReason::Signaled(SIGSEGV))
                } else {
                    match handle_page_fault(&mut t, addr, error) {
                        Err(info) => {
                            last_fault = (u64::MAX, 0);
                            force_fault(vcpu, &mut t, &info)
                        }
                        Ok(next @ Next::Block(_)) => {
                            // Waiting for an OOM victim to die is not a fault loop.
                            last_fault = (u64::MAX, 0);
                            next
                        }
                        Ok(next) => next,
                    }
                }
            }
            Trap::Exception { vector: v, error, si_code, .. } => {
                crate::stats::trap(3);
                let info = signal::exception_info(v, error, t.ctx.regs.rip, si_code);
                last_fault = (u64::MAX, 0);
                force_fault(vcpu, &mut t, &info)
            }
            Trap::Interrupt => {
                crate::stats::trap(4);
                take_irq(vcpu);
                Next::Resume
            }
            Trap::SpaceDied => {
                crate::stats::trap(5);
                crate::klog!(crate::log::WARN, "pid {}: user space process died", t.proc.pid);
                Next::Exit(ExitReason::Signaled(SIGKILL))
            }
        };
        match settle(vcpu, t, trapped_in, next) {
            Some(back) => t = back,
            None => return,
        }
    }
}

/// A blocked syscall `n` with a signal to take: it fails with `EINTR`, or restarts after the
/// handler when the handler has `SA_RESTART` and the call is restartable. Returns true if so.
fn interrupt_if_signalled(t: &mut Thread, n: u64) -> bool {
    let Some((sig, act)) = signal::next_action(t) else { return false };
    if signal::ignored(&act, sig) {
        // Dequeue it here so it does not interrupt again.
        let _ = signal::dequeue(t, sig);
        return false;
    }
    if n == u64::from(linux_raw_sys::general::__NR_futex) {
        // A futex waiter leaves the queue; one a waker already chose returns 0 (the wake-up
        // is not lost), then takes the signal.
        let woken = crate::futex::state(&t.shared) == crate::futex::WaitState::Woken;
        crate::futex::cancel(&t.shared);
        if woken {
            t.deadline = None;
            t.ctx.regs.rax = 0;
            t.ctx.regs.rcx = t.ctx.regs.rip;
            t.ctx.regs.r11 = t.ctx.regs.rflags;
            return true;
        }
    }
    t.deadline = None;
    let restartable = !matches!(
        n as u32,
        linux_raw_sys::general::__NR_nanosleep
            | linux_raw_sys::general::__NR_clock_nanosleep
            | linux_raw_sys::general::__NR_pause
            | linux_raw_sys::general::__NR_rt_sigsuspend
            | linux_raw_sys::general::__NR_poll
            | linux_raw_sys::general::__NR_ppoll
            | linux_raw_sys::general::__NR_select
            | linux_raw_sys::general::__NR_pselect6
            | linux_raw_sys::general::__NR_epoll_wait
            | linux_raw_sys::general::__NR_epoll_pwait
            | linux_raw_sys::general::__NR_epoll_pwait2
    );
    if act.handler > 1 && act.flags & signal::SA_RESTART != 0 && restartable {
        // Re-execute the `syscall` instruction (2 bytes) after the handler; rax still holds n.
        t.ctx.regs.rax = n;
        t.ctx.regs.rip = t.ctx.regs.rip.wrapping_sub(2);
    } else {
        t.ctx.regs.rax = (-(i64::from(linux_raw_sys::errno::EINTR))) as u64;
        t.ctx.regs.rcx = t.ctx.regs.rip;
        t.ctx.regs.r11 = t.ctx.regs.rflags;
    }
    true
}

/// Takes the lowest deliverable signal: runs its default action or builds a handler frame.
/// Returns the exit reason if the process dies.
fn deliver_signal(vcpu: u32, t: &mut Thread) -> Option<ExitReason> {
    while let Some((sig, act)) = signal::next_action(t) {
        if !signal::dequeue(t, sig) {
            // Another thread of the process took it first.
            continue;
        }
        if signal::ignored(&act, sig) {
            continue;
        }
        if act.handler == 0 {
            return Some(ExitReason::Signaled(sig));
        }
        let info = signal::Info { signo: sig, ..signal::Info::default() };
        return setup_frame(vcpu, t, &act, &info).err();
    }
    None
}

/// Enters the handler `act` of `info.signo`: writes the `rt_sigframe` (on the alternate stack
/// if asked and possible), switches the registers to the handler, applies the handler's mask
/// (`SA_NODEFER`) and `SA_RESETHAND`. A frame that cannot be written kills with `SIGSEGV`
/// (Linux's `force_sigsegv` after a failed `setup_rt_frame`).
fn setup_frame(vcpu: u32, t: &mut Thread, act: &crate::proc::SigAction, info: &signal::Info) -> Result<(), ExitReason> {
    let sig = info.signo;
    let fpu = current_fpu(vcpu, t);
    let (ss_sp, ss_flags, ss_size) = t.altstack;
    let on_alt = ss_flags & 2 == 0 && ss_size > 0 && {
        let rsp = t.ctx.regs.rsp;
        !(rsp > ss_sp && rsp <= ss_sp + ss_size)
    };
    let sp = if act.flags & signal::SA_ONSTACK != 0 && on_alt { ss_sp + ss_size } else { t.ctx.regs.rsp };
    let mask = t.saved_sigmask.take().unwrap_or(t.sigmask);
    let Some(frame) = signal::build_frame(sp, &t.ctx.regs, &fpu, info, act, mask, t.altstack) else {
        return Err(ExitReason::Signaled(SIGSEGV));
    };
    let ok = {
        let mut mm = t.mm.lock();
        crate::mm::uaccess::copy_to_user(&mut mm, frame.addr, &frame.bytes).is_ok()
    };
    if !ok {
        crate::klog!(crate::log::INFO, "pid {}: cannot write signal frame at {:#x}", t.proc.pid, frame.addr);
        return Err(ExitReason::Signaled(SIGSEGV));
    }
    crate::klog!(crate::log::DEBUG, "pid {}: signal {sig} to handler {:#x} (flags {:#x}), frame {:#x}", t.proc.pid, act.handler, act.flags, frame.addr);
    t.ctx.regs = frame.regs;
    t.sigmask |= act.mask | if act.flags & signal::SA_NODEFER != 0 { 0 } else { signal::bit(sig) };
    t.sigmask &= !signal::UNBLOCKABLE;
    if act.flags & signal::SA_RESETHAND != 0 {
        t.proc.sigactions.lock()[sig as usize - 1] = crate::proc::SigAction::default();
    }
    Ok(())
}

/// Delivers the synchronous signal of a hardware fault in user code (Linux `force_sig`): to
/// the handler at once, or, when the signal is blocked, ignored or default, the process dies
/// of it, whoever it is (the first process too).
fn force_fault(vcpu: u32, t: &mut Thread, info: &signal::Info) -> Next {
    let sig = info.signo;
    let (act, mask) = {
        let mut acts = t.proc.sigactions.lock();
        signal::force_action(&mut acts, t.sigmask, sig)
    };
    t.sigmask = mask;
    if act.handler == 0 {
        crate::klog!(crate::log::INFO, "pid {}: fatal signal {sig} (code {}) at rip {:#x} addr {:#x} trap {} err {:#x}", t.proc.pid, info.code, t.ctx.regs.rip, info.addr, info.trapno, info.err);
        return Next::Exit(ExitReason::Signaled(sig));
    }
    match setup_frame(vcpu, t, &act, info) {
        Ok(()) => Next::Resume,
        Err(e) => Next::Exit(e),
    }
}

fn handle_syscall(vcpu: u32, t: &mut Thread, n: u64, seen: u64) -> Next {
    crate::waitq::set_current(&t.shared);
    let r = {
        let mut cx = Ctx { vcpu, t };
        sys::dispatch(&mut cx, n)
    };
    if !matches!(r, SysRet::Block) {
        t.deadline = None;
    }
    let set = |t: &mut Thread, v: i64| {
        let regs = &mut t.ctx.regs;
        regs.rax = v as u64;
        // As SYSRET leaves them.
        regs.rcx = regs.rip;
        regs.r11 = regs.rflags;
    };
    match r {
        SysRet::Ret(v) => {
            set(t, v);
            Next::Resume
        }
        SysRet::Replaced => Next::Resume,
        SysRet::Exit(e) => Next::Exit(e),
        SysRet::ExitThread(c) => Next::ExitThread(c),
        SysRet::Block => {
            t.wait = Some(Wait::Syscall(n));
            Next::Block(seen)
        }
        SysRet::Yield(v) => {
            set(t, v);
            Next::Yield
        }
        SysRet::Vfork(pid) => {
            set(t, i64::from(pid));
            t.wait = Some(Wait::Vfork(pid));
            Next::Yield
        }
    }
}

/// A user page fault: a shadow miss (H fills it), demand paging or copy-on-write (the kernel
/// maps and prefaults), or the fault signal to force (`Err`).
///
/// Locking: the shadow-miss check takes the address space shared and asks H with no lock
/// held; demand paging and copy-on-write take it exclusive for the page-table change and
/// release it before `PREFAULT`. Both rely on H's generation protocol
/// (`Hypercall::ShadowFault`): a fill that raced with a flush walks the guest table again, so
/// a fill can only map what the table says after the flush; frames are freed only after
/// their flush (`AddrSpace::flush`), under the exclusive lock.
fn handle_page_fault(t: &mut Thread, addr: u64, error: u64) -> Result<Next, signal::Info> {
    let access = if error & pf_error::FETCH != 0 {
        Access::Exec
    } else if error & pf_error::WRITE != 0 {
        Access::Write
    } else {
        Access::Read
    };
    if addr < guest_abi::layout::USER_END {
        // Shared: either the guest table allows the access (a shadow miss: ask H), or the page
        // is not present in a VMA that allows it (plan a demand fill).
        let (fill, plan) = {
            let mm = t.mm.read();
            match mm.pt.translate(addr & !0xfff) {
                Some(leaf) => {
                    let ok = leaf.flags.contains(F::USER_ACCESSIBLE)
                        && match access {
                            Access::Write => leaf.flags.contains(F::WRITABLE),
                            Access::Exec => !leaf.flags.contains(F::NO_EXECUTE),
                            Access::Read => true,
                        }
                        && mm.space_id.is_some();
                    if ok {
                        mm.note_shadow(addr, 1);
                    }
                    (ok.then(|| mm.root()), None)
                }
                None => (None, mm.plan_demand_fill(addr, access)),
            }
        };
        if let Some(root) = fill
            && crate::mm::space::shadow_fault(root, addr, error) == FAULT_FILLED
        {
            return Ok(Next::Resume);
        }
        // Demand fill: frames allocated and zeroed with no lock held, installed exclusively
        // if nothing changed meanwhile (else the ordinary path below).
        if let Some(plan) = plan
            && let Some(got) = plan.allocate()
        {
            let mut mm = t.mm.lock();
            let done = mm.commit_demand(&plan, got);
            mm.flush();
            if let Some((start, len)) = done {
                finish_fill(mm, start, len);
                return Ok(Next::Resume);
            }
        }
    }
    let mut mm = t.mm.lock();
    let mut r = if addr < guest_abi::layout::USER_END { mm.fault_in(addr, access) } else { Err(FaultError::Unmapped) };
    if r == Err(FaultError::OutOfMemory) && crate::mm::filecache::shrink() + crate::mm::pagecache::reclaim() > 0 {
        // Frames held only by the executable page cache, and page-cache pages nobody maps
        // (dirty ones written back first), come back; try once more.
        r = mm.fault_in(addr, access);
    }
    match r {
        Ok((start, len)) => {
            mm.flush();
            finish_fill(mm, start, len);
            Ok(Next::Resume)
        }
        Err(FaultError::OutOfMemory) => {
            drop(mm);
            crate::stats::page_fault(false);
            // Counted, then registered, before the victim is chosen: a death (a wake-up of the
            // OOM queue) after the count makes the block fail; one before the registration
            // is seen by the choice (the victim's memory is gone before its exit wakes).
            let seen = seen(t);
            crate::oom::VICTIM_GONE.register(&t.shared);
            Ok(match crate::oom::out_of_memory(t) {
                crate::oom::Verdict::KillCurrent => Next::Exit(ExitReason::Signaled(SIGKILL)),
                // The fault is retried when the thread runs again: after the next process
                // exit (`exit_process` wakes `VICTIM_GONE` once the exit is recorded, so
                // the victim is a zombie before anyone retries; the victim's memory is
                // back by then, every process sharing its address space being a victim).
                crate::oom::Verdict::Wait => Next::Block(seen),
            })
        }
        Err(e) => {
            crate::klog!(crate::log::DEBUG, "pid {}: segfault at {addr:#x} rip {:#x} error {error:#x} ({e:?})", t.proc.pid, t.ctx.regs.rip);
            crate::stats::page_fault(false);
            let info = signal::page_fault_info(addr, error, e == FaultError::Denied);
            if e == FaultError::Bus {
                // A file mapping's page past the end of the file (mm/filemap.c VM_FAULT_SIGBUS).
                return Err(signal::Info { signo: signal::SIGBUS, code: signal::code::BUS_ADRERR, ..info });
            }
            Err(info)
        }
    }
}

/// Ends a resolved fault: notes the shadow region, releases the address space and asks H to
/// `PREFAULT` what was mapped with no lock held.
fn finish_fill(mm: crate::sync::WriteGuard<'_, crate::mm::space::AddrSpace>, start: u64, len: u64) {
    let root = mm.root();
    let loaded = mm.space_id.is_some();
    if loaded {
        mm.note_shadow(start, len);
    }
    drop(mm);
    if loaded {
        crate::mm::space::prefault(root, start, len);
    }
    crate::stats::page_fault(true);
}

/// Ends thread `t`. With `group` (`exit_group`, a fatal signal) the whole thread group ends
/// with `reason`: the other threads notice at their next scheduling point (blocked ones are
/// woken, running ones interrupted). The thread's `clear_child_tid` word is zeroed and
/// futex-woken when other threads share the address space (`pthread_join`). The last thread
/// to go ends the process ([`exit_process`]) with the group's reason, or with its own.
fn exit_thread(t: Task, reason: ExitReason, group: bool) {
    let p = t.proc.clone();
    if group {
        let mut g = p.group_exit.lock();
        if g.is_none() {
            *g = Some(reason);
        }
    }
    crate::futex::cancel(&t.shared);
    let last = {
        let mut th = p.threads.lock();
        th.retain(|s| s.tid != t.tid);
        th.is_empty()
    };
    if !last {
        if t.clear_child_tid != 0 {
            let mut mm = t.mm.lock();
            if crate::mm::uaccess::write_val(&mut mm, t.clear_child_tid, &0u32).is_ok() {
                drop(mm);
                crate::futex::wake((Arc::as_ptr(&t.mm) as usize, t.clear_child_tid), 1, u32::MAX);
            }
        }
        drop(t);
        if group {
            // Blocked threads wake and exit; running ones are interrupted.
            crate::proc::wake_all_threads(&p);
            kick_others();
        }
        return;
    }
    let reason = p.group_exit.lock().unwrap_or(reason);
    exit_process(t, reason);
}

/// Makes every other vCPU come back to its scheduler loop soon (an IPI interrupts user code).
pub fn kick_others() {
    let me = crate::percpu::current();
    for v in 0..crate::boot::vcpus() {
        if v != me {
            crate::hcall::send_ipi(v);
        }
    }
}

/// Ends `t`'s process with `reason`: frees its address space and files, makes it a zombie
/// for its parent (or reaps it at once when the parent ignores `SIGCHLD`), re-parents its
/// children to the first process, and shuts the VM down when it is the first process.
fn exit_process(t: Task, reason: ExitReason) {
    let p = t.proc.clone();
    drop(t);
    let mm = p.mm.lock().take();
    drop(mm);
    let fds = core::mem::replace(&mut *p.fds.lock(), guest_fs::FdTable::new());
    drop(fds);
    set_alarm(p.pid, 0);
    *p.exit.lock() = Some(reason);
    p.pending.store(0, Ordering::Relaxed);
    p.vfork_done.store(true, Ordering::Release);
    crate::boot::update_memory_stats();
    let init = crate::boot::init_pid();
    if p.pid == init {
        match reason {
            ExitReason::Exited(c) => crate::hcall::shutdown(ShutdownKind::Exited, (c & 0xff) as u64),
            ExitReason::Signaled(s) => crate::hcall::shutdown(ShutdownKind::Signaled, u64::from(s)),
        }
    }
    // Re-parent children to the first process.
    let mut orphan_zombie = false;
    // Exclusive, not shared: a child exiting at the same time reads its `ppid` here too, and
    // the lock orders the two (either the child sees init as its new parent and wakes it, or
    // this loop sees the child a zombie and wakes init). With both under a shared lock, each
    // could miss the other's store and init would wait forever for the orphan.
    let parent = {
        let procs = PROCESSES.lock();
        for c in procs.values() {
            if c.ppid.load(Ordering::Relaxed) == p.pid {
                // Linux kernel/exit.c `reparent_leader`: "We don't want people slaying init":
                // an adopted child's exit signal becomes SIGCHLD.
                c.exit_signal.store(signal::SIGCHLD, Ordering::Relaxed);
                c.ppid.store(init, Ordering::Relaxed);
                orphan_zombie |= c.is_zombie();
            }
        }
        procs.get(&p.ppid.load(Ordering::Relaxed)).cloned()
    };
    if orphan_zombie && let Some(i) = crate::proc::lookup(init) {
        signal::post(&i, signal::SIGCHLD);
        // Its wait4 may wait for the adopted zombie even when SIGCHLD is ignored.
        crate::proc::wake_all_threads(&i);
    }
    match &parent {
        Some(par) => {
            let act = par.sigactions.lock()[signal::SIGCHLD as usize - 1];
            if act.handler == 1 || act.flags & signal::SA_NOCLDWAIT != 0 {
                PROCESSES.lock().remove(&p.pid);
            } else {
                let sig = p.exit_signal.load(Ordering::Relaxed);
                if sig != 0 {
                    // Not forced (kernel/signal.c `do_notify_parent`): the first process drops
                    // an exit signal whose action is the default, like any from inside.
                    signal::post_from_kill(par, sig, p.pid);
                }
            }
        }
        None => {
            PROCESSES.lock().remove(&p.pid);
        }
    }
    // wait4/waitid and a vfork parent wait on the parent's threads; OOM waiters on the
    // victim's memory, which is back now.
    if let Some(par) = parent {
        crate::proc::wake_all_threads(&par);
    }
    crate::oom::VICTIM_GONE.wake_all();
    crate::pidfd::EXITS.wake_all();
}
