//! Ancillary data (`cmsg(3)`, `unix(7)`): parsing the control buffer of `sendmsg(2)` and
//! building the one of `recvmsg(2)`, in the x86-64 layout: a 16-byte `struct cmsghdr`
//! (`size_t cmsg_len; int cmsg_level; int cmsg_type;`), data after it, each header aligned
//! to 8 bytes (`CMSG_SPACE`).
//!
//! Trust: the control buffer is guest memory copied in; every `cmsg_len` is checked against
//! what remains (Linux `__scm_send`: a header shorter than `cmsghdr` or longer than the rest
//! is `EINVAL`), so nothing here reads past the buffer. Pure logic, unit-tested below.

use alloc::vec::Vec;
use guest_fs::Errno;

/// `sizeof(struct cmsghdr)`.
pub const HDR: usize = 16;
/// `SCM_RIGHTS` (`<bits/socket.h>`).
pub const SCM_RIGHTS: i32 = 1;
/// `SCM_CREDENTIALS`.
pub const SCM_CREDENTIALS: i32 = 2;
/// Most fds one `SCM_RIGHTS` message may carry (Linux `SCM_MAX_FD`).
pub const SCM_MAX_FD: usize = 253;

/// `CMSG_ALIGN`.
pub const fn align(n: usize) -> usize {
    (n + 7) & !7
}

/// `CMSG_SPACE(n)`.
pub const fn space(n: usize) -> usize {
    HDR + align(n)
}

/// One control message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cmsg {
    /// `cmsg_level`.
    pub level: i32,
    /// `cmsg_type`.
    pub ty: i32,
    /// The data (`cmsg_len - HDR` bytes).
    pub data: Vec<u8>,
}

fn u64_at(b: &[u8], i: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[i..i + 8]);
    u64::from_le_bytes(w)
}

fn i32_at(b: &[u8], i: usize) -> i32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[i..i + 4]);
    i32::from_le_bytes(w)
}

/// Splits a `sendmsg` control buffer into messages (`EINVAL` for a malformed header),
/// walking as `CMSG_FIRSTHDR`/`CMSG_NXTHDR` do: a trailing piece shorter than a header ends
/// the walk.
pub fn parse(buf: &[u8]) -> Result<Vec<Cmsg>, Errno> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while buf.len() - at >= HDR {
        let len = u64_at(buf, at);
        let rest = (buf.len() - at) as u64;
        if len < HDR as u64 || len > rest {
            return Err(Errno::EINVAL);
        }
        let len = len as usize;
        out.push(Cmsg { level: i32_at(buf, at + 8), ty: i32_at(buf, at + 12), data: buf[at + HDR..at + len].to_vec() });
        at = at.saturating_add(align(len)).min(buf.len());
    }
    Ok(out)
}

/// The fds of an `SCM_RIGHTS` payload (`EINVAL` when empty, not a whole number of ints, or
/// more than [`SCM_MAX_FD`]).
pub fn rights(data: &[u8]) -> Result<Vec<i32>, Errno> {
    if data.is_empty() || !data.len().is_multiple_of(4) || data.len() / 4 > SCM_MAX_FD {
        return Err(Errno::EINVAL);
    }
    Ok(data.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

/// The (pid, uid, gid) of an `SCM_CREDENTIALS` payload (`EINVAL` unless exactly a
/// `struct ucred`).
pub fn credentials(data: &[u8]) -> Result<(i32, u32, u32), Errno> {
    if data.len() != 12 {
        return Err(Errno::EINVAL);
    }
    Ok((i32_at(data, 0), i32_at(data, 4) as u32, i32_at(data, 8) as u32))
}

/// Builds a `recvmsg` control buffer of at most `cap` bytes as Linux's `put_cmsg` and
/// `scm_detach_fds` do: what does not fit is cut and flagged `MSG_CTRUNC`.
pub struct Writer {
    /// The bytes so far (the new `msg_controllen` is their length).
    pub out: Vec<u8>,
    cap: usize,
    /// True once something was cut (`MSG_CTRUNC`).
    pub truncated: bool,
}

impl Writer {
    /// An empty buffer with room for `cap` bytes.
    pub fn new(cap: usize) -> Self {
        Writer { out: Vec::new(), cap, truncated: false }
    }

    fn room(&self) -> usize {
        self.cap - self.out.len()
    }

    fn header(&mut self, len: usize, level: i32, ty: i32) {
        self.out.extend_from_slice(&(len as u64).to_le_bytes());
        self.out.extend_from_slice(&level.to_le_bytes());
        self.out.extend_from_slice(&ty.to_le_bytes());
    }

    /// Appends one message (`put_cmsg`: data cut to the room left).
    pub fn put(&mut self, level: i32, ty: i32, data: &[u8]) {
        if self.room() < HDR {
            self.truncated = true;
            return;
        }
        let mut len = HDR + data.len();
        if len > self.room() {
            self.truncated = true;
            len = self.room();
        }
        self.header(len, level, ty);
        self.out.extend_from_slice(&data[..len - HDR]);
        let pad = (align(len) - len).min(self.room());
        self.out.resize(self.out.len() + pad, 0);
    }

    /// How many fds of an `SCM_RIGHTS` message fit (`scm_detach_fds`'s `fdmax`).
    pub fn fd_room(&self) -> usize {
        self.room().saturating_sub(HDR) / 4
    }

    /// Appends an `SCM_RIGHTS` message with `fds` (at most [`Writer::fd_room`] of them);
    /// `offered` is how many the message had (more offered than put is `MSG_CTRUNC`).
    pub fn put_fds(&mut self, level: i32, fds: &[i32], offered: usize) {
        if self.room() < HDR {
            self.truncated |= offered > 0;
            return;
        }
        if !fds.is_empty() {
            let len = HDR + fds.len() * 4;
            self.header(len, level, SCM_RIGHTS);
            for f in fds {
                self.out.extend_from_slice(&f.to_le_bytes());
            }
            let pad = (align(len) - len).min(self.room());
            self.out.resize(self.out.len() + pad, 0);
        }
        if fds.len() < offered {
            self.truncated = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn msg(level: i32, ty: i32, data: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&((HDR + data.len()) as u64).to_le_bytes());
        v.extend_from_slice(&level.to_le_bytes());
        v.extend_from_slice(&ty.to_le_bytes());
        v.extend_from_slice(data);
        v.resize(align(v.len()), 0);
        v
    }

    #[test]
    fn parses_two_messages() {
        let mut b = msg(1, SCM_RIGHTS, &[3, 0, 0, 0, 4, 0, 0, 0, 5, 0, 0, 0]);
        b.extend(msg(1, SCM_CREDENTIALS, &[1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
        let m = parse(&b).expect("valid");
        assert_eq!(m.len(), 2);
        assert_eq!(rights(&m[0].data), Ok(vec![3, 4, 5]));
        assert_eq!(credentials(&m[1].data), Ok((1, 0, 0)));
    }

    #[test]
    fn rejects_garbage_lengths() {
        let mut b = msg(1, SCM_RIGHTS, &[3, 0, 0, 0]);
        b[0] = 200; // longer than the buffer
        assert_eq!(parse(&b), Err(Errno::EINVAL));
        b[..8].copy_from_slice(&3u64.to_le_bytes()); // shorter than a header
        assert_eq!(parse(&b), Err(Errno::EINVAL));
        b[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(parse(&b), Err(Errno::EINVAL));
        assert_eq!(parse(&[0u8; 7]), Ok(vec![]), "a short tail is no header");
        assert_eq!(rights(&[1, 2, 3]), Err(Errno::EINVAL));
        assert_eq!(rights(&[]), Err(Errno::EINVAL));
        assert_eq!(rights(&[0u8; 4 * 254]), Err(Errno::EINVAL));
        assert_eq!(credentials(&[0u8; 8]), Err(Errno::EINVAL));
    }

    #[test]
    fn writer_truncates_fds_like_linux() {
        // Room for a header and one int: one fd of three, MSG_CTRUNC.
        let mut w = Writer::new(space(4));
        assert_eq!(w.fd_room(), 2, "16 + 8 bytes leave room for two ints");
        let mut w2 = Writer::new(HDR + 4);
        assert_eq!(w2.fd_room(), 1);
        w2.put_fds(1, &[7], 3);
        assert!(w2.truncated);
        assert_eq!(w2.out.len(), HDR + 4);
        assert_eq!(u64_at(&w2.out, 0), (HDR + 4) as u64);
        w.put_fds(1, &[7, 8], 2);
        assert!(!w.truncated);
        assert_eq!(w.out.len(), space(8));
        // No room for even a header.
        let mut w3 = Writer::new(8);
        w3.put_fds(1, &[], 1);
        assert!(w3.truncated && w3.out.is_empty());
    }

    #[test]
    fn writer_cuts_credentials() {
        let mut w = Writer::new(HDR + 4);
        w.put(1, SCM_CREDENTIALS, &[0u8; 12]);
        assert!(w.truncated);
        assert_eq!(w.out.len(), HDR + 4);
        let mut w = Writer::new(64);
        w.put(1, SCM_CREDENTIALS, &[0u8; 12]);
        assert!(!w.truncated);
        assert_eq!(w.out.len(), space(12));
    }
}
