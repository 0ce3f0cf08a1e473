//! hostfs: the guest kernel's FUSE client, a filesystem whose files stay on the host and are
//! served by the file server F over a [`FuseTransport`].

mod transport;

pub use transport::FuseTransport;
