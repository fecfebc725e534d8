/**
 * Benchmarks for @psyche/p2p-transport over loopback (127.0.0.1), all nodes in this one process:
 *  1. blob fetch throughput (MB/s) for 1, 10 and 100 MB blobs, including SHA-256 verification, against a
 *     raw TCP socket baseline moving the same bytes (no encryption, muxing or hashing);
 *  2. all-gather: N = 2..16 nodes each publish one 1 MB result; time until every node has fetched all
 *     N−1 others (announce → fetch → verify).
 * Writes `bench-results/p2p-transport.json` at the repository root.
 *
 * Run: `pnpm --filter @psyche/p2p-transport bench`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, connect as netConnect } from 'node:net';
import { cpus, loadavg } from 'node:os';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { tcp } from '@libp2p/tcp';
import { createLibp2p } from 'libp2p';
import { type BlobRef, createP2PNode, type P2PNode } from '../src/index.js';

const MB = 1_000_000;

function bytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i += 4) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
    out[i + 1] = (x >>> 8) & 0xff;
    out[i + 2] = (x >>> 16) & 0xff;
    out[i + 3] = (x >>> 24) & 0xff;
  }
  return out;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

async function node(allowlist: null | string[] = null): Promise<P2PNode> {
  const n = await createP2PNode({ runId: 'bench', allowlist, keepFetched: false, maxBlobBytes: 200 * MB });
  await n.start();
  return n;
}

/** Raw TCP: server writes `data`, client reads until EOF. Returns seconds. */
async function rawTcp(data: Uint8Array): Promise<number> {
  const server = createServer((sock) => {
    sock.end(data);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const t0 = performance.now();
  await new Promise<void>((resolve, reject) => {
    let got = 0;
    const c = netConnect(port, '127.0.0.1');
    c.on('data', (d: Buffer) => {
      got += d.byteLength;
    });
    c.on('end', () => (got === data.byteLength ? resolve() : reject(new Error(`got ${got}`))));
    c.on('error', reject);
  });
  const s = (performance.now() - t0) / 1000;
  await new Promise((r) => server.close(r));
  return s;
}

/**
 * libp2p baseline without this package's protocol: a plain js-libp2p pair (tcp + noise + yamux) streaming
 * the bytes in 256 KiB writes, no hashing. Separates libp2p's cost from the blob protocol's.
 */
async function plainLibp2pPair(): Promise<{
  get: (data: Uint8Array) => Promise<number>;
  stop: () => Promise<void>;
}> {
  const mk = () =>
    createLibp2p({
      addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
    });
  const [server, client] = await Promise.all([mk(), mk()]);
  let payload: Uint8Array = new Uint8Array(0);
  await server.handle('/bench/raw/1.0.0', async (stream) => {
    for (let i = 0; i < payload.byteLength; i += 256 * 1024) {
      if (!stream.send(payload.subarray(i, i + 256 * 1024))) await stream.onDrain();
    }
    await stream.close();
  });
  await client.dial(server.getMultiaddrs()[0]!);
  return {
    get: async (data) => {
      payload = data;
      const t0 = performance.now();
      const stream = await client.dialProtocol(server.peerId, '/bench/raw/1.0.0');
      let got = 0;
      for await (const chunk of stream) got += chunk.byteLength;
      if (got !== data.byteLength) throw new Error(`raw libp2p got ${got}`);
      return (performance.now() - t0) / 1000;
    },
    stop: async () => {
      await Promise.all([server.stop(), client.stop()]);
    },
  };
}

async function throughput(): Promise<Record<string, unknown>[]> {
  const results: Record<string, unknown>[] = [];
  const holder = await node();
  const fetcher = await node();
  await fetcher.dial(holder.getMultiaddrs()[0]!);
  const plain = await plainLibp2pPair();
  for (const [size, iters] of [
    [1 * MB, 5],
    [10 * MB, 3],
    [100 * MB, 2],
  ] as const) {
    const data = bytes(size, size);
    const ref = holder.putBlob(data);
    await fetcher.fetchBlob(ref, { providers: [holder.peerId] }); // warm-up (stream setup, JIT)
    const p2p: number[] = [];
    const tcpTimes: number[] = [];
    const lp: number[] = [];
    await plain.get(data); // warm-up
    for (let i = 0; i < iters; i++) {
      const t0 = performance.now();
      const got = await fetcher.fetchBlob(ref, { providers: [holder.peerId] });
      p2p.push((performance.now() - t0) / 1000);
      if (got.byteLength !== size) throw new Error('size mismatch');
      tcpTimes.push(await rawTcp(data));
      lp.push(await plain.get(data));
    }
    holder.removeBlob(ref);
    const row = {
      bench: 'blob-throughput',
      sizeMB: size / MB,
      iters,
      p2pMedianSeconds: median(p2p),
      p2pMBps: size / MB / median(p2p),
      rawTcpMBps: size / MB / median(tcpTimes),
      plainLibp2pMedianSeconds: median(lp),
      plainLibp2pMBps: size / MB / median(lp),
      rawTcpMedianSeconds: median(tcpTimes),
      p2pVsRawTcp: median(tcpTimes) / median(p2p),
      p2pVsPlainLibp2p: median(lp) / median(p2p),
      note: 'p2p = noise + yamux + blob protocol + SHA-256 verify; plain libp2p = noise + yamux stream, no hashing; raw TCP = plain socket',
    };
    console.log(JSON.stringify(row));
    results.push(row);
  }
  await Promise.all([holder.stop(), fetcher.stop(), plain.stop()]);
  return results;
}

async function allGather(n: number): Promise<Record<string, unknown>> {
  const nodes = await Promise.all(Array.from({ length: n }, () => node()));
  for (const a of nodes)
    for (const b of nodes) if (a !== b) await a.addPeerAddresses(b.peerId, b.getMultiaddrs());
  for (let i = 0; i < n; i++) await nodes[i]!.dial(nodes[(i + 1) % n]!.peerId);
  await Promise.all(
    nodes.map((x) => x.waitForGossipPeers(Math.min(2, n - 1), { signal: AbortSignal.timeout(60_000) })),
  );
  for (const x of nodes) x.setRound(1);
  const refs = nodes.map((x, i) => x.putBlob(bytes(MB, 1000 + i), { round: 1 }));
  const t0 = performance.now();
  const done = nodes.map(
    (x) =>
      new Promise<void>((resolve, reject) => {
        const fetches: Promise<Uint8Array>[] = [];
        x.addEventListener('announcement:result', (e) => {
          const ref: BlobRef = {
            hashAlgorithm: e.detail.hashAlgorithm,
            hash: e.detail.hash,
            size: e.detail.size,
          };
          if (x.hasBlob(ref) || fetches.length >= n - 1) return;
          fetches.push(x.fetchBlob(ref));
          if (fetches.length === n - 1) Promise.all(fetches).then(() => resolve(), reject);
        });
      }),
  );
  // announce, then re-broadcast every 500 ms until all are done (gossip mesh forming)
  const announce = () =>
    Promise.all(nodes.map((x, i) => x.announceResult({ round: 1, batchId: i, blob: refs[i]! })));
  await announce();
  let finished = false;
  const all = Promise.all(done).then(() => {
    finished = true;
  });
  while (!finished) {
    await Promise.race([all, new Promise((r) => setTimeout(r, 500))]);
    if (!finished) await announce();
  }
  const seconds = (performance.now() - t0) / 1000;
  const bytesIn = nodes.reduce((s, x) => s + (x.metrics().rounds[1]?.bytesIn ?? 0), 0);
  await Promise.all(nodes.map((x) => x.stop()));
  const row = {
    bench: 'all-gather-1MB',
    nodes: n,
    seconds,
    totalMBMoved: bytesIn / MB,
    aggregateMBps: bytesIn / MB / seconds,
  };
  console.log(JSON.stringify(row));
  return row;
}

const results: Record<string, unknown>[] = [];
results.push(...(await throughput()));
for (const n of [2, 4, 8, 12, 16]) {
  try {
    results.push(await allGather(n));
  } catch (e) {
    // On an overloaded shared machine libp2p's own 10 s dial/negotiation timeouts can fire; record it.
    const row = {
      bench: 'all-gather-1MB',
      nodes: n,
      error: (e as Error).message.slice(0, 300),
      loadavg: loadavg(),
    };
    console.log(JSON.stringify(row));
    results.push(row);
  }
}

const out = new URL('../../../bench-results/p2p-transport.json', import.meta.url);
mkdirSync(new URL('.', out), { recursive: true });
writeFileSync(
  out,
  `${JSON.stringify(
    {
      package: '@psyche/p2p-transport',
      date: new Date().toISOString(),
      machine: {
        cpus: cpus().length,
        node: process.version,
        backend: 'libp2p tcp+noise+yamux, loopback',
        loadavg: loadavg(),
      },
      results,
    },
    null,
    2,
  )}\n`,
);
console.log(`wrote ${out.pathname}`);
