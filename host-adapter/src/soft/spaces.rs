//! Live shadow spaces: guest page-table roots, each with its U process, its mapper channel
//! and its `ShadowSpace`. Space ids index the PVCS window (`guest_abi::layout::pvcs_offset`).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use guest_abi::MAX_SPACES;
use guest_abi::mapper::MapOp;
use guest_abi::pvcs::SwitchState;
use parking_lot::{Mutex, RwLock};
use shadow_mmu::{ShadowConfig, ShadowSpace};
use switcher::{MapperChannel, SharedMemory, SpaceSpawn, SpaceThreads, StubProcess};

use crate::GuestRam;
use crate::stats::ShadowTotals;

thread_local! {
    /// The vCPU an H thread serves (set by its hypercall loop); other threads use vCPU 0.
    static CURRENT_VCPU: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

#[cfg(test)]
thread_local! {
    /// Test hook: runs on the releasing thread in the middle of `Spaces::release` (the id
    /// reserved, the U not yet emptied or pooled), where another vCPU's `load` may come in.
    static MID_RELEASE: std::cell::RefCell<Option<Box<dyn FnMut()>>> = const { std::cell::RefCell::new(None) };
}

/// Records that the calling H thread serves vCPU `vcpu`: its shadow operations go to that
/// vCPU's mapper thread in every U.
pub(crate) fn set_current_vcpu(vcpu: u32) {
    CURRENT_VCPU.with(|c| c.set(vcpu));
}

/// The mapper channels of a U process (one per vCPU) as the shadow MMU's `Mapper`, timing
/// each batch. A batch goes to the mapper of the vCPU whose hypercall H serves, so fills of
/// different vCPUs in one space are in flight at once (each channel keeps one batch in
/// flight; the host still serialises the `mmap`s of one U on its `mmap_lock`).
pub struct ChannelMapper {
    channels: Vec<Arc<MapperChannel>>,
    /// Batches applied and their total round-trip time (H -> U mapper -> H), ns.
    batches: AtomicU64,
    batch_ns: AtomicU64,
}

impl ChannelMapper {
    fn new(channels: Vec<Arc<MapperChannel>>) -> Self {
        Self { channels, batches: AtomicU64::new(0), batch_ns: AtomicU64::new(0) }
    }
}

impl shadow_mmu::Mapper for ChannelMapper {
    fn apply(&self, ops: &[MapOp]) -> Result<(), shadow_mmu::MapperError> {
        let t0 = std::time::Instant::now();
        tracing::trace!(?ops, "mapper batch");
        let vcpu = CURRENT_VCPU.with(std::cell::Cell::get) as usize;
        let Some(channel) = self.channels.get(vcpu % self.channels.len().max(1)) else {
            return Err(shadow_mmu::MapperError { failed_index: 0, errno: libc::ESRCH });
        };
        let result = channel.apply(ops);
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.batch_ns.fetch_add(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
        result.map_err(|e| match e {
            switcher::SwitcherError::MapperFailed { index, errno } => {
                shadow_mmu::MapperError { failed_index: index, errno }
            }
            switcher::SwitcherError::InvalidMapOp { index, .. } => {
                shadow_mmu::MapperError { failed_index: index, errno: libc::EINVAL }
            }
            // The U process is gone or stuck: nothing of the batch is known to be applied.
            _ => shadow_mmu::MapperError { failed_index: 0, errno: libc::ESRCH },
        })
    }
}

/// One live space.
pub struct Space {
    /// Space id (PVCS index).
    pub id: u32,
    /// The shadow of the guest page table rooted at `shadow.root()`.
    pub shadow: ShadowSpace<ChannelMapper>,
    /// The U process (dropping the last reference kills it).
    pub process: Arc<StubProcess>,
    /// Its guest threads (H's own record of their tids).
    pub threads: Arc<SpaceThreads>,
    channels: Vec<Arc<MapperChannel>>,
}

/// A U process whose space was released, emptied and kept for the next root: spawning one
/// costs about a millisecond, a fork-heavy guest would pay it per process.
struct Pooled {
    id: u32,
    process: Arc<StubProcess>,
    threads: Arc<SpaceThreads>,
    channels: Vec<Arc<MapperChannel>>,
}

/// Unmaps the whole guest user range of a U process in one mapper batch (cheaper than the
/// shadow's per-extent flush, and exact whatever the shadow recorded). The mapper's filter
/// bounds one `munmap` to `switcher::filters::MAPPER_MAX_LEN` bytes, so the range goes in
/// chunks of that size. Returns whether it succeeded.
fn empty_user_range(channel: &MapperChannel) -> bool {
    use guest_abi::layout::{USER_END, USER_START};
    use guest_abi::mapper::MapOpKind;
    let chunk = (switcher::filters::MAPPER_MAX_LEN - guest_abi::PAGE_SIZE) & !(guest_abi::PAGE_SIZE - 1);
    let ops: Vec<MapOp> = (USER_START..USER_END)
        .step_by(chunk as usize)
        .map(|addr| MapOp {
            kind: MapOpKind::Unmap as u32,
            prot: 0,
            addr,
            len: chunk.min(USER_END - addr),
            offset: 0,
        })
        .collect();
    channel.apply(&ops).is_ok()
}

/// Idle U processes kept at most.
const POOL_MAX: usize = 32;

/// The U processes that are not live spaces but still own their space id (and so the PVCSs of
/// that id): the pooled ones, and the ones whose `RELEASE_PGTBL` is under way (being emptied and
/// parked, which takes a mapper round trip, with no H lock held). Hypercalls of different vCPUs
/// are served at once, so another vCPU's `LOAD_PGTBL` may pick an id during such a release; an
/// id must not be handed to a fresh U until its old U is pooled or gone, or two U processes
/// would serve one PVCS and the old one's park (or pooling) would hit the new space.
#[derive(Default)]
struct Pool {
    /// Oldest first: the longer a U has been pooled, the surer its threads took the reset.
    idle: std::collections::VecDeque<Pooled>,
    /// Ids of spaces between their removal from `by_root` and their pooling or kill.
    releasing: std::collections::HashSet<u32>,
}

impl Pool {
    /// The lowest space id that neither a live space (`live`), a pooled U nor a release under
    /// way owns, if any is left below `MAX_SPACES`.
    fn free_id(&self, live: impl IntoIterator<Item = u32>) -> Option<u32> {
        let mut used: std::collections::HashSet<u32> = live.into_iter().collect();
        used.extend(self.idle.iter().map(|p| p.id));
        used.extend(self.releasing.iter().copied());
        (0..MAX_SPACES).find(|i| !used.contains(i))
    }
}

/// The registry of live spaces.
pub struct Spaces {
    vcpus: u32,
    /// Where each vCPU's threads of a new U go.
    cpus: super::placement::Cpus,
    /// Root GPA -> space id. Read on every shadow hypercall (concurrently from all vCPUs),
    /// written only by LOAD_PGTBL and RELEASE_PGTBL.
    by_root: RwLock<HashMap<u64, u32>>,
    slots: Vec<RwLock<Option<Arc<Space>>>>,
    /// Pooled U processes and the ids of releases under way. Lock order: `by_root`, then
    /// `pool`.
    pool: Mutex<Pool>,
    retired: Mutex<ShadowTotals>,
    /// Host VMAs of all live shadows together, and the most seen at once.
    vmas_live: std::sync::atomic::AtomicI64,
    vmas_peak: AtomicU64,
}

/// Why a space could not be created.
#[derive(Debug, thiserror::Error)]
pub enum SpaceError {
    /// All `MAX_SPACES` ids are in use.
    #[error("too many live address spaces ({MAX_SPACES})")]
    Exhausted,
    /// The root is not a page-aligned GPA inside guest memory.
    #[error("invalid page-table root {0:#x}")]
    BadRoot(u64),
    /// Spawning the U process failed.
    #[error("spawning a shadow space: {0}")]
    Spawn(#[from] switcher::SwitcherError),
}

impl Spaces {
    /// An empty registry for a VM with `vcpus` vCPUs whose threads are placed by `cpus`.
    pub(crate) fn new(vcpus: u32, cpus: super::placement::Cpus) -> Self {
        Self {
            vcpus,
            cpus,
            by_root: RwLock::new(HashMap::new()),
            slots: (0..MAX_SPACES).map(|_| RwLock::new(None)).collect(),
            pool: Mutex::new(Pool::default()),
            vmas_live: std::sync::atomic::AtomicI64::new(0),
            vmas_peak: AtomicU64::new(0),
            retired: Mutex::new(ShadowTotals::default()),
        }
    }

    /// The live space of `root`, if any.
    pub fn get(&self, root: u64) -> Option<Arc<Space>> {
        let id = *self.by_root.read().get(&root)?;
        self.slots.get(id as usize)?.read().clone()
    }

    /// Runs a shadow operation on `space` and keeps the VM-wide count of live host VMAs (and
    /// its peak) up to date with what the operation changed.
    pub fn accounted<R>(&self, space: &Space, op: impl FnOnce() -> R) -> R {
        let before = space.shadow.stats().vmas_current;
        let result = op();
        let after = space.shadow.stats().vmas_current;
        let live = self.vmas_live.fetch_add(after as i64 - before as i64, Ordering::Relaxed)
            + (after as i64 - before as i64);
        self.vmas_peak.fetch_max(live.max(0) as u64, Ordering::Relaxed);
        result
    }

    /// The live space with id `id`, if any.
    pub fn by_id(&self, id: u32) -> Option<Arc<Space>> {
        self.slots.get(id as usize)?.read().clone()
    }

    /// Every live space (for the monitor).
    pub fn live(&self) -> Vec<Arc<Space>> {
        self.slots.iter().filter_map(|s| s.read().clone()).collect()
    }

    /// `LOAD_PGTBL`: the id of `root`'s space, creating it (and its U process) if needed.
    ///
    /// # Errors
    /// [`SpaceError`].
    pub fn load(&self, ram: &GuestRam, shared: &SharedMemory, root: u64) -> Result<u32, SpaceError> {
        if !root.is_multiple_of(guest_abi::PAGE_SIZE) || root >= ram.size() {
            return Err(SpaceError::BadRoot(root));
        }
        let mut by_root = self.by_root.write();
        if let Some(&id) = by_root.get(&root) {
            return Ok(id);
        }
        let reused = self.take_pooled(shared);
        let (id, process, threads, channels, fresh): (_, _, _, Vec<Arc<MapperChannel>>, _) = match reused {
            Some(p) => {
                for v in 0..self.vcpus {
                    shared.pvcs(p.id, v).state.store(SwitchState::Empty as u32, Ordering::Release);
                }
                p.threads.unpark(&p.channels[0]);
                (p.id, p.process, p.threads, p.channels, false)
            }
            None => {
                let id = self.pool.lock().free_id(by_root.values().copied()).ok_or(SpaceError::Exhausted)?;
                let sp = switcher::spawn_space(&SpaceSpawn {
                    guest_mem: ram.fd(),
                    guest_mem_size: ram.size(),
                    shared,
                    space: id,
                    vcpus: self.vcpus,
                })?;
                for v in 0..self.vcpus {
                    if let Some(tid) = sp.threads.tid(v) {
                        self.cpus.place(tid, v);
                    }
                    if let Some(tid) = sp.threads.mapper_tid(v) {
                        self.cpus.place(tid, v);
                    }
                }
                let spin = std::env::var_os("PVM_NO_HANDOFF_SPIN").map_or(self.cpus.mapper_spin(), |_| Default::default());
                for c in &sp.channels {
                    c.set_spin(spin);
                }
                let channels = sp.channels.into_iter().map(Arc::new).collect();
                (id, Arc::new(sp.process), Arc::new(sp.threads), channels, true)
            }
        };
        let shadow = ShadowSpace::new(root, ChannelMapper::new(channels.clone()), ShadowConfig::default());
        *self.slots[id as usize].write() = Some(Arc::new(Space { id, shadow, process, threads, channels }));
        by_root.insert(root, id);
        let mut r = self.retired.lock();
        r.spaces_created += u64::from(fresh);
        r.spaces_reused += u64::from(!fresh);
        r.spaces_peak = r.spaces_peak.max(by_root.len() as u64);
        Ok(id)
    }

    /// A pooled U whose guest threads are confirmed parked (its PVCSs cleared), oldest first.
    /// When none is confirmed yet and fewer than two are pooled, `None`: spawning one more U
    /// (once) beats waiting for a thread that shares H's CPU; otherwise it waits for the
    /// oldest. Pooled Us that died or did not park are killed and dropped.
    fn take_pooled(&self, shared: &SharedMemory) -> Option<Pooled> {
        let mut guard = self.pool.lock();
        let pool = &mut guard.idle;
        // A pooled U that died meanwhile is dropped here (and reaped by its Drop).
        pool.retain(|p| !p.process.has_exited());
        let mut i = 0;
        while i < pool.len() {
            match pool[i].threads.confirm_parked(shared, pool[i].id, false) {
                Some(true) => return pool.remove(i),
                Some(false) => {
                    if let Some(p) = pool.remove(i) {
                        p.process.kill();
                    }
                }
                None => i += 1,
            }
        }
        if pool.len() < 2 {
            return None;
        }
        while let Some(p) = pool.pop_front() {
            if p.threads.confirm_parked(shared, p.id, true) == Some(true) {
                return Some(p);
            }
            p.process.kill();
        }
        None
    }

    /// `RELEASE_PGTBL`: ends `root`'s space. Its U process is emptied (every shadow mapping
    /// unmapped), its guest threads are told to park (`SpaceThreads::park`; `load` confirms it
    /// and clears the PVCSs before the U serves another root, so no guest code of this space
    /// runs there whatever the guest did), and it is pooled; it is killed instead when the
    /// pool is full, a step failed or `pool` is false. Returns whether the space existed.
    ///
    /// The id stays reserved (`Pool::releasing`) from its removal from `by_root` until the U
    /// is pooled or killed, so a concurrent `load` of another vCPU never gives it to a fresh U.
    pub fn release(&self, root: u64, pool: bool) -> bool {
        let (id, space) = {
            let mut by_root = self.by_root.write();
            let Some(id) = by_root.remove(&root) else {
                return false;
            };
            self.pool.lock().releasing.insert(id);
            (id, self.slots[id as usize].write().take())
        };
        #[cfg(test)]
        MID_RELEASE.with(|h| h.borrow_mut().as_mut().map(|f| f()));
        let clean = space.as_ref().is_some_and(|space| {
            self.retire(space);
            let room = pool && self.pool.lock().idle.len() < POOL_MAX;
            room && empty_user_range(&space.channels[0])
                && space.threads.park(&space.channels[0])
                && !space.process.has_exited()
        });
        let mut guard = self.pool.lock();
        if let Some(space) = space {
            if clean && guard.idle.len() < POOL_MAX {
                guard.idle.push_back(Pooled {
                    id,
                    process: space.process.clone(),
                    threads: space.threads.clone(),
                    channels: space.channels.clone(),
                });
            } else {
                space.process.kill();
            }
        }
        // In the same critical section as the pooling: `free_id` sees the id in one of the two.
        guard.releasing.remove(&id);
        true
    }

    fn retire(&self, space: &Space) {
        let s = space.shadow.stats();
        // Its mappings go with it (the U process is emptied or killed).
        self.vmas_live.fetch_sub(s.vmas_current as i64, Ordering::Relaxed);
        let mut r = self.retired.lock();
        r.pages_mapped += s.pages_mapped;
        r.mapper_ops += s.map_ops + s.unmap_ops;
        r.mapper_batches.count += space.shadow.mapper().batches.load(Ordering::Relaxed);
        r.mapper_batches.total_ns += space.shadow.mapper().batch_ns.load(Ordering::Relaxed);
    }

    /// Ends every space and adds all shadow statistics into `totals`.
    pub fn release_all(&self, totals: &mut ShadowTotals) {
        let roots: Vec<u64> = self.by_root.read().keys().copied().collect();
        for root in roots {
            self.release(root, false);
        }
        for p in self.pool.lock().idle.drain(..) {
            p.process.kill();
        }
        let r = self.retired.lock();
        totals.pages_mapped += r.pages_mapped;
        totals.mapper_ops += r.mapper_ops;
        totals.mapper_batches.merge(r.mapper_batches);
        totals.host_vmas_peak = totals.host_vmas_peak.max(self.vmas_peak.load(Ordering::Relaxed));
        totals.spaces_created += r.spaces_created;
        totals.spaces_reused += r.spaces_reused;
        totals.spaces_peak = totals.spaces_peak.max(r.spaces_peak);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// Another vCPU's `LOAD_PGTBL` served while a `RELEASE_PGTBL` empties and parks its U (no
    /// lock held then) must not get the releasing space's id: a fresh U with that id would
    /// share its PVCSs, and the release would then park or pool the wrong U (the 2-vCPU
    /// fork+exec hang: K waiting on the PVCS of a space whose U was parked).
    #[test]
    fn a_load_during_a_release_gets_another_id() {
        let ram = GuestRam::new(16 << 20).expect("guest RAM");
        let shared = SharedMemory::create().expect("shared memory");
        let spaces = Spaces::new(2, super::super::placement::Cpus::default());
        let (root_a, root_b, root_c) = (0x10_0000, 0x20_0000, 0x30_0000);
        let a = spaces.load(&ram, &shared, root_a).expect("load A");
        let (mid_tx, mid_rx) = mpsc::channel();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let b = std::thread::scope(|s| {
            let releasing = s.spawn(|| {
                MID_RELEASE.with(|h| {
                    *h.borrow_mut() = Some(Box::new(move || {
                        mid_tx.send(()).expect("signal mid-release");
                        go_rx.recv().expect("wait for the other vCPU");
                    }));
                });
                spaces.release(root_a, true)
            });
            mid_rx.recv().expect("release reached its middle");
            let b = spaces.load(&ram, &shared, root_b).expect("load B during the release");
            go_tx.send(()).expect("let the release finish");
            assert!(releasing.join().expect("release thread"), "A existed");
            b
        });
        assert_ne!(a, b, "a fresh U got the id of a space still being released");
        let live_b = spaces.get(root_b).expect("B is live");
        assert_eq!((live_b.id, live_b.shadow.root()), (b, root_b), "the release took B's space");
        assert!(spaces.get(root_a).is_none());
        // A's U went to the pool with its id; a third root gets an id nobody else owns.
        let c = spaces.load(&ram, &shared, root_c).expect("load C");
        assert_ne!(c, b);
        let mut totals = ShadowTotals::default();
        spaces.release_all(&mut totals);
        assert_eq!(totals.spaces_created + totals.spaces_reused, 3);
    }
}
