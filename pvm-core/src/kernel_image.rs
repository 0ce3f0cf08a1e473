//! The embedded guest kernel and its loading into guest memory: each PT_LOAD segment at
//! `KERNEL_GPA + (vaddr - KERNEL_BASE)`, zero-filled past its file size (the memfd is zero).

use goblin::elf::{Elf, program_header};
use guest_abi::layout::{KERNEL_BASE, KERNEL_GPA};
use guest_abi::mapper::{PROT_EXEC, PROT_READ, PROT_WRITE};
use host_adapter::{GuestRam, KernelSegment};

/// The guest kernel ELF, built by build.rs.
static KERNEL: &[u8] = include_bytes!(env!("PVM_GUEST_KERNEL"));

/// A loaded kernel.
pub struct LoadedKernel {
    /// Its segments as placed.
    pub segments: Vec<KernelSegment>,
    /// Entry point (virtual).
    pub entry: u64,
    /// First GPA after the image, page aligned.
    pub end_gpa: u64,
}

/// Bytes of guest memory the kernel image needs from `KERNEL_GPA`.
pub fn image_span() -> Result<u64, String> {
    let elf = Elf::parse(KERNEL).map_err(|e| format!("embedded guest kernel: {e}"))?;
    let end = elf
        .program_headers
        .iter()
        .filter(|p| p.p_type == program_header::PT_LOAD)
        .map(|p| p.p_vaddr + p.p_memsz)
        .max()
        .ok_or("embedded guest kernel has no PT_LOAD")?;
    Ok(end.saturating_sub(KERNEL_BASE).next_multiple_of(guest_abi::PAGE_SIZE))
}

/// Copies the kernel into `ram`.
///
/// # Errors
/// A message if the embedded image is malformed or does not fit.
pub fn load(ram: &GuestRam) -> Result<LoadedKernel, String> {
    let elf = Elf::parse(KERNEL).map_err(|e| format!("embedded guest kernel: {e}"))?;
    let mut segments = Vec::new();
    let mut end_gpa = KERNEL_GPA;
    for ph in elf.program_headers.iter().filter(|p| p.p_type == program_header::PT_LOAD) {
        if ph.p_vaddr < KERNEL_BASE {
            return Err(format!("guest kernel segment at {:#x} below KERNEL_BASE", ph.p_vaddr));
        }
        let start = ph.p_vaddr & !(guest_abi::PAGE_SIZE - 1);
        let end = (ph.p_vaddr + ph.p_memsz).next_multiple_of(guest_abi::PAGE_SIZE);
        let gpa = KERNEL_GPA + (start - KERNEL_BASE);
        let file = KERNEL
            .get(ph.p_offset as usize..(ph.p_offset + ph.p_filesz) as usize)
            .ok_or("guest kernel segment beyond its file")?;
        ram.write(KERNEL_GPA + (ph.p_vaddr - KERNEL_BASE), file).map_err(|e| e.to_string())?;
        let mut prot = 0;
        if ph.is_read() {
            prot |= PROT_READ;
        }
        if ph.is_write() {
            prot |= PROT_WRITE;
        }
        if ph.is_executable() {
            prot |= PROT_EXEC;
        }
        segments.push(KernelSegment { vaddr: start, gpa, len: end - start, prot });
        end_gpa = end_gpa.max(gpa + (end - start));
    }
    Ok(LoadedKernel { segments, entry: elf.entry, end_gpa })
}
