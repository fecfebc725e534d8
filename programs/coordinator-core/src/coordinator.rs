//! The pure, clock-free, RNG-free run state machine (docs/coordinator.md §4–§7).
//!
//! Every operation validates all of its inputs and preconditions before it mutates anything: on error the
//! state is unchanged.

use alloc::collections::BTreeSet;
use alloc::string::String;
use alloc::vec::Vec;

use crate::bloom::Bloom;
use crate::committee::{Committee, CommitteeSelection, effective_witness_nodes, witness_quorum};
use crate::config::{
    Checkpoint, CoordinatorConfig, MAX_PENDING, MAX_TIMESTAMP, ModelConfig, validate_config, validate_model,
    validate_run_id,
};
use crate::data::{BatchRange, assign_batches};
use crate::error::{CoordinatorError, ErrorCode, Result};
use crate::hashes::round_seed;
use crate::schedule::batch_size;
use crate::sha256::sha256;

/// Size of the round ring buffer.
pub const NUM_STORED_ROUNDS: usize = 4;

/// A client id: the node's 32-byte ed25519 public key.
pub type ClientId = [u8; 32];

/// Run states (u8 discriminants match Psyche).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunState {
    /// Created, never resumed.
    Uninitialized = 0,
    /// Collecting joiners for the next epoch.
    WaitingForMembers = 1,
    /// Clients load the model.
    Warmup = 2,
    /// Clients train.
    RoundTrain = 3,
    /// Witnesses report.
    RoundWitness = 4,
    /// Checkpointing at the end of an epoch.
    Cooldown = 5,
    /// `total_steps` trained.
    Finished = 6,
    /// Paused by the operator.
    Paused = 7,
}

impl RunState {
    /// The name used in the conformance vectors.
    pub const fn name(self) -> &'static str {
        match self {
            RunState::Uninitialized => "Uninitialized",
            RunState::WaitingForMembers => "WaitingForMembers",
            RunState::Warmup => "Warmup",
            RunState::RoundTrain => "RoundTrain",
            RunState::RoundWitness => "RoundWitness",
            RunState::Cooldown => "Cooldown",
            RunState::Finished => "Finished",
            RunState::Paused => "Paused",
        }
    }

    /// Uninitialized, Paused and Finished: `tick` and `join` fail with `Halted`.
    pub const fn is_halted(self) -> bool {
        matches!(self, RunState::Uninitialized | RunState::Paused | RunState::Finished)
    }
}

/// Health of an epoch client.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientState {
    /// Participating.
    Healthy = 0,
    /// Dropped by a health check.
    Dropped = 1,
    /// Left (withdraw or epoch wind-down).
    Withdrawn = 2,
    /// Never assigned (kept for the wire).
    Ejected = 3,
}

/// An epoch client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Client {
    /// Id.
    pub id: ClientId,
    /// Health.
    pub state: ClientState,
    /// Round height at which it was moved to `exited_clients`.
    pub exited_height: u32,
}

/// A witness report stored in a round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Witness {
    /// Client index of the witness.
    pub index: u32,
    /// Holds `sha256(id)` of every client whose results the witness received.
    pub participant_bloom: Bloom,
    /// Holds the commitment hash of every result the witness received.
    pub broadcast_bloom: Bloom,
    /// Merkle root over the commitments seen.
    pub broadcast_merkle: [u8; 32],
}

/// One training round.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Round {
    /// Witness reports, in arrival order (<= 32).
    pub witnesses: Vec<Witness>,
    /// First sequence index of the round.
    pub data_index: u64,
    /// Seed of committee/witness selection and trainer order.
    pub random_seed: u64,
    /// Round height in the epoch.
    pub height: u32,
    /// Number of epoch clients when the round started.
    pub clients_len: u32,
}

/// Per-epoch state (zeroed when an epoch starts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpochState {
    /// Round ring buffer.
    pub rounds: [Round; NUM_STORED_ROUNDS],
    /// Index of the current round in `rounds`.
    pub rounds_head: u32,
    /// Clients of the epoch.
    pub clients: Vec<Client>,
    /// Clients that left the epoch.
    pub exited_clients: Vec<Client>,
    /// Step at which the epoch started.
    pub start_step: u32,
    /// Step at which the epoch ends (0 = unset).
    pub last_step: u32,
    /// Unix time the epoch started.
    pub start_timestamp: u64,
    /// True until the first RoundWitness tick of the epoch.
    pub first_round: bool,
    /// True after a Pause (LR ramps from 0).
    pub cold_start_epoch: bool,
    /// Client indices that sent a warmup witness, in arrival order.
    pub warmup_witnesses: Vec<u32>,
}

impl EpochState {
    fn zeroed(cold_start_epoch: bool) -> Self {
        EpochState {
            rounds: Default::default(),
            rounds_head: 0,
            clients: Vec::new(),
            exited_clients: Vec::new(),
            start_step: 0,
            last_step: 0,
            start_timestamp: 0,
            first_round: true,
            cold_start_epoch,
            warmup_witnesses: Vec::new(),
        }
    }
}

/// Run progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Epoch number.
    pub epoch: u32,
    /// Next step to train (starts at 1).
    pub step: u32,
    /// First sequence index of the epoch.
    pub epoch_start_data_index: u64,
}

/// What a tick did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TickResult {
    /// The state advanced (or not) without ending an epoch.
    Ticked,
    /// An epoch ended: `true` after Cooldown, `false` when Warmup fell below `min_clients`.
    EpochEnd(bool),
}

/// Outcome of a health check.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HealthCheckResult {
    /// Entries that were unhealthy and are now Dropped.
    pub dropped: u32,
    /// Entries that were healthy (ignored).
    pub rejected_healthy: u32,
    /// Entries already not Healthy.
    pub already_unhealthy: u32,
}

/// One entry of a health-check report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthCheckEntry {
    /// Client index in the epoch.
    pub index: u64,
    /// Its id.
    pub id: ClientId,
}

/// A witness message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WitnessMessage<'a> {
    /// Sender.
    pub from: ClientId,
    /// Sender's client index.
    pub index: u64,
    /// Participant bloom.
    pub participant_bloom: Bloom,
    /// Broadcast bloom.
    pub broadcast_bloom: Bloom,
    /// Merkle root (must be 32 bytes).
    pub broadcast_merkle: &'a [u8],
}

/// A config/model change of `update_config`.
#[derive(Clone, Debug, PartialEq)]
pub enum ConfigChange {
    /// An integer field (`config.*`, `max_seq_len`, `cold_start_warmup_steps`) by snake_case name.
    Integer(String, u64),
    /// A new checkpoint.
    Checkpoint(Checkpoint),
    /// A new LR schedule.
    LrSchedule(crate::config::LrSchedule),
}

/// The coordinator of one run.
#[derive(Clone, Debug, PartialEq)]
pub struct Coordinator {
    /// Run id.
    pub run_id: String,
    /// Config.
    pub config: CoordinatorConfig,
    /// Model config.
    pub model: ModelConfig,
    /// Current state.
    pub run_state: RunState,
    /// Unix time of the last state change.
    pub run_state_start: u64,
    /// Progress.
    pub progress: Progress,
    /// Pause requested while active.
    pub pending_pause: bool,
    /// Last round seed (the seed chain).
    pub last_round_seed: u64,
    /// Joiners of the next epoch, in join order.
    pub pending: Vec<ClientId>,
    /// Epoch state.
    pub epoch_state: EpochState,
}

/// Decodes a client id from 64 lowercase hex chars (the TypeScript representation).
///
/// The typed Rust API takes [`ClientId`] (`[u8; 32]`), so `InvalidClientId` can only arise at a decoding
/// boundary like this one.
///
/// # Errors
/// `InvalidClientId` (5).
pub fn client_id_from_hex(s: &str) -> Result<ClientId> {
    let b = s.as_bytes();
    if b.len() != 64 || !b.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(err(ErrorCode::InvalidClientId, "id", "64 lowercase hex chars (32 bytes)"));
    }
    let nib = |c: u8| if c <= b'9' { c - b'0' } else { c - b'a' + 10 };
    let mut id = [0u8; 32];
    for (i, out) in id.iter_mut().enumerate() {
        *out = (nib(b[2 * i]) << 4) | nib(b[2 * i + 1]);
    }
    Ok(id)
}

fn err(code: ErrorCode, field: &'static str, expected: &'static str) -> CoordinatorError {
    CoordinatorError::new(code, field, expected)
}

impl Coordinator {
    /// `createCoordinator`: validates run id (19), config (2), model (20).
    ///
    /// # Errors
    /// `InvalidRunId`, `InvalidConfig` or `InvalidModel`.
    pub fn new(run_id: &str, config: CoordinatorConfig, model: ModelConfig) -> Result<Self> {
        validate_run_id(run_id)?;
        validate_config(&config)?;
        validate_model(&model, &config)?;
        Ok(Coordinator {
            run_id: String::from(run_id),
            config,
            model,
            run_state: RunState::Uninitialized,
            run_state_start: 0,
            progress: Progress { epoch: 0, step: 1, epoch_start_data_index: 0 },
            pending_pause: false,
            last_round_seed: 0,
            pending: Vec::new(),
            epoch_state: EpochState::zeroed(true),
        })
    }

    // ---- helpers (§5) ----

    /// Validates a timestamp: `now <= 2^53 − 1` and `now >= run_state_start`.
    ///
    /// # Errors
    /// `InvalidTimestamp` (3).
    pub fn check_now(&self, now: u64) -> Result<()> {
        if now > MAX_TIMESTAMP {
            return Err(err(ErrorCode::InvalidTimestamp, "now", "<= 2^53 - 1"));
        }
        if now < self.run_state_start {
            return Err(err(ErrorCode::InvalidTimestamp, "now", ">= run_state_start"));
        }
        Ok(())
    }

    fn check_timeout(&self, now: u64, duration: u64) -> bool {
        now != self.run_state_start && now >= self.run_state_start + duration
    }

    fn change_state(&mut self, now: u64, s: RunState) {
        self.run_state = s;
        self.run_state_start = now;
    }

    /// The current round.
    pub fn current_round(&self) -> &Round {
        &self.epoch_state.rounds[self.epoch_state.rounds_head as usize % NUM_STORED_ROUNDS]
    }

    /// The round before the current one in the ring.
    pub fn previous_round(&self) -> &Round {
        &self.epoch_state.rounds[(self.epoch_state.rounds_head as usize + 3) % NUM_STORED_ROUNDS]
    }

    fn move_clients_to_exited(&mut self, height: u32) {
        let es = &mut self.epoch_state;
        let mut kept = Vec::with_capacity(es.clients.len());
        for c in es.clients.drain(..) {
            if c.state == ClientState::Healthy {
                kept.push(c);
            } else {
                es.exited_clients.push(Client { exited_height: height, ..c });
            }
        }
        es.clients = kept;
    }

    fn withdraw_all(&mut self) {
        for c in self.epoch_state.clients.iter_mut() {
            if c.state == ClientState::Healthy {
                c.state = ClientState::Withdrawn;
            }
        }
    }

    /// Witnesses expected in `round`: `effective_witness_nodes(round.clients_len)`.
    pub fn expected_witnesses(&self, round: &Round) -> u64 {
        effective_witness_nodes(self.config.witness_nodes, round.clients_len as u64)
    }

    /// Quorum of `round`: `witness_quorum(expected_witnesses(round))`.
    pub fn round_quorum(&self, round: &Round) -> u64 {
        witness_quorum(self.expected_witnesses(round))
    }

    /// Committee/witness selection of `round`.
    pub fn selection(&self, round: &Round) -> CommitteeSelection {
        CommitteeSelection::new(
            0,
            self.config.witness_nodes,
            self.config.verification_percent as u8,
            round.clients_len as u64,
            round.random_seed,
        )
    }

    /// Batch size of a round starting at `data_index`.
    pub fn batch_size(&self, data_index: u64) -> u64 {
        batch_size(&self.config, self.model.max_seq_len, data_index)
    }

    /// Client indices `< clients_len` that are witnesses of `round`, ascending.
    pub fn witness_indices(&self, round: &Round) -> Vec<u32> {
        self.selection(round).witnesses().into_iter().map(|i| i as u32).collect()
    }

    /// Batch assignment of `round` (§9.4): `(range, client index)` in ascending range order.
    pub fn assign_batches(&self, round: &Round) -> Vec<(BatchRange, u32)> {
        let trainers: Vec<u32> = (0..round.clients_len)
            .zip(self.selection(round).committees())
            .filter(|(_, c)| *c == Committee::Trainer)
            .map(|(i, _)| i)
            .collect();
        assign_batches(&trainers, round.random_seed, round.data_index, self.batch_size(round.data_index))
    }

    fn find_client(&self, id: &ClientId) -> Option<usize> {
        self.epoch_state.clients.iter().position(|c| &c.id == id)
    }

    fn check_sender(&self, from: &ClientId, index: u64) -> Result<usize> {
        let clients = &self.epoch_state.clients;
        if index >= clients.len() as u64 {
            return Err(err(ErrorCode::InvalidClientIndex, "index", "< clients.len()"));
        }
        let i = index as usize;
        if &clients[i].id != from {
            return Err(err(ErrorCode::ClientIdMismatch, "from", "clients[index].id"));
        }
        if clients[i].state != ClientState::Healthy {
            return Err(err(ErrorCode::ClientNotHealthy, "from", "a Healthy client"));
        }
        Ok(i)
    }

    // ---- events (§6) ----

    /// `Ok` unless the run is halted (Uninitialized, Paused, Finished), where `join` and `tick` fail.
    ///
    /// # Errors
    /// `Halted` (1).
    pub fn join_allowed(&self) -> Result<()> {
        if self.run_state.is_halted() {
            return Err(err(ErrorCode::Halted, "run_state", "not Uninitialized, Paused or Finished"));
        }
        Ok(())
    }

    /// `join` (§6.1): queue `id` for the next epoch.
    ///
    /// # Errors
    /// `Halted` (1), `PendingFull` (6).
    pub fn join(&mut self, id: ClientId) -> Result<()> {
        self.join_allowed()?;
        if self.pending.contains(&id) {
            return Ok(());
        }
        if self.pending.len() >= MAX_PENDING {
            return Err(err(ErrorCode::PendingFull, "pending", "fewer than 65535 joiners"));
        }
        self.pending.push(id);
        Ok(())
    }

    /// `tick` (§6.2, §7).
    ///
    /// # Errors
    /// `InvalidTimestamp` (3), `Halted` (1), `PendingFull` (6).
    pub fn tick(&mut self, new_clients: &[ClientId], now: u64, seed: u64) -> Result<TickResult> {
        self.check_now(now)?;
        self.join_allowed()?;
        // Set lookups keep a large `new_clients` list O(n log n) instead of quadratic.
        let mut seen: BTreeSet<&ClientId> = self.pending.iter().collect();
        let mut fresh: Vec<ClientId> = Vec::new();
        for id in new_clients {
            if seen.insert(id) {
                fresh.push(*id);
            }
        }
        if self.pending.len() + fresh.len() > MAX_PENDING {
            return Err(err(ErrorCode::PendingFull, "new_clients", "to fit in 65535 pending joiners"));
        }
        self.pending.extend(fresh);
        Ok(match self.run_state {
            RunState::WaitingForMembers => {
                self.tick_waiting_for_members(now);
                TickResult::Ticked
            }
            RunState::Warmup => self.tick_warmup(now, seed),
            RunState::RoundTrain => {
                if self.check_timeout(now, self.config.max_round_train_time) {
                    self.change_state(now, RunState::RoundWitness);
                }
                TickResult::Ticked
            }
            RunState::RoundWitness => {
                self.tick_round_witness(now, seed);
                TickResult::Ticked
            }
            RunState::Cooldown => self.tick_cooldown(now),
            RunState::Uninitialized | RunState::Paused | RunState::Finished => {
                unreachable!("halted states return early")
            }
        })
    }

    fn tick_waiting_for_members(&mut self, now: u64) {
        if (self.pending.len() as u64) < self.config.init_min_clients
            || !self.check_timeout(now, self.config.waiting_for_members_extra_time)
        {
            return;
        }
        self.move_clients_to_exited(self.current_round().height);
        let previous: Vec<ClientId> = self.epoch_state.clients.iter().map(|c| c.id).collect();
        let take = core::cmp::min(self.pending.len() as u64, self.config.max_clients) as usize;
        let new: Vec<ClientId> = self.pending[..take].to_vec();
        self.pending.clear();
        if !new.iter().any(|id| previous.contains(id)) {
            self.model.checkpoint = match core::mem::replace(&mut self.model.checkpoint, Checkpoint::Ephemeral) {
                Checkpoint::P2P(h) => Checkpoint::Hub(h),
                Checkpoint::P2PGcs(g) => Checkpoint::Gcs(g),
                other => other,
            };
        }
        let mut es = EpochState::zeroed(self.epoch_state.cold_start_epoch);
        es.clients = new.into_iter().map(|id| Client { id, state: ClientState::Healthy, exited_height: 0 }).collect();
        es.start_step = self.progress.step;
        es.start_timestamp = now;
        es.first_round = true;
        self.epoch_state = es;
        self.change_state(now, RunState::Warmup);
    }

    fn tick_warmup(&mut self, now: u64, seed: u64) -> TickResult {
        self.move_clients_to_exited(0);
        if (self.epoch_state.clients.len() as u64) < self.config.min_clients {
            self.change_state(now, RunState::WaitingForMembers);
            return TickResult::EpochEnd(false);
        }
        if self.check_timeout(now, self.config.warmup_time) {
            self.start_round_train(now, seed);
        }
        TickResult::Ticked
    }

    fn start_round_train(&mut self, now: u64, tick_seed: u64) {
        let (head, height, data_index, seed_witnesses): (u32, u32, u64, Vec<(u32, [u8; 32])>) =
            if self.run_state == RunState::Warmup {
                (0, 0, self.progress.epoch_start_data_index, Vec::new())
            } else {
                let prev = self.current_round();
                (
                    (self.epoch_state.rounds_head + 1) % NUM_STORED_ROUNDS as u32,
                    prev.height + 1,
                    prev.data_index + self.batch_size(prev.data_index),
                    prev.witnesses.iter().map(|w| (w.index, w.broadcast_merkle)).collect(),
                )
            };
        let seed =
            round_seed(tick_seed, self.last_round_seed, self.progress.epoch, self.progress.step, &seed_witnesses);
        self.last_round_seed = seed;
        self.epoch_state.rounds[head as usize] = Round {
            witnesses: Vec::new(),
            data_index,
            random_seed: seed,
            height,
            clients_len: self.epoch_state.clients.len() as u32,
        };
        self.epoch_state.rounds_head = head;
        self.change_state(now, RunState::RoundTrain);
    }

    fn tick_round_witness(&mut self, now: u64, seed: u64) {
        if !self.check_timeout(now, self.config.round_witness_time) {
            return;
        }
        self.epoch_state.first_round = false;
        self.progress.step += 1;
        self.move_clients_to_exited(self.current_round().height);
        let n = self.current_round().witnesses.len() as u64;
        if n == 0 {
            self.withdraw_all();
            self.change_state(now, RunState::Cooldown);
            return;
        }
        if self.epoch_state.last_step == 0 && now >= self.epoch_state.start_timestamp + self.config.epoch_time {
            // Saturating: with total_steps = 2^32 − 2 the final step is 2^32 − 1 and `step + 2` leaves u32 (see
            // DIVERGENCES.md); the round goes to Cooldown either way.
            self.epoch_state.last_step = self.progress.step.saturating_add(2);
        }
        let step = self.progress.step;
        let wound_down = self.epoch_state.last_step != 0 && step >= self.epoch_state.last_step;
        if wound_down
            || (self.epoch_state.clients.len() as u64) < self.config.min_clients
            || n < self.round_quorum(self.current_round())
            || step as u64 > self.config.total_steps
            || self.pending_pause
        {
            self.change_state(now, RunState::Cooldown);
        } else {
            self.start_round_train(now, seed);
        }
    }

    fn tick_cooldown(&mut self, now: u64) -> TickResult {
        if !self.check_timeout(now, self.config.cooldown_time) {
            return TickResult::Ticked;
        }
        let data_index = self.current_round().data_index;
        self.progress.epoch_start_data_index = data_index + self.batch_size(data_index);
        self.progress.epoch += 1;
        self.move_clients_to_exited(self.current_round().height);
        self.model.checkpoint = match core::mem::replace(&mut self.model.checkpoint, Checkpoint::Ephemeral) {
            Checkpoint::Hub(h) | Checkpoint::Dummy(h) => Checkpoint::P2P(h),
            Checkpoint::Gcs(g) => Checkpoint::P2PGcs(g),
            other => other,
        };
        if self.progress.step as u64 > self.config.total_steps {
            self.change_state(now, RunState::Finished);
        } else if self.pending_pause {
            self.withdraw_all();
            self.epoch_state.cold_start_epoch = true;
            self.pending_pause = false;
            self.pending.clear();
            self.change_state(now, RunState::Paused);
        } else {
            self.epoch_state.cold_start_epoch = false;
            self.change_state(now, RunState::WaitingForMembers);
        }
        TickResult::EpochEnd(true)
    }

    /// `withdraw` (§6.3): leave the pending list and/or the epoch.
    ///
    /// # Errors
    /// `ClientNotFound` (18).
    pub fn withdraw(&mut self, id: ClientId) -> Result<()> {
        let pending_pos = self.pending.iter().position(|p| p == &id);
        let client_pos = self.find_client(&id).filter(|&i| self.epoch_state.clients[i].state == ClientState::Healthy);
        if pending_pos.is_none() && client_pos.is_none() {
            return Err(err(ErrorCode::ClientNotFound, "id", "a pending or Healthy epoch client"));
        }
        if let Some(p) = pending_pos {
            self.pending.remove(p);
        }
        if let Some(i) = client_pos {
            self.epoch_state.clients[i].state = ClientState::Withdrawn;
        }
        Ok(())
    }

    /// `warmup_witness` (§6.4).
    ///
    /// # Errors
    /// `InvalidTimestamp` (3), `WrongRunState` (7), `InvalidClientIndex` (8), `ClientIdMismatch` (9),
    /// `ClientNotHealthy` (10), `DuplicateWitness` (12).
    pub fn warmup_witness(&mut self, from: ClientId, index: u64, now: u64, seed: u64) -> Result<()> {
        self.check_now(now)?;
        if self.run_state != RunState::Warmup {
            return Err(err(ErrorCode::WrongRunState, "run_state", "Warmup"));
        }
        let i = self.check_sender(&from, index)? as u32;
        if self.epoch_state.warmup_witnesses.contains(&i) {
            return Err(err(ErrorCode::DuplicateWitness, "index", "not already in warmup_witnesses"));
        }
        self.epoch_state.warmup_witnesses.push(i);
        let needed = effective_witness_nodes(self.config.witness_nodes, self.epoch_state.clients.len() as u64);
        if self.epoch_state.warmup_witnesses.len() as u64 >= needed {
            self.start_round_train(now, seed);
        }
        Ok(())
    }

    /// `witness` (§6.5).
    ///
    /// # Errors
    /// `InvalidTimestamp` (3), `WrongRunState` (7), `InvalidClientIndex` (8), `ClientIdMismatch` (9),
    /// `ClientNotHealthy` (10), `NotAWitness` (11), `DuplicateWitness` (12), `InvalidBloom` (13),
    /// `InvalidMerkleRoot` (14).
    pub fn witness(&mut self, msg: &WitnessMessage<'_>, now: u64) -> Result<()> {
        self.check_now(now)?;
        if !matches!(self.run_state, RunState::RoundTrain | RunState::RoundWitness) {
            return Err(err(ErrorCode::WrongRunState, "run_state", "RoundTrain or RoundWitness"));
        }
        let round = self.current_round();
        if msg.index >= round.clients_len as u64 {
            return Err(err(ErrorCode::InvalidClientIndex, "index", "< current_round.clients_len"));
        }
        let i = self.check_sender(&msg.from, msg.index)? as u32;
        let round = self.current_round();
        if !self.selection(round).witness(i as u64).is_some_and(|w| w.witness) {
            return Err(err(ErrorCode::NotAWitness, "index", "a witness of the current round"));
        }
        if round.witnesses.iter().any(|w| w.index == i) {
            return Err(err(ErrorCode::DuplicateWitness, "index", "not already a witness of this round"));
        }
        if !msg.participant_bloom.is_valid() {
            return Err(err(ErrorCode::InvalidBloom, "participant_bloom", "num_bits <= 1024, no bit beyond num_bits"));
        }
        if !msg.broadcast_bloom.is_valid() {
            return Err(err(ErrorCode::InvalidBloom, "broadcast_bloom", "num_bits <= 1024, no bit beyond num_bits"));
        }
        let merkle: [u8; 32] = msg
            .broadcast_merkle
            .try_into()
            .map_err(|_| err(ErrorCode::InvalidMerkleRoot, "broadcast_merkle", "exactly 32 bytes"))?;
        let expected = self.expected_witnesses(self.current_round());
        let head = self.epoch_state.rounds_head as usize % NUM_STORED_ROUNDS;
        let round = &mut self.epoch_state.rounds[head];
        round.witnesses.push(Witness {
            index: i,
            participant_bloom: msg.participant_bloom,
            broadcast_bloom: msg.broadcast_bloom,
            broadcast_merkle: merkle,
        });
        if self.run_state == RunState::RoundTrain && round.witnesses.len() as u64 >= expected {
            self.change_state(now, RunState::RoundWitness);
        }
        Ok(())
    }

    /// `health_check` (§6.6): drops the listed clients that the previous round's witnesses did not see.
    /// **Psyche-TS:** healthy entries are counted and ignored instead of voiding the whole report.
    ///
    /// # Errors
    /// `InvalidTimestamp` (3), `WrongRunState` (7), `HealthCheckTooEarly` (15), `ClientNotFound` (18),
    /// `ClientNotHealthy` (10), `InvalidHealthCheck` (16).
    pub fn health_check(&mut self, from: ClientId, checks: &[HealthCheckEntry], now: u64) -> Result<HealthCheckResult> {
        self.check_now(now)?;
        if !matches!(self.run_state, RunState::RoundTrain | RunState::RoundWitness) {
            return Err(err(ErrorCode::WrongRunState, "run_state", "RoundTrain or RoundWitness"));
        }
        if self.current_round().height < 2 {
            return Err(err(ErrorCode::HealthCheckTooEarly, "current_round.height", ">= 2"));
        }
        let reporter =
            self.find_client(&from).ok_or_else(|| err(ErrorCode::ClientNotFound, "from", "an epoch client"))?;
        if self.epoch_state.clients[reporter].state != ClientState::Healthy {
            return Err(err(ErrorCode::ClientNotHealthy, "from", "a Healthy client"));
        }
        let clients = &self.epoch_state.clients;
        if checks.is_empty() {
            return Err(err(ErrorCode::InvalidHealthCheck, "checks", "non-empty"));
        }
        if checks.len() > clients.len() {
            return Err(err(ErrorCode::InvalidHealthCheck, "checks", "at most clients.len() entries"));
        }
        let mut listed = alloc::vec![false; clients.len()];
        for c in checks {
            if c.index >= clients.len() as u64 {
                return Err(err(ErrorCode::InvalidHealthCheck, "checks[].index", "< clients.len()"));
            }
            if core::mem::replace(&mut listed[c.index as usize], true) {
                return Err(err(ErrorCode::InvalidHealthCheck, "checks[].index", "listed once"));
            }
            if clients[c.index as usize].id != c.id {
                return Err(err(ErrorCode::InvalidHealthCheck, "checks[].id", "clients[index].id"));
            }
        }
        let prev = self.previous_round();
        if prev.witnesses.is_empty() {
            return Err(err(ErrorCode::InvalidHealthCheck, "previous_round.witnesses", "non-empty"));
        }
        let quorum = witness_quorum(prev.witnesses.len() as u64);
        let mut result = HealthCheckResult::default();
        let mut to_drop: Vec<usize> = Vec::new();
        for c in checks {
            let i = c.index as usize;
            if self.epoch_state.clients[i].state != ClientState::Healthy {
                result.already_unhealthy += 1;
                continue;
            }
            let h = sha256(&c.id);
            let score = prev.witnesses.iter().filter(|w| w.participant_bloom.contains(&h)).count() as u64;
            if score >= quorum {
                result.rejected_healthy += 1;
            } else {
                to_drop.push(i);
                result.dropped += 1;
            }
        }
        for i in to_drop {
            self.epoch_state.clients[i].state = ClientState::Dropped;
        }
        Ok(result)
    }

    /// `checkpoint` (§6.7): a client reports the storage of the checkpoint it uploaded.
    ///
    /// # Errors
    /// `InvalidClientIndex` (8), `ClientIdMismatch` (9), `ClientNotHealthy` (10), `InvalidCheckpoint` (17).
    pub fn checkpoint(&mut self, from: ClientId, index: u64, report: &Checkpoint) -> Result<()> {
        self.check_sender(&from, index)?;
        if !matches!(report, Checkpoint::Hub(_) | Checkpoint::Gcs(_)) {
            return Err(err(ErrorCode::InvalidCheckpoint, "checkpoint", "Hub or Gcs"));
        }
        if !report.strings_valid() {
            return Err(err(ErrorCode::InvalidCheckpoint, "checkpoint", "strings of 1-64 chars of [A-Za-z0-9._/-]"));
        }
        let p2p = match self.model.checkpoint {
            Checkpoint::Ephemeral => {
                return Err(err(ErrorCode::InvalidCheckpoint, "model.checkpoint", "not Ephemeral"));
            }
            Checkpoint::P2P(_) | Checkpoint::P2PGcs(_) => true,
            Checkpoint::Hub(_) | Checkpoint::Gcs(_) | Checkpoint::Dummy(_) => false,
        };
        self.model.checkpoint = match (p2p, report.clone()) {
            (true, Checkpoint::Hub(h)) => Checkpoint::P2P(h),
            (true, Checkpoint::Gcs(g)) => Checkpoint::P2PGcs(g),
            (false, r) => r,
            (true, _) => unreachable!("report is Hub or Gcs"),
        };
        Ok(())
    }

    /// `pause` (§6.8).
    ///
    /// # Errors
    /// `InvalidTimestamp` (3), `WrongRunState` (7).
    pub fn pause(&mut self, now: u64) -> Result<()> {
        self.check_now(now)?;
        match self.run_state {
            RunState::Uninitialized | RunState::Paused | RunState::Finished => {
                Err(err(ErrorCode::WrongRunState, "run_state", "not Uninitialized, Paused or Finished"))
            }
            RunState::RoundTrain | RunState::RoundWitness | RunState::Cooldown => {
                self.pending_pause = true;
                Ok(())
            }
            RunState::WaitingForMembers | RunState::Warmup => {
                self.withdraw_all();
                self.pending.clear();
                self.epoch_state.cold_start_epoch = true;
                self.pending_pause = false;
                self.change_state(now, RunState::Paused);
                Ok(())
            }
        }
    }

    /// `resume` (§6.9).
    ///
    /// # Errors
    /// `InvalidTimestamp` (3), `WrongRunState` (7).
    pub fn resume(&mut self, now: u64) -> Result<()> {
        self.check_now(now)?;
        if !matches!(self.run_state, RunState::Uninitialized | RunState::Paused) {
            return Err(err(ErrorCode::WrongRunState, "run_state", "Uninitialized or Paused"));
        }
        self.pending_pause = false;
        self.pending.clear();
        self.change_state(now, RunState::WaitingForMembers);
        Ok(())
    }

    /// `update_config` (§6.10): applies all changes atomically.
    ///
    /// # Errors
    /// `WrongRunState` (7), `InvalidArgument` (21) for an unknown field, `InvalidConfig` (2), `InvalidModel` (20).
    pub fn update_config(&mut self, changes: &[ConfigChange]) -> Result<()> {
        if !matches!(self.run_state, RunState::Uninitialized | RunState::Paused) {
            return Err(err(ErrorCode::WrongRunState, "run_state", "Uninitialized or Paused"));
        }
        let mut config = self.config.clone();
        let mut model = self.model.clone();
        // An integer given for `checkpoint`/`lr_schedule` is a known field with a wrong value: like TypeScript,
        // it fails model validation (20) after the config is validated, not as an unknown field (21).
        let mut non_integer_model_field: Option<&'static str> = None;
        for change in changes {
            match change {
                ConfigChange::Integer(name, value) => match name.as_str() {
                    "max_seq_len" => model.max_seq_len = *value,
                    "cold_start_warmup_steps" => model.cold_start_warmup_steps = *value,
                    "checkpoint" => non_integer_model_field = Some("model.checkpoint"),
                    "lr_schedule" => non_integer_model_field = Some("model.lr_schedule"),
                    other => {
                        *config
                            .field_mut(other)
                            .ok_or_else(|| err(ErrorCode::InvalidArgument, "changes", "known config/model fields"))? =
                            *value
                    }
                },
                ConfigChange::Checkpoint(c) => model.checkpoint = c.clone(),
                ConfigChange::LrSchedule(s) => model.lr_schedule = s.clone(),
            }
        }
        validate_config(&config)?;
        if let Some(field) = non_integer_model_field {
            return Err(err(ErrorCode::InvalidModel, field, "a checkpoint / an LR schedule, not an integer"));
        }
        validate_model(&model, &config)?;
        self.config = config;
        self.model = model;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{HubRepo, LrSchedule};

    fn config() -> CoordinatorConfig {
        CoordinatorConfig {
            warmup_time: 30,
            cooldown_time: 10,
            max_round_train_time: 20,
            round_witness_time: 2,
            global_batch_size_warmup_tokens: 0,
            epoch_time: 200,
            total_steps: 100,
            init_min_clients: 3,
            min_clients: 2,
            max_clients: 8,
            witness_nodes: 0,
            global_batch_size_start: 8,
            global_batch_size_end: 8,
            verification_percent: 0,
            waiting_for_members_extra_time: 2,
        }
    }

    fn model() -> ModelConfig {
        ModelConfig {
            max_seq_len: 64,
            cold_start_warmup_steps: 0,
            checkpoint: Checkpoint::Hub(HubRepo { repo_id: "org/model".into(), revision: None }),
            lr_schedule: LrSchedule::Constant { base_lr: 3e-4, warmup_init_lr: 0.0, warmup_steps: 0 },
        }
    }

    fn ids(n: u8) -> Vec<ClientId> {
        (0..n).map(|i| [i + 1; 32]).collect()
    }

    /// A run in RoundTrain at height 0 with 3 clients (all witnesses, since witness_nodes = 0 → min(3, 32)).
    fn training() -> Coordinator {
        let mut c = Coordinator::new("t", config(), model()).unwrap();
        c.resume(100).unwrap();
        c.tick(&ids(3), 101, 0).unwrap(); // 3 pending, extra time (2 s) not yet elapsed
        assert_eq!(c.run_state, RunState::WaitingForMembers);
        c.tick(&[], 102, 0).unwrap(); // 102 >= 100 + 2 → Warmup
        assert_eq!(c.run_state, RunState::Warmup);
        for i in 0..3 {
            c.warmup_witness(ids(3)[i], i as u64, 103, 42).unwrap();
        }
        assert_eq!(c.run_state, RunState::RoundTrain);
        c
    }

    fn witness_all(c: &mut Coordinator, now: u64) {
        let everyone: Vec<ClientId> = c.epoch_state.clients.iter().map(|x| x.id).collect();
        for i in c.witness_indices(&c.current_round().clone()) {
            let mut p = Bloom::new(64, [9; 8]);
            for id in &everyone {
                p.add(&sha256(id));
            }
            let m = [i as u8; 32];
            let msg = WitnessMessage {
                from: everyone[i as usize],
                index: i as u64,
                participant_bloom: p,
                broadcast_bloom: Bloom::new(8, [1; 8]),
                broadcast_merkle: &m,
            };
            c.witness(&msg, now).unwrap();
        }
    }

    #[test]
    fn rounds_advance_data_index_by_the_batch_size() {
        let mut c = training();
        assert_eq!(c.current_round().data_index, 0);
        assert_eq!(c.witness_indices(c.current_round()), [0, 1, 2]);
        witness_all(&mut c, 104); // 3 of 3 expected witnesses → RoundWitness at once (opportunistic)
        assert_eq!(c.run_state, RunState::RoundWitness);
        c.tick(&[], 105, 0).unwrap(); // 105 < 104 + 2: no change
        assert_eq!(c.run_state, RunState::RoundWitness);
        c.tick(&[], 106, 7).unwrap(); // round_witness_time elapsed → step 2, next round
        assert_eq!((c.run_state, c.progress.step), (RunState::RoundTrain, 2));
        // Height 1 starts at 0 + batch 8; its assignment covers [8, 15] (8 sequences over 3 trainers: 3, 3, 2).
        let r = c.current_round().clone();
        assert_eq!((r.height, r.data_index, c.epoch_state.rounds_head), (1, 8, 1));
        let sizes: Vec<u64> = c.assign_batches(&r).iter().map(|(b, _)| b.len()).collect();
        assert_eq!(sizes, [3, 3, 2]);
        // The seed chains through the previous witnesses' merkle roots (§8).
        let prev: Vec<(u32, [u8; 32])> = (0..3u32).map(|i| (i, [i as u8; 32])).collect();
        let expected = round_seed(7, c.epoch_state.rounds[0].random_seed, 0, 2, &prev);
        assert_eq!(r.random_seed, expected);
    }

    #[test]
    fn health_check_drops_only_the_unhealthy() {
        let mut c = training();
        let everyone = ids(3);
        let mut now = 104;
        // Heights 0 and 1 with every client seen; then at height 2 the previous round (1) is judged.
        for _ in 0..2 {
            witness_all(&mut c, now);
            now += 2;
            c.tick(&[], now, 1).unwrap();
        }
        assert_eq!(c.current_round().height, 2);
        let early = training().health_check(everyone[0], &[HealthCheckEntry { index: 1, id: everyone[1] }], 200);
        assert_eq!(early.unwrap_err().code, ErrorCode::HealthCheckTooEarly);
        // Make client 2 invisible to every witness of round 1.
        let prev = (c.epoch_state.rounds_head as usize + 3) % 4;
        for w in c.epoch_state.rounds[prev].witnesses.iter_mut() {
            w.participant_bloom = Bloom::new(64, [9; 8]);
            w.participant_bloom.add(&sha256(&everyone[0]));
            w.participant_bloom.add(&sha256(&everyone[1]));
        }
        let checks = [HealthCheckEntry { index: 1, id: everyone[1] }, HealthCheckEntry { index: 2, id: everyone[2] }];
        let r = c.health_check(everyone[0], &checks, now).unwrap();
        assert_eq!(r, HealthCheckResult { dropped: 1, rejected_healthy: 1, already_unhealthy: 0 });
        assert_eq!(c.epoch_state.clients[2].state, ClientState::Dropped);
        assert_eq!(c.epoch_state.clients[1].state, ClientState::Healthy);
        // Reporting it again counts it as already unhealthy; a mismatched id voids the report unchanged.
        let again = c.health_check(everyone[0], &checks[1..], now).unwrap();
        assert_eq!(again.already_unhealthy, 1);
        let before = c.clone();
        let bad = [HealthCheckEntry { index: 1, id: everyone[2] }];
        assert_eq!(c.health_check(everyone[0], &bad, now).unwrap_err().code, ErrorCode::InvalidHealthCheck);
        assert_eq!(c, before);
    }

    #[test]
    fn last_step_saturates_at_the_u32_limit() {
        // total_steps = 2^32 − 2: the final RoundWitness tick makes step 2^32 − 1; `step + 2` must not overflow.
        let mut cfg = config();
        cfg.total_steps = (1 << 32) - 2;
        let mut c = Coordinator::new("t", cfg, model()).unwrap();
        c.resume(100).unwrap();
        c.tick(&ids(3), 102, 0).unwrap();
        c.tick(&[], 104, 0).unwrap();
        for i in 0..3 {
            c.warmup_witness(ids(3)[i], i as u64, 105, 1).unwrap();
        }
        witness_all(&mut c, 106);
        c.progress.step = u32::MAX - 1;
        c.tick(&[], 400, 0).unwrap(); // epoch timed out (400 >= 104 + 200)
        assert_eq!(c.progress.step, u32::MAX);
        assert_eq!(c.epoch_state.last_step, u32::MAX);
        assert_eq!(c.run_state, RunState::Cooldown);
        c.tick(&[], 410, 0).unwrap();
        assert_eq!(c.run_state, RunState::Finished);
    }

    #[test]
    fn pending_is_bounded_and_overflow_changes_nothing() {
        let mut c = Coordinator::new("t", config(), model()).unwrap();
        c.resume(1).unwrap();
        let id = |i: u32| -> ClientId {
            let mut x = [0u8; 32];
            x[..4].copy_from_slice(&i.to_le_bytes());
            x
        };
        // 65 535 distinct joiners in one tick (with duplicates in the list, which are ignored).
        let mut joiners: Vec<ClientId> = (0..MAX_PENDING as u32).map(id).collect();
        joiners.extend((0..100).map(id));
        c.tick(&joiners, 1, 0).unwrap();
        assert_eq!(c.pending.len(), MAX_PENDING);
        let before = c.clone();
        assert_eq!(c.tick(&[id(70_000)], 1, 0).unwrap_err().code, ErrorCode::PendingFull);
        assert_eq!(c.join(id(70_001)).unwrap_err().code, ErrorCode::PendingFull);
        assert_eq!(c, before);
        c.join(id(5)).unwrap(); // already pending: accepted, nothing added
        assert_eq!(c.pending.len(), MAX_PENDING);
        // The next epoch takes the first max_clients (8) joiners; the rest must join again.
        c.tick(&[], 3, 0).unwrap();
        assert_eq!(c.run_state, RunState::Warmup);
        assert_eq!(c.epoch_state.clients.iter().map(|x| x.id).collect::<Vec<_>>(), (0..8).map(id).collect::<Vec<_>>());
        assert!(c.pending.is_empty());
    }

    #[test]
    fn timestamps_and_halted_states_are_checked_first() {
        let mut c = Coordinator::new("t", config(), model()).unwrap();
        assert_eq!(c.tick(&[], 5, 0).unwrap_err().code, ErrorCode::Halted);
        assert_eq!(c.join([1; 32]).unwrap_err().code, ErrorCode::Halted);
        c.resume(50).unwrap();
        assert_eq!(c.tick(&[], 49, 0).unwrap_err().code, ErrorCode::InvalidTimestamp);
        assert_eq!(c.tick(&[], 1 << 53, 0).unwrap_err().code, ErrorCode::InvalidTimestamp);
        assert_eq!(client_id_from_hex("AB").unwrap_err().code, ErrorCode::InvalidClientId);
        assert_eq!(client_id_from_hex(&"0f".repeat(32)).unwrap(), [0x0f; 32]);
        let e = c.update_config(&[ConfigChange::Integer("warmup_time".into(), 1)]).unwrap_err();
        assert_eq!(e.code, ErrorCode::WrongRunState);
        c.pause(60).unwrap();
        let before = c.clone();
        let change = |k: &str, v: u64| ConfigChange::Integer(k.into(), v);
        assert_eq!(c.update_config(&[change("nope", 1)]).unwrap_err().code, ErrorCode::InvalidArgument);
        assert_eq!(c.update_config(&[change("checkpoint", 1)]).unwrap_err().code, ErrorCode::InvalidModel);
        let e = c.update_config(&[change("checkpoint", 1), change("cooldown_time", 0)]).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidConfig); // config is validated before the model
        assert_eq!(c, before);
        c.update_config(&[change("cooldown_time", 5), change("max_seq_len", 128)]).unwrap();
        assert_eq!((c.config.cooldown_time, c.model.max_seq_len), (5, 128));
    }
}
