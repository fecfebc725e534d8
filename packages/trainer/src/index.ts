/**
 * `@psyche/trainer`: a Psyche node's round loop ({@link TrainerNode}) — train assigned batches with micro-batches
 * and gradient clipping, DisTrO-compress, announce and serve results over `@psyche/p2p-transport`, witness peers'
 * results with bloom filters, report unhealthy peers, apply witnessed results deterministically, share parameters
 * with late joiners at warmup and checkpoint to safetensors at cooldown.
 *
 * @packageDocumentation
 */
export { setupBackend } from './backend.js';
export { type BatchTrainResult, parameterHash, trainOnBatch } from './compute.js';
export { isTrainerError, TrainerError, type TrainerErrorCode } from './errors.js';
export {
  PARAMS_BATCH_ID,
  type TrainerDistroOptions,
  type TrainerEvent,
  TrainerNode,
  type TrainerNodeOptions,
  type TrainerStats,
} from './node.js';
