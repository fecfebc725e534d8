import { readdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { DataProviderError, isDataProviderError } from './errors.js';
import { MANIFEST_FILE, parseManifest, type ShardManifest } from './manifest.js';
import { prepare } from './prepare.js';
import type { ProgressSink } from './progress.js';

/** Options of {@link ensureDefaultDataset}. */
export interface DefaultDatasetOptions {
  /** Cache root. Default `$PSYCHE_DATA_CACHE`, else `~/.cache/psyche/data`. */
  cacheDir?: string;
  /** Directory holding TypeScript's `lib.*.d.ts`. Default `$PSYCHE_TS_LIB_DIR`, else resolved from the installed `typescript` package. */
  typescriptLibDir?: string;
  /** Tokens per shard. Default 2^20. */
  shardTokens?: number;
  /** `true` draws a bar on stderr. */
  progress?: boolean | ProgressSink;
  /** How long to wait for another process that is building the same cache entry. Default 300000. */
  lockWaitMs?: number;
}

/** Where the default dataset lives and what it holds. */
export interface DefaultDataset {
  /** Shard directory (open it with `openLocalShards`). */
  dir: string;
  manifest: ShardManifest;
  /** The input files, in order. */
  files: string[];
  /** Version of the `typescript` package the text came from. */
  typescriptVersion: string;
}

/** Pattern of the files that make up the default dataset (matched against names in the lib directory). */
export const DEFAULT_DATASET_FILE_PATTERN = /^lib\.(?:.+\.)?d\.ts$/;

/** Finds TypeScript's `lib` directory: explicit option, `$PSYCHE_TS_LIB_DIR`, then module resolution from here and from the cwd. */
export function resolveTypescriptLibDir(explicit?: string): string {
  const dir = explicit ?? process.env.PSYCHE_TS_LIB_DIR;
  if (dir) return resolve(dir);
  for (const from of [import.meta.url, join(process.cwd(), 'noop.js')]) {
    try {
      return join(dirname(createRequire(from).resolve('typescript/package.json')), 'lib');
    } catch {
      // try the next base
    }
  }
  throw new DataProviderError(
    'NOT_FOUND',
    'the default dataset needs the TypeScript lib files: install the `typescript` package or pass typescriptLibDir (--ts-lib-dir, $PSYCHE_TS_LIB_DIR)',
    { parameter: 'typescriptLibDir' },
  );
}

/**
 * Builds (once) and returns the embedded default dataset: every `lib.*.d.ts` file of the installed
 * TypeScript package (the ECMAScript/DOM standard library declarations, ~3 MB of English doc comments
 * and typed code), in file-name order, tokenized with the built-in byte tokenizer, one document per file.
 * Works offline on any machine with the repo's dependencies. Cached under
 * `<cacheDir>/default-ts<version>-byte`; a second call only reads the manifest.
 *
 * @example
 * ```ts
 * import { ensureDefaultDataset, openLocalShards, createTokenDataset } from '@psyche/data-provider';
 * const { dir } = await ensureDefaultDataset();
 * const ds = createTokenDataset(await openLocalShards(dir), { seqLen: 128, shuffleSeed: 1 });
 * ```
 * @throws {DataProviderError} `NOT_FOUND` when no TypeScript lib directory is found
 * @since 0.1.0
 */
export async function ensureDefaultDataset(options: DefaultDatasetOptions = {}): Promise<DefaultDataset> {
  const libDir = resolveTypescriptLibDir(options.typescriptLibDir);
  const names = await readdir(libDir).catch((cause: unknown) => {
    throw new DataProviderError(
      'NOT_FOUND',
      `typescriptLibDir ${libDir} cannot be read`,
      { parameter: 'typescriptLibDir', path: libDir },
      { cause },
    );
  });
  const files = names
    .filter((n) => DEFAULT_DATASET_FILE_PATTERN.test(n))
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .map((n) => join(libDir, n));
  if (files.length === 0) {
    throw new DataProviderError('NOT_FOUND', `typescriptLibDir ${libDir} holds no lib.*.d.ts file`, {
      parameter: 'typescriptLibDir',
      path: libDir,
    });
  }
  let version = 'unknown';
  try {
    version =
      (JSON.parse(await readFile(join(libDir, '..', 'package.json'), 'utf8')) as { version?: string })
        .version ?? 'unknown';
  } catch {
    // an explicit directory outside a package: keep "unknown"
  }
  const cacheDir = resolve(
    options.cacheDir ?? process.env.PSYCHE_DATA_CACHE ?? join(homedir(), '.cache', 'psyche', 'data'),
  );
  const dir = join(cacheDir, `default-ts${version}-byte`);
  const existing = await readFile(join(dir, MANIFEST_FILE), 'utf8').catch(() => null);
  if (existing !== null) {
    try {
      const manifest = parseManifest(JSON.parse(existing), join(dir, MANIFEST_FILE));
      return { dir, manifest, files, typescriptVersion: version };
    } catch {
      // fall through: prepare() rejects or rebuilds
    }
  }
  const waitMs = options.lockWaitMs ?? 300_000;
  const started = Date.now();
  for (;;) {
    try {
      const res = await prepare({
        inputs: files,
        outDir: dir,
        format: 'text',
        shardTokens: options.shardTokens ?? 2 ** 20,
        progress: options.progress ?? false,
        source: { dataset: 'psyche-default', typescriptVersion: version },
      });
      return { dir, manifest: res.manifest!, files, typescriptVersion: version };
    } catch (e) {
      // Another process (e.g. a second local node) is building it: wait for it, then reuse its result.
      if (!isDataProviderError(e, 'PREPARE_LOCKED') || Date.now() - started > waitMs) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
