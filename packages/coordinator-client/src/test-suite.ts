/**
 * The compliance suite every {@link CoordinatorClient} backend must pass (local server here; the Solana backend
 * runs it too). Import it from `@psyche/coordinator-client/test-suite` inside a vitest test file.
 *
 * @example
 * ```ts
 * import { coordinatorClientComplianceTests } from '@psyche/coordinator-client/test-suite';
 * coordinatorClientComplianceTests('local server', async () => {
 *   const server = await startMyServer(); // fresh run, see ComplianceHarness for the required config
 *   return {
 *     createClient: () => LocalCoordinatorClient.connect({ url: server.wsUrl, keypair: generateKeypair() }),
 *     teardown: () => server.stop(),
 *   };
 * });
 * ```
 * @packageDocumentation
 */
import { type CoordinatorState, currentRound, isWitness, RunState } from '@psyche/coordinator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CoordinatorClient, StateUpdate } from './client.js';
import { isCoordinatorClientError } from './errors.js';
import type { PsychePayloads } from './psyche-engine.js';
import { makeWitness, runSimulatedNode } from './simulated-node.js';

/** A client of a `@psyche/coordinator` backend. */
export type PsycheCoordinatorClient = CoordinatorClient<CoordinatorState, PsychePayloads>;

/**
 * What a backend provides to the suite. The run behind it must be **fresh** (WaitingForMembers, epoch 0, nobody
 * pending) with `init_min_clients = 2`, `min_clients = 1`, `witness_nodes = 0`, a non-Ephemeral checkpoint
 * (e.g. `Hub`), `epoch_time` of a few seconds, and timeouts of 1–2 s so that an epoch completes in seconds.
 */
export interface ComplianceHarness {
  /** A connected client with a fresh identity. */
  createClient(): Promise<PsycheCoordinatorClient>;
  /** Releases everything the harness started. */
  teardown(): Promise<void>;
}

/** Upper bound for any single wait in the suite (the run's timeouts are seconds). */
const WAIT_MS = 45_000;

async function expectCode(p: Promise<unknown>, code: string): Promise<void> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(isCoordinatorClientError(e), `expected a CoordinatorClientError ${code}, got ${String(e)}`).toBe(
    true,
  );
  expect((e as { code: string }).code).toBe(code);
}

/**
 * Registers the compliance tests in a `describe` block named after the backend.
 *
 * @param name - backend name shown in the test report
 * @param setup - creates the backend (called once, before the tests)
 */
export function coordinatorClientComplianceTests(
  name: string,
  setup: () => Promise<ComplianceHarness>,
): void {
  describe(`CoordinatorClient compliance: ${name}`, () => {
    let h: ComplianceHarness;
    const clients: PsycheCoordinatorClient[] = [];
    const client = async () => {
      const c = await h.createClient();
      clients.push(c);
      return c;
    };
    const wait = (c: PsycheCoordinatorClient, p: (u: StateUpdate<CoordinatorState>) => boolean) =>
      c.waitFor(p, { signal: AbortSignal.timeout(WAIT_MS) });

    beforeAll(async () => {
      h = await setup();
    });
    afterAll(async () => {
      await Promise.all(clients.map((c) => c.close()));
      await h?.teardown();
    });

    it('observes the current state first, with a non-negative version', async () => {
      const a = await client();
      expect(a.id).toMatch(/^[0-9a-f]{64}$/);
      const u = await wait(a, () => true);
      expect(u.version).toBeGreaterThanOrEqual(0);
      expect(u.state.runState).toBe(RunState.WaitingForMembers);
      expect(u.state.progress.epoch).toBe(0);
      expect(a.latest()).toBe(u);
    });

    it('rejects every operation with ABORTED when the signal is already aborted', async () => {
      const a = await client();
      const signal = AbortSignal.abort(new Error('test abort'));
      await expectCode(a.join({ signal }), 'ABORTED');
      await expectCode(a.leave({ signal }), 'ABORTED');
      await expectCode(a.warmupWitness({ index: 0 }, { signal }), 'ABORTED');
      await expectCode(a.healthCheck({ checks: [{ index: 0, id: a.id }] }, { signal }), 'ABORTED');
      await expectCode(
        a.checkpoint({ index: 0, checkpoint: { type: 'Hub', repoId: 'x', revision: null } }, { signal }),
        'ABORTED',
      );
      await expectCode(
        a.waitFor(() => false, { signal }),
        'ABORTED',
      );
      const it = a.watch({ signal });
      await expectCode(it.next(), 'ABORTED');
      // Nothing reached the backend: the client is still not pending.
      expect(a.latest()?.state.pending).not.toContain(a.id);
    });

    it('watch() ends with ABORTED when its signal fires mid-iteration', async () => {
      const a = await client();
      const ac = new AbortController();
      const it = a.watch({ signal: ac.signal });
      const first = await it.next();
      expect(first.done).toBe(false);
      const pending = it.next();
      ac.abort(new Error('stop'));
      await expectCode(pending, 'ABORTED');
    });

    it('join is idempotent and leave withdraws a pending client', async () => {
      const c = await client();
      const a1 = await c.join();
      await wait(c, (u) => u.version >= a1.version);
      expect(c.latest()!.state.pending.filter((id) => id === c.id)).toHaveLength(1);
      const a2 = await c.join();
      const u2 = await wait(c, (u) => u.version >= a2.version);
      expect(u2.state.pending.filter((id) => id === c.id)).toHaveLength(1);
      const a3 = await c.leave();
      const u3 = await wait(c, (u) => u.version >= a3.version);
      expect(u3.state.pending).not.toContain(c.id);
      // Leaving again: nothing to withdraw, refused by the state machine.
      await expectCode(c.leave(), 'COORDINATOR_REJECTED');
    });

    it('refuses a witness outside a round with COORDINATOR_REJECTED, state unchanged', async () => {
      const c = await client();
      const before = await wait(c, () => true);
      await expectCode(
        c.witness({
          index: 0,
          participantBloom: { numBits: 0, keys: new Array(8).fill(0n), bits: new Array(16).fill(0n) },
          broadcastBloom: { numBits: 0, keys: new Array(8).fill(0n), bits: new Array(16).fill(0n) },
          broadcastMerkle: '00'.repeat(32),
        }),
        'COORDINATOR_REJECTED',
      );
      expect(c.latest()!.state.runState).toBe(before.state.runState);
    });

    it('versions observed by watch() strictly increase', async () => {
      const c = await client();
      const ac = new AbortController();
      const seen: number[] = [];
      const reader = (async () => {
        try {
          for await (const u of c.watch({ signal: ac.signal })) {
            seen.push(u.version);
            if (seen.length >= 3) break;
          }
        } catch (e) {
          if (!isCoordinatorClientError(e, 'ABORTED')) throw e;
        }
      })();
      const x = await client();
      const joined = await x.join();
      // Broadcasts are coalesced: let the join's state reach `c` before leaving, or both may arrive as one.
      await c.waitFor((u) => u.version >= joined.version);
      await x.leave();
      await reader;
      ac.abort();
      expect(seen.length).toBeGreaterThanOrEqual(3);
      for (let i = 1; i < seen.length; i++) expect(seen[i]!).toBeGreaterThan(seen[i - 1]!);
    });

    it('runs a whole epoch: join → Warmup → rounds with witnesses → Cooldown → next epoch', async () => {
      const a = await client();
      const b = await client();
      const ac = new AbortController();
      const runs = [runSimulatedNode(a, { signal: ac.signal }), runSimulatedNode(b, { signal: ac.signal })];
      // A client may skip intermediate states (latest-wins), so wait on conditions that persist.
      const inEpoch = await wait(
        a,
        (u) => u.state.runState >= RunState.Warmup && u.state.epoch.clients.length > 0,
      );
      expect(inEpoch.state.epoch.clients.map((c) => c.id).sort()).toEqual([a.id, b.id].sort());
      const trained = await wait(a, (u) => u.state.progress.step >= 2);
      expect(trained.state.epoch.rounds.some((r) => r.witnesses.length >= 1)).toBe(true);
      const next = await wait(a, (u) => u.state.progress.epoch >= 1);
      ac.abort();
      const [sa, sb] = await Promise.all(runs);
      expect(next.state.progress.step).toBeGreaterThan(1);
      expect(sa!.warmupWitnesses + sb!.warmupWitnesses).toBeGreaterThanOrEqual(1);
      expect(sa!.witnesses + sb!.witnesses).toBeGreaterThanOrEqual(2);
    });

    it('health checks: naming a healthy client drops nobody; a mismatched entry is refused', async () => {
      const a = await client();
      const b = await client();
      const ac = new AbortController();
      const runs = [runSimulatedNode(a, { signal: ac.signal }), runSimulatedNode(b, { signal: ac.signal })];
      // Health checks are allowed from round height 2, in RoundTrain or RoundWitness.
      const live = (u: StateUpdate<CoordinatorState>) =>
        (u.state.runState === RunState.RoundTrain || u.state.runState === RunState.RoundWitness) &&
        currentRound(u.state).height >= 2 &&
        u.state.epoch.clients.some((c) => c.id === a.id) &&
        u.state.epoch.clients.some((c) => c.id === b.id);
      const at = await wait(b, live);
      const ai = at.state.epoch.clients.findIndex((c) => c.id === a.id);
      const phaseMovedOn = (e: unknown) =>
        isCoordinatorClientError(e, 'COORDINATOR_REJECTED') && e.details.reason === 'WrongRunState';
      try {
        const ack = await b.healthCheck({ checks: [{ index: ai, id: a.id }] });
        const after = await wait(b, (u) => u.version >= ack.version);
        // `a` witnessed every round with full blooms: it is healthy, so the report drops nobody.
        expect(after.state.epoch.clients.find((c) => c.id === a.id)?.state).toBe(0);
      } catch (e) {
        expect(phaseMovedOn(e), String(e)).toBe(true);
      }
      // An entry whose id does not match its index is refused as a whole.
      const bad = await b.healthCheck({ checks: [{ index: ai, id: b.id }] }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isCoordinatorClientError(bad, 'COORDINATOR_REJECTED')).toBe(true);
      ac.abort();
      await Promise.all(runs);
    });

    it('accepts checkpoint and refuses a non-witness or duplicate witness in a live round', async () => {
      const a = await client();
      const b = await client();
      const ac = new AbortController();
      // Only `a` runs the automatic loop; `b` joins and acts by hand.
      const run = runSimulatedNode(a, { signal: ac.signal });
      await wait(a, (u) => u.state.runState === RunState.WaitingForMembers);
      await b.join();
      const warm = await wait(
        b,
        (u) => u.state.runState >= RunState.Warmup && u.state.epoch.clients.some((c) => c.id === b.id),
      );
      const bi = warm.state.epoch.clients.findIndex((c) => c.id === b.id);
      if (warm.state.runState === RunState.Warmup) {
        // Refused only if Warmup timed out meanwhile.
        await b.warmupWitness({ index: bi }).catch((e: unknown) => {
          expect(isCoordinatorClientError(e, 'COORDINATOR_REJECTED')).toBe(true);
        });
      }
      const ck = await b.checkpoint({
        index: bi,
        checkpoint: { type: 'Hub', repoId: 'org/model', revision: 'abc' },
      });
      const afterCk = await wait(b, (u) => u.version >= ck.version);
      expect(afterCk.state.model.checkpoint).toMatchObject({ repoId: 'org/model', revision: 'abc' });
      // Wrong index for this key: the sender is the authenticated key, so claiming a's index is refused.
      const ai = warm.state.epoch.clients.findIndex((c) => c.id === a.id);
      const round = await wait(
        b,
        (u) => u.state.runState === RunState.RoundTrain || u.state.runState === RunState.RoundWitness,
      );
      await expectCode(b.witness(makeWitness(round.state, ai)), 'COORDINATOR_REJECTED');
      if (isWitness(round.state.config, currentRound(round.state), bi)) {
        try {
          await b.witness(makeWitness(round.state, bi));
          await expectCode(b.witness(makeWitness(round.state, bi)), 'COORDINATOR_REJECTED');
        } catch (e) {
          // The round may have closed between the two sends; that is a refusal too.
          expect(isCoordinatorClientError(e, 'COORDINATOR_REJECTED')).toBe(true);
        }
      }
      ac.abort();
      await run;
    });

    it('close() ends watchers and rejects later operations with CLOSED', async () => {
      const c = await client();
      const it = c.watch();
      await it.next();
      const pending = it.next();
      await c.close();
      expect((await pending).done).toBe(true);
      await expectCode(c.join(), 'CLOSED');
      await c.close(); // idempotent
    });
  });
}
