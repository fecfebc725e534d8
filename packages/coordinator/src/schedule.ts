import { CoordinatorError } from './errors.js';
import type { CoordinatorConfig, LrSchedule } from './types.js';

const U64_MAX = (1n << 64n) - 1n;

/**
 * Global batch size (sequences) of a round starting at `dataIndex` (docs/coordinator.md §9.5):
 * `tokens = dataIndex · maxSeqLen` (u64, saturating); `end` once `tokens >= globalBatchSizeWarmupTokens`, else
 * `round(start + (end − start) · tokens / warmupTokens)`.
 */
export function batchSize(
  config: Pick<
    CoordinatorConfig,
    'globalBatchSizeStart' | 'globalBatchSizeEnd' | 'globalBatchSizeWarmupTokens'
  >,
  maxSeqLen: number,
  dataIndex: number,
): number {
  let tokens = BigInt(dataIndex) * BigInt(maxSeqLen);
  if (tokens > U64_MAX) tokens = U64_MAX;
  const warm = BigInt(config.globalBatchSizeWarmupTokens);
  if (tokens >= warm) return config.globalBatchSizeEnd;
  const start = config.globalBatchSizeStart;
  const end = config.globalBatchSizeEnd;
  return Math.round(start + (end - start) * (Number(tokens) / Number(warm)));
}

/**
 * Learning rate at `step` (>= 1) for a schedule (docs/coordinator.md §9.6), in f64.
 *
 * @throws {CoordinatorError} `InvalidArgument` when `step` is not a positive integer.
 */
export function lrAt(schedule: LrSchedule, step: number): number {
  if (!Number.isSafeInteger(step) || step < 1) {
    throw new CoordinatorError('InvalidArgument', `step must be a positive integer, got ${step}`, {
      field: 'step',
    });
  }
  const s = schedule;
  if (step < s.warmupSteps) return s.warmupInitLr + (s.baseLr - s.warmupInitLr) * (step / s.warmupSteps);
  switch (s.type) {
    case 'constant':
      return s.baseLr;
    case 'linear': {
      const p = Math.min(1, (step - s.warmupSteps) / (s.totalSteps - s.warmupSteps));
      return s.baseLr + (s.finalLr - s.baseLr) * p;
    }
    case 'cosine': {
      const p = Math.min(1, (step - s.warmupSteps) / (s.totalSteps - s.warmupSteps));
      return s.finalLr + (s.baseLr - s.finalLr) * 0.5 * (1 + Math.cos(Math.PI * p));
    }
    case 'wsd': {
      const after = step - s.warmupSteps;
      if (after < s.stableSteps) return s.baseLr;
      const c = after - s.stableSteps;
      if (c < s.cosineDecaySteps) {
        return (
          s.cosineDecayFinalLr +
          (s.baseLr - s.cosineDecayFinalLr) * 0.5 * (1 + Math.cos((Math.PI * c) / s.cosineDecaySteps))
        );
      }
      const l = c - s.cosineDecaySteps;
      if (l < s.linearDecaySteps) {
        return (
          s.cosineDecayFinalLr + (s.linearDecayFinalLr - s.cosineDecayFinalLr) * (l / s.linearDecaySteps)
        );
      }
      return s.linearDecayFinalLr;
    }
  }
}
