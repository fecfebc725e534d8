//! Batch-size ramp and LR schedules (docs/coordinator.md §9.5, §9.6), in f64 like the TypeScript side.

use crate::config::{CoordinatorConfig, LrSchedule};
use crate::error::{CoordinatorError, ErrorCode, Result};
use crate::math::{PI, cos, round};

/// Global batch size (sequences) of a round starting at `data_index`.
///
/// `tokens = data_index · max_seq_len` (saturating); `end` once `tokens >= global_batch_size_warmup_tokens`,
/// else `round(start + (end − start) · (tokens / warmup_tokens))` in f64, half away from zero.
pub fn batch_size(config: &CoordinatorConfig, max_seq_len: u64, data_index: u64) -> u64 {
    let tokens = data_index.saturating_mul(max_seq_len);
    let warm = config.global_batch_size_warmup_tokens;
    if tokens >= warm {
        return config.global_batch_size_end;
    }
    let start = config.global_batch_size_start as f64;
    let end = config.global_batch_size_end as f64;
    round(start + (end - start) * (tokens as f64 / warm as f64)) as u64
}

fn cosine_between(from: f64, to: f64, x: f64) -> f64 {
    to + (from - to) * 0.5 * (1.0 + cos(x))
}

/// Learning rate at `step` (>= 1).
///
/// # Errors
/// `InvalidArgument` (21) when `step == 0`.
pub fn lr_at(schedule: &LrSchedule, step: u64) -> Result<f64> {
    if step == 0 {
        return Err(CoordinatorError::new(ErrorCode::InvalidArgument, "step", "a positive integer"));
    }
    let (base_lr, warmup_init_lr, warmup_steps) = match *schedule {
        LrSchedule::Constant { base_lr, warmup_init_lr, warmup_steps }
        | LrSchedule::Linear { base_lr, warmup_init_lr, warmup_steps, .. }
        | LrSchedule::Cosine { base_lr, warmup_init_lr, warmup_steps, .. }
        | LrSchedule::Wsd { base_lr, warmup_init_lr, warmup_steps, .. } => (base_lr, warmup_init_lr, warmup_steps),
    };
    if step < warmup_steps {
        return Ok(warmup_init_lr + (base_lr - warmup_init_lr) * (step as f64 / warmup_steps as f64));
    }
    Ok(match *schedule {
        LrSchedule::Constant { .. } => base_lr,
        LrSchedule::Linear { total_steps, final_lr, .. } => {
            let p = f64::min(1.0, (step - warmup_steps) as f64 / (total_steps - warmup_steps) as f64);
            base_lr + (final_lr - base_lr) * p
        }
        LrSchedule::Cosine { total_steps, final_lr, .. } => {
            let p = f64::min(1.0, (step - warmup_steps) as f64 / (total_steps - warmup_steps) as f64);
            cosine_between(base_lr, final_lr, PI * p)
        }
        LrSchedule::Wsd {
            stable_steps,
            cosine_decay_steps,
            cosine_decay_final_lr,
            linear_decay_steps,
            linear_decay_final_lr,
            ..
        } => {
            let after = step - warmup_steps;
            if after < stable_steps {
                base_lr
            } else {
                let c = after - stable_steps;
                if c < cosine_decay_steps {
                    cosine_between(base_lr, cosine_decay_final_lr, (PI * c as f64) / cosine_decay_steps as f64)
                } else {
                    let l = c - cosine_decay_steps;
                    if l < linear_decay_steps {
                        cosine_decay_final_lr
                            + (linear_decay_final_lr - cosine_decay_final_lr) * (l as f64 / linear_decay_steps as f64)
                    } else {
                        linear_decay_final_lr
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(start: u64, end: u64, warm: u64) -> CoordinatorConfig {
        CoordinatorConfig {
            global_batch_size_start: start,
            global_batch_size_end: end,
            global_batch_size_warmup_tokens: warm,
            ..Default::default()
        }
    }

    #[test]
    fn batch_size_by_hand() {
        let c = cfg(8, 16, 1000);
        // tokens = 25·10 = 250 → 8 + 8·0.25 = 10.
        assert_eq!(batch_size(&c, 10, 25), 10);
        // tokens = 31·10 = 310 → 8 + 2.48 = 10.48 → 10; 32·10 → 10.56 → 11.
        assert_eq!(batch_size(&c, 10, 31), 10);
        assert_eq!(batch_size(&c, 10, 32), 11);
        // tokens = 1·... = 0 → start; >= warm → end.
        assert_eq!(batch_size(&c, 10, 0), 8);
        assert_eq!(batch_size(&c, 10, 100), 16);
        // Half rounds up: tokens = 1 of 16 with (end − start) = 8 → 8 + 0.5 = 8.5 → 9.
        assert_eq!(batch_size(&cfg(8, 16, 16), 1, 1), 9);
        // Saturation does not overflow.
        assert_eq!(batch_size(&c, u64::MAX, u64::MAX), 16);
        assert_eq!(batch_size(&cfg(4, 4, 0), 7, 0), 4);
    }

    #[test]
    fn lr_by_hand() {
        // Tolerance 1e-15 absolute on values of order 1e-3 or less.
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-15;
        let c = LrSchedule::Constant { base_lr: 1e-3, warmup_init_lr: 0.0, warmup_steps: 10 };
        assert!(close(lr_at(&c, 5).unwrap(), 5e-4)); // 0 + 1e-3 · 5/10
        assert_eq!(lr_at(&c, 10).unwrap(), 1e-3);
        assert_eq!(lr_at(&c, 0).unwrap_err().code, ErrorCode::InvalidArgument);
        let l = LrSchedule::Linear {
            base_lr: 1e-3,
            warmup_init_lr: 0.0,
            warmup_steps: 10,
            total_steps: 110,
            final_lr: 0.0,
        };
        assert!(close(lr_at(&l, 60).unwrap(), 5e-4)); // p = 50/100
        assert_eq!(lr_at(&l, 1000).unwrap(), 0.0); // p capped at 1
        let co = LrSchedule::Cosine {
            base_lr: 1e-3,
            warmup_init_lr: 0.0,
            warmup_steps: 0,
            total_steps: 100,
            final_lr: 1e-4,
        };
        // p = 0.5 → cos(π/2) = 0 → 1e-4 + 9e-4 · 0.5 = 5.5e-4.
        assert!(close(lr_at(&co, 50).unwrap(), 5.5e-4));
        assert!(close(lr_at(&co, 100).unwrap(), 1e-4));
        let w = LrSchedule::Wsd {
            base_lr: 1.0,
            warmup_init_lr: 0.0,
            warmup_steps: 2,
            stable_steps: 3,
            cosine_decay_steps: 4,
            cosine_decay_final_lr: 0.5,
            linear_decay_steps: 2,
            linear_decay_final_lr: 0.1,
        };
        assert_eq!(lr_at(&w, 1).unwrap(), 0.5); // warmup 1/2
        assert_eq!(lr_at(&w, 4).unwrap(), 1.0); // after = 2 < 3 stable
        assert!(close(lr_at(&w, 7).unwrap(), 0.75)); // c = 2 of 4 → cos(π/2) = 0 → 0.5 + 0.5·0.5
        assert!(close(lr_at(&w, 10).unwrap(), 0.3)); // l = 1 of 2 → 0.5 + (0.1 − 0.5)·0.5
        assert_eq!(lr_at(&w, 11).unwrap(), 0.1);
    }
}
