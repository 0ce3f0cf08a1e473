//! The kernel's random generator (xoshiro256**, integer only) seeded from
//! `BootInfo::random_seed`, for `getrandom(2)` and `AT_RANDOM`.

use spin::Mutex;

/// xoshiro256** state (Blackman & Vigna, 2018).
#[derive(Clone, Debug)]
pub struct Xoshiro([u64; 4]);

impl Xoshiro {
    /// A generator from 32 seed bytes (an all-zero seed is replaced by a fixed non-zero one).
    pub fn new(seed: &[u8; 32]) -> Self {
        let mut s = [0u64; 4];
        for (i, w) in s.iter_mut().enumerate() {
            let mut b = [0u8; 8];
            b.copy_from_slice(&seed[i * 8..i * 8 + 8]);
            *w = u64::from_le_bytes(b);
        }
        if s == [0; 4] {
            s = [0x9e37_79b9_7f4a_7c15, 0xbf58_476d_1ce4_e5b9, 0x94d0_49bb_1331_11eb, 1];
        }
        Xoshiro(s)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.0;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Fills `out` with random bytes.
    pub fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

static RNG: Mutex<Option<Xoshiro>> = Mutex::new(None);

/// Seeds the global generator.
pub fn seed(seed: &[u8; 32]) {
    *RNG.lock() = Some(Xoshiro::new(seed));
}

/// Fills `out` from the global generator (mixing in the TSC if unseeded).
pub fn fill(out: &mut [u8]) {
    let mut g = RNG.lock();
    let r = g.get_or_insert_with(|| {
        let mut s = [0u8; 32];
        s[..8].copy_from_slice(&crate::arch::rdtsc().to_le_bytes());
        Xoshiro::new(&s)
    });
    r.fill(out);
}

#[cfg(test)]
mod tests {
    use super::Xoshiro;

    #[test]
    fn deterministic_and_varied() {
        let mut a = Xoshiro::new(&[1; 32]);
        let mut b = Xoshiro::new(&[1; 32]);
        let mut c = Xoshiro::new(&[2; 32]);
        let (x, y, z) = (a.next_u64(), b.next_u64(), c.next_u64());
        assert_eq!(x, y);
        assert_ne!(x, z);
        let mut buf = [0u8; 13];
        a.fill(&mut buf);
        assert!(buf.iter().any(|&v| v != 0));
        let mut zero = Xoshiro::new(&[0; 32]);
        assert_ne!(zero.next_u64(), 0);
    }
}
