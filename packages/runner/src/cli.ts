import { isRunnerError, RunnerError } from './errors.js';

// Commands load their dependencies lazily: `coordinator serve` or `keygen` never load tfjs or libp2p.

/** Usage text of the `psyche` CLI. */
export const USAGE = `usage: psyche <command> [options]

  run --config <node.toml> [--json]        run a training node until the run finishes
      [--backend solana --rpc <URL> [--rpc <URL2> ...] --run-id <ID> [--coordinator-account <PUBKEY>]]
                                           ... coordinated on chain (RPC fallbacks in order)
  solana create-run | update-config | set-paused
                                           operator transactions of an on-chain run (psyche solana --help)
  coordinator serve --config <run.toml>    run the coordinator server (also: validate, inspect, keygen)
  local-testnet --nodes <N> [--steps S] [--dir D] [--json]
                                           a coordinator and N nodes on 127.0.0.1 training the default model
  data prepare <inputs...> --out <dir>     tokenize text into shards (also: prepare --default, serve)
  keygen --out <keypair.json>              write a new Solana-format ed25519 keypair; prints the public key
  status --url <http://host:port>          print the coordinator's /status
`;

/** Output sinks of the CLI (injectable for tests). */
export interface CliIo {
  out: (line: string) => void;
  err: (line: string) => void;
}

function flag(args: readonly string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i >= 0) return args[i + 1];
  return args.find((a) => a.startsWith(`${name}=`))?.slice(name.length + 1);
}

function intFlag(args: readonly string[], name: string, def: number, min: number, max: number): number {
  const v = flag(args, name);
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new RunnerError('INVALID_ARGUMENT', `${name}: expected an integer in [${min}, ${max}], got ${v}`, {
      field: name,
    });
  }
  return n;
}

/**
 * Runs the `psyche` CLI. Resolves with the exit code; long-running commands (`run`, `coordinator serve`,
 * `local-testnet`) resolve when they end (`signal` or SIGINT/SIGTERM handled by `bin.ts`).
 */
export async function runCli(
  argv: readonly string[],
  io: CliIo = { out: (l) => process.stdout.write(`${l}\n`), err: (l) => process.stderr.write(`${l}\n`) },
  signal?: AbortSignal,
): Promise<number> {
  const [cmd, ...args] = argv;
  try {
    switch (cmd) {
      case 'run': {
        const path = flag(args, '--config');
        if (!path) throw new RunnerError('INVALID_ARGUMENT', '--config: missing', { field: '--config' });
        const backend = flag(args, '--backend') ?? 'local';
        if (backend !== 'local' && backend !== 'solana')
          throw new RunnerError('INVALID_ARGUMENT', `--backend: expected local or solana, got ${backend}`, {
            field: '--backend',
          });
        const { loadNodeConfig } = await import('./config.js');
        const { runNode } = await import('./node-runner.js');
        if (backend === 'solana') {
          const { connectSolanaClient, solanaBackendFromFlags } = await import('./solana.js');
          const chain = solanaBackendFromFlags(args);
          const config = loadNodeConfig(path, { backend: 'solana', runId: chain.runId });
          await runNode(config, {
            json: args.includes('--json'),
            io,
            connect: (keypair, s) => connectSolanaClient(keypair, chain, s),
            ...(signal ? { signal } : {}),
          });
          return 0;
        }
        const config = loadNodeConfig(path);
        await runNode(config, { json: args.includes('--json'), io, ...(signal ? { signal } : {}) });
        return 0;
      }
      case 'solana': {
        const { runSolanaCli } = await import('./solana.js');
        return await runSolanaCli(args, io);
      }
      case 'coordinator': {
        const { runCli: runCoordinatorCli } = await import('@psyche/coordinator-client');
        const result = await runCoordinatorCli(args, io);
        if (typeof result === 'number') return result;
        await new Promise<void>((resolve) => {
          if (signal?.aborted) resolve();
          signal?.addEventListener('abort', () => resolve(), { once: true });
        });
        await result.stop();
        return 0;
      }
      case 'data': {
        const { runDataCli } = await import('@psyche/data-provider');
        return await runDataCli(args);
      }
      case 'keygen': {
        const out = flag(args, '--out');
        if (!out) throw new RunnerError('INVALID_ARGUMENT', '--out: missing', { field: '--out' });
        const { generateKeypair, toHex, writeKeypairFile } = await import('@psyche/coordinator-client');
        const kp = generateKeypair();
        writeKeypairFile(out, kp);
        io.out(toHex(kp.publicKey));
        return 0;
      }
      case 'status': {
        const url = flag(args, '--url');
        if (!url) throw new RunnerError('INVALID_ARGUMENT', '--url: missing', { field: '--url' });
        let res: Response;
        try {
          res = await fetch(new URL('/status', url));
        } catch (cause) {
          throw new RunnerError(
            'INVALID_ARGUMENT',
            `--url: cannot reach ${url}: ${(cause as Error).message}`,
            {
              field: '--url',
            },
          );
        }
        const s = (await res.json()) as {
          runId: string;
          runState: string;
          epoch: number;
          step: number;
          clients: { id: string; state: string }[];
        };
        if (args.includes('--json')) io.out(JSON.stringify(s));
        else {
          io.out(
            `run ${s.runId}: ${s.runState}, epoch ${s.epoch}, step ${s.step}, ${s.clients.length} clients`,
          );
          for (const c of s.clients) io.out(`  ${c.id.slice(0, 16)}  ${c.state}`);
        }
        return 0;
      }
      case 'local-testnet': {
        const nodes = intFlag(args, '--nodes', 3, 1, 64);
        const steps = intFlag(args, '--steps', 20, 1, 1_000_000);
        const json = args.includes('--json');
        const dir = flag(args, '--dir');
        const { LocalTestnet } = await import('./testnet.js');
        const { formatEvent } = await import('./format.js');
        const net = new LocalTestnet({
          nodes,
          steps,
          ...(dir ? { dir } : {}),
          onLine: (source, line, ev) => {
            if (json) {
              io.out(ev ? JSON.stringify({ source, ...ev }) : JSON.stringify({ source, line }));
              return;
            }
            if (ev === undefined) {
              if (source !== 'coordinator') io.err(`[${source}] ${line}`);
              return;
            }
            const text =
              ev.event === 'started'
                ? `started ${String(ev.id).slice(0, 12)} (${String(ev.backend)}, ${String(ev.parameters)} parameters)`
                : formatEvent(ev as never);
            if (text !== undefined) io.out(`[${source}] ${text}`);
          },
        });
        io.err(`local testnet in ${net.dir}: coordinator + ${nodes} nodes, ${steps} steps`);
        await net.start();
        io.err(`coordinator at ${net.coordinatorUrl} (status: psyche status --url ${net.coordinatorUrl})`);
        const stopped = new AbortController();
        signal?.addEventListener('abort', () => stopped.abort(), { once: true });
        const failed = Promise.all(net.nodes.map((n) => n.exit)).then(() => 'nodes-exited' as const);
        const ended = await Promise.race([
          net.waitForFinish(stopped.signal).then(
            () => 'finished' as const,
            () => 'aborted' as const,
          ),
          failed,
        ]);
        stopped.abort();
        const s = await net.status().catch(() => undefined);
        // Nodes exit on their own once the run is Finished, possibly before the status poll saw it.
        const result = s?.runState === 'Finished' ? 'finished' : ended;
        await Promise.race([
          Promise.all(net.nodes.map((n) => n.exit)),
          new Promise((r) => setTimeout(r, 15_000)),
        ]);
        await net.stop();
        const hashes = new Set(
          net.nodes
            .map((n) => [...n.events].reverse().find((e) => e.event === 'finished')?.hash)
            .filter((h) => h !== undefined),
        );
        io.err(
          `testnet ${result}: run ${s?.runState ?? '?'} at step ${s?.step ?? '?'}; final parameter hashes: ${[...hashes].map((h) => String(h).slice(0, 16)).join(', ') || 'none'}`,
        );
        return result === 'finished' && hashes.size === 1 ? 0 : 1;
      }
      case undefined:
      case '--help':
      case '-h':
      case 'help':
        io.out(USAGE);
        return 0;
      default:
        io.err(`unknown command: ${cmd}\n${USAGE}`);
        return 2;
    }
  } catch (e) {
    if (
      isRunnerError(e) ||
      (e instanceof Error && 'code' in e && typeof (e as { code: unknown }).code === 'string')
    ) {
      io.err(`error: ${(e as Error).message}`);
      return isRunnerError(e, 'INVALID_ARGUMENT') || isRunnerError(e, 'INVALID_CONFIG') ? 2 : 1;
    }
    throw e;
  }
}
