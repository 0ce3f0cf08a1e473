//! pvm's vDSO. The library half (always built, `no_std`, also used by the guest kernel) is the
//! layout of the vvar data page and the clock arithmetic both sides share, so that a clock
//! read through the vDSO and the same clock read by the syscall give the same value. With the
//! `image` feature the crate also holds the exported `__vdso_*` functions of the ELF shared
//! object that the guest kernel maps into every process (`AT_SYSINFO_EHDR`, see
//! guest-kernel/src/vdso.rs and docs/ARCHITECTURE.md, "The vDSO").

#![cfg_attr(not(test), no_std)]

pub mod vvar;

#[cfg(all(feature = "image", not(test)))]
mod image;
