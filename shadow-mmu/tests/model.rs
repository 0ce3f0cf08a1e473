//! Property test of a shadow space against a reference model: random guest page tables,
//! random edits each followed by the flush the guest must issue, faults, prefaults and
//! spurious flushes; after every step every modelled host page equals a fresh walk (or is
//! absent), the VMA estimate equals the model's, and fault outcomes match the reference.

mod common;

use common::*;
use guest_abi::mapper::{PROT_EXEC, PROT_WRITE};
use guest_abi::pvcs::pf_error::{FETCH, PRESENT, RSVD, USER, WRITE};
use proptest::prelude::*;
use shadow_mmu::testing::RecordingMapper;
use shadow_mmu::{FaultOutcome, ShadowConfig, ShadowSpace};

#[derive(Clone, Copy, Debug)]
enum Step {
    Edit(Edit),
    Fault { gva: u64, access: u64 },
    Prefault { gva: u64, len: u64 },
    Flush { gva: u64, len: u64 },
    FlushAll,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => edit().prop_map(Step::Edit),
        8 => (gva(), prop_oneof![Just(USER), Just(USER | WRITE), Just(USER | FETCH)])
            .prop_map(|(gva, access)| Step::Fault { gva, access }),
        2 => (gva(), prop_oneof![1u64..64, Just(GIB)]).prop_map(|(gva, pages)| Step::Prefault { gva, len: pages * KIB4 }),
        1 => (gva(), 1u64..(2 * MIB2)).prop_map(|(gva, len)| Step::Flush { gva, len }),
        1 => Just(Step::FlushAll),
    ]
}

fn config() -> impl Strategy<Value = ShadowConfig> {
    (prop_oneof![Just(0u32), Just(3), Just(16)], any::<bool>())
        .prop_map(|(prefault_pages, coalesce)| ShadowConfig { prefault_pages, coalesce, ..ShadowConfig::default() })
}

/// The outcome the reference expects for a fault (before the fault's own A/D updates).
fn expected(r: Ref, access: u64) -> Option<u64> {
    let acc = access & (WRITE | FETCH) | USER;
    match r {
        Ref::NotPresent => Some(acc),
        Ref::Reserved => Some(acc | PRESENT | RSVD),
        Ref::Leaf { user, write, exec, .. } => {
            let denied = !user || (access & WRITE != 0 && !write) || (access & FETCH != 0 && !exec);
            denied.then_some(acc | PRESENT)
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, ..ProptestConfig::default() })]
    #[test]
    fn shadow_matches_fresh_walks(cfg in config(), steps in prop::collection::vec(step(), 1..60)) {
        let mem = memory();
        let mut guest = Guest::new(&mem);
        let space = ShadowSpace::new(guest.root(), RecordingMapper::new(), cfg);
        for (i, st) in steps.iter().enumerate() {
            match *st {
                Step::Edit(e) => guest.apply(e, &mut |gva, len| space.flush(gva, len).unwrap()),
                Step::Fault { gva, access } => {
                    let want = expected(ref_walk(&mem, guest.root(), gva), access);
                    let got = space.fault(&mem, gva, access).unwrap();
                    match want {
                        Some(error_code) => prop_assert_eq!(got, FaultOutcome::Inject { error_code }, "step {}", i),
                        None => {
                            prop_assert!(matches!(got, FaultOutcome::Filled { pages } if pages > 0), "step {}: {:?}", i, got);
                            let Ref::Leaf { gpa, write, exec, dirty, .. } = ref_walk(&mem, guest.root(), gva) else {
                                return Err(TestCaseError::fail("leaf vanished"));
                            };
                            prop_assert_eq!(space.mapper().lookup(gva), Some((gpa, want_prot(write, exec, dirty))), "step {}", i);
                            let prot = want_prot(write, exec, dirty);
                            prop_assert!(access & WRITE == 0 || prot & PROT_WRITE != 0);
                            prop_assert!(access & FETCH == 0 || prot & PROT_EXEC != 0);
                        }
                    }
                }
                Step::Prefault { gva, len } => {
                    space.prefault(&mem, gva, len).unwrap();
                }
                Step::Flush { gva, len } => space.flush(gva, len).unwrap(),
                Step::FlushAll => {
                    space.flush_all().unwrap();
                    prop_assert_eq!(space.mapper().mapped_pages(), 0);
                }
            }
            if let Err(e) = check_shadow(&mem, guest.root(), space.mapper()) {
                return Err(TestCaseError::fail(format!("after step {i} {st:?}: {e}")));
            }
            let stats = space.stats();
            prop_assert_eq!(stats.vmas_current, space.mapper().vma_count(), "step {}", i);
            prop_assert!(stats.vmas_peak >= stats.vmas_current);
        }
    }
}
