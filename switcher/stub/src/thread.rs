//! Raw threads: `clone` onto a stub stack slot, and the jump into the guest-kernel entry.

use crate::sys;
use guest_abi::stub;

core::arch::global_asm!(
    // pvm_stub_clone(flags: rdi, newsp: rsi) -> rax
    // The new stack holds [entry, arg] at newsp; the child pops them and calls entry(arg)
    // with the stack 16-byte aligned as after a call. The child never returns here.
    ".text",
    ".global pvm_stub_clone",
    "pvm_stub_clone:",
    "mov eax, 56",
    "xor edx, edx",
    "xor r10d, r10d",
    "xor r8d, r8d",
    "syscall",
    "test rax, rax",
    "jnz 1f",
    "pop rax",
    "pop rdi",
    "xor ebp, ebp",
    "call rax",
    "ud2",
    "1:",
    "ret",
    // pvm_stub_enter_kernel(vcpu: rdi, boot_info_va: rsi, backend: rdx, entry: rcx, sp: r8)
    ".global pvm_stub_enter_kernel",
    "pvm_stub_enter_kernel:",
    "mov rsp, r8",
    "xor ebp, ebp",
    "call rcx",
    "ud2",
);

unsafe extern "C" {
    fn pvm_stub_clone(flags: u64, newsp: u64) -> i64;
    fn pvm_stub_enter_kernel(vcpu: u64, boot_info_va: u64, backend: u64, entry: u64, sp: u64) -> !;
}

/// Starts a thread of this process running `entry(arg)` on stack slot `slot` (already
/// mapped). Returns its tid or exits with `StubExit::CloneFailed`.
pub fn spawn(slot: u64, entry: extern "C" fn(u64) -> !, arg: u64) -> i64 {
    let top = stub::stack_slot_top(slot);
    let sp = top - 16;
    // SAFETY: the slot is mapped read-write and owned by the new thread; we write the two
    // words it pops, then clone with the thread flags onto it.
    let r = unsafe {
        (sp as *mut u64).write(entry as *const () as u64);
        ((sp + 8) as *mut u64).write(arg);
        pvm_stub_clone(sys::CLONE_THREAD_FLAGS, sp)
    };
    if r <= 0 {
        sys::exit_group(guest_abi::stub::StubExit::CloneFailed as i32);
    }
    r
}

/// Switches to the top of stack slot `slot` and calls the guest-kernel entry
/// `extern "sysv64" fn(vcpu, boot_info_va, backend) -> !`.
pub fn enter_kernel(slot: u64, entry: u64, vcpu: u64, boot_info_va: u64, backend: u64) -> ! {
    // SAFETY: the slot is mapped and belongs to this thread; entry is the kernel entry H gave.
    unsafe { pvm_stub_enter_kernel(vcpu, boot_info_va, backend, entry, stub::stack_slot_top(slot)) }
}
