import { ClientState, type CoordinatorState, RunState } from '@psyche/coordinator';
import { afterAll, expect, it } from 'vitest';
import { generateKeypair } from '../src/keys.js';
import { LocalCoordinatorClient } from '../src/local-client.js';
import type { PsychePayloads } from '../src/psyche-engine.js';
import type { ServerStatus } from '../src/server.js';
import { runSimulatedNode } from '../src/simulated-node.js';
import { ServerProcess, testRunToml } from './helpers/server-process.js';

const N = 50;
const EPOCHS = 3;
let server: ServerProcess | undefined;
const clients: LocalCoordinatorClient<CoordinatorState, PsychePayloads>[] = [];
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await server?.dispose();
});

it(`${N} concurrent clients run ${EPOCHS} whole epochs; every epoch admits all of them and nobody is ever dropped`, async () => {
  // Rounds end by opportunistic witnessing (all 32 witnesses in), so the train timeout is only a safety net and is
  // kept above the time 32 witnesses take to arrive on a loaded 2-core machine.
  server = new ServerProcess(
    testRunToml({
      runId: 'fifty',
      initMinClients: N,
      minClients: 1,
      epochTime: 5,
      maxRoundTrainTime: 4,
      batchStart: 64,
      batchEnd: 64,
      server: { broadcast_interval_ms: 250 },
    }),
  );
  await server.start();
  clients.push(
    ...(await Promise.all(
      Array.from({ length: N }, () =>
        LocalCoordinatorClient.connect<CoordinatorState, PsychePayloads>({
          url: server!.wsUrl,
          keypair: generateKeypair(),
        }),
      ),
    )),
  );
  const ids = clients.map((c) => c.id).sort();
  const ac = new AbortController();

  // Invariants on every state the first client observes (a client may skip intermediate states, so each check
  // holds for any state, not for a particular one).
  let lastStep = 0;
  let lastEpoch = 0;
  const members = new Map<number, string[]>();
  const violations: string[] = [];
  const trace: string[] = [];
  const check = (s: CoordinatorState) => {
    const r = s.epoch.rounds[s.epoch.roundsHead]!;
    trace.push(
      `${s.runState}/${s.progress.epoch}/${s.progress.step} h${r.height} w${r.witnesses.length} t${s.runStateStart}`,
    );
    if (s.progress.step < lastStep) violations.push(`step went back ${lastStep} -> ${s.progress.step}`);
    if (s.progress.epoch < lastEpoch) violations.push(`epoch went back ${lastEpoch} -> ${s.progress.epoch}`);
    lastStep = s.progress.step;
    lastEpoch = s.progress.epoch;
    const epochIds = s.epoch.clients.map((c) => c.id);
    if (new Set(epochIds).size !== epochIds.length) violations.push('duplicate epoch client');
    // Every node witnesses with a full participant bloom, so nobody is ever dropped or exited.
    if (s.epoch.exitedClients.length > 0) violations.push(`exited clients in epoch ${s.progress.epoch}`);
    if (s.epoch.clients.some((c) => c.state !== ClientState.Healthy))
      violations.push('a client is not Healthy');
    if (s.runState >= RunState.Warmup && s.runState <= RunState.Cooldown) {
      members.set(s.progress.epoch, [...epochIds].sort());
    }
  };
  const runs = clients.map((c, i) =>
    runSimulatedNode(c, { signal: ac.signal, onState: i === 0 ? check : undefined }),
  );
  const done = await clients[0]!.waitFor((u) => u.state.progress.epoch >= EPOCHS, {
    signal: AbortSignal.timeout(150_000),
  });
  ac.abort();
  const stats = await Promise.all(runs);

  const why = `trace (runState/epoch/step height witnesses runStateStart):\n${trace.slice(-40).join('\n')}`;
  expect(violations, why).toEqual([]);
  for (let e = 0; e < EPOCHS; e++) expect(members.get(e), `epoch ${e} members; ${why}`).toEqual(ids);
  // Every epoch trained at least one step.
  expect(done.state.progress.step, why).toBeGreaterThanOrEqual(1 + EPOCHS);
  // Every node was admitted to every epoch, so each joined at least EPOCHS times.
  for (const s of stats) expect(s.joins).toBeGreaterThanOrEqual(EPOCHS);
  // Warmup ends once min(32, 50) = 32 warmup witnesses are in, so at most 32 are accepted per epoch.
  const warm = stats.reduce((n, s) => n + s.warmupWitnesses, 0);
  expect(warm).toBeGreaterThanOrEqual(1);
  expect(warm).toBeLessThanOrEqual(32 * (EPOCHS + 1));
  // witness_nodes = 0 → 32 witnesses per round; a round accepts at most that many.
  const totalWitnesses = stats.reduce((n, s) => n + s.witnesses, 0);
  expect(totalWitnesses).toBeGreaterThanOrEqual(32);
  expect(totalWitnesses).toBeLessThanOrEqual(32 * done.state.progress.step);

  const st = await server.status<ServerStatus>();
  expect(st.connections.authenticated).toBe(N);
  expect(st.epoch).toBeGreaterThanOrEqual(EPOCHS);
  expect(st.rejections.malformed + st.rejections.unauthenticated + st.rejections.replayed).toBe(0);
  expect(st.recentRounds.length).toBeGreaterThan(0);
}, 170_000);
