//! Program errors. [`CoreError`] maps the core's numbered errors 1:1: Anchor code = `6000 + core number`
//! (6001 `Halted` … 6021 `InvalidArgument`). [`ProgramErrorCode`] holds the program's own errors from 6100.
//! **The numbers never change** (see BREAKING-CHANGES.md); the TypeScript client decodes them the same way.

use anchor_lang::prelude::*;
use psyche_coordinator_core::error::{CoordinatorError, ErrorCode as CoreCode};

/// The core's [`CoreCode`]s, in number order, starting at 6001.
#[error_code(offset = 6001)]
pub enum CoreError {
    #[msg("Halted (1): tick/join while Uninitialized, Paused or Finished")]
    Halted,
    #[msg("InvalidConfig (2)")]
    InvalidConfig,
    #[msg("InvalidTimestamp (3)")]
    InvalidTimestamp,
    #[msg("InvalidSeed (4)")]
    InvalidSeed,
    #[msg("InvalidClientId (5)")]
    InvalidClientId,
    #[msg("PendingFull (6)")]
    PendingFull,
    #[msg("WrongRunState (7)")]
    WrongRunState,
    #[msg("InvalidClientIndex (8)")]
    InvalidClientIndex,
    #[msg("ClientIdMismatch (9)")]
    ClientIdMismatch,
    #[msg("ClientNotHealthy (10)")]
    ClientNotHealthy,
    #[msg("NotAWitness (11)")]
    NotAWitness,
    #[msg("DuplicateWitness (12)")]
    DuplicateWitness,
    #[msg("InvalidBloom (13)")]
    InvalidBloom,
    #[msg("InvalidMerkleRoot (14)")]
    InvalidMerkleRoot,
    #[msg("HealthCheckTooEarly (15)")]
    HealthCheckTooEarly,
    #[msg("InvalidHealthCheck (16)")]
    InvalidHealthCheck,
    #[msg("InvalidCheckpoint (17)")]
    InvalidCheckpoint,
    #[msg("ClientNotFound (18)")]
    ClientNotFound,
    #[msg("InvalidRunId (19)")]
    InvalidRunId,
    #[msg("InvalidModel (20)")]
    InvalidModel,
    #[msg("InvalidArgument (21)")]
    InvalidArgument,
}

/// Errors of the program itself (accounts, authorization, sizes), from 6100.
#[error_code(offset = 6100)]
pub enum ProgramErrorCode {
    #[msg("coordinator_account has the wrong size (expected 8 + 85 752)")]
    CoordinatorAccountIncorrectSize,
    #[msg("coordinator_account is not the one recorded in coordinator_instance")]
    CoordinatorAccountMismatch,
    #[msg("coordinator_account has a layout version other than 1")]
    CoordinatorAccountVersion,
    #[msg("the signer is not the run's main_authority")]
    NotMainAuthority,
    #[msg("the signer is not authorized to join (no valid JoinAuthorization for it)")]
    JoinNotAuthorized,
    #[msg("update and free_coordinator need a halted run (Uninitialized, Paused or Finished)")]
    NotHalted,
    #[msg("update cannot change a Finished run")]
    UpdateFinished,
    #[msg("progress.step must be > 0")]
    ProgressSanityCheckFailed,
    #[msg("run_id must be 1..=32 bytes")]
    RunIdInvalidLength,
    #[msg("the signer is not a client of the current epoch")]
    SignerNotAClient,
}

/// Maps a core error to its Anchor error (same number + 6000), logging the field and expectation.
pub fn core_error(e: CoordinatorError) -> Error {
    msg!("coordinator error {} at {}: expected {}", e.code.name(), e.field, e.expected);
    let code = match e.code {
        CoreCode::Halted => CoreError::Halted,
        CoreCode::InvalidConfig => CoreError::InvalidConfig,
        CoreCode::InvalidTimestamp => CoreError::InvalidTimestamp,
        CoreCode::InvalidSeed => CoreError::InvalidSeed,
        CoreCode::InvalidClientId => CoreError::InvalidClientId,
        CoreCode::PendingFull => CoreError::PendingFull,
        CoreCode::WrongRunState => CoreError::WrongRunState,
        CoreCode::InvalidClientIndex => CoreError::InvalidClientIndex,
        CoreCode::ClientIdMismatch => CoreError::ClientIdMismatch,
        CoreCode::ClientNotHealthy => CoreError::ClientNotHealthy,
        CoreCode::NotAWitness => CoreError::NotAWitness,
        CoreCode::DuplicateWitness => CoreError::DuplicateWitness,
        CoreCode::InvalidBloom => CoreError::InvalidBloom,
        CoreCode::InvalidMerkleRoot => CoreError::InvalidMerkleRoot,
        CoreCode::HealthCheckTooEarly => CoreError::HealthCheckTooEarly,
        CoreCode::InvalidHealthCheck => CoreError::InvalidHealthCheck,
        CoreCode::InvalidCheckpoint => CoreError::InvalidCheckpoint,
        CoreCode::ClientNotFound => CoreError::ClientNotFound,
        CoreCode::InvalidRunId => CoreError::InvalidRunId,
        CoreCode::InvalidModel => CoreError::InvalidModel,
        CoreCode::InvalidArgument => CoreError::InvalidArgument,
    };
    // Compile-time-ish guard that the mapping stays 1:1: Anchor's number is 6000 + the core number.
    debug_assert_eq!(u32::from(code), 6000 + e.code.number() as u32);
    code.into()
}
