/**
 * Stable error codes of `@psyche/model-mla`. Codes never change meaning once published; new ones are only
 * appended.
 */
export type MlaErrorCode =
  /** A config field is missing, has the wrong type or is out of range. */
  | 'INVALID_CONFIG'
  /** A config asks for a feature this implementation does not have (MoE layers, YaRN, attention bias…). */
  | 'UNSUPPORTED_CONFIG'
  /** A function argument (tokens, options, tensors) is malformed. */
  | 'INVALID_ARGUMENT'
  /** A sequence is longer than `max_position_embeddings`. */
  | 'SEQUENCE_TOO_LONG'
  /** A safetensors buffer is malformed: header length, JSON, offsets, dtypes or shapes. */
  | 'MALFORMED_SAFETENSORS'
  /** A tensor has a dtype that cannot be used here. */
  | 'UNSUPPORTED_DTYPE'
  /** A checkpoint lacks a tensor the config requires. */
  | 'MISSING_TENSOR'
  /** A checkpoint has a tensor the config does not know. */
  | 'UNEXPECTED_TENSOR'
  /** A tensor's shape differs from the one the config implies. */
  | 'SHAPE_MISMATCH'
  /** A checkpoint directory or file could not be read or written. */
  | 'CHECKPOINT_IO'
  /** The model was used after `dispose()`. */
  | 'DISPOSED';

/**
 * The one error class of this package. `code` is stable and machine-readable; `details` names the offending
 * field/parameter and what was expected.
 *
 * @example
 * ```ts
 * import { isMlaError, parseSafetensors } from '@psyche/model-mla';
 * try {
 *   parseSafetensors(new Uint8Array(3));
 * } catch (e) {
 *   if (isMlaError(e, 'MALFORMED_SAFETENSORS')) console.warn(e.message, e.details);
 * }
 * ```
 */
export class MlaError extends Error {
  override readonly name = 'MlaError';
  /** Stable machine-readable code. */
  readonly code: MlaErrorCode;
  /** Structured context: the field or parameter at fault, what was found, what was expected. */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(
    code: MlaErrorCode,
    message: string,
    details: Record<string, unknown> = {},
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.code = code;
    this.details = Object.freeze({ ...details });
  }
}

/**
 * Type guard for {@link MlaError}, optionally narrowed to one code. Checks `name` rather than `instanceof` so it
 * also works across duplicate installs.
 */
export function isMlaError(e: unknown, code?: MlaErrorCode): e is MlaError {
  return (
    typeof e === 'object' &&
    e !== null &&
    (e as { name?: unknown }).name === 'MlaError' &&
    (code === undefined || (e as { code?: unknown }).code === code)
  );
}
