import type { Stats } from 'node:fs';
import { createReadStream } from 'node:fs';
import { type FileHandle, open, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve, sep } from 'node:path';
import { DataProviderError, ErrorCounter } from './errors.js';

/** Options of {@link serveDirectory}. */
export interface ServeOptions {
  /** Directory to serve (read-only). Usually a shard directory with `manifest.json`. */
  dir: string;
  /** Interface to bind. Default `127.0.0.1`. */
  host?: string;
  /** Port; 0 (default) picks a free one. */
  port?: number;
}

/** Counters of a running data server. */
export interface ServeStats {
  /** Requests answered with 200 or 206. */
  served: number;
  /** Bytes of bodies sent. */
  bytesSent: number;
  /** Rejected requests, by code (`NOT_FOUND`, `INVALID_PARAMETER` for bad ranges/methods/paths). */
  rejected: ErrorCounter;
}

/** A running data server. */
export interface DataServer {
  /** Base URL, e.g. `http://127.0.0.1:40123/` (with trailing slash). */
  readonly url: string;
  readonly port: number;
  readonly stats: ServeStats;
  /** Stops accepting connections and closes open ones. */
  close(): Promise<void>;
}

const RANGE = /^bytes=(\d*)-(\d*)$/;
const SMALL_READ = 1 << 20;

/**
 * Serves the regular files of `dir` over HTTP with single-range `Range` support (206 + `Content-Range`,
 * 416 when unsatisfiable), `HEAD`, and no directory listing. Paths outside `dir` are rejected.
 * This is `psyche-data serve` (and the future `psyche data serve`).
 *
 * @example
 * ```ts
 * import { serveDirectory } from '@psyche/data-provider';
 * const server = await serveDirectory({ dir: './shards', port: 0 });
 * console.log(server.url); // http://127.0.0.1:<port>/
 * await server.close();
 * ```
 * @throws {DataProviderError} `NOT_FOUND` when `dir` is not a directory
 * @since 0.1.0
 */
export async function serveDirectory(options: ServeOptions): Promise<DataServer> {
  const root = resolve(options.dir);
  const st = await stat(root).catch(() => null);
  if (!st?.isDirectory()) {
    throw new DataProviderError('NOT_FOUND', `serve: dir ${root} is not a directory`, {
      parameter: 'dir',
      path: root,
    });
  }
  const host = options.host ?? '127.0.0.1';
  const stats: ServeStats = { served: 0, bytesSent: 0, rejected: new ErrorCounter() };

  const reject = (
    res: ServerResponse,
    status: number,
    code: 'NOT_FOUND' | 'INVALID_PARAMETER',
    msg: string,
    extra: Record<string, string> = {},
  ) => {
    stats.rejected.count(new DataProviderError(code, msg));
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...extra });
    res.end(`${msg}\n`);
  };

  // Open handles keyed by path (promises, so concurrent requests share one open); reopened when the
  // file is replaced (inode/mtime/size change).
  interface Cached {
    fh: Promise<FileHandle>;
    ino: number;
    mtimeMs: number;
    size: number;
  }
  const handles = new Map<string, Cached>();
  const drop = (c: Cached) => {
    c.fh.then((fh) => fh.close()).catch(() => {});
  };
  const handle = (file: string, st: Stats): Promise<FileHandle> => {
    const h = handles.get(file);
    if (h && h.ino === st.ino && h.mtimeMs === st.mtimeMs && h.size === st.size) return h.fh;
    if (h) {
      handles.delete(file);
      drop(h);
    }
    const c: Cached = { fh: open(file, 'r'), ino: st.ino, mtimeMs: st.mtimeMs, size: st.size };
    c.fh.catch(() => handles.get(file) === c && handles.delete(file));
    handles.set(file, c);
    if (handles.size > 64) {
      const [k, old] = handles.entries().next().value!;
      handles.delete(k);
      drop(old);
    }
    return c.fh;
  };

  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return reject(res, 405, 'INVALID_PARAMETER', `method ${req.method} not allowed (GET, HEAD)`, {
        allow: 'GET, HEAD',
      });
    }
    let pathname: string;
    try {
      pathname = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    } catch {
      return reject(res, 400, 'INVALID_PARAMETER', 'malformed URL');
    }
    const file = resolve(root, `.${pathname}`);
    if (!file.startsWith(root + sep) || pathname.includes('\0')) {
      return reject(res, 404, 'NOT_FOUND', `${pathname}: not found`);
    }
    const fst = await stat(file).catch(() => null);
    if (!fst?.isFile()) return reject(res, 404, 'NOT_FOUND', `${pathname}: not found`);
    const size = fst.size;
    const headers: Record<string, string | number> = {
      'accept-ranges': 'bytes',
      'content-type': file.endsWith('.json') ? 'application/json' : 'application/octet-stream',
      'last-modified': fst.mtime.toUTCString(),
    };
    let start = 0;
    let end = size - 1;
    let status = 200;
    const range = req.headers.range;
    if (range !== undefined) {
      const m = RANGE.exec(range.trim());
      if (!m || (m[1] === '' && m[2] === '')) {
        return reject(
          res,
          416,
          'INVALID_PARAMETER',
          `Range "${range}": only one "bytes=a-b" range is supported`,
          {
            'content-range': `bytes */${size}`,
          },
        );
      }
      if (m[1] === '') {
        start = Math.max(0, size - Number(m[2]));
      } else {
        start = Number(m[1]);
        if (m[2] !== '') end = Math.min(end, Number(m[2]));
      }
      if (start >= size || start > end) {
        return reject(res, 416, 'INVALID_PARAMETER', `Range "${range}" not satisfiable for ${size} bytes`, {
          'content-range': `bytes */${size}`,
        });
      }
      status = 206;
      headers['content-range'] = `bytes ${start}-${end}/${size}`;
    }
    const length = Math.max(0, end - start + 1);
    headers['content-length'] = length;
    res.writeHead(status, headers);
    stats.served++;
    if (req.method === 'HEAD' || length === 0) {
      res.end();
      return;
    }
    if (length <= SMALL_READ) {
      // Small ranges (the common case: sequences and hash chunks) from a cached handle: one pread.
      const fh = await handle(file, fst);
      const buf = Buffer.allocUnsafe(length);
      let got = 0;
      while (got < length) {
        const { bytesRead } = await fh.read(buf, got, length - got, start + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      if (got < length) {
        res.destroy(); // file shrank under us: never send a short body with a longer Content-Length
        return;
      }
      stats.bytesSent += length;
      res.end(buf);
      return;
    }
    const stream = createReadStream(file, { start, end });
    stream.on('data', (chunk) => {
      stats.bytesSent += chunk.length;
    });
    stream.on('error', () => res.destroy());
    stream.pipe(res);
  }

  const server = createServer((req, res) => {
    serve(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(options.port ?? 0, host, () => ok());
  });
  const port = (server.address() as AddressInfo).port;
  const hostPart = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${hostPart}:${port}/`,
    port,
    stats,
    close: () =>
      new Promise<void>((ok) => {
        server.close(() => ok());
        server.closeAllConnections();
        for (const h of handles.values()) drop(h);
        handles.clear();
      }),
  };
}
