import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
// Gradients are registered by a side-effect module of tfjs-core (the full @tensorflow/tfjs does this for you).
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { beforeAll } from 'vitest';

/** Backends every numeric test runs on. wasm is SIMD, single-threaded in Node. */
export const BACKENDS = ['cpu', 'wasm'] as const;

/** Call inside a `describe.each(BACKENDS)` block: switches the global tfjs backend before its tests. */
export function useBackend(name: (typeof BACKENDS)[number]): void {
  beforeAll(async () => {
    if (!(await tf.setBackend(name))) throw new Error(`backend ${name} failed to initialize`);
    await tf.ready();
  });
}

/** A deterministic pseudo-random float32 array (mulberry32), values in [-scale, scale). */
export function seeded(n: number, seed: number, scale = 1): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const u = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    out[i] = (2 * u - 1) * scale;
  }
  return out;
}

/** Max absolute difference of two arrays. */
export function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Bytes of a float32 array, for bitwise comparisons. */
export function bits(a: Float32Array | tf.Tensor): Uint8Array {
  const f = a instanceof tf.Tensor ? (a.dataSync() as Float32Array) : a;
  return new Uint8Array(f.buffer.slice(f.byteOffset, f.byteOffset + f.byteLength));
}

/** A variable initialized from `t`, disposing `t` (tf.variable keeps its own reference). */
export function variableOf(t: tf.Tensor, name?: string): tf.Variable {
  const v = tf.variable(t, true, name);
  t.dispose();
  return v;
}
