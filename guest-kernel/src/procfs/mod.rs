//! `/proc` and `/sys` as tools read them (`ps`, `top`, `free`, `vmstat`, `nproc`, `pidof`,
//! `ldd`'s loader): the kernel materializes them as ordinary read-only files in their own
//! in-memory filesystems and regenerates what a lookup needs whenever a process looks up a
//! path under `/proc` (`sys/fs.rs` calls [`refresh_for`]): a lookup of `/proc/<pid>/...`
//! (or `self`, `thread-self`) rewrites that process's files, any other lookup the
//! system-wide files and the list of pid directories. So every open sees the state of that
//! moment, as Linux's files generated at read time do, but a file kept open and read again
//! keeps its old contents (departure: Linux regenerates at each read from offset 0).
//! Formats follow proc(5) and Linux's fs/proc (see [`pid`] and [`global`]); `/proc` is a
//! tmpfs instance mounted at boot (`crate::fs::mount_standard`), `/sys` a small one made by
//! [`mount_sys`] with the CPU lists.
//!
//! Trust: the contents are formatted from kernel state only; a guest process may write the
//! files if it is root (tmpfs permissions), which changes what it and its peers read until
//! the next refresh, nothing the kernel relies on.

pub mod global;
pub mod pid;

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

/// Files of a pid directory (removed with it).
const PID_FILES: [&str; 17] = [
    "stat", "statm", "status", "cmdline", "comm", "exe", "cwd", "root", "mounts", "mountinfo", "maps", "smaps_rollup",
    "limits", "cgroup", "oom_score_adj", "loginuid", "environ",
];

fn remove_pid(ctx: &FsContext, pid: i32) {
    let fds = FdTable::new();
    for f in PID_FILES {
        let _ = guest_fs::unlinkat(vfs(), ctx, &fds, AT_FDCWD, format!("/proc/{pid}/{f}").as_bytes(), 0);
    }
    for (name, _) in pid::NAMESPACES {
        let _ = guest_fs::unlinkat(vfs(), ctx, &fds, AT_FDCWD, format!("/proc/{pid}/ns/{name}").as_bytes(), 0);
    }
    let task = format!("/proc/{pid}/task");
    for tid in SHOWN_TASKS.lock().remove(&pid).unwrap_or_default() {
        remove_task(ctx, &task, tid);
    }
    for n in SHOWN_FDINFO.lock().remove(&pid).unwrap_or_default() {
        let _ = guest_fs::unlinkat(vfs(), ctx, &fds, AT_FDCWD, format!("/proc/{pid}/fdinfo/{n}").as_bytes(), 0);
    }
    for d in ["ns", "task", "fdinfo"] {
        let _ = guest_fs::unlinkat(vfs(), ctx, &fds, AT_FDCWD, format!("/proc/{pid}/{d}").as_bytes(), 0x200);
    }
    for n in SHOWN_FDS.lock().remove(&pid).unwrap_or_default() {
        let _ = guest_fs::unlinkat(vfs(), ctx, &fds, AT_FDCWD, format!("/proc/{pid}/fd/{n}").as_bytes(), 0);
    }
    let _ = guest_fs::unlinkat(vfs(), ctx, &fds, AT_FDCWD, format!("/proc/{pid}/fd").as_bytes(), 0x200);
    let _ = guest_fs::unlinkat(vfs(), ctx, &fds, AT_FDCWD, format!("/proc/{pid}").as_bytes(), 0x200);
}

/// One `/proc/<pid>/stat` line (see [`pid::stat`]).
pub fn stat_line(p: &Process) -> String {
    pid::stat(p, None, READER.load(Ordering::Relaxed))
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

/// Regenerates all of `/proc` for a lookup by process `me`.
pub fn refresh(me: i32) {
    refresh_for(me, me, b"/proc");
}

/// Which part of `/proc` a lookup of absolute path `path` needs.
enum Want {
    /// One process's directory.
    Pid(i32),
    /// The system-wide files and the pid directories.
    Global,
}

fn want(me: i32, path: &[u8]) -> Want {
    let rest = match path.strip_prefix(b"/proc/") {
        Some(r) => r,
        None => return Want::Global,
    };
    let first = rest.split(|&b| b == b'/').next().unwrap_or(&[]);
    match first {
        b"self" | b"thread-self" => Want::Pid(me),
        d if !d.is_empty() && d.iter().all(u8::is_ascii_digit) => {
            core::str::from_utf8(d).ok().and_then(|d| d.parse().ok()).map_or(Want::Global, Want::Pid)
        }
        _ => Want::Global,
    }
}

/// Regenerates what a lookup of `path` (absolute, lexically normalized) by thread `tid` of
/// process `me` needs (see the module comment).
pub fn refresh_for(me: i32, tid: i32, path: &[u8]) {
    let _g = REFRESH.lock();
    READER.store(tid, Ordering::Relaxed);
    let ctx = FsContext::new(vfs());
    let procs: Vec<Arc<Process>> = PROCESSES.read().values().cloned().collect();
    let live: BTreeSet<i32> = procs.iter().map(|p| p.pid).collect();
    let fds = FdTable::new();
    {
        let mut shown = SHOWN.lock();
        for &pid in shown.difference(&live) {
            remove_pid(&ctx, pid);
        }
        for &pid in live.difference(&shown) {
            let _ = guest_fs::mkdirat(vfs(), &ctx, &fds, AT_FDCWD, format!("/proc/{pid}").as_bytes(), 0o555);
        }
        *shown = live;
    }
    link(&ctx, format!("{me}").as_bytes(), "/proc/self");
    link(&ctx, format!("{me}/task/{tid}").as_bytes(), "/proc/thread-self");
    match want(me, path) {
        Want::Pid(pid) => {
            if let Some(p) = procs.iter().find(|p| p.pid == pid) {
                refresh_pid(&ctx, p, tid);
            }
        }
        Want::Global => refresh_global(&ctx, &procs),
    }
}

/// Writes the files of `/proc/<pid>` and its `task/<tid>` directories.
fn refresh_pid(ctx: &FsContext, p: &Process, reader: i32) {
    let fds = FdTable::new();
    let dir = format!("/proc/{}", p.pid);
    let _ = guest_fs::mkdirat(vfs(), ctx, &fds, AT_FDCWD, dir.as_bytes(), 0o555);
    put(ctx, &format!("{dir}/stat"), pid::stat(p, None, reader).as_bytes());
    put(ctx, &format!("{dir}/statm"), pid::statm(p).as_bytes());
    put(ctx, &format!("{dir}/status"), pid::status(p, None, reader).as_bytes());
    let mut comm = p.comm();
    comm.push(b'\n');
    put(ctx, &format!("{dir}/comm"), &comm);
    put(ctx, &format!("{dir}/cmdline"), &p.cmdline.lock());
    put(ctx, &format!("{dir}/environ"), &p.environ.lock());
    put(ctx, &format!("{dir}/maps"), pid::maps(p).as_bytes());
    put(ctx, &format!("{dir}/smaps_rollup"), pid::smaps_rollup(p).as_bytes());
    put(ctx, &format!("{dir}/limits"), pid::limits(p).as_bytes());
    put(ctx, &format!("{dir}/cgroup"), b"0::/\n");
    put(ctx, &format!("{dir}/oom_score_adj"), b"0\n");
    put(ctx, &format!("{dir}/loginuid"), b"4294967295\n");
    let exe = p.exe.lock().clone();
    link(ctx, &resolve(ctx, &exe), &format!("{dir}/exe"));
    let pctx = p.fs.lock().clone();
    let mut buf = vec![0u8; 4096];
    if let Ok(n) = guest_fs::getcwd(&pctx, &mut buf) {
        link(ctx, &buf[..n.saturating_sub(1)], &format!("{dir}/cwd"));
    }
    link(ctx, b"/", &format!("{dir}/root"));
    refresh_fds(ctx, p, &format!("{dir}/fd"));
    refresh_fdinfo(ctx, p, &format!("{dir}/fdinfo"));
    let _ = guest_fs::mkdirat(vfs(), ctx, &fds, AT_FDCWD, format!("{dir}/ns").as_bytes(), 0o511);
    for (name, ino) in pid::NAMESPACES {
        let kind = name.split('_').next().unwrap_or(name);
        link(ctx, format!("{kind}:[{ino}]").as_bytes(), &format!("{dir}/ns/{name}"));
    }
    let mounts = vfs().mounts();
    put(ctx, &format!("{dir}/mounts"), &mounts.proc_mounts());
    put(ctx, &format!("{dir}/mountinfo"), &mounts.mountinfo());
    // Threads: task/<tid>/{stat,status,comm}; the ones gone since the last refresh removed.
    let task = format!("{dir}/task");
    let _ = guest_fs::mkdirat(vfs(), ctx, &fds, AT_FDCWD, task.as_bytes(), 0o555);
    let threads: Vec<Arc<crate::proc::ThreadShared>> = p.threads.lock().clone();
    let now: Vec<i32> = threads.iter().map(|t| t.tid).collect();
    let before = SHOWN_TASKS.lock().insert(p.pid, now.clone()).unwrap_or_default();
    for gone in before.iter().filter(|t| !now.contains(t)) {
        remove_task(ctx, &task, *gone);
    }
    for t in &threads {
        let td = format!("{task}/{}", t.tid);
        let _ = guest_fs::mkdirat(vfs(), ctx, &fds, AT_FDCWD, td.as_bytes(), 0o555);
        put(ctx, &format!("{td}/stat"), pid::stat(p, Some(t), reader).as_bytes());
        put(ctx, &format!("{td}/status"), pid::status(p, Some(t), reader).as_bytes());
        put(ctx, &format!("{td}/comm"), &comm);
        put(ctx, &format!("{td}/cmdline"), &p.cmdline.lock());
    }
}

/// Files of a task directory (removed with it).
const TASK_FILES: [&str; 4] = ["stat", "status", "comm", "cmdline"];

fn remove_task(ctx: &FsContext, task: &str, tid: i32) {
    let fds = FdTable::new();
    for f in TASK_FILES {
        let _ = guest_fs::unlinkat(vfs(), ctx, &fds, AT_FDCWD, format!("{task}/{tid}/{f}").as_bytes(), 0);
    }
    let _ = guest_fs::unlinkat(vfs(), ctx, &fds, AT_FDCWD, format!("{task}/{tid}").as_bytes(), 0x200);
}

/// `/proc/<pid>/fdinfo/<n>`: `pos`, `flags` (octal, as Linux), `mnt_id`, `ino`.
fn refresh_fdinfo(ctx: &FsContext, p: &Process, dir: &str) {
    let fds = FdTable::new();
    let _ = guest_fs::mkdirat(vfs(), ctx, &fds, AT_FDCWD, dir.as_bytes(), 0o500);
    let open: Vec<i32> = p.fds.lock().iter().map(|(n, _)| n).collect();
    let before = SHOWN_FDINFO.lock().insert(p.pid, open.clone()).unwrap_or_default();
    for n in before.iter().filter(|n| !open.contains(n)) {
        let _ = guest_fs::unlinkat(vfs(), ctx, &fds, AT_FDCWD, format!("{dir}/{n}").as_bytes(), 0);
    }
    for n in open {
        let (pos, flags) = {
            let mut t = p.fds.lock();
            // SEEK_CUR 0 (ESPIPE for pipes: 0) and F_GETFL.
            (guest_fs::lseek(&t, n, 0, 1).unwrap_or(0), guest_fs::fcntl(&mut t, n, 3, 0).unwrap_or(0))
        };
        put(ctx, &format!("{dir}/{n}"), format!("pos:\t{pos}\nflags:\t0{flags:o}\nmnt_id:\t0\nino:\t0\n").as_bytes());
    }
}

/// The task and fdinfo entries made per pid (so later refreshes remove the stale ones).
static SHOWN_TASKS: spin::Mutex<alloc::collections::BTreeMap<i32, Vec<i32>>> = spin::Mutex::new(alloc::collections::BTreeMap::new());
static SHOWN_FDINFO: spin::Mutex<alloc::collections::BTreeMap<i32, Vec<i32>>> = spin::Mutex::new(alloc::collections::BTreeMap::new());

/// Writes the system-wide files.
fn refresh_global(ctx: &FsContext, procs: &[Arc<Process>]) {
    put(ctx, "/proc/stat", global::stat(procs).as_bytes());
    put(ctx, "/proc/meminfo", global::meminfo().as_bytes());
    put(ctx, "/proc/cpuinfo", global::cpuinfo().as_bytes());
    put(ctx, "/proc/uptime", global::uptime().as_bytes());
    put(ctx, "/proc/loadavg", global::loadavg(procs).as_bytes());
    put(ctx, "/proc/version", global::version().as_bytes());
    put(ctx, "/proc/vmstat", global::vmstat().as_bytes());
    put(ctx, "/proc/filesystems", global::FILESYSTEMS.as_bytes());
    let fds = FdTable::new();
    for d in ["/proc/sys", "/proc/sys/kernel", "/proc/sys/kernel/random", "/proc/sys/fs", "/proc/sys/vm"] {
        let _ = guest_fs::mkdirat(vfs(), ctx, &fds, AT_FDCWD, d.as_bytes(), 0o555);
    }
    for (path, text) in global::sysctl() {
        put(ctx, &format!("/proc/sys/{path}"), text.as_bytes());
    }
    put(ctx, "/proc/mounts", &vfs().mounts().proc_mounts());
}

/// Boot: mounts a small tmpfs on `/sys` (created on a writable root) with the CPU lists
/// `nproc`, `lscpu` and the C libraries read (`/sys/devices/system/cpu/{online,possible,
/// present}`; fixed for the VM's life). Failure is logged, not fatal.
pub fn mount_sys() {
    let ctx = FsContext::new(vfs());
    let fds = FdTable::new();
    let _ = guest_fs::mkdirat(vfs(), &ctx, &fds, AT_FDCWD, b"/sys", 0o555);
    let root = vfs().new_tmpfs(1 << 20, 0o555);
    if let Err(e) = vfs().mount(b"/sys", root, "sysfs", "sysfs", false) {
        crate::klog!(crate::log::WARN, "/sys: {}", e.name().unwrap_or("error"));
        return;
    }
    for d in ["/sys/devices", "/sys/devices/system", "/sys/devices/system/cpu", "/sys/fs", "/sys/fs/cgroup"] {
        let _ = guest_fs::mkdirat(vfs(), &ctx, &fds, AT_FDCWD, d.as_bytes(), 0o755);
    }
    let list = global::cpu_list();
    for f in ["online", "possible", "present"] {
        put(&ctx, &format!("/sys/devices/system/cpu/{f}"), list.as_bytes());
    }
    for v in 0..crate::boot::vcpus() {
        let _ = guest_fs::mkdirat(vfs(), &ctx, &fds, AT_FDCWD, format!("/sys/devices/system/cpu/cpu{v}").as_bytes(), 0o755);
        put(&ctx, &format!("/sys/devices/system/cpu/cpu{v}/online"), b"1\n");
    }
}
