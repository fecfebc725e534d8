import { join } from 'node:path';
import { type CoordinatorState, RunState } from '@psyche/coordinator';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeTagged } from '../src/codec.js';
import { loadRunConfig, parseRunConfig } from '../src/config.js';
import { isCoordinatorClientError } from '../src/errors.js';
import { generateKeypair, type Keypair, toHex } from '../src/keys.js';
import { LocalCoordinatorClient } from '../src/local-client.js';
import type { PsychePayloads } from '../src/psyche-engine.js';
import { psycheEngine } from '../src/psyche-engine.js';
import { inspectDataDir, type ServerStatus, stateHash } from '../src/server.js';
import { runSimulatedNode } from '../src/simulated-node.js';
import { ServerProcess, testRunToml } from './helpers/server-process.js';

type Client = LocalCoordinatorClient<CoordinatorState, PsychePayloads>;
const servers: ServerProcess[] = [];
const clients: Client[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(servers.splice(0).map((s) => s.dispose()));
});

function connect(url: string, keypair: Keypair = generateKeypair()): Promise<Client> {
  return LocalCoordinatorClient.connect<CoordinatorState, PsychePayloads>({
    url,
    keypair,
    reconnect: { initialDelayMs: 50, maxDelayMs: 500 },
  }).then((c) => {
    clients.push(c);
    return c;
  });
}

async function rejection(p: Promise<unknown>): Promise<{ code: string; details: Record<string, unknown> }> {
  try {
    await p;
  } catch (e) {
    if (isCoordinatorClientError(e)) return { code: e.code, details: { ...e.details } };
    throw e;
  }
  throw new Error('expected a rejection');
}

describe('admin requests (pause, resume, updateConfig)', () => {
  it('admin pauses, updates the config and resumes; non-admins are refused; a restart replays it all', async () => {
    const adminKey = generateKeypair();
    const s = new ServerProcess(
      testRunToml({
        runId: 'admin',
        initMinClients: 50,
        server: { admin_keys: [toHex(adminKey.publicKey)], snapshot_every: 100000 },
      }),
    );
    servers.push(s);
    await s.start();
    const signal = AbortSignal.timeout(60_000);
    const admin = await connect(s.wsUrl, adminKey);
    const other = await connect(s.wsUrl);
    expect(admin.latest()!.state.runState).toBe(RunState.WaitingForMembers);

    // Non-admin: refused with NOT_ADMIN and counted, nothing changes.
    expect((await rejection(other.pause())).code).toBe('NOT_ADMIN');
    expect((await rejection(other.updateConfig({ coordinator: { init_min_clients: 1 } }))).code).toBe(
      'NOT_ADMIN',
    );
    let st = await s.status<ServerStatus>();
    expect(st.rejections.notAdmin).toBe(2);
    expect(st.runState).toBe('WaitingForMembers');

    // updateConfig needs a Paused run.
    expect((await rejection(admin.updateConfig({ coordinator: { init_min_clients: 1 } }))).code).toBe(
      'COORDINATOR_REJECTED',
    );

    const paused = await admin.pause();
    await admin.waitFor((u) => u.version >= paused.version && u.state.runState === RunState.Paused, {
      signal,
    });

    // Bad updates name the field; a valid one is applied (and only the given fields change).
    const bad = await rejection(admin.updateConfig({ coordinator: { warmup_time: 100_000 } }));
    expect(bad.code).toBe('COORDINATOR_REJECTED');
    expect(bad.details.field).toBe('coordinator.warmup_time');
    const malformed = await rejection(
      admin.updateConfig({ coordinator: { bogus: 1 } } as unknown as Parameters<Client['updateConfig']>[0]),
    );
    expect(malformed.code).toBe('MALFORMED_MESSAGE');
    const before = admin.latest()!.state.config;
    const upd = await admin.updateConfig({ coordinator: { init_min_clients: 1, min_clients: 1 } });
    const u = await admin.waitFor((x) => x.version >= upd.version, { signal });
    expect(u.state.config).toEqual({ ...before, initMinClients: 1, minClients: 1 });
    expect(u.state.runState).toBe(RunState.Paused);

    // kill -9 (no final snapshot) and restart: the replayed log gives the same Paused state with the new config.
    const durable = inspectDataDir(loadRunConfig(s.configPath), psycheEngine(), join(s.dir, 'data'));
    expect(durable.stateHash).toBe(stateHash(encodeTagged(u.state)));
    await s.kill('SIGKILL');
    await s.restartSamePort();
    expect(s.listening).toEqual({ version: durable.version, stateHash: durable.stateHash });
    st = await s.status<ServerStatus>();
    expect(st.runState).toBe('Paused');
    expect(st.log.replayed).toBe(durable.version);

    // Resume (after the client reconnected by itself): the run continues with the updated config — one node is
    // now enough to start an epoch and train.
    const resumed = await admin.resume();
    await admin.waitFor((x) => x.version >= resumed.version, { signal });
    const ac = new AbortController();
    const run = runSimulatedNode(other, { signal: ac.signal });
    const trained = await other.waitFor(
      (x) => x.state.runState === RunState.RoundTrain || x.state.progress.step > 1,
      { signal },
    );
    expect(trained.state.config.initMinClients).toBe(1);
    ac.abort();
    await run;
  });

  it('server.admin_keys is validated and errors name the field', () => {
    const toml = testRunToml({ server: { admin_keys: ['nothex'] } });
    expect(() => parseRunConfig(toml, 'run.toml')).toThrow(
      /server\.admin_keys\.0: expected a 64-character hex/,
    );
    const key = toHex(generateKeypair().publicKey);
    expect(parseRunConfig(testRunToml({ server: { admin_keys: [key] } })).server.admin_keys).toEqual([key]);
  });

  it('an admin key may authenticate even when not on the allowlist', async () => {
    const adminKey = generateKeypair();
    const allowed = generateKeypair();
    const s = new ServerProcess(
      testRunToml({
        runId: 'admin-allow',
        initMinClients: 50,
        server: { admin_keys: [toHex(adminKey.publicKey)], allowlist: [toHex(allowed.publicKey)] },
      }),
    );
    servers.push(s);
    await s.start();
    const admin = await connect(s.wsUrl, adminKey);
    const ack = await admin.pause();
    expect(ack.version).toBeGreaterThan(0);
    const c = await connect(s.wsUrl, allowed);
    expect((await rejection(c.resume())).code).toBe('NOT_ADMIN');
  });
});
