import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CoordinatorState } from '@psyche/coordinator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { parseRunConfig } from '../src/config.js';
import { generateKeypair } from '../src/keys.js';
import { LocalCoordinatorClient } from '../src/local-client.js';
import { psycheEngine } from '../src/psyche-engine.js';
import { type CoordinatorServer, startCoordinatorServer } from '../src/server.js';
import { testRunToml } from './helpers/server-process.js';

// The library entry (`startCoordinatorServer`) in this process: connection cap and disconnect withdrawal.
const dir = mkdtempSync(join(tmpdir(), 'cc-inproc-'));
let server: CoordinatorServer<CoordinatorState>;
beforeAll(async () => {
  const config = parseRunConfig(
    testRunToml({
      runId: 'inproc',
      initMinClients: 10,
      server: { max_connections: 2, withdraw_after_disconnect_secs: 1 },
    }),
  );
  server = await startCoordinatorServer({ config, engine: psycheEngine(), baseDir: dir });
});
afterAll(async () => {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function until(p: () => boolean, signal = AbortSignal.timeout(30_000)): Promise<void> {
  while (!p()) {
    if (signal.aborted) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('in-process server', () => {
  it('binds loopback and refuses connections over max_connections with 503 (counted)', async () => {
    expect(server.address.address).toBe('127.0.0.1');
    const a = await LocalCoordinatorClient.connect({ url: server.wsUrl, keypair: generateKeypair() });
    const b = await LocalCoordinatorClient.connect({ url: server.wsUrl, keypair: generateKeypair() });
    const status = await new Promise<number>((resolve) => {
      const ws = new WebSocket(server.wsUrl);
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('error', () => {});
    });
    expect(status).toBe(503);
    expect(server.status().rejections.tooManyConnections).toBe(1);
    await Promise.all([a.close(), b.close()]);
  });

  it('withdraws a client that stays disconnected past the grace period', async () => {
    await until(() => server.status().connections.open === 0);
    const c = await LocalCoordinatorClient.connect({ url: server.wsUrl, keypair: generateKeypair() });
    const ack = await c.join();
    await c.waitFor((u) => u.version >= ack.version);
    expect(server.status().clients.find((x) => x.id === c.id)).toMatchObject({
      state: 'pending',
      connected: true,
    });
    await c.close();
    // The withdrawal is a logged `leave` input: the client disappears from the run.
    await until(() => !server.currentState.pending.includes(c.id));
    expect(server.status().clients.find((x) => x.id === c.id)).toBeUndefined();
  });

  it('stop() closes client sockets with 1001; the client sees the close and can be closed', async () => {
    const c = await LocalCoordinatorClient.connect({ url: server.wsUrl, keypair: generateKeypair() });
    const closed = new Promise<{ code: number }>((r) => c.on('connection:close', r));
    await server.stop();
    expect((await closed).code).toBe(1001);
    await c.close();
    expect(c.connected).toBe(false);
  });
});
