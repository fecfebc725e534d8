//! Trainer order (LCG Fisher–Yates) and contiguous batch assignment with the remainder to the first trainers.

use alloc::vec::Vec;

use crate::shuffle::deterministic_shuffle;

/// An inclusive range of sequence indices `[start, end]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct BatchRange {
    /// First sequence index.
    pub start: u64,
    /// Last sequence index (inclusive).
    pub end: u64,
}

impl BatchRange {
    /// Number of sequences in the range.
    pub fn len(&self) -> u64 {
        self.end - self.start + 1
    }

    /// Never empty (the range is inclusive).
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// Splits `total` sequences starting at `data_index` among `trainers` (given in client order).
///
/// The trainers are shuffled with [`deterministic_shuffle`]`(random_seed)`; with `T` trainers the i-th
/// shuffled trainer gets `total / T + (i < total % T)` contiguous sequences. Trainers with 0 sequences get
/// no range. Returns `(range, trainer)` pairs in range order.
pub fn assign_batches<T: Copy>(trainers: &[T], random_seed: u64, data_index: u64, total: u64) -> Vec<(BatchRange, T)> {
    let mut order: Vec<T> = trainers.to_vec();
    deterministic_shuffle(&mut order, random_seed);
    let n = order.len() as u64;
    let mut out = Vec::with_capacity(order.len());
    if n == 0 {
        return out;
    }
    let base = total / n;
    let rem = total % n;
    let mut start = data_index;
    for (i, t) in order.into_iter().enumerate() {
        let size = base + u64::from((i as u64) < rem);
        if size == 0 {
            continue;
        }
        out.push((BatchRange { start, end: start + size - 1 }, t));
        start += size;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remainder_goes_to_first_shuffled_trainers() {
        // 10 sequences over 3 trainers: base 3, rem 1 → sizes 4, 3, 3 starting at 100.
        let got = assign_batches(&[0u8, 1, 2], 7, 100, 10);
        let ranges: Vec<(u64, u64)> = got.iter().map(|(r, _)| (r.start, r.end)).collect();
        assert_eq!(ranges, [(100, 103), (104, 106), (107, 109)]);
        let mut who: Vec<u8> = got.iter().map(|(_, t)| *t).collect();
        let mut order = [0u8, 1, 2];
        deterministic_shuffle(&mut order, 7);
        assert_eq!(who, order);
        who.sort();
        assert_eq!(who, [0, 1, 2]);
    }

    #[test]
    fn fewer_sequences_than_trainers() {
        let got = assign_batches(&[1u16, 2, 3, 4, 5], 3, 0, 2);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, BatchRange { start: 0, end: 0 });
        assert_eq!(got[1].0, BatchRange { start: 1, end: 1 });
        assert!(assign_batches::<u8>(&[], 1, 0, 5).is_empty());
    }
}
