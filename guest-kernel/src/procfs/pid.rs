//! The per-process files of `/proc/<pid>` and `/proc/<pid>/task/<tid>`, formatted as Linux's
//! fs/proc/array.c, task_mmu.c and base.c do (proc(5)): `stat`, `statm`, `status`, `maps`,
//! `smaps_rollup`, `limits`, `cgroup`. Pure formatting of a snapshot of kernel state.

use crate::mm::vma::VmaKind;
use crate::proc::{Process, ThreadShared, NOT_RUNNING};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;
use core::sync::atomic::Ordering;

/// What the files need from a process's address space (sizes in bytes unless named pages).
#[derive(Clone, Copy, Default)]
pub struct MemView {
    /// Sum of the VMA lengths (`VmSize`).
    pub size: u64,
    /// Resident pages.
    pub resident: u64,
    /// Executable, non-writable VMAs (`VmExe`, statm text).
    pub exe: u64,
    /// Writable private VMAs plus the stack (`VmData`, statm data).
    pub data: u64,
    /// The stack VMA (`VmStk`).
    pub stack: u64,
    /// Start of the `brk` heap.
    pub brk_start: u64,
}

/// The address-space view of `p` (zero for a zombie).
pub fn mem_view(p: &Process) -> MemView {
    let Some(mm) = p.mm() else { return MemView::default() };
    let m = mm.lock();
    let mut v = MemView { resident: m.resident, brk_start: m.brk_start, ..MemView::default() };
    for a in m.vmas.iter() {
        let len = a.end - a.start;
        v.size += len;
        match a.kind {
            VmaKind::Stack => v.stack += len,
            VmaKind::Vvar | VmaKind::Vdso => {}
            _ if a.prot & 2 != 0 => v.data += len,
            _ if a.prot & 4 != 0 => v.exe += len,
            _ => {}
        }
    }
    v.data += v.stack;
    v
}

/// Linux's `task_state_array` letter and word for `t` of `p`.
fn state(p: &Process, t: Option<&ThreadShared>, reader_tid: i32) -> (char, &'static str) {
    if p.is_zombie() {
        return ('Z', "zombie");
    }
    let running = t.map_or_else(
        || p.threads.lock().iter().any(|t| t.running_on.load(Ordering::Relaxed) != NOT_RUNNING || t.tid == reader_tid),
        |t| t.running_on.load(Ordering::Relaxed) != NOT_RUNNING || t.tid == reader_tid,
    );
    if running { ('R', "running") } else { ('S', "sleeping") }
}

/// ns to clock ticks (`USER_HZ` = 100, `AT_CLKTCK`).
fn ticks(ns: u64) -> u64 {
    ns / 10_000_000
}

/// One `stat` line for the process (`t` = `None`) or one of its threads.
pub fn stat(p: &Process, t: Option<&ThreadShared>, reader_tid: i32) -> String {
    let comm = String::from_utf8_lossy(&p.comm()).into_owned();
    let (st, _) = state(p, t, reader_tid);
    let (user, sys) = crate::cpustat::process_times(p);
    let m = mem_view(p);
    let nthreads = p.threads.lock().len().max(1);
    let rss_lim = p.rlimits.lock()[5].0;
    let cpu = t.map_or(0, |t| t.running_on.load(Ordering::Relaxed));
    let cpu = if cpu == NOT_RUNNING { 0 } else { cpu };
    let id = t.map_or(p.pid, |t| t.tid);
    // Fields 1-52 of proc(5) "/proc/pid/stat".
    format!(
        "{id} ({comm}) {st} {ppid} {pgid} {sid} 0 -1 4194304 0 0 0 0 {ut} {stt} 0 0 20 0 {nthreads} 0 {start} {vsz} {rss} {rss_lim} 0 0 0 0 0 0 0 0 0 0 0 0 {exit_signal} {cpu} 0 0 0 0 0 0 0 {brk} 0 0 0 0 0\n",
        ppid = p.ppid.load(Ordering::Relaxed),
        pgid = p.pgid.load(Ordering::Relaxed),
        sid = p.sid.load(Ordering::Relaxed),
        ut = ticks(user),
        stt = ticks(sys),
        start = ticks(p.start_ns),
        vsz = m.size,
        rss = m.resident,
        exit_signal = p.exit_signal.load(Ordering::Relaxed),
        brk = m.brk_start,
    )
}

/// `statm`: size resident shared text lib data dt, in pages.
pub fn statm(p: &Process) -> String {
    let m = mem_view(p);
    format!("{} {} 0 {} 0 {} 0\n", m.size / 4096, m.resident, m.exe / 4096, m.data / 4096)
}

/// `status` with Linux 6.x's fields in its order (fs/proc/array.c `proc_pid_status`).
pub fn status(p: &Process, t: Option<&ThreadShared>, reader_tid: i32) -> String {
    let (st, word) = state(p, t, reader_tid);
    let m = mem_view(p);
    let (uid, gid, umask) = {
        let f = p.fs.lock();
        (f.uid, f.gid, f.umask)
    };
    let nthreads = p.threads.lock().len().max(1);
    let fdsize = p.fds.lock().len().next_power_of_two().max(64);
    let acts = p.sigactions.lock();
    let (mut ign, mut cgt) = (0u64, 0u64);
    for (i, a) in acts.iter().enumerate() {
        match a.handler {
            0 => {}
            1 => ign |= 1 << i,
            _ => cgt |= 1 << i,
        }
    }
    drop(acts);
    let shd = p.pending.load(Ordering::Relaxed);
    let pnd = t.map_or(0, |t| t.pending.load(Ordering::Relaxed));
    let id = t.map_or(p.pid, |t| t.tid);
    let ppid = p.ppid.load(Ordering::Relaxed);
    let pgid = p.pgid.load(Ordering::Relaxed);
    let sid = p.sid.load(Ordering::Relaxed);
    let kb = |b: u64| b / 1024;
    let rss = m.resident * 4;
    let vcpus = crate::boot::vcpus();
    let cpus_mask = if vcpus >= 64 { u64::MAX } else { (1u64 << vcpus) - 1 };
    let sigq_max = p.rlimits.lock()[11].0;
    let mut s = String::new();
    let _ = write!(
        s,
        "Name:\t{name}\nUmask:\t{umask:04o}\nState:\t{st} ({word})\nTgid:\t{tgid}\nNgid:\t0\nPid:\t{id}\nPPid:\t{ppid}\nTracerPid:\t0\n\
         Uid:\t{uid}\t{uid}\t{uid}\t{uid}\nGid:\t{gid}\t{gid}\t{gid}\t{gid}\nFDSize:\t{fdsize}\nGroups:\t \n\
         NStgid:\t{tgid}\nNSpid:\t{id}\nNSpgid:\t{pgid}\nNSsid:\t{sid}\nKthread:\t0\n",
        name = String::from_utf8_lossy(&p.comm()),
        tgid = p.pid,
    );
    if !p.is_zombie() {
        let _ = write!(
            s,
            "VmPeak:\t{size:8} kB\nVmSize:\t{size:8} kB\nVmLck:\t{z:8} kB\nVmPin:\t{z:8} kB\nVmHWM:\t{rss:8} kB\nVmRSS:\t{rss:8} kB\n\
             RssAnon:\t{rss:8} kB\nRssFile:\t{z:8} kB\nRssShmem:\t{z:8} kB\nVmData:\t{data:8} kB\nVmStk:\t{stk:8} kB\nVmExe:\t{exe:8} kB\n\
             VmLib:\t{z:8} kB\nVmPTE:\t{pte:8} kB\nVmSwap:\t{z:8} kB\nHugetlbPages:\t{z:8} kB\n",
            size = kb(m.size),
            z = 0,
            data = kb(m.data),
            stk = kb(m.stack),
            exe = kb(m.exe),
            pte = (m.resident / 512 + 1) * 4,
        );
    }
    let _ = write!(
        s,
        "CoreDumping:\t0\nTHP_enabled:\t1\nuntag_mask:\t0xffffffffffffffff\nThreads:\t{nthreads}\nSigQ:\t0/{sigq_max}\n\
         SigPnd:\t{pnd:016x}\nShdPnd:\t{shd:016x}\nSigBlk:\t{blk:016x}\nSigIgn:\t{ign:016x}\nSigCgt:\t{cgt:016x}\n\
         CapInh:\t0000000000000000\nCapPrm:\t{cap}\nCapEff:\t{cap}\nCapBnd:\t{cap}\nCapAmb:\t0000000000000000\n\
         NoNewPrivs:\t0\nSeccomp:\t0\nSeccomp_filters:\t0\nSpeculation_Store_Bypass:\tthread vulnerable\n\
         SpeculationIndirectBranch:\tconditional enabled\nCpus_allowed:\t{cpus_mask:x}\nCpus_allowed_list:\t0-{last}\n\
         Mems_allowed:\t1\nMems_allowed_list:\t0\nvoluntary_ctxt_switches:\t0\nnonvoluntary_ctxt_switches:\t0\n",
        blk = 0,
        // Root in the guest has every capability (as in a privileged container).
        cap = if uid == 0 { "000001ffffffffff" } else { "0000000000000000" },
        last = vcpus.saturating_sub(1),
    );
    s
}

/// `maps`: one line per VMA (Linux's `show_map_vma`: name column padded to 73).
pub fn maps(p: &Process) -> String {
    let mut s = String::new();
    let Some(mm) = p.mm() else { return s };
    let m = mm.lock();
    let heap = (m.brk_start, crate::mm::page_up(m.brk));
    for v in m.vmas.iter() {
        let perms = [
            if v.prot & 1 != 0 { 'r' } else { '-' },
            if v.prot & 2 != 0 { 'w' } else { '-' },
            if v.prot & 4 != 0 { 'x' } else { '-' },
            'p',
        ];
        let name = match v.kind {
            VmaKind::Stack => "[stack]",
            VmaKind::Heap if v.start >= heap.0 && v.end <= heap.1.max(v.end) => "[heap]",
            VmaKind::Vvar => "[vvar]",
            VmaKind::Vdso => "[vdso]",
            _ => "",
        };
        let mut line = format!("{:08x}-{:08x} {}{}{}{} 00000000 00:00 0", v.start, v.end, perms[0], perms[1], perms[2], perms[3]);
        if !name.is_empty() {
            while line.len() < 73 {
                line.push(' ');
            }
            line.push_str(name);
        }
        line.push('\n');
        s.push_str(&line);
    }
    s
}

/// `smaps_rollup`: the sums of `smaps` over every VMA (fs/proc/task_mmu.c `show_smaps_rollup`).
pub fn smaps_rollup(p: &Process) -> String {
    let Some(mm) = p.mm() else { return String::new() };
    let (lo, hi) = {
        let m = mm.lock();
        let lo = m.vmas.iter().next().map_or(0, |v| v.start);
        let hi = m.vmas.iter().last().map_or(0, |v| v.end);
        (lo, hi)
    };
    let rss = mem_view(p).resident * 4;
    let mut s = format!("{lo:08x}-{hi:08x} ---p 00000000 00:00 0");
    while s.len() < 73 {
        s.push(' ');
    }
    s.push_str("[rollup]\n");
    let rows: [(&str, u64); 22] = [
        ("Rss", rss), ("Pss", rss), ("Pss_Dirty", rss), ("Pss_Anon", rss), ("Pss_File", 0), ("Pss_Shmem", 0),
        ("Shared_Clean", 0), ("Shared_Dirty", 0), ("Private_Clean", 0), ("Private_Dirty", rss), ("Referenced", rss),
        ("Anonymous", rss), ("KSM", 0), ("LazyFree", 0), ("AnonHugePages", 0), ("ShmemPmdMapped", 0),
        ("FilePmdMapped", 0), ("Shared_Hugetlb", 0), ("Private_Hugetlb", 0), ("Swap", 0), ("SwapPss", 0), ("Locked", 0),
    ];
    for (k, v) in rows {
        pad(&mut s, &format!("{k}:"), 16);
        let _ = writeln!(s, "{v:>8} kB");
    }
    s
}

/// Names and units of the `limits` rows, by `RLIMIT_*` index (fs/proc/base.c `lnames`).
const LIMITS: [(&str, &str); 16] = [
    ("Max cpu time", "seconds"), ("Max file size", "bytes"), ("Max data size", "bytes"), ("Max stack size", "bytes"),
    ("Max core file size", "bytes"), ("Max resident set", "bytes"), ("Max processes", "processes"),
    ("Max open files", "files"), ("Max locked memory", "bytes"), ("Max address space", "bytes"),
    ("Max file locks", "locks"), ("Max pending signals", "signals"), ("Max msgqueue size", "bytes"),
    ("Max nice priority", ""), ("Max realtime priority", ""), ("Max realtime timeout", "us"),
];

/// Appends `text` left-aligned in `width` columns (ASCII). `core::fmt`'s string padding
/// counts chars with SSE, which software KVM cannot emulate in ring 0 (docs/ARCHITECTURE.md).
pub fn pad(s: &mut String, text: &str, width: usize) {
    s.push_str(text);
    for _ in text.len()..width {
        s.push(' ');
    }
}

/// `limits` (fs/proc/base.c `proc_pid_limits`).
pub fn limits(p: &Process) -> String {
    let l = *p.rlimits.lock();
    let mut s = String::new();
    for (text, w) in [("Limit", 26), ("Soft Limit", 21), ("Hard Limit", 21), ("Units", 10)] {
        pad(&mut s, text, w);
    }
    s.push('\n');
    let show = |v: u64| if v == u64::MAX { String::from("unlimited") } else { format!("{v}") };
    for (i, (name, unit)) in LIMITS.iter().enumerate() {
        pad(&mut s, name, 26);
        pad(&mut s, &show(l[i].0), 21);
        pad(&mut s, &show(l[i].1), 21);
        if !unit.is_empty() {
            pad(&mut s, unit, 10);
        }
        s.push('\n');
    }
    s
}

/// The namespaces of `/proc/<pid>/ns` with the inode numbers of Linux's initial ones
/// (include/linux/proc_ns.h `PROC_*_INIT_INO`; mnt and net, dynamic there, get fixed ones).
pub const NAMESPACES: [(&str, u64); 10] = [
    ("cgroup", 0xEFFF_FFFB), ("ipc", 0xEFFF_FFFF), ("mnt", 0xF000_0000), ("net", 0xF000_0008), ("pid", 0xEFFF_FFFC),
    ("pid_for_children", 0xEFFF_FFFC), ("time", 0xEFFF_FFFA), ("time_for_children", 0xEFFF_FFFA),
    ("user", 0xEFFF_FFFD), ("uts", 0xEFFF_FFFE),
];

/// The threads' ids of `p`, in order.
pub fn tids(p: &Process) -> Vec<i32> {
    let mut v: Vec<i32> = p.threads.lock().iter().map(|t| t.tid).collect();
    v.sort_unstable();
    v
}
