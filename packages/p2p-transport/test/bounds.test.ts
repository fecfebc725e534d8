import { generateKeyPair } from '@libp2p/crypto/keys';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AnnouncementValidator,
  type BlobRef,
  createP2PNode,
  hashBytes,
  type P2PNode,
  runDigest,
  signAnnouncement,
} from '../src/index.js';
import { keys, nextEvent, startNodes, stopAll, waitFor } from './helpers.js';

const nodes: P2PNode[] = [];
afterEach(async () => {
  await stopAll(nodes);
});

/** Envelope of a result announcement: version 1 + body_len 2 + body 118 + sig_len 1 + signature 64 = 186. */
const RESULT_ENVELOPE_BYTES = 186;

describe('bounded replay state (AnnouncementValidator)', () => {
  it('a flood over many rounds and nonces stays under maxReplayEntries without setRound; replays are still rejected', async () => {
    const run = runDigest('run-bounds');
    const signers = await Promise.all([0, 1, 2].map(() => generateKeyPair('Ed25519')));
    const hash = hashBytes(new Uint8Array([1]), 'sha256');
    const cap = 64;
    const v = new AnnouncementValidator({ run, isAllowed: () => true, maxReplayEntries: cap });
    const sign = (s: number, round: number, batchId: number, nonce: number) =>
      signAnnouncement(
        { kind: 'result', round, batchId, nonce, hashAlgorithm: 'sha256', hash, size: 1 },
        run,
        signers[s]!,
      );
    // 3 signers × 2 batches per round, 2 nonces each, rounds 0..99: 600 distinct keys, 1200 valid messages.
    const accepted: Array<{ round: number; data: Uint8Array }> = [];
    let maxSeen = 0;
    for (let round = 0; round < 100; round++) {
      for (let s = 0; s < 3; s++) {
        for (let batchId = 0; batchId < 2; batchId++) {
          for (const nonce of [0, 1]) {
            const data = await sign(s, round, batchId, nonce);
            const res = await v.validate(data);
            expect(res.ok).toBe(true);
            accepted.push({ round, data });
            maxSeen = Math.max(maxSeen, v.replayEntries);
          }
        }
      }
    }
    expect(v.currentRound).toBeNull(); // setRound/prune never ran
    expect(maxSeen).toBeLessThanOrEqual(cap);
    // 600 keys written, at most 64 held: everything else was evicted (whole rounds, lowest first)
    expect(v.replayEntriesEvicted + v.replayEntries).toBe(600);
    expect(v.replayEntries).toBeGreaterThan(0);
    // the newest rounds are intact (6 keys per round, cap 64 → at least the last 9 rounds are held)
    expect(v.replayFloorRound).toBeLessThan(99 - 8);
    // every accepted message replayed verbatim is rejected: held rounds by nonce, evicted rounds by the floor
    for (const { round, data } of [...accepted.slice(-12), ...accepted.slice(0, 12)]) {
      const res = await v.validate(data);
      expect(res.ok, `replay of round ${round}`).toBe(false);
      if (!res.ok) expect(res.reason).toBe('replayed');
    }
    const evicted = await v.validate(await sign(0, 0, 0, 9)); // fresh nonce, but for an evicted round
    expect(evicted).toMatchObject({ ok: false, reason: 'replayed' });
    if (!evicted.ok) expect(evicted.message).toMatch(/evicted.*maxReplayEntries 64/);
    // the current window still accepts new nonces and rejects their replays
    const fresh = await sign(1, 99, 1, 2);
    expect((await v.validate(fresh)).ok).toBe(true);
    expect(await v.validate(fresh)).toMatchObject({ ok: false, reason: 'replayed' });
    expect(v.replayEntries).toBeLessThanOrEqual(cap);
  });

  it('round pruning and the cap keep the entry count consistent', async () => {
    const run = runDigest('run-bounds');
    const key = await generateKeyPair('Ed25519');
    const hash = hashBytes(new Uint8Array([2]), 'sha256');
    const v = new AnnouncementValidator({ run, isAllowed: () => true, maxReplayEntries: 8 });
    for (let batchId = 0; batchId < 5; batchId++) {
      const data = await signAnnouncement(
        { kind: 'result', round: 1, batchId, nonce: 0, hashAlgorithm: 'sha256', hash, size: 1 },
        run,
        key,
      );
      expect((await v.validate(data)).ok).toBe(true);
    }
    expect(v.replayEntries).toBe(5);
    v.prune(100); // round 1 is outside the replay window of round 100
    expect(v.replayEntries).toBe(0);
    expect(v.replayEntriesEvicted).toBe(0); // pruning is not eviction
    expect(() => new AnnouncementValidator({ run, isAllowed: () => true, maxReplayEntries: 2 })).toThrow(
      /maxReplayEntries/,
    );
  });
});

describe('bounded node state', () => {
  it('holders, own announcements and replay state stay capped when setRound is never called', async () => {
    const [a, b] = await startNodes(
      await keys(2),
      { rebroadcastIntervalMs: 0, maxHolderEntries: 8, maxReplayEntries: 16 },
      nodes,
    );
    await a!.dial(b!.getMultiaddrs()[0]!);
    await a!.waitForGossipPeers(1);
    await b!.waitForGossipPeers(1);
    const refs: BlobRef[] = [];
    let maxHolders = 0;
    let maxReplay = 0;
    let maxOwn = 0;
    const n = 40;
    for (let round = 0; round < n; round++) {
      const ref = a!.putBlob(new Uint8Array([round, 1, 2, 3]));
      refs.push(ref);
      const got = nextEvent(b!, 'announcement:result', (x) => x.round === round);
      await a!.announceResult({ round, batchId: 0, blob: ref, nonce: 5 });
      await got;
      const mb = b!.metrics();
      maxHolders = Math.max(maxHolders, mb.holderEntries);
      maxReplay = Math.max(maxReplay, mb.replayEntries);
      maxOwn = Math.max(maxOwn, a!.metrics().ownAnnouncementEntries);
    }
    expect(a!.currentRound).toBeNull();
    expect(b!.currentRound).toBeNull();
    const mb = b!.metrics();
    expect(mb.announcementsAccepted).toBe(n);
    expect(maxHolders).toBeLessThanOrEqual(8);
    expect(mb.holderEntries).toBe(8);
    expect(mb.holderEntriesEvicted).toBe(n - 8);
    expect(maxReplay).toBeLessThanOrEqual(16);
    expect(mb.replayEntries + mb.replayEntriesEvicted).toBe(n);
    expect(maxOwn).toBeLessThanOrEqual(8);
    const ma = a!.metrics();
    expect(ma.ownAnnouncementEntries).toBe(8);
    expect(ma.ownAnnouncementEntriesEvicted).toBe(n - 8);
    // oldest evicted first: the newest blobs still have their holder, the oldest do not
    expect(b!.holders(refs[n - 1]!)).toEqual([a!.peerId]);
    expect(b!.holders(refs[0]!)).toEqual([]);
    expect(await b!.fetchBlob(refs[n - 1]!)).toEqual(new Uint8Array([n - 1, 1, 2, 3]));
    // replay protection for the newest round still holds: a validly signed older nonce is a replay
    const replay = nextEvent(b!, 'announcement:rejected', (r) => r.reason === 'replayed');
    await a!.announceResult({ round: n - 1, batchId: 0, blob: refs[n - 1]!, nonce: 4 });
    expect(await replay).toMatchObject({ reason: 'replayed', propagationSource: a!.peerId });
    // and a higher nonce is a re-broadcast, accepted
    const again = nextEvent(b!, 'announcement:result', (x) => x.round === n - 1 && x.nonce === 6);
    await a!.announceResult({ round: n - 1, batchId: 0, blob: refs[n - 1]!, nonce: 6 });
    await again;
    expect(b!.metrics().replayEntries).toBeLessThanOrEqual(16);
  });

  it('rejects bad caps with typed errors', async () => {
    await expect(createP2PNode({ runId: 'r', maxHolderEntries: 0 })).rejects.toMatchObject({
      code: 'INVALID_PARAMETER',
    });
    await expect(createP2PNode({ runId: 'r', maxReplayEntries: 1.5 })).rejects.toMatchObject({
      code: 'INVALID_PARAMETER',
    });
  });
});

describe('gossip bytes per round', () => {
  it('counts gossip in/out apart from blob payload bytes', async () => {
    const [a, b] = await startNodes(await keys(2), { rebroadcastIntervalMs: 0 }, nodes);
    a!.setRound(2);
    b!.setRound(2);
    await a!.dial(b!.getMultiaddrs()[0]!);
    await a!.waitForGossipPeers(1);
    await b!.waitForGossipPeers(1);
    const payload = new Uint8Array(1000).fill(7);
    const ref = a!.putBlob(payload);
    const got = nextEvent(b!, 'announcement:result');
    const recipients = await a!.announceResult({ round: 2, batchId: 0, blob: ref });
    await got;
    expect(recipients).toBe(1);
    expect(a!.metrics().rounds[2]).toEqual({
      bytesIn: 0,
      bytesOut: 0,
      gossipBytesIn: 0,
      gossipBytesOut: RESULT_ENVELOPE_BYTES * recipients,
    });
    expect(b!.metrics().rounds[2]).toEqual({
      bytesIn: 0,
      bytesOut: 0,
      gossipBytesIn: RESULT_ENVELOPE_BYTES,
      gossipBytesOut: 0,
    });
    expect(await b!.fetchBlob(ref)).toEqual(payload);
    await waitFor(() => a!.metrics().rounds[2]?.bytesOut === 1000, 'serve counted');
    expect(b!.metrics().rounds[2]).toEqual({
      bytesIn: 1000,
      bytesOut: 0,
      gossipBytesIn: RESULT_ENVELOPE_BYTES,
      gossipBytesOut: 0,
    });
    // a rejected (off-round) message still crossed the wire: counted as gossip in, in the receiver's round
    b!.setRound(3);
    const rejected = nextEvent(b!, 'announcement:rejected');
    await a!.announceFinished({ round: 9 }); // finished envelope: 1 + 2 + 73 + 1 + 64 = 141 bytes
    expect(await rejected).toMatchObject({ reason: 'off-round' });
    expect(b!.metrics().rounds[3]).toMatchObject({ bytesIn: 0, gossipBytesIn: 141 });
    expect(a!.metrics().rounds[2]!.gossipBytesOut).toBe(RESULT_ENVELOPE_BYTES + 141);
  });
});
