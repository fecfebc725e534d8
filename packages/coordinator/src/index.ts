/**
 * @packageDocumentation
 * The Psyche-TS coordinator: a pure, clock-free, RNG-free run state machine (Psyche's `shared/coordinator`) and
 * the deterministic functions clients use to predict committees, witnesses and data assignment. Normative spec:
 * `docs/coordinator.md`; conformance vectors shared with the Rust crate: `fixtures/coordinator/`.
 */

export type { Bloom } from './bloom.js';
export {
  bloomAdd,
  bloomContains,
  bloomNumBits,
  cloneBloom,
  createBloom,
  emptyBloom,
  FNV_OFFSET_BASIS,
  FNV_PRIME,
  fnv1aKeyed,
  fnv1aKeyedMod,
  validateBloom,
} from './bloom.js';
export { ascii, concatBytes, fromHex, sha256, toHex } from './bytes.js';
export type { BatchAssignment, CommitteeProof } from './committee.js';
export {
  assignBatches,
  currentRound,
  effectiveWitnessNodes,
  expectedWitnesses,
  getBatchesForClient,
  getCommittee,
  getRoundAssignments,
  getTrainerIndices,
  getWitnessIndices,
  isWitness,
  previousRound,
  roundQuorum,
  witnessQuorum,
} from './committee.js';
export { CONFIG_FIELDS, validateCheckpoint, validateConfig, validateModel, validateRunId } from './config.js';
export {
  BLOOM_FALSE_RATE,
  BLOOM_KEYS,
  BLOOM_MAX_BITS,
  BLOOM_WORDS,
  MAX_CLIENTS_LIMIT,
  MAX_DURATION,
  MAX_PENDING,
  MAX_SEQ_LEN_LIMIT,
  MAX_TIMESTAMP,
  MAX_TOTAL_STEPS,
  MAX_WITNESSES,
  NUM_STORED_ROUNDS,
  ROUND_SEED_DOMAIN,
  SHUFFLE_ROUNDS,
} from './constants.js';
export type {
  CheckpointMessage,
  ConfigChanges,
  CreateCoordinatorInit,
  HealthCheckEntry,
  HealthCheckMessage,
  WarmupWitnessMessage,
  WitnessMessage,
} from './coordinator.js';
export {
  checkpoint,
  cloneState,
  createCoordinator,
  healthCheck,
  isClientHealthy,
  join,
  pause,
  resume,
  tick,
  updateConfig,
  warmupWitness,
  withdraw,
  witness,
} from './coordinator.js';
export type { CoordinatorErrorCode, CoordinatorErrorDetails } from './errors.js';
export { CoordinatorError, CoordinatorErrorNumber, isCoordinatorError } from './errors.js';
export type { SeedWitness } from './hashes.js';
export { commitmentHash, roundSeed } from './hashes.js';
export { batchSize, lrAt } from './schedule.js';
export type { ShuffleSalt } from './shuffle.js';
export {
  computeShuffledIndex,
  computeShuffledPositions,
  deriveShuffleSeed,
  deterministicShuffle,
  LCG_A,
  LCG_C,
  Lcg,
  SHUFFLE_CACHE_SIZE,
} from './shuffle.js';
export type {
  Checkpoint,
  Client,
  ClientId,
  CoordinatorConfig,
  CoordinatorState,
  EpochState,
  GcsRepo,
  HealthCheckResult,
  HubRepo,
  LrSchedule,
  ModelConfig,
  Progress,
  Round,
  TickResult,
  Witness,
} from './types.js';
export { ClientState, Committee, RUN_STATE_NAMES, RunState } from './types.js';
