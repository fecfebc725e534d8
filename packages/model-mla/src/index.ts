/**
 * `@psyche/model-mla`: a trainable DeepSeek-V2-style causal language model with Multi-head Latent Attention for
 * TensorFlow.js (cpu and wasm backends), with HF-compatible `config.json` + safetensors checkpoints and a
 * compressed-latent KV cache for generation.
 *
 * @packageDocumentation
 */

export type { SaveCheckpointOptions } from './checkpoint.js';
export {
  CONFIG_FILE,
  loadHfCheckpoint,
  readHfCheckpoint,
  saveHfCheckpoint,
  WEIGHTS_FILE,
} from './checkpoint.js';
export type { DeepseekV2Config, KvCacheFootprint } from './config.js';
export {
  configToHfJson,
  countParameters,
  createConfig,
  DEFAULT_CONFIG,
  kvCacheFootprint,
  parameterShapes,
  qHeadDim,
} from './config.js';
export type { MlaErrorCode } from './errors.js';
export { isMlaError, MlaError } from './errors.js';
export { registerGradients, registerWasmKernels, unsortedSegmentSumWasm } from './kernels.js';
export type {
  CreateModelOptions,
  GenerateOptions,
  GenerateResult,
  NamedGradients,
  TokenBatch,
} from './model.js';
export { MlaModel } from './model.js';
export { applyRope, ropeTables } from './rope.js';
export type {
  ParseSafetensorsOptions,
  SafetensorsDtype,
  SafetensorsFile,
  SafetensorsTensor,
  SafetensorsWriteTensor,
} from './safetensors.js';
export {
  bf16ToFloat32,
  float32ToBf16,
  parseSafetensors,
  roundToBf16,
  SAFETENSORS_DTYPE_BYTES,
  safetensorsToFloat32,
  serializeSafetensors,
} from './safetensors.js';
