import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CONFIG_FILE,
  isMlaError,
  loadHfCheckpoint,
  MlaModel,
  parseSafetensors,
  roundToBf16,
  saveHfCheckpoint,
  serializeSafetensors,
  WEIGHTS_FILE,
} from '../src/index.js';
import { BACKENDS, maxAbsDiff, tinyConfig, useBackend } from './helpers.js';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'model-mla-ckpt-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function loadError(
  dir: string,
): Promise<{ code: string; message: string; details: Record<string, unknown> }> {
  try {
    (await loadHfCheckpoint(dir)).dispose();
  } catch (e) {
    if (isMlaError(e)) return { code: e.code, message: e.message, details: { ...e.details } };
    throw e;
  }
  throw new Error('load did not throw');
}

const TOKENS = [
  [1, 7, 3, 30, 12, 5],
  [0, 2, 2, 9, 31, 4],
];

describe.each(BACKENDS)('HF checkpoint save/load on %s', (backend) => {
  beforeAll(() => useBackend(backend));

  it('float32: writes HF names/config and reloads to bit-identical logits', async () => {
    const model = MlaModel.create(tinyConfig({ initializer_range: 0.3 }), { seed: 21 });
    const dir = join(root, `${backend}-f32`);
    const start = tf.memory().numTensors;
    await saveHfCheckpoint(model, dir);
    const config = JSON.parse(await readFile(join(dir, CONFIG_FILE), 'utf8'));
    expect(config.architectures).toEqual(['DeepseekV2ForCausalLM']);
    expect(config.model_type).toBe('deepseek_v2');
    expect(config.torch_dtype).toBe('float32');
    expect(config.kv_lora_rank).toBe(8);
    const file = parseSafetensors(await readFile(join(dir, WEIGHTS_FILE)));
    expect(file.metadata).toEqual({ format: 'pt' });
    expect(file.tensors.get('model.layers.0.self_attn.kv_a_proj_with_mqa.weight')).toMatchObject({
      dtype: 'F32',
      shape: [12, 16],
    });
    expect([...file.tensors.keys()]).toEqual(model.parameterNames());
    const loaded = await loadHfCheckpoint(dir);
    const a = model.forward(TOKENS);
    const b = loaded.forward(TOKENS);
    expect(maxAbsDiff(a.dataSync(), b.dataSync())).toBe(0);
    tf.dispose([a, b]);
    loaded.dispose();
    expect(tf.memory().numTensors).toBe(start);
    model.dispose();
  });

  it('bfloat16: stores RNE-rounded weights; logits equal the rounded model exactly and the f32 model closely', async () => {
    const model = MlaModel.create(tinyConfig({ initializer_range: 0.3 }), { seed: 22 });
    const dir = join(root, `${backend}-bf16`);
    await saveHfCheckpoint(model, dir, { dtype: 'bfloat16' });
    const bytes = await readFile(join(dir, WEIGHTS_FILE));
    const file = parseSafetensors(bytes);
    expect(file.tensors.get('lm_head.weight')!.dtype).toBe('BF16');
    expect(JSON.parse(await readFile(join(dir, CONFIG_FILE), 'utf8')).torch_dtype).toBe('bfloat16');
    const loaded = await loadHfCheckpoint(dir);
    const weights = await model.readWeights();
    const rounded = MlaModel.fromWeights(
      model.config,
      new Map([...weights].map(([k, v]) => [k, roundToBf16(v)])),
    );
    const [lf, ll, lr] = [model.forward(TOKENS), loaded.forward(TOKENS), rounded.forward(TOKENS)];
    expect(maxAbsDiff(ll.dataSync(), lr.dataSync())).toBe(0);
    // bf16 weights carry ≤ 2^-8 relative error; through 2 layers the O(1) logits move by ~1e-2: accept 0.05,
    // and require the rounding to be visible at all (so the file really is bf16)
    const d = maxAbsDiff(lf.dataSync(), ll.dataSync());
    expect(d).toBeLessThan(0.05);
    expect(d).toBeGreaterThan(0);
    tf.dispose([lf, ll, lr]);
    for (const m of [model, loaded, rounded]) m.dispose();
  });
});

describe('checkpoint validation', () => {
  let good: string;
  let weights: Map<string, Float32Array>;
  beforeAll(async () => {
    await useBackend('cpu');
    const model = MlaModel.create(tinyConfig({ tie_word_embeddings: true, q_lora_rank: null }), { seed: 1 });
    good = join(root, 'good');
    await saveHfCheckpoint(model, good);
    weights = await model.readWeights();
    model.dispose();
  });

  async function variant(
    name: string,
    edit: {
      config?: (c: Record<string, unknown>) => unknown;
      tensors?: (t: Map<string, Float32Array>) => void;
    },
  ) {
    const dir = join(root, name);
    const config = JSON.parse(await readFile(join(good, CONFIG_FILE), 'utf8'));
    const cfgOut = edit.config ? edit.config(config) : config;
    const t = new Map(weights);
    edit.tensors?.(t);
    const shapes: Record<string, number[]> = {};
    for (const [k, v] of parseSafetensors(await readFile(join(good, WEIGHTS_FILE))).tensors)
      shapes[k] = [...v.shape];
    await saveRaw(dir, typeof cfgOut === 'string' ? cfgOut : JSON.stringify(cfgOut), t, shapes);
    return dir;
  }

  async function saveRaw(
    dir: string,
    config: string,
    t: Map<string, Float32Array>,
    shapes: Record<string, number[]>,
  ) {
    const { mkdir } = await import('node:fs/promises');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, CONFIG_FILE), config);
    const tensors = [...t].map(([name, data]) => ({ name, data, shape: shapes[name] ?? [data.length] }));
    await writeFile(join(dir, WEIGHTS_FILE), serializeSafetensors(tensors));
  }

  it('loads the tied, q_proj variant (no lm_head.weight in the file)', async () => {
    const names = [...parseSafetensors(await readFile(join(good, WEIGHTS_FILE))).tensors.keys()];
    expect(names).not.toContain('lm_head.weight');
    expect(names).toContain('model.layers.0.self_attn.q_proj.weight');
    const m = await loadHfCheckpoint(good);
    expect(m.config.tie_word_embeddings).toBe(true);
    m.dispose();
  });

  it('names the missing directory', async () => {
    const e = await loadError(join(root, 'does-not-exist'));
    expect(e.code).toBe('CHECKPOINT_IO');
  });

  it('rejects a config.json that is not JSON or has a bad field', async () => {
    expect((await loadError(await variant('badjson', { config: () => '{oops' }))).code).toBe(
      'INVALID_CONFIG',
    );
    const e = await loadError(await variant('badfield', { config: (c) => ({ ...c, kv_lora_rank: 0 }) }));
    expect(e.code).toBe('INVALID_CONFIG');
    expect(e.details.field).toBe('kv_lora_rank');
    const moe = await loadError(await variant('moe', { config: (c) => ({ ...c, n_routed_experts: 4 }) }));
    expect(moe.code).toBe('UNSUPPORTED_CONFIG');
  });

  it('rejects missing, unexpected and mis-shaped tensors, naming the tensor', async () => {
    const missing = await loadError(
      await variant('missing', { tensors: (t) => t.delete('model.norm.weight') }),
    );
    expect(missing).toMatchObject({ code: 'MISSING_TENSOR', details: { tensor: 'model.norm.weight' } });
    const extra = await loadError(
      await variant('extra', {
        tensors: (t) => t.set('model.layers.9.mlp.up_proj.weight', new Float32Array(2)),
      }),
    );
    expect(extra).toMatchObject({
      code: 'UNEXPECTED_TENSOR',
      details: { tensor: 'model.layers.9.mlp.up_proj.weight' },
    });
    // a config that disagrees with the stored shapes (vocab_size 32 → 16 is caught on the first tensor)
    const shape = await loadError(await variant('shape', { config: (c) => ({ ...c, vocab_size: 16 }) }));
    expect(shape).toMatchObject({ code: 'SHAPE_MISMATCH', details: { tensor: 'model.embed_tokens.weight' } });
  });

  it('rejects a corrupted or integer-typed weights file', async () => {
    const dir = join(root, 'corrupt');
    const { mkdir, copyFile } = await import('node:fs/promises');
    await mkdir(dir, { recursive: true });
    await copyFile(join(good, CONFIG_FILE), join(dir, CONFIG_FILE));
    const bytes = await readFile(join(good, WEIGHTS_FILE));
    await writeFile(join(dir, WEIGHTS_FILE), bytes.subarray(0, bytes.length - 3));
    expect((await loadError(dir)).code).toBe('MALFORMED_SAFETENSORS');
    // rewrite model.norm.weight as I32 with a hand-made header
    const file = parseSafetensors(bytes);
    const entries: Record<string, unknown> = {};
    const parts: Uint8Array[] = [];
    let off = 0;
    for (const [name, t] of file.tensors) {
      entries[name] = {
        dtype: name === 'model.norm.weight' ? 'I32' : t.dtype,
        shape: t.shape,
        data_offsets: [off, off + t.data.length],
      };
      parts.push(t.data);
      off += t.data.length;
    }
    const json = new TextEncoder().encode(JSON.stringify(entries));
    const out = new Uint8Array(8 + json.length + off);
    new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
    out.set(json, 8);
    let pos = 8 + json.length;
    for (const p of parts) {
      out.set(p, pos);
      pos += p.length;
    }
    await writeFile(join(dir, WEIGHTS_FILE), out);
    expect(await loadError(dir)).toMatchObject({
      code: 'UNSUPPORTED_DTYPE',
      details: { tensor: 'model.norm.weight' },
    });
  });
});
