import { DistroCodecError, DistroError } from './errors.js';
import { type ParamLayout, paramLayout } from './layout.js';

/**
 * The swarm-wide settings a result was produced with. Every worker must use the same values, and
 * results produced with other values are rejected (`CONFIG_MISMATCH`).
 *
 * @since 0.1.0
 */
export interface DistroWireConfig {
  /** Target chunk size per dimension (`compressionChunk`). */
  readonly compressionChunk: number;
  /** Coefficients kept per block before clamping (`compressionTopk`). */
  readonly compressionTopk: number;
  /** Whether values are sign votes in {−1, 0, +1} (1-bit wire) instead of float32. */
  readonly quantize1bit: boolean;
  /**
   * Value precision on the wire when not 1-bit: `float32` (default, also when absent) or `bfloat16` (values are
   * rounded to nearest-even bf16 before sending, as Psyche does; 2 bytes per value).
   */
  readonly valueDtype?: DistroValueDtype;
}

/** Wire value precision for non-1-bit results. */
export type DistroValueDtype = 'float32' | 'bfloat16';

/** The value dtype of a config, with the default applied. */
export function valueDtypeOf(config: DistroWireConfig): DistroValueDtype {
  return config.valueDtype ?? 'float32';
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/**
 * Rounds a finite float32 to the nearest bfloat16 (ties to even), returned as a float32 number whose low 16 bits are
 * zero. Values that would round to ±Infinity saturate to the largest finite bf16 (±3.3895e38).
 *
 * @since 0.1.0
 */
export function roundToBf16(v: number): number {
  f32[0] = v;
  const bits = u32[0]!;
  let r = (bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16;
  if ((r & 0x7f80) === 0x7f80) r = (r & 0x8000) | 0x7f7f; // saturate instead of overflowing to Inf
  u32[0] = r << 16;
  return f32[0]!;
}

/** True when the float32 value `v` is exactly representable in bfloat16. */
export function isBf16(v: number): boolean {
  f32[0] = v;
  return (u32[0]! & 0xffff) === 0;
}

/**
 * One parameter's compressed contribution: `k` coefficients per block.
 *
 * Canonical order: blocks in layout order, and inside each block the indices strictly ascending. The top-k
 * itself picks the largest `|coefficient|`, and among equal magnitudes the lowest index (tf.topk semantics);
 * the order on the wire is then ascending, so equal inputs always produce identical bytes.
 *
 * @since 0.1.0
 */
export interface DistroParamResult {
  /** Parameter name (the record key, or `variable.name` for arrays). */
  readonly name: string;
  /** The parameter's shape. */
  readonly shape: readonly number[];
  /** Block rows (`getSmallerSplit(rows, chunk)`). */
  readonly n1: number;
  /** Block cols (`getSmallerSplit(cols, chunk)`). */
  readonly n2: number;
  /** Coefficients per block, `min(topk, n1·n2)`. */
  readonly k: number;
  /** `numBlocks · k` in-block coefficient indices in `[0, n1·n2)`, ascending within each block. */
  readonly indices: Int32Array;
  /** `numBlocks · k` coefficient values (float32), or sign votes in {−1, 0, +1} in 1-bit mode. */
  readonly values: Float32Array;
}

/**
 * What one worker shares per step: the top-k DCT coefficients of its momentum, for every parameter.
 * Produced by `DistroOptimizer.compress`, serialized by {@link encodeDistroResult}.
 *
 * @since 0.1.0
 */
export interface DistroResult {
  /** Wire format version (currently 1). */
  readonly version: number;
  /** Settings the result was produced with. */
  readonly config: DistroWireConfig;
  /** One entry per parameter, no duplicates. Parameters may be absent (treated as "no contribution"). */
  readonly params: readonly DistroParamResult[];
}

/**
 * What the local model expects from peers: the settings and each parameter's shape. Get it from
 * `DistroOptimizer.layoutOf(vars)` and pass it to {@link decodeDistroResult} to reject mismatching results.
 *
 * @since 0.1.0
 */
export interface DistroLayout {
  /** The local optimizer's settings. */
  readonly config: DistroWireConfig;
  /** Local parameters by name. */
  readonly params: ReadonlyMap<string, readonly number[]>;
}

/** The wire format version written by {@link encodeDistroResult}. */
export const DISTRO_WIRE_VERSION = 1;

function fail(
  code: ConstructorParameters<typeof DistroCodecError>[0],
  message: string,
  param?: string,
): never {
  throw new DistroCodecError(code, message, param === undefined ? {} : { param });
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * Validates a result (from a peer, or built by hand) completely: settings, unique names, shapes, per-parameter
 * layout, array lengths, index range and canonical ascending order, finite values (and {−1, 0, +1} in 1-bit
 * mode), and, when `expected` is given, agreement with the local model. Returns the layouts by name.
 *
 * @throws {DistroCodecError} naming the parameter and the field that is wrong.
 * @since 0.1.0
 */
export function validateDistroResult(
  result: DistroResult,
  expected?: DistroLayout,
): Map<string, ParamLayout> {
  if (typeof result !== 'object' || result === null) fail('INVALID_INPUT', 'result must be an object');
  if (result.version !== DISTRO_WIRE_VERSION) {
    fail('UNSUPPORTED_VERSION', `result version ${String(result.version)} is not ${DISTRO_WIRE_VERSION}`);
  }
  const cfg = result.config;
  if (typeof cfg !== 'object' || cfg === null) fail('INVALID_FIELD', 'result.config must be an object');
  const { compressionChunk: chunk, compressionTopk: topk, quantize1bit } = cfg;
  if (!Number.isSafeInteger(chunk) || chunk < 1 || chunk > 0xffffffff) {
    fail('INVALID_FIELD', `config.compressionChunk must be a positive integer, got ${String(chunk)}`);
  }
  if (!Number.isSafeInteger(topk) || topk < 1 || topk > 0xffffffff) {
    fail('INVALID_FIELD', `config.compressionTopk must be a positive integer, got ${String(topk)}`);
  }
  if (typeof quantize1bit !== 'boolean') fail('INVALID_FIELD', 'config.quantize1bit must be a boolean');
  const dtype = cfg.valueDtype ?? 'float32';
  if (dtype !== 'float32' && dtype !== 'bfloat16') {
    fail('INVALID_FIELD', `config.valueDtype must be "float32" or "bfloat16", got ${String(dtype)}`);
  }
  if (quantize1bit && dtype !== 'float32')
    fail('INVALID_FIELD', 'config.valueDtype must be float32 with quantize1bit');
  if (expected !== undefined && !sameWireConfig(cfg, expected.config)) {
    fail(
      'CONFIG_MISMATCH',
      `result settings ${describeWireConfig(cfg)} differ from local ${describeWireConfig(expected.config)}`,
    );
  }
  if (!Array.isArray(result.params)) fail('INVALID_FIELD', 'result.params must be an array');
  const layouts = new Map<string, ParamLayout>();
  for (const p of result.params) {
    if (typeof p !== 'object' || p === null) fail('INVALID_FIELD', 'result.params entries must be objects');
    const name = p.name;
    if (typeof name !== 'string' || name.length === 0)
      fail('INVALID_NAME', 'parameter name must be non-empty');
    if (layouts.has(name)) fail('DUPLICATE_PARAMETER', `parameter "${name}" appears twice`, name);
    let layout: ParamLayout;
    try {
      layout = paramLayout(p.shape, chunk, topk, name);
    } catch (e) {
      if (e instanceof DistroError) fail('INVALID_SHAPE', e.message, name);
      throw e;
    }
    if (expected !== undefined) {
      const local = expected.params.get(name);
      if (local === undefined)
        fail('UNKNOWN_PARAMETER', `parameter "${name}" is not in the local model`, name);
      if (!sameShape(local, layout.shape)) {
        fail(
          'SHAPE_MISMATCH',
          `parameter "${name}" has shape [${layout.shape.join(', ')}], local model has [${local.join(', ')}]`,
          name,
        );
      }
    }
    if (p.n1 !== layout.n1 || p.n2 !== layout.n2 || p.k !== layout.k) {
      fail(
        'LAYOUT_MISMATCH',
        `parameter "${name}": layout ${String(p.n1)}x${String(p.n2)} k=${String(p.k)} differs from ` +
          `${layout.n1}x${layout.n2} k=${layout.k} implied by its shape and settings`,
        name,
      );
    }
    const count = layout.numBlocks * layout.k;
    if (!(p.indices instanceof Int32Array) || p.indices.length !== count) {
      fail('INVALID_FIELD', `parameter "${name}": indices must be an Int32Array of length ${count}`, name);
    }
    if (!(p.values instanceof Float32Array) || p.values.length !== count) {
      fail('INVALID_FIELD', `parameter "${name}": values must be a Float32Array of length ${count}`, name);
    }
    checkIndices(p.indices, layout, name);
    checkValues(p.values, quantize1bit, dtype === 'bfloat16', name);
    layouts.set(name, layout);
  }
  return layouts;
}

function checkIndices(indices: Int32Array, layout: ParamLayout, name: string): void {
  const { k, blockSize, numBlocks } = layout;
  for (let b = 0; b < numBlocks; b++) {
    let prev = -1;
    for (let t = 0; t < k; t++) {
      const i = b * k + t;
      const v = indices[i]!;
      if (v < 0 || v >= blockSize) {
        fail(
          'INDEX_OUT_OF_RANGE',
          `parameter "${name}": index ${v} at block ${b} is outside the block range [0, ${blockSize})`,
          name,
        );
      }
      if (v <= prev) {
        fail(
          'NON_CANONICAL_INDICES',
          `parameter "${name}": indices of block ${b} are not strictly ascending (${prev} then ${v})`,
          name,
        );
      }
      prev = v;
    }
  }
}

function checkValues(values: Float32Array, quantize1bit: boolean, bf16: boolean, name: string): void {
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isFinite(v))
      fail('NON_FINITE_VALUE', `parameter "${name}": value ${v} at position ${i}`, name);
    if (quantize1bit && v !== 1 && v !== -1 && v !== 0) {
      fail('INVALID_VALUE', `parameter "${name}": 1-bit value ${v} at position ${i} is not -1, 0 or 1`, name);
    }
    if (bf16 && !isBf16(v)) {
      fail('INVALID_VALUE', `parameter "${name}": value ${v} at position ${i} is not a bfloat16 value`, name);
    }
  }
}

/** Whether two wire configs are the same swarm-wide settings (`valueDtype` defaulting to float32). */
export function sameWireConfig(a: DistroWireConfig, b: DistroWireConfig): boolean {
  return (
    a.compressionChunk === b.compressionChunk &&
    a.compressionTopk === b.compressionTopk &&
    a.quantize1bit === b.quantize1bit &&
    valueDtypeOf(a) === valueDtypeOf(b)
  );
}

function describeWireConfig(c: DistroWireConfig): string {
  return `(chunk ${c.compressionChunk}, topk ${c.compressionTopk}, 1-bit ${c.quantize1bit}, values ${valueDtypeOf(c)})`;
}

/**
 * Scatter-mean of several workers' contributions to one parameter (reference `batch_decompress`):
 * for every (block, coefficient) chosen by at least one worker, the mean over **the workers that chose it**
 * (not divided by the world size). Computed in JS: per coefficient the contributing values are sorted and summed in
 * float64, then rounded once to float32, so the output is bitwise independent of the order of `entries`.
 *
 * @returns flat positions `block · blockSize + index` (ascending) and their mean values.
 * @since 0.1.0
 */
export function scatterMean(
  entries: readonly DistroParamResult[],
  layout: ParamLayout,
): { positions: Int32Array; values: Float32Array } {
  const W = entries.length;
  const { k, blockSize } = layout;
  let cap = 0;
  for (const e of entries) cap += e.indices.length;
  const positions = new Int32Array(cap);
  const values = new Float32Array(cap);
  const ptr = new Int32Array(W);
  const head = new Float64Array(W);
  const flat = (w: number, i: number): number => Math.floor(i / k) * blockSize + entries[w]!.indices[i]!;
  for (let w = 0; w < W; w++)
    head[w] = entries[w]!.indices.length > 0 ? flat(w, 0) : Number.POSITIVE_INFINITY;
  const buf: number[] = [];
  let n = 0;
  for (;;) {
    let min = Number.POSITIVE_INFINITY;
    for (let w = 0; w < W; w++) if (head[w]! < min) min = head[w]!;
    if (min === Number.POSITIVE_INFINITY) break;
    buf.length = 0;
    for (let w = 0; w < W; w++) {
      if (head[w] !== min) continue;
      const e = entries[w]!;
      const i = ptr[w]!;
      buf.push(e.values[i]!);
      ptr[w] = i + 1;
      head[w] = i + 1 < e.indices.length ? flat(w, i + 1) : Number.POSITIVE_INFINITY;
    }
    let mean: number;
    if (buf.length === 1) {
      mean = buf[0]!;
    } else {
      buf.sort((a, b) => a - b);
      let s = 0;
      for (const v of buf) s += v;
      mean = s / buf.length;
    }
    positions[n] = min;
    values[n] = mean;
    n++;
  }
  return { positions: positions.subarray(0, n), values: values.subarray(0, n) };
}
