import { createHash } from 'node:crypto';
import { type FileHandle, mkdir, open, readdir, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { assertInteger, DataProviderError, ErrorCounter } from './errors.js';
import { expandInputs } from './internal/files.js';
import { chunkHashes, sha256Hex, tokensToLeBytes } from './internal/hash.js';
import {
  MANIFEST_FILE,
  MANIFEST_FORMAT,
  parseManifest,
  type ShardInfo,
  type ShardManifest,
} from './manifest.js';
import { createProgressBar, type ProgressSink } from './progress.js';
import { createByteTokenizer, type TextTokenizer } from './tokenizer.js';

/** Options of {@link prepare}. */
export interface PrepareOptions {
  /** Files, directories (all files below, sorted) or globs (`data/**\/*.jsonl`). Order is kept. */
  inputs: readonly string[];
  /** Output directory for `shard-NNNNN.bin` and `manifest.json`. Created if missing. */
  outDir: string;
  /** `auto` (default): `.jsonl`/`.ndjson` files are JSONL, everything else plain text. */
  format?: 'auto' | 'text' | 'jsonl';
  /** JSONL field holding the document text. Default `text`. */
  jsonlField?: string;
  /** Skip (and count) JSONL lines that are not JSON objects with a string field, instead of throwing. Default false. */
  skipInvalidLines?: boolean;
  /** Tokenizer. Default: the built-in byte tokenizer. */
  tokenizer?: TextTokenizer;
  /** 2 (u16) or 4 (u32) bytes per token. Default: 2 when the vocabulary fits in 16 bits. */
  tokenBytes?: 2 | 4;
  /** Tokens per shard (the last shard may be shorter). Default 2^25 (64 MiB of u16). */
  shardTokens?: number;
  /** Chunk size for the per-chunk hashes, a multiple of 4. Default 65536. */
  chunkBytes?: number;
  /** `true` draws a bar on stderr; or pass a sink. Default false. */
  progress?: boolean | ProgressSink;
  /** Stops after writing this many shards in this call (the run stays resumable). For staged runs and tests. */
  maxShards?: number;
  /** Provenance copied into `manifest.source`. */
  source?: Record<string, unknown>;
  signal?: AbortSignal;
}

/** Result of {@link prepare}. */
export interface PrepareResult {
  /** The manifest, once every input is consumed (`complete`). */
  manifest: ShardManifest | null;
  /** True when `manifest.json` was written. */
  complete: boolean;
  /** True when this call continued an interrupted run. */
  resumed: boolean;
  /** Shards written by this call. */
  shardsWritten: number;
  /** JSONL lines skipped because they were invalid (with `skipInvalidLines`). */
  skippedLines: number;
  /** Counted input errors by code. */
  errors: ErrorCounter;
}

interface PrepareState {
  fingerprint: string;
  shards: ShardInfo[];
  cursor: { fileIndex: number; offset: number };
  /** Tokens already produced for the next shard, base64 of little-endian ids. */
  carry: string;
}

const STATE_FILE = '.prepare-state.json';
const LOCK_FILE = '.prepare.lock';
const UNIT_BYTES = 64 * 1024;

/** Name of shard `i`. */
export function shardFileName(i: number): string {
  return `shard-${String(i).padStart(5, '0')}.bin`;
}

async function writeAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function acquireLock(outDir: string): Promise<() => Promise<void>> {
  const path = join(outDir, LOCK_FILE);
  for (let tries = 0; tries < 2; tries++) {
    try {
      const fh = await open(path, 'wx');
      await fh.writeFile(String(process.pid));
      await fh.close();
      return () => unlink(path).catch(() => {});
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number((await readFile(path, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(pid) && pid > 0 && alive(pid)) {
        throw new DataProviderError(
          'PREPARE_LOCKED',
          `prepare: ${outDir} is being written by process ${pid} (lock ${path}); wait for it or remove the lock if that process is gone`,
          { parameter: 'outDir', outDir, pid },
        );
      }
      await rm(path, { force: true }); // stale lock of a dead process
    }
  }
  throw new DataProviderError('PREPARE_LOCKED', `prepare: cannot take lock ${path}`, {
    parameter: 'outDir',
    outDir,
  });
}

interface Unit {
  /** File offset of the unit's first byte. */
  start: number;
  /** Raw bytes (text) of the unit. */
  bytes: Uint8Array;
  /** File offset just after the unit. */
  end: number;
  /** True when the unit ends a document (append EOS). */
  docEnd: boolean;
}

/** Reads newline-aligned units of at most ~64 KiB from `offset`; deterministic from any unit boundary. */
async function* textUnits(fh: FileHandle, size: number, offset: number, path: string): AsyncGenerator<Unit> {
  const buf = Buffer.allocUnsafe(UNIT_BYTES);
  let pos = offset;
  while (pos < size) {
    const want = Math.min(UNIT_BYTES, size - pos);
    const { bytesRead } = await fh.read(buf, 0, want, pos);
    if (bytesRead !== want) {
      throw new DataProviderError('INVALID_INPUT', `input ${path} shrank while being read (at byte ${pos})`, {
        parameter: 'inputs',
        file: path,
        offset: pos,
      });
    }
    let cut = want;
    if (pos + want < size) {
      const nl = buf.lastIndexOf(10, want - 1);
      if (nl >= 0) cut = nl + 1;
      else {
        while (cut > 1 && (buf[cut]! & 0xc0) === 0x80) cut--; // don't split a UTF-8 sequence
      }
    }
    const start = pos;
    pos += cut;
    yield { start, bytes: Uint8Array.from(buf.subarray(0, cut)), end: pos, docEnd: pos >= size };
  }
}

/** Reads one line (without `\n`) per unit; each line is a document. */
async function* lineUnits(fh: FileHandle, size: number, offset: number): AsyncGenerator<Unit> {
  let buf = Buffer.allocUnsafe(UNIT_BYTES);
  let pos = offset;
  while (pos < size) {
    let len = 0;
    let nl = -1;
    for (;;) {
      const want = Math.min(buf.length - len, size - pos - len);
      if (want > 0) {
        const { bytesRead } = await fh.read(buf, len, want, pos + len);
        const from = len;
        len += bytesRead;
        nl = buf.subarray(from, len).indexOf(10);
        if (nl >= 0) nl += from;
      }
      if (nl >= 0 || pos + len >= size) break;
      const bigger = Buffer.allocUnsafe(buf.length * 2);
      buf.copy(bigger, 0, 0, len);
      buf = bigger;
    }
    const lineLen = nl >= 0 ? nl : len;
    const bytes = Uint8Array.from(buf.subarray(0, lineLen));
    const start = pos;
    pos += nl >= 0 ? nl + 1 : len;
    yield { start, bytes, end: pos, docEnd: true };
  }
}

/**
 * Tokenizes text, JSONL or globs of files into token shards plus `manifest.json`.
 *
 * - **Streaming:** inputs are read in ≤64 KiB units; memory is one shard buffer plus one unit.
 * - **Resumable:** after each shard, `.prepare-state.json` records the input cursor and the tokens
 *   carried into the next shard (written atomically). Calling `prepare` again with the same inputs and
 *   settings continues there; the output is byte-identical to an uninterrupted run.
 * - **Parallel-safe:** a lock file (with the owner's pid) stops a second writer on the same `outDir`
 *   (`PREPARE_LOCKED`); stale locks of dead processes are taken over. Shards and manifest are written
 *   to a temp file, fsynced and renamed, so readers never see a partial file.
 *
 * @example
 * ```ts
 * import { prepare } from '@psyche/data-provider';
 * const { manifest } = await prepare({ inputs: ['corpus/*.txt'], outDir: 'shards', shardTokens: 1 << 20 });
 * console.log(manifest?.totalTokens);
 * ```
 * @throws {DataProviderError} `INVALID_PARAMETER`, `NOT_FOUND`, `INVALID_INPUT`, `PREPARE_LOCKED`, `PREPARE_STATE_MISMATCH`, `ABORTED`
 * @since 0.1.0
 */
export async function prepare(options: PrepareOptions): Promise<PrepareResult> {
  const tokenizer = options.tokenizer ?? createByteTokenizer();
  const vocab = tokenizer.info.vocabSize;
  const tokenBytes = options.tokenBytes ?? (vocab <= 65536 ? 2 : 4);
  if (tokenBytes !== 2 && tokenBytes !== 4) {
    throw new DataProviderError('INVALID_PARAMETER', `tokenBytes must be 2 or 4, got ${tokenBytes}`, {
      parameter: 'tokenBytes',
      value: tokenBytes,
    });
  }
  if (vocab > 2 ** (8 * tokenBytes)) {
    throw new DataProviderError(
      'INVALID_PARAMETER',
      `tokenBytes ${tokenBytes} cannot hold vocabSize ${vocab}; use 4`,
      {
        parameter: 'tokenBytes',
        value: tokenBytes,
        vocabSize: vocab,
      },
    );
  }
  const shardTokens = assertInteger('shardTokens', options.shardTokens ?? 2 ** 25, 1, 2 ** 30);
  const chunkBytes = assertInteger('chunkBytes', options.chunkBytes ?? 65536, 4, 2 ** 30);
  if (chunkBytes % 4 !== 0) {
    throw new DataProviderError(
      'INVALID_PARAMETER',
      `chunkBytes must be a multiple of 4, got ${chunkBytes}`,
      { parameter: 'chunkBytes', value: chunkBytes },
    );
  }
  const maxShards =
    options.maxShards === undefined
      ? Number.POSITIVE_INFINITY
      : assertInteger('maxShards', options.maxShards, 1);
  if (!Array.isArray(options.inputs) || options.inputs.length === 0) {
    throw new DataProviderError('INVALID_PARAMETER', 'inputs must be a non-empty array of paths or globs', {
      parameter: 'inputs',
    });
  }
  const format = options.format ?? 'auto';
  if (!['auto', 'text', 'jsonl'].includes(format)) {
    throw new DataProviderError('INVALID_PARAMETER', `format must be auto, text or jsonl, got ${format}`, {
      parameter: 'format',
      value: format,
    });
  }
  const field = options.jsonlField ?? 'text';
  const files = await expandInputs(options.inputs);
  const fileInfo = await Promise.all(
    files.map(async (f) => {
      const st = await stat(f);
      return { path: f, size: st.size, mtimeMs: Math.floor(st.mtimeMs) };
    }),
  );
  const isJsonl = (f: string) => format === 'jsonl' || (format === 'auto' && /\.(jsonl|ndjson)$/i.test(f));
  const fingerprint = createHash('sha256')
    .update(
      JSON.stringify({
        fileInfo,
        tokenizer: tokenizer.info,
        tokenBytes,
        shardTokens,
        chunkBytes,
        format,
        field,
      }),
    )
    .digest('hex');

  await mkdir(options.outDir, { recursive: true });
  const release = await acquireLock(options.outDir);
  const errors = new ErrorCounter();
  try {
    // Temp files of crashed writers are garbage (we hold the lock, so nobody is writing them).
    for (const name of await readdir(options.outDir)) {
      if (/\.tmp-\d+$/.test(name)) await rm(join(options.outDir, name), { force: true });
    }
    const statePath = join(options.outDir, STATE_FILE);
    const manifestPath = join(options.outDir, MANIFEST_FILE);
    let state: PrepareState = { fingerprint, shards: [], cursor: { fileIndex: 0, offset: 0 }, carry: '' };
    let resumed = false;
    const prevState = await readFile(statePath, 'utf8')
      .then((s) => JSON.parse(s) as PrepareState)
      .catch(() => null);
    if (prevState) {
      if (prevState.fingerprint !== fingerprint) {
        throw new DataProviderError(
          'PREPARE_STATE_MISMATCH',
          `prepare: ${options.outDir} holds an interrupted run with different inputs or settings; use another outDir or delete it`,
          { parameter: 'outDir', outDir: options.outDir },
        );
      }
      state = prevState;
      resumed = true;
    } else {
      const existing = await readFile(manifestPath, 'utf8').catch(() => null);
      if (existing !== null) {
        const m = parseManifest(JSON.parse(existing), manifestPath);
        if (m.source?.fingerprint === fingerprint) {
          return { manifest: m, complete: true, resumed: true, shardsWritten: 0, skippedLines: 0, errors };
        }
        throw new DataProviderError(
          'PREPARE_STATE_MISMATCH',
          `prepare: ${options.outDir} already holds a dataset prepared from other inputs or settings`,
          { parameter: 'outDir', outDir: options.outDir },
        );
      }
    }
    // Shards of a crashed run past the recorded state may exist (written but state not yet updated): they
    // are simply overwritten.
    const buffer = tokenBytes === 2 ? new Uint16Array(shardTokens) : new Uint32Array(shardTokens);
    let filled = 0;
    const totalBytes = fileInfo.reduce((a, f) => a + f.size, 0);
    let doneBefore = fileInfo.slice(0, state.cursor.fileIndex).reduce((a, f) => a + f.size, 0);
    const bar: ProgressSink | null =
      options.progress === true
        ? createProgressBar({ total: totalBytes, label: 'prepare' })
        : options.progress
          ? options.progress
          : null;
    let shardsWritten = 0;
    let skippedLines = 0;

    const flush = async (
      cursor: { fileIndex: number; offset: number },
      carry: (k: number) => number,
      from: number,
      to: number,
    ) => {
      const bytes = tokensToLeBytes(buffer, filled);
      const index = state.shards.length;
      const info: ShardInfo = {
        file: shardFileName(index),
        tokens: filled,
        bytes: bytes.byteLength,
        sha256: sha256Hex(bytes),
        chunkSha256: chunkHashes(bytes, chunkBytes),
      };
      await writeAtomic(join(options.outDir, info.file), bytes);
      const rest = to - from;
      const carryArr = tokenBytes === 2 ? new Uint16Array(rest) : new Uint32Array(rest);
      for (let i = 0; i < rest; i++) carryArr[i] = carry(from + i);
      state = {
        fingerprint,
        shards: [...state.shards, info],
        cursor,
        carry: Buffer.from(tokensToLeBytes(carryArr, rest)).toString('base64'),
      };
      await writeAtomic(statePath, JSON.stringify(state));
      filled = 0;
      shardsWritten++;
    };

    /** Appends tokens `get(0..n)`, flushing full shards; true when `maxShards` stops the run. */
    const push = async (
      get: (k: number) => number,
      n: number,
      cursor: { fileIndex: number; offset: number },
    ): Promise<boolean> => {
      let from = 0;
      while (from < n) {
        const take = Math.min(n - from, shardTokens - filled);
        for (let i = 0; i < take; i++) {
          const id = get(from + i);
          if (!(id >= 0 && id < vocab)) {
            throw new DataProviderError(
              'TOKEN_OUT_OF_RANGE',
              `tokenizer ${tokenizer.info.id} produced id ${id}, outside [0, vocabSize ${vocab})`,
              {
                value: id,
                vocabSize: vocab,
              },
            );
          }
          buffer[filled + i] = id;
        }
        filled += take;
        from += take;
        if (filled === shardTokens) {
          await flush(cursor, get, from, n);
          if (shardsWritten >= maxShards) return true;
        }
      }
      return false;
    };

    const encode = (fn: () => ArrayLike<number>, file: string, offset: number): ArrayLike<number> => {
      try {
        return fn();
      } catch (cause) {
        const err = new DataProviderError(
          'INVALID_INPUT',
          `${file} at byte ${offset}: tokenizer ${tokenizer.info.id} failed: ${(cause as Error).message}`,
          { parameter: 'inputs', file, offset },
          { cause },
        );
        errors.count(err);
        throw err;
      }
    };

    const start = state.cursor;
    let stopped = false;
    if (state.carry) {
      // Tokens of the unit before the cursor that did not fit the previous shard (may span several shards).
      const carry = Buffer.from(state.carry, 'base64');
      const dv = new DataView(carry.buffer, carry.byteOffset, carry.byteLength);
      const get = (k: number) => (tokenBytes === 2 ? dv.getUint16(k * 2, true) : dv.getUint32(k * 4, true));
      stopped = await push(get, carry.byteLength / tokenBytes, start);
    }
    outer: for (let fi = start.fileIndex; !stopped && fi < fileInfo.length; fi++) {
      const f = fileInfo[fi]!;
      const fh = await open(f.path, 'r');
      try {
        const offset = fi === start.fileIndex ? start.offset : 0;
        const jsonl = isJsonl(f.path);
        const units = jsonl ? lineUnits(fh, f.size, offset) : textUnits(fh, f.size, offset, f.path);
        for await (const unit of units) {
          if (options.signal?.aborted) {
            throw new DataProviderError('ABORTED', 'prepare aborted; run it again to resume', {
              outDir: options.outDir,
            });
          }
          let ids: ArrayLike<number>;
          if (jsonl) {
            let text: unknown;
            const raw = Buffer.from(unit.bytes).toString('utf8');
            if (raw.trim() === '') ids = [];
            else {
              try {
                const obj = JSON.parse(raw) as unknown;
                text =
                  typeof obj === 'object' && obj !== null
                    ? (obj as Record<string, unknown>)[field]
                    : undefined;
              } catch {
                text = undefined;
              }
              if (typeof text !== 'string') {
                const err = new DataProviderError(
                  'INVALID_INPUT',
                  `${f.path} at byte ${unit.start}: line is not a JSON object with a string "${field}" field (jsonlField)`,
                  { parameter: 'inputs', file: f.path, offset: unit.start, field },
                );
                errors.count(err);
                if (!options.skipInvalidLines) throw err;
                skippedLines++;
                ids = [];
              } else ids = encode(() => tokenizer.encode(text as string), f.path, unit.start);
            }
          } else {
            ids = encode(
              () =>
                tokenizer.encodeBytes
                  ? tokenizer.encodeBytes(unit.bytes)
                  : tokenizer.encode(Buffer.from(unit.bytes).toString('utf8')),
              f.path,
              unit.start,
            );
          }
          const eos = tokenizer.info.eosTokenId;
          const withEos = unit.docEnd && eos !== null && ids.length > 0;
          const n = ids.length + (withEos ? 1 : 0);
          const idsLen = ids.length;
          const all = (k: number): number => (k < idsLen ? ids[k]! : (eos ?? -1));
          if (await push(all, n, { fileIndex: fi, offset: unit.end })) {
            stopped = true;
            break outer;
          }
          bar?.update(doneBefore + unit.end);
        }
      } finally {
        await fh.close();
      }
      doneBefore += f.size;
    }
    if (stopped) {
      bar?.finish();
      return { manifest: null, complete: false, resumed, shardsWritten, skippedLines, errors };
    }
    if (filled > 0) await flush({ fileIndex: fileInfo.length, offset: 0 }, () => 0, 0, 0);
    const manifest: ShardManifest = {
      format: MANIFEST_FORMAT,
      version: 1,
      tokenBytes,
      vocabSize: vocab,
      tokenizer: tokenizer.info,
      chunkBytes,
      shards: state.shards,
      totalTokens: state.shards.reduce((a, s) => a + s.tokens, 0),
      source: {
        ...options.source,
        fingerprint,
        files: fileInfo.map((f) => ({ path: f.path, bytes: f.size })),
      },
    };
    await writeAtomic(manifestPath, `${JSON.stringify(manifest, null, 1)}\n`);
    await rm(statePath, { force: true });
    bar?.finish();
    return { manifest, complete: true, resumed, shardsWritten, skippedLines, errors };
  } finally {
    await release();
  }
}
