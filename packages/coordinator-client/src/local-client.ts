import type { CoordinatorState } from '@psyche/coordinator';
import { WebSocket } from 'ws';
import type {
  Ack,
  ClientPayloads,
  CoordinatorClient,
  CoordinatorClientEvents,
  OperationOptions,
  StateUpdate,
} from './client.js';
import { decodeTagged, encodeTagged } from './codec.js';
import {
  abortError,
  CoordinatorClientError,
  type CoordinatorClientErrorCode,
  throwIfAborted,
} from './errors.js';
import { authMessage, fromHex, type Keypair, sign, toHex } from './keys.js';
import type { Op } from './protocol.js';
import type { AdminConfigChanges, PsychePayloads } from './psyche-engine.js';

/** Reconnect backoff: delay = min(maxDelayMs, initialDelayMs·factor^attempt), then scaled by a jitter in [0.5, 1]. */
export interface BackoffOptions {
  initialDelayMs?: number;
  maxDelayMs?: number;
  factor?: number;
}

/** Options of {@link LocalCoordinatorClient.connect}. */
export interface LocalClientOptions {
  /** WebSocket URL of the server, e.g. `ws://127.0.0.1:4000/ws` (`CoordinatorServer.wsUrl`). */
  url: string;
  /** This node's ed25519 keypair (see `readKeypairFile`). */
  keypair: Keypair;
  /** When set, the client refuses a server announcing another run id. */
  runId?: string;
  /** Reconnect backoff. */
  reconnect?: BackoffOptions;
  /** Per-request timeout, ms (default 30 000). */
  requestTimeoutMs?: number;
  /** This node's wall clock, ms; only sent as informational `sentAt`. Default `Date.now`. */
  clock?: () => number;
  /** Most states buffered per `watch()` iterator before the oldest are dropped (default 256). */
  maxBufferedStates?: number;
}

/** Start of a state frame as the server writes it (version first). */
const STATE_PREFIX = /^\{"t":"state","version":(\d+),/;

/** Close codes after which reconnecting cannot help. */
const FATAL_CLOSE: Record<number, CoordinatorClientErrorCode> = {
  4401: 'BAD_SIGNATURE',
  4403: 'NOT_ALLOWLISTED',
  4409: 'CLOSED',
};

interface PendingReq {
  resolve: (a: Ack) => void;
  reject: (e: Error) => void;
  cleanup: () => void;
}

/**
 * {@link CoordinatorClient} backend for the local coordinator server (`psyche-coordinator serve`). Its type
 * parameters default to the `@psyche/coordinator` state and payloads (what `psycheEngine()` serves). Authenticates
 * with the node's ed25519 key, reconnects with exponential backoff and jitter after any connection loss, and
 * resumes its state subscription from the last version it saw (states are never delivered twice or backwards).
 *
 * @example
 * ```ts
 * const client = await LocalCoordinatorClient.connect({ url: server.wsUrl, keypair: readKeypairFile('id.json') });
 * await client.join();
 * for await (const { state } of client.watch()) console.log(state);
 * ```
 */
export class LocalCoordinatorClient<
  TState = CoordinatorState,
  TPayloads extends ClientPayloads = PsychePayloads,
> implements CoordinatorClient<TState, TPayloads>
{
  readonly id: string;
  private ws: WebSocket | undefined;
  private authed = false;
  private closed = false;
  private fatal: CoordinatorClientError | undefined;
  private attempt = 0;
  private connects = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private nextId = 0;
  private latestUpdate: StateUpdate<TState> | undefined;
  private readonly pending = new Map<number, PendingReq>();
  private readonly listeners = new Map<string, Set<(v: unknown) => void>>();
  private readyWaiters = new Set<{ resolve: () => void; reject: (e: Error) => void }>();
  private readonly opts: Required<Omit<LocalClientOptions, 'runId' | 'reconnect'>> & {
    runId: string | undefined;
    backoff: Required<BackoffOptions>;
  };
  private pendingState: { version: number; text: string } | undefined;
  private decodeScheduled = false;
  /** Times the connection was lost and re-established (0 after the first connect). */
  reconnections = 0;
  /** The last server-side error message not tied to a request (e.g. a malformed frame report). */
  lastServerError: { code: string; message: string } | undefined;

  private constructor(options: LocalClientOptions) {
    if (typeof options?.url !== 'string' || !/^wss?:\/\//.test(options.url)) {
      throw new CoordinatorClientError('INVALID_ARGUMENT', 'options.url: expected a ws:// or wss:// URL', {
        field: 'url',
      });
    }
    if (options.keypair?.secretKey?.length !== 32 || options.keypair?.publicKey?.length !== 32) {
      throw new CoordinatorClientError(
        'INVALID_ARGUMENT',
        'options.keypair: expected 32-byte secretKey and publicKey',
        {
          field: 'keypair',
        },
      );
    }
    this.opts = {
      url: options.url,
      keypair: options.keypair,
      runId: options.runId,
      requestTimeoutMs: options.requestTimeoutMs ?? 30_000,
      clock: options.clock ?? Date.now,
      maxBufferedStates: options.maxBufferedStates ?? 256,
      backoff: {
        initialDelayMs: options.reconnect?.initialDelayMs ?? 100,
        maxDelayMs: options.reconnect?.maxDelayMs ?? 5_000,
        factor: options.reconnect?.factor ?? 2,
      },
    };
    this.id = toHex(options.keypair.publicKey);
  }

  /**
   * Creates a client and waits until it is connected, authenticated and has received the current state (retrying
   * with backoff while the server is unreachable), so `latest()` is defined on return. Rejects with `ABORTED` if `signal` fires first, or with the fatal auth error
   * (`BAD_SIGNATURE`, `NOT_ALLOWLISTED`).
   */
  static async connect<TState = CoordinatorState, TPayloads extends ClientPayloads = PsychePayloads>(
    options: LocalClientOptions,
    { signal }: OperationOptions = {},
  ): Promise<LocalCoordinatorClient<TState, TPayloads>> {
    throwIfAborted(signal, 'connect');
    const c = new LocalCoordinatorClient<TState, TPayloads>(options);
    c.open();
    try {
      await c.ready(signal, 'connect');
      await c.waitFor(() => true, { signal });
    } catch (e) {
      await c.close();
      throw e;
    }
    return c;
  }

  /** Whether the client currently holds an authenticated connection. */
  get connected(): boolean {
    return this.authed;
  }

  latest(): StateUpdate<TState> | undefined {
    return this.latestUpdate;
  }

  on<K extends keyof CoordinatorClientEvents<TState>>(
    event: K,
    listener: (value: CoordinatorClientEvents<TState>[K]) => void,
  ): () => void {
    let set = this.listeners.get(event);
    if (!set) {
      set = new Set();
      this.listeners.set(event, set);
    }
    const l = listener as (v: unknown) => void;
    set.add(l);
    return () => set.delete(l);
  }

  private emit<K extends keyof CoordinatorClientEvents<TState>>(
    event: K,
    value: CoordinatorClientEvents<TState>[K],
  ) {
    for (const l of [...(this.listeners.get(event) ?? [])]) {
      try {
        l(value);
      } catch {
        // A throwing listener must not break delivery to the others.
      }
    }
  }

  watch({ signal }: OperationOptions = {}): AsyncIterableIterator<StateUpdate<TState>> {
    const buffer: StateUpdate<TState>[] = [];
    if (this.latestUpdate) buffer.push(this.latestUpdate);
    let wake: (() => void) | undefined;
    let done = false;
    const max = this.opts.maxBufferedStates;
    const off = this.on('state', (u) => {
      buffer.push(u);
      if (buffer.length > max) buffer.shift();
      wake?.();
    });
    const offClose = this.on('connection:close', () => wake?.());
    const onAbort = () => wake?.();
    signal?.addEventListener('abort', onAbort);
    const finish = () => {
      done = true;
      off();
      offClose();
      signal?.removeEventListener('abort', onAbort);
    };
    const self = this;
    const it: AsyncIterableIterator<StateUpdate<TState>> = {
      [Symbol.asyncIterator]() {
        return it;
      },
      async next(): Promise<IteratorResult<StateUpdate<TState>>> {
        for (;;) {
          if (done) return { done: true, value: undefined };
          if (signal?.aborted) {
            finish();
            throw abortError(signal, 'watch');
          }
          const u = buffer.shift();
          if (u) return { done: false, value: u };
          if (self.closed) {
            finish();
            return { done: true, value: undefined };
          }
          await new Promise<void>((r) => {
            wake = r;
          });
          wake = undefined;
        }
      },
      async return(): Promise<IteratorResult<StateUpdate<TState>>> {
        finish();
        return { done: true, value: undefined };
      },
    };
    return it;
  }

  async waitFor(
    predicate: (u: StateUpdate<TState>) => boolean,
    { signal }: OperationOptions = {},
  ): Promise<StateUpdate<TState>> {
    throwIfAborted(signal, 'waitFor');
    if (this.latestUpdate && predicate(this.latestUpdate)) return this.latestUpdate;
    return new Promise((resolve, reject) => {
      const cleanup = () => {
        off();
        offClose();
        signal?.removeEventListener('abort', onAbort);
      };
      const off = this.on('state', (u) => {
        if (predicate(u)) {
          cleanup();
          resolve(u);
        }
      });
      const offClose = this.on('connection:close', () => {
        if (this.closed) {
          cleanup();
          reject(new CoordinatorClientError('CLOSED', 'waitFor: client closed'));
        }
      });
      const onAbort = () => {
        cleanup();
        reject(abortError(signal, 'waitFor'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  join(options?: OperationOptions): Promise<Ack> {
    return this.request('join', undefined, options);
  }
  witness(witness: TPayloads['witness'], options?: OperationOptions): Promise<Ack> {
    return this.request('witness', witness, options);
  }
  warmupWitness(witness: TPayloads['warmupWitness'], options?: OperationOptions): Promise<Ack> {
    return this.request('warmupWitness', witness, options);
  }
  healthCheck(check: TPayloads['healthCheck'], options?: OperationOptions): Promise<Ack> {
    return this.request('healthCheck', check, options);
  }
  checkpoint(checkpoint: TPayloads['checkpoint'], options?: OperationOptions): Promise<Ack> {
    return this.request('checkpoint', checkpoint, options);
  }
  leave(options?: OperationOptions): Promise<Ack> {
    return this.request('leave', undefined, options);
  }

  /**
   * Admin: pauses the run (at once from WaitingForMembers/Warmup, otherwise at the end of the current round). This
   * client's key must be in the server's `server.admin_keys`, else it rejects with `NOT_ADMIN`; a wrong run state
   * rejects with `COORDINATOR_REJECTED`. Durable like every input (replayed after a restart).
   */
  pause(options?: OperationOptions): Promise<Ack> {
    return this.request('pause', undefined, options);
  }

  /** Admin: resumes a Paused run (back to WaitingForMembers). Same rules as {@link pause}. */
  resume(options?: OperationOptions): Promise<Ack> {
    return this.request('resume', undefined, options);
  }

  /**
   * Admin: changes `[coordinator]`/`[model]` fields (TOML names) while the run is Paused; the merged config is
   * validated (`COORDINATOR_REJECTED` naming the TOML field in `details.field`, e.g.
   * `coordinator.warmup_time`). Same rules as {@link pause}.
   */
  updateConfig(changes: AdminConfigChanges, options?: OperationOptions): Promise<Ack> {
    return this.request('updateConfig', changes, options);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    const err = new CoordinatorClientError('CLOSED', 'client closed');
    for (const p of this.pending.values()) {
      p.cleanup();
      p.reject(err);
    }
    this.pending.clear();
    for (const w of this.readyWaiters) w.reject(this.fatal ?? err);
    this.readyWaiters.clear();
    const ws = this.ws;
    this.ws = undefined;
    this.authed = false;
    if (ws && ws.readyState !== WebSocket.CLOSED) {
      await new Promise<void>((res) => {
        ws.once('close', () => res());
        if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
        else ws.close(1000, 'client closed');
        setTimeout(() => {
          ws.terminate();
          res();
        }, 1000).unref();
      });
    }
    this.emit('connection:close', { code: 1000, reason: 'client closed' });
  }

  // ------------------------------------------------------------------ internals

  private async request(op: Op, body: unknown, { signal }: OperationOptions = {}): Promise<Ack> {
    throwIfAborted(signal, op);
    if (this.closed) throw this.fatal ?? new CoordinatorClientError('CLOSED', `${op}: client closed`, { op });
    await this.ready(signal, op);
    const ws = this.ws!;
    const id = ++this.nextId;
    return new Promise<Ack>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        cleanup();
        reject(
          new CoordinatorClientError('TIMEOUT', `${op}: no answer within ${this.opts.requestTimeoutMs} ms`, {
            op,
          }),
        );
      }, this.opts.requestTimeoutMs);
      const onAbort = () => {
        this.pending.delete(id);
        cleanup();
        reject(abortError(signal, op));
      };
      const cleanup = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.pending.set(id, { resolve, reject, cleanup });
      ws.send(encodeTagged({ t: 'req', id, op, body, sentAt: this.opts.clock() }));
    });
  }

  private ready(signal: AbortSignal | undefined, what: string): Promise<void> {
    if (this.fatal) return Promise.reject(this.fatal);
    if (this.closed) return Promise.reject(new CoordinatorClientError('CLOSED', `${what}: client closed`));
    if (this.authed) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const w = {
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        reject: (e: Error) => {
          signal?.removeEventListener('abort', onAbort);
          reject(e);
        },
      };
      const onAbort = () => {
        this.readyWaiters.delete(w);
        reject(abortError(signal, what));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.readyWaiters.add(w);
    });
  }

  private open(): void {
    if (this.closed) return;
    const ws = new WebSocket(this.opts.url, { maxPayload: 256 * 1024 * 1024, perMessageDeflate: false });
    this.ws = ws;
    ws.on('message', (data) => {
      if (this.ws !== ws) return;
      const text = Buffer.isBuffer(data)
        ? data.toString('utf8')
        : Buffer.from(data as ArrayBuffer).toString('utf8');
      // Latest-wins for state frames: when several are queued (a slow consumer, a burst of changes), only the
      // newest is decoded. The server writes the version first, so it is read without parsing the state.
      const m = STATE_PREFIX.exec(text);
      if (m) {
        const version = Number(m[1]);
        if (this.latestUpdate && version <= this.latestUpdate.version) return;
        if (this.pendingState && version <= this.pendingState.version) return;
        this.pendingState = { version, text };
        if (!this.decodeScheduled) {
          this.decodeScheduled = true;
          setImmediate(() => {
            this.decodeScheduled = false;
            const p = this.pendingState;
            this.pendingState = undefined;
            if (p && this.ws === ws) this.onMessage(ws, p.text);
          });
        }
        return;
      }
      this.onMessage(ws, text);
    });
    ws.on('error', () => {
      // 'close' follows; the reconnect logic lives there.
    });
    ws.on('close', (code, reasonBuf) => {
      if (this.ws !== ws) return;
      this.ws = undefined;
      const wasAuthed = this.authed;
      this.authed = false;
      const reason = reasonBuf.toString('utf8');
      const err = new CoordinatorClientError('NOT_CONNECTED', `connection lost (${code} ${reason})`, {
        code,
        reason,
      });
      for (const p of this.pending.values()) {
        p.cleanup();
        p.reject(err);
      }
      this.pending.clear();
      if (wasAuthed) this.emit('connection:close', { code, reason });
      const fatalCode = FATAL_CLOSE[code];
      if (fatalCode && !this.closed) {
        this.fatal = new CoordinatorClientError(fatalCode, `server refused this client: ${code} ${reason}`, {
          code,
          reason,
        });
        for (const w of this.readyWaiters) w.reject(this.fatal);
        this.readyWaiters.clear();
        void this.close();
        return;
      }
      this.scheduleReconnect();
    });
  }

  private scheduleReconnect(): void {
    if (this.closed) return;
    const b = this.opts.backoff;
    const base = Math.min(b.maxDelayMs, b.initialDelayMs * b.factor ** this.attempt);
    const delay = base * (0.5 + Math.random() * 0.5);
    this.attempt++;
    this.reconnectTimer = setTimeout(() => this.open(), delay);
  }

  private onMessage(ws: WebSocket, text: string): void {
    let msg: Record<string, unknown>;
    try {
      msg = decodeTagged(text) as Record<string, unknown>;
    } catch {
      return; // A garbled server frame is ignored; the state stream resumes on the next one.
    }
    switch (msg.t) {
      case 'challenge': {
        const nonce = fromHex(msg.nonce, 32);
        const runId = typeof msg.runId === 'string' ? msg.runId : undefined;
        if (!nonce || runId === undefined) return;
        if (this.opts.runId !== undefined && runId !== this.opts.runId) {
          this.fatal = new CoordinatorClientError(
            'INVALID_ARGUMENT',
            `options.runId: server runs "${runId}", expected "${this.opts.runId}"`,
            { field: 'runId', server: runId },
          );
          for (const w of this.readyWaiters) w.reject(this.fatal);
          this.readyWaiters.clear();
          void this.close();
          return;
        }
        const sig = sign(authMessage(runId, nonce), this.opts.keypair);
        ws.send(JSON.stringify({ t: 'auth', pubkey: this.id, sig: toHex(sig) }));
        return;
      }
      case 'welcome': {
        this.authed = true;
        this.attempt = 0;
        if (this.connects > 0) this.reconnections++;
        this.connects++;
        ws.send(JSON.stringify({ t: 'sub', after: this.latestUpdate?.version }));
        for (const w of this.readyWaiters) w.resolve();
        this.readyWaiters.clear();
        this.emit('connection:open', { attempt: this.connects });
        return;
      }
      case 'state': {
        const version = msg.version;
        if (typeof version !== 'number') return;
        if (this.latestUpdate && version <= this.latestUpdate.version) return;
        const u: StateUpdate<TState> = {
          version,
          serverTime: typeof msg.serverTime === 'number' ? msg.serverTime : 0,
          state: msg.state as TState,
        };
        this.latestUpdate = u;
        this.emit('state', u);
        return;
      }
      case 'res': {
        const id = msg.id;
        if (typeof id !== 'number') return;
        const p = this.pending.get(id);
        if (!p) return;
        this.pending.delete(id);
        p.cleanup();
        if (msg.ok === true) p.resolve({ version: Number(msg.version) });
        else {
          const e = (msg.error ?? {}) as {
            code?: string;
            message?: string;
            details?: Record<string, unknown>;
          };
          p.reject(
            new CoordinatorClientError(
              (e.code as CoordinatorClientErrorCode) ?? 'SERVER_ERROR',
              e.message ?? 'request rejected',
              e.details ?? {},
            ),
          );
        }
        return;
      }
      case 'error': {
        const e = (msg.error ?? {}) as { code?: string; message?: string };
        this.lastServerError = { code: String(e.code), message: String(e.message) };
        return;
      }
      default:
        return;
    }
  }
}
