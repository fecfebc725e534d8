import type { CoordinatorState } from '@psyche/coordinator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isCoordinatorClientError } from '../src/errors.js';
import { generateKeypair, toHex } from '../src/keys.js';
import { LocalCoordinatorClient } from '../src/local-client.js';
import type { RejectionCounters, ServerStatus } from '../src/server.js';
import { RawConn } from './helpers/raw.js';
import { ServerProcess, testRunToml } from './helpers/server-process.js';

// Bad traffic against a real server process: every kind is refused with a typed error, counted on /status, and
// leaves the server up and its state uncorrupted.
const allowed = generateKeypair();
const limited = generateKeypair();
const honest = generateKeypair();
const stranger = generateKeypair();
const MAX_BYTES = 4096;

let server: ServerProcess;
beforeAll(async () => {
  server = new ServerProcess(
    testRunToml({
      runId: 'rejections',
      initMinClients: 10,
      minClients: 1,
      server: {
        allowlist: [toHex(allowed.publicKey), toHex(limited.publicKey), toHex(honest.publicKey)],
        max_message_bytes: MAX_BYTES,
        rate_limit_per_sec: 1,
        rate_limit_burst: 10,
        auth_timeout_ms: 2500,
      },
    }),
  );
  await server.start();
});
afterAll(() => server.dispose());

async function counters(): Promise<RejectionCounters> {
  return (await server.status<ServerStatus>()).rejections;
}

/** Runs `act` and checks that exactly `counter` grew by `by` and no other counter moved. */
async function expectCounted(
  counter: keyof RejectionCounters,
  by: number,
  act: () => Promise<void>,
): Promise<void> {
  const before = await counters();
  await act();
  const after = await counters();
  const diff = Object.fromEntries(
    Object.keys(after).map((k) => [
      k,
      after[k as keyof RejectionCounters] - before[k as keyof RejectionCounters],
    ]),
  );
  expect(diff).toEqual({ ...Object.fromEntries(Object.keys(after).map((k) => [k, 0])), [counter]: by });
}

describe('rejected traffic', () => {
  it('unauthenticated requests and subscriptions', async () => {
    const c = await RawConn.open(server.wsUrl);
    await c.next('challenge');
    await expectCounted('unauthenticated', 2, async () => {
      c.send(JSON.stringify({ t: 'req', id: 1, op: 'join' }));
      const res = await c.next('res');
      expect(res).toMatchObject({ id: 1, ok: false, error: { code: 'UNAUTHENTICATED' } });
      c.send(JSON.stringify({ t: 'sub' }));
      expect(await c.next('error')).toMatchObject({ error: { code: 'UNAUTHENTICATED' } });
    });
    c.close();
  });

  it('a bad signature closes the socket with 4401', async () => {
    const c = await RawConn.open(server.wsUrl);
    const frame = JSON.parse(await c.authFrame(allowed)) as { sig: string };
    const bad = frame.sig.slice(0, -2) + (frame.sig.endsWith('00') ? '01' : '00');
    await expectCounted('badSignature', 1, async () => {
      c.send(JSON.stringify({ ...frame, sig: bad }));
      expect(await c.next('error')).toMatchObject({ error: { code: 'BAD_SIGNATURE' } });
      expect((await c.waitClosed()).code).toBe(4401);
    });
  });

  it('a replayed auth answer is refused on a new connection', async () => {
    const c1 = await RawConn.open(server.wsUrl);
    const frame = await c1.authFrame(allowed);
    c1.send(frame);
    await c1.next('welcome');
    c1.close();
    const c2 = await RawConn.open(server.wsUrl);
    await c2.next('challenge');
    await expectCounted('replayed', 1, async () => {
      c2.send(frame);
      expect(await c2.next('error')).toMatchObject({ error: { code: 'REPLAYED' } });
      expect((await c2.waitClosed()).code).toBe(4401);
    });
  });

  it('a replayed request id is refused and does not apply twice', async () => {
    const c = await RawConn.open(server.wsUrl);
    c.send(await c.authFrame(allowed));
    await c.next('welcome');
    c.send(JSON.stringify({ t: 'req', id: 7, op: 'join' }));
    expect(await c.next('res')).toMatchObject({ id: 7, ok: true });
    await expectCounted('replayed', 2, async () => {
      c.send(JSON.stringify({ t: 'req', id: 7, op: 'leave' }));
      expect(await c.next('res')).toMatchObject({ id: 7, ok: false, error: { code: 'REPLAYED' } });
      c.send(JSON.stringify({ t: 'req', id: 3, op: 'leave' }));
      expect(await c.next('res')).toMatchObject({ id: 3, ok: false, error: { code: 'REPLAYED' } });
    });
    // The replayed `leave`s were not applied: `allowed` is still pending.
    const st = await server.status<ServerStatus>();
    expect(st.clients.find((x) => x.id === toHex(allowed.publicKey))?.state).toBe('pending');
    c.close();
  });

  it('malformed frames and bodies, naming the field', async () => {
    const c = await RawConn.open(server.wsUrl);
    c.send(await c.authFrame(allowed));
    await c.next('welcome');
    await expectCounted('malformed', 5, async () => {
      c.send('{not json');
      expect(await c.next('error')).toMatchObject({ error: { code: 'MALFORMED_MESSAGE' } });
      c.send(JSON.stringify({ t: 'req', id: 10, op: 'teleport' }));
      const r1 = await c.next('res');
      expect(r1).toMatchObject({ id: 10, ok: false, error: { code: 'MALFORMED_MESSAGE' } });
      expect(String((r1.error as { message: string }).message)).toMatch(/^message\.op:/);
      c.send(JSON.stringify({ t: 'req', id: 11, op: 'warmupWitness', body: { index: 'zero' } }));
      const r2 = await c.next('res');
      expect(r2).toMatchObject({ id: 11, ok: false, error: { code: 'MALFORMED_MESSAGE' } });
      expect(String((r2.error as { message: string }).message)).toMatch(/warmupWitness body\.index/);
      c.send(JSON.stringify({ t: 'req', id: 12, op: 'join', body: { extra: 1 } }));
      expect(await c.next('res')).toMatchObject({ id: 12, ok: false, error: { code: 'MALFORMED_MESSAGE' } });
      c.ws.send(Buffer.from([1, 2, 3]), { binary: true });
      expect(await c.next('error')).toMatchObject({ error: { code: 'MALFORMED_MESSAGE' } });
    });
    c.close();
  });

  it('an oversized message closes the socket with 1009', async () => {
    const c = await RawConn.open(server.wsUrl);
    c.send(await c.authFrame(allowed));
    await c.next('welcome');
    await expectCounted('oversized', 1, async () => {
      c.send(JSON.stringify({ t: 'req', id: 1, op: 'join', body: 'x'.repeat(MAX_BYTES + 1) }));
      expect((await c.waitClosed()).code).toBe(1009);
    });
  });

  it('a key off the allowlist is refused; the client surfaces NOT_ALLOWLISTED', async () => {
    await expectCounted('notAllowlisted', 1, async () => {
      const e = await LocalCoordinatorClient.connect({ url: server.wsUrl, keypair: stranger }).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(isCoordinatorClientError(e, 'NOT_ALLOWLISTED')).toBe(true);
    });
  });

  it('no auth answer in time closes the socket', async () => {
    const c = await RawConn.open(server.wsUrl);
    await c.next('challenge');
    await expectCounted('authTimeout', 1, async () => {
      expect((await c.waitClosed()).code).toBe(4408);
    });
  });

  it('requests over the per-key rate limit get RATE_LIMITED', async () => {
    const c = await RawConn.open(server.wsUrl);
    c.send(await c.authFrame(limited));
    await c.next('welcome');
    // Burst 10, refill 1/s: of 20 back-to-back requests at least 20 − 10 − (refill during the burst) are refused.
    for (let id = 1; id <= 20; id++) c.send(JSON.stringify({ t: 'req', id, op: 'join' }));
    const results: Record<string, unknown>[] = [];
    for (let i = 0; i < 20; i++) results.push(await c.next('res'));
    const limitedN = results.filter((r) => (r.error as { code?: string })?.code === 'RATE_LIMITED').length;
    expect(limitedN).toBeGreaterThanOrEqual(8);
    expect(limitedN).toBeLessThanOrEqual(10);
    expect((await counters()).rateLimited).toBeGreaterThanOrEqual(limitedN);
    c.close();
  });

  it('HTTP: only GET/HEAD, unknown paths 404, status is JSON', async () => {
    expect((await fetch(`${server.url}/status`, { method: 'POST', body: 'x' })).status).toBe(405);
    expect((await fetch(`${server.url}/nope`)).status).toBe(404);
    expect(await (await fetch(`${server.url}/healthz`)).text()).toBe('ok');
  });

  it('after all of that, the server is up and an honest client works normally', async () => {
    const c = await LocalCoordinatorClient.connect<CoordinatorState>({ url: server.wsUrl, keypair: honest });
    const ack = await c.join();
    const u = await c.waitFor((x) => x.version >= ack.version);
    // Exactly the clients whose joins were accepted are pending (the raw `allowed` and `limited`, and this one).
    expect([...u.state.pending].sort()).toEqual(
      [toHex(allowed.publicKey), toHex(limited.publicKey), c.id].sort(),
    );
    const st = await server.status<ServerStatus>();
    expect(st.runState).toBe('WaitingForMembers');
    expect(st.rejections.coordinatorRejected).toBe(0);
    await c.close();
  });
});
