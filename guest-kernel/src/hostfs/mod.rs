//! hostfs in the guest kernel: the queue driver that carries FUSE requests to the file server
//! F over the rings of the hostfs area, and the boot-time setup of the mounts H lists there.

pub mod queue;
