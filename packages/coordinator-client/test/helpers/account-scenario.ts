/**
 * The run used by `programs/coordinator-core/tests/account_vectors.rs` (which writes
 * `fixtures/coordinator-account/`): the Solana tests build the same run so their states and instructions line up
 * with the Rust-encoded account vectors.
 */
export const ACCOUNT_RUN_ID = 'acct-run';

export const ACCOUNT_RUN_CONFIG = {
  warmupTime: 30,
  cooldownTime: 10,
  maxRoundTrainTime: 20,
  roundWitnessTime: 2,
  globalBatchSizeWarmupTokens: 0,
  epochTime: 200,
  totalSteps: 100,
  initMinClients: 3,
  minClients: 2,
  maxClients: 8,
  witnessNodes: 0,
  globalBatchSizeStart: 8,
  globalBatchSizeEnd: 8,
  verificationPercent: 0,
  waitingForMembersExtraTime: 2,
};

export const ACCOUNT_RUN_MODEL = {
  maxSeqLen: 2048,
  coldStartWarmupSteps: 0,
  checkpoint: { type: 'Hub' as const, repoId: 'org/model', revision: 'main' },
  lrSchedule: {
    type: 'cosine' as const,
    baseLr: 3e-4,
    warmupInitLr: 0,
    warmupSteps: 10,
    totalSteps: 100,
    finalLr: 3e-5,
  },
};
