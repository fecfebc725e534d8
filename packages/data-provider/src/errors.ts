/**
 * Stable error codes thrown by `@psyche/data-provider`. Callers switch on `code`, never on the message.
 *
 * @since 0.1.0
 */
export type DataProviderErrorCode =
  /** A function or CLI argument is out of range or of the wrong type. */
  | 'INVALID_PARAMETER'
  /** A manifest (`manifest.json`) is malformed or inconsistent. */
  | 'INVALID_MANIFEST'
  /** A shard file is shorter (or longer) than its manifest says. */
  | 'TRUNCATED_SHARD'
  /** A shard or chunk hash does not match the manifest. */
  | 'CHECKSUM_MISMATCH'
  /** A token id read from a shard is `>= vocabSize`. */
  | 'TOKEN_OUT_OF_RANGE'
  /** A sequence index or batch id is outside the dataset. */
  | 'INDEX_OUT_OF_RANGE'
  /** An HTTP server answered with an unexpected status. */
  | 'HTTP_STATUS'
  /** An HTTP request produced no byte for longer than the timeout (stall). */
  | 'HTTP_TIMEOUT'
  /** An HTTP response body or Content-Range disagrees with the requested or manifest length. */
  | 'HTTP_LENGTH_MISMATCH'
  /** An HTTP server ignored the `Range` header (answered 200 instead of 206). */
  | 'HTTP_RANGE_IGNORED'
  /** The connection failed (refused, reset, closed early). */
  | 'HTTP_NETWORK'
  /** A file or input that was asked for does not exist. */
  | 'NOT_FOUND'
  /** Another `prepare` holds the lock on the output directory. */
  | 'PREPARE_LOCKED'
  /** A resume was attempted with different inputs or settings than the interrupted run. */
  | 'PREPARE_STATE_MISMATCH'
  /** An input line could not be parsed (JSONL) or the tokenizer failed. */
  | 'INVALID_INPUT'
  /** The operation was aborted through its `AbortSignal`. */
  | 'ABORTED';

/**
 * The one error class of this package. `code` is stable; `details` names the field/parameter involved.
 *
 * @example
 * ```ts
 * import { DataProviderError } from '@psyche/data-provider';
 * try { await dataset.getSequence(10 ** 12); } catch (e) {
 *   if (e instanceof DataProviderError && e.code === 'INDEX_OUT_OF_RANGE') console.error(e.details);
 * }
 * ```
 * @since 0.1.0
 */
export class DataProviderError extends Error {
  override readonly name = 'DataProviderError';
  /** Stable machine-readable code. */
  readonly code: DataProviderErrorCode;
  /** Structured context: the parameter/field, the value seen, what was expected, URLs, offsets. */
  readonly details: Readonly<Record<string, unknown>>;
  /** Whether retrying the same operation may succeed (transient network faults). */
  readonly retryable: boolean;

  constructor(
    code: DataProviderErrorCode,
    message: string,
    details: Record<string, unknown> = {},
    options: { cause?: unknown; retryable?: boolean } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = details;
    this.retryable = options.retryable ?? false;
  }
}

/** True when `e` is a {@link DataProviderError}, optionally with the given code. Works across duplicate installs. */
export function isDataProviderError(e: unknown, code?: DataProviderErrorCode): e is DataProviderError {
  return (
    typeof e === 'object' &&
    e !== null &&
    (e as { name?: unknown }).name === 'DataProviderError' &&
    (code === undefined || (e as { code?: unknown }).code === code)
  );
}

/**
 * Counts errors by code. Every source and the data server owns one, so operators can see how many bad
 * responses/shards were met (and retried) without parsing logs.
 *
 * @since 0.1.0
 */
export class ErrorCounter {
  private readonly counts = new Map<DataProviderErrorCode, number>();

  /** Records one occurrence of `e`'s code (non-package errors count as `HTTP_NETWORK` when `fallback` says so). */
  count(e: unknown, fallback: DataProviderErrorCode = 'INVALID_INPUT'): void {
    const code = isDataProviderError(e) ? e.code : fallback;
    this.counts.set(code, (this.counts.get(code) ?? 0) + 1);
  }

  /** Number of errors seen with `code`. */
  get(code: DataProviderErrorCode): number {
    return this.counts.get(code) ?? 0;
  }

  /** Total number of errors counted. */
  get total(): number {
    let t = 0;
    for (const v of this.counts.values()) t += v;
    return t;
  }

  /** A plain snapshot `{ code: count }`. */
  snapshot(): Partial<Record<DataProviderErrorCode, number>> {
    return Object.fromEntries(this.counts) as Partial<Record<DataProviderErrorCode, number>>;
  }
}

/** Throws `INVALID_PARAMETER` unless `value` is an integer in `[min, max]`. */
export function assertInteger(
  name: string,
  value: unknown,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new DataProviderError(
      'INVALID_PARAMETER',
      `${name} must be an integer in [${min}, ${max}], got ${JSON.stringify(value)}`,
      { parameter: name, value, min, max },
    );
  }
  return value;
}
