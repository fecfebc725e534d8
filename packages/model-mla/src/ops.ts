import * as tf from '@tensorflow/tfjs-core';

/** Swaps the last two axes of a rank-2 or rank-3 tensor (explicit `Transpose` kernel). */
export function swapLast<T extends tf.Tensor>(x: T): T {
  return (x.rank === 2 ? tf.transpose(x) : tf.transpose(x, [0, 2, 1])) as T;
}

/**
 * Matrix product `a @ b` (rank 2, or rank 3 with equal batch) whose forward and backward passes only use
 * untransposed `BatchMatMul` calls plus explicit transposes:
 *
 *   da = dy @ bᵀ,  db = aᵀ @ dy
 *
 * tfjs' own MatMul gradient uses the `transposeA/B` flags, which the wasm backend (tfjs 4.22) runs 3–14× slower
 * than a plain product (measured on this machine at [256,128]×[128,2048]: transposeB 145 ms vs 15–60 ms,
 * transposeA 608 ms vs 44 ms), so this op is what makes training on wasm fast. Caller owns the result.
 */
const mmPlain = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
  const [a, b, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
  save([a, b]);
  return {
    value: tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D) as tf.Tensor,
    gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
      const [sa, sb] = saved as [tf.Tensor2D, tf.Tensor2D];
      const g = dy as tf.Tensor2D;
      return [tf.matMul(g, swapLast(sb)), tf.matMul(swapLast(sa), g)];
    },
  };
}) as <T extends tf.Tensor>(a: T, b: tf.Tensor) => T;

/** Whether the active backend is wasm, where the transpose-free formulations pay off. */
function onWasm(): boolean {
  return tf.getBackend() === 'wasm';
}

/**
 * `a @ b`: on wasm the transpose-free custom-gradient product described above; on other backends plain
 * `tf.matMul` (the cpu backend's own transposed products are faster than explicit JS transposes). Caller owns.
 */
export function mm<T extends tf.Tensor>(a: T, b: tf.Tensor): T {
  return onWasm()
    ? mmPlain(a, b)
    : (tf.matMul(a as unknown as tf.Tensor2D, b as tf.Tensor2D) as unknown as T);
}

/** `a @ bᵀ` (last two axes of `b` swapped), backend-appropriately (see {@link mm}). Caller owns. */
export function mmT<T extends tf.Tensor>(a: T, b: tf.Tensor): T {
  return onWasm()
    ? tf.tidy(() => mmPlain(a, swapLast(b)))
    : (tf.matMul(a as unknown as tf.Tensor2D, b as tf.Tensor2D, false, true) as unknown as T);
}

/** `[rows, cols]` float32 tensor from a generator `f(r, c)`. Caller owns. */
export function constMatrix(rows: number, cols: number, f: (r: number, c: number) => number): tf.Tensor2D {
  const m = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) m[r * cols + c] = f(r, c);
  return tf.tensor2d(m, [rows, cols]);
}

/**
 * Splits the last axis into consecutive parts of the given sizes. Each part is taken with a 0/1 selection matrix
 * (`x @ S`, S = `[total, size]` with `S[offset + j, j] = 1`) instead of the `SplitV`/`Slice` kernels: exact (each
 * output is one product by 1 plus zeros), differentiable through {@link mm}, and far faster on the wasm backend,
 * whose strided last-axis slicing and its concat gradient dominated a training step. Caller owns the parts.
 */
export function splitLastAxis(x: tf.Tensor, sizes: readonly number[]): tf.Tensor[] {
  if (!onWasm()) return tf.split(x, [...sizes], x.rank - 1);
  return tf.tidy(() => {
    const total = x.shape[x.rank - 1]!;
    const lead = x.shape.slice(0, -1);
    const flat = tf.reshape(x, [-1, total]) as tf.Tensor2D;
    const parts: tf.Tensor[] = [];
    let offset = 0;
    for (const size of sizes) {
      const o = offset;
      const sel = constMatrix(total, size, (r, c) => (r === o + c ? 1 : 0));
      parts.push(tf.reshape(mm(flat, sel), [...lead, size]));
      offset += size;
    }
    return parts;
  });
}
