import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { generateKeyPair, generateKeyPairFromSeed, publicKeyFromRaw } from '@libp2p/crypto/keys';
import type { Ed25519PrivateKey, PeerId } from '@libp2p/interface';
import { peerIdFromPrivateKey, peerIdFromPublicKey } from '@libp2p/peer-id';
import { P2PTransportError } from './errors.js';
import { bytesEqual } from './hash.js';

/**
 * Parses the contents of a Solana-compatible key file: a JSON array of 64 integers in [0, 255],
 * `secret_seed(32) || public_key(32)`, exactly what `solana-keygen new -o key.json` writes.
 * The public half must be the ed25519 public key of the seed.
 *
 * @throws {P2PTransportError} INVALID_KEY_FILE naming what is wrong.
 */
export async function privateKeyFromKeyFileJson(
  json: string,
  source = 'key file',
): Promise<Ed25519PrivateKey> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (cause) {
    throw new P2PTransportError(
      'INVALID_KEY_FILE',
      `${source}: not valid JSON (expected an array of 64 bytes)`,
      { source },
      { cause },
    );
  }
  if (!Array.isArray(parsed) || parsed.length !== 64) {
    throw new P2PTransportError(
      'INVALID_KEY_FILE',
      `${source}: expected a JSON array of 64 bytes (secret||public), got ${Array.isArray(parsed) ? `an array of ${parsed.length}` : typeof parsed}`,
      { source },
    );
  }
  const bytes = new Uint8Array(64);
  for (let i = 0; i < 64; i++) {
    const v = parsed[i];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 255) {
      throw new P2PTransportError(
        'INVALID_KEY_FILE',
        `${source}: element [${i}] must be an integer in [0, 255], got ${JSON.stringify(v)}`,
        {
          source,
          index: i,
        },
      );
    }
    bytes[i] = v;
  }
  const key = await generateKeyPairFromSeed('Ed25519', bytes.subarray(0, 32));
  if (!bytesEqual(key.publicKey.raw, bytes.subarray(32))) {
    throw new P2PTransportError(
      'INVALID_KEY_FILE',
      `${source}: bytes [32..64) are not the ed25519 public key of the secret seed in bytes [0..32)`,
      { source },
    );
  }
  return key;
}

/** Serialises an ed25519 key to the Solana key-file JSON (`[s0,…,s31,p0,…,p31]`). */
export function keyFileJsonFromPrivateKey(key: Ed25519PrivateKey): string {
  // libp2p's raw ed25519 private key is already seed(32) || public(32), the Solana layout.
  const raw = key.raw;
  if (raw.byteLength !== 64) {
    throw new P2PTransportError(
      'INVALID_PARAMETER',
      `key must be a 64-byte ed25519 key, got ${raw.byteLength} bytes`,
      {
        parameter: 'key',
      },
    );
  }
  return JSON.stringify(Array.from(raw));
}

/** Reads and validates a Solana-compatible ed25519 key file. */
export async function loadKeyFile(path: string): Promise<Ed25519PrivateKey> {
  let json: string;
  try {
    json = await readFile(path, 'utf8');
  } catch (cause) {
    throw new P2PTransportError('INVALID_KEY_FILE', `key file ${path}: cannot be read`, { path }, { cause });
  }
  return privateKeyFromKeyFileJson(json, `key file ${path}`);
}

/** Generates a fresh ed25519 key and writes it to `path` (mode 0600, parent directories created). */
export async function generateKeyFile(path: string): Promise<Ed25519PrivateKey> {
  const key = await generateKeyPair('Ed25519');
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, keyFileJsonFromPrivateKey(key), { mode: 0o600, flag: 'wx' });
  await chmod(path, 0o600);
  return key;
}

/** Loads `path` if it exists, otherwise generates and writes a new key there. */
export async function loadOrCreateKeyFile(path: string): Promise<Ed25519PrivateKey> {
  try {
    return await loadKeyFile(path);
  } catch (e) {
    const cause = (e as { cause?: { code?: string } }).cause;
    if (cause?.code === 'ENOENT') return generateKeyFile(path);
    throw e;
  }
}

/** The libp2p peer id of an ed25519 private key. */
export function peerIdFromKey(key: Ed25519PrivateKey): PeerId {
  return peerIdFromPrivateKey(key);
}

/** The libp2p peer id of a raw 32-byte ed25519 public key (e.g. a Solana wallet's public key bytes). */
export function peerIdFromEd25519PublicKey(publicKey: Uint8Array): PeerId {
  if (!(publicKey instanceof Uint8Array) || publicKey.byteLength !== 32) {
    throw new P2PTransportError('INVALID_PARAMETER', 'publicKey must be 32 raw ed25519 bytes', {
      parameter: 'publicKey',
    });
  }
  return peerIdFromPublicKey(publicKeyFromRaw(publicKey));
}
