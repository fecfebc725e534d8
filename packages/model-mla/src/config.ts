import { MlaError } from './errors.js';

/**
 * Model hyper-parameters, mirroring the HF `DeepseekV2Config` `config.json` fields (snake_case on purpose, so a
 * config file round-trips unchanged). Only dense (non-MoE) layers are implemented.
 */
export interface DeepseekV2Config {
  /** Vocabulary size (rows of `model.embed_tokens.weight`). */
  readonly vocab_size: number;
  /** Residual stream width. */
  readonly hidden_size: number;
  /** SwiGLU MLP inner width (`gate_proj`/`up_proj` output). */
  readonly intermediate_size: number;
  /** Number of decoder layers. */
  readonly num_hidden_layers: number;
  /** Number of attention heads. */
  readonly num_attention_heads: number;
  /** Kept for HF compatibility; MLA has no separate KV heads, so it must equal `num_attention_heads`. */
  readonly num_key_value_heads: number;
  /** Rank of the query low-rank path (`q_a_proj` → `q_a_layernorm` → `q_b_proj`); `null` uses `q_proj`. */
  readonly q_lora_rank: number | null;
  /** Width of the compressed KV latent (what the inference cache stores, with the rope key part). */
  readonly kv_lora_rank: number;
  /** Per-head query/key width without rotary embedding. */
  readonly qk_nope_head_dim: number;
  /** Per-head query width and shared key width with rotary embedding (even). */
  readonly qk_rope_head_dim: number;
  /** Per-head value width. */
  readonly v_head_dim: number;
  /** RMSNorm epsilon. */
  readonly rms_norm_eps: number;
  /** RoPE base. */
  readonly rope_theta: number;
  /** Longest sequence (prompt + generated tokens) the model accepts. */
  readonly max_position_embeddings: number;
  /** Share `model.embed_tokens.weight` as the LM head (no `lm_head.weight` tensor). */
  readonly tie_word_embeddings: boolean;
  /** Std of the normal init of linear and embedding weights. */
  readonly initializer_range: number;
  /** MLP activation; only `silu` (SwiGLU) is implemented. */
  readonly hidden_act: 'silu';
  /** Biases on attention projections; only `false` is implemented. */
  readonly attention_bias: false;
  /** RoPE scaling (YaRN etc.); only `null` is implemented. */
  readonly rope_scaling: null;
  /** MoE expert count; `null` (dense) unless every layer is below `first_k_dense_replace`. */
  readonly n_routed_experts: number | null;
  /** Layers before this index are dense in HF DeepSeek-V2. */
  readonly first_k_dense_replace: number;
  /** Optional token ids, passed through to `config.json`. */
  readonly bos_token_id: number | null;
  /** Optional token ids, passed through to `config.json`. */
  readonly eos_token_id: number | null;
}

/** Defaults applied by {@link createConfig} for fields a caller leaves out (the tiny sizes suit tests). */
export const DEFAULT_CONFIG: DeepseekV2Config = Object.freeze({
  vocab_size: 256,
  hidden_size: 64,
  intermediate_size: 172,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 4,
  q_lora_rank: 32,
  kv_lora_rank: 32,
  qk_nope_head_dim: 16,
  qk_rope_head_dim: 8,
  v_head_dim: 16,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  max_position_embeddings: 512,
  tie_word_embeddings: false,
  initializer_range: 0.02,
  hidden_act: 'silu',
  attention_bias: false,
  rope_scaling: null,
  n_routed_experts: null,
  first_k_dense_replace: 0,
  bos_token_id: null,
  eos_token_id: null,
});

const POSITIVE_INT_FIELDS = [
  'vocab_size',
  'hidden_size',
  'intermediate_size',
  'num_hidden_layers',
  'num_attention_heads',
  'num_key_value_heads',
  'kv_lora_rank',
  'qk_nope_head_dim',
  'qk_rope_head_dim',
  'v_head_dim',
  'max_position_embeddings',
] as const;

function invalid(field: string, expected: string, got: unknown): MlaError {
  return new MlaError(
    'INVALID_CONFIG',
    `config.${field} must be ${expected}, got ${JSON.stringify(got) ?? String(got)}`,
    { field, expected, got },
  );
}

function isPositiveInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0;
}

/**
 * Validates a (partial) HF `DeepseekV2Config` object and fills in {@link DEFAULT_CONFIG} for absent fields.
 * Unknown fields (HF bookkeeping such as `architectures`, `torch_dtype`) are ignored.
 *
 * @param input - parsed `config.json` or a partial config literal.
 * @returns a frozen, complete config.
 * @throws {MlaError} `INVALID_CONFIG` naming the field; `UNSUPPORTED_CONFIG` for MoE layers, YaRN, attention
 *   bias or a non-`silu` activation.
 * @example
 * ```ts
 * const config = createConfig({ vocab_size: 1000, hidden_size: 128, q_lora_rank: null });
 * ```
 */
export function createConfig(
  input: Partial<DeepseekV2Config> | Record<string, unknown> = {},
): DeepseekV2Config {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new MlaError('INVALID_CONFIG', 'config must be a JSON object', { got: input });
  }
  const src = input as Record<string, unknown>;
  const pick = <T>(k: keyof DeepseekV2Config): T => (src[k] === undefined ? DEFAULT_CONFIG[k] : src[k]) as T;
  const heads = pick<number>('num_attention_heads');
  const out: Record<string, unknown> = {};
  for (const f of POSITIVE_INT_FIELDS) {
    const v = f === 'num_key_value_heads' && src[f] === undefined ? heads : pick<unknown>(f);
    if (!isPositiveInt(v)) throw invalid(f, 'a positive integer', v);
    out[f] = v;
  }
  if (out.num_key_value_heads !== out.num_attention_heads) {
    throw invalid(
      'num_key_value_heads',
      `equal to num_attention_heads (${heads}) for MLA`,
      out.num_key_value_heads,
    );
  }
  if ((out.qk_rope_head_dim as number) % 2 !== 0) {
    throw invalid('qk_rope_head_dim', 'even (RoPE rotates pairs)', out.qk_rope_head_dim);
  }
  const qlr = pick<unknown>('q_lora_rank');
  if (qlr !== null && !isPositiveInt(qlr)) throw invalid('q_lora_rank', 'a positive integer or null', qlr);
  out.q_lora_rank = qlr;
  for (const f of ['rms_norm_eps', 'rope_theta', 'initializer_range'] as const) {
    const v = pick<unknown>(f);
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw invalid(f, 'a finite number > 0', v);
    out[f] = v;
  }
  const tie = pick<unknown>('tie_word_embeddings');
  if (typeof tie !== 'boolean') throw invalid('tie_word_embeddings', 'a boolean', tie);
  out.tie_word_embeddings = tie;
  for (const f of ['bos_token_id', 'eos_token_id'] as const) {
    const v = pick<unknown>(f);
    if (v !== null && !(typeof v === 'number' && Number.isSafeInteger(v) && v >= 0)) {
      throw invalid(f, 'a non-negative integer or null', v);
    }
    out[f] = v;
  }
  const act = pick<unknown>('hidden_act');
  if (act !== 'silu') {
    throw new MlaError(
      'UNSUPPORTED_CONFIG',
      `config.hidden_act ${JSON.stringify(act)} is not supported (only "silu")`,
      {
        field: 'hidden_act',
        got: act,
      },
    );
  }
  out.hidden_act = act;
  const bias = pick<unknown>('attention_bias');
  if (bias !== false) {
    throw new MlaError(
      'UNSUPPORTED_CONFIG',
      'config.attention_bias must be false (biases are not implemented)',
      {
        field: 'attention_bias',
        got: bias,
      },
    );
  }
  out.attention_bias = false;
  const scaling = pick<unknown>('rope_scaling');
  if (scaling !== null) {
    throw new MlaError(
      'UNSUPPORTED_CONFIG',
      'config.rope_scaling must be null (YaRN/linear scaling not implemented)',
      {
        field: 'rope_scaling',
        got: scaling,
      },
    );
  }
  out.rope_scaling = null;
  const experts = pick<unknown>('n_routed_experts');
  const firstDense = pick<unknown>('first_k_dense_replace');
  if (!(typeof firstDense === 'number' && Number.isSafeInteger(firstDense) && firstDense >= 0)) {
    throw invalid('first_k_dense_replace', 'a non-negative integer', firstDense);
  }
  if (experts !== null && experts !== 0) {
    if (!isPositiveInt(experts)) throw invalid('n_routed_experts', 'a positive integer or null', experts);
    if (firstDense < (out.num_hidden_layers as number)) {
      throw new MlaError(
        'UNSUPPORTED_CONFIG',
        `MoE layers are not implemented: config.n_routed_experts=${experts} with first_k_dense_replace=${firstDense} < num_hidden_layers=${out.num_hidden_layers}`,
        { field: 'n_routed_experts', got: experts },
      );
    }
  }
  out.n_routed_experts = experts === 0 ? null : experts;
  out.first_k_dense_replace = firstDense;
  return Object.freeze(out as unknown as DeepseekV2Config);
}

/**
 * The HF `config.json` object for a config (adds `architectures`, `model_type` and `torch_dtype`).
 *
 * @param dtype - the `torch_dtype` to record (`float32` or `bfloat16`).
 */
export function configToHfJson(
  config: DeepseekV2Config,
  dtype: 'float32' | 'bfloat16' = 'float32',
): Record<string, unknown> {
  return {
    architectures: ['DeepseekV2ForCausalLM'],
    model_type: 'deepseek_v2',
    torch_dtype: dtype,
    ...config,
  };
}

/** Query/key head width: `qk_nope_head_dim + qk_rope_head_dim`. */
export function qHeadDim(config: DeepseekV2Config): number {
  return config.qk_nope_head_dim + config.qk_rope_head_dim;
}

/**
 * Name and shape of every parameter tensor, in the fixed order used by gradients, optimizers and checkpoints.
 * Names are the HF DeepSeek-V2 tensor names; shapes follow PyTorch `nn.Linear` (`[out_features, in_features]`).
 */
export function parameterShapes(config: DeepseekV2Config): Array<[name: string, shape: number[]]> {
  const {
    hidden_size: d,
    num_attention_heads: h,
    kv_lora_rank: r,
    qk_rope_head_dim: dr,
    v_head_dim: dv,
  } = config;
  const dq = qHeadDim(config);
  const out: Array<[string, number[]]> = [['model.embed_tokens.weight', [config.vocab_size, d]]];
  for (let l = 0; l < config.num_hidden_layers; l++) {
    const p = `model.layers.${l}`;
    out.push([`${p}.input_layernorm.weight`, [d]]);
    if (config.q_lora_rank === null) {
      out.push([`${p}.self_attn.q_proj.weight`, [h * dq, d]]);
    } else {
      out.push([`${p}.self_attn.q_a_proj.weight`, [config.q_lora_rank, d]]);
      out.push([`${p}.self_attn.q_a_layernorm.weight`, [config.q_lora_rank]]);
      out.push([`${p}.self_attn.q_b_proj.weight`, [h * dq, config.q_lora_rank]]);
    }
    out.push([`${p}.self_attn.kv_a_proj_with_mqa.weight`, [r + dr, d]]);
    out.push([`${p}.self_attn.kv_a_layernorm.weight`, [r]]);
    out.push([`${p}.self_attn.kv_b_proj.weight`, [h * (config.qk_nope_head_dim + dv), r]]);
    out.push([`${p}.self_attn.o_proj.weight`, [d, h * dv]]);
    out.push([`${p}.post_attention_layernorm.weight`, [d]]);
    out.push([`${p}.mlp.gate_proj.weight`, [config.intermediate_size, d]]);
    out.push([`${p}.mlp.up_proj.weight`, [config.intermediate_size, d]]);
    out.push([`${p}.mlp.down_proj.weight`, [d, config.intermediate_size]]);
  }
  out.push(['model.norm.weight', [d]]);
  if (!config.tie_word_embeddings) out.push(['lm_head.weight', [config.vocab_size, d]]);
  return out;
}

/** Total number of parameters (scalars) of a config. */
export function countParameters(config: DeepseekV2Config): number {
  return parameterShapes(config).reduce((acc, [, s]) => acc + s.reduce((a, b) => a * b, 1), 0);
}

/** KV-cache footprint per token, summed over all layers. */
export interface KvCacheFootprint {
  /** Floats per token MLA caches: `num_hidden_layers · (kv_lora_rank + qk_rope_head_dim)`. */
  readonly mlaFloatsPerToken: number;
  /**
   * Floats per token a standard multi-head attention of the same width caches (full per-head keys and values,
   * what the naive HF cache stores): `num_hidden_layers · heads · (qk_nope + qk_rope + v_head_dim)`.
   */
  readonly mhaFloatsPerToken: number;
  /** `mlaFloatsPerToken · bytesPerFloat`. */
  readonly mlaBytesPerToken: number;
  /** `mhaFloatsPerToken · bytesPerFloat`. */
  readonly mhaBytesPerToken: number;
  /** `mhaFloatsPerToken / mlaFloatsPerToken`. */
  readonly compression: number;
}

/**
 * KV-cache size per token for MLA vs standard multi-head attention of the same width.
 *
 * @param bytesPerFloat - 4 for float32 caches (the default; this package caches float32), 2 for bf16.
 */
export function kvCacheFootprint(config: DeepseekV2Config, bytesPerFloat = 4): KvCacheFootprint {
  const mla = config.num_hidden_layers * (config.kv_lora_rank + config.qk_rope_head_dim);
  const mha = config.num_hidden_layers * config.num_attention_heads * (qHeadDim(config) + config.v_head_dim);
  return {
    mlaFloatsPerToken: mla,
    mhaFloatsPerToken: mha,
    mlaBytesPerToken: mla * bytesPerFloat,
    mhaBytesPerToken: mha * bytesPerFloat,
    compression: mha / mla,
  };
}
