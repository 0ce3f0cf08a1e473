//! Fill cost over a 2 MiB region of 4 KiB PTEs: a cold fill after a flush (one coalesced
//! 2 MiB `mmap` from 512 contiguous PTEs), a warm re-fault, and scattered frames with a
//! prefault budget of 16 (17 separate maps). The mapper is an in-memory no-op that counts.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use guest_abi::pvcs::pf_error::{USER, WRITE};
use shadow_mmu::pte::{A, D, RW, US};
use shadow_mmu::testing::{CountingMapper, PageTableBuilder, VecGuestMemory};
use shadow_mmu::{ShadowConfig, ShadowSpace};
use std::hint::black_box;
use std::time::Duration;

const KIB4: u64 = 4096;
const MIB2: u64 = 2 << 20;

fn fill(c: &mut Criterion) {
    let mem = VecGuestMemory::sparse(8 << 20, 4 << 30);
    let mut b = PageTableBuilder::new(&mem, 1 << 20, 8 << 20).unwrap();
    let contiguous = 0x40_0000;
    let scattered = 0x60_0000;
    for i in 0..512 {
        b.map(contiguous + i * KIB4, 0x1000_0000 + i * KIB4, 1, RW | US | A | D).unwrap();
        b.map(scattered + i * KIB4, 0x2000_0000 + i * 2 * KIB4, 1, RW | US | A | D).unwrap();
    }
    let space = ShadowSpace::new(b.root(), CountingMapper::default(), ShadowConfig::default());
    let mut g = c.benchmark_group("fill");
    g.throughput(Throughput::Elements(1));
    g.bench_function("flush_then_fault_2m_coalesced", |bn| {
        bn.iter(|| {
            space.flush(contiguous, MIB2).unwrap();
            space.fault(&mem, black_box(contiguous + 77 * KIB4), USER | WRITE).unwrap()
        });
    });
    g.bench_function("refault_2m_coalesced", |bn| {
        bn.iter(|| space.fault(&mem, black_box(contiguous + 77 * KIB4), USER).unwrap());
    });
    g.bench_function("flush_then_fault_scattered_prefault16", |bn| {
        bn.iter(|| {
            space.flush(scattered, MIB2).unwrap();
            space.fault(&mem, black_box(scattered + 77 * KIB4), USER).unwrap()
        });
    });
    g.finish();
    let m = space.mapper();
    assert!(m.pages.load(std::sync::atomic::Ordering::Relaxed) > 0);
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500));
    targets = fill
}
criterion_main!(benches);
