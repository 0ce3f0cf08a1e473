//! The pvm guest kernel (design section 8): a small Linux-ABI kernel that runs unmodified
//! static x86-64 programs. `no_std`; host-testable except for the platform and entry code.
#![cfg_attr(not(test), no_std)]
#![deny(missing_docs)]

extern crate alloc;

pub mod arch;
pub mod boot;
pub mod console;
pub mod cpustat;
pub mod elf;
pub mod epoll;
pub mod eventfd;
pub mod exec;
pub mod fifo;
pub mod fs;
pub mod futex;
pub mod hcall;
pub mod heap;
pub mod hostfs;
pub mod log;
pub mod mm;
pub mod oom;
pub mod percpu;
pub mod pidfd;
pub mod pipe;
pub mod platform;
pub mod proc;
pub mod procfs;
pub mod rand;
pub mod sched;
pub mod signal;
pub mod signalfd;
pub mod socket;
pub mod stack;
pub mod stats;
pub mod sync;
pub mod sys;
pub mod time;
pub mod timerfd;
pub mod vdso;
pub mod waitq;
#[cfg(not(test))]
pub mod rt;
