import { writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createHttpFetcher,
  createTokenDataset,
  type DataServer,
  openHttpShards,
  openLocalShards,
  prepare,
  serveDirectory,
} from '../src/index.js';
import { type Fault, sampleText, startFaultServer, tempDir, writeShardSet } from './helpers.js';

function raw(url: string, path: string, headers: Record<string, string> = {}, method = 'GET') {
  const u = new URL(url);
  return new Promise<{
    status: number;
    headers: Record<string, string | string[] | undefined>;
    body: Buffer;
  }>((ok, fail) => {
    const req = request({ host: u.hostname, port: u.port, path, method, headers }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d) => parts.push(d));
      res.on('end', () => ok({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(parts) }));
    });
    req.on('error', fail);
    req.end();
  });
}

describe('serveDirectory', () => {
  let server: DataServer;
  const dir = tempDir();
  const data = Buffer.from(Array.from({ length: 100 }, (_, i) => i));
  beforeAll(async () => {
    writeFileSync(join(dir, 'f.bin'), data);
    writeFileSync(join(tempDir(), 'secret.txt'), 'no');
    server = await serveDirectory({ dir });
  });
  afterAll(() => server.close());

  it('binds 127.0.0.1 on an ephemeral port', () => {
    expect(server.url).toBe(`http://127.0.0.1:${server.port}/`);
    expect(server.port).toBeGreaterThan(0);
  });

  it('answers ranges with 206 and Content-Range, whole files with 200, HEAD without body', async () => {
    const full = await raw(server.url, '/f.bin');
    expect(full.status).toBe(200);
    expect(full.body).toEqual(data);
    expect(full.headers['accept-ranges']).toBe('bytes');
    const r = await raw(server.url, '/f.bin', { range: 'bytes=10-19' });
    expect(r.status).toBe(206);
    expect(r.headers['content-range']).toBe('bytes 10-19/100');
    expect(r.body).toEqual(data.subarray(10, 20));
    const open = await raw(server.url, '/f.bin', { range: 'bytes=95-' });
    expect(open.body).toEqual(data.subarray(95));
    const suffix = await raw(server.url, '/f.bin', { range: 'bytes=-3' });
    expect(suffix.headers['content-range']).toBe('bytes 97-99/100');
    const clipped = await raw(server.url, '/f.bin', { range: 'bytes=98-1000' });
    expect(clipped.body).toEqual(data.subarray(98));
    const head = await raw(server.url, '/f.bin', {}, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe('100');
    expect(head.body.length).toBe(0);
  });

  it('rejects bad ranges, methods and paths outside the directory, and counts them', async () => {
    const before = server.stats.rejected.total;
    expect((await raw(server.url, '/f.bin', { range: 'bytes=100-' })).status).toBe(416);
    expect((await raw(server.url, '/f.bin', { range: 'bytes=0-1,5-6' })).status).toBe(416);
    expect((await raw(server.url, '/f.bin', { range: 'bytes=9-3' })).status).toBe(416);
    expect((await raw(server.url, '/f.bin', {}, 'POST')).status).toBe(405);
    expect((await raw(server.url, '/%2e%2e/secret.txt')).status).toBe(404);
    expect((await raw(server.url, '/../../etc/passwd')).status).toBe(404);
    expect((await raw(server.url, '/')).status).toBe(404);
    expect((await raw(server.url, '/nope')).status).toBe(404);
    expect(server.stats.rejected.total - before).toBe(8);
    expect(server.stats.rejected.get('NOT_FOUND')).toBeGreaterThanOrEqual(4);
  });

  it('refuses to serve a missing directory', async () => {
    await expect(serveDirectory({ dir: join(dir, 'missing') })).rejects.toMatchObject({
      code: 'NOT_FOUND',
      details: { parameter: 'dir' },
    });
  });
});

describe('HTTP source', () => {
  const dir = tempDir();
  let server: DataServer;
  beforeAll(async () => {
    writeFileSync(join(dir, 'a.txt'), sampleText(120_000, 21));
    writeFileSync(join(dir, 'b.txt'), sampleText(80_000, 22));
    await prepare({
      inputs: [join(dir, '*.txt')],
      outDir: join(dir, 'shards'),
      shardTokens: 30_000,
      chunkBytes: 4096,
    });
    server = await serveDirectory({ dir: join(dir, 'shards') });
  });
  afterAll(() => server.close());

  it.each(['chunks', 'none'] as const)(
    'returns batches byte-identical to the local source (verify: %s)',
    async (verify) => {
      const local = createTokenDataset(await openLocalShards(join(dir, 'shards')), {
        seqLen: 64,
        shuffleSeed: 'run',
      });
      const http = createTokenDataset(await openHttpShards(server.url, { verify }), {
        seqLen: 64,
        shuffleSeed: 'run',
      });
      expect(http.numSequences).toBe(local.numSequences);
      for (const id of [
        { start: 0, end: 31 },
        { start: 500, end: 563 },
        { start: local.numSequences - 5, end: local.numSequences + 5 }, // crosses into epoch 1
      ]) {
        const [l, h] = await Promise.all([local.getBatch(id), http.getBatch(id)]);
        expect(Buffer.from(h.tokens.buffer)).toEqual(Buffer.from(l.tokens.buffer));
      }
      const plainLocal = createTokenDataset(local.store, { seqLen: 100 });
      const plainHttp = createTokenDataset(http.store, { seqLen: 100 });
      expect((await plainHttp.getBatch({ start: 10, end: 40 })).tokens).toEqual(
        (await plainLocal.getBatch({ start: 10, end: 40 })).tokens,
      );
      expect(http.store.errors.total).toBe(0);
      await local.close();
      await http.close();
    },
  );

  it('rejects a non-URL and a non-http base', async () => {
    await expect(openHttpShards('not a url')).rejects.toMatchObject({
      code: 'INVALID_PARAMETER',
      details: { parameter: 'baseUrl' },
    });
    await expect(openHttpShards('ftp://127.0.0.1/')).rejects.toMatchObject({ code: 'INVALID_PARAMETER' });
  });
});

describe('fault injection on a real HTTP server', () => {
  const dir = tempDir();
  writeShardSet(dir, [Array.from({ length: 4096 }, (_, j) => j % 1000)], { chunkBytes: 1024 });
  const fast = { idleTimeoutMs: 1000, backoffMs: 1, maxBackoffMs: 5 };

  /** Plan: `faults[k]` for the k-th range request, then 'ok'; the manifest is always served. */
  async function withFaults(
    faults: Fault[] | ((k: number) => Fault),
    fn: (url: string, ranges: () => number) => Promise<void>,
  ) {
    let k = 0;
    const srv = await startFaultServer(dir, (_n, req) => {
      if (!req.headers.range) return 'ok';
      const i = k++;
      return typeof faults === 'function' ? faults(i) : (faults[i] ?? 'ok');
    });
    try {
      await fn(srv.url, () => k);
    } finally {
      await srv.close();
    }
  }

  const expected = Buffer.alloc(64);
  for (let j = 0; j < 32; j++) expected.writeUInt16LE(j, j * 2);

  async function read(url: string, opts: Record<string, unknown> = {}) {
    const store = await openHttpShards(url, { ...fast, verify: 'none', ...opts });
    try {
      return { store, bytes: await store.read(0, 0, 64) };
    } catch (e) {
      return { store, error: e as Error & { code: string; details: Record<string, unknown> } };
    }
  }

  it('retries 500s and counts them', async () => {
    await withFaults(['status-500', 'status-500'], async (url, ranges) => {
      const { store, bytes } = await read(url);
      expect(Buffer.from(bytes!)).toEqual(expected);
      expect(ranges()).toBe(3);
      expect(store.fetcher.stats.retries).toBe(2);
      expect(store.errors.get('HTTP_STATUS')).toBe(2);
    });
  });

  it('gives up after the retry budget with the attempts in the error', async () => {
    await withFaults(
      () => 'status-500',
      async (url, ranges) => {
        const { error } = await read(url, { retries: 2 });
        expect(error).toMatchObject({ code: 'HTTP_STATUS', details: { status: 500, attempts: 3 } });
        expect(error!.message).toMatch(/gave up after 3 attempts/);
        expect(ranges()).toBe(3);
      },
    );
  });

  it('does not retry a 404', async () => {
    await withFaults(['status-404'], async (url, ranges) => {
      const { error, store } = await read(url);
      expect(error).toMatchObject({ code: 'HTTP_STATUS', details: { status: 404 } });
      expect(ranges()).toBe(1);
      expect(store.errors.get('HTTP_STATUS')).toBe(1);
    });
  });

  it('cuts off a server that stalls mid-body and retries', async () => {
    await withFaults(['stall-body'], async (url) => {
      const { store, bytes } = await read(url);
      expect(Buffer.from(bytes!)).toEqual(expected);
      expect(store.errors.get('HTTP_TIMEOUT')).toBe(1);
    });
  });

  it('reports HTTP_TIMEOUT when a server never answers', async () => {
    await withFaults(
      () => 'stall-headers',
      async (url, ranges) => {
        const { error } = await read(url, { retries: 1 });
        expect(error).toMatchObject({ code: 'HTTP_TIMEOUT', details: { idleTimeoutMs: 1000, attempts: 2 } });
        expect(ranges()).toBe(2);
      },
    );
  });

  it('cuts off a server that trickles bytes past requestTimeoutMs', async () => {
    await withFaults(['trickle'], async (url) => {
      // 64 bytes at one per 50 ms would take ~3.2 s; the idle timer (1 s) never fires, the 1.5 s deadline does.
      const { store, bytes } = await read(url, { requestTimeoutMs: 1500 });
      expect(Buffer.from(bytes!)).toEqual(expected);
      expect(store.errors.get('HTTP_TIMEOUT')).toBe(1);
    });
  });

  it('detects a wrong Content-Length and retries', async () => {
    await withFaults(['wrong-content-length'], async (url) => {
      const { store, bytes } = await read(url);
      expect(Buffer.from(bytes!)).toEqual(expected);
      expect(store.errors.get('HTTP_LENGTH_MISMATCH')).toBe(1);
    });
  });

  it('detects a truncated body and retries', async () => {
    await withFaults(['truncate', 'truncate'], async (url) => {
      const { store, bytes } = await read(url);
      expect(Buffer.from(bytes!)).toEqual(expected);
      // undici reports a body cut short against its Content-Length as a network error ("terminated").
      expect(store.errors.get('HTTP_NETWORK') + store.errors.get('HTTP_LENGTH_MISMATCH')).toBe(2);
      expect(store.fetcher.stats.retries).toBe(2);
    });
  });

  it('rejects a server that ignores Range, without retrying', async () => {
    await withFaults(
      () => 'ignore-range',
      async (url, ranges) => {
        const { error } = await read(url);
        expect(error).toMatchObject({ code: 'HTTP_RANGE_IGNORED', details: { status: 200 } });
        expect(ranges()).toBe(1);
      },
    );
  });

  it('rejects a server that lies about the file size', async () => {
    await withFaults(
      () => 'lie-total',
      async (url) => {
        const { error } = await read(url);
        expect(error).toMatchObject({
          code: 'HTTP_LENGTH_MISMATCH',
          details: { header: 'content-range', expectedTotal: 8192 },
        });
      },
    );
  });

  it('catches corrupted bytes with chunk checksums (verify: chunks)', async () => {
    await withFaults(
      () => 'corrupt',
      async (url) => {
        const { error, store } = await read(url, { verify: 'chunks' });
        expect(error).toMatchObject({ code: 'CHECKSUM_MISMATCH', details: { chunk: 0 } });
        expect(store.errors.get('CHECKSUM_MISMATCH')).toBe(1);
      },
    );
  });

  it('recovers from mixed faults while reading a whole shuffled epoch', async () => {
    const cycle: Fault[] = [
      'ok',
      'status-500',
      'ok',
      'truncate',
      'ok',
      'wrong-content-length',
      'ok',
      'stall-body',
    ];
    await withFaults(
      (k) => (k < 40 ? cycle[k % cycle.length]! : 'ok'),
      async (url) => {
        const http = createTokenDataset(
          await openHttpShards(url, { ...fast, verify: 'chunks', cacheChunks: 2 }),
          { seqLen: 32, shuffleSeed: 5 },
        );
        const local = createTokenDataset(await openLocalShards(dir), { seqLen: 32, shuffleSeed: 5 });
        const all = { start: 0, end: local.numSequences - 1 };
        expect((await http.getBatch(all)).tokens).toEqual((await local.getBatch(all)).tokens);
        expect(http.store.errors.total).toBeGreaterThan(0);
      },
    );
  });

  it('validates fetcher options and aborts through a signal', async () => {
    expect(() => createHttpFetcher({ idleTimeoutMs: 0 })).toThrow(
      expect.objectContaining({ details: expect.objectContaining({ parameter: 'idleTimeoutMs' }) }),
    );
    expect(() => createHttpFetcher({ retries: -1 })).toThrow(
      expect.objectContaining({ code: 'INVALID_PARAMETER' }),
    );
    await withFaults(
      () => 'stall-headers',
      async (url) => {
        const f = createHttpFetcher({ idleTimeoutMs: 60_000 });
        const ac = new AbortController();
        const p = f.fetchRange(`${url}shard-00000.bin`, 0, 10, { signal: ac.signal });
        setTimeout(() => ac.abort(), 20);
        await expect(p).rejects.toMatchObject({ code: 'ABORTED' });
        await expect(f.fetchRange(`${url}shard-00000.bin`, -1, 10)).rejects.toMatchObject({
          code: 'INVALID_PARAMETER',
        });
      },
    );
  });
});
