import * as tf from '@tensorflow/tfjs-core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DISTRO_WIRE_VERSION,
  DistroCodecError,
  type DistroCodecErrorCode,
  type DistroLayout,
  DistroOptimizer,
  type DistroParamResult,
  DistroRejectionStats,
  type DistroResult,
  decodeDistroResult,
  encodeDistroResult,
  paramLayout,
  roundToBf16,
  sameWireConfig,
  validateDistroResult,
} from '../src/index.js';
import { bits, seeded, useBackend } from './helpers.js';

/** A valid, canonical parameter result with random indices/values (seeded). */
function makeParam(
  name: string,
  shape: number[],
  chunk: number,
  topk: number,
  q: boolean,
  seed: number,
  bf16 = false,
): DistroParamResult {
  const l = paramLayout(shape, chunk, topk);
  const rnd = seeded(l.numBlocks * (l.blockSize + l.k), seed);
  const indices = new Int32Array(l.numBlocks * l.k);
  const values = new Float32Array(l.numBlocks * l.k);
  let r = 0;
  for (let b = 0; b < l.numBlocks; b++) {
    // choose k distinct indices by ranking random keys, then sort ascending
    const keys = Array.from({ length: l.blockSize }, (_, j) => [rnd[r++]!, j] as const);
    keys.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
    const chosen = keys
      .slice(0, l.k)
      .map(([, j]) => j)
      .sort((x, y) => x - y);
    chosen.forEach((j, t) => {
      indices[b * l.k + t] = j;
      const v = rnd[r++]!;
      values[b * l.k + t] = q ? (Math.abs(v) < 0.1 ? 0 : Math.sign(v)) : bf16 ? roundToBf16(v) : v;
    });
  }
  return { name, shape, n1: l.n1, n2: l.n2, k: l.k, indices, values };
}

function makeResult(q: boolean, chunk = 8, topk = 3, bf16 = false): DistroResult {
  return {
    version: DISTRO_WIRE_VERSION,
    config: {
      compressionChunk: chunk,
      compressionTopk: topk,
      quantize1bit: q,
      valueDtype: bf16 ? 'bfloat16' : 'float32',
    },
    params: [
      makeParam('layers.0/w', [16, 24], chunk, topk, q, 1, bf16),
      makeParam('bias', [7], chunk, topk, q, 2, bf16),
      makeParam('scale', [], chunk, topk, q, 3, bf16),
      makeParam('moe', [2, 3, 8, 8], chunk, topk, q, 4, bf16),
    ],
  };
}

function codeOf(fn: () => unknown): DistroCodecErrorCode | 'none' | 'other' {
  try {
    fn();
    return 'none';
  } catch (e) {
    return e instanceof DistroCodecError ? e.code : 'other';
  }
}

function expectEqualResults(a: DistroResult, b: DistroResult): void {
  expect(sameWireConfig(a.config, b.config)).toBe(true);
  expect(b.params.length).toBe(a.params.length);
  a.params.forEach((p, i) => {
    const q = b.params[i]!;
    expect([q.name, q.shape, q.n1, q.n2, q.k]).toEqual([p.name, [...p.shape], p.n1, p.n2, p.k]);
    expect(q.indices).toEqual(p.indices);
    expect(bits(q.values)).toEqual(bits(p.values));
  });
}

describe('wire codec round trips', () => {
  it.each([
    ['float32', false, false],
    ['1-bit', true, false],
    ['bfloat16', false, true],
  ])('encode → decode is lossless (%s values)', (_label, q, bf16) => {
    const r = makeResult(q, 8, 3, bf16);
    const bytes = encodeDistroResult(r);
    expectEqualResults(r, decodeDistroResult(bytes));
    // canonical: re-encoding gives identical bytes
    expect(encodeDistroResult(decodeDistroResult(bytes))).toEqual(bytes);
  });

  it('has the documented size: header + per-param layout + u8/u16/u32 indices + f32 values or sign bits', () => {
    // [64, 64] chunk 64 topk 32: 1 block of 4096 → u16; [300] chunk 300: block 300 → u16; [16] → u8.
    const cases: [number[], number, number, 1 | 2 | 4][] = [
      [[64, 64], 64, 32, 2],
      [[16], 64, 32, 1],
      [[512, 512], 512, 2, 4],
    ];
    for (const [shape, chunk, topk, width] of cases) {
      for (const q of [false, true]) {
        const p = makeParam('p', shape, chunk, topk, false, 9);
        const r = {
          version: 1,
          config: { compressionChunk: chunk, compressionTopk: topk, quantize1bit: q },
          params: [p],
        };
        const valuesQ = { ...p, values: p.values.map((v) => (v < 0 ? -1 : 1)) };
        const bytes = encodeDistroResult(q ? { ...r, params: [valuesQ] } : r);
        const n = p.indices.length;
        const header = 4 + 1 + 1 + 12;
        const perParam = 2 + 1 + 1 + 4 * shape.length + 12 + 1 + (q ? 1 : 0);
        expect(bytes.length).toBe(header + perParam + n * width + (q ? Math.ceil(n / 8) : 4 * n));
        expect(decodeDistroResult(bytes).params[0]!.indices).toEqual(p.indices);
      }
    }
  });

  it('1-bit layout is Psyche-compatible: sign bits LSB-first, bit 1 = negative; zeros use an extra bitmap', () => {
    const p: DistroParamResult = {
      name: 'v',
      shape: [10],
      n1: 1,
      n2: 10,
      k: 10,
      indices: Int32Array.from({ length: 10 }, (_, i) => i),
      values: Float32Array.from([-1, 1, 1, -1, 1, 1, 1, 1, -1, 1]),
    };
    const r = {
      version: 1,
      config: { compressionChunk: 64, compressionTopk: 32, quantize1bit: true },
      params: [p],
    };
    const bytes = encodeDistroResult(r);
    // last 2 bytes are the signs: bits 0, 3 and 8 set → 0b00001001, 0b00000001
    expect(Array.from(bytes.slice(-2))).toEqual([0b1001, 0b1]);
    const withZero = {
      ...r,
      params: [{ ...p, values: Float32Array.from([-1, 0, 1, -1, 1, 1, 1, 1, -1, 0]) }],
    };
    const zb = encodeDistroResult(withZero);
    expect(zb.length).toBe(bytes.length + 2);
    expect(Array.from(zb.slice(-2))).toEqual([0b10, 0b10]); // zero bitmap: positions 1 and 9
    expect(Array.from(decodeDistroResult(zb).params[0]!.values)).toEqual([-1, 0, 1, -1, 1, 1, 1, 1, -1, 0]);
  });

  it('bfloat16 values: 2 bytes each (upper half of the float32), round-to-nearest-even', () => {
    const f = makeResult(false);
    const h = makeResult(false, 8, 3, true);
    const n = f.params.reduce((a, p) => a + p.values.length, 0);
    expect(encodeDistroResult(f).length - encodeDistroResult(h).length).toBe(2 * n);
    // Hand-derived: 1 + 2^-8 is exactly halfway between bf16 1.0 (0x3F80) and 1.0078125 (0x3F81) → even → 1.0;
    // 1 + 3·2^-8 is halfway between 0x3F81 and 0x3F82 (1.015625) → even → 1.015625; just above half rounds up.
    expect(roundToBf16(1 + 2 ** -8)).toBe(1);
    expect(roundToBf16(1 + 3 * 2 ** -8)).toBe(1.015625);
    expect(roundToBf16(1 + 2 ** -8 + 2 ** -20)).toBe(1.0078125);
    expect(roundToBf16(-2.5)).toBe(-2.5);
    expect(roundToBf16(3.4e38)).toBe(3.3895313892515355e38); // saturates to the largest finite bf16
    const p: DistroParamResult = {
      name: 'v',
      shape: [2],
      n1: 1,
      n2: 2,
      k: 2,
      indices: Int32Array.from([0, 1]),
      values: Float32Array.from([1.0078125, -2]),
    };
    const bytes = encodeDistroResult({
      version: 1,
      config: { compressionChunk: 64, compressionTopk: 32, quantize1bit: false, valueDtype: 'bfloat16' },
      params: [p],
    });
    expect(Array.from(bytes.slice(-4))).toEqual([0x81, 0x3f, 0x00, 0xc0]); // 0x3F81, 0xC000 little-endian
  });

  it('`received.map(decodeDistroResult)` works (the array index passed as 2nd argument is ignored)', () => {
    const received = [encodeDistroResult(makeResult(false)), encodeDistroResult(makeResult(true))];
    const peers: DistroResult[] = received.map(decodeDistroResult);
    expect(peers.map((p) => p.config.quantize1bit)).toEqual([false, true]);
  });
});

describe('decodeDistroResult rejects bad input with a typed error naming the parameter', () => {
  const good = encodeDistroResult(makeResult(false));
  const goodQ = encodeDistroResult(makeResult(true));
  const goodH = encodeDistroResult(makeResult(false, 8, 3, true));
  const patch = (src: Uint8Array, at: number, bytes: number[]) => {
    const c = src.slice();
    c.set(bytes, at);
    return c;
  };
  // Offsets in `good`: header 18 bytes, then param 0: nameLen u16 (10) "layers.0/w", rank @30, dims @31..38,
  // n1 @39, n2 @43, k @47, width @51, indices @52 (6 blocks · 3 = 18 u8), values @70 (18 f32).
  const P0 = 18;

  it.each<[string, () => Uint8Array, DistroCodecErrorCode, string | undefined]>([
    ['empty input', () => new Uint8Array(0), 'TRUNCATED', undefined],
    ['truncated in the header', () => good.slice(0, 10), 'TRUNCATED', undefined],
    ['truncated in the values', () => good.slice(0, good.length - 1), 'TRUNCATED', 'moe'],
    ['trailing bytes', () => Uint8Array.from([...good, 0]), 'OVERSIZED', undefined],
    ['bad magic', () => patch(good, 0, [0x50, 0x53, 0x44, 0x53]), 'BAD_MAGIC', undefined],
    ['wrong version', () => patch(good, 4, [2]), 'UNSUPPORTED_VERSION', undefined],
    ['unknown flag bits', () => patch(good, 5, [0x82]), 'INVALID_FIELD', undefined],
    ['zero chunk', () => patch(good, 6, [0, 0, 0, 0]), 'INVALID_FIELD', undefined],
    ['absurd param count', () => patch(good, 14, [0xff, 0xff, 0xff, 0x7f]), 'TRUNCATED', undefined],
    ['invalid UTF-8 name', () => patch(good, P0 + 2, [0xff]), 'INVALID_NAME', undefined],
    ['rank above 8', () => patch(good, P0 + 12, [9]), 'INVALID_SHAPE', 'layers.0/w'],
    ['zero dimension', () => patch(good, P0 + 13, [0, 0, 0, 0]), 'INVALID_SHAPE', 'layers.0/w'],
    ['layout not implied by shape', () => patch(good, P0 + 21, [4]), 'LAYOUT_MISMATCH', 'layers.0/w'],
    ['k not implied by topk', () => patch(good, P0 + 29, [2]), 'LAYOUT_MISMATCH', 'layers.0/w'],
    ['index width wrong', () => patch(good, P0 + 33, [2]), 'INVALID_FIELD', 'layers.0/w'],
    ['index out of block range', () => patch(good, P0 + 34 + 2, [64]), 'INDEX_OUT_OF_RANGE', 'layers.0/w'],
    ['indices not ascending', () => patch(good, P0 + 34, [63]), 'NON_CANONICAL_INDICES', 'layers.0/w'],
    ['NaN value', () => patch(good, P0 + 52, [0, 0, 0xc0, 0x7f]), 'NON_FINITE_VALUE', 'layers.0/w'],
    ['Inf value', () => patch(good, P0 + 52 + 4, [0, 0, 0x80, 0x7f]), 'NON_FINITE_VALUE', 'layers.0/w'],
    ['1-bit padding bits set', () => patch(goodQ, goodQ.length - 1, [0xff]), 'INVALID_FIELD', 'moe'],
    ['both 1-bit and bf16 flags', () => patch(good, 5, [3]), 'INVALID_FIELD', undefined],
    ['bf16 NaN value', () => patch(goodH, goodH.length - 2, [0xc0, 0x7f]), 'NON_FINITE_VALUE', 'moe'],
  ])('%s', (_label, make, code, param) => {
    const stats = new DistroRejectionStats();
    try {
      decodeDistroResult(make(), { expected: undefined, stats });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(DistroCodecError);
      expect((e as DistroCodecError).code).toBe(code);
      expect((e as DistroCodecError).param).toBe(param);
      if (param !== undefined) expect((e as Error).message).toContain(`"${param}"`);
    }
    expect(stats.byCode[code]).toBe(1);
  });

  it('duplicate parameters', () => {
    const r = makeResult(false);
    const dup = { ...r, params: [r.params[1]!, r.params[1]!] };
    expect(codeOf(() => encodeDistroResult(dup))).toBe('DUPLICATE_PARAMETER');
    // hand-build the bytes: the same parameter record twice
    const one = encodeDistroResult({ ...r, params: [r.params[1]!] });
    const rec = one.slice(18);
    const bytes = new Uint8Array(18 + 2 * rec.length);
    bytes.set(one.slice(0, 18));
    bytes[14] = 2;
    bytes.set(rec, 18);
    bytes.set(rec, 18 + rec.length);
    expect(codeOf(() => decodeDistroResult(bytes))).toBe('DUPLICATE_PARAMETER');
  });

  it('against the local model: unknown parameter, shape mismatch, settings mismatch, maxBytes', () => {
    const r = makeResult(false);
    const bytes = encodeDistroResult(r);
    const params = new Map(r.params.map((p) => [p.name, p.shape]));
    const layout: DistroLayout = { config: r.config, params };
    expect(decodeDistroResult(bytes, { expected: layout }).params.length).toBe(4);
    const noBias = new Map(params);
    noBias.delete('bias');
    expect(codeOf(() => decodeDistroResult(bytes, { expected: { ...layout, params: noBias } }))).toBe(
      'UNKNOWN_PARAMETER',
    );
    const otherShape = new Map(params).set('bias', [8]);
    expect(codeOf(() => decodeDistroResult(bytes, { expected: { ...layout, params: otherShape } }))).toBe(
      'SHAPE_MISMATCH',
    );
    const otherCfg = { ...layout, config: { ...r.config, compressionTopk: 4 } };
    expect(codeOf(() => decodeDistroResult(bytes, { expected: otherCfg }))).toBe('CONFIG_MISMATCH');
    expect(codeOf(() => decodeDistroResult(bytes, { maxBytes: bytes.length - 1 }))).toBe('OVERSIZED');
    expect(codeOf(() => decodeDistroResult('nope' as never))).toBe('INVALID_INPUT');
  });

  it('validateDistroResult rejects hand-built results (wrong lengths, types, values)', () => {
    const r = makeResult(true);
    const p = r.params[0]!;
    const withParam = (q: Partial<DistroParamResult>) => ({ ...r, params: [{ ...p, ...q }] });
    expect(codeOf(() => validateDistroResult(withParam({ indices: p.indices.slice(1) })))).toBe(
      'INVALID_FIELD',
    );
    expect(codeOf(() => validateDistroResult(withParam({ values: Array.from(p.values) as never })))).toBe(
      'INVALID_FIELD',
    );
    expect(codeOf(() => validateDistroResult(withParam({ values: p.values.map(() => 0.5) })))).toBe(
      'INVALID_VALUE',
    );
    expect(codeOf(() => validateDistroResult(withParam({ name: '' })))).toBe('INVALID_NAME');
    const h = makeResult(false, 8, 3, true);
    const hp = h.params[0]!;
    const notBf16 = {
      ...h,
      params: [{ ...hp, values: hp.values.map((v, i) => (i === 0 ? 1 + 2 ** -10 : v)) }],
    };
    expect(codeOf(() => validateDistroResult(notBf16))).toBe('INVALID_VALUE');
    expect(
      codeOf(() => validateDistroResult({ ...r, config: { ...r.config, valueDtype: 'bfloat16' } })),
    ).toBe('INVALID_FIELD');
    expect(codeOf(() => validateDistroResult({ ...r, version: 7 }))).toBe('UNSUPPORTED_VERSION');
    expect(codeOf(() => validateDistroResult(null as never))).toBe('INVALID_INPUT');
    expect(
      codeOf(() => validateDistroResult({ ...r, config: { ...r.config, quantize1bit: 1 as never } })),
    ).toBe('INVALID_FIELD');
  });
});

describe('property-based (fast-check): nothing but DistroCodecError escapes the decoder', () => {
  const valid = [
    encodeDistroResult(makeResult(false)),
    encodeDistroResult(makeResult(true)),
    encodeDistroResult(makeResult(false, 8, 3, true)),
  ];
  const layout: DistroLayout = {
    config: makeResult(false).config,
    params: new Map(makeResult(false).params.map((p) => [p.name, p.shape])),
  };
  const check = (bytes: Uint8Array) => {
    for (const opts of [undefined, { expected: layout }]) {
      try {
        const r = decodeDistroResult(bytes, opts);
        // anything accepted is valid and re-encodes to the same bytes (canonical, bijective)
        validateDistroResult(r);
        expect(encodeDistroResult(r)).toEqual(bytes);
      } catch (e) {
        if (!(e instanceof DistroCodecError)) throw e;
      }
    }
  };

  it('arbitrary bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 400 }), check), { numRuns: 1500, seed: 42 });
  });

  it('arbitrary bytes after a valid header', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (tail) =>
        check(Uint8Array.from([...valid[0]!.slice(0, 18), ...tail])),
      ),
      { numRuns: 1000, seed: 43 },
    );
  });

  it('mutations of valid encodings: byte edits, truncations, insertions', () => {
    const mutation = fc.record({
      which: fc.integer({ min: 0, max: 2 }),
      edits: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
      cut: fc.option(fc.nat(), { nil: undefined }),
      insert: fc.option(fc.tuple(fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 8 })), {
        nil: undefined,
      }),
    });
    fc.assert(
      fc.property(mutation, ({ which, edits, cut, insert }) => {
        let b = valid[which]!.slice();
        for (const [at, v] of edits) b[at % b.length] = v;
        if (insert !== undefined) {
          const at = insert[0] % b.length;
          b = Uint8Array.from([...b.slice(0, at), ...insert[1], ...b.slice(at)]);
        }
        if (cut !== undefined) b = b.slice(0, cut % (b.length + 1));
        check(b);
      }),
      { numRuns: 3000, seed: 44 },
    );
  });

  it('random valid results round-trip exactly', () => {
    const arb = fc.record({
      q: fc.boolean(),
      bf16: fc.boolean(),
      chunk: fc.integer({ min: 1, max: 20 }),
      topk: fc.integer({ min: 1, max: 40 }),
      shapes: fc.array(fc.array(fc.integer({ min: 1, max: 12 }), { maxLength: 3 }), {
        minLength: 1,
        maxLength: 3,
      }),
      seed: fc.nat(),
    });
    fc.assert(
      fc.property(arb, ({ q, bf16, chunk, topk, shapes, seed }) => {
        const h = bf16 && !q;
        const r: DistroResult = {
          version: 1,
          config: {
            compressionChunk: chunk,
            compressionTopk: topk,
            quantize1bit: q,
            valueDtype: h ? 'bfloat16' : 'float32',
          },
          params: shapes.map((s, i) => makeParam(`p${i}`, s, chunk, topk, q, seed + i, h)),
        };
        expectEqualResults(r, decodeDistroResult(encodeDistroResult(r)));
      }),
      { numRuns: 300, seed: 45 },
    );
  });
});

describe('codec with real optimizer output', () => {
  useBackend('wasm');
  it('a compressed step encodes, decodes against layoutOf(vars), and leaks no tensors', () => {
    const vars = {
      w: tf.variable(tf.tensor(seeded(96 * 128, 5), [96, 128])),
      b: tf.variable(tf.zeros([128])),
    };
    const opt = new DistroOptimizer({
      lr: 0.01,
      compressionTopk: 8,
      compressionChunk: 64,
      quantize1bit: true,
    });
    const g = { w: tf.tensor(seeded(96 * 128, 6), [96, 128]), b: tf.tensor(seeded(128, 7), [128]) };
    const mine = opt.compress(vars, g);
    const before = tf.memory().numTensors;
    const back = decodeDistroResult(encodeDistroResult(mine), { expected: opt.layoutOf(vars) });
    expect(tf.memory().numTensors).toBe(before);
    expectEqualResults(mine, back);
    tf.dispose([...Object.values(vars), ...Object.values(g)]);
    opt.dispose();
  });
});
