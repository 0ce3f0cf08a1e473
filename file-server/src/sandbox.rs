//! F's sandbox, entered once before it serves anything (after it opened guest memory, its
//! mount roots and `/proc/self/fd`):
//!
//! 1. a new network namespace (`unshare(CLONE_NEWNET)`, where permitted: root or
//!    unprivileged user namespaces), so even a socket F could create reaches nothing;
//! 2. Landlock (ABI up to 7, best effort on older kernels): file access only beneath the mount
//!    sources, read-only beneath the read-only ones; no TCP bind/connect (ABI 4); no abstract
//!    unix sockets or signals outside the domain (ABI 6); `PR_SET_NO_NEW_PRIVS` (set by
//!    `restrict_self`);
//! 3. seccomp (`seccompiler`, installed on every thread with `SECCOMP_FILTER_FLAG_TSYNC`
//!    after the queue threads exist): only the file, memory and thread-wait syscalls that F
//!    and `fuse-backend-rs`'s passthrough use; no `socket`, `execve`, `clone`, `ptrace`,
//!    `open_by_handle_at`, `mount`, ... (those fail with `EPERM`); `mknodat` only for FIFOs,
//!    sockets and regular files (a guest cannot make a device node on the host).

use std::collections::BTreeMap;

use landlock::{
    ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, Ruleset, RulesetAttr, RulesetCreatedAttr, Scope,
    path_beneath_rules,
};
use seccompiler::{BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule};

use crate::config::MountSpec;

/// Why the sandbox could not be entered (F then refuses to serve).
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// Landlock refused a rule or the restriction.
    #[error("landlock: {0}")]
    Landlock(String),
    /// The seccomp filter could not be built or installed.
    #[error("seccomp: {0}")]
    Seccomp(String),
}

/// Newest Landlock ABI F asks for (Linux 6.15); older kernels get what they support.
const LANDLOCK_ABI: ABI = ABI::V7;

/// Steps 1 and 2 for this thread and the threads it spawns later.
///
/// # Errors
/// [`SandboxError::Landlock`] when a rule cannot be added or the restriction fails (a kernel
/// without Landlock is not an error: the restriction is then best effort, as the `landlock`
/// crate's default compatibility level says).
pub fn restrict_files(mounts: &[MountSpec]) -> Result<(), SandboxError> {
    // SAFETY: unshare only changes this process's namespaces; a refusal (EPERM) leaves the
    // process as it was, which the seccomp filter covers (no socket calls).
    unsafe { libc::unshare(libc::CLONE_NEWNET) };
    let ll = |e: landlock::RulesetError| SandboxError::Landlock(e.to_string());
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(LANDLOCK_ABI))
        .map_err(ll)?
        .handle_access(AccessNet::from_all(LANDLOCK_ABI))
        .map_err(ll)?
        .scope(Scope::from_all(LANDLOCK_ABI))
        .map_err(ll)?
        .create()
        .map_err(ll)?;
    for m in mounts {
        let access = if m.read_only { AccessFs::from_read(LANDLOCK_ABI) } else { AccessFs::from_all(LANDLOCK_ABI) };
        ruleset = ruleset.add_rules(path_beneath_rules([&m.source], access)).map_err(ll)?;
    }
    ruleset.restrict_self().map_err(ll)?;
    Ok(())
}

/// Syscalls F may make, any arguments.
const ALLOWED: &[i64] = &[
    // I/O on open files.
    libc::SYS_read,
    libc::SYS_write,
    libc::SYS_pread64,
    libc::SYS_pwrite64,
    libc::SYS_readv,
    libc::SYS_writev,
    libc::SYS_preadv,
    libc::SYS_pwritev,
    libc::SYS_preadv2,
    libc::SYS_pwritev2,
    libc::SYS_lseek,
    libc::SYS_fsync,
    libc::SYS_fdatasync,
    libc::SYS_sync_file_range,
    libc::SYS_syncfs,
    libc::SYS_fallocate,
    libc::SYS_ftruncate,
    libc::SYS_copy_file_range,
    libc::SYS_flock,
    libc::SYS_fcntl,
    libc::SYS_close,
    libc::SYS_dup,
    libc::SYS_getdents64,
    // Names, relative to directory fds (Landlock bounds them to the mounts).
    libc::SYS_openat,
    libc::SYS_openat2,
    libc::SYS_newfstatat,
    libc::SYS_fstat,
    libc::SYS_statx,
    libc::SYS_fstatfs,
    libc::SYS_statfs,
    libc::SYS_readlinkat,
    libc::SYS_mkdirat,
    libc::SYS_unlinkat,
    libc::SYS_renameat,
    libc::SYS_renameat2,
    libc::SYS_linkat,
    libc::SYS_symlinkat,
    libc::SYS_fchmod,
    libc::SYS_fchmodat,
    libc::SYS_fchown,
    libc::SYS_fchownat,
    libc::SYS_utimensat,
    libc::SYS_name_to_handle_at,
    libc::SYS_umask,
    // Extended attributes (passthrough uses the path forms on /proc/self/fd/N).
    libc::SYS_getxattr,
    libc::SYS_lgetxattr,
    libc::SYS_fgetxattr,
    libc::SYS_setxattr,
    libc::SYS_lsetxattr,
    libc::SYS_fsetxattr,
    libc::SYS_listxattr,
    libc::SYS_llistxattr,
    libc::SYS_flistxattr,
    libc::SYS_removexattr,
    libc::SYS_lremovexattr,
    libc::SYS_fremovexattr,
    // The caller's credentials for creating files (per thread, as virtiofsd does).
    libc::SYS_setresuid,
    libc::SYS_setresgid,
    libc::SYS_capget,
    libc::SYS_capset,
    libc::SYS_getuid,
    libc::SYS_getgid,
    libc::SYS_geteuid,
    libc::SYS_getegid,
    libc::SYS_getpid,
    libc::SYS_gettid,
    // Memory, threads, signals of the runtime.
    libc::SYS_mmap,
    libc::SYS_munmap,
    libc::SYS_mremap,
    libc::SYS_mprotect,
    libc::SYS_madvise,
    libc::SYS_brk,
    libc::SYS_futex,
    libc::SYS_sched_yield,
    libc::SYS_sched_getaffinity,
    libc::SYS_rt_sigreturn,
    libc::SYS_rseq,
    libc::SYS_set_robust_list,
    libc::SYS_rt_sigprocmask,
    libc::SYS_rt_sigaction,
    libc::SYS_sigaltstack,
    libc::SYS_clock_gettime,
    libc::SYS_clock_nanosleep,
    libc::SYS_nanosleep,
    libc::SYS_getrandom,
    libc::SYS_exit,
    libc::SYS_exit_group,
];

/// The seccomp program of F (x86-64).
///
/// # Errors
/// [`SandboxError::Seccomp`] if `seccompiler` rejects the rules (a bug).
pub fn filter() -> Result<BpfProgram, SandboxError> {
    let sc = |e: seccompiler::BackendError| SandboxError::Seccomp(e.to_string());
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = ALLOWED.iter().map(|&nr| (nr, Vec::new())).collect();
    // mknodat(dirfd, path, mode, dev): only FIFOs, sockets and regular files.
    let mknod = [libc::S_IFIFO, libc::S_IFSOCK, libc::S_IFREG]
        .into_iter()
        .map(|kind| {
            let cond = SeccompCondition::new(2, SeccompCmpArgLen::Dword, SeccompCmpOp::MaskedEq(u64::from(libc::S_IFMT)), u64::from(kind))
                .map_err(sc)?;
            SeccompRule::new(vec![cond]).map_err(sc)
        })
        .collect::<Result<Vec<_>, _>>()?;
    rules.insert(libc::SYS_mknodat, mknod);
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Errno(libc::EPERM as u32),
        SeccompAction::Allow,
        seccompiler::TargetArch::x86_64,
    )
    .map_err(sc)?;
    filter.try_into().map_err(|e: seccompiler::BackendError| sc(e))
}

/// Step 3: installs [`filter`] on every thread of F.
///
/// # Errors
/// [`SandboxError::Seccomp`] when the kernel refuses the filter.
pub fn restrict_syscalls() -> Result<(), SandboxError> {
    let prog = filter()?;
    seccompiler::apply_filter_all_threads(&prog).map_err(|e| SandboxError::Seccomp(e.to_string()))
}
