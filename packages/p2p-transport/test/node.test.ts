import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ComponentLogger, Logger } from '@libp2p/interface';
import { multiaddr } from '@multiformats/multiaddr';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type BlobRef, createP2PNode, hashBytes, type P2PNode, P2PTransportError } from '../src/index.js';
import { createPlainNode, docRequest, type PlainLibp2p, serveBlob } from './fixtures/plain-libp2p.js';
import { keys, nextEvent, pseudoRandomBytes, startNodes, stopAll, waitFor } from './helpers.js';

const nodes: P2PNode[] = [];
const plains: PlainLibp2p[] = [];
afterEach(async () => {
  await stopAll(nodes);
  await Promise.all(plains.splice(0).map((p) => Promise.resolve(p.stop()).catch(() => undefined)));
});

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'p2p-node-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

async function connect(a: P2PNode, b: P2PNode): Promise<void> {
  await a.dial(b.getMultiaddrs()[0]!);
}

describe('P2PNode lifecycle and inputs', () => {
  it('keeps its identity across restarts from a key file and logs through the given ComponentLogger', async () => {
    const lines: string[] = [];
    const components: string[] = [];
    const mk = (name: string): Logger => {
      const log = ((fmt: string, ...args: unknown[]) => {
        lines.push(`${name} ${fmt} ${args.join(' ')}`);
      }) as unknown as Logger;
      log.error = log;
      log.trace = () => undefined;
      log.enabled = true;
      log.newScope = (s: string) => mk(`${name}:${s}`);
      return log;
    };
    const logger: ComponentLogger = {
      forComponent: (n: string) => {
        components.push(n);
        return mk(n);
      },
    };
    const keyFile = join(dir, 'node.json');
    const a = await createP2PNode({ runId: 'r', keyFile, logger });
    nodes.push(a);
    await a.start();
    const id = a.peerId;
    await a.stop();
    await a.stop(); // idempotent
    const b = await createP2PNode({ runId: 'r', keyFile });
    nodes.push(b);
    expect(b.peerId).toBe(id);
    expect(components).toContain('psyche:p2p');
    expect(lines.some((l) => l.startsWith('psyche:p2p started'))).toBe(true);
  });

  it('rejects bad options and calls before start with typed errors', async () => {
    await expect(createP2PNode({ runId: '' })).rejects.toMatchObject({
      code: 'INVALID_PARAMETER',
      message: /runId/,
    });
    await expect(createP2PNode({ runId: 'r', maxConcurrentDownloads: 0 })).rejects.toThrow(
      /maxConcurrentDownloads/,
    );
    await expect(createP2PNode({ runId: 'r', allowlist: ['not-a-peer'] })).rejects.toThrow(/allowlist\[0\]/);
    const n = await createP2PNode({ runId: 'r' });
    nodes.push(n);
    const ref = { hashAlgorithm: 'sha256' as const, hash: new Uint8Array(32), size: 1 };
    await expect(n.fetchBlob(ref)).rejects.toMatchObject({ code: 'NOT_STARTED' });
    await n.start();
    await expect(n.fetchBlob({ ...ref, hash: new Uint8Array(3) })).rejects.toThrow(/ref.hash/);
    await expect(n.fetchBlob({ ...ref, size: -1 })).rejects.toThrow(/ref.size/);
    await expect(n.fetchBlob(ref)).rejects.toMatchObject({ code: 'NO_PROVIDERS' });
    await expect(n.announceResult({ round: -1, batchId: 0, blob: ref })).rejects.toThrow(
      /announcement.round/,
    );
    expect(() => n.setRound(1.5)).toThrow(/round/);
    await expect(n.dial('/not/a/multiaddr')).rejects.toMatchObject({ code: 'DIAL_FAILED' });
    await expect(n.dial('nonsense')).rejects.toMatchObject({ code: 'INVALID_PARAMETER', message: /target/ });
    await expect(n.addPeerAddresses(n.peerId, ['bad'])).rejects.toThrow(/addrs\[0\]/);
    // a locally stored blob is returned as a copy without network
    const local = n.putBlob(new Uint8Array([1, 2, 3]), { hashAlgorithm: 'blake3' });
    const copy = await n.fetchBlob(local);
    copy[0] = 99;
    expect(n.getBlob(local)).toEqual(new Uint8Array([1, 2, 3]));
  });
});

describe('gossip + blobs between nodes', () => {
  it('8 nodes each publish a result and every node fetches all others', async () => {
    const ks = await keys(8);
    const ns = await startNodes(ks, {}, nodes);
    for (const n of ns) n.setRound(1);
    // addresses known from the "coordinator"; gossip over a sparse ring (forwarded through the mesh)
    for (const n of ns)
      for (const m of ns) if (n !== m) await n.addPeerAddresses(m.peerId, m.getMultiaddrs());
    for (let i = 0; i < 8; i++) await connect(ns[i]!, ns[(i + 1) % 8]!);
    await Promise.all(ns.map((n) => n.waitForGossipPeers(2, { signal: AbortSignal.timeout(20_000) })));
    const payloads = ns.map((_, i) => pseudoRandomBytes(64 * 1024 + i, i + 1));
    const refs = ns.map((n, i) =>
      n.putBlob(payloads[i]!, { hashAlgorithm: i % 2 === 0 ? 'sha256' : 'blake3', round: 1 }),
    );
    const seen = ns.map(() => new Map<string, BlobRef>());
    for (const [i, n] of ns.entries()) {
      n.addEventListener('announcement:result', (e) => {
        seen[i]!.set(e.detail.from, {
          hashAlgorithm: e.detail.hashAlgorithm,
          hash: e.detail.hash,
          size: e.detail.size,
        });
      });
    }
    // announce until everyone has all 7 others (gossip mesh forms within a few heartbeats; re-broadcasts
    // carry nonce+1, as Psyche's rebroadcast does)
    const deadline = Date.now() + 30_000;
    while (!seen.every((m) => m.size === 7)) {
      if (Date.now() > deadline) throw new Error(`announcements incomplete: ${seen.map((m) => m.size)}`);
      await Promise.all(ns.map((n, i) => n.announceResult({ round: 1, batchId: i, blob: refs[i]! })));
      await waitFor(() => seen.every((m) => m.size === 7), 'announcements', 1500).catch(() => undefined);
    }
    const fetched = await Promise.all(
      ns.map((n, i) =>
        Promise.all(
          [...seen[i]!.values()].map((ref) => n.fetchBlob(ref, { signal: AbortSignal.timeout(60_000) })),
        ),
      ),
    );
    for (let i = 0; i < 8; i++) {
      const got = fetched[i]!.map(sha).sort();
      const want = payloads
        .filter((_, j) => j !== i)
        .map(sha)
        .sort();
      expect(got).toEqual(want);
      const m = ns[i]!.metrics();
      // each node received 7 payloads and served its own to 7 peers, all in round 1
      const sizes = payloads.map((p) => p.byteLength);
      const total = sizes.reduce((a, b) => a + b, 0);
      expect(m.rounds[1]!.bytesIn).toBe(total - sizes[i]!);
      expect(m.rounds[1]!.bytesOut).toBe(7 * sizes[i]!);
      expect(m.announcementsRejected.replayed).toBe(0);
      expect(m.peers.filter((p) => p.bytesIn > 0)).toHaveLength(7);
      for (const p of m.peers.filter((p) => p.bytesIn > 0)) {
        expect(p.latencyMs).toBeGreaterThan(0);
        expect(p.bandwidthBytesPerSec).toBeGreaterThan(0);
      }
    }
  });

  it('off-round announcements are rejected and counted; finished announcements are delivered', async () => {
    const [a, b] = await startNodes(await keys(2), {}, nodes);
    await connect(a!, b!);
    await b!.waitForGossipPeers(1);
    await a!.waitForGossipPeers(1);
    b!.setRound(10);
    const rejected = nextEvent(b!, 'announcement:rejected');
    await a!.announceFinished({ round: 3 });
    expect(await rejected).toMatchObject({ reason: 'off-round', propagationSource: a!.peerId });
    const finished = nextEvent(b!, 'announcement:finished');
    await a!.announceFinished({ round: 11 });
    expect(await finished).toMatchObject({ kind: 'finished', round: 11, from: a!.peerId });
    expect(b!.metrics().announcementsRejected['off-round']).toBe(1);
    expect(b!.metrics().announcementsAccepted).toBe(1);
  });

  it('rebroadcast (nonce + 1) reaches a peer that connected after the original announcement', async () => {
    const [a, b] = await startNodes(await keys(2), { rebroadcastIntervalMs: 100 }, nodes);
    a!.setRound(5);
    b!.setRound(5);
    const ref = a!.putBlob(new Uint8Array([9, 9, 9]));
    expect(await a!.announceResult({ round: 5, batchId: 1, blob: ref, nonce: 7 })).toBe(0); // nobody listening yet
    const got = nextEvent(b!, 'announcement:result');
    await connect(b!, a!);
    const ann = await got;
    expect(ann).toMatchObject({ round: 5, batchId: 1, from: a!.peerId });
    expect(ann.nonce).toBeGreaterThan(7); // a re-broadcast, never a replay of nonce 7
    // every further re-broadcast b receives carries a fresh nonce: none is ever counted as a replay
    const next = await nextEvent(b!, 'announcement:result');
    expect(next.nonce).toBeGreaterThan(ann.nonce);
    expect(b!.metrics().announcementsRejected.replayed).toBe(0);
  });

  it('a corrupting peer is rejected by hash, penalised, and the blob is fetched from another holder', async () => {
    const [holder, fetcher] = await startNodes(await keys(2), {}, nodes);
    const payload = pseudoRandomBytes(300_000, 99);
    const ref = holder!.putBlob(payload);
    const { node: liar } = await createPlainNode();
    plains.push(liar);
    await serveBlob(liar, ref.hash, payload, 'corrupt');
    await fetcher!.setAllowlist([holder!.peerId, liar.peerId.toString(), fetcher!.peerId]);
    await fetcher!.dial(liar.getMultiaddrs()[0]!.toString());
    await fetcher!.dial(holder!.getMultiaddrs()[0]!);
    await fetcher!.ping(liar.peerId.toString()); // liar has measured latency → ranked first
    const penalised = nextEvent(fetcher!, 'peer:penalised');
    const order: string[] = [];
    const got = await fetcher!.fetchBlob(ref, {
      providers: [holder!.peerId, liar.peerId.toString()],
      onProgress: (p) => {
        if (order.at(-1) !== p.peer) order.push(p.peer);
      },
    });
    expect(order).toEqual([liar.peerId.toString(), holder!.peerId]);
    expect(sha(got)).toBe(sha(payload));
    expect(await penalised).toEqual({ peer: liar.peerId.toString(), reason: 'hash mismatch' });
    const liarStats = fetcher!.metrics().peers.find((p) => p.peerId === liar.peerId.toString())!;
    expect(liarStats).toMatchObject({ hashMismatches: 1, fetchFailures: 1, fetchSuccesses: 0 });
    // a second fetch of a new blob now tries the honest holder first even though the liar is faster to ping
    const ref2 = holder!.putBlob(pseudoRandomBytes(1000, 5));
    const order2: string[] = [];
    await fetcher!.fetchBlob(ref2, {
      providers: [liar.peerId.toString(), holder!.peerId],
      onProgress: (p) => order2.push(p.peer),
    });
    expect(new Set(order2)).toEqual(new Set([holder!.peerId]));
  });

  it('timeouts and short streams fail over to the next holder', async () => {
    const [holder, fetcher] = await startNodes(
      await keys(2),
      { requestTimeoutMs: 1500, downloadTimeoutMs: 3000, fetchRetries: 0 },
      nodes,
    );
    const payload = pseudoRandomBytes(200_000, 3);
    const ref = holder!.putBlob(payload);
    const bad = await Promise.all(
      (['silent', 'stall-after-header', 'short'] as const).map(() => createPlainNode()),
    );
    plains.push(...bad.map((b) => b.node));
    await serveBlob(bad[0]!.node, ref.hash, payload, 'silent');
    await serveBlob(bad[1]!.node, ref.hash, payload, 'stall-after-header');
    await serveBlob(bad[2]!.node, ref.hash, payload, 'short');
    const [silent, stall, short] = bad.map((b) => b.node.peerId.toString()) as [string, string, string];
    await fetcher!.setAllowlist(null);
    for (const b of bad) await fetcher!.dial(b.node.getMultiaddrs()[0]!.toString());
    await fetcher!.dial(holder!.getMultiaddrs()[0]!);
    // measured latency ranks the stalling and the short server before the unmeasured honest holder
    await fetcher!.ping(stall);
    await fetcher!.ping(short);
    const got = await fetcher!.fetchBlob(ref, { providers: [holder!.peerId, stall, short] });
    expect(sha(got)).toBe(sha(payload));
    const stats = new Map(fetcher!.metrics().peers.map((p) => [p.peerId, p]));
    expect(stats.get(stall)!.fetchFailures).toBe(1); // stalled mid-body → downloadTimeoutMs
    expect(stats.get(short)!.fetchFailures).toBe(1); // short → "closed the stream after N of M bytes"
    expect(stats.get(holder!.peerId)!.fetchSuccesses).toBe(1);
    // with only bad holders the error lists each attempt and why it failed
    fetcher!.removeBlob(ref);
    const err = (await fetcher!
      .fetchBlob(ref, { providers: [silent, stall, short] })
      .catch((e: unknown) => e)) as P2PTransportError;
    expect(err).toBeInstanceOf(P2PTransportError);
    expect(err.code).toBe('FETCH_FAILED');
    const byPeer = Object.fromEntries(
      (err.details.attempts as Array<{ peer: string; code: string; message: string }>).map((a) => [
        a.peer,
        a,
      ]),
    );
    expect(byPeer[silent]).toMatchObject({
      code: 'TIMEOUT',
      message: expect.stringMatching(/no response header/),
    });
    expect(byPeer[stall]).toMatchObject({ code: 'TIMEOUT' });
    expect(byPeer[short]).toMatchObject({
      code: 'FETCH_FAILED',
      message: expect.stringMatching(/after 100000 of 200000/),
    });
    await expect(fetcher!.ping(silent)).rejects.toMatchObject({ code: 'TIMEOUT' });
  });

  it('an abort signal cancels a download with ABORTED', async () => {
    const [holder, fetcher] = await startNodes(await keys(2), { maxServeBytesPerSecond: 1_000_000 }, nodes);
    const ref = holder!.putBlob(pseudoRandomBytes(2_000_000, 8));
    await connect(fetcher!, holder!);
    const ac = new AbortController();
    const p = fetcher!.fetchBlob(ref, {
      providers: [holder!.peerId],
      signal: ac.signal,
      onProgress: (e) => {
        if (e.bytes > 0) ac.abort();
      },
    });
    await expect(p).rejects.toMatchObject({ code: 'ABORTED' });
    expect(fetcher!.hasBlob(ref)).toBe(false);
  });

  it('limits concurrent downloads and answers BUSY past the serve limit', async () => {
    const [holder, fetcher, other] = await startNodes(
      await keys(3),
      { maxConcurrentDownloads: 1, maxConcurrentServes: 1 },
      nodes,
    );
    const refs = [0, 1, 2].map((i) => holder!.putBlob(pseudoRandomBytes(400_000, 10 + i)));
    const big = holder!.putBlob(pseudoRandomBytes(4_000_000, 77));
    await connect(fetcher!, holder!);
    await connect(other!, holder!);
    // a plain member requests 4 MB and never reads: it holds the holder's only serve slot (back-pressure)
    const { node: plain } = await createPlainNode();
    plains.push(plain);
    const plainId = plain.peerId.toString();
    await holder!.setAllowlist([holder!.peerId, fetcher!.peerId, other!.peerId, plainId]);
    const stalled = await plain.dialProtocol(multiaddr(holder!.getMultiaddrs()[0]!), '/psyche/blob/1.0.0');
    stalled.pause(); // stop reading: yamux flow control back-pressures the server
    stalled.send(docRequest(1, 1, big.hash));
    await waitFor(() => holder!.metrics().servesInFlight === 1, 'stalled transfer occupies the slot');
    const busy = (await other!
      .fetchBlob(refs[0]!, { providers: [holder!.peerId] })
      .catch((e: unknown) => e)) as P2PTransportError;
    expect(busy.code).toBe('FETCH_FAILED');
    // 1 attempt + fetchRetries (3) retry rounds, each answered BUSY
    const attempts = busy.details.attempts as Array<{ code: string; message: string }>;
    expect(attempts).toHaveLength(4);
    for (const a of attempts)
      expect(a).toMatchObject({ code: 'REMOTE_ERROR', message: expect.stringMatching(/BUSY/) });
    expect(holder!.metrics().blobRequestsRefused).toBe(4);
    stalled.abort(new Error('test done with the stalled reader'));
    await waitFor(() => holder!.metrics().servesInFlight === 0, 'slot released after the reader went away');
    // three concurrent fetches with maxConcurrentDownloads = 1 run one after another
    const events: string[] = [];
    await Promise.all(
      refs.map((ref, i) =>
        fetcher!.fetchBlob(ref, {
          providers: [holder!.peerId],
          onProgress: (p) => {
            if (events.at(-1) !== `progress ${i}`) events.push(`progress ${i}`);
            if (p.bytes === p.total) events.push(`done ${i}`);
          },
        }),
      ),
    );
    expect(events).toEqual(['progress 0', 'done 0', 'progress 1', 'done 1', 'progress 2', 'done 2']);
  });

  it('a reader that stalls is cut off after serveTimeoutMs', async () => {
    const [holder] = await startNodes(await keys(1), { serveTimeoutMs: 300, allowlist: null }, nodes);
    const big = holder!.putBlob(pseudoRandomBytes(4_000_000, 78));
    const { node: plain } = await createPlainNode();
    plains.push(plain);
    const stalled = await plain.dialProtocol(multiaddr(holder!.getMultiaddrs()[0]!), '/psyche/blob/1.0.0');
    stalled.pause();
    stalled.send(docRequest(1, 1, big.hash));
    await waitFor(() => holder!.metrics().servesInFlight === 1, 'transfer started');
    await waitFor(() => holder!.metrics().servesInFlight === 0, 'stalled transfer aborted by serveTimeoutMs');
    expect(holder!.metrics().blobRequestsServed).toBe(0);
  });

  it('fetches a checkpoint to a file in chunks and resumes after an abort', async () => {
    const [h1, h2, fetcher] = await startNodes(await keys(3), {}, nodes);
    const payload = pseudoRandomBytes(3 * 1024 * 1024 + 123, 21);
    const ref = h1!.putBlob(payload, { hashAlgorithm: 'blake3' });
    h2!.putBlob(payload, { hashAlgorithm: 'blake3' });
    await connect(fetcher!, h1!);
    await connect(fetcher!, h2!);
    const path = join(dir, 'ckpt.bin');
    const ac = new AbortController();
    const first = fetcher!.fetchBlobToFile(ref, path, {
      providers: [h1!.peerId, h2!.peerId],
      chunkBytes: 256 * 1024,
      signal: ac.signal,
      onProgress: (p) => {
        if (p.bytes >= 1024 * 1024) ac.abort();
      },
    });
    await expect(first).rejects.toMatchObject({ code: 'ABORTED' });
    const partSize = (await stat(`${path}.part`)).size;
    expect(partSize % (256 * 1024)).toBe(0); // only whole chunks are written
    expect(partSize).toBeGreaterThanOrEqual(768 * 1024);
    const progress: number[] = [];
    const res = await fetcher!.fetchBlobToFile(ref, path, {
      providers: [h2!.peerId, h1!.peerId],
      chunkBytes: 256 * 1024,
      onProgress: (p) => progress.push(p.bytes),
    });
    expect(res.resumedFromBytes).toBe(partSize);
    expect(Math.min(...progress)).toBeGreaterThan(partSize);
    const file = await readFile(path);
    expect(sha(file)).toBe(sha(payload));
    await expect(stat(`${path}.part`)).rejects.toThrow(/ENOENT/);
  });

  it('a late joiner fetches a file-backed checkpoint; a file changed after registration is caught by hash', async () => {
    const [h1, h2, joiner] = await startNodes(await keys(3), {}, nodes);
    const { writeFile } = await import('node:fs/promises');
    const payload = pseudoRandomBytes(2 * 1024 * 1024 + 7, 31);
    const [src1, src2] = [join(dir, 'served-1.bin'), join(dir, 'served-2.bin')];
    await writeFile(src1, payload);
    await writeFile(src2, payload);
    const ref = await h1!.putBlobFile(src1, { hashAlgorithm: 'blake3' });
    expect(await h2!.putBlobFile(src2, { hashAlgorithm: 'blake3' })).toEqual(ref);
    expect(ref.size).toBe(payload.byteLength);
    expect(h1!.getBlob(ref)).toBeUndefined(); // not held in memory
    await connect(joiner!, h1!);
    await connect(joiner!, h2!);
    // h1's copy is overwritten on disk (same size, different bytes) after it was registered
    const tampered = payload.slice();
    tampered[1_000_000] = tampered[1_000_000]! ^ 0xff;
    await writeFile(src1, tampered);
    // whole-blob fetch: h1 first (pinged), rejected by hash, then h2
    await joiner!.ping(h1!.peerId);
    const got = await joiner!.fetchBlob(ref, { providers: [h1!.peerId, h2!.peerId] });
    expect(sha(got)).toBe(sha(payload));
    expect(joiner!.metrics().peers.find((p) => p.peerId === h1!.peerId)!.hashMismatches).toBe(1);
    // chunked file fetch from the honest file-backed holder
    const out = join(dir, 'joined.bin');
    const res = await joiner!.fetchBlobToFile(ref, out, { providers: [h2!.peerId], chunkBytes: 512 * 1024 });
    expect(res).toMatchObject({ resumedFromBytes: 0, peers: [h2!.peerId] });
    expect(sha(await readFile(out))).toBe(sha(payload));
    await expect(h1!.putBlobFile(join(dir, 'missing.bin'))).rejects.toMatchObject({
      code: 'INVALID_PARAMETER',
    });
  });

  it('a corrupted part file is caught by the final hash check and deleted', async () => {
    const [h1, fetcher] = await startNodes(await keys(2), {}, nodes);
    const payload = pseudoRandomBytes(600_000, 4);
    const ref = h1!.putBlob(payload);
    await connect(fetcher!, h1!);
    const path = join(dir, 'bad-ckpt.bin');
    const { writeFile } = await import('node:fs/promises');
    await writeFile(`${path}.part`, new Uint8Array(100_000).fill(1)); // wrong bytes on disk
    await expect(
      fetcher!.fetchBlobToFile(ref, path, { providers: [h1!.peerId], chunkBytes: 100_000 }),
    ).rejects.toMatchObject({
      code: 'HASH_MISMATCH',
    });
    await expect(stat(`${path}.part`)).rejects.toThrow(/ENOENT/);
    const ok = await fetcher!.fetchBlobToFile(ref, path, { providers: [h1!.peerId], chunkBytes: 100_000 });
    expect(ok.resumedFromBytes).toBe(0);
    expect(sha(await readFile(path))).toBe(sha(payload));
    expect(hashBytes(payload, 'sha256')).toEqual(ref.hash);
  });
});

describe('allowlist gater', () => {
  it('an outsider cannot connect or fetch; removed members are disconnected', async () => {
    const ks = await keys(3);
    const [a, b] = await startNodes(ks.slice(0, 2), {}, nodes);
    const [outsider] = await startNodes([ks[2]!], { allowlist: null }, nodes);
    const ref = a!.putBlob(pseudoRandomBytes(10_000, 1));
    const aConnects: string[] = [];
    a!.addEventListener('peer:connect', (e) => aConnects.push(e.detail));
    // a's gater refuses right after the noise handshake: the initiator may briefly see a connection that
    // a closes immediately, or a failed dial
    await outsider!
      .dial(a!.getMultiaddrs()[0]!)
      .catch((e: unknown) => expect(e).toBeInstanceOf(P2PTransportError));
    await waitFor(() => a!.metrics().connectionsDenied >= 1, 'gater denial counted');
    await waitFor(() => !outsider!.getConnectedPeers().includes(a!.peerId), 'outsider connection closed');
    await outsider!.addPeerAddresses(a!.peerId, a!.getMultiaddrs());
    await expect(outsider!.fetchBlob(ref, { providers: [a!.peerId] })).rejects.toMatchObject({
      code: 'FETCH_FAILED',
    });
    await expect(a!.dial(outsider!.getMultiaddrs()[0]!)).rejects.toMatchObject({ code: 'PEER_NOT_ALLOWED' });
    expect(a!.getConnectedPeers()).not.toContain(outsider!.peerId);
    expect(aConnects).not.toContain(outsider!.peerId);
    expect(a!.metrics().blobRequestsServed).toBe(0);
    // a plain libp2p outsider cannot open the blob protocol either
    const { node: plain } = await createPlainNode();
    plains.push(plain);
    await expect(
      plain.dialProtocol(multiaddr(a!.getMultiaddrs()[0]!), '/psyche/blob/1.0.0'),
    ).rejects.toThrow();
    await waitFor(() => a!.metrics().connectionsDenied >= 2, 'second gater denial counted');
    // member b connects and fetches; then the coordinator removes b
    await connect(b!, a!);
    expect(sha(await b!.fetchBlob(ref, { providers: [a!.peerId] }))).toBe(sha(a!.getBlob(ref)!));
    const gone = nextEvent(a!, 'peer:disconnect', (p) => p === b!.peerId);
    await a!.setAllowlist([a!.peerId]);
    await gone;
    b!.removeBlob(ref);
    await expect(b!.fetchBlob(ref, { providers: [a!.peerId] })).rejects.toMatchObject({
      code: 'FETCH_FAILED',
    });
  });
});
