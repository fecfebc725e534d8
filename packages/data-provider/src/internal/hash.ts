import { createHash } from 'node:crypto';

/** Hex SHA-256 of `bytes`. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Chunk hash used in manifests: first 16 bytes of SHA-256, hex. */
export function chunkHash(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex').slice(0, 32);
}

/** Chunk hashes of `bytes` split every `chunkBytes` (last chunk may be short). */
export function chunkHashes(bytes: Uint8Array, chunkBytes: number): string[] {
  const out: string[] = [];
  for (let o = 0; o < bytes.byteLength; o += chunkBytes)
    out.push(chunkHash(bytes.subarray(o, o + chunkBytes)));
  return out;
}

/** True on little-endian hosts (all supported ones); shards are always little-endian. */
export const HOST_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Little-endian bytes of the first `count` entries of `tokens` (a view when the host is LE). */
export function tokensToLeBytes(tokens: Uint16Array | Uint32Array, count: number): Uint8Array {
  const bytes = new Uint8Array(tokens.buffer, tokens.byteOffset, count * tokens.BYTES_PER_ELEMENT);
  if (HOST_LE) return bytes;
  const out = new Uint8Array(bytes.byteLength);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < count; i++) {
    if (tokens.BYTES_PER_ELEMENT === 2) dv.setUint16(i * 2, tokens[i]!, true);
    else dv.setUint32(i * 4, tokens[i]!, true);
  }
  return out;
}

/** Decodes little-endian token bytes into `out` (Int32Array) starting at `outOffset`. */
export function leBytesToTokens(bytes: Uint8Array, tokenBytes: 2 | 4, out: Int32Array, outOffset = 0): void {
  const n = bytes.byteLength / tokenBytes;
  if (HOST_LE && bytes.byteOffset % tokenBytes === 0) {
    const view =
      tokenBytes === 2
        ? new Uint16Array(bytes.buffer, bytes.byteOffset, n)
        : new Uint32Array(bytes.buffer, bytes.byteOffset, n);
    out.set(view, outOffset);
    return;
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < n; i++)
    out[outOffset + i] = tokenBytes === 2 ? dv.getUint16(i * 2, true) : dv.getUint32(i * 4, true);
}
