import * as tf from '@tensorflow/tfjs-core';

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
    const pairs = tf.reshape(x, [b, t, h, d / 2, 2]);
    const [evenRaw, oddRaw] = tf.split(pairs, 2, 4);
    const even = tf.reshape(evenRaw!, [b, t, h, d / 2]);
    const odd = tf.reshape(oddRaw!, [b, t, h, d / 2]);
    const c = tf.reshape(cos, [1, t, 1, d / 2]);
    const s = tf.reshape(sin, [1, t, 1, d / 2]);
    const first = tf.sub(tf.mul(even, c), tf.mul(odd, s));
    const second = tf.add(tf.mul(odd, c), tf.mul(even, s));
    return tf.concat([first, second], 3) as tf.Tensor4D;
  });
}
