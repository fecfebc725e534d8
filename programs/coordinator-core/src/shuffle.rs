//! Swap-or-not shuffle (Ethereum beacon-chain style, 90 rounds over SHA-256) and the LCG Fisher–Yates shuffle.

use alloc::vec::Vec;

use crate::sha256::{Sha256, sha256};

/// Rounds of the swap-or-not shuffle.
pub const SHUFFLE_ROUNDS: u8 = 90;

/// Position of `index` in a swap-or-not permutation of `0..total` keyed by the 32-byte `seed`.
///
/// Per round `r`: `pivot = u64_le(sha256(seed || r)[0..8]) % total`, `flip = (pivot + total - idx) % total`,
/// `pos = max(idx, flip)`, `src = sha256(seed || r || u32_le(pos / 256))`,
/// `bit = (src[(pos % 256) / 8] >> (pos % 8)) & 1`, and `idx = flip` when `bit == 1`.
///
/// Returns `None` when `total == 0` or `index >= total`.
pub fn compute_shuffled_index(index: u64, total: u64, seed: &[u8; 32]) -> Option<u64> {
    if total == 0 || index >= total {
        return None;
    }
    let mut idx = index;
    for round in 0..SHUFFLE_ROUNDS {
        let mut h = Sha256::new();
        h.update(seed);
        h.update(&[round]);
        let pivot_hash = h.finalize();
        let mut pivot_bytes = [0u8; 8];
        pivot_bytes.copy_from_slice(&pivot_hash[..8]);
        let pivot = u64::from_le_bytes(pivot_bytes) % total;
        let flip = (pivot + total - idx) % total;
        let position = core::cmp::max(idx, flip);
        let mut h = Sha256::new();
        h.update(seed);
        h.update(&[round]);
        h.update(&((position / 256) as u32).to_le_bytes());
        let source = h.finalize();
        let byte = source[((position % 256) / 8) as usize];
        let bit = (byte >> (position % 8)) & 1;
        if bit == 1 {
            idx = flip;
        }
    }
    Some(idx)
}

/// Positions of every index `0..total` in the swap-or-not permutation keyed by `seed`: the same values as
/// [`compute_shuffled_index`] for each index, but the per-round pivot and source hashes are computed once
/// (`90 · (1 + ceil(total / 256))` SHA-256 calls instead of `180 · total`). Empty when `total == 0`.
pub fn shuffled_positions(total: u64, seed: &[u8; 32]) -> Vec<u64> {
    if total == 0 {
        return Vec::new();
    }
    let blocks = total.div_ceil(256) as usize;
    let mut pivots = [0u64; SHUFFLE_ROUNDS as usize];
    let mut sources: Vec<[u8; 32]> = Vec::with_capacity(SHUFFLE_ROUNDS as usize * blocks);
    for round in 0..SHUFFLE_ROUNDS {
        let mut h = Sha256::new();
        h.update(seed);
        h.update(&[round]);
        let d = h.finalize();
        let mut b = [0u8; 8];
        b.copy_from_slice(&d[..8]);
        pivots[round as usize] = u64::from_le_bytes(b) % total;
        for block in 0..blocks as u32 {
            let mut h = Sha256::new();
            h.update(seed);
            h.update(&[round]);
            h.update(&block.to_le_bytes());
            sources.push(h.finalize());
        }
    }
    (0..total)
        .map(|index| {
            let mut idx = index;
            for round in 0..SHUFFLE_ROUNDS as usize {
                let flip = (pivots[round] + total - idx) % total;
                let position = core::cmp::max(idx, flip);
                let source = &sources[round * blocks + (position / 256) as usize];
                if (source[((position % 256) / 8) as usize] >> (position % 8)) & 1 == 1 {
                    idx = flip;
                }
            }
            idx
        })
        .collect()
}

/// `sha256(sha256(seed.to_le_bytes()) || salt)`: the per-purpose shuffle key derived from a round seed.
pub fn derive_shuffle_seed(random_seed: u64, salt: &[u8]) -> [u8; 32] {
    let inner = sha256(&random_seed.to_le_bytes());
    let mut h = Sha256::new();
    h.update(&inner);
    h.update(salt);
    h.finalize()
}

/// Psyche's 64-bit LCG (`a = 6364136223846793005`, `c = 1442695040888963407`); `next` returns the new state.
#[derive(Clone, Debug)]
pub struct Lcg {
    state: u64,
}

impl Lcg {
    /// LCG multiplier.
    pub const A: u64 = 6364136223846793005;
    /// LCG increment.
    pub const C: u64 = 1442695040888963407;

    /// Seeds the generator (the state is the seed itself).
    pub const fn new(seed: u64) -> Self {
        Lcg { state: seed }
    }

    /// Advances and returns the new state.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_mul(Self::A).wrapping_add(Self::C);
        self.state
    }
}

/// Fisher–Yates with [`Lcg`]: for `i` from `len-1` down to 1, `j = next() % (i+1)`, swap `i` and `j`.
pub fn deterministic_shuffle<T>(items: &mut [T], seed: u64) {
    let mut rng = Lcg::new(seed);
    let mut i = items.len();
    while i > 1 {
        i -= 1;
        let j = (rng.next() % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swap_or_not_is_a_permutation() {
        for total in [1u64, 2, 3, 7, 32, 100, 257] {
            let seed = derive_shuffle_seed(total * 31 + 5, b"committee");
            let mut seen = alloc::vec![false; total as usize];
            for i in 0..total {
                let p = compute_shuffled_index(i, total, &seed).unwrap();
                assert!(p < total);
                assert!(!seen[p as usize], "duplicate position {p} for n={total}");
                seen[p as usize] = true;
            }
        }
        assert_eq!(compute_shuffled_index(0, 0, &[0; 32]), None);
        assert_eq!(compute_shuffled_index(3, 3, &[0; 32]), None);
    }

    #[test]
    fn bulk_positions_equal_single_queries() {
        for total in [0u64, 1, 2, 255, 256, 257, 600] {
            let seed = derive_shuffle_seed(total + 77, b"witness");
            let bulk = shuffled_positions(total, &seed);
            assert_eq!(bulk.len() as u64, total);
            for (i, p) in bulk.iter().enumerate() {
                assert_eq!(Some(*p), compute_shuffled_index(i as u64, total, &seed), "n={total} i={i}");
            }
        }
    }

    #[test]
    fn swap_or_not_single_round_by_hand() {
        // With total = 1 every pivot is 0 and flip = (0 + 1 - 0) % 1 = 0: index 0 maps to 0.
        assert_eq!(compute_shuffled_index(0, 1, &[7; 32]), Some(0));
    }

    #[test]
    fn lcg_first_values_by_hand() {
        // state1 = 0 * A + C = C; state2 = C * A + C (mod 2^64).
        let mut r = Lcg::new(0);
        assert_eq!(r.next(), 1442695040888963407);
        let expected = 1442695040888963407u64.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        assert_eq!(r.next(), expected);
        // (C * A + C) mod 2^64 computed with u128 arithmetic, independently of wrapping_mul.
        let wide = (1442695040888963407u128 * 6364136223846793005u128 + 1442695040888963407u128) % (1u128 << 64);
        assert_eq!(expected as u128, wide);
    }

    #[test]
    fn fisher_yates_by_hand_and_permutation() {
        // len 2 with seed 0: i = 1, j = C % 2 = 1 (C is odd) → no swap.
        let mut v = [10, 20];
        deterministic_shuffle(&mut v, 0);
        assert_eq!(v, [10, 20]);
        let mut v: Vec<u32> = (0..50).collect();
        deterministic_shuffle(&mut v, 12345);
        let mut sorted = v.clone();
        sorted.sort();
        assert_eq!(sorted, (0..50).collect::<Vec<u32>>());
        assert_ne!(v, sorted);
    }
}
