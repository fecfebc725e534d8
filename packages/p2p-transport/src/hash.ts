import { createHash } from 'node:crypto';
import { blake3 } from '@noble/hashes/blake3.js';
import { P2PTransportError } from './errors.js';

/** Hash functions a blob can be addressed by. */
export type HashAlgorithm = 'sha256' | 'blake3';

/** Wire codes of {@link HashAlgorithm} (docs/p2p-protocol.md). */
export const HASH_ALGORITHM_CODES: Readonly<Record<HashAlgorithm, number>> = { sha256: 1, blake3: 2 };

/** Decodes a wire hash-algorithm code; throws MALFORMED_FRAME for unknown codes. */
export function hashAlgorithmFromCode(code: number, field = 'hash_alg'): HashAlgorithm {
  if (code === 1) return 'sha256';
  if (code === 2) return 'blake3';
  throw new P2PTransportError('MALFORMED_FRAME', `${field} must be 1 (sha256) or 2 (blake3), got ${code}`, {
    field,
    value: code,
  });
}

/** Incremental 32-byte hasher. */
export interface Hasher {
  update(data: Uint8Array): void;
  digest(): Uint8Array;
}

/** Creates an incremental hasher for `algorithm` (SHA-256 via node:crypto, BLAKE3 via @noble/hashes). */
export function createHasher(algorithm: HashAlgorithm): Hasher {
  if (algorithm === 'sha256') {
    const h = createHash('sha256');
    return {
      update: (d) => {
        h.update(d);
      },
      digest: () => new Uint8Array(h.digest()),
    };
  }
  if (algorithm === 'blake3') {
    const h = blake3.create();
    return {
      update: (d) => {
        h.update(d);
      },
      digest: () => h.digest(),
    };
  }
  throw new P2PTransportError(
    'INVALID_PARAMETER',
    `hashAlgorithm must be 'sha256' or 'blake3', got ${String(algorithm)}`,
    {
      parameter: 'hashAlgorithm',
      value: algorithm,
    },
  );
}

/** One-shot 32-byte digest of `data`. */
export function hashBytes(data: Uint8Array, algorithm: HashAlgorithm): Uint8Array {
  const h = createHasher(algorithm);
  h.update(data);
  return h.digest();
}

/** Lower-case hex of `bytes`. */
export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** Constant-size equality of two byte arrays. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  let diff = 0;
  for (let i = 0; i < a.byteLength; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}
