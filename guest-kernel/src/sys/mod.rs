//! The Linux x86-64 system-call layer: argument decoding, user-memory helpers, the dispatch
//! table and the per-area handlers. Arguments come in rdi, rsi, rdx, r10, r8, r9; the result
//! goes in rax as a value or `-errno`. Unknown numbers get `ENOSYS` (logged once).

pub mod clone;
pub mod epoll;
pub mod fdx;
pub mod fs;
pub mod fsx;
pub mod mem;
pub mod misc;
pub mod net;
pub mod process;
pub mod signal;
pub mod time;
pub mod wait;

use crate::mm::space::AddrSpace;
use crate::mm::uaccess;
use crate::proc::{ExitReason, Process, Thread};
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use guest_fs::Errno;
use linux_raw_sys::general as nr;

/// Result of most handlers: a non-negative value or an errno.
pub type KResult = Result<i64, Errno>;

/// What the trap loop does after a syscall.
#[derive(Debug)]
pub enum SysRet {
    /// Return this value in rax.
    Ret(i64),
    /// The registers were replaced (execve): resume without touching rax.
    Replaced,
    /// The whole process ends (every thread).
    Exit(ExitReason),
    /// The calling thread ends (`exit(2)`) with this status; the process ends with it if it
    /// was the last thread.
    ExitThread(i32),
    /// The call cannot complete yet: the thread blocks and re-runs it when woken.
    Block,
    /// Return this value and give the CPU to another runnable thread.
    Yield(i64),
    /// A `vfork` parent: return this child pid once the child exec'd or exited.
    Vfork(i32),
}

/// Internal errno of a handler that must block (`ERESTARTSYS` in Linux): never reaches user
/// code; the dispatcher turns it into [`SysRet::Block`].
pub const EBLOCK: Errno = Errno(512);

/// Longest path accepted (`PATH_MAX`, with the NUL).
pub const PATH_MAX: usize = 4096;

/// Everything a handler needs: the vCPU and the calling thread.
pub struct Ctx<'a> {
    /// vCPU the syscall runs on.
    pub vcpu: u32,
    /// The calling thread (its registers hold the arguments).
    pub t: &'a mut Thread,
}

impl Ctx<'_> {
    /// The calling process.
    pub fn proc(&self) -> Arc<Process> {
        self.t.proc.clone()
    }

    /// Runs `f` with the locked address space.
    pub fn mm<R>(&self, f: impl FnOnce(&mut AddrSpace) -> R) -> R {
        let mut g = self.t.mm.lock();
        f(&mut g)
    }

    /// Copies `len` bytes in from user `va`.
    pub fn copy_in(&self, va: u64, len: usize) -> Result<Vec<u8>, Errno> {
        let mut buf = vec![0u8; len];
        self.mm(|mm| uaccess::copy_from_user(mm, va, &mut buf)).map_err(|_| Errno::EFAULT)?;
        Ok(buf)
    }

    /// Copies `data` out to user `va`.
    pub fn copy_out(&self, va: u64, data: &[u8]) -> Result<(), Errno> {
        self.mm(|mm| uaccess::copy_to_user(mm, va, data)).map_err(|_| Errno::EFAULT)
    }

    /// Reads a plain value from user memory.
    pub fn read<T: Copy + Default>(&self, va: u64) -> Result<T, Errno> {
        self.mm(|mm| uaccess::read_val::<T>(mm, va)).map_err(|_| Errno::EFAULT)
    }

    /// Writes a plain value to user memory.
    pub fn write<T: Copy>(&self, va: u64, v: &T) -> Result<(), Errno> {
        self.mm(|mm| uaccess::write_val(mm, va, v)).map_err(|_| Errno::EFAULT)
    }

    /// Reads a path argument (`EFAULT`, `ENAMETOOLONG`).
    pub fn path(&self, va: u64) -> Result<Vec<u8>, Errno> {
        match self.mm(|mm| uaccess::read_cstr(mm, va, PATH_MAX - 1)) {
            Ok(Some(p)) => Ok(p),
            Ok(None) => Err(Errno::ENAMETOOLONG),
            Err(_) => Err(Errno::EFAULT),
        }
    }

    /// Reads a NULL-terminated array of string pointers (argv/envp), bounded by `max_bytes`.
    pub fn string_array(&self, va: u64, max_bytes: usize) -> Result<Vec<Vec<u8>>, Errno> {
        let mut out = Vec::new();
        if va == 0 {
            return Ok(out);
        }
        let mut total = 0usize;
        for i in 0.. {
            let p: u64 = self.read(va + i * 8)?;
            if p == 0 {
                break;
            }
            let s = match self.mm(|mm| uaccess::read_cstr(mm, p, max_bytes)) {
                Ok(Some(s)) => s,
                Ok(None) => return Err(Errno::E2BIG),
                Err(_) => return Err(Errno::EFAULT),
            };
            total += s.len() + 1 + 8;
            if total > max_bytes {
                return Err(Errno::E2BIG);
            }
            out.push(s);
        }
        Ok(out)
    }
}

/// The six syscall arguments.
pub fn args(t: &Thread) -> [u64; 6] {
    let r = &t.ctx.regs;
    [r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9]
}

fn ret(r: KResult) -> SysRet {
    if r == Err(EBLOCK) {
        return SysRet::Block;
    }
    SysRet::Ret(match r {
        Ok(v) => v,
        Err(e) => -(i64::from(e.0)),
    })
}

static UNKNOWN_SEEN: spin::Mutex<[u64; 8]> = spin::Mutex::new([0; 8]);

fn unknown(n: u64) -> SysRet {
    let mut seen = UNKNOWN_SEEN.lock();
    let (w, b) = ((n / 64) as usize, n % 64);
    let first = w >= seen.len() || seen[w] & (1 << b) == 0;
    if w < seen.len() {
        seen[w] |= 1 << b;
    }
    drop(seen);
    if first {
        crate::klog!(crate::log::INFO, "unknown syscall {n}: ENOSYS");
    }
    ret(Err(Errno::ENOSYS))
}

/// Runs syscall `n` for the thread in `cx`.
pub fn dispatch(cx: &mut Ctx<'_>, n: u64) -> SysRet {
    let a = args(cx.t);
    crate::klog!(crate::log::TRACE, "pid {} syscall {n} ({:#x}, {:#x}, {:#x}, {:#x})", cx.t.proc.pid, a[0], a[1], a[2], a[3]);
    let n32 = n as u32;
    match n32 {
        // Files.
        nr::__NR_read => ret(fs::read(cx, a)),
        nr::__NR_write => ret(fs::write(cx, a)),
        nr::__NR_open => ret(fs::openat(cx, fs::AT_FDCWD as u64, a[0], a[1], a[2])),
        nr::__NR_openat => ret(fs::openat(cx, a[0], a[1], a[2], a[3])),
        nr::__NR_openat2 => ret(fs::openat2(cx, a)),
        nr::__NR_close => ret(fs::close(cx, a)),
        nr::__NR_stat => ret(fs::fstatat(cx, fs::AT_FDCWD as u64, a[0], a[1], 0)),
        nr::__NR_lstat => ret(fs::fstatat(cx, fs::AT_FDCWD as u64, a[0], a[1], fs::AT_SYMLINK_NOFOLLOW)),
        nr::__NR_fstat => ret(fs::fstat(cx, a)),
        nr::__NR_newfstatat => ret(fs::fstatat(cx, a[0], a[1], a[2], a[3])),
        nr::__NR_statx => ret(fs::statx(cx, a)),
        nr::__NR_lseek => ret(fs::lseek(cx, a)),
        nr::__NR_pread64 => ret(fs::pread(cx, a)),
        nr::__NR_pwrite64 => ret(fs::pwrite(cx, a)),
        nr::__NR_readv => ret(fs::readv(cx, a, None)),
        nr::__NR_writev => ret(fs::writev(cx, a, None)),
        nr::__NR_preadv => ret(fs::readv(cx, a, Some(a[3]))),
        nr::__NR_pwritev => ret(fs::writev(cx, a, Some(a[3]))),
        nr::__NR_access => ret(fs::faccessat(cx, fs::AT_FDCWD as u64, a[0], a[1], 0)),
        nr::__NR_faccessat => ret(fs::faccessat(cx, a[0], a[1], a[2], 0)),
        nr::__NR_faccessat2 => ret(fs::faccessat(cx, a[0], a[1], a[2], a[3])),
        nr::__NR_getdents64 => ret(fs::getdents64(cx, a)),
        nr::__NR_getcwd => ret(fs::getcwd(cx, a)),
        nr::__NR_chdir => ret(fs::chdir(cx, a)),
        nr::__NR_fchdir => ret(fs::fchdir(cx, a)),
        nr::__NR_mkdir => ret(fs::mkdirat(cx, fs::AT_FDCWD as u64, a[0], a[1])),
        nr::__NR_mkdirat => ret(fs::mkdirat(cx, a[0], a[1], a[2])),
        nr::__NR_mknod => ret(fs::mknodat(cx, fs::AT_FDCWD as u64, a[0], a[1], a[2])),
        nr::__NR_mknodat => ret(fs::mknodat(cx, a[0], a[1], a[2], a[3])),
        nr::__NR_rmdir => ret(fs::unlinkat(cx, fs::AT_FDCWD as u64, a[0], fs::AT_REMOVEDIR)),
        nr::__NR_unlink => ret(fs::unlinkat(cx, fs::AT_FDCWD as u64, a[0], 0)),
        nr::__NR_unlinkat => ret(fs::unlinkat(cx, a[0], a[1], a[2])),
        nr::__NR_rename => ret(fs::renameat2(cx, fs::AT_FDCWD as u64, a[0], fs::AT_FDCWD as u64, a[1], 0)),
        nr::__NR_renameat => ret(fs::renameat2(cx, a[0], a[1], a[2], a[3], 0)),
        nr::__NR_renameat2 => ret(fs::renameat2(cx, a[0], a[1], a[2], a[3], a[4])),
        nr::__NR_symlink => ret(fs::symlinkat(cx, a[0], fs::AT_FDCWD as u64, a[1])),
        nr::__NR_symlinkat => ret(fs::symlinkat(cx, a[0], a[1], a[2])),
        nr::__NR_readlink => ret(fs::readlinkat(cx, fs::AT_FDCWD as u64, a[0], a[1], a[2])),
        nr::__NR_readlinkat => ret(fs::readlinkat(cx, a[0], a[1], a[2], a[3])),
        nr::__NR_link => ret(fs::linkat(cx, fs::AT_FDCWD as u64, a[0], fs::AT_FDCWD as u64, a[1], 0)),
        nr::__NR_linkat => ret(fs::linkat(cx, a[0], a[1], a[2], a[3], a[4])),
        nr::__NR_chmod => ret(fs::fchmodat(cx, fs::AT_FDCWD as u64, a[0], a[1], 0)),
        nr::__NR_fchmod => ret(fs::fchmod(cx, a)),
        nr::__NR_fchmodat => ret(fs::fchmodat(cx, a[0], a[1], a[2], 0)),
        nr::__NR_chown => ret(fs::fchownat(cx, fs::AT_FDCWD as u64, a[0], a[1], a[2], 0)),
        nr::__NR_lchown => ret(fs::fchownat(cx, fs::AT_FDCWD as u64, a[0], a[1], a[2], fs::AT_SYMLINK_NOFOLLOW)),
        nr::__NR_fchown => ret(fs::fchown(cx, a)),
        nr::__NR_fchownat => ret(fs::fchownat(cx, a[0], a[1], a[2], a[3], a[4])),
        nr::__NR_umask => ret(fs::umask(cx, a)),
        nr::__NR_utimensat => ret(fs::utimensat(cx, a)),
        nr::__NR_truncate => ret(fs::truncate(cx, a)),
        nr::__NR_ftruncate => ret(fs::ftruncate(cx, a)),
        nr::__NR_fsync => ret(fs::fsync(cx, a)),
        nr::__NR_fdatasync => ret(fsx::fdatasync(cx, a)),
        nr::__NR_syncfs => ret(fsx::syncfs(cx, a)),
        nr::__NR_sync_file_range => ret(fsx::sync_file_range(cx, a)),
        nr::__NR_creat => ret(fsx::creat(cx, a)),
        nr::__NR_flock => ret(fsx::flock(cx, a)),
        nr::__NR_getxattr => ret(fsx::getxattr(cx, a, 0)),
        nr::__NR_lgetxattr => ret(fsx::getxattr(cx, a, 1)),
        nr::__NR_fgetxattr => ret(fsx::getxattr(cx, a, 2)),
        nr::__NR_setxattr => ret(fsx::setxattr(cx, a, 0)),
        nr::__NR_lsetxattr => ret(fsx::setxattr(cx, a, 1)),
        nr::__NR_fsetxattr => ret(fsx::setxattr(cx, a, 2)),
        nr::__NR_listxattr => ret(fsx::listxattr(cx, a, 0)),
        nr::__NR_llistxattr => ret(fsx::listxattr(cx, a, 1)),
        nr::__NR_flistxattr => ret(fsx::listxattr(cx, a, 2)),
        nr::__NR_removexattr => ret(fsx::removexattr(cx, a, 0)),
        nr::__NR_lremovexattr => ret(fsx::removexattr(cx, a, 1)),
        nr::__NR_fremovexattr => ret(fsx::removexattr(cx, a, 2)),
        nr::__NR_sync => ret(Ok(0)),
        nr::__NR_dup => ret(fs::dup(cx, a)),
        nr::__NR_dup2 => ret(fs::dup2(cx, a)),
        nr::__NR_dup3 => ret(fs::dup3(cx, a)),
        nr::__NR_fcntl => ret(fs::fcntl(cx, a)),
        nr::__NR_ioctl => ret(fs::ioctl(cx, a)),
        nr::__NR_statfs => ret(fs::statfs(cx, a)),
        nr::__NR_fstatfs => ret(fs::fstatfs(cx, a)),
        nr::__NR_pipe => ret(fs::pipe2(cx, a[0], 0)),
        nr::__NR_pipe2 => ret(fs::pipe2(cx, a[0], a[1])),
        nr::__NR_poll => ret(fs::poll(cx, a[0], a[1], a[2] as i32 as i64)),
        nr::__NR_ppoll => ret(fs::ppoll(cx, a)),
        nr::__NR_select => ret(fs::select(cx, a, false)),
        nr::__NR_pselect6 => ret(fs::select(cx, a, true)),
        nr::__NR_sendfile => ret(fs::sendfile(cx, a)),
        nr::__NR_fadvise64 => ret(Ok(0)),
        nr::__NR_fallocate => ret(fsx::fallocate(cx, a)),
        nr::__NR_copy_file_range => ret(fsx::copy_file_range(cx, a)),
        // Memory.
        nr::__NR_brk => ret(mem::brk(cx, a)),
        nr::__NR_mmap => ret(mem::mmap(cx, a)),
        nr::__NR_munmap => ret(mem::munmap(cx, a)),
        nr::__NR_mprotect => ret(mem::mprotect(cx, a)),
        nr::__NR_mremap => ret(mem::mremap(cx, a)),
        nr::__NR_madvise => ret(mem::madvise(cx, a)),
        nr::__NR_mlock | nr::__NR_munlock => ret(mem::mlock(cx, a, false)),
        nr::__NR_mlock2 => ret(mem::mlock(cx, a, true)),
        nr::__NR_mlockall | nr::__NR_munlockall => ret(Ok(0)),
        nr::__NR_msync => ret(mem::msync(cx, a)),
        nr::__NR_mincore => ret(mem::mincore(cx, a)),
        nr::__NR_membarrier => ret(Ok(0)),
        // Processes and identity.
        nr::__NR_exit => SysRet::ExitThread(a[0] as i32),
        nr::__NR_exit_group => SysRet::Exit(ExitReason::Exited(a[0] as i32)),
        nr::__NR_execve => process::execve(cx, a[0], a[1], a[2]),
        nr::__NR_execveat => process::execveat(cx, a),
        nr::__NR_wait4 => ret(wait::wait4(cx, a)),
        nr::__NR_waitid => ret(wait::waitid(cx, a)),
        nr::__NR_fork => clone::clone(cx, clone::Args { flags: 17, ..clone::Args::default() }),
        nr::__NR_vfork => clone::clone(cx, clone::Args { flags: clone::CLONE_VM | clone::CLONE_VFORK | 17, ..clone::Args::default() }),
        nr::__NR_clone => clone::clone(cx, clone::Args { flags: a[0], stack: a[1], parent_tid: a[2], child_tid: a[3], tls: a[4] }),
        nr::__NR_clone3 => match clone::clone3_args(cx, a[0], a[1]) {
            Ok(args) => clone::clone(cx, args),
            Err(e) => ret(Err(e)),
        },
        nr::__NR_getpid => ret(Ok(i64::from(cx.t.proc.pid))),
        nr::__NR_gettid => ret(Ok(i64::from(cx.t.tid))),
        nr::__NR_getppid => ret(Ok(i64::from(cx.t.proc.ppid.load(core::sync::atomic::Ordering::Relaxed)))),
        nr::__NR_getuid | nr::__NR_geteuid | nr::__NR_getgid | nr::__NR_getegid => ret(Ok(0)),
        nr::__NR_getresuid | nr::__NR_getresgid => ret(process::getres(cx, a)),
        nr::__NR_getgroups => ret(Ok(0)),
        nr::__NR_setuid | nr::__NR_setgid | nr::__NR_setreuid | nr::__NR_setregid | nr::__NR_setresuid
        | nr::__NR_setresgid | nr::__NR_setgroups | nr::__NR_setfsuid | nr::__NR_setfsgid => ret(Ok(0)),
        nr::__NR_getpgrp => ret(Ok(i64::from(cx.t.proc.pgid.load(core::sync::atomic::Ordering::Relaxed)))),
        nr::__NR_getpgid => ret(process::getpgid(cx, a)),
        nr::__NR_setpgid => ret(process::setpgid(cx, a)),
        nr::__NR_getsid => ret(process::getsid(cx, a)),
        nr::__NR_setsid => ret(process::setsid(cx)),
        nr::__NR_uname => ret(process::uname(cx, a)),
        nr::__NR_sethostname | nr::__NR_setdomainname => ret(Err(Errno::EPERM)),
        nr::__NR_sysinfo => ret(process::sysinfo(cx, a)),
        nr::__NR_getrlimit => ret(process::prlimit(cx, [0, a[0], 0, a[1], 0, 0])),
        nr::__NR_setrlimit => ret(process::prlimit(cx, [0, a[0], a[1], 0, 0, 0])),
        nr::__NR_prlimit64 => ret(process::prlimit(cx, a)),
        nr::__NR_getrusage => ret(process::getrusage(cx, a)),
        nr::__NR_times => ret(process::times(cx, a)),
        nr::__NR_arch_prctl => ret(process::arch_prctl(cx, a)),
        nr::__NR_prctl => ret(process::prctl(cx, a)),
        nr::__NR_set_tid_address => {
            cx.t.clear_child_tid = a[0];
            ret(Ok(i64::from(cx.t.tid)))
        }
        nr::__NR_set_robust_list => {
            cx.t.robust_list = (a[0], a[1]);
            ret(if a[1] == 24 { Ok(0) } else { Err(Errno::EINVAL) })
        }
        nr::__NR_get_robust_list => ret(process::get_robust_list(cx, a)),
        nr::__NR_rseq => ret(Err(Errno::ENOSYS)),
        nr::__NR_sched_getaffinity => ret(process::sched_getaffinity(cx, a)),
        nr::__NR_sched_setaffinity => ret(Ok(0)),
        nr::__NR_sched_yield => SysRet::Yield(0),
        nr::__NR_sched_getscheduler | nr::__NR_sched_getparam => ret(process::sched_get(cx, n32, a)),
        nr::__NR_sched_setscheduler | nr::__NR_sched_setparam => ret(Ok(0)),
        nr::__NR_sched_get_priority_max | nr::__NR_sched_get_priority_min => ret(Ok(0)),
        nr::__NR_getpriority => ret(Ok(20)),
        nr::__NR_setpriority => ret(Ok(0)),
        nr::__NR_getcpu => ret(process::getcpu(cx, a)),
        nr::__NR_capget => ret(process::capget(cx, a)),
        nr::__NR_capset => ret(Ok(0)),
        nr::__NR_personality => ret(Ok(0)),
        // Time.
        nr::__NR_clock_gettime => ret(time::clock_gettime(cx, a)),
        nr::__NR_clock_getres => ret(time::clock_getres(cx, a)),
        nr::__NR_gettimeofday => ret(time::gettimeofday(cx, a)),
        nr::__NR_time => ret(time::time(cx, a)),
        nr::__NR_nanosleep => ret(time::nanosleep(cx, 1, 0, a[0], a[1])),
        nr::__NR_clock_nanosleep => ret(time::nanosleep(cx, a[0], a[1], a[2], a[3])),
        nr::__NR_alarm => ret(time::alarm(cx, a)),
        nr::__NR_setitimer | nr::__NR_getitimer => ret(time::itimer(cx, n32, a)),
        // Signals.
        nr::__NR_rt_sigaction => ret(signal::rt_sigaction(cx, a)),
        nr::__NR_rt_sigprocmask => ret(signal::rt_sigprocmask(cx, a)),
        nr::__NR_rt_sigpending => ret(signal::rt_sigpending(cx, a)),
        nr::__NR_sigaltstack => ret(signal::sigaltstack(cx, a)),
        nr::__NR_kill => signal::kill(cx, a[0] as i32, a[1] as u32),
        nr::__NR_tgkill => signal::tgkill(cx, a[0] as i32, a[1] as i32, a[2] as u32),
        nr::__NR_tkill => signal::tkill(cx, a[0] as i32, a[1] as u32),
        nr::__NR_pause => ret(Err(EBLOCK)),
        nr::__NR_rt_sigsuspend => ret(signal::rt_sigsuspend(cx, a)),
        nr::__NR_rt_sigreturn => signal::rt_sigreturn(cx),
        // Misc.
        nr::__NR_getrandom => ret(misc::getrandom(cx, a)),
        nr::__NR_futex => ret(misc::futex(cx, a)),
        nr::__NR_ptrace => ret(Err(Errno::EPERM)),
        nr::__NR_mount | nr::__NR_umount2 | nr::__NR_reboot | nr::__NR_pivot_root | nr::__NR_chroot
        | nr::__NR_swapon | nr::__NR_swapoff | nr::__NR_init_module | nr::__NR_finit_module
        | nr::__NR_delete_module | nr::__NR_kexec_load | nr::__NR_acct | nr::__NR_settimeofday
        | nr::__NR_clock_settime | nr::__NR_adjtimex | nr::__NR_iopl | nr::__NR_ioperm
        | nr::__NR_unshare | nr::__NR_setns => ret(Err(Errno::EPERM)),
        // Sockets.
        nr::__NR_socket => ret(net::socket(cx, a)),
        nr::__NR_socketpair => ret(net::socketpair(cx, a)),
        nr::__NR_bind => ret(net::bind(cx, a)),
        nr::__NR_listen => ret(net::listen(cx, a)),
        nr::__NR_connect => ret(net::connect(cx, a)),
        nr::__NR_accept => ret(net::accept4(cx, [a[0], a[1], a[2], 0, 0, 0])),
        nr::__NR_accept4 => ret(net::accept4(cx, a)),
        nr::__NR_sendto => ret(net::sendto(cx, a)),
        nr::__NR_recvfrom => ret(net::recvfrom(cx, a)),
        nr::__NR_sendmsg => ret(net::sendmsg(cx, a)),
        nr::__NR_recvmsg => ret(net::recvmsg(cx, a)),
        nr::__NR_sendmmsg => ret(net::sendmmsg(cx, a)),
        nr::__NR_recvmmsg => ret(net::recvmmsg(cx, a)),
        nr::__NR_shutdown => ret(net::shutdown(cx, a)),
        nr::__NR_getsockname => ret(net::getsockname(cx, a)),
        nr::__NR_getpeername => ret(net::getpeername(cx, a)),
        nr::__NR_getsockopt => ret(net::getsockopt(cx, a)),
        nr::__NR_setsockopt => ret(net::setsockopt(cx, a)),
        // Readiness.
        nr::__NR_epoll_create => ret(epoll::epoll_create(cx, a, true)),
        nr::__NR_epoll_create1 => ret(epoll::epoll_create(cx, a, false)),
        nr::__NR_epoll_ctl => ret(epoll::epoll_ctl(cx, a)),
        nr::__NR_epoll_wait => ret(epoll::epoll_wait(cx, a)),
        nr::__NR_epoll_pwait => ret(epoll::epoll_pwait(cx, a)),
        nr::__NR_epoll_pwait2 => ret(epoll::epoll_pwait2(cx, a)),
        nr::__NR_eventfd => ret(epoll::eventfd2(cx, [a[0], 0, 0, 0, 0, 0])),
        nr::__NR_eventfd2 => ret(epoll::eventfd2(cx, a)),
        nr::__NR_timerfd_create => ret(fdx::timerfd_create(cx, a)),
        nr::__NR_timerfd_settime => ret(fdx::timerfd_settime(cx, a)),
        nr::__NR_timerfd_gettime => ret(fdx::timerfd_gettime(cx, a)),
        nr::__NR_signalfd => ret(fdx::signalfd4(cx, [a[0], a[1], a[2], 0, 0, 0])),
        nr::__NR_signalfd4 => ret(fdx::signalfd4(cx, a)),
        nr::__NR_pidfd_open => ret(fdx::pidfd_open(cx, a)),
        nr::__NR_pidfd_send_signal => ret(fdx::pidfd_send_signal(cx, a)),
        nr::__NR_close_range => ret(fdx::close_range(cx, a)),
        nr::__NR_memfd_create => ret(fdx::memfd_create(cx, a)),
        _ => unknown(n),
    }
}

