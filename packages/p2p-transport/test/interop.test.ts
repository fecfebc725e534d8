/**
 * Interop with a plain js-libp2p node that does not use this package: everything it does is written from
 * docs/p2p-protocol.md in test/fixtures/plain-libp2p.ts (own framing, own signing, own hashing).
 */
import { createHash, createPublicKey, verify } from 'node:crypto';
import { peerIdFromString } from '@libp2p/peer-id';
import { multiaddr } from '@multiformats/multiaddr';
import { afterEach, describe, expect, it } from 'vitest';
import type { P2PNode } from '../src/index.js';
import {
  createPlainNode,
  DOC_BLOB_PROTOCOL,
  docRequest,
  docResultAnnouncement,
  docTopic,
  type PlainLibp2p,
  readAll,
  serveBlob,
} from './fixtures/plain-libp2p.js';
import { keys, nextEvent, pseudoRandomBytes, startNodes, stopAll, waitFor } from './helpers.js';

const nodes: P2PNode[] = [];
const plains: PlainLibp2p[] = [];
afterEach(async () => {
  await stopAll(nodes);
  await Promise.all(plains.splice(0).map((p) => Promise.resolve(p.stop()).catch(() => undefined)));
});

const RUN = 'interop-run';

async function setup(): Promise<{
  ours: P2PNode;
  plain: PlainLibp2p;
  plainKey: Awaited<ReturnType<typeof createPlainNode>>['key'];
}> {
  const { node: plain, key: plainKey } = await createPlainNode();
  plains.push(plain);
  const [ourKey] = await keys(1);
  const [ours] = await startNodes(
    [ourKey!],
    { runId: RUN, allowlist: [plainKey.publicKey.raw, ourKey!.publicKey.raw] },
    nodes,
  );
  plain.services.pubsub.subscribe(docTopic(RUN));
  await plain.dial(multiaddr(ours!.getMultiaddrs()[0]!));
  await ours!.waitForGossipPeers(1, { signal: AbortSignal.timeout(20_000) });
  await waitFor(
    () => plain.services.pubsub.getSubscribers(docTopic(RUN)).length === 1,
    'plain sees our subscription',
  );
  return { ours: ours!, plain, plainKey };
}

describe('interop with a plain js-libp2p node following docs/p2p-protocol.md', () => {
  it('our node accepts the plain node’s signed announcement; the plain node verifies ours by hand', async () => {
    const { ours, plain, plainKey } = await setup();
    const hash = createHash('sha256').update('x').digest();
    const got = nextEvent(ours, 'announcement:result');
    await plain.services.pubsub.publish(
      docTopic(RUN),
      await docResultAnnouncement({
        key: plainKey,
        runId: RUN,
        round: 4,
        nonce: 0,
        batchId: 9,
        hashAlg: 1,
        hash,
        size: 1,
      }),
    );
    expect(await got).toMatchObject({
      kind: 'result',
      round: 4,
      batchId: 9,
      size: 1,
      from: plain.peerId.toString(),
    });

    const received = new Promise<Uint8Array>((resolve) => {
      plain.services.pubsub.addEventListener('message', (e) => resolve(e.detail.data), { once: true });
    });
    const ref = ours.putBlob(new Uint8Array([1, 2, 3]), { hashAlgorithm: 'blake3' });
    await ours.announceResult({ round: 4, batchId: 2, blob: ref });
    const env = await received;
    // §3 envelope: version | body_len | body | sig_len | sig
    expect(env[0]).toBe(1);
    const bodyLen = new DataView(env.buffer, env.byteOffset).getUint16(1);
    expect(bodyLen).toBe(118);
    const body = env.subarray(3, 3 + bodyLen);
    expect(env[3 + bodyLen]).toBe(64);
    const sig = env.subarray(4 + bodyLen);
    const signer = body.subarray(33, 65);
    expect(Buffer.from(signer)).toEqual(Buffer.from(ours.publicKey));
    const spki = Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), Buffer.from(signer)]);
    const msg = Buffer.concat([Buffer.from('psyche-announcement/1'), Buffer.from(body)]);
    expect(
      verify(null, msg, createPublicKey({ key: spki, format: 'der', type: 'spki' }), Buffer.from(sig)),
    ).toBe(true);
    const v = new DataView(body.buffer, body.byteOffset, body.byteLength);
    expect([body[0], v.getUint32(65), v.getUint32(73), body[77], Number(v.getBigUint64(110))]).toEqual([
      1, 4, 2, 2, 3,
    ]);
    expect(Buffer.from(body.subarray(78, 110))).toEqual(Buffer.from(ref.hash));
  });

  it('the plain node fetches a blob (whole and ranged) and pings over /psyche/blob/1.0.0', async () => {
    const { ours, plain } = await setup();
    const payload = pseudoRandomBytes(700_000, 5);
    const ref = ours.putBlob(payload);
    const get = async (req: Uint8Array): Promise<{ status: number; total: number; payload: Uint8Array }> => {
      const s = await plain.dialProtocol(peerIdFromString(ours.peerId), DOC_BLOB_PROTOCOL);
      s.send(req);
      const all = await readAll(s);
      const v = new DataView(all.buffer, all.byteOffset, all.byteLength);
      expect(all[0]).toBe(1);
      return { status: all[1]!, total: Number(v.getBigUint64(2)), payload: all.subarray(10) };
    };
    const whole = await get(docRequest(1, 1, ref.hash));
    expect(whole.status).toBe(0);
    expect(whole.total).toBe(700_000);
    expect(createHash('sha256').update(whole.payload).digest()).toEqual(Buffer.from(ref.hash));
    const ranged = await get(docRequest(1, 1, ref.hash, 100_000, 5));
    expect(ranged).toMatchObject({ status: 0, total: 700_000 });
    expect(Array.from(ranged.payload)).toEqual(Array.from(payload.subarray(100_000, 100_005)));
    const tail = await get(docRequest(1, 1, ref.hash, 699_990, 0));
    expect(tail.payload.byteLength).toBe(10);
    expect(await get(docRequest(2, 0, new Uint8Array(32)))).toMatchObject({ status: 0, total: 0 });
    expect(await get(docRequest(1, 2, ref.hash))).toMatchObject({ status: 1 }); // blake3 address unknown
    expect(await get(docRequest(1, 1, ref.hash, 700_001, 0))).toMatchObject({ status: 5, total: 700_000 });
    expect(ours.metrics().blobRequestsServed).toBe(3);
    expect(ours.metrics().peers.find((p) => p.peerId === plain.peerId.toString())!.bytesOut).toBe(
      700_000 + 5 + 10,
    );
  });

  it('our node fetches from the plain node’s hand-written server and verifies with BLAKE3', async () => {
    const { ours, plain } = await setup();
    const payload = pseudoRandomBytes(500_000, 6);
    const { blake3 } = await import('@noble/hashes/blake3.js');
    const hash = blake3(payload);
    await serveBlob(plain, hash, payload, 'honest');
    const got = await ours.fetchBlob(
      { hashAlgorithm: 'blake3', hash, size: payload.byteLength },
      { providers: [plain.peerId.toString()] },
    );
    expect(Buffer.compare(Buffer.from(got), Buffer.from(payload))).toBe(0);
    expect(await ours.ping(plain.peerId.toString())).toBeGreaterThan(0);
  });
});
