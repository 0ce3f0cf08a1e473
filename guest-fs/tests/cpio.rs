//! The initramfs loader: round trips through a small newc writer and the system `cpio`,
//! malformed archives, and property tests (never panics; random trees round-trip).

mod common;

use common::*;
use guest_fs::{AT_FDCWD, Errno, FdTable, FsContext, Stat, Vfs, encode_dev, read_whole_file};
use proptest::prelude::*;
use std::sync::Arc;

/// A newc/crc archive writer (the format of `Documentation/driver-api/early-userspace/
/// buffer-format.rst`).
#[derive(Default)]
struct Writer {
    out: Vec<u8>,
    crc: bool,
}

struct E<'a> {
    ino: u32,
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u32,
    mtime: u32,
    rdev: (u32, u32),
    name: &'a str,
    data: &'a [u8],
}

impl Default for E<'_> {
    fn default() -> Self {
        Self { ino: 1, mode: S_IFREG | 0o644, uid: 0, gid: 0, nlink: 1, mtime: 1000, rdev: (0, 0), name: "", data: b"" }
    }
}

impl Writer {
    fn pad(&mut self) {
        while !self.out.len().is_multiple_of(4) {
            self.out.push(0);
        }
    }
    fn entry(&mut self, e: &E) -> &mut Self {
        let check = if self.crc { e.data.iter().map(|&b| u32::from(b)).sum::<u32>() } else { 0 };
        let namesize = e.name.len() + 1;
        let fields = [
            e.ino, e.mode, e.uid, e.gid, e.nlink, e.mtime, e.data.len() as u32, 0, 0, e.rdev.0, e.rdev.1,
            namesize as u32, check,
        ];
        self.out.extend_from_slice(if self.crc { b"070702" } else { b"070701" });
        for f in fields {
            self.out.extend_from_slice(format!("{f:08X}").as_bytes());
        }
        self.out.extend_from_slice(e.name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(e.data);
        self.pad();
        self
    }
    fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.entry(&E { name, data, ..Default::default() })
    }
    fn dir(&mut self, name: &str, mode: u32) -> &mut Self {
        self.entry(&E { name, mode: S_IFDIR | mode, nlink: 2, ..Default::default() })
    }
    fn trailer(&mut self) -> Vec<u8> {
        self.entry(&E { name: "TRAILER!!!", mode: 0, ino: 0, ..Default::default() });
        std::mem::take(&mut self.out)
    }
}

fn fresh() -> (Arc<Vfs>, FsContext) {
    let (vfs, ctx, _) = setup();
    (vfs, ctx)
}

fn st(vfs: &Vfs, ctx: &FsContext, p: &str) -> Result<Stat, Errno> {
    guest_fs::newfstatat(vfs, ctx, &FdTable::new(), AT_FDCWD, p.as_bytes(), AT_SYMLINK_NOFOLLOW)
}

#[test]
fn loads_every_entry_kind() {
    let mut w = Writer::default();
    w.entry(&E { name: ".", mode: S_IFDIR | 0o700, mtime: 5, ..Default::default() });
    w.dir("bin", 0o755);
    w.entry(&E { name: "bin/sh", mode: S_IFREG | 0o755, uid: 3, gid: 4, mtime: 77, data: b"\x7fELF...", ..Default::default() });
    w.entry(&E { name: "bin/ash", mode: S_IFLNK | 0o777, data: b"sh", ..Default::default() });
    w.entry(&E { name: "usr/lib/deep/file", data: b"auto parents", ..Default::default() });
    w.entry(&E { name: "./dev/ttyS0", mode: S_IFCHR | 0o620, rdev: (4, 64), ..Default::default() });
    w.entry(&E { name: "dev/sda", mode: S_IFBLK | 0o660, rdev: (8, 0), ..Default::default() });
    w.entry(&E { name: "run/fifo", mode: 0o010644, ..Default::default() });
    // Hard links: data travels with the last one.
    w.entry(&E { name: "h1", ino: 9, nlink: 2, ..Default::default() });
    w.entry(&E { name: "h2", ino: 9, nlink: 2, data: b"shared", ..Default::default() });
    w.dir("bin", 0o711); // a second entry for an existing dir updates it
    let a = w.trailer();
    let (vfs, ctx) = fresh();
    vfs.load_cpio_newc(&a).unwrap();
    assert_eq!(st(&vfs, &ctx, "/").unwrap().st_mode, S_IFDIR | 0o700);
    assert_eq!(st(&vfs, &ctx, "/").unwrap().st_mtime, 5);
    assert_eq!(st(&vfs, &ctx, "/bin").unwrap().st_mode, S_IFDIR | 0o711);
    let sh = st(&vfs, &ctx, "/bin/sh").unwrap();
    assert_eq!((sh.st_mode, sh.st_uid, sh.st_gid, sh.st_mtime, sh.st_size), (S_IFREG | 0o755, 3, 4, 77, 7));
    assert_eq!(read_whole_file(&vfs, &ctx, b"/bin/ash").unwrap(), b"\x7fELF...");
    assert_eq!(read_whole_file(&vfs, &ctx, b"/usr/lib/deep/file").unwrap(), b"auto parents");
    assert_eq!(st(&vfs, &ctx, "/usr/lib").unwrap().st_mode, S_IFDIR | 0o755);
    assert_eq!(st(&vfs, &ctx, "/dev/ttyS0").unwrap().st_rdev, encode_dev(4, 64));
    assert_eq!(st(&vfs, &ctx, "/dev/sda").unwrap().st_mode, 0o060660);
    assert_eq!(st(&vfs, &ctx, "/run/fifo").unwrap().st_mode, 0o010644);
    let (h1, h2) = (st(&vfs, &ctx, "/h1").unwrap(), st(&vfs, &ctx, "/h2").unwrap());
    assert_eq!(h1.st_ino, h2.st_ino);
    assert_eq!(h1.st_nlink, 2);
    assert_eq!(read_whole_file(&vfs, &ctx, b"/h1").unwrap(), b"shared");
}

#[test]
fn crc_format_checks_sums_and_concatenation_works() {
    let mut w = Writer { crc: true, ..Default::default() };
    w.file("a", b"abc");
    let mut good = w.trailer();
    let (vfs, ctx) = fresh();
    vfs.load_cpio_newc(&good).unwrap();
    assert_eq!(read_whole_file(&vfs, &ctx, b"/a").unwrap(), b"abc");
    // Corrupt the data: checksum mismatch.
    let pos = good.windows(3).position(|x| x == b"abc").unwrap();
    let mut bad = good.clone();
    bad[pos] = b'x';
    assert_eq!(fresh().0.load_cpio_newc(&bad), Err(Errno::EINVAL));
    // Two archives with zero padding between, then junk after the last trailer.
    let mut w2 = Writer::default();
    w2.file("b", b"second");
    good.extend_from_slice(&[0; 512]);
    good.extend_from_slice(&w2.trailer());
    good.extend_from_slice(b"junk after the trailer");
    let (vfs, ctx) = fresh();
    vfs.load_cpio_newc(&good).unwrap();
    assert_eq!(read_whole_file(&vfs, &ctx, b"/b").unwrap(), b"second");
}

#[test]
fn malformed_archives_are_einval() {
    let mut w = Writer::default();
    w.file("f", b"data");
    let good = w.trailer();
    let load = |a: &[u8]| fresh().0.load_cpio_newc(a);
    assert_eq!(load(&good), Ok(()));
    assert_eq!(load(b""), Ok(()), "empty input is an empty archive");
    assert_eq!(load(&[0; 64]), Ok(()));
    for cut in [1, 50, 109, 110, 113, 118, good.len() - 1] {
        assert_eq!(load(&good[..cut]), Err(Errno::EINVAL), "truncated at {cut}");
    }
    let mut m = good.clone();
    m[5] = b'7';
    assert_eq!(load(&m), Err(Errno::EINVAL), "bad magic");
    let mut m = good.clone();
    m[20] = b'g';
    assert_eq!(load(&m), Err(Errno::EINVAL), "bad hex");
    assert_eq!(load(b"\x1f\x8b\x08\x00gzip"), Err(Errno::EINVAL), "compressed");
    let mut w = Writer::default();
    w.file("../escape", b"");
    assert_eq!(load(&w.trailer()), Err(Errno::EINVAL));
    let mut w = Writer::default();
    w.entry(&E { name: "weird", mode: 0o170644, ..Default::default() });
    assert_eq!(load(&w.trailer()), Err(Errno::EINVAL), "unknown type");
    let mut w = Writer::default();
    w.entry(&E { name: "emptylink", mode: S_IFLNK | 0o777, ..Default::default() });
    assert_eq!(load(&w.trailer()), Err(Errno::EINVAL));
    // namesize claims more than the archive has.
    let mut m = good.clone();
    m[94..102].copy_from_slice(b"FFFFFFFF");
    assert_eq!(load(&m), Err(Errno::EINVAL));
    // filesize past the end.
    let mut m = good.clone();
    m[54..62].copy_from_slice(b"7FFFFFFF");
    assert_eq!(load(&m), Err(Errno::EINVAL));
    // Name without its NUL (namesize one short).
    let mut m = good.clone();
    m[94..102].copy_from_slice(b"00000001");
    assert_eq!(load(&m), Err(Errno::EINVAL));
    // A file where a directory is needed.
    let mut w = Writer::default();
    w.file("x", b"").file("x/y", b"");
    assert_eq!(load(&w.trailer()), Err(Errno::ENOTDIR));
}

/// Archives made by the system's GNU cpio (or busybox cpio) from a real directory tree load
/// into the same tree.
#[test]
fn system_cpio_round_trip() {
    let tool = ["/usr/bin/cpio", "/bin/cpio"].into_iter().find(|p| std::path::Path::new(p).exists());
    let (cmd, pre): (&str, &[&str]) = match tool {
        Some(t) => (t, &[]),
        None if std::path::Path::new("/usr/bin/busybox").exists() => ("/usr/bin/busybox", &["cpio"]),
        None => {
            eprintln!("no cpio tool on this host; skipping");
            return;
        }
    };
    let dir = std::env::temp_dir().join(format!("guestfs-cpio-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("etc/sub")).unwrap();
    std::fs::write(dir.join("etc/passwd"), b"root:x:0:0::/root:/bin/sh\n").unwrap();
    std::fs::write(dir.join("etc/sub/big"), vec![0xabu8; 100_000]).unwrap();
    std::fs::hard_link(dir.join("etc/passwd"), dir.join("etc/passwd.hard")).unwrap();
    std::os::unix::fs::symlink("passwd", dir.join("etc/link")).unwrap();
    for format in ["newc", "crc"] {
        let mut args: Vec<&str> = pre.to_vec();
        args.extend(["-o", "-H", format, "--quiet"]);
        if tool.is_none() {
            args.retain(|a| *a != "--quiet");
        }
        if tool.is_none() && format == "crc" {
            continue; // busybox writes newc only
        }
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("cd {} && find . | sort | {cmd} {}", dir.display(), args.join(" ")))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let (vfs, ctx) = fresh();
        vfs.load_cpio_newc(&out.stdout).unwrap();
        assert_eq!(read_whole_file(&vfs, &ctx, b"/etc/passwd").unwrap(), b"root:x:0:0::/root:/bin/sh\n");
        assert_eq!(read_whole_file(&vfs, &ctx, b"/etc/link").unwrap(), b"root:x:0:0::/root:/bin/sh\n");
        assert_eq!(read_whole_file(&vfs, &ctx, b"/etc/sub/big").unwrap(), vec![0xabu8; 100_000]);
        let (a, b) = (st(&vfs, &ctx, "/etc/passwd").unwrap(), st(&vfs, &ctx, "/etc/passwd.hard").unwrap());
        assert_eq!(a.st_ino, b.st_ino, "{format}: hard link");
        assert_eq!(a.st_nlink, 2);
        use std::os::unix::fs::MetadataExt;
        let host = std::fs::metadata(dir.join("etc/sub/big")).unwrap();
        let g = st(&vfs, &ctx, "/etc/sub/big").unwrap();
        assert_eq!((g.st_mode, g.st_mtime), (host.mode(), host.mtime()));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = fresh().0.load_cpio_newc(&data);
    }

    #[test]
    fn mutated_archives_never_panic(
        muts in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        cut in any::<usize>(),
    ) {
        let mut w = Writer::default();
        w.dir("d", 0o755).file("d/f", b"hello").entry(&E { name: "d/l", mode: S_IFLNK | 0o777, data: b"f", ..Default::default() });
        let mut a = w.trailer();
        for (pos, byte) in muts {
            let i = pos % a.len();
            a[i] = byte;
        }
        let cut = cut % (a.len() + 1);
        let _ = fresh().0.load_cpio_newc(&a[..cut]);
    }

    #[test]
    fn random_trees_round_trip(
        files in proptest::collection::btree_map("[a-z]{1,8}(/[a-z]{1,8}){0,2}", proptest::collection::vec(any::<u8>(), 0..3000), 1..12),
        crc in any::<bool>(),
    ) {
        // Drop names that are a prefix directory of another (a file cannot also be a dir).
        let names: Vec<_> = files.keys().cloned().collect();
        let files: Vec<_> = files.into_iter()
            .filter(|(n, _)| !names.iter().any(|m| m.starts_with(&format!("{n}/"))))
            .collect();
        let mut w = Writer { crc, ..Default::default() };
        for (i, (name, data)) in files.iter().enumerate() {
            w.entry(&E { ino: i as u32 + 10, name, data, mtime: i as u32, ..Default::default() });
        }
        let a = w.trailer();
        let (vfs, ctx) = fresh();
        prop_assert_eq!(vfs.load_cpio_newc(&a), Ok(()));
        for (i, (name, data)) in files.iter().enumerate() {
            let p = format!("/{name}");
            prop_assert_eq!(&read_whole_file(&vfs, &ctx, p.as_bytes()).unwrap(), data);
            prop_assert_eq!(st(&vfs, &ctx, &p).unwrap().st_mtime, i as i64);
        }
    }

    /// Path normalisation: inserting `.` components, doubled slashes and `x/..` detours
    /// never changes what a path names.
    #[test]
    fn path_normalisation(
        parts in proptest::collection::vec("[a-c]", 1..5),
        noise in proptest::collection::vec(0u8..4, 1..5),
    ) {
        let (vfs, ctx, fds) = setup();
        let mut p = String::new();
        for part in &parts {
            p.push('/');
            p.push_str(part);
            let _ = guest_fs::mkdirat(&vfs, &ctx, &fds, AT_FDCWD, p.as_bytes(), 0o755);
        }
        let want = st(&vfs, &ctx, &p).unwrap().st_ino;
        let mut q = String::new();
        for (i, part) in parts.iter().enumerate() {
            match noise[i % noise.len()] {
                0 => q.push_str("/./"),
                1 => q.push_str("//"),
                2 => { q.push('/'); q.push_str(part); q.push_str("/.."); q.push('/'); }
                _ => q.push('/'),
            }
            q.push_str(part);
        }
        prop_assert_eq!(st(&vfs, &ctx, &q).unwrap().st_ino, want, "{} vs {}", p, q);
        prop_assert_eq!(st(&vfs, &ctx, &format!("{q}/")).unwrap().st_ino, want);
    }
}
