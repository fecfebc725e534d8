import { createHash } from 'node:crypto';
import { publicKeyFromRaw } from '@libp2p/crypto/keys';
import type { Ed25519PrivateKey } from '@libp2p/interface';
import { peerIdFromPublicKey } from '@libp2p/peer-id';
import {
  MAX_ANNOUNCEMENT_BYTES,
  MAX_REPLAY_ENTRIES,
  REPLAY_WINDOW_ROUNDS,
  ROUND_TOLERANCE,
  WIRE_VERSION,
} from './constants.js';
import { assertInteger, P2PTransportError } from './errors.js';
import {
  bytesEqual,
  HASH_ALGORITHM_CODES,
  type HashAlgorithm,
  hashAlgorithmFromCode,
  toHex,
} from './hash.js';

/** Domain-separation prefix of every announcement signature. */
export const ANNOUNCEMENT_SIGNING_DOMAIN = 'psyche-announcement/1';

const KIND_RESULT = 1;
const KIND_FINISHED = 2;
const COMMON_BODY_BYTES = 1 + 32 + 32 + 4 + 4;
const RESULT_BODY_BYTES = COMMON_BODY_BYTES + 4 + 1 + 32 + 8;
const FINISHED_BODY_BYTES = COMMON_BODY_BYTES;
const SIGNATURE_BYTES = 64;
const MAX_SAFE_U64 = BigInt(Number.MAX_SAFE_INTEGER);

/** `sha256("psyche gossip" || utf8(runId))`, Psyche's gossip topic derivation. */
export function runDigest(runId: string): Uint8Array {
  if (typeof runId !== 'string' || runId.length === 0) {
    throw new P2PTransportError('INVALID_PARAMETER', 'runId must be a non-empty string', {
      parameter: 'runId',
      value: runId,
    });
  }
  return new Uint8Array(createHash('sha256').update('psyche gossip').update(runId, 'utf8').digest());
}

/** The gossipsub topic string of a run: `psyche/run/<hex run digest>/1`. */
export function gossipTopic(runId: string): string {
  return `psyche/run/${toHex(runDigest(runId))}/1`;
}

/** Fields common to all announcements. `signer` is the 32-byte ed25519 public key of the author. */
interface AnnouncementBase {
  /** Round (Psyche step) the announcement belongs to, u32. */
  round: number;
  /** Monotonic per (signer, kind, round, batchId); re-broadcasts increase it. u32. */
  nonce: number;
}

/** "I have result R for round r, batch b, hash h, size s". */
export interface ResultAnnouncement extends AnnouncementBase {
  kind: 'result';
  /** Batch id, u32. */
  batchId: number;
  hashAlgorithm: HashAlgorithm;
  /** 32-byte digest of the blob. */
  hash: Uint8Array;
  /** Blob size in bytes. */
  size: number;
}

/** "I finished round r". */
export interface FinishedAnnouncement extends AnnouncementBase {
  kind: 'finished';
}

/** An announcement before signing. */
export type Announcement = ResultAnnouncement | FinishedAnnouncement;

/** An announcement that passed every check, with its author. */
export type VerifiedAnnouncement = Announcement & {
  /** 32-byte ed25519 public key of the author. */
  signer: Uint8Array;
  /** libp2p peer id string of the author. */
  from: string;
};

function assertAnnouncement(a: Announcement): void {
  assertInteger('announcement.round', a.round, 0, 0xffff_ffff);
  assertInteger('announcement.nonce', a.nonce, 0, 0xffff_ffff);
  if (a.kind === 'result') {
    assertInteger('announcement.batchId', a.batchId, 0, 0xffff_ffff);
    assertInteger('announcement.size', a.size, 0, Number.MAX_SAFE_INTEGER);
    if (!(a.hash instanceof Uint8Array) || a.hash.byteLength !== 32) {
      throw new P2PTransportError('INVALID_PARAMETER', 'announcement.hash must be 32 bytes', {
        parameter: 'announcement.hash',
      });
    }
    if (HASH_ALGORITHM_CODES[a.hashAlgorithm] === undefined) {
      throw new P2PTransportError(
        'INVALID_PARAMETER',
        "announcement.hashAlgorithm must be 'sha256' or 'blake3'",
        {
          parameter: 'announcement.hashAlgorithm',
          value: a.hashAlgorithm,
        },
      );
    }
  } else if (a.kind !== 'finished') {
    throw new P2PTransportError('INVALID_PARAMETER', "announcement.kind must be 'result' or 'finished'", {
      parameter: 'announcement.kind',
      value: (a as { kind: unknown }).kind,
    });
  }
}

/** Encodes the signed body (docs/p2p-protocol.md §Announcements). */
export function encodeAnnouncementBody(a: Announcement, run: Uint8Array, signer: Uint8Array): Uint8Array {
  assertAnnouncement(a);
  const body = new Uint8Array(a.kind === 'result' ? RESULT_BODY_BYTES : FINISHED_BODY_BYTES);
  const view = new DataView(body.buffer);
  body[0] = a.kind === 'result' ? KIND_RESULT : KIND_FINISHED;
  body.set(run, 1);
  body.set(signer, 33);
  view.setUint32(65, a.round);
  view.setUint32(69, a.nonce);
  if (a.kind === 'result') {
    view.setUint32(73, a.batchId);
    body[77] = HASH_ALGORITHM_CODES[a.hashAlgorithm];
    body.set(a.hash, 78);
    view.setBigUint64(110, BigInt(a.size));
  }
  return body;
}

function signingBytes(body: Uint8Array): Uint8Array {
  const prefix = new TextEncoder().encode(ANNOUNCEMENT_SIGNING_DOMAIN);
  const out = new Uint8Array(prefix.byteLength + body.byteLength);
  out.set(prefix, 0);
  out.set(body, prefix.byteLength);
  return out;
}

/** Wraps a body and signature into the envelope `version | body_len u16 | body | sig_len u8 | sig`. */
export function encodeEnvelope(body: Uint8Array, signature: Uint8Array): Uint8Array {
  const out = new Uint8Array(1 + 2 + body.byteLength + 1 + signature.byteLength);
  out[0] = WIRE_VERSION;
  new DataView(out.buffer).setUint16(1, body.byteLength);
  out.set(body, 3);
  out[3 + body.byteLength] = signature.byteLength;
  out.set(signature, 4 + body.byteLength);
  return out;
}

/** Encodes and signs an announcement with `key` for the run whose digest is `run`. */
export async function signAnnouncement(
  a: Announcement,
  run: Uint8Array,
  key: Ed25519PrivateKey,
): Promise<Uint8Array> {
  const body = encodeAnnouncementBody(a, run, key.publicKey.raw);
  const signature = await key.sign(signingBytes(body));
  return encodeEnvelope(body, signature);
}

/** Why an announcement was rejected. */
export type RejectionReason =
  | 'oversized'
  | 'malformed'
  | 'unsigned'
  | 'bad-signature'
  | 'wrong-run'
  | 'off-round'
  | 'not-allowed'
  | 'replayed';

/** All rejection reasons, in the order checks run. */
export const REJECTION_REASONS: readonly RejectionReason[] = [
  'oversized',
  'malformed',
  'unsigned',
  'wrong-run',
  'not-allowed',
  'bad-signature',
  'off-round',
  'replayed',
];

/** Outcome of {@link AnnouncementValidator.validate}. */
export type ValidationResult =
  | { ok: true; announcement: VerifiedAnnouncement }
  | { ok: false; reason: RejectionReason; message: string };

interface DecodedEnvelope {
  body: Uint8Array;
  signature: Uint8Array;
  announcement: Announcement;
  run: Uint8Array;
  signer: Uint8Array;
}

/**
 * Strictly decodes an envelope. Throws MALFORMED_FRAME naming the bad field; never reads out of bounds.
 */
export function decodeEnvelope(data: Uint8Array): DecodedEnvelope {
  const bad = (field: string, msg: string): never => {
    throw new P2PTransportError('MALFORMED_FRAME', `announcement ${field}: ${msg}`, { field });
  };
  if (data.byteLength < 4) bad('envelope', `${data.byteLength} bytes is shorter than the 4-byte minimum`);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (data[0] !== WIRE_VERSION) bad('version', `expected ${WIRE_VERSION}, got ${data[0]}`);
  const bodyLen = view.getUint16(1);
  if (3 + bodyLen + 1 > data.byteLength)
    bad('body_len', `${bodyLen} exceeds the ${data.byteLength}-byte message`);
  const body = data.subarray(3, 3 + bodyLen);
  const sigLen = data[3 + bodyLen]!;
  if (sigLen !== 0 && sigLen !== SIGNATURE_BYTES) bad('sig_len', `expected 0 or 64, got ${sigLen}`);
  if (4 + bodyLen + sigLen !== data.byteLength) {
    bad('envelope', `length ${data.byteLength} != 4 + body_len ${bodyLen} + sig_len ${sigLen}`);
  }
  const signature = data.subarray(4 + bodyLen);
  if (bodyLen < COMMON_BODY_BYTES) bad('body_len', `${bodyLen} is shorter than ${COMMON_BODY_BYTES}`);
  const bv = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const kind = body[0];
  const round = bv.getUint32(65);
  const nonce = bv.getUint32(69);
  let announcement: Announcement;
  if (kind === KIND_RESULT) {
    if (bodyLen !== RESULT_BODY_BYTES)
      bad('body_len', `a result body is ${RESULT_BODY_BYTES} bytes, got ${bodyLen}`);
    const size = bv.getBigUint64(110);
    if (size > MAX_SAFE_U64) bad('size', `${size} exceeds 2^53-1`);
    announcement = {
      kind: 'result',
      round,
      nonce,
      batchId: bv.getUint32(73),
      hashAlgorithm: hashAlgorithmFromCode(body[77]!, 'announcement hash_alg'),
      hash: body.slice(78, 110),
      size: Number(size),
    };
  } else if (kind === KIND_FINISHED) {
    if (bodyLen !== FINISHED_BODY_BYTES)
      bad('body_len', `a finished body is ${FINISHED_BODY_BYTES} bytes, got ${bodyLen}`);
    announcement = { kind: 'finished', round, nonce };
  } else {
    return bad('kind', `expected 1 (result) or 2 (finished), got ${kind}`);
  }
  return { body, signature, announcement, run: body.subarray(1, 33), signer: body.slice(33, 65) };
}

/** Options of {@link AnnouncementValidator}. */
export interface AnnouncementValidatorInit {
  /** Digest of the run (from {@link runDigest}). */
  run: Uint8Array;
  /** Messages larger than this are rejected before decoding. Default {@link MAX_ANNOUNCEMENT_BYTES}. */
  maxBytes?: number;
  /** Accepted |round − currentRound|. Default {@link ROUND_TOLERANCE}. */
  roundTolerance?: number;
  /** Returns whether a peer id string is a current run member. */
  isAllowed: (peerId: string) => boolean;
  /**
   * Most replay entries kept (one per signer, kind, round, batch), with or without round changes. Over the cap
   * the lowest rounds are evicted (down to 7/8 of the cap) and announcements at or below the highest evicted
   * round are rejected as `replayed`. Default {@link MAX_REPLAY_ENTRIES}.
   */
  maxReplayEntries?: number;
}

/**
 * Stateful announcement checks: size, structure, signature presence and validity, run, round window,
 * allowlist membership of the signer and replay protection (a (signer, kind, round, batch) key must carry a
 * nonce larger than every nonce accepted before for it).
 */
export class AnnouncementValidator {
  /** Current round; `null` accepts any round (before the coordinator reported one). */
  currentRound: number | null = null;
  private readonly run: Uint8Array;
  private readonly maxBytes: number;
  private readonly roundTolerance: number;
  private readonly isAllowed: (peerId: string) => boolean;
  private readonly maxReplayEntries: number;
  /** Replay state grouped by round: round → (signer/kind/round/batch key → last accepted nonce). */
  private readonly lastNonce = new Map<number, Map<string, number>>();
  private entries = 0;
  /** Announcements with a round ≤ this were evicted from the replay state; `-1`: none evicted. */
  private evictedThrough = -1;
  private evictedTotal = 0;
  private readonly peerIds = new Map<string, string>();

  constructor(init: AnnouncementValidatorInit) {
    this.run = init.run;
    this.maxBytes = init.maxBytes ?? MAX_ANNOUNCEMENT_BYTES;
    assertInteger('maxAnnouncementBytes', this.maxBytes, 128, 65536);
    this.roundTolerance = init.roundTolerance ?? ROUND_TOLERANCE;
    assertInteger('roundTolerance', this.roundTolerance, 0, 1000);
    this.isAllowed = init.isAllowed;
    this.maxReplayEntries = init.maxReplayEntries ?? MAX_REPLAY_ENTRIES;
    assertInteger('maxReplayEntries', this.maxReplayEntries, 8, 100_000_000);
  }

  /** Replay entries held now (≤ `maxReplayEntries`). */
  get replayEntries(): number {
    return this.entries;
  }

  /** Replay entries evicted by the cap so far (pruning by {@link prune} is not counted). */
  get replayEntriesEvicted(): number {
    return this.evictedTotal;
  }

  /** Highest round whose replay state the cap evicted (older announcements are rejected); `-1`: none. */
  get replayFloorRound(): number {
    return this.evictedThrough;
  }

  /** Peer id string of a 32-byte ed25519 public key (cached). */
  peerIdOf(signer: Uint8Array): string {
    const hex = toHex(signer);
    let id = this.peerIds.get(hex);
    if (id === undefined) {
      id = peerIdFromPublicKey(publicKeyFromRaw(signer)).toString();
      if (this.peerIds.size > 10_000) this.peerIds.clear();
      this.peerIds.set(hex, id);
    }
    return id;
  }

  /** Runs every check; on success records the nonce so the same message is a replay afterwards. */
  async validate(data: Uint8Array): Promise<ValidationResult> {
    if (data.byteLength > this.maxBytes) {
      return { ok: false, reason: 'oversized', message: `${data.byteLength} bytes > max ${this.maxBytes}` };
    }
    let env: DecodedEnvelope;
    try {
      env = decodeEnvelope(data);
    } catch (e) {
      return { ok: false, reason: 'malformed', message: (e as Error).message };
    }
    if (env.signature.byteLength === 0) return { ok: false, reason: 'unsigned', message: 'sig_len is 0' };
    if (!bytesEqual(env.run, this.run))
      return { ok: false, reason: 'wrong-run', message: 'run digest differs' };
    let from: string;
    try {
      from = this.peerIdOf(env.signer);
    } catch (e) {
      return { ok: false, reason: 'malformed', message: `signer: ${(e as Error).message}` };
    }
    if (!this.isAllowed(from))
      return { ok: false, reason: 'not-allowed', message: `${from} is not in the allowlist` };
    let valid = false;
    try {
      valid = await publicKeyFromRaw(env.signer).verify(signingBytes(env.body), env.signature);
    } catch {
      valid = false;
    }
    if (!valid)
      return { ok: false, reason: 'bad-signature', message: `signature does not verify for ${from}` };
    const a = env.announcement;
    if (this.currentRound !== null && Math.abs(a.round - this.currentRound) > this.roundTolerance) {
      return {
        ok: false,
        reason: 'off-round',
        message: `round ${a.round} is outside ${this.currentRound}±${this.roundTolerance}`,
      };
    }
    const key = `${from}/${a.kind}/${a.round}/${a.kind === 'result' ? a.batchId : 0}`;
    if (a.round <= this.evictedThrough) {
      return {
        ok: false,
        reason: 'replayed',
        message: `round ${a.round} <= ${this.evictedThrough}, whose replay state was evicted (maxReplayEntries ${this.maxReplayEntries})`,
      };
    }
    let group = this.lastNonce.get(a.round);
    const last = group?.get(key);
    if (last !== undefined && a.nonce <= last) {
      return {
        ok: false,
        reason: 'replayed',
        message: `nonce ${a.nonce} <= last accepted ${last} for ${key}`,
      };
    }
    if (group === undefined) {
      group = new Map();
      this.lastNonce.set(a.round, group);
    }
    if (last === undefined) this.entries++;
    group.set(key, a.nonce);
    if (this.entries > this.maxReplayEntries) this.evict();
    return { ok: true, announcement: { ...a, signer: env.signer, from } };
  }

  /** Drops replay state of rounds older than the round window (called on round change); such rounds are off-round. */
  prune(round: number): void {
    const window = Math.max(REPLAY_WINDOW_ROUNDS, this.roundTolerance + 1);
    for (const [r, group] of this.lastNonce) {
      if (r + window < round) {
        this.entries -= group.size;
        this.lastNonce.delete(r);
      }
    }
  }

  /**
   * Over the cap: drops whole rounds, lowest first, until at most 7/8 of the cap is left (amortised: one sort
   * per eviction of ≥ cap/8 entries) and raises the replay floor to the highest dropped round. Whole rounds
   * only, so every key above the floor keeps its full replay state. (A single round holding more than the cap
   * is dropped too, which ends acceptance for that round: the cap must exceed a round's signers × batches.)
   */
  private evict(): void {
    const target = this.maxReplayEntries - Math.max(1, Math.floor(this.maxReplayEntries / 8));
    for (const r of [...this.lastNonce.keys()].sort((x, y) => x - y)) {
      if (this.entries <= target) break;
      const group = this.lastNonce.get(r)!;
      this.entries -= group.size;
      this.evictedTotal += group.size;
      this.lastNonce.delete(r);
      this.evictedThrough = Math.max(this.evictedThrough, r);
    }
  }
}
