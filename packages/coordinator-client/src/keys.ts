import { readFileSync, writeFileSync } from 'node:fs';
import { ed25519 } from '@noble/curves/ed25519.js';
import { CoordinatorClientError } from './errors.js';

/** An ed25519 keypair: 32-byte secret seed and 32-byte public key. */
export interface Keypair {
  readonly secretKey: Uint8Array;
  readonly publicKey: Uint8Array;
}

/** Generates a fresh random ed25519 keypair. */
export function generateKeypair(): Keypair {
  const secretKey = ed25519.utils.randomSecretKey();
  return { secretKey, publicKey: ed25519.getPublicKey(secretKey) };
}

/** Builds a keypair from a 32-byte secret seed (deterministic; useful for tests and fixtures). */
export function keypairFromSeed(seed: Uint8Array): Keypair {
  if (!(seed instanceof Uint8Array) || seed.length !== 32) {
    throw new CoordinatorClientError('INVALID_KEYPAIR', 'seed: expected 32 bytes', {
      field: 'seed',
      length: seed?.length,
    });
  }
  const secretKey = Uint8Array.from(seed);
  return { secretKey, publicKey: ed25519.getPublicKey(secretKey) };
}

/**
 * Parses a Solana keypair file's contents: a JSON array of 64 integers 0..255, `secret(32) || public(32)`.
 * The public half must match the one derived from the secret.
 *
 * @param text - the file contents
 * @param source - a name for error messages (e.g. the path)
 */
export function parseSolanaKeypair(text: string, source = 'keypair'): Keypair {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (cause) {
    throw new CoordinatorClientError('INVALID_KEYPAIR', `${source}: not valid JSON`, { source }, { cause });
  }
  if (!Array.isArray(raw) || raw.length !== 64) {
    throw new CoordinatorClientError(
      'INVALID_KEYPAIR',
      `${source}: expected a JSON array of 64 bytes (secret || public), got ${Array.isArray(raw) ? `${raw.length} entries` : typeof raw}`,
      { source },
    );
  }
  const bytes = new Uint8Array(64);
  for (let i = 0; i < 64; i++) {
    const v = raw[i];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 255) {
      throw new CoordinatorClientError('INVALID_KEYPAIR', `${source}[${i}]: expected an integer 0..255`, {
        source,
        index: i,
      });
    }
    bytes[i] = v;
  }
  const secretKey = bytes.slice(0, 32);
  const publicKey = bytes.slice(32);
  const derived = ed25519.getPublicKey(secretKey);
  if (!bytesEqual(derived, publicKey)) {
    throw new CoordinatorClientError(
      'INVALID_KEYPAIR',
      `${source}: public key (bytes 32..63) does not match the secret key (bytes 0..31)`,
      { source },
    );
  }
  return { secretKey, publicKey };
}

/** Serializes a keypair in Solana keypair-file format (JSON array of 64 bytes). */
export function formatSolanaKeypair(kp: Keypair): string {
  return JSON.stringify([...kp.secretKey, ...kp.publicKey]);
}

/** Reads a Solana keypair file from disk. */
export function readKeypairFile(path: string): Keypair {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new CoordinatorClientError(
      'INVALID_KEYPAIR',
      `${path}: cannot read keypair file`,
      { path },
      { cause },
    );
  }
  return parseSolanaKeypair(text, path);
}

/** Writes a Solana keypair file (mode 0600). */
export function writeKeypairFile(path: string, kp: Keypair): void {
  writeFileSync(path, formatSolanaKeypair(kp), { mode: 0o600 });
}

/** Signs `message` with `kp`. */
export function sign(message: Uint8Array, kp: Keypair): Uint8Array {
  return ed25519.sign(message, kp.secretKey);
}

/** Verifies an ed25519 signature; never throws on malformed input (returns false). */
export function verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  if (signature.length !== 64 || publicKey.length !== 32) return false;
  try {
    return ed25519.verify(signature, message, publicKey);
  } catch {
    return false;
  }
}

/** Hex encoding of bytes (lowercase). */
export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** Decodes lowercase/uppercase hex; returns undefined when `s` is not exactly `expectedLength` bytes of hex. */
export function fromHex(s: unknown, expectedLength: number): Uint8Array | undefined {
  if (typeof s !== 'string' || s.length !== expectedLength * 2 || !/^[0-9a-fA-F]*$/.test(s)) return undefined;
  return new Uint8Array(Buffer.from(s, 'hex'));
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The exact bytes a client signs to answer a server challenge: a domain separator, the run id and the 32-byte
 * nonce. Binding the run id means a response captured on one run cannot be used on another.
 */
export function authMessage(runId: string, nonce: Uint8Array): Uint8Array {
  const prefix = new TextEncoder().encode(`psyche-coordinator-auth/v1\0${runId}\0`);
  const out = new Uint8Array(prefix.length + nonce.length);
  out.set(prefix, 0);
  out.set(nonce, prefix.length);
  return out;
}
