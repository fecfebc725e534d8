#!/usr/bin/env node
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ensureDefaultDataset } from './default-dataset.js';
import { DataProviderError, isDataProviderError } from './errors.js';
import { prepare } from './prepare.js';
import { serveDirectory } from './server.js';
import { loadHuggingFaceTokenizer } from './tokenizer.js';

const USAGE = `psyche-data <command> [options]

Commands:
  prepare <inputs...> --out <dir>   tokenize files/dirs/globs into token shards
      --tokenizer <tokenizer.json>    Hugging Face tokenizer (default: built-in byte tokenizer)
      --tokenizer-config <file>       tokenizer_config.json (for eos_token)
      --format auto|text|jsonl        default auto (.jsonl/.ndjson are JSONL)
      --jsonl-field <name>            default "text"
      --skip-invalid-lines            skip (and count) bad JSONL lines instead of failing
      --token-bytes 2|4               default: 2 when the vocabulary fits
      --shard-tokens <n>              tokens per shard (default 33554432)
      --chunk-bytes <n>               hash chunk size (default 65536)
      --no-progress                   no progress bar on stderr
  prepare --default [--cache-dir <dir>] [--ts-lib-dir <dir>]
                                    build the embedded default dataset (TypeScript lib.*.d.ts)
  serve <dir> [--host 127.0.0.1] [--port 0]
                                    serve a shard directory over HTTP with Range support
`;

function int(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new DataProviderError(
      'INVALID_PARAMETER',
      `--${name} must be a non-negative integer, got ${JSON.stringify(v)}`,
      { parameter: `--${name}`, value: v },
    );
  }
  return n;
}

/**
 * Runs the `psyche-data` CLI with `argv` (without node and script). Returns the exit code; the serve
 * command resolves only when `signal` aborts. Used by the `psyche-data` bin and by the runner's
 * `psyche data …` command.
 *
 * @since 0.1.0
 */
export async function runDataCli(
  argv: readonly string[],
  io: { stdout?: NodeJS.WritableStream; stderr?: NodeJS.WritableStream; signal?: AbortSignal } = {},
): Promise<number> {
  const out = io.stdout ?? process.stdout;
  const err = io.stderr ?? process.stderr;
  const [command, ...rest] = argv;
  try {
    if (command === 'prepare') {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: {
          out: { type: 'string', short: 'o' },
          tokenizer: { type: 'string' },
          'tokenizer-config': { type: 'string' },
          format: { type: 'string' },
          'jsonl-field': { type: 'string' },
          'skip-invalid-lines': { type: 'boolean' },
          'token-bytes': { type: 'string' },
          'shard-tokens': { type: 'string' },
          'chunk-bytes': { type: 'string' },
          'no-progress': { type: 'boolean' },
          default: { type: 'boolean' },
          'cache-dir': { type: 'string' },
          'ts-lib-dir': { type: 'string' },
        },
      });
      const progress = !values['no-progress'];
      if (values.default) {
        const ds = await ensureDefaultDataset({
          ...(values['cache-dir'] ? { cacheDir: values['cache-dir'] } : {}),
          ...(values['ts-lib-dir'] ? { typescriptLibDir: values['ts-lib-dir'] } : {}),
          progress,
        });
        out.write(
          `${JSON.stringify({ dir: ds.dir, files: ds.files.length, totalTokens: ds.manifest.totalTokens, typescriptVersion: ds.typescriptVersion })}\n`,
        );
        return 0;
      }
      if (!values.out)
        throw new DataProviderError('INVALID_PARAMETER', 'prepare needs --out <dir>', { parameter: '--out' });
      if (positionals.length === 0)
        throw new DataProviderError(
          'INVALID_PARAMETER',
          'prepare needs at least one input file, directory or glob',
          { parameter: 'inputs' },
        );
      const tokenBytes = int('token-bytes', values['token-bytes']);
      if (tokenBytes !== undefined && tokenBytes !== 2 && tokenBytes !== 4) {
        throw new DataProviderError('INVALID_PARAMETER', `--token-bytes must be 2 or 4, got ${tokenBytes}`, {
          parameter: '--token-bytes',
          value: tokenBytes,
        });
      }
      const format = values.format ?? 'auto';
      if (format !== 'auto' && format !== 'text' && format !== 'jsonl') {
        throw new DataProviderError(
          'INVALID_PARAMETER',
          `--format must be auto, text or jsonl, got ${format}`,
          { parameter: '--format', value: format },
        );
      }
      const tokenizer = values.tokenizer
        ? await loadHuggingFaceTokenizer(
            values.tokenizer,
            values['tokenizer-config'] ? { configPath: values['tokenizer-config'] } : {},
          )
        : undefined;
      const shardTokens = int('shard-tokens', values['shard-tokens']);
      const chunkBytes = int('chunk-bytes', values['chunk-bytes']);
      const res = await prepare({
        inputs: positionals,
        outDir: values.out,
        format,
        progress,
        ...(values['jsonl-field'] ? { jsonlField: values['jsonl-field'] } : {}),
        ...(values['skip-invalid-lines'] ? { skipInvalidLines: true } : {}),
        ...(tokenizer ? { tokenizer } : {}),
        ...(tokenBytes ? { tokenBytes: tokenBytes as 2 | 4 } : {}),
        ...(shardTokens !== undefined ? { shardTokens } : {}),
        ...(chunkBytes !== undefined ? { chunkBytes } : {}),
        ...(io.signal ? { signal: io.signal } : {}),
      });
      out.write(
        `${JSON.stringify({
          dir: values.out,
          complete: res.complete,
          resumed: res.resumed,
          shards: res.manifest?.shards.length,
          totalTokens: res.manifest?.totalTokens,
          tokenizer: res.manifest?.tokenizer.id,
          skippedLines: res.skippedLines,
        })}\n`,
      );
      return 0;
    }
    if (command === 'serve') {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: { host: { type: 'string' }, port: { type: 'string' } },
      });
      if (positionals.length !== 1)
        throw new DataProviderError('INVALID_PARAMETER', 'serve needs exactly one directory', {
          parameter: 'dir',
        });
      const port = int('port', values.port) ?? 0;
      if (port > 65535)
        throw new DataProviderError('INVALID_PARAMETER', `--port must be <= 65535, got ${port}`, {
          parameter: '--port',
          value: port,
        });
      const server = await serveDirectory({ dir: positionals[0]!, host: values.host ?? '127.0.0.1', port });
      out.write(`${JSON.stringify({ url: server.url, port: server.port })}\n`);
      await new Promise<void>((ok) => {
        if (io.signal?.aborted) return ok();
        io.signal?.addEventListener('abort', () => ok(), { once: true });
        if (!io.signal) {
          process.once('SIGINT', () => ok());
          process.once('SIGTERM', () => ok());
        }
      });
      await server.close();
      return 0;
    }
    if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
      out.write(USAGE);
      return command === undefined ? 2 : 0;
    }
    err.write(`psyche-data: unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
    return 2;
  } catch (e) {
    if (isDataProviderError(e)) {
      err.write(`psyche-data: error ${e.code}: ${e.message}\n`);
      return 1;
    }
    if ((e as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')) {
      err.write(`psyche-data: ${(e as Error).message}\n\n${USAGE}`);
      return 2;
    }
    throw e;
  }
}

function isMain(): boolean {
  const argv1 = process.argv[1];
  if (!argv1) return false;
  try {
    return realpathSync(argv1) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  runDataCli(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`psyche-data: unexpected error: ${(e as Error).stack ?? String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
