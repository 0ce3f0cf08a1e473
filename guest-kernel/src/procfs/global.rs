//! The system-wide files of `/proc` and `/sys`, formatted as Linux's (proc(5), sysfs ABI
//! docs): `stat`, `uptime`, `loadavg`, `meminfo`, `cpuinfo`, `version`, `filesystems`,
//! `sys/kernel/*`, and `/sys/devices/system/cpu/{online,possible,present}`.

use crate::proc::Process;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use core::fmt::Write;
use core::sync::atomic::Ordering;

/// `uname -r` of the guest kernel (also `sys/kernel/osrelease`); Linux-like so that C
/// libraries and tools that parse it accept it.
pub const OSRELEASE: &str = "6.1.0-pvm";

/// ns to `USER_HZ` (100) ticks.
fn ticks(ns: u64) -> u64 {
    ns / 10_000_000
}

/// `/proc/stat`: per-vCPU times from `crate::cpustat`, boot time, process counts.
pub fn stat(procs: &[Arc<Process>]) -> String {
    let n = crate::boot::vcpus();
    let (mut u, mut sy, mut id) = (0, 0, 0);
    let mut per = String::new();
    for v in 0..n {
        let (a, b, c) = crate::cpustat::times(v);
        u += a;
        sy += b;
        id += c;
        let _ = writeln!(per, "cpu{v} {} 0 {} {} 0 0 0 0 0 0", ticks(a), ticks(b), ticks(c));
    }
    let btime = (crate::time::realtime_ns().saturating_sub(crate::time::uptime_ns())) / 1_000_000_000;
    let running = procs.iter().filter(|p| !p.is_zombie() && p.threads.lock().iter().any(|t| t.running_on.load(Ordering::Relaxed) != crate::proc::NOT_RUNNING)).count().max(1);
    format!(
        "cpu  {} 0 {} {} 0 0 0 0 0 0\n{per}intr 0\nctxt {}\nbtime {btime}\nprocesses {}\nprocs_running {running}\nprocs_blocked 0\nsoftirq 0 0 0 0 0 0 0 0 0 0 0\n",
        ticks(u),
        ticks(sy),
        ticks(id),
        crate::cpustat::switches(),
        crate::proc::pids_made(),
    )
}

/// `/proc/uptime`: seconds up and seconds all vCPUs were idle, two decimals.
pub fn uptime() -> String {
    let up = crate::time::uptime_ns();
    let idle: u64 = (0..crate::boot::vcpus()).map(|v| crate::cpustat::times(v).2).sum();
    let c = |ns: u64| format!("{}.{:02}", ns / 1_000_000_000, (ns / 10_000_000) % 100);
    format!("{} {}\n", c(up), c(idle))
}

/// `/proc/loadavg`: the load averages (no decaying average is kept: each is the number of
/// runnable threads now), runnable/total threads, the last pid handed out.
pub fn loadavg(procs: &[Arc<Process>]) -> String {
    let threads: usize = procs.iter().map(|p| p.threads.lock().len()).sum();
    let running: usize = procs
        .iter()
        .map(|p| p.threads.lock().iter().filter(|t| t.running_on.load(Ordering::Relaxed) != crate::proc::NOT_RUNNING).count())
        .sum::<usize>()
        .max(1);
    let l = running.saturating_sub(1);
    format!("{l}.00 {l}.00 {l}.00 {running}/{} {}\n", threads.max(1), crate::proc::pids_made())
}

/// `/proc/meminfo` (the rows `free`, `top` and `vmstat` read; guest RAM in frames).
pub fn meminfo() -> String {
    let (used, _, total) = crate::mm::frame::usage();
    let kb = |frames: usize| frames as u64 * 4;
    let free = kb(total.saturating_sub(used));
    let mut s = String::new();
    let rows: [(&str, u64); 20] = [
        ("MemTotal", kb(total)), ("MemFree", free), ("MemAvailable", free), ("Buffers", 0), ("Cached", 0),
        ("SwapCached", 0), ("Active", kb(used)), ("Inactive", 0), ("Active(anon)", kb(used)), ("Inactive(anon)", 0),
        ("Active(file)", 0), ("Inactive(file)", 0), ("Unevictable", 0), ("Mlocked", 0), ("SwapTotal", 0), ("SwapFree", 0),
        ("Dirty", 0), ("Writeback", 0), ("Shmem", 0), ("SReclaimable", 0),
    ];
    for (k, v) in rows {
        super::pid::pad(&mut s, &format!("{k}:"), 16);
        let _ = writeln!(s, "{v:>8} kB");
    }
    s
}

/// `/proc/cpuinfo`: one block per vCPU from `cpuid` (vendor, family/model/stepping, brand,
/// the TSC rate H measured).
pub fn cpuinfo() -> String {
    let (_, b, c, d) = crate::arch::cpuid(0, 0);
    let mut vendor = [0u8; 12];
    vendor[..4].copy_from_slice(&b.to_le_bytes());
    vendor[4..8].copy_from_slice(&d.to_le_bytes());
    vendor[8..].copy_from_slice(&c.to_le_bytes());
    let (eax, _, _, _) = crate::arch::cpuid(1, 0);
    let family = ((eax >> 8) & 0xf) + if (eax >> 8) & 0xf == 0xf { (eax >> 20) & 0xff } else { 0 };
    let model = ((eax >> 4) & 0xf) | (((eax >> 16) & 0xf) << 4);
    let mut brand = [0u8; 48];
    for (i, leaf) in (0x8000_0002u32..=0x8000_0004).enumerate() {
        let (a, b, c, d) = crate::arch::cpuid(leaf, 0);
        for (j, r) in [a, b, c, d].iter().enumerate() {
            brand[i * 16 + j * 4..i * 16 + j * 4 + 4].copy_from_slice(&r.to_le_bytes());
        }
    }
    // ASCII by cpuid's definition; anything else is dropped (no UTF-8 decoding in ring 0).
    let brand: String = brand.iter().filter(|b| b.is_ascii_graphic() || **b == b' ').map(|&b| char::from(b)).collect();
    let brand = brand.trim_ascii();
    let khz = crate::boot::tsc_khz();
    let n = crate::boot::vcpus();
    let mut s = String::new();
    for i in 0..n {
        let _ = write!(
            s,
            "processor\t: {i}\nvendor_id\t: {}\ncpu family\t: {family}\nmodel\t\t: {model}\nmodel name\t: {brand}\nstepping\t: {}\n\
             cpu MHz\t\t: {}.{:03}\ncache size\t: 0 KB\nphysical id\t: 0\nsiblings\t: {n}\ncore id\t\t: {i}\ncpu cores\t: {n}\n\
             apicid\t\t: {i}\nfpu\t\t: yes\nfpu_exception\t: yes\ncpuid level\t: 13\nwp\t\t: yes\nflags\t\t: fpu tsc cx8 cmov sse sse2 ht syscall nx lm\n\
             bogomips\t: {}.00\naddress sizes\t: 46 bits physical, 48 bits virtual\n\n",
            vendor.iter().filter(|b| b.is_ascii_graphic()).map(|&b| char::from(b)).collect::<String>(),
            eax & 0xf,
            khz / 1000,
            khz % 1000,
            khz / 500,
        );
    }
    s
}

/// `/proc/vmstat` (the counters `vmstat` needs to start; page counts from the frame
/// allocator, event counters the kernel does not keep are 0).
pub fn vmstat() -> String {
    let (used, _, total) = crate::mm::frame::usage();
    let free = total.saturating_sub(used);
    let mut s = String::new();
    let rows: [(&str, usize); 16] = [
        ("nr_free_pages", free), ("nr_zone_inactive_anon", 0), ("nr_zone_active_anon", used), ("nr_zone_inactive_file", 0),
        ("nr_zone_active_file", 0), ("nr_zone_unevictable", 0), ("nr_mlock", 0), ("nr_anon_pages", used), ("nr_mapped", 0),
        ("nr_file_pages", 0), ("nr_dirty", 0), ("nr_writeback", 0), ("nr_shmem", 0), ("pgpgin", 0), ("pgpgout", 0), ("pswpin", 0),
    ];
    for (k, v) in rows {
        let _ = writeln!(s, "{k} {v}");
    }
    s.push_str("pswpout 0\npgfault 0\npgmajfault 0\n");
    s
}

/// `/proc/version`.
pub fn version() -> String {
    format!("Linux version {OSRELEASE} (pvm guest kernel {}) #1 SMP PREEMPT_DYNAMIC\n", env!("CARGO_PKG_VERSION"))
}

/// `/proc/filesystems`: the filesystem types the guest kernel has (`nodev` = no block device).
pub const FILESYSTEMS: &str = "nodev\tsysfs\nnodev\ttmpfs\nnodev\tproc\nnodev\tdevpts\nnodev\tmqueue\nnodev\tfuse\n";

/// The `/proc/sys` files (path under /proc/sys, contents); `hostname` is read at each refresh.
pub fn sysctl() -> [(&'static str, String); 9] {
    let host = {
        let h = crate::sys::process::HOSTNAME.lock();
        let n = h.iter().position(|&b| b == 0).unwrap_or(h.len());
        String::from_utf8_lossy(&h[..n]).into_owned()
    };
    [
        // Linux's PID_MAX_DEFAULT (include/linux/threads.h); procps sizes its PID column by it.
        ("kernel/pid_max", String::from("32768\n")),
        ("kernel/threads-max", format!("{}\n", crate::mm::mem_size() / (128 << 10) * 2)),
        ("kernel/hostname", format!("{host}\n")),
        ("kernel/osrelease", format!("{OSRELEASE}\n")),
        ("kernel/ostype", String::from("Linux\n")),
        ("kernel/random/boot_id", format!("{}\n", boot_id())),
        ("kernel/random/uuid", format!("{}\n", uuid())),
        ("fs/nr_open", format!("{}\n", crate::proc::NR_OPEN)),
        ("vm/overcommit_memory", String::from("0\n")),
    ]
}

/// A random version-4 UUID, lower-case hex with dashes (RFC 4122 section 4.4).
pub fn uuid() -> String {
    let mut b = [0u8; 16];
    crate::rand::fill(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = |r: core::ops::Range<usize>| b[r].iter().fold(String::new(), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    });
    format!("{}-{}-{}-{}-{}", h(0..4), h(4..6), h(6..8), h(8..10), h(10..16))
}

/// This boot's id: one [`uuid`] drawn at first use.
pub fn boot_id() -> String {
    static ID: spin::Once<String> = spin::Once::new();
    ID.call_once(uuid).clone()
}

/// `/sys/devices/system/cpu/{online,possible,present}`: `0-N` (or `0`).
pub fn cpu_list() -> String {
    match crate::boot::vcpus() {
        0 | 1 => String::from("0\n"),
        n => format!("0-{}\n", n - 1),
    }
}
