import { type ClientRequest, Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { DataProviderError, ErrorCounter, isDataProviderError } from './errors.js';

/** Options of {@link createHttpFetcher}. Durations are in milliseconds. */
export interface HttpFetcherOptions {
  /** Abort an attempt when no byte (headers or body) arrives for this long. Default 5000 (Psyche uses 5 s). */
  idleTimeoutMs?: number;
  /** Abort an attempt that takes longer than this in total (a server trickling bytes). Default 60000. */
  requestTimeoutMs?: number;
  /** Retries after the first attempt for retryable faults (timeouts, resets, 5xx, short bodies). Default 5. */
  retries?: number;
  /** Delay before retry n (1-based) is `min(backoffMs * 2^(n-1), maxBackoffMs)`. Default 250. */
  backoffMs?: number;
  /** Upper bound of the retry delay. Default 4000. */
  maxBackoffMs?: number;
  /** Extra request headers (e.g. authorization). */
  headers?: Record<string, string>;
}

/** Counters of one fetcher. `errors` counts every failed attempt by code, retried or not. */
export interface HttpFetcherStats {
  requests: number;
  retries: number;
  bytesReceived: number;
  errors: ErrorCounter;
}

/** A retrying HTTP client for whole files and byte ranges. Created by {@link createHttpFetcher}. */
export interface HttpFetcher {
  readonly stats: HttpFetcherStats;
  /** GETs a whole resource. */
  fetchAll(url: string, options?: { signal?: AbortSignal }): Promise<Uint8Array>;
  /**
   * GETs bytes `[offset, offset + length)` with a `Range` request. Requires a 206 answer whose
   * `Content-Range` matches the request and, when `expectedTotal` is given, whose total size equals it.
   */
  fetchRange(
    url: string,
    offset: number,
    length: number,
    options?: { signal?: AbortSignal; expectedTotal?: number },
  ): Promise<Uint8Array>;
  /** Closes idle keep-alive connections. */
  close(): void;
}

const CONTENT_RANGE = /^bytes (\d+)-(\d+)\/(\d+|\*)$/;

/**
 * Creates a retrying fetcher with an idle timeout (a stalled server is cut off and retried) and strict
 * length checks (a server that lies about `Content-Length`/`Content-Range` or cuts a body short is
 * detected, counted and retried; one that ignores `Range` is rejected). Never returns a short or long body.
 *
 * @example
 * ```ts
 * import { createHttpFetcher } from '@psyche/data-provider';
 * const f = createHttpFetcher({ idleTimeoutMs: 2000, retries: 3 });
 * const bytes = await f.fetchRange('http://127.0.0.1:8080/shard-00000.bin', 0, 1024);
 * ```
 * @since 0.1.0
 */
export function createHttpFetcher(options: HttpFetcherOptions = {}): HttpFetcher {
  const idleTimeoutMs = options.idleTimeoutMs ?? 5000;
  const requestTimeoutMs = options.requestTimeoutMs ?? 60_000;
  const retries = options.retries ?? 5;
  const backoffMs = options.backoffMs ?? 250;
  const maxBackoffMs = options.maxBackoffMs ?? 4000;
  for (const [k, v] of Object.entries({
    idleTimeoutMs,
    requestTimeoutMs,
    retries,
    backoffMs,
    maxBackoffMs,
  })) {
    const positive = k === 'idleTimeoutMs' || k === 'requestTimeoutMs';
    if (!Number.isFinite(v) || v < 0 || (positive && v === 0)) {
      throw new DataProviderError(
        'INVALID_PARAMETER',
        `${k} must be a ${positive ? 'positive' : 'non-negative'} number, got ${v}`,
        {
          parameter: k,
          value: v,
        },
      );
    }
  }
  const stats: HttpFetcherStats = { requests: 0, retries: 0, bytesReceived: 0, errors: new ErrorCounter() };

  const agents = {
    'http:': new HttpAgent({ keepAlive: true, maxSockets: 64 }),
    'https:': new HttpsAgent({ keepAlive: true, maxSockets: 64 }),
  };

  /** One request with node:http (keep-alive agent; far cheaper per request than fetch). */
  function attempt(
    url: string,
    range: { offset: number; length: number; expectedTotal?: number } | null,
    signal: AbortSignal | undefined,
  ): Promise<Uint8Array> {
    const where = range ? `${url} bytes ${range.offset}-${range.offset + range.length - 1}` : url;
    stats.requests++;
    return new Promise<Uint8Array>((resolve, reject) => {
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      let deadline: NodeJS.Timeout | undefined;
      let req: ClientRequest | undefined;
      const finish = (err: unknown, value?: Uint8Array) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        clearTimeout(deadline);
        signal?.removeEventListener('abort', onAbort);
        if (err) {
          req?.destroy();
          reject(err);
        } else resolve(value!);
      };
      const onAbort = () =>
        finish(new DataProviderError('ABORTED', `${where}: aborted`, { url }, { cause: signal?.reason }));
      const arm = () => {
        clearTimeout(timer);
        timer = setTimeout(
          () =>
            finish(
              new DataProviderError(
                'HTTP_TIMEOUT',
                `${where}: no data for ${idleTimeoutMs} ms (idleTimeoutMs); the server stalled`,
                { url, idleTimeoutMs },
                { retryable: true },
              ),
            ),
          idleTimeoutMs,
        );
      };
      const network = (e: Error) =>
        finish(
          new DataProviderError(
            'HTTP_NETWORK',
            `${where}: connection failed: ${e.message}`,
            { url },
            { cause: e, retryable: true },
          ),
        );
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      let u: URL;
      try {
        u = new URL(url);
      } catch (cause) {
        return finish(
          new DataProviderError(
            'INVALID_PARAMETER',
            `${url} is not a URL`,
            { parameter: 'url', value: url },
            { cause },
          ),
        );
      }
      const agent = agents[u.protocol as 'http:' | 'https:'];
      if (!agent) {
        return finish(
          new DataProviderError('INVALID_PARAMETER', `${url}: only http and https are supported`, {
            parameter: 'url',
            value: url,
          }),
        );
      }
      const headers: Record<string, string> = { ...options.headers };
      if (range) headers.range = `bytes=${range.offset}-${range.offset + range.length - 1}`;
      arm();
      deadline = setTimeout(
        () =>
          finish(
            new DataProviderError(
              'HTTP_TIMEOUT',
              `${where}: not complete after ${requestTimeoutMs} ms (requestTimeoutMs); the server is too slow`,
              { url, requestTimeoutMs },
              { retryable: true },
            ),
          ),
        requestTimeoutMs,
      );
      req = (u.protocol === 'https:' ? httpsRequest : httpRequest)(
        u,
        { method: 'GET', headers, agent },
        (res) => {
          arm();
          const status = res.statusCode ?? 0;
          const fail = (e: DataProviderError) => {
            res.destroy();
            finish(e);
          };
          if (range && status === 200) {
            return fail(
              new DataProviderError(
                'HTTP_RANGE_IGNORED',
                `${where}: server ignored the Range header (status 200, expected 206)`,
                {
                  url,
                  status,
                  offset: range.offset,
                  length: range.length,
                },
              ),
            );
          }
          if (status !== (range ? 206 : 200)) {
            const retryable = status >= 500 || status === 408 || status === 429;
            return fail(
              new DataProviderError(
                'HTTP_STATUS',
                `${where}: HTTP status ${status}, expected ${range ? 206 : 200}`,
                { url, status },
                { retryable },
              ),
            );
          }
          let expected: number | null = null;
          if (range) {
            const cr = res.headers['content-range'] ?? '';
            const m = CONTENT_RANGE.exec(cr);
            const total = m?.[3] === '*' ? null : Number(m?.[3]);
            if (!m || Number(m[1]) !== range.offset || Number(m[2]) !== range.offset + range.length - 1) {
              return fail(
                new DataProviderError(
                  'HTTP_LENGTH_MISMATCH',
                  `${where}: Content-Range "${cr}" does not match the requested range`,
                  { url, header: 'content-range', value: cr, offset: range.offset, length: range.length },
                  { retryable: true },
                ),
              );
            }
            if (range.expectedTotal !== undefined && total !== range.expectedTotal) {
              return fail(
                new DataProviderError(
                  'HTTP_LENGTH_MISMATCH',
                  `${where}: Content-Range total ${m[3]} differs from the manifest size ${range.expectedTotal}`,
                  { url, header: 'content-range', value: cr, expectedTotal: range.expectedTotal },
                ),
              );
            }
            expected = range.length;
          }
          const cl = res.headers['content-length'];
          if (cl !== undefined && expected !== null && Number(cl) !== expected) {
            return fail(
              new DataProviderError(
                'HTTP_LENGTH_MISMATCH',
                `${where}: Content-Length ${cl} differs from the requested length ${expected}`,
                { url, header: 'content-length', value: cl, expected },
                { retryable: true },
              ),
            );
          }
          if (expected === null && cl !== undefined) expected = Number(cl);
          const out = new Uint8Array(expected ?? 0);
          const parts: Buffer[] = [];
          let got = 0;
          res.on('data', (chunk: Buffer) => {
            if (settled) return;
            arm();
            stats.bytesReceived += chunk.byteLength;
            if (expected !== null) {
              if (got + chunk.byteLength > expected) {
                return fail(
                  new DataProviderError(
                    'HTTP_LENGTH_MISMATCH',
                    `${where}: body is longer than the announced ${expected} bytes`,
                    { url, expected },
                    { retryable: true },
                  ),
                );
              }
              out.set(chunk, got);
            } else parts.push(chunk);
            got += chunk.byteLength;
          });
          res.on('end', () => {
            if (expected !== null && got !== expected) {
              return finish(
                new DataProviderError(
                  'HTTP_LENGTH_MISMATCH',
                  `${where}: body ended after ${got} of ${expected} bytes (truncated)`,
                  { url, expected, received: got },
                  { retryable: true },
                ),
              );
            }
            finish(null, expected !== null ? out : Buffer.concat(parts));
          });
          res.on('error', network);
          res.on('close', () => {
            if (!res.complete) network(new Error(`connection closed after ${got} body bytes`));
          });
        },
      );
      req.on('error', network);
      req.end();
    });
  }

  async function withRetries(
    url: string,
    range: { offset: number; length: number; expectedTotal?: number } | null,
    signal: AbortSignal | undefined,
  ): Promise<Uint8Array> {
    for (let n = 0; ; n++) {
      try {
        return await attempt(url, range, signal);
      } catch (e) {
        stats.errors.count(e, 'HTTP_NETWORK');
        if (!isDataProviderError(e) || !e.retryable || n >= retries) {
          if (isDataProviderError(e) && e.retryable) {
            (e.details as Record<string, unknown>).attempts = n + 1;
            e.message += ` (gave up after ${n + 1} attempts; raise retries/idleTimeoutMs to tolerate more)`;
          }
          throw e;
        }
        stats.retries++;
        const delay = Math.min(backoffMs * 2 ** n, maxBackoffMs);
        await new Promise<void>((resolve, reject) => {
          const t = setTimeout(resolve, delay);
          signal?.addEventListener(
            'abort',
            () => {
              clearTimeout(t);
              reject(new DataProviderError('ABORTED', `${url}: aborted while waiting to retry`, { url }));
            },
            { once: true },
          );
        });
      }
    }
  }

  return {
    stats,
    close() {
      agents['http:'].destroy();
      agents['https:'].destroy();
    },
    fetchAll: (url, o = {}) => withRetries(url, null, o.signal),
    async fetchRange(url, offset, length, o = {}) {
      if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 1) {
        throw new DataProviderError(
          'INVALID_PARAMETER',
          `fetchRange: offset must be >= 0 and length >= 1, got ${offset}, ${length}`,
          {
            parameter: 'offset/length',
            offset,
            length,
          },
        );
      }
      const range: { offset: number; length: number; expectedTotal?: number } = { offset, length };
      if (o.expectedTotal !== undefined) range.expectedTotal = o.expectedTotal;
      return withRetries(url, range, o.signal);
    },
  };
}
