//! Run configuration, model configuration, checkpoints, LR schedules and their validation
//! (docs/coordinator.md §3, §10).

use alloc::string::String;

use crate::committee::MAX_WITNESSES;
use crate::error::{CoordinatorError, ErrorCode, Result};

/// Largest `max_clients`.
pub const MAX_CLIENTS_LIMIT: u64 = 65_535;
/// Largest pending (next-epoch) list.
pub const MAX_PENDING: usize = 65_535;
/// Largest duration in a config field (seconds).
pub const MAX_DURATION: u64 = 1 << 32;
/// Largest timestamp (2^53 − 1, the largest exact JS integer).
pub const MAX_TIMESTAMP: u64 = (1 << 53) - 1;
/// Largest integer a config field may hold (a JS safe integer).
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;
/// Largest `max_seq_len`.
pub const MAX_SEQ_LEN_LIMIT: u64 = 1_048_576;
/// Largest `total_steps` (so that `step <= total_steps + 1` fits in a u32).
pub const MAX_TOTAL_STEPS: u64 = (1 << 32) - 2;

/// Run configuration. All fields are u64 so that out-of-range input is representable and rejected by
/// [`validate_config`] with a clear error instead of failing to parse.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CoordinatorConfig {
    /// Max Warmup duration (s).
    pub warmup_time: u64,
    /// Cooldown duration (s).
    pub cooldown_time: u64,
    /// RoundTrain timeout (s).
    pub max_round_train_time: u64,
    /// RoundWitness duration (s).
    pub round_witness_time: u64,
    /// Tokens over which the batch size ramps from start to end.
    pub global_batch_size_warmup_tokens: u64,
    /// Epoch length (s) after which the epoch is wound down.
    pub epoch_time: u64,
    /// The run finishes after this step.
    pub total_steps: u64,
    /// Joiners needed to start an epoch.
    pub init_min_clients: u64,
    /// Below this many Healthy clients the epoch ends.
    pub min_clients: u64,
    /// Clients per epoch (Psyche hard-codes 256).
    pub max_clients: u64,
    /// Witnesses per round (0 = up to 32).
    pub witness_nodes: u64,
    /// Sequences per step at the start of the ramp.
    pub global_batch_size_start: u64,
    /// Sequences per step after the ramp.
    pub global_batch_size_end: u64,
    /// Must be 0 (verifiers are not implemented).
    pub verification_percent: u64,
    /// Extra wait (s) in WaitingForMembers once `init_min_clients` joined.
    pub waiting_for_members_extra_time: u64,
}

/// The 15 config field names, in declaration (and validation) order.
pub const CONFIG_FIELDS: [&str; 15] = [
    "warmup_time",
    "cooldown_time",
    "max_round_train_time",
    "round_witness_time",
    "global_batch_size_warmup_tokens",
    "epoch_time",
    "total_steps",
    "init_min_clients",
    "min_clients",
    "max_clients",
    "witness_nodes",
    "global_batch_size_start",
    "global_batch_size_end",
    "verification_percent",
    "waiting_for_members_extra_time",
];

impl CoordinatorConfig {
    /// Mutable access to a field by its snake_case name; `None` for an unknown name.
    pub fn field_mut(&mut self, name: &str) -> Option<&mut u64> {
        Some(match name {
            "warmup_time" => &mut self.warmup_time,
            "cooldown_time" => &mut self.cooldown_time,
            "max_round_train_time" => &mut self.max_round_train_time,
            "round_witness_time" => &mut self.round_witness_time,
            "global_batch_size_warmup_tokens" => &mut self.global_batch_size_warmup_tokens,
            "epoch_time" => &mut self.epoch_time,
            "total_steps" => &mut self.total_steps,
            "init_min_clients" => &mut self.init_min_clients,
            "min_clients" => &mut self.min_clients,
            "max_clients" => &mut self.max_clients,
            "witness_nodes" => &mut self.witness_nodes,
            "global_batch_size_start" => &mut self.global_batch_size_start,
            "global_batch_size_end" => &mut self.global_batch_size_end,
            "verification_percent" => &mut self.verification_percent,
            "waiting_for_members_extra_time" => &mut self.waiting_for_members_extra_time,
            _ => return None,
        })
    }
}

/// A Hugging Face repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HubRepo {
    /// `owner/name`.
    pub repo_id: String,
    /// Commit or branch, if pinned.
    pub revision: Option<String>,
}

/// A GCS location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GcsRepo {
    /// Bucket name.
    pub bucket: String,
    /// Object prefix, if any.
    pub prefix: Option<String>,
}

/// Where the model weights of the next epoch come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Checkpoint {
    /// Nothing persisted.
    Ephemeral,
    /// Placeholder Hub repo.
    Dummy(HubRepo),
    /// Hugging Face Hub.
    Hub(HubRepo),
    /// Peers, falling back to the Hub repo.
    P2P(HubRepo),
    /// Google Cloud Storage.
    Gcs(GcsRepo),
    /// Peers, falling back to GCS.
    P2PGcs(GcsRepo),
}

/// True for 1–64 chars of `[A-Za-z0-9._/-]`.
pub fn is_valid_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'/' | b'-'))
}

impl Checkpoint {
    /// True when every string is 1–64 chars of `[A-Za-z0-9._/-]` (optional ones may be absent).
    pub fn strings_valid(&self) -> bool {
        let opt = |o: &Option<String>| o.as_deref().is_none_or(is_valid_name);
        match self {
            Checkpoint::Ephemeral => true,
            Checkpoint::Dummy(h) | Checkpoint::Hub(h) | Checkpoint::P2P(h) => {
                is_valid_name(&h.repo_id) && opt(&h.revision)
            }
            Checkpoint::Gcs(g) | Checkpoint::P2PGcs(g) => is_valid_name(&g.bucket) && opt(&g.prefix),
        }
    }
}

/// LR schedules (docs/coordinator.md §9.6). Step counts are u64 so out-of-range input is representable.
#[derive(Clone, Debug, PartialEq)]
pub enum LrSchedule {
    /// Warmup then `base_lr`.
    Constant {
        /// Peak LR.
        base_lr: f64,
        /// LR at step 0 of the warmup.
        warmup_init_lr: f64,
        /// Warmup steps.
        warmup_steps: u64,
    },
    /// Warmup then linear decay to `final_lr` at `total_steps`.
    Linear {
        /// Peak LR.
        base_lr: f64,
        /// LR at step 0 of the warmup.
        warmup_init_lr: f64,
        /// Warmup steps.
        warmup_steps: u64,
        /// Step at which `final_lr` is reached.
        total_steps: u64,
        /// Final LR.
        final_lr: f64,
    },
    /// Warmup then cosine decay to `final_lr` at `total_steps`.
    Cosine {
        /// Peak LR.
        base_lr: f64,
        /// LR at step 0 of the warmup.
        warmup_init_lr: f64,
        /// Warmup steps.
        warmup_steps: u64,
        /// Step at which `final_lr` is reached.
        total_steps: u64,
        /// Final LR.
        final_lr: f64,
    },
    /// Warmup, stable, cosine decay, linear decay.
    Wsd {
        /// Peak LR.
        base_lr: f64,
        /// LR at step 0 of the warmup.
        warmup_init_lr: f64,
        /// Warmup steps.
        warmup_steps: u64,
        /// Steps at `base_lr`.
        stable_steps: u64,
        /// Steps of the cosine decay.
        cosine_decay_steps: u64,
        /// LR at the end of the cosine decay.
        cosine_decay_final_lr: f64,
        /// Steps of the linear decay.
        linear_decay_steps: u64,
        /// LR at the end of the linear decay.
        linear_decay_final_lr: f64,
    },
}

/// Model configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelConfig {
    /// Tokens per sequence.
    pub max_seq_len: u64,
    /// LR ramp after a cold start (Pause).
    pub cold_start_warmup_steps: u64,
    /// Weights source.
    pub checkpoint: Checkpoint,
    /// LR schedule.
    pub lr_schedule: LrSchedule,
}

/// True for 1–32 chars of `[A-Za-z0-9._-]`.
pub fn is_valid_run_id(s: &str) -> bool {
    (1..=32).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Validates a run id.
///
/// # Errors
/// `InvalidRunId` (19).
pub fn validate_run_id(run_id: &str) -> Result<()> {
    if is_valid_run_id(run_id) {
        Ok(())
    } else {
        Err(CoordinatorError::new(ErrorCode::InvalidRunId, "run_id", "1-32 chars of [A-Za-z0-9._-]"))
    }
}

fn cfg_err(field: &'static str, expected: &'static str) -> CoordinatorError {
    CoordinatorError::new(ErrorCode::InvalidConfig, field, expected)
}

/// Validates a config (docs/coordinator.md §3), in field order; returns the first failure.
///
/// # Errors
/// `InvalidConfig` (2) with `field` = `"config.<field>"`.
pub fn validate_config(c: &CoordinatorConfig) -> Result<()> {
    let all = [
        (c.warmup_time, "config.warmup_time"),
        (c.cooldown_time, "config.cooldown_time"),
        (c.max_round_train_time, "config.max_round_train_time"),
        (c.round_witness_time, "config.round_witness_time"),
        (c.global_batch_size_warmup_tokens, "config.global_batch_size_warmup_tokens"),
        (c.epoch_time, "config.epoch_time"),
        (c.total_steps, "config.total_steps"),
        (c.init_min_clients, "config.init_min_clients"),
        (c.min_clients, "config.min_clients"),
        (c.max_clients, "config.max_clients"),
        (c.witness_nodes, "config.witness_nodes"),
        (c.global_batch_size_start, "config.global_batch_size_start"),
        (c.global_batch_size_end, "config.global_batch_size_end"),
        (c.verification_percent, "config.verification_percent"),
        (c.waiting_for_members_extra_time, "config.waiting_for_members_extra_time"),
    ];
    for (v, f) in all {
        if v > MAX_SAFE_INTEGER {
            return Err(cfg_err(f, "an integer <= 2^53 - 1"));
        }
    }
    let d = 1..=MAX_DURATION;
    if c.warmup_time > MAX_DURATION {
        return Err(cfg_err("config.warmup_time", "<= 2^32"));
    }
    if c.warmup_time >= c.epoch_time {
        return Err(cfg_err("config.warmup_time", "< epoch_time"));
    }
    if !d.contains(&c.cooldown_time) {
        return Err(cfg_err("config.cooldown_time", "in [1, 2^32]"));
    }
    if !d.contains(&c.max_round_train_time) {
        return Err(cfg_err("config.max_round_train_time", "in [1, 2^32]"));
    }
    if c.max_round_train_time >= c.epoch_time {
        return Err(cfg_err("config.max_round_train_time", "< epoch_time"));
    }
    if !d.contains(&c.round_witness_time) {
        return Err(cfg_err("config.round_witness_time", "in [1, 2^32]"));
    }
    if !d.contains(&c.epoch_time) {
        return Err(cfg_err("config.epoch_time", "in [1, 2^32]"));
    }
    if !(1..=MAX_TOTAL_STEPS).contains(&c.total_steps) {
        return Err(cfg_err("config.total_steps", "in [1, 2^32 - 2]"));
    }
    if !(1..=65_535).contains(&c.min_clients) {
        return Err(cfg_err("config.min_clients", "in [1, 65535]"));
    }
    if !(1..=MAX_CLIENTS_LIMIT).contains(&c.max_clients) {
        return Err(cfg_err("config.max_clients", "in [1, 65535]"));
    }
    if c.init_min_clients < c.min_clients {
        return Err(cfg_err("config.init_min_clients", ">= min_clients"));
    }
    if c.init_min_clients > c.max_clients {
        return Err(cfg_err("config.init_min_clients", "<= max_clients"));
    }
    if c.witness_nodes > MAX_WITNESSES as u64 {
        return Err(cfg_err("config.witness_nodes", "<= 32"));
    }
    if c.witness_nodes > c.min_clients {
        return Err(cfg_err("config.witness_nodes", "<= min_clients"));
    }
    if !(1..=65_535).contains(&c.global_batch_size_start) {
        return Err(cfg_err("config.global_batch_size_start", "in [1, 65535]"));
    }
    if c.global_batch_size_end < c.global_batch_size_start {
        return Err(cfg_err("config.global_batch_size_end", ">= global_batch_size_start"));
    }
    if c.global_batch_size_end > 65_535 {
        return Err(cfg_err("config.global_batch_size_end", "<= 65535"));
    }
    if c.verification_percent != 0 {
        return Err(cfg_err("config.verification_percent", "0 (verification is not implemented)"));
    }
    if !(1..=255).contains(&c.waiting_for_members_extra_time) {
        return Err(cfg_err("config.waiting_for_members_extra_time", "in [1, 255]"));
    }
    Ok(())
}

fn model_err(field: &'static str, expected: &'static str) -> CoordinatorError {
    CoordinatorError::new(ErrorCode::InvalidModel, field, expected)
}

fn check_lr(v: f64, field: &'static str) -> Result<()> {
    if v.is_finite() && v >= 0.0 { Ok(()) } else { Err(model_err(field, "a finite number >= 0")) }
}

fn check_steps(v: u64, field: &'static str) -> Result<()> {
    if v <= u32::MAX as u64 { Ok(()) } else { Err(model_err(field, "an integer in [0, 2^32 - 1]")) }
}

/// Validates an LR schedule.
///
/// # Errors
/// `InvalidModel` (20) with `field` = `"model.lr_schedule.<field>"`.
pub fn validate_lr_schedule(s: &LrSchedule) -> Result<()> {
    match *s {
        LrSchedule::Constant { base_lr, warmup_init_lr, warmup_steps } => {
            check_lr(base_lr, "model.lr_schedule.base_lr")?;
            check_lr(warmup_init_lr, "model.lr_schedule.warmup_init_lr")?;
            check_steps(warmup_steps, "model.lr_schedule.warmup_steps")
        }
        LrSchedule::Linear { base_lr, warmup_init_lr, warmup_steps, total_steps, final_lr }
        | LrSchedule::Cosine { base_lr, warmup_init_lr, warmup_steps, total_steps, final_lr } => {
            check_lr(base_lr, "model.lr_schedule.base_lr")?;
            check_lr(warmup_init_lr, "model.lr_schedule.warmup_init_lr")?;
            check_steps(warmup_steps, "model.lr_schedule.warmup_steps")?;
            check_steps(total_steps, "model.lr_schedule.total_steps")?;
            check_lr(final_lr, "model.lr_schedule.final_lr")?;
            if total_steps <= warmup_steps {
                return Err(model_err("model.lr_schedule.total_steps", "> warmup_steps"));
            }
            Ok(())
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
            check_lr(base_lr, "model.lr_schedule.base_lr")?;
            check_lr(warmup_init_lr, "model.lr_schedule.warmup_init_lr")?;
            check_steps(warmup_steps, "model.lr_schedule.warmup_steps")?;
            check_steps(stable_steps, "model.lr_schedule.stable_steps")?;
            check_steps(cosine_decay_steps, "model.lr_schedule.cosine_decay_steps")?;
            check_lr(cosine_decay_final_lr, "model.lr_schedule.cosine_decay_final_lr")?;
            check_steps(linear_decay_steps, "model.lr_schedule.linear_decay_steps")?;
            check_lr(linear_decay_final_lr, "model.lr_schedule.linear_decay_final_lr")
        }
    }
}

/// Validates the model part against an already valid config.
///
/// # Errors
/// `InvalidModel` (20) with `field`.
pub fn validate_model(m: &ModelConfig, c: &CoordinatorConfig) -> Result<()> {
    if !(1..=MAX_SEQ_LEN_LIMIT).contains(&m.max_seq_len) {
        return Err(model_err("model.max_seq_len", "an integer in [1, 1048576]"));
    }
    let max_cold = (c.epoch_time - c.warmup_time) / c.max_round_train_time;
    if m.cold_start_warmup_steps > MAX_SAFE_INTEGER || m.cold_start_warmup_steps > max_cold {
        return Err(model_err(
            "model.cold_start_warmup_steps",
            "an integer <= (epoch_time - warmup_time) / max_round_train_time",
        ));
    }
    if !m.checkpoint.strings_valid() {
        return Err(model_err("model.checkpoint", "strings of 1-64 chars of [A-Za-z0-9._/-]"));
    }
    validate_lr_schedule(&m.lr_schedule)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn good() -> CoordinatorConfig {
        CoordinatorConfig {
            warmup_time: 30,
            cooldown_time: 30,
            max_round_train_time: 30,
            round_witness_time: 1,
            global_batch_size_warmup_tokens: 0,
            epoch_time: 60,
            total_steps: 100,
            init_min_clients: 2,
            min_clients: 1,
            max_clients: 256,
            witness_nodes: 1,
            global_batch_size_start: 8,
            global_batch_size_end: 8,
            verification_percent: 0,
            waiting_for_members_extra_time: 3,
        }
    }

    #[test]
    fn config_rules_name_the_field() {
        assert_eq!(validate_config(&good()), Ok(()));
        let cases: [(&str, u64, &str); 8] = [
            ("warmup_time", 60, "config.warmup_time"),
            ("cooldown_time", 0, "config.cooldown_time"),
            ("total_steps", 0, "config.total_steps"),
            ("init_min_clients", 300, "config.init_min_clients"),
            ("witness_nodes", 33, "config.witness_nodes"),
            ("global_batch_size_end", 7, "config.global_batch_size_end"),
            ("verification_percent", 1, "config.verification_percent"),
            ("epoch_time", 1 << 53, "config.epoch_time"),
        ];
        for (name, value, field) in cases {
            let mut c = good();
            *c.field_mut(name).unwrap() = value;
            let e = validate_config(&c).unwrap_err();
            assert_eq!((e.code, e.field), (ErrorCode::InvalidConfig, field), "{name}={value}");
        }
        assert!(good().field_mut("nope").is_none());
    }

    #[test]
    fn names_and_run_ids() {
        assert!(is_valid_name("org/model-1.0_x"));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name("a b"));
        assert!(is_valid_run_id("run-1.x_y"));
        assert!(!is_valid_run_id("a/b"));
        assert!(!is_valid_run_id("012345678901234567890123456789012"));
        assert_eq!(validate_run_id("").unwrap_err().code, ErrorCode::InvalidRunId);
    }
}
