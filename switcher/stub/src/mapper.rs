//! Role U's mapper threads (one per vCPU): each applies H's batches from its own command area
//! with registers only.
//! Guest threads share this address space and can write any writable page of it (stacks
//! included), so after it starts this loop never touches memory except reading the
//! read-only command area and writing the (informational) completion page. Each batch ends
//! with one `write` of a packet to `COMPLETION_FD`: its length is the outcome, and nobody but
//! this thread can write that pipe. Protocol: guest_abi::mapper.
//!
//! Registers: rbx = command area, rbp = completion page (both from the arguments, then never
//! from memory), r12d = last batch seq handled,
//! r13 = ops in the batch, r14 = op index, r15 = op pointer.

core::arch::global_asm!(
    ".text",
    ".global pvm_stub_mapper_loop",
    // pvm_stub_mapper_loop(go: rdi, cmd: rsi, done: rdx) -> !: sets `go` to 1, wakes the
    // threads waiting on it and serves the batches of command area `cmd` forever. No stack
    // use from here on.
    "pvm_stub_mapper_loop:",
    "mov rbx, rsi",
    "mov rbp, rdx",
    "mov dword ptr [rdi], 1",
    "mov eax, 202",
    "mov esi, 1",                    // FUTEX_WAKE (shared)
    "mov edx, 0x7fffffff",
    "syscall",
    "xor r12d, r12d",
    "2:",
    "mov eax, dword ptr [rbx]",      // cmd.seq
    "cmp eax, r12d",
    "jne 3f",
    "mov eax, 202",
    "mov rdi, rbx",
    "xor esi, esi",                  // FUTEX_WAIT (shared), no timeout
    "mov edx, r12d",
    "xor r10d, r10d",
    "syscall",
    "jmp 2b",
    "3:",
    "mov r12d, eax",
    "mov r13d, dword ptr [rbx + 4]", // cmd.count
    "xor r14d, r14d",
    "lea r15, [rbx + {ops_off}]",    // cmd.ops
    "mov rax, -22",                  // EINVAL for a count above MAX_OPS
    "cmp r13, {max_ops}",
    "ja 8f",
    "4:",
    "cmp r14, r13",
    "jae 9f",
    "mov ecx, dword ptr [r15]",      // kind
    "mov edx, dword ptr [r15 + 4]",  // prot
    "mov rdi, qword ptr [r15 + 8]",  // addr
    "mov rsi, qword ptr [r15 + 16]", // len
    "cmp ecx, 1",
    "je 5f",
    "cmp ecx, 2",
    "je 6f",
    "cmp ecx, 3",
    "je 7f",
    "mov rax, -22",
    "jmp 8f",
    "5:",                            // Map: mmap(addr, len, prot, MAP_SHARED|MAP_FIXED, 3, off)
    "mov r10d, 0x11",
    "mov r8d, 3",
    "mov r9, qword ptr [r15 + 24]",
    "mov eax, 9",
    "syscall",
    "jmp 10f",
    "6:",                            // Unmap: munmap(addr, len)
    "mov eax, 11",
    "syscall",
    "jmp 10f",
    "7:",                            // Protect: mprotect(addr, len, prot)
    "mov eax, 10",
    "syscall",
    "10:",
    "cmp rax, -4095",
    "jae 8f",
    "inc r14",
    "add r15, 32",
    "jmp 4b",
    "8:",                            // failure: result = rax (negated errno), index = r14
    "mov dword ptr [rbp + 4], eax",
    "mov dword ptr [rbp + 8], r14d",
    "lea rdx, [r14 + {failed_base}]", // packet length: COMPLETION_FAILED_BASE + index
    "jmp 11f",
    "9:",
    "mov dword ptr [rbp + 4], 0",
    "mov dword ptr [rbp + 8], 0",
    "mov edx, {ok}",                 // packet length: COMPLETION_OK
    "11:",
    "mov dword ptr [rbp], r12d",     // done.seq (informational)
    "mov eax, 1",                    // write(cmd.completion_fd, done page, length)
    "mov edi, dword ptr [rbx + {fd_off}]",
    "mov rsi, rbp",
    "syscall",
    "jmp 2b",
    max_ops = const guest_abi::mapper::MAX_OPS,
    failed_base = const guest_abi::mapper::COMPLETION_FAILED_BASE,
    ok = const guest_abi::mapper::COMPLETION_OK,
    fd_off = const core::mem::offset_of!(guest_abi::mapper::MapperCmd, completion_fd),
    ops_off = const guest_abi::mapper::CMD_HEADER_SIZE,
);

const _: () = assert!(core::mem::size_of::<guest_abi::mapper::MapOp>() == 32);
const _: () = assert!(core::mem::offset_of!(guest_abi::mapper::MapperCmd, ops) == guest_abi::mapper::CMD_HEADER_SIZE);

unsafe extern "C" {
    fn pvm_stub_mapper_loop(go: *const core::sync::atomic::AtomicU32, cmd: u64, done: u64) -> !;
}

/// Sets `go`, wakes its waiters and becomes the mapper loop of vCPU `vcpu`'s command area.
/// The calling thread must have every signal blocked and its mapper filter installed.
pub fn run(go: &'static core::sync::atomic::AtomicU32, vcpu: u32) -> ! {
    let (cmd, done) = (guest_abi::layout::u_mapper_cmd(vcpu), guest_abi::layout::u_mapper_done(vcpu));
    // SAFETY: the loop only reads the read-only command area and writes the completion page
    // of `vcpu`, both mapped by `space::run` before this call.
    unsafe { pvm_stub_mapper_loop(go, cmd, done) }
}
