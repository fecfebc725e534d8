/**
 * Benchmarks for @psyche/model-mla: forward+backward and generation throughput at ≈1M / 10M / 40M parameters on
 * the wasm and cpu backends, plus KV-cache bytes per token (MLA latent vs standard multi-head attention).
 * Writes `bench-results/model-mla.json` at the repository root. Run with `pnpm --filter @psyche/model-mla bench`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import {
  countParameters,
  createConfig,
  type DeepseekV2Config,
  kvCacheFootprint,
  MlaModel,
  registerWasmKernels,
} from '../src/index.js';

registerWasmKernels();

const SIZES: Record<string, DeepseekV2Config> = {
  '1M': createConfig({
    vocab_size: 2048,
    hidden_size: 128,
    intermediate_size: 352,
    num_hidden_layers: 4,
    num_attention_heads: 4,
    q_lora_rank: 64,
    kv_lora_rank: 64,
    qk_nope_head_dim: 32,
    qk_rope_head_dim: 16,
    v_head_dim: 32,
    max_position_embeddings: 1024,
  }),
  '10M': createConfig({
    vocab_size: 8192,
    hidden_size: 256,
    intermediate_size: 704,
    num_hidden_layers: 8,
    num_attention_heads: 8,
    q_lora_rank: 128,
    kv_lora_rank: 128,
    qk_nope_head_dim: 32,
    qk_rope_head_dim: 16,
    v_head_dim: 32,
    max_position_embeddings: 1024,
  }),
  '40M': createConfig({
    vocab_size: 16384,
    hidden_size: 512,
    intermediate_size: 1408,
    num_hidden_layers: 8,
    num_attention_heads: 8,
    q_lora_rank: 256,
    kv_lora_rank: 256,
    qk_nope_head_dim: 64,
    qk_rope_head_dim: 32,
    v_head_dim: 64,
    max_position_embeddings: 1024,
  }),
};

type Backend = 'wasm' | 'cpu';
interface Plan {
  size: string;
  backend: Backend;
  train?: { batch: number; seq: number; iters: number };
  gen?: { prompt: number; newTokens: number; compareNoCache?: boolean };
  skipped?: string;
}

// cpu is far slower than wasm+SIMD (js-stack notes: 0.5 vs 12–17 GFLOP/s at 512³; 40–60× per training token
// here), so it gets smaller batches and no 40M training step.
const PLANS: Plan[] = [
  {
    size: '1M',
    backend: 'wasm',
    train: { batch: 4, seq: 64, iters: 3 },
    gen: { prompt: 16, newTokens: 48, compareNoCache: true },
  },
  {
    size: '10M',
    backend: 'wasm',
    train: { batch: 2, seq: 64, iters: 2 },
    gen: { prompt: 16, newTokens: 32, compareNoCache: true },
  },
  {
    size: '40M',
    backend: 'wasm',
    train: { batch: 1, seq: 64, iters: 1 },
    gen: { prompt: 16, newTokens: 16 },
  },
  { size: '1M', backend: 'cpu', train: { batch: 1, seq: 32, iters: 1 }, gen: { prompt: 8, newTokens: 16 } },
  { size: '10M', backend: 'cpu', train: { batch: 1, seq: 8, iters: 1 }, gen: { prompt: 8, newTokens: 4 } },
  {
    size: '40M',
    backend: 'cpu',
    skipped:
      'cpu backend: 40–60× fewer tokens per CPU-second than wasm at 1M in this bench; one 40M forward+backward step would take minutes of CPU, breaking the <6 min bench budget',
  },
];

function tokens(batch: number, seq: number, vocab: number, seed: number): number[][] {
  let s = seed;
  return Array.from({ length: batch }, () =>
    Array.from({ length: seq }, () => {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      return s % vocab;
    }),
  );
}

/**
 * Wall and process CPU time of `fn`. tfjs cpu and wasm (in Node) are single-threaded, so CPU time is close to the
 * uncontended wall time; it is recorded because this 2-core machine is shared and wall time swings with load.
 */
async function timed(fn: () => unknown): Promise<{ wallMs: number; cpuMs: number }> {
  const c0 = process.cpuUsage();
  const t = performance.now();
  await fn();
  const wallMs = performance.now() - t;
  const c = process.cpuUsage(c0);
  return { wallMs, cpuMs: (c.user + c.system) / 1000 };
}

const results: Record<string, unknown>[] = [];
const t0 = performance.now();
for (const plan of PLANS) {
  const config = SIZES[plan.size]!;
  const params = countParameters(config);
  const kv = kvCacheFootprint(config);
  const base = { size: plan.size, backend: plan.backend, params };
  if (plan.skipped) {
    results.push({ ...base, kind: 'train', skipped: plan.skipped });
    console.log(`${plan.size} ${plan.backend}: skipped (${plan.skipped})`);
    continue;
  }
  await tf.setBackend(plan.backend);
  await tf.ready();
  const model = MlaModel.create(config, { seed: 1 });
  if (plan.train) {
    const { batch, seq, iters } = plan.train;
    const data = tokens(batch, seq, config.vocab_size, 3);
    tf.dispose(Object.values(model.computeGradients(data).grads)); // warm-up (kernel setup, buffer allocation)
    const t = await timed(() => {
      for (let i = 0; i < iters; i++) tf.dispose(Object.values(model.computeGradients(data).grads));
    });
    const ms = t.wallMs / iters;
    const cpuMs = t.cpuMs / iters;
    const tokensPerSec = (batch * seq * 1000) / ms;
    const tokensPerCpuSec = (batch * seq * 1000) / cpuMs;
    results.push({
      ...base,
      kind: 'forward+backward',
      batch,
      seq,
      iterations: iters,
      msPerStep: ms,
      cpuMsPerStep: cpuMs,
      tokensPerSec,
      tokensPerCpuSec,
    });
    console.log(
      `${plan.size} ${plan.backend} fwd+bwd [${batch}×${seq}]: ${ms.toFixed(0)} ms/step (cpu ${cpuMs.toFixed(0)} ms), ${tokensPerSec.toFixed(1)} tok/s wall, ${tokensPerCpuSec.toFixed(1)} tok/cpu-s`,
    );
  }
  if (plan.gen) {
    const { prompt, newTokens } = plan.gen;
    const p = tokens(1, prompt, config.vocab_size, 5);
    await model.generate(p, { maxNewTokens: 2 }); // warm-up
    const run = async (useCache: boolean) => {
      let cacheBytes = 0;
      const t = await timed(async () => {
        cacheBytes = (await model.generate(p, { maxNewTokens: newTokens, useCache })).cacheBytes;
      });
      return { ms: t.wallMs, cpuMs: t.cpuMs, cacheBytes };
    };
    const cached = await run(true);
    const cachedTokens = prompt + newTokens - 1;
    results.push({
      ...base,
      kind: 'generate',
      cache: 'mla-latent',
      prompt,
      newTokens,
      msTotal: cached.ms,
      cpuMsTotal: cached.cpuMs,
      tokensPerSec: (newTokens * 1000) / cached.ms,
      tokensPerCpuSec: (newTokens * 1000) / cached.cpuMs,
      cacheBytes: cached.cacheBytes,
      cacheBytesPerToken: cached.cacheBytes / cachedTokens,
    });
    console.log(
      `${plan.size} ${plan.backend} generate ${newTokens} tok (latent cache): ${((newTokens * 1000) / cached.ms).toFixed(1)} tok/s wall, ${((newTokens * 1000) / cached.cpuMs).toFixed(1)} tok/cpu-s, cache ${cached.cacheBytes} B`,
    );
    if (plan.gen.compareNoCache) {
      const full = await run(false);
      results.push({
        ...base,
        kind: 'generate',
        cache: 'none (full recompute per token)',
        prompt,
        newTokens,
        msTotal: full.ms,
        cpuMsTotal: full.cpuMs,
        tokensPerSec: (newTokens * 1000) / full.ms,
        tokensPerCpuSec: (newTokens * 1000) / full.cpuMs,
      });
      console.log(
        `${plan.size} ${plan.backend} generate ${newTokens} tok (no cache): ${((newTokens * 1000) / full.ms).toFixed(1)} tok/s wall, ${((newTokens * 1000) / full.cpuMs).toFixed(1)} tok/cpu-s`,
      );
    }
  }
  model.dispose();
  if (plan.backend === 'wasm') {
    results.push({
      size: plan.size,
      params,
      kind: 'kv-cache-bytes-per-token',
      dtype: 'float32',
      mla: kv.mlaBytesPerToken,
      mha: kv.mhaBytesPerToken,
      compression: kv.compression,
      formula:
        'mla = L·(kv_lora_rank + qk_rope_head_dim)·4; mha = L·heads·(qk_nope + qk_rope + v_head_dim)·4',
    });
  }
}
const ds = kvCacheFootprint(
  createConfig({
    num_hidden_layers: 60,
    num_attention_heads: 128,
    kv_lora_rank: 512,
    qk_nope_head_dim: 128,
    qk_rope_head_dim: 64,
    v_head_dim: 128,
  }),
  2,
);
results.push({
  size: 'DeepSeek-V2 236B attention dims (bf16, not run)',
  kind: 'kv-cache-bytes-per-token',
  dtype: 'bfloat16',
  mla: ds.mlaBytesPerToken,
  mha: ds.mhaBytesPerToken,
  compression: ds.compression,
});

const out = {
  package: '@psyche/model-mla',
  date: new Date().toISOString(),
  machine: {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model,
    node: process.version,
    backend: 'wasm (SIMD, 1 thread) and cpu',
    // the machine is shared: the 1-minute load average at the end says how contended the numbers are
    loadAverage1m: loadavg()[0],
  },
  totalSeconds: (performance.now() - t0) / 1000,
  results,
};
const path = fileURLToPath(new URL('../../../bench-results/model-mla.json', import.meta.url));
mkdirSync(fileURLToPath(new URL('../../../bench-results/', import.meta.url)), { recursive: true });
writeFileSync(path, `${JSON.stringify(out, null, 2)}\n`);
console.log(`wrote ${path} in ${out.totalSeconds.toFixed(0)} s`);
