/**
 * @packageDocumentation
 * libp2p networking for Psyche-TS: a {@link P2PNode} with a stable ed25519 identity (Solana key-file
 * compatible), signed per-run gossip announcements, a content-addressed blob protocol (DisTrO results and
 * chunked, resumable checkpoint downloads), an allowlist connection gater and per-peer metrics.
 * The wire protocol is specified in `docs/p2p-protocol.md`.
 */
export {
  ANNOUNCEMENT_SIGNING_DOMAIN,
  type Announcement,
  AnnouncementValidator,
  type AnnouncementValidatorInit,
  decodeEnvelope,
  encodeAnnouncementBody,
  encodeEnvelope,
  type FinishedAnnouncement,
  gossipTopic,
  REJECTION_REASONS,
  type RejectionReason,
  type ResultAnnouncement,
  runDigest,
  signAnnouncement,
  type ValidationResult,
  type VerifiedAnnouncement,
} from './announcement.js';
export {
  type BlobRef,
  type BlobRequest,
  type BlobStatus,
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
export * as constants from './constants.js';
export { BLOB_PROTOCOL } from './constants.js';
export {
  assertInteger,
  isP2PTransportError,
  P2PTransportError,
  type P2PTransportErrorCode,
} from './errors.js';
export { createHasher, type HashAlgorithm, type Hasher, hashBytes, toHex } from './hash.js';
export {
  generateKeyFile,
  keyFileJsonFromPrivateKey,
  loadKeyFile,
  loadOrCreateKeyFile,
  peerIdFromEd25519PublicKey,
  peerIdFromKey,
  privateKeyFromKeyFileJson,
} from './identity.js';
export { type MetricsSnapshot, type PeerStats, type RoundBytes, rankPeers } from './metrics.js';
export {
  createP2PNode,
  type FetchFileOptions,
  type FetchFileResult,
  type FetchOptions,
  type FetchProgress,
  P2PNode,
  type P2PNodeEvents,
  type P2PNodeInit,
  type PeerLike,
  type RejectionEvent,
} from './node.js';
