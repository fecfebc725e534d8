/**
 * Deterministic functions against hand-derived values and an independent SHA-256 (node:crypto), so the vectors
 * checked into fixtures/coordinator are not only self-consistent.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  assignBatches,
  batchSize,
  bloomAdd,
  bloomContains,
  bloomNumBits,
  CoordinatorError,
  commitmentHash,
  computeShuffledIndex,
  computeShuffledPositions,
  createBloom,
  deriveShuffleSeed,
  deterministicShuffle,
  effectiveWitnessNodes,
  emptyBloom,
  FNV_OFFSET_BASIS,
  FNV_PRIME,
  fnv1aKeyed,
  fnv1aKeyedMod,
  getCommittee,
  getWitnessIndices,
  isCoordinatorError,
  isWitness,
  LCG_A,
  LCG_C,
  Lcg,
  lrAt,
  type Round,
  roundSeed,
  SHUFFLE_CACHE_SIZE,
  sha256,
  toHex,
  validateBloom,
  witnessQuorum,
} from '../src/index.js';

const M64 = (1n << 64n) - 1n;
const nodeSha = (b: Uint8Array) => new Uint8Array(createHash('sha256').update(b).digest());
const u64le = (x: bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(x);
  return b;
};

/** Straight transcription of docs/coordinator.md §9.1 over node:crypto, one hash per step. */
function referenceShuffle(index: number, total: number, seed: Uint8Array): number {
  let idx = index;
  for (let r = 0; r < 90; r++) {
    const pivot = Number(
      Buffer.from(nodeSha(Buffer.concat([seed, Buffer.from([r])]))).readBigUInt64LE(0) % BigInt(total),
    );
    const flip = (pivot + total - idx) % total;
    const pos = Math.max(idx, flip);
    const p = Buffer.alloc(4);
    p.writeUInt32LE(Math.floor(pos / 256));
    const src = nodeSha(Buffer.concat([seed, Buffer.from([r]), p]));
    if (((src[Math.floor((pos % 256) / 8)]! >> (pos % 8)) & 1) === 1) idx = flip;
  }
  return idx;
}

const round = (clientsLen: number, randomSeed: bigint, dataIndex = 0): Round => ({
  witnesses: [],
  dataIndex,
  randomSeed,
  height: 0,
  clientsLen,
});

describe('sha256', () => {
  it('matches the FIPS 180-4 examples', () => {
    expect(toHex(sha256(new Uint8Array()))).toBe(
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
    expect(toHex(sha256(new TextEncoder().encode('abc')))).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
  });
});

describe('swap-or-not shuffle', () => {
  const seed = nodeSha(new TextEncoder().encode('seed'));

  it('total = 1 maps 0 to 0 (every pivot and flip is 0)', () => {
    expect(computeShuffledIndex(0, 1, seed)).toBe(0);
  });

  it('equals an independent transcription of the algorithm (node:crypto)', () => {
    for (const [i, n] of [
      [0, 2],
      [1, 2],
      [3, 7],
      [255, 300],
      [256, 300],
      [299, 300],
      [4000, 10000],
    ] as const) {
      expect(computeShuffledIndex(i, n, seed), `${i}/${n}`).toBe(referenceShuffle(i, n, seed));
    }
  });

  it('is a permutation, and the batched positions equal the per-index ones', () => {
    for (const n of [1, 2, 3, 31, 256, 257, 600]) {
      const all = computeShuffledPositions(n, seed);
      expect(new Set(all).size).toBe(n);
      for (const p of all) expect(p).toBeLessThan(n);
      for (let i = 0; i < n; i += Math.max(1, Math.floor(n / 13))) {
        expect(all[i]).toBe(computeShuffledIndex(i, n, seed));
      }
    }
  });

  it('derives per-purpose seeds as sha256(sha256(u64_le(seed)) || salt)', () => {
    const want = nodeSha(Buffer.concat([nodeSha(u64le(42n)), Buffer.from('witness')]));
    expect(toHex(deriveShuffleSeed(42n, 'witness'))).toBe(toHex(want));
    expect(toHex(deriveShuffleSeed(42n, 'committee'))).not.toBe(toHex(want));
  });

  it('rejects total 0, an index out of range and a short seed with InvalidArgument', () => {
    expect(() => computeShuffledIndex(0, 0, seed)).toThrow(/total/);
    expect(() => computeShuffledIndex(5, 5, seed)).toThrow(/index/);
    expect(() => computeShuffledIndex(0, 5, new Uint8Array(31))).toThrow(/seed/);
    try {
      computeShuffledPositions(0, seed);
      expect.unreachable();
    } catch (e) {
      expect(isCoordinatorError(e, 'InvalidArgument')).toBe(true);
      expect((e as CoordinatorError).number).toBe(21);
    }
  });
});

describe('LCG Fisher–Yates', () => {
  it('first LCG values by hand: C, then C·A + C mod 2^64', () => {
    const r = new Lcg(0n);
    expect(r.next()).toBe(LCG_C);
    expect(r.next()).toBe((LCG_C * LCG_A + LCG_C) & M64);
    // 6364136223846793005 · 1442695040888963407 + 1442695040888963407 mod 2^64 (Python: 1876011003808476466).
    expect((LCG_C * LCG_A + LCG_C) & M64).toBe(1876011003808476466n);
  });

  it('shuffles by hand: len 2 seed 0 keeps the order (j = C mod 2 = 1)', () => {
    expect(deterministicShuffle([10, 20], 0n)).toEqual([10, 20]);
  });

  it('matches values computed independently in Python', () => {
    expect(deterministicShuffle([0, 1, 2, 3, 4], 7n)).toEqual([4, 3, 2, 1, 0]);
    expect(deterministicShuffle([...Array(16).keys()], 12345n)).toEqual([
      1, 7, 3, 0, 6, 9, 5, 10, 2, 11, 13, 14, 15, 12, 8, 4,
    ]);
  });

  it('returns a permutation and leaves its input alone', () => {
    const input = [...Array(50).keys()];
    const out = deterministicShuffle(input, 99n);
    expect([...out].sort((a, b) => a - b)).toEqual(input);
    expect(input).toEqual([...Array(50).keys()]);
  });
});

describe('batch assignment', () => {
  it('10 sequences over 3 trainers: sizes 4, 3, 3 contiguous from 100, in shuffled order', () => {
    const got = assignBatches([0, 1, 2], 7n, 100, 10);
    expect(got.map((b) => [b.start, b.end])).toEqual([
      [100, 103],
      [104, 106],
      [107, 109],
    ]);
    expect(got.map((b) => b.index)).toEqual(deterministicShuffle([0, 1, 2], 7n));
  });

  it('fewer sequences than trainers: 2 sequences, 5 trainers -> two ranges of 1', () => {
    const got = assignBatches([1, 2, 3, 4, 5], 3n, 0, 2);
    expect(got.map((b) => [b.start, b.end])).toEqual([
      [0, 0],
      [1, 1],
    ]);
    expect(assignBatches([], 1n, 0, 5)).toEqual([]);
  });

  it('ranges are disjoint and cover the global batch exactly', () => {
    for (const [t, total] of [
      [1, 16],
      [7, 100],
      [40, 16],
      [256, 65535],
    ] as const) {
      const got = assignBatches([...Array(t).keys()], BigInt(t * 31), 500, total);
      let next = 500;
      for (const b of got) {
        expect(b.start).toBe(next);
        expect(b.end).toBeGreaterThanOrEqual(b.start);
        next = b.end + 1;
      }
      expect(next).toBe(500 + total);
      const sizes = got.map((b) => b.end - b.start + 1);
      expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
    }
  });
});

describe('batch-size ramp', () => {
  const cfg = { globalBatchSizeStart: 10, globalBatchSizeEnd: 17, globalBatchSizeWarmupTokens: 4096 };
  it('hand-derived points (seq len 64)', () => {
    expect(batchSize(cfg, 64, 0)).toBe(10); // tokens 0
    expect(batchSize(cfg, 64, 32)).toBe(14); // 10 + 7 · 2048/4096 = 13.5 → rounds half away from zero → 14
    expect(batchSize(cfg, 64, 16)).toBe(12); // 10 + 7 · 0.25 = 11.75 → 12
    expect(batchSize(cfg, 64, 64)).toBe(17); // tokens 4096 >= warmup → end
    expect(batchSize({ ...cfg, globalBatchSizeWarmupTokens: 0 }, 64, 0)).toBe(17);
  });
  it('saturates the u64 token count instead of overflowing', () => {
    expect(
      batchSize(
        { ...cfg, globalBatchSizeWarmupTokens: Number.MAX_SAFE_INTEGER },
        1_048_576,
        Number.MAX_SAFE_INTEGER,
      ),
    ).toBe(17);
  });
});

describe('LR schedules (tolerance: 1e-15 absolute)', () => {
  const close = (a: number, b: number) => expect(Math.abs(a - b)).toBeLessThanOrEqual(1e-15);
  it('constant with warmup: linear from warmupInitLr', () => {
    const s = { type: 'constant', baseLr: 0.001, warmupInitLr: 0.0001, warmupSteps: 10 } as const;
    close(lrAt(s, 5), 0.00055); // 0.0001 + 0.0009 · 5/10
    close(lrAt(s, 10), 0.001);
    close(lrAt(s, 1_000_000), 0.001);
  });
  it('linear: halfway is the mean, clamped at the end', () => {
    const s = {
      type: 'linear',
      baseLr: 0.001,
      warmupInitLr: 0,
      warmupSteps: 4,
      totalSteps: 104,
      finalLr: 0.0001,
    } as const;
    close(lrAt(s, 2), 0.0005);
    close(lrAt(s, 54), 0.00055); // p = 50/100
    close(lrAt(s, 104), 0.0001);
    close(lrAt(s, 500), 0.0001);
  });
  it('cosine: base at p=0, midpoint at p=0.5, final at p=1', () => {
    const s = {
      type: 'cosine',
      baseLr: 0.0006,
      warmupInitLr: 0,
      warmupSteps: 100,
      totalSteps: 1100,
      finalLr: 0.00006,
    } as const;
    close(lrAt(s, 100), 0.0006);
    close(lrAt(s, 600), 0.00033); // 0.00006 + 0.00054 · 0.5 · (1 + cos(π/2))
    close(lrAt(s, 1100), 0.00006);
    close(lrAt(s, 350), 0.00006 + 0.00054 * 0.5 * (1 + Math.SQRT1_2)); // cos(π/4)
  });
  it('warmup-stable-decay segments', () => {
    const s = {
      type: 'wsd',
      baseLr: 0.0002,
      warmupInitLr: 0,
      warmupSteps: 2000,
      stableSteps: 161000,
      cosineDecaySteps: 150000,
      cosineDecayFinalLr: 0.00002,
      linearDecaySteps: 12000,
      linearDecayFinalLr: 0.00001,
    } as const;
    close(lrAt(s, 1000), 0.0001);
    close(lrAt(s, 100000), 0.0002);
    close(lrAt(s, 163000), 0.0002); // first cosine step, c = 0
    close(lrAt(s, 238000), 0.00011); // c = 75000: 0.00002 + 0.00018 · 0.5
    close(lrAt(s, 313000), 0.00002); // first linear step
    close(lrAt(s, 319000), 0.000015); // halfway through the linear decay
    close(lrAt(s, 400000), 0.00001);
  });
  it('rejects step 0', () => {
    expect(() => lrAt({ type: 'constant', baseLr: 1, warmupInitLr: 0, warmupSteps: 0 }, 0)).toThrow(/step/);
  });
});

describe('keyed FNV-1a and bloom filters', () => {
  const enc = (s: string) => new TextEncoder().encode(s);
  it('unkeyed FNV-1a 64 published vectors (offset basis as key)', () => {
    expect(fnv1aKeyed(FNV_OFFSET_BASIS, enc(''))).toBe(0xcbf29ce484222325n);
    expect(fnv1aKeyed(FNV_OFFSET_BASIS, enc('a'))).toBe(0xaf63dc4c8601ec8cn);
    expect(fnv1aKeyed(FNV_OFFSET_BASIS, enc('foobar'))).toBe(0x85944171f73967e8n);
    expect(fnv1aKeyed(0n, new Uint8Array([1]))).toBe(FNV_PRIME); // (0 ^ 1) · prime
  });
  it('sizes blooms with ceil(-n ln p / ln² 2), clamped to [1, 1024]', () => {
    expect(bloomNumBits(0, 0.01)).toBe(1);
    expect(bloomNumBits(1, 0.01)).toBe(10); // 4.60517 / 0.480453 = 9.585
    expect(bloomNumBits(10, 0.01)).toBe(96); // 95.85
    expect(bloomNumBits(107, 0.01)).toBe(1024); // 1025.6 capped
  });
  it('has no false negatives, sets only bits below numBits, and places bits by hand', () => {
    const b = createBloom(100, [1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n]);
    for (let i = 0; i < 40; i++) bloomAdd(b, new Uint8Array([i]));
    for (let i = 0; i < 40; i++) expect(bloomContains(b, new Uint8Array([i]))).toBe(true);
    expect(b.bits[1]! >> 36n).toBe(0n);
    expect(b.bits.slice(2).every((w) => w === 0n)).toBe(true);
    validateBloom(b, 'b');
    // One key 0 on item [1]: bit FNV_PRIME mod 64 = 0x1b3 mod 64 = 51 (2^40 ≡ 0 mod 64).
    const one = createBloom(64, [0n, 0n, 0n, 0n, 0n, 0n, 0n, 0n]);
    bloomAdd(one, new Uint8Array([1]));
    expect(one.bits[0]).toBe(1n << 51n);
    expect(bloomContains(emptyBloom(), new Uint8Array([1]))).toBe(false);
  });
  it('validateBloom rejects out-of-range numBits, stray bits and bad shapes', () => {
    const b = createBloom(10, [1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n]);
    expect(() => validateBloom({ ...b, numBits: 1025 }, 'pb')).toThrow(/pb: numBits/);
    expect(() => validateBloom({ ...b, bits: [1n << 10n, ...b.bits.slice(1)] }, 'pb')).toThrow(
      /beyond numBits/,
    );
    expect(() => validateBloom({ ...b, keys: b.keys.slice(1) }, 'pb')).toThrow(/keys/);
    expect(() => validateBloom({ ...b, bits: b.bits.map(() => -1n) }, 'pb')).toThrow(/bits/);
    expect(() => validateBloom(null, 'pb')).toThrow(/object/);
  });
});

describe('committees, witnesses and quorum', () => {
  it('quorum table', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 32].map(witnessQuorum)).toEqual([0, 1, 2, 2, 2, 3, 4, 21]);
  });
  it('witness_nodes = 0 means up to 32', () => {
    expect(effectiveWitnessNodes(0, 10)).toBe(10);
    expect(effectiveWitnessNodes(0, 100)).toBe(32);
    expect(effectiveWitnessNodes(5, 3)).toBe(3);
  });
  it('exactly effectiveWitnessNodes witnesses, and isWitness agrees with getWitnessIndices', () => {
    for (const [n, w] of [
      [1, 0],
      [5, 0],
      [40, 0],
      [256, 0],
      [10, 3],
    ] as const) {
      const r = round(n, BigInt(99 + n));
      const idx = getWitnessIndices({ witnessNodes: w }, r);
      expect(idx.length).toBe(effectiveWitnessNodes(w, n));
      for (let i = 0; i < n; i += Math.max(1, Math.floor(n / 9))) {
        expect(isWitness({ witnessNodes: w }, r, i)).toBe(idx.includes(i));
      }
    }
  });
  it('everyone is a Trainer with verification 0; index out of range throws InvalidClientIndex', () => {
    const r = round(12, 5n);
    for (let i = 0; i < 12; i++) expect(getCommittee({ verificationPercent: 0 }, r, i).committee).toBe(2);
    expect(() => getCommittee({ verificationPercent: 0 }, r, 12)).toThrow(CoordinatorError);
    expect(() => isWitness({ witnessNodes: 0 }, r, -1)).toThrow(/index/);
  });
});

describe('commitment hash and round seed', () => {
  it('commitment = sha256(u32_be step || u64_be start || u64_be end || payload)', () => {
    const buf = Buffer.alloc(20);
    buf.writeUInt32BE(7, 0);
    buf.writeBigUInt64BE(1000n, 4);
    buf.writeBigUInt64BE(1015n, 12);
    const want = nodeSha(Buffer.concat([buf, Buffer.from([0xde, 0xad])]));
    expect(toHex(commitmentHash(7, { start: 1000, end: 1015 }, new Uint8Array([0xde, 0xad])))).toBe(
      toHex(want),
    );
    expect(() => commitmentHash(7, { start: 5, end: 4 }, new Uint8Array())).toThrow(/batch/);
  });
  it('round seed = first 8 LE bytes of the documented preimage; independent of witness order', () => {
    const m = (k: number) => toHex(nodeSha(Buffer.from([k])));
    const u32 = (x: number) => {
      const b = Buffer.alloc(4);
      b.writeUInt32LE(x);
      return b;
    };
    const pre = Buffer.concat([
      Buffer.from('psyche-ts/round-seed/v1'),
      u64le(99n),
      u64le(12345n),
      u32(3),
      u32(17),
      u32(2),
      u32(2),
      Buffer.from(m(2), 'hex'),
      u32(7),
      Buffer.from(m(7), 'hex'),
    ]);
    const want = Buffer.from(nodeSha(pre)).readBigUInt64LE(0);
    const a = roundSeed(99n, 12345n, 3, 17, [
      { index: 7, broadcastMerkle: m(7) },
      { index: 2, broadcastMerkle: m(2) },
    ]);
    const b = roundSeed(99n, 12345n, 3, 17, [
      { index: 2, broadcastMerkle: m(2) },
      { index: 7, broadcastMerkle: m(7) },
    ]);
    expect(a).toBe(want);
    expect(b).toBe(want);
    // Any witness merkle changes the seed.
    expect(
      roundSeed(99n, 12345n, 3, 17, [
        { index: 2, broadcastMerkle: m(3) },
        { index: 7, broadcastMerkle: m(7) },
      ]),
    ).not.toBe(want);
  });
});

describe('fast paths equal their references', () => {
  it('fnv1aKeyedMod(key, data, m) === fnv1aKeyed(key, data) % m for varied keys, data and moduli', () => {
    let x = 0x9e3779b97f4a7c15n;
    for (let i = 0; i < 500; i++) {
      x = (x * 6364136223846793005n + 1442695040888963407n) & M64;
      const data = new Uint8Array((i % 40) + 1).map((_, j) => Number((x >> BigInt(j % 56)) & 255n));
      const m = 1 + (i % 1024);
      expect(fnv1aKeyedMod(x, data, m)).toBe(Number(fnv1aKeyed(x, data) % BigInt(m)));
    }
    expect(fnv1aKeyedMod(M64, new Uint8Array([255, 255]), 1021)).toBe(
      Number(fnv1aKeyed(M64, new Uint8Array([255, 255])) % 1021n),
    );
  });

  it('the memoized shuffle gives the reference result across more seeds than the cache holds', () => {
    const seeds = Array.from({ length: SHUFFLE_CACHE_SIZE + 3 }, (_, k) => nodeSha(new Uint8Array([k, 9])));
    for (let pass = 0; pass < 2; pass++) {
      for (const [k, sd] of seeds.entries()) {
        const n = 50 + k * 37;
        const i = (k * 13) % n;
        expect(computeShuffledIndex(i, n, sd)).toBe(referenceShuffle(i, n, sd));
        expect(computeShuffledPositions(n, sd)[i]).toBe(referenceShuffle(i, n, sd));
      }
    }
  });
});
