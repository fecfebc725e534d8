import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('../../../../', import.meta.url));
const binPath = fileURLToPath(new URL('../../src/bin.ts', import.meta.url));
const polyfills = join(repoRoot, 'scripts/polyfills.mjs');
// tsx is a root devDependency: resolve its loader entry from the repo root, not from this package.
const tsxLoader = createRequire(join(repoRoot, 'package.json')).resolve('tsx');

/** Coordinator timings used by the process tests: whole seconds, as short as the state machine allows. */
export interface TestRunOptions {
  runId?: string;
  initMinClients?: number;
  minClients?: number;
  witnessNodes?: number;
  totalSteps?: number;
  epochTime?: number;
  warmupTime?: number;
  maxRoundTrainTime?: number;
  roundWitnessTime?: number;
  cooldownTime?: number;
  batchStart?: number;
  batchEnd?: number;
  extra?: string;
  server?: Record<string, string | number | string[]>;
}

/** Renders a run.toml for a test. */
export function testRunToml(o: TestRunOptions = {}): string {
  const server: Record<string, string | number | string[]> = {
    host: '127.0.0.1',
    port: 0,
    data_dir: 'data',
    tick_interval_ms: 100,
    snapshot_every: 50,
    rate_limit_per_sec: 1000,
    rate_limit_burst: 1000,
    ...o.server,
  };
  const v = (x: string | number | string[]) =>
    Array.isArray(x)
      ? `[${x.map((s) => JSON.stringify(s)).join(', ')}]`
      : typeof x === 'string'
        ? JSON.stringify(x)
        : String(x);
  return `run_id = ${JSON.stringify(o.runId ?? 'test-run')}

[server]
${Object.entries(server)
  .map(([k, x]) => `${k} = ${v(x)}`)
  .join('\n')}

[coordinator]
warmup_time = ${o.warmupTime ?? 2}
cooldown_time = ${o.cooldownTime ?? 1}
max_round_train_time = ${o.maxRoundTrainTime ?? 2}
round_witness_time = ${o.roundWitnessTime ?? 1}
epoch_time = ${o.epochTime ?? 4}
total_steps = ${o.totalSteps ?? 1000}
init_min_clients = ${o.initMinClients ?? 2}
min_clients = ${o.minClients ?? 1}
witness_nodes = ${o.witnessNodes ?? 0}
global_batch_size_start = ${o.batchStart ?? 8}
global_batch_size_end = ${o.batchEnd ?? 8}
waiting_for_members_extra_time = 1
${o.extra ?? ''}
`;
}

/** Runs the CLI (`src/bin.ts`) to completion as a child process. */
export function runCliProcess(
  args: string[],
  cwd: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      ['--conditions=@psyche/source', '--import', tsxLoader, '--import', polyfills, binPath, ...args],
      {
        cwd,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A coordinator server running as a real child process (`src/bin.ts serve`). */
export class ServerProcess {
  readonly dir: string;
  readonly configPath: string;
  private child: ChildProcess | undefined;
  url = '';
  wsUrl = '';
  stderr = '';
  /** The listening line of the last start: recovered version and state hash. */
  listening: { version: number; stateHash: string } = { version: -1, stateHash: '' };

  constructor(toml: string) {
    this.dir = mkdtempSync(join(tmpdir(), 'cc-server-'));
    this.configPath = join(this.dir, 'run.toml');
    writeFileSync(this.configPath, toml);
  }

  /** Spawns the server and resolves once it printed its listening line. */
  async start(): Promise<void> {
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
        this.configPath,
      ],
      { cwd: this.dir, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.child = child;
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      this.stderr += d;
    });
    await new Promise<void>((resolve, reject) => {
      let out = '';
      const onExit = (code: number | null) =>
        reject(new Error(`server exited with ${code} before listening:\n${this.stderr}`));
      child.once('exit', onExit);
      child.stdout!.setEncoding('utf8').on('data', (d: string) => {
        out += d;
        const line = out.split('\n').find((l) => l.startsWith('{"event":"listening"'));
        if (line && !this.url) {
          const j = JSON.parse(line) as { url: string; wsUrl: string; version: number; stateHash: string };
          this.url = j.url;
          this.wsUrl = j.wsUrl;
          this.listening = { version: j.version, stateHash: j.stateHash };
          child.off('exit', onExit);
          resolve();
        }
      });
    });
  }

  /** Restarts on the same port (so clients' URL stays valid). */
  async restartSamePort(): Promise<void> {
    const port = new URL(this.url).port;
    const { readFileSync } = await import('node:fs');
    const toml = readFileSync(this.configPath, 'utf8').replace(/^port = \d+$/m, `port = ${port}`);
    writeFileSync(this.configPath, toml);
    this.url = '';
    await this.start();
  }

  /** Sends a signal and waits for the process to exit; returns its exit code/signal. */
  async kill(signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) {
      return { code: child?.exitCode ?? null, signal: child?.signalCode ?? null };
    }
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
      child.once('exit', (code, sig) => r({ code, signal: sig })),
    );
    child.kill(signal);
    return exited;
  }

  /** Fetches `/status`. */
  async status<T = Record<string, unknown>>(): Promise<T> {
    const res = await fetch(`${this.url}/status`);
    return (await res.json()) as T;
  }

  /** Kills the process (if running) and removes its directory. */
  async dispose(): Promise<void> {
    await this.kill('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }
}
