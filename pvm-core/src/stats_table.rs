//! `--stats`: a VM-exit-style breakdown of every transition kind, printed on stderr after the
//! run.

use std::fmt::Write as _;

use guest_abi::hypercall::Hypercall;
use host_adapter::RunOutcome;
use host_adapter::stats::Counter;

fn row(out: &mut String, name: &str, c: Counter) {
    let _ = writeln!(
        out,
        "  {name:<34} {:>12} {:>14.3} {:>12.3}",
        c.count,
        c.total_ns as f64 / 1e6,
        c.mean_ns() as f64 / 1e3
    );
}

fn header(out: &mut String, title: &str) {
    let _ = writeln!(out, "{title}");
    let _ = writeln!(out, "  {:<34} {:>12} {:>14} {:>12}", "kind", "count", "total ms", "mean us");
}

/// Linux x86-64 syscall names for the table (the most common ones; others print as numbers).
fn syscall_name(nr: u32) -> String {
    let name = match nr {
        0 => "read", 1 => "write", 2 => "open", 3 => "close", 4 => "stat", 5 => "fstat",
        6 => "lstat", 7 => "poll", 8 => "lseek", 9 => "mmap", 10 => "mprotect", 11 => "munmap",
        12 => "brk", 13 => "rt_sigaction", 14 => "rt_sigprocmask", 16 => "ioctl",
        17 => "pread64", 18 => "pwrite64", 19 => "readv", 20 => "writev", 21 => "access",
        22 => "pipe", 25 => "mremap", 28 => "madvise", 32 => "dup", 33 => "dup2",
        39 => "getpid", 56 => "clone", 57 => "fork", 59 => "execve", 60 => "exit", 61 => "wait4",
        62 => "kill", 63 => "uname", 72 => "fcntl", 79 => "getcwd", 80 => "chdir", 89 => "readlink",
        96 => "gettimeofday", 102 => "getuid", 104 => "getgid", 107 => "geteuid", 108 => "getegid",
        110 => "getppid", 158 => "arch_prctl", 186 => "gettid", 202 => "futex",
        217 => "getdents64", 218 => "set_tid_address", 228 => "clock_gettime", 231 => "exit_group",
        257 => "openat", 262 => "newfstatat", 273 => "set_robust_list", 302 => "prlimit64",
        318 => "getrandom", 332 => "statx", 334 => "rseq",
        _ => return format!("#{nr}"),
    };
    format!("{name} ({nr})")
}

/// Prints the table for `outcome` on stderr.
pub fn print(outcome: &RunOutcome, backend: &str) {
    let s = &outcome.stats;
    let mut out = String::new();
    let _ = writeln!(out, "pvm stats ({backend} backend, wall {:.3} ms)", outcome.wall.as_secs_f64() * 1e3);
    if let Some(g) = &s.guest {
        header(&mut out, "guest syscalls (top 10, time in the guest kernel)");
        for &(nr, count, ns) in g.syscalls.iter().take(10) {
            row(&mut out, &syscall_name(nr), Counter { count, total_ns: ns });
        }
        let total: u64 = g.syscalls.iter().map(|x| x.1).sum();
        let _ = writeln!(out, "  {:<34} {:>12}", "all guest syscalls", total);
        header(&mut out, "direct switches (user -> guest kernel -> user, no H)");
        row(&mut out, "direct switches", g.direct_switches);
        for (kind, n) in &g.traps {
            let _ = writeln!(out, "  {:<34} {:>12}", format!("traps: {kind}"), n);
        }
        let _ = writeln!(out, "  {:<34} {:>12}", "guest #PF resolved by guest kernel", g.page_faults_resolved);
        let _ = writeln!(out, "  {:<34} {:>12}", "guest #PF turned into signals", g.page_faults_signalled);
        let _ = writeln!(out, "guest kernel SMP (locks, run queues)");
        let _ = writeln!(out, "  {:<34} {:>12}", "lock waits past spin threshold", g.lock_spins_long);
        let _ = writeln!(out, "  {:<34} {:>12}", "YIELD_TO lock-holder hints", g.lock_yields);
        let _ = writeln!(out, "  {:<34} {:>12}", "threads stolen by idle vCPUs", g.sched_steals);
        let _ = writeln!(out, "  {:<34} {:>12}", "wake-ups of halted vCPUs (IPI)", g.sched_ipi_wakes);
    } else {
        let _ = writeln!(out, "guest syscalls: (the guest kernel kept no statistics)");
    }
    header(&mut out, "shadow faults");
    row(&mut out, "filled", s.shadow.filled);
    row(&mut out, "injected as #PF", s.shadow.injected);
    row(&mut out, "prefaults", s.shadow.prefaults);
    row(&mut out, "flushes", s.shadow.flushes);
    header(&mut out, "hypercalls");
    for (i, c) in s.hypercalls.iter().enumerate() {
        if c.count > 0 {
            let name = Hypercall::from_raw(i as u64 + 1).map_or("?", Hypercall::name);
            row(&mut out, name, *c);
        }
    }
    let y = &s.yields;
    if y.progressed.count + y.timed_out.count > 0 {
        row(&mut out, "yield_to: holder progressed", y.progressed);
        row(&mut out, "yield_to: timed out", y.timed_out);
        let _ = writeln!(out, "  {:<34} {:>12}", "yield_to: holder moved to waiter CPU", y.boosted);
    }
    if !s.exits.is_empty() {
        header(&mut out, "VM exits to H (KVM)");
        for (name, c) in &s.exits {
            row(&mut out, name, *c);
        }
    }
    header(&mut out, "mapper (U process mmap/munmap/mprotect)");
    row(&mut out, "batches", s.shadow.mapper_batches);
    let _ = writeln!(out, "  {:<34} {:>12}", "operations", s.shadow.mapper_ops);
    let _ = writeln!(out, "  {:<34} {:>12}", "pages mapped", s.shadow.pages_mapped);
    let _ = writeln!(out, "memory");
    let _ = writeln!(out, "  {:<34} {:>12}", "host VMAs (peak)", s.shadow.host_vmas_peak);
    let spaces = format!("{} / {} / {}", s.shadow.spaces_created, s.shadow.spaces_reused, s.shadow.spaces_peak);
    let _ = writeln!(out, "  {:<34} {:>12}", "shadow spaces (spawned/reused/peak)", spaces);
    if let Some(g) = &s.guest {
        let _ = writeln!(out, "  {:<34} {:>12}", "guest memory used (peak, KiB)", g.mem_used_peak / 1024);
        let _ = writeln!(out, "  {:<34} {:>12}", "guest processes", g.processes);
    }
    eprint!("{out}");
}
