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
    /// An empty filter with `num_bits` bits (clamped to `1..=1024`) and the given keys (chosen at random by
    /// the witness).
    pub fn new(num_bits: u32, keys: [u64; BLOOM_KEYS]) -> Self {
        let num_bits = num_bits.clamp(1, BLOOM_MAX_BITS);
        Bloom { bits: [0; BLOOM_WORDS], keys, num_bits, _pad: 0 }
    }

    /// True when `num_bits <= 1024` and no bit at a position `>= num_bits` is set (docs/coordinator.md §6.5).
    pub fn is_valid(&self) -> bool {
        if self.num_bits > BLOOM_MAX_BITS {
            return false;
        }
        (0..BLOOM_WORDS).all(|w| {
            let lo = w as u32 * 64;
            let allowed = if self.num_bits >= lo + 64 {
                u64::MAX
            } else if self.num_bits <= lo {
                0
            } else {
                (1u64 << (self.num_bits - lo)) - 1
            };
            self.bits[w] & !allowed == 0
        })
    }

    fn usable(&self) -> bool {
        self.num_bits != 0 && self.num_bits <= BLOOM_MAX_BITS
    }

    fn bit_index(&self, key: u64, item: &[u8]) -> u32 {
        (fnv1a_keyed(key, item) % self.num_bits as u64) as u32
    }

    /// Sets the `k` bits of `item` (no-op on a filter with `num_bits` 0 or out of range).
    pub fn add(&mut self, item: &[u8]) {
        if !self.usable() {
            return;
        }
        for k in 0..BLOOM_KEYS {
            let i = self.bit_index(self.keys[k], item);
            self.bits[(i / 64) as usize] |= 1u64 << (i % 64);
        }
    }

    /// True if every bit of `item` is set (false positives possible, no false negatives); false when
    /// `num_bits` is 0 (or out of range).
    pub fn contains(&self, item: &[u8]) -> bool {
        if !self.usable() {
            return false;
        }
        (0..BLOOM_KEYS).all(|k| {
            let i = self.bit_index(self.keys[k], item);
            self.bits[(i / 64) as usize] >> (i % 64) & 1 == 1
        })
    }
}

/// Bits for `n` items at false-positive rate `p`: `clamp(ceil(−n · ln p / (ln 2)^2), 1, 1024)` in f64.
///
/// # Errors
/// `InvalidArgument` (21) unless `0 < p < 1`.
pub fn bloom_num_bits(n: u64, p: f64) -> crate::error::Result<u32> {
    use crate::math::{LN_2, ceil, ln};
    if !(p > 0.0 && p < 1.0) {
        return Err(crate::error::CoordinatorError::new(crate::error::ErrorCode::InvalidArgument, "p", "in (0, 1)"));
    }
    let m = ceil((-(n as f64) * ln(p)) / (LN_2 * LN_2));
    Ok(if m >= BLOOM_MAX_BITS as f64 {
        BLOOM_MAX_BITS
    } else if m < 1.0 {
        1
    } else {
        m as u32
    })
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
        assert!(b.is_valid() && empty.is_valid());
    }

    #[test]
    fn validity_rejects_bits_beyond_num_bits() {
        let mut b = Bloom::new(65, [0; 8]);
        b.bits[1] = 1; // bit 64 < 65: fine
        assert!(b.is_valid());
        b.bits[1] = 2; // bit 65 >= 65
        assert!(!b.is_valid());
        let mut big = Bloom { num_bits: 1025, ..Default::default() };
        assert!(!big.is_valid());
        big.add(b"x"); // ignored, no panic
        assert!(!big.contains(b"x"));
    }

    #[test]
    fn num_bits_by_hand() {
        // -ln(0.01)/(ln 2)^2 = 4.605170185988091/0.4804530139182014 = 9.585058377367...
        assert_eq!(bloom_num_bits(0, 0.01).unwrap(), 1); // ceil(0) = 0, clamped to 1
        assert_eq!(bloom_num_bits(1, 0.01).unwrap(), 10);
        assert_eq!(bloom_num_bits(10, 0.01).unwrap(), 96); // 95.85
        assert_eq!(bloom_num_bits(106, 0.01).unwrap(), 1017); // 1016.02
        assert_eq!(bloom_num_bits(107, 0.01).unwrap(), 1024); // 1025.6 → capped
        assert_eq!(bloom_num_bits(1, 1.0).unwrap_err().code, crate::error::ErrorCode::InvalidArgument);
        // Every n in 0..=110 equals JS `Math.min(1024, Math.max(1, Math.ceil((-n * Math.log(0.01)) /
        // (Math.LN2 * Math.LN2))))` (computed with Node 20 and pasted here): exact, no tolerance.
        const JS: [u32; 111] = [
            1, 10, 20, 29, 39, 48, 58, 68, 77, 87, 96, 106, 116, 125, 135, 144, 154, 163, 173, 183, 192, 202, 211, 221,
            231, 240, 250, 259, 269, 278, 288, 298, 307, 317, 326, 336, 346, 355, 365, 374, 384, 393, 403, 413, 422,
            432, 441, 451, 461, 470, 480, 489, 499, 509, 518, 528, 537, 547, 556, 566, 576, 585, 595, 604, 614, 624,
            633, 643, 652, 662, 671, 681, 691, 700, 710, 719, 729, 739, 748, 758, 767, 777, 786, 796, 806, 815, 825,
            834, 844, 854, 863, 873, 882, 892, 901, 911, 921, 930, 940, 949, 959, 969, 978, 988, 997, 1007, 1017, 1024,
            1024, 1024, 1024,
        ];
        for (n, want) in JS.iter().enumerate() {
            assert_eq!(bloom_num_bits(n as u64, 0.01).unwrap(), *want, "n = {n}");
        }
    }
}
