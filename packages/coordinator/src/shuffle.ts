import { ascii, concatBytes, readU64le, sha256, u32le, u64le } from './bytes.js';
import { SHUFFLE_ROUNDS } from './constants.js';
import { CoordinatorError } from './errors.js';

/** Salts of the two per-round shuffles. */
export type ShuffleSalt = 'committee' | 'witness';

function checkTotal(total: number): void {
  if (!Number.isSafeInteger(total) || total < 1 || total > 0xffff_ffff) {
    throw new CoordinatorError('InvalidArgument', `total must be an integer in [1, 2^32 - 1], got ${total}`, {
      field: 'total',
      total,
    });
  }
}

/**
 * The 32-byte key of a round's committee or witness shuffle:
 * `sha256(sha256(u64_le(randomSeed)) || salt)` (docs/coordinator.md §9.1).
 */
export function deriveShuffleSeed(randomSeed: bigint, salt: ShuffleSalt): Uint8Array {
  return sha256(concatBytes(sha256(u64le(randomSeed)), ascii(salt)));
}

/**
 * Memoized hashes of one 32-byte shuffle seed: the 90 raw pivots and, lazily, the source hash of each
 * (round, pos / 256) block. Pure memoization (same results, fewer hashes): verifying 32 witnesses of a round, or
 * computing every position, reuses them. A small LRU keeps the last {@link SHUFFLE_CACHE_SIZE} seeds.
 */
interface ShuffleTables {
  seed: Uint8Array;
  pivots: bigint[];
  pivotsMod: Map<number, Uint32Array>;
  sources: Map<number, Uint8Array>[];
}

/** Number of seeds whose shuffle hashes are kept. */
export const SHUFFLE_CACHE_SIZE = 8;
const cache = new Map<string, ShuffleTables>();

function tablesFor(seed: Uint8Array): ShuffleTables {
  let key = '';
  for (const b of seed) key += String.fromCharCode(b);
  const hit = cache.get(key);
  if (hit !== undefined) {
    cache.delete(key);
    cache.set(key, hit);
    return hit;
  }
  const buf = new Uint8Array(33);
  buf.set(seed, 0);
  const pivots: bigint[] = [];
  for (let r = 0; r < SHUFFLE_ROUNDS; r++) {
    buf[32] = r;
    pivots.push(readU64le(sha256(buf)));
  }
  const t: ShuffleTables = {
    seed: seed.slice(),
    pivots,
    pivotsMod: new Map(),
    sources: Array.from({ length: SHUFFLE_ROUNDS }, () => new Map<number, Uint8Array>()),
  };
  cache.set(key, t);
  if (cache.size > SHUFFLE_CACHE_SIZE) cache.delete(cache.keys().next().value!);
  return t;
}

function pivotsMod(t: ShuffleTables, total: number): Uint32Array {
  let p = t.pivotsMod.get(total);
  if (p === undefined) {
    const n = BigInt(total);
    p = Uint32Array.from(t.pivots, (x) => Number(x % n));
    t.pivotsMod.set(total, p);
  }
  return p;
}

function source(t: ShuffleTables, r: number, block: number): Uint8Array {
  const m = t.sources[r]!;
  let src = m.get(block);
  if (src === undefined) {
    const buf = new Uint8Array(37);
    buf.set(t.seed, 0);
    buf[32] = r;
    buf.set(u32le(block), 33);
    src = sha256(buf);
    m.set(block, src);
  }
  return src;
}

function checkSeed(seed: Uint8Array): void {
  if (!(seed instanceof Uint8Array) || seed.length !== 32) {
    throw new CoordinatorError('InvalidArgument', 'seed must be 32 bytes', { field: 'seed' });
  }
}

/**
 * Position of `index` in the swap-or-not permutation of `0..total` keyed by `seed` (Ethereum beacon-chain style,
 * 90 rounds over SHA-256; docs/coordinator.md §9.1).
 *
 * @throws {CoordinatorError} `InvalidArgument` when `total < 1`, `index >= total` or `seed` is not 32 bytes.
 */
export function computeShuffledIndex(index: number, total: number, seed: Uint8Array): number {
  checkTotal(total);
  if (!Number.isSafeInteger(index) || index < 0 || index >= total) {
    throw new CoordinatorError('InvalidArgument', `index must be an integer in [0, ${total}), got ${index}`, {
      field: 'index',
      index,
      total,
    });
  }
  checkSeed(seed);
  const t = tablesFor(seed);
  const pivots = pivotsMod(t, total);
  let idx = index;
  for (let r = 0; r < SHUFFLE_ROUNDS; r++) {
    const flip = (pivots[r]! + total - idx) % total;
    const pos = Math.max(idx, flip);
    const src = source(t, r, Math.floor(pos / 256));
    if (((src[(pos & 255) >>> 3]! >> (pos & 7)) & 1) === 1) idx = flip;
  }
  return idx;
}

/**
 * Positions of every index `0..total` at once (same result as calling {@link computeShuffledIndex} per index,
 * with at most `90 · (1 + ceil(total / 256))` hashes). `result[i]` is the position of `i`.
 *
 * @throws {CoordinatorError} `InvalidArgument` when `total < 1` or `seed` is not 32 bytes.
 */
export function computeShuffledPositions(total: number, seed: Uint8Array): Uint32Array {
  checkTotal(total);
  checkSeed(seed);
  const t = tablesFor(seed);
  const pivots = pivotsMod(t, total);
  const blocks = Math.ceil(total / 256);
  const out = new Uint32Array(total);
  for (let i = 0; i < total; i++) out[i] = i;
  for (let r = 0; r < SHUFFLE_ROUNDS; r++) {
    const pivot = pivots[r]!;
    const sources: Uint8Array[] = new Array(blocks);
    for (let b = 0; b < blocks; b++) sources[b] = source(t, r, b);
    for (let i = 0; i < total; i++) {
      const idx = out[i]!;
      let flip = pivot + total - idx;
      if (flip >= total) flip -= total;
      if (flip >= total) flip -= total;
      const pos = Math.max(idx, flip);
      if (((sources[pos >>> 8]![(pos & 255) >>> 3]! >> (pos & 7)) & 1) === 1) out[i] = flip;
    }
  }
  return out;
}

/** LCG multiplier (Psyche `lcg.rs`). */
export const LCG_A = 6364136223846793005n;
/** LCG increment. */
export const LCG_C = 1442695040888963407n;
const MASK64 = (1n << 64n) - 1n;

/**
 * Psyche's 64-bit linear congruential generator: `state = state · A + C mod 2^64`, `next()` returns the new
 * state. Seeded with the state itself.
 */
export class Lcg {
  private state: bigint;
  constructor(seed: bigint) {
    this.state = seed & MASK64;
  }
  /** Advances and returns the new state. */
  next(): bigint {
    this.state = (this.state * LCG_A + LCG_C) & MASK64;
    return this.state;
  }
}

/**
 * Fisher–Yates with {@link Lcg}: for `i` from `len − 1` down to 1, `j = next() % (i + 1)`, swap `i` and `j`.
 * Returns a new array; `items` is not modified.
 */
export function deterministicShuffle<T>(items: readonly T[], seed: bigint): T[] {
  const out = items.slice();
  const rng = new Lcg(seed);
  for (let i = out.length - 1; i >= 1; i--) {
    const j = Number(rng.next() % BigInt(i + 1));
    const t = out[i]!;
    out[i] = out[j]!;
    out[j] = t;
  }
  return out;
}
