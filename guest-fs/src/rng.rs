//! ChaCha20 keystream generator (RFC 8439, section 2.3 block function) for `/dev/urandom`.

/// ChaCha20 state: 256-bit key, 64-bit block counter, zero nonce; output is the keystream.
pub struct ChaCha20 {
    key: [u32; 8],
    counter: u64,
    buf: [u8; 64],
    used: usize,
}

const SIGMA: [u32; 4] = [0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574];

fn quarter(s: &mut [u32; 16], a: usize, b: usize, c: usize, d: usize) {
    s[a] = s[a].wrapping_add(s[b]);
    s[d] = (s[d] ^ s[a]).rotate_left(16);
    s[c] = s[c].wrapping_add(s[d]);
    s[b] = (s[b] ^ s[c]).rotate_left(12);
    s[a] = s[a].wrapping_add(s[b]);
    s[d] = (s[d] ^ s[a]).rotate_left(8);
    s[c] = s[c].wrapping_add(s[d]);
    s[b] = (s[b] ^ s[c]).rotate_left(7);
}

/// One ChaCha20 block (RFC 8439 2.3) with a 32-bit counter and 96-bit nonce.
fn block(key: &[u32; 8], counter: u32, nonce: [u32; 3]) -> [u8; 64] {
    let mut init = [0u32; 16];
    init[..4].copy_from_slice(&SIGMA);
    init[4..12].copy_from_slice(key);
    init[12] = counter;
    init[13..].copy_from_slice(&nonce);
    let mut s = init;
    for _ in 0..10 {
        quarter(&mut s, 0, 4, 8, 12);
        quarter(&mut s, 1, 5, 9, 13);
        quarter(&mut s, 2, 6, 10, 14);
        quarter(&mut s, 3, 7, 11, 15);
        quarter(&mut s, 0, 5, 10, 15);
        quarter(&mut s, 1, 6, 11, 12);
        quarter(&mut s, 2, 7, 8, 13);
        quarter(&mut s, 3, 4, 9, 14);
    }
    let mut out = [0u8; 64];
    for (i, chunk) in out.chunks_exact_mut(4).enumerate() {
        chunk.copy_from_slice(&s[i].wrapping_add(init[i]).to_le_bytes());
    }
    out
}

impl ChaCha20 {
    /// A generator keyed with `seed` (little-endian words), counter 0.
    pub fn new(seed: &[u8; 32]) -> Self {
        let mut key = [0u32; 8];
        for (k, c) in key.iter_mut().zip(seed.chunks_exact(4)) {
            *k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        }
        Self { key, counter: 0, buf: [0; 64], used: 64 }
    }

    fn refill(&mut self) {
        // The high half of the 64-bit counter goes into the first nonce word.
        self.buf = block(&self.key, self.counter as u32, [(self.counter >> 32) as u32, 0, 0]);
        self.counter = self.counter.wrapping_add(1);
        self.used = 0;
    }

    /// Fills `out` with keystream bytes.
    pub fn fill(&mut self, out: &mut [u8]) {
        for b in out {
            if self.used == 64 {
                self.refill();
            }
            *b = self.buf[self.used];
            self.used += 1;
        }
    }

    /// Mixes `data` into the key: new key = keystream XOR data (folded 32 bytes at a time).
    pub fn mix(&mut self, data: &[u8]) {
        let mut newkey = [0u8; 32];
        self.fill(&mut newkey);
        for (i, b) in data.iter().enumerate() {
            newkey[i % 32] ^= b;
        }
        *self = Self::new(&newkey);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8439 section 2.3.2 test vector.
    #[test]
    fn rfc8439_block() {
        let mut key = [0u32; 8];
        for (i, k) in key.iter_mut().enumerate() {
            let b = (i * 4) as u8;
            *k = u32::from_le_bytes([b, b + 1, b + 2, b + 3]);
        }
        let out = block(&key, 1, [0x0900_0000, 0x4a00_0000, 0]);
        assert_eq!(&out[..8], &[0x10, 0xf1, 0xe7, 0xe4, 0xd1, 0x3b, 0x59, 0x15]);
        assert_eq!(&out[56..], &[0xcb, 0xd0, 0x83, 0xe8, 0xa2, 0x50, 0x3c, 0x4e]);
    }
}
