import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type BatchAssignment,
  BLOOM_FALSE_RATE,
  type Bloom,
  bloomAdd,
  bloomContains,
  bloomNumBits,
  ClientState,
  type CoordinatorState,
  commitmentHash,
  createBloom,
  currentRound,
  fromHex,
  getRoundAssignments,
  isClientHealthy,
  isWitness,
  lrAt,
  type Round,
  RUN_STATE_NAMES,
  RunState,
  sha256,
  toHex,
  witnessQuorum,
} from '@psyche/coordinator';
import {
  type CoordinatorClient,
  isCoordinatorClientError,
  type PsychePayloads,
} from '@psyche/coordinator-client';
import type { SequenceSource } from '@psyche/data-provider';
import {
  type DistroLayout,
  DistroOptimizer,
  type DistroResult,
  decodeDistroResult,
  encodeDistroResult,
} from '@psyche/distro-optimizer';
import {
  type MlaModel,
  parameterShapes,
  parseSafetensors,
  safetensorsToFloat32,
  saveHfCheckpoint,
  serializeSafetensors,
} from '@psyche/model-mla';
import type { BlobRef, P2PNode, VerifiedAnnouncement } from '@psyche/p2p-transport';
import { parameterHash, trainOnBatch } from './compute.js';
import { TrainerError } from './errors.js';

/** Batch id used in announcements of a full parameter snapshot (warmup sharing); never a real batch start. */
export const PARAMS_BATCH_ID = 0xffff_ffff;

/** DisTrO settings shared swarm-wide (the learning rate comes from the coordinator's schedule). */
export interface TrainerDistroOptions {
  compressionDecay: number;
  compressionTopk: number;
  compressionChunk: number;
  quantize1bit: boolean;
  weightDecay: number;
}

/** Options of {@link TrainerNode}. */
export interface TrainerNodeOptions {
  /** The node's coordinator connection; its `id` is this node's identity (hex ed25519 public key). */
  client: CoordinatorClient<CoordinatorState, PsychePayloads>;
  /** A started P2P node using the same ed25519 key as `client`. */
  p2p: P2PNode;
  /** The model. Its parameters are trusted to be current at step {@link TrainerNodeOptions.paramsStep}. */
  model: MlaModel;
  /** Sequence source: batch ids from the coordinator map to sequences. */
  data: SequenceSource;
  /** DisTrO settings (swarm-wide). */
  distro: TrainerDistroOptions;
  /** Rows per forward/backward pass. */
  microBatchSize: number;
  /** Global gradient-norm clip (0 = off). */
  clipGradNorm: number;
  /**
   * The step the given parameters are ready to train (1 for a fresh deterministic init, `s + 1` for a checkpoint of
   * step `s`). A node whose `paramsStep` differs from the run's step fetches parameters from peers at warmup.
   */
  paramsStep: number;
  /** Directory for cooldown checkpoints (`<dir>/<runId>-step<step>/`); none when absent. */
  checkpointDir?: string;
  /** Structured events (progress, errors). */
  onEvent?: (event: TrainerEvent) => void;
  /**
   * Fault injection for resilience tests: `'garbage'` announces random bytes instead of DisTrO results. Never set in
   * production.
   */
  misbehave?: 'garbage';
  /** Stop after the run reaches this step (for tests); default: run until Finished. */
  stopAtStep?: number;
  /**
   * Psyche's overlapped pipeline: results of round `h` are downloaded and witnessed during round `h + 1` and applied
   * at the start of round `h + 2`, so training never waits for the exchange. The last round of an epoch is then
   * never witnessed and is skipped. Swarm-wide. Default `false` (apply round `h` at the start of `h + 1`).
   */
  overlapped?: boolean;
}

/** Events reported through {@link TrainerNodeOptions.onEvent}. */
export type TrainerEvent =
  | { event: 'state'; runState: string; epoch: number; step: number; clients: number }
  | { event: 'joined'; epoch: number }
  | { event: 'warmup:params-fetched'; step: number; from: string; hash: string }
  | { event: 'warmup:ready'; epoch: number; step: number }
  | {
      event: 'round:trained';
      step: number;
      epoch: number;
      height: number;
      batches: number;
      loss: number;
      tokens: number;
      computeMs: number;
      tokensPerSec: number;
      bytesSent: number;
    }
  | {
      event: 'round:applied';
      step: number;
      results: number;
      expected: number;
      hash: string;
      applyMs: number;
      peers: number;
      bytesIn: number;
      bytesOut: number;
    }
  | { event: 'witness:sent'; step: number; participants: number; results: number }
  | { event: 'health:reported'; step: number; dropped: string[] }
  | { event: 'result:rejected'; step: number; from: string; reason: string }
  | { event: 'checkpoint:saved'; step: number; dir: string }
  | { event: 'warning'; message: string }
  | { event: 'finished'; step: number; hash: string };

/** Counters of a {@link TrainerNode}. */
export interface TrainerStats {
  roundsTrained: number;
  roundsApplied: number;
  resultsAccepted: number;
  /** Results that failed a check (not assigned, undecodable, wrong layout, fetch failed). */
  resultsRejected: number;
  witnessesSent: number;
  healthChecksSent: number;
  coordinatorRejections: number;
  lastLoss: number | null;
  lastTokensPerSec: number | null;
  lastHash: string | null;
  /** Sum over trained rounds of compute time (forward/backward/compress), ms. */
  computeMs: number;
  /** Sum over trained rounds of the wall time from the start of training to the round being applied, ms. */
  roundMs: number;
  /** DisTrO payload bytes this node produced. */
  bytesProduced: number;
  step: number;
}

interface Candidate {
  from: string;
  ref: BlobRef;
  payload?: Uint8Array;
  commitment?: string;
  valid: boolean;
  /** The download failed (the payload may still be held by peers that fetched it). */
  fetchFailed?: boolean;
  done: Promise<void>;
}

interface RoundRecord {
  epoch: number;
  height: number;
  step: number;
  assignments: BatchAssignment[];
  clients: string[];
  candidates: Map<number, Candidate[]>;
  witnessSent: boolean;
  witnessing: boolean;
  applied: boolean;
  trainedAt: number | null;
}

function randomKeys(): bigint[] {
  const b = randomBytes(64);
  return Array.from({ length: 8 }, (_, i) => b.readBigUInt64LE(i * 8));
}

/**
 * A Psyche node's client loop: follows the coordinator's state and, per round, trains its assigned batches
 * (micro-batches, gradient clipping, DisTrO compression), announces and serves its results, downloads and checks
 * its peers' results, witnesses them (participant/broadcast blooms), reports unhealthy peers, and applies the
 * witnessed results of each round in batch order at the start of the next round (or at cooldown), so all honest
 * nodes keep bitwise-identical parameters. At warmup a node whose parameters are stale fetches them from peers;
 * at cooldown it writes a safetensors checkpoint.
 *
 * Pipeline: results of round `h` are trained, shared and witnessed during round `h` and applied when the node
 * first sees a later state (Psyche's non-overlapped mode).
 *
 * @example
 * ```ts
 * const node = new TrainerNode({ client, p2p, model, data, distro, microBatchSize: 2, clipGradNorm: 1, paramsStep: 1 });
 * const stats = await node.run(AbortSignal.timeout(600_000));
 * ```
 */
export class TrainerNode {
  readonly stats: TrainerStats = {
    roundsTrained: 0,
    roundsApplied: 0,
    resultsAccepted: 0,
    resultsRejected: 0,
    witnessesSent: 0,
    healthChecksSent: 0,
    coordinatorRejections: 0,
    lastLoss: null,
    lastTokensPerSec: null,
    lastHash: null,
    computeMs: 0,
    roundMs: 0,
    bytesProduced: 0,
    step: 0,
  };
  private readonly o: TrainerNodeOptions;
  private readonly optimizer: DistroOptimizer;
  private readonly layout: DistroLayout;
  private readonly id: string;
  private readonly rounds = new Map<number, RoundRecord>();
  private readonly announced = new Map<number, VerifiedAnnouncement[]>();
  private readonly done = new Set<string>();
  private paramsStep: number;
  private state: CoordinatorState | undefined;
  private allowKey = '';
  private paramsBlob: { step: number; ref: BlobRef } | undefined;
  private paramsTimer: NodeJS.Timeout | undefined;
  private fetchingParams = false;
  private signal: AbortSignal | undefined;
  private busy = false;
  private training = false;
  private readonly warmupSince = new Map<string, number>();

  constructor(options: TrainerNodeOptions) {
    if (!Number.isSafeInteger(options.paramsStep) || options.paramsStep < 1) {
      throw new TrainerError(
        'INVALID_OPTION',
        `paramsStep must be a positive integer, got ${options.paramsStep}`,
        {
          field: 'paramsStep',
        },
      );
    }
    this.o = options;
    this.id = options.client.id;
    this.paramsStep = options.paramsStep;
    this.optimizer = new DistroOptimizer({ lr: 0, ...options.distro });
    this.layout = this.optimizer.layoutOf(options.model.namedVariables());
  }

  private emit(e: TrainerEvent): void {
    this.o.onEvent?.(e);
  }

  /**
   * Runs the loop until the run is Finished (or `stopAtStep` is reached) or `signal` aborts. Resolves with the
   * counters. Coordinator refusals and peers' bad results are counted, never fatal.
   */
  async run(signal?: AbortSignal): Promise<TrainerStats> {
    this.signal = signal;
    const onResult = (e: CustomEvent<VerifiedAnnouncement & { kind: 'result' }>) =>
      this.onAnnouncement(e.detail);
    this.o.p2p.addEventListener('announcement:result', onResult);
    const heartbeat = setInterval(() => this.heartbeat(), 1000);
    try {
      for await (const { state } of this.o.client.watch(signal ? { signal } : {})) {
        this.busy = true;
        try {
          await this.onState(state);
        } finally {
          this.busy = false;
        }
        if (state.runState === RunState.Finished) break;
        if (this.o.stopAtStep !== undefined && this.stats.step >= this.o.stopAtStep) break;
      }
    } catch (e) {
      if (!isCoordinatorClientError(e, 'ABORTED') && !signal?.aborted) throw e;
    } finally {
      this.o.p2p.removeEventListener('announcement:result', onResult);
      clearInterval(heartbeat);
      if (this.paramsTimer) clearInterval(this.paramsTimer);
      this.optimizer.dispose();
    }
    const hash = await parameterHash(this.o.model);
    this.stats.lastHash = hash;
    this.emit({ event: 'finished', step: this.state?.progress.step ?? 0, hash });
    return this.stats;
  }

  /**
   * Once a second: re-announces this node's results of the current round (gossip is best-effort; receivers ignore
   * duplicates), retries witnessing, and re-checks warmup readiness.
   */
  private heartbeat(): void {
    const state = this.state;
    if (state === undefined || this.busy) return;
    if (state.runState === RunState.Warmup) {
      const myIndex = state.epoch.clients.findIndex((c) => c.id === this.id);
      if (myIndex >= 0) void this.warmup(state, myIndex).catch(() => {});
      return;
    }
    if (state.runState !== RunState.RoundTrain && state.runState !== RunState.RoundWitness) return;
    const h = currentRound(state).height;
    for (const height of this.o.overlapped ? [h, h - 1] : [h]) {
      const rec = this.rounds.get(state.epoch.startStep + height);
      if (rec === undefined || rec.applied || rec.epoch !== state.progress.epoch) continue;
      for (const [start, list] of rec.candidates) {
        const own = list.find((c) => c.from === this.id);
        if (own)
          void this.o.p2p.announceResult({ round: rec.step, batchId: start, blob: own.ref }).catch(() => {});
      }
    }
    this.witnessTarget(state);
  }

  /** Fire-and-forget coordinator operation, once per key; refusals are counted. */
  private act(key: string, op: () => Promise<unknown>, onOk?: () => void): void {
    if (this.done.has(key)) return;
    this.done.add(key);
    op().then(
      () => onOk?.(),
      (e: unknown) => {
        if (
          isCoordinatorClientError(e, 'COORDINATOR_REJECTED') ||
          isCoordinatorClientError(e, 'MALFORMED_MESSAGE')
        ) {
          this.stats.coordinatorRejections++;
          this.emit({ event: 'warning', message: `${key}: ${(e as Error).message}` });
        } else {
          this.done.delete(key); // connection trouble: retried on the next state
        }
      },
    );
  }

  private async onState(state: CoordinatorState): Promise<void> {
    this.state = state;
    this.stats.step = state.progress.step;
    this.o.p2p.setRound(state.progress.step);
    await this.updateAllowlist(state);
    const myIndex = state.epoch.clients.findIndex((c) => c.id === this.id);
    const me = myIndex >= 0 ? state.epoch.clients[myIndex] : undefined;
    this.emit({
      event: 'state',
      runState: RUN_STATE_NAMES[state.runState] ?? String(state.runState),
      epoch: state.progress.epoch,
      step: state.progress.step,
      clients: state.epoch.clients.length,
    });
    if (state.runState !== RunState.Warmup && this.paramsTimer) {
      clearInterval(this.paramsTimer);
      this.paramsTimer = undefined;
    }
    switch (state.runState) {
      case RunState.WaitingForMembers:
        if (!state.pending.includes(this.id)) {
          this.act(
            `join:${state.progress.epoch}`,
            () => this.o.client.join(),
            () => this.emit({ event: 'joined', epoch: state.progress.epoch }),
          );
        }
        break;
      case RunState.Warmup:
        if (me !== undefined && me.state === ClientState.Healthy) await this.warmup(state, myIndex);
        break;
      case RunState.RoundTrain:
      case RunState.RoundWitness: {
        await this.applyPending(state);
        const round = currentRound(state);
        const rec = this.record(state, round);
        if (me === undefined || me.state !== ClientState.Healthy || myIndex >= round.clientsLen) break;
        if (state.runState === RunState.RoundTrain) {
          this.healthCheck(state, round, myIndex);
          if (rec.trainedAt === null && this.paramsStep === this.readyStep(rec)) await this.train(state, rec);
        }
        this.witnessTarget(state);
        break;
      }
      case RunState.Cooldown:
        await this.applyPending(state);
        if (
          this.o.checkpointDir !== undefined &&
          me !== undefined &&
          !this.done.has(`ckpt:${state.progress.epoch}`)
        ) {
          this.done.add(`ckpt:${state.progress.epoch}`);
          await this.saveCheckpoint(state);
        }
        break;
      default:
        break;
    }
  }

  private async updateAllowlist(state: CoordinatorState): Promise<void> {
    const ids = [...new Set([...state.epoch.clients.map((c) => c.id), ...state.pending, this.id])].sort();
    const key = ids.join(',');
    if (key === this.allowKey) return;
    this.allowKey = key;
    await this.o.p2p.setAllowlist(ids.map((id) => fromHex(id)));
  }

  // ------------------------------------------------------------------ warmup

  private async warmup(state: CoordinatorState, myIndex: number): Promise<void> {
    const step = state.progress.step;
    if (this.paramsStep === step) {
      // Serve our parameters to joiners while warmup lasts.
      if (this.paramsBlob?.step !== step) {
        const weights = await this.o.model.readWeights();
        const bytes = serializeSafetensors(
          parameterShapes(this.o.model.config).map(([name, shape]) => ({
            name,
            shape,
            data: weights.get(name)!,
          })),
        );
        this.paramsBlob = { step, ref: this.o.p2p.putBlob(bytes, { round: step }) };
      }
      if (this.paramsTimer === undefined) {
        const announce = () => {
          const b = this.paramsBlob;
          if (b)
            this.o.p2p
              .announceResult({ round: b.step, batchId: PARAMS_BATCH_ID, blob: b.ref })
              .catch(() => {});
        };
        announce();
        this.paramsTimer = setInterval(announce, 1000);
      }
      const others = state.epoch.clients.filter(
        (c) => c.id !== this.id && c.state === ClientState.Healthy,
      ).length;
      const key = `warmup:${state.progress.epoch}`;
      this.warmupSince.set(key, this.warmupSince.get(key) ?? Date.now());
      const waited = Date.now() - this.warmupSince.get(key)!;
      if (this.o.p2p.getGossipPeers().length < others && waited < 15_000) return;
      this.act(
        key,
        () => this.o.client.warmupWitness({ index: myIndex }),
        () => this.emit({ event: 'warmup:ready', epoch: state.progress.epoch, step }),
      );
    } else {
      this.tryFetchParams(step);
    }
  }

  private tryFetchParams(step: number): void {
    if (this.fetchingParams) return;
    const anns = (this.announced.get(step) ?? []).filter(
      (a) => a.kind === 'result' && a.batchId === PARAMS_BATCH_ID,
    );
    const a = anns[0] as (VerifiedAnnouncement & { kind: 'result' }) | undefined;
    if (a === undefined) return;
    this.fetchingParams = true;
    const ref: BlobRef = { hashAlgorithm: a.hashAlgorithm, hash: a.hash, size: a.size };
    void (async () => {
      try {
        const bytes = await this.o.p2p.fetchBlob(ref, {
          providers: anns.map((x) => x.from),
          ...(this.signal ? { signal: this.signal } : {}),
        });
        const file = parseSafetensors(bytes);
        const weights = new Map<string, Float32Array>();
        for (const [name, t] of file.tensors) weights.set(name, safetensorsToFloat32(t, name));
        this.o.model.setWeights(weights);
        this.paramsStep = step;
        const hash = await parameterHash(this.o.model);
        this.emit({ event: 'warmup:params-fetched', step, from: toHex(a.signer), hash });
        if (this.state) await this.onState(this.state);
      } catch (e) {
        this.emit({ event: 'warning', message: `parameter fetch failed: ${(e as Error).message}` });
      } finally {
        this.fetchingParams = false;
      }
    })();
  }

  // ------------------------------------------------------------------ rounds

  private record(state: CoordinatorState, round: Round): RoundRecord {
    const step = state.epoch.startStep + round.height;
    let rec = this.rounds.get(step);
    if (rec === undefined || rec.epoch !== state.progress.epoch || rec.height !== round.height) {
      rec = {
        epoch: state.progress.epoch,
        height: round.height,
        step,
        assignments: getRoundAssignments(state.config, state.model.maxSeqLen, round),
        clients: state.epoch.clients.slice(0, round.clientsLen).map((c) => c.id),
        candidates: new Map(),
        witnessSent: false,
        witnessing: false,
        applied: false,
        trainedAt: null,
      };
      this.rounds.set(step, rec);
      for (const a of this.announced.get(step) ?? []) this.consider(rec, a);
    }
    return rec;
  }

  private onAnnouncement(a: VerifiedAnnouncement & { kind: 'result' }): void {
    let list = this.announced.get(a.round);
    if (list === undefined) {
      list = [];
      this.announced.set(a.round, list);
      for (const r of [...this.announced.keys()]) if (r < a.round - 8) this.announced.delete(r);
    }
    list.push(a);
    if (a.batchId === PARAMS_BATCH_ID) {
      const s = this.state;
      if (s?.runState === RunState.Warmup && this.paramsStep !== s.progress.step)
        this.tryFetchParams(s.progress.step);
      return;
    }
    const rec = this.rounds.get(a.round);
    if (rec !== undefined) this.consider(rec, a);
  }

  private reject(rec: RoundRecord, from: string, reason: string): void {
    this.stats.resultsRejected++;
    this.emit({ event: 'result:rejected', step: rec.step, from, reason });
  }

  /** Checks an announced result against the round's assignment, downloads it, decodes it and commits to it. */
  private consider(rec: RoundRecord, a: VerifiedAnnouncement): void {
    if (a.kind !== 'result' || a.batchId === PARAMS_BATCH_ID) return;
    const from = toHex(a.signer);
    if (from === this.id) return;
    const batch = rec.assignments.find((b) => b.start === a.batchId);
    if (batch === undefined || rec.clients[batch.index] !== from) {
      this.reject(rec, from, `batch ${a.batchId} is not assigned to the sender in step ${rec.step}`);
      return;
    }
    const list = rec.candidates.get(batch.start) ?? [];
    const hashHex = toHex(a.hash);
    if (list.some((c) => toHex(c.ref.hash) === hashHex)) return;
    if (list.length >= 4) return; // A sender flooding alternatives gets no more downloads.
    const ref: BlobRef = { hashAlgorithm: a.hashAlgorithm, hash: a.hash, size: a.size };
    const c: Candidate = { from, ref, valid: false, done: Promise.resolve() };
    c.done = (async () => {
      try {
        const bytes = await this.o.p2p.fetchBlob(ref, this.signal ? { signal: this.signal } : {});
        this.checkPayload(rec, batch, c, bytes);
      } catch (e) {
        c.fetchFailed = true;
        this.reject(rec, from, `download failed: ${(e as Error).message}`);
      }
      this.maybeWitness(rec);
    })();
    list.push(c);
    rec.candidates.set(batch.start, list);
  }

  private checkPayload(rec: RoundRecord, batch: BatchAssignment, c: Candidate, bytes: Uint8Array): void {
    try {
      decodeDistroResult(bytes, { expected: this.layout, stats: this.optimizer.rejections });
    } catch (e) {
      this.reject(rec, c.from, `invalid DisTrO result: ${(e as Error).message}`);
      return;
    }
    c.payload = bytes;
    c.commitment = toHex(commitmentHash(rec.step, batch, bytes));
    c.valid = true;
    this.stats.resultsAccepted++;
  }

  private async train(state: CoordinatorState, rec: RoundRecord): Promise<void> {
    this.training = true;
    try {
      await this.trainBatches(state, rec);
    } finally {
      this.training = false;
    }
  }

  private async trainBatches(state: CoordinatorState, rec: RoundRecord): Promise<void> {
    rec.trainedAt = Date.now();
    const mine = rec.assignments.filter((b) => rec.clients[b.index] === this.id);
    this.optimizer.lr = lrAt(state.model.lrSchedule, rec.step);
    let lossSum = 0;
    let tokens = 0;
    let computeMs = 0;
    let bytesSent = 0;
    for (const batch of mine) {
      const data = await this.o.data.getBatch({ start: batch.start, end: batch.end });
      const t0 = performance.now();
      const r = trainOnBatch(
        this.o.model,
        this.optimizer,
        data.tokens,
        data.width,
        this.o.microBatchSize,
        this.o.clipGradNorm,
      );
      let payload = encodeDistroResult(r.result);
      computeMs += performance.now() - t0;
      if (this.o.misbehave === 'garbage') payload = new Uint8Array(randomBytes(payload.byteLength));
      lossSum += r.loss * data.indices.length;
      tokens += r.tokens;
      bytesSent += payload.byteLength;
      const ref = this.o.p2p.putBlob(payload, { round: rec.step });
      const c: Candidate = { from: this.id, ref, valid: false, done: Promise.resolve() };
      this.checkPayload(rec, batch, c, payload);
      rec.candidates.set(batch.start, [...(rec.candidates.get(batch.start) ?? []), c]);
      await this.o.p2p
        .announceResult({ round: rec.step, batchId: batch.start, blob: ref })
        .catch((e: unknown) => {
          this.emit({ event: 'warning', message: `announce failed: ${(e as Error).message}` });
        });
    }
    if (mine.length === 0) return;
    const rows = mine.reduce((a, b) => a + b.end - b.start + 1, 0);
    this.stats.roundsTrained++;
    this.stats.computeMs += computeMs;
    this.stats.bytesProduced += bytesSent;
    this.stats.lastLoss = lossSum / rows;
    this.stats.lastTokensPerSec = tokens / (computeMs / 1000);
    this.emit({
      event: 'round:trained',
      step: rec.step,
      epoch: rec.epoch,
      height: rec.height,
      batches: mine.length,
      loss: lossSum / rows,
      tokens,
      computeMs,
      tokensPerSec: tokens / (computeMs / 1000),
      bytesSent,
    });
  }

  /** The `paramsStep` a node must have to train `rec` (one round less applied in the overlapped pipeline). */
  private readyStep(rec: RoundRecord): number {
    return this.o.overlapped && rec.height > 0 ? rec.step - 1 : rec.step;
  }

  /** Witnesses the round the current state's witnesses judge: the current one, or the previous one when overlapped. */
  private witnessTarget(state: CoordinatorState): void {
    const round = currentRound(state);
    if (!this.o.overlapped) {
      const rec = this.rounds.get(state.epoch.startStep + round.height);
      if (rec !== undefined) this.maybeWitness(rec);
      return;
    }
    if (round.height > 0) {
      const prev = this.rounds.get(state.epoch.startStep + round.height - 1);
      if (prev !== undefined && prev.epoch === state.progress.epoch) this.maybeWitness(prev);
      return;
    }
    // Height 0 has no previous round: an empty witness lets the round advance as soon as everyone trained.
    const cur = this.rounds.get(state.epoch.startStep);
    const myIndex = cur?.clients.indexOf(this.id) ?? -1;
    if (cur === undefined || cur.trainedAt === null || this.training || myIndex < 0) return;
    if (!isWitness(state.config, round, myIndex)) return;
    const empty = () =>
      createBloom(bloomNumBits(Math.max(1, cur.clients.length), BLOOM_FALSE_RATE), randomKeys());
    this.act(`w0:${cur.epoch}`, () =>
      this.o.client.witness({
        index: myIndex,
        participantBloom: empty(),
        broadcastBloom: empty(),
        broadcastMerkle: toHex(sha256(new Uint8Array(0))),
      }),
    );
  }

  /** Sends this node's witness for `rec` once every batch has a result, or once the round is in RoundWitness. */
  private maybeWitness(rec: RoundRecord): void {
    const state = this.state;
    if (state === undefined || rec.witnessSent || rec.witnessing) return;
    if (state.runState !== RunState.RoundTrain && state.runState !== RunState.RoundWitness) return;
    const round = currentRound(state);
    const lag = this.o.overlapped ? 1 : 0;
    if (state.progress.epoch !== rec.epoch || round.height !== rec.height + lag) return;
    if (this.training) return; // Witnessing lets the round advance: finish this round's training first.
    const myIndex = state.epoch.clients.findIndex((c) => c.id === this.id);
    if (myIndex < 0 || myIndex >= round.clientsLen || !isWitness(state.config, round, myIndex)) return;
    const complete = rec.assignments.every((b) => rec.candidates.get(b.start)?.some((c) => c.valid));
    if (!complete && state.runState !== RunState.RoundWitness) return;
    rec.witnessing = true;
    const participants = new Set<string>();
    const commitments: string[] = [];
    for (const b of rec.assignments) {
      const c = rec.candidates.get(b.start)?.find((x) => x.valid);
      if (c === undefined) continue;
      participants.add(c.from);
      commitments.push(c.commitment!);
    }
    const participantBloom: Bloom = createBloom(
      bloomNumBits(rec.clients.length, BLOOM_FALSE_RATE),
      randomKeys(),
    );
    for (const id of participants) bloomAdd(participantBloom, sha256(fromHex(id)));
    const broadcastBloom: Bloom = createBloom(
      bloomNumBits(Math.max(1, rec.assignments.length), BLOOM_FALSE_RATE),
      randomKeys(),
    );
    for (const c of commitments) bloomAdd(broadcastBloom, fromHex(c));
    const merkle = toHex(sha256(fromHex(commitments.sort().join(''))));
    this.o.client
      .witness({ index: myIndex, participantBloom, broadcastBloom, broadcastMerkle: merkle })
      .then(
        () => {
          rec.witnessSent = true;
          this.stats.witnessesSent++;
          this.emit({
            event: 'witness:sent',
            step: rec.step,
            participants: participants.size,
            results: commitments.length,
          });
        },
        (e: unknown) => {
          if (isCoordinatorClientError(e, 'COORDINATOR_REJECTED')) {
            rec.witnessSent = true;
            this.stats.coordinatorRejections++;
          }
        },
      )
      .finally(() => {
        rec.witnessing = false;
      });
  }

  /** Reports epoch clients the previous round's witnesses did not see (Psyche's `trainer_healthy`). */
  private healthCheck(state: CoordinatorState, round: Round, myIndex: number): void {
    if (round.height < 2 || !isWitness(state.config, round, myIndex)) return;
    const prev = state.epoch.rounds[(state.epoch.roundsHead + 3) % 4]!;
    if (prev.witnesses.length === 0) return;
    const judged = this.o.overlapped ? prev.height - 1 : prev.height;
    const prevRec = this.rounds.get(state.epoch.startStep + judged);
    const trainers = new Set(prevRec?.assignments.map((b) => prevRec.clients[b.index]) ?? []);
    const checks = state.epoch.clients
      .map((c, index) => ({ c, index }))
      .filter(
        ({ c }) => c.state === ClientState.Healthy && trainers.has(c.id) && !isClientHealthy(state, c.id),
      )
      .map(({ c, index }) => ({ index, id: c.id }));
    if (checks.length === 0) return;
    this.act(
      `health:${state.progress.epoch}:${round.height}`,
      () => this.o.client.healthCheck({ checks }),
      () => {
        this.stats.healthChecksSent++;
        this.emit({ event: 'health:reported', step: state.progress.step, dropped: checks.map((c) => c.id) });
      },
    );
  }

  /** Applies, in step order, every recorded round that is over and whose witnesses are visible in `state`. */
  private async applyPending(state: CoordinatorState): Promise<void> {
    const cur = currentRound(state);
    const inRound = state.runState === RunState.RoundTrain || state.runState === RunState.RoundWitness;
    const steps = [...this.rounds.keys()].sort((a, b) => a - b);
    for (const step of steps) {
      const rec = this.rounds.get(step)!;
      if (rec.applied || rec.epoch !== state.progress.epoch) continue;
      const lag = this.o.overlapped ? 1 : 0;
      if (inRound && rec.height + lag >= cur.height) continue;
      const judge = rec.height + lag;
      const round = state.epoch.rounds.find((r) => r.height === judge && r.clientsLen > 0);
      if (round === undefined) {
        // Overlapped: the epoch's last round is never witnessed and is skipped by every node alike.
        if (this.o.overlapped && !inRound && judge > cur.height) await this.apply(rec, undefined);
        continue;
      }
      await this.apply(rec, round);
    }
    for (const step of steps) if (step < state.progress.step - 6) this.rounds.delete(step);
  }

  private async apply(rec: RoundRecord, round: Round | undefined): Promise<void> {
    rec.applied = true;
    if (this.paramsStep !== rec.step) return; // Stale parameters: re-synced from peers at the next warmup.
    const t0 = performance.now();
    const witnesses = round?.witnesses ?? [];
    const quorum = witnessQuorum(witnesses.length);
    const results: DistroResult[] = [];
    for (const b of rec.assignments) {
      const list = rec.candidates.get(b.start) ?? [];
      await Promise.all(list.map((c) => c.done));
      if (witnesses.length > 0 && !list.some((c) => c.valid)) await this.refetch(rec, b, list);
      let best: Candidate | undefined;
      let bestScore = 0;
      for (const c of [...list]
        .filter((x) => x.valid)
        .sort((x, y) => (x.commitment! < y.commitment! ? -1 : 1))) {
        const item = fromHex(c.commitment!);
        const score = witnesses.filter((w) => bloomContains(w.broadcastBloom, item)).length;
        if (score > bestScore) {
          best = c;
          bestScore = score;
        }
      }
      if (best !== undefined && witnesses.length > 0 && bestScore >= quorum) {
        results.push(decodeDistroResult(best.payload!, { expected: this.layout }));
      }
    }
    if (results.length > 0) {
      this.optimizer.lr = lrAt(this.state!.model.lrSchedule, rec.step);
      this.optimizer.apply(this.o.model.namedVariables(), results);
    }
    this.paramsStep = rec.step + 1;
    const hash = await parameterHash(this.o.model);
    this.stats.roundsApplied++;
    this.stats.lastHash = hash;
    if (rec.trainedAt !== null) this.stats.roundMs += Date.now() - rec.trainedAt;
    const m = this.o.p2p.metrics();
    this.emit({
      event: 'round:applied',
      step: rec.step,
      results: results.length,
      expected: rec.assignments.length,
      hash,
      applyMs: performance.now() - t0,
      peers: this.o.p2p.getConnectedPeers().length,
      bytesIn: m.peers.reduce((a, p) => a + p.bytesIn, 0),
      bytesOut: m.peers.reduce((a, p) => a + p.bytesOut, 0),
    });
    if (rec.step > 2) this.o.p2p.pruneBlobs(rec.step - 2);
  }

  /**
   * Second chance for a batch none of whose results this node holds: peers that downloaded a result keep it and
   * serve it, so a download that failed from the (maybe dead) author is retried from every connected peer.
   */
  private async refetch(rec: RoundRecord, batch: BatchAssignment, list: Candidate[]): Promise<void> {
    for (const c of list.filter((x) => x.fetchFailed)) {
      try {
        const bytes = await this.o.p2p.fetchBlob(c.ref, {
          providers: this.o.p2p.getConnectedPeers(),
          signal: this.signal
            ? AbortSignal.any([this.signal, AbortSignal.timeout(15_000)])
            : AbortSignal.timeout(15_000),
        });
        c.fetchFailed = false;
        this.checkPayload(rec, batch, c, bytes);
        if (c.valid) return;
      } catch {
        // nobody holds it: the witnesses cannot have a quorum for it either
      }
    }
  }

  private async saveCheckpoint(state: CoordinatorState): Promise<void> {
    const step = this.paramsStep - 1;
    const dir = join(this.o.checkpointDir!, `${state.runId}-step${step}`);
    try {
      await mkdir(this.o.checkpointDir!, { recursive: true });
      await saveHfCheckpoint(this.o.model, dir);
      this.emit({ event: 'checkpoint:saved', step, dir });
    } catch (e) {
      this.emit({ event: 'warning', message: `checkpoint failed: ${(e as Error).message}` });
    }
  }
}
