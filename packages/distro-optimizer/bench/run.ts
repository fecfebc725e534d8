/**
 * Benchmark: compress + apply time per step and bytes sent per step for realistic transformer parameter sets
 * (~10M and ~100M parameters), topk ∈ {32, 8, 4}, float32 / bfloat16 / 1-bit values, chunk 64, on the wasm backend
 * (SIMD, 1 thread).
 * Writes `bench-results/distro-optimizer.json` at the repository root.
 *
 * Run: `pnpm --filter @psyche/distro-optimizer bench` (set `BENCH_SETS=10M` to run only the small set).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import {
  DistroOptimizer,
  type DistroResult,
  decodeDistroResult,
  encodeDistroResult,
  roundToBf16,
} from '../src/index.js';

interface ModelSpec {
  readonly name: string;
  readonly vocab: number;
  readonly dModel: number;
  readonly layers: number;
  readonly ffn: number;
}

/** Llama/OLMo-like decoder without biases: embedding, 4 attention projections, 2 MLP matrices, 2 norms per layer. */
function shapesOf(m: ModelSpec): Record<string, number[]> {
  const s: Record<string, number[]> = { 'embed.weight': [m.vocab, m.dModel] };
  for (let l = 0; l < m.layers; l++) {
    for (const p of ['q', 'k', 'v', 'o']) s[`layers.${l}.attn.${p}`] = [m.dModel, m.dModel];
    s[`layers.${l}.mlp.up`] = [m.dModel, m.ffn];
    s[`layers.${l}.mlp.down`] = [m.ffn, m.dModel];
    s[`layers.${l}.norm1`] = [m.dModel];
    s[`layers.${l}.norm2`] = [m.dModel];
  }
  s['final_norm'] = [m.dModel];
  return s;
}

/**
 * `timeAllModes: false` (100M) times only the float32 run and gets the bf16 / 1-bit bytes by re-encoding that same
 * step's result: compress/apply do the same work in every mode, and this keeps the run near 5 minutes.
 */
const SETS: { spec: ModelSpec; warmup: number; iters: number; timeAllModes: boolean }[] = [
  {
    spec: { name: '10M', vocab: 8192, dModel: 320, layers: 6, ffn: 1280 },
    warmup: 1,
    iters: 2,
    timeAllModes: true,
  },
  {
    spec: { name: '100M', vocab: 16384, dModel: 768, layers: 12, ffn: 3072 },
    warmup: 0,
    iters: 1,
    timeAllModes: false,
  },
];
const MODES = ['float32', 'bfloat16', '1-bit'] as const;
type Mode = (typeof MODES)[number];
const MODE_CONFIG: Record<Mode, { quantize1bit: boolean; valueDtype: 'float32' | 'bfloat16' }> = {
  float32: { quantize1bit: false, valueDtype: 'float32' },
  bfloat16: { quantize1bit: false, valueDtype: 'bfloat16' },
  '1-bit': { quantize1bit: true, valueDtype: 'float32' },
};

/** The same selection with values as the wire of `mode` carries them. */
function requantize(r: DistroResult, mode: Mode): DistroResult {
  return {
    ...r,
    config: { ...r.config, ...MODE_CONFIG[mode] },
    params: r.params.map((p) => ({
      ...p,
      values: p.values.map((v) =>
        mode === '1-bit' ? Math.sign(v) : mode === 'bfloat16' ? roundToBf16(v) : v,
      ),
    })),
  };
}

function rowBase(
  set: string,
  params: number,
  tensors: number,
  topk: number,
  mode: Mode,
  bytes: number,
  sample: DistroResult | undefined,
) {
  const coefficients = sample?.params.reduce((a, p) => a + p.indices.length, 0) ?? 0;
  const denseBytes = 4 * params;
  return {
    set,
    params,
    tensors,
    topk,
    chunk: CHUNK,
    values: mode,
    quantize1bit: mode === '1-bit',
    bytesPerStep: bytes,
    denseFp32Bytes: denseBytes,
    compressionRatio: +(denseBytes / bytes).toFixed(1),
    bitsPerParam: +((8 * bytes) / params).toFixed(4),
    coefficientsPerStep: coefficients,
    referenceBytesPerStep: coefficients * 12, // demo.py sends an int64 index + an f32 value per coefficient
    referenceRatio: +(denseBytes / (coefficients * 12)).toFixed(1),
  };
}

function log(r: ReturnType<typeof rowBase> & { compressMs?: number; applyMs?: number }): void {
  const t =
    r.compressMs === undefined ? '(not timed)' : `compress ${r.compressMs} ms + apply ${r.applyMs} ms`;
  console.log(
    `${r.set} topk=${r.topk} ${r.values}: ${t}, ${r.bytesPerStep.toLocaleString()} B/step ` +
      `(${r.compressionRatio}x vs dense fp32; reference demo.py wire ${r.referenceRatio}x)`,
  );
}

const TOPKS = [32, 8, 4];
const CHUNK = 64;

function seededTensor(shape: number[], seed: number): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  let a = seed >>> 0;
  for (let i = 0; i < n; i++) {
    a = (Math.imul(a, 1664525) + 1013904223) >>> 0;
    out[i] = (a / 4294967296 - 0.5) * 1e-2;
  }
  return tf.tensor(out, shape);
}

async function main(): Promise<void> {
  const loadAverageAtStart = loadavg();
  await tf.setBackend('wasm');
  await tf.ready();
  const only = process.env.BENCH_SETS?.split(',');
  const results: Record<string, unknown>[] = [];
  for (const { spec, warmup, iters, timeAllModes } of SETS) {
    if (only !== undefined && !only.includes(spec.name)) continue;
    const shapes = shapesOf(spec);
    const params = Object.values(shapes).reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0);
    const vars: Record<string, tf.Variable> = {};
    for (const [n, s] of Object.entries(shapes)) {
      const z = tf.zeros(s);
      vars[n] = tf.variable(z, false, `${spec.name}/${n}`);
      z.dispose();
    }
    // Gradients: one seeded tensor per distinct shape (saves memory; the compressor does not care).
    const byShape = new Map<string, tf.Tensor>();
    const grads: Record<string, tf.Tensor> = {};
    for (const [n, s] of Object.entries(shapes)) {
      const key = s.join('x');
      if (!byShape.has(key)) byShape.set(key, seededTensor(s, byShape.size + 1));
      grads[n] = byShape.get(key)!;
    }
    console.log(`# ${spec.name}: ${params.toLocaleString()} params, ${Object.keys(shapes).length} tensors`);
    let warmed = false;
    for (const topk of TOPKS) {
      // Modes timed at this size; the others get their bytes by re-encoding the float32 step's result.
      const timed = timeAllModes ? MODES : (['float32'] as const);
      let lastF32: DistroResult | undefined;
      for (const mode of timed) {
        const opt = new DistroOptimizer({
          lr: 1e-4,
          compressionTopk: topk,
          compressionChunk: CHUNK,
          ...MODE_CONFIG[mode],
        });
        const expected = opt.layoutOf(vars);
        const n = warmed ? iters : warmup + iters;
        const times = { compress: 0, encode: 0, decode: 0, apply: 0 };
        let bytes = 0;
        for (let i = 0; i < n; i++) {
          const t0 = performance.now();
          const mine = opt.compress(vars, grads);
          const t1 = performance.now();
          const wire = encodeDistroResult(mine);
          const t2 = performance.now();
          const back = decodeDistroResult(wire, { expected });
          const t3 = performance.now();
          opt.apply(vars, [back]);
          await vars['final_norm']!.data(); // apply is synchronous; this only fences the backend
          const t4 = performance.now();
          if (i >= n - iters) {
            times.compress += t1 - t0;
            times.encode += t2 - t1;
            times.decode += t3 - t2;
            times.apply += t4 - t3;
          }
          bytes = wire.length;
          if (mode === 'float32') lastF32 = mine;
        }
        warmed = true;
        opt.dispose();
        const row = {
          ...rowBase(spec.name, params, Object.keys(shapes).length, topk, mode, bytes, lastF32 ?? undefined),
          iterations: iters,
          compressMs: +(times.compress / iters).toFixed(1),
          applyMs: +(times.apply / iters).toFixed(1),
          compressPlusApplyMs: +((times.compress + times.apply) / iters).toFixed(1),
          encodeMs: +(times.encode / iters).toFixed(1),
          decodeMs: +(times.decode / iters).toFixed(1),
        };
        results.push(row);
        log(row);
      }
      if (!timeAllModes && lastF32 !== undefined) {
        for (const mode of MODES.filter((m) => m !== 'float32')) {
          const bytes = encodeDistroResult(requantize(lastF32, mode)).length;
          const row = {
            ...rowBase(spec.name, params, Object.keys(shapes).length, topk, mode, bytes, lastF32),
            timing: 'not timed separately: same compute as the float32 row, only the value encoding differs',
          };
          results.push(row);
          log(row);
        }
      }
    }
    tf.dispose([...Object.values(vars), ...byShape.values()]);
  }
  const out = {
    package: '@psyche/distro-optimizer',
    date: new Date().toISOString(),
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model,
      node: process.version,
      backend: tf.getBackend(),
      loadAverageAtEnd: loadavg(),
      loadAverageAtStart,
    },
    notes:
      'One worker per step (apply aggregates its own decoded result). Bytes are the full encoded DistroResult ' +
      '(header, names, shapes, layout, indices, values). Dense = 4 bytes x params. Times are wall-clock on a ' +
      'shared machine: see loadAverage (2 cores); compare rows of one run only.',
    results,
  };
  const dir = new URL('../../../bench-results/', import.meta.url);
  mkdirSync(dir, { recursive: true });
  writeFileSync(new URL('distro-optimizer.json', dir), `${JSON.stringify(out, null, 2)}\n`);
  console.log(`wrote ${new URL('distro-optimizer.json', dir).pathname}`);
}

await main();
