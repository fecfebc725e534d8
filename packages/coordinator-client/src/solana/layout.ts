/**
 * The byte layout of the on-chain coordinator account: the Anchor discriminator, `nonce`, then the Rust core's
 * `#[repr(C)]` `CoordinatorAccount` (`programs/coordinator-core/src/account.rs`, 85 736 bytes, sized for 256
 * clients). Offsets are `[offset, size]` in bytes, relative to the start of their struct; they must equal
 * `fixtures/coordinator-account/layout.json`, which the Rust core writes (checked by `test/solana-account.test.ts`).
 */
export const CORE_LAYOUT = {
  Bloom: { size: 200, fields: { bits: [0, 128], keys: [128, 64], num_bits: [192, 4], _pad: [196, 4] } },
  AccountClient: { size: 40, fields: { id: [0, 32], exited_height: [32, 4], state: [36, 1], _pad: [37, 3] } },
  AccountWitness: {
    size: 440,
    fields: {
      participant_bloom: [0, 200],
      broadcast_bloom: [200, 200],
      broadcast_merkle: [400, 32],
      index: [432, 4],
      _pad: [436, 4],
    },
  },
  AccountRound: {
    size: 14112,
    fields: {
      witnesses: [0, 14080],
      data_index: [14080, 8],
      random_seed: [14088, 8],
      height: [14096, 4],
      clients_len: [14100, 4],
      witnesses_len: [14104, 4],
      _pad: [14108, 4],
    },
  },
  AccountEpochState: {
    size: 77096,
    fields: {
      rounds: [0, 56448],
      clients: [56448, 10240],
      exited_clients: [66688, 10240],
      warmup_witnesses: [76928, 128],
      start_timestamp: [77056, 8],
      clients_len: [77064, 4],
      exited_len: [77068, 4],
      warmup_witnesses_len: [77072, 4],
      rounds_head: [77076, 4],
      start_step: [77080, 4],
      last_step: [77084, 4],
      first_round: [77088, 1],
      cold_start_epoch: [77089, 1],
      _pad: [77090, 6],
    },
  },
  AccountCheckpoint: {
    size: 144,
    fields: {
      name: [0, 64],
      detail: [64, 64],
      kind: [128, 1],
      name_len: [129, 1],
      has_detail: [130, 1],
      detail_len: [131, 1],
      _pad: [132, 12],
    },
  },
  AccountLrSchedule: { size: 80, fields: { lrs: [0, 40], steps: [40, 32], kind: [72, 1], _pad: [73, 7] } },
  AccountModel: {
    size: 240,
    fields: {
      lr_schedule: [0, 80],
      checkpoint: [80, 144],
      max_seq_len: [224, 8],
      cold_start_warmup_steps: [232, 8],
    },
  },
  CoordinatorAccount: {
    size: 85736,
    fields: {
      version: [0, 8],
      run_id: [8, 32],
      run_state: [40, 1],
      run_id_len: [41, 1],
      pending_pause: [42, 1],
      _pad0: [43, 5],
      run_state_start: [48, 8],
      epoch_start_data_index: [56, 8],
      epoch: [64, 4],
      step: [68, 4],
      last_round_seed: [72, 8],
      config: [80, 120],
      model: [200, 240],
      pending: [440, 8192],
      pending_len: [8632, 4],
      _pad1: [8636, 4],
      epoch_state: [8640, 77096],
    },
  },
} as const satisfies Record<string, { size: number; fields: Record<string, readonly [number, number]> }>;

/** Layout version stored in the core account's `version` (see `programs/psyche-coordinator/BREAKING-CHANGES.md`). */
export const ACCOUNT_VERSION = 1n;
/** Bytes of the core state. */
export const CORE_ACCOUNT_SIZE = CORE_LAYOUT.CoordinatorAccount.size;
/** Offset of `nonce` in the account data (after the 8-byte discriminator). */
export const NONCE_OFFSET = 8;
/** Offset of the core state in the account data. */
export const CORE_OFFSET = 16;
/** Total size of the coordinator account's data (`8 + 8 + 85 736`), the `space` of its `createAccount`. */
export const COORDINATOR_ACCOUNT_SPACE = CORE_OFFSET + CORE_ACCOUNT_SIZE;
/** Capacity of the per-epoch client lists and the pending list. */
export const ACCOUNT_MAX_CLIENTS = 256;
/** Witnesses per round. */
export const ACCOUNT_MAX_WITNESSES = 32;
/** Rounds in the ring. */
export const NUM_STORED_ROUNDS = 4;
