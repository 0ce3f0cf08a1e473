//! Role K smoke test: a 114-byte hand-assembled "kernel" makes one hypercall round trip per
//! vCPU through its VcpuPage, proving the physmap, the kernel segment, the shared window, the
//! per-vCPU stacks and the entry ABI; then a forbidden syscall kills K (its seccomp filter).
//!
//! The blob (Intel syntax): rbx = K_SHARED_BASE + vcpu * 4096; nr = backend (rdx);
//! args[0] = *(u64*)boot_info_va; args[1] = rsp at entry; state = Request; futex wake; wait
//! for Response; if ret == 1 then getpid (forbidden) else exit(0).

mod common;

use common::pid_alive;
use guest_abi::layout;
use guest_abi::pvcs::HcallState;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use switcher::{ExitInfo, KernelSegment, KernelSpawn, SharedMemory, futex, spawn_kernel};

const BLOB: [u8; 114] = [
    0x48, 0xbb, 0x00, 0x00, 0x00, 0x00, 0xe1, 0x7f, 0x00, 0x00, 0x48, 0xc1, 0xe7, 0x0c, 0x48, 0x01, 0xfb, 0x48,
    0x89, 0x53, 0x40, 0x48, 0x8b, 0x06, 0x48, 0x89, 0x43, 0x48, 0x48, 0x89, 0x63, 0x50, 0xc7, 0x03, 0x01, 0x00,
    0x00, 0x00, 0x48, 0x89, 0xdf, 0xbe, 0x01, 0x00, 0x00, 0x00, 0xba, 0xff, 0xff, 0xff, 0x7f, 0xb8, 0xca, 0x00,
    0x00, 0x00, 0x0f, 0x05, 0x8b, 0x03, 0x83, 0xf8, 0x02, 0x74, 0x13, 0x48, 0x89, 0xdf, 0x31, 0xf6, 0x89, 0xc2,
    0x45, 0x31, 0xd2, 0xb8, 0xca, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xeb, 0xe6, 0x48, 0x8b, 0x43, 0x68, 0x48, 0x83,
    0xf8, 0x01, 0x74, 0x0b, 0x31, 0xff, 0xb8, 0x3c, 0x00, 0x00, 0x00, 0x0f, 0x05, 0x0f, 0x0b, 0xb8, 0x27, 0x00,
    0x00, 0x00, 0x0f, 0x05, 0x0f, 0x0b,
];

const MEM: u64 = 16 << 20;

fn wait_state(shm: &SharedMemory, vcpu: u32, want: HcallState, k: &switcher::StubProcess) {
    let st = &shm.vcpu_page(vcpu).state;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let s = st.load(Ordering::Acquire);
        if s == want as u32 {
            return;
        }
        assert!(!k.has_exited(), "K died: {:?}", k.try_wait());
        assert!(Instant::now() < deadline, "vcpu {vcpu} stuck in state {s}");
        futex::wait(st, s, Some(Duration::from_millis(10))).expect("futex");
    }
}

#[test]
fn kernel_blob_makes_a_hypercall_round_trip_per_vcpu_then_dies_by_its_filter() {
    // SAFETY: plain memfd/ftruncate/pwrite on a fresh file.
    let guest = unsafe {
        let fd = libc::memfd_create(c"k-guest".as_ptr(), libc::MFD_CLOEXEC);
        assert!(fd >= 0);
        assert_eq!(libc::ftruncate(fd, MEM as i64), 0);
        let magic = guest_abi::boot::BOOT_MAGIC.to_le_bytes();
        assert_eq!(libc::pwrite(fd, magic.as_ptr().cast(), 8, layout::BOOT_INFO_GPA as i64), 8);
        assert_eq!(libc::pwrite(fd, BLOB.as_ptr().cast(), BLOB.len(), layout::KERNEL_GPA as i64), BLOB.len() as isize);
        OwnedFd::from_raw_fd(fd)
    };
    let shm = SharedMemory::create().expect("shared");
    let seg = KernelSegment { vaddr: layout::KERNEL_BASE, gpa: layout::KERNEL_GPA, len: 0x1000, prot: 5 };
    let k = spawn_kernel(&KernelSpawn {
        guest_mem: guest.as_fd(),
        guest_mem_size: MEM,
        shared: &shm,
        segments: &[seg],
        entry: layout::KERNEL_BASE,
        vcpus: 2,
    })
    .expect("spawn K");
    let comm = std::fs::read_to_string(format!("/proc/{}/comm", k.pid())).expect("comm");
    assert_eq!(comm.trim(), "pvm-stub-k");
    for v in 0..2u32 {
        wait_state(&shm, v, HcallState::Request, &k);
        let page = shm.vcpu_page(v);
        assert_eq!(page.nr.load(Ordering::Relaxed), guest_abi::Backend::Soft as u64);
        assert_eq!(page.args[0].load(Ordering::Relaxed), guest_abi::boot::BOOT_MAGIC, "physmap maps guest memory");
        let rsp = page.args[1].load(Ordering::Relaxed);
        assert_eq!(rsp % 16, 8, "stack aligned as after a call");
        let slot = guest_abi::stub::stack_slot_base(v as u64);
        assert!(rsp > slot + 4096 && rsp < slot + guest_abi::stub::STACK_SLOT_SIZE, "vcpu {v} on its own stack");
        let tid = std::ptr::addr_of!(page.k_tid);
        // SAFETY: reading a plain i32 of the mapped page.
        assert_ne!(unsafe { std::ptr::read_volatile(tid) }, 0);
    }
    if let Some(fds) = common::stub_proc(k.pid(), "fd") {
        assert_eq!(fds, "", "K keeps no fd");
    }
    // vCPU 1 exits its thread (allowed); vCPU 0 then calls getpid (forbidden: K dies).
    let p1 = shm.vcpu_page(1);
    p1.ret.store(0, Ordering::Relaxed);
    p1.state.store(HcallState::Response as u32, Ordering::Release);
    futex::wake(&p1.state, 1).expect("wake");
    std::thread::sleep(Duration::from_millis(50));
    assert!(pid_alive(k.pid()), "exit of one thread keeps K alive");
    let p0 = shm.vcpu_page(0);
    p0.ret.store(1, Ordering::Relaxed);
    p0.state.store(HcallState::Response as u32, Ordering::Release);
    futex::wake(&p0.state, 1).expect("wake");
    assert_eq!(k.wait().expect("wait"), ExitInfo::Signaled(libc::SIGSYS), "seccomp killed K");
}
