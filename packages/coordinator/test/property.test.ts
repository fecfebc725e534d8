/**
 * Property test (fast-check): random event sequences — including invalid ones — never violate the invariants of
 * docs/coordinator.md §12, errors are always typed CoordinatorErrors that leave the state unchanged, and replaying
 * the same sequence gives the same state (determinism).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  batchSize,
  bloomAdd,
  ClientState,
  type CoordinatorState,
  checkpoint,
  createBloom,
  createCoordinator,
  currentRound,
  effectiveWitnessNodes,
  emptyBloom,
  fromHex,
  getRoundAssignments,
  healthCheck,
  isCoordinatorError,
  join,
  MAX_PENDING,
  pause,
  RunState,
  resume,
  sha256,
  tick,
  toHex,
  warmupWitness,
  withdraw,
  witness,
} from '../src/index.js';

const POOL = Array.from({ length: 10 }, (_, k) => toHex(sha256(new Uint8Array([k, 7]))));

type Cmd =
  | { t: 'tick'; dt: number; seed: bigint; joiners: number[] }
  | { t: 'join'; k: number }
  | { t: 'withdraw'; k: number }
  | { t: 'witness'; pick: number; dt: number; seen: number[]; bitsBeyond: boolean }
  | { t: 'warmup'; pick: number; seed: bigint }
  | { t: 'health'; reporter: number; targets: number[] }
  | { t: 'pause'; dt: number }
  | { t: 'resume'; dt: number }
  | { t: 'checkpoint'; pick: number; hub: boolean }
  | { t: 'stale'; back: number };

const k = fc.integer({ min: 0, max: POOL.length - 1 });
const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      t: fc.constant('tick' as const),
      dt: fc.integer({ min: 0, max: 25 }),
      seed: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
      joiners: fc.array(k, { maxLength: 4 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('join' as const), k }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('withdraw' as const), k }) },
  {
    weight: 6,
    arbitrary: fc.record({
      t: fc.constant('witness' as const),
      pick: fc.nat(20),
      dt: fc.integer({ min: 0, max: 3 }),
      seen: fc.array(fc.nat(9), { maxLength: 8 }),
      bitsBeyond: fc.boolean(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant('warmup' as const),
      pick: fc.nat(20),
      seed: fc.bigInt({ min: 0n, max: 1000n }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant('health' as const),
      reporter: fc.nat(20),
      targets: fc.array(fc.nat(20), { maxLength: 4 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ t: fc.constant('pause' as const), dt: fc.integer({ min: 0, max: 5 }) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ t: fc.constant('resume' as const), dt: fc.integer({ min: 0, max: 5 }) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ t: fc.constant('checkpoint' as const), pick: fc.nat(20), hub: fc.boolean() }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ t: fc.constant('stale' as const), back: fc.integer({ min: 1, max: 50 }) }),
  },
);

const configArb = fc.record({
  witnessNodes: fc.constantFrom(0, 1, 2),
  totalSteps: fc.integer({ min: 1, max: 8 }),
  epochTime: fc.integer({ min: 40, max: 200 }),
  maxClients: fc.integer({ min: 2, max: 6 }),
  globalBatchSizeStart: fc.integer({ min: 1, max: 9 }),
});

/** JSON with bigints, for cheap equality of whole states. */
const ser = (s: CoordinatorState) => JSON.stringify(s, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v));

function apply(s: CoordinatorState, c: Cmd, clock: { now: number }): void {
  const clients = s.epoch.clients;
  const at = (pick: number) => (clients.length === 0 ? 0 : pick % clients.length);
  switch (c.t) {
    case 'tick':
      clock.now = Math.max(clock.now, s.runStateStart) + c.dt;
      tick(
        s,
        c.joiners.map((j) => POOL[j]!),
        clock.now,
        c.seed,
      );
      return;
    case 'join':
      join(s, POOL[c.k]!);
      return;
    case 'withdraw':
      withdraw(s, POOL[c.k]!);
      return;
    case 'witness': {
      clock.now = Math.max(clock.now, s.runStateStart) + c.dt;
      const i = at(c.pick);
      const pb = createBloom(96, [1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n]);
      for (const j of c.seen) if (j < clients.length) bloomAdd(pb, sha256(fromHex(clients[j]!.id)));
      if (c.bitsBeyond) pb.bits[15] = 1n;
      witness(
        s,
        {
          from: clients[i]?.id ?? POOL[0]!,
          index: i,
          participantBloom: pb,
          broadcastBloom: emptyBloom(),
          broadcastMerkle: toHex(sha256(new Uint8Array([c.pick, c.dt]))),
        },
        clock.now,
      );
      return;
    }
    case 'warmup': {
      const i = at(c.pick);
      warmupWitness(
        s,
        { from: clients[i]?.id ?? POOL[0]!, index: i },
        Math.max(clock.now, s.runStateStart),
        c.seed,
      );
      return;
    }
    case 'health': {
      const checks = c.targets.map((p) => ({ index: at(p), id: clients[at(p)]?.id ?? POOL[1]! }));
      healthCheck(
        s,
        { from: clients[at(c.reporter)]?.id ?? POOL[2]!, checks },
        Math.max(clock.now, s.runStateStart),
      );
      return;
    }
    case 'pause':
      clock.now = Math.max(clock.now, s.runStateStart) + c.dt;
      pause(s, clock.now);
      return;
    case 'resume':
      clock.now = Math.max(clock.now, s.runStateStart) + c.dt;
      resume(s, clock.now);
      return;
    case 'checkpoint': {
      const i = at(c.pick);
      checkpoint(s, {
        from: clients[i]?.id ?? POOL[0]!,
        index: i,
        checkpoint: c.hub
          ? { type: 'Hub', repoId: 'org/ck', revision: null }
          : { type: 'Gcs', bucket: 'bk', prefix: null },
      });
      return;
    }
    case 'stale':
      tick(s, [], s.runStateStart - c.back, 1n);
  }
}

function checkInvariants(s: CoordinatorState, prev: { step: number; epoch: number }): void {
  const e = s.epoch;
  const ids = e.clients.map((c) => c.id);
  expect(new Set(ids).size).toBe(ids.length);
  expect(e.clients.length).toBeLessThanOrEqual(s.config.maxClients);
  expect(new Set(s.pending).size).toBe(s.pending.length);
  expect(s.pending.length).toBeLessThanOrEqual(MAX_PENDING);
  const healthy = new Set(e.clients.filter((c) => c.state === ClientState.Healthy).map((c) => c.id));
  for (const x of e.exitedClients) {
    expect(x.state).not.toBe(ClientState.Healthy);
    expect(healthy.has(x.id)).toBe(false);
  }
  expect(s.progress.step).toBeGreaterThanOrEqual(prev.step);
  expect(s.progress.epoch).toBeGreaterThanOrEqual(prev.epoch);
  expect(s.progress.step).toBeLessThanOrEqual(s.config.totalSteps + 1);
  const r = currentRound(s);
  expect(r.witnesses.length).toBeLessThanOrEqual(effectiveWitnessNodes(s.config.witnessNodes, r.clientsLen));
  expect(new Set(r.witnesses.map((w) => w.index)).size).toBe(r.witnesses.length);
  if (r.clientsLen > 0) {
    const total = batchSize(s.config, s.model.maxSeqLen, r.dataIndex);
    let next = r.dataIndex;
    for (const b of getRoundAssignments(s.config, s.model.maxSeqLen, r)) {
      expect(b.start).toBe(next); // disjoint and contiguous
      expect(b.end).toBeGreaterThanOrEqual(b.start);
      expect(b.index).toBeLessThan(r.clientsLen);
      next = b.end + 1;
    }
    expect(next - r.dataIndex).toBe(total); // covers the whole global batch
  }
  if (s.runState === RunState.RoundTrain || s.runState === RunState.RoundWitness) {
    expect(r.clientsLen).toBe(e.clients.length);
  }
}

function run(cfg: Record<string, number>, cmds: Cmd[]) {
  const s = createCoordinator({
    runId: 'prop',
    config: {
      warmupTime: 10,
      cooldownTime: 5,
      maxRoundTrainTime: 15,
      roundWitnessTime: 2,
      globalBatchSizeWarmupTokens: 512,
      initMinClients: 2,
      minClients: 2,
      globalBatchSizeEnd: 12,
      verificationPercent: 0,
      waitingForMembersExtraTime: 1,
      ...cfg,
    } as never,
    model: {
      maxSeqLen: 16,
      coldStartWarmupSteps: 0,
      checkpoint: { type: 'Hub', repoId: 'org/m', revision: null },
      lrSchedule: { type: 'constant', baseLr: 1e-3, warmupInitLr: 0, warmupSteps: 0 },
    },
  });
  resume(s, 100);
  const clock = { now: 100 };
  let errors = 0;
  let transitions = 0;
  for (const c of cmds) {
    const before = ser(s);
    const prev = { step: s.progress.step, epoch: s.progress.epoch };
    const prevState = s.runState;
    try {
      apply(s, c, clock);
    } catch (e) {
      if (!isCoordinatorError(e)) throw e;
      errors++;
      expect(ser(s), `${e.code} changed the state`).toBe(before);
    }
    if (s.runState !== prevState) transitions++;
    checkInvariants(s, prev);
  }
  return { state: s, errors, transitions };
}

describe('random event sequences (fast-check, 200 runs of 30-120 events)', () => {
  it('never violate the invariants, errors never change the state, replay is deterministic', () => {
    let totalTransitions = 0;
    let totalErrors = 0;
    const reached = new Set<number>();
    fc.assert(
      fc.property(configArb, fc.array(cmd, { minLength: 30, maxLength: 120 }), (cfg, cmds) => {
        const a = run(cfg, cmds);
        const b = run(cfg, cmds);
        expect(ser(b.state)).toBe(ser(a.state));
        totalTransitions += a.transitions;
        totalErrors += a.errors;
        reached.add(a.state.runState);
      }),
      { numRuns: 200, seed: 20261125 },
    );
    // The generator really exercises the machine (not only rejected inputs).
    expect(totalTransitions).toBeGreaterThan(1000);
    expect(totalErrors).toBeGreaterThan(1000);
    expect(reached.size).toBeGreaterThanOrEqual(6); // final run states seen across runs (Finished and Paused included)
  });
});
