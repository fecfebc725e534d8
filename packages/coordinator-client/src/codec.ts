/**
 * Tagged JSON: plain JSON plus two tagged forms so that coordinator state with `bigint` (u64 seeds, data indices)
 * and `Uint8Array` (keys, bloom bits) survives the wire and the disk exactly.
 *
 * - `bigint` ⇄ `{"$n": "<decimal>"}`
 * - `Uint8Array` ⇄ `{"$b": "<base64>"}`
 *
 * Objects whose only key is `$n`/`$b` are reserved for these tags.
 */

/** Encodes a value to a tagged-JSON string. */
export function encodeTagged(value: unknown): string {
  return JSON.stringify(value, function replacer(this: unknown, key: string, v: unknown) {
    // Read the raw holder value: `v` may already be transformed by a toJSON (Buffer has one).
    const raw = (this as Record<string, unknown>)[key];
    if (typeof raw === 'bigint') return { $n: raw.toString() };
    if (raw instanceof Uint8Array)
      return { $b: Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64') };
    return v;
  });
}

/** Decodes a tagged-JSON string (throws `SyntaxError` on invalid JSON or malformed tags). */
export function decodeTagged(text: string): unknown {
  return JSON.parse(text, (_key, v: unknown) => {
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      const keys = Object.keys(v);
      if (keys.length === 1) {
        const o = v as Record<string, unknown>;
        if (keys[0] === '$n') {
          if (typeof o.$n !== 'string' || !/^-?\d{1,40}$/.test(o.$n))
            throw new SyntaxError('malformed $n tag');
          return BigInt(o.$n);
        }
        if (keys[0] === '$b') {
          if (typeof o.$b !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(o.$b))
            throw new SyntaxError('malformed $b tag');
          return new Uint8Array(Buffer.from(o.$b, 'base64'));
        }
      }
    }
    return v;
  });
}
