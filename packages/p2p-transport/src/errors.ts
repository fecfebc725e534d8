/**
 * Stable error codes of `@psyche/p2p-transport`. Callers switch on `error.code`; codes are never renamed.
 */
export type P2PTransportErrorCode =
  | 'INVALID_PARAMETER'
  | 'INVALID_KEY_FILE'
  | 'MALFORMED_FRAME'
  | 'NOT_STARTED'
  | 'PEER_NOT_ALLOWED'
  | 'DIAL_FAILED'
  | 'BLOB_NOT_FOUND'
  | 'SIZE_EXCEEDED'
  | 'SIZE_MISMATCH'
  | 'HASH_MISMATCH'
  | 'REMOTE_ERROR'
  | 'NO_PROVIDERS'
  | 'FETCH_FAILED'
  | 'TIMEOUT'
  | 'ABORTED';

/**
 * The one error class of this package. `code` is stable, `details` carries the offending field/value.
 *
 * @example
 * ```ts
 * import { P2PTransportError } from '@psyche/p2p-transport';
 * try { await node.fetchBlob(ref); } catch (e) {
 *   if (e instanceof P2PTransportError && e.code === 'NO_PROVIDERS') { ... }
 * }
 * ```
 */
export class P2PTransportError extends Error {
  override readonly name = 'P2PTransportError';
  readonly code: P2PTransportErrorCode;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(
    code: P2PTransportErrorCode,
    message: string,
    details: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.code = code;
    this.details = details;
  }
}

/** Type guard: `true` when `e` is a {@link P2PTransportError}, optionally with the given `code`. */
export function isP2PTransportError(e: unknown, code?: P2PTransportErrorCode): e is P2PTransportError {
  return e instanceof P2PTransportError && (code === undefined || e.code === code);
}

/** Throws INVALID_PARAMETER unless `value` is an integer in [min, max]. */
export function assertInteger(
  name: string,
  value: unknown,
  min: number,
  max: number,
): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new P2PTransportError(
      'INVALID_PARAMETER',
      `${name} must be an integer in [${min}, ${max}], got ${String(value)}`,
      { parameter: name, value, min, max },
    );
  }
}
