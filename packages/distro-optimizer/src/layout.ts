import { DistroError } from './errors.js';

/** Largest number of dimensions a parameter may have. */
export const MAX_RANK = 8;
/** Largest number of elements a parameter may have (int32 flat indices stay exact). */
export const MAX_ELEMENTS = 2 ** 31 - 1;

/**
 * Chunk size for one dimension, exactly the reference `_get_smaller_split(n, target)`:
 * `n` itself when `n <= target`, otherwise the largest divisor of `n` that is `<= target`.
 * Chunks are therefore always exact tiles, never padded. Runs in O(√n).
 *
 * @example
 * ```ts
 * getSmallerSplit(50257, 64); // 29 (50257 = 29 · 1733)
 * getSmallerSplit(96, 64);    // 48
 * ```
 * @throws {DistroError} `INVALID_ARGUMENT` when `n` or `target` is not a positive safe integer.
 * @since 0.1.0
 */
export function getSmallerSplit(n: number, target: number): number {
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new DistroError('INVALID_ARGUMENT', `getSmallerSplit: n must be a positive integer, got ${n}`, {
      field: 'n',
    });
  }
  if (!Number.isSafeInteger(target) || target < 1) {
    throw new DistroError(
      'INVALID_ARGUMENT',
      `getSmallerSplit: target must be a positive integer, got ${target}`,
      { field: 'target' },
    );
  }
  if (n <= target) return n;
  let best = 1;
  for (let i = 1; i * i <= n; i++) {
    if (n % i !== 0) continue;
    const j = n / i;
    if (i <= target && i > best) best = i;
    if (j <= target && j > best) best = j;
  }
  return best;
}

/**
 * How one parameter is cut into DCT blocks. Every parameter is viewed as `[batch, rows, cols]`:
 * a scalar as `[1, 1, 1]`, a 1-D `[L]` as `[1, 1, L]` (identical to the reference `[L/n, n]` chunking),
 * a 2-D `[R, C]` as `[1, R, C]`, and an N-D `[..., R, C]` with the leading dimensions as batch (Psyche).
 * Blocks are `n1 × n2`, ordered row-major over `(batch, blockRow, blockCol)`; inside a block the
 * coefficient index is `rowFrequency · n2 + colFrequency` (reference order).
 *
 * @since 0.1.0
 */
export interface ParamLayout {
  /** The parameter's own shape. */
  readonly shape: readonly number[];
  /** Product of the leading dimensions (all but the last two). */
  readonly batch: number;
  /** Size of the second-to-last dimension (1 for scalars and 1-D). */
  readonly rows: number;
  /** Size of the last dimension (1 for scalars). */
  readonly cols: number;
  /** Chunk size over rows: `getSmallerSplit(rows, chunk)`. */
  readonly n1: number;
  /** Chunk size over cols: `getSmallerSplit(cols, chunk)`. */
  readonly n2: number;
  /** Number of blocks: `batch · rows/n1 · cols/n2`. */
  readonly numBlocks: number;
  /** Coefficients per block: `n1 · n2`. */
  readonly blockSize: number;
  /** Coefficients kept per block: `min(topk, blockSize)`. */
  readonly k: number;
  /** Total number of elements. */
  readonly size: number;
}

/**
 * Computes the block layout of a parameter of `shape` for a target `chunk` and `topk`.
 *
 * @throws {DistroError} `INVALID_SHAPE` for a rank above 8, a non-positive or non-integer dimension, or more than
 * 2³¹−1 elements; `INVALID_ARGUMENT` for a bad `chunk`/`topk`.
 * @since 0.1.0
 */
export function paramLayout(
  shape: readonly number[],
  chunk: number,
  topk: number,
  param?: string,
): ParamLayout {
  const where = param === undefined ? '' : ` of parameter "${param}"`;
  const details = param === undefined ? { field: 'shape' } : { param, field: 'shape' };
  if (!Array.isArray(shape) || shape.length > MAX_RANK) {
    throw new DistroError(
      'INVALID_SHAPE',
      `shape${where} must be an array of at most ${MAX_RANK} dims`,
      details,
    );
  }
  let size = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 1) {
      throw new DistroError(
        'INVALID_SHAPE',
        `shape${where} must have positive integer dims, got [${shape.join(', ')}]`,
        details,
      );
    }
    size *= d;
  }
  if (size > MAX_ELEMENTS) {
    throw new DistroError(
      'INVALID_SHAPE',
      `shape${where} has ${size} elements, more than ${MAX_ELEMENTS}`,
      details,
    );
  }
  if (!Number.isSafeInteger(topk) || topk < 1) {
    throw new DistroError('INVALID_ARGUMENT', `topk must be a positive integer, got ${topk}`, {
      field: 'topk',
    });
  }
  const r = shape.length;
  const cols = r >= 1 ? shape[r - 1]! : 1;
  const rows = r >= 2 ? shape[r - 2]! : 1;
  const batch = size / (rows * cols);
  const n1 = getSmallerSplit(rows, chunk);
  const n2 = getSmallerSplit(cols, chunk);
  const blockSize = n1 * n2;
  return {
    shape: [...shape],
    batch,
    rows,
    cols,
    n1,
    n2,
    numBlocks: size / blockSize,
    blockSize,
    k: Math.min(topk, blockSize),
    size,
  };
}

/**
 * Bytes per index on the wire for a block of `blockSize` coefficients: u8 up to 256, u16 up to 65 536, else u32.
 * Lossless, as in Psyche's `compress_idx`.
 *
 * @since 0.1.0
 */
export function indexWidth(blockSize: number): 1 | 2 | 4 {
  if (blockSize <= 256) return 1;
  if (blockSize <= 65536) return 2;
  return 4;
}
