//! FPU/XSAVE images: the one in a signal frame (saved into the PVCS at a trap), and the one in
//! the PVCS that the stub loads with XRSTOR (or FXRSTOR) before entering guest code: checked
//! and sanitised in place, or replaced by the architectural initial state. Layouts: Intel SDM
//! vol. 1, 10.5.1 (FXSAVE area) and 13.4 (XSAVE area, standard form); Linux
//! `struct _fpx_sw_bytes` (`arch/x86/include/uapi/asm/sigcontext.h`), which the kernel keeps
//! in bytes 464..512 of a signal frame's image, and `FP_XSTATE_MAGIC2` after it.
//!
//! The PVCS image is guest-writable while the stub works on it (another vCPU thread of the
//! same U can change it between the check and the XRSTOR): the worst outcome is a #GP in stub
//! code, which kills this U (the guest's own address space), or user state the guest could
//! have loaded itself. XRSTOR from user mode loads only user state components.

use core::ptr;
use guest_abi::mapper::MapperCmd;
use guest_abi::pvcs::PVCS_FPU_SIZE;

const FP_XSTATE_MAGIC2: u32 = 0x4650_5845;

/// This host's user FPU format as H wrote it into the (read-only) command area: state
/// components (0 without XSAVE), image length, MXCSR mask.
#[derive(Clone, Copy)]
pub struct Format {
    /// XSAVE state components (RFBM for XRSTOR); 0: FXSAVE only.
    pub features: u64,
    len: u32,
    mxcsr_mask: u32,
}

/// Reads the format from the command area.
pub fn host() -> Format {
    let cmd = guest_abi::layout::U_MAPPER_CMD_BASE as *const MapperCmd;
    // SAFETY: the command area is mapped read-only for the life of U; H wrote these fields
    // before U started and never changes them.
    unsafe {
        Format {
            features: ptr::addr_of!((*cmd).fpu_features).read_volatile(),
            len: ptr::addr_of!((*cmd).fpu_len).read_volatile(),
            mxcsr_mask: effective_mask(ptr::addr_of!((*cmd).mxcsr_mask).read_volatile()),
        }
    }
}

const FXSAVE_SIZE: usize = 512;
const SW_BYTES: usize = 464;
const XSAVE_HEADER: usize = 512;
const XSAVE_MIN: usize = 576 + 4;
const FP_XSTATE_MAGIC1: u32 = 0x4650_5853;
const FCW: usize = 0;
const MXCSR: usize = 24;
const MXCSR_MASK: usize = 28;
/// MXCSR mask to assume when the image says 0 (SDM vol. 1, 11.6.6).
const DEFAULT_MXCSR_MASK: u32 = 0xffbf;

/// The FPU image of one signal frame, after validation.
pub struct FrameFpu {
    ptr: *mut u8,
    len: usize,
    xsave: bool,
    xfeatures: u64,
}

/// Validates the frame's `fpstate` pointer (must lie inside `[lo, hi)`, the handler's own
/// sigaltstack) and reads the image length from the kernel's software-reserved bytes.
pub fn frame_fpu(fpstate: u64, lo: u64, hi: u64) -> Option<FrameFpu> {
    if fpstate < lo || fpstate.checked_add(FXSAVE_SIZE as u64)? > hi {
        return None;
    }
    let p = fpstate as *mut u8;
    // SAFETY: p..p+512 lies inside the mapped altstack (checked above).
    let (magic, ext, xfeat) = unsafe {
        (
            ptr::read_unaligned(p.add(SW_BYTES) as *const u32),
            ptr::read_unaligned(p.add(SW_BYTES + 4) as *const u32) as usize,
            ptr::read_unaligned(p.add(SW_BYTES + 8) as *const u64),
        )
    };
    if magic != FP_XSTATE_MAGIC1 {
        return Some(FrameFpu { ptr: p, len: FXSAVE_SIZE, xsave: false, xfeatures: 0 });
    }
    if !(XSAVE_MIN..=PVCS_FPU_SIZE).contains(&ext) || fpstate + ext as u64 > hi {
        return None;
    }
    Some(FrameFpu { ptr: p, len: ext, xsave: true, xfeatures: xfeat })
}

impl FrameFpu {
    /// Copies the image into `dst` (capacity `PVCS_FPU_SIZE`); returns its length.
    ///
    /// # Safety
    /// `dst` is valid for `PVCS_FPU_SIZE` bytes.
    pub unsafe fn save(&self, dst: *mut u8) -> u32 {
        // SAFETY: len <= PVCS_FPU_SIZE (frame_fpu) and the source was bounds-checked.
        unsafe { ptr::copy_nonoverlapping(self.ptr, dst, self.len) };
        self.len as u32
    }

    /// How `pvm_stub_resume` loads this frame image: 0 (XRSTOR of `features`) or 1 (FXRSTOR).
    /// `None` when the frame claims XSAVE features this host does not give U.
    pub fn kind(&self, fmt: Format) -> Option<u64> {
        if !self.xsave {
            return Some(1);
        }
        (self.xfeatures & !fmt.features == 0).then_some(0)
    }
}

/// Checks the PVCS image `img[..len]` for this host's format and sanitises what XRSTOR would
/// fault on (MXCSR reserved bits, XSTATE_BV bits outside the components, XCOMP_BV, header
/// reserved bytes). Returns how to load it (0 XRSTOR, 1 FXRSTOR), or `None` when it is not an
/// image of this host's format (the caller loads the initial state instead).
///
/// # Safety
/// `img` is the 64-byte aligned PVCS FPU area, valid for `PVCS_FPU_SIZE` bytes.
pub unsafe fn prepare(fmt: Format, img: *mut u8, len: u32) -> Option<u64> {
    if len == 0 || len != fmt.len || len as usize > PVCS_FPU_SIZE {
        return None;
    }
    // SAFETY: all offsets lie inside the first `len` (>= 512) bytes of the area.
    unsafe {
        let mx = ptr::read_unaligned(img.add(MXCSR) as *const u32);
        ptr::write_unaligned(img.add(MXCSR) as *mut u32, mx & fmt.mxcsr_mask);
        if fmt.features == 0 {
            return Some(1);
        }
        if ptr::read_unaligned(img.add(SW_BYTES) as *const u32) != FP_XSTATE_MAGIC1 {
            return None;
        }
        let bv = ptr::read_unaligned(img.add(XSAVE_HEADER) as *const u64);
        ptr::write_unaligned(img.add(XSAVE_HEADER) as *mut u64, bv & fmt.features);
        ptr::write_bytes(img.add(XSAVE_HEADER + 8), 0, 56);
    }
    Some(0)
}

/// Writes the architectural initial state (as after `execve`/`FNINIT`+`LDMXCSR 0x1f80`: FCW
/// 0x37f, MXCSR 0x1f80, every register zero, XSTATE_BV 0) as an image of this host's format
/// into `img`, with the software bytes a signal frame carries. Returns its length and how to
/// load it.
///
/// # Safety
/// `img` is the 64-byte aligned PVCS FPU area, valid for `PVCS_FPU_SIZE` bytes.
pub unsafe fn write_initial(fmt: Format, img: *mut u8) -> (u32, u64) {
    let xsave = fmt.features != 0;
    let len = if xsave { (fmt.len as usize).clamp(XSAVE_MIN, PVCS_FPU_SIZE) } else { FXSAVE_SIZE };
    // SAFETY: every write lies inside the first `len` bytes of the area.
    unsafe {
        ptr::write_bytes(img, 0, if xsave { XSAVE_HEADER + 64 } else { FXSAVE_SIZE });
        ptr::write_unaligned(img.add(FCW) as *mut u16, 0x37f);
        ptr::write_unaligned(img.add(MXCSR) as *mut u32, 0x1f80);
        ptr::write_unaligned(img.add(MXCSR_MASK) as *mut u32, fmt.mxcsr_mask);
        if !xsave {
            return (len as u32, 1);
        }
        ptr::write_unaligned(img.add(SW_BYTES) as *mut u32, FP_XSTATE_MAGIC1);
        ptr::write_unaligned(img.add(SW_BYTES + 4) as *mut u32, len as u32);
        ptr::write_unaligned(img.add(SW_BYTES + 8) as *mut u64, fmt.features);
        ptr::write_unaligned(img.add(SW_BYTES + 16) as *mut u32, len as u32 - 4);
        ptr::write_unaligned(img.add(len - 4) as *mut u32, FP_XSTATE_MAGIC2);
    }
    (len as u32, 0)
}

fn effective_mask(mask: u32) -> u32 {
    if mask == 0 { DEFAULT_MXCSR_MASK } else { mask }
}
