//! Numbered coordinator errors. **The numbers never change**; they equal `CoordinatorErrorNumber` in
//! `@psyche/coordinator` and the codes in `fixtures/coordinator/FORMAT.md`.

use core::fmt;

/// Error codes (docs/coordinator.md §11).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// `tick`/`join` in Uninitialized, Paused or Finished.
    Halted = 1,
    /// Config validation failed (see `field`).
    InvalidConfig = 2,
    /// `now` beyond `2^53 − 1` or before `run_state_start`.
    InvalidTimestamp = 3,
    /// Seed out of the u64 range (unreachable through the typed Rust API).
    InvalidSeed = 4,
    /// Client id is not 32 bytes (unreachable through the typed Rust API).
    InvalidClientId = 5,
    /// The pending list holds `MAX_PENDING` joiners.
    PendingFull = 6,
    /// Message not allowed in the current run state.
    WrongRunState = 7,
    /// Client index out of range.
    InvalidClientIndex = 8,
    /// `clients[index].id != from`.
    ClientIdMismatch = 9,
    /// Sender is not Healthy.
    ClientNotHealthy = 10,
    /// Witness from a client that is not a witness of the round.
    NotAWitness = 11,
    /// Second (warmup) witness from the same index.
    DuplicateWitness = 12,
    /// Bloom shape or bits invalid.
    InvalidBloom = 13,
    /// Merkle root is not 32 bytes.
    InvalidMerkleRoot = 14,
    /// Health check before round height 2.
    HealthCheckTooEarly = 15,
    /// Malformed health-check list, or no previous witnesses.
    InvalidHealthCheck = 16,
    /// Bad checkpoint report, or a checkpoint on an Ephemeral run.
    InvalidCheckpoint = 17,
    /// Unknown client (`withdraw`, health-check reporter).
    ClientNotFound = 18,
    /// Run id not 1–32 chars of `[A-Za-z0-9._-]`.
    InvalidRunId = 19,
    /// Model config validation failed (see `field`).
    InvalidModel = 20,
    /// Bad argument to a pure function, or unknown `update_config` field.
    InvalidArgument = 21,
}

impl ErrorCode {
    /// The stable number.
    pub const fn number(self) -> u8 {
        self as u8
    }

    /// The stable name (equal to the TypeScript `code` string).
    pub const fn name(self) -> &'static str {
        match self {
            ErrorCode::Halted => "Halted",
            ErrorCode::InvalidConfig => "InvalidConfig",
            ErrorCode::InvalidTimestamp => "InvalidTimestamp",
            ErrorCode::InvalidSeed => "InvalidSeed",
            ErrorCode::InvalidClientId => "InvalidClientId",
            ErrorCode::PendingFull => "PendingFull",
            ErrorCode::WrongRunState => "WrongRunState",
            ErrorCode::InvalidClientIndex => "InvalidClientIndex",
            ErrorCode::ClientIdMismatch => "ClientIdMismatch",
            ErrorCode::ClientNotHealthy => "ClientNotHealthy",
            ErrorCode::NotAWitness => "NotAWitness",
            ErrorCode::DuplicateWitness => "DuplicateWitness",
            ErrorCode::InvalidBloom => "InvalidBloom",
            ErrorCode::InvalidMerkleRoot => "InvalidMerkleRoot",
            ErrorCode::HealthCheckTooEarly => "HealthCheckTooEarly",
            ErrorCode::InvalidHealthCheck => "InvalidHealthCheck",
            ErrorCode::InvalidCheckpoint => "InvalidCheckpoint",
            ErrorCode::ClientNotFound => "ClientNotFound",
            ErrorCode::InvalidRunId => "InvalidRunId",
            ErrorCode::InvalidModel => "InvalidModel",
            ErrorCode::InvalidArgument => "InvalidArgument",
        }
    }

    /// Every code, in number order.
    pub const ALL: [ErrorCode; 21] = [
        ErrorCode::Halted,
        ErrorCode::InvalidConfig,
        ErrorCode::InvalidTimestamp,
        ErrorCode::InvalidSeed,
        ErrorCode::InvalidClientId,
        ErrorCode::PendingFull,
        ErrorCode::WrongRunState,
        ErrorCode::InvalidClientIndex,
        ErrorCode::ClientIdMismatch,
        ErrorCode::ClientNotHealthy,
        ErrorCode::NotAWitness,
        ErrorCode::DuplicateWitness,
        ErrorCode::InvalidBloom,
        ErrorCode::InvalidMerkleRoot,
        ErrorCode::HealthCheckTooEarly,
        ErrorCode::InvalidHealthCheck,
        ErrorCode::InvalidCheckpoint,
        ErrorCode::ClientNotFound,
        ErrorCode::InvalidRunId,
        ErrorCode::InvalidModel,
        ErrorCode::InvalidArgument,
    ];
}

/// A coordinator error: the numbered code, the offending field/parameter and what was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoordinatorError {
    /// The numbered code.
    pub code: ErrorCode,
    /// The offending parameter or field, e.g. `"config.warmup_time"`, `"now"`, `"checks[2].index"`.
    pub field: &'static str,
    /// What was expected.
    pub expected: &'static str,
}

impl CoordinatorError {
    /// Builds an error.
    pub const fn new(code: ErrorCode, field: &'static str, expected: &'static str) -> Self {
        CoordinatorError { code, field, expected }
    }
}

impl fmt::Display for CoordinatorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {} must be {}", self.code.name(), self.code.number(), self.field, self.expected)
    }
}

/// Result alias.
pub type Result<T> = core::result::Result<T, CoordinatorError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_stable() {
        for (i, c) in ErrorCode::ALL.iter().enumerate() {
            assert_eq!(c.number() as usize, i + 1);
        }
        assert_eq!(ErrorCode::InvalidArgument.number(), 21);
        let e = CoordinatorError::new(ErrorCode::InvalidConfig, "config.warmup_time", "< epoch_time");
        assert_eq!(alloc::format!("{e}"), "InvalidConfig (2): config.warmup_time must be < epoch_time");
    }
}
