import * as tf from '@tensorflow/tfjs-core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DistroCodecError,
  DistroError,
  DistroOptimizer,
  type DistroParamResult,
  type DistroResult,
  decodeDistroResult,
  encodeDistroResult,
  paramLayout,
  registerDistroOptimizer,
  scatterMean,
} from '../src/index.js';
import { BACKENDS, bits, seeded, useBackend, variableOf } from './helpers.js';

type Vars = Record<string, tf.Variable>;

const SHAPES: Record<string, number[]> = {
  emb: [50, 24], // 50 -> chunk 50 (<= 64)... with chunk 16: sc(50)=10 -> 10x8 blocks
  w1: [24, 40],
  b1: [40],
  w2: [2, 40, 12], // N-D: leading dim is batch
  scale: [],
};

function makeVars(seed: number): Vars {
  const out: Vars = {};
  let s = seed;
  for (const [name, shape] of Object.entries(SHAPES)) {
    const n = shape.reduce((a, b) => a * b, 1);
    out[name] = variableOf(tf.tensor(seeded(n, s++, 0.5), shape));
  }
  return out;
}

/** Worker-specific gradients that depend on the current parameters (so trajectories would diverge if params did). */
function gradsFor(vars: Vars, worker: number, step: number): Record<string, tf.Tensor> {
  const out: Record<string, tf.Tensor> = {};
  let s = 1000 * worker + 17 * step;
  for (const [name, v] of Object.entries(vars)) {
    const noise = tf.tensor(seeded(v.size, s++), v.shape);
    out[name] = tf.tidy(() => tf.add(tf.mul(v, 0.3), noise));
    noise.dispose();
  }
  return out;
}

function dispose(m: Record<string, tf.Tensor>): void {
  tf.dispose(Object.values(m));
}

/** Runs `workers` simulated workers for `steps` steps through the wire codec; returns final params per worker. */
function simulate(
  workers: number,
  steps: number,
  cfg: ConstructorParameters<typeof DistroOptimizer>[0],
): Uint8Array[][] {
  const vars = Array.from({ length: workers }, () => makeVars(1));
  const opts = vars.map(() => new DistroOptimizer(cfg));
  for (let step = 0; step < steps; step++) {
    const bytes = vars.map((v, w) => {
      const g = gradsFor(v, w, step);
      const r = opts[w]!.compress(v, g);
      dispose(g);
      return encodeDistroResult(r);
    });
    vars.forEach((v, w) => {
      // each worker receives the others' bytes and puts its own first, as in the README snippet
      const peers = bytes
        .filter((_, i) => i !== w)
        .map((b) => decodeDistroResult(b, { expected: opts[w]!.layoutOf(v) }));
      opts[w]!.apply(v, [decodeDistroResult(bytes[w]!), ...peers]);
    });
  }
  const out = vars.map((v) => Object.values(v).map((t) => bits(t)));
  for (const v of vars) dispose(v);
  for (const o of opts) o.dispose();
  return out;
}

describe.each(BACKENDS)('multi-worker DeMo on %s', (backend) => {
  useBackend(backend);

  it.each([
    [2, false],
    [3, false],
    [2, true],
    [3, true],
  ])('%i workers (1-bit %s) end bitwise identical after 6 steps, and the params moved', (workers, q) => {
    const cfg = {
      lr: 0.01,
      compressionDecay: 0.9,
      compressionTopk: 4,
      compressionChunk: 16,
      weightDecay: 0.1,
      quantize1bit: q,
    };
    const before = tf.memory().numTensors;
    const finals = simulate(workers, 6, cfg);
    expect(tf.memory().numTensors).toBe(before);
    for (let w = 1; w < workers; w++) expect(finals[w]).toEqual(finals[0]);
    const init = makeVars(1);
    const initBits = Object.values(init).map((t) => bits(t));
    dispose(init);
    expect(finals[0]).not.toEqual(initBits);
  });

  it('a missing peer contribution renormalizes per coefficient (3 workers, one sends no "b1")', () => {
    const cfg = { lr: 0.1, compressionTopk: 2, compressionChunk: 8 };
    const vars = makeVars(3);
    const opts = [0, 1, 2].map(() => new DistroOptimizer(cfg));
    const results = opts.map((o, w) => {
      const g = gradsFor(vars, w, 0);
      const r = o.compress(vars, g);
      dispose(g);
      return r;
    });
    const partial = { ...results[2]!, params: results[2]!.params.filter((p) => p.name !== 'b1') };
    const find = (r: DistroResult) => r.params.find((p) => p.name === 'b1')!;
    const layout = paramLayout(SHAPES.b1!, 8, 2);
    const agg = scatterMean([find(results[0]!), find(results[1]!)], layout);
    // Reference semantics: the mean over the workers that chose each coefficient, never /3.
    const expected = new Map<number, number[]>();
    for (const r of [results[0]!, results[1]!]) {
      const p = find(r);
      p.indices.forEach((j, i) => {
        const pos = Math.floor(i / p.k) * layout.blockSize + j;
        expected.set(pos, [...(expected.get(pos) ?? []), p.values[i]!]);
      });
    }
    expect(Array.from(agg.positions)).toEqual([...expected.keys()].sort((a, b) => a - b));
    agg.positions.forEach((pos, i) => {
      const vs = expected.get(pos)!;
      expect(agg.values[i]).toBeCloseTo(vs.reduce((a, b) => a + b, 0) / vs.length, 6);
    });
    const b1Before = vars.b1!.dataSync().slice();
    opts[0]!.apply(vars, [results[0]!, results[1]!, partial]);
    const moved = vars.b1!.dataSync();
    // every coordinate moves by exactly ±lr or 0 (sign-SGD, no weight decay)
    moved.forEach((v, i) => {
      const d = Math.abs(v - b1Before[i]!);
      expect(d === 0 || Math.abs(d - 0.1) < 1e-6).toBe(true);
    });
    dispose(vars);
    for (const o of opts) o.dispose();
  });

  it('getWeights/setWeights (momentum included) continue bitwise identically to an uninterrupted run', async () => {
    const cfg = { lr: 0.02, compressionDecay: 0.95, compressionTopk: 3, compressionChunk: 8 };
    const a = makeVars(5);
    const oa = new DistroOptimizer(cfg);
    for (let s = 0; s < 3; s++) {
      const g = gradsFor(a, 0, s);
      oa.apply(a, [oa.compress(a, g)]);
      dispose(g);
    }
    const saved = await oa.getWeights();
    expect(saved[0]!.name).toBe('iter');
    expect(saved.map((w) => w.name).slice(1)).toEqual(Object.keys(SHAPES).map((n) => `${n}/momentum`));
    const b: Vars = {};
    for (const [n, v] of Object.entries(a)) b[n] = variableOf(v.clone());
    const ob = DistroOptimizer.fromConfig(DistroOptimizer, oa.getConfig()) as DistroOptimizer;
    await ob.setWeights(saved);
    tf.dispose(saved.map((w) => w.tensor)); // setWeights copies: the caller keeps ownership
    expect(ob.iterations).toBe(3);
    for (let s = 3; s < 6; s++) {
      for (const [v, o] of [
        [a, oa],
        [b, ob],
      ] as const) {
        const g = gradsFor(v, 0, s);
        o.apply(v, [o.compress(v, g)]);
        dispose(g);
      }
    }
    expect(Object.values(b).map((t) => bits(t))).toEqual(Object.values(a).map((t) => bits(t)));
    dispose(a);
    dispose(b);
    oa.dispose();
    ob.dispose();
  });

  it('getWeights returns caller-owned copies and setWeights copies its input: no leaks, no aliasing', async () => {
    const vars = makeVars(13);
    const opt = new DistroOptimizer({ lr: 0.1, compressionTopk: 2, compressionChunk: 8 });
    const g = gradsFor(vars, 0, 0);
    opt.compress(vars, g);
    dispose(g);
    const base = tf.memory().numTensors;
    const w = await opt.getWeights();
    expect(tf.memory().numTensors).toBe(base + w.length);
    const other = new DistroOptimizer({ lr: 0.1, compressionTopk: 2, compressionChunk: 8 });
    await other.setWeights(w);
    expect(tf.memory().numTensors).toBe(base + 2 * w.length - 1); // iter is a number, momenta become variables
    tf.dispose(w.map((x) => x.tensor));
    expect(tf.memory().numTensors).toBe(base + w.length - 1);
    const w2 = await opt.getWeights();
    await other.setWeights(w2); // replacing momenta disposes the old ones
    tf.dispose(w2.map((x) => x.tensor));
    expect(tf.memory().numTensors).toBe(base + w.length - 1);
    other.dispose();
    expect(tf.memory().numTensors).toBe(base);
    dispose(vars);
    opt.dispose();
  });

  it('setWeights rejects bad weights with INVALID_WEIGHTS and keeps its state', async () => {
    const opt = new DistroOptimizer({ lr: 0.1 });
    const good = tf.zeros([3]);
    const bad = [
      [{ name: 'x/momentum', tensor: tf.tensor1d([1, Number.NaN]) }],
      [{ name: 'x/momentum', tensor: tf.tensor1d([1, 2], 'int32') }],
      [{ name: 'other', tensor: good }],
      [{ name: 'iter', tensor: tf.scalar(-1) }],
      'nope',
    ];
    for (const w of bad) {
      await expect(opt.setWeights(w as never)).rejects.toMatchObject({ code: 'INVALID_WEIGHTS' });
    }
    expect(opt.rejections.byCode.INVALID_WEIGHTS).toBe(bad.length);
    const after = await opt.getWeights();
    expect(after.map((w) => w.name)).toEqual(['iter']);
    tf.dispose(after.map((w) => w.tensor));
    for (const w of bad) if (Array.isArray(w)) tf.dispose(w.map((x) => x.tensor));
    good.dispose();
    opt.dispose();
  });

  it('apply validates every result first: a bad one throws DistroCodecError and nothing changes', () => {
    const vars = makeVars(7);
    const opt = new DistroOptimizer({ lr: 0.1, compressionTopk: 2, compressionChunk: 8 });
    const g = gradsFor(vars, 0, 0);
    const good = opt.compress(vars, g);
    dispose(g);
    const snapshot = Object.values(vars).map((t) => bits(t));
    const p0 = good.params[0]!;
    const badIdx: DistroParamResult = { ...p0, indices: p0.indices.map(() => 9999) };
    const cases: [DistroResult, string][] = [
      [{ ...good, params: [badIdx] }, 'INDEX_OUT_OF_RANGE'],
      [{ ...good, config: { ...good.config, compressionTopk: 3 } }, 'CONFIG_MISMATCH'],
      [{ ...good, params: [{ ...p0, name: 'ghost' }] }, 'UNKNOWN_PARAMETER'],
      [{ ...good, params: [{ ...p0, values: p0.values.map(() => Number.NaN) }] }, 'NON_FINITE_VALUE'],
    ];
    for (const [bad, code] of cases) {
      try {
        opt.apply(vars, [good, bad]);
        expect.unreachable();
      } catch (e) {
        expect(e).toBeInstanceOf(DistroCodecError);
        expect((e as DistroCodecError).code).toBe(code);
      }
    }
    expect(() => opt.apply(vars, 'x' as never)).toThrow(DistroError);
    expect(Object.values(vars).map((t) => bits(t))).toEqual(snapshot);
    expect(opt.iterations).toBe(0);
    expect(opt.rejections.total).toBe(cases.length + 1);
    dispose(vars);
    opt.dispose();
  });

  it('step(vars, grads, allGather) equals compress + apply, and leaks nothing', async () => {
    const cfg = { lr: 0.05, compressionTopk: 2, compressionChunk: 8 };
    const a = makeVars(9);
    const b = makeVars(9);
    const [oa, ob] = [new DistroOptimizer(cfg), new DistroOptimizer(cfg)];
    // an extra peer: a different model state, its own optimizer
    const other = makeVars(10);
    const op = new DistroOptimizer(cfg);
    const og = gradsFor(other, 5, 0);
    const peer = op.compress(other, og);
    dispose(other);
    dispose(og);
    op.dispose();
    let before = 0;
    for (let s = 0; s < 3; s++) {
      if (s === 1) before = tf.memory().numTensors; // after the first step: momenta and bases exist
      const ga = gradsFor(a, 0, s);
      const gb = gradsFor(b, 0, s);
      const mine = await oa.step(a, ga, async (m) => [m, peer]);
      ob.apply(b, [ob.compress(b, gb), peer]);
      expect(mine.params.length).toBe(5);
      dispose(ga);
      dispose(gb);
    }
    expect(Object.values(b).map((t) => bits(t))).toEqual(Object.values(a).map((t) => bits(t)));
    expect(tf.memory().numTensors).toBe(before);
    dispose(a);
    dispose(b);
    oa.dispose();
    ob.dispose();
  });

  it('minimize(): one worker, no network; loss goes down; iterations count; no leaks after the first step', () => {
    // Linear regression y = x·W* with W* known; the sign updates walk W toward W*.
    const x = tf.tensor2d(seeded(64 * 8, 11), [64, 8]);
    const wStar = tf.tensor2d(seeded(8 * 4, 12), [8, 4]);
    const y = tf.matMul(x, wStar);
    const w = variableOf(tf.zeros([8, 4]), `w-${backend}-min`);
    const opt = new DistroOptimizer({
      lr: 0.01,
      compressionDecay: 0.9,
      compressionTopk: 8,
      compressionChunk: 8,
    });
    const loss = () => tf.mean(tf.square(tf.sub(tf.matMul(x, w), y))) as tf.Scalar;
    const l0 = tf.tidy(() => loss().dataSync()[0]!);
    opt.minimize(loss, false, [w]);
    const n1 = tf.memory().numTensors;
    let last = 0;
    for (let s = 0; s < 60; s++) {
      const c = opt.minimize(loss, true, [w])!;
      last = c.dataSync()[0]!;
      c.dispose();
    }
    expect(tf.memory().numTensors).toBe(n1);
    expect(opt.iterations).toBe(61);
    expect(last).toBeLessThan(l0 * 0.5);
    opt.dispose();
    tf.dispose([x, wStar, y, w]);
  });
});

describe('config, serialization, registration', () => {
  it('defaults are the reference defaults; getConfig/fromConfig round-trip', () => {
    const o = new DistroOptimizer({ lr: 4e-4 });
    expect(o.getConfig()).toEqual({
      lr: 4e-4,
      compressionDecay: 0.999,
      compressionTopk: 32,
      compressionChunk: 64,
      weightDecay: 0,
      quantize1bit: false,
      valueDtype: 'float32',
    });
    expect(o.getClassName()).toBe('DistroOptimizer');
    const p = DistroOptimizer.fromConfig(DistroOptimizer, {
      ...o.getConfig(),
      quantize1bit: true,
    }) as DistroOptimizer;
    expect(p).toBeInstanceOf(DistroOptimizer);
    expect(p.quantize1bit).toBe(true);
  });

  it('registerDistroOptimizer() makes tfjs able to rebuild it by class name (no import side effect)', () => {
    const map = tf.serialization.SerializationMap.getMap().classNameMap;
    expect(map.DistroOptimizer).toBeUndefined();
    registerDistroOptimizer();
    registerDistroOptimizer();
    const entry = map.DistroOptimizer!;
    const rebuilt = entry[1](entry[0], { lr: 0.5, compressionTopk: 4 });
    expect(rebuilt).toBeInstanceOf(DistroOptimizer);
    expect((rebuilt as DistroOptimizer).compressionTopk).toBe(4);
  });

  it.each([
    [{ lr: -1 }, 'lr'],
    [{ lr: Number.NaN }, 'lr'],
    [{ lr: 0.1, compressionDecay: 1 }, 'compressionDecay'],
    [{ lr: 0.1, compressionDecay: -0.1 }, 'compressionDecay'],
    [{ lr: 0.1, compressionTopk: 0 }, 'compressionTopk'],
    [{ lr: 0.1, compressionTopk: 2.5 }, 'compressionTopk'],
    [{ lr: 0.1, compressionChunk: 0 }, 'compressionChunk'],
    [{ lr: 0.1, weightDecay: Number.POSITIVE_INFINITY }, 'weightDecay'],
    [{ lr: 0.1, quantize1bit: 'yes' }, 'quantize1bit'],
    [{ lr: 0.1, valueDtype: 'float16' }, 'valueDtype'],
    [{ lr: 0.1, quantize1bit: true, valueDtype: 'bfloat16' }, 'valueDtype'],
  ])('rejects %j with INVALID_CONFIG naming %s', (cfg, field) => {
    try {
      new DistroOptimizer(cfg as never);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(DistroError);
      expect((e as DistroError).code).toBe('INVALID_CONFIG');
      expect((e as DistroError).details.field).toBe(field);
      expect((e as Error).message).toContain(field);
    }
  });

  it('lr setter validates', () => {
    const o = new DistroOptimizer({ lr: 0.1 });
    o.lr = 0.2;
    expect(o.lr).toBe(0.2);
    expect(() => {
      o.lr = -1;
    }).toThrow(/lr must be/);
  });
});

describe('scatterMean (JS typed arrays, exact and order-independent)', () => {
  const entry = (indices: number[], values: number[]): DistroParamResult => ({
    name: 'p',
    shape: [4],
    n1: 1,
    n2: 4,
    k: indices.length,
    indices: Int32Array.from(indices),
    values: Float32Array.from(values),
  });

  it('reference check: indices [1,1,2] with values [2,4,6] give [0,3,6,0]', () => {
    // distro-algorithm.md §1.6: scatter-mean of [1,1,2]/[2,4,6]; here as three workers with k = 1.
    const l1 = paramLayout([4], 64, 1);
    const out = scatterMean([entry([1], [2]), entry([1], [4]), entry([2], [6])], l1);
    const dense = new Float32Array(4);
    out.positions.forEach((p, i) => {
      dense[p] = out.values[i]!;
    });
    expect(Array.from(dense)).toEqual([0, 3, 6, 0]);
  });

  it('is bitwise independent of worker order (fast-check over values spanning many magnitudes)', () => {
    const l = paramLayout([2, 8], 4, 3); // 4 blocks of 2x... -> n1=2, n2=4, blocks of 8, k=3
    const arbEntry = fc
      .tuple(
        fc.array(
          fc.uniqueArray(fc.integer({ min: 0, max: l.blockSize - 1 }), { minLength: l.k, maxLength: l.k }),
          {
            minLength: l.numBlocks,
            maxLength: l.numBlocks,
          },
        ),
        fc.array(
          fc.float({ noNaN: true, noDefaultInfinity: true, min: Math.fround(-1e30), max: Math.fround(1e30) }),
          {
            minLength: l.numBlocks * l.k,
            maxLength: l.numBlocks * l.k,
          },
        ),
      )
      .map(([idx, vals]) => ({
        name: 'p',
        shape: [2, 8],
        n1: l.n1,
        n2: l.n2,
        k: l.k,
        indices: Int32Array.from(idx.flatMap((b) => [...b].sort((x, y) => x - y))),
        values: Float32Array.from(vals),
      }));
    fc.assert(
      fc.property(fc.array(arbEntry, { minLength: 1, maxLength: 5 }), fc.nat(), (entries, rot) => {
        const a = scatterMean(entries, l);
        const perm = [
          ...entries.slice(rot % entries.length),
          ...entries.slice(0, rot % entries.length),
        ].reverse();
        const b = scatterMean(perm, l);
        expect(b.positions).toEqual(a.positions);
        expect(bits(b.values)).toEqual(bits(a.values));
      }),
      { numRuns: 300, seed: 7 },
    );
  });
});
