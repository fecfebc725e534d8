//! Accounts and instruction argument types.

use anchor_lang::prelude::*;
use psyche_coordinator_core::account::{lr_schedule_from_parts, CoordinatorAccount as CoreAccount};
use psyche_coordinator_core::bloom::Bloom;
use psyche_coordinator_core::config::{Checkpoint, CoordinatorConfig, GcsRepo, HubRepo, LrSchedule, ModelConfig};

/// Bytes of the core's `#[repr(C)]` account (pinned by coordinator-core's layout test).
pub const CORE_ACCOUNT_SIZE: usize = 85_736;
const _: () = assert!(core::mem::size_of::<CoreAccount>() == CORE_ACCOUNT_SIZE);
/// Full size of the coordinator account: discriminator + nonce + core state.
pub const COORDINATOR_ACCOUNT_SPACE: usize = 8 + 8 + CORE_ACCOUNT_SIZE;

/// The run's instance: a PDA at `["coordinator", run_id]` (borsh).
#[account]
#[derive(InitSpace)]
pub struct CoordinatorInstance {
    /// PDA bump.
    pub bump: u8,
    /// Signs `update`, `set_paused`, `free_coordinator`, `grant_join`.
    pub main_authority: Pubkey,
    /// `Pubkey::default()` = permissionless joins; otherwise joiners need a [`JoinAuthorization`] it granted.
    pub join_authority: Pubkey,
    /// The zero-copy [`CoordinatorAccount`].
    pub coordinator_account: Pubkey,
    /// Run id (1..=32 bytes).
    #[max_len(32)]
    pub run_id: String,
}

/// The coordinator state, zero-copy. A keypair account created with `SystemProgram.createAccount`
/// (`space = COORDINATOR_ACCOUNT_SPACE`, owner = this program) in the same transaction as `init_coordinator`:
/// at 85 760 bytes it is too large for Anchor's `init` (10 KiB CPI limit).
///
/// `state` holds the bytes of `psyche_coordinator_core::account::CoordinatorAccount` (`#[repr(C)]`, no implicit
/// padding); it is a byte array here so that the IDL describes it without the core's types.
#[account(zero_copy(unsafe))]
#[repr(C)]
pub struct CoordinatorAccount {
    /// Bumped by every instruction that changes the account; clients de-duplicate updates with it.
    pub nonce: u64,
    /// The core account's bytes.
    pub state: [u8; 85_736],
}

impl CoordinatorAccount {
    /// The core view of `state`.
    pub fn core(&self) -> &CoreAccount {
        // SAFETY: `state` is CORE_ACCOUNT_SIZE bytes at offset 16 of the account data, which the runtime aligns
        // to 8 (the core's alignment); the core type has no padding and every bit pattern of its integer fields
        // is valid (enums are stored as u8 and checked by `load`).
        unsafe { &*(self.state.as_ptr() as *const CoreAccount) }
    }

    /// The mutable core view of `state`.
    pub fn core_mut(&mut self) -> &mut CoreAccount {
        // SAFETY: as in `core`.
        unsafe { &mut *(self.state.as_mut_ptr() as *mut CoreAccount) }
    }
}

/// An allowlist entry: a PDA at `["join", coordinator_instance, grantee]` created by the join authority.
#[account]
#[derive(InitSpace)]
pub struct JoinAuthorization {
    /// PDA bump.
    pub bump: u8,
    /// The instance it is valid for.
    pub coordinator_instance: Pubkey,
    /// Who may join.
    pub grantee: Pubkey,
}

/// A bloom filter argument (the core's `Bloom`).
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy)]
pub struct BloomArg {
    pub bits: [u64; 16],
    pub keys: [u64; 8],
    pub num_bits: u32,
}

impl From<BloomArg> for Bloom {
    fn from(b: BloomArg) -> Bloom {
        Bloom { bits: b.bits, keys: b.keys, num_bits: b.num_bits, _pad: 0 }
    }
}

/// A checkpoint: `kind` 0 Ephemeral, 1 Dummy, 2 Hub, 3 P2P, 4 Gcs, 5 P2PGcs; `name` = repo id or bucket,
/// `detail` = revision or prefix.
#[derive(AnchorSerialize, AnchorDeserialize, Clone)]
pub struct CheckpointArg {
    pub kind: u8,
    pub name: String,
    pub detail: Option<String>,
}

impl CheckpointArg {
    /// The core checkpoint.
    pub fn to_core(&self) -> Result<Checkpoint> {
        let hub = || HubRepo { repo_id: self.name.clone(), revision: self.detail.clone() };
        let gcs = || GcsRepo { bucket: self.name.clone(), prefix: self.detail.clone() };
        Ok(match self.kind {
            0 => Checkpoint::Ephemeral,
            1 => Checkpoint::Dummy(hub()),
            2 => Checkpoint::Hub(hub()),
            3 => Checkpoint::P2P(hub()),
            4 => Checkpoint::Gcs(gcs()),
            5 => Checkpoint::P2PGcs(gcs()),
            _ => return err!(crate::errors::CoreError::InvalidCheckpoint),
        })
    }
}

/// An LR schedule, in the account's encoding (`kind` 0 constant, 1 linear, 2 cosine, 3 wsd; see the core's
/// `AccountLrSchedule`).
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy)]
pub struct LrScheduleArg {
    pub kind: u8,
    pub lrs: [f64; 5],
    pub steps: [u64; 4],
}

impl LrScheduleArg {
    /// The core schedule.
    pub fn to_core(&self) -> Result<LrSchedule> {
        match lr_schedule_from_parts(self.kind, self.lrs, self.steps) {
            Some(schedule) => Ok(schedule),
            None => err!(crate::errors::CoreError::InvalidModel),
        }
    }
}

/// A model config.
#[derive(AnchorSerialize, AnchorDeserialize, Clone)]
pub struct ModelArg {
    pub max_seq_len: u64,
    pub cold_start_warmup_steps: u64,
    pub checkpoint: CheckpointArg,
    pub lr_schedule: LrScheduleArg,
}

impl ModelArg {
    /// The core model config.
    pub fn to_core(&self) -> Result<ModelConfig> {
        Ok(ModelConfig {
            max_seq_len: self.max_seq_len,
            cold_start_warmup_steps: self.cold_start_warmup_steps,
            checkpoint: self.checkpoint.to_core()?,
            lr_schedule: self.lr_schedule.to_core()?,
        })
    }
}

/// The 15 config fields in `CONFIG_FIELDS` order.
pub fn config_from_fields(fields: &[u64; 15]) -> CoordinatorConfig {
    let mut c = CoordinatorConfig::default();
    for (i, name) in psyche_coordinator_core::config::CONFIG_FIELDS.iter().enumerate() {
        *c.field_mut(name).expect("known field") = fields[i];
    }
    c
}

/// `init_coordinator` parameters.
#[derive(AnchorSerialize, AnchorDeserialize, Clone)]
pub struct InitCoordinatorParams {
    pub main_authority: Pubkey,
    pub join_authority: Pubkey,
    pub run_id: String,
    /// Config fields in `CONFIG_FIELDS` order.
    pub config: [u64; 15],
    pub model: ModelArg,
}

/// `update` parameters; each part is optional.
#[derive(AnchorSerialize, AnchorDeserialize, Clone)]
pub struct UpdateParams {
    /// Config fields in `CONFIG_FIELDS` order (the whole config; validated by the core).
    pub config: Option<[u64; 15]>,
    pub model: Option<ModelArg>,
    pub progress: Option<ProgressArg>,
}

/// Progress override (operator recovery).
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy)]
pub struct ProgressArg {
    pub epoch: u32,
    pub step: u32,
    pub epoch_start_data_index: u64,
}

/// One health-check entry.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy)]
pub struct HealthCheckArg {
    pub index: u64,
    pub id: [u8; 32],
}
