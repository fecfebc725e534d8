/**
 * Benchmark of the local coordinator server, run as a real child process on 127.0.0.1, with N authenticated
 * WebSocket clients in this process (N = 256 and 1 000):
 *
 * - requests/s: every client sends `join`/`leave` back to back (concurrency N); each is an accepted, fsync'd
 *   input followed by a tick, acknowledged after its group commit;
 * - state-broadcast latency: one client changes the state; time until each of the N clients has decoded the new
 *   version (p50/p99/max over clients and repetitions).
 *
 * Both with the default coalesced broadcasts (`broadcast_interval_ms = 50`) and with a broadcast after every
 * group commit (0). Every broadcast carries the whole state (with N pending ids here) to every client.
 *
 * Writes `bench-results/coordinator-client.json`. Run: `pnpm --filter @psyche/coordinator-client bench`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import { authMessage, fromHex, generateKeypair, sign, toHex } from '../src/keys.js';
import { LocalCoordinatorClient } from '../src/local-client.js';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const binPath = fileURLToPath(new URL('../src/bin.ts', import.meta.url));
const tsxLoader = createRequire(join(repoRoot, 'package.json')).resolve('tsx');
const polyfills = join(repoRoot, 'scripts/polyfills.mjs');
const SIZES = (process.env.BENCH_CLIENTS ?? '256,1000').split(',').map(Number);
// Even, so every client ends the request phase not pending.
const REQUESTS_PER_CLIENT = 2 * Math.ceil(Number(process.env.BENCH_REQUESTS ?? 20) / 2);
const BROADCAST_REPS = Number(process.env.BENCH_REPS ?? 10);
/** `server.broadcast_interval_ms` values: 50 is the default (coalesced), 0 broadcasts after every group commit. */
const INTERVALS = (process.env.BENCH_BROADCAST_MS ?? '50,0').split(',').map(Number);

interface Result {
  name: string;
  value: number;
  unit: string;
  params: Record<string, number | string>;
}

async function startServer(dir: string, intervalMs: number): Promise<{ child: ChildProcess; wsUrl: string }> {
  const config = join(dir, 'run.toml');
  writeFileSync(
    config,
    `run_id = "bench"
[server]
port = 0
data_dir = "data"
tick_interval_ms = 500
broadcast_interval_ms = ${intervalMs}
snapshot_every = 100000
rate_limit_per_sec = 1000000
rate_limit_burst = 1000000
max_connections = 5000
[coordinator]
warmup_time = 10
cooldown_time = 10
max_round_train_time = 10
round_witness_time = 5
epoch_time = 100
total_steps = 1000
init_min_clients = 5000
min_clients = 1
max_clients = 5000
global_batch_size_start = 8
global_batch_size_end = 8
`,
  );
  const child = spawn(
    process.execPath,
    [
      '--conditions=@psyche/source',
      '--import',
      tsxLoader,
      '--import',
      polyfills,
      binPath,
      'serve',
      '--config',
      config,
    ],
    { cwd: dir, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const wsUrl = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.once('exit', (c) => reject(new Error(`server exited ${c}`)));
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const line = out.split('\n').find((l) => l.startsWith('{"event":"listening"'));
      if (line) resolve((JSON.parse(line) as { wsUrl: string }).wsUrl);
    });
  });
  return { child, wsUrl };
}

/**
 * A minimal protocol client that authenticates, subscribes and reads only the version of each state frame (no
 * JSON decoding of the state): it measures the server's fan-out rather than this process's parsing of N copies.
 */
class LightClient {
  private ws!: WebSocket;
  private id = 0;
  private readonly pending = new Map<number, () => void>();
  version = 0;
  private waiters: { after: number; resolve: () => void }[] = [];

  static async connect(url: string): Promise<LightClient> {
    const c = new LightClient();
    const kp = generateKeypair();
    c.ws = new WebSocket(url, { perMessageDeflate: false });
    await new Promise<void>((resolve, reject) => {
      c.ws.on('error', reject);
      c.ws.on('message', (d) => {
        const text = d.toString();
        const m = /^\{"t":"state","version":(\d+),/.exec(text);
        if (m) {
          c.version = Math.max(c.version, Number(m[1]));
          const ready = c.waiters.filter((w) => c.version > w.after);
          c.waiters = c.waiters.filter((w) => c.version <= w.after);
          for (const w of ready) w.resolve();
          return;
        }
        const msg = JSON.parse(text) as {
          t: string;
          id?: number;
          nonce?: string;
          runId?: string;
          ok?: boolean;
        };
        if (msg.t === 'challenge') {
          const sig = sign(authMessage(msg.runId!, fromHex(msg.nonce, 32)!), kp);
          c.ws.send(JSON.stringify({ t: 'auth', pubkey: toHex(kp.publicKey), sig: toHex(sig) }));
        } else if (msg.t === 'welcome') {
          c.ws.send(JSON.stringify({ t: 'sub' }));
          resolve();
        } else if (msg.t === 'res') {
          if (!msg.ok) reject(new Error(JSON.stringify(msg)));
          c.pending.get(msg.id!)?.();
          c.pending.delete(msg.id!);
        }
      });
    });
    return c;
  }

  request(op: 'join' | 'leave'): Promise<void> {
    const id = ++this.id;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.ws.send(JSON.stringify({ t: 'req', id, op }));
    });
  }

  /** Resolves when a state newer than `after` arrived. */
  next(after: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.version > after) resolve();
      else this.waiters.push({ after, resolve });
    });
  }

  close(): void {
    this.ws.terminate();
  }
}

interface BenchClient {
  request(op: 'join' | 'leave'): Promise<unknown>;
  next(after: number): Promise<void>;
  readonly version: number;
  close(): unknown;
}

function wrapFull(c: LocalCoordinatorClient): BenchClient {
  return {
    request: (op) => (op === 'join' ? c.join() : c.leave()),
    next: (after) => c.waitFor((u) => u.version > after).then(() => {}),
    get version() {
      return c.latest()?.version ?? 0;
    },
    close: () => c.close(),
  };
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

async function benchSize(n: number, intervalMs: number, kind: 'light' | 'full'): Promise<Result[]> {
  const dir = mkdtempSync(join(tmpdir(), 'cc-bench-'));
  mkdirSync(join(dir, 'data'));
  const { child, wsUrl } = await startServer(dir, intervalMs);
  try {
    const t0 = performance.now();
    const clients: BenchClient[] = [];
    // Connect in waves of 50 so the accept backlog and the auth signatures stay bounded.
    for (let i = 0; i < n; i += 50) {
      const wave = Math.min(50, n - i);
      clients.push(
        ...(await Promise.all(
          Array.from({ length: wave }, () =>
            kind === 'light'
              ? LightClient.connect(wsUrl)
              : LocalCoordinatorClient.connect({
                  url: wsUrl,
                  keypair: generateKeypair(),
                  requestTimeoutMs: 120_000,
                }).then(wrapFull),
          ),
        )),
      );
    }
    const connectMs = performance.now() - t0;

    // Requests/s: concurrency n, each client alternates join/leave and waits for each ack.
    const r0 = performance.now();
    await Promise.all(
      clients.map(async (c) => {
        for (let k = 0; k < REQUESTS_PER_CLIENT; k++) await c.request(k % 2 === 0 ? 'join' : 'leave');
      }),
    );
    const reqSeconds = (performance.now() - r0) / 1000;
    const total = n * REQUESTS_PER_CLIENT;
    // Let the last broadcasts land before measuring latency.
    await new Promise((r) => setTimeout(r, 500));

    // Broadcast latency: one change, time until every client has the new version.
    const latencies: number[] = [];
    for (let rep = 0; rep < BROADCAST_REPS; rep++) {
      // Join then leave with the same client: both change the state.
      const target = clients[Math.floor(rep / 2) % n]!;
      const start = performance.now();
      const arrived = clients.map((c) => c.next(c.version).then(() => performance.now() - start));
      await target.request(rep % 2 === 0 ? 'join' : 'leave');
      latencies.push(...(await Promise.all(arrived)));
    }
    latencies.sort((a, b) => a - b);
    await Promise.all(clients.map((c) => c.close()));
    const params = {
      clients: n,
      client: kind === 'light' ? 'version-only reader' : 'LocalCoordinatorClient (decodes every state)',
      broadcast_interval_ms: intervalMs,
    };
    return [
      { name: 'connect + authenticate all clients', value: round(connectMs), unit: 'ms', params },
      {
        name: 'requests/s (join/leave, fsync group commit, ack after durable)',
        value: round(total / reqSeconds),
        unit: 'req/s',
        params: { ...params, requests: total, concurrency: n },
      },
      {
        name: 'state-broadcast latency p50 (request sent → client has new state)',
        value: round(quantile(latencies, 0.5)),
        unit: 'ms',
        params: { ...params, samples: latencies.length },
      },
      {
        name: 'state-broadcast latency p99',
        value: round(quantile(latencies, 0.99)),
        unit: 'ms',
        params: { ...params, samples: latencies.length },
      },
      {
        name: 'state-broadcast latency max',
        value: round(latencies[latencies.length - 1]!),
        unit: 'ms',
        params: { ...params, samples: latencies.length },
      },
    ];
  } finally {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

const results: Result[] = [];
const runs: ['light' | 'full', number][] = [
  ...INTERVALS.map((i) => ['light', i] as ['light', number]),
  ['full', 50],
];
for (const [kind, intervalMs] of runs) {
  for (const n of SIZES) {
    const r = await benchSize(n, intervalMs, kind);
    for (const x of r)
      console.log(
        `${x.name} [${n} ${kind} clients, broadcast_interval_ms ${intervalMs}]: ${x.value} ${x.unit}`,
      );
    results.push(...r);
  }
}
const out = {
  package: '@psyche/coordinator-client',
  date: new Date().toISOString(),
  machine: {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    node: process.version,
    backend: 'none (node ws + fsync)',
  },
  notes:
    'Server in a child process, all N clients in the bench process on the same 2-core machine (shared with other work while measured): numbers are lower bounds. "version-only reader" clients measure the server; LocalCoordinatorClient runs also include decoding N copies of every state in one process.',
  results,
};
const dest = join(repoRoot, 'bench-results', 'coordinator-client.json');
mkdirSync(join(repoRoot, 'bench-results'), { recursive: true });
writeFileSync(dest, `${JSON.stringify(out, null, 2)}\n`);
console.log(`wrote ${dest}`);
process.exit(0);
