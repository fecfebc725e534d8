import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { mm, mmT, splitLastAxis, swapLast } from '../src/ops.js';
import { BACKENDS, maxAbsDiff, useBackend } from './helpers.js';

function seeded(shape: number[], seed: number): tf.Tensor {
  let s = seed;
  const n = shape.reduce((a, b) => a * b, 1);
  const v = Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  });
  return tf.tensor(v, shape);
}

// On wasm these are the custom transpose-free formulations; on cpu they defer to tf.matMul / tf.split, so the
// cpu run checks the dispatch and the wasm run checks the custom gradients.
describe.each(BACKENDS)('wasm-friendly ops on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  it.each([
    [
      [5, 7],
      [7, 3],
    ],
    [
      [4, 6, 5],
      [4, 5, 2],
    ],
  ])('mm %j × %j: value and gradients equal tf.matMul’s', (sa, sb) => {
    const a = seeded(sa, 1);
    const b = seeded(sb, 2);
    const w = seeded([...sa.slice(0, -1), sb.at(-1)!], 3); // random cotangent
    const before = tf.memory().numTensors;
    const f = (op: (x: tf.Tensor, y: tf.Tensor) => tf.Tensor) =>
      tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(op(x, y), w)));
    const [ga, gb] = f((x, y) => mm(x, y))([a, b]);
    const [ra, rb] = f((x, y) => tf.matMul(x as tf.Tensor2D, y as tf.Tensor2D))([a, b]);
    const [v1, v2] = [mm(a, b), tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D)];
    const bT = swapLast(b);
    const v3 = mmT(a, bT); // a @ (bᵀ)ᵀ = a @ b
    expect(maxAbsDiff(v3.dataSync(), v2.dataSync())).toBeLessThan(1e-5);
    tf.dispose([bT, v3]);
    // same products in float32, sums of ≤ 7 terms of magnitude ≤ 1: tolerance 1e-5
    expect(maxAbsDiff(v1.dataSync(), v2.dataSync())).toBeLessThan(1e-5);
    expect(maxAbsDiff(ga!.dataSync(), ra!.dataSync())).toBeLessThan(1e-5);
    expect(maxAbsDiff(gb!.dataSync(), rb!.dataSync())).toBeLessThan(1e-5);
    tf.dispose([ga!, gb!, ra!, rb!, v1, v2]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([a, b, w]);
  });

  it('splitLastAxis equals tf.split exactly and routes gradients to the right columns', () => {
    const x = seeded([2, 3, 7], 4);
    const before = tf.memory().numTensors;
    const parts = splitLastAxis(x, [4, 3]);
    expect(tf.memory().numTensors).toBe(before + 2); // exactly the two returned parts
    const ref = tf.split(x, [4, 3], 2);
    expect(parts.map((p) => p.shape)).toEqual([
      [2, 3, 4],
      [2, 3, 3],
    ]);
    for (let i = 0; i < 2; i++) expect(maxAbsDiff(parts[i]!.dataSync(), ref[i]!.dataSync())).toBe(0);
    // d/dx Σ(2·first + 3·second): 2 on columns 0–3, 3 on columns 4–6
    const [g] = tf.grads((z: tf.Tensor) => {
      const [p, q] = splitLastAxis(z, [4, 3]);
      return tf.add(tf.mul(tf.sum(p!), 2), tf.mul(tf.sum(q!), 3));
    })([x]);
    const gv = g!.dataSync();
    for (let i = 0; i < gv.length; i++) expect(gv[i]).toBe(i % 7 < 4 ? 2 : 3);
    tf.dispose([...parts, ...ref, g!, x]);
  });
});
