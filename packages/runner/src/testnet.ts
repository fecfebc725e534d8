import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateKeypair, type Keypair, toHex, writeKeypairFile } from '@psyche/coordinator-client';
import { renderToml } from './config.js';
import { RunnerError } from './errors.js';

const here = fileURLToPath(import.meta.url);
const fromSource = here.endsWith('.ts');
/** The CLI entry of this package (source or built, matching this module). */
export const BIN_PATH = join(dirname(here), fromSource ? 'bin.ts' : 'bin.js');

function findRepoRoot(start: string): string | undefined {
  let dir = start;
  for (;;) {
    if (existsSync(join(dir, 'pnpm-workspace.yaml')) && existsSync(join(dir, 'scripts/polyfills.mjs')))
      return dir;
    const up = dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

/**
 * Node arguments that run the `psyche` CLI in a child process: from the workspace sources this is
 * `--conditions=@psyche/source --import tsx --import <repo>/scripts/polyfills.mjs src/bin.ts`; from `dist/` just
 * `dist/bin.js` (which installs its own polyfill).
 */
export function cliCommand(): string[] {
  if (!fromSource) return [BIN_PATH];
  const root = findRepoRoot(dirname(here));
  if (root === undefined) {
    throw new RunnerError(
      'STARTUP_FAILED',
      `cannot find the workspace root above ${here} to run from source`,
    );
  }
  const tsx = createRequire(join(root, 'package.json')).resolve('tsx');
  return [
    '--conditions=@psyche/source',
    '--import',
    tsx,
    '--import',
    join(root, 'scripts/polyfills.mjs'),
    BIN_PATH,
  ];
}

/** Options of {@link LocalTestnet}. */
export interface LocalTestnetOptions {
  /** Nodes started by {@link LocalTestnet.start}. */
  nodes: number;
  /** Steps to train (the run finishes after this many). Default 20. */
  steps?: number;
  /** Working directory (configs, keys, coordinator log, checkpoints). Default: a fresh temp dir. */
  dir?: string;
  /** Clients needed to start the first epoch. Default `nodes`. */
  initMinClients?: number;
  /** Seconds after which an epoch winds down. Default 3600. */
  epochTime?: number;
  /** Seconds a disconnected client stays before the coordinator withdraws it. Default 5. */
  withdrawAfterDisconnectSecs?: number;
  /** Sequences per step. Default 8. */
  batchSize?: number;
  /** Tokens per sequence. Default 64. */
  seqLen?: number;
  /** Learning rate (constant). Default 0.003. */
  lr?: number;
  /** Max RoundTrain seconds. Default 20. */
  maxRoundTrainTime?: number;
  /** tfjs backend of every node. Default wasm. */
  backend?: 'wasm' | 'cpu';
  /** Restrict the coordinator to the testnet's own node keys. Default true. */
  allowlist?: boolean;
  /** Extra allowlisted keys for nodes added later with {@link LocalTestnet.addNode}. Default 0. */
  extraNodes?: number;
  /** Called with every node log event (parsed JSON) and coordinator line. */
  onLine?: (source: string, line: string, event?: Record<string, unknown>) => void;
}

/** A node process of the testnet. */
export interface TestnetNode {
  readonly name: string;
  readonly id: string;
  readonly configPath: string;
  readonly keyPath: string;
  process: ChildProcess | undefined;
  /** Parsed JSON log events, in order. */
  readonly events: Record<string, unknown>[];
  stderr: string;
  exit: Promise<number | null>;
}

/**
 * A local Psyche network of real processes on 127.0.0.1: one coordinator (`psyche coordinator serve`) and N nodes
 * (`psyche run --json`), each with its own key, sharing a peers directory for discovery. Used by
 * `psyche local-testnet` and the end-to-end tests.
 *
 * @example
 * ```ts
 * const net = new LocalTestnet({ nodes: 3, steps: 20 });
 * await net.start();
 * await net.waitForFinish();
 * await net.stop();
 * ```
 */
export class LocalTestnet {
  readonly dir: string;
  readonly options: Required<Omit<LocalTestnetOptions, 'dir' | 'onLine'>> &
    Pick<LocalTestnetOptions, 'onLine'>;
  readonly nodes: TestnetNode[] = [];
  coordinatorUrl = '';
  wsUrl = '';
  coordinatorStderr = '';
  private coordinator: ChildProcess | undefined;
  private readonly keys: Keypair[] = [];
  private readonly allowed: string[] = [];

  constructor(options: LocalTestnetOptions) {
    if (!Number.isSafeInteger(options.nodes) || options.nodes < 1 || options.nodes > 64) {
      throw new RunnerError('INVALID_ARGUMENT', `nodes must be an integer in [1, 64], got ${options.nodes}`, {
        field: 'nodes',
      });
    }
    const steps = options.steps ?? 20;
    if (!Number.isSafeInteger(steps) || steps < 1 || steps > 1_000_000) {
      throw new RunnerError('INVALID_ARGUMENT', `steps must be an integer in [1, 1000000], got ${steps}`, {
        field: 'steps',
      });
    }
    const epochTime = options.epochTime ?? 3600;
    if (!Number.isSafeInteger(epochTime) || epochTime < 3 || epochTime > 0xffff_ffff) {
      throw new RunnerError(
        'INVALID_ARGUMENT',
        `epochTime must be an integer >= 3 seconds, got ${epochTime}`,
        {
          field: 'epochTime',
        },
      );
    }
    this.dir = options.dir ?? mkdtempSync(join(tmpdir(), 'psyche-testnet-'));
    mkdirSync(this.dir, { recursive: true });
    this.options = {
      nodes: options.nodes,
      steps,
      initMinClients: options.initMinClients ?? options.nodes,
      epochTime,
      withdrawAfterDisconnectSecs: options.withdrawAfterDisconnectSecs ?? 5,
      batchSize: options.batchSize ?? 8,
      seqLen: options.seqLen ?? 64,
      lr: options.lr ?? 0.003,
      maxRoundTrainTime: options.maxRoundTrainTime ?? 20,
      backend: options.backend ?? 'wasm',
      allowlist: options.allowlist ?? true,
      extraNodes: options.extraNodes ?? 0,
      onLine: options.onLine,
    };
    for (let i = 0; i < this.options.nodes + this.options.extraNodes; i++) this.keys.push(generateKeypair());
    this.allowed.push(...this.keys.map((k) => toHex(k.publicKey)));
  }

  /** The run config the coordinator serves. */
  runToml(): string {
    const o = this.options;
    return `run_id = "local-testnet"

[server]
host = "127.0.0.1"
port = 0
data_dir = "coordinator-data"
tick_interval_ms = 100
rate_limit_per_sec = 1000
rate_limit_burst = 1000
withdraw_after_disconnect_secs = ${o.withdrawAfterDisconnectSecs}
${o.allowlist ? `allowlist = [${this.allowed.map((a) => JSON.stringify(a)).join(', ')}]` : ''}

[coordinator]
warmup_time = ${Math.min(60, o.epochTime - 1)}
cooldown_time = 2
max_round_train_time = ${Math.min(o.maxRoundTrainTime, o.epochTime - 1)}
round_witness_time = 1
epoch_time = ${o.epochTime}
total_steps = ${o.steps}
init_min_clients = ${o.initMinClients}
min_clients = 1
witness_nodes = 0
global_batch_size_start = ${o.batchSize}
global_batch_size_end = ${o.batchSize}
waiting_for_members_extra_time = 1

[model]
max_seq_len = ${o.seqLen}

[model.lr_schedule]
type = "constant"
base_lr = ${o.lr}
`;
  }

  private spawnCli(args: string[]): ChildProcess {
    return spawn(process.execPath, [...cliCommand(), ...args], {
      cwd: this.dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  }

  /** Starts (or restarts, on the same port) the coordinator and waits for its listening line. */
  async startCoordinator(): Promise<void> {
    const configPath = join(this.dir, 'run.toml');
    let toml = this.runToml();
    if (this.coordinatorUrl)
      toml = toml.replace(/^port = 0$/m, `port = ${new URL(this.coordinatorUrl).port}`);
    writeFileSync(configPath, toml);
    const child = this.spawnCli(['coordinator', 'serve', '--config', configPath]);
    this.coordinator = child;
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      this.coordinatorStderr += d;
      for (const l of d.split('\n')) if (l) this.options.onLine?.('coordinator', l);
    });
    await new Promise<void>((resolve, reject) => {
      let out = '';
      const onExit = (code: number | null) =>
        reject(
          new RunnerError('CHILD_FAILED', `coordinator exited with ${code}:\n${this.coordinatorStderr}`),
        );
      child.once('exit', onExit);
      child.stdout!.setEncoding('utf8').on('data', (d: string) => {
        out += d;
        const line = out.split('\n').find((l) => l.startsWith('{"event":"listening"'));
        if (line) {
          const j = JSON.parse(line) as { url: string; wsUrl: string };
          this.coordinatorUrl = j.url;
          this.wsUrl = j.wsUrl;
          child.off('exit', onExit);
          resolve();
        }
      });
    });
  }

  /** Kills the coordinator process (`SIGKILL` by default) and waits for it to exit. */
  async killCoordinator(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const c = this.coordinator;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill(signal);
    await exited;
  }

  /**
   * Writes a node's key and config and spawns it. `key` defaults to the next pre-generated testnet key (an
   * allowlisted one); pass another to start an outsider.
   */
  addNode(extra: Record<string, unknown> = {}, key?: Keypair): TestnetNode {
    const i = this.nodes.length;
    const name = `node${i}`;
    const kp = key ?? this.keys[i] ?? generateKeypair();
    const keyPath = join(this.dir, `${name}.json`);
    writeKeypairFile(keyPath, kp);
    const configPath = join(this.dir, `${name}.toml`);
    writeFileSync(
      configPath,
      renderToml({
        coordinator_url: this.wsUrl,
        run_id: 'local-testnet',
        key_file: keyPath,
        peers_dir: join(this.dir, 'peers'),
        checkpoint_dir: join(this.dir, 'checkpoints', name),
        backend: this.options.backend,
        ...extra,
      }),
    );
    const node: TestnetNode = {
      name,
      id: toHex(kp.publicKey),
      configPath,
      keyPath,
      process: undefined,
      events: [],
      stderr: '',
      exit: Promise.resolve(null),
    };
    const child = this.spawnCli(['run', '--config', configPath, '--json']);
    node.process = child;
    node.exit = new Promise((r) => child.once('exit', (code) => r(code)));
    let buf = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      const lines = buf.split('\n');
      buf = lines.pop()!;
      for (const l of lines) {
        if (!l) continue;
        let ev: Record<string, unknown> | undefined;
        try {
          ev = JSON.parse(l) as Record<string, unknown>;
          node.events.push(ev);
        } catch {
          ev = undefined;
        }
        this.options.onLine?.(name, l, ev);
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      node.stderr += d;
      for (const l of d.split('\n')) if (l) this.options.onLine?.(name, l);
    });
    this.nodes.push(node);
    return node;
  }

  /** Starts the coordinator and the configured number of nodes. */
  async start(): Promise<void> {
    await this.startCoordinator();
    for (let i = 0; i < this.options.nodes; i++) this.addNode();
  }

  /** `GET /status` of the coordinator. */
  async status(): Promise<{
    runState: string;
    step: number;
    epoch: number;
    clients: { id: string; state: string }[];
  }> {
    const res = await fetch(`${this.coordinatorUrl}/status`);
    return (await res.json()) as {
      runState: string;
      step: number;
      epoch: number;
      clients: { id: string; state: string }[];
    };
  }

  /** Polls `/status` every 250 ms until `predicate` holds (or `signal` aborts). */
  async waitForStatus(
    predicate: (s: Awaited<ReturnType<LocalTestnet['status']>>) => boolean,
    signal?: AbortSignal,
  ): Promise<Awaited<ReturnType<LocalTestnet['status']>>> {
    for (;;) {
      signal?.throwIfAborted();
      try {
        const s = await this.status();
        if (predicate(s)) return s;
      } catch {
        // coordinator restarting
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** Waits until the run is Finished. */
  waitForFinish(signal?: AbortSignal): Promise<unknown> {
    return this.waitForStatus((s) => s.runState === 'Finished', signal);
  }

  /** Stops every process (SIGTERM, then SIGKILL after 5 s). */
  async stop(): Promise<void> {
    const procs = [...this.nodes.map((n) => n.process), this.coordinator].filter(
      (p): p is ChildProcess => p !== undefined && p.exitCode === null && p.signalCode === null,
    );
    await Promise.all(
      procs.map(
        (p) =>
          new Promise<void>((resolve) => {
            const t = setTimeout(() => p.kill('SIGKILL'), 5000);
            p.once('exit', () => {
              clearTimeout(t);
              resolve();
            });
            p.kill('SIGTERM');
          }),
      ),
    );
  }

  /** Reads a file of the testnet directory (for inspection). */
  read(path: string): string {
    return readFileSync(join(this.dir, path), 'utf8');
  }
}
