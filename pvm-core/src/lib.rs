//! pvm-core (in progress).
