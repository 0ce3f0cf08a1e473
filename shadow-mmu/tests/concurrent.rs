//! Concurrent variant of the model test: several threads fault and prefault on one space
//! while another edits the guest page tables and issues the flushes x86 requires. At the
//! quiescent point after every round, every modelled host page must equal a fresh walk (or
//! be absent) and the VMA estimate must equal the model's.

mod common;

use common::*;
use guest_abi::pvcs::pf_error::{FETCH, USER, WRITE};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use shadow_mmu::testing::RecordingMapper;
use shadow_mmu::{ShadowConfig, ShadowSpace};
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

const ROUNDS: usize = 300;
const EDITS: usize = 40;
const FAULTERS: usize = 3;
/// Faults (or prefaults) each faulter issues per round at most.
const FAULTS: usize = 48;

fn run(cfg: ShadowConfig, seed_rounds: usize) {
    let mem = memory();
    let mut guest = Guest::new(&mem);
    let root = guest.root();
    let space = ShadowSpace::new(root, RecordingMapper::new(), cfg);
    let mut runner = TestRunner::deterministic();
    let edits = edit();
    let gvas = gva();
    let faults = AtomicU64::new(0);
    let mut mapped_at_checks = 0;
    for round in 0..seed_rounds {
        // Edits that drop everything (PML4E toggles) only early in a round, so that the
        // quiescent check has mappings to look at.
        let plan: Vec<Edit> = (0..EDITS)
            .map(|_| edits.new_tree(&mut runner).unwrap().current())
            .enumerate()
            .filter(|(i, e)| *i < EDITS / 3 || !matches!(e, Edit::UpperFlags { which: 0, .. }))
            .map(|(_, e)| e)
            .collect();
        let targets: Vec<Vec<u64>> =
            (0..FAULTERS).map(|_| (0..64).map(|_| gvas.new_tree(&mut runner).unwrap().current()).collect()).collect();
        let stop = AtomicBool::new(false);
        let start = Barrier::new(FAULTERS + 1);
        std::thread::scope(|s| {
            for (t, mine) in targets.iter().enumerate() {
                let (space, mem, stop, faults, start) = (&space, &mem, &stop, &faults, &start);
                s.spawn(move || {
                    let accesses = [USER, USER | WRITE, USER | FETCH];
                    start.wait();
                    for i in t..t + FAULTS {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let gva = mine[i % mine.len()];
                        if i % 7 == 0 {
                            space.prefault(mem, gva, 16 * KIB4).unwrap();
                        } else {
                            space.fault(mem, gva, accesses[i % 3]).unwrap();
                        }
                        faults.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
            start.wait();
            for e in plan {
                guest.apply(e, &mut |gva, len| space.flush(gva, len).unwrap());
                std::thread::yield_now();
            }
            stop.store(true, Ordering::Relaxed);
        });
        mapped_at_checks += space.mapper().mapped_pages();
        if let Err(e) = check_shadow(&mem, root, space.mapper()) {
            panic!("round {round}: {e}");
        }
        assert_eq!(space.stats().vmas_current, space.mapper().vma_count(), "round {round}");
    }
    let st = space.stats();
    assert!(faults.load(Ordering::Relaxed) > 0);
    assert!(st.fills > 0 && st.retries + st.locked_fills > 0 && mapped_at_checks > 0, "the test exercised nothing: {st:?}");
    eprintln!("{cfg:?}: {st:?}, pages checked {mapped_at_checks}");
}

#[test]
fn concurrent_fills_never_leave_stale_mappings() {
    run(ShadowConfig { prefault_pages: 8, ..ShadowConfig::default() }, ROUNDS);
}

#[test]
fn concurrent_fills_never_leave_stale_mappings_locked_fallback() {
    // optimistic_retries = 0: every fill walks with the region locks held.
    run(ShadowConfig { prefault_pages: 4, coalesce: false, optimistic_retries: 0, ..ShadowConfig::default() }, ROUNDS / 3);
}
