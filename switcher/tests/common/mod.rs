//! Test harness: the test process plays the guest kernel K for one U process (space 0).
#![allow(dead_code)]

use guest_abi::mapper::{MapOp, MapOpKind, PROT_EXEC, PROT_READ, PROT_WRITE};
use guest_abi::pvcs::{FpuOp, Pvcs, SwitchState, TrapKind, TrapRecord, UserRegs};
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use switcher::{MapperChannel, SharedMemory, SpaceSpawn, SpaceThreads, StubProcess, futex, spawn_space};

/// Guest memory size.
pub const MEM: u64 = 16 << 20;
/// Where test code lives (GPA) and runs (GVA).
pub const CODE_GPA: u64 = 0x10_0000;
pub const CODE_GVA: u64 = 0x40_0000;
/// A read-write data page (GPA, GVA); the stack top is at its end.
pub const DATA_GPA: u64 = 0x20_0000;
pub const DATA_GVA: u64 = 0x60_0000;
/// An unmapped GVA and the GPA tests later map there.
pub const HOLE_GVA: u64 = 0x70_0000;
pub const HOLE_GPA: u64 = 0x30_0000;

pub struct Harness {
    pub guest_fd: OwnedFd,
    pub guest: *mut u8,
    pub shm: SharedMemory,
    pub proc: Option<StubProcess>,
    pub mapper: MapperChannel,
    pub threads: SpaceThreads,
}

pub fn map_op(kind: MapOpKind, addr: u64, len: u64, prot: u32, offset: u64) -> MapOp {
    MapOp { kind: kind as u32, prot, addr, len, offset }
}

impl Harness {
    /// Guest memory, shared memory, a U for space 0 with one vCPU, code and data mapped.
    pub fn new(code: &[u8]) -> Self {
        // SAFETY: plain memfd/ftruncate/mmap of a fresh file.
        let (guest_fd, guest) = unsafe {
            let fd = libc::memfd_create(c"test-guest".as_ptr(), libc::MFD_CLOEXEC);
            assert!(fd >= 0);
            assert_eq!(libc::ftruncate(fd, MEM as i64), 0);
            let p = libc::mmap(std::ptr::null_mut(), MEM as usize, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd, 0);
            assert_ne!(p, libc::MAP_FAILED);
            (OwnedFd::from_raw_fd(fd), p.cast::<u8>())
        };
        let shm = SharedMemory::create().expect("shared memory");
        let sp = spawn_space(&SpaceSpawn {
            guest_mem: guest_fd.as_fd(),
            guest_mem_size: MEM,
            shared: &shm,
            space: 0,
            vcpus: 1,
        })
        .expect("spawn U");
        let h = Self { guest_fd, guest, shm, proc: Some(sp.process), mapper: sp.channels.into_iter().next().expect("one channel"), threads: sp.threads };
        h.write(CODE_GPA, code);
        h.mapper
            .apply(&[
                map_op(MapOpKind::Map, CODE_GVA, 0x1000, PROT_READ | PROT_EXEC, CODE_GPA),
                map_op(MapOpKind::Map, DATA_GVA, 0x1000, PROT_READ | PROT_WRITE, DATA_GPA),
            ])
            .expect("map code and data");
        h
    }

    pub fn proc(&self) -> &StubProcess {
        self.proc.as_ref().expect("process")
    }

    pub fn write(&self, gpa: u64, bytes: &[u8]) {
        assert!(gpa + bytes.len() as u64 <= MEM);
        // SAFETY: inside the guest-memory mapping.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.guest.add(gpa as usize), bytes.len()) };
    }

    pub fn read_u64(&self, gpa: u64) -> u64 {
        // SAFETY: inside the guest-memory mapping.
        unsafe { std::ptr::read_volatile(self.guest.add(gpa as usize).cast::<u64>()) }
    }

    pub fn pvcs(&self) -> *mut Pvcs {
        self.shm.pvcs_ptr(0, 0)
    }

    pub fn regs(rip: u64) -> UserRegs {
        UserRegs { rip, rsp: DATA_GVA + 0xff0, rflags: 0x202, ..UserRegs::default() }
    }

    /// K's half of a handoff: publish `regs`, `KernelToUser`, wake.
    pub fn enter(&self, regs: UserRegs, op: FpuOp) {
        let p = self.pvcs();
        // SAFETY: K owns the PVCS (Empty or UserToKernel) until the state store below.
        unsafe {
            std::ptr::write_volatile(std::ptr::addr_of_mut!((*p).regs), regs);
            std::ptr::write_volatile(std::ptr::addr_of_mut!((*p).fpu_op), op as u32);
        }
        let st = &self.shm.pvcs(0, 0).state;
        st.store(SwitchState::KernelToUser as u32, Ordering::Release);
        futex::wake(st, i32::MAX).expect("wake");
    }

    /// Waits up to 5 s for `UserToKernel`; `None` if U died (or timed out).
    pub fn wait_trap(&self) -> Option<(TrapRecord, UserRegs)> {
        let st = &self.shm.pvcs(0, 0).state;
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let s = st.load(Ordering::Acquire);
            if s == SwitchState::UserToKernel as u32 {
                let p = self.pvcs();
                // SAFETY: K owns the PVCS now; copy once.
                return Some(unsafe {
                    (std::ptr::read_volatile(std::ptr::addr_of!((*p).trap)), std::ptr::read_volatile(std::ptr::addr_of!((*p).regs)))
                });
            }
            if self.proc().has_exited() || Instant::now() > deadline {
                return None;
            }
            futex::wait(st, s, Some(Duration::from_millis(10))).expect("futex wait");
        }
    }

    /// Enter and wait for the next trap; panics if U died.
    pub fn run(&self, regs: UserRegs, op: FpuOp) -> (TrapRecord, UserRegs) {
        self.enter(regs, op);
        match self.wait_trap() {
            Some(t) => t,
            None => panic!("U died or hung: {:?}", self.proc().try_wait()),
        }
    }

    pub fn fpu_image(&self) -> Vec<u8> {
        let p = self.pvcs();
        // SAFETY: K owns the PVCS after a trap.
        unsafe {
            let len = std::ptr::read_volatile(std::ptr::addr_of!((*p).fpu_len)) as usize;
            std::slice::from_raw_parts(std::ptr::addr_of!((*p).fpu).cast::<u8>(), len).to_vec()
        }
    }

    pub fn set_fpu_image(&self, img: &[u8]) {
        let p = self.pvcs();
        // SAFETY: K owns the PVCS after a trap.
        unsafe {
            std::ptr::copy_nonoverlapping(img.as_ptr(), std::ptr::addr_of_mut!((*p).fpu).cast::<u8>(), img.len());
            std::ptr::write_volatile(std::ptr::addr_of_mut!((*p).fpu_len), img.len() as u32);
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        drop(self.proc.take());
        // SAFETY: unmapping our own mapping.
        unsafe { libc::munmap(self.guest.cast(), MEM as usize) };
    }
}

pub fn kind(t: &TrapRecord) -> Option<TrapKind> {
    TrapKind::from_raw(t.kind)
}

/// Whether a process with this pid is still running (absent or zombie = not running).
pub fn pid_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            let state = s.rsplit(')').next().and_then(|r| r.split_whitespace().next()).unwrap_or("");
            state != "Z" && state != "X"
        }
        Err(_) => false,
    }
}

/// Reads `/proc/PID/<what>` of a stub process. Stubs are not dumpable (`PR_SET_DUMPABLE 0`),
/// so without CAP_SYS_PTRACE (tests run as an ordinary user) the kernel refuses `maps`, `fd`
/// and `smaps`: then `None`, after printing why the check is skipped.
pub fn stub_proc(pid: i32, what: &str) -> Option<String> {
    let path = format!("/proc/{pid}/{what}");
    let r = if what == "fd" {
        std::fs::read_dir(&path).map(|d| {
            let mut v: Vec<String> = d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
            v.sort();
            v.join(" ")
        })
    } else {
        std::fs::read_to_string(&path)
    };
    match r {
        Ok(s) => Some(s),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            println!("skipping the {path} check: {e} (the stub is not dumpable; run as root to check it)");
            None
        }
        Err(e) => panic!("reading {path}: {e}"),
    }
}
