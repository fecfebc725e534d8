import { type Bloom, CONFIG_FIELDS, type CoordinatorState, fromHex } from '@psyche/coordinator';
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

const L = CORE_LAYOUT;
const off = <S extends keyof typeof L>(s: S, name: keyof (typeof L)[S]['fields']): number =>
  (L[s].fields as Record<string, readonly [number, number]>)[name as string]?.[0] as number;

function tooBig(field: string, expected: string, got: unknown): CoordinatorClientError {
  return new CoordinatorClientError('INVALID_ARGUMENT', `${field} must be ${expected}, got ${String(got)}`, {
    field,
    expected,
  });
}

const CHECKPOINT_KIND = { Ephemeral: 0, Dummy: 1, Hub: 2, P2P: 3, Gcs: 4, P2PGcs: 5 } as const;
const LR_KIND = { constant: 0, linear: 1, cosine: 2, wsd: 3 } as const;

/**
 * Encodes a `@psyche/coordinator` state into the core's 85 736-byte `#[repr(C)]` account, byte for byte as the Rust
 * core's `CoordinatorAccount::store` does (checked against its vectors). The inverse of `decodeCoreAccount`.
 *
 * @throws {CoordinatorClientError} `INVALID_ARGUMENT` when a list exceeds the account's capacity (256 clients or
 * pending joiners, 32 witnesses) or a name is longer than its field.
 */
export function encodeCoreAccount(s: CoordinatorState): Uint8Array {
  const out = new Uint8Array(CORE_ACCOUNT_SIZE);
  const v = new DataView(out.buffer);
  const enc = new TextEncoder();
  const u64 = (o: number, x: number | bigint) => v.setBigUint64(o, BigInt(x), true);
  const u32 = (o: number, x: number) => v.setUint32(o, x, true);
  const A = (n: keyof (typeof L)['CoordinatorAccount']['fields']) => off('CoordinatorAccount', n);
  const name = (o: number, str: string, cap: number, field: string): number => {
    const b = enc.encode(str);
    if (b.length > cap) throw tooBig(field, `at most ${cap} bytes`, b.length);
    out.set(b, o);
    return b.length;
  };
  const bloom = (o: number, b: Bloom) => {
    b.bits.forEach((w, i) => {
      u64(o + off('Bloom', 'bits') + 8 * i, w);
    });
    b.keys.forEach((k, i) => {
      u64(o + off('Bloom', 'keys') + 8 * i, k);
    });
    u32(o + off('Bloom', 'num_bits'), b.numBits);
  };
  u64(A('version'), ACCOUNT_VERSION);
  out[A('run_id_len')] = name(A('run_id'), s.runId, 32, 'runId');
  out[A('run_state')] = s.runState;
  out[A('pending_pause')] = s.pendingPause ? 1 : 0;
  u64(A('run_state_start'), s.runStateStart);
  u64(A('epoch_start_data_index'), s.progress.epochStartDataIndex);
  u32(A('epoch'), s.progress.epoch);
  u32(A('step'), s.progress.step);
  u64(A('last_round_seed'), s.lastRoundSeed);
  CONFIG_FIELDS.forEach((f, i) => {
    u64(A('config') + 8 * i, s.config[f]);
  });
  const m = A('model');
  u64(m + off('AccountModel', 'max_seq_len'), s.model.maxSeqLen);
  u64(m + off('AccountModel', 'cold_start_warmup_steps'), s.model.coldStartWarmupSteps);
  const cp = m + off('AccountModel', 'checkpoint');
  const c = s.model.checkpoint;
  out[cp + off('AccountCheckpoint', 'kind')] = CHECKPOINT_KIND[c.type];
  if (c.type !== 'Ephemeral') {
    const [main, detail] =
      c.type === 'Gcs' || c.type === 'P2PGcs' ? [c.bucket, c.prefix] : [c.repoId, c.revision];
    out[cp + off('AccountCheckpoint', 'name_len')] = name(cp, main, 64, 'model.checkpoint');
    if (detail !== null) {
      out[cp + off('AccountCheckpoint', 'has_detail')] = 1;
      out[cp + off('AccountCheckpoint', 'detail_len')] = name(
        cp + off('AccountCheckpoint', 'detail'),
        detail,
        64,
        'model.checkpoint',
      );
    }
  }
  const lr = m + off('AccountModel', 'lr_schedule');
  const l = s.model.lrSchedule;
  out[lr + off('AccountLrSchedule', 'kind')] = LR_KIND[l.type];
  const lrs =
    l.type === 'constant'
      ? [l.baseLr, l.warmupInitLr, 0, 0, 0]
      : l.type === 'wsd'
        ? [l.baseLr, l.warmupInitLr, l.cosineDecayFinalLr, l.linearDecayFinalLr, 0]
        : [l.baseLr, l.warmupInitLr, l.finalLr, 0, 0];
  const steps =
    l.type === 'constant'
      ? [l.warmupSteps, 0, 0, 0]
      : l.type === 'wsd'
        ? [l.warmupSteps, l.stableSteps, l.cosineDecaySteps, l.linearDecaySteps]
        : [l.warmupSteps, l.totalSteps, 0, 0];
  lrs.forEach((x, i) => {
    v.setFloat64(lr + 8 * i, x, true);
  });
  steps.forEach((x, i) => {
    u64(lr + off('AccountLrSchedule', 'steps') + 8 * i, x);
  });
  if (s.pending.length > ACCOUNT_MAX_CLIENTS)
    throw tooBig('pending', 'at most 256 joiners', s.pending.length);
  s.pending.forEach((id, i) => {
    out.set(fromHex(id, `pending[${i}]`), A('pending') + 32 * i);
  });
  u32(A('pending_len'), s.pending.length);
  const e = A('epoch_state');
  const E = (n: keyof (typeof L)['AccountEpochState']['fields']) => e + off('AccountEpochState', n);
  if (s.epoch.rounds.length !== NUM_STORED_ROUNDS)
    throw tooBig('epoch.rounds', '4 rounds', s.epoch.rounds.length);
  s.epoch.rounds.forEach((r, k) => {
    const o = E('rounds') + k * L.AccountRound.size;
    if (r.witnesses.length > ACCOUNT_MAX_WITNESSES)
      throw tooBig('round.witnesses', 'at most 32', r.witnesses.length);
    r.witnesses.forEach((w, i) => {
      const wo = o + i * L.AccountWitness.size;
      bloom(wo + off('AccountWitness', 'participant_bloom'), w.participantBloom);
      bloom(wo + off('AccountWitness', 'broadcast_bloom'), w.broadcastBloom);
      out.set(fromHex(w.broadcastMerkle, 'broadcastMerkle'), wo + off('AccountWitness', 'broadcast_merkle'));
      u32(wo + off('AccountWitness', 'index'), w.index);
    });
    u32(o + off('AccountRound', 'witnesses_len'), r.witnesses.length);
    u64(o + off('AccountRound', 'data_index'), r.dataIndex);
    u64(o + off('AccountRound', 'random_seed'), r.randomSeed);
    u32(o + off('AccountRound', 'height'), r.height);
    u32(o + off('AccountRound', 'clients_len'), r.clientsLen);
  });
  const clients = (list: typeof s.epoch.clients, at: number, field: string) => {
    if (list.length > ACCOUNT_MAX_CLIENTS) throw tooBig(field, 'at most 256 clients', list.length);
    list.forEach((cl, i) => {
      const o = at + i * L.AccountClient.size;
      out.set(fromHex(cl.id, `${field}[${i}].id`), o);
      u32(o + off('AccountClient', 'exited_height'), cl.exitedHeight);
      out[o + off('AccountClient', 'state')] = cl.state;
    });
  };
  clients(s.epoch.clients, E('clients'), 'epoch.clients');
  u32(E('clients_len'), s.epoch.clients.length);
  clients(s.epoch.exitedClients, E('exited_clients'), 'epoch.exitedClients');
  u32(E('exited_len'), s.epoch.exitedClients.length);
  if (s.epoch.warmupWitnesses.length > ACCOUNT_MAX_WITNESSES)
    throw tooBig('epoch.warmupWitnesses', 'at most 32', s.epoch.warmupWitnesses.length);
  s.epoch.warmupWitnesses.forEach((w, i) => {
    u32(E('warmup_witnesses') + 4 * i, w);
  });
  u32(E('warmup_witnesses_len'), s.epoch.warmupWitnesses.length);
  u64(E('start_timestamp'), s.epoch.startTimestamp);
  u32(E('rounds_head'), s.epoch.roundsHead);
  u32(E('start_step'), s.epoch.startStep);
  u32(E('last_step'), s.epoch.lastStep);
  out[E('first_round')] = s.epoch.firstRound ? 1 : 0;
  out[E('cold_start_epoch')] = s.epoch.coldStartEpoch ? 1 : 0;
  return out;
}

/** The program account's data (discriminator, `nonce`, core state) for `state`. */
export function encodeCoordinatorAccount(state: CoordinatorState, nonce: bigint): Uint8Array {
  const data = new Uint8Array(COORDINATOR_ACCOUNT_SPACE);
  data.set(ACCOUNT_DISCRIMINATORS.CoordinatorAccount, 0);
  new DataView(data.buffer).setBigUint64(NONCE_OFFSET, nonce, true);
  data.set(encodeCoreAccount(state), CORE_OFFSET);
  return data;
}
