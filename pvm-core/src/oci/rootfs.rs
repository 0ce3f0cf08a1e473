//! Mount points in the container's root filesystem, made on the host before boot as runc
//! makes them: the guest kernel creates a missing mount point itself only on a writable root,
//! so a read-only root (`root.readonly`, `podman run --read-only`) needs them made here.
//!
//! Trust: the root filesystem is the user's (an image), so its paths are walked one component
//! at a time with `openat(O_NOFOLLOW | O_DIRECTORY)` from the root's own descriptor, and
//! `mkdirat` makes what is missing: a symlink (or `..`, refused by `cli::parse_guest_path`)
//! can never lead the walk out of the root.

use std::ffi::CString;
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};

use anyhow::{Context as _, Result, bail};

use crate::cli::RunArgs;

fn open_dir_at(dir: libc::c_int, name: &CString) -> std::io::Result<OwnedFd> {
    // SAFETY: openat on a descriptor we hold with a NUL-terminated name; the result is owned.
    let fd = unsafe { libc::openat(dir, name.as_ptr(), libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_RDONLY) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Makes the directories of every volume and tmpfs target of `args` beneath `args.rootfs`
/// (mode 0755), where missing.
///
/// # Errors
/// A component is a symlink or not a directory, or cannot be made.
pub fn make_mount_points(args: &RunArgs) -> Result<()> {
    let Some(root) = &args.rootfs else { return Ok(()) };
    let targets = args.volumes.iter().map(|v| &v.guest).chain(args.tmpfs.iter().map(|t| &t.guest));
    for target in targets {
        let root_fd = std::fs::File::open(root).with_context(|| format!("root.path {}", root.display()))?;
        let mut dir: OwnedFd = root_fd.into();
        for comp in target.split('/').filter(|c| !c.is_empty()) {
            let name = CString::new(comp)?;
            dir = match open_dir_at(dir.as_raw_fd(), &name) {
                Ok(d) => d,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                    // SAFETY: mkdirat on a descriptor we hold with a NUL-terminated name.
                    if unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), 0o755) } != 0 {
                        let e = std::io::Error::last_os_error();
                        if e.raw_os_error() != Some(libc::EEXIST) {
                            return Err(e).with_context(|| format!("making the mount point {target} in the root filesystem"));
                        }
                    }
                    open_dir_at(dir.as_raw_fd(), &name).with_context(|| format!("mount point {target} in the root filesystem"))?
                }
                Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR)) => {
                    bail!("mount point {target}: `{comp}` in the root filesystem is a symlink or not a directory (pvm does not follow symlinks to mount points)")
                }
                Err(e) => return Err(e).with_context(|| format!("mount point {target} in the root filesystem")),
            };
        }
    }
    Ok(())
}
