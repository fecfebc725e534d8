import type { Bloom } from './bloom.js';

/** Run states; the `u8` discriminants match Psyche's `RunState` exactly. */
export const RunState = {
  Uninitialized: 0,
  WaitingForMembers: 1,
  Warmup: 2,
  RoundTrain: 3,
  RoundWitness: 4,
  Cooldown: 5,
  Finished: 6,
  Paused: 7,
} as const;
/** A run state discriminant. */
export type RunState = (typeof RunState)[keyof typeof RunState];

/** Names of the run states, indexed by discriminant. */
export const RUN_STATE_NAMES = [
  'Uninitialized',
  'WaitingForMembers',
  'Warmup',
  'RoundTrain',
  'RoundWitness',
  'Cooldown',
  'Finished',
  'Paused',
] as const;

/** Client states; discriminants match Psyche's `ClientState`. `Ejected` is never assigned (as in Psyche). */
export const ClientState = { Healthy: 0, Dropped: 1, Withdrawn: 2, Ejected: 3 } as const;
/** A client state discriminant. */
export type ClientState = (typeof ClientState)[keyof typeof ClientState];

/** Committees; discriminants match Psyche's `Committee`. With 0 tie-breakers and 0 % verifiers all are Trainers. */
export const Committee = { TieBreaker: 0, Verifier: 1, Trainer: 2 } as const;
/** A committee discriminant. */
export type Committee = (typeof Committee)[keyof typeof Committee];

/** A client id: the node's 32-byte ed25519 public key as 64 lowercase hex chars. */
export type ClientId = string;

/**
 * Run configuration (Psyche's `CoordinatorConfig`, plus `maxClients`). Durations are seconds. Every field must
 * be the same on every node of a run. Rules: docs/coordinator.md §3.
 */
export interface CoordinatorConfig {
  /** Max Warmup duration; `< epochTime`. */
  warmupTime: number;
  /** Cooldown duration; `> 0`. */
  cooldownTime: number;
  /** RoundTrain timeout; `> 0`, `< epochTime`. */
  maxRoundTrainTime: number;
  /** RoundWitness duration; `> 0`. */
  roundWitnessTime: number;
  /** Tokens over which the global batch size ramps from start to end. */
  globalBatchSizeWarmupTokens: number;
  /** After this many seconds from the epoch start the epoch winds down. */
  epochTime: number;
  /** The run trains steps `1..=totalSteps`, then finishes. */
  totalSteps: number;
  /** Joiners needed to start an epoch; `>= minClients`, `<= maxClients`. */
  initMinClients: number;
  /** Below this many Healthy clients the epoch ends. */
  minClients: number;
  /** Clients admitted per epoch (Psyche hard-codes 256). */
  maxClients: number;
  /** Witnesses per round; 0 = up to 32. `<= minClients`. */
  witnessNodes: number;
  /** Sequences per step at the start of the ramp. */
  globalBatchSizeStart: number;
  /** Sequences per step after the ramp; `>= globalBatchSizeStart`. */
  globalBatchSizeEnd: number;
  /** Must be 0 (verification is not implemented, as in Psyche). */
  verificationPercent: number;
  /** Extra seconds to wait in WaitingForMembers; `1..=255`. */
  waitingForMembersExtraTime: number;
}

/** A Hugging Face repo reference. */
export interface HubRepo {
  repoId: string;
  revision: string | null;
}
/** A Google Cloud Storage location. */
export interface GcsRepo {
  bucket: string;
  prefix: string | null;
}

/** Where new joiners get the model (Psyche's `Checkpoint`). */
export type Checkpoint =
  | { type: 'Ephemeral' }
  | ({ type: 'Dummy' } & HubRepo)
  | ({ type: 'Hub' } & HubRepo)
  | ({ type: 'P2P' } & HubRepo)
  | ({ type: 'Gcs' } & GcsRepo)
  | ({ type: 'P2PGcs' } & GcsRepo);

/** Learning-rate schedules (docs/coordinator.md §9.6); warmups are linear from `warmupInitLr`. */
export type LrSchedule =
  | { type: 'constant'; baseLr: number; warmupInitLr: number; warmupSteps: number }
  | {
      type: 'linear' | 'cosine';
      baseLr: number;
      warmupInitLr: number;
      warmupSteps: number;
      totalSteps: number;
      finalLr: number;
    }
  | {
      type: 'wsd';
      baseLr: number;
      warmupInitLr: number;
      warmupSteps: number;
      stableSteps: number;
      cosineDecaySteps: number;
      cosineDecayFinalLr: number;
      linearDecaySteps: number;
      linearDecayFinalLr: number;
    };

/** The part of Psyche's `Model::LLM` the coordinator reads. */
export interface ModelConfig {
  /** Tokens per sequence; `1..=1048576`. */
  maxSeqLen: number;
  /** LR ramp after a cold start (pause/resume), in steps. */
  coldStartWarmupSteps: number;
  checkpoint: Checkpoint;
  lrSchedule: LrSchedule;
}

/** A member of an epoch. */
export interface Client {
  id: ClientId;
  state: ClientState;
  /** Round height at which it was moved to `exitedClients` (0 while in `clients`). */
  exitedHeight: number;
}

/** A witness submission stored in its round. */
export interface Witness {
  /** Index of the witness in `epoch.clients`. */
  index: number;
  /** Bloom of `sha256(client id)` of the trainers whose results the witness received. */
  participantBloom: Bloom;
  /** Bloom of the commitment hashes of the results it received. */
  broadcastBloom: Bloom;
  /** Merkle root over the commitments it saw (32 bytes, lowercase hex). */
  broadcastMerkle: string;
}

/** One round of the ring buffer. */
export interface Round {
  witnesses: Witness[];
  /** First sequence index of this round's global batch. */
  dataIndex: number;
  /** The round's seed (u64). */
  randomSeed: bigint;
  height: number;
  /** Number of epoch clients when the round started (committee/witness/batch selection domain). */
  clientsLen: number;
}

/** Per-epoch state, zeroed at each epoch start (except `coldStartEpoch`). */
export interface EpochState {
  rounds: Round[];
  roundsHead: number;
  clients: Client[];
  exitedClients: Client[];
  startStep: number;
  /** 0 = unset. */
  lastStep: number;
  startTimestamp: number;
  firstRound: boolean;
  coldStartEpoch: boolean;
  /** Client indices that sent a warmup witness, in arrival order. */
  warmupWitnesses: number[];
}

/** Run progress. */
export interface Progress {
  epoch: number;
  /** Current step, starts at 1. */
  step: number;
  epochStartDataIndex: number;
}

/**
 * The whole coordinator state: plain data (numbers, booleans, strings, bigints for u64 seeds/bloom words, arrays),
 * so it can be cloned ({@link cloneState}), compared and serialized. All numbers are safe integers.
 */
export interface CoordinatorState {
  runId: string;
  runState: RunState;
  runStateStart: number;
  config: CoordinatorConfig;
  model: ModelConfig;
  progress: Progress;
  pendingPause: boolean;
  /** Seed of the last started round (the seed chain, docs §8). */
  lastRoundSeed: bigint;
  /** Joiners for the next epoch, in join order. */
  pending: ClientId[];
  epoch: EpochState;
}

/** Result of {@link tick}. */
export type TickResult = { type: 'Ticked' } | { type: 'EpochEnd'; success: boolean };

/** Outcome counts of {@link healthCheck}. */
export interface HealthCheckResult {
  /** Entries whose client was Healthy and is now Dropped. */
  dropped: number;
  /** Entries naming a client that is actually healthy (ignored, the reporter may be penalized by the caller). */
  rejectedHealthy: number;
  /** Entries naming a client already not Healthy. */
  alreadyUnhealthy: number;
}
