//! Building the setup record ([`guest_abi::stub::SetupRecord`]) and the memfd that carries it.

use crate::SwitcherError;
use crate::bpf::Insn;
use guest_abi::stub::{self, SetupRecord, StubRole};
use std::os::fd::{AsFd, OwnedFd};

/// A zeroed record for `role` with the common header filled in.
pub(crate) fn new_record(role: StubRole, space: u32, vcpus: u32, guest_mem_size: u64) -> Box<SetupRecord> {
    // SAFETY: SetupRecord is plain integers and arrays of them: all-zero is a valid value.
    let mut rec: Box<SetupRecord> = unsafe { Box::<SetupRecord>::new_zeroed().assume_init() };
    rec.magic = stub::SETUP_MAGIC;
    rec.abi_version = guest_abi::ABI_VERSION;
    rec.role = role as u32;
    rec.space = space;
    rec.vcpus = vcpus;
    rec.guest_mem_size = guest_mem_size;
    rec
}

/// Copies `prog` into a filter slot; returns its length.
pub(crate) fn put_filter(slot: &mut [Insn; stub::MAX_FILTER_INSNS], prog: &[Insn]) -> Result<u32, SwitcherError> {
    if prog.len() > stub::MAX_FILTER_INSNS || prog.is_empty() {
        return Err(SwitcherError::Bpf(format!("filter of {} instructions", prog.len())));
    }
    slot[..prog.len()].copy_from_slice(prog);
    Ok(prog.len() as u32)
}

/// A memfd holding exactly `rec`.
pub(crate) fn record_memfd(rec: &SetupRecord) -> Result<OwnedFd, SwitcherError> {
    let len = std::mem::size_of::<SetupRecord>();
    let fd = crate::sys::memfd(c"pvm-stub-setup", len as u64, 0)?;
    // SAFETY: SetupRecord is repr(C) plain data without padding holes that matter (all bytes
    // were zero-initialised); viewing it as bytes is sound.
    let bytes = unsafe { std::slice::from_raw_parts((rec as *const SetupRecord).cast::<u8>(), len) };
    crate::sys::write_all_at(fd.as_fd(), bytes)?;
    Ok(fd)
}

/// `dup` of `fd` with close-on-exec (the spawner moves it into place in the child).
pub(crate) fn dup(fd: std::os::fd::BorrowedFd<'_>) -> Result<OwnedFd, SwitcherError> {
    fd.try_clone_to_owned().map_err(|e| SwitcherError::Os { op: "dup", source: e })
}

/// Polls until `ready()` holds, the process exits (its exit is the error) or `timeout` passes.
pub(crate) fn wait_ready(
    proc: &crate::StubProcess,
    timeout: std::time::Duration,
    mut ready: impl FnMut() -> bool,
) -> Result<(), SwitcherError> {
    let deadline = std::time::Instant::now() + timeout;
    let mut pause = std::time::Duration::from_micros(20);
    loop {
        if ready() {
            return Ok(());
        }
        if proc.has_exited() {
            let info = proc.wait()?;
            return Err(SwitcherError::StartFailed(info));
        }
        if std::time::Instant::now() > deadline {
            return Err(SwitcherError::StartTimeout);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(std::time::Duration::from_millis(2));
    }
}
