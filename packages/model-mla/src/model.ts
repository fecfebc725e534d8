/**
 * DeepSeek-V2 decoder-only LM with Multi-head Latent Attention (arXiv 2405.04434, §2.1), tensor names and math
 * following HF `DeepseekV2ForCausalLM` (`modeling_deepseek.py`) and Psyche's `shared/modeling/src/models/deepseek.rs`.
 * Dense layers only (MoE is not implemented).
 */
import * as tf from '@tensorflow/tfjs-core';
import { createConfig, type DeepseekV2Config, parameterShapes, qHeadDim } from './config.js';
import { isMlaError, MlaError, type MlaErrorCode } from './errors.js';
import { registerGradients } from './kernels.js';
import { mm, mmT, splitLastAxis, swapLast } from './ops.js';
import { seededNormal } from './rng.js';
import { applyRope, ropeTables } from './rope.js';

/** Token ids: a rectangular `number[][]` (`[batch][seq]`) or an int32 tensor `[batch, seq]` (not disposed). */
export type TokenBatch = readonly (readonly number[])[] | tf.Tensor2D;

/** Options of {@link MlaModel.create}. */
export interface CreateModelOptions {
  /** Seed of the deterministic init (default 0). Same seed and config → bit-identical weights on any backend. */
  readonly seed?: number;
}

/** Result of {@link MlaModel.computeGradients}. */
export interface NamedGradients {
  /** Mean next-token cross-entropy of the batch (nats). */
  readonly loss: number;
  /**
   * Gradient of the loss for every parameter, keyed by HF tensor name, in {@link MlaModel.parameterNames} order.
   * Caller owns (dispose with `tf.dispose(Object.values(grads))`).
   */
  readonly grads: Record<string, tf.Tensor>;
}

/** Options of {@link MlaModel.generate}. */
export interface GenerateOptions {
  /** Number of tokens to append to each prompt. */
  readonly maxNewTokens: number;
  /** 0 (default) = greedy argmax; > 0 samples from `softmax(logits / temperature)`. */
  readonly temperature?: number;
  /** Seed of the sampler when `temperature > 0` (default 0). */
  readonly seed?: number;
  /**
   * `true` (default): decode with the compressed-latent KV cache and absorbed attention. `false`: recompute the
   * whole sequence with {@link MlaModel.forward} at every step (reference path, O(T²) per token).
   */
  readonly useCache?: boolean;
  /** Also return the logits each step sampled from (`[batch · vocab]` per step). */
  readonly returnLogits?: boolean;
}

/** Result of {@link MlaModel.generate}. */
export interface GenerateResult {
  /** The generated tokens only (`[batch][maxNewTokens]`). */
  readonly tokens: number[][];
  /** Per step, the `[batch, vocab]` logits (row-major) the step's token was picked from, if requested. */
  readonly stepLogits?: Float32Array[];
  /** Bytes the latent KV cache held at the end (0 when `useCache` is false). */
  readonly cacheBytes: number;
}

let modelCounter = 0;

/** RMSNorm over the last axis: `x · rsqrt(mean(x²) + eps) · w`. */
function rmsNorm(x: tf.Tensor, w: tf.Tensor, eps: number): tf.Tensor {
  const ms = tf.mean(tf.square(x), -1, true);
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(ms, eps))), w);
}

/** `x @ Wᵀ` with a PyTorch-layout weight `[out, in]`. */
function linear(x: tf.Tensor2D, w: tf.Tensor): tf.Tensor2D {
  return mmT(x, w);
}

/** Causal additive mask `[tq, tk]` for queries at positions `past … past+tq−1` over keys `0 … tk−1`. */
function causalMask(tq: number, tk: number, past: number): tf.Tensor2D {
  const m = new Float32Array(tq * tk);
  for (let i = 0; i < tq; i++) for (let j = past + i + 1; j < tk; j++) m[i * tk + j] = -1e9;
  return tf.tensor2d(m, [tq, tk]);
}

/** Inference-only weight layouts of one {@link MlaModel.generate} call (see `#prepare`). */
type Prepared = ReadonlyMap<string, tf.Tensor>;

/** Per-layer compressed cache: normalized latent `[B, t, kv_lora_rank]` and rotated rope key `[B, t, rope]`. */
interface LatentLayerCache {
  latent: tf.Tensor3D;
  ropeKey: tf.Tensor3D;
}

/**
 * A DeepSeek-V2 causal language model with Multi-head Latent Attention, held as named `tf.Variable`s.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import '@tensorflow/tfjs-backend-cpu';
 * import { MlaModel, createConfig } from '@psyche/model-mla';
 *
 * const model = MlaModel.create(createConfig({ vocab_size: 64 }), { seed: 1 });
 * const { loss, grads } = model.computeGradients([[1, 2, 3, 4]]);
 * tf.dispose(Object.values(grads));
 * const { tokens } = await model.generate([[1, 2]], { maxNewTokens: 4 });
 * model.dispose();
 * ```
 */
export class MlaModel {
  /** The validated config. */
  readonly config: DeepseekV2Config;
  readonly #vars: Map<string, tf.Variable>;
  readonly #prefix: string;
  #disposed = false;
  readonly #rejections = new Map<MlaErrorCode, number>();

  private constructor(config: DeepseekV2Config, values: Map<string, Float32Array>, trainable: boolean) {
    registerGradients();
    this.config = config;
    this.#prefix = `mla${modelCounter++}/`;
    this.#vars = new Map();
    try {
      for (const [name, shape] of parameterShapes(config)) {
        const v = values.get(name);
        if (v === undefined)
          throw new MlaError('MISSING_TENSOR', `missing weight "${name}"`, { tensor: name });
        const init = tf.tensor(v, shape, 'float32');
        this.#vars.set(name, tf.variable(init, trainable, this.#prefix + name));
        init.dispose(); // the variable holds its own reference to the data
      }
    } catch (e) {
      this.dispose();
      throw e;
    }
  }

  /**
   * Creates a model with deterministic init: linear and embedding weights ~ N(0, initializer_range²) from a PRNG
   * seeded by `(seed, tensor name)`; RMSNorm weights 1.
   */
  static create(
    config: DeepseekV2Config | Partial<DeepseekV2Config>,
    options: CreateModelOptions = {},
  ): MlaModel {
    const cfg = createConfig(config);
    const seed = options.seed ?? 0;
    if (!Number.isSafeInteger(seed)) {
      throw new MlaError('INVALID_ARGUMENT', `options.seed must be an integer, got ${seed}`, {
        parameter: 'seed',
      });
    }
    const values = new Map<string, Float32Array>();
    for (const [name, shape] of parameterShapes(cfg)) {
      const size = shape.reduce((a, b) => a * b, 1);
      values.set(
        name,
        name.endsWith('norm.weight')
          ? new Float32Array(size).fill(1)
          : seededNormal(size, cfg.initializer_range, seed, name),
      );
    }
    return new MlaModel(cfg, values, true);
  }

  /**
   * Builds a model from explicit weights keyed by HF tensor name (e.g. read from a checkpoint).
   *
   * @throws {MlaError} `MISSING_TENSOR`, `UNEXPECTED_TENSOR` or `SHAPE_MISMATCH` (length) naming the tensor.
   */
  static fromWeights(
    config: DeepseekV2Config | Partial<DeepseekV2Config>,
    weights: ReadonlyMap<string, Float32Array>,
  ): MlaModel {
    const cfg = createConfig(config);
    const expected = new Map(parameterShapes(cfg));
    for (const name of weights.keys()) {
      if (!expected.has(name)) {
        throw new MlaError('UNEXPECTED_TENSOR', `weight "${name}" is not a parameter of this config`, {
          tensor: name,
        });
      }
    }
    for (const [name, shape] of expected) {
      const v = weights.get(name);
      if (v === undefined) throw new MlaError('MISSING_TENSOR', `missing weight "${name}"`, { tensor: name });
      const size = shape.reduce((a, b) => a * b, 1);
      if (!(v instanceof Float32Array) || v.length !== size) {
        throw new MlaError(
          'SHAPE_MISMATCH',
          `weight "${name}" has ${v.length} values, expected ${size} for shape ${JSON.stringify(shape)}`,
          { tensor: name, expected: shape },
        );
      }
    }
    return new MlaModel(cfg, new Map(weights), true);
  }

  /** Parameter names (HF tensor names) in the fixed order used for gradients and checkpoints. */
  parameterNames(): string[] {
    return [...this.#vars.keys()];
  }

  /** Variables keyed by HF tensor name, in {@link parameterNames} order. The model owns them. */
  namedVariables(): Record<string, tf.Variable> {
    this.#check();
    return Object.fromEntries(this.#vars);
  }

  /** Variables in {@link parameterNames} order. The model owns them. */
  variables(): tf.Variable[] {
    this.#check();
    return [...this.#vars.values()];
  }

  /** Total number of parameters. */
  parameterCount(): number {
    let n = 0;
    for (const v of this.#vars.values()) n += v.size;
    return n;
  }

  /** Reads all weights to host memory, keyed by HF tensor name, in parameter order. */
  async readWeights(): Promise<Map<string, Float32Array>> {
    this.#check();
    const out = new Map<string, Float32Array>();
    for (const [name, v] of this.#vars) out.set(name, (await v.data()) as Float32Array);
    return out;
  }

  /** Overwrites weights in place (`assign`), e.g. after an optimizer round. Names and sizes are validated. */
  setWeights(weights: ReadonlyMap<string, Float32Array>): void {
    this.#check();
    this.#counted(() => {
      for (const [name, data] of weights) {
        const v = this.#vars.get(name);
        if (v === undefined) {
          throw new MlaError('UNEXPECTED_TENSOR', `unknown weight "${name}"`, { tensor: name });
        }
        if (!(data instanceof Float32Array) || data.length !== v.size) {
          throw new MlaError('SHAPE_MISMATCH', `weight "${name}" needs ${v.size} values`, { tensor: name });
        }
      }
    });
    for (const [name, data] of weights) {
      const v = this.#vars.get(name)!;
      tf.tidy(() => v.assign(tf.tensor(data, v.shape, 'float32')));
    }
  }

  #check(): void {
    if (this.#disposed) throw new MlaError('DISPOSED', 'the model was disposed', {});
  }

  #w(name: string): tf.Variable {
    return this.#vars.get(name)!;
  }

  /** `x @ Wᵀ` for the named weight; uses the pre-transposed copy while {@link generate} runs. */
  #lin(x: tf.Tensor2D, name: string, prep?: Prepared): tf.Tensor2D {
    const t = prep?.get(name);
    return t ? tf.matMul(x, t as tf.Tensor2D) : linear(x, this.#w(name));
  }

  /**
   * Inference-only weight layouts, built once per {@link generate} call: every linear weight transposed to
   * `[in, out]` (so decode matmuls need no transpose), and per layer the absorbed `W_UK` `[H, dn, r]` and
   * `W_UVᵀ` `[H, r, dv]` split out of `kv_b_proj`. Each call gets its own snapshot, so concurrent `generate`s (or
   * a weight update between two of them) cannot interfere. Caller disposes the tensors.
   */
  #prepare(): Prepared {
    const c = this.config;
    const { num_attention_heads: h, kv_lora_rank: r, qk_nope_head_dim: dn, v_head_dim: dv } = c;
    const map = new Map<string, tf.Tensor>();
    tf.tidy(() => {
      for (const [name, v] of this.#vars) {
        if (v.rank === 2) map.set(name, tf.keep(tf.transpose(v)));
      }
      for (let l = 0; l < c.num_hidden_layers; l++) {
        const p = `model.layers.${l}.self_attn`;
        const [wUk, wUv] = tf.split(
          tf.reshape(this.#w(`${p}.kv_b_proj.weight`), [h, dn + dv, r]),
          [dn, dv],
          1,
        );
        map.set(`${p}.w_uk`, tf.keep(wUk!));
        map.set(`${p}.w_uv_t`, tf.keep(tf.transpose(wUv!, [0, 2, 1])));
      }
    });
    return map;
  }

  /** Validates token ids and returns an int32 `[B, T]` tensor (caller owns) plus its shape. */
  #tokens(tokens: TokenBatch, parameter: string, minLen: number): tf.Tensor2D {
    return this.#counted(() => this.#parseTokens(tokens, parameter, minLen));
  }

  /** Runs `fn`; an {@link MlaError} it throws (bad caller input) is counted by code and rethrown. */
  #counted<T>(fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      if (isMlaError(e)) this.#rejections.set(e.code, (this.#rejections.get(e.code) ?? 0) + 1);
      throw e;
    }
  }

  /**
   * How many calls this model rejected with an {@link MlaError}, by error code (bad tokens, options or weights).
   * Rejected calls change no state.
   */
  rejectionCounts(): Partial<Record<MlaErrorCode, number>> {
    return Object.fromEntries(this.#rejections);
  }

  #parseTokens(tokens: TokenBatch, parameter: string, minLen: number): tf.Tensor2D {
    const { vocab_size: vocab, max_position_embeddings: maxPos } = this.config;
    if (tokens instanceof tf.Tensor) {
      if (tokens.rank !== 2 || tokens.dtype !== 'int32') {
        throw new MlaError(
          'INVALID_ARGUMENT',
          `${parameter} must be an int32 tensor of rank 2 [batch, seq]`,
          {
            parameter,
            shape: tokens.shape,
            dtype: tokens.dtype,
          },
        );
      }
      const values = tokens.dataSync();
      this.#checkIds(values, tokens.shape[0], tokens.shape[1], parameter, minLen);
      return tf.clone(tokens);
    }
    if (!Array.isArray(tokens) || tokens.length === 0) {
      throw new MlaError('INVALID_ARGUMENT', `${parameter} must be a non-empty array of token-id rows`, {
        parameter,
      });
    }
    const t = Array.isArray(tokens[0]) ? tokens[0].length : -1;
    const flat = new Int32Array(tokens.length * Math.max(t, 0));
    for (let b = 0; b < tokens.length; b++) {
      const row = tokens[b];
      if (!Array.isArray(row) || row.length !== t) {
        throw new MlaError(
          'INVALID_ARGUMENT',
          `${parameter}[${b}] must be an array of ${t} token ids (rows must be equal length)`,
          {
            parameter: `${parameter}[${b}]`,
          },
        );
      }
      for (let i = 0; i < t; i++) {
        const id = row[i];
        if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= vocab) {
          throw new MlaError(
            'INVALID_ARGUMENT',
            `${parameter}[${b}][${i}] = ${id} is not a token id in [0, ${vocab})`,
            {
              parameter: `${parameter}[${b}][${i}]`,
              got: id,
            },
          );
        }
        flat[b * t + i] = id;
      }
    }
    if (t < minLen) {
      throw new MlaError(
        'INVALID_ARGUMENT',
        `${parameter} rows must have at least ${minLen} tokens, got ${t}`,
        { parameter },
      );
    }
    if (t > maxPos) {
      throw new MlaError(
        'SEQUENCE_TOO_LONG',
        `${parameter} has ${t} tokens > max_position_embeddings ${maxPos}`,
        {
          parameter,
          length: t,
        },
      );
    }
    return tf.tensor2d(flat, [tokens.length, t], 'int32');
  }

  #checkIds(values: ArrayLike<number>, b: number, t: number, parameter: string, minLen: number): void {
    const vocab = this.config.vocab_size;
    if (b < 1 || t < minLen) {
      throw new MlaError(
        'INVALID_ARGUMENT',
        `${parameter} must be [batch ≥ 1, seq ≥ ${minLen}], got [${b}, ${t}]`,
        {
          parameter,
        },
      );
    }
    if (t > this.config.max_position_embeddings) {
      throw new MlaError('SEQUENCE_TOO_LONG', `${parameter} has ${t} tokens > max_position_embeddings`, {
        parameter,
      });
    }
    for (let i = 0; i < values.length; i++) {
      const id = values[i]!;
      if (id < 0 || id >= vocab) {
        throw new MlaError('INVALID_ARGUMENT', `${parameter} contains token id ${id} outside [0, ${vocab})`, {
          parameter,
          got: id,
        });
      }
    }
  }

  /** Query projection → `[qNope, qPe]`, each `[B, T, H, ·]`, `qPe` not yet rotated. */
  #queries(x: tf.Tensor2D, p: string, b: number, t: number, prep?: Prepared): [tf.Tensor4D, tf.Tensor4D] {
    const c = this.config;
    const h = c.num_attention_heads;
    let q: tf.Tensor2D;
    if (c.q_lora_rank === null) {
      q = this.#lin(x, `${p}.q_proj.weight`, prep);
    } else {
      const qa = rmsNorm(
        this.#lin(x, `${p}.q_a_proj.weight`, prep),
        this.#w(`${p}.q_a_layernorm.weight`),
        c.rms_norm_eps,
      );
      q = this.#lin(qa as tf.Tensor2D, `${p}.q_b_proj.weight`, prep);
    }
    const q4 = tf.reshape(q, [b, t, h, qHeadDim(c)]);
    const [qNope, qPe] = splitLastAxis(q4, [c.qk_nope_head_dim, c.qk_rope_head_dim]);
    return [qNope as tf.Tensor4D, qPe as tf.Tensor4D];
  }

  /** Latent path → normalized latent `[B·T, r]` and unrotated shared rope key `[B·T, rope]`. */
  #latent(x: tf.Tensor2D, p: string, prep?: Prepared): [tf.Tensor2D, tf.Tensor2D] {
    const c = this.config;
    const ckv = this.#lin(x, `${p}.kv_a_proj_with_mqa.weight`, prep);
    const [latent, kPe] = splitLastAxis(ckv, [c.kv_lora_rank, c.qk_rope_head_dim]);
    return [
      rmsNorm(latent!, this.#w(`${p}.kv_a_layernorm.weight`), c.rms_norm_eps) as tf.Tensor2D,
      kPe as tf.Tensor2D,
    ];
  }

  /** Training-path MLA: expands the latent to per-head keys/values (HF's eager attention). Returns `[B·T, D]`. */
  #attention(
    x: tf.Tensor2D,
    l: number,
    b: number,
    t: number,
    cos: tf.Tensor2D,
    sin: tf.Tensor2D,
    mask: tf.Tensor2D,
  ) {
    const c = this.config;
    const h = c.num_attention_heads;
    const { qk_nope_head_dim: dn, qk_rope_head_dim: dr, v_head_dim: dv } = c;
    const p = `model.layers.${l}.self_attn`;
    const [qNope, qPeRaw] = this.#queries(x, p, b, t);
    const qPe = applyRope(qPeRaw, cos, sin); // [B, T, H, dr]
    const [latent, kPeRaw] = this.#latent(x, p);
    const kPe = applyRope(tf.reshape(kPeRaw, [b, t, 1, dr]), cos, sin); // [B, T, 1, dr]
    const kv = tf.reshape(this.#lin(latent, `${p}.kv_b_proj.weight`), [b, t, h, dn + dv]);
    const [kNope, v] = splitLastAxis(kv, [dn, dv]);
    // nope scores per head: [B·H, T, dn] @ [B·H, T, dn]ᵀ → [B, H, T, T]
    const toHeads = (z: tf.Tensor, d: number) =>
      tf.reshape(tf.transpose(z, [0, 2, 1, 3]), [b * h, t, d]) as tf.Tensor3D;
    const sNope = tf.reshape(mmT(toHeads(qNope, dn), toHeads(kNope!, dn)), [b, h, t, t]);
    // rope scores against the single shared key: [B, H·T, dr] @ [B, T, dr]ᵀ → [B, H, T, T]
    const qPeFlat = tf.reshape(tf.transpose(qPe, [0, 2, 1, 3]), [b, h * t, dr]) as tf.Tensor3D;
    const sPe = tf.reshape(mmT(qPeFlat, tf.reshape(kPe, [b, t, dr])), [b, h, t, t]);
    const scale = 1 / Math.sqrt(dn + dr);
    const probs = tf.softmax(tf.add(tf.mul(tf.add(sNope, sPe), scale), mask));
    const o = mm(tf.reshape(probs, [b * h, t, t]) as tf.Tensor3D, toHeads(v!, dv)); // [B·H, T, dv]
    const merged = tf.reshape(tf.transpose(tf.reshape(o, [b, h, t, dv]), [0, 2, 1, 3]), [b * t, h * dv]);
    return this.#lin(merged as tf.Tensor2D, `${p}.o_proj.weight`);
  }

  #mlp(x: tf.Tensor2D, l: number, prep?: Prepared): tf.Tensor2D {
    const p = `model.layers.${l}.mlp`;
    const gate = this.#lin(x, `${p}.gate_proj.weight`, prep);
    const up = this.#lin(x, `${p}.up_proj.weight`, prep);
    return this.#lin(
      tf.mul(tf.mul(gate, tf.sigmoid(gate)), up) as tf.Tensor2D,
      `${p}.down_proj.weight`,
      prep,
    );
  }

  #head(hidden: tf.Tensor2D, prep?: Prepared): tf.Tensor2D {
    const normed = rmsNorm(hidden, this.#w('model.norm.weight'), this.config.rms_norm_eps) as tf.Tensor2D;
    return this.#lin(
      normed,
      this.config.tie_word_embeddings ? 'model.embed_tokens.weight' : 'lm_head.weight',
      prep,
    );
  }

  /** Full-sequence forward on a validated int32 `[B, T]` tensor → logits `[B·T, V]`. Call inside a tidy. */
  #forward2d(ids: tf.Tensor2D): tf.Tensor2D {
    const c = this.config;
    const [b, t] = ids.shape;
    let hidden = tf.gather(this.#w('model.embed_tokens.weight'), tf.reshape(ids, [b * t])) as tf.Tensor2D;
    const [cos, sin] = ropeTables(0, t, c.qk_rope_head_dim, c.rope_theta);
    const mask = causalMask(t, t, 0);
    for (let l = 0; l < c.num_hidden_layers; l++) {
      const p = `model.layers.${l}`;
      const a = this.#attention(
        rmsNorm(hidden, this.#w(`${p}.input_layernorm.weight`), c.rms_norm_eps) as tf.Tensor2D,
        l,
        b,
        t,
        cos,
        sin,
        mask,
      );
      hidden = tf.add(hidden, a);
      const m = this.#mlp(
        rmsNorm(hidden, this.#w(`${p}.post_attention_layernorm.weight`), c.rms_norm_eps) as tf.Tensor2D,
        l,
      );
      hidden = tf.add(hidden, m);
    }
    return this.#head(hidden);
  }

  /**
   * Logits for every position: `[batch, seq, vocab_size]`. Caller owns.
   *
   * @throws {MlaError} `INVALID_ARGUMENT` for ragged rows or ids outside the vocabulary, `SEQUENCE_TOO_LONG`.
   */
  forward(tokens: TokenBatch): tf.Tensor3D {
    this.#check();
    const ids = this.#tokens(tokens, 'tokens', 1);
    try {
      return tf.tidy(() =>
        tf.reshape(this.#forward2d(ids), [ids.shape[0], ids.shape[1], this.config.vocab_size]),
      );
    } finally {
      ids.dispose();
    }
  }

  /** Mean next-token cross-entropy inside a tidy (ids validated, T ≥ 2). */
  #lossOf(ids: tf.Tensor2D): tf.Scalar {
    const [b, t] = ids.shape;
    const v = this.config.vocab_size;
    const logits = tf.reshape(this.#forward2d(ids), [b, t, v]);
    const pred = tf.reshape(tf.slice(logits, [0, 0, 0], [b, t - 1, v]), [b * (t - 1), v]);
    const targets = tf.reshape(tf.slice(ids, [0, 1], [b, t - 1]), [b * (t - 1)]);
    const logp = tf.logSoftmax(pred);
    const picked = tf.sum(tf.mul(logp, tf.oneHot(targets as tf.Tensor1D, v)));
    return tf.div(tf.neg(picked), b * (t - 1)) as tf.Scalar;
  }

  /**
   * Mean next-token cross-entropy (nats): position `i` predicts token `i+1`, averaged over `batch · (seq − 1)`
   * predictions. Caller owns the scalar.
   */
  loss(tokens: TokenBatch): tf.Scalar {
    this.#check();
    const ids = this.#tokens(tokens, 'tokens', 2);
    try {
      return tf.tidy(() => this.#lossOf(ids));
    } finally {
      ids.dispose();
    }
  }

  /**
   * One backward pass: the loss and the gradient of every parameter, keyed by HF name in
   * {@link parameterNames} order (the form `@psyche/distro-optimizer` consumes together with
   * {@link namedVariables}). Caller owns the gradient tensors.
   */
  computeGradients(tokens: TokenBatch): NamedGradients {
    this.#check();
    const ids = this.#tokens(tokens, 'tokens', 2);
    try {
      const vars = [...this.#vars.values()];
      const { value, grads } = tf.variableGrads(() => this.#lossOf(ids), vars);
      const loss = value.dataSync()[0]!;
      value.dispose();
      const out: Record<string, tf.Tensor> = {};
      for (const [name, v] of this.#vars) out[name] = grads[v.name]!;
      return { loss, grads: out };
    } finally {
      ids.dispose();
    }
  }

  /**
   * Convenience training step with a tfjs optimizer (`tf.train.adam(…)` etc.): computes gradients and applies
   * them. Returns the loss before the update. Leaves no tensors behind.
   */
  trainStep(tokens: TokenBatch, optimizer: tf.Optimizer): number {
    const { loss, grads } = this.computeGradients(tokens);
    try {
      const byVar: Record<string, tf.Tensor> = {};
      for (const [name, g] of Object.entries(grads)) byVar[this.#vars.get(name)!.name] = g;
      optimizer.applyGradients(byVar);
      return loss;
    } finally {
      tf.dispose(Object.values(grads));
    }
  }

  /**
   * Incremental step with the latent cache: runs `ids` (`[B, Tq]`, positions `past … past+Tq−1`), appends each
   * layer's normalized latent and rotated rope key to `cache`, and returns last-position logits `[B, V]`.
   * Attention is computed in latent space with the absorbed `kv_b_proj` (DeepSeek-V2 §2.1.2): the query's nope
   * part is mapped through `W_UK` to the latent, scores are taken against the cached latent directly, and the
   * attention-weighted latent is expanded through `W_UV` once per query — per-head keys/values are never
   * materialized. Call inside a tidy; `cache` tensors are kept (tf.keep) and the old ones disposed.
   */
  #decodeStep(ids: tf.Tensor2D, cache: LatentLayerCache[], past: number, prep: Prepared): tf.Tensor2D {
    const c = this.config;
    const [b, tq] = ids.shape;
    const h = c.num_attention_heads;
    const { kv_lora_rank: r, qk_nope_head_dim: dn, qk_rope_head_dim: dr, v_head_dim: dv } = c;
    const tk = past + tq;
    const [cos, sin] = ropeTables(past, tq, dr, c.rope_theta);
    const mask = causalMask(tq, tk, past);
    const scale = 1 / Math.sqrt(dn + dr);
    let hidden = tf.gather(this.#w('model.embed_tokens.weight'), tf.reshape(ids, [b * tq])) as tf.Tensor2D;
    for (let l = 0; l < c.num_hidden_layers; l++) {
      const lp = `model.layers.${l}`;
      const p = `${lp}.self_attn`;
      const x = rmsNorm(hidden, this.#w(`${lp}.input_layernorm.weight`), c.rms_norm_eps) as tf.Tensor2D;
      const [qNope, qPeRaw] = this.#queries(x, p, b, tq, prep);
      const qPe = applyRope(qPeRaw, cos, sin);
      const [latentNew, kPeRaw] = this.#latent(x, p, prep);
      const kPeNew = tf.reshape(applyRope(tf.reshape(kPeRaw, [b, tq, 1, dr]), cos, sin), [b, tq, dr]);
      const entry = cache[l];
      const latentAll = entry
        ? tf.concat([entry.latent, tf.reshape(latentNew, [b, tq, r])], 1)
        : tf.reshape(latentNew, [b, tq, r]);
      const ropeAll = entry ? tf.concat([entry.ropeKey, kPeNew], 1) : kPeNew;
      if (entry) tf.dispose([entry.latent, entry.ropeKey]);
      cache[l] = { latent: tf.keep(latentAll) as tf.Tensor3D, ropeKey: tf.keep(ropeAll) as tf.Tensor3D };
      // W = kv_b_proj [H·(dn+dv), r] → W_UK [H, dn, r], W_UVᵀ [H, r, dv] (prepared once per generate call)
      const wUk = prep.get(`${p}.w_uk`) as tf.Tensor3D;
      const wUvT = prep.get(`${p}.w_uv_t`) as tf.Tensor3D;
      // q_lat[h] = q_nope[h] @ W_UK[h]: [H, B·Tq, dn] @ [H, dn, r] → [B, H·Tq, r]
      const qN = tf.reshape(tf.transpose(qNope, [2, 0, 1, 3]), [h, b * tq, dn]) as tf.Tensor3D;
      const qLat = tf.reshape(tf.transpose(tf.reshape(tf.matMul(qN, wUk), [h, b, tq, r]), [1, 0, 2, 3]), [
        b,
        h * tq,
        r,
      ]) as tf.Tensor3D;
      const qP = tf.reshape(tf.transpose(qPe, [0, 2, 1, 3]), [b, h * tq, dr]) as tf.Tensor3D;
      const scores = tf.add(
        tf.matMul(qLat, swapLast(latentAll as tf.Tensor3D)),
        tf.matMul(qP, swapLast(ropeAll as tf.Tensor3D)),
      ); // [B, H·Tq, Tk]
      const probs = tf.softmax(tf.add(tf.mul(tf.reshape(scores, [b, h, tq, tk]), scale), mask));
      const oLat = tf.matMul(tf.reshape(probs, [b, h * tq, tk]) as tf.Tensor3D, latentAll as tf.Tensor3D); // [B, H·Tq, r]
      const oLatH = tf.reshape(tf.transpose(tf.reshape(oLat, [b, h, tq, r]), [1, 0, 2, 3]), [
        h,
        b * tq,
        r,
      ]) as tf.Tensor3D;
      const o = tf.matMul(oLatH, wUvT); // [H, B·Tq, dv]
      const merged = tf.reshape(tf.transpose(tf.reshape(o, [h, b, tq, dv]), [1, 2, 0, 3]), [b * tq, h * dv]);
      hidden = tf.add(hidden, this.#lin(merged as tf.Tensor2D, `${p}.o_proj.weight`, prep));
      const m = this.#mlp(
        rmsNorm(hidden, this.#w(`${lp}.post_attention_layernorm.weight`), c.rms_norm_eps) as tf.Tensor2D,
        l,
        prep,
      );
      hidden = tf.add(hidden, m);
    }
    const last = tf.reshape(
      tf.slice(tf.reshape(hidden, [b, tq, c.hidden_size]), [0, tq - 1, 0], [b, 1, c.hidden_size]),
      [b, c.hidden_size],
    ) as tf.Tensor2D;
    return this.#head(last, prep);
  }

  /**
   * Autoregressive generation. With `useCache` (default) the prompt is prefilled once and each new token costs
   * one incremental step over a KV cache that stores only the compressed latent: `kv_lora_rank +
   * qk_rope_head_dim` floats per token per layer (see {@link kvCacheFootprint}).
   *
   * @param prompts - `[batch][promptLen]` token ids (rows of equal length, ≥ 1 token).
   * @throws {MlaError} `INVALID_ARGUMENT` for bad prompts/options, `SEQUENCE_TOO_LONG` if prompt + new tokens
   *   exceed `max_position_embeddings`.
   */
  async generate(prompts: TokenBatch, options: GenerateOptions): Promise<GenerateResult> {
    this.#check();
    const { maxNewTokens } = options;
    const temperature = options.temperature ?? 0;
    this.#counted(() => this.#checkGenerateOptions(maxNewTokens, temperature));
    const ids = this.#tokens(prompts, 'prompts', 1);
    const t0 = ids.shape[1];
    if (t0 + maxNewTokens > this.config.max_position_embeddings) {
      ids.dispose();
      this.#counted(() => {
        throw new MlaError(
          'SEQUENCE_TOO_LONG',
          `prompt length ${t0} + maxNewTokens ${maxNewTokens} exceeds max_position_embeddings ${this.config.max_position_embeddings}`,
          { parameter: 'maxNewTokens' },
        );
      });
    }
    return this.#generate(ids, options, temperature);
  }

  #checkGenerateOptions(maxNewTokens: number, temperature: number): void {
    if (!Number.isSafeInteger(maxNewTokens) || maxNewTokens < 0) {
      throw new MlaError(
        'INVALID_ARGUMENT',
        `options.maxNewTokens must be a non-negative integer, got ${maxNewTokens}`,
        {
          parameter: 'maxNewTokens',
        },
      );
    }
    if (typeof temperature !== 'number' || !Number.isFinite(temperature) || temperature < 0) {
      throw new MlaError(
        'INVALID_ARGUMENT',
        `options.temperature must be a finite number ≥ 0, got ${temperature}`,
        {
          parameter: 'temperature',
        },
      );
    }
  }

  async #generate(ids: tf.Tensor2D, options: GenerateOptions, temperature: number): Promise<GenerateResult> {
    const [b] = ids.shape;
    const v = this.config.vocab_size;
    const { maxNewTokens } = options;
    const rows = (await ids.array()) as number[][];
    const useCache = options.useCache ?? true;
    const cache: LatentLayerCache[] = [];
    const prep = useCache ? this.#prepare() : undefined;
    const out: number[][] = Array.from({ length: b }, () => []);
    const stepLogits: Float32Array[] = [];
    let rand = 0x9e3779b9 ^ (options.seed ?? 0);
    const next = () => {
      rand = (rand + 0x6d2b79f5) >>> 0;
      let x = rand;
      x = Math.imul(x ^ (x >>> 15), x | 1);
      x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
      return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
    };
    try {
      let input = ids;
      let past = 0;
      for (let step = 0; step < maxNewTokens; step++) {
        const logitsT = tf.tidy(() => {
          if (prep) return this.#decodeStep(input, cache, past, prep);
          const all = tf.tensor2d(rows.flat(), [b, rows[0]!.length], 'int32');
          const full = this.#forward2d(all);
          const len = rows[0]!.length;
          return tf.reshape(tf.slice(tf.reshape(full, [b, len, v]), [0, len - 1, 0], [b, 1, v]), [
            b,
            v,
          ]) as tf.Tensor2D;
        });
        past += input.shape[1];
        const logits = (await logitsT.data()) as Float32Array;
        logitsT.dispose();
        if (options.returnLogits) stepLogits.push(logits);
        const picked: number[] = [];
        for (let i = 0; i < b; i++) {
          const row = logits.subarray(i * v, (i + 1) * v);
          picked.push(temperature === 0 ? argmax(row) : sample(row, temperature, next()));
        }
        for (let i = 0; i < b; i++) {
          out[i]!.push(picked[i]!);
          rows[i]!.push(picked[i]!);
        }
        if (input !== ids) input.dispose();
        input = tf.tensor2d(picked, [b, 1], 'int32');
      }
      if (input !== ids) input.dispose();
      let cacheBytes = 0;
      for (const e of cache) cacheBytes += (e.latent.size + e.ropeKey.size) * 4;
      return options.returnLogits ? { tokens: out, stepLogits, cacheBytes } : { tokens: out, cacheBytes };
    } finally {
      ids.dispose();
      for (const e of cache) tf.dispose([e.latent, e.ropeKey]);
      if (prep) tf.dispose([...prep.values()]);
    }
  }

  /** Frees all variables. Further calls throw `DISPOSED`. Idempotent. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const v of this.#vars.values()) v.dispose();
    this.#vars.clear();
  }
}

function argmax(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
  return best;
}

function sample(row: Float32Array, temperature: number, u: number): number {
  let max = Number.NEGATIVE_INFINITY;
  for (const x of row) max = Math.max(max, x);
  let total = 0;
  const p = new Float64Array(row.length);
  for (let i = 0; i < row.length; i++) {
    p[i] = Math.exp((row[i]! - max) / temperature);
    total += p[i]!;
  }
  let acc = 0;
  for (let i = 0; i < row.length; i++) {
    acc += p[i]! / total;
    if (u < acc) return i;
  }
  return row.length - 1;
}
