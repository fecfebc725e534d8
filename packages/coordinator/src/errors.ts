/**
 * Numbered coordinator error codes. **The numbers never change** and are shared with the Rust crate
 * `programs/coordinator-core` and the conformance vectors (`fixtures/coordinator/FORMAT.md`).
 */
export const CoordinatorErrorNumber = {
  Halted: 1,
  InvalidConfig: 2,
  InvalidTimestamp: 3,
  InvalidSeed: 4,
  InvalidClientId: 5,
  PendingFull: 6,
  WrongRunState: 7,
  InvalidClientIndex: 8,
  ClientIdMismatch: 9,
  ClientNotHealthy: 10,
  NotAWitness: 11,
  DuplicateWitness: 12,
  InvalidBloom: 13,
  InvalidMerkleRoot: 14,
  HealthCheckTooEarly: 15,
  InvalidHealthCheck: 16,
  InvalidCheckpoint: 17,
  ClientNotFound: 18,
  InvalidRunId: 19,
  InvalidModel: 20,
  InvalidArgument: 21,
} as const;

/** The stable string code of a coordinator error (`'InvalidConfig'`, …). */
export type CoordinatorErrorCode = keyof typeof CoordinatorErrorNumber;

/** Extra, machine-readable detail carried by a {@link CoordinatorError}. */
export interface CoordinatorErrorDetails {
  /** The offending parameter or config field, e.g. `'config.warmupTime'`, `'now'`, `'checks[2].index'`. */
  readonly field?: string;
  /** Any other context (values involved). */
  readonly [key: string]: unknown;
}

/**
 * The one error class of `@psyche/coordinator`. Every bad input to the state machine throws it; the state is
 * then left exactly as it was. `code` is a stable string, `number` the stable numeric code.
 *
 * @example
 * ```ts
 * import { CoordinatorError, isCoordinatorError } from '@psyche/coordinator';
 * try { tick(state, [], now, seed); } catch (e) { if (isCoordinatorError(e, 'Halted')) { ... } }
 * ```
 */
export class CoordinatorError extends Error {
  override readonly name = 'CoordinatorError';
  /** Stable string code. */
  readonly code: CoordinatorErrorCode;
  /** Stable numeric code (never renumbered). */
  readonly number: number;
  /** Field and values involved. */
  readonly details: CoordinatorErrorDetails;

  constructor(code: CoordinatorErrorCode, message: string, details: CoordinatorErrorDetails = {}) {
    super(`${code} (${CoordinatorErrorNumber[code]}): ${message}`);
    this.code = code;
    this.number = CoordinatorErrorNumber[code];
    this.details = details;
  }
}

/**
 * Narrows `e` to a {@link CoordinatorError}, optionally of one code. Identifies by `name` (not `instanceof`) so
 * duplicate installs still match.
 */
export function isCoordinatorError(e: unknown, code?: CoordinatorErrorCode): e is CoordinatorError {
  if (typeof e !== 'object' || e === null || (e as { name?: unknown }).name !== 'CoordinatorError')
    return false;
  return code === undefined || (e as { code?: unknown }).code === code;
}
