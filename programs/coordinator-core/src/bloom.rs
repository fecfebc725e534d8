//! Bloom filter keyed by FNV-1a (Psyche's `Bloom<16, 8>`: up to 1024 bits, 8 keys).

/// FNV-1a 64-bit prime.
pub const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
/// FNV-1a 64-bit offset basis (the unkeyed initial state).
pub const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
/// Words of bit storage.
pub const BLOOM_WORDS: usize = 16;
/// Maximum number of bits.
pub const BLOOM_MAX_BITS: u32 = (BLOOM_WORDS * 64) as u32;
/// Number of hash keys.
pub const BLOOM_KEYS: usize = 8;

/// FNV-1a over `data` starting from state `key` (FNV-1a with the key in place of the offset basis).
pub fn fnv1a_keyed(key: u64, data: &[u8]) -> u64 {
    let mut h = key;
    for &b in data {
        h ^= b as u64;
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// A fixed-capacity bloom filter: `num_bits <= 1024` bits and 8 keys.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bloom {
    /// Bit storage, bit `i` is `bits[i / 64] >> (i % 64) & 1`.
    pub bits: [u64; BLOOM_WORDS],
    /// The hash keys.
    pub keys: [u64; BLOOM_KEYS],
    /// Number of bits in use (1..=1024; 0 means an empty, unusable filter).
    pub num_bits: u32,
    /// Padding, always 0.
    pub _pad: u32,
}

impl Default for Bloom {
    fn default() -> Self {
        Bloom { bits: [0; BLOOM_WORDS], keys: [0; BLOOM_KEYS], num_bits: 0, _pad: 0 }
    }
}

impl Bloom {
    /// An empty filter with `num_bits` bits (clamped to `1..=1024`) and the given keys.
    pub fn new(num_bits: u32, keys: [u64; BLOOM_KEYS]) -> Self {
        let num_bits = num_bits.clamp(1, BLOOM_MAX_BITS);
        Bloom { bits: [0; BLOOM_WORDS], keys, num_bits, _pad: 0 }
    }

    fn bit_index(&self, key: u64, item: &[u8]) -> u32 {
        (fnv1a_keyed(key, item) % self.num_bits as u64) as u32
    }

    /// Sets the `k` bits of `item`.
    pub fn add(&mut self, item: &[u8]) {
        if self.num_bits == 0 {
            return;
        }
        for k in 0..BLOOM_KEYS {
            let i = self.bit_index(self.keys[k], item);
            self.bits[(i / 64) as usize] |= 1u64 << (i % 64);
        }
    }

    /// True if every bit of `item` is set (false positives possible, no false negatives).
    pub fn contains(&self, item: &[u8]) -> bool {
        if self.num_bits == 0 {
            return false;
        }
        (0..BLOOM_KEYS).all(|k| {
            let i = self.bit_index(self.keys[k], item);
            self.bits[(i / 64) as usize] >> (i % 64) & 1 == 1
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_standard_vectors() {
        // Unkeyed FNV-1a 64 (offset basis as key): published vectors "" → cbf29ce484222325, "a" → af63dc4c8601ec8c.
        assert_eq!(fnv1a_keyed(FNV_OFFSET_BASIS, b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a_keyed(FNV_OFFSET_BASIS, b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a_keyed(FNV_OFFSET_BASIS, b"foobar"), 0x85944171f73967e8);
        // By hand: key 0, one byte 1 → (0 ^ 1) * prime = prime.
        assert_eq!(fnv1a_keyed(0, &[1]), FNV_PRIME);
    }

    #[test]
    fn no_false_negatives_and_bits_within_range() {
        let mut b = Bloom::new(100, [1, 2, 3, 4, 5, 6, 7, 8]);
        for i in 0u32..40 {
            b.add(&i.to_le_bytes());
        }
        for i in 0u32..40 {
            assert!(b.contains(&i.to_le_bytes()));
        }
        // Bits 100..1024 are never set.
        assert_eq!(b.bits[1] >> 36, 0);
        assert!(b.bits[2..].iter().all(|w| *w == 0));
        let empty = Bloom::default();
        assert!(!empty.contains(b"x"));
    }
}
