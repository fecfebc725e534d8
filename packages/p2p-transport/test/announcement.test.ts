import { createHash, createPublicKey, verify } from 'node:crypto';
import { generateKeyPair, generateKeyPairFromSeed } from '@libp2p/crypto/keys';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ANNOUNCEMENT_SIGNING_DOMAIN,
  AnnouncementValidator,
  decodeEnvelope,
  encodeAnnouncementBody,
  encodeEnvelope,
  gossipTopic,
  peerIdFromKey,
  runDigest,
  signAnnouncement,
} from '../src/index.js';

const seed = Uint8Array.from({ length: 32 }, (_, i) => i + 1);
const hash = Uint8Array.from({ length: 32 }, (_, i) => 0xa0 + (i % 16));

describe('run digest and topic', () => {
  it("is sha256('psyche gossip' || run id)", () => {
    const expected = createHash('sha256').update(Buffer.from('psyche gossiprun-42', 'utf8')).digest('hex');
    expect(Buffer.from(runDigest('run-42')).toString('hex')).toBe(expected);
    expect(gossipTopic('run-42')).toBe(`psyche/run/${expected}/1`);
    expect(() => runDigest('')).toThrow(/runId/);
  });
});

describe('announcement encoding', () => {
  it('lays out a result body byte by byte (docs/p2p-protocol.md §3)', async () => {
    const key = await generateKeyPairFromSeed('Ed25519', seed);
    const run = runDigest('r');
    const body = encodeAnnouncementBody(
      {
        kind: 'result',
        round: 0x01020304,
        nonce: 7,
        batchId: 0xaabbccdd,
        hashAlgorithm: 'blake3',
        hash,
        size: 2 ** 40 + 5,
      },
      run,
      key.publicKey.raw,
    );
    expect(body.byteLength).toBe(118);
    expect(body[0]).toBe(1);
    expect(body.subarray(1, 33)).toEqual(run);
    expect(body.subarray(33, 65)).toEqual(key.publicKey.raw);
    expect(Array.from(body.subarray(65, 69))).toEqual([1, 2, 3, 4]);
    expect(Array.from(body.subarray(69, 73))).toEqual([0, 0, 0, 7]);
    expect(Array.from(body.subarray(73, 77))).toEqual([0xaa, 0xbb, 0xcc, 0xdd]);
    expect(body[77]).toBe(2);
    expect(body.subarray(78, 110)).toEqual(hash);
    // 2^40 + 5 = 0x00_00_01_00_00_00_00_05 big-endian
    expect(Array.from(body.subarray(110, 118))).toEqual([0, 0, 1, 0, 0, 0, 0, 5]);
  });

  it('signs domain || body with plain ed25519 (verified with node:crypto)', async () => {
    const key = await generateKeyPairFromSeed('Ed25519', seed);
    const run = runDigest('r');
    const env = await signAnnouncement({ kind: 'finished', round: 9, nonce: 1 }, run, key);
    // envelope = version(1) | body_len(2) | body(73) | sig_len(1) | sig(64)
    expect(env.byteLength).toBe(1 + 2 + 73 + 1 + 64);
    expect(Array.from(env.subarray(0, 3))).toEqual([1, 0, 73]);
    expect(env[76]).toBe(64);
    const body = env.subarray(3, 76);
    const spki = Buffer.concat([
      Buffer.from('302a300506032b6570032100', 'hex'),
      Buffer.from(key.publicKey.raw),
    ]);
    const pub = createPublicKey({ key: spki, format: 'der', type: 'spki' });
    const msg = Buffer.concat([Buffer.from(ANNOUNCEMENT_SIGNING_DOMAIN), Buffer.from(body)]);
    expect(verify(null, msg, pub, Buffer.from(env.subarray(77)))).toBe(true);
    const dec = decodeEnvelope(env);
    expect(dec.announcement).toEqual({ kind: 'finished', round: 9, nonce: 1 });
  });

  it('rejects out-of-range fields with INVALID_PARAMETER naming them', async () => {
    const key = await generateKeyPair('Ed25519');
    const run = runDigest('r');
    await expect(signAnnouncement({ kind: 'finished', round: -1, nonce: 0 }, run, key)).rejects.toThrow(
      /announcement.round/,
    );
    await expect(signAnnouncement({ kind: 'finished', round: 0, nonce: 2 ** 32 }, run, key)).rejects.toThrow(
      /announcement.nonce/,
    );
    await expect(
      signAnnouncement(
        {
          kind: 'result',
          round: 0,
          nonce: 0,
          batchId: 0,
          hashAlgorithm: 'sha256',
          hash: new Uint8Array(31),
          size: 1,
        },
        run,
        key,
      ),
    ).rejects.toThrow(/announcement.hash/);
    await expect(
      signAnnouncement(
        { kind: 'result', round: 0, nonce: 0, batchId: 1.5, hashAlgorithm: 'sha256', hash, size: 1 },
        run,
        key,
      ),
    ).rejects.toThrow(/announcement.batchId/);
  });
});

describe('AnnouncementValidator', () => {
  async function setup(allowed = true) {
    const key = await generateKeyPair('Ed25519');
    const run = runDigest('run-a');
    const v = new AnnouncementValidator({ run, isAllowed: () => allowed });
    const result = (round: number, nonce: number, batchId = 0) =>
      signAnnouncement(
        { kind: 'result', round, nonce, batchId, hashAlgorithm: 'sha256', hash, size: 100 },
        run,
        key,
      );
    return { key, run, v, result };
  }

  it('accepts a valid announcement and reports its author', async () => {
    const { key, v, result } = await setup();
    const res = await v.validate(await result(3, 0));
    expect(res.ok).toBe(true);
    if (res.ok) {
      expect(res.announcement.from).toBe(peerIdFromKey(key).toString());
      expect(res.announcement).toMatchObject({
        kind: 'result',
        round: 3,
        batchId: 0,
        size: 100,
        hashAlgorithm: 'sha256',
      });
    }
  });

  it('rejects each bad case with its reason', async () => {
    const { key, v, result } = await setup();
    const good = await result(5, 1);
    const reasons: string[] = [];
    const check = async (data: Uint8Array) => {
      const r = await v.validate(data);
      reasons.push(r.ok ? 'ok' : r.reason);
    };
    await check(new Uint8Array(4097)); // oversized
    await check(good.subarray(0, 50)); // malformed: truncated
    const badVersion = good.slice();
    badVersion[0] = 2;
    await check(badVersion); // malformed
    const body = good.subarray(3, 3 + 118);
    await check(encodeEnvelope(body, new Uint8Array(0))); // unsigned
    const otherRun = await signAnnouncement(
      { kind: 'finished', round: 5, nonce: 0 },
      runDigest('run-b'),
      key,
    );
    await check(otherRun); // wrong-run
    const flipped = good.slice();
    flipped[3 + 100] = flipped[3 + 100]! ^ 1; // change the hash → signature no longer matches
    await check(flipped); // bad-signature
    v.currentRound = 10;
    await check(good); // off-round (5 vs 10±1)
    v.currentRound = 5;
    await check(good); // ok
    await check(good); // replayed (same nonce)
    await check(await result(5, 0)); // replayed (older nonce)
    await check(await result(5, 2)); // ok (re-broadcast)
    await check(await result(6, 0)); // ok (other round)
    await check(await result(5, 0, 1)); // ok (other batch)
    expect(reasons).toEqual([
      'oversized',
      'malformed',
      'malformed',
      'unsigned',
      'wrong-run',
      'bad-signature',
      'off-round',
      'ok',
      'replayed',
      'replayed',
      'ok',
      'ok',
      'ok',
    ]);
    v.prune(100);
    // replay state for round 5 dropped, but round 5 is now off-round anyway
    v.currentRound = 100;
    expect((await v.validate(good)).ok).toBe(false);
  });

  it('rejects signers outside the allowlist', async () => {
    const { v, result } = await setup(false);
    const r = await v.validate(await result(0, 0));
    expect(r).toMatchObject({ ok: false, reason: 'not-allowed' });
  });

  it('never throws and never accepts random bytes (property, 300 cases)', async () => {
    const { v, good } = await setup().then(async (s) => ({ ...s, good: await s.result(1, 1) }));
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 400 }), fc.nat(), async (bytes, pos) => {
        const r1 = await v.validate(bytes);
        expect(r1.ok).toBe(false);
        // single-byte corruption of a valid message is never accepted
        const c = good.slice();
        const i = pos % c.byteLength;
        c[i] = c[i]! ^ 0xff;
        const r2 = await v.validate(c);
        expect(r2.ok).toBe(false);
      }),
      { numRuns: 300, seed: 42 },
    );
  });
});
