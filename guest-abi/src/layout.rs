//! Address-space layout shared by both backends, so that one guest-kernel binary serves both
//! (design section 3), and the guest-physical layout H builds at boot.
//!
//! Virtual ranges (identical in K, U and, under KVM, in every guest page table):
//!
//! | range | use |
//! |---|---|
//! | [`USER_START`] .. [`USER_END`] | guest user space (shadowed in U) |
//! | [`PHYSMAP_BASE`] .. `+ memory size` | guest physmap: GVA = GPA + `PHYSMAP_BASE` |
//! | [`KERNEL_BASE`] .. | guest kernel image (linked here) |
//! | [`STUB_BASE`] .. [`STUB_END`] | host stub area in K and U (soft backend only) |

/// Lowest guest user virtual address (the first 64 KiB stay unmapped, as Linux's
/// `vm.mmap_min_addr` default).
pub const USER_START: u64 = 0x0000_0000_0001_0000;
/// One past the highest guest user virtual address.
pub const USER_END: u64 = 0x0000_7000_0000_0000;
/// Guest physmap base: guest physical address `gpa` is at virtual `PHYSMAP_BASE + gpa` in the
/// guest kernel's view (mapped from the guest-memory memfd in K).
pub const PHYSMAP_BASE: u64 = 0x0000_7800_0000_0000;
/// Link address of the guest kernel image.
pub const KERNEL_BASE: u64 = 0x0000_7f00_0000_0000;
/// Start of the host stub area in K and U processes: stub text at its link address first.
pub const STUB_BASE: u64 = 0x0000_7fe0_0000_0000;
/// Bytes reserved for the stub image (text, rodata, data, bss) from [`STUB_BASE`].
pub const STUB_IMAGE_SIZE: u64 = 16 << 20;
/// In U: this space's PVCS for vCPU `i` is at `U_PVCS_BASE + i * PVCS_SIZE`.
pub const U_PVCS_BASE: u64 = STUB_BASE + 0x1000_0000;
/// In U: vCPU 0's mapper command area (read-only in U), [`crate::mapper::CMD_AREA_SIZE`]
/// bytes; it also holds every vCPU's run word ([`crate::mapper::MapperCmd::run`]) and H's FPU
/// format. vCPU `i`'s is at [`u_mapper_cmd`]`(i)`.
pub const U_MAPPER_CMD_BASE: u64 = STUB_BASE + 0x2000_0000;
/// In U: vCPU 0's mapper completion page (read-write in U), one page.
pub const U_MAPPER_DONE_BASE: u64 = U_MAPPER_CMD_BASE + 0x10_0000;
/// In U: distance between the mapper pages of consecutive vCPUs, bytes.
pub const U_MAPPER_STRIDE: u64 = 0x20_0000;
/// In U: vCPU `vcpu`'s mapper command area (read-only).
pub const fn u_mapper_cmd(vcpu: u32) -> u64 {
    U_MAPPER_CMD_BASE + vcpu as u64 * U_MAPPER_STRIDE
}
/// In U: vCPU `vcpu`'s mapper completion page (read-write).
pub const fn u_mapper_done(vcpu: u32) -> u64 {
    U_MAPPER_DONE_BASE + vcpu as u64 * U_MAPPER_STRIDE
}
/// In U and K: per-thread signal/alternate stacks start here, [`STUB_STACK_SIZE`] each, with
/// an unmapped guard page below each.
pub const STUB_STACKS_BASE: u64 = STUB_BASE + 0x3000_0000;
/// Size of one stub thread stack (sigaltstack in U; boot stack of a vCPU thread in K), bytes.
pub const STUB_STACK_SIZE: u64 = 1 << 20;
/// In K: the whole shared memfd (vCPU pages, then every space's PVCS) is mapped here.
pub const K_SHARED_BASE: u64 = 0x0000_7fe1_0000_0000;
/// One past the end of the stub area.
pub const STUB_END: u64 = 0x0000_7fff_ffff_f000;

/// Size of one PVCS (per address space and vCPU), bytes: one header page plus the FPU image.
pub const PVCS_SIZE: u64 = 16 << 10;
/// Size of one per-vCPU hypercall page ([`crate::pvcs::VcpuPage`]), bytes.
pub const VCPU_PAGE_SIZE: u64 = 4096;
/// Offset in the shared memfd of the per-vCPU hypercall pages (vCPU `i` at `+ i * VCPU_PAGE_SIZE`).
pub const SHARED_VCPU_PAGES_OFFSET: u64 = 0;
/// Offset in the shared memfd of the PVCS area.
pub const SHARED_PVCS_OFFSET: u64 = crate::MAX_VCPUS as u64 * VCPU_PAGE_SIZE;
/// Bytes of PVCS per space (one PVCS per possible vCPU).
pub const SPACE_PVCS_STRIDE: u64 = crate::MAX_VCPUS as u64 * PVCS_SIZE;
/// Total size of the shared memfd, bytes (sparse: only touched pages use memory).
pub const SHARED_SIZE: u64 = SHARED_PVCS_OFFSET + crate::MAX_SPACES as u64 * SPACE_PVCS_STRIDE;

/// Offset in the shared memfd of the PVCS of (`space`, `vcpu`).
pub const fn pvcs_offset(space: u32, vcpu: u32) -> u64 {
    SHARED_PVCS_OFFSET + space as u64 * SPACE_PVCS_STRIDE + vcpu as u64 * PVCS_SIZE
}

/// Offset in the shared memfd of vCPU `vcpu`'s hypercall page.
pub const fn vcpu_page_offset(vcpu: u32) -> u64 {
    SHARED_VCPU_PAGES_OFFSET + vcpu as u64 * VCPU_PAGE_SIZE
}

// Guest-physical layout, built by H before the first vCPU starts.

/// GPA of [`crate::boot::BootInfo`] (one page).
pub const BOOT_INFO_GPA: u64 = 0x1000;
/// GPA of the launch block (argv, envp, working directory of the first program), see
/// [`crate::boot::LaunchHeader`].
pub const LAUNCH_GPA: u64 = 0x1_0000;
/// Maximum size of the launch block, bytes (Linux's default `ARG_MAX` is 128 KiB + headers).
pub const LAUNCH_MAX: u64 = 0x4_0000;
/// GPA of the guest statistics block ([`crate::stats::GuestStats`]).
pub const STATS_GPA: u64 = 0x5_0000;
/// Maximum size of the statistics block, bytes.
pub const STATS_MAX: u64 = 0x1_0000;
/// GPA where H places the guest kernel image; kernel virtual `KERNEL_BASE + x` is at
/// `KERNEL_GPA + x`.
pub const KERNEL_GPA: u64 = 0x10_0000;
/// Smallest guest memory H accepts, bytes.
pub const MIN_GUEST_MEMORY: u64 = 16 << 20;

const _: () = assert!(SHARED_SIZE <= 0x1_0000_0000, "shared window fits below STUB_END");
const _: () = assert!(K_SHARED_BASE + SHARED_SIZE < STUB_END);
const _: () = assert!(u_mapper_done(crate::MAX_VCPUS) < STUB_STACKS_BASE);
const _: () = assert!(STUB_STACKS_BASE + 64 * (STUB_STACK_SIZE + 4096) < K_SHARED_BASE);
const _: () = assert!(LAUNCH_GPA + LAUNCH_MAX <= STATS_GPA);
const _: () = assert!(STATS_GPA + STATS_MAX <= KERNEL_GPA);
