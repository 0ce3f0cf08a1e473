//! switcher (in progress).
