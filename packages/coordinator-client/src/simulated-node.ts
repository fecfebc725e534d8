import { randomBytes } from 'node:crypto';
import {
  BLOOM_FALSE_RATE,
  bloomAdd,
  bloomNumBits,
  type CoordinatorState,
  fromHex as coordFromHex,
  createBloom,
  currentRound,
  isWitness,
  RunState,
  sha256,
} from '@psyche/coordinator';
import type { CoordinatorClient, OperationOptions } from './client.js';
import { isCoordinatorClientError } from './errors.js';
import type { PsychePayloads } from './psyche-engine.js';

/** Counters of a {@link runSimulatedNode} loop. */
export interface SimulatedNodeStats {
  joins: number;
  warmupWitnesses: number;
  witnesses: number;
  /** Operations the coordinator refused (usually a phase that moved on meanwhile). */
  rejected: number;
  /** Operations lost to a connection drop (retried on the next state). */
  disconnected: number;
  /** Highest epoch observed. */
  maxEpoch: number;
  /** Highest step observed. */
  maxStep: number;
}

function randomKeys(): bigint[] {
  const b = randomBytes(64);
  return Array.from({ length: 8 }, (_, i) => b.readBigUInt64LE(i * 8));
}

/**
 * Builds the witness a healthy node would send for the current round: a participant bloom holding
 * `sha256(id)` of every epoch client (everyone delivered), an empty-but-sized broadcast bloom and a random Merkle
 * root. Useful for tests and load generators; a real trainer fills these from the results it downloaded.
 */
export function makeWitness(state: CoordinatorState, index: number): PsychePayloads['witness'] {
  const ids = state.epoch.clients.map((c) => c.id);
  const participantBloom = createBloom(bloomNumBits(ids.length, BLOOM_FALSE_RATE), randomKeys());
  for (const id of ids) bloomAdd(participantBloom, sha256(coordFromHex(id)));
  const broadcastBloom = createBloom(bloomNumBits(Math.max(1, ids.length), BLOOM_FALSE_RATE), randomKeys());
  return { index, participantBloom, broadcastBloom, broadcastMerkle: randomBytes(32).toString('hex') };
}

/**
 * A well-behaved simulated node: joins every epoch, sends its warmup witness, and sends its witness in every
 * round where it is one — the coordinator-facing half of a trainer, without training. Runs until `signal`
 * aborts (then resolves with its counters).
 */
export async function runSimulatedNode(
  client: CoordinatorClient<CoordinatorState, PsychePayloads>,
  { signal, onState }: OperationOptions & { onState?: (s: CoordinatorState) => void } = {},
): Promise<SimulatedNodeStats> {
  const stats: SimulatedNodeStats = {
    joins: 0,
    warmupWitnesses: 0,
    witnesses: 0,
    rejected: 0,
    disconnected: 0,
    maxEpoch: 0,
    maxStep: 0,
  };
  const done = new Set<string>();
  const inflight = new Set<string>();
  const act = (key: string, op: () => Promise<unknown>, counter: keyof SimulatedNodeStats) => {
    if (done.has(key) || inflight.has(key)) return;
    inflight.add(key);
    op()
      .then(
        () => {
          done.add(key);
          stats[counter]++;
        },
        (e: unknown) => {
          if (isCoordinatorClientError(e, 'COORDINATOR_REJECTED')) {
            done.add(key); // The phase moved on (or a duplicate after a reconnect): do not retry.
            stats.rejected++;
          } else if (isCoordinatorClientError(e, 'NOT_CONNECTED') || isCoordinatorClientError(e, 'TIMEOUT')) {
            stats.disconnected++; // Retried when the next state arrives.
          }
        },
      )
      .finally(() => inflight.delete(key));
  };
  try {
    for await (const { state } of client.watch({ signal })) {
      onState?.(state);
      stats.maxEpoch = Math.max(stats.maxEpoch, state.progress.epoch);
      stats.maxStep = Math.max(stats.maxStep, state.progress.step);
      const epoch = state.progress.epoch;
      const index = state.epoch.clients.findIndex((c) => c.id === client.id);
      switch (state.runState) {
        case RunState.WaitingForMembers:
          if (!state.pending.includes(client.id))
            act(`join:${epoch}`, () => client.join({ signal }), 'joins');
          break;
        case RunState.Warmup:
          if (index >= 0 && state.epoch.clients[index]!.state === 0) {
            act(`warmup:${epoch}`, () => client.warmupWitness({ index }, { signal }), 'warmupWitnesses');
          }
          break;
        case RunState.RoundTrain:
        case RunState.RoundWitness: {
          const round = currentRound(state);
          if (index < 0 || index >= round.clientsLen || state.epoch.clients[index]!.state !== 0) break;
          if (round.witnesses.some((w) => w.index === index)) break;
          if (!isWitness(state.config, round, index)) break;
          act(
            `witness:${epoch}:${round.height}`,
            () => client.witness(makeWitness(state, index), { signal }),
            'witnesses',
          );
          break;
        }
        default:
          break;
      }
    }
  } catch (e) {
    if (!isCoordinatorClientError(e, 'ABORTED')) throw e;
  }
  return stats;
}
