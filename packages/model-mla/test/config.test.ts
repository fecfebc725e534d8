import { describe, expect, it } from 'vitest';
import {
  configToHfJson,
  countParameters,
  createConfig,
  DEFAULT_CONFIG,
  isMlaError,
  kvCacheFootprint,
  parameterShapes,
} from '../src/index.js';
import { tinyConfig } from './helpers.js';

function codeOf(fn: () => unknown): { code: string; field: unknown; message: string } {
  try {
    fn();
  } catch (e) {
    if (isMlaError(e)) return { code: e.code, field: e.details.field, message: e.message };
    throw e;
  }
  throw new Error('did not throw');
}

describe('createConfig', () => {
  it('fills defaults and keeps HF field names', () => {
    const c = createConfig({ vocab_size: 1000 });
    expect(c.vocab_size).toBe(1000);
    expect(c.hidden_size).toBe(DEFAULT_CONFIG.hidden_size);
    expect(c.num_key_value_heads).toBe(c.num_attention_heads);
    const json = configToHfJson(c, 'bfloat16');
    expect(json.architectures).toEqual(['DeepseekV2ForCausalLM']);
    expect(json.model_type).toBe('deepseek_v2');
    expect(json.torch_dtype).toBe('bfloat16');
    expect(json.kv_lora_rank).toBe(c.kv_lora_rank);
  });

  it('ignores HF bookkeeping fields and accepts a dense-only MoE config', () => {
    const c = createConfig({
      ...tinyConfig(),
      architectures: ['DeepseekV2ForCausalLM'],
      torch_dtype: 'bfloat16',
      n_routed_experts: 8,
      first_k_dense_replace: 2,
    } as Record<string, unknown>);
    expect(c.n_routed_experts).toBe(8);
  });

  it.each([
    [{ hidden_size: 0 }, 'INVALID_CONFIG', 'hidden_size'],
    [{ vocab_size: 2.5 }, 'INVALID_CONFIG', 'vocab_size'],
    [{ kv_lora_rank: '8' }, 'INVALID_CONFIG', 'kv_lora_rank'],
    [{ qk_rope_head_dim: 3 }, 'INVALID_CONFIG', 'qk_rope_head_dim'],
    [{ q_lora_rank: -1 }, 'INVALID_CONFIG', 'q_lora_rank'],
    [{ rms_norm_eps: 0 }, 'INVALID_CONFIG', 'rms_norm_eps'],
    [{ rope_theta: Number.NaN }, 'INVALID_CONFIG', 'rope_theta'],
    [{ num_key_value_heads: 1 }, 'INVALID_CONFIG', 'num_key_value_heads'],
    [{ tie_word_embeddings: 'yes' }, 'INVALID_CONFIG', 'tie_word_embeddings'],
    [{ hidden_act: 'gelu' }, 'UNSUPPORTED_CONFIG', 'hidden_act'],
    [{ attention_bias: true }, 'UNSUPPORTED_CONFIG', 'attention_bias'],
    [{ rope_scaling: { type: 'yarn' } }, 'UNSUPPORTED_CONFIG', 'rope_scaling'],
    [{ n_routed_experts: 4, first_k_dense_replace: 1 }, 'UNSUPPORTED_CONFIG', 'n_routed_experts'],
  ])('rejects %j with %s naming the field', (bad, code, field) => {
    const r = codeOf(() => createConfig(bad as Record<string, unknown>));
    expect(r.code).toBe(code);
    expect(r.field).toBe(field);
    expect(r.message).toContain(field);
  });

  it('rejects a non-object config', () => {
    expect(codeOf(() => createConfig(null as unknown as Record<string, unknown>)).code).toBe(
      'INVALID_CONFIG',
    );
    expect(codeOf(() => createConfig([] as unknown as Record<string, unknown>)).code).toBe('INVALID_CONFIG');
  });
});

describe('parameter layout', () => {
  it('uses HF DeepSeek-V2 names and [out, in] shapes in a fixed order', () => {
    const shapes = parameterShapes(tinyConfig());
    const names = shapes.map(([n]) => n);
    expect(names[0]).toBe('model.embed_tokens.weight');
    expect(names.slice(1, 12)).toEqual([
      'model.layers.0.input_layernorm.weight',
      'model.layers.0.self_attn.q_a_proj.weight',
      'model.layers.0.self_attn.q_a_layernorm.weight',
      'model.layers.0.self_attn.q_b_proj.weight',
      'model.layers.0.self_attn.kv_a_proj_with_mqa.weight',
      'model.layers.0.self_attn.kv_a_layernorm.weight',
      'model.layers.0.self_attn.kv_b_proj.weight',
      'model.layers.0.self_attn.o_proj.weight',
      'model.layers.0.post_attention_layernorm.weight',
      'model.layers.0.mlp.gate_proj.weight',
      'model.layers.0.mlp.up_proj.weight',
    ]);
    expect(names.at(-1)).toBe('lm_head.weight');
    const m = new Map(shapes);
    // kv_a_proj_with_mqa: out = kv_lora_rank + qk_rope_head_dim = 8 + 4; in = hidden 16
    expect(m.get('model.layers.0.self_attn.kv_a_proj_with_mqa.weight')).toEqual([12, 16]);
    // kv_b_proj: out = heads · (qk_nope + v_head) = 2 · (4 + 4); in = kv_lora_rank 8
    expect(m.get('model.layers.0.self_attn.kv_b_proj.weight')).toEqual([16, 8]);
    // q_b_proj: out = heads · (qk_nope + qk_rope) = 2 · 8; in = q_lora_rank 8
    expect(m.get('model.layers.0.self_attn.q_b_proj.weight')).toEqual([16, 8]);
  });

  it('counts parameters by hand', () => {
    // tiny: V=32 D=16 I=24 L=2 H=2 qlr=8 r=8 dn=4 dr=4 dv=4
    // per layer: norms 2·16; q_a 8·16=128, q_a_ln 8, q_b 16·8=128; kv_a 12·16=192; kv_a_ln 8; kv_b 16·8=128;
    //            o 16·8=128; mlp 3·24·16=1152  → 32+128+8+128+192+8+128+128+1152 = 1904
    // total: embed 512 + 2·1904 + final norm 16 + lm_head 512 = 4848
    expect(countParameters(tinyConfig())).toBe(4848);
    // tied embeddings drop lm_head (−512); q_lora_rank null: q_proj 16·16=256 replaces 128+8+128=264 (−8/layer)
    expect(countParameters(tinyConfig({ tie_word_embeddings: true, q_lora_rank: null }))).toBe(
      4848 - 512 - 16,
    );
    expect(
      parameterShapes(tinyConfig({ q_lora_rank: null })).some(([n]) => n.endsWith('q_proj.weight')),
    ).toBe(true);
  });

  it('reports the KV-cache footprint: latent vs full per-head K/V', () => {
    // DeepSeek-V2 (236B) attention: 60 layers, 128 heads, r=512, dn=128, dr=64, dv=128
    const ds = createConfig({
      num_hidden_layers: 60,
      num_attention_heads: 128,
      kv_lora_rank: 512,
      qk_nope_head_dim: 128,
      qk_rope_head_dim: 64,
      v_head_dim: 128,
    });
    const f = kvCacheFootprint(ds, 2);
    expect(f.mlaFloatsPerToken).toBe(60 * (512 + 64)); // 34 560
    expect(f.mhaFloatsPerToken).toBe(60 * 128 * (128 + 64 + 128)); // 2 457 600
    expect(f.mlaBytesPerToken).toBe(69_120);
    expect(f.compression).toBeCloseTo(2_457_600 / 34_560, 10); // ≈ 71.1×
  });
});
