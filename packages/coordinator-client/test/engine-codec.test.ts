import { RunState } from '@psyche/coordinator';
import { describe, expect, it } from 'vitest';
import { deepEqual, encodeTagged } from '../src/codec.js';
import { parseRunConfig } from '../src/config.js';
import { isCoordinatorClientError } from '../src/errors.js';
import { generateKeypair, toHex } from '../src/keys.js';
import { LocalCoordinatorClient } from '../src/local-client.js';
import { psycheEngine } from '../src/psyche-engine.js';
import { BoundedSet, TokenBucket } from '../src/rate-limit.js';

const toml = (extra = '') => `run_id = "unit"
[server]
data_dir = "d"
[coordinator]
warmup_time = 2
cooldown_time = 1
max_round_train_time = 2
round_witness_time = 1
epoch_time = 10
total_steps = 5
init_min_clients = 2
min_clients = 1
global_batch_size_start = 4
global_batch_size_end = 4
${extra}`;

describe('psycheEngine', () => {
  const engine = psycheEngine();
  const config = parseRunConfig(toml());
  const a = toHex(generateKeypair().publicKey);
  const b = toHex(generateKeypair().publicKey);

  it('starts in WaitingForMembers at the given time', () => {
    const s = engine.initial(config, 1000);
    expect(s.runState).toBe(RunState.WaitingForMembers);
    expect(s.runStateStart).toBe(1000);
    expect(engine.summarize(s)).toMatchObject({
      runState: 'WaitingForMembers',
      step: 1,
      epoch: 0,
      clients: [],
    });
  });

  it('never mutates its input and is deterministic for the same (input, ts, seed)', () => {
    const s0 = engine.initial(config, 1000);
    const before = encodeTagged(s0);
    const inputs = [{ kind: 'join', client: a }, { kind: 'join', client: b }, { kind: 'tick' }] as const;
    const run = () => {
      let s = s0;
      let ts = 1000;
      for (const i of inputs) s = engine.apply(s, i, ts++, 42n);
      // 2 s after the last join: extra time (1 s) elapsed → Warmup.
      return engine.apply(s, { kind: 'tick' }, 1003, 7n);
    };
    const x = run();
    const y = run();
    expect(encodeTagged(s0)).toBe(before);
    expect(deepEqual(x, y)).toBe(true);
    expect(x.runState).toBe(RunState.Warmup);
    expect(engine.summarize(x).clients.map((c) => c.state)).toEqual(['Healthy', 'Healthy']);
  });

  it.each([
    ['join', { x: 1 }, /join body: /],
    ['warmupWitness', { index: -1 }, /warmupWitness body\.index/],
    ['witness', { index: 0 }, /witness body\.participantBloom/],
    ['healthCheck', { checks: [] }, /healthCheck body\.checks/],
    ['checkpoint', { index: 0 }, /checkpoint body\.checkpoint/],
  ] as const)('rejects a malformed %s body naming the field', (kind, body, re) => {
    const s = engine.initial(config, 1000);
    expect.assertions(2);
    try {
      engine.apply(s, { kind, client: a, body }, 1000, 1n);
    } catch (e) {
      expect(isCoordinatorClientError(e, 'MALFORMED_MESSAGE')).toBe(true);
      expect((e as Error).message).toMatch(re);
    }
  });

  it('surfaces state-machine refusals as typed coordinator errors, state unchanged', () => {
    const s = engine.initial(config, 1000);
    const before = encodeTagged(s);
    expect(() => engine.apply(s, { kind: 'warmupWitness', client: a, body: { index: 0 } }, 1000, 1n)).toThrow(
      /WrongRunState/,
    );
    expect(() => engine.apply(s, { kind: 'leave', client: a }, 1000, 1n)).toThrow(/ClientNotFound/);
    expect(encodeTagged(s)).toBe(before);
  });

  it('maps cross-field config errors to the TOML field', () => {
    expect.assertions(2);
    try {
      engine.initial(parseRunConfig(toml('witness_nodes = 3')), 0);
    } catch (e) {
      expect(isCoordinatorClientError(e, 'INVALID_CONFIG')).toBe(true);
      expect((e as { details: { field: string } }).details.field).toBe('coordinator.witness_nodes');
    }
  });
});

describe('codec', () => {
  it('encodes like JSON for plain data (undefined members dropped, non-finite → null)', () => {
    const v = { a: 1, b: 'x"y', c: [1, undefined, null], d: undefined, e: { f: true }, g: Number.NaN };
    expect(encodeTagged(v)).toBe(JSON.stringify(v));
  });

  it('deepEqual distinguishes bigint/number, byte contents and key sets', () => {
    expect(deepEqual({ a: [1n, new Uint8Array([1])] }, { a: [1n, new Uint8Array([1])] })).toBe(true);
    expect(deepEqual(1n, 1)).toBe(false);
    expect(deepEqual(new Uint8Array([1]), new Uint8Array([2]))).toBe(false);
    expect(deepEqual({ a: 1 }, { a: 1, b: 2 })).toBe(false);
    expect(deepEqual({ a: 1, b: undefined }, { a: 1, c: undefined })).toBe(false);
    expect(deepEqual([1, 2], { 0: 1, 1: 2 })).toBe(false);
  });
});

describe('rate limiting', () => {
  it('token bucket: burst then refill at the configured rate (hand-derived at fixed instants)', () => {
    // 2 tokens/s, burst 3. t=0: 3 takes succeed, the 4th fails. t=500 ms: +1 token → one take. t=1500 ms: +2.
    const b = new TokenBucket(2, 3, 0);
    expect([b.take(0), b.take(0), b.take(0), b.take(0)]).toEqual([true, true, true, false]);
    expect([b.take(500), b.take(500)]).toEqual([true, false]);
    expect([b.take(1500), b.take(1500), b.take(1500)]).toEqual([true, true, false]);
    // Long idle refills only up to the burst.
    expect([b.take(60_000), b.take(60_000), b.take(60_000), b.take(60_000)]).toEqual([
      true,
      true,
      true,
      false,
    ]);
  });

  it('bounded set forgets the oldest entries', () => {
    const s = new BoundedSet(2);
    s.add('a');
    s.add('b');
    s.add('c');
    expect([s.has('a'), s.has('b'), s.has('c')]).toEqual([false, true, true]);
  });
});

describe('LocalCoordinatorClient arguments', () => {
  it.each([
    [{ url: 'http://x', keypair: generateKeypair() }, /options\.url/],
    [
      {
        url: 'ws://127.0.0.1:1/ws',
        keypair: { secretKey: new Uint8Array(3), publicKey: new Uint8Array(32) },
      },
      /options\.keypair/,
    ],
  ])('rejects bad options with INVALID_ARGUMENT (%#)', async (opts, re) => {
    const e = await LocalCoordinatorClient.connect(opts).catch((x: unknown) => x);
    expect(isCoordinatorClientError(e, 'INVALID_ARGUMENT')).toBe(true);
    expect((e as Error).message).toMatch(re);
  });

  it('connect honours an AbortSignal while the server is unreachable', async () => {
    // Port 1 on loopback refuses connections: the client keeps retrying until the signal fires.
    const e = await LocalCoordinatorClient.connect(
      {
        url: 'ws://127.0.0.1:1/ws',
        keypair: generateKeypair(),
        reconnect: { initialDelayMs: 10, maxDelayMs: 20 },
      },
      { signal: AbortSignal.timeout(300) },
    ).catch((x: unknown) => x);
    expect(isCoordinatorClientError(e, 'ABORTED')).toBe(true);
  });
});
