//! Concurrent faults on one shadow space from 1 and 2 threads. `distinct_regions`: each
//! thread faults in its own 2 MiB regions (a coalesced 512-page fill each time, no-op
//! counting mapper); with no space-wide lock on the fault path the throughput (elements/s =
//! faults/s) should double from 1 to 2 threads on 2 free cores. `same_region`: both threads
//! fault in one region, which serialises them on its lock (the contrast).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use guest_abi::pvcs::pf_error::USER;
use shadow_mmu::pte::{A, D, RW, US};
use shadow_mmu::testing::{CountingMapper, PageTableBuilder, VecGuestMemory};
use shadow_mmu::{ShadowConfig, ShadowSpace};
use std::time::{Duration, Instant};

const KIB4: u64 = 4096;
const MIB2: u64 = 2 << 20;
const BASE: u64 = 1 << 30;
const REGIONS_PER_THREAD: u64 = 4;

fn scaling(c: &mut Criterion) {
    let mem = VecGuestMemory::sparse(16 << 20, 8 << 30);
    let mut b = PageTableBuilder::new(&mem, 1 << 20, 16 << 20).unwrap();
    // Thread t uses regions t*16 .. t*16+4, far apart (no shared cache lines or locks).
    for r in 0..2 * 16 {
        for i in 0..512 {
            let gva = BASE + r * MIB2 + i * KIB4;
            b.map(gva, (1 << 30) + r * MIB2 + i * KIB4, 1, RW | US | A | D).unwrap();
        }
    }
    let space = ShadowSpace::new(b.root(), CountingMapper::default(), ShadowConfig::default());
    let mut g = c.benchmark_group("scaling");
    for (name, same) in [("distinct_regions", false), ("same_region", true)] {
        for threads in [1u64, 2] {
            g.throughput(Throughput::Elements(threads));
            g.bench_function(BenchmarkId::new(name, threads), |bn| {
                bn.iter_custom(|iters| {
                    let start = Instant::now();
                    std::thread::scope(|s| {
                        for t in 0..threads {
                            let (space, mem) = (&space, &mem);
                            s.spawn(move || {
                                let first = if same { 0 } else { t * 16 };
                                for i in 0..iters {
                                    let region = first + i % REGIONS_PER_THREAD;
                                    let gva = BASE + region * MIB2 + (i * 37 % 512) * KIB4;
                                    space.fault(mem, gva, USER).unwrap();
                                }
                            });
                        }
                    });
                    start.elapsed()
                });
            });
        }
    }
    g.finish();
    let st = space.stats();
    assert_eq!(st.retries + st.locked_fills, 0, "no flushes, no conflicts");
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_millis(500));
    targets = scaling
}
criterion_main!(benches);
