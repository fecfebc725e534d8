import { MlaError } from './errors.js';

/** Dtypes of the safetensors format this reader understands (little-endian). */
export type SafetensorsDtype =
  | 'F64'
  | 'F32'
  | 'F16'
  | 'BF16'
  | 'I64'
  | 'I32'
  | 'I16'
  | 'I8'
  | 'U64'
  | 'U32'
  | 'U16'
  | 'U8'
  | 'BOOL';

/** Bytes per element of each dtype. */
export const SAFETENSORS_DTYPE_BYTES: Readonly<Record<SafetensorsDtype, number>> = Object.freeze({
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
});

/** One tensor of a parsed safetensors file. `data` is a view into the source buffer (little-endian bytes). */
export interface SafetensorsTensor {
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  readonly data: Uint8Array;
}

/** A parsed safetensors file. `tensors` keeps header order. */
export interface SafetensorsFile {
  readonly tensors: ReadonlyMap<string, SafetensorsTensor>;
  readonly metadata: Readonly<Record<string, string>> | undefined;
}

/** A float tensor to write. `data.length` must equal the product of `shape`. */
export interface SafetensorsWriteTensor {
  readonly name: string;
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

/** Options of {@link parseSafetensors}. */
export interface ParseSafetensorsOptions {
  /** Largest accepted JSON header, in bytes (default 100 MB, the limit of the reference implementation). */
  readonly maxHeaderBytes?: number;
}

const DEFAULT_MAX_HEADER = 100_000_000;

function malformed(message: string, details: Record<string, unknown> = {}): MlaError {
  return new MlaError('MALFORMED_SAFETENSORS', `malformed safetensors: ${message}`, details);
}

function isNonNegInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/**
 * Parses a safetensors buffer strictly: an 8-byte little-endian header length that fits the buffer, a UTF-8 JSON
 * object header, known dtypes, non-negative integer shapes, and `data_offsets` that match each shape's byte size
 * and tile the data section exactly (start at 0, contiguous, no overlap, no gap, no trailing bytes).
 *
 * Tensor data is returned as views into `bytes` (no copy); use {@link safetensorsToFloat32} to decode floats.
 *
 * @throws {MlaError} `MALFORMED_SAFETENSORS` describing the first problem found (with the tensor name).
 * @example
 * ```ts
 * const file = parseSafetensors(await readFile('model.safetensors'));
 * const w = safetensorsToFloat32(file.tensors.get('model.norm.weight')!);
 * ```
 */
export function parseSafetensors(bytes: Uint8Array, options: ParseSafetensorsOptions = {}): SafetensorsFile {
  if (!(bytes instanceof Uint8Array)) {
    throw new MlaError('INVALID_ARGUMENT', 'parseSafetensors: bytes must be a Uint8Array', {
      parameter: 'bytes',
    });
  }
  const maxHeader = options.maxHeaderBytes ?? DEFAULT_MAX_HEADER;
  if (bytes.byteLength < 8) {
    throw malformed(`file is ${bytes.byteLength} bytes, shorter than the 8-byte header length`, {
      field: 'header_length',
      size: bytes.byteLength,
    });
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen64 = view.getBigUint64(0, true);
  if (headerLen64 > BigInt(bytes.byteLength - 8)) {
    throw malformed(`header length ${headerLen64} exceeds the ${bytes.byteLength - 8} bytes after it`, {
      field: 'header_length',
      headerLength: headerLen64.toString(),
    });
  }
  const headerLen = Number(headerLen64);
  if (headerLen > maxHeader) {
    throw malformed(`header length ${headerLen} exceeds the limit of ${maxHeader} bytes`, {
      field: 'header_length',
      headerLength: headerLen,
    });
  }
  if (headerLen < 2) {
    throw malformed(`header length ${headerLen} is too small for a JSON object`, { field: 'header_length' });
  }
  let header: unknown;
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLen));
    if (!text.startsWith('{')) throw new Error('header does not start with "{"');
    header = JSON.parse(text);
  } catch (cause) {
    throw new MlaError(
      'MALFORMED_SAFETENSORS',
      `malformed safetensors: header is not valid UTF-8 JSON (${(cause as Error).message})`,
      { field: 'header' },
      { cause },
    );
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw malformed('header JSON must be an object', { field: 'header' });
  }
  const dataStart = 8 + headerLen;
  const dataLen = bytes.byteLength - dataStart;
  let metadata: Record<string, string> | undefined;
  const entries: Array<{
    name: string;
    dtype: SafetensorsDtype;
    shape: number[];
    begin: number;
    end: number;
  }> = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
        throw malformed('__metadata__ must be an object of strings', { field: '__metadata__' });
      }
      for (const [k, v] of Object.entries(raw)) {
        if (typeof v !== 'string') {
          throw malformed(`__metadata__.${k} must be a string`, { field: `__metadata__.${k}` });
        }
      }
      metadata = { ...(raw as Record<string, string>) };
      continue;
    }
    if (name.length === 0) throw malformed('tensor name must not be empty', { field: 'name' });
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      throw malformed(`tensor "${name}" entry must be an object`, { tensor: name });
    }
    const e = raw as Record<string, unknown>;
    for (const k of Object.keys(e)) {
      if (k !== 'dtype' && k !== 'shape' && k !== 'data_offsets') {
        throw malformed(`tensor "${name}" has unknown field "${k}"`, { tensor: name, field: k });
      }
    }
    const dtype = e.dtype;
    if (typeof dtype !== 'string' || !Object.hasOwn(SAFETENSORS_DTYPE_BYTES, dtype)) {
      throw malformed(`tensor "${name}" has unknown dtype ${JSON.stringify(dtype)}`, {
        tensor: name,
        field: 'dtype',
      });
    }
    const shape = e.shape;
    if (!Array.isArray(shape) || !shape.every(isNonNegInt)) {
      throw malformed(`tensor "${name}" shape must be an array of non-negative integers`, {
        tensor: name,
        field: 'shape',
        got: shape,
      });
    }
    const offsets = e.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNonNegInt)) {
      throw malformed(`tensor "${name}" data_offsets must be [begin, end] non-negative integers`, {
        tensor: name,
        field: 'data_offsets',
        got: offsets,
      });
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end) {
      throw malformed(`tensor "${name}" data_offsets begin ${begin} > end ${end}`, {
        tensor: name,
        field: 'data_offsets',
      });
    }
    if (end > dataLen) {
      throw malformed(`tensor "${name}" data_offsets end ${end} is past the ${dataLen}-byte data section`, {
        tensor: name,
        field: 'data_offsets',
      });
    }
    const numel = (shape as number[]).reduce((a, b) => a * b, 1);
    const expected = numel * SAFETENSORS_DTYPE_BYTES[dtype as SafetensorsDtype];
    if (!Number.isSafeInteger(expected) || end - begin !== expected) {
      throw malformed(
        `tensor "${name}" spans ${end - begin} bytes but ${dtype}${JSON.stringify(shape)} needs ${expected}`,
        { tensor: name, field: 'data_offsets' },
      );
    }
    entries.push({ name, dtype: dtype as SafetensorsDtype, shape: shape as number[], begin, end });
  }
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  for (const t of sorted) {
    if (t.begin !== cursor) {
      throw malformed(
        t.begin < cursor
          ? `tensor "${t.name}" overlaps the previous tensor (begins at ${t.begin}, previous ends at ${cursor})`
          : `gap in the data section before tensor "${t.name}" (begins at ${t.begin}, previous ends at ${cursor})`,
        { tensor: t.name, field: 'data_offsets' },
      );
    }
    cursor = t.end;
  }
  if (cursor !== dataLen) {
    throw malformed(`data section is ${dataLen} bytes but tensors cover ${cursor}`, {
      field: 'data_offsets',
    });
  }
  const tensors = new Map<string, SafetensorsTensor>();
  for (const t of entries) {
    tensors.set(t.name, {
      dtype: t.dtype,
      shape: Object.freeze([...t.shape]),
      data: bytes.subarray(dataStart + t.begin, dataStart + t.end),
    });
  }
  return { tensors, metadata };
}

/**
 * Serializes float tensors to a safetensors buffer, as F32 or BF16 (round-to-nearest-even). The header is padded
 * with spaces to a multiple of 8 bytes so the data section is 8-byte aligned.
 *
 * @throws {MlaError} `INVALID_ARGUMENT` for an empty or duplicate name, a `__metadata__` name, a bad shape or a data
 *   length that does not match the shape.
 */
export function serializeSafetensors(
  tensors: readonly SafetensorsWriteTensor[],
  options: { dtype?: 'F32' | 'BF16'; metadata?: Record<string, string> } = {},
): Uint8Array {
  const dtype = options.dtype ?? 'F32';
  if (dtype !== 'F32' && dtype !== 'BF16') {
    throw new MlaError(
      'UNSUPPORTED_DTYPE',
      `serializeSafetensors: dtype must be "F32" or "BF16", got ${dtype}`,
      {
        parameter: 'dtype',
      },
    );
  }
  const width = SAFETENSORS_DTYPE_BYTES[dtype];
  const header: Record<string, unknown> = {};
  if (options.metadata) header.__metadata__ = { ...options.metadata };
  let offset = 0;
  const seen = new Set<string>();
  for (const t of tensors) {
    if (typeof t.name !== 'string' || t.name.length === 0 || t.name === '__metadata__' || seen.has(t.name)) {
      throw new MlaError(
        'INVALID_ARGUMENT',
        `serializeSafetensors: invalid or duplicate tensor name "${t.name}"`,
        {
          parameter: 'tensors',
          tensor: t.name,
        },
      );
    }
    seen.add(t.name);
    if (!Array.isArray(t.shape) || !t.shape.every(isNonNegInt)) {
      throw new MlaError(
        'INVALID_ARGUMENT',
        `serializeSafetensors: tensor "${t.name}" has an invalid shape`,
        {
          parameter: 'tensors',
          tensor: t.name,
        },
      );
    }
    const numel = t.shape.reduce((a, b) => a * b, 1);
    if (!(t.data instanceof Float32Array) || t.data.length !== numel) {
      throw new MlaError(
        'INVALID_ARGUMENT',
        `serializeSafetensors: tensor "${t.name}" needs a Float32Array of ${numel} values for shape ${JSON.stringify(t.shape)}`,
        { parameter: 'tensors', tensor: t.name },
      );
    }
    header[t.name] = { dtype, shape: [...t.shape], data_offsets: [offset, offset + numel * width] };
    offset += numel * width;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const pad = (8 - (json.byteLength % 8)) % 8;
  if (pad > 0) {
    const padded = new Uint8Array(json.byteLength + pad).fill(0x20);
    padded.set(json);
    json = padded;
  }
  const out = new Uint8Array(8 + json.byteLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.byteLength), true);
  out.set(json, 8);
  let pos = 8 + json.byteLength;
  const dv = new DataView(out.buffer);
  for (const t of tensors) {
    if (dtype === 'F32') {
      for (let i = 0; i < t.data.length; i++) dv.setFloat32(pos + 4 * i, t.data[i]!, true);
    } else {
      const b = float32ToBf16(t.data);
      for (let i = 0; i < b.length; i++) dv.setUint16(pos + 2 * i, b[i]!, true);
    }
    pos += t.data.length * width;
  }
  return out;
}

/**
 * Converts float32 values to bfloat16 bit patterns with round-to-nearest-even (NaN stays a quiet NaN with its
 * sign; overflow rounds to ±Infinity as IEEE rounding prescribes).
 */
export function float32ToBf16(values: Float32Array): Uint16Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const b = bits[i]!;
    if ((b & 0x7f800000) === 0x7f800000 && (b & 0x007fffff) !== 0) {
      out[i] = ((b >>> 16) & 0x8000) | 0x7fc0;
    } else {
      out[i] = ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
    }
  }
  return out;
}

/** Expands bfloat16 bit patterns to float32 (exact). */
export function bf16ToFloat32(values: Uint16Array): Float32Array {
  const out = new Float32Array(values.length);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < values.length; i++) bits[i] = values[i]! << 16;
  return out;
}

/** Rounds float32 values to the nearest bfloat16 and back (what a BF16 checkpoint round trip yields). */
export function roundToBf16(values: Float32Array): Float32Array {
  return bf16ToFloat32(float32ToBf16(values));
}

function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/**
 * Decodes an F32, BF16, F16 or F64 safetensors tensor to a fresh Float32Array.
 *
 * @throws {MlaError} `UNSUPPORTED_DTYPE` for integer and bool tensors.
 */
export function safetensorsToFloat32(tensor: SafetensorsTensor, name = 'tensor'): Float32Array {
  const { data, dtype } = tensor;
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const n = data.byteLength / SAFETENSORS_DTYPE_BYTES[dtype];
  const out = new Float32Array(n);
  switch (dtype) {
    case 'F32':
      for (let i = 0; i < n; i++) out[i] = dv.getFloat32(4 * i, true);
      return out;
    case 'BF16': {
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) bits[i] = dv.getUint16(2 * i, true) << 16;
      return out;
    }
    case 'F16':
      for (let i = 0; i < n; i++) out[i] = f16ToF32(dv.getUint16(2 * i, true));
      return out;
    case 'F64':
      for (let i = 0; i < n; i++) out[i] = dv.getFloat64(8 * i, true);
      return out;
    default:
      throw new MlaError('UNSUPPORTED_DTYPE', `${name} has dtype ${dtype}; expected F32, BF16, F16 or F64`, {
        tensor: name,
        dtype,
      });
  }
}
