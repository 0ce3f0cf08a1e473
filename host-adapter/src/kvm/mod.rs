//! The KVM backend: the same guest kernel under `/dev/kvm`, running its `hw` platform (ring 0,
//! its own GDT/TSS/IDT, `syscall`, CR3 per address space, its own #PF handling, LAPIC timer).
//! H builds the VM (memory slots for guest RAM and the backend's area, in-kernel irqchip,
//! vCPUs in long mode at the kernel entry), then serves hypercalls on one thread per vCPU.
//! Design section 9; docs/ARCHITECTURE.md.

mod area;
mod cpu;
mod hostfs;
mod mapping;
mod profile;
mod sse;
mod vcpu;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use kvm_bindings::{KVM_MAX_CPUID_ENTRIES, kvm_userspace_memory_region};
use kvm_ioctls::{Kvm, VmFd};
use parking_lot::Mutex;

use crate::devices::Console;
use crate::stats::RunStats;
use crate::{Backend, BackendError, ExitReason, RunOutcome, VmSetup};

use area::AreaLayout;
use mapping::HostMapping;

/// GPA KVM may use for the TSS it needs on Intel hosts (3 pages; outside guest RAM and the
/// backend's area for any memory size pvm accepts). Source: Linux `virt/kvm/api.rst`,
/// KVM_SET_TSS_ADDR.
const KVM_TSS_GPA: u64 = 0xfffb_d000;

/// The KVM backend.
#[derive(Debug, Default)]
pub struct KvmBackend;

/// State shared by the vCPU threads of one run.
pub(crate) struct Vm {
    pub(crate) setup: VmSetup,
    pub(crate) console: Console,
    area_layout: AreaLayout,
    area: HostMapping,
    /// Set once the VM is over.
    pub(crate) stop: AtomicBool,
    /// Why it is over (first writer wins).
    reason: Mutex<Option<ExitReason>>,
    /// `pthread_t` of each vCPU thread (0 until it starts), for kicking it out of `KVM_RUN`.
    pub(crate) tids: Vec<AtomicU64>,
    /// Tells the control thread the VM stopped.
    stopped: Mutex<Option<mpsc::Sender<()>>>,
    /// RIP sampling ([`profile`]), when asked for.
    pub(crate) profile: Option<profile::Profile>,
}

impl Vm {
    /// Ends the VM with `reason` unless it already ended.
    pub(crate) fn finish(&self, reason: ExitReason) {
        {
            let mut r = self.reason.lock();
            if r.is_none() {
                *r = Some(reason);
            }
        }
        self.stop.store(true, Ordering::Release);
        // No H thread may stay blocked on an idle stdin.
        self.console.close();
        if let Some(tx) = self.stopped.lock().take() {
            let _ = tx.send(());
        }
    }

    /// Copies `len` bytes at `gpa` (RAM or the backend's area), for error reports.
    pub(crate) fn read_gpa(&self, gpa: u64, len: usize) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; len];
        if self.setup.memory.read(gpa, &mut buf).is_ok() {
            return Some(buf);
        }
        let off = gpa.checked_sub(self.area_layout.base)?;
        let bytes = self.area.bytes();
        let end = off.checked_add(len as u64)?;
        (end <= bytes.len() as u64).then(|| bytes[off as usize..end as usize].to_vec())
    }
}

impl Vm {
    /// Sends the kick signal to every started vCPU thread (each leaves `KVM_RUN` with EINTR).
    /// Only called from the control thread while the vCPU threads are not yet joined.
    fn kick_all(&self) {
        for t in &self.tids {
            let tid = t.load(Ordering::Acquire);
            if tid != 0 {
                // SAFETY: `tid` is a pthread_t of a scoped vCPU thread that has not been joined
                // yet (the caller joins only after its last call), so it is still valid.
                unsafe { libc::pthread_kill(tid as libc::pthread_t, kick_signal()) };
            }
        }
    }

    /// Copies `data` to `gpa` (RAM or the backend's area); false when out of range.
    pub(crate) fn write_gpa(&self, gpa: u64, data: &[u8]) -> bool {
        if self.setup.memory.write(gpa, data).is_ok() {
            return true;
        }
        gpa.checked_sub(self.area_layout.base).is_some_and(|off| self.area.write(off as usize, data))
    }
}

fn ioctl<T>(what: &'static str, r: Result<T, vmm_sys_util::errno::Error>) -> Result<T, BackendError> {
    r.map_err(|source| BackendError::Kvm { what, source })
}

/// Signal that kicks a vCPU thread out of `KVM_RUN` (its handler does nothing; the ioctl
/// returns `EINTR`).
fn kick_signal() -> i32 {
    vmm_sys_util::signal::SIGRTMIN() + 2
}

extern "C" fn on_kick(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {}

/// Registers `mapping` as memory slot `slot` at `gpa`.
fn add_slot(vm: &VmFd, slot: u32, gpa: u64, mapping: &HostMapping) -> Result<(), BackendError> {
    let region = kvm_userspace_memory_region {
        slot,
        flags: 0,
        guest_phys_addr: gpa,
        memory_size: mapping.len() as u64,
        userspace_addr: mapping.addr(),
    };
    // SAFETY: the mapping stays alive (owned by `Vm`) until after the VM fd is dropped at the
    // end of `run`, and it is not aliased by any other slot.
    ioctl("KVM_SET_USER_MEMORY_REGION", unsafe { vm.set_user_memory_region(region) })
}

impl Backend for KvmBackend {
    fn name(&self) -> &'static str {
        "kvm"
    }

    fn run(&mut self, setup: VmSetup) -> Result<RunOutcome, BackendError> {
        let start = Instant::now();
        let kvm = Kvm::new().map_err(|e| BackendError::Unavailable(format!("cannot open /dev/kvm: {e}")))?;
        let vm_fd = ioctl("KVM_CREATE_VM", kvm.create_vm())?;
        ioctl("KVM_SET_TSS_ADDR", vm_fd.set_tss_address(KVM_TSS_GPA as usize))?;
        ioctl("KVM_CREATE_IRQCHIP", vm_fd.create_irq_chip())?;

        let mem_size = setup.memory.size();
        let image_len = setup
            .kernel_segments
            .iter()
            .map(|s| s.vaddr + s.len - guest_abi::layout::KERNEL_BASE)
            .max()
            .unwrap_or(0);
        let layout = AreaLayout::new(mem_size, setup.vcpus, image_len);
        if layout.base + layout.size > KVM_TSS_GPA {
            return Err(BackendError::Unavailable(format!(
                "--memory {} MiB is too large for the KVM backend (at most {} MiB)",
                mem_size >> 20,
                (KVM_TSS_GPA - layout.size) >> 21 << 1
            )));
        }
        let ram = HostMapping::shared(setup.memory.fd(), mem_size as usize)?;
        let mut area = HostMapping::anonymous(layout.size as usize)?;
        layout.build(area.bytes_mut(), &setup.kernel_segments)?;
        add_slot(&vm_fd, 0, 0, &ram)?;
        add_slot(&vm_fd, 1, layout.base, &area)?;

        let supported = ioctl("KVM_GET_SUPPORTED_CPUID", kvm.get_supported_cpuid(KVM_MAX_CPUID_ENTRIES))?;
        let xcr0 = cpu::xcr0(&supported);
        let mut vcpus = Vec::new();
        for id in 0..setup.vcpus {
            let fd = ioctl("KVM_CREATE_VCPU", vm_fd.create_vcpu(u64::from(id)))?;
            let (cpuid, has_xsave) = cpu::cpuid_for(&supported, id);
            cpu::configure(&fd, id, &layout, setup.kernel_entry, &cpuid, has_xsave.then_some(xcr0))?;
            vcpus.push(fd);
        }
        vmm_sys_util::signal::register_signal_handler(kick_signal(), on_kick).map_err(|e| BackendError::Host {
            what: "installing the vCPU kick signal handler",
            source: std::io::Error::from_raw_os_error(e.errno()),
        })?;

        let (tx, rx) = mpsc::channel();
        let vm = Vm {
            console: Console::new(),
            area_layout: layout,
            area,
            stop: AtomicBool::new(false),
            reason: Mutex::new(None),
            tids: (0..setup.vcpus).map(|_| AtomicU64::new(0)).collect(),
            stopped: Mutex::new(Some(tx)),
            profile: profile::Profile::from_env(),
            setup,
        };
        let mut stats = RunStats::default();
        let mut exits = [crate::stats::Counter::default(); 4];
        std::thread::scope(|scope| {
            let vm = &vm;
            let mut handles = Vec::new();
            for (id, fd) in vcpus.into_iter().enumerate() {
                let spawned = std::thread::Builder::new()
                    .name(format!("pvm-kvm{id}"))
                    .spawn_scoped(scope, move || vcpu::run(vm, id as u32, fd));
                match spawned {
                    Ok(h) => handles.push(h),
                    Err(e) => vm.finish(ExitReason::KernelDied(format!("starting a vCPU thread: {e}"))),
                }
            }
            // Wait for the end (kicking the vCPUs for samples when profiling), then kick every
            // vCPU still in KVM_RUN until all returned.
            let wait = if vm.profile.is_some() { profile::INTERVAL } else { Duration::from_millis(100) };
            while !vm.stop.load(Ordering::Acquire) && !handles.iter().all(|h| h.is_finished()) {
                // pvm got SIGTERM or the like (noticed within `wait`).
                if let Some(sig) = crate::stop::requested() {
                    vm.finish(ExitReason::Stopped(sig));
                    break;
                }
                let _ = rx.recv_timeout(wait);
                if vm.profile.is_some() {
                    vm.kick_all();
                }
            }
            vm.finish(ExitReason::KernelDied("vCPU threads ended".into()));
            while !handles.iter().all(|h| h.is_finished()) {
                vm.kick_all();
                std::thread::sleep(Duration::from_millis(1));
            }
            for h in handles {
                match h.join() {
                    Ok(c) => {
                        for (total, x) in stats.hypercalls.iter_mut().zip(c.hypercalls) {
                            total.merge(x);
                        }
                        for (total, x) in exits.iter_mut().zip(c.exits) {
                            total.merge(x);
                        }
                    }
                    Err(_) => vm.finish(ExitReason::KernelDied("a vCPU thread panicked".into())),
                }
            }
        });
        drop(vm_fd);
        drop(ram);
        if let Some(p) = &vm.profile {
            p.write();
        }
        stats.exits = vcpu::EXIT_NAMES.iter().copied().zip(exits).filter(|(_, c)| c.count > 0).collect();
        let reason = vm.reason.lock().take().unwrap_or(ExitReason::KernelDied("no reason".into()));
        stats.guest = crate::stats::read_guest_stats(&vm.setup.memory);
        Ok(RunOutcome { reason, wall: start.elapsed(), stats })
    }
}
