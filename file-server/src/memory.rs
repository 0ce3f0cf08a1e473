//! Guest RAM as F sees it: the whole guest-memory memfd mapped shared (as virtiofsd maps all of
//! a VM's memory), wrapped in `vm-memory`'s `GuestMemoryMmap` so that every descriptor address
//! and length the guest gives is bounds-checked by `virtio-queue` and `fuse-backend-rs`.

use std::fs::File;

use vm_memory::{FileOffset, GuestAddress, GuestMemory, GuestMemoryMmap};

use crate::doorbell::Doorbells;

/// Guest RAM mapped in F.
pub struct GuestRam {
    mem: GuestMemoryMmap,
    size: u64,
}

/// Why guest RAM could not be mapped.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// The size or the area is not what H promised (H's bug).
    #[error("guest memory: {0}")]
    Layout(String),
    /// The mapping failed.
    #[error("mapping guest memory: {0}")]
    Map(String),
}

impl GuestRam {
    /// Maps `size` bytes of `memfd` at GPA 0 (shared: the guest sees F's replies).
    ///
    /// # Errors
    /// [`MemoryError::Map`] when mmap fails or `size` does not fit `usize`.
    pub fn map(memfd: File, size: u64) -> Result<Self, MemoryError> {
        let len = usize::try_from(size).map_err(|e| MemoryError::Map(e.to_string()))?;
        let mem = GuestMemoryMmap::<()>::from_ranges_with_files([(GuestAddress(0), len, Some(FileOffset::new(memfd, 0)))])
            .map_err(|e| MemoryError::Map(e.to_string()))?;
        Ok(Self { mem, size })
    }

    /// The `vm-memory` view.
    pub fn mem(&self) -> &GuestMemoryMmap {
        &self.mem
    }

    /// The doorbells of the config page at `area_gpa` (page aligned, the page inside RAM).
    ///
    /// # Errors
    /// [`MemoryError::Layout`] when the page is misaligned or outside RAM.
    pub fn doorbells(&self, area_gpa: u64) -> Result<Doorbells<'_>, MemoryError> {
        if !area_gpa.is_multiple_of(4096) || area_gpa.checked_add(4096).is_none_or(|e| e > self.size) {
            return Err(MemoryError::Layout(format!("hostfs area {area_gpa:#x} is not a page of RAM")));
        }
        let ptr = self.mem.get_host_address(GuestAddress(area_gpa)).map_err(|e| MemoryError::Layout(e.to_string()))?;
        // SAFETY: the page is inside the single shared mapping owned by `self.mem`, page
        // aligned (the mapping is), and lives as long as the borrow of `self`.
        Ok(unsafe { Doorbells::new(ptr) })
    }
}
