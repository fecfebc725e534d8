/**
 * @packageDocumentation
 * `@psyche/data-provider`: what Psyche nodes train on. Token shards (flat little-endian u16/u32 ids plus a
 * checksummed `manifest.json`), `prepare` (streaming, resumable, lock-protected tokenization), an embedded
 * default dataset built from the installed TypeScript lib files, local and HTTP shard stores with
 * verified range reads, a small HTTP data server, and deterministic `sequenceIndex → tokens` with a
 * seeded shuffle, so coordinator batch ids map to disjoint sequences.
 */
export { runDataCli } from './cli.js';
export {
  type Batch,
  type BatchId,
  createTokenDataset,
  createWeightedMix,
  type SequencePointer,
  type SequenceSource,
  type TokenDataset,
  type TokenDatasetOptions,
  type WeightedMix,
  type WeightedSource,
} from './dataset.js';
export {
  DEFAULT_DATASET_FILE_PATTERN,
  type DefaultDataset,
  type DefaultDatasetOptions,
  ensureDefaultDataset,
  resolveTypescriptLibDir,
} from './default-dataset.js';
export {
  DataProviderError,
  type DataProviderErrorCode,
  ErrorCounter,
  isDataProviderError,
} from './errors.js';
export {
  createHttpFetcher,
  type HttpFetcher,
  type HttpFetcherOptions,
  type HttpFetcherStats,
} from './http-fetcher.js';
export {
  MANIFEST_FILE,
  MANIFEST_FORMAT,
  parseManifest,
  type ShardInfo,
  type ShardManifest,
  type TokenizerInfo,
} from './manifest.js';
export { type PrepareOptions, type PrepareResult, prepare, shardFileName } from './prepare.js';
export { createProgressBar, type ProgressBarOptions, type ProgressSink } from './progress.js';
export { type DataServer, type ServeOptions, type ServeStats, serveDirectory } from './server.js';
export { createPermutation, type Permutation, type ShuffleSeed } from './shuffle.js';
export {
  type AbortOptions,
  type HttpShardOptions,
  type HttpShardStore,
  type LocalShardOptions,
  openHttpShards,
  openLocalShards,
  type ShardStore,
  type VerifyMode,
} from './store.js';
export {
  BYTE_EOS_ID,
  BYTE_PAD_ID,
  BYTE_TOKENIZER_ID,
  BYTE_VOCAB_SIZE,
  createByteTokenizer,
  type HuggingFaceTokenizerOptions,
  loadHuggingFaceTokenizer,
  type TextTokenizer,
} from './tokenizer.js';
