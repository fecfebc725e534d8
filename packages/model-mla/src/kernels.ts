import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs-core';

interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
}

let gradientsRegistered = false;

/**
 * Makes sure tfjs gradient functions are registered. `@tensorflow/tfjs-core` alone ships kernels but no gradients
 * in its Node build; `@tensorflow/tfjs-layers` (a dependency of this package) registers the full set of core
 * gradients into tfjs' global registry when loaded. Idempotent; {@link MlaModel} calls it for you.
 */
export function registerGradients(): void {
  if (gradientsRegistered) return;
  if (tf.getGradient('Sum') === undefined || tf.getGradient('GatherV2') === undefined) {
    createRequire(import.meta.url)('@tensorflow/tfjs-layers');
  }
  gradientsRegistered = true;
}

/**
 * `UnsortedSegmentSum` for the wasm backend (missing in tfjs-backend-wasm 4.22; the gradient of `gather`, i.e.
 * of the embedding lookup, needs it). It reads the inputs from the wasm heap and scatter-adds rows in JS:
 * O(numel(x)) work, no one-hot matrix.
 *
 * Semantics follow TensorFlow: `out[s, ...] = Σ_{i: ids[i] = s} x[i, ...]`, output shape
 * `[numSegments, ...x.shape.slice(ids.rank)]`; ids outside `[0, numSegments)` are dropped.
 */
export const unsortedSegmentSumWasm: tf.KernelConfig = {
  kernelName: 'UnsortedSegmentSum',
  backendName: 'wasm',
  kernelFunc: ({ inputs, backend, attrs }) => {
    const { x, segmentIds } = inputs as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
    const numSegments = (attrs as { numSegments: number }).numSegments;
    const wasm = backend as unknown as WasmBackendLike;
    const idsCount = segmentIds.shape.reduce((a, b) => a * b, 1);
    const innerShape = x.shape.slice(segmentIds.shape.length);
    const inner = innerShape.reduce((a, b) => a * b, 1);
    const out = wasm.makeOutput([numSegments, ...innerShape], x.dtype);
    // Views are taken after makeOutput: an allocation may grow (and detach) the wasm heap.
    const outVals = wasm.typedArrayFromHeap(out);
    const xVals = wasm.typedArrayFromHeap(x);
    const ids = wasm.typedArrayFromHeap(segmentIds);
    outVals.fill(0);
    for (let i = 0; i < idsCount; i++) {
      const s = ids[i]!;
      if (s < 0 || s >= numSegments) continue;
      const src = i * inner;
      const dst = s * inner;
      for (let j = 0; j < inner; j++) outVals[dst + j]! += xVals[src + j]!;
    }
    return out;
  },
};

/**
 * Registers the kernels this package needs that `@tensorflow/tfjs-backend-wasm` lacks (currently
 * `UnsortedSegmentSum`, used by embedding gradients). Call once after importing the wasm backend; idempotent, and
 * a no-op for kernels already registered.
 *
 * @returns the kernel names it registered on this call.
 * @example
 * ```ts
 * import '@tensorflow/tfjs-backend-wasm';
 * import * as tf from '@tensorflow/tfjs-core';
 * import { registerWasmKernels } from '@psyche/model-mla';
 * registerWasmKernels();
 * await tf.setBackend('wasm');
 * ```
 */
export function registerWasmKernels(): string[] {
  const added: string[] = [];
  for (const k of [unsortedSegmentSumWasm]) {
    if (tf.getKernel(k.kernelName, k.backendName) === undefined) {
      tf.registerKernel(k);
      added.push(k.kernelName);
    }
  }
  return added;
}
