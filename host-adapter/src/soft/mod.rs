//! The software backend: the guest kernel in a sandbox process K, each guest address space in
//! a sandbox process U whose mappings are the shadow of its page table, H serving hypercalls
//! on one thread per vCPU. See docs/ARCHITECTURE.md.

mod monitor;
mod placement;
mod spaces;
mod vcpu;
mod watchdog;
mod yield_to;

use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use parking_lot::Mutex;
use switcher::{KernelSpawn, SharedMemory};

use crate::devices::Console;
use crate::stats::RunStats;
use crate::{Backend, BackendError, ExitReason, RunOutcome, VmSetup};

pub use spaces::Spaces;

/// The software backend (no hardware virtualization; see the module docs).
#[derive(Debug, Default)]
pub struct SoftBackend;

/// State shared by H's vCPU threads and the monitor for one run.
pub(crate) struct Vm {
    pub(crate) setup: VmSetup,
    pub(crate) shared: SharedMemory,
    pub(crate) spaces: Spaces,
    pub(crate) console: Console,
    /// Set once the VM is over; every H thread then returns.
    pub(crate) stop: AtomicBool,
    /// Why it is over (first writer wins).
    pub(crate) reason: Mutex<Option<ExitReason>>,
    /// Host VMAs one shadow space may use (below the host's `vm.max_map_count`).
    pub(crate) vma_budget: u64,
    /// An eventfd the monitor polls with the pidfds; written when the VM stops so the
    /// monitor returns at once instead of at its next poll timeout.
    pub(crate) stop_event: std::os::fd::OwnedFd,
    /// Host tids of K's vCPU threads (H's own copy, read once at start).
    pub(crate) k_tids: Vec<i32>,
    /// The host CPU of each vCPU (placement).
    pub(crate) cpus: placement::Cpus,
    /// Per vCPU: yields to it in progress (`YIELD_TO`, see `yield_to`).
    pub(crate) boosts: Vec<Mutex<u32>>,
}

impl Vm {
    /// Ends the VM with `reason` unless it already ended, and wakes every H thread.
    pub(crate) fn finish(&self, reason: ExitReason) {
        // A stop request (pvm got SIGTERM, SIGINT or SIGHUP): H's vCPU threads must come back
        // even from a mapper round trip with a U that never answers (stopped, or hostile),
        // which would otherwise hold the VM for its 10 s timeout. Killing the U processes now
        // ends such waits at once (the channel watches U's pidfd); they are killed at the end
        // of the run anyway.
        let kill_spaces = matches!(reason, ExitReason::Stopped(_));
        {
            let mut r = self.reason.lock();
            if r.is_none() {
                *r = Some(reason);
            }
        }
        self.stop.store(true, Ordering::Release);
        // No H thread may stay blocked on an idle stdin.
        self.console.close();
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from a live buffer to the eventfd we own; a failure (counter
        // overflow) is impossible with our few writes and would only delay the monitor.
        let _ = unsafe { libc::write(self.stop_event.as_raw_fd(), one.as_ptr().cast(), one.len()) };
        for v in 0..self.setup.vcpus {
            let _ = switcher::futex::wake(&self.shared.vcpu_page(v).state, i32::MAX);
        }
        if kill_spaces {
            for space in self.spaces.live() {
                space.process.kill();
            }
        }
    }
}

impl Backend for SoftBackend {
    fn name(&self) -> &'static str {
        "soft"
    }

    fn run(&mut self, setup: VmSetup) -> Result<RunOutcome, BackendError> {
        let start = Instant::now();
        if let crate::Placement::OneCpu(cpu) = setup.placement {
            pin_process(cpu)?;
        }
        let cpus = placement::Cpus::new(setup.placement);
        let shared = SharedMemory::create()?;
        let segments: Vec<switcher::KernelSegment> = setup
            .kernel_segments
            .iter()
            .map(|s| switcher::KernelSegment { vaddr: s.vaddr, gpa: s.gpa, len: s.len, prot: s.prot })
            .collect();
        let console = Console::new();
        let mut vm = Vm {
            spaces: Spaces::new(setup.vcpus, cpus.clone()),
            shared,
            console,
            stop: AtomicBool::new(false),
            reason: Mutex::new(None),
            vma_budget: vma_budget(),
            stop_event: eventfd()?,
            k_tids: Vec::new(),
            boosts: (0..setup.vcpus).map(|_| Mutex::new(0)).collect(),
            cpus,
            setup,
        };
        let kernel = switcher::spawn_kernel(&KernelSpawn {
            guest_mem: vm.setup.memory.fd(),
            guest_mem_size: vm.setup.memory.size(),
            shared: &vm.shared,
            segments: &segments,
            entry: vm.setup.kernel_entry,
            vcpus: vm.setup.vcpus,
        })?;
        let k_tids = switcher::kernel_threads(&kernel, &vm.shared, vm.setup.vcpus)?;
        for (v, &tid) in k_tids.iter().enumerate() {
            vm.cpus.place(tid, v as u32);
        }
        vm.k_tids = k_tids;
        let vm = Arc::new(vm);

        let mut stats = RunStats::default();
        std::thread::scope(|scope| {
            let monitor = scope.spawn(|| monitor::run(&vm, &kernel));
            let watchdog = std::thread::Builder::new().name("pvm-watchdog".into()).spawn_scoped(scope, || watchdog::run(&vm));
            let handles: Vec<_> = (0..vm.setup.vcpus)
                .map(|id| {
                    let vm = &vm;
                    std::thread::Builder::new()
                        .name(format!("pvm-vcpu{id}"))
                        .spawn_scoped(scope, move || vcpu::run(vm, id))
                })
                .collect();
            for h in handles {
                match h {
                    Ok(h) => match h.join() {
                        Ok(counters) => {
                            for (total, c) in stats.hypercalls.iter_mut().zip(counters.hypercalls) {
                                total.merge(c);
                            }
                            stats.shadow.filled.merge(counters.filled);
                            stats.shadow.injected.merge(counters.injected);
                            stats.shadow.prefaults.merge(counters.prefaults);
                            stats.shadow.flushes.merge(counters.flushes);
                            stats.yields.progressed.merge(counters.yields.progressed);
                            stats.yields.timed_out.merge(counters.yields.timed_out);
                            stats.yields.boosted += counters.yields.boosted;
                        }
                        Err(_) => vm.finish(ExitReason::KernelDied("an H vCPU thread panicked".into())),
                    },
                    Err(e) => vm.finish(ExitReason::KernelDied(format!("starting a vCPU thread: {e}"))),
                }
            }
            vm.finish(ExitReason::KernelDied("vCPU threads ended".into()));
            let _ = monitor.join();
            if let Ok(w) = watchdog {
                let _ = w.join();
            }
        });
        kernel.kill();
        vm.spaces.release_all(&mut stats.shadow);
        let reason = vm.reason.lock().take().unwrap_or(ExitReason::KernelDied("no reason".into()));
        stats.guest = crate::stats::read_guest_stats(&vm.setup.memory);
        Ok(RunOutcome { reason, wall: start.elapsed(), stats })
    }
}

fn eventfd() -> Result<std::os::fd::OwnedFd, BackendError> {
    // SAFETY: plain syscall; the returned fd is owned by the OwnedFd below.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(BackendError::Host { what: "eventfd", source: std::io::Error::last_os_error() });
    }
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// VMAs a U process may map for the shadow: the host's per-process `vm.max_map_count` less
/// a margin for the stub's own mappings, at most 60 000.
fn vma_budget() -> u64 {
    let max = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(65_530);
    max.saturating_sub(256).min(60_000)
}

/// Pins this process's threads (and the K and U processes it spawns, which inherit the mask)
/// to host CPU `cpu`: a futex wakeup across CPUs costs about 28 us on these VMs, on one CPU
/// about 1 us (design section 4).
fn pin_process(cpu: usize) -> Result<(), BackendError> {
    // SAFETY: `set` is a plain bitmask initialised by CPU_ZERO/CPU_SET below.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` is checked against CPU_SETSIZE by the caller's parse; CPU_SET writes
    // into `set` only.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: pid 0 = this thread; `set` is valid for its size.
    let rc = unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) };
    if rc != 0 {
        return Err(BackendError::Host { what: "pinning to a CPU", source: std::io::Error::last_os_error() });
    }
    Ok(())
}
