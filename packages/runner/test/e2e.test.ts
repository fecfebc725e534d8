import { rmSync } from 'node:fs';
import { generateKeypair } from '@psyche/coordinator-client';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalTestnet, runCli } from '../src/index.js';
import { appliedHashes, diagnostics, eventsOf, until } from './helpers.js';

// End-to-end runs with real processes on 127.0.0.1: one coordinator (`psyche coordinator serve`) and node
// processes (`psyche run --json`) training the default tiny model on the embedded default dataset. All waits are on
// conditions with generous bounds (the machine is shared); nothing asserts on wall-clock time.

let net: LocalTestnet | undefined;
afterEach(async () => {
  await net?.stop();
  if (net) rmSync(net.dir, { recursive: true, force: true });
  net = undefined;
});

describe('local testnet', () => {
  it('3 nodes train 20 steps with identical parameters after every round; the loss falls; an outsider is refused', async () => {
    net = new LocalTestnet({ nodes: 3, steps: 20 });
    await net.startCoordinator();
    const [a, b, c] = [net.addNode({ metrics_port: 0 }), net.addNode(), net.addNode()];

    // Prometheus metrics of a live node (127.0.0.1, ephemeral port announced in its `started` event).
    await until(() => eventsOf(a, 'round:applied').length >= 2, 'two applied rounds');
    const metricsUrl = eventsOf(a, 'started')[0]!.metricsUrl as string;
    expect(metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const metrics = await (await fetch(metricsUrl)).text();
    expect(Number(/^psyche_round_step (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(2);
    expect(Number(/^psyche_training_loss ([0-9.]+)$/m.exec(metrics)?.[1])).toBeGreaterThan(0);
    expect([1, 2]).toContain(Number(/^psyche_peer_connections (\d+)$/m.exec(metrics)?.[1]));
    // `psyche status` against the live coordinator.
    const lines: string[] = [];
    const io = { out: (l: string) => lines.push(l), err: (l: string) => lines.push(l) };
    expect(await runCli(['status', '--url', net.coordinatorUrl], io)).toBe(0);
    expect(lines[0]).toMatch(/^run local-testnet: Round(Train|Witness), epoch 0, step \d+, 3 clients$/);

    // (f) A node whose key is not on the coordinator's allowlist is refused and exits with an error.
    const outsider = net.addNode({}, generateKeypair());
    const code = await outsider.exit;
    expect(code).not.toBe(0);
    expect(outsider.stderr + outsider.events.map((e) => JSON.stringify(e)).join('\n')).toMatch(/allowlist/i);

    await net.waitForFinish(AbortSignal.timeout(420_000));
    await until(
      () => [a, b, c].every((n) => eventsOf(n, 'finished').length > 0),
      'every node to finish',
      60_000,
    );

    // Every node trained and applied steps 1..19 or more (the run stops at total_steps = 20).
    const hashes = [a, b, c].map((n) => appliedHashes(n!));
    const steps = [...hashes[0]!.keys()].sort((x, y) => x - y);
    expect(steps.length, diagnostics(net.nodes)).toBeGreaterThanOrEqual(19);
    for (const step of steps) {
      const h = hashes.map((m) => m.get(step));
      expect(h[1], `node1 hash at step ${step}`).toBe(h[0]);
      expect(h[2], `node2 hash at step ${step}`).toBe(h[0]);
    }
    // Every round applied every node's result (3 batches, all witnessed).
    for (const e of eventsOf(a!, 'round:applied')) expect(e.results).toBe(3);
    // Final hashes agree too.
    const finals = new Set([a, b, c].map((n) => eventsOf(n!, 'finished')[0]!.hash));
    expect(finals.size).toBe(1);

    // Loss: starts near ln(258) = 5.55 (byte tokens, near-uniform init) and falls well below it.
    const losses = (n: typeof a) =>
      eventsOf(n!, 'round:trained').map((e) => ({ step: e.step as number, loss: e.loss as number }));
    const all = [a, b, c].flatMap(losses);
    const meanAt = (pred: (s: number) => boolean) => {
      const xs = all.filter((x) => pred(x.step)).map((x) => x.loss);
      return xs.reduce((p, q) => p + q, 0) / xs.length;
    };
    const first = meanAt((s) => s === 1);
    const last = meanAt((s) => s >= 17);
    expect(Math.abs(first - Math.log(258))).toBeLessThan(0.2);
    expect(last).toBeLessThan(first - 1.0);
    // A checkpoint of the final parameters was written at cooldown.
    expect(eventsOf(a!, 'checkpoint:saved').length).toBeGreaterThan(0);
  }, 600_000);
});

describe('overlapped pipeline', () => {
  it('3 nodes apply round h-2 while training h and stay bitwise identical', async () => {
    net = new LocalTestnet({ nodes: 3, steps: 10 });
    await net.startCoordinator();
    const nodes = [0, 1, 2].map(() => net!.addNode({ training: { overlapped: true } }));
    await net.waitForFinish(AbortSignal.timeout(420_000));
    await until(() => nodes.every((n) => eventsOf(n, 'finished').length > 0), 'every node to finish', 60_000);
    const hashes = nodes.map(appliedHashes);
    const steps = [...hashes[0]!.keys()].sort((x, y) => x - y);
    expect(steps.length, diagnostics(nodes)).toBeGreaterThanOrEqual(9);
    for (const step of steps)
      for (const h of hashes) expect(h.get(step), `step ${step}`).toBe(hashes[0]!.get(step));
    // Every round but the epoch's last (never witnessed when overlapped) applied all 3 results.
    const applied = eventsOf(nodes[0]!, 'round:applied');
    for (const e of applied.slice(0, -1)) expect(e.results, `step ${e.step}`).toBe(3);
    expect(applied.at(-1)!.results).toBe(0);
    // A round is trained before the previous one is applied: step s is trained before step s-1's apply event.
    const order = nodes[0]!.events.filter((e) => e.event === 'round:trained' || e.event === 'round:applied');
    const trained3 = order.findIndex((e) => e.event === 'round:trained' && e.step === 3);
    const applied2 = order.findIndex((e) => e.event === 'round:applied' && e.step === 2);
    expect(trained3).toBeLessThan(applied2);
    const losses = eventsOf(nodes[0]!, 'round:trained').map((e) => e.loss as number);
    expect(losses.at(-1)!).toBeLessThan(losses[0]! - 0.5);
  }, 600_000);
});

describe('faults', () => {
  it('a node killed mid-run is dropped by health check and a garbage-sending node is excluded; the rest continue in sync', async () => {
    // withdraw_after_disconnect_secs is long so that only the health check can remove the killed node.
    net = new LocalTestnet({ nodes: 4, steps: 14, withdrawAfterDisconnectSecs: 600, maxRoundTrainTime: 8 });
    await net.startCoordinator();
    const honest = [net.addNode(), net.addNode()];
    const victim = net.addNode();
    const liar = net.addNode({ misbehave: 'garbage' });

    // Kill the victim right after it trained (and announced) a round: mid-round, before it applies it.
    await until(
      () => eventsOf(victim, 'round:trained').some((e) => (e.step as number) >= 4),
      'victim to train step 4',
    );
    victim.process!.kill('SIGKILL');
    const killedAfter = Math.max(...eventsOf(victim, 'round:trained').map((e) => e.step as number));

    await net.waitForFinish(AbortSignal.timeout(420_000));
    await until(
      () => honest.every((n) => eventsOf(n, 'finished').length > 0),
      'honest nodes to finish',
      60_000,
    );

    // Survivors reported the dead node and the liar as unhealthy, and rejected the liar's results.
    const reported = new Set(
      honest.flatMap((n) => eventsOf(n, 'health:reported').flatMap((e) => e.dropped as string[])),
    );
    expect(reported.has(victim.id), diagnostics(net.nodes)).toBe(true);
    expect(reported.has(liar.id)).toBe(true);
    const rejectedFrom = new Set(honest.flatMap((n) => eventsOf(n, 'result:rejected').map((e) => e.from)));
    expect(rejectedFrom.has(liar.id)).toBe(true);
    // The coordinator no longer counts either as Healthy.
    const status = await net.status();
    for (const id of [victim.id, liar.id]) {
      expect(status.clients.find((c) => c.id === id && c.state === 'Healthy')).toBeUndefined();
    }

    // The honest nodes kept training after the kill, with equal parameters after every applied round.
    const [h0, h1] = honest.map(appliedHashes) as [Map<number, string>, Map<number, string>];
    const after = [...h0.keys()].filter((s) => s > killedAfter + 3);
    expect(after.length).toBeGreaterThan(3);
    for (const [step, hash] of h0) expect(h1.get(step), `step ${step}`).toBe(hash);
    // No garbage was ever applied: at most the honest batches count toward each round.
    for (const e of eventsOf(honest[0]!, 'round:applied')) expect(e.results as number).toBeLessThanOrEqual(3);
  }, 600_000);

  it('a coordinator restart resumes the run without losing the step', async () => {
    net = new LocalTestnet({ nodes: 3, steps: 10 });
    await net.start();
    const before = await net.waitForStatus(
      (s) => s.step >= 4 && s.runState === 'RoundTrain',
      AbortSignal.timeout(300_000),
    );
    await net.killCoordinator('SIGKILL');
    await net.startCoordinator();
    const after = await net.status();
    expect(after.step).toBeGreaterThanOrEqual(before.step);
    await net.waitForFinish(AbortSignal.timeout(420_000));
    const nodes = net.nodes;
    await until(() => nodes.every((n) => eventsOf(n, 'finished').length > 0), 'every node to finish', 60_000);
    const hashes = nodes.map(appliedHashes);
    const steps = [...hashes[0]!.keys()].sort((x, y) => x - y);
    // Every step from 1 to the last was applied exactly once, by every node, to the same parameters.
    expect(steps, diagnostics(nodes)).toEqual(Array.from({ length: steps.length }, (_, i) => i + 1));
    expect(steps.length).toBeGreaterThanOrEqual(9);
    for (const step of steps)
      for (const h of hashes) expect(h.get(step), `step ${step}`).toBe(hashes[0]!.get(step));
  }, 600_000);

  it('a late joiner fetches the parameters from peers at the next epoch and then matches their hash', async () => {
    net = new LocalTestnet({ nodes: 2, extraNodes: 1, steps: 20, epochTime: 16, initMinClients: 2 });
    await net.start();
    const [a, b] = net.nodes as [NonNullable<(typeof net.nodes)[0]>, NonNullable<(typeof net.nodes)[0]>];
    await until(() => eventsOf(a, 'round:applied').length >= 2, 'two applied rounds');
    const late = net.addNode();
    await net.waitForFinish(AbortSignal.timeout(420_000));
    await until(
      () => [a, b, late].every((n) => eventsOf(n, 'finished').length > 0),
      'every node to finish',
      60_000,
    );

    const fetched = eventsOf(late, 'warmup:params-fetched');
    expect(fetched.length, diagnostics(net.nodes)).toBeGreaterThan(0);
    const step = fetched[0]!.step as number;
    // The fetched parameters are exactly the others' parameters after step - 1.
    expect(fetched[0]!.hash).toBe(appliedHashes(a).get(step - 1));
    // After joining it trains and stays bitwise identical to the others.
    const lateHashes = appliedHashes(late);
    expect(eventsOf(late, 'round:trained').length).toBeGreaterThan(0);
    expect(lateHashes.size).toBeGreaterThan(0);
    for (const [s, h] of lateHashes) {
      expect(appliedHashes(a).get(s), `step ${s}`).toBe(h);
      expect(appliedHashes(b).get(s), `step ${s}`).toBe(h);
    }
  }, 600_000);
});
