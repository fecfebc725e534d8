import { setMaxListeners } from 'node:events';
import { open, rename, stat, truncate, unlink } from 'node:fs/promises';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { type GossipSub, gossipsub, TopicValidatorResult } from '@libp2p/gossipsub';
import { identify } from '@libp2p/identify';
import {
  type AbortOptions,
  type ComponentLogger,
  type Connection,
  type Ed25519PrivateKey,
  type Logger,
  type PeerId,
  type Stream,
  TypedEventEmitter,
} from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { tcp } from '@libp2p/tcp';
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr';
import { createLibp2p, type Libp2p } from 'libp2p';
import {
  type Announcement,
  AnnouncementValidator,
  gossipTopic,
  type RejectionReason,
  runDigest,
  signAnnouncement,
  type VerifiedAnnouncement,
} from './announcement.js';
import {
  type BlobRef,
  blobKey,
  decodeRequest,
  decodeResponseHeader,
  encodeRequest,
  encodeResponseHeader,
  OP_GET,
  OP_PING,
  REQUEST_BYTES,
  RESPONSE_HEADER_BYTES,
  STATUS,
} from './blob-protocol.js';
import {
  BLOB_PROTOCOL,
  CHECKPOINT_CHUNK_BYTES,
  DOWNLOAD_TIMEOUT_MS,
  FETCH_RETRIES,
  INBOUND_CONNECTIONS_PER_SECOND,
  MAX_ANNOUNCEMENT_BYTES,
  MAX_BLOB_BYTES,
  MAX_CONCURRENT_DOWNLOADS,
  MAX_CONCURRENT_SERVES,
  MAX_ERRORS_PER_PEER,
  MAX_HOLDER_ENTRIES,
  MAX_HOLDERS_PER_BLOB,
  MAX_REPLAY_ENTRIES,
  REBROADCAST_INTERVAL_MS,
  REPLAY_WINDOW_ROUNDS,
  REQUEST_TIMEOUT_MS,
  RETRY_BACKOFF_MS,
  ROUND_TOLERANCE,
  SEND_CHUNK_BYTES,
} from './constants.js';
import { assertInteger, isP2PTransportError, P2PTransportError } from './errors.js';
import { bytesEqual, createHasher, type HashAlgorithm, hashBytes } from './hash.js';
import { loadOrCreateKeyFile, peerIdFromEd25519PublicKey } from './identity.js';
import { Semaphore } from './internal/semaphore.js';
import { StreamReader, sendAll } from './internal/stream-reader.js';
import { Metrics, type MetricsSnapshot, type PeerStats, rankPeers } from './metrics.js';

/** A peer given as a peer id string, a `PeerId`, or a raw 32-byte ed25519 public key (e.g. a Solana pubkey). */
export type PeerLike = string | PeerId | Uint8Array;

/** Options of {@link createP2PNode}. Options marked "swarm-wide" must match on every node of a run. */
export interface P2PNodeInit {
  /** Run identifier; the gossip topic is derived from it (swarm-wide). */
  runId: string;
  /** Identity key. Mutually exclusive with `keyFile`. A random key is generated when both are absent. */
  privateKey?: Ed25519PrivateKey;
  /** Path of a Solana-compatible key file (JSON array of 64 bytes); created with mode 0600 if missing. */
  keyFile?: string;
  /** Listen multiaddrs. Default `['/ip4/127.0.0.1/tcp/0']`. */
  listen?: string[];
  /** Run members allowed to connect, gossip and be served. `null`/absent: open (no gating). */
  allowlist?: Iterable<PeerLike> | null;
  /** Logger factory (libp2p `ComponentLogger`); libp2p's default logger when absent. */
  logger?: ComponentLogger;
  /** Max announcement size in bytes (swarm-wide). Default 4096. */
  maxAnnouncementBytes?: number;
  /** Accepted distance between an announcement's round and the current round. Default 1. */
  roundTolerance?: number;
  /** Largest blob this node fetches. Default 1 GiB. */
  maxBlobBytes?: number;
  /** Concurrent downloads. Default 4. */
  maxConcurrentDownloads?: number;
  /** Concurrent blob requests served before answering BUSY. Default 32. */
  maxConcurrentServes?: number;
  /** Per-attempt download timeout. Default 600 000 ms. */
  downloadTimeoutMs?: number;
  /** Longest time one served transfer may take (a stalled reader frees its slot then). Default 600 000 ms. */
  serveTimeoutMs?: number;
  /** Time allowed for a request frame or a response header. Default 10 000 ms. */
  requestTimeoutMs?: number;
  /** Failed attempts after which a peer is no longer tried. Default 5. */
  maxErrorsPerPeer?: number;
  /** Rounds of retries over all holders after every holder failed. Default 3 (Psyche). */
  fetchRetries?: number;
  /** Back-off before retry round n is `retryBackoffMs · 2^(n−1)`. Default 2000 ms (Psyche). */
  retryBackoffMs?: number;
  /** Upload cap in bytes/s over all served blobs; `0`/absent means unlimited. */
  maxServeBytesPerSecond?: number;
  /** Keep fetched blobs in the local store so they can be served on. Default `true`. */
  keepFetched?: boolean;
  /**
   * Inbound connections accepted per second from one host (libp2p rate limit; libp2p's default of 5 is too
   * low when several nodes share a host, as in local runs). Default 64.
   */
  inboundConnectionsPerSecondPerHost?: number;
  /** Re-publish one live own announcement (nonce + 1) this often; 0 disables. Default 10 000 ms (Psyche). */
  rebroadcastIntervalMs?: number;
  /** Gossipsub seen-cache TTL (duplicate suppression). Default gossipsub's 120 000 ms. */
  gossipSeenTtlMs?: number;
  /**
   * Most replay-protection entries (signer, kind, round, batch) kept, even if {@link P2PNode.setRound} is never
   * called. Over it the lowest rounds are evicted first and announcements at or below them are rejected as
   * `replayed`. Default 65 536.
   */
  maxReplayEntries?: number;
  /**
   * Most blobs whose announced holders are tracked, and most own announcements (with their nonce counters)
   * kept for re-broadcast, even if {@link P2PNode.setRound} is never called; the oldest are evicted first.
   * Default 16 384.
   */
  maxHolderEntries?: number;
}

/** Progress of a download attempt. */
export interface FetchProgress {
  /** Peer the bytes come from. */
  peer: string;
  /** Bytes of the blob held so far (for files: including resumed bytes). */
  bytes: number;
  /** Total blob size. */
  total: number;
}

/** Options of {@link P2PNode.fetchBlob}. */
export interface FetchOptions extends AbortOptions {
  /** Extra candidate holders, tried together with peers that announced the blob. */
  providers?: PeerLike[];
  /** Called as bytes arrive. */
  onProgress?: (progress: FetchProgress) => void;
}

/** Options of {@link P2PNode.fetchBlobToFile}. */
export interface FetchFileOptions extends FetchOptions {
  /** Bytes per range request. Default 4 MiB. */
  chunkBytes?: number;
}

/** Result of {@link P2PNode.fetchBlobToFile}. */
export interface FetchFileResult {
  path: string;
  /** Bytes already present in `<path>.part` when the fetch started. */
  resumedFromBytes: number;
  /** Peers that served at least one chunk. */
  peers: string[];
}

/** Detail of `announcement:rejected`. */
export interface RejectionEvent {
  reason: RejectionReason;
  message: string;
  /** Peer that forwarded the message to us. */
  propagationSource: string;
}

/** Typed events of {@link P2PNode}. Names are `noun:verb`. */
export interface P2PNodeEvents {
  /** A verified "I have result R" announcement. */
  'announcement:result': CustomEvent<VerifiedAnnouncement & { kind: 'result' }>;
  /** A verified "finished round r" announcement. */
  'announcement:finished': CustomEvent<VerifiedAnnouncement & { kind: 'finished' }>;
  /** An announcement failed a check (also counted in metrics). */
  'announcement:rejected': CustomEvent<RejectionEvent>;
  /** A blob was fetched and its hash verified. */
  'blob:fetched': CustomEvent<{ ref: BlobRef; peer: string }>;
  /** A blob (range) was served to a peer. */
  'blob:served': CustomEvent<{ key: string; peer: string; bytes: number }>;
  /** A peer was penalised (bad data). */
  'peer:penalised': CustomEvent<{ peer: string; reason: string }>;
  /** A connection to a peer opened. */
  'peer:connect': CustomEvent<string>;
  /** The last connection to a peer closed. */
  'peer:disconnect': CustomEvent<string>;
}

interface StoredBlob {
  ref: BlobRef;
  /** In-memory payload, or `null` for a file-backed blob. */
  bytes: Uint8Array | null;
  /** Path of a file-backed blob (served from disk in ranges). */
  file: string | null;
  round: number | null;
}

interface OwnAnnouncement {
  round: number;
  /** Last nonce used for this key (`-1`: none yet). */
  nonce: number;
  /** Last published announcement, re-broadcast while live; `null` before publishing or once stale. */
  announcement: Announcement | null;
}

interface Holder {
  peers: Set<string>;
  round: number;
}

function toPeerIdString(p: PeerLike, parameter: string): string {
  if (p instanceof Uint8Array) return peerIdFromEd25519PublicKey(p).toString();
  if (typeof p === 'string') {
    try {
      return peerIdFromString(p).toString();
    } catch (cause) {
      throw new P2PTransportError(
        'INVALID_PARAMETER',
        `${parameter}: '${p}' is not a peer id`,
        { parameter, value: p },
        { cause },
      );
    }
  }
  if (p !== null && typeof p === 'object' && typeof p.toString === 'function' && 'type' in p)
    return p.toString();
  throw new P2PTransportError(
    'INVALID_PARAMETER',
    `${parameter} must be a peer id string, PeerId or 32-byte public key`,
    {
      parameter,
    },
  );
}

/** Nonce/replay key of an announcement, as used by {@link AnnouncementValidator}. */
function announcementKey(a: Announcement): string {
  return a.kind === 'result' ? `result/${a.round}/${a.batchId}` : `finished/${a.round}`;
}

function assertBlobRef(ref: BlobRef, maxBytes: number): void {
  if (ref === null || typeof ref !== 'object') {
    throw new P2PTransportError('INVALID_PARAMETER', 'ref must be a BlobRef object', { parameter: 'ref' });
  }
  if (ref.hashAlgorithm !== 'sha256' && ref.hashAlgorithm !== 'blake3') {
    throw new P2PTransportError('INVALID_PARAMETER', "ref.hashAlgorithm must be 'sha256' or 'blake3'", {
      parameter: 'ref.hashAlgorithm',
      value: ref.hashAlgorithm,
    });
  }
  if (!(ref.hash instanceof Uint8Array) || ref.hash.byteLength !== 32) {
    throw new P2PTransportError('INVALID_PARAMETER', 'ref.hash must be a 32-byte Uint8Array', {
      parameter: 'ref.hash',
    });
  }
  assertInteger('ref.size', ref.size, 0, Number.MAX_SAFE_INTEGER);
  if (ref.size > maxBytes) {
    throw new P2PTransportError('SIZE_EXCEEDED', `ref.size ${ref.size} exceeds maxBlobBytes ${maxBytes}`, {
      parameter: 'ref.size',
      size: ref.size,
      max: maxBytes,
    });
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * Creates a Psyche P2P node (not started). Resolves the identity (key file, key, or random), and builds a
 * libp2p 3 node with TCP + noise + yamux + identify + gossipsub (StrictNoSign: announcements carry their own
 * ed25519 signature) and the allowlist connection gater.
 *
 * @example
 * ```ts
 * import { createP2PNode } from '@psyche/p2p-transport';
 * const node = await createP2PNode({ runId: 'my-run', keyFile: './identity.json' });
 * await node.start();
 * ```
 * @throws {P2PTransportError} INVALID_PARAMETER / INVALID_KEY_FILE
 */
export async function createP2PNode(init: P2PNodeInit): Promise<P2PNode> {
  if (init === null || typeof init !== 'object') {
    throw new P2PTransportError('INVALID_PARAMETER', 'init must be an options object', { parameter: 'init' });
  }
  if (init.privateKey !== undefined && init.keyFile !== undefined) {
    throw new P2PTransportError('INVALID_PARAMETER', 'pass either privateKey or keyFile, not both', {
      parameter: 'privateKey/keyFile',
    });
  }
  const { generateKeyPair } = await import('@libp2p/crypto/keys');
  const key =
    init.privateKey ??
    (init.keyFile !== undefined ? await loadOrCreateKeyFile(init.keyFile) : await generateKeyPair('Ed25519'));
  if (key.type !== 'Ed25519') {
    throw new P2PTransportError('INVALID_PARAMETER', `privateKey must be Ed25519, got ${String(key.type)}`, {
      parameter: 'privateKey',
    });
  }
  const node = new P2PNode(init, key);
  await node.init();
  return node;
}

/**
 * A Psyche network node: signed run announcements over gossipsub, a content-addressed blob protocol, an
 * allowlist gater and per-peer metrics. Create with {@link createP2PNode}; call {@link start} and {@link stop}.
 */
export class P2PNode extends TypedEventEmitter<P2PNodeEvents> {
  readonly [Symbol.toStringTag] = '@psyche/p2p-transport';
  /** Gossipsub topic of the run. */
  readonly topic: string;
  /** This node's peer id string. */
  readonly peerId: string;
  /** This node's raw 32-byte ed25519 public key (the Solana public key bytes of the same key). */
  readonly publicKey: Uint8Array;

  private readonly key: Ed25519PrivateKey;
  private readonly run: Uint8Array;
  private readonly cfg: Required<
    Omit<
      P2PNodeInit,
      | 'runId'
      | 'privateKey'
      | 'keyFile'
      | 'allowlist'
      | 'logger'
      | 'gossipSeenTtlMs'
      | 'listen'
      | 'inboundConnectionsPerSecondPerHost'
    >
  >;
  private readonly init_: P2PNodeInit;
  private allowlist: Set<string> | null;
  private libp2p!: Libp2p<{ pubsub: GossipSub }>;
  private log!: Logger;
  private readonly validator: AnnouncementValidator;
  private readonly metricsStore = new Metrics();
  private readonly blobs = new Map<string, StoredBlob>();
  private readonly holdersByKey = new Map<string, Holder>();
  private readonly verified = new WeakMap<Uint8Array, VerifiedAnnouncement>();
  private readonly downloads: Semaphore;
  private readonly serves: Semaphore;
  private shutdown = new AbortController();
  private started = false;
  private nextSendAt = 0;
  private round: number | null = null;

  /** @internal use {@link createP2PNode}. */
  constructor(init: P2PNodeInit, key: Ed25519PrivateKey) {
    super();
    this.init_ = init;
    this.key = key;
    this.run = runDigest(init.runId);
    this.topic = gossipTopic(init.runId);
    this.publicKey = key.publicKey.raw;
    this.peerId = peerIdFromEd25519PublicKey(this.publicKey).toString();
    this.cfg = {
      maxAnnouncementBytes: init.maxAnnouncementBytes ?? MAX_ANNOUNCEMENT_BYTES,
      roundTolerance: init.roundTolerance ?? ROUND_TOLERANCE,
      maxBlobBytes: init.maxBlobBytes ?? MAX_BLOB_BYTES,
      maxConcurrentDownloads: init.maxConcurrentDownloads ?? MAX_CONCURRENT_DOWNLOADS,
      maxConcurrentServes: init.maxConcurrentServes ?? MAX_CONCURRENT_SERVES,
      downloadTimeoutMs: init.downloadTimeoutMs ?? DOWNLOAD_TIMEOUT_MS,
      requestTimeoutMs: init.requestTimeoutMs ?? REQUEST_TIMEOUT_MS,
      serveTimeoutMs: init.serveTimeoutMs ?? DOWNLOAD_TIMEOUT_MS,
      maxErrorsPerPeer: init.maxErrorsPerPeer ?? MAX_ERRORS_PER_PEER,
      fetchRetries: init.fetchRetries ?? FETCH_RETRIES,
      retryBackoffMs: init.retryBackoffMs ?? RETRY_BACKOFF_MS,
      maxServeBytesPerSecond: init.maxServeBytesPerSecond ?? 0,
      keepFetched: init.keepFetched ?? true,
      rebroadcastIntervalMs: init.rebroadcastIntervalMs ?? REBROADCAST_INTERVAL_MS,
      maxReplayEntries: init.maxReplayEntries ?? MAX_REPLAY_ENTRIES,
      maxHolderEntries: init.maxHolderEntries ?? MAX_HOLDER_ENTRIES,
    };
    assertInteger('maxBlobBytes', this.cfg.maxBlobBytes, 0, Number.MAX_SAFE_INTEGER);
    assertInteger('maxConcurrentDownloads', this.cfg.maxConcurrentDownloads, 1, 1024);
    assertInteger('maxConcurrentServes', this.cfg.maxConcurrentServes, 1, 4096);
    assertInteger('downloadTimeoutMs', this.cfg.downloadTimeoutMs, 1, 2 ** 31 - 1);
    assertInteger('requestTimeoutMs', this.cfg.requestTimeoutMs, 1, 2 ** 31 - 1);
    assertInteger('serveTimeoutMs', this.cfg.serveTimeoutMs, 1, 2 ** 31 - 1);
    assertInteger('maxErrorsPerPeer', this.cfg.maxErrorsPerPeer, 1, 1_000_000);
    assertInteger('fetchRetries', this.cfg.fetchRetries, 0, 100);
    assertInteger('rebroadcastIntervalMs', this.cfg.rebroadcastIntervalMs, 0, 2 ** 31 - 1);
    assertInteger('retryBackoffMs', this.cfg.retryBackoffMs, 0, 2 ** 31 - 1);
    assertInteger('maxReplayEntries', this.cfg.maxReplayEntries, 8, 100_000_000);
    assertInteger('maxHolderEntries', this.cfg.maxHolderEntries, 1, 100_000_000);
    assertInteger('maxServeBytesPerSecond', this.cfg.maxServeBytesPerSecond, 0, Number.MAX_SAFE_INTEGER);
    if (init.inboundConnectionsPerSecondPerHost !== undefined) {
      assertInteger(
        'inboundConnectionsPerSecondPerHost',
        init.inboundConnectionsPerSecondPerHost,
        1,
        1_000_000,
      );
    }
    if (init.gossipSeenTtlMs !== undefined)
      assertInteger('gossipSeenTtlMs', init.gossipSeenTtlMs, 1, 2 ** 31 - 1);
    this.allowlist = this.normaliseAllowlist(init.allowlist);
    this.validator = new AnnouncementValidator({
      run: this.run,
      maxBytes: this.cfg.maxAnnouncementBytes,
      roundTolerance: this.cfg.roundTolerance,
      isAllowed: (id) => this.isAllowed(id),
      maxReplayEntries: this.cfg.maxReplayEntries,
    });
    this.downloads = new Semaphore(this.cfg.maxConcurrentDownloads);
    this.serves = new Semaphore(this.cfg.maxConcurrentServes);
  }

  /** @internal builds the libp2p node. */
  async init(): Promise<void> {
    const listen = this.init_.listen ?? ['/ip4/127.0.0.1/tcp/0'];
    if (!Array.isArray(listen) || listen.some((a) => typeof a !== 'string')) {
      throw new P2PTransportError('INVALID_PARAMETER', 'listen must be an array of multiaddr strings', {
        parameter: 'listen',
      });
    }
    const gossipOpts: Parameters<typeof gossipsub>[0] = {
      globalSignaturePolicy: 'StrictNoSign',
      allowPublishToZeroTopicPeers: true,
      emitSelf: false,
      ignoreDuplicatePublishError: true,
    };
    if (this.init_.gossipSeenTtlMs !== undefined) gossipOpts.seenTTL = this.init_.gossipSeenTtlMs;
    this.libp2p = await createLibp2p({
      start: false,
      privateKey: this.key,
      addresses: { listen },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      connectionManager: {
        inboundConnectionThreshold:
          this.init_.inboundConnectionsPerSecondPerHost ?? INBOUND_CONNECTIONS_PER_SECOND,
        maxIncomingPendingConnections: Math.max(
          64,
          this.init_.inboundConnectionsPerSecondPerHost ?? INBOUND_CONNECTIONS_PER_SECOND,
        ),
      },
      connectionGater: {
        denyDialPeer: (peer) => this.deny(peer.toString()),
        denyInboundEncryptedConnection: (peer) => this.deny(peer.toString()),
        denyOutboundEncryptedConnection: (peer) => this.deny(peer.toString()),
      },
      services: { identify: identify(), pubsub: gossipsub(gossipOpts) },
      ...(this.init_.logger !== undefined ? { logger: this.init_.logger } : {}),
    });
    this.log = this.libp2p.logger.forComponent('psyche:p2p');
  }

  /** Whether {@link start} completed and {@link stop} was not called. */
  get isStarted(): boolean {
    return this.started;
  }

  /** Starts listening, registers the blob protocol and joins the run topic. */
  async start(options: AbortOptions = {}): Promise<void> {
    options.signal?.throwIfAborted();
    if (this.started) return;
    this.shutdown = new AbortController();
    // every download combines its signal with this one (AbortSignal.any): no listener cap
    setMaxListeners(Number.POSITIVE_INFINITY, this.shutdown.signal);
    await this.libp2p.start();
    await this.libp2p.handle(
      BLOB_PROTOCOL,
      (stream, connection) => this.handleBlobStream(stream, connection),
      {
        maxInboundStreams: this.cfg.maxConcurrentServes * 2,
        maxOutboundStreams: this.cfg.maxConcurrentDownloads * 2 + 16,
      },
    );
    const pubsub = this.libp2p.services.pubsub;
    pubsub.topicValidators.set(this.topic, (peer, msg) => this.validateGossip(peer, msg.data));
    pubsub.addEventListener('message', this.onGossipMessage);
    pubsub.subscribe(this.topic);
    this.libp2p.addEventListener('peer:connect', this.onPeerConnect);
    this.libp2p.addEventListener('peer:disconnect', this.onPeerDisconnect);
    this.started = true;
    if (this.cfg.rebroadcastIntervalMs > 0) {
      this.rebroadcastTimer = setInterval(() => this.rebroadcastTick(), this.cfg.rebroadcastIntervalMs);
      this.rebroadcastTimer.unref();
    }
    this.log('started %s on %s', this.peerId, this.getMultiaddrs().join(', '));
  }

  /** Aborts in-flight work and stops libp2p. Safe to call twice or before start. */
  async stop(options: AbortOptions = {}): Promise<void> {
    options.signal?.throwIfAborted();
    if (!this.started) return;
    this.started = false;
    clearInterval(this.rebroadcastTimer);
    this.shutdown.abort(new P2PTransportError('ABORTED', 'node is stopping'));
    const pubsub = this.libp2p.services.pubsub;
    pubsub.removeEventListener('message', this.onGossipMessage);
    this.libp2p.removeEventListener('peer:connect', this.onPeerConnect);
    this.libp2p.removeEventListener('peer:disconnect', this.onPeerDisconnect);
    await this.libp2p.stop();
  }

  /** Listen addresses including `/p2p/<peer id>`. */
  getMultiaddrs(): string[] {
    return this.libp2p.getMultiaddrs().map((m) => m.toString());
  }

  /** Peer ids with an open connection. */
  getConnectedPeers(): string[] {
    return this.libp2p.getPeers().map((p) => p.toString());
  }

  /** Peers subscribed to the run topic that our announcements reach (outbound gossip stream open). */
  getGossipPeers(): string[] {
    const pubsub = this.libp2p.services.pubsub;
    // A publish reaches a subscriber only once our outbound gossip stream to it is open. The gossipsub
    // implementation exposes that map (not part of its interface type); without it, fall back to subscribers.
    const outbound = (pubsub as unknown as { streamsOutbound?: Map<string, unknown> }).streamsOutbound;
    return pubsub
      .getSubscribers(this.topic)
      .map((p) => p.toString())
      .filter((id) => outbound === undefined || outbound.has(id));
  }

  /** Resolves once at least `n` peers are subscribed to the run topic. */
  async waitForGossipPeers(n: number, options: AbortOptions = {}): Promise<void> {
    assertInteger('n', n, 0, 1_000_000);
    const pubsub = this.libp2p.services.pubsub;
    if (this.getGossipPeers().length >= n) return;
    await new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (this.getGossipPeers().length >= n) finish();
        else if (!this.started) onAbort();
      };
      const onAbort = (): void => {
        cleanup();
        reject(new P2PTransportError('ABORTED', `aborted waiting for ${n} gossip peers`, { n }));
      };
      // outbound gossip streams open without an event: poll briefly as well
      const poll = setInterval(check, 50);
      const cleanup = (): void => {
        clearInterval(poll);
        pubsub.removeEventListener('subscription-change', check);
        pubsub.removeEventListener('gossipsub:heartbeat', check);
        options.signal?.removeEventListener('abort', onAbort);
      };
      const finish = (): void => {
        cleanup();
        resolve();
      };
      pubsub.addEventListener('subscription-change', check);
      pubsub.addEventListener('gossipsub:heartbeat', check);
      options.signal?.addEventListener('abort', onAbort, { once: true });
      if (options.signal?.aborted === true) onAbort();
    });
  }

  /**
   * Records addresses of a peer (e.g. from the coordinator's client list) so blob fetches can dial it
   * directly without a prior connection. Addresses must not include `/p2p/`.
   */
  async addPeerAddresses(peer: PeerLike, addrs: string[], options: AbortOptions = {}): Promise<void> {
    this.assertStarted('addPeerAddresses');
    const id = peerIdFromString(toPeerIdString(peer, 'peer'));
    if (!Array.isArray(addrs)) {
      throw new P2PTransportError('INVALID_PARAMETER', 'addrs must be an array of multiaddr strings', {
        parameter: 'addrs',
      });
    }
    const multiaddrs = addrs.map((a, i) => {
      try {
        return multiaddr(a).decapsulateCode(421);
      } catch (cause) {
        throw new P2PTransportError(
          'INVALID_PARAMETER',
          `addrs[${i}]: '${a}' is not a multiaddr`,
          { parameter: `addrs[${i}]` },
          { cause },
        );
      }
    });
    await this.libp2p.peerStore.merge(id, { multiaddrs }, options);
  }

  /** Dials a peer by multiaddr (must include `/p2p/<id>`) or peer id. */
  async dial(target: string | Multiaddr | PeerLike, options: AbortOptions = {}): Promise<string> {
    this.assertStarted('dial');
    let conn: Connection;
    try {
      if (typeof target === 'string' && target.startsWith('/')) {
        conn = await this.libp2p.dial(multiaddr(target), options);
      } else if (typeof target === 'object' && target !== null && 'protoCodes' in target) {
        conn = await this.libp2p.dial(target as Multiaddr, options);
      } else {
        conn = await this.libp2p.dial(
          peerIdFromString(toPeerIdString(target as PeerLike, 'target')),
          options,
        );
      }
    } catch (e) {
      if (isP2PTransportError(e)) throw e;
      const name = (e as Error).name;
      if (name === 'DialDeniedError' || /denied|gater/i.test((e as Error).message)) {
        throw new P2PTransportError(
          'PEER_NOT_ALLOWED',
          `dial ${String(target)}: refused by the allowlist`,
          { target: String(target) },
          { cause: e },
        );
      }
      throw new P2PTransportError(
        'DIAL_FAILED',
        `dial ${String(target)} failed: ${(e as Error).message}`,
        { target: String(target) },
        {
          cause: e,
        },
      );
    }
    return conn.remotePeer.toString();
  }

  /**
   * Sets the current round (from the coordinator): drives the off-round check, per-round bytes and pruning of
   * replay state, holders and own announcements older than the replay window. (That state is also capped by
   * `maxReplayEntries` / `maxHolderEntries` whether or not rounds are set.)
   */
  setRound(round: number): void {
    assertInteger('round', round, 0, 0xffff_ffff);
    this.round = round;
    this.validator.currentRound = round;
    this.metricsStore.currentRound = round;
    this.validator.prune(round);
    const window = Math.max(REPLAY_WINDOW_ROUNDS, this.cfg.roundTolerance + 1);
    for (const [k, h] of this.holdersByKey) if (h.round + window < round) this.holdersByKey.delete(k);
    for (const [k, o] of this.own) if (o.round + window < round) this.own.delete(k);
  }

  /** Current round, `null` before {@link setRound}. */
  get currentRound(): number | null {
    return this.round;
  }

  /**
   * Replaces the allowlist (the run's current members, set by the coordinator); `null` opens the node.
   * Connections to peers no longer allowed are closed.
   */
  async setAllowlist(peers: Iterable<PeerLike> | null, options: AbortOptions = {}): Promise<void> {
    this.allowlist = this.normaliseAllowlist(peers);
    if (!this.started) return;
    const drop = this.libp2p.getPeers().filter((p) => !this.isAllowed(p.toString()));
    await Promise.all(drop.map((p) => this.libp2p.hangUp(p, options).catch(() => undefined)));
  }

  /** Whether `peerId` may connect, gossip and be served (always true for an open node and for itself). */
  isAllowed(peerId: string): boolean {
    return this.allowlist === null || peerId === this.peerId || this.allowlist.has(peerId);
  }

  // ---------------------------------------------------------------- blobs

  /**
   * Stores `bytes` (copied) and returns its content address. `round` tags it for {@link pruneBlobs}.
   */
  putBlob(bytes: Uint8Array, options: { hashAlgorithm?: HashAlgorithm; round?: number } = {}): BlobRef {
    if (!(bytes instanceof Uint8Array)) {
      throw new P2PTransportError('INVALID_PARAMETER', 'bytes must be a Uint8Array', { parameter: 'bytes' });
    }
    const hashAlgorithm = options.hashAlgorithm ?? 'sha256';
    if (options.round !== undefined) assertInteger('round', options.round, 0, 0xffff_ffff);
    const copy = bytes.slice();
    const ref: BlobRef = { hashAlgorithm, hash: hashBytes(copy, hashAlgorithm), size: copy.byteLength };
    this.blobs.set(blobKey(ref), { ref, bytes: copy, file: null, round: options.round ?? null });
    return ref;
  }

  /**
   * Serves a file (e.g. a model checkpoint) without loading it into memory: hashes it once, then answers
   * range requests from disk. If the file changes afterwards, fetchers detect it by hash and reject it.
   */
  async putBlobFile(
    path: string,
    options: { hashAlgorithm?: HashAlgorithm; round?: number } & AbortOptions = {},
  ): Promise<BlobRef> {
    if (typeof path !== 'string' || path.length === 0) {
      throw new P2PTransportError('INVALID_PARAMETER', 'path must be a non-empty string', {
        parameter: 'path',
      });
    }
    const hashAlgorithm = options.hashAlgorithm ?? 'sha256';
    if (options.round !== undefined) assertInteger('round', options.round, 0, 0xffff_ffff);
    const hasher = createHasher(hashAlgorithm);
    let size = 0;
    let fh: Awaited<ReturnType<typeof open>>;
    try {
      fh = await open(path, 'r');
    } catch (cause) {
      throw new P2PTransportError(
        'INVALID_PARAMETER',
        `path ${path}: cannot be opened`,
        { parameter: 'path' },
        { cause },
      );
    }
    try {
      const buf = new Uint8Array(4 * 1024 * 1024);
      for (;;) {
        options.signal?.throwIfAborted();
        const { bytesRead } = await fh.read(buf, 0, buf.byteLength, size);
        if (bytesRead === 0) break;
        hasher.update(buf.subarray(0, bytesRead));
        size += bytesRead;
      }
    } finally {
      await fh.close();
    }
    const ref: BlobRef = { hashAlgorithm, hash: hasher.digest(), size };
    this.blobs.set(blobKey(ref), { ref, bytes: null, file: path, round: options.round ?? null });
    return ref;
  }

  /** Whether the blob is in the local store. */
  hasBlob(ref: BlobRef): boolean {
    return this.blobs.has(blobKey(ref));
  }

  /** A copy of a locally stored in-memory blob, or `undefined` (also for file-backed blobs). */
  getBlob(ref: BlobRef): Uint8Array | undefined {
    return this.blobs.get(blobKey(ref))?.bytes?.slice();
  }

  /** Removes a blob from the local store; returns whether it was there. */
  removeBlob(ref: BlobRef): boolean {
    return this.blobs.delete(blobKey(ref));
  }

  /** Removes blobs tagged with a round older than `round`; returns how many. */
  pruneBlobs(beforeRound: number): number {
    assertInteger('beforeRound', beforeRound, 0, 0xffff_ffff);
    let n = 0;
    for (const [k, b] of this.blobs) {
      if (b.round !== null && b.round < beforeRound) {
        this.blobs.delete(k);
        n++;
      }
    }
    return n;
  }

  /** Peers that announced holding the blob (from verified result announcements). */
  holders(ref: Pick<BlobRef, 'hashAlgorithm' | 'hash'>): string[] {
    return [...(this.holdersByKey.get(blobKey(ref))?.peers ?? [])];
  }

  // ---------------------------------------------------------------- gossip

  /**
   * Publishes a signed "I have result" announcement for a blob (normally one from {@link putBlob}). The nonce
   * defaults to one more than the last one this node used for (round, batchId), so re-broadcasts are accepted.
   * Returns the number of peers it was sent to.
   */
  async announceResult(
    a: { round: number; batchId: number; blob: BlobRef; nonce?: number },
    options: AbortOptions = {},
  ): Promise<number> {
    assertBlobRef(a.blob, Number.MAX_SAFE_INTEGER);
    return this.publish(
      {
        kind: 'result',
        round: a.round,
        batchId: a.batchId,
        hashAlgorithm: a.blob.hashAlgorithm,
        hash: a.blob.hash,
        size: a.blob.size,
        nonce: a.nonce ?? this.nextNonce(`result/${a.round}/${a.batchId}`, a.round),
      },
      options,
    );
  }

  /** Publishes a signed "finished round r" announcement. Returns the number of peers it was sent to. */
  async announceFinished(a: { round: number; nonce?: number }, options: AbortOptions = {}): Promise<number> {
    return this.publish(
      { kind: 'finished', round: a.round, nonce: a.nonce ?? this.nextNonce(`finished/${a.round}`, a.round) },
      options,
    );
  }

  /**
   * Own announcement keys (see {@link announcementKey}): last nonce used and the announcement to re-broadcast
   * (`null` until published or once no longer live). Insertion-ordered; capped at `maxHolderEntries`.
   */
  private readonly own = new Map<string, OwnAnnouncement>();
  private rebroadcastCursor = 0;
  private rebroadcastTimer: ReturnType<typeof setInterval> | undefined;

  private ownEntry(key: string, round: number): OwnAnnouncement {
    let e = this.own.get(key);
    if (e === undefined) {
      e = { round, nonce: -1, announcement: null };
      this.own.set(key, e);
      for (const k of this.own.keys()) {
        if (this.own.size <= this.cfg.maxHolderEntries) break;
        this.own.delete(k);
        this.metricsStore.ownAnnouncementEntriesEvicted++;
      }
    }
    return e;
  }

  private nextNonce(key: string, round: number): number {
    const e = this.ownEntry(key, round);
    e.nonce++;
    return e.nonce;
  }

  private async publish(a: Announcement, options: AbortOptions): Promise<number> {
    this.assertStarted('announce');
    options.signal?.throwIfAborted();
    const data = await signAnnouncement(a, this.run, this.key);
    if (data.byteLength > this.cfg.maxAnnouncementBytes) {
      throw new P2PTransportError(
        'SIZE_EXCEEDED',
        `announcement is ${data.byteLength} bytes > ${this.cfg.maxAnnouncementBytes}`,
        {
          size: data.byteLength,
        },
      );
    }
    const res = await this.libp2p.services.pubsub.publish(this.topic, data);
    this.metricsStore.announcementsPublished++;
    this.metricsStore.addGossipOut(data.byteLength * res.recipients.length);
    const e = this.ownEntry(announcementKey(a), a.round);
    e.announcement = a;
    if (e.nonce < a.nonce) e.nonce = a.nonce;
    return res.recipients.length;
  }

  /**
   * Psyche's rebroadcast: gossip gives no delivery guarantee, so every `rebroadcastIntervalMs` one of this
   * node's live announcements (rounds ≥ current − 1) is re-published, round-robin, with `nonce + 1`.
   */
  private rebroadcastTick(): void {
    if (!this.started) return;
    const live: Array<[string, Announcement]> = [];
    for (const [k, e] of this.own) {
      if (e.announcement === null) continue;
      if (this.round === null || e.round + 1 >= this.round) live.push([k, e.announcement]);
      else e.announcement = null; // no longer live; the nonce is kept until pruned or evicted
    }
    if (live.length === 0) return;
    const [key, a] = live[this.rebroadcastCursor++ % live.length]!;
    const nonce = this.nextNonce(key, a.round);
    if (nonce > 0xffff_ffff) return;
    this.publish({ ...a, nonce }, {}).catch((e: unknown) => {
      this.log('rebroadcast of %s failed: %s', key, (e as Error).message);
    });
  }

  private async validateGossip(peer: PeerId, data: Uint8Array): Promise<TopicValidatorResult> {
    this.metricsStore.addGossipIn(data.byteLength);
    const res = await this.validator.validate(data);
    if (res.ok) {
      this.verified.set(data, res.announcement);
      return TopicValidatorResult.Accept;
    }
    this.metricsStore.announcementsRejected[res.reason]++;
    this.log('rejected announcement from %s: %s (%s)', peer.toString(), res.reason, res.message);
    this.safeDispatchEvent('announcement:rejected', {
      detail: { reason: res.reason, message: res.message, propagationSource: peer.toString() },
    });
    // Honest forwarders may relay late or repeated messages: ignore those, reject (and score down) the rest.
    return res.reason === 'replayed' || res.reason === 'off-round'
      ? TopicValidatorResult.Ignore
      : TopicValidatorResult.Reject;
  }

  private readonly onGossipMessage = (evt: CustomEvent<{ topic: string; data: Uint8Array }>): void => {
    if (evt.detail.topic !== this.topic) return;
    const a = this.verified.get(evt.detail.data);
    if (a === undefined) return; // not validated by us (cannot happen with a registered validator)
    this.metricsStore.announcementsAccepted++;
    if (a.kind === 'result') {
      const key = blobKey(a);
      let h = this.holdersByKey.get(key);
      if (h === undefined) {
        h = { peers: new Set(), round: a.round };
      } else {
        this.holdersByKey.delete(key); // re-inserted below: most recently announced last
      }
      this.holdersByKey.set(key, h);
      if (!h.peers.has(a.from)) {
        for (const p of h.peers) {
          if (h.peers.size < MAX_HOLDERS_PER_BLOB) break;
          h.peers.delete(p);
          this.metricsStore.holderEntriesEvicted++;
        }
        h.peers.add(a.from);
      }
      h.round = Math.max(h.round, a.round);
      for (const k of this.holdersByKey.keys()) {
        if (this.holdersByKey.size <= this.cfg.maxHolderEntries) break;
        this.holdersByKey.delete(k);
        this.metricsStore.holderEntriesEvicted++;
      }
      this.safeDispatchEvent('announcement:result', { detail: a });
    } else {
      this.safeDispatchEvent('announcement:finished', { detail: a });
    }
  };

  // ---------------------------------------------------------------- fetch

  /** Measures request→response latency to a peer with a PING on the blob protocol; returns milliseconds. */
  async ping(peer: PeerLike, options: AbortOptions = {}): Promise<number> {
    this.assertStarted('ping');
    const id = toPeerIdString(peer, 'peer');
    const signal = this.attemptSignal(options.signal, this.cfg.requestTimeoutMs);
    const t0 = performance.now();
    let stream: Stream | undefined;
    try {
      stream = await this.libp2p.dialProtocol(peerIdFromString(id), BLOB_PROTOCOL, { signal });
      const s = stream;
      const onAbort = (): void => s.abort(new Error('ping aborted'));
      signal.addEventListener('abort', onAbort, { once: true });
      if (signal.aborted) onAbort(); // aborted while the stream was opening
      try {
        s.send(
          encodeRequest({ op: OP_PING, hashAlgorithm: null, hash: new Uint8Array(32), offset: 0, length: 0 }),
        );
        const header = decodeResponseHeader(
          await new StreamReader(s).readExactly(RESPONSE_HEADER_BYTES, 'response header'),
        );
        if (header.status !== 'OK') {
          throw new P2PTransportError('REMOTE_ERROR', `ping ${id}: status ${header.status}`, {
            peer: id,
            status: header.status,
          });
        }
      } finally {
        signal.removeEventListener('abort', onAbort);
      }
      const ms = performance.now() - t0;
      this.metricsStore.recordLatency(id, ms);
      await s.close().catch(() => undefined);
      return ms;
    } catch (e) {
      stream?.abort(e as Error);
      throw this.translate(e, signal, options.signal, `ping ${id}`);
    }
  }

  /**
   * Fetches a blob by content address from peers that announced it (plus `providers`), best-ranked first,
   * verifying size and hash. On failure (timeout, error, corrupt data) it retries the next holder; a peer
   * whose data does not hash to `ref.hash` is penalised and ranked last from then on. Returns the bytes
   * (caller owns them).
   *
   * @throws {P2PTransportError} NO_PROVIDERS, FETCH_FAILED (details.attempts lists each peer's error),
   * ABORTED, SIZE_EXCEEDED, INVALID_PARAMETER, NOT_STARTED
   */
  async fetchBlob(ref: BlobRef, options: FetchOptions = {}): Promise<Uint8Array> {
    this.assertStarted('fetchBlob');
    assertBlobRef(ref, this.cfg.maxBlobBytes);
    const local = this.blobs.get(blobKey(ref));
    if (local?.bytes) return local.bytes.slice();
    const release = await this.downloads.acquire(this.userSignal(options.signal));
    try {
      const { peer, value } = await this.tryHolders(
        ref,
        options,
        `fetch ${blobKey(ref)}`,
        async (peer, signal) => {
          const buffer = new Uint8Array(ref.size);
          const hasher = createHasher(ref.hashAlgorithm);
          let pos = 0;
          await this.fetchRange(peer, ref, 0, ref.size, signal, (chunk) => {
            buffer.set(chunk, pos);
            pos += chunk.byteLength;
            hasher.update(chunk);
            options.onProgress?.({ peer, bytes: pos, total: ref.size });
          });
          if (!bytesEqual(hasher.digest(), ref.hash)) {
            this.penalise(peer, 'hash mismatch');
            throw new P2PTransportError(
              'HASH_MISMATCH',
              `blob from ${peer} does not hash to ${blobKey(ref)}`,
              { peer },
            );
          }
          return buffer;
        },
      );
      if (this.cfg.keepFetched) {
        this.blobs.set(blobKey(ref), { ref, bytes: value.slice(), file: null, round: this.round });
      }
      this.safeDispatchEvent('blob:fetched', { detail: { ref, peer } });
      return value;
    } finally {
      release();
    }
  }

  /**
   * Runs `attempt` against the ranked holders of `ref`; on failure tries the next one. When every holder
   * failed, waits `retryBackoffMs · 2^(n−1)` and starts over (re-ranking, picking up new holders), at most
   * `fetchRetries` times. Peers that sent bad data or reached `maxErrorsPerPeer` failures are skipped.
   */
  private async tryHolders<T>(
    ref: BlobRef,
    options: FetchOptions,
    what: string,
    attempt: (peer: string, signal: AbortSignal) => Promise<T>,
  ): Promise<{ peer: string; value: T }> {
    const attempts: Array<{ peer: string; code: string; message: string }> = [];
    const liars = new Set<string>();
    for (let retry = 0; retry <= this.cfg.fetchRetries; retry++) {
      if (retry > 0) {
        const signal = this.userSignal(options.signal);
        await sleep(this.cfg.retryBackoffMs * 2 ** (retry - 1), signal);
        if (signal.aborted)
          throw new P2PTransportError('ABORTED', `${what}: aborted`, {}, { cause: signal.reason });
      }
      let tried = 0;
      for (const peer of this.candidates(ref, options.providers)) {
        if (liars.has(peer) || (this.stats(peer)?.fetchFailures ?? 0) >= this.cfg.maxErrorsPerPeer) continue;
        tried++;
        const signal = this.attemptSignal(options.signal, this.cfg.downloadTimeoutMs);
        const bytesBefore = this.stats(peer)?.bytesIn ?? 0;
        try {
          const value = await attempt(peer, signal);
          this.metricsStore.peer(peer).fetchSuccesses++;
          return { peer, value };
        } catch (e) {
          const err = this.translate(e, signal, options.signal, `${what} from ${peer}`);
          if (err.code === 'ABORTED') throw err;
          const stats = this.metricsStore.peer(peer);
          stats.fetchFailures++;
          if (err.code === 'HASH_MISMATCH') liars.add(peer);
          else if (stats.bytesIn === bytesBefore) this.metricsStore.recordBandwidth(peer, 0);
          attempts.push({ peer, code: err.code, message: err.message });
          this.log('%s from %s failed: %s', what, peer, err.message);
        }
      }
      if (tried === 0) break;
    }
    throw new P2PTransportError(
      'FETCH_FAILED',
      `${what}: ${attempts.length} attempt(s) failed${attempts.map((a) => `; ${a.message}`).join('')}`,
      { key: blobKey(ref), attempts },
    );
  }

  /**
   * Fetches a (large) blob such as a model checkpoint into `path`, in `chunkBytes` range requests, each from
   * the best-ranked holder that answers. Bytes go to `<path>.part` first; a later call resumes from its
   * length (e.g. after an abort or a crash). The whole file is hash-verified before it is renamed to `path`;
   * on mismatch the part file is deleted and HASH_MISMATCH thrown.
   */
  async fetchBlobToFile(
    ref: BlobRef,
    path: string,
    options: FetchFileOptions = {},
  ): Promise<FetchFileResult> {
    this.assertStarted('fetchBlobToFile');
    assertBlobRef(ref, Number.MAX_SAFE_INTEGER);
    if (typeof path !== 'string' || path.length === 0) {
      throw new P2PTransportError('INVALID_PARAMETER', 'path must be a non-empty string', {
        parameter: 'path',
      });
    }
    const chunkBytes = options.chunkBytes ?? CHECKPOINT_CHUNK_BYTES;
    assertInteger('chunkBytes', chunkBytes, 1, 1024 * 1024 * 1024);
    const part = `${path}.part`;
    const release = await this.downloads.acquire(this.userSignal(options.signal));
    try {
      let resumed = 0;
      try {
        resumed = (await stat(part)).size;
      } catch {
        resumed = 0;
      }
      if (resumed > ref.size) {
        await truncate(part, 0);
        resumed = 0;
      }
      const hasher = createHasher(ref.hashAlgorithm);
      const fh = await open(part, resumed > 0 ? 'r+' : 'w');
      const peersUsed = new Set<string>();
      try {
        // Re-hash the bytes already on disk.
        const buf = new Uint8Array(Math.min(chunkBytes, 16 * 1024 * 1024));
        for (let off = 0; off < resumed; ) {
          const { bytesRead } = await fh.read(buf, 0, Math.min(buf.byteLength, resumed - off), off);
          if (bytesRead === 0) break;
          hasher.update(buf.subarray(0, bytesRead));
          off += bytesRead;
        }
        let pos = resumed;
        while (pos < ref.size) {
          const len = Math.min(chunkBytes, ref.size - pos);
          const chunk = await this.fetchChunk(ref, pos, len, options, (peer, got) =>
            options.onProgress?.({ peer, bytes: pos + got, total: ref.size }),
          );
          await fh.write(chunk.bytes, 0, chunk.bytes.byteLength, pos);
          hasher.update(chunk.bytes);
          peersUsed.add(chunk.peer);
          pos += len;
        }
      } finally {
        await fh.close();
      }
      if (!bytesEqual(hasher.digest(), ref.hash)) {
        await unlink(part).catch(() => undefined);
        throw new P2PTransportError(
          'HASH_MISMATCH',
          `file for ${blobKey(ref)} does not hash to the requested digest`,
          {
            key: blobKey(ref),
            peers: [...peersUsed],
          },
        );
      }
      await rename(part, path);
      this.safeDispatchEvent('blob:fetched', { detail: { ref, peer: [...peersUsed][0] ?? this.peerId } });
      return { path, resumedFromBytes: resumed, peers: [...peersUsed] };
    } finally {
      release();
    }
  }

  private async fetchChunk(
    ref: BlobRef,
    offset: number,
    length: number,
    options: FetchOptions,
    progress: (peer: string, got: number) => void,
  ): Promise<{ peer: string; bytes: Uint8Array }> {
    const { peer, value } = await this.tryHolders(
      ref,
      options,
      `fetch ${blobKey(ref)} range ${offset}+${length}`,
      async (peer, signal) => {
        const bytes = new Uint8Array(length);
        let got = 0;
        await this.fetchRange(peer, ref, offset, length, signal, (c) => {
          bytes.set(c, got);
          got += c.byteLength;
          progress(peer, got);
        });
        return bytes;
      },
    );
    return { peer, bytes: value };
  }

  private candidates(ref: BlobRef, providers: PeerLike[] | undefined): string[] {
    const ids = new Set<string>();
    for (const [i, p] of (providers ?? []).entries()) ids.add(toPeerIdString(p, `providers[${i}]`));
    for (const p of this.holders(ref)) ids.add(p);
    ids.delete(this.peerId);
    const list = [...ids].filter((p) => this.isAllowed(p));
    if (list.length === 0) {
      throw new P2PTransportError('NO_PROVIDERS', `no allowed peer is known to hold ${blobKey(ref)}`, {
        key: blobKey(ref),
      });
    }
    return rankPeers(list, (p) => this.stats(p));
  }

  private stats(peer: string): PeerStats | undefined {
    return this.metricsStore.snapshotPeer(peer);
  }

  /** One range request on one stream. Calls `onChunk` with each payload piece; verifies the announced size. */
  private async fetchRange(
    peer: string,
    ref: BlobRef,
    offset: number,
    length: number,
    signal: AbortSignal,
    onChunk: (chunk: Uint8Array) => void,
  ): Promise<void> {
    const t0 = performance.now();
    const stream = await this.libp2p.dialProtocol(peerIdFromString(peer), BLOB_PROTOCOL, { signal });
    const onAbort = (): void => stream.abort(new Error('download aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    if (signal.aborted) onAbort(); // aborted while the stream was opening
    const headerTimer = setTimeout(
      () =>
        stream.abort(
          new P2PTransportError(
            'TIMEOUT',
            `no response header from ${peer} within ${this.cfg.requestTimeoutMs} ms`,
          ),
        ),
      this.cfg.requestTimeoutMs,
    );
    let ok = false;
    try {
      stream.send(
        encodeRequest({ op: OP_GET, hashAlgorithm: ref.hashAlgorithm, hash: ref.hash, offset, length }),
      );
      const reader = new StreamReader(stream);
      const header = decodeResponseHeader(await reader.readExactly(RESPONSE_HEADER_BYTES, 'response header'));
      clearTimeout(headerTimer);
      const t1 = performance.now();
      this.metricsStore.recordLatency(peer, t1 - t0);
      if (header.status === 'NOT_FOUND') {
        throw new P2PTransportError('BLOB_NOT_FOUND', `${peer} does not hold ${blobKey(ref)}`, { peer });
      }
      if (header.status !== 'OK') {
        throw new P2PTransportError('REMOTE_ERROR', `${peer} answered ${header.status}`, {
          peer,
          status: header.status,
        });
      }
      if (header.totalSize !== ref.size) {
        throw new P2PTransportError(
          'SIZE_MISMATCH',
          `${peer} announced total_size ${header.totalSize}, expected ${ref.size}`,
          {
            peer,
            announced: header.totalSize,
            expected: ref.size,
          },
        );
      }
      const expected = Math.min(length, ref.size - offset);
      let got = 0;
      for await (const chunk of reader.rest()) {
        if (got + chunk.byteLength > expected) {
          throw new P2PTransportError(
            'SIZE_EXCEEDED',
            `${peer} sent more than the ${expected} bytes requested`,
            { peer, expected },
          );
        }
        got += chunk.byteLength;
        this.metricsStore.addIn(peer, chunk.byteLength);
        onChunk(chunk);
      }
      if (got !== expected) {
        throw new P2PTransportError(
          'FETCH_FAILED',
          `${peer} closed the stream after ${got} of ${expected} bytes`,
          {
            peer,
            got,
            expected,
          },
        );
      }
      const secs = (performance.now() - t1) / 1000;
      if (got >= 64 * 1024 && secs > 0) this.metricsStore.recordBandwidth(peer, got / secs);
      ok = true;
    } finally {
      clearTimeout(headerTimer);
      signal.removeEventListener('abort', onAbort);
      if (ok) await stream.close().catch(() => undefined);
      else stream.abort(new Error('download failed'));
    }
  }

  private penalise(peer: string, reason: string): void {
    const s = this.metricsStore.peer(peer);
    s.hashMismatches++;
    this.log('penalising %s: %s', peer, reason);
    this.safeDispatchEvent('peer:penalised', { detail: { peer, reason } });
  }

  // ---------------------------------------------------------------- serve

  private async handleBlobStream(stream: Stream, connection: Connection): Promise<void> {
    const peer = connection.remotePeer.toString();
    const timer = setTimeout(
      () =>
        stream.abort(
          new P2PTransportError('TIMEOUT', `no complete request within ${this.cfg.requestTimeoutMs} ms`),
        ),
      this.cfg.requestTimeoutMs,
    );
    let release: (() => void) | null = null;
    let serveTimer: ReturnType<typeof setTimeout> | undefined;
    let fh: Awaited<ReturnType<typeof open>> | null = null;
    const respond = async (status: number, total: number): Promise<void> => {
      await sendAll(stream, encodeResponseHeader(status, total), this.shutdown.signal);
    };
    try {
      let frame: Uint8Array;
      try {
        frame = await new StreamReader(stream).readExactly(REQUEST_BYTES, 'blob request');
      } catch (e) {
        if (isP2PTransportError(e, 'MALFORMED_FRAME')) this.metricsStore.malformedFrames++;
        throw e;
      }
      clearTimeout(timer);
      let req: ReturnType<typeof decodeRequest>;
      try {
        req = decodeRequest(frame);
      } catch (e) {
        this.metricsStore.malformedFrames++;
        this.metricsStore.blobRequestsRefused++;
        this.log('malformed blob request from %s: %s', peer, (e as Error).message);
        await respond(STATUS.BAD_REQUEST, 0);
        await stream.close();
        return;
      }
      if (!this.isAllowed(peer)) {
        this.metricsStore.blobRequestsRefused++;
        await respond(STATUS.FORBIDDEN, 0);
        await stream.close();
        return;
      }
      if (req.op === OP_PING) {
        await respond(STATUS.OK, 0);
        await stream.close();
        return;
      }
      const blob = this.blobs.get(blobKey({ hashAlgorithm: req.hashAlgorithm!, hash: req.hash }));
      if (blob === undefined) {
        this.metricsStore.blobRequestsRefused++;
        await respond(STATUS.NOT_FOUND, 0);
        await stream.close();
        return;
      }
      const size = blob.ref.size;
      if (req.offset > size) {
        this.metricsStore.blobRequestsRefused++;
        await respond(STATUS.RANGE, size);
        await stream.close();
        return;
      }
      release = this.serves.tryAcquire();
      if (release === null) {
        this.metricsStore.blobRequestsRefused++;
        await respond(STATUS.BUSY, 0);
        await stream.close();
        return;
      }
      this.metricsStore.servesInFlight++;
      const slot = release;
      release = () => {
        this.metricsStore.servesInFlight--;
        slot();
      };
      serveTimer = setTimeout(
        () =>
          stream.abort(
            new P2PTransportError('TIMEOUT', `serving took longer than ${this.cfg.serveTimeoutMs} ms`),
          ),
        this.cfg.serveTimeoutMs,
      );
      const end = req.length === 0 ? size : Math.min(size, req.offset + req.length);
      fh = blob.file !== null ? await open(blob.file, 'r') : null;
      await respond(STATUS.OK, size);
      for (let pos = req.offset; pos < end; pos += SEND_CHUNK_BYTES) {
        const n = Math.min(end, pos + SEND_CHUNK_BYTES) - pos;
        let slice: Uint8Array;
        if (fh === null) {
          slice = blob.bytes!.subarray(pos, pos + n);
        } else {
          // a fresh buffer per slice: the muxer may still hold the previous one
          slice = new Uint8Array(n);
          const { bytesRead } = await fh.read(slice, 0, n, pos);
          if (bytesRead !== n) throw new Error(`${blob.file} shrank while serving`);
        }
        await this.throttle(slice.byteLength);
        if (this.shutdown.signal.aborted) throw new Error('node stopping');
        await sendAll(stream, slice, this.shutdown.signal);
        this.metricsStore.addOut(peer, slice.byteLength);
      }
      // Free the serve slot before closing: the client may send its next request as soon as it sees EOF.
      release();
      release = null;
      await stream.close();
      this.metricsStore.blobRequestsServed++;
      this.safeDispatchEvent('blob:served', {
        detail: { key: blobKey(blob.ref), peer, bytes: end - req.offset },
      });
    } catch (e) {
      this.log('blob stream from %s failed: %s', peer, (e as Error).message);
      stream.abort(e as Error);
    } finally {
      clearTimeout(timer);
      clearTimeout(serveTimer);
      await fh?.close().catch(() => undefined);
      release?.();
    }
  }

  private async throttle(n: number): Promise<void> {
    const rate = this.cfg.maxServeBytesPerSecond;
    if (rate === 0) return;
    const now = performance.now();
    const start = Math.max(now, this.nextSendAt);
    this.nextSendAt = start + (n / rate) * 1000;
    if (start > now) await sleep(start - now, this.shutdown.signal);
  }

  // ---------------------------------------------------------------- misc

  /** Per-peer bandwidth/latency, bytes per round and gossip/serve counters (a copy). */
  metrics(): MetricsSnapshot {
    return this.metricsStore.snapshot({
      replayEntries: this.validator.replayEntries,
      replayEntriesEvicted: this.validator.replayEntriesEvicted,
      holderEntries: this.holdersByKey.size,
      ownAnnouncementEntries: this.own.size,
    });
  }

  private deny(peerId: string): boolean {
    if (this.isAllowed(peerId)) return false;
    this.metricsStore.connectionsDenied++;
    return true;
  }

  private normaliseAllowlist(list: Iterable<PeerLike> | null | undefined): Set<string> | null {
    if (list === null || list === undefined) return null;
    if (typeof (list as Iterable<PeerLike>)[Symbol.iterator] !== 'function' || typeof list === 'string') {
      throw new P2PTransportError('INVALID_PARAMETER', 'allowlist must be an iterable of peers or null', {
        parameter: 'allowlist',
      });
    }
    const out = new Set<string>();
    let i = 0;
    for (const p of list) out.add(toPeerIdString(p, `allowlist[${i++}]`));
    return out;
  }

  private assertStarted(op: string): void {
    if (!this.started) throw new P2PTransportError('NOT_STARTED', `${op}: the node is not started`, { op });
  }

  private userSignal(signal: AbortSignal | undefined): AbortSignal {
    return signal === undefined ? this.shutdown.signal : AbortSignal.any([signal, this.shutdown.signal]);
  }

  private attemptSignal(signal: AbortSignal | undefined, timeoutMs: number): AbortSignal {
    const parts = [this.shutdown.signal, AbortSignal.timeout(timeoutMs)];
    if (signal !== undefined) parts.push(signal);
    const combined = AbortSignal.any(parts);
    // libp2p's dial, upgrade and stream layers each listen on the signal they are given
    setMaxListeners(Number.POSITIVE_INFINITY, combined);
    return combined;
  }

  /** Maps any error of an attempt to a typed error: caller abort/shutdown → ABORTED, attempt timeout → TIMEOUT. */
  private translate(
    e: unknown,
    attempt: AbortSignal,
    user: AbortSignal | undefined,
    what: string,
  ): P2PTransportError {
    if (user?.aborted === true || this.shutdown.signal.aborted) {
      return new P2PTransportError('ABORTED', `${what}: aborted`, {}, { cause: e });
    }
    if (isP2PTransportError(e)) return e;
    if (attempt.aborted) return new P2PTransportError('TIMEOUT', `${what}: timed out`, {}, { cause: e });
    return new P2PTransportError(
      'FETCH_FAILED',
      `${what}: ${(e as Error)?.message ?? String(e)}`,
      {},
      { cause: e },
    );
  }

  private readonly onPeerConnect = (evt: CustomEvent<PeerId>): void => {
    this.safeDispatchEvent('peer:connect', { detail: evt.detail.toString() });
  };

  private readonly onPeerDisconnect = (evt: CustomEvent<PeerId>): void => {
    this.safeDispatchEvent('peer:disconnect', { detail: evt.detail.toString() });
  };
}
