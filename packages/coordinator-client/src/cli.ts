import { dirname, isAbsolute, resolve } from 'node:path';
import { loadRunConfig } from './config.js';
import { isCoordinatorClientError } from './errors.js';
import { generateKeypair, toHex, writeKeypairFile } from './keys.js';
import { psycheEngine } from './psyche-engine.js';
import { type CoordinatorServer, inspectDataDir, startCoordinatorServer } from './server.js';

const USAGE = `usage:
  psyche-coordinator serve --config <run.toml>      run the coordinator server
  psyche-coordinator validate --config <run.toml>   check a run config and exit
  psyche-coordinator inspect --config <run.toml> [--version N]
                                                    replay the data dir offline; print version and state hash
  psyche-coordinator keygen --out <keypair.json>    write a new Solana-format ed25519 keypair file`;

/** Streams the CLI writes to (injectable for tests). */
export interface CliIo {
  out: (line: string) => void;
  err: (line: string) => void;
}

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i >= 0) return args[i + 1];
  const eq = args.find((a) => a.startsWith(`${name}=`));
  return eq?.slice(name.length + 1);
}

/**
 * Runs the `psyche-coordinator` CLI. `serve` resolves with the running server (stop it with `server.stop()`); the
 * other commands resolve with an exit code.
 */
export async function runCli(
  argv: string[],
  io: CliIo = { out: (l) => process.stdout.write(`${l}\n`), err: (l) => process.stderr.write(`${l}\n`) },
): Promise<number | CoordinatorServer> {
  const [cmd, ...args] = argv;
  try {
    switch (cmd) {
      case 'serve':
      case 'validate': {
        const path = flag(args, '--config');
        if (!path) {
          io.err(`--config: missing\n${USAGE}`);
          return 2;
        }
        const config = loadRunConfig(path);
        const engine = psycheEngine();
        // Construct the initial state once: this runs the coordinator's own cross-field config validation.
        engine.initial(config, Math.floor(Date.now() / 1000));
        if (cmd === 'validate') {
          io.out(`${path}: ok (run ${config.run_id})`);
          return 0;
        }
        const server = await startCoordinatorServer({
          config,
          engine,
          baseDir: dirname(resolve(path)),
          logger: (l) => io.err(`[coordinator] ${l}`),
        });
        io.out(
          JSON.stringify({
            event: 'listening',
            url: server.url,
            wsUrl: server.wsUrl,
            version: server.currentVersion,
            stateHash: server.stateHash,
          }),
        );
        return server;
      }
      case 'inspect': {
        const path = flag(args, '--config');
        if (!path) {
          io.err(`--config: missing\n${USAGE}`);
          return 2;
        }
        const v = flag(args, '--version');
        const toVersion = v === undefined ? undefined : Number(v);
        if (toVersion !== undefined && (!Number.isSafeInteger(toVersion) || toVersion < 0)) {
          io.err(`--version: expected a non-negative integer, got ${v}`);
          return 2;
        }
        const config = loadRunConfig(path);
        const dir = isAbsolute(config.server.data_dir)
          ? config.server.data_dir
          : resolve(dirname(resolve(path)), config.server.data_dir);
        const r = inspectDataDir(config, psycheEngine(), dir, toVersion);
        io.out(
          JSON.stringify({
            version: r.version,
            stateHash: r.stateHash,
            tornBytesDropped: r.tornBytesDropped,
          }),
        );
        return 0;
      }
      case 'keygen': {
        const out = flag(args, '--out');
        if (!out) {
          io.err(`--out: missing\n${USAGE}`);
          return 2;
        }
        const kp = generateKeypair();
        writeKeypairFile(out, kp);
        io.out(toHex(kp.publicKey));
        return 0;
      }
      default:
        io.err(USAGE);
        return cmd === undefined || cmd === '--help' || cmd === '-h' ? 0 : 2;
    }
  } catch (e) {
    if (
      isCoordinatorClientError(e) ||
      (e instanceof Error && (e as { name?: string }).name === 'CoordinatorError')
    ) {
      io.err(`error: ${(e as Error).message}`);
      return 1;
    }
    throw e;
  }
}
