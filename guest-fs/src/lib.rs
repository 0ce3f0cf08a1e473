//! guest-fs (in progress).
