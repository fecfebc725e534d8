/**
 * Stable error codes of `@psyche/distro-optimizer`. Callers switch on `code`, never on the message.
 *
 * @since 0.1.0
 */
export type DistroErrorCode =
  | 'INVALID_CONFIG'
  | 'INVALID_ARGUMENT'
  | 'INVALID_SHAPE'
  | 'UNSUPPORTED_DTYPE'
  | 'DUPLICATE_PARAMETER'
  | 'UNKNOWN_PARAMETER'
  | 'SHAPE_MISMATCH'
  | 'NON_FINITE_GRADIENT'
  | 'NON_FINITE_MOMENTUM'
  | 'INVALID_WEIGHTS'
  | 'INVALID_RESULT';

/**
 * Stable error codes raised while decoding or validating a {@link DistroResult} from an untrusted source.
 *
 * @since 0.1.0
 */
export type DistroCodecErrorCode =
  | 'INVALID_INPUT'
  | 'TRUNCATED'
  | 'OVERSIZED'
  | 'BAD_MAGIC'
  | 'UNSUPPORTED_VERSION'
  | 'INVALID_FIELD'
  | 'INVALID_NAME'
  | 'INVALID_SHAPE'
  | 'LAYOUT_MISMATCH'
  | 'CONFIG_MISMATCH'
  | 'UNKNOWN_PARAMETER'
  | 'SHAPE_MISMATCH'
  | 'DUPLICATE_PARAMETER'
  | 'INDEX_OUT_OF_RANGE'
  | 'NON_CANONICAL_INDICES'
  | 'NON_FINITE_VALUE'
  | 'INVALID_VALUE';

/** Structured details attached to every {@link DistroError}. */
export interface DistroErrorDetails {
  /** The parameter (variable) the problem concerns, when there is one. */
  readonly param?: string;
  /** The option, argument or wire field that was wrong, e.g. `compressionTopk` or `indices`. */
  readonly field?: string;
  /** Byte offset in the encoded buffer, for codec errors. */
  readonly offset?: number;
}

/**
 * The one error class of this package: every bad input (configuration, gradients, weights, results, wire bytes)
 * raises a `DistroError` (or its codec subclass) with a stable `code`, and never corrupts optimizer state.
 *
 * @example
 * ```ts
 * import { DistroError, DistroOptimizer } from '@psyche/distro-optimizer';
 * try { new DistroOptimizer({ lr: -1 }); } catch (e) { if (e instanceof DistroError) console.log(e.code); }
 * ```
 * @since 0.1.0
 */
export class DistroError extends Error {
  /** Stable machine-readable code. */
  readonly code: DistroErrorCode | DistroCodecErrorCode;
  /** Where the problem was: parameter name, field, byte offset. */
  readonly details: DistroErrorDetails;

  constructor(
    code: DistroErrorCode | DistroCodecErrorCode,
    message: string,
    details: DistroErrorDetails = {},
  ) {
    super(message);
    this.name = 'DistroError';
    this.code = code;
    this.details = details;
  }

  /** The parameter the error concerns, if any. */
  get param(): string | undefined {
    return this.details.param;
  }
}

/**
 * Raised by {@link decodeDistroResult} and {@link validateDistroResult} for any malformed, inconsistent or
 * hostile result. No other exception type escapes the decoder (property-tested with fast-check).
 *
 * @since 0.1.0
 */
export class DistroCodecError extends DistroError {
  declare readonly code: DistroCodecErrorCode;

  constructor(code: DistroCodecErrorCode, message: string, details: DistroErrorDetails = {}) {
    super(code, message, details);
    this.name = 'DistroCodecError';
  }
}

/**
 * Counts of rejected inputs by error code. The optimizer keeps one (`opt.rejections`); pass one to
 * {@link decodeDistroResult} through `options.stats` to count decoding rejections.
 *
 * @since 0.1.0
 */
export class DistroRejectionStats {
  /** Rejections per code. */
  readonly byCode: Partial<Record<DistroErrorCode | DistroCodecErrorCode, number>> = {};
  /** Total rejections. */
  total = 0;

  /** Records one rejection. */
  record(error: DistroError): void {
    this.byCode[error.code] = (this.byCode[error.code] ?? 0) + 1;
    this.total += 1;
  }
}
