import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { BasisCache, DistroError, dctBasis, dctDecode, dctEncode, paramLayout } from '../src/index.js';
import { BACKENDS, maxDiff, seeded, useBackend } from './helpers.js';

/** Reference 2-D block DCT in float64: coef[block][i·n2+j] = Σ_h Σ_w C1[i,h]·X[h,w]·C2[j,w]. */
function directEncode(x: Float32Array, shape: number[], chunk: number): Float64Array {
  const l = paramLayout(shape, chunk, 1);
  const c = (n: number, k: number, j: number) =>
    (k === 0 ? Math.sqrt(1 / n) : Math.sqrt(2 / n)) * Math.cos((Math.PI * (2 * j + 1) * k) / (2 * n));
  const out = new Float64Array(l.size);
  const Y = l.rows / l.n1;
  const X = l.cols / l.n2;
  let b = 0;
  for (let bb = 0; bb < l.batch; bb++)
    for (let y = 0; y < Y; y++)
      for (let xx = 0; xx < X; xx++, b++)
        for (let i = 0; i < l.n1; i++)
          for (let j = 0; j < l.n2; j++) {
            let s = 0;
            for (let h = 0; h < l.n1; h++)
              for (let w = 0; w < l.n2; w++) {
                const v = x[bb * l.rows * l.cols + (y * l.n1 + h) * l.cols + xx * l.n2 + w]!;
                s += c(l.n1, i, h) * v * c(l.n2, j, w);
              }
            out[b * l.blockSize + i * l.n2 + j] = s;
          }
  return out;
}

describe('dctBasis (orthonormal DCT-II, float64 then float32)', () => {
  it('N=4 matches the hand-derived / reference values (tol 1e-6)', () => {
    // C[k][j] = a_k cos(π(2j+1)k/8), a_0 = 1/2, a_k = √(1/2):
    // row 1: √½·cos(π/8)=0.653281, √½·cos(3π/8)=0.270598, then the negatives mirrored.
    // The reference's F = f_dict[4] = Cᵀ is [[0.5, 0.653281, 0.5, 0.270598], ...] (distro-algorithm.md §1.4).
    const C = dctBasis(4);
    const expected = [
      [0.5, 0.5, 0.5, 0.5],
      [0.653281, 0.270598, -0.270598, -0.653281],
      [0.5, -0.5, -0.5, 0.5],
      [0.270598, -0.653281, 0.653281, -0.270598],
    ].flat();
    expect(maxDiff(C, expected)).toBeLessThan(1e-6);
    const F = [0.5, 0.653281, 0.5, 0.270598, 0.5, 0.270598, -0.5, -0.653282];
    // First two rows of F = Cᵀ.
    const Ft = [0, 1, 2, 3, 0, 1, 2, 3].map((k, i) => C[k * 4 + (i < 4 ? 0 : 1)]!);
    expect(maxDiff(Ft, F)).toBeLessThan(1e-6);
  });

  it.each([1, 4, 29, 48, 64])('C·Cᵀ = I for n=%i (float64 check of the float32 basis, tol 1e-6)', (n) => {
    const C = dctBasis(n);
    let err = 0;
    for (let a = 0; a < n; a++)
      for (let b = 0; b < n; b++) {
        let s = 0;
        for (let j = 0; j < n; j++) s += C[a * n + j]! * C[b * n + j]!;
        err = Math.max(err, Math.abs(s - (a === b ? 1 : 0)));
      }
    expect(err).toBeLessThan(1e-6);
  });

  it('rejects bad sizes with INVALID_ARGUMENT', () => {
    for (const n of [0, -1, 1.5, Number.NaN]) expect(() => dctBasis(n)).toThrow(DistroError);
  });
});

describe.each(BACKENDS)('dctEncode / dctDecode on %s', (backend) => {
  useBackend(backend);

  it('encode(arange(8)) with chunk 64 matches Psyche test_encode_1d (tol 1e-5)', () => {
    // DC = Σ(0..7)/√8 = 28/2.828427 = 9.899495; even AC terms are exactly 0 for a linear ramp.
    const layout = paramLayout([8], 64, 8);
    const ramp = tf.range(0, 8, 1, 'float32');
    const coef = dctEncode(ramp, layout);
    const expected = [9.8995, -6.4423, 0, -0.67345, 0, -0.2009, 0, -0.050702];
    expect(coef.shape).toEqual([1, 8]);
    expect(maxDiff(coef.dataSync(), expected)).toBeLessThan(1e-4);
    const back = dctDecode(coef, layout);
    expect(maxDiff(back.dataSync(), [0, 1, 2, 3, 4, 5, 6, 7])).toBeLessThan(1e-5);
    tf.dispose([ramp, coef, back]);
  });

  it('encode(eye(4)) with chunk 4 is eye(4) flattened (C·I·Cᵀ = I), tol 1e-6', () => {
    const layout = paramLayout([4, 4], 4, 1);
    const eye = tf.eye(4);
    const coef = dctEncode(eye, layout);
    const I = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1];
    expect(maxDiff(coef.dataSync(), I)).toBeLessThan(1e-6);
    tf.dispose([eye, coef]);
  });

  it('a constant 4x4 block of ones has coefficients [4, 0 x 15]', () => {
    const layout = paramLayout([4, 4], 4, 1);
    const ones = tf.ones([4, 4]);
    const coef = dctEncode(ones, layout);
    const d = coef.dataSync();
    expect(d[0]).toBeCloseTo(4, 5);
    expect(maxDiff(d.slice(1), new Float32Array(15))).toBeLessThan(1e-6);
    tf.dispose([ones, coef]);
  });

  it.each([
    [[6, 10], 4],
    [[12, 8], 4],
    [[2, 6, 8], 4],
    [[3, 58, 64], 64], // 58 -> chunk 58 (<= 64), 64 -> 64
    [[100], 64],
    [[7], 64],
    [[], 64],
  ])('matches a float64 direct 2-D block DCT for shape %j (tol 1e-5·max)', (shape, chunk) => {
    const size = shape.reduce((a, b) => a * b, 1);
    const x = seeded(size, 7 + size);
    const layout = paramLayout(shape, chunk, 1);
    const t = tf.tensor(x, shape);
    const coef = dctEncode(t, layout);
    expect(coef.shape).toEqual([layout.numBlocks, layout.blockSize]);
    expect(maxDiff(coef.dataSync(), directEncode(x, shape, chunk))).toBeLessThan(1e-5);
    const back = dctDecode(coef, layout);
    expect(back.shape).toEqual(shape);
    expect(maxDiff(back.dataSync(), x)).toBeLessThan(1e-5);
    tf.dispose([t, coef, back]);
  });

  it('round-trips a GPT-2-like non-square chunk layout [58, 128] with chunk 64 -> 58x64 blocks', () => {
    const x = seeded(58 * 128, 3);
    const layout = paramLayout([58, 128], 64, 32);
    expect([layout.n1, layout.n2]).toEqual([58, 64]);
    const t = tf.tensor2d(x, [58, 128]);
    const back = tf.tidy(() => dctDecode(dctEncode(t, layout), layout));
    expect(maxDiff(back.dataSync(), x)).toBeLessThan(2e-6);
    tf.dispose([t, back]);
  });

  it('rejects a tensor of the wrong shape with SHAPE_MISMATCH', () => {
    const layout = paramLayout([4, 4], 4, 1);
    const t = tf.zeros([4, 5]);
    expect(() => dctEncode(t, layout)).toThrow(DistroError);
    expect(() => dctDecode(t, layout)).toThrow(/coef has shape/);
    t.dispose();
  });

  it('leaks no tensors (encode/decode, and BasisCache until dispose)', () => {
    const layout = paramLayout([2, 96, 100], 64, 8);
    const x = tf.tensor(seeded(2 * 96 * 100, 1), [2, 96, 100]);
    const before = tf.memory().numTensors;
    const c = dctEncode(x, layout);
    const y = dctDecode(c, layout);
    tf.dispose([c, y]);
    expect(tf.memory().numTensors).toBe(before);
    const cache = new BasisCache();
    const c2 = dctEncode(x, layout, cache.get);
    const y2 = dctDecode(c2, layout, cache.get);
    tf.dispose([c2, y2]);
    expect(cache.size).toBe(4); // C and Cᵀ for 48 and 50
    expect(tf.memory().numTensors).toBe(before + 4);
    cache.dispose();
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
  });
});
