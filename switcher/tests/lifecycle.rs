//! Process lifecycle: the mapper channel notices a dead U, dropping a StubProcess leaves no
//! process, a stub dies with the process that spawned it, bad mapper ops are refused.

mod common;

use common::*;
use guest_abi::mapper::{MapOpKind, PROT_READ};
use std::time::{Duration, Instant};
use switcher::{ExitInfo, SwitcherError};

#[test]
fn killed_u_makes_the_mapper_channel_fail_not_hang() {
    let h = Harness::new(&[0x0f, 0x05]);
    h.proc().kill();
    let start = Instant::now();
    let r = h.mapper.apply(&[map_op(MapOpKind::Map, HOLE_GVA, 0x1000, PROT_READ, HOLE_GPA)]);
    assert!(matches!(r, Err(SwitcherError::ProcessDead(_))), "{r:?}");
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(h.proc().wait().expect("wait"), ExitInfo::Signaled(libc::SIGKILL));
}

#[test]
fn dropping_the_process_leaves_nothing_behind() {
    let mut h = Harness::new(&[0x0f, 0x05]);
    let pid = h.proc().pid();
    assert!(pid_alive(pid));
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).expect("comm");
    assert_eq!(comm.trim(), "pvm-stub-u");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("cmdline");
    assert_eq!(cmdline, b"pvm-stub-u\0");
    if let Some(fds) = stub_proc(pid, "fd") {
        assert_eq!(fds, "3 7", "U keeps only the guest-memory fd and the completion pipe");
    }
    let top = guest_abi::layout::K_SHARED_BASE + guest_abi::layout::SHARED_SIZE;
    let start = |l: &str| u64::from_str_radix(l.split('-').next().unwrap_or("0"), 16).unwrap_or(0);
    if let Some(maps) = stub_proc(pid, "maps") {
        for l in maps.lines().filter(|l| l.contains("[vdso]") || l.contains("[vvar") || l.contains("[stack]")) {
            assert!(start(l) >= top, "system mapping below the stub regions: {l}");
        }
    }
    if let Some(smaps) = stub_proc(pid, "smaps") {
        let text = format!("{:x}-", guest_abi::layout::STUB_BASE);
        let sealed = smaps
            .split_once(&text)
            .and_then(|(_, rest)| rest.lines().find(|l| l.starts_with("VmFlags:")))
            .is_some_and(|l| l.split_whitespace().any(|f| f == "sl"));
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").expect("osrelease");
        let mut v = release.trim().split(['.', '-']).map(|x| x.parse::<u32>().unwrap_or(0));
        let (major, minor) = (v.next().unwrap_or(0), v.next().unwrap_or(0));
        if (major, minor) >= (6, 10) {
            assert!(sealed, "stub text sealed on Linux {major}.{minor}");
        }
    }
    drop(h.proc.take());
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "reaped");
}

#[test]
fn mapper_refuses_invalid_operations() {
    let h = Harness::new(&[0x0f, 0x05]);
    let bad = [
        map_op(MapOpKind::Map, HOLE_GVA + 1, 0x1000, 1, 0),
        map_op(MapOpKind::Map, HOLE_GVA, 0x1001, 1, 0),
        map_op(MapOpKind::Map, HOLE_GVA, 0x1000, 1, MEM),
        map_op(MapOpKind::Map, HOLE_GVA, 0, 1, 0),
        map_op(MapOpKind::Map, 0, 0x1000, 1, 0),
        map_op(MapOpKind::Map, guest_abi::layout::USER_END - 0x1000, 0x2000, 1, 0),
        map_op(MapOpKind::Unmap, guest_abi::layout::STUB_BASE, 0x1000, 0, 0),
        map_op(MapOpKind::Protect, HOLE_GVA, 0x1000, 8, 0),
        guest_abi::mapper::MapOp { kind: 9, prot: 1, addr: HOLE_GVA, len: 0x1000, offset: 0 },
    ];
    for (i, op) in bad.iter().enumerate() {
        let r = h.mapper.apply(&[map_op(MapOpKind::Map, HOLE_GVA, 0x1000, 1, 0), *op]);
        assert!(matches!(r, Err(SwitcherError::InvalidMapOp { index: 1, .. })), "case {i}: {r:?}");
    }
    // A large batch is split and applied in full.
    let ops: Vec<_> = (0..1200u64)
        .map(|i| map_op(MapOpKind::Map, 0x100_0000 + i * 0x2000, 0x1000, PROT_READ, (i % 64) * 0x1000))
        .collect();
    h.mapper.apply(&ops).expect("large batch");
    if let Some(maps) = stub_proc(h.proc().pid(), "maps") {
        let n = maps.lines().filter(|l| {
            let a = u64::from_str_radix(l.split('-').next().unwrap_or("0"), 16).unwrap_or(0);
            (0x100_0000..0x100_0000 + 1200 * 0x2000).contains(&a)
        }).count();
        assert_eq!(n, 1200, "every mapping of the batch exists");
    }
    assert!(!h.proc().has_exited());
}

/// Helper mode: when PVM_SWITCHER_HELPER is set, this test spawns a U, prints its pid and
/// sleeps until killed.
#[test]
fn helper_spawns_and_sleeps() {
    if std::env::var_os("PVM_SWITCHER_HELPER").is_none() {
        return;
    }
    let h = Harness::new(&[0x0f, 0x05]);
    println!("STUBPID {}", h.proc().pid());
    use std::io::Write;
    std::io::stdout().flush().expect("flush");
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn stub_dies_when_its_spawner_process_is_killed() {
    use std::io::{BufRead, BufReader};
    let exe = std::env::current_exe().expect("exe");
    let mut child = std::process::Command::new(exe)
        .args(["--exact", "helper_spawns_and_sleeps", "--nocapture", "--test-threads=1"])
        .env("PVM_SWITCHER_HELPER", "1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("helper");
    let out = child.stdout.take().expect("stdout");
    let mut pid = None;
    for line in BufReader::new(out).lines() {
        let line = line.expect("line");
        if let Some(i) = line.find("STUBPID ") {
            pid = line[i + 8..].trim().parse::<i32>().ok();
            break;
        }
    }
    let pid = pid.expect("helper printed the stub pid");
    assert!(pid_alive(pid));
    child.kill().expect("SIGKILL helper");
    child.wait().expect("reap helper");
    let deadline = Instant::now() + Duration::from_secs(5);
    while pid_alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!pid_alive(pid), "stub {pid} outlived its spawner");
}

#[test]
fn each_vcpu_has_its_own_mapper_and_they_map_at_once() {
    use std::os::fd::{AsFd, FromRawFd, OwnedFd};
    // SAFETY: plain memfd/ftruncate of a fresh file we own.
    let guest_fd = unsafe {
        let fd = libc::memfd_create(c"test-guest-2".as_ptr(), libc::MFD_CLOEXEC);
        assert!(fd >= 0);
        assert_eq!(libc::ftruncate(fd, MEM as i64), 0);
        OwnedFd::from_raw_fd(fd)
    };
    let shm = switcher::SharedMemory::create().expect("shared memory");
    let sp = switcher::spawn_space(&switcher::SpaceSpawn {
        guest_mem: guest_fd.as_fd(),
        guest_mem_size: MEM,
        shared: &shm,
        space: 0,
        vcpus: 2,
    })
    .expect("spawn U with 2 vCPUs");
    let pid = sp.process.pid();
    assert_eq!(sp.channels.len(), 2);
    if let Some(fds) = stub_proc(pid, "fd") {
        assert_eq!(fds, "3 7 8", "U keeps the guest-memory fd and one completion pipe per vCPU");
    }
    // H's record: the main thread maps for vCPU 0, another thread (not a guest thread) for 1.
    let (m0, m1) = (sp.threads.mapper_tid(0).expect("mapper 0"), sp.threads.mapper_tid(1).expect("mapper 1"));
    assert_eq!(m0, pid);
    assert!(m1 != pid && Some(m1) != sp.threads.tid(0) && Some(m1) != sp.threads.tid(1));
    assert!(std::path::Path::new(&format!("/proc/{pid}/task/{m1}")).exists());
    assert_eq!(sp.threads.mapper_tid(2), None);
    // Both channels at once, each on its own range: every batch really completed.
    std::thread::scope(|s| {
        for (v, ch) in sp.channels.iter().enumerate() {
            s.spawn(move || {
                for round in 0..100u64 {
                    let base = 0x1000_0000 * (v as u64 + 1) + round * 0x10_0000;
                    let ops: Vec<_> = (0..32u64)
                        .map(|i| map_op(MapOpKind::Map, base + i * 0x2000, 0x1000, if i % 2 == 0 { 1 } else { 3 }, HOLE_GPA))
                        .collect();
                    ch.apply(&ops).expect("map batch");
                }
            });
        }
    });
    if let Some(maps) = stub_proc(pid, "maps") {
        for v in 0..2u64 {
            for round in [0u64, 57, 99] {
                let last = 0x1000_0000 * (v + 1) + round * 0x10_0000 + 31 * 0x2000;
                assert!(maps.contains(&format!("{last:x}-")), "vCPU {v} round {round} missing");
            }
        }
    }
    // An invalid batch on one channel does not disturb the other.
    assert!(sp.channels[1].apply(&[map_op(MapOpKind::Map, 0, 0x1000, PROT_READ, 0)]).is_err());
    sp.channels[0].apply(&[map_op(MapOpKind::Unmap, 0x1000_0000, 0x1000_0000, 0, 0)]).expect("unmap on 0");
    sp.channels[1].apply(&[map_op(MapOpKind::Unmap, 0x2000_0000, 0x1000_0000, 0, 0)]).expect("unmap on 1");
}
