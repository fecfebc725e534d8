/**
 * Hostile input over real connections: a plain js-libp2p member sends malformed blob frames and bad gossip.
 * The node must answer or drop each, count it, and keep working.
 */
import { createHash } from 'node:crypto';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromString } from '@libp2p/peer-id';
import { multiaddr } from '@multiformats/multiaddr';
import { afterEach, describe, expect, it } from 'vitest';
import type { P2PNode, RejectionReason } from '../src/index.js';
import {
  createPlainNode,
  DOC_BLOB_PROTOCOL,
  docRequest,
  docResultAnnouncement,
  docTopic,
  type PlainLibp2p,
  readAll,
  send,
} from './fixtures/plain-libp2p.js';
import { keys, nextEvent, pseudoRandomBytes, startNodes, stopAll, waitFor } from './helpers.js';

const nodes: P2PNode[] = [];
const plains: PlainLibp2p[] = [];
afterEach(async () => {
  await stopAll(nodes);
  await Promise.all(plains.splice(0).map((p) => Promise.resolve(p.stop()).catch(() => undefined)));
});

const RUN = 'hostile-run';

describe('malformed input never crashes a node', () => {
  it('blob protocol: truncated, garbage, oversized, silent and aborted requests', async () => {
    const { node: plain, key: plainKey } = await createPlainNode();
    plains.push(plain);
    const ks = await keys(2);
    const [victim, friend] = await startNodes(
      ks,
      {
        runId: RUN,
        requestTimeoutMs: 300,
        allowlist: [...ks.map((k) => k.publicKey.raw), plainKey.publicKey.raw],
      },
      nodes,
    );
    const payload = pseudoRandomBytes(100_000, 2);
    const ref = victim!.putBlob(payload);
    await plain.dial(multiaddr(victim!.getMultiaddrs()[0]!));
    const open = () => plain.dialProtocol(peerIdFromString(victim!.peerId), DOC_BLOB_PROTOCOL);
    const status = (b: Uint8Array) => (b.byteLength >= 2 ? b[1] : undefined);

    // 1. 10 bytes, then close: "stream ended after 10 of 52 bytes" → malformed, stream dropped
    let s = await open();
    s.send(new Uint8Array(10).fill(1));
    await s.close();
    await readAll(s).catch(() => new Uint8Array(0));
    // 2. 52 bytes of garbage → BAD_REQUEST (3)
    s = await open();
    s.send(new Uint8Array(52).fill(0xee));
    expect(status(await readAll(s))).toBe(3);
    // 3. a valid frame with an unknown op → BAD_REQUEST
    const badOp = docRequest(1, 1, ref.hash);
    badOp[1] = 9;
    s = await open();
    s.send(badOp);
    expect(status(await readAll(s))).toBe(3);
    // 4. 1 MB of junk → the first 52 bytes are judged, BAD_REQUEST, the rest ignored
    s = await open();
    const junk = send(s, pseudoRandomBytes(1_000_000, 3)).catch(() => undefined);
    expect(status(await readAll(s).catch(() => new Uint8Array(0)))).toBe(3);
    await junk;
    // 5. open and say nothing: the server gives up after requestTimeoutMs
    s = await open();
    await expect(readAll(s)).rejects.toThrow();
    // 6. send half a request and abort
    s = await open();
    s.send(new Uint8Array(20));
    s.abort(new Error('client gave up'));

    await waitFor(() => victim!.metrics().malformedFrames >= 4, 'malformed frames counted');
    const m = victim!.metrics();
    expect(m.malformedFrames).toBeGreaterThanOrEqual(4); // 1–4 for sure; 6 may count as reset instead
    expect(m.blobRequestsServed).toBe(0);
    // still healthy: a member fetches normally
    await friend!.dial(victim!.getMultiaddrs()[0]!);
    const got = await friend!.fetchBlob(ref, { providers: [victim!.peerId] });
    expect(createHash('sha256').update(got).digest()).toEqual(Buffer.from(ref.hash));
    expect(victim!.isStarted).toBe(true);
  });

  it('gossip: every bad announcement is rejected with its reason and counted', async () => {
    const { node: plain, key: plainKey } = await createPlainNode();
    plains.push(plain);
    const ks = await keys(1);
    const [victim] = await startNodes(
      ks,
      { runId: RUN, allowlist: [ks[0]!.publicKey.raw, plainKey.publicKey.raw], gossipSeenTtlMs: 100 },
      nodes,
    );
    victim!.setRound(7);
    const topic = docTopic(RUN);
    plain.services.pubsub.subscribe(topic);
    await plain.dial(multiaddr(victim!.getMultiaddrs()[0]!));
    await victim!.waitForGossipPeers(1, { signal: AbortSignal.timeout(20_000) });
    await waitFor(() => plain.services.pubsub.getSubscribers(topic).length === 1, 'plain sees the victim');
    const hash = new Uint8Array(32).fill(3);
    const ann = (o: Partial<Parameters<typeof docResultAnnouncement>[0]> = {}) =>
      docResultAnnouncement({
        key: plainKey,
        runId: RUN,
        round: 7,
        nonce: 5,
        batchId: 1,
        hashAlg: 1,
        hash,
        size: 10,
        ...o,
      });
    const outsiderKey = await generateKeyPair('Ed25519');
    const cases: Array<[RejectionReason | 'accepted', Uint8Array]> = [
      ['malformed', pseudoRandomBytes(100, 9)],
      ['oversized', new Uint8Array(5000)],
      ['unsigned', await ann({ signature: 'none' })],
      ['bad-signature', await ann({ signature: 'garbage' })],
      ['not-allowed', await ann({ key: outsiderKey })],
      ['wrong-run', await ann({ runId: 'some-other-run' })],
      ['off-round', await ann({ round: 3 })],
      ['accepted', await ann()],
      ['replayed', await ann({ nonce: 4 })], // older nonce for the same (signer, round, batch)
    ];
    for (const [expected, data] of cases) {
      const outcome =
        expected === 'accepted'
          ? nextEvent(victim!, 'announcement:result').then(() => 'accepted')
          : nextEvent(victim!, 'announcement:rejected').then((r) => r.reason);
      await plain.services.pubsub.publish(topic, data);
      expect(await outcome).toBe(expected);
    }
    // the identical accepted bytes, re-sent after the gossip seen-cache forgot them, are a replay too
    const again = await ann();
    const replay = nextEvent(victim!, 'announcement:rejected', (r) => r.reason === 'replayed', 20_000);
    const timer = setInterval(
      () => void plain.services.pubsub.publish(topic, again).catch(() => undefined),
      300,
    );
    try {
      await replay;
    } finally {
      clearInterval(timer);
    }
    const m = victim!.metrics();
    expect(m.announcementsAccepted).toBe(1);
    expect(m.announcementsRejected).toMatchObject({
      malformed: 1,
      oversized: 1,
      unsigned: 1,
      'bad-signature': 1,
      'not-allowed': 1,
      'wrong-run': 1,
      'off-round': 1,
    });
    expect(m.announcementsRejected.replayed).toBeGreaterThanOrEqual(2);
    expect(victim!.holders({ hashAlgorithm: 'sha256', hash })).toEqual([plain.peerId.toString()]);
  });
});
