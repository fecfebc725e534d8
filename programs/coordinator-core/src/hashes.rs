//! The round-seed chain and the commitment hash (docs/coordinator.md §8, §9.8).

use crate::sha256::Sha256;

/// Domain separator of the round-seed hash.
pub const ROUND_SEED_DOMAIN: &[u8] = b"psyche-ts/round-seed/v1";

/// `u64_le⁻¹(sha256(domain || u64_le(tick_seed) || u64_le(prev_seed) || u32_le(epoch) || u32_le(step) ||
/// u32_le(n) || for each witness sorted by index: u32_le(index) || merkle)[0..8])`.
///
/// `witnesses` are `(index, broadcast_merkle)` pairs in any order (they are sorted here, so the seed does not
/// depend on arrival order).
pub fn round_seed(tick_seed: u64, prev_seed: u64, epoch: u32, step: u32, witnesses: &[(u32, [u8; 32])]) -> u64 {
    let mut sorted: alloc::vec::Vec<&(u32, [u8; 32])> = witnesses.iter().collect();
    sorted.sort_by_key(|w| w.0);
    let mut h = Sha256::new();
    h.update(ROUND_SEED_DOMAIN);
    h.update(&tick_seed.to_le_bytes());
    h.update(&prev_seed.to_le_bytes());
    h.update(&epoch.to_le_bytes());
    h.update(&step.to_le_bytes());
    h.update(&(sorted.len() as u32).to_le_bytes());
    for (index, merkle) in sorted {
        h.update(&index.to_le_bytes());
        h.update(merkle);
    }
    let d = h.finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    u64::from_le_bytes(b)
}

/// `sha256(u32_be(step) || u64_be(start) || u64_be(end) || payload)`.
pub fn commitment_hash(step: u32, start: u64, end: u64, payload: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(&step.to_be_bytes());
    h.update(&start.to_be_bytes());
    h.update(&end.to_be_bytes());
    h.update(payload);
    h.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sha256::sha256;

    #[test]
    fn round_seed_layout_by_hand() {
        // Build the preimage by hand and compare.
        let m1 = [1u8; 32];
        let m2 = [2u8; 32];
        let mut pre = alloc::vec::Vec::new();
        pre.extend_from_slice(b"psyche-ts/round-seed/v1");
        pre.extend_from_slice(&7u64.to_le_bytes());
        pre.extend_from_slice(&9u64.to_le_bytes());
        pre.extend_from_slice(&3u32.to_le_bytes());
        pre.extend_from_slice(&11u32.to_le_bytes());
        pre.extend_from_slice(&2u32.to_le_bytes());
        pre.extend_from_slice(&1u32.to_le_bytes());
        pre.extend_from_slice(&m2);
        pre.extend_from_slice(&5u32.to_le_bytes());
        pre.extend_from_slice(&m1);
        let d = sha256(&pre);
        let expected = u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]);
        // Arrival order (5 then 1) does not matter.
        assert_eq!(round_seed(7, 9, 3, 11, &[(5, m1), (1, m2)]), expected);
        assert_eq!(round_seed(7, 9, 3, 11, &[(1, m2), (5, m1)]), expected);
        assert_eq!(ROUND_SEED_DOMAIN.len(), 23);
    }

    #[test]
    fn commitment_layout_by_hand() {
        let mut pre = alloc::vec::Vec::new();
        pre.extend_from_slice(&[0, 0, 0, 5]);
        pre.extend_from_slice(&[0, 0, 0, 0, 0, 0, 1, 0]);
        pre.extend_from_slice(&[0, 0, 0, 0, 0, 0, 1, 7]);
        pre.extend_from_slice(b"xyz");
        assert_eq!(commitment_hash(5, 256, 263, b"xyz"), sha256(&pre));
    }
}
