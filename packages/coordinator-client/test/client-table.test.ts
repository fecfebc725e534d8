import type { CoordinatorState } from '@psyche/coordinator';
import { afterEach, describe, expect, it } from 'vitest';
import { generateKeypair } from '../src/keys.js';
import { LocalCoordinatorClient } from '../src/local-client.js';
import type { PsychePayloads } from '../src/psyche-engine.js';
import type { ServerStatus } from '../src/server.js';
import { ServerProcess, testRunToml } from './helpers/server-process.js';

type Client = LocalCoordinatorClient<CoordinatorState, PsychePayloads>;
const servers: ServerProcess[] = [];
const clients: Client[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(servers.splice(0).map((s) => s.dispose()));
});

function connect(url: string): Promise<Client> {
  return LocalCoordinatorClient.connect<CoordinatorState, PsychePayloads>({
    url,
    keypair: generateKeypair(),
  }).then((c) => {
    clients.push(c);
    return c;
  });
}

/** Polls `/status` until `pred` holds (or the signal fires). */
async function statusWhen(s: ServerProcess, pred: (st: ServerStatus) => boolean): Promise<ServerStatus> {
  const signal = AbortSignal.timeout(20_000);
  for (;;) {
    const st = await s.status<ServerStatus>();
    if (pred(st)) return st;
    signal.throwIfAborted();
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('per-key table bounds', () => {
  it('more keys than client_table_max: the table stays bounded, evictions are counted, connected clients keep working', async () => {
    const MAX = 8;
    const KEYS = 30;
    const s = new ServerProcess(
      testRunToml({ runId: 'table-cap', initMinClients: 50, server: { client_table_max: MAX } }),
    );
    servers.push(s);
    await s.start();
    // Honest clients stay connected throughout: their entries (bucket, skew) must survive the churn.
    const honest = [await connect(s.wsUrl), await connect(s.wsUrl)];
    // An "attacker" mints fresh keys, each authenticating once and disconnecting, 5 at a time.
    for (let i = 0; i < KEYS; i += 5) {
      const batch = await Promise.all(Array.from({ length: 5 }, () => connect(s.wsUrl)));
      await Promise.all(batch.map((c) => c.close()));
      const st = await s.status<ServerStatus>();
      expect(st.clientTable.size).toBeLessThanOrEqual(MAX);
    }
    const st = await statusWhen(s, (x) => x.connections.authenticated === honest.length);
    expect(st.clientTable).toEqual({
      size: MAX,
      max: MAX,
      // 2 honest + 30 minted keys, 8 kept.
      evictions: honest.length + KEYS - MAX,
    });
    // The honest clients still work: requests are accepted and their table entries (skew) are live.
    for (const c of honest) {
      const ack = await c.join();
      await c.waitFor((u) => u.version >= ack.version);
    }
    const after = await s.status<ServerStatus>();
    for (const c of honest) {
      const row = after.clients.find((r) => r.id === c.id);
      expect(row?.connected).toBe(true);
      expect(row?.state).toBe('pending');
      expect(row?.clockSkewMs).not.toBeNull();
    }
    expect(after.clientTable.size).toBeLessThanOrEqual(MAX);
  });

  it('disconnected keys idle past client_idle_ttl_secs are evicted; connected ones are kept', async () => {
    const s = new ServerProcess(
      testRunToml({ runId: 'table-ttl', initMinClients: 50, server: { client_idle_ttl_secs: 1 } }),
    );
    servers.push(s);
    await s.start();
    const honest = await connect(s.wsUrl);
    const gone = await Promise.all(Array.from({ length: 4 }, () => connect(s.wsUrl)));
    await Promise.all(gone.map((c) => c.close()));
    const st = await statusWhen(s, (x) => x.clientTable.evictions >= 4);
    expect(st.clientTable.size).toBe(1);
    expect(st.clientTable.evictions).toBe(4);
    // The idle TTL also passes for the connected (silent) honest client; it is never evicted.
    await new Promise((r) => setTimeout(r, 1500));
    expect((await s.status<ServerStatus>()).clientTable).toMatchObject({ size: 1, evictions: 4 });
    const ack = await honest.join();
    expect(ack.version).toBeGreaterThan(0);
  });
});
