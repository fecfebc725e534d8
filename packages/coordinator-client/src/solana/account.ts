import {
  type Bloom,
  type Checkpoint,
  type Client,
  type ClientState,
  CONFIG_FIELDS,
  type CoordinatorConfig,
  type CoordinatorState,
  type LrSchedule,
  type Round,
  type RunState,
  toHex,
  type Witness,
} from '@psyche/coordinator';
import { CoordinatorClientError } from '../errors.js';
import { ACCOUNT_DISCRIMINATORS } from './idl.js';
import {
  ACCOUNT_MAX_CLIENTS,
  ACCOUNT_MAX_WITNESSES,
  ACCOUNT_VERSION,
  COORDINATOR_ACCOUNT_SPACE,
  CORE_ACCOUNT_SIZE,
  CORE_LAYOUT,
  CORE_OFFSET,
  NONCE_OFFSET,
  NUM_STORED_ROUNDS,
} from './layout.js';

/** A decoded on-chain coordinator account. */
export interface DecodedCoordinatorAccount {
  /** Bumped by every instruction that changed the account; use it to drop stale or duplicate updates. */
  nonce: bigint;
  /** The run state, exactly as `@psyche/coordinator` represents it. */
  state: CoordinatorState;
}

const L = CORE_LAYOUT;
const f = <S extends keyof typeof L>(s: S, name: keyof (typeof L)[S]['fields']): number =>
  (L[s].fields as Record<string, readonly [number, number]>)[name as string]?.[0] as number;

function malformed(field: string, expected: string, got: unknown): CoordinatorClientError {
  return new CoordinatorClientError(
    'MALFORMED_MESSAGE',
    `coordinator account: ${field} must be ${expected}, got ${String(got)}`,
    { field, expected, got: String(got) },
  );
}

const LR_KINDS = ['constant', 'linear', 'cosine', 'wsd'] as const;
const CHECKPOINT_KINDS = ['Ephemeral', 'Dummy', 'Hub', 'P2P', 'Gcs', 'P2PGcs'] as const;

class Reader {
  readonly view: DataView;
  constructor(readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  u8(o: number): number {
    return this.view.getUint8(o);
  }
  u32(o: number): number {
    return this.view.getUint32(o, true);
  }
  u64(o: number): bigint {
    return this.view.getBigUint64(o, true);
  }
  f64(o: number): number {
    return this.view.getFloat64(o, true);
  }
  /** A u64 that must be a safe integer (the TS state machine keeps those as numbers). */
  num(o: number, field: string): number {
    const v = this.u64(o);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw malformed(field, 'a safe integer', v);
    return Number(v);
  }
  hex(o: number, n: number): string {
    return toHex(this.bytes.subarray(o, o + n));
  }
  utf8(o: number, len: number, cap: number, field: string): string {
    if (len > cap) throw malformed(field, `<= ${cap}`, len);
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(this.bytes.subarray(o, o + len));
    } catch {
      throw malformed(field, 'UTF-8', 'invalid bytes');
    }
  }
  len(o: number, cap: number, field: string): number {
    const n = this.u32(o);
    if (n > cap) throw malformed(field, `<= ${cap}`, n);
    return n;
  }
}

function readBloom(r: Reader, o: number): Bloom {
  const bits: bigint[] = [];
  const keys: bigint[] = [];
  for (let i = 0; i < 16; i++) bits.push(r.u64(o + f('Bloom', 'bits') + 8 * i));
  for (let i = 0; i < 8; i++) keys.push(r.u64(o + f('Bloom', 'keys') + 8 * i));
  return { numBits: r.u32(o + f('Bloom', 'num_bits')), keys, bits };
}

function readClient(r: Reader, o: number, field: string): Client {
  const state = r.u8(o + f('AccountClient', 'state'));
  if (state > 3) throw malformed(`${field}.state`, '0..=3', state);
  return {
    id: r.hex(o + f('AccountClient', 'id'), 32),
    state: state as ClientState,
    exitedHeight: r.u32(o + f('AccountClient', 'exited_height')),
  };
}

function readRound(r: Reader, o: number, k: number): Round {
  const n = r.len(
    o + f('AccountRound', 'witnesses_len'),
    ACCOUNT_MAX_WITNESSES,
    `rounds[${k}].witnesses_len`,
  );
  const witnesses: Witness[] = [];
  for (let i = 0; i < n; i++) {
    const w = o + f('AccountRound', 'witnesses') + i * L.AccountWitness.size;
    witnesses.push({
      index: r.u32(w + f('AccountWitness', 'index')),
      participantBloom: readBloom(r, w + f('AccountWitness', 'participant_bloom')),
      broadcastBloom: readBloom(r, w + f('AccountWitness', 'broadcast_bloom')),
      broadcastMerkle: r.hex(w + f('AccountWitness', 'broadcast_merkle'), 32),
    });
  }
  return {
    witnesses,
    dataIndex: r.num(o + f('AccountRound', 'data_index'), `rounds[${k}].data_index`),
    randomSeed: r.u64(o + f('AccountRound', 'random_seed')),
    height: r.u32(o + f('AccountRound', 'height')),
    clientsLen: r.u32(o + f('AccountRound', 'clients_len')),
  };
}

function readCheckpoint(r: Reader, o: number): Checkpoint {
  const kind = r.u8(o + f('AccountCheckpoint', 'kind'));
  const name = CHECKPOINT_KINDS[kind];
  if (name === undefined) throw malformed('model.checkpoint.kind', '0..=5', kind);
  if (name === 'Ephemeral') return { type: 'Ephemeral' };
  const main = r.utf8(o, r.u8(o + f('AccountCheckpoint', 'name_len')), 64, 'model.checkpoint.name_len');
  const detail =
    r.u8(o + f('AccountCheckpoint', 'has_detail')) === 0
      ? null
      : r.utf8(
          o + f('AccountCheckpoint', 'detail'),
          r.u8(o + f('AccountCheckpoint', 'detail_len')),
          64,
          'model.checkpoint.detail_len',
        );
  if (name === 'Gcs' || name === 'P2PGcs') return { type: name, bucket: main, prefix: detail };
  return { type: name, repoId: main, revision: detail };
}

function readLr(r: Reader, o: number): LrSchedule {
  const kind = r.u8(o + f('AccountLrSchedule', 'kind'));
  const type = LR_KINDS[kind];
  if (type === undefined) throw malformed('model.lr_schedule.kind', '0..=3', kind);
  const lr = (i: number) => r.f64(o + f('AccountLrSchedule', 'lrs') + 8 * i);
  const st = (i: number) =>
    r.num(o + f('AccountLrSchedule', 'steps') + 8 * i, `model.lr_schedule.steps[${i}]`);
  const base = { baseLr: lr(0), warmupInitLr: lr(1), warmupSteps: st(0) };
  if (type === 'constant') return { type, ...base };
  if (type === 'wsd')
    return {
      type,
      ...base,
      stableSteps: st(1),
      cosineDecaySteps: st(2),
      cosineDecayFinalLr: lr(2),
      linearDecaySteps: st(3),
      linearDecayFinalLr: lr(3),
    };
  return { type, ...base, totalSteps: st(1), finalLr: lr(2) };
}

/**
 * Decodes the core's 85 736-byte `#[repr(C)]` `CoordinatorAccount` (no discriminator, no nonce) into the
 * `@psyche/coordinator` state. It checks the version, every length against its capacity and every enum value.
 *
 * @throws {CoordinatorClientError} `MALFORMED_MESSAGE` naming the field, for a wrong size, version, length or
 * enum value, or a u64 beyond `Number.MAX_SAFE_INTEGER` where the TS state uses numbers.
 */
export function decodeCoreAccount(bytes: Uint8Array): CoordinatorState {
  if (bytes.length !== CORE_ACCOUNT_SIZE)
    throw malformed('length', `${CORE_ACCOUNT_SIZE} bytes`, bytes.length);
  const r = new Reader(bytes);
  const A = (name: keyof (typeof L)['CoordinatorAccount']['fields']) => f('CoordinatorAccount', name);
  const version = r.u64(A('version'));
  if (version !== ACCOUNT_VERSION) throw malformed('version', String(ACCOUNT_VERSION), version);
  const runState = r.u8(A('run_state'));
  if (runState > 7) throw malformed('run_state', '0..=7', runState);
  const config = {} as CoordinatorConfig;
  CONFIG_FIELDS.forEach((name, i) => {
    config[name] = r.num(A('config') + 8 * i, `config.${name}`);
  });
  const m = A('model');
  const pendingLen = r.len(A('pending_len'), ACCOUNT_MAX_CLIENTS, 'pending_len');
  const pending: string[] = [];
  for (let i = 0; i < pendingLen; i++) pending.push(r.hex(A('pending') + 32 * i, 32));
  const e = A('epoch_state');
  const E = (name: keyof (typeof L)['AccountEpochState']['fields']) => e + f('AccountEpochState', name);
  const rounds: Round[] = [];
  for (let k = 0; k < NUM_STORED_ROUNDS; k++)
    rounds.push(readRound(r, E('rounds') + k * L.AccountRound.size, k));
  const clients: Client[] = [];
  const clientsLen = r.len(E('clients_len'), ACCOUNT_MAX_CLIENTS, 'epoch_state.clients_len');
  for (let i = 0; i < clientsLen; i++) clients.push(readClient(r, E('clients') + 40 * i, `clients[${i}]`));
  const exitedClients: Client[] = [];
  const exitedLen = r.len(E('exited_len'), ACCOUNT_MAX_CLIENTS, 'epoch_state.exited_len');
  for (let i = 0; i < exitedLen; i++)
    exitedClients.push(readClient(r, E('exited_clients') + 40 * i, `exited_clients[${i}]`));
  const warmupWitnesses: number[] = [];
  const wwLen = r.len(E('warmup_witnesses_len'), ACCOUNT_MAX_WITNESSES, 'epoch_state.warmup_witnesses_len');
  for (let i = 0; i < wwLen; i++) warmupWitnesses.push(r.u32(E('warmup_witnesses') + 4 * i));
  return {
    runId: r.utf8(A('run_id'), r.u8(A('run_id_len')), 32, 'run_id_len'),
    runState: runState as RunState,
    runStateStart: r.num(A('run_state_start'), 'run_state_start'),
    config,
    model: {
      maxSeqLen: r.num(m + f('AccountModel', 'max_seq_len'), 'model.max_seq_len'),
      coldStartWarmupSteps: r.num(
        m + f('AccountModel', 'cold_start_warmup_steps'),
        'model.cold_start_warmup_steps',
      ),
      checkpoint: readCheckpoint(r, m + f('AccountModel', 'checkpoint')),
      lrSchedule: readLr(r, m + f('AccountModel', 'lr_schedule')),
    },
    progress: {
      epoch: r.u32(A('epoch')),
      step: r.u32(A('step')),
      epochStartDataIndex: r.num(A('epoch_start_data_index'), 'epoch_start_data_index'),
    },
    pendingPause: r.u8(A('pending_pause')) !== 0,
    lastRoundSeed: r.u64(A('last_round_seed')),
    pending,
    epoch: {
      rounds,
      roundsHead: r.u32(E('rounds_head')),
      clients,
      exitedClients,
      startStep: r.u32(E('start_step')),
      lastStep: r.u32(E('last_step')),
      startTimestamp: r.num(E('start_timestamp'), 'epoch_state.start_timestamp'),
      firstRound: r.u8(E('first_round')) !== 0,
      coldStartEpoch: r.u8(E('cold_start_epoch')) !== 0,
      warmupWitnesses,
    },
  };
}

/**
 * Decodes the data of the program's `CoordinatorAccount` (discriminator, `nonce`, core state; 85 752 bytes).
 *
 * @example
 * ```ts
 * const info = await connection.getAccountInfo(coordinatorAccount);
 * const { nonce, state } = decodeCoordinatorAccount(info.data);
 * ```
 * @throws {CoordinatorClientError} `MALFORMED_MESSAGE` for a wrong size or discriminator, or anything
 * {@link decodeCoreAccount} rejects.
 */
export function decodeCoordinatorAccount(data: Uint8Array): DecodedCoordinatorAccount {
  if (data.length !== COORDINATOR_ACCOUNT_SPACE)
    throw malformed('data.length', `${COORDINATOR_ACCOUNT_SPACE} bytes`, data.length);
  const disc = ACCOUNT_DISCRIMINATORS.CoordinatorAccount;
  for (let i = 0; i < 8; i++)
    if (data[i] !== disc[i])
      throw malformed(
        'discriminator',
        'sha256("account:CoordinatorAccount")[0..8]',
        toHex(data.subarray(0, 8)),
      );
  const nonce = new DataView(data.buffer, data.byteOffset + NONCE_OFFSET, 8).getBigUint64(0, true);
  return { nonce, state: decodeCoreAccount(data.subarray(CORE_OFFSET, CORE_OFFSET + CORE_ACCOUNT_SIZE)) };
}
