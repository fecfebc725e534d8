/**
 * DistroOptimizer in your own loop: 4 simulated workers train the same small MLP with DeMo/DisTrO, exchanging only
 * compressed bytes, next to Adam trained on the same global batches. Prints both loss curves, the bytes each worker
 * sent, and checks that the 4 replicas stay bitwise identical.
 *
 * Run from the repository root: `pnpm example:distro`.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import {
  DistroOptimizer,
  type DistroResult,
  decodeDistroResult,
  encodeDistroResult,
} from '@psyche/distro-optimizer';

const WORKERS = 4;
const STEPS = 200;
const BATCH = 32; // per worker; Adam sees the union, 4 × 32 = 128 samples per step
const IN = 20;
const HIDDEN = 128;
const CLASSES = 5;
const LOG_EVERY = 20;

/** Deterministic PRNG (mulberry32) so every run prints the same numbers. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function normal(n: number, r: () => number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++)
    out[i] = scale * Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r());
  return out;
}

/** A synthetic task: labels from a random teacher network, so there is something non-trivial to learn. */
function makeData(samples: number, seed: number): { x: tf.Tensor2D; y: tf.Tensor2D } {
  const teacher = rng(1234);
  const tw1 = tf.tensor2d(normal(IN * 32, teacher, 0.5), [IN, 32]);
  const tw2 = tf.tensor2d(normal(32 * CLASSES, teacher, 0.5), [32, CLASSES]);
  const x = tf.tensor2d(normal(samples * IN, rng(seed)), [samples, IN]);
  const y = tf.tidy(() =>
    tf.cast(tf.oneHot(tf.argMax(tf.matMul(tf.tanh(tf.matMul(x, tw1)), tw2), 1), CLASSES), 'float32'),
  );
  tw1.dispose();
  tw2.dispose();
  return { x, y: y as tf.Tensor2D };
}

type Params = { w1: tf.Variable; b1: tf.Variable; w2: tf.Variable; b2: tf.Variable };

function initParams(): Params {
  const r = rng(42);
  const make = (data: Float32Array, shape: number[]) => {
    const t = tf.tensor(data, shape);
    const v = tf.variable(t);
    t.dispose();
    return v;
  };
  return {
    w1: make(normal(IN * HIDDEN, r, Math.sqrt(2 / IN)), [IN, HIDDEN]),
    b1: make(new Float32Array(HIDDEN), [HIDDEN]),
    w2: make(normal(HIDDEN * CLASSES, r, Math.sqrt(1 / HIDDEN)), [HIDDEN, CLASSES]),
    b2: make(new Float32Array(CLASSES), [CLASSES]),
  };
}

/**
 * Loss and gradients of a 2-layer MLP with softmax cross-entropy, by hand (your loop would use tf.variableGrads or
 * its framework's autodiff; hand-written backprop keeps this example to tfjs-core alone). Caller owns the tensors.
 */
function lossAndGrads(
  p: Params,
  x: tf.Tensor2D,
  y: tf.Tensor2D,
): { loss: number; grads: Record<keyof Params, tf.Tensor> } {
  const out = tf.tidy(() => {
    const pre = tf.add(tf.matMul(x, p.w1), p.b1);
    const h = tf.relu(pre);
    const logits = tf.add(tf.matMul(h, p.w2), p.b2);
    const logp = tf.logSoftmax(logits);
    const loss = tf.neg(tf.mean(tf.sum(tf.mul(y, logp), 1)));
    const dlogits = tf.div(tf.sub(tf.exp(logp), y), x.shape[0]);
    const dh = tf.mul(tf.matMul(dlogits, p.w2, false, true), tf.step(pre));
    return {
      loss,
      w1: tf.matMul(x, dh, true, false),
      b1: tf.sum(dh, 0),
      w2: tf.matMul(h, dlogits, true, false),
      b2: tf.sum(dlogits, 0),
    };
  });
  const loss = out.loss.dataSync()[0]!;
  out.loss.dispose();
  return { loss, grads: { w1: out.w1, b1: out.b1, w2: out.w2, b2: out.b2 } };
}

function evalLoss(p: Params, x: tf.Tensor2D, y: tf.Tensor2D): { loss: number; acc: number } {
  return tf.tidy(() => {
    const logits = tf.add(tf.matMul(tf.relu(tf.add(tf.matMul(x, p.w1), p.b1)), p.w2), p.b2);
    const loss = tf.neg(tf.mean(tf.sum(tf.mul(y, tf.logSoftmax(logits)), 1))).dataSync()[0]!;
    const acc = tf.mean(tf.cast(tf.equal(tf.argMax(logits, 1), tf.argMax(y, 1)), 'float32')).dataSync()[0]!;
    return { loss, acc };
  });
}

async function main(): Promise<void> {
  // wasm (SIMD) is ~20x faster than the pure-JS cpu backend; fall back to cpu where wasm cannot start.
  if (!(await tf.setBackend('wasm'))) await tf.setBackend('cpu');
  await tf.ready();
  const backend = tf.getBackend();
  const train = makeData(WORKERS * BATCH * STEPS, 1);
  const test = makeData(2048, 2);

  // --- DisTrO: each worker has its own replica and optimizer; they only exchange bytes. ---
  const config = {
    lr: 0.004,
    compressionDecay: 0.999,
    compressionTopk: 16,
    compressionChunk: 32,
    quantize1bit: false,
  };
  const replicas = Array.from({ length: WORKERS }, initParams);
  const opts = replicas.map(() => new DistroOptimizer(config));
  // --- Baseline: Adam on the same global batch (dense gradients, as an all-reduce would give). ---
  const adamParams = initParams();
  const adam = tf.train.adam(0.003);

  const nParams = Object.values(adamParams).reduce((a, v) => a + v.size, 0);
  console.log(
    `backend ${backend}; model ${IN}→${HIDDEN}→${CLASSES} MLP, ${nParams} parameters; ${WORKERS} workers`,
  );
  console.log(
    `DistroOptimizer ${JSON.stringify(config)} vs Adam(lr 0.003) on the same ${WORKERS * BATCH}-sample batches\n`,
  );
  console.log('step | DisTrO train | DisTrO test (acc) | Adam train | Adam test (acc) | bytes/worker/step');
  console.log('-----|--------------|-------------------|------------|-----------------|------------------');

  let bytesPerWorker = 0;
  let totalBytes = 0;
  for (let step = 1; step <= STEPS; step++) {
    const batches = replicas.map((_, w) => {
      const start = ((step - 1) * WORKERS + w) * BATCH;
      return {
        x: tf.slice(train.x, [start, 0], [BATCH, IN]),
        y: tf.slice(train.y, [start, 0], [BATCH, CLASSES]),
      };
    });
    // Each worker: local gradients → compress → bytes on the "wire".
    let distroLoss = 0;
    const wire: Uint8Array[] = replicas.map((p, w) => {
      const { loss, grads } = lossAndGrads(p, batches[w]!.x, batches[w]!.y);
      distroLoss += loss / WORKERS;
      const mine: DistroResult = opts[w]!.compress(p, grads);
      tf.dispose(Object.values(grads));
      return encodeDistroResult(mine);
    });
    bytesPerWorker = wire[0]!.length;
    totalBytes += wire.reduce((a, b) => a + b.length, 0) / WORKERS;
    // Each worker: decode (validated against its own model) and apply everyone's results.
    replicas.forEach((p, w) => {
      const expected = opts[w]!.layoutOf(p);
      const all = wire.map((bytes) => decodeDistroResult(bytes, { expected }));
      opts[w]!.apply(p, all);
    });
    // Adam on the union of the 4 batches.
    const gx = tf.concat(batches.map((b) => b.x));
    const gy = tf.concat(batches.map((b) => b.y));
    const { loss: adamLoss, grads } = lossAndGrads(adamParams, gx as tf.Tensor2D, gy as tf.Tensor2D);
    adam.applyGradients(
      (Object.keys(grads) as (keyof Params)[]).map((k) => ({ name: adamParams[k].name, tensor: grads[k] })),
    );
    tf.dispose([...Object.values(grads), gx, gy, ...batches.flatMap((b) => [b.x, b.y])]);

    if (step % LOG_EVERY === 0 || step === 1) {
      const d = evalLoss(replicas[0]!, test.x, test.y);
      const a = evalLoss(adamParams, test.x, test.y);
      console.log(
        `${String(step).padStart(4)} | ${distroLoss.toFixed(4).padStart(12)} | ${d.loss.toFixed(4)} (${(100 * d.acc).toFixed(1)}%)`.padEnd(
          40,
        ) +
          `| ${adamLoss.toFixed(4).padStart(10)} | ${a.loss.toFixed(4)} (${(100 * a.acc).toFixed(1)}%)`.padEnd(
            31,
          ) +
          `| ${bytesPerWorker}`,
      );
    }
  }

  const dense = 4 * nParams;
  console.log(
    `\nbytes each worker sent per step: ${bytesPerWorker} B (dense fp32 gradient: ${dense} B, ${(dense / bytesPerWorker).toFixed(1)}x smaller);` +
      ` ${(totalBytes / 1024).toFixed(1)} KiB per worker over ${STEPS} steps`,
  );
  const ref = Object.values(replicas[0]!).map((v) => v.dataSync());
  const identical = replicas.every((p) =>
    Object.values(p).every((v, i) => {
      const a = new Uint8Array(v.dataSync().buffer);
      const b = new Uint8Array(ref[i]!.buffer);
      return a.length === b.length && a.every((x, j) => x === b[j]);
    }),
  );
  console.log(`replicas bitwise identical after ${STEPS} steps: ${identical ? 'yes' : 'NO'}`);
  for (const o of opts) o.dispose();
  adam.dispose();
  if (!identical) process.exitCode = 1;
}

await main();
