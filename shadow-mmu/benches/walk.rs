//! Walk latency: the side-effect-free 4-level walk (`translate`) for 4 KiB and 2 MiB leaves,
//! and the whole fault path for one 4 KiB page (walk, A bit, plan, region lock, no-op mapper).

use criterion::{Criterion, criterion_group, criterion_main};
use guest_abi::pvcs::pf_error::USER;
use shadow_mmu::pte::{A, D, RW, US};
use shadow_mmu::testing::{CountingMapper, PageTableBuilder, VecGuestMemory};
use shadow_mmu::{ShadowConfig, ShadowSpace, translate};
use std::hint::black_box;
use std::time::Duration;

fn walk(c: &mut Criterion) {
    let mem = VecGuestMemory::sparse(8 << 20, 4 << 30);
    let mut b = PageTableBuilder::new(&mem, 1 << 20, 8 << 20).unwrap();
    let g4k = 0x40_0000 + 0x7000;
    let g2m = 1 << 30;
    b.map(g4k, 0x100_0000, 1, RW | US | A | D).unwrap();
    b.map(g2m, 0x20_0000, 2, RW | US | A | D).unwrap();
    let root = b.root();
    let mut g = c.benchmark_group("walk");
    g.bench_function("translate_4k", |bn| bn.iter(|| translate(&mem, root, black_box(g4k))));
    g.bench_function("translate_2m", |bn| bn.iter(|| translate(&mem, root, black_box(g2m + 0x1234))));
    let space = ShadowSpace::new(root, CountingMapper::default(), ShadowConfig { prefault_pages: 0, ..ShadowConfig::default() });
    g.bench_function("fault_4k_one_page", |bn| bn.iter(|| space.fault(&mem, black_box(g4k), USER)));
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500));
    targets = walk
}
criterion_main!(benches);
