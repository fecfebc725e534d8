import { DataProviderError } from './errors.js';

/** File name of the manifest inside a shard directory (and under an HTTP base URL). */
export const MANIFEST_FILE = 'manifest.json';
/** Value of {@link ShardManifest.format}. */
export const MANIFEST_FORMAT = 'psyche-token-shards';

/** Identity of the tokenizer that produced a shard set. Consumers check `id` before mixing datasets. */
export interface TokenizerInfo {
  /** Stable id, e.g. `psyche-byte-v1` or `hf:<sha256 of tokenizer.json, 16 hex>`. */
  id: string;
  /** `byte` for the built-in tokenizer, `huggingface` for a `tokenizer.json`. */
  kind: 'byte' | 'huggingface';
  /** Number of token ids; every stored id is `< vocabSize`. */
  vocabSize: number;
  /** Id appended after each document, or `null` when the tokenizer has none. */
  eosTokenId: number | null;
}

/** One shard file: a flat array of little-endian token ids. */
export interface ShardInfo {
  /** File name relative to the manifest (no directories). */
  file: string;
  /** Number of tokens in the file. */
  tokens: number;
  /** File size in bytes (`tokens * tokenBytes`). */
  bytes: number;
  /** Hex SHA-256 of the whole file. */
  sha256: string;
  /** Per-chunk hashes: hex of the first 16 bytes of SHA-256 of each `chunkBytes` slice (last one may be short). */
  chunkSha256: string[];
}

/**
 * `manifest.json` of a token shard directory. See `docs/data.md` for the format.
 *
 * @since 0.1.0
 */
export interface ShardManifest {
  format: typeof MANIFEST_FORMAT;
  version: 1;
  /** Bytes per token: 2 (u16 LE) or 4 (u32 LE). */
  tokenBytes: 2 | 4;
  /** Equal to `tokenizer.vocabSize`. */
  vocabSize: number;
  tokenizer: TokenizerInfo;
  /** Chunk size used by `chunkSha256`, a multiple of 4. */
  chunkBytes: number;
  shards: ShardInfo[];
  /** Sum of `shards[].tokens`. */
  totalTokens: number;
  /** Free-form provenance (inputs, tool version). Not used for reading. */
  source?: Record<string, unknown>;
}

function bad(field: string, expected: string, value: unknown, where: string): never {
  throw new DataProviderError(
    'INVALID_MANIFEST',
    `manifest ${where}: field "${field}" must be ${expected}, got ${JSON.stringify(value)?.slice(0, 80)}`,
    { field, expected, value, where },
  );
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isNat(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

const HEX64 = /^[0-9a-f]{64}$/;
const HEX32 = /^[0-9a-f]{32}$/;
const SAFE_FILE = /^[A-Za-z0-9._-]+$/;

/**
 * Validates an untrusted manifest value (e.g. `JSON.parse` of a downloaded file).
 *
 * @param value parsed JSON
 * @param where where it came from (path or URL), used in error messages
 * @returns the same object, typed
 * @throws {DataProviderError} `INVALID_MANIFEST` naming the first bad field
 * @since 0.1.0
 */
export function parseManifest(value: unknown, where = '<memory>'): ShardManifest {
  if (!isObj(value)) bad('<root>', 'an object', value, where);
  const m = value;
  if (m.format !== MANIFEST_FORMAT) bad('format', `"${MANIFEST_FORMAT}"`, m.format, where);
  if (m.version !== 1) bad('version', '1', m.version, where);
  if (m.tokenBytes !== 2 && m.tokenBytes !== 4) bad('tokenBytes', '2 or 4', m.tokenBytes, where);
  const tokenBytes = m.tokenBytes;
  if (!isNat(m.vocabSize) || m.vocabSize < 1 || m.vocabSize > 2 ** (8 * tokenBytes)) {
    bad('vocabSize', `an integer in [1, 2^${8 * tokenBytes}]`, m.vocabSize, where);
  }
  if (!isObj(m.tokenizer)) bad('tokenizer', 'an object', m.tokenizer, where);
  const t = m.tokenizer;
  if (typeof t.id !== 'string' || t.id.length === 0) bad('tokenizer.id', 'a non-empty string', t.id, where);
  if (t.kind !== 'byte' && t.kind !== 'huggingface')
    bad('tokenizer.kind', '"byte" or "huggingface"', t.kind, where);
  if (t.vocabSize !== m.vocabSize)
    bad('tokenizer.vocabSize', `equal to vocabSize (${m.vocabSize})`, t.vocabSize, where);
  if (t.eosTokenId !== null && (!isNat(t.eosTokenId) || t.eosTokenId >= m.vocabSize)) {
    bad('tokenizer.eosTokenId', 'null or an id < vocabSize', t.eosTokenId, where);
  }
  if (!isNat(m.chunkBytes) || m.chunkBytes < 4 || m.chunkBytes % 4 !== 0) {
    bad('chunkBytes', 'a positive multiple of 4', m.chunkBytes, where);
  }
  const chunkBytes = m.chunkBytes;
  if (!Array.isArray(m.shards)) bad('shards', 'an array', m.shards, where);
  let total = 0;
  const names = new Set<string>();
  m.shards.forEach((s: unknown, i: number) => {
    const f = `shards[${i}]`;
    if (!isObj(s)) bad(f, 'an object', s, where);
    if (typeof s.file !== 'string' || !SAFE_FILE.test(s.file) || s.file === MANIFEST_FILE) {
      bad(`${f}.file`, 'a plain file name ([A-Za-z0-9._-]+)', s.file, where);
    }
    if (names.has(s.file)) bad(`${f}.file`, 'unique', s.file, where);
    names.add(s.file);
    if (!isNat(s.tokens)) bad(`${f}.tokens`, 'a non-negative integer', s.tokens, where);
    if (s.bytes !== s.tokens * tokenBytes)
      bad(`${f}.bytes`, `tokens * tokenBytes = ${s.tokens * tokenBytes}`, s.bytes, where);
    if (typeof s.sha256 !== 'string' || !HEX64.test(s.sha256))
      bad(`${f}.sha256`, '64 lowercase hex digits', s.sha256, where);
    const chunks = Math.ceil(s.bytes / chunkBytes);
    if (!Array.isArray(s.chunkSha256) || s.chunkSha256.length !== chunks) {
      bad(
        `${f}.chunkSha256`,
        `an array of ${chunks} hashes`,
        Array.isArray(s.chunkSha256) ? s.chunkSha256.length : s.chunkSha256,
        where,
      );
    }
    s.chunkSha256.forEach((h: unknown, j: number) => {
      if (typeof h !== 'string' || !HEX32.test(h))
        bad(`${f}.chunkSha256[${j}]`, '32 lowercase hex digits', h, where);
    });
    total += s.tokens;
  });
  if (m.totalTokens !== total) bad('totalTokens', `the sum of shard tokens (${total})`, m.totalTokens, where);
  if (m.source !== undefined && !isObj(m.source)) bad('source', 'an object when present', m.source, where);
  return m as unknown as ShardManifest;
}
