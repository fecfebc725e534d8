import * as tf from '@tensorflow/tfjs-core';
import { DistroError } from './errors.js';
import type { ParamLayout } from './layout.js';

/**
 * The orthonormal DCT-II matrix `C` of size `n × n`, row-major: `C[k][j] = a_k · cos(π(2j+1)k / 2n)` with
 * `a_0 = √(1/n)` and `a_k = √(2/n)`. Computed in float64 and rounded once to float32 (no FFT, so it runs on every
 * backend). In the reference's names, `b_dict[n] = C` and `f_dict[n] = Cᵀ`; `C · Cᵀ = I`.
 *
 * @example
 * ```ts
 * dctBasis(4)[1]; // 0.6532815 = √(2/4)·cos(π/8)
 * ```
 * @throws {DistroError} `INVALID_ARGUMENT` when `n` is not a positive integer.
 * @since 0.1.0
 */
export function dctBasis(n: number): Float32Array {
  if (!Number.isSafeInteger(n) || n < 1 || n > 65536) {
    throw new DistroError('INVALID_ARGUMENT', `dctBasis: n must be an integer in [1, 65536], got ${n}`, {
      field: 'n',
    });
  }
  const out = new Float32Array(n * n);
  const a0 = Math.sqrt(1 / n);
  const ak = Math.sqrt(2 / n);
  for (let k = 0; k < n; k++) {
    const a = k === 0 ? a0 : ak;
    for (let j = 0; j < n; j++) out[k * n + j] = a * Math.cos((Math.PI * (2 * j + 1) * k) / (2 * n));
  }
  return out;
}

/** Supplies the DCT matrix `C` of size `n` (or `Cᵀ` when `transposed`) as a 2-D tensor. */
export type BasisProvider = (n: number, transposed?: boolean) => tf.Tensor2D;

/**
 * Caches one DCT basis tensor per size. The tensors are kept out of `tf.tidy` scopes and released by
 * {@link BasisCache.dispose}.
 *
 * @since 0.1.0
 */
export class BasisCache {
  private readonly bases = new Map<number, tf.Tensor2D>();

  /**
   * The basis `C` for size `n`, or `Cᵀ` when `transposed` (owned by the cache: do not dispose). The transpose is
   * cached separately because a plain matmul is faster than one with `transposeB` on wasm.
   */
  readonly get: BasisProvider = (n, transposed = false) => {
    const key = transposed ? -n : n;
    let b = this.bases.get(key);
    if (b === undefined) {
      b = tf.keep(basisTensor(n, transposed));
      this.bases.set(key, b);
    }
    return b;
  };

  /** Number of cached bases. */
  get size(): number {
    return this.bases.size;
  }

  /** Disposes every cached basis. */
  dispose(): void {
    for (const b of this.bases.values()) b.dispose();
    this.bases.clear();
  }
}

function basisTensor(n: number, transposed: boolean): tf.Tensor2D {
  const c = dctBasis(n);
  if (!transposed) return tf.tensor2d(c, [n, n], 'float32');
  const t = new Float32Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) t[j * n + i] = c[i * n + j]!;
  return tf.tensor2d(t, [n, n], 'float32');
}

function freshBasis(n: number, transposed = false): tf.Tensor2D {
  return basisTensor(n, transposed);
}

/**
 * Chunked orthonormal DCT-II of a parameter-shaped tensor (reference `TransformDCT.encode`, generalized to N-D):
 * returns the coefficients as `[numBlocks, n1·n2]`, each row `C1 · block · C2ᵀ` flattened row-frequency major.
 * Implemented as two large matrix multiplications (no einsum, no FFT). Caller owns the result.
 *
 * @param x a float32 tensor whose shape equals `layout.shape`
 * @param layout from {@link paramLayout}
 * @param basis optional basis provider (a {@link BasisCache}); fresh bases are built when omitted
 * @throws {DistroError} `SHAPE_MISMATCH` when `x` does not have `layout.shape`.
 * @since 0.1.0
 */
export function dctEncode(x: tf.Tensor, layout: ParamLayout, basis: BasisProvider = freshBasis): tf.Tensor2D {
  checkShape(x.shape, layout.shape, 'x');
  const { batch, rows, cols, n1, n2, numBlocks, blockSize } = layout;
  const Y = rows / n1;
  const X = cols / n2;
  return tf.tidy(() => {
    // [B, Y, n1, X, n2] in memory; DCT along the columns of each block first.
    let t: tf.Tensor = tf.reshape(x, [batch * rows * X, n2]);
    if (n2 > 1) t = tf.matMul(t as tf.Tensor2D, basis(n2, true));
    if (n1 > 1) {
      // Bring the in-block row axis first and left-multiply by C1.
      t = tf.reshape(tf.transpose(tf.reshape(t, [batch * Y, n1, X * n2]), [1, 0, 2]), [
        n1,
        batch * Y * X * n2,
      ]);
      t = tf.matMul(basis(n1), t as tf.Tensor2D);
      t = tf.transpose(tf.reshape(t, [n1, batch * Y, X, n2]), [1, 2, 0, 3]);
    }
    return tf.reshape(t, [numBlocks, blockSize]) as tf.Tensor2D;
  });
}

/**
 * Inverse of {@link dctEncode} (reference `TransformDCT.decode`): turns `[numBlocks, n1·n2]` coefficients back
 * into a tensor of `layout.shape`, each block `C1ᵀ · K · C2`. Caller owns the result.
 *
 * @throws {DistroError} `SHAPE_MISMATCH` when `coef` is not `[numBlocks, blockSize]`.
 * @since 0.1.0
 */
export function dctDecode(
  coef: tf.Tensor,
  layout: ParamLayout,
  basis: BasisProvider = freshBasis,
): tf.Tensor {
  const { batch, rows, cols, n1, n2, numBlocks, blockSize } = layout;
  checkShape(coef.shape, [numBlocks, blockSize], 'coef');
  const Y = rows / n1;
  const X = cols / n2;
  return tf.tidy(() => {
    // [B·Y, X, n1, n2] in memory; inverse DCT along the columns of each block first.
    let t: tf.Tensor = tf.reshape(coef, [numBlocks * n1, n2]);
    if (n2 > 1) t = tf.matMul(t as tf.Tensor2D, basis(n2));
    if (n1 > 1) {
      t = tf.reshape(tf.transpose(tf.reshape(t, [batch * Y, X, n1, n2]), [2, 0, 1, 3]), [
        n1,
        batch * Y * X * n2,
      ]);
      t = tf.matMul(basis(n1, true), t as tf.Tensor2D);
      t = tf.transpose(tf.reshape(t, [n1, batch * Y, X, n2]), [1, 0, 2, 3]);
    }
    return tf.reshape(t, [...layout.shape]);
  });
}

function checkShape(actual: readonly number[], expected: readonly number[], field: string): void {
  if (actual.length !== expected.length || actual.some((d, i) => d !== expected[i])) {
    throw new DistroError(
      'SHAPE_MISMATCH',
      `${field} has shape [${actual.join(', ')}], expected [${expected.join(', ')}]`,
      { field },
    );
  }
}
