//! AF_UNIX sockets and readiness (epoll, poll/select, eventfd) compared with Linux: static C
//! programs (`tests/programs/unix_sockets.c`, `unix_epoll.c`) built with glibc and musl give
//! the same stdout and exit status under `pvm run` as natively.

mod common;

use common::{Libc, Stderr, compare, program};
use std::path::Path;

fn same_as_native(name: &str, libc: Libc, args: &[&str]) -> common::Outcome {
    let exe = program(name, libc);
    compare(&exe, args, &[], Path::new("/"), "/", &[], Stderr::Same).1
}

fn sockets(libc: Libc) {
    let guest = same_as_native("unix_sockets", libc, &[]);
    assert!(guest.out().contains("'through'"), "the passed pipe works: {}", guest.describe());
}

fn epoll_echo_level_triggered(libc: Libc) {
    let guest = same_as_native("unix_epoll", libc, &["lt"]);
    assert!(guest.out().contains("clients ok 4"), "{}", guest.describe());
}

fn epoll_echo_edge_triggered(libc: Libc) {
    let guest = same_as_native("unix_epoll", libc, &["et"]);
    assert!(guest.out().contains("clients ok 4"), "{}", guest.describe());
}

fn readiness(libc: Libc) {
    let guest = same_as_native("unix_epoll", libc, &[]);
    assert!(guest.out().contains("et after write 1 ok"), "{}", guest.describe());
}

macro_rules! both_libcs {
    ($($case:ident),* $(,)?) => {
        mod glibc {
            $(#[test] fn $case() { super::$case(super::Libc::Glibc); })*
        }
        mod musl {
            $(#[test] fn $case() { super::$case(super::Libc::Musl); })*
        }
    };
}

both_libcs!(sockets, epoll_echo_level_triggered, epoll_echo_edge_triggered, readiness);
