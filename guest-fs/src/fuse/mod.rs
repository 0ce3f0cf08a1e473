//! hostfs: the guest kernel's FUSE client, a filesystem whose files stay on the host and are
//! served by the file server F over a [`FuseTransport`].
//!
//! - [`abi`]: the wire structs of `linux/fuse.h` (7.31);
//! - [`FuseClient`]: one session: request encoding, reply validation, lookup counts;
//! - [`types`]: the validated reply types the VFS uses;
//! - [`HostFs`]: the VFS filesystem (`Filesystem`, `InodeOps`, `FileOps`) over a session;
//! - [`FuseTransport`]: the queue boundary (the guest kernel's virtio driver; host tests call
//!   a FUSE server in-process).

pub mod abi;
mod client;
mod dirent;
mod hostfs;
mod transport;
pub mod types;

pub use client::{DEFAULT_MAX_READ, FuseClient, XATTR_NAME_MAX, XATTR_SIZE_MAX};
pub use hostfs::{FUSE_SUPER_MAGIC, HostFile, HostFs, HostNode};
pub use transport::FuseTransport;
pub use types::{
    AttrReply, Caller, Connection, DirEntry, Entry, FileAttr, Lock, Opened, SetAttr, StatfsReply,
    Validity,
};
