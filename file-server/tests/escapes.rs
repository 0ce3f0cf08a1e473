//! Escape traps: a tree with symlinks and `..` that point outside it, directories renamed and
//! symlinks swapped between lookups; a canary file beside the tree must never be read or
//! written through F. These run F's request path without the Landlock/seccomp sandbox (see
//! sandbox.rs for that): the confinement here is the passthrough's own (per-component
//! `O_NOFOLLOW` opens relative to parent fds) plus `confined::Confined`.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::*;

const CANARY: &[u8] = b"CANARY: never read through F\n";

struct Trap {
    _dir: tempfile::TempDir,
    root: PathBuf,
    outside: PathBuf,
    canary: PathBuf,
}

fn trap() -> Trap {
    let dir = tempfile::tempdir().expect("tempdir");
    let outside = dir.path().join("outside");
    let root = dir.path().join("root");
    std::fs::create_dir(&outside).expect("mkdir");
    std::fs::create_dir(&root).expect("mkdir");
    let canary = outside.join("canary");
    std::fs::write(&canary, CANARY).expect("canary");
    std::fs::set_permissions(&canary, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    std::fs::create_dir(root.join("sub")).expect("mkdir");
    std::os::unix::fs::symlink(&canary, root.join("abs")).expect("symlink");
    std::os::unix::fs::symlink("../outside/canary", root.join("rel")).expect("symlink");
    std::os::unix::fs::symlink("../../outside", root.join("sub/up")).expect("symlink");
    std::os::unix::fs::symlink(&outside, root.join("absdir")).expect("symlink");
    Trap { _dir: dir, root, outside, canary }
}

fn canary_untouched(t: &Trap) {
    assert_eq!(std::fs::read(&t.canary).expect("canary"), CANARY, "canary contents");
    let mode = std::fs::metadata(&t.canary).expect("canary").permissions().mode();
    assert_eq!(mode & 0o7777, 0o600, "canary mode");
    let names: Vec<_> = std::fs::read_dir(&t.outside).expect("outside").map(|e| e.expect("entry").file_name()).collect();
    assert_eq!(names, ["canary"], "nothing created outside the tree");
}

fn no_canary_in(r: &Reply) {
    assert!(!r.body.windows(7).any(|w| w == b"CANARY:"), "canary bytes in a reply: {r:?}");
}

/// Every way to use a symlink inode that could follow it on the host.
fn hammer_symlink(d: &mut Driver<'_>, parent: u64, name: &str) {
    let (node, mode) = d.lookup_ok(parent, name);
    assert_eq!(mode & libc::S_IFMT, libc::S_IFLNK, "{name} is seen as a symlink");
    for flags in [libc::O_RDONLY, libc::O_RDWR, libc::O_WRONLY | libc::O_TRUNC] {
        let r = d.open(node, flags);
        assert_ne!(r.error, 0, "OPEN of symlink {name} with {flags:#x} must fail");
    }
    // Reads and writes with made-up file handles.
    for fh in 0..4 {
        no_canary_in(&d.read_file(node, fh, 0, 4096));
        let _ = d.write_file(node, fh, 0, b"pwned");
    }
    let _ = d.chmod(node, 0o777);
    let _ = d.truncate(node, 0);
    // CREATE over the symlink's name, with and without O_EXCL.
    for flags in [libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC, libc::O_RDWR | libc::O_CREAT] {
        let r = d.create(parent, name, flags, 0o666 | libc::S_IFREG);
        if r.error == 0 {
            let n = r.u64_at(0);
            let fh = r.u64_at(128);
            no_canary_in(&d.read_file(n, fh, 0, 4096));
            let _ = d.write_file(n, fh, 0, b"pwned");
        }
    }
    // GETXATTR through the symlink (passthrough uses /proc/self/fd paths).
    let mut gx = 64u32.to_le_bytes().to_vec();
    gx.extend_from_slice(&0u32.to_le_bytes());
    gx.extend_from_slice(&cstr("user.x"));
    no_canary_in(&d.request(op::GETXATTR, node, &gx));
    // The target text is the guest's to resolve, in the guest.
    let link = d.request(op::READLINK, node, &[]);
    no_canary_in(&link);
}

#[test]
fn absolute_and_relative_symlinks_are_never_followed() {
    let t = trap();
    let ram = guest_ram();
    let mut d = Driver::new(&ram, &t.root, false);
    hammer_symlink(&mut d, ROOT, "abs");
    hammer_symlink(&mut d, ROOT, "rel");
    let (sub, _) = d.lookup_ok(ROOT, "sub");
    hammer_symlink(&mut d, sub, "up");
    // A symlink to a directory is no directory to look up in.
    let (absdir, _) = d.lookup_ok(ROOT, "absdir");
    assert_ne!(d.lookup(absdir, "canary").error, 0);
    let (up, _) = d.lookup_ok(sub, "up");
    assert_ne!(d.lookup(up, "canary").error, 0);
    canary_untouched(&t);
}

#[test]
fn dot_dot_chains_stay_inside() {
    let t = trap();
    let ram = guest_ram();
    let mut d = Driver::new(&ram, &t.root, false);
    let (sub, _) = d.lookup_ok(ROOT, "sub");
    for (parent, name) in [
        (ROOT, ".."),
        (sub, ".."),
        (ROOT, "."),
        (ROOT, "../outside"),
        (ROOT, "../outside/canary"),
        (sub, "../../outside/canary"),
        (ROOT, "sub/../../outside"),
        (ROOT, "/"),
        (ROOT, ""),
    ] {
        let r = d.lookup(parent, name);
        assert_ne!(r.error, 0, "LOOKUP({parent}, {name:?}) must fail");
    }
    // Names with a slash are refused by every name-taking operation, not only LOOKUP.
    let c = d.create(ROOT, "../outside/new", libc::O_WRONLY | libc::O_CREAT, 0o644 | libc::S_IFREG);
    assert_ne!(c.error, 0);
    let mut mk = 0o755u32.to_le_bytes().to_vec();
    mk.extend_from_slice(&0u32.to_le_bytes());
    mk.extend_from_slice(&cstr(".."));
    assert_ne!(d.request(op::MKDIR, sub, &mk).error, 0);
    let mut sl = cstr("../escape");
    sl.extend_from_slice(&cstr("/etc/passwd"));
    assert_ne!(d.request(op::SYMLINK, ROOT, &sl).error, 0);
    let mut rn = ROOT.to_le_bytes().to_vec();
    rn.extend_from_slice(&cstr("sub"));
    rn.extend_from_slice(&cstr("../outside/sub"));
    assert_ne!(d.request(op::RENAME, ROOT, &rn).error, 0);
    assert!(t.root.join("sub").is_dir());
    canary_untouched(&t);
}

#[test]
fn a_directory_renamed_out_of_the_tree_gives_no_way_up() {
    let t = trap();
    let ram = guest_ram();
    let mut d = Driver::new(&ram, &t.root, false);
    let (sub, _) = d.lookup_ok(ROOT, "sub");
    // On the host, between two guest lookups, `sub` moves out of the tree (beside the canary).
    std::fs::rename(t.root.join("sub"), t.outside.join("sub")).expect("rename");
    for name in ["..", "canary", "../canary"] {
        let r = d.lookup(sub, name);
        assert_ne!(r.error, 0, "LOOKUP(sub, {name:?}) after the move must fail");
    }
    std::fs::rename(t.outside.join("sub"), t.root.join("sub")).expect("rename back");
    canary_untouched(&t);
}

#[test]
fn a_directory_swapped_for_a_symlink_is_not_followed() {
    let t = trap();
    let ram = guest_ram();
    let mut d = Driver::new(&ram, &t.root, false);
    std::fs::create_dir(t.root.join("d")).expect("mkdir");
    std::fs::write(t.root.join("d/canary"), b"inside").expect("write");
    let (dnode, _) = d.lookup_ok(ROOT, "d");
    // Swap `d` for a symlink to the outside directory.
    std::fs::rename(t.root.join("d"), t.root.join("d.old")).expect("rename");
    std::os::unix::fs::symlink(&t.outside, t.root.join("d")).expect("symlink");
    // A fresh lookup sees the symlink, and it is no directory to look in.
    let (new, mode) = d.lookup_ok(ROOT, "d");
    assert_eq!(mode & libc::S_IFMT, libc::S_IFLNK);
    assert_ne!(d.lookup(new, "canary").error, 0);
    // The node the guest already held is still the old directory, whose canary is the inside one.
    let (inner, _) = d.lookup_ok(dnode, "canary");
    let fh = d.open(inner, libc::O_RDONLY).u64_at(0);
    assert_eq!(d.read_file(inner, fh, 0, 64).ok(), b"inside");
    canary_untouched(&t);
}

#[test]
fn hard_links_to_outside_files_cannot_be_made() {
    let t = trap();
    let ram = guest_ram();
    let mut d = Driver::new(&ram, &t.root, false);
    let (abs, _) = d.lookup_ok(ROOT, "abs");
    // LINK(oldnodeid = the symlink) makes a second link to the symlink itself, never to its target.
    let mut l = abs.to_le_bytes().to_vec();
    l.extend_from_slice(&cstr("second"));
    let r = d.request(op::LINK, ROOT, &l);
    if r.error == 0 {
        let meta = std::fs::symlink_metadata(t.root.join("second")).expect("stat");
        assert!(meta.file_type().is_symlink(), "the new link is the symlink, not the canary");
    }
    canary_untouched(&t);
    let _ = Path::new("");
}
