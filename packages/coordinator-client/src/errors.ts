/**
 * Stable error codes of `@psyche/coordinator-client`. Codes never change meaning once published; new ones are
 * only appended.
 */
export type CoordinatorClientErrorCode =
  | 'INVALID_ARGUMENT'
  | 'INVALID_CONFIG'
  | 'INVALID_KEYPAIR'
  | 'MALFORMED_MESSAGE'
  | 'MESSAGE_TOO_LARGE'
  | 'UNAUTHENTICATED'
  | 'BAD_SIGNATURE'
  | 'NOT_ALLOWLISTED'
  | 'REPLAYED'
  | 'RATE_LIMITED'
  | 'COORDINATOR_REJECTED'
  | 'NOT_CONNECTED'
  | 'CLOSED'
  | 'ABORTED'
  | 'TIMEOUT'
  | 'LOG_CORRUPT'
  | 'SNAPSHOT_CORRUPT'
  | 'SERVER_ERROR'
  | 'NOT_ADMIN';

/**
 * The one error class of this package. `code` is stable and machine-readable; `details` names the offending
 * field/parameter and what was expected.
 *
 * @example
 * ```ts
 * try { await client.witness(w); } catch (e) {
 *   if (isCoordinatorClientError(e, 'COORDINATOR_REJECTED')) console.warn(e.details);
 * }
 * ```
 */
export class CoordinatorClientError extends Error {
  override readonly name = 'CoordinatorClientError';
  readonly code: CoordinatorClientErrorCode;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(
    code: CoordinatorClientErrorCode,
    message: string,
    details: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.code = code;
    this.details = Object.freeze({ ...details });
  }
}

/** True when `e` is a {@link CoordinatorClientError}, optionally with the given `code`. */
export function isCoordinatorClientError(
  e: unknown,
  code?: CoordinatorClientErrorCode,
): e is CoordinatorClientError {
  return (
    typeof e === 'object' &&
    e !== null &&
    (e as { name?: unknown }).name === 'CoordinatorClientError' &&
    (code === undefined || (e as { code?: unknown }).code === code)
  );
}

/** The error thrown when an operation's `AbortSignal` fires. */
export function abortError(signal: AbortSignal | undefined, what: string): CoordinatorClientError {
  const reason = signal?.reason;
  return new CoordinatorClientError(
    'ABORTED',
    `${what} was aborted${reason instanceof Error ? `: ${reason.message}` : ''}`,
    { operation: what },
    { cause: reason },
  );
}

/** Throws {@link abortError} if `signal` is already aborted. */
export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw abortError(signal, what);
}
