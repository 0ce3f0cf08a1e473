//! Host CPU affinity of single threads: H places each vCPU's threads (its own, K's and U's)
//! on one host CPU (`docs/ARCHITECTURE.md`, "Placement"). `sched_setaffinity(2)` takes any
//! tid of a process H may signal (its children), so H sets it from outside; the sandboxes
//! have no syscall to change it back (their seccomp filters allow none).

/// The CPUs the calling thread may run on (`sched_getaffinity(2)`), ascending; empty if the
/// call fails.
pub fn allowed_cpus() -> Vec<usize> {
    let set = crate::spawn::current_affinity();
    // SAFETY: CPU_ISSET reads `set` only, for indices below CPU_SETSIZE.
    (0..libc::CPU_SETSIZE as usize).filter(|&c| unsafe { libc::CPU_ISSET(c, &set) }).collect()
}

/// Restricts thread `tid` (0: the calling thread) to the host CPUs in `cpus`.
///
/// Errors: the OS error of `sched_setaffinity` (`ESRCH` when the thread is gone, `EINVAL`
/// when no CPU of `cpus` is allowed by the thread's cpuset).
pub fn set_thread_cpus(tid: i32, cpus: &[usize]) -> std::io::Result<()> {
    // SAFETY: zeroed cpu_set_t is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &c in cpus.iter().filter(|&&c| c < libc::CPU_SETSIZE as usize) {
        // SAFETY: `c` is below CPU_SETSIZE; CPU_SET writes into `set` only.
        unsafe { libc::CPU_SET(c, &mut set) };
    }
    // SAFETY: plain syscall; `set` is valid for its size.
    if unsafe { libc::sched_setaffinity(tid, size_of::<libc::cpu_set_t>(), &set) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
