//! Serving one hostfs queue: a virtio split queue (virtio 1.2, section 2.7) whose rings H placed
//! at page `1 + queue` of the hostfs area, one FUSE request per descriptor chain, answered by
//! `fuse-backend-rs`'s `Server` over the mount's passthrough filesystem (lookups confined to the
//! tree: [`crate::confined`]).
//!
//! Trust: everything in the rings and buffers is written by the guest kernel and may change
//! under F at any time. `virtio-queue` bounds the available index against the queue size and
//! each chain's length by the queue size (loops end), and checks every descriptor against
//! guest RAM; `fuse-backend-rs` reads the request through those checked slices and never
//! writes past the device-writable descriptors. A malformed request gets a used entry of
//! length 0 (the guest reads that as `EIO`); a malformed ring (available index more than a
//! queue ahead) makes the queue stop serving, which only hurts the guest.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use fuse_backend_rs::api::server::Server;
use fuse_backend_rs::passthrough::PassthroughFs;
use fuse_backend_rs::transport::{Reader, VirtioFsWriter};
use guest_abi::hostfs::{AVAIL_OFFSET, QUEUE_SIZE, USED_OFFSET};
use virtio_queue::{Queue, QueueT};
use vm_memory::{GuestAddress, GuestMemoryMmap};

use crate::confined::Confined;
use crate::doorbell::{self, Doorbells, Word};

/// The filesystem a queue serves.
pub type Fs = PassthroughFs<()>;

/// Why a queue could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("hostfs queue {queue}: {why}")]
pub struct QueueError {
    queue: u32,
    why: String,
}

/// One queue and the filesystem behind it.
pub struct QueueServer<'m> {
    mem: &'m GuestMemoryMmap,
    queue: Queue,
    server: Server<Confined<Arc<Fs>>>,
    kick: &'m AtomicU32,
    done: &'m AtomicU32,
}

impl<'m> QueueServer<'m> {
    /// Sets up queue `queue` of the area at `area_gpa` in `mem`, serving `fs`.
    ///
    /// # Errors
    /// [`QueueError`] when the rings are not inside guest RAM or the index is out of range.
    pub fn new(mem: &'m GuestMemoryMmap, doorbells: Doorbells<'m>, area_gpa: u64, queue: u32, fs: Arc<Fs>) -> Result<Self, QueueError> {
        let err = |why: String| QueueError { queue, why };
        let kick = doorbells.word(queue, Word::Kick).ok_or_else(|| err("index out of range".into()))?;
        let done = doorbells.word(queue, Word::Done).ok_or_else(|| err("index out of range".into()))?;
        let page = area_gpa
            .checked_add((1 + u64::from(queue)) * 4096)
            .ok_or_else(|| err("ring page address overflows".into()))?;
        let mut q = Queue::new(QUEUE_SIZE).map_err(|e| err(e.to_string()))?;
        q.try_set_desc_table_address(GuestAddress(page)).map_err(|e| err(e.to_string()))?;
        q.try_set_avail_ring_address(GuestAddress(page + AVAIL_OFFSET)).map_err(|e| err(e.to_string()))?;
        q.try_set_used_ring_address(GuestAddress(page + USED_OFFSET)).map_err(|e| err(e.to_string()))?;
        q.set_ready(true);
        if !q.is_valid(mem) {
            return Err(err(format!("rings at {page:#x} are not inside guest RAM")));
        }
        Ok(Self { mem, queue: q, server: Server::new(Confined(fs)), kick, done })
    }

    /// Serves every chain the guest has made available and publishes the used entries; then,
    /// if there were any, increments `done` and wakes it. Returns how many chains it served.
    pub fn serve_available(&mut self) -> usize {
        let mem = self.mem;
        let mut served = 0;
        while let Some(chain) = self.queue.pop_descriptor_chain(mem) {
            let head = chain.head_index();
            let len = self.handle(chain);
            if self.queue.add_used(mem, head, len).is_err() {
                // The used ring is inside RAM (checked at setup), so this is a bad head index
                // from the guest: nothing to return it to.
                log::warn!("hostfs: bad descriptor head {head}");
            }
            served += 1;
        }
        if served > 0 {
            self.done.fetch_add(1, Ordering::Release);
            doorbell::futex_wake(self.done);
        }
        served
    }

    /// One request: returns the reply's length in bytes (0 for no reply or a malformed
    /// request).
    fn handle(&self, chain: virtio_queue::DescriptorChain<&GuestMemoryMmap>) -> u32 {
        let reader = match Reader::from_descriptor_chain(self.mem, chain.clone()) {
            Ok(r) => r,
            Err(e) => {
                log::warn!("hostfs: bad request chain: {e}");
                return 0;
            }
        };
        let writer = match VirtioFsWriter::new(self.mem, chain) {
            Ok(w) => w,
            Err(e) => {
                log::warn!("hostfs: bad reply chain: {e}");
                return 0;
            }
        };
        match self.server.handle_message(reader, writer.into(), None, None) {
            Ok(n) => u32::try_from(n).unwrap_or(0),
            Err(e) => {
                log::warn!("hostfs: request failed: {e}");
                0
            }
        }
    }

    /// Serves the queue forever: serve what is available, then wait for the guest's next
    /// `kick` (the value is read before the ring, so a kick in between is never lost).
    pub fn run(&mut self) -> ! {
        loop {
            let seen = self.kick.load(Ordering::Acquire);
            if self.serve_available() == 0 {
                doorbell::futex_wait(self.kick, seen, None);
            }
        }
    }
}
