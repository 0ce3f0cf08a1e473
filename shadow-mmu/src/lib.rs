//! Host-side shadow MMU of pvm's soft backend (design section 6).
//!
//! One [`ShadowSpace`] per guest address space (keyed by the root GPA, the guest's CR3) turns
//! the guest's own x86-64 4-level page tables, read atomically from guest memory
//! ([`GuestMemory`]), into host mappings applied through a [`Mapper`] (in production the U
//! process's mapper thread). Faults, prefaults and flushes may run concurrently from one
//! thread per vCPU; per-2 MiB-region generation counters keep every host mapping equal to
//! what a fresh walk of the guest page table gives, or absent (see [`space`]).
//!
//! Facts borrowed from the Intel SDM vol. 3A: 4.5 (4-level paging, entry formats), 4.6
//! (access rights), 4.7 (#PF error code), 4.8 (Accessed and Dirty flags).
#![deny(missing_docs)]

pub mod error;
mod extents;
pub mod mapper;
pub mod memory;
mod plan;
pub mod pte;
mod region;
pub mod space;
mod stats;
pub mod testing;
pub mod walk;

pub use error::{MapperError, ShadowError};
pub use mapper::Mapper;
pub use memory::{GuestMemory, HostMappedMemory};
pub use space::{FaultOutcome, ShadowConfig, ShadowSpace};
pub use stats::SpaceStats;
pub use walk::{Mapping, Translation, translate};
