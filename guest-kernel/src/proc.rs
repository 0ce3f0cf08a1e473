//! Processes and threads: the pid allocator, the process table, per-process state (address
//! space, fd table, filesystem context, signal actions, limits) and per-thread state (user
//! context, FPU policy, tid pointers, what a blocked thread waits for). Threads are plain
//! values moved between the scheduler's per-vCPU run queues and, while blocked, their own
//! parking slot ([`ThreadShared::parked`], `crate::sched`).
//!
//! The process table is a reader/writer lock: lookups (signals, `wait4`, `/proc`) share it;
//! only creating and reaping a process write it.

use crate::mm::space::AddrSpace;
use crate::platform::{FpuAction, UserContext};
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};
use guest_fs::{FdTable, FsContext};
use crate::sync::{Mutex, RwSpin};

/// Linux `struct k_sigaction` as `rt_sigaction(2)` passes it on x86-64.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SigAction {
    /// Handler (`SIG_DFL` = 0, `SIG_IGN` = 1) or function address.
    pub handler: u64,
    /// `SA_*` flags.
    pub flags: u64,
    /// `sa_restorer`.
    pub restorer: u64,
    /// Blocked signals during the handler.
    pub mask: u64,
}

/// Number of signals (1..=64).
pub const NSIG: usize = 64;

/// How a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitReason {
    /// `exit`/`exit_group` with this status (low 8 bits kept).
    Exited(i32),
    /// Killed by this signal.
    Signaled(u32),
}

impl ExitReason {
    /// The `wait4(2)` status word.
    pub fn wait_status(self) -> i32 {
        match self {
            ExitReason::Exited(c) => (c & 0xff) << 8,
            ExitReason::Signaled(s) => {
                // Signals whose default action dumps core report the core flag (0x80).
                let core = matches!(s, 3 | 4 | 5 | 6 | 7 | 8 | 11 | 24 | 25 | 31);
                s as i32 | if core { 0x80 } else { 0 }
            }
        }
    }
}

/// Resource limits tracked per process (`RLIMIT_*` index → (soft, hard)).
pub type Rlimits = [(u64, u64); 16];

/// Linux's default limits (`RLIM_INFINITY` = `u64::MAX`): `INIT_RLIMITS` of
/// include/asm-generic/resource.h, with `RLIMIT_NPROC` and `RLIMIT_SIGPENDING` at half of
/// `max_threads` as kernel/fork.c sets them (guest RAM / 128 KiB), and `RLIMIT_NOFILE`
/// 1024/1048576: Linux boots with 1024/4096, but what a container gets is its engine's
/// choice (Docker passes dockerd's own limit, commonly 1048576 hard; Docker 25+ with
/// systemd 1024:524288), and 1048576 is Linux's `fs.nr_open`, the highest hard limit.
pub fn default_rlimits() -> Rlimits {
    let inf = u64::MAX;
    let threads = (crate::mm::mem_size() / (128 << 10)).max(20);
    let mut r = [(inf, inf); 16];
    r[3] = (8 << 20, inf); // RLIMIT_STACK
    r[4] = (0, inf); // RLIMIT_CORE
    r[6] = (threads / 2, threads / 2); // RLIMIT_NPROC
    r[7] = (1024, NR_OPEN); // RLIMIT_NOFILE
    r[8] = (8 << 20, 8 << 20); // RLIMIT_MEMLOCK
    r[11] = (threads / 2, threads / 2); // RLIMIT_SIGPENDING
    r[12] = (819_200, 819_200); // RLIMIT_MSGQUEUE
    r[13] = (0, 0); // RLIMIT_NICE
    r[14] = (0, 0); // RLIMIT_RTPRIO
    r
}

/// `fs.nr_open`: the highest `RLIMIT_NOFILE` (Linux's default, fs/file.c).
pub const NR_OPEN: u64 = 1 << 20;

/// An address space as processes share it (`CLONE_VM`: a vfork child runs in its parent's).
/// `lock()` (= `write()`) is exclusive; page faults that only ask H for a shadow fill take
/// `read()` (see "Guest kernel: locking" in docs/ARCHITECTURE.md).
pub type Mm = RwSpin<AddrSpace>;

/// A new shared address space.
pub fn new_mm(a: AddrSpace) -> Arc<Mm> {
    Arc::new(RwSpin::new(a))
}

/// A process.
pub struct Process {
    /// Process id (= tid of its first thread).
    pub pid: i32,
    /// Parent pid (0 for the first process).
    pub ppid: AtomicI32,
    /// Process group.
    pub pgid: AtomicI32,
    /// Session.
    pub sid: AtomicI32,
    /// Address space (`None` once the process has exited).
    pub mm: Mutex<Option<Arc<Mm>>>,
    /// File descriptors.
    pub fds: Mutex<FdTable>,
    /// cwd, root, umask, credentials.
    pub fs: Mutex<FsContext>,
    /// Path of the running program (`/proc/self/exe`, `AT_EXECFN`).
    pub exe: Mutex<Vec<u8>>,
    /// Name set with `prctl(PR_SET_NAME)` since the last exec (`comm` otherwise derives from
    /// `exe`).
    pub name: Mutex<Option<Vec<u8>>>,
    /// `argv` of the running program, each NUL-terminated (`/proc/<pid>/cmdline`).
    pub cmdline: Mutex<Vec<u8>>,
    /// The environment of the running program, each string NUL-terminated
    /// (`/proc/<pid>/environ`).
    pub environ: Mutex<Vec<u8>>,
    /// Signal actions, index = signal - 1.
    pub sigactions: Mutex<[SigAction; NSIG]>,
    /// Resource limits.
    pub rlimits: Mutex<Rlimits>,
    /// Set when the process has exited (zombie until reaped).
    pub exit: Mutex<Option<ExitReason>>,
    /// Pending signals (bit `sig - 1`), process-wide.
    pub pending: AtomicU64,
    /// Signal sent to the parent at exit (`SIGCHLD` normally; 0 = none).
    pub exit_signal: AtomicU32,
    /// A `vfork` parent may continue: this process exec'd or exited.
    pub vfork_done: AtomicBool,
    /// `alarm(2)` deadline, `CLOCK_MONOTONIC` ns (0 = none).
    pub alarm_ns: AtomicU64,
    /// Start time (ns since boot).
    pub start_ns: u64,
    /// Time its threads spent on a vCPU (user and kernel), ns (`crate::cpustat::RunTime`).
    pub run_ns: core::sync::atomic::AtomicU64,
    /// Time spent in the kernel on behalf of this process, ns.
    pub sys_ns: core::sync::atomic::AtomicU64,
    /// The user time last reported for it, ns (`crate::cpustat::process_times` keeps it
    /// monotonic).
    pub user_reported_ns: core::sync::atomic::AtomicU64,
    /// The live threads (thread group), the first one (tid = pid) included while it lives.
    pub threads: Mutex<Vec<Arc<ThreadShared>>>,
    /// Set by `exit_group` or a fatal signal: every thread exits at its next scheduling
    /// point, and the last one ends the process with this reason.
    pub group_exit: Mutex<Option<ExitReason>>,
}

/// The part of a thread other threads and processes reach while the thread itself may be
/// running or queued: its id, its thread-directed pending signals (`tgkill`), its wake-up
/// count and parking slot (`crate::sched`), its futex wait state (`crate::futex`).
pub struct ThreadShared {
    /// Thread id.
    pub tid: i32,
    /// Pending thread-directed signals (bit `sig - 1`).
    pub pending: AtomicU64,
    /// Wake-ups addressed to this thread so far (`crate::sched::wake`). A thread that decides
    /// to block compares it with the value it read when its syscall started: any change
    /// means an event it may have missed, and it runs again instead of parking.
    pub wakeups: AtomicU64,
    /// The thread itself while it is blocked (taken out by the first wake-up).
    pub parked: Mutex<Option<alloc::boxed::Box<Thread>>>,
    /// Futex wait state (`crate::futex`): 0 none, 1 waiting, 2 woken.
    pub futex_state: AtomicU32,
    /// Futex hash bucket of the waiting entry (valid while `futex_state` is 1).
    pub futex_bucket: AtomicU32,
    /// The vCPU about to enter or running this thread's user code, [`NOT_RUNNING`] otherwise
    /// (`crate::sched::interrupt` sends that vCPU an IPI when a signal arrives).
    pub running_on: AtomicU32,
}

/// [`ThreadShared::running_on`] of a thread that is not in (or entering) user code.
pub const NOT_RUNNING: u32 = u32::MAX;

impl ThreadShared {
    /// A thread's shared part with thread-directed signals `pending` already posted.
    pub fn new(tid: i32, pending: u64) -> Arc<ThreadShared> {
        Arc::new(ThreadShared {
            tid,
            pending: AtomicU64::new(pending),
            wakeups: AtomicU64::new(0),
            parked: Mutex::new(None),
            futex_state: AtomicU32::new(0),
            futex_bucket: AtomicU32::new(0),
            running_on: AtomicU32::new(NOT_RUNNING),
        })
    }
}

impl core::fmt::Debug for ThreadShared {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ThreadShared").field("tid", &self.tid).finish_non_exhaustive()
    }
}

/// A thread.
pub struct Thread {
    /// Thread id.
    pub tid: i32,
    /// Owning process.
    pub proc: Arc<Process>,
    /// Shared state (thread-directed signals), also listed in `proc.threads`.
    pub shared: Arc<ThreadShared>,
    /// The address space this thread runs in.
    pub mm: Arc<Mm>,
    /// User CPU state.
    pub ctx: UserContext,
    /// FPU action at the next entry.
    pub fpu: FpuAction,
    /// `set_tid_address` pointer (cleared and futex-woken at exit).
    pub clear_child_tid: u64,
    /// Blocked signals.
    pub sigmask: u64,
    /// `set_robust_list` head and length.
    pub robust_list: (u64, u64),
    /// `sigaltstack`: (sp, flags, size).
    pub altstack: (u64, i32, u64),
    /// What the thread waits for while it is off the CPU in a blocking call.
    pub wait: Option<Wait>,
    /// Timeout of the blocking call in progress, `CLOCK_MONOTONIC` ns.
    pub deadline: Option<u64>,
    /// `rt_sigsuspend`: the mask to restore once a handler returns.
    pub saved_sigmask: Option<u64>,
}

/// What a blocked thread waits for. A wake-up re-runs the check; a syscall that still cannot
/// complete blocks again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Re-run system call `nr` with the saved registers (pipe read, wait4, sleep, ...).
    Syscall(u64),
    /// A `vfork` parent: resume (with this child pid in rax) once the child exec'd or exited.
    Vfork(i32),
}

static NEXT_PID: AtomicI32 = AtomicI32::new(1);

/// All live (and zombie) processes by pid.
pub static PROCESSES: RwSpin<BTreeMap<i32, Arc<Process>>> = RwSpin::new(BTreeMap::new());

/// Pids (processes and threads) made since boot (`/proc/stat` `processes`).
pub fn pids_made() -> i32 {
    NEXT_PID.load(Ordering::Relaxed) - 1
}

/// Allocates a pid (never reused within a VM run, up to `i32::MAX`).
pub fn alloc_pid() -> i32 {
    NEXT_PID.fetch_add(1, Ordering::Relaxed)
}

impl Process {
    /// A new process with the given parts, entered in the process table.
    pub fn new(pid: i32, ppid: i32, mm: Arc<Mm>, fds: FdTable, fs: FsContext) -> Arc<Process> {
        let p = Arc::new(Process {
            pid,
            ppid: AtomicI32::new(ppid),
            pgid: AtomicI32::new(pid),
            sid: AtomicI32::new(pid),
            mm: Mutex::new(Some(mm)),
            fds: Mutex::new(fds),
            fs: Mutex::new(fs),
            exe: Mutex::new(Vec::new()),
            name: Mutex::new(None),
            cmdline: Mutex::new(Vec::new()),
            environ: Mutex::new(Vec::new()),
            sigactions: Mutex::new([SigAction::default(); NSIG]),
            rlimits: Mutex::new(default_rlimits()),
            exit: Mutex::new(None),
            pending: AtomicU64::new(0),
            exit_signal: AtomicU32::new(17),
            vfork_done: AtomicBool::new(false),
            alarm_ns: AtomicU64::new(0),
            start_ns: crate::time::uptime_ns(),
            sys_ns: core::sync::atomic::AtomicU64::new(0),
            run_ns: core::sync::atomic::AtomicU64::new(0),
            user_reported_ns: core::sync::atomic::AtomicU64::new(0),
            threads: Mutex::new(Vec::new()),
            group_exit: Mutex::new(None),
        });
        PROCESSES.lock().insert(pid, p.clone());
        crate::stats::process_created();
        p
    }

    /// The address space, if the process still has one.
    pub fn mm(&self) -> Option<Arc<Mm>> {
        self.mm.lock().clone()
    }

    /// Short name (`comm`): the last component of the executable path, at most 15 bytes.
    pub fn comm(&self) -> Vec<u8> {
        if let Some(name) = self.name.lock().clone() {
            return name;
        }
        let exe = self.exe.lock();
        let base = exe.rsplit(|&b| b == b'/').next().unwrap_or(&[]);
        base[..base.len().min(15)].to_vec()
    }

    /// True once the process exited (a zombie until reaped).
    pub fn is_zombie(&self) -> bool {
        self.exit.lock().is_some()
    }
}

/// `argv` as `/proc/<pid>/cmdline` shows it.
pub fn cmdline_of(argv: &[Vec<u8>]) -> Vec<u8> {
    let mut c = Vec::new();
    for a in argv {
        c.extend_from_slice(a);
        c.push(0);
    }
    c
}

/// Finds the thread `tid` (any process): its process and shared state.
pub fn lookup_thread(tid: i32) -> Option<(Arc<Process>, Arc<ThreadShared>)> {
    let procs = PROCESSES.read();
    if let Some(p) = procs.get(&tid)
        && let Some(t) = p.threads.lock().iter().find(|t| t.tid == tid)
    {
        return Some((p.clone(), t.clone()));
    }
    procs.values().find_map(|p| p.threads.lock().iter().find(|t| t.tid == tid).map(|t| (p.clone(), t.clone())))
}

/// Looks a process up by pid.
pub fn lookup(pid: i32) -> Option<Arc<Process>> {
    PROCESSES.read().get(&pid).cloned()
}

/// Wakes every thread of `p` (a signal for the process, its child's exit, a group exit):
/// each re-checks what it waits for.
pub fn wake_all_threads(p: &Process) {
    let threads: Vec<Arc<ThreadShared>> = p.threads.lock().clone();
    for t in &threads {
        crate::sched::wake(t);
    }
}

impl Thread {
    /// A new thread of `proc` (entered in its thread list) running in `mm`, with a zero
    /// context.
    pub fn new(tid: i32, proc: Arc<Process>, mm: Arc<Mm>) -> Thread {
        let shared = ThreadShared::new(tid, 0);
        proc.threads.lock().push(shared.clone());
        Thread {
            tid,
            shared,
            proc,
            mm,
            ctx: UserContext::default(),
            fpu: FpuAction::Reset,
            clear_child_tid: 0,
            sigmask: 0,
            robust_list: (0, 0),
            altstack: (0, 2, 0), // SS_DISABLE
            wait: None,
            deadline: None,
            saved_sigmask: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ExitReason;

    #[test]
    fn wait_status_like_linux() {
        assert_eq!(ExitReason::Exited(3).wait_status(), 0x300);
        assert_eq!(ExitReason::Exited(256 + 7).wait_status(), 0x700);
        assert_eq!(ExitReason::Signaled(9).wait_status(), 9);
        assert_eq!(ExitReason::Signaled(11).wait_status(), 0x8b);
    }
}
