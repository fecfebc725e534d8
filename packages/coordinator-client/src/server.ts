import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isAbsolute, resolve } from 'node:path';
import { WebSocket, WebSocketServer } from 'ws';
import { deepEqual, encodeTagged } from './codec.js';
import type { RunConfig } from './config.js';
import type { CoordinatorEngine, EngineInput, EngineRoundSummary, EngineSummary } from './engine.js';
import { CoordinatorClientError, isCoordinatorClientError } from './errors.js';
import { authMessage, fromHex, toHex, verify } from './keys.js';
import { dataPaths, InputLog, readSnapshot, writeSnapshot } from './log.js';
import {
  ADMIN_OPS,
  type ClientMessage,
  decodeClientMessage,
  PROTOCOL_VERSION,
  type ServerMessage,
  type WireError,
  WS_PATH,
} from './protocol.js';
import { BoundedSet, TokenBucket } from './rate-limit.js';

/** Counters of rejected traffic, by reason (exposed on `/status`). */
export interface RejectionCounters {
  /** A request or subscription before authenticating. */
  unauthenticated: number;
  /** An auth answer whose signature does not verify. */
  badSignature: number;
  /** A valid key that is not on the allowlist. */
  notAllowlisted: number;
  /** A reused auth signature, or a request id not above the previous one on that connection. */
  replayed: number;
  /** Not JSON, or not a valid protocol message. */
  malformed: number;
  /** Over `max_message_bytes` (the socket is closed with 1009). */
  oversized: number;
  /** Over the per-key token bucket. */
  rateLimited: number;
  /** Valid message refused by the state machine (wrong phase, not a witness, duplicate, ...). */
  coordinatorRejected: number;
  /** No auth answer within `auth_timeout_ms`. */
  authTimeout: number;
  /** Connection refused at `max_connections`. */
  tooManyConnections: number;
  /** An admin request (`pause`, `resume`, `updateConfig`) from a key not in `server.admin_keys`. */
  notAdmin: number;
}

/** Input-log record: one accepted input, with the timestamp and seed it was applied with. */
export interface LogRecord {
  readonly seq: number;
  readonly ts: number;
  readonly seed: bigint;
  readonly kind: 'init' | EngineInput['kind'];
  readonly client?: string;
  readonly body?: unknown;
}

/** A client row of the status endpoint. */
export interface StatusClient {
  id: string;
  state: string;
  connected: boolean;
  /** Milliseconds since the client last sent anything (or since the server started, if not seen since). */
  idleMs: number;
  /** Client clock minus server clock, milliseconds (from the last request's `sentAt`); informational only. */
  clockSkewMs: number | null;
}

/** The JSON served at `GET /status`. */
export interface ServerStatus {
  runId: string;
  runState: string;
  step: number;
  epoch: number;
  version: number;
  serverTime: number;
  uptimeMs: number;
  clients: StatusClient[];
  recentRounds: EngineRoundSummary[];
  connections: { open: number; authenticated: number };
  requests: { accepted: number };
  rejections: RejectionCounters;
  log: { records: number; bytes: number; tornBytesDropped: number; replayed: number; lastSnapshot: number };
  /**
   * The per-key table (rate-limit bucket, clock skew, last seen): current `size`, its `max`
   * (`server.client_table_max`) and how many entries were evicted so far (idle past `server.client_idle_ttl_secs`,
   * or least recently active past the cap). Connected clients are never evicted.
   */
  clientTable: { size: number; max: number; evictions: number };
}

/** Options of {@link startCoordinatorServer}. */
export interface CoordinatorServerOptions<S> {
  /** The validated run config. */
  config: RunConfig;
  /** The state machine. */
  engine: CoordinatorEngine<S>;
  /** Base for a relative `server.data_dir` (usually the config file's directory). Default: cwd. */
  baseDir?: string;
  /** Diagnostic line sink. Default: none. */
  logger?: (line: string) => void;
}

interface Conn {
  ws: WebSocket;
  nonce: Uint8Array;
  client?: string;
  lastId: number;
  subscribed: boolean;
  authTimer?: NodeJS.Timeout;
  preAuthBucket: TokenBucket;
}

interface ClientInfo {
  lastSeen: number;
  skewMs: number | null;
  disconnectedSince: number | null;
  bucket: TokenBucket;
}

interface Pending {
  record: LogRecord;
  after: () => void;
}

/**
 * The local coordinator server: the state machine on a timer, over HTTP + WebSocket, with ed25519 auth, limits,
 * a durable input log with snapshots, a status endpoint and graceful shutdown. Protocol:
 * `docs/coordinator-protocol.md`. Create with {@link startCoordinatorServer}.
 */
export class CoordinatorServer<S = unknown> {
  private readonly http: Server;
  private readonly wss: WebSocketServer;
  private readonly conns = new Set<Conn>();
  private readonly byClient = new Map<string, Conn>();
  private readonly clients = new Map<string, ClientInfo>();
  private readonly seenAuthSigs = new BoundedSet(100_000);
  private readonly allowlist: Set<string> | undefined;
  private readonly admins: Set<string>;
  private readonly startedAt = Date.now();
  private readonly recentRounds: EngineRoundSummary[] = [];
  private timer: NodeJS.Timeout | undefined;
  private state: S;
  private stateTextCache: { version: number; text: string } | undefined;
  private version: number;
  private lastTs: number;
  private lastSnapshot: number;
  private accepted = 0;
  private queue: Pending[] = [];
  private flushScheduled = false;
  private stopping: Promise<void> | undefined;
  private summary: EngineSummary;
  private clientEvictions = 0;
  private lastPrune = 0;
  private memberCache: { summary: EngineSummary; ids: Set<string> } | undefined;
  readonly rejections: RejectionCounters = {
    unauthenticated: 0,
    badSignature: 0,
    notAllowlisted: 0,
    replayed: 0,
    malformed: 0,
    oversized: 0,
    rateLimited: 0,
    coordinatorRejected: 0,
    authTimeout: 0,
    tooManyConnections: 0,
    notAdmin: 0,
  };
  private readonly logInfo: { tornBytesDropped: number; replayed: number };

  private constructor(
    private readonly config: RunConfig,
    private readonly engine: CoordinatorEngine<S>,
    private readonly log: InputLog,
    private readonly snapshotPath: string,
    restored: { state: S; version: number; lastTs: number; tornBytesDropped: number; replayed: number },
    private readonly logger: (line: string) => void,
  ) {
    this.state = restored.state;
    this.summary = engine.summarize(this.state);
    this.version = restored.version;
    this.lastSnapshot = restored.version;
    this.lastTs = restored.lastTs;
    this.logInfo = { tornBytesDropped: restored.tornBytesDropped, replayed: restored.replayed };
    this.allowlist = config.server.allowlist
      ? new Set(config.server.allowlist.map((k) => k.toLowerCase()))
      : undefined;
    this.admins = new Set((config.server.admin_keys ?? []).map((k) => k.toLowerCase()));
    this.http = createServer((req, res) => this.onHttp(req, res));
    this.http.headersTimeout = 10_000;
    this.http.requestTimeout = 10_000;
    this.wss = new WebSocketServer({ noServer: true, maxPayload: config.server.max_message_bytes });
    this.http.on('upgrade', (req, socket, head) => {
      const path = (req.url ?? '').split('?')[0];
      if (path !== WS_PATH) {
        socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
        return;
      }
      if (this.stopping || this.conns.size >= config.server.max_connections) {
        this.rejections.tooManyConnections += this.stopping ? 0 : 1;
        socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\n');
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws));
    });
  }

  /** Opens (or recovers) the data directory, replays the log, and starts listening. */
  static async start<S>(opts: CoordinatorServerOptions<S>): Promise<CoordinatorServer<S>> {
    const { config, engine } = opts;
    const logger = opts.logger ?? (() => {});
    const dir = isAbsolute(config.server.data_dir)
      ? config.server.data_dir
      : resolve(opts.baseDir ?? process.cwd(), config.server.data_dir);
    mkdirSync(dir, { recursive: true });
    const paths = dataPaths(dir);
    const restored = recover(config, engine, paths, logger);
    const server = new CoordinatorServer(config, engine, restored.log, paths.snapshot, restored, logger);
    await new Promise<void>((res, rej) => {
      server.http.once('error', rej);
      server.http.listen(config.server.port, config.server.host, () => {
        server.http.off('error', rej);
        res();
      });
    });
    server.timer = setInterval(() => server.onTimer(), config.server.tick_interval_ms);
    logger(`listening on ${server.url} (version ${server.version}, replayed ${restored.replayed} inputs)`);
    return server;
  }

  /** Bound address. */
  get address(): AddressInfo {
    return this.http.address() as AddressInfo;
  }

  /** Base HTTP URL, e.g. `http://127.0.0.1:40123`. */
  get url(): string {
    const a = this.address;
    return `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
  }

  /** WebSocket URL clients connect to. */
  get wsUrl(): string {
    return `${this.url.replace(/^http/, 'ws')}${WS_PATH}`;
  }

  /** The current (durable or about-to-be-durable) engine state. */
  get currentState(): S {
    return this.state;
  }

  /** Number of accepted inputs applied so far (the state version). */
  get currentVersion(): number {
    return this.version;
  }

  /** The tagged-JSON text of the current state, encoded at most once per version. */
  private get stateText(): string {
    if (this.stateTextCache?.version !== this.version) {
      this.stateTextCache = { version: this.version, text: encodeTagged(this.state) };
    }
    return this.stateTextCache.text;
  }

  /** sha256 (hex) of the tagged-JSON encoding of the current state: equal hashes mean identical states. */
  get stateHash(): string {
    return stateHash(this.stateText);
  }

  /** The JSON served at `/status`. */
  status(): ServerStatus {
    const now = Date.now();
    const s = this.summary;
    const seen = new Set<string>();
    const rows: StatusClient[] = [];
    const row = (id: string, state: string) => {
      seen.add(id);
      const info = this.clients.get(id);
      rows.push({
        id,
        state,
        connected: this.byClient.has(id),
        idleMs: now - (info?.lastSeen ?? this.startedAt),
        clockSkewMs: info?.skewMs ?? null,
      });
    };
    for (const c of s.clients) row(c.id, c.state);
    for (const id of this.byClient.keys()) if (!seen.has(id)) row(id, 'connected');
    return {
      runId: this.config.run_id,
      runState: s.runState,
      step: s.step,
      epoch: s.epoch,
      version: this.version,
      serverTime: now,
      uptimeMs: now - this.startedAt,
      clients: rows,
      recentRounds: [...this.recentRounds],
      connections: { open: this.conns.size, authenticated: this.byClient.size },
      requests: { accepted: this.accepted },
      rejections: { ...this.rejections },
      log: {
        records: this.version,
        bytes: this.log.bytes,
        tornBytesDropped: this.logInfo.tornBytesDropped,
        replayed: this.logInfo.replayed,
        lastSnapshot: this.lastSnapshot,
      },
      clientTable: {
        size: this.clients.size,
        max: this.config.server.client_table_max,
        evictions: this.clientEvictions,
      },
    };
  }

  /**
   * Graceful shutdown: stops accepting, stops the timer, makes pending inputs durable and answers them, writes a
   * final snapshot, closes every socket with 1001 and closes the log. Idempotent.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      if (this.timer) clearInterval(this.timer);
      if (this.broadcastTimer) clearTimeout(this.broadcastTimer);
      this.flush();
      if (this.version > this.lastSnapshot) this.snapshot();
      for (const c of this.conns) {
        if (c.authTimer) clearTimeout(c.authTimer);
        c.ws.close(1001, 'server shutting down');
      }
      const closed = new Promise<void>((res) => this.http.close(() => res()));
      // Sockets that do not finish the close handshake promptly are cut.
      const cut = setTimeout(() => {
        for (const c of this.conns) c.ws.terminate();
        this.http.closeAllConnections();
      }, 1000);
      await closed;
      clearTimeout(cut);
      this.wss.close();
      this.log.close();
      this.logger('stopped');
    })();
    return this.stopping;
  }

  // ---------------------------------------------------------------- HTTP

  private onHttp(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'application/json' });
      res.end(
        JSON.stringify({ error: { code: 'METHOD_NOT_ALLOWED', message: `${req.method} is not allowed` } }),
      );
      req.resume();
      return;
    }
    if (path === '/status') {
      const body = JSON.stringify(this.status());
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(body);
      return;
    }
    if (path === '/healthz') {
      res.writeHead(this.stopping ? 503 : 200, { 'content-type': 'text/plain' });
      res.end(this.stopping ? 'stopping' : 'ok');
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { code: 'NOT_FOUND', message: `no route ${path}` } }));
  }

  // ---------------------------------------------------------------- WebSocket

  private onConnection(ws: WebSocket): void {
    const conn: Conn = {
      ws,
      nonce: new Uint8Array(randomBytes(32)),
      lastId: 0,
      subscribed: false,
      preAuthBucket: new TokenBucket(
        this.config.server.rate_limit_per_sec,
        this.config.server.rate_limit_burst,
      ),
    };
    this.conns.add(conn);
    conn.authTimer = setTimeout(() => {
      if (!conn.client) {
        this.rejections.authTimeout++;
        ws.close(4408, 'auth timeout');
      }
    }, this.config.server.auth_timeout_ms);
    ws.on('message', (data, isBinary) => {
      const size = Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : (data as Buffer).byteLength;
      if (isBinary) {
        this.rejectNoId(conn, 'malformed', 'MALFORMED_MESSAGE', 'message: expected a text frame');
        return;
      }
      // ws enforces maxPayload itself (1009); this guards a fragmented frame sum, should ws ever allow one.
      if (size > this.config.server.max_message_bytes) {
        this.rejections.oversized++;
        ws.close(1009, 'message too large');
        return;
      }
      this.onMessage(
        conn,
        Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.concat(data as Buffer[]).toString('utf8'),
      );
    });
    ws.on('error', (err: Error & { code?: string }) => {
      if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') this.rejections.oversized++;
      else if (err.code?.startsWith('WS_ERR_')) this.rejections.malformed++;
    });
    ws.on('close', () => {
      if (conn.authTimer) clearTimeout(conn.authTimer);
      this.conns.delete(conn);
      if (conn.client && this.byClient.get(conn.client) === conn) {
        this.byClient.delete(conn.client);
        const info = this.clients.get(conn.client);
        if (info) {
          info.disconnectedSince = Date.now();
          this.touchClient(conn.client, info);
        }
      }
    });
    this.send(conn, {
      t: 'challenge',
      nonce: toHex(conn.nonce),
      runId: this.config.run_id,
      serverTime: Date.now(),
      protocol: PROTOCOL_VERSION,
    });
  }

  private send(conn: Conn, msg: ServerMessage): void {
    if (conn.ws.readyState === WebSocket.OPEN) conn.ws.send(encodeTagged(msg));
  }

  private rejectNoId(
    conn: Conn,
    counter: keyof RejectionCounters,
    code: string,
    message: string,
    id?: number,
  ): void {
    this.rejections[counter]++;
    const error: WireError = { code, message };
    if (id !== undefined) this.send(conn, { t: 'res', id, ok: false, error });
    else this.send(conn, { t: 'error', error });
  }

  private onMessage(conn: Conn, text: string): void {
    let msg: ClientMessage;
    try {
      msg = decodeClientMessage(text);
    } catch (e) {
      const err = e as CoordinatorClientError;
      const id = typeof err.details?.id === 'number' ? err.details.id : undefined;
      this.rejectNoId(conn, 'malformed', 'MALFORMED_MESSAGE', err.message, id);
      return;
    }
    if (msg.t === 'auth') {
      this.onAuth(conn, msg);
      return;
    }
    if (!conn.client) {
      if (!conn.preAuthBucket.take()) {
        this.rejections.rateLimited++;
        conn.ws.close(4429, 'rate limited');
        return;
      }
      this.rejectNoId(
        conn,
        'unauthenticated',
        'UNAUTHENTICATED',
        `${msg.t === 'req' ? `request ${msg.op}` : 'subscription'} before authentication: answer the challenge first`,
        msg.t === 'req' ? msg.id : undefined,
      );
      return;
    }
    const info = this.clients.get(conn.client)!;
    info.lastSeen = Date.now();
    if (!info.bucket.take()) {
      this.rejectNoId(
        conn,
        'rateLimited',
        'RATE_LIMITED',
        `rate limit of ${this.config.server.rate_limit_per_sec}/s (burst ${this.config.server.rate_limit_burst}) exceeded`,
        msg.t === 'req' ? msg.id : undefined,
      );
      return;
    }
    if (msg.t === 'sub') {
      conn.subscribed = true;
      // With inputs waiting for their group commit, the broadcast right after that commit serves this subscriber
      // (a state is only ever sent once durable).
      if (this.queue.length === 0 && (msg.after === undefined || msg.after < this.version))
        this.sendState(conn);
      return;
    }
    // msg.t === 'req'
    if (msg.id <= conn.lastId) {
      this.rejectNoId(
        conn,
        'replayed',
        'REPLAYED',
        `request id ${msg.id} is not above the previous id ${conn.lastId} on this connection`,
        msg.id,
      );
      return;
    }
    conn.lastId = msg.id;
    if ((ADMIN_OPS as readonly string[]).includes(msg.op) && !this.admins.has(conn.client)) {
      this.rejectNoId(
        conn,
        'notAdmin',
        'NOT_ADMIN',
        `${msg.op}: key ${conn.client} is not in server.admin_keys`,
        msg.id,
      );
      return;
    }
    if (msg.sentAt !== undefined) info.skewMs = Math.round(msg.sentAt - Date.now());
    const input: EngineInput = { kind: msg.op, client: conn.client, body: msg.body };
    const id = msg.id;
    const ok = this.applyInput(input, () =>
      this.send(conn, { t: 'res', id, ok: true, version: this.version }),
    );
    if (ok !== true) {
      this.rejections[ok.code === 'MALFORMED_MESSAGE' ? 'malformed' : 'coordinatorRejected']++;
      this.send(conn, { t: 'res', id, ok: false, error: ok });
    }
  }

  private onAuth(conn: Conn, msg: Extract<ClientMessage, { t: 'auth' }>): void {
    if (!conn.preAuthBucket.take()) {
      this.rejections.rateLimited++;
      conn.ws.close(4429, 'rate limited');
      return;
    }
    if (conn.client) {
      this.rejectNoId(conn, 'replayed', 'REPLAYED', 'auth: this connection is already authenticated');
      return;
    }
    const fail = (counter: keyof RejectionCounters, code: string, message: string, closeCode: number) => {
      this.rejectNoId(conn, counter, code, message);
      conn.ws.close(closeCode, code);
    };
    if (this.seenAuthSigs.has(msg.sig)) {
      fail(
        'replayed',
        'REPLAYED',
        'auth.sig: this signature was already used; sign the fresh challenge nonce',
        4401,
      );
      return;
    }
    const pub = fromHex(msg.pubkey, 32)!;
    const sig = fromHex(msg.sig, 64)!;
    if (!verify(sig, authMessage(this.config.run_id, conn.nonce), pub)) {
      fail(
        'badSignature',
        'BAD_SIGNATURE',
        'auth.sig: signature does not verify for auth.pubkey over the challenge',
        4401,
      );
      return;
    }
    this.seenAuthSigs.add(msg.sig);
    if (this.allowlist && !this.allowlist.has(msg.pubkey) && !this.admins.has(msg.pubkey)) {
      fail(
        'notAllowlisted',
        'NOT_ALLOWLISTED',
        `auth.pubkey: ${msg.pubkey} is not on this run's allowlist`,
        4403,
      );
      return;
    }
    if (conn.authTimer) clearTimeout(conn.authTimer);
    conn.client = msg.pubkey;
    const previous = this.byClient.get(msg.pubkey);
    if (previous && previous !== conn) {
      this.byClient.delete(msg.pubkey);
      previous.ws.close(4409, 'replaced by a newer connection for the same key');
    }
    this.byClient.set(msg.pubkey, conn);
    let info = this.clients.get(msg.pubkey);
    if (!info) {
      info = {
        lastSeen: Date.now(),
        skewMs: null,
        disconnectedSince: null,
        bucket: new TokenBucket(this.config.server.rate_limit_per_sec, this.config.server.rate_limit_burst),
      };
      this.clients.set(msg.pubkey, info);
      this.enforceClientCap();
    } else this.touchClient(msg.pubkey, info);
    info.lastSeen = Date.now();
    info.disconnectedSince = null;
    this.send(conn, { t: 'welcome', clientId: msg.pubkey, serverTime: Date.now(), version: this.version });
  }

  private sendState(conn: Conn): void {
    if (conn.ws.readyState !== WebSocket.OPEN) return;
    conn.ws.send(this.stateFrame());
  }

  private frameCache: { version: number; text: string } | undefined;
  private stateFrame(): string {
    if (this.frameCache?.version !== this.version) {
      // The state is already tagged-JSON text; splice it in rather than re-encoding.
      const text = `{"t":"state","version":${this.version},"serverTime":${Date.now()},"state":${this.stateText}}`;
      this.frameCache = { version: this.version, text };
    }
    return this.frameCache.text;
  }

  // ---------------------------------------------------------------- state machine

  private nextTs(): number {
    const ts = Math.max(this.lastTs, Math.floor(Date.now() / 1000));
    return ts;
  }

  /**
   * Applies an input now. On success the input is queued for the next group commit and `after` runs once it is
   * durable; returns true. On rejection returns the wire error (nothing changed).
   */
  private applyInput(input: EngineInput, after: () => void): true | WireError {
    if (this.stopping) return { code: 'CLOSED', message: 'server is shutting down' };
    const ts = this.nextTs();
    const seed = randomBytes(8).readBigUInt64LE(0);
    let next: S;
    try {
      next = this.engine.apply(this.state, input, ts, seed);
    } catch (e) {
      if (isCoordinatorClientError(e, 'MALFORMED_MESSAGE')) {
        return { code: e.code, message: e.message, details: { ...e.details } };
      }
      if (isCoordinatorClientError(e) || (e instanceof Error && 'code' in e)) {
        const err = e as Error & { code: unknown; details?: unknown };
        return {
          code: 'COORDINATOR_REJECTED',
          message: err.message,
          details: {
            reason: String(err.code),
            ...(typeof err.details === 'object' ? (err.details as object) : {}),
          },
        };
      }
      // An untyped throw is a bug in the engine: refuse the input, keep the state, report it.
      this.logger(`engine threw an untyped error on ${input.kind}: ${(e as Error)?.stack ?? String(e)}`);
      return { code: 'SERVER_ERROR', message: `internal error applying ${input.kind}` };
    }
    if (input.kind === 'tick' && (next === this.state || deepEqual(next, this.state))) return true; // no-op tick
    this.accepted += input.kind === 'tick' ? 0 : 1;
    this.version++;
    this.lastTs = ts;
    this.state = next;
    this.noteRounds(this.engine.summarize(next));
    const record: LogRecord = {
      seq: this.version,
      ts,
      seed,
      kind: input.kind,
      client: input.client,
      body: input.body,
    };
    this.queue.push({ record, after });
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
    // Every message re-ticks (a message may complete a phase, e.g. the last witness).
    if (input.kind !== 'tick') this.applyInput({ kind: 'tick' }, () => {});
    return true;
  }

  private noteRounds(s: EngineSummary): void {
    const prev = this.summary;
    this.summary = s;
    const cap = this.config.server.status_recent_rounds;
    for (const r of s.rounds) {
      const i = this.recentRounds.findIndex((x) => x.height === r.height && x.dataIndex === r.dataIndex);
      if (i >= 0) this.recentRounds[i] = r;
      else this.recentRounds.push(r);
    }
    while (this.recentRounds.length > cap) this.recentRounds.shift();
    if (prev.runState !== s.runState)
      this.logger(`state ${prev.runState} -> ${s.runState} (step ${s.step}, epoch ${s.epoch})`);
  }

  /** Group commit: one write + fsync for everything queued, then acks and one state broadcast. */
  private flush(): void {
    this.flushScheduled = false;
    if (this.queue.length === 0) return;
    const batch = this.queue;
    this.queue = [];
    this.log.append(batch.map((p) => p.record));
    for (const p of batch) p.after();
    this.scheduleBroadcast();
    if (this.version - this.lastSnapshot >= this.config.server.snapshot_every) this.snapshot();
  }

  private broadcastTimer: NodeJS.Timeout | undefined;
  private lastBroadcast = 0;
  private broadcastVersion = -1;

  /** Broadcasts the durable state now, or once `broadcast_interval_ms` has passed since the previous one. */
  private scheduleBroadcast(): void {
    if (this.broadcastTimer) return;
    const wait = this.lastBroadcast + this.config.server.broadcast_interval_ms - performance.now();
    if (wait <= 0) {
      this.broadcast();
      return;
    }
    this.broadcastTimer = setTimeout(() => {
      this.broadcastTimer = undefined;
      this.broadcast();
    }, wait);
  }

  private broadcast(): void {
    // Only durable state is ever broadcast: inputs still queued for the next group commit are not included.
    if (this.queue.length > 0 || this.broadcastVersion === this.version) return;
    this.lastBroadcast = performance.now();
    this.broadcastVersion = this.version;
    const frame = this.stateFrame();
    for (const c of this.conns) {
      if (c.subscribed && c.ws.readyState === WebSocket.OPEN) c.ws.send(frame);
    }
  }

  private snapshot(): void {
    writeSnapshot(this.snapshotPath, { version: this.version, lastTs: this.lastTs, state: this.state });
    this.lastSnapshot = this.version;
  }

  // ---------------------------------------------------------------- per-key table bounds

  /** Run members (Healthy or pending): their entries carry the withdrawal grace timer. */
  private members(): Set<string> {
    if (this.memberCache?.summary !== this.summary) {
      const ids = new Set<string>();
      for (const c of this.summary.clients) if (c.state === 'Healthy' || c.state === 'pending') ids.add(c.id);
      this.memberCache = { summary: this.summary, ids };
    }
    return this.memberCache.ids;
  }

  /** Never evicted: a connected client, or a disconnected run member still within its withdrawal grace. */
  private evictable(id: string, info: ClientInfo, members: Set<string>): boolean {
    if (this.byClient.has(id)) return false;
    return !(info.disconnectedSince !== null && members.has(id));
  }

  /** Marks an entry most recently active (the table's iteration order is the LRU order). */
  private touchClient(id: string, info: ClientInfo): void {
    this.clients.delete(id);
    this.clients.set(id, info);
  }

  /** Past `client_table_max`, evicts the least recently active evictable entries. */
  private enforceClientCap(): void {
    const max = this.config.server.client_table_max;
    if (this.clients.size <= max) return;
    const members = this.members();
    for (const [id, info] of this.clients) {
      if (this.clients.size <= max) break;
      if (this.evictable(id, info, members)) {
        this.clients.delete(id);
        this.clientEvictions++;
      }
    }
  }

  /** Evicts evictable entries idle (no message, no disconnect) for `client_idle_ttl_secs`. */
  private pruneIdleClients(now: number): void {
    const ttl = this.config.server.client_idle_ttl_secs * 1000;
    const members = this.members();
    for (const [id, info] of this.clients) {
      if (now - Math.max(info.lastSeen, info.disconnectedSince ?? 0) < ttl) continue;
      if (this.evictable(id, info, members)) {
        this.clients.delete(id);
        this.clientEvictions++;
      }
    }
  }

  private onTimer(): void {
    if (this.stopping) return;
    const now = Date.now();
    if (now - this.lastPrune >= 1000) {
      this.lastPrune = now;
      this.pruneIdleClients(now);
    }
    const grace = this.config.server.withdraw_after_disconnect_secs * 1000;
    for (const c of this.summary.clients) {
      if (c.state !== 'Healthy' && c.state !== 'pending') continue;
      if (this.byClient.has(c.id)) continue;
      let info = this.clients.get(c.id);
      if (!info) {
        // Known from the log but not seen since this process started: the grace period starts now.
        info = {
          lastSeen: this.startedAt,
          skewMs: null,
          disconnectedSince: now,
          bucket: new TokenBucket(this.config.server.rate_limit_per_sec, this.config.server.rate_limit_burst),
        };
        this.clients.set(c.id, info);
      }
      if (info.disconnectedSince !== null && now - info.disconnectedSince >= grace) {
        info.disconnectedSince = null;
        const r = this.applyInput({ kind: 'leave', client: c.id }, () => {});
        if (r !== true) this.logger(`withdrawing disconnected ${c.id} failed: ${r.message}`);
      }
    }
    this.applyInput({ kind: 'tick' }, () => {});
  }
}

/** Loads the snapshot (if any) and replays the log after it. */
export function recover<S>(
  config: RunConfig,
  engine: CoordinatorEngine<S>,
  paths: { log: string; snapshot: string },
  logger: (line: string) => void,
  toVersion: number = Number.POSITIVE_INFINITY,
  readOnly = false,
): { log: InputLog; state: S; version: number; lastTs: number; tornBytesDropped: number; replayed: number } {
  const { log, records, tornBytesDropped } = InputLog.open<LogRecord>(paths.log, { readOnly });
  try {
    if (tornBytesDropped > 0) logger(`input log: dropped a torn final record (${tornBytesDropped} bytes)`);
    const expectedInit = { run_id: config.run_id, coordinator: config.coordinator, model: config.model };
    if (records.length === 0) {
      if (readOnly)
        throw new CoordinatorClientError('LOG_CORRUPT', `${paths.log}: empty log`, { path: paths.log });
      const ts = Math.floor(Date.now() / 1000);
      const init: LogRecord = { seq: 0, ts, seed: 0n, kind: 'init', body: expectedInit };
      log.append([init]);
      return {
        log,
        state: engine.initial(config, ts),
        version: 0,
        lastTs: ts,
        tornBytesDropped,
        replayed: 0,
      };
    }
    const init = records[0]!;
    if (init.kind !== 'init' || init.seq !== 0) {
      throw new CoordinatorClientError('LOG_CORRUPT', `${paths.log}: first record is not the init record`, {
        path: paths.log,
      });
    }
    if (encodeTagged(init.body) !== encodeTagged(expectedInit)) {
      throw new CoordinatorClientError(
        'INVALID_CONFIG',
        `run_id/[coordinator]/[model] differ from the ones this data_dir (${paths.log}) was started with; restore them or use a new server.data_dir`,
        { field: 'coordinator', path: paths.log },
      );
    }
    let state = engine.initial(config, init.ts);
    let version = 0;
    let lastTs = init.ts;
    let snap: { version: number; lastTs: number; state: S } | undefined;
    try {
      snap = readSnapshot(paths.snapshot);
    } catch (e) {
      logger(`ignoring snapshot, replaying the whole log: ${(e as Error).message}`);
    }
    if (snap && snap.version <= records.length - 1 && snap.version <= toVersion) {
      state = snap.state;
      version = snap.version;
      lastTs = snap.lastTs;
    } else if (snap) {
      logger(`ignoring snapshot at version ${snap.version}: the log ends at ${records.length - 1}`);
    }
    let replayed = 0;
    for (let i = version + 1; i < records.length && i <= toVersion; i++) {
      const r = records[i]!;
      if (r.seq !== i) {
        throw new CoordinatorClientError('LOG_CORRUPT', `${paths.log}: record ${i} has seq ${r.seq}`, {
          path: paths.log,
        });
      }
      if (r.kind === 'init') {
        throw new CoordinatorClientError('LOG_CORRUPT', `${paths.log}: second init record at ${i}`, {
          path: paths.log,
        });
      }
      try {
        state = engine.apply(state, { kind: r.kind, client: r.client, body: r.body }, r.ts, r.seed);
      } catch (cause) {
        throw new CoordinatorClientError(
          'LOG_CORRUPT',
          `${paths.log}: replaying record ${i} (${r.kind}) failed: ${(cause as Error).message}`,
          { path: paths.log, seq: i },
          { cause },
        );
      }
      version = i;
      lastTs = r.ts;
      replayed++;
    }
    return { log, state, version, lastTs, tornBytesDropped, replayed };
  } catch (e) {
    log.close();
    throw e;
  }
}

/**
 * Starts a coordinator server (see {@link CoordinatorServer}).
 *
 * @example
 * ```ts
 * import { loadRunConfig, psycheEngine, startCoordinatorServer } from '@psyche/coordinator-client';
 * const server = await startCoordinatorServer({ config: loadRunConfig('run.toml'), engine: psycheEngine() });
 * console.log(server.wsUrl);
 * await server.stop();
 * ```
 */
export function startCoordinatorServer<S>(opts: CoordinatorServerOptions<S>): Promise<CoordinatorServer<S>> {
  return CoordinatorServer.start(opts);
}

/** sha256 (hex) of a state's tagged-JSON text (see {@link CoordinatorServer.stateHash}). */
export function stateHash(stateText: string): string {
  return createHash('sha256').update(stateText, 'utf8').digest('hex');
}

/**
 * Offline and read-only: replays a server data directory (snapshot + log) up to `toVersion` (default: everything
 * durable) and returns the resulting version, state and state hash, without starting a server or modifying any
 * file (a torn final record is reported, not truncated).
 */
export function inspectDataDir<S>(
  config: RunConfig,
  engine: CoordinatorEngine<S>,
  dataDir: string,
  toVersion?: number,
): { version: number; state: S; stateHash: string; tornBytesDropped: number } {
  const r = recover(config, engine, dataPaths(dataDir), () => {}, toVersion, true);
  r.log.close();
  return {
    version: r.version,
    state: r.state,
    stateHash: stateHash(encodeTagged(r.state)),
    tornBytesDropped: r.tornBytesDropped,
  };
}
