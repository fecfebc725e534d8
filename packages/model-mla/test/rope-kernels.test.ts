import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { applyRope, registerWasmKernels, ropeTables } from '../src/index.js';
import { BACKENDS, maxAbsDiff, useBackend } from './helpers.js';

describe.each(BACKENDS)('RoPE on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  it('matches a hand-computed rotation (HF DeepSeek-V2 interleaved → rotate-half layout)', () => {
    // dim 4, θ = 10000 → inverse frequencies [θ^0, θ^(−2/4)] = [1, 0.01]; position 2 → angles [2, 0.02].
    // x = [1, 2, 3, 4]: pairs (x0,x1) = (1,2) rotate by 2 rad, (x2,x3) = (3,4) rotate by 0.02 rad.
    // out = [x0·cos2 − x1·sin2, x2·cos.02 − x3·sin.02, x1·cos2 + x0·sin2, x3·cos.02 + x2·sin.02]
    const expected = [
      Math.cos(2) - 2 * Math.sin(2),
      3 * Math.cos(0.02) - 4 * Math.sin(0.02),
      2 * Math.cos(2) + Math.sin(2),
      4 * Math.cos(0.02) + 3 * Math.sin(0.02),
    ];
    const before = tf.memory().numTensors;
    const [cos, sin] = ropeTables(2, 1, 4, 10000);
    const x = tf.tensor4d([1, 2, 3, 4], [1, 1, 1, 4]);
    const y = applyRope(x, cos, sin);
    // float32 ops on O(1) values: tolerance 1e-6
    expect(maxAbsDiff(y.dataSync(), expected)).toBeLessThan(1e-6);
    tf.dispose([cos, sin, x, y]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('preserves norms and makes q·k depend only on the position difference', () => {
    const dim = 8;
    const q = tf.tensor4d([0.3, -1.2, 0.5, 2, -0.7, 0.1, 1.1, -0.4], [1, 1, 1, dim]);
    const k = tf.tensor4d([1.5, 0.2, -0.3, 0.8, 0.6, -1.4, 0.9, 0.05], [1, 1, 1, dim]);
    const dot = (pq: number, pk: number) =>
      tf.tidy(() => {
        const [cq, sq] = ropeTables(pq, 1, dim, 10000);
        const [ck, sk] = ropeTables(pk, 1, dim, 10000);
        const rq = applyRope(q, cq, sq);
        const rk = applyRope(k, ck, sk);
        return [tf.sum(tf.mul(rq, rk)).dataSync()[0]!, tf.sum(tf.square(rq)).dataSync()[0]!] as const;
      });
    const [d1, n1] = dot(3, 1);
    const [d2] = dot(13, 11);
    const [d3] = dot(4, 1);
    // |q|² = 0.09+1.44+0.25+4+0.49+0.01+1.21+0.16 = 7.65; float32 tolerance 1e-5
    expect(n1).toBeCloseTo(7.65, 5);
    expect(Math.abs(d1 - d2)).toBeLessThan(1e-5);
    expect(Math.abs(d1 - d3)).toBeGreaterThan(1e-3); // a different offset really changes the score
    tf.dispose([q, k]);
  });
});

describe('wasm UnsortedSegmentSum kernel', () => {
  beforeAll(() => useBackend('wasm'));

  it('is registered once (idempotent)', () => {
    expect(registerWasmKernels()).toEqual([]);
    expect(tf.getKernel('UnsortedSegmentSum', 'wasm')).toBeDefined();
  });

  it('matches hand-computed sums and drops out-of-range ids', () => {
    // rows: r0=[1,2], r1=[3,4], r2=[5,6], r3=[7,8], r4=[9,10]; ids [0, 2, 2, -1, 3], numSegments 3
    // seg0 = r0 = [1,2]; seg1 = nothing = [0,0]; seg2 = r1+r2 = [8,10]; r3 (id −1) and r4 (id 3 ≥ 3) dropped
    const x = tf.tensor2d([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [5, 2]);
    const ids = tf.tensor1d([0, 2, 2, -1, 3], 'int32');
    const before = tf.memory().numTensors;
    const y = tf.unsortedSegmentSum(x, ids, 3);
    expect(y.shape).toEqual([3, 2]);
    expect([...y.dataSync()]).toEqual([1, 2, 0, 0, 8, 10]);
    y.dispose();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, ids]);
  });

  it('agrees with the cpu kernel on random float and int data, 2-D and 3-D inputs', async () => {
    const cases: Array<{ xShape: number[]; idsShape: number[]; n: number; dtype: 'float32' | 'int32' }> = [
      { xShape: [200, 7], idsShape: [200], n: 50, dtype: 'float32' },
      { xShape: [30, 5, 3], idsShape: [30], n: 4, dtype: 'float32' },
      { xShape: [40], idsShape: [40], n: 9, dtype: 'int32' },
    ];
    let seed = 7;
    const rand = () => {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      return seed / 2 ** 32;
    };
    for (const c of cases) {
      const size = c.xShape.reduce((a, b) => a * b, 1);
      const idsSize = c.idsShape.reduce((a, b) => a * b, 1);
      const xv = Array.from({ length: size }, () =>
        c.dtype === 'int32' ? Math.floor(rand() * 100) - 50 : rand() * 2 - 1,
      );
      const iv = Array.from({ length: idsSize }, () => Math.floor(rand() * c.n));
      const run = async (b: 'cpu' | 'wasm') => {
        await useBackend(b);
        return tf.tidy(() =>
          tf.unsortedSegmentSum(tf.tensor(xv, c.xShape, c.dtype), tf.tensor1d(iv, 'int32'), c.n),
        );
      };
      const cpu = await run('cpu');
      const cpuVals = cpu.dataSync();
      const cpuShape = cpu.shape;
      cpu.dispose();
      const wasm = await run('wasm');
      expect(wasm.shape).toEqual(cpuShape);
      expect(wasm.dtype).toBe(c.dtype);
      // sums of ≤ ~20 terms in [−1, 1]: float32 reassociation error < 1e-5; ints exact
      expect(maxAbsDiff(wasm.dataSync(), cpuVals)).toBeLessThan(c.dtype === 'int32' ? 1e-9 : 1e-5);
      wasm.dispose();
    }
  });

  it('makes embedding (gather) gradients work on wasm, equal to cpu', async () => {
    // E is [5, 3]; loss = Σ w ⊙ gather(E, [1, 1, 3]) with w = [[1,2,3],[4,5,6],[7,8,9]]:
    // dE[1] = w0 + w1 = [5, 7, 9]; dE[3] = w2 = [7, 8, 9]; other rows 0.
    const expected = [0, 0, 0, 5, 7, 9, 0, 0, 0, 7, 8, 9, 0, 0, 0];
    for (const b of ['wasm', 'cpu'] as const) {
      await useBackend(b);
      const e = tf.variable(tf.zeros([5, 3]));
      const w = tf.tensor2d([1, 2, 3, 4, 5, 6, 7, 8, 9], [3, 3]);
      const idx = tf.tensor1d([1, 1, 3], 'int32');
      const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(tf.gather(e, idx), w)), [e]);
      expect([...grads[e.name]!.dataSync()]).toEqual(expected);
      tf.dispose([value, grads[e.name]!, e, w, idx]);
    }
  });
});
