import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { MlaModel } from '../src/index.js';
import { BACKENDS, tinyConfig, useBackend } from './helpers.js';

/**
 * Central finite differences in float32: g ≈ (L(w+ε) − L(w−ε)) / 2ε with ε = 1e-2 on the smooth cross-entropy.
 * Truncation error is O(ε²·L''') ≈ 1e-4·L''' and float32 rounding of L ≈ 3.5 adds ≈ 4e-7/2ε ≈ 2e-5, so we accept
 * |fd − analytic| ≤ 2e-3 + 3e-2·|analytic|, and only judge coordinates whose gradient is large enough (|g| ≥ 1e-2)
 * that a wrong gradient (e.g. off by 10 %) could not pass.
 */
const EPS = 1e-2;
const ATOL = 2e-3;
const RTOL = 3e-2;

describe.each(BACKENDS)('finite-difference gradient check on %s', (backend) => {
  it('analytic gradients match central differences for every parameter tensor', async () => {
    await useBackend(backend);
    const model = MlaModel.create(tinyConfig({ initializer_range: 0.3, num_hidden_layers: 1 }), { seed: 5 });
    const batch = [
      [3, 14, 15, 9, 26, 5],
      [27, 18, 28, 18, 2, 8],
    ];
    const start = tf.memory().numTensors;
    const { grads } = model.computeGradients(batch);
    const vars = model.namedVariables();
    const lossAt = () => {
      const l = model.loss(batch);
      const v = l.dataSync()[0]!;
      l.dispose();
      return v;
    };
    let checked = 0;
    for (const [name, g] of Object.entries(grads)) {
      const gv = g.dataSync();
      // the coordinate with the largest gradient, plus one other strong coordinate, per tensor
      const order = [...gv.keys()].sort((a, b) => Math.abs(gv[b]!) - Math.abs(gv[a]!));
      for (const idx of order.slice(0, 2)) {
        const analytic = gv[idx]!;
        if (Math.abs(analytic) < 1e-2) continue;
        const v = vars[name]!;
        const base = v.dataSync().slice();
        const perturb = (delta: number) => {
          const w = base.slice();
          w[idx]! += delta;
          tf.tidy(() => v.assign(tf.tensor(w, v.shape)));
        };
        perturb(EPS);
        const up = lossAt();
        perturb(-EPS);
        const down = lossAt();
        tf.tidy(() => v.assign(tf.tensor(base, v.shape)));
        const fd = (up - down) / (2 * EPS);
        expect(
          Math.abs(fd - analytic),
          `${name}[${idx}]: fd ${fd} vs analytic ${analytic}`,
        ).toBeLessThanOrEqual(ATOL + RTOL * Math.abs(analytic));
        checked++;
      }
    }
    // embedding, norms, q/kv low-rank paths, o_proj, MLP, lm_head: nearly every tensor must have been judged
    expect(checked).toBeGreaterThanOrEqual(2 * Object.keys(grads).length - 4);
    tf.dispose(Object.values(grads));
    expect(tf.memory().numTensors).toBe(start);
    model.dispose();
  });
});
