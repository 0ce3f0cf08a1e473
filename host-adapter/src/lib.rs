//! host-adapter (in progress).
