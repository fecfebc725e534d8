import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { createConfig, type DeepseekV2Config, registerGradients, registerWasmKernels } from '../src/index.js';

registerWasmKernels();
registerGradients();

/** Backends every numeric test runs on. */
export const BACKENDS = ['cpu', 'wasm'] as const;

/** Switches the global tfjs backend (awaits wasm init). */
export async function useBackend(name: (typeof BACKENDS)[number]): Promise<void> {
  const ok = await tf.setBackend(name);
  if (!ok) throw new Error(`backend ${name} failed to initialize`);
  await tf.ready();
}

/** A tiny config (~3k parameters) that keeps cpu tests fast. */
export function tinyConfig(overrides: Partial<DeepseekV2Config> = {}): DeepseekV2Config {
  return createConfig({
    vocab_size: 32,
    hidden_size: 16,
    intermediate_size: 24,
    num_hidden_layers: 2,
    num_attention_heads: 2,
    q_lora_rank: 8,
    kv_lora_rank: 8,
    qk_nope_head_dim: 4,
    qk_rope_head_dim: 4,
    v_head_dim: 4,
    max_position_embeddings: 64,
    ...overrides,
  });
}

/** Largest absolute element-wise difference. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}
