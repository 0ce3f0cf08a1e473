//! `/proc` as busybox's applets read it (`ps`, `free`, `top`, `pidof`, `nproc`): the kernel
//! materializes it as ordinary read-only files in the in-memory filesystem and refreshes it
//! whenever a process looks up a path under `/proc` (a snapshot per lookup, as cheap as the
//! process table is small). Provides `/proc/self` (a symlink to the caller's pid),
//! `/proc/<pid>/{stat,status,cmdline,comm,exe}`, `/proc/meminfo`, `/proc/cpuinfo`,
//! `/proc/uptime`, `/proc/loadavg`, `/proc/mounts` and `/proc/<pid>/{mounts,mountinfo}`
//! (generated from the VFS mount table). Formats follow proc(5). `/proc` is its own tmpfs
//! instance mounted at boot (`crate::fs::mount_standard`).

use crate::fs::vfs;
use crate::proc::{Process, PROCESSES};
use alloc::vec;
use alloc::collections::BTreeSet;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;
use guest_fs::{FdTable, FsContext};
use spin::Mutex;

/// pids whose directories exist now.
static SHOWN: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());
/// Serializes refreshes.
static REFRESH: Mutex<()> = Mutex::new(());

const AT_FDCWD: i32 = -100;
const O_WRONLY_CREAT_TRUNC: u32 = 0o1 | 0o100 | 0o1000;

/// True when `path` (as the caller passed it, with its working directory `cwd`) may be
/// under `/proc`.
pub fn wants(path: &[u8], cwd_in_proc: bool) -> bool {
    path.starts_with(b"/proc") || (cwd_in_proc && path.first() != Some(&b'/'))
}

fn put(ctx: &FsContext, path: &str, data: &[u8]) {
    let mut fds = FdTable::new();
    if let Ok(fd) = guest_fs::openat(vfs(), ctx, &mut fds, AT_FDCWD, path.as_bytes(), O_WRONLY_CREAT_TRUNC, 0o444) {
        let _ = guest_fs::write(&fds, fd, data);
        let _ = guest_fs::close(&mut fds, fd);
    }
}

/// (Re)points symlink `path` at `target`, leaving it alone when it already does (a new
/// entry would show up again in a `getdents64` walk in progress).
fn link(ctx: &FsContext, target: &[u8], path: &str) {
    let fds = FdTable::new();
    let mut buf = [0u8; 512];
    if let Ok(n) = guest_fs::readlinkat(vfs(), ctx, &fds, AT_FDCWD, path.as_bytes(), &mut buf)
        && &buf[..n] == target
    {
        return;
    }
    let _ = guest_fs::unlinkat(vfs(), ctx, &fds, AT_FDCWD, path.as_bytes(), 0);
    let _ = guest_fs::symlinkat(vfs(), ctx, &fds, target, AT_FDCWD, path.as_bytes());
}

fn remove_pid(ctx: &FsContext, pid: i32) {
    let fds = FdTable::new();
    for f in ["stat", "status", "cmdline", "comm", "exe", "cwd", "mounts", "mountinfo"] {
        let _ = guest_fs::unlinkat(vfs(), ctx, &fds, AT_FDCWD, format!("/proc/{pid}/{f}").as_bytes(), 0);
    }
    for n in SHOWN_FDS.lock().remove(&pid).unwrap_or_default() {
        let _ = guest_fs::unlinkat(vfs(), ctx, &fds, AT_FDCWD, format!("/proc/{pid}/fd/{n}").as_bytes(), 0);
    }
    let _ = guest_fs::unlinkat(vfs(), ctx, &fds, AT_FDCWD, format!("/proc/{pid}/fd").as_bytes(), 0x200);
    let _ = guest_fs::unlinkat(vfs(), ctx, &fds, AT_FDCWD, format!("/proc/{pid}").as_bytes(), 0x200);
}

/// One `/proc/<pid>/stat` line (proc(5) field order; times in 100 Hz ticks).
pub fn stat_line(p: &Process) -> String {
    let comm = String::from_utf8_lossy(&p.comm()).into_owned();
    // The process reading /proc is the one running; others wait here (one vCPU).
    let state = if p.is_zombie() {
        'Z'
    } else if p.pid == READER.load(core::sync::atomic::Ordering::Relaxed) {
        'R'
    } else {
        'S'
    };
    let ticks = |ns: u64| ns / 10_000_000;
    let sys = p.sys_ns.load(Ordering::Relaxed);
    let total = crate::time::uptime_ns().saturating_sub(p.start_ns);
    let (vsz, rss) = p.mm().map_or((0, 0), |m| {
        let m = m.lock();
        (m.vmas.iter().map(|v| v.end - v.start).sum::<u64>(), m.resident)
    });
    format!(
        "{} ({}) {} {} {} {} 0 -1 4194304 0 0 0 0 {} {} 0 0 20 0 1 0 {} {} {} 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n",
        p.pid,
        comm,
        state,
        p.ppid.load(Ordering::Relaxed),
        p.pgid.load(Ordering::Relaxed),
        p.sid.load(Ordering::Relaxed),
        ticks(total.saturating_sub(sys)),
        ticks(sys),
        ticks(p.start_ns),
        vsz,
        rss
    )
}

/// `base` (an absolute directory path, empty for `/`) joined with `path` (absolute or
/// relative), with `.`, `..` and repeated slashes resolved lexically.
pub fn normalize(base: &[u8], path: &[u8]) -> Vec<u8> {
    let mut parts: Vec<&[u8]> = Vec::new();
    let full: Vec<&[u8]> = if path.first() == Some(&b'/') {
        path.split(|&b| b == b'/').collect()
    } else {
        base.split(|&b| b == b'/').chain(path.split(|&b| b == b'/')).collect()
    };
    for part in full {
        match part {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    let mut out = Vec::new();
    for p in &parts {
        out.push(b'/');
        out.extend_from_slice(p);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

/// `path` with every symlink in its last component followed (`/proc/<pid>/exe` names the
/// file, not the link that ran it: `/bin/sh` -> `/bin/busybox`).
pub fn resolve(ctx: &FsContext, path: &[u8]) -> Vec<u8> {
    let fds = FdTable::new();
    let mut cur = path.to_vec();
    for _ in 0..40 {
        let mut buf = vec![0u8; 4096];
        match guest_fs::readlinkat(vfs(), ctx, &fds, AT_FDCWD, &cur, &mut buf) {
            Ok(n) => {
                let target = &buf[..n];
                let dir = match cur.iter().rposition(|&b| b == b'/') {
                    Some(i) => cur[..i].to_vec(),
                    None => Vec::new(),
                };
                cur = normalize(&dir, target);
            }
            Err(_) => break,
        }
    }
    cur
}

/// `/proc/<pid>/fd`: one symlink per open fd to the path it was opened by, or to a name like
/// Linux's for objects without one (`anon_inode:[N]`).
fn refresh_fds(ctx: &FsContext, p: &Process, dir: &str) {
    let fds = FdTable::new();
    let _ = guest_fs::mkdirat(vfs(), ctx, &fds, AT_FDCWD, dir.as_bytes(), 0o500);
    let open: Vec<(i32, Option<Vec<u8>>)> = p.fds.lock().iter().map(|(n, f)| (n, f.path())).collect();
    let mut shown = SHOWN_FDS.lock();
    let before = shown.remove(&p.pid).unwrap_or_default();
    for n in before.iter().filter(|n| !open.iter().any(|(m, _)| m == *n)) {
        let _ = guest_fs::unlinkat(vfs(), ctx, &fds, AT_FDCWD, format!("{dir}/{n}").as_bytes(), 0);
    }
    for (n, path) in &open {
        let target = path.clone().unwrap_or_else(|| format!("anon_inode:[{n}]").into_bytes());
        link(ctx, &target, &format!("{dir}/{n}"));
    }
    shown.insert(p.pid, open.into_iter().map(|(n, _)| n).collect());
}

/// The fd entries made for each pid (so the next refresh removes the closed ones).
static SHOWN_FDS: spin::Mutex<alloc::collections::BTreeMap<i32, Vec<i32>>> =
    spin::Mutex::new(alloc::collections::BTreeMap::new());

/// The pid that made the current lookup (shown running).
static READER: core::sync::atomic::AtomicI32 = core::sync::atomic::AtomicI32::new(0);

/// Regenerates `/proc` for a lookup by process `me`.
pub fn refresh(me: i32) {
    let _g = REFRESH.lock();
    READER.store(me, core::sync::atomic::Ordering::Relaxed);
    let ctx = FsContext::new(vfs());
    let procs: Vec<Arc<Process>> = PROCESSES.lock().values().cloned().collect();
    let live: BTreeSet<i32> = procs.iter().map(|p| p.pid).collect();
    {
        let mut shown = SHOWN.lock();
        for &pid in shown.difference(&live) {
            remove_pid(&ctx, pid);
        }
        *shown = live;
    }
    let fds = FdTable::new();
    for p in &procs {
        let dir = format!("/proc/{}", p.pid);
        let _ = guest_fs::mkdirat(vfs(), &ctx, &fds, AT_FDCWD, dir.as_bytes(), 0o555);
        put(&ctx, &format!("{dir}/stat"), stat_line(p).as_bytes());
        let comm = p.comm();
        let mut c = comm.clone();
        c.push(b'\n');
        put(&ctx, &format!("{dir}/comm"), &c);
        put(&ctx, &format!("{dir}/cmdline"), &p.cmdline.lock());
        let (vsz, rss) = p.mm().map_or((0, 0), |m| {
            let m = m.lock();
            (m.vmas.iter().map(|v| v.end - v.start).sum::<u64>() / 1024, m.resident * 4)
        });
        let status = format!(
            "Name:\t{}\nState:\t{}\nTgid:\t{}\nPid:\t{}\nPPid:\t{}\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nVmSize:\t{} kB\nVmRSS:\t{} kB\nThreads:\t1\n",
            String::from_utf8_lossy(&comm),
            if p.is_zombie() {
                "Z (zombie)"
            } else if p.pid == me {
                "R (running)"
            } else {
                "S (sleeping)"
            },
            p.pid,
            p.pid,
            p.ppid.load(Ordering::Relaxed),
            vsz,
            rss
        );
        put(&ctx, &format!("{dir}/status"), status.as_bytes());
        let exe = p.exe.lock().clone();
        link(&ctx, &resolve(&ctx, &exe), &format!("{dir}/exe"));
        let pctx = p.fs.lock().clone();
        let mut buf = vec![0u8; 4096];
        if let Ok(n) = guest_fs::getcwd(&pctx, &mut buf) {
            link(&ctx, &buf[..n.saturating_sub(1)], &format!("{dir}/cwd"));
        }
        refresh_fds(&ctx, p, &format!("{dir}/fd"));
    }
    link(&ctx, format!("{me}").as_bytes(), "/proc/self");
    let (used, _, total) = crate::mm::frame::usage();
    let kb = |frames: usize| frames as u64 * 4;
    let meminfo = format!(
        "MemTotal:       {:8} kB\nMemFree:        {:8} kB\nMemAvailable:   {:8} kB\nBuffers:               0 kB\nCached:                0 kB\nSwapCached:            0 kB\nShmem:                 0 kB\nSReclaimable:          0 kB\nSwapTotal:             0 kB\nSwapFree:              0 kB\n",
        kb(total),
        kb(total - used),
        kb(total - used)
    );
    put(&ctx, "/proc/meminfo", meminfo.as_bytes());
    let mut cpuinfo = String::new();
    for i in 0..crate::boot::vcpus() {
        cpuinfo.push_str(&format!("processor\t: {i}\nvendor_id\t: pvm\nmodel name\t: pvm virtual CPU\nflags\t\t: fpu sse sse2 avx avx2\n\n"));
    }
    put(&ctx, "/proc/cpuinfo", cpuinfo.as_bytes());
    let up = crate::time::uptime_ns();
    put(&ctx, "/proc/uptime", format!("{}.{:02} 0.00\n", up / 1_000_000_000, (up / 10_000_000) % 100).as_bytes());
    put(&ctx, "/proc/loadavg", format!("0.00 0.00 0.00 1/{} {}\n", procs.len(), procs.iter().map(|p| p.pid).max().unwrap_or(1)).as_bytes());
    let mounts = vfs().mounts();
    let table = mounts.proc_mounts();
    let info = mounts.mountinfo();
    put(&ctx, "/proc/mounts", &table);
    for p in &procs {
        put(&ctx, &format!("/proc/{}/mounts", p.pid), &table);
        put(&ctx, &format!("/proc/{}/mountinfo", p.pid), &info);
    }
}
