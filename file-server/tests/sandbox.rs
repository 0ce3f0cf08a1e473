//! F's sandbox, entered for real: the test re-executes itself (`FSRV_SANDBOX_CHILD`) so that
//! Landlock and seccomp confine only the child, which then serves FUSE requests (proving the
//! seccomp allowlist covers them) and checks what the sandbox denies.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use file_server::{MountSpec, sandbox};

const CHILD: &str = "FSRV_SANDBOX_CHILD";

fn in_child(test: &str, dir: &Path) -> bool {
    if std::env::var_os(CHILD).is_some() {
        return true;
    }
    let out = Command::new(std::env::current_exe().expect("exe"))
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD, dir)
        .output()
        .expect("spawn the child test");
    assert!(
        out.status.success(),
        "sandboxed child failed: {}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    false
}

fn setup(dir: &Path) {
    std::fs::create_dir_all(dir.join("root/etc")).expect("mkdir");
    std::fs::write(dir.join("root/etc/hostname"), b"guest\n").expect("write");
    std::fs::create_dir_all(dir.join("vol")).expect("mkdir");
    std::fs::write(dir.join("vol/data"), b"read-only data\n").expect("write");
    std::fs::create_dir_all(dir.join("outside")).expect("mkdir");
    std::fs::write(dir.join("outside/canary"), b"CANARY\n").expect("write");
}

fn errno_of<T>(r: std::io::Result<T>) -> Option<i32> {
    r.err().and_then(|e| e.raw_os_error())
}

#[test]
fn sandboxed_server_serves_its_mounts_and_nothing_else() {
    let dir = if std::env::var_os(CHILD).is_some() {
        std::path::PathBuf::from(std::env::var_os(CHILD).expect("dir"))
    } else {
        let t = tempfile::tempdir().expect("tempdir").keep();
        setup(&t);
        t
    };
    if !in_child("sandboxed_server_serves_its_mounts_and_nothing_else", &dir) {
        // Parent: after the child, the canary is intact and the read-only volume unchanged.
        assert_eq!(std::fs::read(dir.join("outside/canary")).expect("canary"), b"CANARY\n");
        let vol: Vec<_> = std::fs::read_dir(dir.join("vol")).expect("vol").map(|e| e.expect("e").file_name()).collect();
        assert_eq!(vol, ["data"]);
        assert_eq!(std::fs::read(dir.join("root/new")).expect("written by the child"), b"through F");
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    // Child: F's sandbox, then requests.
    let ram = guest_ram();
    let mut root = Driver::on_queue(&ram, 0, &dir.join("root"), false);
    let mut vol = Driver::on_queue(&ram, 1, &dir.join("vol"), true);
    let mounts = [
        MountSpec { queue: 0, read_only: false, source: dir.join("root") },
        MountSpec { queue: 1, read_only: true, source: dir.join("vol") },
    ];
    sandbox::restrict_files(&mounts).expect("landlock");
    sandbox::restrict_syscalls().expect("seccomp");

    // The rw root: lookup, read, create, write.
    let (etc, _) = root.lookup_ok(ROOT, "etc");
    let (host, _) = root.lookup_ok(etc, "hostname");
    let fh = root.open(host, libc::O_RDONLY).u64_at(0);
    assert_eq!(root.read_file(host, fh, 0, 64).ok(), b"guest\n");
    root.release(host, fh).ok();
    let c = root.create(ROOT, "new", libc::O_RDWR | libc::O_CREAT, 0o644 | libc::S_IFREG);
    let (n, fh) = (c.u64_at(0), c.u64_at(128));
    assert_eq!(root.write_file(n, fh, 0, b"through F").u32_at(0), 9);
    root.release(n, fh).ok();
    root.getattr(ROOT).ok();
    root.request(op::STATFS, ROOT, &[]).ok();
    let od = root.request(op::OPENDIR, ROOT, &[0u8; 8]);
    let dfh = od.u64_at(0);
    let mut rd = dfh.to_le_bytes().to_vec();
    rd.extend_from_slice(&0u64.to_le_bytes());
    rd.extend_from_slice(&4096u32.to_le_bytes());
    rd.extend_from_slice(&[0u8; 20]);
    assert!(!root.request(op::READDIR, ROOT, &rd).ok().is_empty(), "directory entries");

    // The ro volume: reads work, writes are refused by Landlock.
    let (data, _) = vol.lookup_ok(ROOT, "data");
    let fh = vol.open(data, libc::O_RDONLY).u64_at(0);
    assert_eq!(vol.read_file(data, fh, 0, 64).ok(), b"read-only data\n");
    assert_eq!(errno(&vol.open(data, libc::O_RDWR)), libc::EACCES);
    assert_ne!(vol.create(ROOT, "x", libc::O_WRONLY | libc::O_CREAT, 0o644 | libc::S_IFREG).error, 0);
    assert_ne!(vol.truncate(data, 0).error, 0);

    // Outside the mounts nothing opens, and there is no network or exec.
    assert_eq!(errno_of(std::fs::read(dir.join("outside/canary"))), Some(libc::EACCES));
    assert_eq!(errno_of(std::fs::write(dir.join("outside/new"), b"x")), Some(libc::EACCES));
    assert_eq!(errno_of(std::fs::read("/etc/passwd")), Some(libc::EACCES));
    // SAFETY: plain syscalls with integer arguments; a refusal is the expected result.
    let sock = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
    assert_eq!(sock, -1, "socket must fail");
    assert_eq!(std::io::Error::last_os_error().raw_os_error(), Some(libc::EPERM));
    assert_eq!(errno_of(Command::new("/bin/true").status()), Some(libc::EPERM), "no exec (no clone either)");
    // mknod of a device node is refused; a FIFO is fine (inside the tree).
    let mut mk = Vec::new();
    for v in [libc::S_IFCHR | 0o666, 0x0103u32, 0, 0] {
        mk.extend_from_slice(&v.to_le_bytes());
    }
    mk.extend_from_slice(&cstr("null"));
    assert_eq!(errno(&root.request(8, ROOT, &mk)), libc::EPERM, "MKNOD of a char device");
    mk[..4].copy_from_slice(&(libc::S_IFIFO | 0o644).to_le_bytes());
    mk[4..8].copy_from_slice(&0u32.to_le_bytes());
    root.request(8, ROOT, &mk).ok();
}
