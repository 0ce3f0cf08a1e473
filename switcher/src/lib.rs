//! Host side of the pvm switcher (soft backend; design sections 3-6, docs/ARCHITECTURE.md).
//!
//! H uses this crate to:
//! - create and map the shared memfd ([`SharedMemory`]: vCPU hypercall pages and PVCSs);
//! - spawn the guest-kernel sandbox K ([`spawn_kernel`]) and one sandbox U per guest address
//!   space ([`spawn_space`]) from the embedded freestanding stub (`switcher/stub`), each a
//!   [`StubProcess`] that dies with H;
//! - change a U's shadow mappings through its mapper thread ([`MapperChannel`]);
//! - build the per-role seccomp filters ([`filters`], on the classic-BPF builder [`bpf`]);
//! - wait and wake on shared futexes ([`futex`]).
//!
//! Everything a K or U process writes into shared memory is untrusted: read it once, validate.
#![deny(missing_docs)]

pub mod affinity;
pub mod bpf;
mod error;
pub mod filters;
pub mod futex;
pub mod image;
mod kernel;
mod mapper;
mod process;
mod setup;
mod shared;
mod space;
mod spawn;
mod sys;

pub use error::SwitcherError;
pub use kernel::{KernelSegment, KernelSpawn, kernel_threads, spawn_kernel};
pub use mapper::MapperChannel;
pub use process::{ExitInfo, StubProcess};
pub use shared::SharedMemory;
pub use space::{SpaceSpawn, SpaceThreads, SpawnedSpace, spawn_space};

/// Signal H sends to a U vCPU thread ([`SpaceThreads::interrupt`]) to raise an interrupt trap;
/// see [`guest_abi::stub::INTERRUPT_SIGNAL`].
pub const INTERRUPT_SIGNAL: i32 = guest_abi::stub::INTERRUPT_SIGNAL;

#[cfg(test)]
mod bpf_interp;
