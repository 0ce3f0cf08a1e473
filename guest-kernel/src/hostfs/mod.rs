//! hostfs in the guest kernel: the queue driver that carries FUSE requests to the file server
//! F over the rings of the hostfs area ([`queue`]), and the boot-time mounts H lists in the
//! area's config page (`guest_abi::hostfs`): hostfs trees (the root first) served by
//! [`guest_fs::fuse::HostFs`] over one queue each, and `--tmpfs` mounts.
//!
//! Trust: the config page is written by H before boot (trusted), but it is guest memory that
//! guest-visible code could have reached in a buggy kernel, so it is copied once and every
//! field checked before use (magic, sizes, queue indices within the area, paths). Requests and
//! replies on the queues are checked by the driver and the FUSE client (F is untrusted).

pub mod queue;

use crate::mm::{PAGE_SIZE, kva_to_gpa, phys_to_virt};
use alloc::sync::Arc;
use alloc::vec::Vec;
use guest_abi::boot::BootInfo;
use guest_abi::hostfs::{
    HOSTFS_MAGIC, HostfsConfig, HostfsMount, MAX_HOSTFS_MOUNTS, MOUNT_READ_ONLY, MOUNT_ROOT, MOUNT_TMPFS, QUEUE_SIZE,
};
use guest_fs::Errno;
use guest_fs::fuse::{FuseClient, FuseTransport, HostFs};
use queue::{Memory, Notify, Queue};

/// Guest RAM through the physmap: a kernel address's GPA.
pub struct KernelMem;

impl Memory for KernelMem {
    fn gpa_of(&self, va: *const u8) -> Option<u64> {
        kva_to_gpa(va as u64)
    }
}

/// The hostfs area `[gpa, gpa + len)` if `BootInfo` describes a sound one: page aligned,
/// inside RAM, at least the config page and at most one page per possible queue.
pub fn area(bi: &BootInfo) -> Option<(u64, u64)> {
    let (gpa, len) = (bi.hostfs_gpa, bi.hostfs_len);
    let max = guest_abi::hostfs::area_len(MAX_HOSTFS_MOUNTS);
    let sound = gpa != 0
        && gpa >= bi.kernel_end_gpa
        && gpa % PAGE_SIZE == 0
        && len % PAGE_SIZE == 0
        && (PAGE_SIZE..=max).contains(&len)
        && gpa.checked_add(len).is_some_and(|end| end <= bi.mem_size);
    sound.then_some((gpa, len))
}

/// The mount path of an entry: NUL-padded UTF-8, absolute. `None` if malformed.
fn mount_path(m: &HostfsMount) -> Option<&[u8]> {
    let len = m.path.iter().position(|&b| b == 0).unwrap_or(m.path.len());
    let p = &m.path[..len];
    (p.first() == Some(&b'/') && core::str::from_utf8(p).is_ok()).then_some(p)
}

/// Copies the boot mount table out of the config page and checks it. Errors: `EINVAL`.
fn read_table(gpa: u64, len: u64) -> Result<Vec<HostfsMount>, Errno> {
    // SAFETY: the config page is the first page of the area `area` checked to lie in RAM;
    // HostfsConfig is plain integers (any bit pattern valid) and fits the page (guest-abi
    // asserts). We copy the header fields and mounts once; the doorbells are not read here.
    let (magic, mounts_len, queue_size, mounts) = unsafe {
        let c = phys_to_virt(gpa) as *const HostfsConfig;
        (
            core::ptr::addr_of!((*c).magic).read_volatile(),
            core::ptr::addr_of!((*c).mounts_len).read_volatile(),
            core::ptr::addr_of!((*c).queue_size).read_volatile(),
            core::ptr::addr_of!((*c).mounts).read_volatile(),
        )
    };
    if magic != HOSTFS_MAGIC || mounts_len as usize > MAX_HOSTFS_MOUNTS || queue_size != u32::from(QUEUE_SIZE) {
        return Err(Errno::EINVAL);
    }
    let queues = (len / PAGE_SIZE - 1) as u32;
    let table: Vec<HostfsMount> = mounts[..mounts_len as usize].to_vec();
    let mut used = [false; MAX_HOSTFS_MOUNTS];
    for m in &table {
        mount_path(m).ok_or(Errno::EINVAL)?;
        if m.flags & MOUNT_TMPFS != 0 {
            continue;
        }
        let q = m.queue as usize;
        if m.queue >= queues || q >= MAX_HOSTFS_MOUNTS || used[q] {
            return Err(Errno::EINVAL);
        }
        used[q] = true;
    }
    Ok(table)
}

/// Starts a FUSE session on queue `q` of the area at `gpa`.
fn session(gpa: u64, q: u32) -> Result<Arc<FuseClient>, Errno> {
    let ring = phys_to_virt(gpa + (1 + u64::from(q)) * PAGE_SIZE);
    // SAFETY: q < MAX_HOSTFS_MOUNTS was checked, so the doorbell lies in the config page.
    let bell = unsafe { core::ptr::addr_of!((*(phys_to_virt(gpa) as *const HostfsConfig)).doorbells[q as usize]) };
    let notify = if crate::platform::hw::active() { Notify::Port(q) } else { Notify::Futex };
    // SAFETY: queue q's page lies in the area (q < queues, checked in `read_table`), which the
    // frame allocator never hands out; each queue index is used by one driver only.
    let queue = unsafe { Queue::new(ring, bell, KernelMem, notify) };
    let transport: Arc<dyn FuseTransport> = Arc::new(queue);
    FuseClient::init(transport).map(Arc::new)
}

/// Creates the directory `path` and its missing parents (mode 0755) where the filesystems
/// holding them are writable, as Docker does for volume targets; errors are left to the
/// mount that follows (`ENOENT`, `EROFS`).
fn make_mount_point(path: &[u8]) {
    let vfs = crate::fs::vfs();
    let mut ctx = guest_fs::FsContext::new(vfs);
    ctx.umask = 0;
    let fds = guest_fs::FdTable::new();
    let ends = path.iter().enumerate().skip(1).filter(|&(_, &b)| b == b'/').map(|(i, _)| i);
    for end in ends.chain(core::iter::once(path.len())) {
        let _ = guest_fs::mkdirat(vfs, &ctx, &fds, guest_fs::AT_FDCWD, &path[..end], 0o755);
    }
}

/// Makes the mounts of the boot mount table, in order (the root first when H sent one).
/// A root that cannot be mounted ends the boot (nothing could run); other failures are
/// logged and that mount is skipped.
pub fn mount_boot_table(bi: &BootInfo) {
    let Some((gpa, len)) = area(bi) else {
        if bi.hostfs_gpa != 0 {
            crate::klog!(crate::log::ERROR, "hostfs: area at {:#x}+{:#x} is not sound, no mounts", bi.hostfs_gpa, bi.hostfs_len);
        }
        return;
    };
    let table = match read_table(gpa, len) {
        Ok(t) => t,
        Err(_) => {
            crate::klog!(crate::log::ERROR, "hostfs: malformed boot mount table, no mounts");
            return;
        }
    };
    for m in &table {
        let path = mount_path(m).unwrap_or(b"/");
        let shown = core::str::from_utf8(path).unwrap_or("?");
        let r = if m.flags & MOUNT_TMPFS != 0 {
            crate::fs::mount_config_tmpfs(m)
        } else {
            let ro = m.flags & MOUNT_READ_ONLY != 0;
            if m.flags & MOUNT_ROOT == 0 {
                make_mount_point(path);
            }
            session(gpa, m.queue).and_then(|client| {
                let fs = HostFs::new(client, ro, "hostfs");
                crate::fs::mount_fs(path, Arc::new(fs), ro)
            })
        };
        match r {
            Ok(()) => crate::klog!(crate::log::DEBUG, "hostfs: mounted {}", shown),
            Err(e) if m.flags & MOUNT_ROOT != 0 => {
                crate::klog!(crate::log::ERROR, "hostfs: cannot mount the root: {}", e.name().unwrap_or("error"));
                crate::hcall::shutdown(
                    guest_abi::hypercall::ShutdownKind::KernelPanic,
                    guest_abi::hypercall::panic_code::BOOT,
                )
            }
            Err(e) => crate::klog!(crate::log::WARN, "hostfs: cannot mount {}: {}", shown, e.name().unwrap_or("error")),
        }
    }
}
