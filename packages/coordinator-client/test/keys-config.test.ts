import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeTagged, encodeTagged } from '../src/codec.js';
import { parseRunConfig } from '../src/config.js';
import { isCoordinatorClientError } from '../src/errors.js';
import {
  authMessage,
  formatSolanaKeypair,
  generateKeypair,
  keypairFromSeed,
  parseSolanaKeypair,
  readKeypairFile,
  sign,
  toHex,
  verify,
  writeKeypairFile,
} from '../src/keys.js';
import { decodeClientMessage } from '../src/protocol.js';

const dir = mkdtempSync(join(tmpdir(), 'cc-keys-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('Solana keypair files', () => {
  it('RFC 8032 test vector 1: seed 9d61b1… derives public key d75a98… and signs the empty message', () => {
    // RFC 8032 §7.1 TEST 1.
    const seed = Buffer.from('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60', 'hex');
    const kp = keypairFromSeed(new Uint8Array(seed));
    expect(toHex(kp.publicKey)).toBe('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a');
    const sig = sign(new Uint8Array(0), kp);
    expect(toHex(sig)).toBe(
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
    );
    expect(verify(sig, new Uint8Array(0), kp.publicKey)).toBe(true);
  });

  it('round-trips secret||public through a file and rejects mismatched halves', () => {
    const kp = generateKeypair();
    const p = join(dir, 'id.json');
    writeKeypairFile(p, kp);
    const back = readKeypairFile(p);
    expect(back.secretKey).toEqual(kp.secretKey);
    expect(back.publicKey).toEqual(kp.publicKey);
    const arr = JSON.parse(formatSolanaKeypair(kp)) as number[];
    expect(arr).toHaveLength(64);
    arr[40] = (arr[40]! + 1) % 256;
    expect(() => parseSolanaKeypair(JSON.stringify(arr), 'x.json')).toThrow(
      /x.json: public key .* does not match/,
    );
  });

  it.each([
    ['not json', /not valid JSON/],
    ['[1,2,3]', /expected a JSON array of 64 bytes/],
    [JSON.stringify(new Array(64).fill(256)), /x\.json\[0\]: expected an integer 0\.\.255/],
    ['{"a":1}', /got object/],
  ])('rejects %s with INVALID_KEYPAIR', (text, re) => {
    expect.assertions(2);
    try {
      parseSolanaKeypair(text, 'x.json');
    } catch (e) {
      expect(isCoordinatorClientError(e, 'INVALID_KEYPAIR')).toBe(true);
      expect((e as Error).message).toMatch(re);
    }
  });

  it('verify never throws on malformed input and binds the run id', () => {
    const kp = generateKeypair();
    const nonce = new Uint8Array(32).fill(7);
    const sig = sign(authMessage('run-a', nonce), kp);
    expect(verify(sig, authMessage('run-a', nonce), kp.publicKey)).toBe(true);
    expect(verify(sig, authMessage('run-b', nonce), kp.publicKey)).toBe(false);
    expect(verify(sig.subarray(0, 10), authMessage('run-a', nonce), kp.publicKey)).toBe(false);
    expect(verify(new Uint8Array(64), authMessage('run-a', nonce), new Uint8Array(32).fill(0xff))).toBe(
      false,
    );
  });
});

const goodToml = `run_id = "r"
[server]
data_dir = "d"
[coordinator]
warmup_time = 2
cooldown_time = 1
max_round_train_time = 2
round_witness_time = 1
epoch_time = 10
total_steps = 5
init_min_clients = 1
min_clients = 1
global_batch_size_start = 4
global_batch_size_end = 4
`;

describe('run config', () => {
  it('applies defaults', () => {
    const c = parseRunConfig(goodToml, 'run.toml');
    expect(c.server).toMatchObject({
      host: '127.0.0.1',
      port: 0,
      tick_interval_ms: 500,
      max_message_bytes: 65536,
    });
    expect(c.coordinator.witness_nodes).toBe(0);
    expect(c.model.checkpoint).toEqual({ type: 'Ephemeral' });
    expect(c.model.max_seq_len).toBe(2048);
  });

  it.each([
    [goodToml.replace('data_dir = "d"', 'data_dir = "d"\nport = 70000'), 'server.port', /<=65535/],
    [goodToml.replace('data_dir = "d"', 'data_dir = "d"\nprot = 1'), 'server.prot', /Unrecognized key/],
    [goodToml.replace('warmup_time = 2', 'warmup_time = "2"'), 'coordinator.warmup_time', /expected number/],
    [goodToml.replace('\nmin_clients = 1', '\nmin_clients = -1'), 'coordinator.min_clients', />=0/],
    [goodToml.replace('run_id = "r"', `run_id = "${'x'.repeat(33)}"`), 'run_id', /at most 32 bytes/],
    [
      goodToml.replace('data_dir = "d"', 'data_dir = "d"\nallowlist = ["zz"]'),
      'server.allowlist.0',
      /64-character hex/,
    ],
    [goodToml.replace('[server]\ndata_dir = "d"\n', ''), 'server', /expected object/],
  ])('names the bad field (%#)', (toml, field, re) => {
    expect.assertions(3);
    try {
      parseRunConfig(toml, 'run.toml');
    } catch (e) {
      expect(isCoordinatorClientError(e, 'INVALID_CONFIG')).toBe(true);
      expect((e as { details: { field: string } }).details.field).toBe(field);
      expect((e as Error).message).toMatch(re);
    }
  });

  it('reports invalid TOML', () => {
    expect(() => parseRunConfig('run_id = \n[', 'run.toml')).toThrow(/run\.toml: invalid TOML/);
  });
});

describe('tagged JSON and protocol frames', () => {
  it('round-trips bigint (u64 extremes) and bytes exactly', () => {
    const v = { a: 0n, b: 2n ** 64n - 1n, c: [new Uint8Array([0, 255]), -3n], d: 'x', e: null };
    expect(decodeTagged(encodeTagged(v))).toEqual(v);
  });

  it.each([
    ['{', 'message: not valid JSON'],
    ['{"t":"nope"}', 'message.t'],
    ['{"t":"req","id":0,"op":"join"}', 'message.id'],
    ['{"t":"req","id":1,"op":"fly"}', 'message.op'],
    ['{"t":"auth","pubkey":"00","sig":"00"}', 'message.pubkey'],
    ['{"t":"sub","after":1,"x":1}', 'message.x'],
    ['{"$n":"12x"}', 'message: not valid JSON'],
  ])('rejects %s naming %s', (text, prefix) => {
    expect.assertions(2);
    try {
      decodeClientMessage(text);
    } catch (e) {
      expect(isCoordinatorClientError(e, 'MALFORMED_MESSAGE')).toBe(true);
      expect((e as Error).message.startsWith(prefix)).toBe(true);
    }
  });
});
