import * as tf from '@tensorflow/tfjs-core';
import { BasisCache, dctDecode, dctEncode } from './dct.js';
import { DistroError, DistroRejectionStats } from './errors.js';
import { type ParamLayout, paramLayout } from './layout.js';
import {
  DISTRO_WIRE_VERSION,
  type DistroLayout,
  type DistroParamResult,
  type DistroResult,
  type DistroValueDtype,
  type DistroWireConfig,
  roundToBf16,
  scatterMean,
  validateDistroResult,
} from './result.js';

/**
 * Settings of {@link DistroOptimizer}. Defaults are the reference `demo.py` defaults. `compressionChunk`,
 * `compressionTopk` and `quantize1bit` must match swarm-wide; `lr` and `weightDecay` should (they are not checked).
 *
 * @since 0.1.0
 */
export interface DistroOptimizerConfig {
  /** Learning rate η: scales the gradient entering the momentum and is the sign-SGD step. Finite, ≥ 0. */
  readonly lr: number;
  /** Momentum decay β in [0, 1). Default 0.999. */
  readonly compressionDecay?: number;
  /** Coefficients kept per DCT block (clamped to the block size). Positive integer, default 32. */
  readonly compressionTopk?: number;
  /** Target chunk size per dimension (see `getSmallerSplit`). Positive integer, default 64. */
  readonly compressionChunk?: number;
  /** Decoupled weight decay λ: `p *= 1 − η·λ` before the update. Finite, ≥ 0, default 0. */
  readonly weightDecay?: number;
  /** Send sign votes (1 bit per coefficient) instead of float32 values. Default false. */
  readonly quantize1bit?: boolean;
  /**
   * Value precision on the wire when `quantize1bit` is false: `float32` (default) or `bfloat16` (rounded to nearest
   * even, 2 bytes per value, as Psyche sends them). Every worker applies the rounded values; the local residual keeps
   * the exact ones.
   */
  readonly valueDtype?: DistroValueDtype;
}

/** Parameters: an array of variables (named by `variable.name`) or a record of variables (named by key). */
export type DistroVariables = readonly tf.Variable[] | Readonly<Record<string, tf.Variable>>;

/**
 * Gradients matching {@link DistroVariables}: an array aligned with a variable array, or a record keyed by parameter
 * name (what `tf.variableGrads` returns). A missing (`null`/`undefined`/absent) gradient counts as zero.
 */
export type DistroGradients =
  | readonly (tf.Tensor | null | undefined)[]
  | Readonly<Record<string, tf.Tensor | null | undefined>>;

/**
 * Exchanges this worker's result with its peers and resolves to **every** worker's result, its own included
 * (like `dist.all_gather`). The order does not matter: aggregation is order-independent.
 */
export type DistroAllGather = (
  mine: DistroResult,
) => readonly DistroResult[] | Promise<readonly DistroResult[]>;

/** A named tensor, as in tfjs `getWeights`/`setWeights`. */
export interface NamedTensor {
  readonly name: string;
  readonly tensor: tf.Tensor;
}

interface Entry {
  readonly name: string;
  readonly variable: tf.Variable;
}

const F32_MAX = 3.4028234663852886e38;

/**
 * DeMo / DisTrO optimizer (Peng, Quesnelle, Kingma 2024; reference `bloc97/DeMo/demo.py`) with Psyche's extensions
 * (N-D parameters, u8/u16/u32 indices, 1-bit sign values), on `@tensorflow/tfjs-core`. Per step and parameter:
 *
 * 1. `m = β·m + η·g` (missing gradient = 0);
 * 2. chunked orthonormal DCT-II of `m`, top-k by |coefficient| per block (ties: lowest index);
 * 3. `m -= decode(own selection)` (error feedback, unquantized values);
 * 4. share the selection; aggregate every worker's selection by scatter-mean over the workers that chose each
 *    coefficient; `p = p·(1 − η·λ) − η·sign(decode(aggregate))`.
 *
 * `compress` does 1–3 and `apply` does 4, so a training loop can move the bytes however it likes.
 * Everything runs on any backend (cpu, wasm); the DCT is two matmuls per parameter.
 *
 * @example
 * ```ts
 * const opt = new DistroOptimizer({ lr: 1e-3, compressionTopk: 32, compressionChunk: 64 });
 * const { grads } = tf.variableGrads(() => loss(model));
 * const mine = opt.compress(vars, grads);
 * const peers = received.map(decodeDistroResult);
 * opt.apply(vars, [mine, ...peers]);
 * ```
 * @since 0.1.0
 */
export class DistroOptimizer extends tf.Optimizer {
  /** Registered class name (see {@link registerDistroOptimizer}). */
  static readonly className = 'DistroOptimizer';

  /** Momentum decay β. */
  readonly compressionDecay: number;
  /** Coefficients kept per block. */
  readonly compressionTopk: number;
  /** Target chunk size. */
  readonly compressionChunk: number;
  /** Decoupled weight decay λ. */
  readonly weightDecay: number;
  /** 1-bit sign values on the wire. */
  readonly quantize1bit: boolean;
  /** Value precision on the wire when not 1-bit. */
  readonly valueDtype: DistroValueDtype;
  /** Rejected inputs by error code (every `DistroError` thrown by this optimizer's methods). */
  readonly rejections = new DistroRejectionStats();

  private lr_: number;
  private readonly bases = new BasisCache();
  private readonly momentum = new Map<string, tf.Variable>();

  /**
   * @throws {DistroError} `INVALID_CONFIG` naming the offending option.
   */
  constructor(config: DistroOptimizerConfig) {
    super();
    if (typeof config !== 'object' || config === null) {
      throw new DistroError('INVALID_CONFIG', 'DistroOptimizer: config must be an object', {
        field: 'config',
      });
    }
    this.lr_ = checkLr(config.lr);
    this.compressionDecay = config.compressionDecay ?? 0.999;
    this.compressionTopk = config.compressionTopk ?? 32;
    this.compressionChunk = config.compressionChunk ?? 64;
    this.weightDecay = config.weightDecay ?? 0;
    this.quantize1bit = config.quantize1bit ?? false;
    this.valueDtype = config.valueDtype ?? 'float32';
    const d = this.compressionDecay;
    if (typeof d !== 'number' || !(d >= 0 && d < 1)) {
      invalid('compressionDecay', `must be in [0, 1), got ${String(d)}`);
    }
    for (const [field, v] of [
      ['compressionTopk', this.compressionTopk],
      ['compressionChunk', this.compressionChunk],
    ] as const) {
      if (!Number.isSafeInteger(v) || v < 1 || v > 0xffffffff) {
        invalid(field, `must be a positive integer, got ${String(v)}`);
      }
    }
    if (typeof this.weightDecay !== 'number' || !Number.isFinite(this.weightDecay) || this.weightDecay < 0) {
      invalid('weightDecay', `must be a finite number >= 0, got ${String(this.weightDecay)}`);
    }
    if (typeof this.quantize1bit !== 'boolean') {
      invalid('quantize1bit', `must be a boolean, got ${String(this.quantize1bit)}`);
    }
    if (this.valueDtype !== 'float32' && this.valueDtype !== 'bfloat16') {
      invalid('valueDtype', `must be "float32" or "bfloat16", got ${String(this.valueDtype)}`);
    }
    if (this.quantize1bit && this.valueDtype !== 'float32') {
      invalid('valueDtype', 'must be "float32" (or omitted) when quantize1bit is true');
    }
  }

  /** Learning rate η (settable, e.g. by a schedule). */
  get lr(): number {
    return this.lr_;
  }

  set lr(value: number) {
    this.lr_ = checkLr(value);
  }

  /** The settings peers must share, as carried by every result. */
  get wireConfig(): DistroWireConfig {
    return {
      compressionChunk: this.compressionChunk,
      compressionTopk: this.compressionTopk,
      quantize1bit: this.quantize1bit,
      valueDtype: this.valueDtype,
    };
  }

  /**
   * The layout peers' results must have for these variables; pass it to `decodeDistroResult(bytes, { expected })`.
   *
   * @throws {DistroError} for duplicate names or unsupported variables.
   */
  layoutOf(vars: DistroVariables): DistroLayout {
    return this.guard(() => {
      const params = new Map<string, readonly number[]>();
      for (const e of entriesOf(vars)) params.set(e.name, [...e.variable.shape]);
      return { config: this.wireConfig, params };
    });
  }

  /**
   * Steps 1–3 for every parameter: updates the local momentum and returns what to send. Synchronous.
   * All inputs are validated before any state changes; on error the momentum is untouched.
   *
   * @returns the result to share (and to pass to {@link DistroOptimizer.apply} with the peers' results).
   * @throws {DistroError} `NON_FINITE_GRADIENT` (NaN/Inf), `SHAPE_MISMATCH`, `UNKNOWN_PARAMETER`,
   *   `DUPLICATE_PARAMETER`, `UNSUPPORTED_DTYPE`, `INVALID_ARGUMENT`, `NON_FINITE_MOMENTUM` (overflow).
   */
  compress(vars: DistroVariables, grads: DistroGradients): DistroResult {
    return this.guard(() => {
      const entries = entriesOf(vars);
      const g = gradsOf(entries, grads);
      const layouts = entries.map((e) =>
        paramLayout(e.variable.shape, this.compressionChunk, this.compressionTopk, e.name),
      );
      // Phase 1: validate everything (no state change).
      const beta = this.compressionDecay;
      entries.forEach((e, i) => {
        const grad = g[i];
        const m = this.momentum.get(e.name);
        if (m !== undefined && !sameShape(m.shape, e.variable.shape)) {
          throw new DistroError(
            'SHAPE_MISMATCH',
            `momentum of "${e.name}" has shape [${m.shape.join(', ')}], variable has [${e.variable.shape.join(', ')}]`,
            { param: e.name, field: 'momentum' },
          );
        }
        const maxG = grad === undefined ? 0 : maxAbs(grad, e.name);
        const maxM = m === undefined ? 0 : maxAbs(m, e.name);
        if (beta * maxM + this.lr_ * maxG > F32_MAX) {
          throw new DistroError(
            'NON_FINITE_MOMENTUM',
            `momentum of "${e.name}" would overflow float32 (|m| ≤ ${maxM}, |g| ≤ ${maxG}, lr ${this.lr_})`,
            { param: e.name, field: 'grads' },
          );
        }
      });
      // Phase 2: compress each parameter.
      const params: DistroParamResult[] = entries.map((e, i) => this.compressOne(e, g[i], layouts[i]!));
      return { version: DISTRO_WIRE_VERSION, config: this.wireConfig, params };
    });
  }

  private compressOne(e: Entry, grad: tf.Tensor | undefined, layout: ParamLayout): DistroParamResult {
    let m = this.momentum.get(e.name);
    if (m === undefined) {
      const zeros = tf.zeros(e.variable.shape, 'float32');
      m = tf.variable(zeros, false);
      zeros.dispose();
      this.momentum.set(e.name, m);
    }
    const mom = m;
    const { numBlocks, blockSize, k } = layout;
    const beta = this.compressionDecay;
    const lr = this.lr_;
    const [newM, flatIdx, vals] = tf.tidy(() => {
      // Reference: m = β·m (when β ≠ 1), then m += η·g.
      let nm: tf.Tensor = beta === 0 ? tf.zerosLike(mom) : tf.mul(mom, tf.scalar(beta));
      if (grad !== undefined) nm = tf.add(nm, tf.mul(grad, tf.scalar(lr)));
      const coef = dctEncode(nm, layout, this.bases.get);
      const { indices } = tf.topk(tf.abs(coef), k, true);
      // Flat positions block·blockSize + index (gather with batchDims is wrong on wasm 4.22, so gather flat).
      const offsets = tf.mul(tf.range(0, numBlocks, 1, 'int32'), tf.scalar(blockSize, 'int32'));
      const flat = tf.reshape(tf.add(indices, tf.reshape(offsets, [numBlocks, 1])), [numBlocks * k]);
      const v = tf.gather(tf.reshape(coef, [numBlocks * blockSize]), flat);
      return [nm, flat, v] as const;
    });
    try {
      const flatData = flatIdx.dataSync() as Int32Array;
      const valData = vals.dataSync() as Float32Array;
      // Error feedback: m = newM − decode(own selection). Positions are unique, so scatterND is an assignment.
      tf.tidy(() => {
        const sel = tf.reshape(
          tf.scatterND(tf.reshape(flatIdx, [numBlocks * k, 1]), vals, [numBlocks * blockSize]),
          [numBlocks, blockSize],
        );
        mom.assign(tf.sub(newM, dctDecode(sel, layout, this.bases.get)));
      });
      // Canonical order: indices ascending inside each block.
      const indices = new Int32Array(numBlocks * k);
      const values = new Float32Array(numBlocks * k);
      const order = new Int32Array(k);
      const bf16 = this.valueDtype === 'bfloat16';
      for (let b = 0; b < numBlocks; b++) {
        const o = b * k;
        for (let t = 0; t < k; t++) order[t] = t;
        order.sort((x, y) => flatData[o + x]! - flatData[o + y]!);
        for (let t = 0; t < k; t++) {
          const src = o + order[t]!;
          indices[o + t] = flatData[src]! - b * blockSize;
          const v = valData[src]!;
          values[o + t] = this.quantize1bit ? (v > 0 ? 1 : v < 0 ? -1 : 0) : bf16 ? roundToBf16(v) : v;
        }
      }
      return { name: e.name, shape: [...e.variable.shape], n1: layout.n1, n2: layout.n2, k, indices, values };
    } finally {
      newM.dispose();
      flatIdx.dispose();
      vals.dispose();
    }
  }

  /**
   * Step 4: aggregates the results of all workers (this worker's included) and updates the variables:
   * `p = p·(1 − η·λ) − η·sign(decode(scatterMean))`. Every result is validated against `vars` first; on error
   * nothing changes. A parameter absent from every result only gets weight decay. Increments `iterations`.
   *
   * @throws {DistroCodecError} for an invalid or mismatching result (naming the parameter); {@link DistroError} for
   *   bad variables.
   */
  apply(vars: DistroVariables, results: readonly DistroResult[]): void {
    this.guard(() => {
      const entries = entriesOf(vars);
      if (!Array.isArray(results)) {
        throw new DistroError('INVALID_ARGUMENT', 'apply: results must be an array of DistroResult', {
          field: 'results',
        });
      }
      const expected: DistroLayout = {
        config: this.wireConfig,
        params: new Map(entries.map((e) => [e.name, e.variable.shape])),
      };
      const byName = (results as readonly DistroResult[]).map((r) => {
        validateDistroResult(r, expected);
        return new Map(r.params.map((p) => [p.name, p]));
      });
      const lr = this.lr_;
      const decay = this.weightDecay === 0 ? 1 : 1 - lr * this.weightDecay;
      for (const e of entries) {
        const layout = paramLayout(e.variable.shape, this.compressionChunk, this.compressionTopk, e.name);
        const contributions: DistroParamResult[] = [];
        for (const m of byName) {
          const p = m.get(e.name);
          if (p !== undefined) contributions.push(p);
        }
        const { positions, values } = scatterMean(contributions, layout);
        const v = e.variable;
        tf.tidy(() => {
          let next: tf.Tensor = decay === 1 ? v : tf.mul(v, tf.scalar(decay));
          if (positions.length > 0) {
            const agg = tf.scatterND(
              tf.tensor2d(positions, [positions.length, 1], 'int32'),
              tf.tensor1d(values, 'float32'),
              [layout.size],
            );
            const u = dctDecode(
              tf.reshape(agg, [layout.numBlocks, layout.blockSize]),
              layout,
              this.bases.get,
            );
            next = tf.sub(next, tf.mul(tf.sign(u), tf.scalar(lr)));
          }
          if (next !== v) v.assign(next);
        });
      }
      this.incrementIterations();
    });
  }

  /**
   * One synchronous step: `compress`, exchange through `allGather`, `apply`. If `allGather` rejects, the momentum
   * already holds this step's update and the variables are unchanged.
   *
   * @returns this worker's result.
   */
  async step(
    vars: DistroVariables,
    grads: DistroGradients,
    allGather: DistroAllGather,
  ): Promise<DistroResult> {
    const mine = this.compress(vars, grads);
    const all = await allGather(mine);
    this.apply(vars, all);
    return mine;
  }

  /**
   * `tf.Optimizer` entry point used by `minimize` and tfjs training loops: one worker, no network
   * (`compress` then `apply` with only its own result, as the reference does with world size 1).
   */
  override applyGradients(variableGradients: tf.NamedTensorMap | NamedTensor[]): void {
    const grads: Record<string, tf.Tensor> = {};
    if (Array.isArray(variableGradients)) {
      for (const { name, tensor } of variableGradients) grads[name] = tensor;
    } else {
      Object.assign(grads, variableGradients);
    }
    const registered = tf.engine().registeredVariables;
    const vars: Record<string, tf.Variable> = {};
    for (const name of Object.keys(grads)) {
      const v = registered[name];
      if (v === undefined) {
        const err = new DistroError('UNKNOWN_PARAMETER', `applyGradients: no variable named "${name}"`, {
          param: name,
        });
        this.rejections.record(err);
        throw err;
      }
      vars[name] = v;
    }
    this.apply(vars, [this.compress(vars, grads)]);
  }

  /**
   * Optimizer state: `iter`, then `<name>/momentum` per parameter (the residual, which the reference loses).
   * Caller owns the returned tensors.
   */
  override async getWeights(): Promise<NamedTensor[]> {
    const out: NamedTensor[] = [{ name: 'iter', tensor: tf.scalar(this.iterations, 'int32') }];
    for (const [name, m] of this.momentum) out.push({ name: `${name}/momentum`, tensor: tf.clone(m) });
    return out;
  }

  /**
   * Restores state saved by {@link DistroOptimizer.getWeights} (the tensors are copied, the caller keeps ownership).
   * Validated completely before anything changes.
   *
   * @throws {DistroError} `INVALID_WEIGHTS` for an unknown name, a non-float32 or non-finite tensor.
   */
  override async setWeights(weightValues: NamedTensor[]): Promise<void> {
    this.guard(() => {
      if (!Array.isArray(weightValues)) {
        throw new DistroError('INVALID_WEIGHTS', 'setWeights: expected an array of {name, tensor}', {
          field: 'weightValues',
        });
      }
      let iter: number | undefined;
      const moms = new Map<string, tf.Tensor>();
      for (const w of weightValues) {
        const name = w?.name;
        const t = w?.tensor;
        if (typeof name !== 'string' || !(t instanceof tf.Tensor) || t.isDisposed) {
          throw new DistroError('INVALID_WEIGHTS', 'setWeights: every entry needs a name and a live tensor', {
            field: 'weightValues',
          });
        }
        if (name === 'iter') {
          const v = t.size === 1 ? t.dataSync()[0]! : Number.NaN;
          if (!Number.isSafeInteger(v) || v < 0) {
            throw new DistroError(
              'INVALID_WEIGHTS',
              `setWeights: iter must be a non-negative integer, got ${v}`,
              {
                field: 'iter',
              },
            );
          }
          iter = v;
        } else if (name.endsWith('/momentum') && name.length > '/momentum'.length) {
          const param = name.slice(0, -'/momentum'.length);
          if (t.dtype !== 'float32') {
            throw new DistroError(
              'INVALID_WEIGHTS',
              `setWeights: "${name}" must be float32, got ${t.dtype}`,
              {
                param,
                field: 'momentum',
              },
            );
          }
          if (!Number.isFinite(maxAbsRaw(t))) {
            throw new DistroError('INVALID_WEIGHTS', `setWeights: "${name}" contains NaN or Inf`, {
              param,
              field: 'momentum',
            });
          }
          moms.set(param, t);
        } else {
          throw new DistroError('INVALID_WEIGHTS', `setWeights: unknown weight "${name}"`, { field: name });
        }
      }
      if (iter !== undefined) this.iterations_ = iter;
      for (const [param, t] of moms) {
        this.momentum.get(param)?.dispose();
        this.momentum.set(param, tf.variable(t, false));
      }
    });
  }

  /** Serializable config (the constructor options). */
  override getConfig(): tf.serialization.ConfigDict {
    return {
      lr: this.lr_,
      compressionDecay: this.compressionDecay,
      compressionTopk: this.compressionTopk,
      compressionChunk: this.compressionChunk,
      weightDecay: this.weightDecay,
      quantize1bit: this.quantize1bit,
      valueDtype: this.valueDtype,
    };
  }

  /** Builds an optimizer from {@link DistroOptimizer.getConfig} output. */
  static override fromConfig<T extends tf.serialization.Serializable>(
    cls: tf.serialization.SerializableConstructor<T>,
    config: tf.serialization.ConfigDict,
  ): T {
    return new cls(config);
  }

  /** Releases the momentum variables and cached DCT bases. */
  override dispose(): void {
    for (const m of this.momentum.values()) m.dispose();
    this.momentum.clear();
    this.bases.dispose();
    super.dispose();
  }

  private guard<T>(fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      if (e instanceof DistroError) this.rejections.record(e);
      throw e;
    }
  }
}

/**
 * Registers {@link DistroOptimizer} with `tf.serialization` so tfjs can rebuild it from a saved config.
 * Explicit (no import side effects); idempotent.
 *
 * @since 0.1.0
 */
export function registerDistroOptimizer(): void {
  tf.serialization.registerClass(DistroOptimizer);
}

function invalid(field: string, message: string): never {
  throw new DistroError('INVALID_CONFIG', `DistroOptimizer: ${field} ${message}`, { field });
}

function checkLr(lr: unknown): number {
  if (typeof lr !== 'number' || !Number.isFinite(lr) || lr < 0) {
    invalid('lr', `must be a finite number >= 0, got ${String(lr)}`);
  }
  return lr;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function entriesOf(vars: DistroVariables): Entry[] {
  if (typeof vars !== 'object' || vars === null) {
    throw new DistroError('INVALID_ARGUMENT', 'vars must be an array or a record of tf.Variable', {
      field: 'vars',
    });
  }
  const list: Entry[] = Array.isArray(vars)
    ? (vars as readonly tf.Variable[]).map((variable) => ({ name: variable?.name, variable }))
    : Object.entries(vars as Record<string, tf.Variable>).map(([name, variable]) => ({ name, variable }));
  const seen = new Set<string>();
  for (const e of list) {
    if (!(e.variable instanceof tf.Variable) || e.variable.isDisposed) {
      throw new DistroError('INVALID_ARGUMENT', `vars["${String(e.name)}"] is not a live tf.Variable`, {
        param: String(e.name),
        field: 'vars',
      });
    }
    if (e.variable.dtype !== 'float32') {
      throw new DistroError(
        'UNSUPPORTED_DTYPE',
        `variable "${e.name}" is ${e.variable.dtype}, expected float32`,
        {
          param: e.name,
          field: 'vars',
        },
      );
    }
    if (seen.has(e.name)) {
      throw new DistroError('DUPLICATE_PARAMETER', `variable "${e.name}" is listed twice`, {
        param: e.name,
        field: 'vars',
      });
    }
    seen.add(e.name);
  }
  return list;
}

function gradsOf(entries: readonly Entry[], grads: DistroGradients): (tf.Tensor | undefined)[] {
  if (typeof grads !== 'object' || grads === null) {
    throw new DistroError('INVALID_ARGUMENT', 'grads must be an array or a record of tf.Tensor', {
      field: 'grads',
    });
  }
  let out: (tf.Tensor | null | undefined)[];
  if (Array.isArray(grads)) {
    if (grads.length !== entries.length) {
      throw new DistroError(
        'INVALID_ARGUMENT',
        `grads has ${grads.length} entries, vars has ${entries.length}: arrays must be aligned`,
        { field: 'grads' },
      );
    }
    out = [...(grads as readonly (tf.Tensor | null | undefined)[])];
  } else {
    const rec = grads as Readonly<Record<string, tf.Tensor | null | undefined>>;
    const names = new Set(entries.map((e) => e.name));
    for (const key of Object.keys(rec)) {
      if (!names.has(key)) {
        throw new DistroError('UNKNOWN_PARAMETER', `grads["${key}"] has no matching variable`, {
          param: key,
          field: 'grads',
        });
      }
    }
    out = entries.map((e) => rec[e.name]);
  }
  return out.map((g, i) => {
    const e = entries[i]!;
    if (g === null || g === undefined) return undefined;
    if (!(g instanceof tf.Tensor) || g.isDisposed) {
      throw new DistroError('INVALID_ARGUMENT', `grads["${e.name}"] is not a live tf.Tensor`, {
        param: e.name,
        field: 'grads',
      });
    }
    if (!sameShape(g.shape, e.variable.shape)) {
      throw new DistroError(
        'SHAPE_MISMATCH',
        `grads["${e.name}"] has shape [${g.shape.join(', ')}], variable has [${e.variable.shape.join(', ')}]`,
        { param: e.name, field: 'grads' },
      );
    }
    if (g.dtype !== 'float32') {
      throw new DistroError('UNSUPPORTED_DTYPE', `grads["${e.name}"] is ${g.dtype}, expected float32`, {
        param: e.name,
        field: 'grads',
      });
    }
    return g;
  });
}

/** max |t| in float32, or NaN/Infinity when the tensor holds a non-finite value. */
function maxAbsRaw(t: tf.Tensor): number {
  const s = tf.tidy(() =>
    tf.stack([tf.cast(tf.logicalNot(tf.all(tf.isFinite(t))), 'float32'), tf.max(tf.abs(t))]),
  );
  const [bad, max] = s.dataSync();
  s.dispose();
  return bad === 1 ? Number.NaN : max!;
}

function maxAbs(t: tf.Tensor, name: string): number {
  const v = maxAbsRaw(t);
  if (!Number.isFinite(v)) {
    throw new DistroError('NON_FINITE_GRADIENT', `grads["${name}"] contains NaN or Inf`, {
      param: name,
      field: 'grads',
    });
  }
  return v;
}
