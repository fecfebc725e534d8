/**
 * Benchmarks of @psyche/coordinator with 256 clients (Psyche's on-chain cap) and 10 000 clients (beyond it).
 * Run with `pnpm --filter @psyche/coordinator bench`; writes `bench-results/coordinator.json` at the repo root.
 * Not a CI gate: numbers depend on the machine (recorded in the file).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import {
  bloomAdd,
  bloomNumBits,
  type CoordinatorConfig,
  type CoordinatorState,
  cloneState,
  createBloom,
  createCoordinator,
  currentRound,
  emptyBloom,
  fromHex,
  getBatchesForClient,
  getRoundAssignments,
  getWitnessIndices,
  healthCheck,
  RunState,
  resume,
  sha256,
  tick,
  toHex,
  warmupWitness,
  witness,
} from '../src/index.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

interface Result {
  name: string;
  value: number;
  unit: string;
  params: Record<string, unknown>;
}
const results: Result[] = [];
function record(name: string, value: number, unit: string, params: Record<string, unknown>) {
  results.push({ name, value: Math.round(value * 100) / 100, unit, params });
  process.stderr.write(
    `${name}: ${value.toLocaleString('en-US', { maximumFractionDigits: 2 })} ${unit} ${JSON.stringify(params)}\n`,
  );
}

/** Process CPU time in ms (user + system). The machine is shared, so CPU time is steadier than wall time. */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/**
 * Runs `fn` in batches (the batch doubles until one takes >= 10 ms, so reading the clock costs nothing) for at
 * least `minMs` of CPU time after a warm-up call; returns calls per CPU second.
 */
function rate(fn: () => void, minMs = 800): number {
  fn();
  let batch = 1;
  let n = 0;
  const t0 = cpuMs();
  let t = t0;
  while (t - t0 < minMs) {
    const b0 = t;
    for (let i = 0; i < batch; i++) fn();
    n += batch;
    t = cpuMs();
    if (t - b0 < 10) batch *= 2;
  }
  return (n * 1000) / (t - t0);
}

const ids = (n: number) =>
  Array.from({ length: n }, (_, k) => toHex(sha256(new Uint8Array(new Uint32Array([k, 0xbe]).buffer))));

function config(n: number): CoordinatorConfig {
  return {
    warmupTime: 60,
    cooldownTime: 30,
    maxRoundTrainTime: 60,
    roundWitnessTime: 2,
    globalBatchSizeWarmupTokens: 0,
    epochTime: 1_000_000,
    totalSteps: 1_000_000_000,
    initMinClients: n,
    minClients: 2,
    maxClients: n,
    witnessNodes: 0,
    globalBatchSizeStart: Math.min(65535, 4 * n),
    globalBatchSizeEnd: Math.min(65535, 4 * n),
    verificationPercent: 0,
    waitingForMembersExtraTime: 1,
  };
}

/** A run with `n` clients in RoundTrain (height 0). */
function training(n: number, clients: string[]): CoordinatorState {
  const s = createCoordinator({
    runId: 'bench',
    config: config(n),
    model: {
      maxSeqLen: 2048,
      coldStartWarmupSteps: 0,
      checkpoint: { type: 'Hub', repoId: 'org/m', revision: null },
      lrSchedule: { type: 'constant', baseLr: 1e-4, warmupInitLr: 0, warmupSteps: 0 },
    },
  });
  resume(s, 1000);
  tick(s, clients, 1000, 1n);
  tick(s, [], 1001, 2n);
  for (let i = 0; s.runState === RunState.Warmup; i++)
    warmupWitness(s, { from: clients[i]!, index: i }, 1002, 3n);
  return s;
}

const keys = [1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n];

/**
 * One full round: every witness submits (opportunistic → RoundWitness), then the witness tick starts the next
 * round. Returns the CPU ms spent inside the state machine (the witness indices, which every client computes, are
 * computed outside the timed part).
 */
function fullRound(s: CoordinatorState, pb: ReturnType<typeof createBloom>, clock: { now: number }): number {
  const r = currentRound(s);
  const witnesses = getWitnessIndices(s.config, r);
  const merkles = witnesses.map((i) => toHex(sha256(new Uint8Array([i & 255, r.height & 255]))));
  const t0 = cpuMs();
  witnesses.forEach((i, k) => {
    witness(
      s,
      {
        from: s.epoch.clients[i]!.id,
        index: i,
        participantBloom: pb,
        broadcastBloom: emptyBloom(),
        broadcastMerkle: merkles[k]!,
      },
      clock.now,
    );
  });
  clock.now += 2;
  tick(s, [], clock.now, BigInt(clock.now));
  const dt = cpuMs() - t0;
  if (s.runState !== RunState.RoundTrain) throw new Error(`bench: expected RoundTrain, got ${s.runState}`);
  return dt;
}

try {
  for (const n of [256, 10_000]) {
    const clients = ids(n);
    const p = { clients: n };

    // Memory of a state with n epoch clients: heap delta of 8 deep copies after GC, per copy; and its JSON size.
    const s = training(n, clients);
    gc();
    gc();
    const h0 = process.memoryUsage().heapUsed;
    const copies = Array.from({ length: 8 }, () => cloneState(s));
    gc();
    gc();
    const h1 = process.memoryUsage().heapUsed;
    record('state heap size (per copy, RoundTrain height 0)', (h1 - h0) / 8 / 1024, 'KiB', {
      ...p,
      copies: copies.length,
    });
    const json = JSON.stringify(s, (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
    record('state JSON size', json.length / 1024, 'KiB', p);

    // The 500 ms poll: a tick that evaluates the timeouts and does not transition.
    const idle = cloneState(s);
    const t = 1003;
    record(
      'idle tick (RoundTrain, no transition)',
      rate(() => tick(idle, [], t, 7n)),
      'ticks/s',
      p,
    );

    // A full round (32 witness submissions, 2 transitions, next round's seed) — ticks/s counts the 2 ticks.
    const round = cloneState(s);
    const everyone = createBloom(bloomNumBits(n, 0.01), keys);
    for (const id of clients) bloomAdd(everyone, sha256(fromHex(id)));
    const clock = { now: 1003 };
    fullRound(round, everyone, clock);
    let spent = 0;
    let rounds = 0;
    while (spent < 1500 || rounds < 20) {
      spent += fullRound(round, everyone, clock);
      rounds++;
    }
    record(
      'full round in the state machine (32 witness messages + 2 transitions)',
      (rounds * 1000) / spent,
      'rounds/s',
      { ...p, rounds },
    );
    record(
      'transitioning ticks (RoundTrain→RoundWitness→RoundTrain, witnesses included)',
      (2 * rounds * 1000) / spent,
      'ticks/s',
      p,
    );

    // Epoch start: WaitingForMembers → Warmup admitting n pending joiners.
    record(
      'epoch start (n joiners → Warmup)',
      rate(() => {
        const w = createCoordinator({ runId: 'b', config: config(n), model: s.model });
        resume(w, 10);
        tick(w, clients, 10, 1n);
        tick(w, [], 11, 1n);
      }, 1500),
      'epochs/s',
      p,
    );

    // Client-side prediction, per round: who witnesses, the whole assignment, and "my batches".
    const r = currentRound(round);
    record(
      'getWitnessIndices',
      rate(() => getWitnessIndices(round.config, r)),
      'calls/s',
      p,
    );
    record(
      'getRoundAssignments',
      rate(() => getRoundAssignments(round.config, round.model.maxSeqLen, r)),
      'calls/s',
      p,
    );
    record(
      'getBatchesForClient',
      rate(() => getBatchesForClient(round, clients[n - 1]!)),
      'calls/s',
      p,
    );

    // A health check naming 16 clients against 32 previous-round witnesses (round height >= 2 needed). All named
    // clients are healthy, so the call changes nothing and can be repeated on the same state.
    const checks = round.epoch.clients.slice(0, 16).map((c, index) => ({ index, id: c.id }));
    const from = round.epoch.clients[20]!.id;
    const hcResult = healthCheck(round, { from, checks }, round.runStateStart);
    if (hcResult.rejectedHealthy !== 16) throw new Error('bench: expected 16 healthy clients');
    record(
      'healthCheck (16 entries x 32 witness blooms)',
      rate(() => healthCheck(round, { from, checks }, round.runStateStart)),
      'calls/s',
      p,
    );
  }

  const out = {
    package: '@psyche/coordinator',
    date: new Date().toISOString(),
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      node: process.version,
      backend: 'none (pure TypeScript)',
    },
    results,
  };
  const dir = join(fileURLToPath(new URL('../../../', import.meta.url)), 'bench-results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'coordinator.json'), `${JSON.stringify(out, null, 2)}\n`);
  process.stderr.write(`wrote ${join(dir, 'coordinator.json')}\n`);
} catch (e) {
  process.stderr.write(`bench failed: ${(e as Error).stack}\n`);
  process.exitCode = 1;
}
