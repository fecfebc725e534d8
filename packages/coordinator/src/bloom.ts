import { BLOOM_KEYS, BLOOM_MAX_BITS, BLOOM_WORDS, U64_MAX } from './constants.js';
import { CoordinatorError } from './errors.js';

/** FNV-1a 64-bit prime. */
export const FNV_PRIME = 0x100000001b3n;
/** FNV-1a 64-bit offset basis (the state of unkeyed FNV-1a). */
export const FNV_OFFSET_BASIS = 0xcbf29ce484222325n;
const MASK64 = (1n << 64n) - 1n;

/**
 * A witness bloom filter (Psyche's `Bloom<16, 8>`): up to 1024 bits in 16 u64 words and 8 u64 hash keys.
 * Bit `i` is `(bits[i / 64] >> (i % 64)) & 1`. Plain data: safe to clone/serialize.
 */
export interface Bloom {
  /** Bits in use, `0..=1024` (0: an empty filter that contains nothing). */
  numBits: number;
  /** The 8 hash keys (u64). */
  keys: bigint[];
  /** The 16 words of bit storage (u64). */
  bits: bigint[];
}

/** FNV-1a over `data`, starting from state `key` instead of the offset basis. */
export function fnv1aKeyed(key: bigint, data: Uint8Array): bigint {
  let h = key & MASK64;
  for (const b of data) h = ((h ^ BigInt(b)) * FNV_PRIME) & MASK64;
  return h;
}

const TWO32 = 4294967296;

/**
 * `fnv1aKeyed(key, data) % m` with 32-bit limb arithmetic on numbers (no bigint per byte). Exact: every
 * intermediate stays below 2^53. Equal to the bigint reference {@link fnv1aKeyed} (unit-tested).
 */
export function fnv1aKeyedMod(key: bigint, data: Uint8Array, m: number): number {
  let lo = Number(key & 0xffffffffn);
  let hi = Number((key >> 32n) & 0xffffffffn);
  for (let i = 0; i < data.length; i++) {
    lo = (lo ^ data[i]!) >>> 0;
    // h · (2^40 + 0x1b3) mod 2^64: low limb lo·0x1b3; high limb hi·0x1b3 + carry + (lo << 8).
    const l = lo * 0x1b3;
    const carry = Math.floor(l / TWO32);
    hi = (hi * 0x1b3 + carry + ((lo << 8) >>> 0)) % TWO32;
    lo = l % TWO32;
  }
  return ((hi % m) * (TWO32 % m) + (lo % m)) % m;
}

/**
 * Bits for `n` items at false-positive rate `p`: `clamp(ceil(−n · ln p / (ln 2)^2), 1, 1024)`.
 *
 * @throws {CoordinatorError} `InvalidArgument` when `n` is not a non-negative integer or `p` not in (0, 1).
 */
export function bloomNumBits(n: number, p: number): number {
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new CoordinatorError('InvalidArgument', `n must be a non-negative integer, got ${n}`, {
      field: 'n',
    });
  }
  if (!(p > 0 && p < 1)) {
    throw new CoordinatorError('InvalidArgument', `p must be in (0, 1), got ${p}`, { field: 'p' });
  }
  const m = Math.ceil((-n * Math.log(p)) / (Math.LN2 * Math.LN2));
  return Math.min(BLOOM_MAX_BITS, Math.max(1, m));
}

/**
 * A new, empty bloom with `numBits` bits (clamped to `1..=1024`) and the given 8 keys (choose them at random).
 *
 * @throws {CoordinatorError} `InvalidBloom` when there are not 8 u64 keys.
 */
export function createBloom(numBits: number, keys: readonly bigint[]): Bloom {
  if (keys.length !== BLOOM_KEYS || keys.some((k) => typeof k !== 'bigint' || k < 0n || k > U64_MAX)) {
    throw new CoordinatorError('InvalidBloom', `keys must be ${BLOOM_KEYS} u64 bigints`, { field: 'keys' });
  }
  const n = Math.min(BLOOM_MAX_BITS, Math.max(1, Math.floor(numBits)));
  return { numBits: n, keys: keys.slice(), bits: new Array<bigint>(BLOOM_WORDS).fill(0n) };
}

/** An empty filter with 0 bits that contains nothing (used where no bloom applies). */
export function emptyBloom(): Bloom {
  return {
    numBits: 0,
    keys: new Array<bigint>(BLOOM_KEYS).fill(0n),
    bits: new Array<bigint>(BLOOM_WORDS).fill(0n),
  };
}

/** Sets the 8 bits of `item` in `bloom` (mutates it). No-op on a 0-bit filter. */
export function bloomAdd(bloom: Bloom, item: Uint8Array): void {
  if (bloom.numBits === 0) return;
  for (const key of bloom.keys) {
    const i = fnv1aKeyedMod(key, item, bloom.numBits);
    bloom.bits[i >>> 6] = bloom.bits[i >>> 6]! | (1n << BigInt(i & 63));
  }
}

/** True when every bit of `item` is set (false positives possible, no false negatives). */
export function bloomContains(bloom: Bloom, item: Uint8Array): boolean {
  if (bloom.numBits === 0) return false;
  for (const key of bloom.keys) {
    const i = fnv1aKeyedMod(key, item, bloom.numBits);
    if (((bloom.bits[i >>> 6]! >> BigInt(i & 63)) & 1n) === 0n) return false;
  }
  return true;
}

/**
 * Checks the shape of a bloom received from the network: `numBits` integer in `0..=1024`, 8 u64 keys, 16 u64
 * words, and no bit set at a position `>= numBits`.
 *
 * @throws {CoordinatorError} `InvalidBloom` naming `field`.
 */
export function validateBloom(bloom: unknown, field: string): asserts bloom is Bloom {
  const b = bloom as Partial<Bloom> | null;
  const fail = (why: string): never => {
    throw new CoordinatorError('InvalidBloom', `${field}: ${why}`, { field });
  };
  if (typeof b !== 'object' || b === null) fail('must be an object');
  const { numBits, keys, bits } = b as Bloom;
  if (!Number.isInteger(numBits) || numBits < 0 || numBits > BLOOM_MAX_BITS) {
    fail(`numBits must be an integer in [0, ${BLOOM_MAX_BITS}], got ${String(numBits)}`);
  }
  const isU64 = (x: unknown) => typeof x === 'bigint' && x >= 0n && x <= U64_MAX;
  if (!Array.isArray(keys) || keys.length !== BLOOM_KEYS || !keys.every(isU64)) {
    fail(`keys must be ${BLOOM_KEYS} u64 bigints`);
  }
  if (!Array.isArray(bits) || bits.length !== BLOOM_WORDS || !bits.every(isU64)) {
    fail(`bits must be ${BLOOM_WORDS} u64 bigints`);
  }
  for (let w = 0; w < BLOOM_WORDS; w++) {
    const lo = w * 64;
    const used = Math.max(0, Math.min(64, numBits - lo));
    const allowed = used === 64 ? U64_MAX : (1n << BigInt(used)) - 1n;
    if ((bits[w]! & ~allowed & U64_MAX) !== 0n) fail(`bit set at or beyond numBits ${numBits} (word ${w})`);
  }
}

/** Deep copy of a bloom. */
export function cloneBloom(b: Bloom): Bloom {
  return { numBits: b.numBits, keys: b.keys.slice(), bits: b.bits.slice() };
}
