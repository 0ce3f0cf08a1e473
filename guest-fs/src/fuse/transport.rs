//! The boundary between the guest kernel's FUSE client (hostfs) and the queue that carries
//! its requests to the file server F.
//!
//! The client builds each request exactly as `fuse(4)` and virtio-fs lay it out (a
//! `fuse_in_header` followed by the opcode's arguments) and reads the reply as a
//! `fuse_out_header` followed by the opcode's payload. The transport only moves bytes: on the
//! soft and KVM backends it is a virtio split queue in guest memory served by F
//! (`docs/ARCHITECTURE.md`, "hostfs"); host tests implement it by calling a FUSE server in
//! the same process.
//!
//! Trust: the reply comes from F, which the guest kernel does not trust. The transport
//! guarantees only that at most the reply buffers' total length was written and that the
//! returned length is the number of bytes F claims to have written, bounded by that total;
//! the client validates every header field (`len`, `error`, `unique`) and every payload
//! before use.

use crate::errno::Result;

/// Carries FUSE requests to the file server and their replies back. Shared by every vCPU.
pub trait FuseTransport: Send + Sync {
    /// Sends one request, the concatenation of `request` (a `fuse_in_header` whose `len` is
    /// the total length, then the arguments), and waits for its reply, which is written into
    /// `reply` in order (the `fuse_out_header` first, then the payload) without writing past
    /// the slices.
    ///
    /// Returns the number of reply bytes written (at most the sum of the `reply` lengths).
    /// Blocks the calling vCPU until the reply arrives (a hostfs call is synchronous).
    ///
    /// Errors: `EIO` when the queue or the server is broken (the server died, a reply is
    /// malformed at the transport level, the queue was reset), `ENOMEM` when the request does
    /// not fit the queue's buffers. A FUSE-level error is *not* an `Err`: it arrives as
    /// `fuse_out_header::error` in the reply.
    fn call(&self, request: &[&[u8]], reply: &mut [&mut [u8]]) -> Result<usize>;
}
