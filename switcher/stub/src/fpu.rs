//! The FPU/XSAVE image in a signal frame: saving it into the PVCS, restoring K's copy, and
//! resetting it to the architectural initial state. Layouts: Intel SDM vol. 1, 10.5.1 (FXSAVE
//! area) and 13.4 (XSAVE area, standard form); Linux `struct _fpx_sw_bytes`
//! (`arch/x86/include/uapi/asm/sigcontext.h`), which the kernel keeps in bytes 464..512.

use core::ptr;
use guest_abi::pvcs::PVCS_FPU_SIZE;

const FXSAVE_SIZE: usize = 512;
const SW_BYTES: usize = 464;
const SW_BYTES_LEN: usize = 48;
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

    /// Loads K's image `src[..len]` into the frame, keeping the frame's software-reserved
    /// bytes, MXCSR mask and trailing magic, and sanitising what XRSTOR would fault on
    /// (MXCSR reserved bits, XSTATE_BV bits the frame does not carry, XCOMP_BV, header
    /// reserved bytes). An image of another length is refused: the state is reset instead.
    ///
    /// # Safety
    /// `src` is valid for `PVCS_FPU_SIZE` bytes.
    pub unsafe fn restore(&self, src: *const u8, len: u32) {
        if len as usize != self.len {
            self.reset();
            return;
        }
        let p = self.ptr;
        let mut sw = [0u8; SW_BYTES_LEN];
        // SAFETY: all offsets are inside the validated image (len >= 512, or >= 580 with
        // XSAVE); src is valid for len bytes.
        unsafe {
            ptr::copy_nonoverlapping(p.add(SW_BYTES), sw.as_mut_ptr(), SW_BYTES_LEN);
            let mask = self.mxcsr_mask();
            let magic2 = self.xsave.then(|| ptr::read_unaligned(p.add(self.len - 4) as *const u32));
            ptr::copy_nonoverlapping(src, p, self.len);
            ptr::copy_nonoverlapping(sw.as_ptr(), p.add(SW_BYTES), SW_BYTES_LEN);
            ptr::write_unaligned(p.add(MXCSR_MASK) as *mut u32, mask);
            let mx = ptr::read_unaligned(p.add(MXCSR) as *const u32);
            ptr::write_unaligned(p.add(MXCSR) as *mut u32, mx & effective_mask(mask));
            if let Some(m2) = magic2 {
                ptr::write_unaligned(p.add(self.len - 4) as *mut u32, m2);
                let bv = ptr::read_unaligned(p.add(XSAVE_HEADER) as *const u64);
                ptr::write_unaligned(p.add(XSAVE_HEADER) as *mut u64, bv & self.xfeatures);
                ptr::write_bytes(p.add(XSAVE_HEADER + 8), 0, 56);
            }
        }
    }

    /// Architectural initial state (as after `execve`/`FNINIT`+`LDMXCSR 0x1f80`): FCW 0x37f,
    /// MXCSR 0x1f80, every register zero, XSTATE_BV 0 (all components in init state).
    pub fn reset(&self) {
        let p = self.ptr;
        // SAFETY: offsets inside the validated image; the sw bytes (464..512) and the trailing
        // magic are left untouched so the kernel still recognises the frame.
        unsafe {
            let mask = self.mxcsr_mask();
            ptr::write_bytes(p, 0, SW_BYTES);
            ptr::write_unaligned(p.add(FCW) as *mut u16, 0x37f);
            ptr::write_unaligned(p.add(MXCSR) as *mut u32, 0x1f80);
            ptr::write_unaligned(p.add(MXCSR_MASK) as *mut u32, mask);
            if self.xsave {
                ptr::write_bytes(p.add(XSAVE_HEADER), 0, self.len - 4 - XSAVE_HEADER);
            }
        }
    }

    fn mxcsr_mask(&self) -> u32 {
        // SAFETY: offset 28 is inside the first 512 bytes.
        unsafe { ptr::read_unaligned(self.ptr.add(MXCSR_MASK) as *const u32) }
    }
}

fn effective_mask(mask: u32) -> u32 {
    if mask == 0 { DEFAULT_MXCSR_MASK } else { mask }
}
