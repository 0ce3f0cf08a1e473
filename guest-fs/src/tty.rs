//! Terminal state kept per tty device: termios and window size, so `TCSETS` followed by
//! `TCGETS` round-trips and programs see a plausible terminal (`termios(3)`, `tty_ioctl(4)`).

/// Kernel `struct termios` (x86-64, `asm-generic/termbits.h`): 36 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Termios {
    /// Input modes.
    pub c_iflag: u32,
    /// Output modes.
    pub c_oflag: u32,
    /// Control modes.
    pub c_cflag: u32,
    /// Local modes.
    pub c_lflag: u32,
    /// Line discipline.
    pub c_line: u8,
    /// Control characters (`NCCS` = 19).
    pub c_cc: [u8; 19],
}

const _: () = assert!(core::mem::size_of::<Termios>() == 36);

impl Default for Termios {
    /// Linux's `tty_std_termios`: ICRNL|IXON, OPOST|ONLCR, B38400|CS8|CREAD|HUPCL,
    /// ISIG|ICANON|ECHO|ECHOE|ECHOK|ECHOCTL|ECHOKE|IEXTEN, `INIT_C_CC`.
    fn default() -> Self {
        Self {
            c_iflag: 0o400 | 0o2000,
            c_oflag: 0o1 | 0o4,
            c_cflag: 0o17 | 0o60 | 0o200 | 0o2000,
            c_lflag: 0o1 | 0o2 | 0o10 | 0o20 | 0o40 | 0o1000 | 0o4000 | 0o100000,
            c_line: 0,
            c_cc: [
                3, 28, 127, 21, 4, 0, 1, 0, 17, 19, 26, 0, 18, 15, 23, 22, 0, 0, 0,
            ],
        }
    }
}

impl Termios {
    /// The 36 bytes as the kernel copies them to user memory.
    pub fn to_bytes(&self) -> [u8; 36] {
        let mut b = [0u8; 36];
        b[0..4].copy_from_slice(&self.c_iflag.to_le_bytes());
        b[4..8].copy_from_slice(&self.c_oflag.to_le_bytes());
        b[8..12].copy_from_slice(&self.c_cflag.to_le_bytes());
        b[12..16].copy_from_slice(&self.c_lflag.to_le_bytes());
        b[16] = self.c_line;
        b[17..36].copy_from_slice(&self.c_cc);
        b
    }

    /// Parses 36 bytes from user memory (any bit pattern is a valid termios).
    pub fn from_bytes(b: &[u8; 36]) -> Self {
        let w = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let mut c_cc = [0u8; 19];
        c_cc.copy_from_slice(&b[17..36]);
        Self { c_iflag: w(0), c_oflag: w(4), c_cflag: w(8), c_lflag: w(12), c_line: b[16], c_cc }
    }
}

/// State of one terminal device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TtyState {
    /// Line settings.
    pub termios: Termios,
    /// Window size (rows, cols, xpixel, ypixel), default 24x80.
    pub winsize: [u16; 4],
    /// Foreground process group (`TIOCGPGRP`), default 1 (init's group).
    pub pgrp: i32,
    /// Session id (`TIOCGSID`), default 1.
    pub sid: i32,
}

impl Default for TtyState {
    fn default() -> Self {
        Self { termios: Termios::default(), winsize: [24, 80, 0, 0], pgrp: 1, sid: 1 }
    }
}
