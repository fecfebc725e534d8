import { describe, expect, it } from 'vitest';
import {
  bf16ToFloat32,
  float32ToBf16,
  isMlaError,
  parseSafetensors,
  roundToBf16,
  safetensorsToFloat32,
  serializeSafetensors,
} from '../src/index.js';

/** Builds a raw safetensors buffer from a header object (or raw header text) and a data section. */
function build(header: unknown, data: Uint8Array = new Uint8Array(0), declaredLen?: bigint): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.byteLength + data.byteLength);
  new DataView(out.buffer).setBigUint64(0, declaredLen ?? BigInt(json.byteLength), true);
  out.set(json, 8);
  out.set(data, 8 + json.byteLength);
  return out;
}

function malformed(bytes: Uint8Array): string {
  try {
    parseSafetensors(bytes);
  } catch (e) {
    if (isMlaError(e, 'MALFORMED_SAFETENSORS')) return e.message;
    throw e;
  }
  throw new Error('parse did not throw');
}

/** A valid-looking header whose tensor name contains the invalid UTF-8 byte 0xFF. */
function notUtf8(): Uint8Array {
  const bytes = build({ wX: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, f32([1, 2]));
  bytes[8 + 3] = 0xff; // {"wX" → X is at offset 3 of the header
  return bytes;
}

const f32 = (values: number[]) => new Uint8Array(new Float32Array(values).buffer);

describe('safetensors writer/reader', () => {
  it('round-trips F32 exactly, with metadata, in header order, 8-byte aligned data', () => {
    const a = new Float32Array([1, -2.5, 3.25, Math.PI, -0, 1e-40]);
    const b = new Float32Array([7]);
    const bytes = serializeSafetensors(
      [
        { name: 'b.weight', shape: [2, 3], data: a },
        { name: 'a.scalar', shape: [], data: b },
        { name: 'empty', shape: [0, 4], data: new Float32Array(0) },
      ],
      { metadata: { format: 'pt' } },
    );
    const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(headerLen % 8).toBe(0);
    const file = parseSafetensors(bytes);
    expect(file.metadata).toEqual({ format: 'pt' });
    expect([...file.tensors.keys()]).toEqual(['b.weight', 'a.scalar', 'empty']);
    const t = file.tensors.get('b.weight')!;
    expect(t.dtype).toBe('F32');
    expect(t.shape).toEqual([2, 3]);
    expect(Object.is(safetensorsToFloat32(t)[4], -0)).toBe(true);
    expect([...safetensorsToFloat32(t)]).toEqual([...a]);
    expect([...safetensorsToFloat32(file.tensors.get('a.scalar')!)]).toEqual([7]);
    expect(safetensorsToFloat32(file.tensors.get('empty')!).length).toBe(0);
  });

  it('writes the exact byte layout of the format', () => {
    // header {"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}} = 54 chars → padded with 2 spaces to 56
    const bytes = serializeSafetensors([{ name: 'x', shape: [1], data: new Float32Array([1]) }]);
    const text = '{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}';
    expect(text.length).toBe(54);
    expect(new DataView(bytes.buffer).getBigUint64(0, true)).toBe(56n);
    expect(new TextDecoder().decode(bytes.subarray(8, 64))).toBe(`${text}  `);
    expect([...bytes.subarray(64)]).toEqual([0x00, 0x00, 0x80, 0x3f]); // 1.0f little-endian
    expect(bytes.byteLength).toBe(68);
  });

  it('round-trips BF16 as the RNE-rounded values', () => {
    const a = new Float32Array([1, 1.00390625, 1.01171875, -Math.PI, 65504, 1e-30]);
    const file = parseSafetensors(
      serializeSafetensors([{ name: 'w', shape: [6], data: a }], { dtype: 'BF16' }),
    );
    const t = file.tensors.get('w')!;
    expect(t.dtype).toBe('BF16');
    expect(t.data.byteLength).toBe(12);
    expect([...safetensorsToFloat32(t)]).toEqual([...roundToBf16(a)]);
  });

  it('reads F16 and F64 and refuses integer tensors as floats', () => {
    // F16 0x3C00 = 1.0, 0xC000 = −2.0, 0x0001 = 2^−24 (smallest subnormal), 0x7C00 = +Inf
    const f16 = new Uint8Array(new Uint16Array([0x3c00, 0xc000, 0x0001, 0x7c00]).buffer);
    const f64 = new Uint8Array(new Float64Array([0.5, -8]).buffer);
    const i32 = new Uint8Array(new Int32Array([5]).buffer);
    const data = new Uint8Array([...f16, ...f64, ...i32]);
    const file = parseSafetensors(
      build(
        {
          h: { dtype: 'F16', shape: [4], data_offsets: [0, 8] },
          d: { dtype: 'F64', shape: [2], data_offsets: [8, 24] },
          i: { dtype: 'I32', shape: [1], data_offsets: [24, 28] },
        },
        data,
      ),
    );
    expect([...safetensorsToFloat32(file.tensors.get('h')!)]).toEqual([
      1,
      -2,
      2 ** -24,
      Number.POSITIVE_INFINITY,
    ]);
    expect([...safetensorsToFloat32(file.tensors.get('d')!)]).toEqual([0.5, -8]);
    expect(() => safetensorsToFloat32(file.tensors.get('i')!, 'i')).toThrow(/dtype I32/);
  });
});

describe('bf16 conversion', () => {
  it('rounds to nearest even (hand-derived bit patterns)', () => {
    // 1.0 = 0x3F800000 → 0x3F80 (exact)
    // 1 + 2^-8 = 0x3F808000: exactly halfway between 0x3F80 and 0x3F81; 0x3F80 is even → 0x3F80
    // 1 + 3·2^-8 = 0x3F818000: halfway between 0x3F81 and 0x3F82; 0x3F82 is even → 0x3F82
    // 1 + 2^-8 + 2^-20 = 0x3F808010: just above halfway → 0x3F81
    // −2.0 = 0xC0000000 → 0xC000; +Inf 0x7F800000 → 0x7F80
    // FLT_MAX 0x7F7FFFFF: rounds up past the largest bf16 0x7F7F → +Inf 0x7F80
    const bits = new Uint32Array([
      0x3f800000, 0x3f808000, 0x3f818000, 0x3f808010, 0xc0000000, 0x7f800000, 0x7f7fffff,
    ]);
    const out = float32ToBf16(new Float32Array(bits.buffer));
    expect([...out]).toEqual([0x3f80, 0x3f80, 0x3f82, 0x3f81, 0xc000, 0x7f80, 0x7f80]);
  });

  it('keeps NaN a (quiet) NaN and its sign', () => {
    // a signalling NaN whose payload sits only in the low 16 bits would truncate to Inf: must stay NaN
    const bits = new Uint32Array([0x7f800001, 0xffc00000]);
    const out = float32ToBf16(new Float32Array(bits.buffer));
    expect(out[0]).toBe(0x7fc0);
    expect(out[1]).toBe(0xffc0);
    expect(Number.isNaN(bf16ToFloat32(out)[0])).toBe(true);
  });

  it('has relative error ≤ 2^-8 (unit roundoff of an 8-bit significand) on normal values and is idempotent', () => {
    const xs = new Float32Array(10_000);
    for (let i = 0; i < xs.length; i++) xs[i] = Math.sin(i * 12.9898) * 10 ** ((i % 20) - 10);
    const r = roundToBf16(xs);
    for (let i = 0; i < xs.length; i++) {
      if (xs[i] === 0) continue;
      expect(Math.abs(r[i]! - xs[i]!) / Math.abs(xs[i]!)).toBeLessThanOrEqual(2 ** -8);
    }
    expect([...roundToBf16(r)]).toEqual([...r]);
  });
});

describe('safetensors strict validation', () => {
  const ok = { w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
  const data = f32([1, 2]);

  it('accepts the well-formed baseline used below', () => {
    expect(parseSafetensors(build(ok, data)).tensors.get('w')!.shape).toEqual([2]);
  });

  it.each([
    ['a file shorter than 8 bytes', new Uint8Array(5), /shorter than the 8-byte header length/],
    ['a header length past the end', build(ok, data, 10_000n), /exceeds the \d+ bytes after it/],
    ['a header length of 2^64−1', build(ok, data, 0xffffffffffffffffn), /exceeds/],
    ['a header that is not JSON', build('{"w": nope}', data), /not valid UTF-8 JSON/],
    ['a header that is an array', build('[1,2]', data), /not valid UTF-8 JSON|must be an object/],
    ['a header that is not UTF-8', notUtf8(), /not valid UTF-8 JSON/],
    [
      'an unknown dtype',
      build({ w: { dtype: 'F8', shape: [2], data_offsets: [0, 8] } }, data),
      /unknown dtype "F8"/,
    ],
    [
      'a negative dim',
      build({ w: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } }, data),
      /non-negative integers/,
    ],
    [
      'a fractional dim',
      build({ w: { dtype: 'F32', shape: [1.5], data_offsets: [0, 8] } }, data),
      /non-negative integers/,
    ],
    [
      'offsets that are not a pair',
      build({ w: { dtype: 'F32', shape: [2], data_offsets: [0] } }, data),
      /\[begin, end\]/,
    ],
    [
      'begin > end',
      build({ w: { dtype: 'F32', shape: [0], data_offsets: [8, 0] } }, data),
      /begin 8 > end 0/,
    ],
    [
      'an end past the data',
      build({ w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, data),
      /past the 8-byte data/,
    ],
    [
      'a size/shape mismatch',
      build({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, data),
      /needs 12/,
    ],
    [
      'overlapping tensors',
      build(
        {
          a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
          b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] },
        },
        data,
      ),
      /overlaps/,
    ],
    [
      'a gap before a tensor',
      build({ w: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, data),
      /gap in the data/,
    ],
    [
      'trailing bytes after the last tensor',
      build({ w: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, data),
      /tensors cover 4/,
    ],
    ['an unknown entry field', build({ w: { ...ok.w, extra: 1 } }, data), /unknown field "extra"/],
    [
      'non-string metadata',
      build({ __metadata__: { a: 1 }, ...ok }, data),
      /__metadata__\.a must be a string/,
    ],
    ['an empty tensor name', build({ '': ok.w }, data), /name must not be empty/],
    ['a non-object entry', build({ w: 5 }, data), /entry must be an object/],
  ])('rejects %s', (_label, bytes, message) => {
    expect(malformed(bytes)).toMatch(message);
  });

  it('enforces the header size limit', () => {
    expect(() => parseSafetensors(build(ok, data), { maxHeaderBytes: 10 })).toThrow(
      /exceeds the limit of 10 bytes/,
    );
  });

  it('rejects bad writer input with INVALID_ARGUMENT', () => {
    const bad = [
      [{ name: '', shape: [1], data: new Float32Array(1) }],
      [
        { name: 'x', shape: [1], data: new Float32Array(1) },
        { name: 'x', shape: [1], data: new Float32Array(1) },
      ],
      [{ name: 'x', shape: [2], data: new Float32Array(3) }],
      [{ name: '__metadata__', shape: [1], data: new Float32Array(1) }],
    ];
    for (const tensors of bad) {
      let err: unknown;
      try {
        serializeSafetensors(tensors);
      } catch (e) {
        err = e;
      }
      expect(isMlaError(err, 'INVALID_ARGUMENT')).toBe(true);
    }
  });

  it('never throws anything but MlaError on random corruption of a valid file', () => {
    const good = serializeSafetensors([
      { name: 'a', shape: [3], data: new Float32Array([1, 2, 3]) },
      { name: 'b', shape: [2, 2], data: new Float32Array(4) },
    ]);
    let seed = 12345;
    const rand = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed / 2 ** 32;
    };
    let rejected = 0;
    for (let trial = 0; trial < 500; trial++) {
      const bytes = good.slice(0, 1 + Math.floor(rand() * good.length));
      for (let k = 0; k < 3; k++) bytes[Math.floor(rand() * bytes.length)] = Math.floor(rand() * 256);
      try {
        parseSafetensors(bytes);
      } catch (e) {
        expect(isMlaError(e, 'MALFORMED_SAFETENSORS')).toBe(true);
        rejected++;
      }
    }
    expect(rejected).toBeGreaterThan(400); // truncation almost always breaks the layout
  });
});
