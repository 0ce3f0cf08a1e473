//! Permission checks as Linux's `generic_permission` does them (`path_resolution(7)`,
//! `capabilities(7)`: root's `CAP_DAC_OVERRIDE` passes read/write checks and search on
//! directories, but executing a non-directory needs at least one `x` bit).

use crate::context::FsContext;
use crate::errno::{Errno, Result};
use crate::inode::{FileType, InodeState};

/// Read permission bit of an access mask.
pub const MAY_READ: u32 = 4;
/// Write permission bit.
pub const MAY_WRITE: u32 = 2;
/// Execute / search permission bit.
pub const MAY_EXEC: u32 = 1;

/// Checks `mask` (`MAY_*` bits) for `ctx` on an inode of type `ftype` with state `st`;
/// `EACCES` when denied.
pub(crate) fn check(ctx: &FsContext, ftype: FileType, st: &InodeState, mask: u32) -> Result<()> {
    if ctx.uid == 0 {
        if mask & MAY_EXEC != 0 && ftype != FileType::Directory && st.perm & 0o111 == 0 {
            return Err(Errno::EACCES);
        }
        return Ok(());
    }
    let bits = if ctx.uid == st.uid {
        st.perm >> 6
    } else if ctx.in_group(st.gid) {
        st.perm >> 3
    } else {
        st.perm
    } & 7;
    if bits & mask == mask { Ok(()) } else { Err(Errno::EACCES) }
}

/// True when `ctx` owns the inode or is root (`inode_owner_or_capable`).
pub(crate) fn is_owner(ctx: &FsContext, st: &InodeState) -> bool {
    ctx.uid == 0 || ctx.uid == st.uid
}

/// Sticky-directory rule (`unlink(2)` EPERM): in a directory with `S_ISVTX`, only the
/// file's owner, the directory's owner or root may remove or rename an entry.
pub(crate) fn sticky_ok(ctx: &FsContext, dir: &InodeState, victim: &InodeState) -> bool {
    dir.perm & 0o1000 == 0 || ctx.uid == 0 || ctx.uid == dir.uid || ctx.uid == victim.uid
}
