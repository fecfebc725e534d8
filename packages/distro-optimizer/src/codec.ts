import {
  DistroCodecError,
  type DistroCodecErrorCode,
  DistroError,
  type DistroRejectionStats,
} from './errors.js';
import { indexWidth, MAX_RANK, paramLayout } from './layout.js';
import {
  DISTRO_WIRE_VERSION,
  type DistroLayout,
  type DistroParamResult,
  type DistroResult,
  sameWireConfig,
  validateDistroResult,
  valueDtypeOf,
} from './result.js';

/** The four magic bytes that open every encoded result: ASCII `PSDR`. */
export const DISTRO_MAGIC = new Uint8Array([0x50, 0x53, 0x44, 0x52]);

const FLAG_1BIT = 1;
const FLAG_BF16 = 2;

/** Options of {@link decodeDistroResult}. */
export interface DecodeDistroOptions {
  /** The local model's layout (`opt.layoutOf(vars)`): settings, names and shapes must agree. */
  readonly expected?: DistroLayout;
  /** Reject inputs larger than this many bytes before reading them (default: no limit). */
  readonly maxBytes?: number;
  /** Every rejection is counted here. */
  readonly stats?: DistroRejectionStats;
}

const encoder = new TextEncoder();
const scratch = new DataView(new ArrayBuffer(4));

/**
 * Serializes a result to the versioned little-endian wire format (format v1):
 *
 * ```
 * "PSDR" · version u8 · flags u8 (bit0 = 1-bit, bit1 = bf16 values) · chunk u32 · topk u32 · paramCount u32
 * per parameter: nameLen u16 · name utf8 · rank u8 · dims u32×rank · n1 u32 · n2 u32 · k u32 · indexWidth u8
 *   · [1-bit: hasZeros u8] · indices (u8/u16/u32 by block size) · values (f32, bf16, or sign bits LSB-first,
 *     bit 1 = negative, then when hasZeros a zero bitmap, bit 1 = value 0)
 * ```
 *
 * The 1-bit zero bitmap fixes Psyche's "zero coefficient becomes a +1 vote" problem (§2.8): a selected coefficient
 * that is exactly 0 is sent as a 0 vote, at the cost of one extra bit per coefficient only for parameters that have one.
 *
 * @example
 * ```ts
 * const bytes = encodeDistroResult(opt.compress(vars, grads));
 * ```
 * @throws {DistroCodecError} when the result itself is invalid (it is validated first).
 * @since 0.1.0
 */
export function encodeDistroResult(result: DistroResult): Uint8Array {
  const layouts = validateDistroResult(result);
  const q = result.config.quantize1bit;
  const bf16 = valueDtypeOf(result.config) === 'bfloat16';
  const names = result.params.map((p) => encoder.encode(p.name));
  let size = 4 + 1 + 1 + 4 + 4 + 4;
  const zeroFlags: boolean[] = [];
  result.params.forEach((p, i) => {
    if (names[i]!.length > 0xffff) {
      throw new DistroCodecError('INVALID_NAME', `parameter name "${p.name.slice(0, 32)}…" is too long`, {
        param: p.name,
      });
    }
    const layout = layouts.get(p.name)!;
    const count = p.indices.length;
    size += 2 + names[i]!.length + 1 + 4 * p.shape.length + 12 + 1 + count * indexWidth(layout.blockSize);
    if (q) {
      const hasZeros = p.values.some((v) => v === 0);
      zeroFlags.push(hasZeros);
      size += 1 + Math.ceil(count / 8) * (hasZeros ? 2 : 1);
    } else {
      size += (bf16 ? 2 : 4) * count;
    }
  });
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  out.set(DISTRO_MAGIC, 0);
  let o = 4;
  dv.setUint8(o++, DISTRO_WIRE_VERSION);
  dv.setUint8(o++, (q ? FLAG_1BIT : 0) | (bf16 ? FLAG_BF16 : 0));
  dv.setUint32(o, result.config.compressionChunk, true);
  dv.setUint32(o + 4, result.config.compressionTopk, true);
  dv.setUint32(o + 8, result.params.length, true);
  o += 12;
  result.params.forEach((p, i) => {
    const name = names[i]!;
    dv.setUint16(o, name.length, true);
    out.set(name, o + 2);
    o += 2 + name.length;
    dv.setUint8(o++, p.shape.length);
    for (const d of p.shape) {
      dv.setUint32(o, d, true);
      o += 4;
    }
    dv.setUint32(o, p.n1, true);
    dv.setUint32(o + 4, p.n2, true);
    dv.setUint32(o + 8, p.k, true);
    o += 12;
    const width = indexWidth(layouts.get(p.name)!.blockSize);
    dv.setUint8(o++, width);
    const n = p.indices.length;
    if (q) dv.setUint8(o++, zeroFlags[i] ? 1 : 0);
    if (width === 1) {
      for (let j = 0; j < n; j++) out[o + j] = p.indices[j]!;
    } else if (width === 2) {
      for (let j = 0; j < n; j++) dv.setUint16(o + 2 * j, p.indices[j]!, true);
    } else {
      for (let j = 0; j < n; j++) dv.setUint32(o + 4 * j, p.indices[j]!, true);
    }
    o += n * width;
    if (q) {
      const bytes = Math.ceil(n / 8);
      for (let j = 0; j < n; j++) {
        const v = p.values[j]!;
        if (v < 0) out[o + (j >> 3)]! |= 1 << (j & 7);
        if (zeroFlags[i] && v === 0) out[o + bytes + (j >> 3)]! |= 1 << (j & 7);
      }
      o += bytes * (zeroFlags[i] ? 2 : 1);
    } else if (bf16) {
      for (let j = 0; j < n; j++) {
        scratch.setFloat32(0, p.values[j]!, true);
        dv.setUint16(o + 2 * j, scratch.getUint16(2, true), true);
      }
      o += 2 * n;
    } else {
      for (let j = 0; j < n; j++) dv.setFloat32(o + 4 * j, p.values[j]!, true);
      o += 4 * n;
    }
  });
  return out;
}

class Reader {
  o = 0;
  readonly dv: DataView;
  param: string | undefined;
  constructor(readonly bytes: Uint8Array) {
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  fail(code: DistroCodecErrorCode, message: string): never {
    const where = this.param === undefined ? '' : `parameter "${this.param}": `;
    throw new DistroCodecError(code, `decodeDistroResult: ${where}${message}`, {
      ...(this.param === undefined ? {} : { param: this.param }),
      offset: this.o,
    });
  }
  need(n: number, field: string): void {
    if (this.bytes.length - this.o < n) {
      this.fail(
        'TRUNCATED',
        `input ends at byte ${this.bytes.length} while reading ${field} (${n} bytes needed)`,
      );
    }
  }
  u8(field: string): number {
    this.need(1, field);
    return this.dv.getUint8(this.o++);
  }
  u16(field: string): number {
    this.need(2, field);
    const v = this.dv.getUint16(this.o, true);
    this.o += 2;
    return v;
  }
  u32(field: string): number {
    this.need(4, field);
    const v = this.dv.getUint32(this.o, true);
    this.o += 4;
    return v;
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Parses and fully validates bytes received from a peer. Everything is checked before it is used: magic, version,
 * flags, lengths (truncated or trailing bytes), names (UTF-8, unique), shapes, per-parameter layout, index width,
 * index range and ascending order, finite values, padding bits, and, with `options.expected`, the local model's
 * settings, names and shapes. Nothing but a {@link DistroCodecError} is ever thrown (fuzzed with fast-check).
 *
 * @example
 * ```ts
 * const peers = received.map(decodeDistroResult);
 * const checked = decodeDistroResult(bytes, { expected: opt.layoutOf(vars) });
 * ```
 * @throws {DistroCodecError} with a `code` and, where it applies, the parameter name and byte offset.
 * @since 0.1.0
 */
export function decodeDistroResult(bytes: Uint8Array): DistroResult;
export function decodeDistroResult(bytes: Uint8Array, options: DecodeDistroOptions | undefined): DistroResult;
export function decodeDistroResult(bytes: Uint8Array, options?: DecodeDistroOptions | number): DistroResult {
  // `received.map(decodeDistroResult)` passes the array index as the second argument: ignore non-objects.
  const opts = typeof options === 'object' && options !== null ? options : {};
  try {
    return decodeUnchecked(bytes, opts);
  } catch (e) {
    const err =
      e instanceof DistroCodecError
        ? e
        : new DistroCodecError('INVALID_INPUT', `decodeDistroResult: unexpected failure: ${String(e)}`);
    opts.stats?.record(err);
    throw err;
  }
}

function decodeUnchecked(bytes: Uint8Array, opts: DecodeDistroOptions): DistroResult {
  if (!(bytes instanceof Uint8Array)) {
    throw new DistroCodecError('INVALID_INPUT', 'decodeDistroResult: input must be a Uint8Array');
  }
  if (opts.maxBytes !== undefined && bytes.length > opts.maxBytes) {
    throw new DistroCodecError(
      'OVERSIZED',
      `decodeDistroResult: input is ${bytes.length} bytes, more than maxBytes ${opts.maxBytes}`,
    );
  }
  const r: Reader = new Reader(bytes);
  r.need(4, 'magic');
  for (let i = 0; i < 4; i++)
    if (bytes[i] !== DISTRO_MAGIC[i]) r.fail('BAD_MAGIC', 'input does not start with "PSDR"');
  r.o = 4;
  const version = r.u8('version');
  if (version !== DISTRO_WIRE_VERSION)
    r.fail('UNSUPPORTED_VERSION', `version ${version}, expected ${DISTRO_WIRE_VERSION}`);
  const flags = r.u8('flags');
  if ((flags & ~(FLAG_1BIT | FLAG_BF16)) !== 0)
    r.fail('INVALID_FIELD', `unknown flag bits 0x${flags.toString(16)}`);
  if (flags === (FLAG_1BIT | FLAG_BF16)) r.fail('INVALID_FIELD', 'flags set both 1-bit and bf16 values');
  const quantize1bit = (flags & FLAG_1BIT) !== 0;
  const bf16 = (flags & FLAG_BF16) !== 0;
  const chunk = r.u32('compressionChunk');
  const topk = r.u32('compressionTopk');
  if (chunk < 1) r.fail('INVALID_FIELD', 'compressionChunk is 0');
  if (topk < 1) r.fail('INVALID_FIELD', 'compressionTopk is 0');
  const config: DistroResult['config'] = {
    compressionChunk: chunk,
    compressionTopk: topk,
    quantize1bit,
    valueDtype: bf16 ? 'bfloat16' : 'float32',
  };
  const exp = opts.expected;
  if (exp !== undefined && !sameWireConfig(config, exp.config)) {
    const c = exp.config;
    r.fail(
      'CONFIG_MISMATCH',
      `settings (chunk ${chunk}, topk ${topk}, 1-bit ${quantize1bit}, values ${config.valueDtype}) differ from local ` +
        `(chunk ${c.compressionChunk}, topk ${c.compressionTopk}, 1-bit ${c.quantize1bit}, values ${valueDtypeOf(c)})`,
    );
  }
  const count = r.u32('paramCount');
  // Every parameter takes at least 2+1+1+12+1 bytes: reject absurd counts before looping.
  if (count > (bytes.length - r.o) / 17) r.fail('TRUNCATED', `paramCount ${count} cannot fit in the input`);
  const params: DistroParamResult[] = [];
  const seen = new Set<string>();
  for (let pi = 0; pi < count; pi++) {
    r.param = undefined;
    const nameLen = r.u16('name length');
    r.need(nameLen, 'name');
    if (nameLen === 0) r.fail('INVALID_NAME', `parameter #${pi} has an empty name`);
    let name: string;
    try {
      name = utf8.decode(bytes.subarray(r.o, r.o + nameLen));
    } catch {
      r.fail('INVALID_NAME', `parameter #${pi} name is not valid UTF-8`);
    }
    r.o += nameLen;
    r.param = name;
    if (seen.has(name)) r.fail('DUPLICATE_PARAMETER', 'appears twice');
    seen.add(name);
    const rank = r.u8('rank');
    if (rank > MAX_RANK) r.fail('INVALID_SHAPE', `rank ${rank} is above ${MAX_RANK}`);
    const shape: number[] = [];
    for (let d = 0; d < rank; d++) shape.push(r.u32('shape'));
    let layout: ReturnType<typeof paramLayout>;
    try {
      layout = paramLayout(shape, chunk, topk, name);
    } catch (e) {
      r.fail('INVALID_SHAPE', e instanceof DistroError ? e.message : String(e));
    }
    if (exp !== undefined) {
      const local = exp.params.get(name);
      if (local === undefined) r.fail('UNKNOWN_PARAMETER', 'is not in the local model');
      if (local.length !== shape.length || local.some((d, i) => d !== shape[i])) {
        r.fail('SHAPE_MISMATCH', `shape [${shape.join(', ')}] differs from the local [${local.join(', ')}]`);
      }
    }
    const n1 = r.u32('n1');
    const n2 = r.u32('n2');
    const k = r.u32('k');
    if (n1 !== layout.n1 || n2 !== layout.n2 || k !== layout.k) {
      r.fail(
        'LAYOUT_MISMATCH',
        `layout ${n1}x${n2} k=${k} differs from ${layout.n1}x${layout.n2} k=${layout.k} implied by shape and settings`,
      );
    }
    const width = r.u8('indexWidth');
    if (width !== indexWidth(layout.blockSize)) {
      r.fail(
        'INVALID_FIELD',
        `index width ${width}, expected ${indexWidth(layout.blockSize)} for blocks of ${layout.blockSize}`,
      );
    }
    const hasZeros = quantize1bit ? r.u8('hasZeros') : 0;
    if (hasZeros > 1) r.fail('INVALID_FIELD', `hasZeros flag ${hasZeros} is not 0 or 1`);
    const n = layout.numBlocks * k;
    r.need(n * width, 'indices');
    const indices = new Int32Array(n);
    const base = r.o;
    for (let j = 0; j < n; j++) {
      const v =
        width === 1
          ? bytes[base + j]!
          : width === 2
            ? r.dv.getUint16(base + 2 * j, true)
            : r.dv.getUint32(base + 4 * j, true);
      if (v >= layout.blockSize) {
        r.o = base + j * width;
        r.fail(
          'INDEX_OUT_OF_RANGE',
          `index ${v} at block ${Math.floor(j / k)} is outside [0, ${layout.blockSize})`,
        );
      }
      if (j % k !== 0 && v <= indices[j - 1]!) {
        r.o = base + j * width;
        r.fail('NON_CANONICAL_INDICES', `indices of block ${Math.floor(j / k)} are not strictly ascending`);
      }
      indices[j] = v;
    }
    r.o += n * width;
    const values = new Float32Array(n);
    if (quantize1bit) {
      const nb = Math.ceil(n / 8);
      r.need(nb * (hasZeros ? 2 : 1), 'sign bits');
      const s = r.o;
      const z = s + nb;
      if (n % 8 !== 0) {
        const pad = 0xff << (n % 8);
        if ((bytes[s + nb - 1]! & pad) !== 0 || (hasZeros && (bytes[z + nb - 1]! & pad) !== 0)) {
          r.fail('INVALID_FIELD', 'padding bits after the last sign are not zero');
        }
      }
      let zeros = 0;
      for (let j = 0; j < n; j++) {
        const bit = 1 << (j & 7);
        const neg = (bytes[s + (j >> 3)]! & bit) !== 0;
        const zero = hasZeros ? (bytes[z + (j >> 3)]! & bit) !== 0 : false;
        if (zero && neg) r.fail('INVALID_VALUE', `coefficient ${j} is marked both zero and negative`);
        if (zero) zeros++;
        values[j] = zero ? 0 : neg ? -1 : 1;
      }
      if (hasZeros && zeros === 0) r.fail('INVALID_FIELD', 'hasZeros is set but no coefficient is zero');
      r.o += nb * (hasZeros ? 2 : 1);
    } else if (bf16) {
      r.need(2 * n, 'values');
      for (let j = 0; j < n; j++) {
        const h = r.dv.getUint16(r.o + 2 * j, true);
        if ((h & 0x7f80) === 0x7f80) {
          r.o += 2 * j;
          r.fail('NON_FINITE_VALUE', `bf16 value 0x${h.toString(16)} at position ${j} is NaN or Inf`);
        }
        scratch.setUint32(0, h << 16, true);
        values[j] = scratch.getFloat32(0, true);
      }
      r.o += 2 * n;
    } else {
      r.need(4 * n, 'values');
      for (let j = 0; j < n; j++) {
        const v = r.dv.getFloat32(r.o + 4 * j, true);
        if (!Number.isFinite(v)) {
          r.o += 4 * j;
          r.fail('NON_FINITE_VALUE', `value ${v} at position ${j}`);
        }
        values[j] = v;
      }
      r.o += 4 * n;
    }
    params.push({ name, shape, n1, n2, k, indices, values });
  }
  r.param = undefined;
  if (r.o !== bytes.length) r.fail('OVERSIZED', `${bytes.length - r.o} unexpected trailing bytes`);
  return { version, config, params };
}
