import { registerWasmKernels } from '@psyche/model-mla';
import * as tf from '@tensorflow/tfjs-core';
import { TrainerError } from './errors.js';

/**
 * Selects and initializes the tfjs backend a node trains on: `wasm` (SIMD, single-threaded in Node; registers the
 * kernels `@psyche/model-mla` needs) or `cpu`. Every node of a run must use the same backend so that parameters
 * stay bitwise identical.
 *
 * @returns the active backend name.
 * @throws {TrainerError} `INVALID_OPTION` for an unknown name or a backend that fails to start.
 */
export async function setupBackend(name: 'wasm' | 'cpu'): Promise<string> {
  if (name === 'wasm') {
    await import('@tensorflow/tfjs-backend-wasm');
    registerWasmKernels();
  } else if (name === 'cpu') {
    await import('@tensorflow/tfjs-backend-cpu');
  } else {
    throw new TrainerError('INVALID_OPTION', `backend must be "wasm" or "cpu", got ${String(name)}`, {
      field: 'backend',
    });
  }
  if (!(await tf.setBackend(name))) {
    throw new TrainerError('INVALID_OPTION', `backend "${name}" failed to initialize`, { field: 'backend' });
  }
  await tf.ready();
  return tf.getBackend();
}
