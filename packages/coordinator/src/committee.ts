import { MAX_WITNESSES } from './constants.js';
import { CoordinatorError } from './errors.js';
import { batchSize } from './schedule.js';
import {
  computeShuffledIndex,
  computeShuffledPositions,
  deriveShuffleSeed,
  deterministicShuffle,
} from './shuffle.js';
import { Committee, type CoordinatorConfig, type CoordinatorState, type Round } from './types.js';

/** Witnesses per round: `witnessNodes` (0 means 32), never more than `total`. */
export function effectiveWitnessNodes(witnessNodes: number, total: number): number {
  return Math.min(witnessNodes === 0 ? MAX_WITNESSES : witnessNodes, total);
}

/** Psyche's witness quorum of `w` witnesses: `0→0, 1→1, 2→2, 3→2`, else `max(1, floor(2w/3))`. */
export function witnessQuorum(w: number): number {
  if (w <= 3) return [0, 1, 2, 2][w]!;
  return Math.max(1, Math.floor((w * 2) / 3));
}

/** Witnesses expected in `round` (the threshold for opportunistic witnessing). */
export function expectedWitnesses(config: Pick<CoordinatorConfig, 'witnessNodes'>, round: Round): number {
  return effectiveWitnessNodes(config.witnessNodes, round.clientsLen);
}

/** The quorum of `round`: `witnessQuorum(expectedWitnesses(round))` (Psyche-TS: counts expected witnesses). */
export function roundQuorum(config: Pick<CoordinatorConfig, 'witnessNodes'>, round: Round): number {
  return witnessQuorum(expectedWitnesses(config, round));
}

/** A client's committee and its shuffled position (Psyche's `CommitteeProof`). */
export interface CommitteeProof {
  committee: Committee;
  position: number;
  index: number;
}

function checkIndex(index: number, round: Round): void {
  if (!Number.isSafeInteger(index) || index < 0 || index >= round.clientsLen) {
    throw new CoordinatorError(
      'InvalidClientIndex',
      `index must be in [0, ${round.clientsLen}), got ${index}`,
      {
        field: 'index',
        index,
      },
    );
  }
}

/**
 * Committee of the client at `index` in `round` (docs/coordinator.md §9.2). With Psyche's settings (no tie-breakers,
 * `verificationPercent = 0`) every client is a Trainer.
 *
 * @throws {CoordinatorError} `InvalidClientIndex` when `index >= round.clientsLen`.
 */
export function getCommittee(
  config: Pick<CoordinatorConfig, 'verificationPercent'>,
  round: Round,
  index: number,
): CommitteeProof {
  checkIndex(index, round);
  const total = round.clientsLen;
  const position = computeShuffledIndex(index, total, deriveShuffleSeed(round.randomSeed, 'committee'));
  const verifiers = Math.floor((total * config.verificationPercent) / 100);
  const committee = position < verifiers ? Committee.Verifier : Committee.Trainer;
  return { committee, position, index };
}

/**
 * Whether the client at `index` is a witness of `round`: its witness-shuffle position is
 * `< effectiveWitnessNodes(witnessNodes, round.clientsLen)`.
 *
 * @example
 * ```ts
 * import { isWitness, currentRound } from '@psyche/coordinator';
 * const me = state.epoch.clients.findIndex((c) => c.id === myId);
 * if (isWitness(state.config, currentRound(state), me)) { ... send my blooms ... }
 * ```
 * @throws {CoordinatorError} `InvalidClientIndex` when `index >= round.clientsLen`.
 */
export function isWitness(
  config: Pick<CoordinatorConfig, 'witnessNodes'>,
  round: Round,
  index: number,
): boolean {
  checkIndex(index, round);
  const position = computeShuffledIndex(
    index,
    round.clientsLen,
    deriveShuffleSeed(round.randomSeed, 'witness'),
  );
  return position < effectiveWitnessNodes(config.witnessNodes, round.clientsLen);
}

/** Indices (ascending) of all witnesses of `round`; empty when `round.clientsLen == 0`. */
export function getWitnessIndices(config: Pick<CoordinatorConfig, 'witnessNodes'>, round: Round): number[] {
  if (round.clientsLen === 0) return [];
  const positions = computeShuffledPositions(
    round.clientsLen,
    deriveShuffleSeed(round.randomSeed, 'witness'),
  );
  const w = effectiveWitnessNodes(config.witnessNodes, round.clientsLen);
  const out: number[] = [];
  for (let i = 0; i < positions.length; i++) if (positions[i]! < w) out.push(i);
  return out;
}

/** Indices (ascending) of the Trainer-committee clients of `round`. */
export function getTrainerIndices(
  config: Pick<CoordinatorConfig, 'verificationPercent'>,
  round: Round,
): number[] {
  const total = round.clientsLen;
  if (total === 0) return [];
  const verifiers = Math.floor((total * config.verificationPercent) / 100);
  const all = Array.from({ length: total }, (_, i) => i);
  if (verifiers === 0) return all;
  const positions = computeShuffledPositions(total, deriveShuffleSeed(round.randomSeed, 'committee'));
  return all.filter((i) => positions[i]! >= verifiers);
}

/** A contiguous, inclusive range of sequence indices `[start, end]` assigned to one client. */
export interface BatchAssignment {
  start: number;
  end: number;
  /** Index of the trainer in `epoch.clients`. */
  index: number;
}

/**
 * Splits `total` sequences starting at `dataIndex` among `trainers` (docs/coordinator.md §9.4): the trainers are
 * shuffled with {@link deterministicShuffle}`(seed)`; the i-th gets `floor(total/T) + (i < total % T)` contiguous
 * sequences; trainers with 0 get nothing. Result in ascending `start` order.
 */
export function assignBatches(
  trainers: readonly number[],
  seed: bigint,
  dataIndex: number,
  total: number,
): BatchAssignment[] {
  const order = deterministicShuffle(trainers, seed);
  const n = order.length;
  const out: BatchAssignment[] = [];
  if (n === 0) return out;
  const base = Math.floor(total / n);
  const rem = total % n;
  let start = dataIndex;
  for (let i = 0; i < n; i++) {
    const size = base + (i < rem ? 1 : 0);
    if (size === 0) continue;
    out.push({ start, end: start + size - 1, index: order[i]! });
    start += size;
  }
  return out;
}

/** The batch assignment of `round` (what every client computes to know what to train and what to expect). */
export function getRoundAssignments(
  config: CoordinatorConfig,
  maxSeqLen: number,
  round: Round,
): BatchAssignment[] {
  const trainers = getTrainerIndices(config, round);
  return assignBatches(
    trainers,
    round.randomSeed,
    round.dataIndex,
    batchSize(config, maxSeqLen, round.dataIndex),
  );
}

/** The current round of a state (`rounds[roundsHead]`). */
export function currentRound(state: CoordinatorState): Round {
  return state.epoch.rounds[state.epoch.roundsHead]!;
}

/** The round before the current one in the ring buffer. */
export function previousRound(state: CoordinatorState): Round {
  return state.epoch.rounds[(state.epoch.roundsHead + 3) % 4]!;
}

/**
 * The batches of the current round assigned to client `id` (empty if it is not a trainer this round or has no
 * batch). Clients call this to know what to train.
 *
 * @example
 * ```ts
 * import { getBatchesForClient } from '@psyche/coordinator';
 * for (const { start, end } of getBatchesForClient(state, myId)) trainOn(start, end);
 * ```
 */
export function getBatchesForClient(state: CoordinatorState, id: string): BatchAssignment[] {
  const round = currentRound(state);
  const index = state.epoch.clients.findIndex((c) => c.id === id);
  if (index < 0 || index >= round.clientsLen) return [];
  return getRoundAssignments(state.config, state.model.maxSeqLen, round).filter((a) => a.index === index);
}
