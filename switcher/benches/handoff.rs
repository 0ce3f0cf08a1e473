//! U <-> K round trip: guest `syscall` -> seccomp trap -> SIGSYS handler publishes to the PVCS
//! -> K (this process) resumes it -> rt_sigreturn -> next `syscall`. The bench process and the
//! U it spawns are pinned to one CPU (the design's same-core handoff, section 4).
//!
//! Run: `CARGO_TARGET_DIR=/work/target-switcher cargo bench -p switcher --bench handoff`.

#[path = "../tests/common/mod.rs"]
mod common;

use common::{CODE_GVA, Harness};
use criterion::{Criterion, criterion_group, criterion_main};
use guest_abi::pvcs::{FpuOp, SwitchState};
use std::sync::atomic::Ordering;
use std::time::Duration;
use switcher::futex;

fn pin_to_cpu0() {
    // SAFETY: zeroed cpu_set_t is valid; we set one bit and apply it to this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

fn handoff(c: &mut Criterion) {
    pin_to_cpu0();
    // syscall; jmp back to it
    let h = Harness::new(&[0x0f, 0x05, 0xeb, 0xfc]);
    let (t, _) = h.run(Harness::regs(CODE_GVA), FpuOp::Reset);
    assert_eq!(t.kind, guest_abi::pvcs::TrapKind::Syscall as u32);
    let p = h.pvcs();
    // SAFETY: K owns the PVCS after a trap; Keep saves the FPU copies.
    unsafe { std::ptr::write_volatile(std::ptr::addr_of_mut!((*p).fpu_op), FpuOp::Keep as u32) };
    let st = &h.shm.pvcs(0, 0).state;
    c.bench_function("u_k_syscall_round_trip", |b| {
        b.iter(|| {
            st.store(SwitchState::KernelToUser as u32, Ordering::Release);
            futex::wake(st, 1).expect("wake");
            loop {
                let s = st.load(Ordering::Acquire);
                if s == SwitchState::UserToKernel as u32 {
                    break;
                }
                futex::wait(st, s, Some(Duration::from_secs(5))).expect("wait");
            }
        });
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = handoff
}
criterion_main!(benches);
