import { createHash } from 'node:crypto';
import { createReadStream, readSync } from 'node:fs';
import { type FileHandle, open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DataProviderError, ErrorCounter } from './errors.js';
import { createHttpFetcher, type HttpFetcher, type HttpFetcherOptions } from './http-fetcher.js';
import { chunkHash } from './internal/hash.js';
import { MANIFEST_FILE, parseManifest, type ShardManifest } from './manifest.js';

/** Abort options accepted by every async read. */
export interface AbortOptions {
  signal?: AbortSignal;
}

/**
 * Byte access to the shards of one manifest. Local directories and HTTP servers implement it;
 * {@link createTokenDataset} turns it into sequences.
 *
 * @since 0.1.0
 */
export interface ShardStore {
  readonly manifest: ShardManifest;
  /** Path or URL, for messages. */
  readonly location: string;
  /** Errors met while reading (truncation, checksum, HTTP faults incl. retried ones), by code. */
  readonly errors: ErrorCounter;
  /** Reads `length` bytes at byte `offset` of shard `shard`. Never returns fewer bytes. */
  read(shard: number, offset: number, length: number, options?: AbortOptions): Promise<Uint8Array>;
  /** Releases file handles / connections. */
  close(): Promise<void>;
}

/**
 * Integrity checking of reads:
 * - `none`: only the sizes (local: at open; HTTP: Content-Range total on every response);
 * - `chunks`: every read is served from whole `chunkBytes` chunks whose hashes are checked against the
 *   manifest (a small LRU cache of verified chunks avoids re-reading);
 * - `full` (local only): additionally hashes every whole shard once at open.
 */
export type VerifyMode = 'none' | 'chunks' | 'full';

type RawRead = (shard: number, offset: number, length: number, options?: AbortOptions) => Promise<Uint8Array>;

function checkRange(m: ShardManifest, shard: number, offset: number, length: number): void {
  const s = m.shards[shard];
  if (
    !s ||
    !Number.isSafeInteger(offset) ||
    !Number.isSafeInteger(length) ||
    offset < 0 ||
    length < 0 ||
    offset + length > s.bytes
  ) {
    throw new DataProviderError(
      'INDEX_OUT_OF_RANGE',
      `read of shard ${shard} bytes [${offset}, ${offset + length}) is outside the shard (${s ? `${s.bytes} bytes` : `${m.shards.length} shards`})`,
      { parameter: 'shard/offset/length', shard, offset, length },
    );
  }
}

/** Wraps a raw reader with chunk verification and an LRU cache of verified chunks. */
function verifiedReader(
  m: ShardManifest,
  location: string,
  raw: RawRead,
  errors: ErrorCounter,
  cacheChunks: number,
): RawRead {
  // Promises, so concurrent reads of one chunk share a single fetch; failed loads are evicted.
  const cache = new Map<string, Promise<Uint8Array>>();
  const fetchChunk = async (shard: number, c: number, options?: AbortOptions): Promise<Uint8Array> => {
    const s = m.shards[shard]!;
    const off = c * m.chunkBytes;
    const len = Math.min(m.chunkBytes, s.bytes - off);
    const bytes = await raw(shard, off, len, options);
    const got = chunkHash(bytes);
    if (got !== s.chunkSha256[c]) {
      const err = new DataProviderError(
        'CHECKSUM_MISMATCH',
        `${location} ${s.file}: chunk ${c} (bytes ${off}-${off + len - 1}) hash ${got} differs from manifest ${s.chunkSha256[c]}`,
        { file: s.file, chunk: c, offset: off, expected: s.chunkSha256[c], actual: got },
      );
      errors.count(err);
      throw err;
    }
    return bytes;
  };
  const loadChunk = (shard: number, c: number, options?: AbortOptions): Promise<Uint8Array> => {
    const key = `${shard}:${c}`;
    const hit = cache.get(key);
    if (hit) {
      cache.delete(key);
      cache.set(key, hit);
      return hit;
    }
    const p = fetchChunk(shard, c, options);
    cache.set(key, p);
    p.catch(() => {
      if (cache.get(key) === p) cache.delete(key);
    });
    if (cache.size > cacheChunks) cache.delete(cache.keys().next().value!);
    return p;
  };
  return async (shard, offset, length, options) => {
    if (length === 0) return new Uint8Array(0);
    const first = Math.floor(offset / m.chunkBytes);
    const last = Math.floor((offset + length - 1) / m.chunkBytes);
    const chunks = await Promise.all(
      Array.from({ length: last - first + 1 }, (_, i) => loadChunk(shard, first + i, options)),
    );
    if (chunks.length === 1) {
      const o = offset - first * m.chunkBytes;
      return chunks[0]!.slice(o, o + length); // a copy: callers may not alias the cache
    }
    const out = new Uint8Array(length);
    let w = 0;
    chunks.forEach((ch, i) => {
      const cStart = (first + i) * m.chunkBytes;
      const a = Math.max(offset, cStart) - cStart;
      const b = Math.min(offset + length, cStart + ch.byteLength) - cStart;
      out.set(ch.subarray(a, b), w);
      w += b - a;
    });
    return out;
  };
}

/** Options of {@link openLocalShards}. */
export interface LocalShardOptions {
  /** Default `chunks`. */
  verify?: VerifyMode;
  /** Verified chunks kept in memory (with `chunks`/`full`). Default 64. */
  cacheChunks?: number;
  /**
   * Use synchronous `pread` (`fs.readSync`) instead of the libuv thread pool. About 5× faster for small
   * reads from the page cache, but blocks the event loop for the duration of each read: use it when the
   * shards are on local SSD/RAM, not on slow or network disks. Default false.
   */
  syncReads?: boolean;
}

async function hashFile(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/**
 * Opens a local shard directory (`manifest.json` + shards) for positioned reads (`FileHandle.read`,
 * no whole-file loads). Checks every shard's size at open.
 *
 * @example
 * ```ts
 * import { openLocalShards, createTokenDataset } from '@psyche/data-provider';
 * const store = await openLocalShards('./shards');
 * const ds = createTokenDataset(store, { seqLen: 128, shuffleSeed: 'run-1' });
 * ```
 * @throws {DataProviderError} `NOT_FOUND`, `INVALID_MANIFEST`, `TRUNCATED_SHARD`, `CHECKSUM_MISMATCH` (with `verify: 'full'`)
 * @since 0.1.0
 */
export async function openLocalShards(dir: string, options: LocalShardOptions = {}): Promise<ShardStore> {
  const verify = options.verify ?? 'chunks';
  const manifestPath = join(dir, MANIFEST_FILE);
  const text = await readFile(manifestPath, 'utf8').catch((cause: unknown) => {
    throw new DataProviderError(
      'NOT_FOUND',
      `${manifestPath} cannot be read; run prepare first`,
      { parameter: 'dir', path: manifestPath },
      { cause },
    );
  });
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new DataProviderError(
      'INVALID_MANIFEST',
      `${manifestPath}: not valid JSON`,
      { path: manifestPath },
      { cause },
    );
  }
  const manifest = parseManifest(json, manifestPath);
  const errors = new ErrorCounter();
  const handles: FileHandle[] = [];
  try {
    for (const s of manifest.shards) {
      const p = join(dir, s.file);
      const fh = await open(p, 'r').catch((cause: unknown) => {
        const err = new DataProviderError(
          'NOT_FOUND',
          `shard ${p} listed in the manifest is missing`,
          { file: s.file, path: p },
          { cause },
        );
        errors.count(err);
        throw err;
      });
      handles.push(fh);
      const size = (await fh.stat()).size;
      if (size !== s.bytes) {
        const err = new DataProviderError(
          'TRUNCATED_SHARD',
          `shard ${p} has ${size} bytes, the manifest says ${s.bytes} (${s.tokens} tokens × ${manifest.tokenBytes})`,
          { file: s.file, path: p, actualBytes: size, expectedBytes: s.bytes },
        );
        errors.count(err);
        throw err;
      }
      if (verify === 'full') {
        const got = await hashFile(p);
        if (got !== s.sha256) {
          const err = new DataProviderError(
            'CHECKSUM_MISMATCH',
            `shard ${p}: sha256 ${got} differs from manifest ${s.sha256}`,
            {
              file: s.file,
              expected: s.sha256,
              actual: got,
            },
          );
          errors.count(err);
          throw err;
        }
      }
    }
  } catch (e) {
    await Promise.all(handles.map((h) => h.close()));
    throw e;
  }
  const sync = options.syncReads ?? false;
  const raw: RawRead = async (shard, offset, length) => {
    const buf = new Uint8Array(length);
    let got = 0;
    while (got < length) {
      const fh = handles[shard]!;
      const bytesRead = sync
        ? readSync(fh.fd, buf, got, length - got, offset + got)
        : (await fh.read(buf, got, length - got, offset + got)).bytesRead;
      if (bytesRead === 0) {
        const s = manifest.shards[shard]!;
        const err = new DataProviderError(
          'TRUNCATED_SHARD',
          `shard ${join(dir, s.file)} ended at byte ${offset + got}, the manifest says ${s.bytes}`,
          {
            file: s.file,
            offset: offset + got,
            expectedBytes: s.bytes,
          },
        );
        errors.count(err);
        throw err;
      }
      got += bytesRead;
    }
    return buf;
  };
  const read =
    verify === 'none' ? raw : verifiedReader(manifest, dir, raw, errors, options.cacheChunks ?? 64);
  return {
    manifest,
    location: dir,
    errors,
    async read(shard, offset, length, o) {
      checkRange(manifest, shard, offset, length);
      return read(shard, offset, length, o);
    },
    async close() {
      await Promise.all(handles.map((h) => h.close()));
    },
  };
}

/** Options of {@link openHttpShards}. */
export interface HttpShardOptions extends HttpFetcherOptions {
  /** `chunks` (default) or `none`. */
  verify?: Exclude<VerifyMode, 'full'>;
  /** Verified chunks kept in memory. Default 64. */
  cacheChunks?: number;
  /** Use this fetcher instead of creating one (to share stats). */
  fetcher?: HttpFetcher;
  signal?: AbortSignal;
}

/** A {@link ShardStore} over HTTP; exposes its fetcher's counters. */
export interface HttpShardStore extends ShardStore {
  readonly fetcher: HttpFetcher;
}

/**
 * Opens shards served over HTTP(S) (for example by {@link serveDirectory}): downloads `manifest.json` from
 * `baseUrl` and reads shard bytes with `Range` requests through a retrying fetcher with an idle timeout.
 * Every response's `Content-Range` total must equal the manifest size of the shard.
 *
 * @example
 * ```ts
 * import { openHttpShards, createTokenDataset } from '@psyche/data-provider';
 * const store = await openHttpShards('http://127.0.0.1:8080/', { idleTimeoutMs: 5000, retries: 5 });
 * const ds = createTokenDataset(store, { seqLen: 128 });
 * ```
 * @throws {DataProviderError} `HTTP_*` after retries, `INVALID_MANIFEST`
 * @since 0.1.0
 */
export async function openHttpShards(
  baseUrl: string,
  options: HttpShardOptions = {},
): Promise<HttpShardStore> {
  let base: URL;
  try {
    base = new URL(baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`);
  } catch (cause) {
    throw new DataProviderError(
      'INVALID_PARAMETER',
      `baseUrl ${JSON.stringify(baseUrl)} is not a URL`,
      { parameter: 'baseUrl', value: baseUrl },
      { cause },
    );
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') {
    throw new DataProviderError('INVALID_PARAMETER', `baseUrl must be http(s), got ${base.protocol}`, {
      parameter: 'baseUrl',
      value: baseUrl,
    });
  }
  const fetcher = options.fetcher ?? createHttpFetcher(options);
  const errors = fetcher.stats.errors;
  const manifestUrl = new URL(MANIFEST_FILE, base).href;
  const fetchOpts = options.signal ? { signal: options.signal } : {};
  const body = await fetcher.fetchAll(manifestUrl, fetchOpts);
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(body).toString('utf8'));
  } catch (cause) {
    throw new DataProviderError(
      'INVALID_MANIFEST',
      `${manifestUrl}: not valid JSON`,
      { url: manifestUrl },
      { cause },
    );
  }
  const manifest = parseManifest(json, manifestUrl);
  const urls = manifest.shards.map((s) => new URL(s.file, base).href);
  const raw: RawRead = (shard, offset, length, o) => {
    const s = manifest.shards[shard]!;
    const opts: { expectedTotal: number; signal?: AbortSignal } = { expectedTotal: s.bytes };
    if (o?.signal) opts.signal = o.signal;
    return fetcher.fetchRange(urls[shard]!, offset, length, opts);
  };
  const read =
    (options.verify ?? 'chunks') === 'none'
      ? raw
      : verifiedReader(manifest, base.href, raw, errors, options.cacheChunks ?? 64);
  return {
    manifest,
    location: base.href,
    errors,
    fetcher,
    async read(shard, offset, length, o) {
      checkRange(manifest, shard, offset, length);
      return read(shard, offset, length, o);
    },
    async close() {
      if (!options.fetcher) fetcher.close();
    },
  };
}
