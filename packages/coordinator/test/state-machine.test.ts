/**
 * State-machine behaviour through the public API: typed, numbered errors that name the field and leave the state
 * unchanged; the client-facing prediction helpers; the Psyche-TS improvements (health checks, quorum, seed).
 */
import { describe, expect, it } from 'vitest';
import {
  bloomAdd,
  bloomNumBits,
  ClientState,
  type CoordinatorConfig,
  type CoordinatorState,
  checkpoint,
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
  isCoordinatorError,
  join,
  MAX_PENDING,
  type ModelConfig,
  pause,
  RunState,
  resume,
  sha256,
  tick,
  toHex,
  updateConfig,
  warmupWitness,
  withdraw,
  witness,
} from '../src/index.js';

const CONFIG: CoordinatorConfig = {
  warmupTime: 30,
  cooldownTime: 10,
  maxRoundTrainTime: 20,
  roundWitnessTime: 2,
  globalBatchSizeWarmupTokens: 0,
  epochTime: 500,
  totalSteps: 50,
  initMinClients: 4,
  minClients: 2,
  maxClients: 16,
  witnessNodes: 0,
  globalBatchSizeStart: 8,
  globalBatchSizeEnd: 8,
  verificationPercent: 0,
  waitingForMembersExtraTime: 1,
};
const MODEL: ModelConfig = {
  maxSeqLen: 32,
  coldStartWarmupSteps: 0,
  checkpoint: { type: 'Hub', repoId: 'org/m', revision: null },
  lrSchedule: { type: 'constant', baseLr: 1e-3, warmupInitLr: 0, warmupSteps: 0 },
};
const id = (k: number) => toHex(sha256(new Uint8Array([k, 0xc0])));
const merkle = (k: number) => toHex(sha256(new Uint8Array([k, 0x3e])));

function participants(ids: string[]) {
  const b = createBloom(bloomNumBits(ids.length, 0.01), [1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n]);
  for (const x of ids) bloomAdd(b, sha256(fromHex(x)));
  return b;
}

/** Expects `fn` to throw CoordinatorError `code` naming `field` (substring) and leave `state` unchanged. */
function expectRejected(state: CoordinatorState, fn: () => unknown, code: string, field?: string) {
  const before = cloneState(state);
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  expect(isCoordinatorError(thrown), `expected a CoordinatorError ${code}, got ${String(thrown)}`).toBe(true);
  if (!isCoordinatorError(thrown)) return;
  expect(thrown.code).toBe(code);
  if (field !== undefined) {
    expect(String(thrown.details.field)).toContain(field);
    expect(thrown.message).toContain(field);
  }
  expect(state).toEqual(before);
}

/** A run with `n` clients in RoundTrain at height 0 (t = 1010). */
function training(n = 4): CoordinatorState {
  const s = createCoordinator({ runId: 'unit', config: CONFIG, model: MODEL });
  resume(s, 1000);
  tick(
    s,
    Array.from({ length: n }, (_, k) => id(k)),
    1001,
    1n,
  );
  expect(s.runState).toBe(RunState.Warmup);
  for (let i = 0; i < n && s.runState === RunState.Warmup; i++)
    warmupWitness(s, { from: id(i), index: i }, 1010, 2n);
  expect(s.runState).toBe(RunState.RoundTrain);
  return s;
}

/** Every witness submits naming `named`; then the round ends. */
function round(s: CoordinatorState, now: number, named: string[] = s.epoch.clients.map((c) => c.id)) {
  for (const i of getWitnessIndices(s.config, currentRound(s))) {
    if (s.epoch.clients[i]!.state !== ClientState.Healthy) continue;
    witness(
      s,
      {
        from: s.epoch.clients[i]!.id,
        index: i,
        participantBloom: participants(named),
        broadcastBloom: emptyBloom(),
        broadcastMerkle: merkle(now + i),
      },
      now,
    );
  }
  if (s.runState === RunState.RoundTrain) tick(s, [], s.runStateStart + CONFIG.maxRoundTrainTime, 5n);
  tick(s, [], s.runStateStart + CONFIG.roundWitnessTime, 6n);
}

describe('creation and validation', () => {
  it('names the offending config field and the expected value', () => {
    try {
      createCoordinator({ runId: 'r', config: { ...CONFIG, warmupTime: 600 }, model: MODEL });
      expect.unreachable();
    } catch (e) {
      expect(isCoordinatorError(e, 'InvalidConfig')).toBe(true);
      expect((e as { number: number }).number).toBe(2);
      expect((e as Error).message).toMatch(/config\.warmupTime must be < epochTime \(500\), got 600/);
    }
    expect(() =>
      createCoordinator({ runId: 'r', config: { ...CONFIG, minClients: 1.5 }, model: MODEL }),
    ).toThrow(/config\.minClients/);
    expect(() => createCoordinator({ runId: 'r', config: null as never, model: MODEL })).toThrow(
      /config must be an object/,
    );
    expect(() =>
      createCoordinator({ runId: 'r', config: CONFIG, model: { ...MODEL, maxSeqLen: -1 } }),
    ).toThrow(/model\.maxSeqLen/);
    expect(() =>
      createCoordinator({
        runId: 'r',
        config: CONFIG,
        model: {
          ...MODEL,
          lrSchedule: { type: 'constant', baseLr: Number.NaN, warmupInitLr: 0, warmupSteps: 0 },
        },
      }),
    ).toThrow(/lrSchedule\.baseLr/);
    expect(() => createCoordinator({ runId: 'x'.repeat(33), config: CONFIG, model: MODEL })).toThrow(/runId/);
  });

  it('copies its inputs: later mutation of the caller config does not reach the state', () => {
    const cfg = { ...CONFIG };
    const s = createCoordinator({ runId: 'r', config: cfg, model: MODEL });
    cfg.totalSteps = 1;
    expect(s.config.totalSteps).toBe(50);
  });
});

describe('bad input is typed, numbered, names the field and never changes the state', () => {
  it('timestamps and seeds', () => {
    const s = training();
    expectRejected(s, () => tick(s, [], 1009, 1n), 'InvalidTimestamp', 'now');
    expectRejected(s, () => tick(s, [], 1.5 as number, 1n), 'InvalidTimestamp', 'now');
    expectRejected(s, () => tick(s, [], Number.NaN, 1n), 'InvalidTimestamp', 'now');
    expectRejected(s, () => tick(s, [], 1011, -1n), 'InvalidSeed', 'randomSeed');
    expectRejected(s, () => tick(s, [], 1011, 1n << 64n), 'InvalidSeed', 'randomSeed');
    expectRejected(s, () => tick(s, [], 1011, 5 as unknown as bigint), 'InvalidSeed', 'randomSeed');
  });

  it('client ids and the pending bound', () => {
    const s = createCoordinator({ runId: 'r', config: CONFIG, model: MODEL });
    resume(s, 1000);
    expectRejected(s, () => tick(s, [id(1), 'nope'], 1000, 1n), 'InvalidClientId', 'newClients[1]');
    expectRejected(s, () => tick(s, 'abc' as never, 1000, 1n), 'InvalidClientId', 'newClients');
    expectRejected(s, () => join(s, id(1).toUpperCase()), 'InvalidClientId', 'id');
    // sha256 of distinct 4-byte inputs: MAX_PENDING distinct ids.
    const many = Array.from({ length: MAX_PENDING }, (_, k) =>
      toHex(sha256(new Uint8Array(new Uint32Array([k]).buffer))),
    );
    tick(s, many, 1000, 1n);
    expect(s.pending.length).toBe(MAX_PENDING);
    expectRejected(s, () => join(s, id(200)), 'PendingFull', 'id');
    join(s, many[7]!); // re-joining is idempotent even when full
    expect(s.pending.length).toBe(MAX_PENDING);
  });

  it('malformed messages', () => {
    const s = training();
    expectRejected(s, () => witness(s, null as never, 1011), 'InvalidArgument', 'msg');
    // Height 0: the height precondition is checked before the message shape.
    expectRejected(s, () => healthCheck(s, undefined as never, 1011), 'HealthCheckTooEarly');
    expectRejected(s, () => checkpoint(s, 7 as never), 'InvalidArgument', 'msg');
    const ok = {
      from: id(0),
      index: 0,
      participantBloom: emptyBloom(),
      broadcastBloom: emptyBloom(),
      broadcastMerkle: merkle(1),
    };
    expectRejected(s, () => witness(s, { ...ok, index: 1.5 }, 1011), 'InvalidClientIndex', 'index');
    expectRejected(
      s,
      () => witness(s, { ...ok, broadcastMerkle: 'ab' }, 1011),
      'InvalidMerkleRoot',
      'broadcastMerkle',
    );
    expectRejected(
      s,
      () => witness(s, { ...ok, participantBloom: { numBits: 4, keys: [], bits: [] } }, 1011),
      'InvalidBloom',
      'participantBloom',
    );
    expectRejected(s, () => updateConfig(s, { totalSteps: 3 }), 'WrongRunState');
    expectRejected(s, () => withdraw(s, id(99)), 'ClientNotFound', 'id');
    expectRejected(
      s,
      () => checkpoint(s, { from: id(0), index: 0, checkpoint: { type: 'Hub', repoId: '', revision: null } }),
      'InvalidCheckpoint',
      'checkpoint',
    );
  });

  it('updateConfig is atomic: an invalid merged config changes nothing', () => {
    const s = createCoordinator({ runId: 'r', config: CONFIG, model: MODEL });
    expectRejected(s, () => updateConfig(s, { totalSteps: 7, epochTime: 10 }), 'InvalidConfig', 'warmupTime');
    expectRejected(s, () => updateConfig(s, { bogus: 1 } as never), 'InvalidArgument', 'bogus');
    updateConfig(s, { totalSteps: 7, checkpoint: { type: 'Gcs', bucket: 'b', prefix: 'p' } });
    expect(s.config.totalSteps).toBe(7);
    expect(s.model.checkpoint).toEqual({ type: 'Gcs', bucket: 'b', prefix: 'p' });
  });
});

describe('client-facing prediction', () => {
  it('getBatchesForClient partitions the round among the clients and matches getRoundAssignments', () => {
    const s = training(5);
    const all = getRoundAssignments(s.config, s.model.maxSeqLen, currentRound(s));
    const mine = s.epoch.clients.flatMap((c) => getBatchesForClient(s, c.id));
    expect(mine.sort((a, b) => a.start - b.start)).toEqual(all);
    const covered = all.reduce((n, b) => n + b.end - b.start + 1, 0);
    expect(covered).toBe(8); // global batch 8 over 5 trainers: 2, 2, 2, 1, 1
    expect(all.map((b) => b.end - b.start + 1)).toEqual([2, 2, 2, 1, 1]);
    expect(getBatchesForClient(s, id(77))).toEqual([]);
  });

  it('a dry run on a clone predicts the transition without touching the original', () => {
    const s = training();
    const before = cloneState(s);
    const dry = cloneState(s);
    tick(dry, [], 1030, 9n);
    expect(dry.runState).toBe(RunState.RoundWitness);
    expect(s).toEqual(before);
  });
});

describe('u32 limits', () => {
  it('last_step saturates at 2^32 - 1 when the epoch times out on the last possible step', () => {
    const s = createCoordinator({
      runId: 'u32',
      config: { ...CONFIG, totalSteps: 2 ** 32 - 2 },
      model: MODEL,
    });
    resume(s, 1000);
    tick(s, [id(0), id(1), id(2), id(3)], 1001, 1n);
    for (let i = 0; i < 4 && s.runState === RunState.Warmup; i++)
      warmupWitness(s, { from: id(i), index: i }, 1010, 2n);
    s.progress.step = 2 ** 32 - 2;
    s.epoch.startStep = s.progress.step;
    round(s, 1600); // now >= start + epochTime (500): the epoch winds down on this witness tick
    expect(s.progress.step).toBe(2 ** 32 - 1);
    expect(s.epoch.lastStep).toBe(2 ** 32 - 1); // step + 2 would leave u32
    expect(s.runState).toBe(RunState.Cooldown);
    tick(s, [], s.runStateStart + CONFIG.cooldownTime, 1n);
    expect(s.runState).toBe(RunState.Finished); // step 2^32 - 1 > totalSteps 2^32 - 2
  });
});

describe('Psyche-TS improvements', () => {
  it('a health check naming a healthy client still drops the unhealthy ones', () => {
    const s = training(4);
    round(s, 1012);
    const ids = s.epoch.clients.map((c) => c.id);
    round(s, 1020, ids.slice(0, 3)); // witnesses of height 1 did not see clients[3]
    expect(currentRound(s).height).toBe(2);
    const r = healthCheck(
      s,
      {
        from: ids[0]!,
        checks: [
          { index: 1, id: ids[1]! },
          { index: 3, id: ids[3]! },
        ],
      },
      s.runStateStart,
    );
    expect(r).toEqual({ dropped: 1, rejectedHealthy: 1, alreadyUnhealthy: 0 });
    expect(s.epoch.clients.map((c) => c.state)).toEqual([0, 0, 0, ClientState.Dropped]);
  });

  it('the quorum counts the expected witnesses, not the ones that arrived', () => {
    const s = training(6); // witnessNodes 0 → 6 expected, quorum 4
    const idx = getWitnessIndices(s.config, currentRound(s));
    for (const i of idx.slice(0, 3)) {
      witness(
        s,
        {
          from: s.epoch.clients[i]!.id,
          index: i,
          participantBloom: emptyBloom(),
          broadcastBloom: emptyBloom(),
          broadcastMerkle: merkle(i),
        },
        1011,
      );
    }
    tick(s, [], 1030, 1n);
    tick(s, [], 1032, 1n);
    expect(s.runState).toBe(RunState.Cooldown); // Psyche would continue: quorum(3 arrived) = 2 <= 3
  });

  it('the round seed depends on the witnesses merkle roots, not only on the tick seed', () => {
    const a = training(4);
    const b = cloneState(a);
    const submit = (s: CoordinatorState, salt: number) => {
      for (const i of getWitnessIndices(s.config, currentRound(s))) {
        witness(
          s,
          {
            from: s.epoch.clients[i]!.id,
            index: i,
            participantBloom: emptyBloom(),
            broadcastBloom: emptyBloom(),
            broadcastMerkle: merkle(salt + i),
          },
          1012,
        );
      }
      tick(s, [], 1014, 42n);
    };
    submit(a, 0);
    submit(b, 100);
    expect(currentRound(a).height).toBe(1);
    expect(currentRound(a).randomSeed).not.toBe(currentRound(b).randomSeed);
  });

  it('pause during a round drains through Cooldown into Paused with a cold start', () => {
    const s = training(4);
    pause(s, 1011);
    expect(s.pendingPause).toBe(true);
    round(s, 1012);
    expect(s.runState).toBe(RunState.Cooldown);
    expect(tick(s, [], s.runStateStart + 10, 1n)).toEqual({ type: 'EpochEnd', success: true });
    expect(s.runState).toBe(RunState.Paused);
    expect(s.epoch.coldStartEpoch).toBe(true);
    expect(s.epoch.clients.every((c) => c.state === ClientState.Withdrawn)).toBe(true);
    expectRejected(s, () => tick(s, [], s.runStateStart + 1, 1n), 'Halted');
  });
});
