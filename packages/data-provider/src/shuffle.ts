import { createHash } from 'node:crypto';
import { DataProviderError } from './errors.js';

/** A shuffle seed: 32 raw bytes (like Psyche's `Shuffle::Seeded([u8; 32])`), a string, or an integer. */
export type ShuffleSeed = Uint8Array | string | number | bigint;

/** Canonical bytes of a seed: raw bytes as-is, strings as UTF-8 prefixed `s:`, integers as `n:` + u64 LE. */
function seedBytes(seed: ShuffleSeed): Uint8Array {
  if (seed instanceof Uint8Array) return seed;
  if (typeof seed === 'string') return Buffer.from(`s:${seed}`, 'utf8');
  const n = BigInt(seed);
  if (n < 0n || n >= 2n ** 64n) {
    throw new DataProviderError('INVALID_PARAMETER', `shuffleSeed must be in [0, 2^64), got ${seed}`, {
      parameter: 'shuffleSeed',
      value: String(seed),
    });
  }
  if (typeof seed === 'number' && !Number.isSafeInteger(seed)) {
    throw new DataProviderError('INVALID_PARAMETER', `shuffleSeed must be a safe integer, got ${seed}`, {
      parameter: 'shuffleSeed',
      value: seed,
    });
  }
  const b = Buffer.alloc(10);
  b.write('n:', 0, 'latin1');
  b.writeBigUInt64LE(n, 2);
  return b;
}

const MAX_N = 2 ** 52;
const ROUNDS = 8;

/**
 * A seeded pseudo-random permutation of `[0, n)`, evaluated per index in O(1) memory: an 8-round
 * balanced Feistel network over the smallest even-bit domain `2^(2h) >= n`, with cycle walking to stay
 * below `n` (expected < 4 steps). Round keys are the eight 32-bit words of
 * `SHA-256("psyche-shuffle-v1" || seedBytes || u64le(epoch))`; the round function is the murmur3
 * finalizer of `(R xor key)`. A pure function of (n, seed, epoch) on every platform.
 *
 * @example
 * ```ts
 * import { createPermutation } from '@psyche/data-provider';
 * const p = createPermutation(10, 'seed');
 * const order = Array.from({ length: 10 }, (_, i) => p.forward(i)); // a permutation of 0..9
 * ```
 * @since 0.1.0
 */
export interface Permutation {
  readonly n: number;
  /** Image of `i` (0 ≤ i < n). */
  forward(i: number): number;
}

/**
 * Creates a {@link Permutation} of `[0, n)` for `seed` and `epoch` (see the interface for the algorithm).
 *
 * @throws {DataProviderError} `INVALID_PARAMETER` when `n` is not an integer in `[1, 2^52]`
 * @since 0.1.0
 */
export function createPermutation(n: number, seed: ShuffleSeed, epoch = 0): Permutation {
  if (!Number.isSafeInteger(n) || n < 1 || n > MAX_N) {
    throw new DataProviderError(
      'INVALID_PARAMETER',
      `permutation size n must be an integer in [1, 2^52], got ${n}`,
      { parameter: 'n', value: n },
    );
  }
  if (!Number.isSafeInteger(epoch) || epoch < 0) {
    throw new DataProviderError('INVALID_PARAMETER', `epoch must be a non-negative integer, got ${epoch}`, {
      parameter: 'epoch',
      value: epoch,
    });
  }
  const e = Buffer.alloc(8);
  e.writeBigUInt64LE(BigInt(epoch));
  const digest = createHash('sha256').update('psyche-shuffle-v1').update(seedBytes(seed)).update(e).digest();
  const keys = new Uint32Array(ROUNDS);
  for (let r = 0; r < ROUNDS; r++) keys[r] = digest.readUInt32LE(r * 4);
  let bits = 0;
  while (2 ** bits < n) bits++;
  const h = Math.max(1, Math.ceil(bits / 2));
  const half = 2 ** h;
  const mask = half - 1;
  const f = (r: number, k: number): number => {
    let x = Math.imul(r ^ k, 0x9e3779b1);
    x ^= x >>> 16;
    x = Math.imul(x, 0x85ebca6b);
    x ^= x >>> 13;
    x = Math.imul(x, 0xc2b2ae35);
    x ^= x >>> 16;
    return (x >>> 0) & mask;
  };
  const encrypt = (x: number): number => {
    let l = Math.floor(x / half);
    let r = x % half;
    for (let i = 0; i < ROUNDS; i++) {
      const nl = r;
      r = (l ^ f(r, keys[i]!)) >>> 0;
      l = nl;
    }
    return l * half + r;
  };
  return {
    n,
    forward(i: number): number {
      if (!Number.isSafeInteger(i) || i < 0 || i >= n) {
        throw new DataProviderError('INDEX_OUT_OF_RANGE', `permutation index ${i} outside [0, ${n})`, {
          parameter: 'index',
          value: i,
          n,
        });
      }
      let y = encrypt(i);
      while (y >= n) y = encrypt(y);
      return y;
    },
  };
}
