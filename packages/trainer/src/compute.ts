import { createHash } from 'node:crypto';
import type { DistroOptimizer, DistroResult } from '@psyche/distro-optimizer';
import type { MlaModel } from '@psyche/model-mla';
import * as tf from '@tensorflow/tfjs-core';
import { TrainerError } from './errors.js';

/** Outcome of {@link trainOnBatch}. */
export interface BatchTrainResult {
  /** Mean next-token loss over the batch (nats), before the update. */
  loss: number;
  /** Global L2 norm of the accumulated gradient before clipping. */
  gradNorm: number;
  /** The DisTrO result to share (the optimizer's momentum has been updated). */
  result: DistroResult;
  /** Tokens trained on (`rows · (width − 1)` predictions). */
  tokens: number;
}

/**
 * Forward/backward over `tokens` (`rows × width` int32, row-major) in micro-batches of `microBatchSize` rows,
 * averages the gradients (each micro-batch weighted by its rows), clips the global L2 norm to `clipGradNorm`
 * (0 = no clipping) and DisTrO-compresses the result. Leaves no tensors behind.
 *
 * @throws {TrainerError} `INVALID_OPTION` naming `tokens`, `width` or `microBatchSize`.
 */
export function trainOnBatch(
  model: MlaModel,
  optimizer: DistroOptimizer,
  tokens: Int32Array,
  width: number,
  microBatchSize: number,
  clipGradNorm: number,
): BatchTrainResult {
  if (!Number.isSafeInteger(width) || width < 2) {
    throw new TrainerError('INVALID_OPTION', `width must be an integer >= 2, got ${width}`, {
      field: 'width',
    });
  }
  if (tokens.length === 0 || tokens.length % width !== 0) {
    throw new TrainerError(
      'INVALID_OPTION',
      `tokens length ${tokens.length} is not a positive multiple of ${width}`,
      {
        field: 'tokens',
      },
    );
  }
  if (!Number.isSafeInteger(microBatchSize) || microBatchSize < 1) {
    throw new TrainerError(
      'INVALID_OPTION',
      `microBatchSize must be a positive integer, got ${microBatchSize}`,
      {
        field: 'microBatchSize',
      },
    );
  }
  if (!(clipGradNorm >= 0) || !Number.isFinite(clipGradNorm)) {
    throw new TrainerError(
      'INVALID_OPTION',
      `clipGradNorm must be a finite number >= 0, got ${clipGradNorm}`,
      {
        field: 'clipGradNorm',
      },
    );
  }
  const rows = tokens.length / width;
  const names = model.parameterNames();
  const acc = new Map<string, tf.Tensor>();
  let lossSum = 0;
  try {
    for (let r0 = 0; r0 < rows; r0 += microBatchSize) {
      const n = Math.min(microBatchSize, rows - r0);
      const ids = tf.tensor2d(tokens.subarray(r0 * width, (r0 + n) * width), [n, width], 'int32');
      let grads: Record<string, tf.Tensor>;
      try {
        const out = model.computeGradients(ids as tf.Tensor2D);
        lossSum += out.loss * n;
        grads = out.grads;
      } finally {
        ids.dispose();
      }
      for (const name of names) {
        const g = grads[name]!;
        const prev = acc.get(name);
        const weighted = tf.tidy(() => tf.mul(g, tf.scalar(n / rows)));
        g.dispose();
        if (prev === undefined) acc.set(name, weighted);
        else {
          acc.set(name, tf.add(prev, weighted));
          prev.dispose();
          weighted.dispose();
        }
      }
    }
    // Global-norm clipping: g *= min(1, clip / ||g||).
    const sq = tf.tidy(() => tf.addN(names.map((name) => tf.sum(tf.square(acc.get(name)!)))));
    const gradNorm = Math.sqrt(sq.dataSync()[0]!);
    sq.dispose();
    if (clipGradNorm > 0 && gradNorm > clipGradNorm) {
      const scale = clipGradNorm / gradNorm;
      for (const name of names) {
        const g = acc.get(name)!;
        acc.set(
          name,
          tf.tidy(() => tf.mul(g, tf.scalar(scale))),
        );
        g.dispose();
      }
    }
    const grads: Record<string, tf.Tensor> = {};
    for (const name of names) grads[name] = acc.get(name)!;
    const result = optimizer.compress(model.namedVariables(), grads);
    return { loss: lossSum / rows, gradNorm, result, tokens: rows * (width - 1) };
  } finally {
    for (const t of acc.values()) t.dispose();
  }
}

/**
 * SHA-256 over every parameter's float32 bytes in `model.parameterNames()` order: equal hashes mean
 * bitwise-identical parameters.
 */
export async function parameterHash(model: MlaModel): Promise<string> {
  const h = createHash('sha256');
  for (const [name, data] of await model.readWeights()) {
    h.update(name);
    h.update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }
  return h.digest('hex');
}
