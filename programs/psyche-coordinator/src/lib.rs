//! Psyche-TS on-chain coordinator: an Anchor program around the dependency-free state machine in
//! `psyche-coordinator-core`. Every instruction loads the zero-copy account into a core `Coordinator`, applies
//! the core operation (which does all validation), stores it back and bumps `nonce`.
//!
//! **This crate has never been compiled on the machine it was written on** (no Solana toolchain, no crates.io
//! there); see README.md for the build/test/deploy flow.

use anchor_lang::prelude::*;
use psyche_coordinator_core::account::{CoordinatorAccount as CoreAccount, ACCOUNT_VERSION};
use psyche_coordinator_core::config::is_valid_run_id;
use psyche_coordinator_core::coordinator::{ConfigChange, Coordinator, HealthCheckEntry, RunState, WitnessMessage};

pub mod errors;
pub mod heap;
pub mod state;

use errors::{core_error, ProgramErrorCode};
use state::*;

declare_id!("HJ2hrAukNjGR2qRnNXxUCNGYD8qHS5uQFuNoDzY1E7UR");

/// Seed prefix of the instance PDA.
pub const INSTANCE_SEED: &[u8] = b"coordinator";
/// Seed prefix of a join authorization PDA.
pub const JOIN_SEED: &[u8] = b"join";

fn now() -> Result<u64> {
    Ok(Clock::get()?.unix_timestamp.max(0) as u64)
}

/// Seed of the rounds a tick may start: the slot (public, like Psyche's); the core chains it with the
/// previous round seed.
fn seed() -> Result<u64> {
    Ok(Clock::get()?.slot)
}

/// Loads the core coordinator, applies `f`, stores it and bumps the nonce.
fn with_coordinator<T>(
    loader: &AccountLoader<CoordinatorAccount>,
    f: impl FnOnce(&mut Coordinator) -> Result<T>,
) -> Result<T> {
    let mut acc = loader.load_mut()?;
    require!(acc.core().version == ACCOUNT_VERSION, ProgramErrorCode::CoordinatorAccountVersion);
    let mut c = acc.core().load().map_err(core_error)?;
    let out = f(&mut c)?;
    let stored: Box<CoreAccount> = CoreAccount::store(&c).map_err(core_error)?;
    *acc.core_mut() = *stored;
    acc.nonce = acc.nonce.wrapping_add(1);
    Ok(out)
}

/// Ticks unless halted (joins and messages advance time-driven transitions too, as in Psyche).
fn tick_if_running(c: &mut Coordinator) -> Result<()> {
    if !c.run_state.is_halted() {
        c.tick(&[], now()?, seed()?).map_err(core_error)?;
    }
    Ok(())
}

/// The signer's 32-byte key: its client id (the core checks `clients[index].id == from` where it matters).
fn signer_id(user: &Signer) -> [u8; 32] {
    user.key().to_bytes()
}

#[program]
pub mod psyche_coordinator {
    use super::*;

    /// Creates the instance PDA and writes a fresh coordinator (Uninitialized) into the pre-allocated account.
    pub fn init_coordinator(ctx: Context<InitCoordinatorAccounts>, params: InitCoordinatorParams) -> Result<()> {
        require!(!params.run_id.is_empty() && params.run_id.len() <= 32, ProgramErrorCode::RunIdInvalidLength);
        if !is_valid_run_id(&params.run_id) {
            return err!(errors::CoreError::InvalidRunId);
        }
        let info = ctx.accounts.coordinator_account.to_account_info();
        require!(info.data_len() == COORDINATOR_ACCOUNT_SPACE, ProgramErrorCode::CoordinatorAccountIncorrectSize);
        let c = Coordinator::new(&params.run_id, config_from_fields(&params.config), params.model.to_core()?)
            .map_err(core_error)?;
        let stored = CoreAccount::store(&c).map_err(core_error)?;
        let mut acc = ctx.accounts.coordinator_account.load_init()?;
        *acc.core_mut() = *stored;
        acc.nonce = 1;
        let inst = &mut ctx.accounts.coordinator_instance;
        inst.bump = ctx.bumps.coordinator_instance;
        inst.main_authority = params.main_authority;
        inst.join_authority = params.join_authority;
        inst.coordinator_account = ctx.accounts.coordinator_account.key();
        inst.run_id = params.run_id;
        Ok(())
    }

    /// Changes config, model and/or progress; only while halted (Uninitialized or Paused), never when Finished.
    pub fn update(ctx: Context<OwnerCoordinatorAccounts>, params: UpdateParams) -> Result<()> {
        with_coordinator(&ctx.accounts.coordinator_account, |c| {
            require!(c.run_state != RunState::Finished, ProgramErrorCode::UpdateFinished);
            require!(c.run_state.is_halted(), ProgramErrorCode::NotHalted);
            let mut changes = Vec::new();
            if let Some(fields) = params.config {
                for (i, name) in psyche_coordinator_core::config::CONFIG_FIELDS.iter().enumerate() {
                    changes.push(ConfigChange::Integer((*name).into(), fields[i]));
                }
            }
            if let Some(m) = &params.model {
                changes.push(ConfigChange::Integer("max_seq_len".into(), m.max_seq_len));
                changes.push(ConfigChange::Integer("cold_start_warmup_steps".into(), m.cold_start_warmup_steps));
                changes.push(ConfigChange::Checkpoint(m.checkpoint.to_core()?));
                changes.push(ConfigChange::LrSchedule(m.lr_schedule.to_core()?));
            }
            if !changes.is_empty() {
                c.update_config(&changes).map_err(core_error)?;
            }
            if let Some(p) = params.progress {
                require!(p.step > 0, ProgramErrorCode::ProgressSanityCheckFailed);
                c.progress.epoch = p.epoch;
                c.progress.step = p.step;
                c.progress.epoch_start_data_index = p.epoch_start_data_index;
            }
            Ok(())
        })
    }

    /// Pauses (`paused = true`) or resumes the run.
    pub fn set_paused(ctx: Context<OwnerCoordinatorAccounts>, paused: bool) -> Result<()> {
        with_coordinator(&ctx.accounts.coordinator_account, |c| {
            let t = now()?;
            let r = if paused { c.pause(t) } else { c.resume(t) };
            r.map_err(core_error)
        })
    }

    /// Creates an allowlist entry for `grantee` (signed by the join authority).
    pub fn grant_join(ctx: Context<GrantJoinAccounts>, grantee: Pubkey) -> Result<()> {
        let a = &mut ctx.accounts.authorization;
        a.bump = ctx.bumps.authorization;
        a.coordinator_instance = ctx.accounts.coordinator_instance.key();
        a.grantee = grantee;
        Ok(())
    }

    /// Joins the next epoch as the signer's key. Permissionless runs (`join_authority == default`) accept any
    /// `authorization` account; allowlisted runs need the signer's `JoinAuthorization` PDA.
    pub fn join_run(ctx: Context<JoinRunAccounts>) -> Result<()> {
        let inst = &ctx.accounts.coordinator_instance;
        if inst.join_authority != Pubkey::default() {
            let auth = &ctx.accounts.authorization;
            let (expected, _) = Pubkey::find_program_address(
                &[JOIN_SEED, inst.key().as_ref(), ctx.accounts.user.key().as_ref()],
                &crate::ID,
            );
            require_keys_eq!(auth.key(), expected, ProgramErrorCode::JoinNotAuthorized);
            require_keys_eq!(*auth.owner, crate::ID, ProgramErrorCode::JoinNotAuthorized);
            let data = auth.try_borrow_data()?;
            let parsed = JoinAuthorization::try_deserialize(&mut &data[..])
                .map_err(|_| error!(ProgramErrorCode::JoinNotAuthorized))?;
            require_keys_eq!(parsed.grantee, ctx.accounts.user.key(), ProgramErrorCode::JoinNotAuthorized);
        }
        let id = signer_id(&ctx.accounts.user);
        with_coordinator(&ctx.accounts.coordinator_account, |c| {
            c.join(id).map_err(core_error)?;
            tick_if_running(c)
        })
    }

    /// Withdraws the signer (pending joiner or epoch client), like the core's `withdraw`; then ticks if running.
    /// (Psyche has no such instruction; the TypeScript client's `leave()` sends it.)
    pub fn leave_run(ctx: Context<PermissionlessCoordinatorAccounts>) -> Result<()> {
        let id = signer_id(&ctx.accounts.user);
        with_coordinator(&ctx.accounts.coordinator_account, |c| {
            c.withdraw(id).map_err(core_error)?;
            tick_if_running(c)
        })
    }

    /// Advances time-driven transitions; anyone may send it (clients simulate it first and send it only when
    /// the state would change).
    pub fn tick(ctx: Context<PermissionlessCoordinatorAccounts>) -> Result<()> {
        with_coordinator(&ctx.accounts.coordinator_account, |c| {
            c.tick(&[], now()?, seed()?).map_err(core_error).map(|_| ())
        })
    }

    /// A round witness from the signer (client `index`).
    pub fn witness(
        ctx: Context<PermissionlessCoordinatorAccounts>,
        index: u64,
        participant_bloom: BloomArg,
        broadcast_bloom: BloomArg,
        broadcast_merkle: [u8; 32],
    ) -> Result<()> {
        let from = signer_id(&ctx.accounts.user);
        with_coordinator(&ctx.accounts.coordinator_account, |c| {
            let msg = WitnessMessage {
                from,
                index,
                participant_bloom: participant_bloom.into(),
                broadcast_bloom: broadcast_bloom.into(),
                broadcast_merkle: &broadcast_merkle,
            };
            c.witness(&msg, now()?).map_err(core_error)?;
            tick_if_running(c)
        })
    }

    /// A warmup witness (model loaded) from the signer (client `index`).
    pub fn warmup_witness(ctx: Context<PermissionlessCoordinatorAccounts>, index: u64) -> Result<()> {
        let from = signer_id(&ctx.accounts.user);
        with_coordinator(&ctx.accounts.coordinator_account, |c| {
            c.warmup_witness(from, index, now()?, seed()?).map_err(core_error)?;
            tick_if_running(c)
        })
    }

    /// Reports unhealthy clients (the signer must be an epoch client).
    pub fn health_check(ctx: Context<PermissionlessCoordinatorAccounts>, checks: Vec<HealthCheckArg>) -> Result<()> {
        let from = signer_id(&ctx.accounts.user);
        let entries: Vec<HealthCheckEntry> =
            checks.iter().map(|e| HealthCheckEntry { index: e.index, id: e.id }).collect();
        with_coordinator(&ctx.accounts.coordinator_account, |c| {
            c.health_check(from, &entries, now()?).map_err(core_error)?;
            tick_if_running(c)
        })
    }

    /// Reports a new checkpoint (the signer must be epoch client `index`).
    pub fn checkpoint(
        ctx: Context<PermissionlessCoordinatorAccounts>,
        index: u64,
        checkpoint: CheckpointArg,
    ) -> Result<()> {
        let from = signer_id(&ctx.accounts.user);
        let report = checkpoint.to_core()?;
        with_coordinator(&ctx.accounts.coordinator_account, |c| {
            c.checkpoint(from, index, &report).map_err(core_error)?;
            tick_if_running(c)
        })
    }

    /// Closes both accounts to `spill`; only while halted.
    pub fn free_coordinator(ctx: Context<FreeCoordinatorAccounts>) -> Result<()> {
        let acc = ctx.accounts.coordinator_account.load()?;
        let c = acc.core().load().map_err(core_error)?;
        require!(c.run_state.is_halted(), ProgramErrorCode::NotHalted);
        Ok(())
    }
}

#[derive(Accounts)]
#[instruction(params: InitCoordinatorParams)]
pub struct InitCoordinatorAccounts<'info> {
    #[account(mut)]
    pub payer: Signer<'info>,
    #[account(
        init,
        payer = payer,
        space = 8 + CoordinatorInstance::INIT_SPACE,
        seeds = [INSTANCE_SEED, params.run_id.as_bytes()],
        bump
    )]
    pub coordinator_instance: Account<'info, CoordinatorInstance>,
    /// Pre-allocated by `SystemProgram.createAccount` in the same transaction; `zero` checks the all-zero
    /// discriminator and the owner.
    #[account(zero)]
    pub coordinator_account: AccountLoader<'info, CoordinatorAccount>,
    pub system_program: Program<'info, System>,
}

#[derive(Accounts)]
pub struct OwnerCoordinatorAccounts<'info> {
    #[account(address = coordinator_instance.main_authority @ ProgramErrorCode::NotMainAuthority)]
    pub authority: Signer<'info>,
    pub coordinator_instance: Account<'info, CoordinatorInstance>,
    #[account(mut, address = coordinator_instance.coordinator_account @ ProgramErrorCode::CoordinatorAccountMismatch)]
    pub coordinator_account: AccountLoader<'info, CoordinatorAccount>,
}

#[derive(Accounts)]
pub struct PermissionlessCoordinatorAccounts<'info> {
    pub user: Signer<'info>,
    pub coordinator_instance: Account<'info, CoordinatorInstance>,
    #[account(mut, address = coordinator_instance.coordinator_account @ ProgramErrorCode::CoordinatorAccountMismatch)]
    pub coordinator_account: AccountLoader<'info, CoordinatorAccount>,
}

#[derive(Accounts)]
pub struct JoinRunAccounts<'info> {
    pub user: Signer<'info>,
    /// CHECK: validated in `join_run` (a `JoinAuthorization` PDA for allowlisted runs; anything otherwise).
    pub authorization: UncheckedAccount<'info>,
    pub coordinator_instance: Account<'info, CoordinatorInstance>,
    #[account(mut, address = coordinator_instance.coordinator_account @ ProgramErrorCode::CoordinatorAccountMismatch)]
    pub coordinator_account: AccountLoader<'info, CoordinatorAccount>,
}

#[derive(Accounts)]
#[instruction(grantee: Pubkey)]
pub struct GrantJoinAccounts<'info> {
    #[account(mut)]
    pub payer: Signer<'info>,
    #[account(address = coordinator_instance.join_authority @ ProgramErrorCode::JoinNotAuthorized)]
    pub join_authority: Signer<'info>,
    pub coordinator_instance: Account<'info, CoordinatorInstance>,
    #[account(
        init,
        payer = payer,
        space = 8 + JoinAuthorization::INIT_SPACE,
        seeds = [JOIN_SEED, coordinator_instance.key().as_ref(), grantee.as_ref()],
        bump
    )]
    pub authorization: Account<'info, JoinAuthorization>,
    pub system_program: Program<'info, System>,
}

#[derive(Accounts)]
pub struct FreeCoordinatorAccounts<'info> {
    #[account(address = coordinator_instance.main_authority @ ProgramErrorCode::NotMainAuthority)]
    pub authority: Signer<'info>,
    /// CHECK: only receives lamports.
    #[account(mut)]
    pub spill: UncheckedAccount<'info>,
    #[account(mut, close = spill)]
    pub coordinator_instance: Account<'info, CoordinatorInstance>,
    #[account(
        mut,
        close = spill,
        address = coordinator_instance.coordinator_account @ ProgramErrorCode::CoordinatorAccountMismatch
    )]
    pub coordinator_account: AccountLoader<'info, CoordinatorAccount>,
}
