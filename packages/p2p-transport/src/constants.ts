/** Default limits and timeouts. Duration names carry their unit. Values follow Psyche's iroh layer where it has one. */

/** Stream protocol for content-addressed blobs (see docs/p2p-protocol.md). */
export const BLOB_PROTOCOL = '/psyche/blob/1.0.0';
/** Wire version byte of blob requests/responses and announcements. */
export const WIRE_VERSION = 1;
/** Psyche's gossip `max_message_size`. */
export const MAX_ANNOUNCEMENT_BYTES = 4096;
/** Largest blob a node accepts by default (Psyche results are a few MB, checkpoints are fetched chunked). */
export const MAX_BLOB_BYTES = 1024 * 1024 * 1024;
/** Psyche `--max-concurrent-downloads` default. */
export const MAX_CONCURRENT_DOWNLOADS = 4;
/** Concurrent inbound blob requests served before answering BUSY. */
export const MAX_CONCURRENT_SERVES = 32;
/** Psyche's per-download timeout (600 s). */
export const DOWNLOAD_TIMEOUT_MS = 600_000;
/** Time to open a stream and receive the response header; also how long a server waits for a request. */
export const REQUEST_TIMEOUT_MS = 10_000;
/** Psyche `MAX_ERRORS_PER_PEER`: a peer with this many failed fetches is no longer tried. */
export const MAX_ERRORS_PER_PEER = 5;
/** Accepted distance between an announcement's round and the current round. */
export const ROUND_TOLERANCE = 1;
/** Chunk size of resumable checkpoint downloads. */
export const CHECKPOINT_CHUNK_BYTES = 4 * 1024 * 1024;
/** Payload slice written per `stream.send` when serving. */
export const SEND_CHUNK_BYTES = 256 * 1024;
/** Weight of a new sample in the latency/bandwidth exponential moving averages. */
export const EWMA_ALPHA = 0.3;
/** Replay-protection entries are dropped for rounds older than `current - REPLAY_WINDOW_ROUNDS`. */
export const REPLAY_WINDOW_ROUNDS = 4;
/**
 * Most replay-protection entries (one per signer, kind, round, batch) kept whatever the round. Over the cap the
 * lowest rounds are dropped first (down to 7/8 of it) and announcements at or below the highest dropped round are
 * rejected as `replayed`, so eviction never re-opens a replay.
 */
export const MAX_REPLAY_ENTRIES = 65_536;
/**
 * Most blobs whose announced holders are tracked, and most own announcements/nonces kept for re-broadcast,
 * whatever the round; the oldest entries are evicted first.
 */
export const MAX_HOLDER_ENTRIES = 16_384;
/** Most holders remembered per blob; the earliest announcer is dropped first. */
export const MAX_HOLDERS_PER_BLOB = 256;
/** Psyche `max_distro_retries`: rounds of retries over all holders. */
export const FETCH_RETRIES = 3;
/** Psyche's retry back-off base (2 s). */
export const RETRY_BACKOFF_MS = 2000;
/** Inbound connections per second accepted from one host (libp2p's own default is 5). */
export const INBOUND_CONNECTIONS_PER_SECOND = 64;
/** Psyche `REBROADCAST_SHAREABLE`: one own live announcement is re-sent this often. */
export const REBROADCAST_INTERVAL_MS = 10_000;
