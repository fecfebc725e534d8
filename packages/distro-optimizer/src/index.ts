/**
 * `@psyche/distro-optimizer`: DeMo / DisTrO decoupled-momentum optimization for TensorFlow.js, matching the reference
 * `demo.py` in structure (chunked orthonormal DCT-II, per-block top-k, error feedback, scatter-mean aggregation,
 * sign-SGD) with Psyche's extensions (N-D parameters, packed indices, 1-bit signs) and a validated wire codec.
 * No networking: move the bytes however your loop likes.
 *
 * @packageDocumentation
 */
export { type DecodeDistroOptions, DISTRO_MAGIC, decodeDistroResult, encodeDistroResult } from './codec.js';
export { BasisCache, type BasisProvider, dctBasis, dctDecode, dctEncode } from './dct.js';
export {
  DistroCodecError,
  type DistroCodecErrorCode,
  DistroError,
  type DistroErrorCode,
  type DistroErrorDetails,
  DistroRejectionStats,
} from './errors.js';
export {
  getSmallerSplit,
  indexWidth,
  MAX_ELEMENTS,
  MAX_RANK,
  type ParamLayout,
  paramLayout,
} from './layout.js';
export {
  type DistroAllGather,
  type DistroGradients,
  DistroOptimizer,
  type DistroOptimizerConfig,
  type DistroVariables,
  type NamedTensor,
  registerDistroOptimizer,
} from './optimizer.js';
export {
  DISTRO_WIRE_VERSION,
  type DistroLayout,
  type DistroParamResult,
  type DistroResult,
  type DistroValueDtype,
  type DistroWireConfig,
  isBf16,
  roundToBf16,
  sameWireConfig,
  scatterMean,
  validateDistroResult,
  valueDtypeOf,
} from './result.js';
