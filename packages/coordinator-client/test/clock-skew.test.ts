import { type CoordinatorState, RunState } from '@psyche/coordinator';
import { afterAll, expect, it } from 'vitest';
import { generateKeypair } from '../src/keys.js';
import { LocalCoordinatorClient } from '../src/local-client.js';
import type { PsychePayloads } from '../src/psyche-engine.js';
import type { ServerStatus } from '../src/server.js';
import { runSimulatedNode } from '../src/simulated-node.js';
import { ServerProcess, testRunToml } from './helpers/server-process.js';

type Client = LocalCoordinatorClient<CoordinatorState, PsychePayloads>;
const HOUR = 3_600_000;
let server: ServerProcess | undefined;
const clients: Client[] = [];
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await server?.dispose();
});

// Timeouts run on the server's clock only: clients whose clocks are hours or days off neither fire them early nor
// stall them. Their `sentAt` is used for nothing but the skew shown on /status.
it('clients with skewed clocks do not move timeouts; the server reports their skew', async () => {
  const WARMUP = 2;
  const TRAIN = 2;
  server = new ServerProcess(
    testRunToml({
      runId: 'skew',
      initMinClients: 3,
      minClients: 1,
      warmupTime: WARMUP,
      maxRoundTrainTime: TRAIN,
      epochTime: 20,
    }),
  );
  await server.start();
  const connect = (offsetMs: number) =>
    LocalCoordinatorClient.connect<CoordinatorState, PsychePayloads>({
      url: server!.wsUrl,
      keypair: generateKeypair(),
      clock: () => Date.now() + offsetMs,
    }).then((c) => {
      clients.push(c);
      return c;
    });
  const ahead = await connect(HOUR);
  const behind = await connect(-HOUR);
  const lazy = await connect(72 * HOUR);
  const ac = new AbortController();
  const runs = [
    runSimulatedNode(ahead, { signal: ac.signal }),
    runSimulatedNode(behind, { signal: ac.signal }),
  ];
  // `lazy` joins but never sends a warmup witness nor a witness: Warmup and RoundTrain can only end by timeout.
  await lazy.join();

  const signal = AbortSignal.timeout(60_000);
  const firstRound = await ahead.waitFor(
    (u) => u.state.runState === RunState.RoundTrain && u.state.progress.epoch === 0,
    { signal },
  );
  const warmupStart = firstRound.state.epoch.startTimestamp;
  const trainStart = firstRound.state.runStateStart;
  // Warmup ended by its timeout measured on the server clock (integer seconds; the upper bound only says it fired).
  expect(trainStart - warmupStart).toBeGreaterThanOrEqual(WARMUP);
  expect(trainStart - warmupStart).toBeLessThan(WARMUP + 30);
  // State timestamps are the server's clock, not any client's (they are ±1 h and +3 days off).
  expect(Math.abs(trainStart * 1000 - firstRound.serverTime)).toBeLessThan(60_000);

  const witnessPhase = await ahead.waitFor(
    (u) =>
      u.state.progress.epoch === 0 &&
      (u.state.progress.step > 1 || u.state.runState === RunState.RoundWitness),
    { signal },
  );
  if (witnessPhase.state.runState === RunState.RoundWitness && witnessPhase.state.progress.step === 1) {
    // RoundTrain of height 0 ended by its timeout: only 2 of the 3 witnesses (lazy never sends) came in.
    expect(witnessPhase.state.runStateStart - trainStart).toBeGreaterThanOrEqual(TRAIN);
  }
  // The round closed with the two live witnesses (quorum of 3 expected is 2) and the run went on.
  const next = await ahead.waitFor((u) => u.state.progress.step >= 2 && u.state.progress.epoch === 0, {
    signal,
  });
  const current = next.state.epoch.rounds[next.state.epoch.roundsHead]!;
  const closed = next.state.epoch.rounds.filter((r) => r.clientsLen === 3 && r.height < current.height);
  expect(closed.length).toBeGreaterThanOrEqual(1);
  for (const r of closed) expect(r.witnesses.length).toBe(2);

  const st = await server.status<ServerStatus>();
  const skew = (c: Client) => st.clients.find((x) => x.id === c.id)?.clockSkewMs ?? Number.NaN;
  // The skew estimate includes one-way latency and scheduling delay: tolerance 60 s.
  expect(Math.abs(skew(ahead) - HOUR)).toBeLessThan(60_000);
  expect(Math.abs(skew(behind) + HOUR)).toBeLessThan(60_000);
  expect(Math.abs(skew(lazy) - 72 * HOUR)).toBeLessThan(60_000);
  ac.abort();
  await Promise.all(runs);
}, 120_000);
