//! Process syscalls: execve, wait4, identity, sessions, uname, sysinfo, limits, usage,
//! arch_prctl, prctl, scheduling queries.

use super::{Ctx, KResult, SysRet};
use crate::platform::FpuAction;
use core::sync::atomic::Ordering;
use guest_abi::pvcs::UserRegs;
use guest_fs::Errno;

/// `execve(2)`: on success the old image is gone and the registers are the new program's.
pub fn execve(cx: &mut Ctx<'_>, path: u64, argv: u64, envp: u64) -> SysRet {
    match exec_inner(cx, path, argv, envp, -100, 0) {
        Ok(()) => SysRet::Replaced,
        Err(e) => SysRet::Ret(-(i64::from(e.0))),
    }
}

/// `execveat(2)` (`AT_EMPTY_PATH` not supported for fds yet: `ENOENT` for an empty path).
pub fn execveat(cx: &mut Ctx<'_>, a: [u64; 6]) -> SysRet {
    match exec_inner(cx, a[1], a[2], a[3], a[0] as i32, a[4]) {
        Ok(()) => SysRet::Replaced,
        Err(e) => SysRet::Ret(-(i64::from(e.0))),
    }
}

fn exec_inner(cx: &mut Ctx<'_>, path: u64, argv: u64, envp: u64, dirfd: i32, _flags: u64) -> Result<(), Errno> {
    let mut path = cx.path(path)?;
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    let p = cx.proc();
    // Linux names the new program (`comm`) after the last component of the path given to
    // execve, before any symlink is followed: `/proc/self/exe` gives "exe" (busybox then
    // renames itself with PR_SET_NAME).
    let comm: alloc::vec::Vec<u8> = {
        let base = path.rsplit(|&b| b == b'/').next().unwrap_or(&[]);
        base[..base.len().min(15)].to_vec()
    };
    if path == b"/proc/self/exe" || path == alloc::format!("/proc/{}/exe", p.pid).as_bytes() {
        // The running program itself (busybox re-executes itself this way).
        path = p.exe.lock().clone();
    }
    if dirfd != -100 && path[0] != b'/' {
        return Err(Errno::ENOSYS);
    }
    let argv = cx.string_array(argv, 2 << 20)?;
    let envp = cx.string_array(envp, 2 << 20)?;
    let ctx = p.fs.lock().clone();
    let cmdline = crate::proc::cmdline_of(&argv);
    let environ = crate::proc::cmdline_of(&envp);
    let loaded = crate::exec::load(&ctx, &path, argv, &envp).map_err(|e| {
        crate::klog!(crate::log::DEBUG, "{}", e.reason);
        e.errno
    })?;
    // Point of no return: swap the address space (the old one goes when its last user drops
    // it: at once, or when a vfork parent that shares it moves on).
    let new = crate::proc::new_mm(loaded.mm);
    let old = core::mem::replace(&mut cx.t.mm, new.clone());
    *p.mm.lock() = Some(new);
    drop(old);
    if p.threads.lock().len() > 1 {
        end_other_threads(cx, &p);
    }
    if !p.vfork_done.swap(true, Ordering::AcqRel)
        && let Some(parent) = crate::proc::lookup(p.ppid.load(Ordering::Relaxed))
    {
        // The vfork parent waits on its process's threads.
        crate::proc::wake_all_threads(&parent);
    }
    *p.exe.lock() = loaded.exe;
    *p.name.lock() = Some(comm);
    *p.cmdline.lock() = cmdline;
    *p.environ.lock() = environ;
    p.fds.lock().close_on_exec();
    {
        let mut acts = p.sigactions.lock();
        for a in acts.iter_mut() {
            if a.handler > 1 {
                *a = crate::proc::SigAction::default();
            }
        }
    }
    cx.t.ctx.regs = UserRegs { rip: loaded.entry, rsp: loaded.rsp, rflags: 0x202, ..UserRegs::default() };
    cx.t.ctx.fpu.clear();
    cx.t.fpu = FpuAction::Reset;
    cx.t.altstack = (0, 2, 0);
    cx.t.clear_child_tid = 0;
    Ok(())
}

/// `execve` in a thread group (Linux `de_thread`): every other thread ends, and the caller
/// takes the thread group's id as its own tid. The others notice at their next scheduling
/// point (`crate::sched`: a thread not in its process's list any more exits silently); those
/// running user code are interrupted.
fn end_other_threads(cx: &mut Ctx<'_>, p: &crate::proc::Process) {
    let me = cx.t.tid;
    for t in p.threads.lock().iter().filter(|t| t.tid != me) {
        crate::futex::cancel(t);
    }
    let shared = crate::proc::ThreadShared::new(p.pid, cx.t.shared.pending.load(Ordering::Acquire));
    let old = core::mem::replace(&mut *p.threads.lock(), alloc::vec![shared.clone()]);
    cx.t.shared = shared;
    cx.t.tid = p.pid;
    // Blocked ones wake and find themselves out of the group; running ones are interrupted.
    for t in old.iter().filter(|t| t.tid != me) {
        crate::sched::wake(t);
    }
    crate::sched::kick_others();
}

/// `getresuid(2)` / `getresgid(2)`: all zero (root).
pub fn getres(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    for p in [a[0], a[1], a[2]] {
        cx.write(p, &0u32)?;
    }
    Ok(0)
}

fn lookup(cx: &Ctx<'_>, pid: i32) -> Result<alloc::sync::Arc<crate::proc::Process>, Errno> {
    if pid == 0 {
        return Ok(cx.proc());
    }
    crate::proc::PROCESSES.read().get(&pid).cloned().ok_or(Errno::ESRCH)
}

/// `getpgid(2)`.
pub fn getpgid(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    Ok(i64::from(lookup(cx, a[0] as i32)?.pgid.load(Ordering::Relaxed)))
}

/// `setpgid(2)`.
pub fn setpgid(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let p = lookup(cx, a[0] as i32)?;
    let pgid = if a[1] as i32 == 0 { p.pid } else { a[1] as i32 };
    if pgid < 0 {
        return Err(Errno::EINVAL);
    }
    p.pgid.store(pgid, Ordering::Relaxed);
    Ok(0)
}

/// `getsid(2)`.
pub fn getsid(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    Ok(i64::from(lookup(cx, a[0] as i32)?.sid.load(Ordering::Relaxed)))
}

/// `setsid(2)`: `EPERM` for a group leader, as Linux.
pub fn setsid(cx: &mut Ctx<'_>) -> KResult {
    let p = cx.proc();
    if p.pgid.load(Ordering::Relaxed) == p.pid {
        return Err(Errno::EPERM);
    }
    p.sid.store(p.pid, Ordering::Relaxed);
    p.pgid.store(p.pid, Ordering::Relaxed);
    Ok(i64::from(p.pid))
}

/// Host name from `BootInfo::hostname`.
pub static HOSTNAME: spin::Mutex<[u8; 65]> = spin::Mutex::new([0; 65]);

/// `uname(2)`: Linux, 6.1.0-pvm, x86_64.
pub fn uname(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let mut u = [0u8; 65 * 6];
    let mut put = |i: usize, s: &[u8]| {
        let n = s.len().min(64);
        u[i * 65..i * 65 + n].copy_from_slice(&s[..n]);
    };
    put(0, b"Linux");
    let host = *HOSTNAME.lock();
    let hl = host.iter().position(|&b| b == 0).unwrap_or(64);
    put(1, if hl == 0 { b"pvm" } else { &host[..hl] });
    put(2, b"6.1.0-pvm");
    put(3, b"#1 SMP PREEMPT_DYNAMIC pvm");
    put(4, b"x86_64");
    put(5, b"(none)");
    cx.copy_out(a[0], &u)?;
    Ok(0)
}

/// `sysinfo(2)`.
pub fn sysinfo(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let (used, _, total) = crate::mm::frame::usage();
    let mut s = [0u8; 112];
    let put = |s: &mut [u8], off: usize, v: u64| s[off..off + 8].copy_from_slice(&v.to_le_bytes());
    put(&mut s, 0, crate::time::uptime_ns() / 1_000_000_000);
    put(&mut s, 32, total as u64 * 4096);
    put(&mut s, 40, (total - used) as u64 * 4096);
    let procs = crate::proc::PROCESSES.read().len() as u16;
    s[80..82].copy_from_slice(&procs.to_le_bytes());
    s[104..108].copy_from_slice(&1u32.to_le_bytes()); // mem_unit
    cx.copy_out(a[0], &s)?;
    Ok(0)
}

/// `prlimit64(2)` (also backs `getrlimit`/`setrlimit`): args (pid, resource, new, old).
/// Checks as Linux's `do_prlimit` (kernel/sys.c): `EINVAL` for an unknown resource or a soft
/// limit above the hard one, `EPERM` for a hard `RLIMIT_NOFILE` above `fs.nr_open` or a
/// raised hard limit without `CAP_SYS_RESOURCE` (here: uid 0).
pub fn prlimit(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let res = a[1] as usize;
    if res >= 16 {
        return Err(Errno::EINVAL);
    }
    let p = lookup(cx, a[0] as i32)?;
    let new: Option<[u64; 2]> = if a[2] != 0 { Some(cx.read(a[2])?) } else { None };
    let privileged = cx.proc().fs.lock().uid == 0;
    let old = {
        let mut l = p.rlimits.lock();
        let old = l[res];
        if let Some([soft, hard]) = new {
            if soft > hard {
                return Err(Errno::EINVAL);
            }
            if res == 7 && hard > crate::proc::NR_OPEN {
                return Err(Errno::EPERM);
            }
            if hard > old.1 && !privileged {
                return Err(Errno::EPERM);
            }
            l[res] = (soft, hard);
        }
        old
    };
    if a[3] != 0 {
        cx.write(a[3], &[old.0, old.1])?;
    }
    Ok(0)
}

/// `getrusage(2)`: wall time since start as user time, kernel time as system time.
pub fn getrusage(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let who = a[0] as i32;
    if !matches!(who, -1..=1) {
        return Err(Errno::EINVAL);
    }
    let mut r = [0i64; 18];
    if who != -1 {
        let p = cx.proc();
        let (user, sys) = crate::cpustat::process_times(&p);
        r[0] = (user / 1_000_000_000) as i64;
        r[1] = ((user % 1_000_000_000) / 1000) as i64;
        r[2] = (sys / 1_000_000_000) as i64;
        r[3] = ((sys % 1_000_000_000) / 1000) as i64;
        r[4] = (cx.t.mm.lock().resident * 4) as i64; // maxrss, KiB
    }
    cx.write(a[1], &r)?;
    Ok(0)
}

/// `times(2)`: clock ticks (100 Hz).
pub fn times(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let p = cx.proc();
    let (user, sys) = crate::cpustat::process_times(&p);
    if a[0] != 0 {
        cx.write(a[0], &[(user / 10_000_000) as i64, (sys / 10_000_000) as i64, 0, 0])?;
    }
    Ok((crate::time::uptime_ns() / 10_000_000) as i64 + 1000)
}

/// `arch_prctl(2)`: FS/GS base.
pub fn arch_prctl(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    const ARCH_SET_GS: u64 = 0x1001;
    const ARCH_SET_FS: u64 = 0x1002;
    const ARCH_GET_FS: u64 = 0x1003;
    const ARCH_GET_GS: u64 = 0x1004;
    let canonical = |v: u64| v < 0x0000_8000_0000_0000;
    match a[0] {
        ARCH_SET_FS if canonical(a[1]) => cx.t.ctx.regs.fs_base = a[1],
        ARCH_SET_GS if canonical(a[1]) => cx.t.ctx.regs.gs_base = a[1],
        ARCH_SET_FS | ARCH_SET_GS => return Err(Errno::EPERM),
        ARCH_GET_FS => cx.write(a[1], &cx.t.ctx.regs.fs_base.clone())?,
        ARCH_GET_GS => cx.write(a[1], &cx.t.ctx.regs.gs_base.clone())?,
        _ => return Err(Errno::EINVAL),
    }
    Ok(0)
}

/// `prctl(2)`: names and a few flags.
pub fn prctl(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    match a[0] {
        15 => {
            // PR_SET_NAME: up to 15 bytes up to a NUL (prctl(2)).
            let raw = cx.copy_in(a[1], 16)?;
            let end = raw.iter().position(|&b| b == 0).unwrap_or(15).min(15);
            *cx.proc().name.lock() = Some(raw[..end].to_vec());
            Ok(0)
        }
        16 => {
            // PR_GET_NAME: 16 bytes, NUL-terminated.
            let mut name = cx.proc().comm();
            name.resize(16, 0);
            cx.copy_out(a[1], &name).map(|()| 0)
        }
        1 | 36 | 38 | 4 | 3 => Ok(0),                      // PDEATHSIG, CHILD_SUBREAPER, NO_NEW_PRIVS, DUMPABLE
        _ => Err(Errno::EINVAL),
    }
}

/// `get_robust_list(2)`.
pub fn get_robust_list(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    if a[0] != 0 && a[0] as i32 != cx.t.tid {
        return Err(Errno::ESRCH);
    }
    cx.write(a[1], &cx.t.robust_list.0.clone())?;
    cx.write(a[2], &cx.t.robust_list.1.clone())?;
    Ok(0)
}

/// `sched_getaffinity(2)`: every vCPU.
pub fn sched_getaffinity(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let len = a[1] as usize;
    if len < 8 || !len.is_multiple_of(8) {
        return Err(Errno::EINVAL);
    }
    let n = crate::boot::vcpus().min(64);
    let mask: u64 = if n >= 64 { u64::MAX } else { (1u64 << n) - 1 };
    cx.write(a[2], &mask)?;
    Ok(8)
}

/// `sched_getscheduler(2)` (SCHED_OTHER) / `sched_getparam(2)` (priority 0).
pub fn sched_get(cx: &mut Ctx<'_>, n: u32, a: [u64; 6]) -> KResult {
    if n == linux_raw_sys::general::__NR_sched_getparam {
        cx.write(a[1], &0i32)?;
    }
    Ok(0)
}

/// `getcpu(2)`.
pub fn getcpu(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    if a[0] != 0 {
        cx.write(a[0], &cx.vcpu)?;
    }
    if a[1] != 0 {
        cx.write(a[1], &0u32)?;
    }
    Ok(0)
}

/// `capget(2)`: root has every capability.
pub fn capget(cx: &mut Ctx<'_>, a: [u64; 6]) -> KResult {
    let version: u32 = cx.read(a[0])?;
    if a[1] == 0 {
        return Ok(0);
    }
    let words = if version == 0x1998_0330 { 1 } else { 2 };
    for i in 0..words {
        cx.write(a[1] + i * 12, &[u32::MAX, u32::MAX, u32::MAX])?;
    }
    Ok(0)
}
