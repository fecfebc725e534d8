import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  generateKeyFile,
  keyFileJsonFromPrivateKey,
  loadKeyFile,
  loadOrCreateKeyFile,
  P2PTransportError,
  peerIdFromEd25519PublicKey,
  peerIdFromKey,
  privateKeyFromKeyFileJson,
} from '../src/index.js';

// RFC 8032 §7.1 TEST 1: secret seed, public key and the signature of the empty message.
const RFC_SEED = '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60';
const RFC_PUB = 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a';
const RFC_SIG_EMPTY =
  'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b';

const solanaFile = (hex: string): string => JSON.stringify(Array.from(Buffer.from(hex, 'hex')));

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'p2p-identity-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('Solana-compatible key file', () => {
  it('loads secret||public (RFC 8032 vector) and signs like ed25519', async () => {
    const key = await privateKeyFromKeyFileJson(solanaFile(RFC_SEED + RFC_PUB));
    expect(Buffer.from(key.publicKey.raw).toString('hex')).toBe(RFC_PUB);
    const sig = await key.sign(new Uint8Array(0));
    expect(Buffer.from(sig).toString('hex')).toBe(RFC_SIG_EMPTY);
  });

  it('writes the same 64-byte layout back', async () => {
    const key = await privateKeyFromKeyFileJson(solanaFile(RFC_SEED + RFC_PUB));
    expect(keyFileJsonFromPrivateKey(key)).toBe(solanaFile(RFC_SEED + RFC_PUB));
  });

  it('generates a 0600 file whose identity is stable across loads', async () => {
    const path = join(dir, 'sub', 'id.json');
    const key = await generateKeyFile(path);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    const arr = JSON.parse(await readFile(path, 'utf8')) as number[];
    expect(arr).toHaveLength(64);
    expect(Buffer.from(arr.slice(32))).toEqual(Buffer.from(key.publicKey.raw));
    const again = await loadKeyFile(path);
    expect(peerIdFromKey(again).toString()).toBe(peerIdFromKey(key).toString());
    const viaCreate = await loadOrCreateKeyFile(path);
    expect(peerIdFromKey(viaCreate).toString()).toBe(peerIdFromKey(key).toString());
    // the peer id is derivable from the public half alone (what the coordinator stores)
    expect(peerIdFromEd25519PublicKey(new Uint8Array(arr.slice(32))).toString()).toBe(
      peerIdFromKey(key).toString(),
    );
  });

  it('loadOrCreateKeyFile creates a missing file and refuses to overwrite via generateKeyFile', async () => {
    const path = join(dir, 'new.json');
    const k = await loadOrCreateKeyFile(path);
    expect((await loadKeyFile(path)).publicKey.raw).toEqual(k.publicKey.raw);
    await expect(generateKeyFile(path)).rejects.toThrow(/EEXIST/);
  });

  it.each([
    ['not JSON', '{oops', /not valid JSON/],
    ['an object', '{"a":1}', /array of 64 bytes/],
    ['63 elements', JSON.stringify(new Array(63).fill(1)), /an array of 63/],
    ['a non-byte element', JSON.stringify([...new Array(63).fill(1), 256]), /element \[63\]/],
    ['a fractional element', JSON.stringify([0.5, ...new Array(63).fill(1)]), /element \[0\]/],
    ['a public half that does not match', solanaFile(RFC_SEED + RFC_SEED), /not the ed25519 public key/],
  ])('rejects %s with INVALID_KEY_FILE', async (_name, json, msg) => {
    const err = await privateKeyFromKeyFileJson(json).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(P2PTransportError);
    expect((err as P2PTransportError).code).toBe('INVALID_KEY_FILE');
    expect((err as Error).message).toMatch(msg);
  });

  it('reports unreadable files with the path', async () => {
    const path = join(dir, 'missing.json');
    await expect(loadKeyFile(path)).rejects.toMatchObject({ code: 'INVALID_KEY_FILE', details: { path } });
    const bad = join(dir, 'bad.json');
    await writeFile(bad, '[1,2,3]');
    await expect(loadOrCreateKeyFile(bad)).rejects.toMatchObject({ code: 'INVALID_KEY_FILE' });
  });

  it('rejects a public key that is not 32 bytes', () => {
    expect(() => peerIdFromEd25519PublicKey(new Uint8Array(31))).toThrow(/32 raw ed25519 bytes/);
  });
});
