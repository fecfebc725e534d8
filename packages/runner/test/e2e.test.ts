import { generateKeypair } from '@psyche/coordinator-client';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalTestnet } from '../src/index.js';
import { appliedHashes, diagnostics, eventsOf, until } from './helpers.js';

// End-to-end runs with real processes on 127.0.0.1: one coordinator (`psyche coordinator serve`) and node
// processes (`psyche run --json`) training the default tiny model on the embedded default dataset. All waits are on
// conditions with generous bounds (the machine is shared); nothing asserts on wall-clock time.

let net: LocalTestnet | undefined;
afterEach(async () => {
  await net?.stop();
  net = undefined;
});

describe('local testnet', () => {
  it('3 nodes train 20 steps with identical parameters after every round; the loss falls; an outsider is refused', async () => {
    net = new LocalTestnet({ nodes: 3, steps: 20 });
    await net.start();
    const [a, b, c] = net.nodes as [
      NonNullable<(typeof net.nodes)[0]>,
      (typeof net.nodes)[0],
      (typeof net.nodes)[0],
    ];

    // (f) A node whose key is not on the coordinator's allowlist is refused and exits with an error.
    const outsider = net.addNode({}, generateKeypair());
    const code = await outsider.exit;
    expect(code).not.toBe(0);
    expect(outsider.stderr + outsider.events.map((e) => JSON.stringify(e)).join('\n')).toMatch(/allowlist/i);

    await net.waitForFinish(AbortSignal.timeout(420_000));
    await until(
      () => [a, b, c].every((n) => eventsOf(n!, 'finished').length > 0),
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
