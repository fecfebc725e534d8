import * as tf from '@tensorflow/tfjs-core';
import { constMatrix, mm } from './ops.js';

/**
 * RoPE angle tables for `count` consecutive positions starting at `start`: `angle[p][i] = p · θ^(−2i/dim)` for
 * `i < dim/2`, returned as `[cos, sin]` float32 tensors of shape `[count, dim/2]`. Caller owns.
 */
export function ropeTables(
  start: number,
  count: number,
  dim: number,
  theta: number,
): [tf.Tensor2D, tf.Tensor2D] {
  const half = dim / 2;
  const cos = new Float32Array(count * half);
  const sin = new Float32Array(count * half);
  for (let p = 0; p < count; p++) {
    for (let i = 0; i < half; i++) {
      const angle = (start + p) * theta ** ((-2 * i) / dim);
      cos[p * half + i] = Math.cos(angle);
      sin[p * half + i] = Math.sin(angle);
    }
  }
  return [tf.tensor2d(cos, [count, half]), tf.tensor2d(sin, [count, half])];
}

/**
 * Applies DeepSeek-V2 rotary embedding to the last axis of `x` (`[batch, seq, heads, dim]`), exactly like HF
 * `DeepseekV2`'s `apply_rotary_pos_emb`: the input pairs are interleaved (`x[2i], x[2i+1]` rotate together by
 * `angle[p][i]`), and the output is in rotate-half layout (`[rotated evens…, rotated odds…]`):
 *
 *   out[i]         = x[2i]·cos − x[2i+1]·sin
 *   out[i + dim/2] = x[2i+1]·cos + x[2i]·sin
 *
 * Queries and keys get the same permutation, so attention scores equal those of the interleaved rotation.
 * `cos`/`sin` are `[seq, dim/2]` from {@link ropeTables}. Caller owns the result.
 */
export function applyRope(x: tf.Tensor4D, cos: tf.Tensor2D, sin: tf.Tensor2D): tf.Tensor4D {
  return tf.tidy(() => {
    const [b, t, h, d] = x.shape;
    const half = d / 2;
    // y = x @ P de-interleaves (y[j] = x[2j], y[half + j] = x[2j + 1]); z = x @ (P·R) is rotate_half(y)
    // (z[j] = −y[half + j] = −x[2j + 1], z[half + j] = y[j] = x[2j]). Two tiny constant matmuls replace
    // strided slicing, which is slow on the wasm backend.
    const p = constMatrix(d, d, (r, c) =>
      c < half ? (r === 2 * c ? 1 : 0) : r === 2 * (c - half) + 1 ? 1 : 0,
    );
    const pr = constMatrix(d, d, (r, c) =>
      c < half ? (r === 2 * c + 1 ? -1 : 0) : r === 2 * (c - half) ? 1 : 0,
    );
    const flat = tf.reshape(x, [b * t * h, d]) as tf.Tensor2D;
    const y = tf.reshape(mm(flat, p), [b, t, h, d]);
    const z = tf.reshape(mm(flat, pr), [b, t, h, d]);
    const c = tf.reshape(tf.concat([cos, cos], 1), [1, t, 1, d]);
    const s = tf.reshape(tf.concat([sin, sin], 1), [1, t, 1, d]);
    return tf.add(tf.mul(y, c), tf.mul(z, s)) as tf.Tensor4D;
  });
}
