/**
 * Stable error codes of `@psyche/trainer`. Callers switch on `error.code`; codes are never renamed.
 */
export type TrainerErrorCode =
  | 'INVALID_OPTION'
  | 'INVALID_RESULT'
  | 'NOT_ASSIGNED'
  | 'WARMUP_FAILED'
  | 'DESYNC'
  | 'STOPPED';

/**
 * The one error class of `@psyche/trainer`: a stable `code` and `details` naming the offending field/value.
 *
 * @example
 * ```ts
 * try { validateTrainerOptions(opts); } catch (e) {
 *   if (isTrainerError(e, 'INVALID_OPTION')) console.error(e.details.field, e.message);
 * }
 * ```
 */
export class TrainerError extends Error {
  override readonly name = 'TrainerError';
  readonly code: TrainerErrorCode;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(
    code: TrainerErrorCode,
    message: string,
    details: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.code = code;
    this.details = details;
  }
}

/** Type guard: `true` when `e` is a {@link TrainerError}, optionally with the given `code`. */
export function isTrainerError(e: unknown, code?: TrainerErrorCode): e is TrainerError {
  return e instanceof TrainerError && (code === undefined || e.code === code);
}
