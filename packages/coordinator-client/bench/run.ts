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
import { generateKeypair } from '../src/keys.js';
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

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

async function benchSize(n: number, intervalMs: number): Promise<Result[]> {
  const dir = mkdtempSync(join(tmpdir(), 'cc-bench-'));
  mkdirSync(join(dir, 'data'));
  const { child, wsUrl } = await startServer(dir, intervalMs);
  try {
    const t0 = performance.now();
    const clients: LocalCoordinatorClient[] = [];
    // Connect in waves of 50 so the accept backlog and the auth signatures stay bounded.
    for (let i = 0; i < n; i += 50) {
      const wave = Math.min(50, n - i);
      clients.push(
        ...(await Promise.all(
          Array.from({ length: wave }, () =>
            LocalCoordinatorClient.connect({
              url: wsUrl,
              keypair: generateKeypair(),
              requestTimeoutMs: 120_000,
            }),
          ),
        )),
      );
    }
    const connectMs = performance.now() - t0;

    // Requests/s: concurrency n, each client alternates join/leave.
    const r0 = performance.now();
    await Promise.all(
      clients.map(async (c) => {
        for (let k = 0; k < REQUESTS_PER_CLIENT; k++) await (k % 2 === 0 ? c.join() : c.leave());
      }),
    );
    const reqSeconds = (performance.now() - r0) / 1000;
    const total = n * REQUESTS_PER_CLIENT;

    // Broadcast latency: one change, time until every client has decoded it.
    const latencies: number[] = [];
    for (let rep = 0; rep < BROADCAST_REPS; rep++) {
      // Join then leave with the same client: both change the state.
      const target = clients[Math.floor(rep / 2) % n]!;
      const start = performance.now();
      const arrived = clients.map(
        (c) =>
          new Promise<number>((resolve) => {
            const before = c.latest()?.version ?? 0;
            const off = c.on('state', (u) => {
              if (u.version > before) {
                off();
                resolve(performance.now() - start);
              }
            });
          }),
      );
      await (rep % 2 === 0 ? target.join() : target.leave());
      latencies.push(...(await Promise.all(arrived)));
    }
    latencies.sort((a, b) => a - b);
    await Promise.all(clients.map((c) => c.close()));
    const params = { clients: n, broadcast_interval_ms: intervalMs };
    return [
      { name: 'connect + authenticate all clients', value: round(connectMs), unit: 'ms', params },
      {
        name: 'requests/s (join/leave, fsync group commit, ack after durable)',
        value: round(total / reqSeconds),
        unit: 'req/s',
        params: { ...params, requests: total, concurrency: n },
      },
      {
        name: 'state-broadcast latency p50 (request sent → client decoded new state)',
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
for (const intervalMs of INTERVALS) {
  for (const n of SIZES) {
    const r = await benchSize(n, intervalMs);
    for (const x of r)
      console.log(`${x.name} [${n} clients, broadcast_interval_ms ${intervalMs}]: ${x.value} ${x.unit}`);
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
    'Server in a child process, all clients in the bench process, same 2-core machine (shared with other work while measured): numbers are lower bounds.',
  results,
};
const dest = join(repoRoot, 'bench-results', 'coordinator-client.json');
mkdirSync(join(repoRoot, 'bench-results'), { recursive: true });
writeFileSync(dest, `${JSON.stringify(out, null, 2)}\n`);
console.log(`wrote ${dest}`);
process.exit(0);
