import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Tokenizer } from '@huggingface/tokenizers';
import { DataProviderError } from './errors.js';
import type { TokenizerInfo } from './manifest.js';

/**
 * What `prepare` needs from a tokenizer. Both the built-in byte tokenizer and Hugging Face
 * `tokenizer.json` tokenizers implement it.
 *
 * @since 0.1.0
 */
export interface TextTokenizer {
  /** Identity and vocabulary size, copied into the manifest. */
  readonly info: TokenizerInfo;
  /** Token ids of `text`, without special tokens. */
  encode(text: string): ArrayLike<number>;
  /** Text of `ids`. Special ids render as their token string unless `skipSpecial`. */
  decode(ids: ArrayLike<number>, options?: { skipSpecial?: boolean }): string;
  /**
   * Optional fast path for byte-level tokenizers: ids of raw UTF-8 bytes. `prepare` uses it when present,
   * so it never decodes and re-encodes text.
   */
  encodeBytes?(bytes: Uint8Array): ArrayLike<number>;
}

/** Id of the built-in tokenizer, stored in manifests. */
export const BYTE_TOKENIZER_ID = 'psyche-byte-v1';
/** `<|endoftext|>` id of the built-in tokenizer (appended after each document). */
export const BYTE_EOS_ID = 256;
/** `<|pad|>` id of the built-in tokenizer (never written by `prepare`; for padding batches). */
export const BYTE_PAD_ID = 257;
/** Vocabulary size of the built-in tokenizer: 256 byte ids + `<|endoftext|>` + `<|pad|>`. */
export const BYTE_VOCAB_SIZE = 258;

const BYTE_SPECIALS: Record<number, string> = { [BYTE_EOS_ID]: '<|endoftext|>', [BYTE_PAD_ID]: '<|pad|>' };

/**
 * The built-in tokenizer: token id = UTF-8 byte (0–255), plus `<|endoftext|>` (256) and `<|pad|>` (257).
 * Needs no download, is lossless for any text, and keeps the embedding table tiny (258 rows), which suits
 * the small models trained on CPUs. See `docs/data.md` for why it is not BPE.
 *
 * @example
 * ```ts
 * import { createByteTokenizer } from '@psyche/data-provider';
 * const tok = createByteTokenizer();
 * tok.encode('hi'); // Uint8Array [104, 105]
 * ```
 * @since 0.1.0
 */
export function createByteTokenizer(): TextTokenizer {
  const enc = new TextEncoder();
  return {
    info: { id: BYTE_TOKENIZER_ID, kind: 'byte', vocabSize: BYTE_VOCAB_SIZE, eosTokenId: BYTE_EOS_ID },
    encode: (text) => enc.encode(text),
    encodeBytes: (bytes) => bytes,
    decode(ids, options = {}) {
      const out: string[] = [];
      let run: number[] = [];
      const flush = () => {
        if (run.length > 0) out.push(Buffer.from(run).toString('utf8'));
        run = [];
      };
      for (let i = 0; i < ids.length; i++) {
        const id = ids[i]!;
        if (id < 256) {
          run.push(id);
          continue;
        }
        flush();
        const special = BYTE_SPECIALS[id];
        if (special === undefined) {
          throw new DataProviderError(
            'TOKEN_OUT_OF_RANGE',
            `ids[${i}] = ${id} is not a ${BYTE_TOKENIZER_ID} token (vocabSize ${BYTE_VOCAB_SIZE})`,
            { parameter: `ids[${i}]`, value: id, vocabSize: BYTE_VOCAB_SIZE },
          );
        }
        if (!options.skipSpecial) out.push(special);
      }
      flush();
      return out.join('');
    },
  };
}

/** Options for {@link loadHuggingFaceTokenizer}. */
export interface HuggingFaceTokenizerOptions {
  /** Path to `tokenizer_config.json` (optional; read for `eos_token`). */
  configPath?: string;
  /** Token string to append after documents; defaults to the config's `eos_token`, then common names. */
  eosToken?: string | null;
}

const COMMON_EOS = ['<|endoftext|>', '<|end_of_text|>', '</s>', '<eos>', '<|eot_id|>'];

/**
 * Loads a Hugging Face `tokenizer.json` (no network; pure JS via `@huggingface/tokenizers`).
 * The tokenizer id is `hf:` + the first 16 hex digits of the SHA-256 of the file, so two nodes using
 * different files are told apart.
 *
 * @param tokenizerJsonPath path to `tokenizer.json`
 * @throws {DataProviderError} `NOT_FOUND` when the file is missing, `INVALID_INPUT` when it cannot be parsed
 * @since 0.1.0
 */
export async function loadHuggingFaceTokenizer(
  tokenizerJsonPath: string,
  options: HuggingFaceTokenizerOptions = {},
): Promise<TextTokenizer> {
  const raw = await readFile(tokenizerJsonPath).catch((cause: unknown) => {
    throw new DataProviderError(
      'NOT_FOUND',
      `tokenizer file ${tokenizerJsonPath} cannot be read`,
      {
        parameter: 'tokenizer',
        path: tokenizerJsonPath,
      },
      { cause },
    );
  });
  let json: Record<string, unknown>;
  let config: Record<string, unknown> = {};
  try {
    json = JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
    if (options.configPath)
      config = JSON.parse(await readFile(options.configPath, 'utf8')) as Record<string, unknown>;
  } catch (cause) {
    throw new DataProviderError(
      'INVALID_INPUT',
      `tokenizer ${tokenizerJsonPath}: not valid JSON`,
      {
        parameter: 'tokenizer',
        path: tokenizerJsonPath,
      },
      { cause },
    );
  }
  let vocabSize = 0;
  const model = json.model as { vocab?: unknown } | undefined;
  const vocab = model?.vocab;
  if (Array.isArray(vocab)) vocabSize = vocab.length;
  else if (vocab && typeof vocab === 'object') {
    for (const id of Object.values(vocab as Record<string, number>)) vocabSize = Math.max(vocabSize, id + 1);
  }
  const added = Array.isArray(json.added_tokens)
    ? (json.added_tokens as { id: number; content: string }[])
    : [];
  for (const t of added) vocabSize = Math.max(vocabSize, t.id + 1);
  if (vocabSize === 0) {
    throw new DataProviderError(
      'INVALID_INPUT',
      `tokenizer ${tokenizerJsonPath}: model.vocab is missing or empty`,
      {
        parameter: 'tokenizer',
        field: 'model.vocab',
      },
    );
  }
  let tok: Tokenizer;
  try {
    tok = new Tokenizer(json, config);
  } catch (cause) {
    throw new DataProviderError(
      'INVALID_INPUT',
      `tokenizer ${tokenizerJsonPath}: unsupported tokenizer.json`,
      {
        parameter: 'tokenizer',
      },
      { cause },
    );
  }
  const cfgEos =
    typeof config.eos_token === 'string'
      ? config.eos_token
      : (config.eos_token as { content?: string })?.content;
  let eosTokenId: number | null = null;
  if (options.eosToken !== null) {
    const candidates = options.eosToken !== undefined ? [options.eosToken] : [cfgEos, ...COMMON_EOS];
    for (const c of candidates) {
      const id = c === undefined ? undefined : tok.token_to_id(c);
      if (id !== undefined) {
        eosTokenId = id;
        break;
      }
    }
    if (options.eosToken !== undefined && eosTokenId === null) {
      throw new DataProviderError(
        'INVALID_PARAMETER',
        `eosToken ${JSON.stringify(options.eosToken)} is not in the tokenizer vocabulary`,
        {
          parameter: 'eosToken',
          value: options.eosToken,
        },
      );
    }
  }
  const id = `hf:${createHash('sha256').update(raw).digest('hex').slice(0, 16)}`;
  return {
    info: { id, kind: 'huggingface', vocabSize, eosTokenId },
    encode: (text) => tok.encode(text, { add_special_tokens: false }).ids,
    decode: (ids, o = {}) => tok.decode(Array.from(ids), { skip_special_tokens: o.skipSpecial ?? false }),
  };
}
