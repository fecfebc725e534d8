import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isMlaError, kvCacheFootprint, type MlaErrorCode, MlaModel, parameterShapes } from '../src/index.js';
import { BACKENDS, maxAbsDiff, tinyConfig, useBackend } from './helpers.js';
import { referenceForward } from './reference.js';

function errorCode(fn: () => unknown): MlaErrorCode {
  try {
    fn();
  } catch (e) {
    if (isMlaError(e)) return e.code;
    throw e;
  }
  throw new Error('did not throw');
}

async function asyncErrorCode(fn: () => Promise<unknown>): Promise<MlaErrorCode> {
  try {
    await fn();
  } catch (e) {
    if (isMlaError(e)) return e.code;
    throw e;
  }
  throw new Error('did not throw');
}

describe('deterministic init', () => {
  it('is bit-identical across backends for the same seed, different for another seed', async () => {
    await useBackend('cpu');
    const a = MlaModel.create(tinyConfig(), { seed: 42 });
    const wa = await a.readWeights();
    await useBackend('wasm');
    const b = MlaModel.create(tinyConfig(), { seed: 42 });
    const c = MlaModel.create(tinyConfig(), { seed: 43 });
    const wb = await b.readWeights();
    const wc = await c.readWeights();
    for (const [name, v] of wa) {
      expect(maxAbsDiff(v, wb.get(name)!)).toBe(0);
      if (!name.endsWith('norm.weight')) expect(maxAbsDiff(v, wc.get(name)!)).toBeGreaterThan(0);
    }
    // norms start at 1; linear weights have std ≈ initializer_range (0.02): 512 samples → ±15 % is > 3σ
    expect([...wa.get('model.norm.weight')!]).toEqual(new Array(16).fill(1));
    const e = wa.get('model.embed_tokens.weight')!;
    const std = Math.sqrt(e.reduce((s, x) => s + x * x, 0) / e.length);
    expect(std).toBeGreaterThan(0.017);
    expect(std).toBeLessThan(0.023);
    for (const m of [a, b, c]) m.dispose();
    expect(a.parameterNames()).toEqual([]);
  });
});

describe.each(BACKENDS)('MlaModel on %s', (backend) => {
  // initializer_range 0.3 gives O(1) activations so numeric comparisons are meaningful
  const config = tinyConfig({ initializer_range: 0.3 });
  let model: MlaModel;
  beforeAll(async () => {
    await useBackend(backend);
    model = MlaModel.create(config, { seed: 7 });
  });
  afterAll(() => model.dispose());

  it('forward matches an independent float64 re-statement of the HF equations', async () => {
    const tokens = [3, 17, 0, 31, 9, 9, 22];
    const logits = model.forward([tokens]);
    expect(logits.shape).toEqual([1, 7, 32]);
    const ref = referenceForward(config, await model.readWeights(), tokens);
    // float32 vs float64 over 2 layers with O(1)-scale logits: tolerance 1e-4 absolute
    expect(maxAbsDiff(logits.dataSync(), ref.flat())).toBeLessThan(1e-4);
    expect(Math.max(...ref.flat().map(Math.abs))).toBeGreaterThan(0.5); // logits are not trivially ~0
    logits.dispose();
  });

  it('matches the reference without the query low-rank path and with tied embeddings', async () => {
    const cfg = tinyConfig({ initializer_range: 0.3, q_lora_rank: null, tie_word_embeddings: true });
    const m = MlaModel.create(cfg, { seed: 3 });
    expect(m.parameterNames()).not.toContain('lm_head.weight');
    const tokens = [1, 2, 3, 4, 30];
    const logits = m.forward([tokens]);
    expect(
      maxAbsDiff(logits.dataSync(), referenceForward(cfg, await m.readWeights(), tokens).flat()),
    ).toBeLessThan(1e-4);
    logits.dispose();
    m.dispose();
  });

  it('is causal: changing token t never changes logits before t, and batch rows are independent', () => {
    const a = [
      [5, 1, 4, 1, 5, 9, 2, 6],
      [2, 7, 1, 8, 2, 8, 1, 8],
    ];
    const b = [[5, 1, 4, 1, 5, 20, 2, 6], a[1]!];
    const la = model.forward(a);
    const lb = model.forward(b);
    const [va, vb] = [la.arraySync(), lb.arraySync()];
    for (let t = 0; t < 8; t++) {
      const d = maxAbsDiff(va[0]![t]!, vb[0]![t]!);
      if (t < 5)
        expect(d).toBe(0); // masked scores underflow to exactly 0 weight: bit-identical
      else expect(d).toBeGreaterThan(1e-3);
      expect(maxAbsDiff(va[1]![t]!, vb[1]![t]!)).toBe(0);
    }
    tf.dispose([la, lb]);
  });

  it('loss is the mean next-token cross-entropy of the logits', () => {
    const tokens = [
      [1, 2, 3, 4],
      [4, 3, 2, 1],
    ];
    const logits = model.forward(tokens).arraySync();
    let nll = 0;
    for (let b = 0; b < 2; b++) {
      for (let t = 0; t < 3; t++) {
        const row = logits[b]![t]!;
        const m = Math.max(...row);
        const lse = m + Math.log(row.reduce((s, x) => s + Math.exp(x - m), 0));
        nll += lse - row[tokens[b]![t + 1]!]!;
      }
    }
    const loss = model.loss(tokens);
    expect(loss.dataSync()[0]!).toBeCloseTo(nll / 6, 5);
    loss.dispose();
  });

  it('KV-cache (latent, absorbed) generation equals full recomputation', async () => {
    const prompts = [
      [1, 2, 3],
      [9, 8, 7],
    ];
    const cached = await model.generate(prompts, { maxNewTokens: 10, returnLogits: true });
    const full = await model.generate(prompts, { maxNewTokens: 10, returnLogits: true, useCache: false });
    expect(cached.tokens).toEqual(full.tokens);
    expect(cached.tokens[0]).toHaveLength(10);
    for (let s = 0; s < 10; s++) {
      // same math in a different association order (latent space vs expanded heads): float32 tolerance 1e-4
      expect(maxAbsDiff(cached.stepLogits![s]!, full.stepLogits![s]!)).toBeLessThan(1e-4);
    }
    // cache holds tokens 0 … 3+10−2 (the last generated token is never fed back): 12 tokens · 2 rows ·
    // L · (kv_lora_rank + qk_rope_head_dim) floats · 4 bytes
    expect(cached.cacheBytes).toBe(12 * 2 * kvCacheFootprint(config).mlaBytesPerToken);
    expect(full.cacheBytes).toBe(0);
    // sampling is seeded and identical on both paths
    const s1 = await model.generate(prompts, { maxNewTokens: 6, temperature: 1.5, seed: 9 });
    const s2 = await model.generate(prompts, { maxNewTokens: 6, temperature: 1.5, seed: 9, useCache: false });
    expect(s1.tokens).toEqual(s2.tokens);
  });

  it('concurrent generate calls do not interfere (each has its own cache and prepared weights)', async () => {
    const start = tf.memory().numTensors;
    const a = await model.generate([[4, 5]], { maxNewTokens: 6 });
    const b = await model.generate([[20, 1, 7]], { maxNewTokens: 4 });
    const [a2, b2] = await Promise.all([
      model.generate([[4, 5]], { maxNewTokens: 6 }),
      model.generate([[20, 1, 7]], { maxNewTokens: 4 }),
    ]);
    expect(a2.tokens).toEqual(a.tokens);
    expect(b2.tokens).toEqual(b.tokens);
    expect(tf.memory().numTensors).toBe(start);
  });

  it('computeGradients yields named gradients in parameter order with variable shapes', () => {
    const { loss, grads } = model.computeGradients([[3, 1, 4, 1, 5]]);
    expect(Number.isFinite(loss)).toBe(true);
    expect(Object.keys(grads)).toEqual(model.parameterNames());
    expect(model.parameterNames()).toEqual(parameterShapes(config).map(([n]) => n));
    const vars = model.namedVariables();
    for (const [name, g] of Object.entries(grads)) {
      expect(g.shape).toEqual(vars[name]!.shape);
      expect(tf.sum(tf.abs(g)).dataSync()[0]!).toBeGreaterThan(0);
    }
    tf.dispose(Object.values(grads));
  });

  it('overfits one batch (loss < 0.1) with Adam', () => {
    const m = MlaModel.create(tinyConfig(), { seed: 11 });
    const batch = [
      [1, 5, 9, 13, 17, 21, 25, 29],
      [30, 26, 22, 18, 14, 10, 6, 2],
    ];
    const opt = tf.train.adam(0.02);
    const first = m.trainStep(batch, opt);
    let loss = first;
    for (let i = 0; i < 200 && loss >= 0.05; i++) loss = m.trainStep(batch, opt);
    const final = m.loss(batch);
    expect(first).toBeGreaterThan(3); // ≈ ln 32 = 3.47 at init
    expect(final.dataSync()[0]!).toBeLessThan(0.1);
    final.dispose();
    opt.dispose();
    m.dispose();
  });

  it('leaks no tensors in forward, loss, gradients, trainStep, generate and dispose', async () => {
    const batch = [[1, 2, 3, 4, 5]];
    const start = tf.memory().numTensors;
    tf.dispose([model.forward(batch), model.loss(batch)]);
    tf.dispose(Object.values(model.computeGradients(batch).grads));
    await model.generate(batch, { maxNewTokens: 3 });
    await model.generate(batch, { maxNewTokens: 3, useCache: false });
    expect(tf.memory().numTensors).toBe(start);
    const m = MlaModel.create(tinyConfig(), { seed: 1 });
    const opt = tf.train.sgd(0.1);
    m.trainStep(batch, opt);
    const afterFirst = tf.memory().numTensors;
    m.trainStep(batch, opt);
    expect(tf.memory().numTensors).toBe(afterFirst);
    m.dispose();
    opt.dispose();
    expect(tf.memory().numTensors).toBe(start);
  });

  it('rejects bad input with a typed error, leaks nothing and keeps working', async () => {
    const start = tf.memory().numTensors;
    const before = model.loss([[1, 2, 3]]);
    const v0 = before.dataSync()[0]!;
    before.dispose();
    expect(errorCode(() => model.forward([]))).toBe('INVALID_ARGUMENT');
    expect(errorCode(() => model.forward([[1, 2], [3]]))).toBe('INVALID_ARGUMENT');
    expect(errorCode(() => model.forward([[1, 32]]))).toBe('INVALID_ARGUMENT');
    expect(errorCode(() => model.forward([[1, -1]]))).toBe('INVALID_ARGUMENT');
    expect(errorCode(() => model.forward([[1, 1.5]]))).toBe('INVALID_ARGUMENT');
    expect(errorCode(() => model.forward([new Array(65).fill(1)]))).toBe('SEQUENCE_TOO_LONG');
    expect(errorCode(() => model.loss([[1]]))).toBe('INVALID_ARGUMENT');
    const floatIds = tf.tensor2d([[1, 2]]);
    const badIds = tf.tensor2d([[1, 99]], undefined, 'int32');
    expect(errorCode(() => model.forward(floatIds))).toBe('INVALID_ARGUMENT');
    expect(errorCode(() => model.computeGradients(badIds))).toBe('INVALID_ARGUMENT');
    tf.dispose([floatIds, badIds]);
    expect(await asyncErrorCode(() => model.generate([[1]], { maxNewTokens: -1 }))).toBe('INVALID_ARGUMENT');
    expect(
      await asyncErrorCode(() => model.generate([[1]], { maxNewTokens: 2, temperature: Number.NaN })),
    ).toBe('INVALID_ARGUMENT');
    expect(await asyncErrorCode(() => model.generate([[1, 2]], { maxNewTokens: 63 }))).toBe(
      'SEQUENCE_TOO_LONG',
    );
    expect(errorCode(() => model.setWeights(new Map([['nope', new Float32Array(1)]])))).toBe(
      'UNEXPECTED_TENSOR',
    );
    expect(errorCode(() => model.setWeights(new Map([['model.norm.weight', new Float32Array(3)]])))).toBe(
      'SHAPE_MISMATCH',
    );
    expect(tf.memory().numTensors).toBe(start);
    // every rejection above is counted by code: 5 bad forward batches + short loss batch + 2 bad tensors +
    // 2 bad generate options = 10 INVALID_ARGUMENT; 1 long forward + 1 long generate = 2 SEQUENCE_TOO_LONG
    expect(model.rejectionCounts()).toEqual({
      INVALID_ARGUMENT: 10,
      SEQUENCE_TOO_LONG: 2,
      UNEXPECTED_TENSOR: 1,
      SHAPE_MISMATCH: 1,
    });
    const after = model.loss([[1, 2, 3]]);
    expect(after.dataSync()[0]).toBe(v0);
    after.dispose();
    const dead = MlaModel.create(tinyConfig());
    dead.dispose();
    expect(errorCode(() => dead.forward([[1]]))).toBe('DISPOSED');
    expect(errorCode(() => MlaModel.create(tinyConfig(), { seed: 0.5 }))).toBe('INVALID_ARGUMENT');
  });

  it('setWeights assigns in place without leaking; readWeights round-trips', async () => {
    const m = MlaModel.create(tinyConfig(), { seed: 2 });
    const other = MlaModel.create(tinyConfig(), { seed: 3 });
    const target = await other.readWeights();
    const start = tf.memory().numTensors;
    m.setWeights(target);
    expect(tf.memory().numTensors).toBe(start);
    const got = await m.readWeights();
    for (const [name, v] of target) expect(maxAbsDiff(got.get(name)!, v)).toBe(0);
    const [a, b] = [m.forward([[1, 2, 3]]), other.forward([[1, 2, 3]])];
    expect(maxAbsDiff(a.dataSync(), b.dataSync())).toBe(0);
    tf.dispose([a, b]);
    m.dispose();
    other.dispose();
  });

  it('accepts an int32 tensor batch equal to the array form', () => {
    const ids = tf.tensor2d([[4, 8, 15, 16]], undefined, 'int32');
    const a = model.forward(ids);
    const b = model.forward([[4, 8, 15, 16]]);
    expect(maxAbsDiff(a.dataSync(), b.dataSync())).toBe(0);
    expect(ids.isDisposed).toBe(false);
    tf.dispose([ids, a, b]);
  });
});
