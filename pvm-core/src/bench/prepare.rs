//! Builds what every contender runs, once per `pvm bench` run: `lmb` compiled from the C source
//! embedded in this binary (`gcc -static -O2`), the host's static busybox, `/init`, and the
//! root filesystem as a directory and as a `newc` cpio archive.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `benches/programs/lmb.c`, compiled at bench time so every contender runs the same binary.
const LMB_SOURCE: &str = include_str!("../../../benches/programs/lmb.c");
/// `benches/programs/init.sh`: `/init` of the QEMU and UML guests.
const INIT_SCRIPT: &str = include_str!("../../../benches/programs/init.sh");

/// Where a static busybox is usually found (Debian's busybox-static puts it in /bin).
const BUSYBOX_CANDIDATES: &[&str] = &["/bin/busybox", "/usr/bin/busybox", "/usr/local/bin/busybox"];

/// The built root filesystem.
#[derive(Debug)]
pub struct Built {
    /// The root directory.
    pub rootfs: PathBuf,
    /// The cpio archive of it.
    pub initramfs: PathBuf,
    /// `gcc --version`'s first line.
    pub compiler: String,
    /// Which busybox was copied in.
    pub busybox: PathBuf,
}

/// Builds into `work` (which must exist).
pub fn build(work: &Path) -> Result<Built, String> {
    let rootfs = work.join("rootfs");
    for dir in ["", "bin", "dev", "proc", "sys", "tmp"] {
        fs::create_dir_all(rootfs.join(dir))
            .map_err(|e| format!("mkdir {}: {e}", rootfs.join(dir).display()))?;
    }
    let src = work.join("lmb.c");
    fs::write(&src, LMB_SOURCE).map_err(|e| format!("write {}: {e}", src.display()))?;
    let lmb = rootfs.join("lmb");
    let out = Command::new("gcc")
        .args(["-static", "-O2", "-pthread", "-o"])
        .arg(&lmb)
        .arg(&src)
        .output()
        .map_err(|e| format!("cannot run gcc ({e}); ci/bench-peers.sh installs it"))?;
    if !out.status.success() {
        return Err(format!(
            "gcc -static failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let compiler = Command::new("gcc")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_string)
        })
        .unwrap_or_default();

    let busybox = find_static_busybox()?;
    for name in ["busybox", "sh"] {
        let dst = rootfs.join("bin").join(name);
        fs::copy(&busybox, &dst).map_err(|e| format!("copy {}: {e}", busybox.display()))?;
    }
    let init = rootfs.join("init");
    fs::write(&init, INIT_SCRIPT).map_err(|e| format!("write {}: {e}", init.display()))?;
    fs::set_permissions(&init, fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("chmod init: {e}"))?;

    let initramfs = work.join("initramfs.cpio");
    write_cpio(&rootfs, &initramfs)?;
    Ok(Built {
        rootfs,
        initramfs,
        compiler,
        busybox,
    })
}

/// The first static busybox of [`BUSYBOX_CANDIDATES`] (no `PT_INTERP`: it must run in guests
/// that have no dynamic loader).
fn find_static_busybox() -> Result<PathBuf, String> {
    for c in BUSYBOX_CANDIDATES {
        let Ok(bytes) = fs::read(c) else { continue };
        if let Ok(elf) = goblin::elf::Elf::parse(&bytes)
            && elf.interpreter.is_none()
        {
            return Ok(PathBuf::from(c));
        }
    }
    Err("no static busybox found (install busybox-static; ci/bench-peers.sh does)".into())
}

/// Writes `root`'s tree (directories and regular files) as a `newc` cpio archive.
fn write_cpio(root: &Path, out: &Path) -> Result<(), String> {
    let mut entries = Vec::new();
    collect(root, root, &mut entries)?;
    let file = fs::File::create(out).map_err(|e| format!("create {}: {e}", out.display()))?;
    let mut w = std::io::BufWriter::new(file);
    for (ino, (rel, path, is_dir)) in (1u32..).zip(&entries) {
        let meta = fs::metadata(path).map_err(|e| format!("stat {}: {e}", path.display()))?;
        let mode = meta.permissions().mode();
        let builder = cpio::newc::Builder::new(rel)
            .ino(ino)
            .mode(mode)
            .nlink(if *is_dir { 2 } else { 1 });
        if *is_dir {
            let wr = builder.write(&mut w, 0);
            wr.finish().map_err(|e| format!("cpio: {e}"))?;
        } else {
            let data = fs::read(path).map_err(|e| format!("read {}: {e}", path.display()))?;
            let len = u32::try_from(data.len())
                .map_err(|_| format!("{} is too large for cpio", path.display()))?;
            let mut wr = builder.write(&mut w, len);
            wr.write_all(&data).map_err(|e| format!("cpio: {e}"))?;
            wr.finish().map_err(|e| format!("cpio: {e}"))?;
        }
    }
    let mut w = cpio::newc::trailer(w).map_err(|e| format!("cpio: {e}"))?;
    w.flush()
        .map_err(|e| format!("write {}: {e}", out.display()))
}

/// Every directory and regular file under `dir`, parents first: (path relative to `root`,
/// host path, is a directory).
fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf, bool)>) -> Result<(), String> {
    let mut names: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|e| format!("read {}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    names.sort();
    for p in names {
        let rel = p
            .strip_prefix(root)
            .map_err(|e| e.to_string())?
            .to_string_lossy()
            .into_owned();
        let meta = fs::symlink_metadata(&p).map_err(|e| format!("stat {}: {e}", p.display()))?;
        if meta.is_dir() {
            out.push((rel, p.clone(), true));
            collect(root, &p, out)?;
        } else if meta.is_file() {
            out.push((rel, p, false));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpio_holds_the_tree() {
        let dir = std::env::temp_dir().join(format!("pvm-bench-cpio-{}", std::process::id()));
        let root = dir.join("root");
        fs::create_dir_all(root.join("bin")).expect("mkdir");
        fs::write(root.join("bin/x"), b"hello").expect("write");
        let out = dir.join("a.cpio");
        write_cpio(&root, &out).expect("cpio");
        let mut r = fs::File::open(&out).expect("open");
        let mut names = Vec::new();
        loop {
            let rd = cpio::newc::Reader::new(r).expect("entry");
            if rd.entry().is_trailer() {
                break;
            }
            names.push((rd.entry().name().to_string(), rd.entry().file_size()));
            r = rd.finish().expect("next");
        }
        assert_eq!(names, [("bin".to_string(), 0), ("bin/x".to_string(), 5)]);
        fs::remove_dir_all(&dir).expect("cleanup");
    }
}
