//! The guest page cache on hostfs: `tests/programs/page_cache.c` (private and shared file
//! mappings, write(2)/mmap coherence, truncation and SIGBUS, shared anonymous memory and a
//! process-shared mutex across fork, `/dev/shm`) run in a `-v` volume gives the same output
//! as natively in a host directory, and a file written only through a `MAP_SHARED` mapping
//! holds the bytes on the host after `munmap` (writeback through the file server); a file
//! larger than guest memory reads through mappings (eviction).
//! Every case runs on both backends: `soft::*` and `kvm::*` (skipped without `/dev/kvm`; the
//! large file only with `PVM_TEST_KVM_FULL=1` on software KVM, where it takes minutes).

mod common;

use common::{Libc, Run, Stderr, assert_same, program, pvm_run_args};
use std::path::{Path, PathBuf};

/// The `pc*/kept.dat` file the program left under `dir`.
fn kept_file(dir: &Path) -> PathBuf {
    let sub = std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().starts_with("pc"))
        .expect("the program's work directory");
    sub.path().join("kept.dat")
}

fn shared_mappings_on_a_volume_match_native() {
    let exe = program("page_cache", Libc::Glibc);
    let native_dir = tempfile::tempdir().expect("temp dir");
    let vol = tempfile::tempdir().expect("temp dir");
    let native = Run::native(&exe).arg(native_dir.path()).arg("keep").cwd("/").run().finished();
    let opt = format!("{}:/vol", vol.path().display());
    let guest = Run::pvm().args(pvm_run_args(&["-v", &opt], &[], Some("/"), &exe, &["/vol", "keep"])).run().finished();
    assert_same(&native, &guest, Stderr::Same);
    assert!(guest.out().ends_with("done\n"), "{}", guest.describe());
    let want = b"written through a shared mapping\n";
    for dir in [native_dir.path(), vol.path()] {
        let bytes = std::fs::read(kept_file(dir)).expect("kept.dat");
        assert_eq!(bytes.len(), 4096, "{}", dir.display());
        assert_eq!(&bytes[..want.len()], want, "{}", dir.display());
        assert!(bytes[want.len()..].iter().all(|&b| b == 0));
    }
}

fn a_file_larger_than_guest_memory_reads_through_mappings() {
    // 192 MiB of host data read through 16 MiB mappings with 128 MiB of guest memory: pages
    // nobody maps are dropped as the cache grows past its budget.
    let exe = program("map_big", Libc::Glibc);
    let vol = tempfile::tempdir().expect("temp dir");
    let mut data = vec![0u8; 192 << 20];
    let mut x: u32 = 12345;
    for b in data.iter_mut().step_by(64) {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        *b = (x >> 16) as u8;
    }
    std::fs::write(vol.path().join("big"), &data).expect("write big");
    drop(data);
    let native = Run::native(&exe).arg(vol.path().join("big")).cwd("/").run().finished();
    let opt = format!("{}:/vol", vol.path().display());
    let guest = Run::pvm().args(pvm_run_args(&["-v", &opt, "--memory", "128M"], &[], Some("/"), &exe, &["/vol/big"])).run().finished();
    assert_same(&native, &guest, Stderr::Same);
    assert!(guest.out().starts_with("size 201326592 hash "), "{}", guest.describe());
}

mod soft {
    #[test]
    fn shared_mappings_on_a_volume_match_native() {
        super::shared_mappings_on_a_volume_match_native();
    }
    #[test]
    fn a_file_larger_than_guest_memory_reads_through_mappings() {
        super::a_file_larger_than_guest_memory_reads_through_mappings();
    }
}

mod kvm {
    #[test]
    fn shared_mappings_on_a_volume_match_native() {
        super::common::on_kvm("shared_mappings_on_a_volume_match_native", super::shared_mappings_on_a_volume_match_native);
    }
    #[test]
    fn a_file_larger_than_guest_memory_reads_through_mappings() {
        super::common::on_kvm_unless_slow(
            "a_file_larger_than_guest_memory_reads_through_mappings",
            "192 MiB faulted in through the file server",
            super::a_file_larger_than_guest_memory_reads_through_mappings,
        );
    }
}
