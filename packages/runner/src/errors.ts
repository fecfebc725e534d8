/** Stable error codes of `@psyche/runner`. */
export type RunnerErrorCode = 'INVALID_CONFIG' | 'INVALID_ARGUMENT' | 'STARTUP_FAILED' | 'CHILD_FAILED';

/**
 * The one error class of `@psyche/runner`: a stable `code` and `details` (for config errors `details.field` is the
 * dotted TOML path of the first bad field and `details.issues` lists them all).
 */
export class RunnerError extends Error {
  override readonly name = 'RunnerError';
  readonly code: RunnerErrorCode;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(
    code: RunnerErrorCode,
    message: string,
    details: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.code = code;
    this.details = details;
  }
}

/** Type guard: `true` when `e` is a {@link RunnerError}, optionally with the given `code`. */
export function isRunnerError(e: unknown, code?: RunnerErrorCode): e is RunnerError {
  return e instanceof RunnerError && (code === undefined || e.code === code);
}
