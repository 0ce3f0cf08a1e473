//! The pvm file server F: one process per VM that serves the guest kernel's hostfs mounts
//! (the `--rootfs` tree, `-v` volumes) with the FUSE protocol over virtio split queues in guest
//! RAM (the device layout is `guest_abi::hostfs`), using `fuse-backend-rs`'s passthrough
//! filesystem, and sandboxed with Landlock, seccomp and a network namespace.
//!
//! - [`config`]: what H passes on F's command line.
//! - [`host`]: H's side: spawn, pidfd watch, `broken` on death, kill on drop.
//! - [`process`]: F's `main`.
//! - [`queue`]: serving one queue.
//! - [`memory`], [`doorbell`]: guest RAM and the doorbell words.
//! - [`sandbox`]: Landlock, seccomp, no network.
//!
//! Trust: F trusts H (its parent, which gives it its configuration) and nothing from the guest;
//! see `queue` and docs/ARCHITECTURE.md ("The file server").

pub mod config;
pub mod confined;
pub mod doorbell;
pub mod host;
pub mod memory;
pub mod process;
pub mod queue;
pub mod sandbox;

pub use config::{MountSpec, ServerConfig};
pub use host::{FileServer, SUBCOMMAND};
