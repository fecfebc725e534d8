import type { Bloom } from './bloom.js';
import { bloomContains, cloneBloom, validateBloom } from './bloom.js';
import { fromHex, sha256 } from './bytes.js';
import {
  currentRound,
  effectiveWitnessNodes,
  expectedWitnesses,
  isWitness,
  roundQuorum,
  witnessQuorum,
} from './committee.js';
import { CONFIG_FIELDS, validateCheckpoint, validateConfig, validateModel, validateRunId } from './config.js';
import { MAX_PENDING, MAX_TIMESTAMP, U64_MAX } from './constants.js';
import { CoordinatorError } from './errors.js';
import { roundSeed } from './hashes.js';
import { batchSize } from './schedule.js';
import {
  type Checkpoint,
  type Client,
  type ClientId,
  ClientState,
  type CoordinatorConfig,
  type CoordinatorState,
  type EpochState,
  type HealthCheckResult,
  type ModelConfig,
  type Round,
  RUN_STATE_NAMES,
  RunState,
  type TickResult,
  type Witness,
} from './types.js';

const CLIENT_ID_RE = /^[0-9a-f]{64}$/;
const MERKLE_RE = /^[0-9a-f]{64}$/;

// ---------------------------------------------------------------------------------------------------------------
// Construction and copying

/** Arguments of {@link createCoordinator}. */
export interface CreateCoordinatorInit {
  runId: string;
  config: CoordinatorConfig;
  model: ModelConfig;
}

function emptyRound(): Round {
  return { witnesses: [], dataIndex: 0, randomSeed: 0n, height: 0, clientsLen: 0 };
}

function zeroEpochState(coldStartEpoch: boolean): EpochState {
  return {
    rounds: [emptyRound(), emptyRound(), emptyRound(), emptyRound()],
    roundsHead: 0,
    clients: [],
    exitedClients: [],
    startStep: 0,
    lastStep: 0,
    startTimestamp: 0,
    firstRound: true,
    coldStartEpoch,
    warmupWitnesses: [],
  };
}

function cloneCheckpoint(c: Checkpoint): Checkpoint {
  return { ...c };
}

function cloneModel(m: ModelConfig): ModelConfig {
  return { ...m, checkpoint: cloneCheckpoint(m.checkpoint), lrSchedule: { ...m.lrSchedule } };
}

/**
 * Creates a run in `Uninitialized` after validating the run id, config and model (in that order). Call
 * {@link resume} to open it for members.
 *
 * @example
 * ```ts
 * import { createCoordinator, resume, join, tick } from '@psyche/coordinator';
 * const state = createCoordinator({ runId: 'my-run', config, model });
 * resume(state, 1_700_000_000);
 * ```
 * @throws {CoordinatorError} `InvalidRunId`, `InvalidConfig` or `InvalidModel` naming the field.
 */
export function createCoordinator(init: CreateCoordinatorInit): CoordinatorState {
  validateRunId(init.runId);
  validateConfig(init.config);
  validateModel(init.model, init.config);
  const config = {} as CoordinatorConfig;
  for (const f of CONFIG_FIELDS) config[f] = init.config[f];
  return {
    runId: init.runId,
    runState: RunState.Uninitialized,
    runStateStart: 0,
    config,
    model: cloneModel(init.model),
    progress: { epoch: 0, step: 1, epochStartDataIndex: 0 },
    pendingPause: false,
    lastRoundSeed: 0n,
    pending: [],
    epoch: zeroEpochState(true),
  };
}

function cloneRound(r: Round): Round {
  return {
    ...r,
    witnesses: r.witnesses.map((w) => ({
      index: w.index,
      participantBloom: cloneBloom(w.participantBloom),
      broadcastBloom: cloneBloom(w.broadcastBloom),
      broadcastMerkle: w.broadcastMerkle,
    })),
  };
}

/** A deep copy of `state` (e.g. to dry-run a tick before sending it, as Psyche's clients do). */
export function cloneState(state: CoordinatorState): CoordinatorState {
  const e = state.epoch;
  return {
    ...state,
    config: { ...state.config },
    model: cloneModel(state.model),
    progress: { ...state.progress },
    pending: state.pending.slice(),
    epoch: {
      ...e,
      rounds: e.rounds.map(cloneRound),
      clients: e.clients.map((c) => ({ ...c })),
      exitedClients: e.exitedClients.map((c) => ({ ...c })),
      warmupWitnesses: e.warmupWitnesses.slice(),
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Validation helpers

function validateNow(state: CoordinatorState, now: unknown): asserts now is number {
  if (typeof now !== 'number' || !Number.isSafeInteger(now) || now < 0 || now > MAX_TIMESTAMP) {
    throw new CoordinatorError(
      'InvalidTimestamp',
      `now must be an integer in [0, 2^53 - 1], got ${String(now)}`,
      {
        field: 'now',
        now,
      },
    );
  }
  if (now < state.runStateStart) {
    throw new CoordinatorError(
      'InvalidTimestamp',
      `now (${now}) is earlier than the start of the current run state (${state.runStateStart})`,
      { field: 'now', now, runStateStart: state.runStateStart },
    );
  }
}

function validateSeed(seed: unknown): asserts seed is bigint {
  if (typeof seed !== 'bigint' || seed < 0n || seed > U64_MAX) {
    throw new CoordinatorError(
      'InvalidSeed',
      `randomSeed must be a bigint in [0, 2^64), got ${String(seed)}`,
      {
        field: 'randomSeed',
      },
    );
  }
}

function validateClientId(id: unknown, field: string): asserts id is ClientId {
  if (typeof id !== 'string' || !CLIENT_ID_RE.test(id)) {
    throw new CoordinatorError('InvalidClientId', `${field} must be 64 lowercase hex chars (32 bytes)`, {
      field,
    });
  }
}

function requireObject(msg: unknown, field: string): void {
  if (typeof msg !== 'object' || msg === null) {
    throw new CoordinatorError('InvalidArgument', `${field} must be an object`, { field });
  }
}

function isHalted(state: CoordinatorState): boolean {
  const s = state.runState;
  return s === RunState.Uninitialized || s === RunState.Finished || s === RunState.Paused;
}

function requireNotHalted(state: CoordinatorState, op: string): void {
  if (isHalted(state)) {
    throw new CoordinatorError('Halted', `${op}: the run is ${RUN_STATE_NAMES[state.runState]}`, {
      runState: state.runState,
    });
  }
}

function requireState(state: CoordinatorState, op: string, allowed: readonly RunState[]): void {
  if (!allowed.includes(state.runState)) {
    throw new CoordinatorError(
      'WrongRunState',
      `${op} is not allowed in ${RUN_STATE_NAMES[state.runState]} (allowed: ${allowed.map((s) => RUN_STATE_NAMES[s]).join(', ')})`,
      { runState: state.runState },
    );
  }
}

/** Checks `clients[index].id == from` and Healthy; returns the client. */
function requireClientAt(state: CoordinatorState, from: unknown, index: unknown, limit: number): Client {
  const clients = state.epoch.clients;
  const max = Math.min(limit, clients.length);
  if (typeof index !== 'number' || !Number.isSafeInteger(index) || index < 0 || index >= max) {
    throw new CoordinatorError(
      'InvalidClientIndex',
      `index must be an integer in [0, ${max}), got ${String(index)}`,
      {
        field: 'index',
        index,
      },
    );
  }
  const client = clients[index]!;
  if (client.id !== from) {
    throw new CoordinatorError('ClientIdMismatch', `from does not match clients[${index}]`, {
      field: 'from',
      index,
    });
  }
  if (client.state !== ClientState.Healthy) {
    throw new CoordinatorError(
      'ClientNotHealthy',
      `clients[${index}] is not Healthy (state ${client.state})`,
      {
        field: 'from',
        index,
        state: client.state,
      },
    );
  }
  return client;
}

// ---------------------------------------------------------------------------------------------------------------
// Internal transitions (docs/coordinator.md §5, §7)

function checkTimeout(state: CoordinatorState, now: number, duration: number): boolean {
  return state.runStateStart !== now && now >= state.runStateStart + duration;
}

function changeState(state: CoordinatorState, now: number, to: RunState): void {
  state.runState = to;
  state.runStateStart = now;
}

function moveClientsToExited(state: CoordinatorState, height: number): void {
  const e = state.epoch;
  if (e.clients.every((c) => c.state === ClientState.Healthy)) return;
  const keep: Client[] = [];
  for (const c of e.clients) {
    if (c.state === ClientState.Healthy) keep.push(c);
    else e.exitedClients.push({ id: c.id, state: c.state, exitedHeight: height });
  }
  e.clients = keep;
}

function withdrawAll(state: CoordinatorState): void {
  for (const c of state.epoch.clients) if (c.state === ClientState.Healthy) c.state = ClientState.Withdrawn;
}

function roundBatchSize(state: CoordinatorState, dataIndex: number): number {
  return batchSize(state.config, state.model.maxSeqLen, dataIndex);
}

function startRoundTrain(state: CoordinatorState, now: number, tickSeed: bigint): void {
  const e = state.epoch;
  let head: number;
  let height: number;
  let dataIndex: number;
  let seedWitnesses: readonly Witness[];
  if (state.runState === RunState.Warmup) {
    head = 0;
    height = 0;
    dataIndex = state.progress.epochStartDataIndex;
    seedWitnesses = [];
  } else {
    const prev = e.rounds[e.roundsHead]!;
    head = (e.roundsHead + 1) % 4;
    height = prev.height + 1;
    dataIndex = prev.dataIndex + roundBatchSize(state, prev.dataIndex);
    seedWitnesses = prev.witnesses;
  }
  const seed = roundSeed(
    tickSeed,
    state.lastRoundSeed,
    state.progress.epoch,
    state.progress.step,
    seedWitnesses,
  );
  state.lastRoundSeed = seed;
  e.rounds[head] = { witnesses: [], dataIndex, randomSeed: seed, height, clientsLen: e.clients.length };
  e.roundsHead = head;
  changeState(state, now, RunState.RoundTrain);
}

function tickWaitingForMembers(state: CoordinatorState, now: number): TickResult {
  const c = state.config;
  if (state.pending.length < c.initMinClients || !checkTimeout(state, now, c.waitingForMembersExtraTime)) {
    return { type: 'Ticked' };
  }
  moveClientsToExited(state, currentRound(state).height);
  const previous = new Set(state.epoch.clients.map((x) => x.id));
  const joined = state.pending.slice(0, c.maxClients);
  state.pending = [];
  if (!joined.some((id) => previous.has(id))) {
    const cp = state.model.checkpoint;
    if (cp.type === 'P2P') state.model.checkpoint = { type: 'Hub', repoId: cp.repoId, revision: cp.revision };
    else if (cp.type === 'P2PGcs')
      state.model.checkpoint = { type: 'Gcs', bucket: cp.bucket, prefix: cp.prefix };
  }
  const e = zeroEpochState(state.epoch.coldStartEpoch);
  e.clients = joined.map((id) => ({ id, state: ClientState.Healthy, exitedHeight: 0 }));
  e.startStep = state.progress.step;
  e.startTimestamp = now;
  e.firstRound = true;
  state.epoch = e;
  changeState(state, now, RunState.Warmup);
  return { type: 'Ticked' };
}

function tickWarmup(state: CoordinatorState, now: number, seed: bigint): TickResult {
  moveClientsToExited(state, 0);
  if (state.epoch.clients.length < state.config.minClients) {
    changeState(state, now, RunState.WaitingForMembers);
    return { type: 'EpochEnd', success: false };
  }
  if (checkTimeout(state, now, state.config.warmupTime)) startRoundTrain(state, now, seed);
  return { type: 'Ticked' };
}

function tickRoundWitness(state: CoordinatorState, now: number, seed: bigint): TickResult {
  if (!checkTimeout(state, now, state.config.roundWitnessTime)) return { type: 'Ticked' };
  const e = state.epoch;
  const round = currentRound(state);
  e.firstRound = false;
  state.progress.step += 1;
  moveClientsToExited(state, round.height);
  const n = round.witnesses.length;
  if (n === 0) {
    withdrawAll(state);
    changeState(state, now, RunState.Cooldown);
    return { type: 'Ticked' };
  }
  if (e.lastStep === 0 && now >= e.startTimestamp + state.config.epochTime) {
    // Saturating u32: with totalSteps = 2^32 - 2 the step can reach 2^32 - 1.
    e.lastStep = Math.min(state.progress.step + 2, 0xffff_ffff);
  }
  if (e.lastStep !== 0 && state.progress.step >= e.lastStep) {
    changeState(state, now, RunState.Cooldown);
  } else if (
    e.clients.length < state.config.minClients ||
    n < roundQuorum(state.config, round) ||
    state.progress.step > state.config.totalSteps ||
    state.pendingPause
  ) {
    changeState(state, now, RunState.Cooldown);
  } else {
    startRoundTrain(state, now, seed);
  }
  return { type: 'Ticked' };
}

function tickCooldown(state: CoordinatorState, now: number): TickResult {
  if (!checkTimeout(state, now, state.config.cooldownTime)) return { type: 'Ticked' };
  const round = currentRound(state);
  state.progress.epochStartDataIndex = round.dataIndex + roundBatchSize(state, round.dataIndex);
  state.progress.epoch += 1;
  moveClientsToExited(state, round.height);
  const cp = state.model.checkpoint;
  if (cp.type === 'Hub' || cp.type === 'Dummy') {
    state.model.checkpoint = { type: 'P2P', repoId: cp.repoId, revision: cp.revision };
  } else if (cp.type === 'Gcs') {
    state.model.checkpoint = { type: 'P2PGcs', bucket: cp.bucket, prefix: cp.prefix };
  }
  if (state.progress.step > state.config.totalSteps) {
    changeState(state, now, RunState.Finished);
  } else if (state.pendingPause) {
    withdrawAll(state);
    state.epoch.coldStartEpoch = true;
    state.pendingPause = false;
    state.pending = [];
    changeState(state, now, RunState.Paused);
  } else {
    state.epoch.coldStartEpoch = false;
    changeState(state, now, RunState.WaitingForMembers);
  }
  return { type: 'EpochEnd', success: true };
}

// ---------------------------------------------------------------------------------------------------------------
// Public operations (docs/coordinator.md §6)

function addPending(state: CoordinatorState, ids: readonly ClientId[], field: string): void {
  if (ids.length === 0) return;
  const fresh: ClientId[] = [];
  if (ids.length === 1) {
    // O(pending) scan, no Set: the common single-join path.
    if (!state.pending.includes(ids[0]!)) fresh.push(ids[0]!);
  } else {
    const present = new Set(state.pending);
    for (const id of ids) {
      if (!present.has(id)) {
        present.add(id);
        fresh.push(id);
      }
    }
  }
  if (state.pending.length + fresh.length > MAX_PENDING) {
    throw new CoordinatorError(
      'PendingFull',
      `${field}: the pending list holds at most ${MAX_PENDING} joiners`,
      {
        field,
        pending: state.pending.length,
        adding: fresh.length,
      },
    );
  }
  for (const id of fresh) state.pending.push(id);
}

/**
 * Advances the run: applies `newClients` as joins, then evaluates the timeouts and transitions of the current
 * run state (docs/coordinator.md §6.2, §7). Pure: no clock, no RNG — `now` (Unix seconds) and `randomSeed` (u64)
 * are inputs. Mutates `state` in place; on error the state is unchanged.
 *
 * @param newClients - ids that join for the next epoch (same as {@link join} for each).
 * @param now - Unix seconds, `>= state.runStateStart`.
 * @param randomSeed - fresh u64 mixed into the next round seed.
 * @returns `EpochEnd` when an epoch ended (success after Cooldown, failure when Warmup lost its members).
 * @example
 * ```ts
 * import { tick } from '@psyche/coordinator';
 * const r = tick(state, [], Math.floor(Date.now() / 1000), seedFromCsprng());
 * if (r.type === 'EpochEnd') console.log('epoch ended', r.success);
 * ```
 * @throws {CoordinatorError} `InvalidTimestamp`, `InvalidSeed`, `Halted`, `InvalidClientId`, `PendingFull`.
 */
export function tick(
  state: CoordinatorState,
  newClients: readonly ClientId[],
  now: number,
  randomSeed: bigint,
): TickResult {
  validateNow(state, now);
  validateSeed(randomSeed);
  requireNotHalted(state, 'tick');
  if (!Array.isArray(newClients)) {
    throw new CoordinatorError('InvalidClientId', 'newClients must be an array of client ids', {
      field: 'newClients',
    });
  }
  for (let i = 0; i < newClients.length; i++) validateClientId(newClients[i], `newClients[${i}]`);
  addPending(state, newClients, 'newClients');
  switch (state.runState) {
    case RunState.WaitingForMembers:
      return tickWaitingForMembers(state, now);
    case RunState.Warmup:
      return tickWarmup(state, now, randomSeed);
    case RunState.RoundTrain:
      if (checkTimeout(state, now, state.config.maxRoundTrainTime))
        changeState(state, now, RunState.RoundWitness);
      return { type: 'Ticked' };
    case RunState.RoundWitness:
      return tickRoundWitness(state, now, randomSeed);
    default:
      return tickCooldown(state, now);
  }
}

/**
 * Registers `id` for the next epoch (idempotent). Joining is open in every non-halted state; the pending list
 * becomes the next epoch's clients when WaitingForMembers ends.
 *
 * @throws {CoordinatorError} `Halted`, `InvalidClientId`, `PendingFull`.
 */
export function join(state: CoordinatorState, id: ClientId): void {
  requireNotHalted(state, 'join');
  validateClientId(id, 'id');
  addPending(state, [id], 'id');
}

/**
 * Withdraws `id`: removes it from the pending list and marks it Withdrawn if it is a Healthy epoch client (it
 * leaves `clients` at the next exit point). Used when a connection drops.
 *
 * @throws {CoordinatorError} `InvalidClientId`, `ClientNotFound` when `id` is neither pending nor a Healthy client.
 */
export function withdraw(state: CoordinatorState, id: ClientId): void {
  validateClientId(id, 'id');
  const p = state.pending.indexOf(id);
  const client = state.epoch.clients.find((c) => c.id === id && c.state === ClientState.Healthy);
  if (p < 0 && client === undefined) {
    throw new CoordinatorError('ClientNotFound', 'id is neither pending nor a Healthy epoch client', {
      field: 'id',
    });
  }
  if (p >= 0) state.pending.splice(p, 1);
  if (client !== undefined) client.state = ClientState.Withdrawn;
}

/** A warmup "ready" message. */
export interface WarmupWitnessMessage {
  from: ClientId;
  /** Sender's index in `epoch.clients`. */
  index: number;
}

/**
 * Records that a client finished loading the model. When `effectiveWitnessNodes(witnessNodes, clients)` distinct
 * clients have sent one, the first round starts (seeded with `randomSeed`).
 *
 * @throws {CoordinatorError} `InvalidTimestamp`, `InvalidSeed`, `WrongRunState`, `InvalidClientIndex`,
 * `ClientIdMismatch`, `ClientNotHealthy`, `DuplicateWitness`.
 */
export function warmupWitness(
  state: CoordinatorState,
  msg: WarmupWitnessMessage,
  now: number,
  randomSeed: bigint,
): void {
  validateNow(state, now);
  validateSeed(randomSeed);
  requireState(state, 'warmupWitness', [RunState.Warmup]);
  requireObject(msg, 'msg');
  requireClientAt(state, msg.from, msg.index, Number.MAX_SAFE_INTEGER);
  const e = state.epoch;
  if (e.warmupWitnesses.includes(msg.index)) {
    throw new CoordinatorError('DuplicateWitness', `clients[${msg.index}] already sent a warmup witness`, {
      field: 'index',
      index: msg.index,
    });
  }
  e.warmupWitnesses.push(msg.index);
  if (e.warmupWitnesses.length >= effectiveWitnessNodes(state.config.witnessNodes, e.clients.length)) {
    startRoundTrain(state, now, randomSeed);
  }
}

/** A witness submission for the current round. */
export interface WitnessMessage {
  from: ClientId;
  /** Sender's index in `epoch.clients`. */
  index: number;
  participantBloom: Bloom;
  broadcastBloom: Bloom;
  /** 32-byte Merkle root, 64 lowercase hex chars. */
  broadcastMerkle: string;
}

/**
 * Stores a witness of the current round. When the expected number of witnesses has arrived during RoundTrain,
 * the run moves to RoundWitness at once (opportunistic witnessing).
 *
 * @throws {CoordinatorError} `InvalidTimestamp`, `WrongRunState`, `InvalidClientIndex`, `ClientIdMismatch`,
 * `ClientNotHealthy`, `NotAWitness`, `DuplicateWitness`, `InvalidBloom`, `InvalidMerkleRoot`.
 */
export function witness(state: CoordinatorState, msg: WitnessMessage, now: number): void {
  validateNow(state, now);
  requireState(state, 'witness', [RunState.RoundTrain, RunState.RoundWitness]);
  requireObject(msg, 'msg');
  const round = currentRound(state);
  requireClientAt(state, msg.from, msg.index, round.clientsLen);
  if (!isWitness(state.config, round, msg.index)) {
    throw new CoordinatorError(
      'NotAWitness',
      `clients[${msg.index}] is not a witness of round ${round.height}`,
      {
        field: 'index',
        index: msg.index,
      },
    );
  }
  if (round.witnesses.some((w) => w.index === msg.index)) {
    throw new CoordinatorError(
      'DuplicateWitness',
      `clients[${msg.index}] already witnessed round ${round.height}`,
      {
        field: 'index',
        index: msg.index,
      },
    );
  }
  validateBloom(msg.participantBloom, 'participantBloom');
  validateBloom(msg.broadcastBloom, 'broadcastBloom');
  if (typeof msg.broadcastMerkle !== 'string' || !MERKLE_RE.test(msg.broadcastMerkle)) {
    throw new CoordinatorError(
      'InvalidMerkleRoot',
      'broadcastMerkle must be 64 lowercase hex chars (32 bytes)',
      {
        field: 'broadcastMerkle',
      },
    );
  }
  round.witnesses.push({
    index: msg.index,
    participantBloom: cloneBloom(msg.participantBloom),
    broadcastBloom: cloneBloom(msg.broadcastBloom),
    broadcastMerkle: msg.broadcastMerkle,
  });
  if (
    state.runState === RunState.RoundTrain &&
    round.witnesses.length >= expectedWitnesses(state.config, round)
  ) {
    changeState(state, now, RunState.RoundWitness);
  }
}

/** One entry of a health check: the client believed unhealthy. */
export interface HealthCheckEntry {
  index: number;
  id: ClientId;
}

/** A health-check report. */
export interface HealthCheckMessage {
  /** The reporter, a Healthy epoch client. */
  from: ClientId;
  checks: readonly HealthCheckEntry[];
}

/**
 * Whether the client `id` counts as healthy: at least `witnessQuorum(#witnesses)` of the previous round's
 * witnesses have `sha256(id)` in their participant bloom (Psyche's `trainer_healthy`).
 */
export function isClientHealthy(state: CoordinatorState, id: ClientId): boolean {
  const prev = state.epoch.rounds[(state.epoch.roundsHead + 3) % 4]!;
  const item = sha256(fromHex(id, 'id'));
  const quorum = witnessQuorum(prev.witnesses.length);
  let score = 0;
  for (const w of prev.witnesses) {
    if (bloomContains(w.participantBloom, item)) score++;
    if (score >= quorum) return true; // early exit: the verdict cannot change
  }
  return score >= quorum;
}

/**
 * Drops the listed clients that are not healthy according to the previous round's witnesses. **Psyche-TS:** a
 * listed client that is healthy is counted in `rejectedHealthy` and does not void the other entries.
 *
 * @throws {CoordinatorError} `InvalidTimestamp`, `WrongRunState`, `HealthCheckTooEarly`, `InvalidClientId`,
 * `ClientNotFound`, `ClientNotHealthy` (reporter), `InvalidHealthCheck` (malformed list; nothing applied).
 */
export function healthCheck(
  state: CoordinatorState,
  msg: HealthCheckMessage,
  now: number,
): HealthCheckResult {
  validateNow(state, now);
  requireState(state, 'healthCheck', [RunState.RoundTrain, RunState.RoundWitness]);
  const round = currentRound(state);
  if (round.height < 2) {
    throw new CoordinatorError(
      'HealthCheckTooEarly',
      `health checks start at round height 2 (now ${round.height})`,
      {
        height: round.height,
      },
    );
  }
  requireObject(msg, 'msg');
  validateClientId(msg.from, 'from');
  const clients = state.epoch.clients;
  const reporter = clients.find((c) => c.id === msg.from);
  if (reporter === undefined) {
    throw new CoordinatorError('ClientNotFound', 'from is not a client of this epoch', { field: 'from' });
  }
  if (reporter.state !== ClientState.Healthy) {
    throw new CoordinatorError('ClientNotHealthy', 'from is not Healthy', { field: 'from' });
  }
  const bad: (why: string, field?: string) => never = (why, field = 'checks') => {
    throw new CoordinatorError('InvalidHealthCheck', `${field}: ${why}`, { field });
  };
  const checks = msg.checks;
  if (!Array.isArray(checks) || checks.length === 0) bad('must be a non-empty array');
  if (checks.length > clients.length)
    bad(`has ${checks.length} entries, more than the ${clients.length} clients`);
  const seen = new Set<number>();
  checks.forEach((c, i) => {
    const idx = (c as HealthCheckEntry | null)?.index;
    if (typeof idx !== 'number' || !Number.isSafeInteger(idx) || idx < 0 || idx >= clients.length) {
      bad(`index must be in [0, ${clients.length})`, `checks[${i}].index`);
    }
    if (seen.has(idx)) bad(`index ${idx} appears twice`, `checks[${i}].index`);
    seen.add(idx);
    if (clients[idx]!.id !== c.id) bad(`id does not match clients[${idx}]`, `checks[${i}].id`);
  });
  const prev = state.epoch.rounds[(state.epoch.roundsHead + 3) % 4]!;
  if (prev.witnesses.length === 0) bad('the previous round has no witnesses to judge health');
  const result: HealthCheckResult = { dropped: 0, rejectedHealthy: 0, alreadyUnhealthy: 0 };
  const verdicts = checks.map((c) => {
    const client = clients[c.index]!;
    if (client.state !== ClientState.Healthy) return 'already' as const;
    return isClientHealthy(state, c.id) ? ('healthy' as const) : ('drop' as const);
  });
  verdicts.forEach((v, i) => {
    if (v === 'already') result.alreadyUnhealthy++;
    else if (v === 'healthy') result.rejectedHealthy++;
    else {
      result.dropped++;
      clients[checks[i]!.index]!.state = ClientState.Dropped;
    }
  });
  return result;
}

/** A checkpoint report from an epoch client. */
export interface CheckpointMessage {
  from: ClientId;
  index: number;
  /** Where it uploaded the model: `Hub` or `Gcs`. */
  checkpoint: Checkpoint;
}

/**
 * Records an uploaded checkpoint. The result keeps the current checkpoint's P2P-ness and takes the reported
 * storage (docs/coordinator.md §6.7).
 *
 * @throws {CoordinatorError} `InvalidClientIndex`, `ClientIdMismatch`, `ClientNotHealthy`, `InvalidCheckpoint`.
 */
export function checkpoint(state: CoordinatorState, msg: CheckpointMessage): void {
  requireObject(msg, 'msg');
  requireClientAt(state, msg.from, msg.index, Number.MAX_SAFE_INTEGER);
  validateCheckpoint(msg.checkpoint, 'checkpoint', 'InvalidCheckpoint');
  const r = msg.checkpoint;
  if (r.type !== 'Hub' && r.type !== 'Gcs') {
    throw new CoordinatorError('InvalidCheckpoint', `checkpoint.type must be Hub or Gcs, got ${r.type}`, {
      field: 'checkpoint.type',
    });
  }
  const cur = state.model.checkpoint;
  if (cur.type === 'Ephemeral') {
    throw new CoordinatorError('InvalidCheckpoint', 'an Ephemeral run does not take checkpoints', {
      field: 'checkpoint',
    });
  }
  const p2p = cur.type === 'P2P' || cur.type === 'P2PGcs';
  if (r.type === 'Hub') {
    state.model.checkpoint = { type: p2p ? 'P2P' : 'Hub', repoId: r.repoId, revision: r.revision };
  } else {
    state.model.checkpoint = { type: p2p ? 'P2PGcs' : 'Gcs', bucket: r.bucket, prefix: r.prefix };
  }
}

/**
 * Pauses the run: during a round or Cooldown it sets `pendingPause` (the run pauses after the current round's
 * Cooldown); in WaitingForMembers/Warmup it withdraws everyone and pauses now.
 *
 * @throws {CoordinatorError} `InvalidTimestamp`, `WrongRunState` (Uninitialized, Paused, Finished).
 */
export function pause(state: CoordinatorState, now: number): void {
  validateNow(state, now);
  requireState(state, 'pause', [
    RunState.WaitingForMembers,
    RunState.Warmup,
    RunState.RoundTrain,
    RunState.RoundWitness,
    RunState.Cooldown,
  ]);
  if (state.runState === RunState.WaitingForMembers || state.runState === RunState.Warmup) {
    withdrawAll(state);
    state.pending = [];
    state.epoch.coldStartEpoch = true;
    state.pendingPause = false;
    changeState(state, now, RunState.Paused);
  } else {
    state.pendingPause = true;
  }
}

/**
 * Opens (from Uninitialized) or resumes (from Paused) the run: WaitingForMembers.
 *
 * @throws {CoordinatorError} `InvalidTimestamp`, `WrongRunState`.
 */
export function resume(state: CoordinatorState, now: number): void {
  validateNow(state, now);
  requireState(state, 'resume', [RunState.Uninitialized, RunState.Paused]);
  state.pendingPause = false;
  state.pending = [];
  changeState(state, now, RunState.WaitingForMembers);
}

/** Fields {@link updateConfig} can change. */
export type ConfigChanges = Partial<CoordinatorConfig> & Partial<ModelConfig>;

const MODEL_FIELDS = ['maxSeqLen', 'coldStartWarmupSteps', 'checkpoint', 'lrSchedule'] as const;

/**
 * Changes config/model fields while the run is halted (Uninitialized or Paused). The merged result is validated
 * and replaces the old one atomically.
 *
 * @throws {CoordinatorError} `WrongRunState`, `InvalidArgument` (unknown field), `InvalidConfig`, `InvalidModel`.
 */
export function updateConfig(state: CoordinatorState, changes: ConfigChanges): void {
  requireState(state, 'updateConfig', [RunState.Uninitialized, RunState.Paused]);
  if (typeof changes !== 'object' || changes === null) {
    throw new CoordinatorError('InvalidArgument', 'changes must be an object', { field: 'changes' });
  }
  const config: CoordinatorConfig = { ...state.config };
  const model: ModelConfig = cloneModel(state.model);
  for (const [k, v] of Object.entries(changes)) {
    if ((CONFIG_FIELDS as readonly string[]).includes(k))
      (config as unknown as Record<string, unknown>)[k] = v;
    else if ((MODEL_FIELDS as readonly string[]).includes(k))
      (model as unknown as Record<string, unknown>)[k] = v;
    else
      throw new CoordinatorError('InvalidArgument', `unknown config field ${JSON.stringify(k)}`, {
        field: k,
      });
  }
  validateConfig(config);
  validateModel(model, config);
  state.config = config;
  state.model = cloneModel(model);
}
