import { describe, expect, it } from 'vitest';
import {
  createHasher,
  decodeRequest,
  decodeResponseHeader,
  encodeRequest,
  encodeResponseHeader,
  hashBytes,
  OP_GET,
  OP_PING,
  type PeerStats,
  REQUEST_BYTES,
  rankPeers,
  STATUS,
  toHex,
} from '../src/index.js';
import { Semaphore } from '../src/internal/semaphore.js';

const hash = Uint8Array.from({ length: 32 }, (_, i) => i);

describe('blob request/response frames', () => {
  it('encodes a GET request at the documented offsets', () => {
    const f = encodeRequest({ op: OP_GET, hashAlgorithm: 'blake3', hash, offset: 0x0102, length: 2 ** 33 });
    expect(f.byteLength).toBe(REQUEST_BYTES);
    expect(Array.from(f.subarray(0, 4))).toEqual([1, 1, 2, 0]);
    expect(f.subarray(4, 36)).toEqual(hash);
    expect(Array.from(f.subarray(36, 44))).toEqual([0, 0, 0, 0, 0, 0, 1, 2]);
    // 2^33 = 0x2_0000_0000 → bytes 00 00 00 02 00 00 00 00
    expect(Array.from(f.subarray(44, 52))).toEqual([0, 0, 0, 2, 0, 0, 0, 0]);
    expect(decodeRequest(f)).toEqual({
      op: OP_GET,
      hashAlgorithm: 'blake3',
      hash,
      offset: 0x0102,
      length: 2 ** 33,
    });
  });

  it('round-trips PING and response headers', () => {
    const p = decodeRequest(
      encodeRequest({ op: OP_PING, hashAlgorithm: null, hash: new Uint8Array(32), offset: 0, length: 0 }),
    );
    expect(p.op).toBe(OP_PING);
    expect(p.hashAlgorithm).toBeNull();
    const h = encodeResponseHeader(STATUS.RANGE, 1234);
    expect(Array.from(h)).toEqual([1, 5, 0, 0, 0, 0, 0, 0, 0x04, 0xd2]);
    expect(decodeResponseHeader(h)).toEqual({ status: 'RANGE', totalSize: 1234 });
  });

  it.each([
    ['short frame', -1, 0, /expected 52 bytes/],
    ['bad version', 0, 9, /version/],
    ['bad op', 1, 7, /op/],
    ['bad hash_alg', 2, 3, /hash_alg/],
    ['reserved set', 3, 1, /reserved/],
    ['offset > 2^53', 36, 0xff, /offset/],
    ['length > 2^53', 44, 0xff, /length/],
  ])('rejects a request with %s as MALFORMED_FRAME', (_n, at, value, msg) => {
    let f = encodeRequest({ op: OP_GET, hashAlgorithm: 'sha256', hash, offset: 0, length: 0 });
    if (at < 0) f = f.subarray(0, 51);
    else f[at] = value;
    expect(() => decodeRequest(f)).toThrow(
      expect.objectContaining({ code: 'MALFORMED_FRAME', message: expect.stringMatching(msg) }),
    );
  });

  it('rejects bad response headers', () => {
    expect(() => decodeResponseHeader(new Uint8Array(9))).toThrow(/expected 10 bytes/);
    const h = encodeResponseHeader(0, 1);
    h[1] = 99;
    expect(() => decodeResponseHeader(h)).toThrow(/unknown status 99/);
  });
});

describe('hashing', () => {
  it('matches the standard test vectors for "abc"', () => {
    const abc = new TextEncoder().encode('abc');
    // FIPS 180-2 SHA-256("abc")
    expect(toHex(hashBytes(abc, 'sha256'))).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
    // BLAKE3 reference test: BLAKE3("abc")
    expect(toHex(hashBytes(abc, 'blake3'))).toBe(
      '6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85',
    );
  });

  it('incremental hashing equals one-shot hashing', () => {
    const data = Uint8Array.from({ length: 10_000 }, (_, i) => (i * 31) & 0xff);
    for (const alg of ['sha256', 'blake3'] as const) {
      const h = createHasher(alg);
      h.update(data.subarray(0, 1));
      h.update(data.subarray(1, 4097));
      h.update(data.subarray(4097));
      expect(toHex(h.digest())).toBe(toHex(hashBytes(data, alg)));
    }
  });
});

describe('rankPeers', () => {
  const s = (peerId: string, p: Partial<PeerStats>): PeerStats => ({
    peerId,
    bytesIn: 0,
    bytesOut: 0,
    latencyMs: null,
    bandwidthBytesPerSec: null,
    fetchSuccesses: 0,
    fetchFailures: 0,
    hashMismatches: 0,
    ...p,
  });

  it('orders by bandwidth tier, bandwidth, latency, failures, then input order; mismatches last', () => {
    const stats = new Map<string, PeerStats>([
      ['fast', s('fast', { bandwidthBytesPerSec: 100e6 })],
      ['slow', s('slow', { bandwidthBytesPerSec: 1e6 })],
      ['zero', s('zero', { bandwidthBytesPerSec: 0 })],
      ['near', s('near', { latencyMs: 1 })],
      ['far', s('far', { latencyMs: 50 })],
      ['flaky', s('flaky', { fetchFailures: 2 })],
      ['liar', s('liar', { bandwidthBytesPerSec: 900e6, hashMismatches: 1 })],
    ]);
    const order = rankPeers(
      ['liar', 'unknown2', 'zero', 'flaky', 'far', 'unknown1', 'slow', 'near', 'fast'],
      (p) => stats.get(p),
    );
    expect(order).toEqual(['fast', 'slow', 'near', 'far', 'unknown2', 'unknown1', 'flaky', 'zero', 'liar']);
  });
});

describe('Semaphore', () => {
  it('never exceeds its limit and serves waiters FIFO', async () => {
    const sem = new Semaphore(2);
    const order: number[] = [];
    let active = 0;
    let peak = 0;
    await Promise.all(
      Array.from({ length: 6 }, async (_, i) => {
        const release = await sem.acquire();
        order.push(i);
        active++;
        peak = Math.max(peak, active);
        await new Promise((r) => setImmediate(r));
        active--;
        release();
        release(); // double release is a no-op
      }),
    );
    expect(peak).toBe(2);
    expect(order).toEqual([0, 1, 2, 3, 4, 5]);
    expect(sem.inUse).toBe(0);
  });

  it('an aborted waiter leaves the queue with ABORTED', async () => {
    const sem = new Semaphore(1);
    const r1 = await sem.acquire();
    const ac = new AbortController();
    const waiting = sem.acquire(ac.signal);
    ac.abort();
    await expect(waiting).rejects.toMatchObject({ code: 'ABORTED' });
    expect(sem.tryAcquire()).toBeNull();
    r1();
    const r2 = sem.tryAcquire();
    expect(r2).not.toBeNull();
    r2!();
    expect(sem.inUse).toBe(0);
  });
});
