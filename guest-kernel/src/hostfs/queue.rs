//! The guest side of one hostfs queue: a virtio split-queue driver (virtio 1.2, section 2.7)
//! on the rings H laid out in the hostfs area (`guest_abi::hostfs`), implementing
//! [`guest_fs::fuse::FuseTransport`] for the FUSE client.
//!
//! Each request takes two descriptors from a free list: one device-readable (a bounce copy of
//! the request) and, when a reply is expected, one device-writable (a bounce buffer of the
//! reply's capacity), both from the kernel heap (guest RAM, so their GPA is the physmap
//! address minus the physmap base). The driver publishes the head in the available ring,
//! bumps `avail.idx` (release ordering), then increments the doorbell's `kick` word and
//! futex-wakes it. Several vCPUs may have requests in flight at once: whichever vCPU sees a
//! used entry records it for the request's owner, who copies its reply out.
//!
//! Trust: F is not trusted. The driver never reads back the descriptor table (it keeps its
//! own record of each chain) and checks every used-ring entry: the id must be the head of a
//! chain in flight and the length at most the writable bytes offered; `used.idx` may not run
//! more than [`QUEUE_SIZE`] ahead. Any violation breaks the queue for good (all requests then
//! fail with `EIO`), and the bounce buffers of requests still in flight are leaked rather than
//! freed, since F may still write into them. H's `broken` word (F died) ends every wait
//! with `EIO` too.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU16, AtomicU32, Ordering, fence};
use guest_abi::hostfs::{AVAIL_OFFSET, QUEUE_SIZE, QueueDoorbell, USED_OFFSET};
use guest_fs::Errno;
use guest_fs::fuse::FuseTransport;
use spin::Mutex;

/// Descriptor flag: the chain continues at `next` (`VIRTQ_DESC_F_NEXT`).
const DESC_F_NEXT: u16 = 1;
/// Descriptor flag: device-writable buffer (`VIRTQ_DESC_F_WRITE`).
const DESC_F_WRITE: u16 = 2;
/// Largest request or reply one call may carry, bytes (a 1 MiB payload and its headers).
pub const MAX_TRANSFER: usize = (1 << 20) + 4096;
/// How long one futex wait for a completion lasts before the driver looks again (and checks
/// `broken`), nanoseconds.
const WAIT_SLICE_NS: u64 = 10_000_000;

/// How the doorbells are rung and waited on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notify {
    /// Soft backend: shared futexes on the doorbell words.
    Futex,
    /// KVM backend: `out` to `HOSTFS_PORT` for this queue index (H wakes F, and waits on
    /// `done` for the vCPU), per the convention in `guest_abi::hostfs`.
    Port(u32),
}

/// `out HOSTFS_PORT` with `op`, the queue, the `done` value seen and a timeout (ns); returns
/// H's `rax` (0 done changed, 1 timed out, negative errno).
fn port_doorbell(op: u64, queue: u32, seen: u32, timeout_ns: u64) -> i64 {
    let ret: u64;
    // SAFETY: the port write exits to H (KVM backend only: the caller checked), which reads
    // the registers and writes rax; nothing else changes.
    unsafe {
        core::arch::asm!("out dx, eax", in("dx") guest_abi::hostfs::HOSTFS_PORT,
             inlateout("rax") op => ret, in("rdi") u64::from(queue), in("rsi") u64::from(seen),
             in("r10") timeout_ns, options(nostack, preserves_flags));
    }
    ret as i64
}

/// `struct virtq_desc`.
#[repr(C)]
#[derive(Clone, Copy)]
struct Desc {
    addr: u64,
    len: u32,
    flags: u16,
    next: u16,
}

/// One request in flight: its descriptor ids and bounce buffers (owned here until the used
/// entry arrives, so F never writes into freed memory).
struct InFlight {
    descs: [u16; 2],
    ndesc: usize,
    request: Vec<u8>,
    reply: Vec<u8>,
    /// `Some(len)` once the used entry arrived.
    done: Option<u32>,
}

struct State {
    free: Vec<u16>,
    avail_idx: u16,
    last_used: u16,
    inflight: Vec<Option<Box<InFlight>>>,
    broken: bool,
}

/// Translation between kernel pointers and guest-physical addresses (the physmap in the
/// kernel; identity in host tests).
pub trait Memory: Send + Sync {
    /// GPA of the kernel address `va`, if it is guest RAM.
    fn gpa_of(&self, va: *const u8) -> Option<u64>;
}

/// One hostfs queue.
pub struct Queue<M: Memory> {
    ring: *mut u8,
    bell: *const QueueDoorbell,
    mem: M,
    notify: Notify,
    state: Mutex<State>,
}

// SAFETY: the raw pointers point at the queue's page and doorbell in the hostfs area, which
// live as long as the kernel; the driver's own state is behind `state`'s lock, the shared
// ring words are accessed with volatile/atomic operations only.
unsafe impl<M: Memory> Send for Queue<M> {}
// SAFETY: as above.
unsafe impl<M: Memory> Sync for Queue<M> {}

fn futex_wait_timeout(word: &AtomicU32, expected: u32, ns: u64) {
    let ts = [(ns / 1_000_000_000) as i64, (ns % 1_000_000_000) as i64];
    // SAFETY: futex(FUTEX_WAIT, shared) reads only the live word and the timespec on our
    // stack; K's seccomp filter allows FUTEX_WAIT. The syscall clobbers rcx and r11.
    unsafe {
        core::arch::asm!("syscall", inlateout("rax") 202u64 => _, in("rdi") word.as_ptr(),
             in("rsi") 0u64, in("rdx") u64::from(expected), in("r10") ts.as_ptr(),
             in("r8") 0u64, in("r9") 0u64, lateout("rcx") _, lateout("r11") _,
             options(nostack));
    }
}

fn futex_wake(word: &AtomicU32, count: u32) {
    // SAFETY: futex(FUTEX_WAKE, shared) does not access memory; rcx/r11 clobbered.
    unsafe {
        core::arch::asm!("syscall", inlateout("rax") 202u64 => _, in("rdi") word.as_ptr(),
             in("rsi") 1u64, in("rdx") u64::from(count), lateout("rcx") _, lateout("r11") _,
             options(nostack));
    }
}

impl<M: Memory> Queue<M> {
    /// A driver for the rings at `ring` (one page: descriptor table, available ring at
    /// [`AVAIL_OFFSET`], used ring at [`USED_OFFSET`]) with doorbell `bell`.
    ///
    /// # Safety
    /// `ring` must point at a page-sized, page-aligned area of shared guest RAM and `bell` at
    /// a doorbell, both valid for the kernel's lifetime and used by no other driver.
    pub unsafe fn new(ring: *mut u8, bell: *const QueueDoorbell, mem: M, notify: Notify) -> Self {
        // SAFETY: the caller gives us the page; zeroing the avail ring's flags/idx starts the
        // queue afresh (flags 0: we want interrupts = done wake-ups).
        unsafe {
            core::ptr::write_bytes(ring.add(AVAIL_OFFSET as usize), 0, 4);
        }
        let n = QUEUE_SIZE as usize;
        Self {
            ring,
            bell,
            mem,
            notify,
            state: Mutex::new(State {
                free: (0..QUEUE_SIZE).rev().collect(),
                avail_idx: 0,
                last_used: 0,
                inflight: (0..n).map(|_| None).collect(),
                broken: false,
            }),
        }
    }

    fn bell(&self) -> (&AtomicU32, &AtomicU32, &AtomicU32) {
        // SAFETY: `bell` is valid for the kernel's lifetime (see `new`); the words are 4-byte
        // aligned u32s in shared memory, accessed atomically by every party.
        unsafe {
            let b = self.bell as *const AtomicU32;
            (&*b, &*b.add(1), &*b.add(2))
        }
    }

    fn used_idx(&self) -> u16 {
        // SAFETY: the used ring's idx word lies in the queue page (USED_OFFSET + 2, 2-byte
        // aligned); F writes it, we only load it atomically.
        let idx = unsafe { &*(self.ring.add(USED_OFFSET as usize + 2) as *const AtomicU16) };
        idx.load(Ordering::Acquire)
    }

    fn used_elem(&self, slot: u16) -> (u32, u32) {
        let off = USED_OFFSET as usize + 4 + 8 * usize::from(slot % QUEUE_SIZE);
        // SAFETY: the element lies inside the queue page (checked by guest-abi's asserts);
        // read once by value, F may change it afterwards without effect.
        unsafe {
            let p = self.ring.add(off) as *const u32;
            (p.read_volatile(), p.add(1).read_volatile())
        }
    }

    /// Moves new used entries into the in-flight records; breaks the queue on a bad one.
    /// Returns how many entries arrived.
    fn reap(&self, st: &mut State) -> u16 {
        let used = self.used_idx();
        let new = used.wrapping_sub(st.last_used);
        if new > QUEUE_SIZE {
            st.broken = true;
            return 0;
        }
        while st.last_used != used {
            let (id, len) = self.used_elem(st.last_used);
            st.last_used = st.last_used.wrapping_add(1);
            let ok = (id as usize) < st.inflight.len()
                && st.inflight[id as usize].as_ref().is_some_and(|f| f.done.is_none() && len as usize <= f.reply.len());
            if !ok {
                st.broken = true;
                return 0;
            }
            if let Some(f) = st.inflight[id as usize].as_mut() {
                f.done = Some(len);
            }
        }
        new
    }

    /// Marks the queue broken and leaks every in-flight buffer (F may still write them).
    fn break_queue(st: &mut State) {
        st.broken = true;
        for f in st.inflight.iter_mut() {
            if let Some(f) = f.take() {
                core::mem::forget(f);
            }
        }
    }

    /// Publishes one request. `Ok(None)`: no free descriptors now (try again later).
    fn submit(&self, request: &mut Vec<u8>, reply: &mut Vec<u8>) -> Result<Option<u16>, Errno> {
        let mut st = self.state.lock();
        if st.broken {
            return Err(Errno::EIO);
        }
        let ndesc = if reply.is_empty() { 1 } else { 2 };
        if st.free.len() < ndesc {
            return Ok(None);
        }
        let req_gpa = self.mem.gpa_of(request.as_ptr());
        let rep_gpa = if reply.is_empty() { Some(0) } else { self.mem.gpa_of(reply.as_ptr()) };
        let (Some(req_gpa), Some(rep_gpa)) = (req_gpa, rep_gpa) else {
            return Err(Errno::EIO);
        };
        let mut descs = [0u16; 2];
        for d in descs.iter_mut().take(ndesc) {
            *d = st.free.pop().ok_or(Errno::EIO)?;
        }
        let (request, reply) = (core::mem::take(request), core::mem::take(reply));
        let table = self.ring as *mut Desc;
        let first = Desc {
            addr: req_gpa,
            len: request.len() as u32,
            flags: if ndesc == 2 { DESC_F_NEXT } else { 0 },
            next: descs[1],
        };
        // SAFETY: descriptor ids are < QUEUE_SIZE (from our free list), so the entries lie in
        // the table at the start of the queue page; we own these entries until the used entry.
        unsafe {
            table.add(usize::from(descs[0])).write_volatile(first);
            if ndesc == 2 {
                let second = Desc { addr: rep_gpa, len: reply.len() as u32, flags: DESC_F_WRITE, next: 0 };
                table.add(usize::from(descs[1])).write_volatile(second);
            }
        }
        let head = descs[0];
        st.inflight[usize::from(head)] = Some(Box::new(InFlight { descs, ndesc, request, reply, done: None }));
        let slot = usize::from(st.avail_idx % QUEUE_SIZE);
        // SAFETY: the avail ring's entry `slot` and its idx word lie in the queue page; only
        // the driver writes them. The release fence orders the descriptor and ring writes
        // before the idx update that publishes them (virtio 1.2, 2.7.13).
        unsafe {
            let avail = self.ring.add(AVAIL_OFFSET as usize);
            (avail.add(4 + 2 * slot) as *mut u16).write_volatile(head);
            fence(Ordering::Release);
            st.avail_idx = st.avail_idx.wrapping_add(1);
            (*(avail.add(2) as *const AtomicU16)).store(st.avail_idx, Ordering::Release);
        }
        drop(st);
        let (kick, _, _) = self.bell();
        kick.fetch_add(1, Ordering::Release);
        match self.notify {
            Notify::Futex => futex_wake(kick, 1),
            Notify::Port(q) => {
                port_doorbell(guest_abi::hostfs::HOSTFS_OP_KICK, q, 0, 0);
            }
        }
        Ok(Some(head))
    }

    /// Waits until `head` completes; returns its reply buffer and the length F reported.
    fn wait(&self, head: u16) -> Result<(Vec<u8>, u32), Errno> {
        let (_, done, broken) = self.bell();
        loop {
            let seen = done.load(Ordering::Acquire);
            {
                let mut st = self.state.lock();
                // Entries for other requests: wake their owners (F's wake-up may have
                // reached only this vCPU).
                if !st.broken {
                    let arrived = self.reap(&mut st);
                    let mine = st.inflight[usize::from(head)].as_ref().is_some_and(|f| f.done.is_some());
                    if arrived > u16::from(mine) && self.notify == Notify::Futex {
                        futex_wake(done, i32::MAX as u32);
                    }
                }
                if st.broken || broken.load(Ordering::Acquire) != 0 {
                    Self::break_queue(&mut st);
                    return Err(Errno::EIO);
                }
                let finished = st.inflight[usize::from(head)].as_ref().and_then(|f| f.done);
                if let Some(len) = finished
                    && let Some(f) = st.inflight[usize::from(head)].take()
                {
                    st.free.extend_from_slice(&f.descs[..f.ndesc]);
                    let f = *f;
                    drop(f.request);
                    return Ok((f.reply, len));
                }
            }
            self.sleep(done, seen);
        }
    }

    /// Sleeps until `done` moves past `seen` or a wait slice passes.
    fn sleep(&self, done: &AtomicU32, seen: u32) {
        match self.notify {
            Notify::Futex => futex_wait_timeout(done, seen, WAIT_SLICE_NS),
            Notify::Port(q) => {
                port_doorbell(guest_abi::hostfs::HOSTFS_OP_WAIT, q, seen, WAIT_SLICE_NS);
            }
        }
    }

    /// Waits for a free descriptor pair (another request completing), re-checking `broken`.
    fn wait_for_room(&self) -> Result<(), Errno> {
        let (_, done, broken) = self.bell();
        let seen = done.load(Ordering::Acquire);
        if broken.load(Ordering::Acquire) != 0 || self.state.lock().broken {
            return Err(Errno::EIO);
        }
        self.sleep(done, seen);
        Ok(())
    }
}

impl<M: Memory> FuseTransport for Queue<M> {
    fn call(&self, request: &[&[u8]], reply: &mut [&mut [u8]]) -> guest_fs::Result<usize> {
        let req_len: usize = request.iter().map(|r| r.len()).sum();
        let rep_len: usize = reply.iter().map(|r| r.len()).sum();
        if req_len == 0 || req_len > MAX_TRANSFER || rep_len > MAX_TRANSFER {
            return Err(Errno::ENOMEM);
        }
        let mut req = Vec::new();
        req.try_reserve_exact(req_len).map_err(|_| Errno::ENOMEM)?;
        for r in request {
            req.extend_from_slice(r);
        }
        let mut rep: Vec<u8> = Vec::new();
        rep.try_reserve_exact(rep_len).map_err(|_| Errno::ENOMEM)?;
        rep.resize(rep_len, 0);
        let head = loop {
            match self.submit(&mut req, &mut rep)? {
                Some(h) => break h,
                None => self.wait_for_room()?,
            }
        };
        let (buf, len) = self.wait(head)?;
        let mut copied = 0;
        let len = (len as usize).min(buf.len());
        for r in reply.iter_mut() {
            let take = r.len().min(len - copied);
            r[..take].copy_from_slice(&buf[copied..copied + take]);
            copied += take;
        }
        Ok(copied)
    }
}

#[cfg(test)]
mod tests {
    //! A device thread on the host plays F over real rings in process memory (GPA = host
    //! address), honest or hostile.
    extern crate std;
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    #[repr(C, align(4096))]
    struct Page([u8; 4096]);

    struct Identity;
    impl Memory for Identity {
        fn gpa_of(&self, va: *const u8) -> Option<u64> {
            Some(va as u64)
        }
    }

    /// What the device does with each chain: (head, request bytes, writable capacity) →
    /// (used id, used len, reply bytes).
    type Behaviour = fn(u16, &[u8], usize) -> (u32, u32, Vec<u8>);

    struct Rig {
        queue: Arc<Queue<Identity>>,
        stop: Arc<AtomicBool>,
        dev: Option<std::thread::JoinHandle<()>>,
        bell: &'static QueueDoorbell,
    }

    impl Drop for Rig {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::Release);
            if let Some(d) = self.dev.take() {
                d.join().unwrap();
            }
        }
    }

    fn rig(behave: Behaviour) -> Rig {
        let page: &'static mut Page = std::boxed::Box::leak(std::boxed::Box::new(Page([0; 4096])));
        let bell: &'static QueueDoorbell = std::boxed::Box::leak(std::boxed::Box::new(QueueDoorbell::default()));
        let ring = page.0.as_mut_ptr();
        // SAFETY: the page and doorbell are leaked (live forever) and used by this rig only.
        let queue = Arc::new(unsafe { Queue::new(ring, bell, Identity, Notify::Futex) });
        let stop = Arc::new(AtomicBool::new(false));
        let (ring_addr, bell_addr, stop2) = (ring as usize, bell as *const _ as usize, stop.clone());
        let dev = std::thread::spawn(move || device(ring_addr as *mut u8, bell_addr as *const QueueDoorbell, &stop2, behave));
        Rig { queue, stop, dev: Some(dev), bell }
    }

    fn device(ring: *mut u8, bell: *const QueueDoorbell, stop: &AtomicBool, behave: Behaviour) {
        let b = bell as *const AtomicU32;
        // SAFETY: the doorbell is leaked by `rig`; its words are u32-aligned.
        let (kick, done) = unsafe { (&*b, &*b.add(1)) };
        let mut last_avail = 0u16;
        let mut used_idx = 0u16;
        while !stop.load(Ordering::Acquire) {
            let k = kick.load(Ordering::Acquire);
            // SAFETY: all offsets lie in the leaked ring page.
            let avail = unsafe { (*(ring.add(AVAIL_OFFSET as usize + 2) as *const AtomicU16)).load(Ordering::Acquire) };
            if avail == last_avail {
                futex_wait_timeout(kick, k, 1_000_000);
                continue;
            }
            while last_avail != avail {
                // SAFETY: as above.
                let head = unsafe { (ring.add(AVAIL_OFFSET as usize + 4 + 2 * usize::from(last_avail % QUEUE_SIZE)) as *const u16).read_volatile() };
                last_avail = last_avail.wrapping_add(1);
                // SAFETY: descriptors are in the page; their addresses are our own memory.
                let (req, wcap, waddr) = unsafe {
                    let d = (ring as *const Desc).add(usize::from(head)).read_volatile();
                    let req = core::slice::from_raw_parts(d.addr as *const u8, d.len as usize).to_vec();
                    if d.flags & DESC_F_NEXT != 0 {
                        let w = (ring as *const Desc).add(usize::from(d.next)).read_volatile();
                        (req, w.len as usize, w.addr)
                    } else {
                        (req, 0, 0)
                    }
                };
                let (id, len, out) = behave(head, &req, wcap);
                // SAFETY: the reply fits the writable buffer the driver offered (behaviours
                // never write more than `wcap`); the used element lies in the page.
                unsafe {
                    let n = out.len().min(wcap);
                    core::ptr::copy_nonoverlapping(out.as_ptr(), waddr as *mut u8, n);
                    let e = ring.add(USED_OFFSET as usize + 4 + 8 * usize::from(used_idx % QUEUE_SIZE)) as *mut u32;
                    e.write_volatile(id);
                    e.add(1).write_volatile(len);
                    used_idx = used_idx.wrapping_add(1);
                    (*(ring.add(USED_OFFSET as usize + 2) as *const AtomicU16)).store(used_idx, Ordering::Release);
                }
                done.fetch_add(1, Ordering::Release);
                futex_wake(done, i32::MAX as u32);
            }
        }
    }

    fn echo(head: u16, req: &[u8], wcap: usize) -> (u32, u32, Vec<u8>) {
        let mut out = b"re:".to_vec();
        out.extend_from_slice(req);
        out.truncate(wcap);
        (u32::from(head), out.len() as u32, out)
    }

    #[test]
    fn round_trips_from_many_threads() {
        let r = rig(echo);
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let q = r.queue.clone();
                std::thread::spawn(move || {
                    for i in 0..300u32 {
                        let msg = std::format!("t{t}-{i}");
                        let mut head = [0u8; 3];
                        let mut body = [0u8; 32];
                        let n = q.call(&[msg.as_bytes()], &mut [&mut head, &mut body]).unwrap();
                        assert_eq!(&head, b"re:");
                        assert_eq!(&body[..n - 3], msg.as_bytes());
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // Requests without a reply buffer (FORGET) complete too.
        assert_eq!(r.queue.call(&[b"forget"], &mut []).unwrap(), 0);
    }

    #[test]
    fn a_used_id_not_in_flight_breaks_the_queue() {
        let r = rig(|head, _, _| (u32::from(head) + 1, 0, Vec::new()));
        assert_eq!(r.queue.call(&[b"x"], &mut [&mut [0u8; 8]]), Err(Errno::EIO));
        assert_eq!(r.queue.call(&[b"x"], &mut [&mut [0u8; 8]]), Err(Errno::EIO));
    }

    #[test]
    fn a_used_len_past_the_buffer_breaks_the_queue() {
        let r = rig(|head, _, wcap| (u32::from(head), wcap as u32 + 1, Vec::new()));
        assert_eq!(r.queue.call(&[b"x"], &mut [&mut [0u8; 8]]), Err(Errno::EIO));
        let r = rig(|head, _, _| (u32::from(head) + 1000, 0, Vec::new()));
        assert_eq!(r.queue.call(&[b"x"], &mut [&mut [0u8; 8]]), Err(Errno::EIO));
    }

    #[test]
    fn broken_by_h_fails_with_eio() {
        let r = rig(|_, _, _| (u32::MAX, 0, Vec::new()));
        r.bell.broken_word().store(1, Ordering::Release);
        assert_eq!(r.queue.call(&[b"x"], &mut [&mut [0u8; 8]]), Err(Errno::EIO));
    }

    trait BrokenWord {
        fn broken_word(&self) -> &AtomicU32;
    }
    impl BrokenWord for QueueDoorbell {
        fn broken_word(&self) -> &AtomicU32 {
            // SAFETY: `broken` is a u32 field of a live doorbell; accessed atomically.
            unsafe { &*(core::ptr::addr_of!(self.broken) as *const AtomicU32) }
        }
    }
}
