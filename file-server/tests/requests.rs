//! F's queue serving real FUSE requests (built by hand) through a virtio split queue in a
//! memfd-backed guest RAM, against a temporary host tree.

mod common;

use std::os::unix::fs::MetadataExt;

use common::*;

fn tree() -> tempfile::TempDir {
    let t = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(t.path().join("dir")).expect("mkdir");
    std::fs::write(t.path().join("dir/hello.txt"), b"hello from the host\n").expect("write");
    std::fs::hard_link(t.path().join("dir/hello.txt"), t.path().join("hard")).expect("link");
    std::os::unix::fs::symlink("dir/hello.txt", t.path().join("link")).expect("symlink");
    t
}

#[test]
fn lookup_getattr_and_read_see_the_host_file() {
    let t = tree();
    let ram = guest_ram();
    let mut d = Driver::new(&ram, t.path(), false);
    let (dir, mode) = d.lookup_ok(ROOT, "dir");
    assert_eq!(mode & libc::S_IFMT, libc::S_IFDIR);
    let r = d.lookup(dir, "hello.txt");
    let file = r.u64_at(0);
    let host = std::fs::metadata(t.path().join("dir/hello.txt")).expect("stat");
    assert_eq!(r.u64_at(ENTRY_ATTR + ATTR_INO), host.ino(), "host inode number");
    assert_eq!(r.u64_at(ENTRY_ATTR + ATTR_SIZE), host.len());
    assert_eq!(r.u32_at(ENTRY_ATTR + ATTR_NLINK), 2, "hard links as on the host");
    let a = d.getattr(file);
    assert_eq!(a.u32_at(16 + ATTR_MODE), host.mode());
    let o = d.open(file, libc::O_RDONLY);
    let fh = o.u64_at(0);
    let data = d.read_file(file, fh, 0, 4096);
    assert_eq!(data.ok(), b"hello from the host\n");
    let data = d.read_file(file, fh, 6, 4);
    assert_eq!(data.ok(), b"from");
    d.release(file, fh).ok();
    // The hard link is the same inode (and nodeid).
    let (hard, _) = d.lookup_ok(ROOT, "hard");
    assert_eq!(hard, file);
    // A symlink is returned as one, its target as text.
    let (link, mode) = d.lookup_ok(ROOT, "link");
    assert_eq!(mode & libc::S_IFMT, libc::S_IFLNK);
    assert_eq!(d.request(op::READLINK, link, &[]).ok(), b"dir/hello.txt");
    assert_eq!(errno(&d.lookup(ROOT, "missing")), libc::ENOENT);
}

#[test]
fn create_write_and_truncate_reach_the_host() {
    let t = tree();
    let ram = guest_ram();
    let mut d = Driver::new(&ram, t.path(), false);
    let (dir, _) = d.lookup_ok(ROOT, "dir");
    let c = d.create(dir, "new.txt", libc::O_RDWR | libc::O_CREAT, 0o640 | libc::S_IFREG);
    let node = c.u64_at(0);
    let fh = c.u64_at(128);
    let w = d.write_file(node, fh, 0, b"written by the guest");
    assert_eq!(w.u32_at(0), 20, "bytes written");
    assert_eq!(std::fs::read(t.path().join("dir/new.txt")).expect("read"), b"written by the guest");
    let meta = std::fs::metadata(t.path().join("dir/new.txt")).expect("stat");
    assert_eq!(meta.mode() & 0o777, 0o640);
    d.truncate(node, 7).ok();
    assert_eq!(std::fs::read(t.path().join("dir/new.txt")).expect("read"), b"written");
    d.release(node, fh).ok();
    // CREATE with O_EXCL of an existing name fails as on the host.
    let again = d.create(dir, "new.txt", libc::O_RDWR | libc::O_CREAT | libc::O_EXCL, 0o600 | libc::S_IFREG);
    assert_eq!(errno(&again), libc::EEXIST);
    // MKDIR, RENAME and UNLINK.
    let mut mk = Vec::new();
    for v in [0o755u32, 0] {
        mk.extend_from_slice(&v.to_le_bytes());
    }
    mk.extend_from_slice(&cstr("sub"));
    d.request(op::MKDIR, ROOT, &mk).ok();
    assert!(t.path().join("sub").is_dir());
    let mut rn = dir.to_le_bytes().to_vec();
    rn.extend_from_slice(&cstr("hard"));
    rn.extend_from_slice(&cstr("moved"));
    d.request(op::RENAME, ROOT, &rn).ok();
    assert!(t.path().join("dir/moved").exists() && !t.path().join("hard").exists());
    d.request(op::UNLINK, dir, &cstr("moved")).ok();
    assert!(!t.path().join("dir/moved").exists());
    // STATFS is the host's.
    let s = d.request(op::STATFS, ROOT, &[]);
    assert!(s.u64_at(0) > 0, "blocks");
}

#[test]
fn read_only_mounts_refuse_writes_without_a_sandbox_too() {
    // F opens nothing for writing on a read-only mount only because Landlock says so (tested
    // in sandbox.rs); without it the passthrough would write. This test pins that the queue
    // itself still serves reads on such a mount.
    let t = tree();
    let ram = guest_ram();
    let mut d = Driver::new(&ram, t.path(), true);
    let (dir, _) = d.lookup_ok(ROOT, "dir");
    let (file, _) = d.lookup_ok(dir, "hello.txt");
    let fh = d.open(file, libc::O_RDONLY).u64_at(0);
    assert_eq!(d.read_file(file, fh, 0, 5).ok(), b"hello");
}

#[test]
fn malformed_chains_get_an_empty_used_entry_and_the_queue_goes_on() {
    let t = tree();
    let ram = guest_ram();
    let mut d = Driver::new(&ram, t.path(), false);
    // A request descriptor outside guest RAM.
    d.desc(5, RAM - 8, 4096, 1, 6);
    d.desc(6, 0x40_0000, 4096, 2, 0);
    let (id, len) = d.submit(5);
    assert_eq!((id, len), (5, 0));
    // A chain that loops on itself.
    d.desc(7, 0x20_0000, 40, 1, 7);
    let (id, len) = d.submit(7);
    assert_eq!((id, len), (7, 0));
    // A truncated in-header (8 bytes).
    d.desc(8, 0x20_0000, 8, 1, 9);
    d.desc(9, 0x40_0000, 4096, 2, 0);
    let (id, len) = d.submit(8);
    assert_eq!((id, len), (8, 0));
    // A head index past the table.
    d.submit_unanswered(QUEUE_SIZE_PLUS);
    // Still serving.
    d.lookup_ok(ROOT, "dir");
}

const QUEUE_SIZE_PLUS: u16 = guest_abi::hostfs::QUEUE_SIZE + 3;
