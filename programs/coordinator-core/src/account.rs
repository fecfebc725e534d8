//! A fixed-size `#[repr(C)]` account layout of the whole coordinator state, sized for 256 clients (Psyche's
//! on-chain cap), for the Solana program (zero-copy account). No implicit padding: every struct's size is the
//! sum of its fields (checked by the layout test), so the bytes are fully determined by the state.
//!
//! [`CoordinatorAccount::store`] writes a [`Coordinator`] into the layout and [`CoordinatorAccount::load`]
//! reads it back; the round trip is exact.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use crate::bloom::Bloom;
use crate::config::{Checkpoint, CoordinatorConfig, GcsRepo, HubRepo, LrSchedule, ModelConfig};
use crate::coordinator::{
    Client, ClientId, ClientState, Coordinator, EpochState, NUM_STORED_ROUNDS, Progress, Round, RunState, Witness,
};
use crate::error::{CoordinatorError, ErrorCode, Result};

/// Layout version written in [`CoordinatorAccount::version`].
pub const ACCOUNT_VERSION: u64 = 1;
/// Clients (and exited clients) per epoch that the account holds.
pub const ACCOUNT_MAX_CLIENTS: usize = 256;
/// Pending joiners the account holds.
pub const ACCOUNT_MAX_PENDING: usize = 256;
/// Witnesses per round.
pub const ACCOUNT_MAX_WITNESSES: usize = 32;
/// Bytes of a stored name (checkpoint repo id, revision, bucket, prefix).
pub const ACCOUNT_NAME_LEN: usize = 64;

/// An epoch client (40 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountClient {
    /// Id.
    pub id: [u8; 32],
    /// Round height at exit.
    pub exited_height: u32,
    /// [`ClientState`] as u8.
    pub state: u8,
    /// Zero.
    pub _pad: [u8; 3],
}

/// A stored witness (440 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountWitness {
    /// Participant bloom.
    pub participant_bloom: Bloom,
    /// Broadcast bloom.
    pub broadcast_bloom: Bloom,
    /// Merkle root.
    pub broadcast_merkle: [u8; 32],
    /// Client index.
    pub index: u32,
    /// Zero.
    pub _pad: u32,
}

/// A round of the ring (14 112 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountRound {
    /// Witnesses; the first `witnesses_len` are used.
    pub witnesses: [AccountWitness; ACCOUNT_MAX_WITNESSES],
    /// First sequence index.
    pub data_index: u64,
    /// Round seed.
    pub random_seed: u64,
    /// Height.
    pub height: u32,
    /// Clients when the round started.
    pub clients_len: u32,
    /// Used witnesses.
    pub witnesses_len: u32,
    /// Zero.
    pub _pad: u32,
}

/// Per-epoch state (77 096 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountEpochState {
    /// Round ring.
    pub rounds: [AccountRound; NUM_STORED_ROUNDS],
    /// Clients; the first `clients_len` are used.
    pub clients: [AccountClient; ACCOUNT_MAX_CLIENTS],
    /// Exited clients; the first `exited_len` are used.
    pub exited_clients: [AccountClient; ACCOUNT_MAX_CLIENTS],
    /// Warmup witnesses (client indices); the first `warmup_witnesses_len` are used.
    pub warmup_witnesses: [u32; ACCOUNT_MAX_WITNESSES],
    /// Epoch start time.
    pub start_timestamp: u64,
    /// Used clients.
    pub clients_len: u32,
    /// Used exited clients.
    pub exited_len: u32,
    /// Used warmup witnesses.
    pub warmup_witnesses_len: u32,
    /// Ring head.
    pub rounds_head: u32,
    /// Epoch start step.
    pub start_step: u32,
    /// Last step (0 = unset).
    pub last_step: u32,
    /// Bool.
    pub first_round: u8,
    /// Bool.
    pub cold_start_epoch: u8,
    /// Zero.
    pub _pad: [u8; 6],
}

/// Run config (15 × u64, 120 bytes; values are validated on store).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountConfig {
    /// Fields in [`crate::config::CONFIG_FIELDS`] order.
    pub fields: [u64; 15],
}

/// A checkpoint (144 bytes): `kind` 0 Ephemeral, 1 Dummy, 2 Hub, 3 P2P, 4 Gcs, 5 P2PGcs; `name` is the repo id or
/// bucket, `detail` the revision or prefix (`detail_len == 0` with `has_detail == 0` means absent).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountCheckpoint {
    /// Repo id or bucket.
    pub name: [u8; ACCOUNT_NAME_LEN],
    /// Revision or prefix.
    pub detail: [u8; ACCOUNT_NAME_LEN],
    /// Kind.
    pub kind: u8,
    /// Bytes used in `name`.
    pub name_len: u8,
    /// Whether `detail` is present.
    pub has_detail: u8,
    /// Bytes used in `detail`.
    pub detail_len: u8,
    /// Zero.
    pub _pad: [u8; 12],
}

/// An LR schedule (80 bytes): `kind` 0 constant, 1 linear, 2 cosine, 3 wsd.
/// `lrs` = `[base_lr, warmup_init_lr, final_lr | cosine_decay_final_lr, linear_decay_final_lr, 0]`,
/// `steps` = `[warmup_steps, total_steps | stable_steps, cosine_decay_steps, linear_decay_steps]`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AccountLrSchedule {
    /// f64 parameters.
    pub lrs: [f64; 5],
    /// u64 step parameters.
    pub steps: [u64; 4],
    /// Kind.
    pub kind: u8,
    /// Zero.
    pub _pad: [u8; 7],
}

/// Model config (240 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AccountModel {
    /// LR schedule.
    pub lr_schedule: AccountLrSchedule,
    /// Checkpoint.
    pub checkpoint: AccountCheckpoint,
    /// Tokens per sequence.
    pub max_seq_len: u64,
    /// Cold-start LR ramp.
    pub cold_start_warmup_steps: u64,
}

/// The whole coordinator state in a fixed layout (85 736 bytes; Psyche's account is about 119 KB).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CoordinatorAccount {
    /// [`ACCOUNT_VERSION`].
    pub version: u64,
    /// Run id bytes; the first `run_id_len` are used.
    pub run_id: [u8; 32],
    /// [`RunState`] as u8.
    pub run_state: u8,
    /// Bytes used in `run_id`.
    pub run_id_len: u8,
    /// Bool.
    pub pending_pause: u8,
    /// Zero.
    pub _pad0: [u8; 5],
    /// Unix time of the last state change.
    pub run_state_start: u64,
    /// Epoch start data index.
    pub epoch_start_data_index: u64,
    /// Epoch.
    pub epoch: u32,
    /// Step.
    pub step: u32,
    /// Seed chain.
    pub last_round_seed: u64,
    /// Config.
    pub config: AccountConfig,
    /// Model.
    pub model: AccountModel,
    /// Pending joiners; the first `pending_len` are used.
    pub pending: [[u8; 32]; ACCOUNT_MAX_PENDING],
    /// Used pending entries.
    pub pending_len: u32,
    /// Zero.
    pub _pad1: u32,
    /// Epoch state.
    pub epoch_state: AccountEpochState,
}

const ZERO_BLOOM: Bloom = Bloom { bits: [0; 16], keys: [0; 8], num_bits: 0, _pad: 0 };
const ZERO_WITNESS: AccountWitness = AccountWitness {
    participant_bloom: ZERO_BLOOM,
    broadcast_bloom: ZERO_BLOOM,
    broadcast_merkle: [0; 32],
    index: 0,
    _pad: 0,
};
const ZERO_ROUND: AccountRound = AccountRound {
    witnesses: [ZERO_WITNESS; ACCOUNT_MAX_WITNESSES],
    data_index: 0,
    random_seed: 0,
    height: 0,
    clients_len: 0,
    witnesses_len: 0,
    _pad: 0,
};
const ZERO_CLIENT: AccountClient = AccountClient { id: [0; 32], exited_height: 0, state: 0, _pad: [0; 3] };

fn too_big(field: &'static str, expected: &'static str) -> CoordinatorError {
    CoordinatorError::new(ErrorCode::InvalidArgument, field, expected)
}

fn put_name(dst: &mut [u8; ACCOUNT_NAME_LEN], s: &str) -> Result<u8> {
    if s.len() > ACCOUNT_NAME_LEN {
        return Err(too_big("checkpoint", "names of at most 64 bytes"));
    }
    dst[..s.len()].copy_from_slice(s.as_bytes());
    Ok(s.len() as u8)
}

fn get_name(src: &[u8; ACCOUNT_NAME_LEN], len: u8) -> Result<String> {
    let bytes = src.get(..len as usize).ok_or_else(|| too_big("checkpoint.name_len", "<= 64"))?;
    String::from_utf8(bytes.to_vec()).map_err(|_| too_big("checkpoint", "UTF-8 names"))
}

fn client_state(x: u8) -> Result<ClientState> {
    Ok(match x {
        0 => ClientState::Healthy,
        1 => ClientState::Dropped,
        2 => ClientState::Withdrawn,
        3 => ClientState::Ejected,
        _ => return Err(too_big("client.state", "0..=3")),
    })
}

fn store_client(c: &Client) -> AccountClient {
    AccountClient { id: c.id, exited_height: c.exited_height, state: c.state as u8, _pad: [0; 3] }
}

fn load_client(c: &AccountClient) -> Result<Client> {
    Ok(Client { id: c.id, state: client_state(c.state)?, exited_height: c.exited_height })
}

impl CoordinatorAccount {
    /// An all-zero account (on the heap: it is 85 736 bytes).
    pub fn zeroed() -> Box<Self> {
        Box::new(CoordinatorAccount {
            version: 0,
            run_id: [0; 32],
            run_state: 0,
            run_id_len: 0,
            pending_pause: 0,
            _pad0: [0; 5],
            run_state_start: 0,
            epoch_start_data_index: 0,
            epoch: 0,
            step: 0,
            last_round_seed: 0,
            config: AccountConfig { fields: [0; 15] },
            model: AccountModel {
                lr_schedule: AccountLrSchedule { lrs: [0.0; 5], steps: [0; 4], kind: 0, _pad: [0; 7] },
                checkpoint: AccountCheckpoint {
                    name: [0; ACCOUNT_NAME_LEN],
                    detail: [0; ACCOUNT_NAME_LEN],
                    kind: 0,
                    name_len: 0,
                    has_detail: 0,
                    detail_len: 0,
                    _pad: [0; 12],
                },
                max_seq_len: 0,
                cold_start_warmup_steps: 0,
            },
            pending: [[0; 32]; ACCOUNT_MAX_PENDING],
            pending_len: 0,
            _pad1: 0,
            epoch_state: AccountEpochState {
                rounds: [ZERO_ROUND; NUM_STORED_ROUNDS],
                clients: [ZERO_CLIENT; ACCOUNT_MAX_CLIENTS],
                exited_clients: [ZERO_CLIENT; ACCOUNT_MAX_CLIENTS],
                warmup_witnesses: [0; ACCOUNT_MAX_WITNESSES],
                start_timestamp: 0,
                clients_len: 0,
                exited_len: 0,
                warmup_witnesses_len: 0,
                rounds_head: 0,
                start_step: 0,
                last_step: 0,
                first_round: 0,
                cold_start_epoch: 0,
                _pad: [0; 6],
            },
        })
    }

    /// Writes `c` into a fresh account.
    ///
    /// # Errors
    /// `InvalidArgument` (21) when a list exceeds the account's capacity (`max_clients > 256` runs do not fit).
    pub fn store(c: &Coordinator) -> Result<Box<Self>> {
        let mut a = Self::zeroed();
        a.version = ACCOUNT_VERSION;
        if c.run_id.len() > 32 {
            return Err(too_big("run_id", "at most 32 bytes"));
        }
        a.run_id[..c.run_id.len()].copy_from_slice(c.run_id.as_bytes());
        a.run_id_len = c.run_id.len() as u8;
        a.run_state = c.run_state as u8;
        a.pending_pause = c.pending_pause as u8;
        a.run_state_start = c.run_state_start;
        a.epoch_start_data_index = c.progress.epoch_start_data_index;
        a.epoch = c.progress.epoch;
        a.step = c.progress.step;
        a.last_round_seed = c.last_round_seed;
        let mut cfg = c.config.clone();
        for (i, name) in crate::config::CONFIG_FIELDS.iter().enumerate() {
            a.config.fields[i] = *cfg.field_mut(name).expect("known field");
        }
        a.model.max_seq_len = c.model.max_seq_len;
        a.model.cold_start_warmup_steps = c.model.cold_start_warmup_steps;
        let cp = &mut a.model.checkpoint;
        let (kind, name, detail) = match &c.model.checkpoint {
            Checkpoint::Ephemeral => (0, None, None),
            Checkpoint::Dummy(h) => (1, Some(&h.repo_id), h.revision.as_ref()),
            Checkpoint::Hub(h) => (2, Some(&h.repo_id), h.revision.as_ref()),
            Checkpoint::P2P(h) => (3, Some(&h.repo_id), h.revision.as_ref()),
            Checkpoint::Gcs(g) => (4, Some(&g.bucket), g.prefix.as_ref()),
            Checkpoint::P2PGcs(g) => (5, Some(&g.bucket), g.prefix.as_ref()),
        };
        cp.kind = kind;
        if let Some(n) = name {
            cp.name_len = put_name(&mut cp.name, n)?;
        }
        if let Some(d) = detail {
            cp.has_detail = 1;
            cp.detail_len = put_name(&mut cp.detail, d)?;
        }
        let lr = &mut a.model.lr_schedule;
        match c.model.lr_schedule {
            LrSchedule::Constant { base_lr, warmup_init_lr, warmup_steps } => {
                lr.kind = 0;
                lr.lrs = [base_lr, warmup_init_lr, 0.0, 0.0, 0.0];
                lr.steps = [warmup_steps, 0, 0, 0];
            }
            LrSchedule::Linear { base_lr, warmup_init_lr, warmup_steps, total_steps, final_lr } => {
                lr.kind = 1;
                lr.lrs = [base_lr, warmup_init_lr, final_lr, 0.0, 0.0];
                lr.steps = [warmup_steps, total_steps, 0, 0];
            }
            LrSchedule::Cosine { base_lr, warmup_init_lr, warmup_steps, total_steps, final_lr } => {
                lr.kind = 2;
                lr.lrs = [base_lr, warmup_init_lr, final_lr, 0.0, 0.0];
                lr.steps = [warmup_steps, total_steps, 0, 0];
            }
            LrSchedule::Wsd {
                base_lr,
                warmup_init_lr,
                warmup_steps,
                stable_steps,
                cosine_decay_steps,
                cosine_decay_final_lr,
                linear_decay_steps,
                linear_decay_final_lr,
            } => {
                lr.kind = 3;
                lr.lrs = [base_lr, warmup_init_lr, cosine_decay_final_lr, linear_decay_final_lr, 0.0];
                lr.steps = [warmup_steps, stable_steps, cosine_decay_steps, linear_decay_steps];
            }
        }
        if c.pending.len() > ACCOUNT_MAX_PENDING {
            return Err(too_big("pending", "at most 256 joiners"));
        }
        for (i, id) in c.pending.iter().enumerate() {
            a.pending[i] = *id;
        }
        a.pending_len = c.pending.len() as u32;
        let e = &c.epoch_state;
        let ae = &mut a.epoch_state;
        if e.clients.len() > ACCOUNT_MAX_CLIENTS || e.exited_clients.len() > ACCOUNT_MAX_CLIENTS {
            return Err(too_big("epoch_state.clients", "at most 256 clients"));
        }
        if e.warmup_witnesses.len() > ACCOUNT_MAX_WITNESSES {
            return Err(too_big("epoch_state.warmup_witnesses", "at most 32"));
        }
        for (i, r) in e.rounds.iter().enumerate() {
            if r.witnesses.len() > ACCOUNT_MAX_WITNESSES {
                return Err(too_big("round.witnesses", "at most 32"));
            }
            let ar = &mut ae.rounds[i];
            for (k, w) in r.witnesses.iter().enumerate() {
                ar.witnesses[k] = AccountWitness {
                    participant_bloom: w.participant_bloom,
                    broadcast_bloom: w.broadcast_bloom,
                    broadcast_merkle: w.broadcast_merkle,
                    index: w.index,
                    _pad: 0,
                };
            }
            ar.witnesses_len = r.witnesses.len() as u32;
            ar.data_index = r.data_index;
            ar.random_seed = r.random_seed;
            ar.height = r.height;
            ar.clients_len = r.clients_len;
        }
        for (i, cl) in e.clients.iter().enumerate() {
            ae.clients[i] = store_client(cl);
        }
        ae.clients_len = e.clients.len() as u32;
        for (i, cl) in e.exited_clients.iter().enumerate() {
            ae.exited_clients[i] = store_client(cl);
        }
        ae.exited_len = e.exited_clients.len() as u32;
        for (i, w) in e.warmup_witnesses.iter().enumerate() {
            ae.warmup_witnesses[i] = *w;
        }
        ae.warmup_witnesses_len = e.warmup_witnesses.len() as u32;
        ae.start_timestamp = e.start_timestamp;
        ae.rounds_head = e.rounds_head;
        ae.start_step = e.start_step;
        ae.last_step = e.last_step;
        ae.first_round = e.first_round as u8;
        ae.cold_start_epoch = e.cold_start_epoch as u8;
        Ok(a)
    }

    /// Reads the coordinator back.
    ///
    /// # Errors
    /// `InvalidArgument` (21) for a wrong version, an out-of-range length or enum value.
    pub fn load(&self) -> Result<Coordinator> {
        if self.version != ACCOUNT_VERSION {
            return Err(too_big("version", "1"));
        }
        let run_id_bytes = self.run_id.get(..self.run_id_len as usize).ok_or_else(|| too_big("run_id_len", "<= 32"))?;
        let run_id = String::from_utf8(run_id_bytes.to_vec()).map_err(|_| too_big("run_id", "UTF-8"))?;
        let run_state = match self.run_state {
            0 => RunState::Uninitialized,
            1 => RunState::WaitingForMembers,
            2 => RunState::Warmup,
            3 => RunState::RoundTrain,
            4 => RunState::RoundWitness,
            5 => RunState::Cooldown,
            6 => RunState::Finished,
            7 => RunState::Paused,
            _ => return Err(too_big("run_state", "0..=7")),
        };
        let mut config = CoordinatorConfig::default();
        for (i, name) in crate::config::CONFIG_FIELDS.iter().enumerate() {
            *config.field_mut(name).expect("known field") = self.config.fields[i];
        }
        let cp = &self.model.checkpoint;
        let name = || get_name(&cp.name, cp.name_len);
        let detail = || -> Result<Option<String>> {
            if cp.has_detail == 0 { Ok(None) } else { get_name(&cp.detail, cp.detail_len).map(Some) }
        };
        let checkpoint = match cp.kind {
            0 => Checkpoint::Ephemeral,
            1 => Checkpoint::Dummy(HubRepo { repo_id: name()?, revision: detail()? }),
            2 => Checkpoint::Hub(HubRepo { repo_id: name()?, revision: detail()? }),
            3 => Checkpoint::P2P(HubRepo { repo_id: name()?, revision: detail()? }),
            4 => Checkpoint::Gcs(GcsRepo { bucket: name()?, prefix: detail()? }),
            5 => Checkpoint::P2PGcs(GcsRepo { bucket: name()?, prefix: detail()? }),
            _ => return Err(too_big("checkpoint.kind", "0..=5")),
        };
        let lr = &self.model.lr_schedule;
        let lr_schedule =
            lr_schedule_from_parts(lr.kind, lr.lrs, lr.steps).ok_or_else(|| too_big("lr_schedule.kind", "0..=3"))?;
        let take = |len: u32, cap: usize, field: &'static str| -> Result<usize> {
            if len as usize > cap { Err(too_big(field, "within the account's capacity")) } else { Ok(len as usize) }
        };
        let pending = self.pending[..take(self.pending_len, ACCOUNT_MAX_PENDING, "pending_len")?].to_vec();
        let ae = &self.epoch_state;
        let mut rounds: [Round; NUM_STORED_ROUNDS] = Default::default();
        for (i, ar) in ae.rounds.iter().enumerate() {
            let n = take(ar.witnesses_len, ACCOUNT_MAX_WITNESSES, "round.witnesses_len")?;
            rounds[i] = Round {
                witnesses: ar.witnesses[..n]
                    .iter()
                    .map(|w| Witness {
                        index: w.index,
                        participant_bloom: w.participant_bloom,
                        broadcast_bloom: w.broadcast_bloom,
                        broadcast_merkle: w.broadcast_merkle,
                    })
                    .collect(),
                data_index: ar.data_index,
                random_seed: ar.random_seed,
                height: ar.height,
                clients_len: ar.clients_len,
            };
        }
        let clients = ae.clients[..take(ae.clients_len, ACCOUNT_MAX_CLIENTS, "clients_len")?]
            .iter()
            .map(load_client)
            .collect::<Result<Vec<_>>>()?;
        let exited_clients = ae.exited_clients[..take(ae.exited_len, ACCOUNT_MAX_CLIENTS, "exited_len")?]
            .iter()
            .map(load_client)
            .collect::<Result<Vec<_>>>()?;
        let warmup_witnesses = ae.warmup_witnesses
            [..take(ae.warmup_witnesses_len, ACCOUNT_MAX_WITNESSES, "warmup_witnesses_len")?]
            .to_vec();
        Ok(Coordinator {
            run_id,
            config,
            model: ModelConfig {
                max_seq_len: self.model.max_seq_len,
                cold_start_warmup_steps: self.model.cold_start_warmup_steps,
                checkpoint,
                lr_schedule,
            },
            run_state,
            run_state_start: self.run_state_start,
            progress: Progress {
                epoch: self.epoch,
                step: self.step,
                epoch_start_data_index: self.epoch_start_data_index,
            },
            pending_pause: self.pending_pause != 0,
            last_round_seed: self.last_round_seed,
            pending: pending.into_iter().collect::<Vec<ClientId>>(),
            epoch_state: EpochState {
                rounds,
                rounds_head: ae.rounds_head,
                clients,
                exited_clients,
                start_step: ae.start_step,
                last_step: ae.last_step,
                start_timestamp: ae.start_timestamp,
                first_round: ae.first_round != 0,
                cold_start_epoch: ae.cold_start_epoch != 0,
                warmup_witnesses,
            },
        })
    }
}

/// Decodes an LR schedule from its account encoding (`kind` 0 constant, 1 linear, 2 cosine, 3 warmup-stable-decay;
/// parameters in `lrs` and `steps` as laid out in [`AccountLrSchedule`]). `None` for an unknown kind. Shared by the
/// account decoder and the Anchor program's instruction arguments.
pub fn lr_schedule_from_parts(kind: u8, lrs: [f64; 5], steps: [u64; 4]) -> Option<LrSchedule> {
    let [l0, l1, l2, l3, _] = lrs;
    let [s0, s1, s2, s3] = steps;
    Some(match kind {
        0 => LrSchedule::Constant { base_lr: l0, warmup_init_lr: l1, warmup_steps: s0 },
        1 => LrSchedule::Linear { base_lr: l0, warmup_init_lr: l1, warmup_steps: s0, total_steps: s1, final_lr: l2 },
        2 => LrSchedule::Cosine { base_lr: l0, warmup_init_lr: l1, warmup_steps: s0, total_steps: s1, final_lr: l2 },
        3 => LrSchedule::Wsd {
            base_lr: l0,
            warmup_init_lr: l1,
            warmup_steps: s0,
            stable_steps: s1,
            cosine_decay_steps: s2,
            cosine_decay_final_lr: l2,
            linear_decay_steps: s3,
            linear_decay_final_lr: l3,
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CoordinatorConfig;

    fn coordinator() -> Coordinator {
        let config = CoordinatorConfig {
            warmup_time: 30,
            cooldown_time: 10,
            max_round_train_time: 20,
            round_witness_time: 2,
            global_batch_size_warmup_tokens: 0,
            epoch_time: 200,
            total_steps: 10,
            init_min_clients: 1,
            min_clients: 1,
            max_clients: 256,
            witness_nodes: 0,
            global_batch_size_start: 8,
            global_batch_size_end: 8,
            verification_percent: 0,
            waiting_for_members_extra_time: 1,
        };
        let model = ModelConfig {
            max_seq_len: 16,
            cold_start_warmup_steps: 0,
            checkpoint: Checkpoint::Gcs(GcsRepo { bucket: "b".into(), prefix: Some("p/q".into()) }),
            lr_schedule: LrSchedule::Wsd {
                base_lr: 1e-3,
                warmup_init_lr: 0.0,
                warmup_steps: 1,
                stable_steps: 2,
                cosine_decay_steps: 3,
                cosine_decay_final_lr: 1e-4,
                linear_decay_steps: 4,
                linear_decay_final_lr: 1e-5,
            },
        };
        Coordinator::new("run-1", config, model).unwrap()
    }

    #[test]
    fn round_trip_with_256_clients_and_capacity_errors() {
        let mut c = coordinator();
        c.resume(1).unwrap();
        let ids: Vec<ClientId> = (0..256u32).map(|i| crate::sha256::sha256(&i.to_le_bytes())).collect();
        c.tick(&ids, 2, 7).unwrap();
        c.tick(&[], 3, 7).unwrap(); // → Warmup with 256 clients
        assert_eq!(c.run_state, RunState::Warmup);
        assert_eq!(c.epoch_state.clients.len(), 256);
        let a = CoordinatorAccount::store(&c).unwrap();
        assert_eq!(a.load().unwrap(), c);
        // 257 pending joiners do not fit.
        let more: Vec<ClientId> = (0..257u32).map(|i| crate::sha256::sha256(&(i + 1000).to_le_bytes())).collect();
        c.tick(&more, 4, 7).unwrap();
        assert_eq!(CoordinatorAccount::store(&c).unwrap_err().code, ErrorCode::InvalidArgument);
        // A corrupted account is rejected, not mis-read.
        let mut bad = CoordinatorAccount::store(&coordinator()).unwrap();
        bad.epoch_state.clients_len = 300;
        assert_eq!(bad.load().unwrap_err().field, "clients_len");
        let mut bad = CoordinatorAccount::store(&coordinator()).unwrap();
        bad.version = 2;
        assert!(bad.load().is_err());
    }
}
