import * as tf from '@tensorflow/tfjs-core';
import { afterEach, describe, expect, it } from 'vitest';
import {
  DistroError,
  DistroOptimizer,
  type DistroParamResult,
  dctDecode,
  dctEncode,
  paramLayout,
  roundToBf16,
} from '../src/index.js';
import { BACKENDS, bits, maxDiff, seeded, useBackend } from './helpers.js';

// distro-algorithm.md §1.9: the reference demo.py run on CPU with a [4, 8] parameter, chunk 4, k = 2, lr 0.1.
const G1 = [
  [1, -2, 3, 0.5, 0, 1, 2, -1],
  [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8],
  [1, 1, 1, 1, 1, 1, 1, 1],
  [-1, 0, 1, 0, -1, 0, 1, 0],
];
const G2 = G1.map((row) => [...row].reverse().map((v) => 0.5 * v + 0.25));
const SIGN = [
  [1, -1, 1, -1, -1, 1, 1, 1],
  [1, 1, 1, 1, 1, 1, -1, 1],
  [-1, 1, -1, 1, 1, -1, 1, 1],
  [1, 1, 1, 1, 1, 1, 1, -1],
];

/** Per block: the (index, value) pairs of a parameter result. */
function blocks(p: DistroParamResult): [number, number][][] {
  const out: [number, number][][] = [];
  for (let b = 0; b < p.indices.length / p.k; b++) {
    out.push(Array.from({ length: p.k }, (_, t) => [p.indices[b * p.k + t]!, p.values[b * p.k + t]!]));
  }
  return out;
}

const live: tf.Tensor[] = [];
function track<T extends tf.Tensor>(t: T): T {
  live.push(t);
  return t;
}

describe.each(BACKENDS)('DistroOptimizer.compress on %s', (backend) => {
  useBackend(backend);
  afterEach(() => {
    tf.dispose(live.splice(0));
  });

  it('§1.9 worked vector: per-worker top-k sets and values, scatter-mean, sign(decode) (tol 1e-4)', () => {
    const opts = { lr: 0.1, compressionTopk: 2, compressionChunk: 4 };
    const w = [new DistroOptimizer(opts), new DistroOptimizer(opts)];
    const vars = [0, 1].map(() => ({ a: track(tf.variable(tf.zeros([4, 8]))) }));
    const r1 = w[0]!.compress(vars[0]!, { a: track(tf.tensor2d(G1)) });
    const r2 = w[1]!.compress(vars[1]!, { a: track(tf.tensor2d(G2)) });
    const p1 = r1.params[0]!;
    const p2 = r2.params[0]!;
    expect([p1.n1, p1.n2, p1.k]).toEqual([4, 4, 2]);
    // Reference (torch CPU unsorted order) w1: (0,0) idx [7, 11] val [0.19680, 0.19001]; (0,1) [0, 10] [0.2150, -0.15].
    // We emit ascending indices, so the sets coincide and the order is canonical.
    const close = (got: [number, number][][], want: [number, number][][]) => {
      expect(got.map((b) => b.map(([i]) => i))).toEqual(want.map((b) => b.map(([i]) => i)));
      expect(
        maxDiff(
          got.flat().map(([, v]) => v),
          want.flat().map(([, v]) => v),
        ),
      ).toBeLessThan(1e-4);
    };
    // w1 chunk (0,1) is tie-ambiguous: coefficients 2 and 10 are both exactly −0.15 (float64 check:
    // C·X·Cᵀ of that block). torch CPU returned 10; tf.topk returns the lowest index, 2.
    close(blocks(p1), [
      [
        [7, 0.1968],
        [11, 0.19001],
      ],
      [
        [0, 0.215],
        [2, -0.15],
      ],
    ]);
    close(blocks(p2), [
      [
        [0, 0.2075],
        [2, -0.075],
      ],
      [
        [0, 0.19375],
        [7, -0.0984],
      ],
    ]);
    // Both workers apply both results (each in its own order): params start at 0, so p = -0.1·sign(u).
    w[0]!.apply(vars[0]!, [r1, r2]);
    w[1]!.apply(vars[1]!, [r2, r1]);
    const expected = SIGN.flat().map((s) => Math.fround(-0.1 * s));
    const got = Array.from(vars[0]!.a.dataSync());
    // Chunk (0,0) (columns 0-3) has no tie: it must equal the reference exactly.
    const cols03 = (a: number[]) => a.filter((_, i) => i % 8 < 4);
    expect(cols03(got)).toEqual(cols03(expected));
    expect(bits(vars[1]!.a)).toEqual(bits(vars[0]!.a));
    // Inject the reference's tie choice (index 10 instead of 2) as §5.2 prescribes: the full sign matrix matches.
    const injected = {
      ...r1,
      params: [{ ...p1, indices: Int32Array.from([7, 11, 0, 10]), values: p1.values.slice() }],
    };
    const v3 = track(tf.variable(tf.zeros([4, 8])));
    const o3 = new DistroOptimizer(opts);
    o3.apply({ a: v3 }, [injected, r2]);
    expect(Array.from(v3.dataSync())).toEqual(expected);
    o3.dispose();
    for (const o of w) o.dispose();
  });

  it('§1.9 1-D vector [8] chunk 4, k 2: idx [[0,2],[0,3]], val [[1.12435,-0.38685],[0.4221,0.33139]]', () => {
    const opt = new DistroOptimizer({ lr: 1, compressionDecay: 0, compressionTopk: 2, compressionChunk: 4 });
    const v = track(tf.variable(tf.zeros([8])));
    const g = track(tf.tensor1d([0.5223, 0.9625, 0.5487, 0.2152, 0.2161, 0.0363, 0.4944, 0.0974]));
    const p = opt.compress({ b: v }, { b: g }).params[0]!;
    expect(Array.from(p.indices)).toEqual([0, 2, 0, 3]);
    // DC of block 0 by hand: (0.5223+0.9625+0.5487+0.2152)/2 = 1.12435.
    expect(maxDiff(p.values, [1.12435, -0.38685, 0.4221, 0.33139])).toBeLessThan(1e-4);
    opt.dispose();
  });

  it('error feedback: new momentum = β·m + η·g − decode(own selection) exactly as a separate computation', () => {
    const opt = new DistroOptimizer({
      lr: 0.5,
      compressionDecay: 0.9,
      compressionTopk: 3,
      compressionChunk: 8,
    });
    const shape = [16, 24];
    const v = track(tf.variable(tf.zeros(shape)));
    const g1 = track(tf.tensor(seeded(16 * 24, 1), shape));
    const g2 = track(tf.tensor(seeded(16 * 24, 2), shape));
    opt.compress([v], [g1]);
    const layout = paramLayout(shape, 8, 3);
    // Independent recomputation of step 2 from step 1's momentum.
    const m1 = tf.tidy(() => {
      const x = tf.mul(g1, 0.5);
      const c = dctEncode(x, layout);
      return tf.sub(x, dctDecode(tf.mul(c, topkMask(c, 3)), layout));
    });
    track(m1);
    const before = tf.memory().numTensors;
    const r = opt.compress([v], [g2]);
    expect(tf.memory().numTensors).toBe(before);
    const expectedM = tf.tidy(() => {
      const x = tf.add(tf.mul(m1, 0.9), tf.mul(g2, 0.5));
      const c = dctEncode(x, layout);
      return tf.sub(x, dctDecode(tf.mul(c, topkMask(c, 3)), layout));
    });
    track(expectedM);
    return opt.getWeights().then((w) => {
      const m = w.find((x) => x.name === `${v.name}/momentum`)!.tensor;
      expect(maxDiff(m.dataSync(), expectedM.dataSync())).toBeLessThan(1e-6);
      tf.dispose(w.map((x) => x.tensor));
      // the residual never contains a selected coefficient: its selected coefficients are ~0
      expect(r.params[0]!.values.length).toBe(layout.numBlocks * 3);
      opt.dispose();
    });
  });

  it('ties: all-zero and constant blocks pick the lowest indices, emitted ascending', () => {
    const opt = new DistroOptimizer({ lr: 1, compressionDecay: 0, compressionTopk: 3, compressionChunk: 4 });
    const v = track(tf.variable(tf.zeros([4, 8])));
    // Left block constant ones (coefficients [4, 0 × 15]), right block all zero.
    const g = track(tf.tensor2d([0, 1, 2, 3].map(() => [1, 1, 1, 1, 0, 0, 0, 0])));
    const p = opt.compress({ w: v }, { w: g }).params[0]!;
    // torch CPU returns [0, 11, 12] for the constant block (unspecified); tf.topk ties go to the lowest index.
    expect(Array.from(p.indices)).toEqual([0, 1, 2, 0, 1, 2]);
    expect(p.values[0]).toBeCloseTo(4, 5);
    expect(maxDiff(p.values.slice(1), [0, 0, 0, 0, 0])).toBeLessThan(1e-6);
    // Same input, fresh optimizer, other call: identical bytes.
    const opt2 = new DistroOptimizer({ lr: 1, compressionDecay: 0, compressionTopk: 3, compressionChunk: 4 });
    const p2 = opt2.compress({ w: v }, { w: g }).params[0]!;
    expect(p2.indices).toEqual(p.indices);
    expect(bits(p2.values)).toEqual(bits(p.values));
    opt.dispose();
    opt2.dispose();
  });

  it('equal magnitudes of opposite sign: lowest index wins regardless of sign', () => {
    const opt = new DistroOptimizer({ lr: 1, compressionDecay: 0, compressionTopk: 1, compressionChunk: 2 });
    // 1-D [2] block: coefficients [(a+b)/√2, (a−b)/√2]; a=1,b=0 → both 1/√2, tie → index 0.
    const v = track(tf.variable(tf.zeros([2])));
    const p = opt.compress([v], [track(tf.tensor1d([1, 0]))]).params[0]!;
    expect(Array.from(p.indices)).toEqual([0]);
    // a=0,b=1 → [1/√2, −1/√2], tie by magnitude → index 0 again.
    const opt2 = new DistroOptimizer({ lr: 1, compressionDecay: 0, compressionTopk: 1, compressionChunk: 2 });
    const q = opt2.compress([v], [track(tf.tensor1d([0, 1]))]).params[0]!;
    expect(Array.from(q.indices)).toEqual([0]);
    expect(q.values[0]).toBeCloseTo(Math.SQRT1_2, 6);
    opt.dispose();
    opt2.dispose();
  });

  it('k >= block size sends every coefficient and leaves a ~0 residual; scalars are sent whole', async () => {
    const opt = new DistroOptimizer({
      lr: 1,
      compressionDecay: 0.5,
      compressionTopk: 64,
      compressionChunk: 4,
    });
    const vars = { s: track(tf.variable(tf.scalar(0))), b: track(tf.variable(tf.zeros([6]))) };
    const r = opt.compress(vars, { s: track(tf.scalar(-2.5)), b: track(tf.tensor1d([1, 2, 3, 4, 5, 6])) });
    const s = r.params.find((p) => p.name === 's')!;
    expect([s.n1, s.n2, s.k, Array.from(s.indices), Array.from(s.values)]).toEqual([1, 1, 1, [0], [-2.5]]);
    const b = r.params.find((p) => p.name === 'b')!;
    // [6] with chunk 4 -> sc(6)=3 -> two blocks of 3, k clamped to 3
    expect([b.n2, b.k, Array.from(b.indices)]).toEqual([3, 3, [0, 1, 2, 0, 1, 2]]);
    const w = await opt.getWeights();
    for (const { tensor } of w.slice(1))
      expect(maxDiff(tensor.dataSync(), new Float32Array(tensor.size))).toBeLessThan(1e-6);
    tf.dispose(w.map((x) => x.tensor));
    opt.dispose();
  });

  it('missing gradient counts as zero: momentum only decays (and lr = 0 changes no parameter)', async () => {
    const opt = new DistroOptimizer({
      lr: 1,
      compressionDecay: 0.5,
      compressionTopk: 64,
      compressionChunk: 4,
    });
    const vars = { a: track(tf.variable(tf.zeros([4]))), b: track(tf.variable(tf.ones([4]))) };
    opt.compress(vars, { a: track(tf.tensor1d([1, 2, 3, 4])) });
    opt.lr = 0;
    const r = opt.compress(vars, { b: undefined });
    expect(r.params.map((p) => p.name)).toEqual(['a', 'b']);
    expect(maxDiff(r.params[1]!.values, [0, 0, 0, 0])).toBeLessThan(1e-7);
    opt.apply(vars, [r]);
    expect(Array.from(vars.a.dataSync())).toEqual([0, 0, 0, 0]);
    expect(Array.from(vars.b.dataSync())).toEqual([1, 1, 1, 1]);
    opt.dispose();
  });

  it('1-bit: values are sign votes, exact zeros stay 0 (not +1), residual uses the unquantized values', async () => {
    const opt = new DistroOptimizer({
      lr: 1,
      compressionDecay: 0,
      compressionTopk: 2,
      compressionChunk: 4,
      quantize1bit: true,
    });
    const ref = new DistroOptimizer({ lr: 1, compressionDecay: 0, compressionTopk: 2, compressionChunk: 4 });
    const v = track(tf.variable(tf.zeros([8])));
    const g = track(tf.tensor1d([1, -3, 2, 0.5, 0, 0, 0, 0]));
    const q = opt.compress([v], [g]).params[0]!;
    const f = ref.compress([v], [g]).params[0]!;
    expect(q.indices).toEqual(f.indices);
    expect(Array.from(q.values)).toEqual(Array.from(f.values).map((x) => (x > 0 ? 1 : x < 0 ? -1 : 0)));
    expect(Array.from(q.values.slice(2))).toEqual([0, 0]); // all-zero second block
    const [wq, wf] = [await opt.getWeights(), await ref.getWeights()];
    expect(bits(wq[1]!.tensor)).toEqual(bits(wf[1]!.tensor));
    tf.dispose([...wq, ...wf].map((x) => x.tensor));
    opt.dispose();
    ref.dispose();
  });

  it('bfloat16 values are the float32 values rounded to nearest even; the residual keeps the exact values', async () => {
    const h = new DistroOptimizer({
      lr: 0.3,
      compressionTopk: 3,
      compressionChunk: 8,
      valueDtype: 'bfloat16',
    });
    const f = new DistroOptimizer({ lr: 0.3, compressionTopk: 3, compressionChunk: 8 });
    const v = track(tf.variable(tf.zeros([8, 16])));
    const g = track(tf.tensor(seeded(128, 21), [8, 16]));
    const ph = h.compress([v], [g]).params[0]!;
    const pf = f.compress([v], [g]).params[0]!;
    expect(ph.indices).toEqual(pf.indices);
    expect(Array.from(ph.values)).toEqual(Array.from(pf.values).map(roundToBf16));
    expect(Array.from(ph.values)).not.toEqual(Array.from(pf.values));
    const [wh, wf] = [await h.getWeights(), await f.getWeights()];
    expect(bits(wh[1]!.tensor)).toEqual(bits(wf[1]!.tensor));
    tf.dispose([...wh, ...wf].map((x) => x.tensor));
    h.dispose();
    f.dispose();
  });

  it('NaN/Inf gradients throw NON_FINITE_GRADIENT naming the parameter, count it, and leave state untouched', async () => {
    const opt = new DistroOptimizer({ lr: 0.1, compressionTopk: 2, compressionChunk: 4 });
    const vars = { a: track(tf.variable(tf.ones([4]))), b: track(tf.variable(tf.ones([4]))) };
    opt.compress(vars, { a: track(tf.tensor1d([1, 2, 3, 4])), b: track(tf.tensor1d([4, 3, 2, 1])) });
    const before = await opt.getWeights();
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      try {
        opt.compress(vars, { a: track(tf.tensor1d([1, 1, 1, 1])), b: track(tf.tensor1d([1, bad, 1, 1])) });
        expect.unreachable();
      } catch (e) {
        expect(e).toBeInstanceOf(DistroError);
        expect((e as DistroError).code).toBe('NON_FINITE_GRADIENT');
        expect((e as DistroError).param).toBe('b');
        expect((e as Error).message).toContain('grads["b"]');
      }
    }
    expect(opt.rejections.byCode.NON_FINITE_GRADIENT).toBe(3);
    const after = await opt.getWeights();
    expect(after.map((w) => bits(w.tensor))).toEqual(before.map((w) => bits(w.tensor)));
    tf.dispose([...before, ...after].map((w) => w.tensor));
    opt.dispose();
  });

  it('overflowing momentum throws NON_FINITE_MOMENTUM before any change', () => {
    const opt = new DistroOptimizer({ lr: 10, compressionTopk: 2, compressionChunk: 4 });
    const v = track(tf.variable(tf.zeros([4])));
    expect(() => opt.compress([v], [track(tf.tensor1d([3e38, 0, 0, 0]))])).toThrow(/overflow/);
    expect(opt.rejections.byCode.NON_FINITE_MOMENTUM).toBe(1);
    opt.dispose();
  });

  it('bad inputs are typed errors naming the field: shapes, names, dtypes, alignment', () => {
    const opt = new DistroOptimizer({ lr: 0.1 });
    const a = track(tf.variable(tf.zeros([4]), true, 'dup-a'));
    const i = track(tf.variable(tf.zeros([4], 'int32')));
    const cases: [() => unknown, string][] = [
      [() => opt.compress({ a }, { a: track(tf.zeros([5])) }), 'SHAPE_MISMATCH'],
      [() => opt.compress({ a }, { nope: track(tf.zeros([4])) }), 'UNKNOWN_PARAMETER'],
      [() => opt.compress([a, a], [null, null]), 'DUPLICATE_PARAMETER'],
      [() => opt.compress([a], []), 'INVALID_ARGUMENT'],
      [() => opt.compress({ i }, {}), 'UNSUPPORTED_DTYPE'],
      [() => opt.compress({ a }, { a: track(tf.zeros([4], 'int32')) }), 'UNSUPPORTED_DTYPE'],
      [() => opt.compress(null as never, {}), 'INVALID_ARGUMENT'],
      [() => opt.compress({ a: 3 as never }, {}), 'INVALID_ARGUMENT'],
    ];
    for (const [fn, code] of cases) {
      expect(fn).toThrow(DistroError);
      try {
        fn();
      } catch (e) {
        expect((e as DistroError).code).toBe(code);
      }
    }
    expect(opt.rejections.total).toBe(cases.length * 2);
    opt.dispose();
  });

  it('leaks no tensors: compress and apply add only the momentum and bases, then nothing; dispose frees them', () => {
    const vars = {
      w: track(tf.variable(tf.tensor(seeded(96 * 100, 1), [96, 100]))),
      b: track(tf.variable(tf.zeros([100]))),
    };
    const grads = {
      w: track(tf.tensor(seeded(96 * 100, 2), [96, 100])),
      b: track(tf.tensor(seeded(100, 3), [100])),
    };
    const base = tf.memory().numTensors;
    const opt = new DistroOptimizer({
      lr: 0.01,
      compressionTopk: 8,
      compressionChunk: 64,
      quantize1bit: backend === 'wasm',
    });
    opt.apply(vars, [opt.compress(vars, grads)]);
    const afterFirst = tf.memory().numTensors;
    expect(afterFirst).toBe(base + 2 + 4); // 2 momenta + bases C, Cᵀ for {48, 50}
    for (let s = 0; s < 3; s++) opt.apply(vars, [opt.compress(vars, grads)]);
    expect(tf.memory().numTensors).toBe(afterFirst);
    opt.dispose();
    expect(tf.memory().numTensors).toBe(base);
  });
});

/** 0/1 mask of the k largest |c| per row (ties to the lowest index), built independently in JS. */
function topkMask(c: tf.Tensor, k: number): tf.Tensor {
  const [rows, cols] = c.shape as [number, number];
  const d = c.dataSync();
  const m = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const idx = Array.from({ length: cols }, (_, j) => j);
    idx.sort((x, y) => Math.abs(d[r * cols + y]!) - Math.abs(d[r * cols + x]!) || x - y);
    for (const j of idx.slice(0, k)) m[r * cols + j] = 1;
  }
  return tf.tensor2d(m, [rows, cols]);
}
