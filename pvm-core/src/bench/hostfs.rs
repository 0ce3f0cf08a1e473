//! What the hostfs cases of `pvm bench` (issue 11) run on, built once per run and only when a
//! selected benchmark needs it:
//! - `ROOT/data` in the benchmark root: `big` (256 MiB of non-zero data, written and fsynced)
//!   and `files/f0000..f0999` (100 bytes each). It is made after the cpio archive, so QEMU's
//!   initramfs does not carry it.
//! - The Debian tree of `pvm-core/tests/debian.rs` (debootstrap's minbase, cached per user) as
//!   a hard-linked copy in the work directory with `/lmb` added, so the cache stays as
//!   debootstrap left it (`cp -al`: no file data is copied, the inodes are the cache's).
//! - The start-up trees: about 10 MB (built per run) and about 1 GiB of real files (built once
//!   into the per-user cache, 4,096 files of 256 KiB in 16 directories), each with a static
//!   busybox as `/bin/true`.
//!
//! It also drops the host's page cache of a file for the cold read: `posix_fadvise(2)`
//! `POSIX_FADV_DONTNEED` after `fsync`, then `mincore(2)` over a mapping of the file checks
//! that the pages are gone (DONTNEED is advice; a page another process maps stays).

use std::fs;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::catalog::{Hostfs, Tree};

/// Size of the file the read cases read, bytes (the 256 MiB).
pub const BIG_BYTES: u64 = 256 << 20;
/// Small files the stat and open+close cases go through (lmb.c's `NFILES`).
const SMALL_FILES: usize = 1000;
/// The cached Debian trees, newest cache key first (`pvm-core/tests/debian.rs` builds them).
const DEBIAN_TREES: &[&str] = &["debian-bookworm-minbase-py3", "debian-bookworm-minbase"];
/// The cached 1 GiB start-up tree (bump the name when its layout changes).
const LARGE_TREE: &str = "bench-tree-1g-v1";
/// Marker written last into a complete cached tree.
const COMPLETE: &str = ".pvm-bench-complete";

/// What the hostfs cases found or built; each `Err` is the reason its cases fail.
#[derive(Debug)]
pub struct HostfsEnv {
    /// `ROOT/data` (natively), `/data` in the guest.
    pub data: Result<PathBuf, String>,
    /// `ROOT/data/big`, whose page cache the cold case drops.
    pub big: Result<PathBuf, String>,
    /// The hard-linked copy of the Debian tree with `/lmb`.
    pub debian_copy: Result<PathBuf, String>,
    /// Start-up trees.
    pub small: Result<PathBuf, String>,
    /// The cached Debian tree itself (read only).
    pub debian: Result<PathBuf, String>,
    /// The cached 1 GiB tree.
    pub large: Result<PathBuf, String>,
}

impl HostfsEnv {
    /// Nothing built (no hostfs case selected).
    pub fn none() -> Self {
        let no = || Err("not prepared: no hostfs case was selected".to_string());
        Self { data: no(), big: no(), debian_copy: no(), small: no(), debian: no(), large: no() }
    }

    /// The start-up tree `t`.
    pub fn tree(&self, t: Tree) -> Result<&Path, String> {
        let r = match t {
            Tree::Small => &self.small,
            Tree::Debian => &self.debian,
            Tree::Large => &self.large,
        };
        r.as_deref().map_err(Clone::clone)
    }
}

/// Builds what `needs` asks for: `rootfs` is the benchmark root (it gets `data/`), `lmb` and
/// `busybox` the programs to copy in, `work` the run's work directory.
pub fn prepare(work: &Path, rootfs: &Path, lmb: &Path, busybox: &Path, needs: &[Hostfs]) -> HostfsEnv {
    let mut env = HostfsEnv::none();
    let any = |f: &dyn Fn(Hostfs) -> bool| needs.iter().any(|n| f(*n));
    if any(&|n| matches!(n, Hostfs::Data | Hostfs::Cold)) {
        let data = rootfs.join("data");
        env.data = build_data(&data).map(|()| data.clone());
        env.big = env.data.as_ref().map(|d| d.join("big")).map_err(Clone::clone);
    }
    let cached = cache_dir();
    if any(&|n| matches!(n, Hostfs::Debian | Hostfs::Startup(Tree::Debian))) {
        env.debian = find_debian(cached.as_deref());
    }
    if any(&|n| n == Hostfs::Debian) {
        env.debian_copy = env.debian.clone().and_then(|d| link_copy(&d, &work.join("debian"), lmb));
    }
    if any(&|n| n == Hostfs::Startup(Tree::Small)) {
        let t = work.join("tree-small");
        env.small = build_tree(&t, busybox, &[("data", 16, 512 << 10)]).map(|()| t);
    }
    if any(&|n| n == Hostfs::Startup(Tree::Large)) {
        env.large = cached.ok_or_else(|| "no HOME or XDG_CACHE_HOME for the cached 1 GiB tree".to_string()).and_then(|c| large_tree(&c, busybox));
    }
    env
}

/// The per-user cache directory of pvm (`$XDG_CACHE_HOME/pvm`, else `~/.cache/pvm`), as the
/// Debian test uses it.
fn cache_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|c| c.join("pvm"))
}

fn find_debian(cache: Option<&Path>) -> Result<PathBuf, String> {
    let cache = cache.ok_or("no HOME or XDG_CACHE_HOME: no cached Debian tree")?;
    DEBIAN_TREES
        .iter()
        .map(|n| cache.join(n))
        .find(|t| t.join("usr/bin/tar").exists() && t.join("usr/bin/true").exists())
        .ok_or_else(|| {
            format!(
                "no cached Debian tree in {} (`cargo test --release -p pvm-core --test debian` builds it with debootstrap)",
                cache.display()
            )
        })
}

/// Fills `buf` with data that differs per chunk `seed` (xorshift; not compressible by zeros).
fn fill(buf: &mut [u8], seed: u64) {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    for c in buf.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let b = x.to_le_bytes();
        c.copy_from_slice(&b[..c.len()]);
    }
}

/// Writes `len` bytes of [`fill`] data to `path` and fsyncs it.
fn write_file(path: &Path, len: u64, seed: u64) -> Result<(), String> {
    let mut f = fs::File::create(path).map_err(|e| format!("create {}: {e}", path.display()))?;
    let mut buf = vec![0u8; (1 << 20).min(usize::try_from(len).unwrap_or(1 << 20))];
    let mut left = len;
    let mut chunk = seed;
    while left > 0 {
        fill(&mut buf, chunk);
        chunk += 1;
        let n = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
        f.write_all(&buf[..n]).map_err(|e| format!("write {}: {e}", path.display()))?;
        left -= n as u64;
    }
    f.sync_all().map_err(|e| format!("fsync {}: {e}", path.display()))
}

fn build_data(data: &Path) -> Result<(), String> {
    let files = data.join("files");
    fs::create_dir_all(&files).map_err(|e| format!("mkdir {}: {e}", files.display()))?;
    write_file(&data.join("big"), BIG_BYTES, 1)?;
    for i in 0..SMALL_FILES {
        let p = files.join(format!("f{i:04}"));
        fs::write(&p, [b'x'; 100]).map_err(|e| format!("write {}: {e}", p.display()))?;
    }
    Ok(())
}

/// `dst` := a hard-linked copy of `src` (`cp -al`) with `lmb` copied in as `/lmb`.
fn link_copy(src: &Path, dst: &Path, lmb: &Path) -> Result<PathBuf, String> {
    let _ = fs::remove_dir_all(dst);
    let out = Command::new("cp")
        .arg("-al")
        .arg(src)
        .arg(dst)
        .output()
        .map_err(|e| format!("cannot run cp: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cp -al {} {}: {}",
            src.display(),
            dst.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    fs::copy(lmb, dst.join("lmb")).map_err(|e| format!("copy lmb into the Debian copy: {e}"))?;
    Ok(dst.to_path_buf())
}

/// A start-up tree at `root`: `/bin/true` (a copy of the static busybox), empty `/dev`,
/// `/proc` and `/tmp`, and for each `(dir, count, bytes)` that many files of that size.
fn build_tree(root: &Path, busybox: &Path, dirs: &[(&str, usize, u64)]) -> Result<(), String> {
    for d in ["bin", "dev", "proc", "tmp"] {
        fs::create_dir_all(root.join(d)).map_err(|e| format!("mkdir {}: {e}", root.join(d).display()))?;
    }
    let t = root.join("bin/true");
    fs::copy(busybox, &t).map_err(|e| format!("copy {}: {e}", busybox.display()))?;
    fs::set_permissions(&t, fs::Permissions::from_mode(0o755)).map_err(|e| format!("chmod {}: {e}", t.display()))?;
    let mut seed = 100;
    for (dir, count, bytes) in dirs {
        let d = root.join(dir);
        fs::create_dir_all(&d).map_err(|e| format!("mkdir {}: {e}", d.display()))?;
        for i in 0..*count {
            seed += 1;
            write_file(&d.join(format!("f{i:03}")), *bytes, seed)?;
        }
    }
    Ok(())
}

/// The cached 1 GiB tree under `cache`, built on first use (about 1 GiB written once).
fn large_tree(cache: &Path, busybox: &Path) -> Result<PathBuf, String> {
    let root = cache.join(LARGE_TREE);
    if root.join(COMPLETE).exists() {
        return Ok(root);
    }
    eprintln!("pvm bench: building the 1 GiB start-up tree once in {}", root.display());
    let tmp = cache.join(format!("{LARGE_TREE}.tmp{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    let dirs: Vec<String> = (0..16).map(|i| format!("data/d{i:02}")).collect();
    let spec: Vec<(&str, usize, u64)> = dirs.iter().map(|d| (d.as_str(), 256, 256 << 10)).collect();
    let built = build_tree(&tmp, busybox, &spec)
        .and_then(|()| fs::write(tmp.join(COMPLETE), b"").map_err(|e| format!("write marker: {e}")))
        .and_then(|()| fs::rename(&tmp, &root).map_err(|e| format!("rename into {}: {e}", root.display())));
    if let Err(e) = built {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    Ok(root)
}

/// Drops the host's page cache of `path` and checks that at most 2% of it stays resident.
///
/// # Errors
/// A sentence: the file is on tmpfs (its pages are the file), a host call failed, or the
/// pages stayed.
pub fn drop_cached(path: &Path) -> Result<(), String> {
    let f = fs::File::open(path).map_err(|e| format!("open {}: {e}", path.display()))?;
    // SAFETY: fstatfs writes one statfs into `sfs`.
    let mut sfs: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above; `f` is an open descriptor.
    if unsafe { libc::fstatfs(f.as_raw_fd(), &mut sfs) } != 0 {
        return Err(format!("fstatfs {}: {}", path.display(), std::io::Error::last_os_error()));
    }
    if sfs.f_type == libc::TMPFS_MAGIC {
        return Err(format!("{} is on tmpfs, whose pages cannot be dropped: pass --workdir on a disk filesystem", path.display()));
    }
    f.sync_all().map_err(|e| format!("fsync {}: {e}", path.display()))?;
    // SAFETY: posix_fadvise only takes integers; it returns an errno value.
    let r = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    if r != 0 {
        return Err(format!("posix_fadvise(DONTNEED) {}: {}", path.display(), std::io::Error::from_raw_os_error(r)));
    }
    let (resident, pages) = resident_pages(&f)?;
    if resident * 50 > pages {
        return Err(format!(
            "{resident} of {pages} pages of {} stayed in the host page cache after posix_fadvise(DONTNEED)",
            path.display()
        ));
    }
    Ok(())
}

/// (pages of `f` in the host page cache, pages of `f`): `mincore(2)` over a read-only shared
/// mapping, which faults nothing in.
fn resident_pages(f: &fs::File) -> Result<(u64, u64), String> {
    let len = usize::try_from(f.metadata().map_err(|e| format!("fstat: {e}"))?.len()).map_err(|e| e.to_string())?;
    if len == 0 {
        return Ok((0, 0));
    }
    // SAFETY: a new read-only shared mapping of the whole file; checked for failure and
    // unmapped below.
    let p = unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ, libc::MAP_SHARED, f.as_raw_fd(), 0) };
    if p == libc::MAP_FAILED {
        return Err(format!("mmap for mincore: {}", std::io::Error::last_os_error()));
    }
    let mut vec = vec![0u8; len.div_ceil(4096)];
    // SAFETY: `p` maps `len` bytes; `vec` has one byte per page of it.
    let r = unsafe { libc::mincore(p, len, vec.as_mut_ptr()) };
    let err = std::io::Error::last_os_error();
    // SAFETY: unmaps exactly the mapping made above.
    unsafe { libc::munmap(p, len) };
    if r != 0 {
        return Err(format!("mincore: {err}"));
    }
    Ok((vec.iter().filter(|b| **b & 1 != 0).count() as u64, vec.len() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_tree_has_true_and_its_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bb = dir.path().join("bb");
        fs::write(&bb, b"\x7fELF stand-in").expect("write");
        let root = dir.path().join("t");
        build_tree(&root, &bb, &[("data", 3, 5000)]).expect("builds");
        assert_eq!(fs::read(root.join("bin/true")).expect("true"), b"\x7fELF stand-in");
        for i in 0..3 {
            assert_eq!(fs::metadata(root.join(format!("data/f{i:03}"))).expect("file").len(), 5000);
        }
        // Different files hold different data.
        assert_ne!(fs::read(root.join("data/f000")).ok(), fs::read(root.join("data/f001")).ok());
    }

    #[test]
    fn dropping_the_cache_of_a_file_empties_it_or_says_why() {
        // The test directory may be on tmpfs: then the refusal must say so.
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("f");
        write_file(&p, 4 << 20, 7).expect("write");
        let f = fs::File::open(&p).expect("open");
        match drop_cached(&p) {
            Ok(()) => {
                let (resident, pages) = resident_pages(&f).expect("mincore");
                assert!(pages == 1024 && resident * 50 <= pages, "{resident} of {pages}");
            }
            Err(why) => assert!(why.contains("tmpfs") || why.contains("stayed"), "{why}"),
        }
    }
}
