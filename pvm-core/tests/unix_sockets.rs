//! AF_UNIX sockets and readiness (epoll, poll/select, eventfd, timerfd, signalfd, pidfd,
//! close_range, memfd) compared with Linux: static C programs (`tests/programs/unix_sockets.c`,
//! `unix_epoll.c`, `unix_fds.c`) built with glibc and musl give the same stdout and exit
//! status under `pvm run` as natively; `unix_hostile.c` must leave the guest kernel standing.

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

/// The same program with its path names on hostfs (a `--volume`): the socket file is a host
/// special file made by the file server, the connection stays inside the guest.
fn sockets_on_hostfs(libc: Libc) {
    let exe = program("unix_sockets", libc);
    let native_dir = tempfile::tempdir().expect("temp dir");
    let guest_dir = tempfile::tempdir().expect("temp dir");
    let native = common::Run::native(&exe).arg(native_dir.path().to_str().expect("utf-8")).cwd("/").run().finished();
    let vol = format!("{}:/mnt/vol", guest_dir.path().display());
    let guest = common::Run::pvm()
        .args(common::pvm_run_args(&["--volume", &vol], &[], None, &exe, &["/mnt/vol"]))
        .run()
        .finished();
    common::assert_same(&native, &guest, Stderr::Same);
    assert!(guest.out().contains("is socket 1"), "{}", guest.describe());
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

fn special_fds(libc: Libc) {
    let guest = same_as_native("unix_fds", libc, &[]);
    assert!(guest.out().contains("link '/memfd:pvm-test (deleted)'"), "{}", guest.describe());
}

/// Hostile arguments (`tests/programs/unix_hostile.c`): bogus pointers, huge counts, garbage
/// control messages and 20,000 random socket/epoll calls fail with errnos; the guest kernel
/// survives and the program finishes. Run under pvm only (random calls natively could reach
/// the host's own sockets).
fn hostile_arguments(libc: Libc) {
    let exe = program("unix_hostile", libc);
    let guest = common::Run::pvm().args(common::pvm_run_args(&[], &[], None, &exe, &[])).run().finished();
    assert_eq!(guest.status, 0, "{}", guest.describe());
    assert_eq!(guest.out(), "done\n", "{}", guest.describe());
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

/// The same cases on `--backend kvm` (skipped without KVM); the echo servers and the
/// 20,000-call fuzz loop stay on the soft backend, as they take minutes on software KVM.
macro_rules! on_kvm {
    ($($case:ident),* $(,)?) => {
        mod kvm_glibc {
            $(#[test] fn $case() {
                super::common::on_kvm(concat!("glibc::", stringify!($case)), || super::$case(super::Libc::Glibc));
            })*
        }
    };
}

both_libcs!(sockets, sockets_on_hostfs, epoll_echo_level_triggered, epoll_echo_edge_triggered, readiness, special_fds, hostile_arguments);
on_kvm!(sockets, readiness, special_fds);
