import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type BlobRef, generateKeyFile, type P2PNode, peerIdFromKey } from '../src/index.js';
import { keys, nextEvent, pseudoRandomBytes, startNodes, stopAll } from './helpers.js';

const require = createRequire(import.meta.url);
const TSX = pathToFileURL(require.resolve('tsx')).href;
const POLYFILLS = pathToFileURL(
  fileURLToPath(new URL('../../../scripts/polyfills.mjs', import.meta.url)),
).href;
const PEER = fileURLToPath(new URL('./fixtures/peer-process.ts', import.meta.url));

interface Ready {
  peerId: string;
  addrs: string[];
  ref: { hashAlgorithm: 'sha256' | 'blake3'; hash: string; size: number };
}

const children: ChildProcess[] = [];
const nodes: P2PNode[] = [];
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'p2p-mp-'));
});
afterEach(async () => {
  await stopAll(nodes);
  for (const c of children.splice(0)) {
    if (c.exitCode === null && c.signalCode === null) {
      c.kill('SIGKILL');
      await new Promise((r) => c.once('exit', r));
    }
  }
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Spawns a peer process and resolves with its READY line. */
function spawnPeer(config: Record<string, unknown>): Promise<{ child: ChildProcess; ready: Ready }> {
  const child = spawn(
    process.execPath,
    ['--conditions=@psyche/source', '--import', TSX, '--import', POLYFILLS, PEER, JSON.stringify(config)],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(
      () => reject(new Error(`peer process not ready after 60 s; stderr: ${err}`)),
      60_000,
    );
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.startsWith('READY '));
      if (line !== undefined) {
        clearTimeout(timer);
        resolve({ child, ready: JSON.parse(line.slice(6)) as Ready });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`peer process exited with ${code}; stderr: ${err}`));
    });
  });
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

describe('across processes', () => {
  it('a holder killed mid-transfer: the fetch completes from another holder process', async () => {
    const [k1, k2] = [join(dir, 'a.json'), join(dir, 'b.json')];
    const ids = [
      peerIdFromKey(await generateKeyFile(k1)).toString(),
      peerIdFromKey(await generateKeyFile(k2)).toString(),
    ];
    const [fetcherKey] = await keys(1);
    const fetcherId = peerIdFromKey(fetcherKey!).toString();
    const allowlist = [...ids, fetcherId];
    const common = {
      runId: 'mp-run',
      allowlist,
      blobSeed: 1234,
      blobSize: 4_000_000,
      hashAlgorithm: 'blake3',
      round: 2,
    };
    // A serves at 1 MB/s (a 4 s transfer), B unthrottled; both hold the same result
    const [a, b] = await Promise.all([
      spawnPeer({ ...common, keyFile: k1, batchId: 0, maxServeBytesPerSecond: 1_000_000 }),
      spawnPeer({ ...common, keyFile: k2, batchId: 1, maxServeBytesPerSecond: 0 }),
    ]);
    expect([a.ready.peerId, b.ready.peerId]).toEqual(ids);
    const [fetcher] = await startNodes([fetcherKey!], { runId: 'mp-run', allowlist }, nodes);
    fetcher!.setRound(2);
    // both holders' gossip announcements arrive over real cross-process connections
    const fromA = nextEvent(fetcher!, 'announcement:result', (e) => e.from === ids[0]);
    const fromB = nextEvent(fetcher!, 'announcement:result', (e) => e.from === ids[1]);
    await fetcher!.dial(a.ready.addrs[0]!);
    await fetcher!.dial(b.ready.addrs[0]!);
    const [annA, annB] = await Promise.all([fromA, fromB]);
    expect(Buffer.from(annA.hash).toString('hex')).toBe(a.ready.ref.hash);
    expect(Buffer.from(annB.hash)).toEqual(Buffer.from(annA.hash));
    const ref: BlobRef = { hashAlgorithm: annA.hashAlgorithm, hash: annA.hash, size: annA.size };
    expect(fetcher!.holders(ref).sort()).toEqual([...ids].sort());
    await fetcher!.ping(ids[0]!); // A has measured latency, B not: A is tried first
    const sources: string[] = [];
    let killed = false;
    const bytes = await fetcher!.fetchBlob(ref, {
      onProgress: (p) => {
        if (sources.at(-1) !== p.peer) sources.push(p.peer);
        if (p.peer === ids[0] && !killed) {
          killed = true;
          a.child.kill('SIGKILL');
        }
      },
    });
    expect(killed).toBe(true);
    expect(sources).toEqual([ids[0], ids[1]]);
    expect(sha(bytes)).toBe(sha(pseudoRandomBytes(4_000_000, 1234)));
    const stats = new Map(fetcher!.metrics().peers.map((p) => [p.peerId, p]));
    expect(stats.get(ids[0]!)).toMatchObject({ fetchFailures: 1, fetchSuccesses: 0 });
    expect(stats.get(ids[0]!)!.bytesIn).toBeLessThan(4_000_000);
    expect(stats.get(ids[1]!)).toMatchObject({ fetchFailures: 0, fetchSuccesses: 1, bytesIn: 4_000_000 });
    // the fetched bytes and the whole transfer are accounted to round 2
    expect(fetcher!.metrics().rounds[2]!.bytesIn).toBe(stats.get(ids[0]!)!.bytesIn + 4_000_000);
  });
});
