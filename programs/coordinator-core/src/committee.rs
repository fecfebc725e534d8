//! Committee and witness selection (swap-or-not over SHA-256) and the witness quorum.

use alloc::vec::Vec;

use crate::shuffle::{compute_shuffled_index, derive_shuffle_seed, shuffled_positions};

/// Maximum witnesses per round.
pub const MAX_WITNESSES: u16 = 32;

/// Salt of the committee shuffle.
pub const COMMITTEE_SALT: &[u8] = b"committee";
/// Salt of the witness shuffle.
pub const WITNESS_SALT: &[u8] = b"witness";

/// A client's role in a round (u8 discriminants match Psyche).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Committee {
    /// Re-runs disputed batches (unused: always 0 tie-breakers).
    TieBreaker = 0,
    /// Verifies other trainers (unused: `verification_percent` is 0).
    Verifier = 1,
    /// Trains its assigned batches.
    Trainer = 2,
}

/// Proof of a client's committee: its shuffled `position` and its `index` in the round's clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommitteeProof {
    /// The committee.
    pub committee: Committee,
    /// Shuffled position.
    pub position: u64,
    /// Client index.
    pub index: u64,
}

/// Proof that a client is (or is not) a witness of a round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WitnessProof {
    /// Shuffled position.
    pub position: u64,
    /// Client index.
    pub index: u64,
    /// Whether the client is a witness.
    pub witness: bool,
}

/// The committee and witness assignment of one round.
#[derive(Clone, Debug)]
pub struct CommitteeSelection {
    /// Number of tie-breakers (always 0 in practice).
    pub tie_breaker_nodes: u64,
    /// Number of verifiers.
    pub verifier_nodes: u64,
    /// Number of witnesses (already resolved: `witness_nodes == 0` means `min(total, 32)`).
    pub witness_nodes: u64,
    /// Clients in the round.
    pub total_nodes: u64,
    committee_seed: [u8; 32],
    witness_seed: [u8; 32],
}

impl CommitteeSelection {
    /// Builds the selection of a round with `total_nodes` clients and seed `random_seed`.
    pub fn new(
        tie_breaker_nodes: u64,
        witness_nodes: u64,
        verification_percent: u8,
        total_nodes: u64,
        random_seed: u64,
    ) -> Self {
        let tie_breaker_nodes = core::cmp::min(tie_breaker_nodes, total_nodes);
        let verifier_nodes = (total_nodes - tie_breaker_nodes) * verification_percent as u64 / 100;
        let witness_nodes = effective_witness_nodes(witness_nodes, total_nodes);
        CommitteeSelection {
            tie_breaker_nodes,
            verifier_nodes,
            witness_nodes,
            total_nodes,
            committee_seed: derive_shuffle_seed(random_seed, COMMITTEE_SALT),
            witness_seed: derive_shuffle_seed(random_seed, WITNESS_SALT),
        }
    }

    /// Committee of client `index`; `None` if `index >= total_nodes`.
    pub fn committee(&self, index: u64) -> Option<CommitteeProof> {
        let position = compute_shuffled_index(index, self.total_nodes, &self.committee_seed)?;
        Some(CommitteeProof { committee: self.committee_of_position(position), position, index })
    }

    /// Committee of every client `0..total_nodes` (bulk: the shuffle hashes are computed once).
    pub fn committees(&self) -> Vec<Committee> {
        shuffled_positions(self.total_nodes, &self.committee_seed)
            .into_iter()
            .map(|position| self.committee_of_position(position))
            .collect()
    }

    /// Client indices that are witnesses, ascending (bulk).
    pub fn witnesses(&self) -> Vec<u64> {
        let positions = shuffled_positions(self.total_nodes, &self.witness_seed);
        (0..self.total_nodes).filter(|&i| positions[i as usize] < self.witness_nodes).collect()
    }

    fn committee_of_position(&self, position: u64) -> Committee {
        if position < self.tie_breaker_nodes {
            Committee::TieBreaker
        } else if position < self.tie_breaker_nodes + self.verifier_nodes {
            Committee::Verifier
        } else {
            Committee::Trainer
        }
    }

    /// Witness status of client `index`; `None` if `index >= total_nodes`.
    pub fn witness(&self, index: u64) -> Option<WitnessProof> {
        let position = compute_shuffled_index(index, self.total_nodes, &self.witness_seed)?;
        Some(WitnessProof { position, index, witness: position < self.witness_nodes })
    }
}

/// Witnesses per round: `witness_nodes`, or `min(total, 32)` when it is 0, never more than `total`.
pub fn effective_witness_nodes(witness_nodes: u64, total_nodes: u64) -> u64 {
    let w = if witness_nodes == 0 { MAX_WITNESSES as u64 } else { witness_nodes };
    core::cmp::min(w, total_nodes)
}

/// Psyche's witness quorum of `w` witnesses: `1→1, 2→2, 3→2`, else `max(1, floor(2w/3))`.
pub fn witness_quorum(w: u64) -> u64 {
    match w {
        0 => 0,
        1 => 1,
        2 => 2,
        3 => 2,
        n => core::cmp::max(1, n * 2 / 3),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorum_by_hand() {
        assert_eq!(witness_quorum(1), 1);
        assert_eq!(witness_quorum(2), 2);
        assert_eq!(witness_quorum(3), 2);
        assert_eq!(witness_quorum(4), 2); // floor(8/3)
        assert_eq!(witness_quorum(32), 21); // floor(64/3)
    }

    #[test]
    fn exactly_w_witnesses_and_all_trainers() {
        for total in [1u64, 5, 40, 256] {
            let sel = CommitteeSelection::new(0, 0, 0, total, 99 + total);
            let witnesses = (0..total).filter(|&i| sel.witness(i).unwrap().witness).count() as u64;
            assert_eq!(witnesses, core::cmp::min(total, 32));
            assert!((0..total).all(|i| sel.committee(i).unwrap().committee == Committee::Trainer));
            assert!(sel.witness(total).is_none());
        }
        let sel = CommitteeSelection::new(0, 3, 50, 300, 5);
        let singles: Vec<u64> = (0..300).filter(|&i| sel.witness(i).unwrap().witness).collect();
        assert_eq!(sel.witnesses(), singles);
        let singles: Vec<Committee> = (0..300).map(|i| sel.committee(i).unwrap().committee).collect();
        assert_eq!(sel.committees(), singles);
        let sel = CommitteeSelection::new(0, 3, 0, 10, 1);
        assert_eq!((0..10).filter(|&i| sel.witness(i).unwrap().witness).count(), 3);
        // 50% verifiers of 10 nodes → 5 verifiers.
        let sel = CommitteeSelection::new(0, 3, 50, 10, 1);
        assert_eq!((0..10).filter(|&i| sel.committee(i).unwrap().committee == Committee::Verifier).count(), 5);
    }
}
