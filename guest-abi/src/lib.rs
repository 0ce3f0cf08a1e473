//! The binary interface between the `pvm` host (H), the switcher stub (in K and U processes)
//! and the guest kernel. `no_std`, no dependencies, so the freestanding builds can use it.
//!
//! Everything here that lives in shared memory is written by one side and read by another;
//! each structure says who writes and who reads. Every byte a guest-controlled party (K, U)
//! writes is untrusted input to H: H copies it once, validates it, then uses the copy.
//!
//! Layout and vocabulary follow the founding design (`shared/design/architecture.md`,
//! sections 3, 4 and 7) and PVM (SOSP 2023) for the PVCS.
#![no_std]
#![deny(missing_docs)]

pub mod boot;
pub mod hostfs;
pub mod hypercall;
pub mod layout;
pub mod mapper;
pub mod pvcs;
pub mod stats;
pub mod stub;

/// Version of this ABI. H writes it into [`boot::BootInfo::abi_version`]; the guest kernel and
/// the stub refuse to run against another version. Bump on any layout or numbering change.
pub const ABI_VERSION: u32 = 5;

/// Size of a base page (x86-64 4 KiB page), bytes.
pub const PAGE_SIZE: u64 = 4096;
/// Size of a large page (x86-64 2 MiB page), bytes.
pub const LARGE_PAGE_SIZE: u64 = 2 << 20;
/// Size of a huge page (x86-64 1 GiB page), bytes.
pub const HUGE_PAGE_SIZE: u64 = 1 << 30;
/// Maximum number of vCPUs a VM may have (`pvm run --cpus`).
pub const MAX_VCPUS: u32 = 16;
/// Maximum number of live shadow spaces (guest page-table roots, one U process each) per VM.
pub const MAX_SPACES: u32 = 1024;

/// Backend the guest kernel runs on; selects its platform layer.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Software backend: guest kernel deprivileged in process K, user code in U processes,
    /// transitions through the PVCS and futexes (platform `pv`).
    Soft = 1,
    /// KVM backend: guest kernel at ring 0 under `/dev/kvm` (platform `hw`).
    Kvm = 2,
}

impl Backend {
    /// Decodes a raw value read from shared memory.
    pub fn from_raw(raw: u32) -> Option<Self> {
        match raw {
            1 => Some(Self::Soft),
            2 => Some(Self::Kvm),
            _ => None,
        }
    }
}
