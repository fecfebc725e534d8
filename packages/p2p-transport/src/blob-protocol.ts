import { WIRE_VERSION } from './constants.js';
import { P2PTransportError } from './errors.js';
import { HASH_ALGORITHM_CODES, type HashAlgorithm, hashAlgorithmFromCode, toHex } from './hash.js';

/** A content address: algorithm, 32-byte digest and size in bytes. */
export interface BlobRef {
  hashAlgorithm: HashAlgorithm;
  hash: Uint8Array;
  size: number;
}

/** Stable string key of a blob: `<alg>:<hex>`. */
export function blobKey(ref: Pick<BlobRef, 'hashAlgorithm' | 'hash'>): string {
  return `${ref.hashAlgorithm}:${toHex(ref.hash)}`;
}

/** Request opcodes. */
export const OP_GET = 1;
export const OP_PING = 2;

/** Response status codes (docs/p2p-protocol.md). */
export const STATUS = {
  OK: 0,
  NOT_FOUND: 1,
  FORBIDDEN: 2,
  BAD_REQUEST: 3,
  BUSY: 4,
  RANGE: 5,
} as const;
/** A response status name. */
export type BlobStatus = keyof typeof STATUS;

/** Request frame length in bytes. */
export const REQUEST_BYTES = 52;
/** Response header length in bytes. */
export const RESPONSE_HEADER_BYTES = 10;

/** A decoded blob request. */
export interface BlobRequest {
  op: typeof OP_GET | typeof OP_PING;
  hashAlgorithm: HashAlgorithm | null;
  hash: Uint8Array;
  /** First byte requested. */
  offset: number;
  /** Bytes requested; 0 means "to the end". */
  length: number;
}

/** Encodes a 52-byte request: `version | op | hash_alg | 0 | hash[32] | offset u64 | length u64`. */
export function encodeRequest(req: BlobRequest): Uint8Array {
  const out = new Uint8Array(REQUEST_BYTES);
  const view = new DataView(out.buffer);
  out[0] = WIRE_VERSION;
  out[1] = req.op;
  out[2] = req.hashAlgorithm === null ? 0 : HASH_ALGORITHM_CODES[req.hashAlgorithm];
  out.set(req.hash, 4);
  view.setBigUint64(36, BigInt(req.offset));
  view.setBigUint64(44, BigInt(req.length));
  return out;
}

/** Decodes a request frame; throws MALFORMED_FRAME naming the bad field. */
export function decodeRequest(frame: Uint8Array): BlobRequest {
  const bad = (field: string, msg: string): never => {
    throw new P2PTransportError('MALFORMED_FRAME', `blob request ${field}: ${msg}`, { field });
  };
  if (frame.byteLength !== REQUEST_BYTES)
    bad('frame', `expected ${REQUEST_BYTES} bytes, got ${frame.byteLength}`);
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  if (frame[0] !== WIRE_VERSION) bad('version', `expected ${WIRE_VERSION}, got ${frame[0]}`);
  const op = frame[1];
  if (op !== OP_GET && op !== OP_PING) bad('op', `expected 1 (GET) or 2 (PING), got ${op}`);
  if (frame[3] !== 0) bad('reserved', `must be 0, got ${frame[3]}`);
  const offset = view.getBigUint64(36);
  const length = view.getBigUint64(44);
  const max = BigInt(Number.MAX_SAFE_INTEGER);
  if (offset > max) bad('offset', `${offset} exceeds 2^53-1`);
  if (length > max) bad('length', `${length} exceeds 2^53-1`);
  return {
    op: op as typeof OP_GET | typeof OP_PING,
    hashAlgorithm: op === OP_PING ? null : hashAlgorithmFromCode(frame[2]!, 'blob request hash_alg'),
    hash: frame.slice(4, 36),
    offset: Number(offset),
    length: Number(length),
  };
}

/** Encodes a 10-byte response header: `version | status | total_size u64`. */
export function encodeResponseHeader(status: number, totalSize: number): Uint8Array {
  const out = new Uint8Array(RESPONSE_HEADER_BYTES);
  out[0] = WIRE_VERSION;
  out[1] = status;
  new DataView(out.buffer).setBigUint64(2, BigInt(totalSize));
  return out;
}

/** Decodes a response header; throws MALFORMED_FRAME naming the bad field. */
export function decodeResponseHeader(frame: Uint8Array): { status: BlobStatus; totalSize: number } {
  const bad = (field: string, msg: string): never => {
    throw new P2PTransportError('MALFORMED_FRAME', `blob response ${field}: ${msg}`, { field });
  };
  if (frame.byteLength !== RESPONSE_HEADER_BYTES)
    bad('header', `expected ${RESPONSE_HEADER_BYTES} bytes, got ${frame.byteLength}`);
  if (frame[0] !== WIRE_VERSION) bad('version', `expected ${WIRE_VERSION}, got ${frame[0]}`);
  const code = frame[1]!;
  const status = (Object.keys(STATUS) as BlobStatus[]).find((k) => STATUS[k] === code);
  if (status === undefined) bad('status', `unknown status ${code}`);
  const total = new DataView(frame.buffer, frame.byteOffset, frame.byteLength).getBigUint64(2);
  if (total > BigInt(Number.MAX_SAFE_INTEGER)) bad('total_size', `${total} exceeds 2^53-1`);
  return { status: status as BlobStatus, totalSize: Number(total) };
}
