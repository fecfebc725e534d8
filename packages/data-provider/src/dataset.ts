import { DataProviderError } from './errors.js';
import { leBytesToTokens } from './internal/hash.js';
import type { TokenizerInfo } from './manifest.js';
import { createPermutation, type Permutation, type ShuffleSeed } from './shuffle.js';
import type { AbortOptions, ShardStore } from './store.js';

/**
 * A batch id as the coordinator assigns it: the closed interval `[start, end]` of global sequence
 * indices (Psyche's `BatchId(ClosedInterval)`).
 */
export interface BatchId {
  start: number;
  end: number;
}

/** Sequences of one batch. */
export interface Batch {
  batchId: BatchId;
  /** Global sequence indices `start..end`. */
  indices: number[];
  /** Tokens per sequence: `seqLen + 1`. */
  width: number;
  /** Row-major `[indices.length, seqLen + 1]` token ids (ready for `tf.tensor2d(tokens, shape, 'int32')`). */
  tokens: Int32Array;
}

/**
 * The one interface every data source implements (local or HTTP shards through {@link createTokenDataset},
 * and {@link createWeightedMix}). `getSequence(i)` is a pure function of the source's configuration.
 *
 * @since 0.1.0
 */
export interface SequenceSource {
  /** Tokens per training sequence; each returned sequence has `seqLen + 1` tokens (inputs + shifted target). */
  readonly seqLen: number;
  /** Sequences in one epoch. Indices `>= numSequences` continue into later epochs (reshuffled). */
  readonly numSequences: number;
  readonly tokenizer: TokenizerInfo;
  /** Tokens of global sequence `index` (any safe non-negative integer). */
  getSequence(index: number, options?: AbortOptions): Promise<Int32Array>;
  /** Tokens of every sequence of `batchId`; disjoint batch ids give disjoint sequences within an epoch. */
  getBatch(batchId: BatchId, options?: AbortOptions): Promise<Batch>;
  close(): Promise<void>;
}

/** Options of {@link createTokenDataset}. */
export interface TokenDatasetOptions {
  /** Training sequence length (each read returns `seqLen + 1` tokens). */
  seqLen: number;
  /** Seed of the shuffle of sequence positions; `null`/absent keeps file order. */
  shuffleSeed?: ShuffleSeed | null;
  /** Check that every token id is `< vocabSize`. Default true. */
  validateTokens?: boolean;
  /** Maximum concurrent reads per batch. Default 16. */
  concurrency?: number;
}

/** Where a sequence lives. */
export interface SequencePointer {
  shard: number;
  /** Token offset in the shard. */
  tokenOffset: number;
}

/** A {@link SequenceSource} over a {@link ShardStore}, with pointer access for inspection. */
export interface TokenDataset extends SequenceSource {
  readonly store: ShardStore;
  /** Shard and token offset of global sequence `index` (after shuffling and epoch wrap). */
  pointer(index: number): SequencePointer;
}

function checkIndex(index: number, what = 'index'): void {
  if (!Number.isSafeInteger(index) || index < 0) {
    throw new DataProviderError(
      'INDEX_OUT_OF_RANGE',
      `${what} must be a non-negative safe integer, got ${index}`,
      { parameter: what, value: index },
    );
  }
}

function checkBatchId(b: BatchId): void {
  if (typeof b !== 'object' || b === null) {
    throw new DataProviderError('INVALID_PARAMETER', 'batchId must be { start, end }', {
      parameter: 'batchId',
      value: b,
    });
  }
  checkIndex(b.start, 'batchId.start');
  checkIndex(b.end, 'batchId.end');
  if (b.end < b.start) {
    throw new DataProviderError('INDEX_OUT_OF_RANGE', `batchId.end (${b.end}) < batchId.start (${b.start})`, {
      parameter: 'batchId',
      value: b,
    });
  }
  if (b.end - b.start >= 1 << 20) {
    throw new DataProviderError(
      'INVALID_PARAMETER',
      `batchId spans ${b.end - b.start + 1} sequences; at most 2^20 per call`,
      { parameter: 'batchId', value: b },
    );
  }
}

async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (t: T, i: number) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/**
 * Turns a shard store into training sequences. Sequence `j` of shard `s` starts at token `j * seqLen`
 * and has `seqLen + 1` tokens (consecutive sequences share one boundary token, like nanoGPT and Psyche);
 * sequences never cross shards; a shard holds `floor((tokens - 1) / seqLen)` of them. Positions are
 * numbered shard by shard, then permuted with {@link createPermutation}(N, seed, epoch) where
 * `epoch = floor(index / N)`, so `index → tokens` is a pure function of (manifest, seqLen, seed).
 *
 * @example
 * ```ts
 * import { openLocalShards, createTokenDataset } from '@psyche/data-provider';
 * const ds = createTokenDataset(await openLocalShards('./shards'), { seqLen: 64, shuffleSeed: 7 });
 * const batch = await ds.getBatch({ start: 0, end: 7 }); // 8 × 65 tokens
 * ```
 * @throws {DataProviderError} `INVALID_PARAMETER` when no shard holds `seqLen + 1` tokens
 * @since 0.1.0
 */
export function createTokenDataset(store: ShardStore, options: TokenDatasetOptions): TokenDataset {
  const m = store.manifest;
  const seqLen = options.seqLen;
  if (!Number.isSafeInteger(seqLen) || seqLen < 1) {
    throw new DataProviderError('INVALID_PARAMETER', `seqLen must be a positive integer, got ${seqLen}`, {
      parameter: 'seqLen',
      value: seqLen,
    });
  }
  const concurrency = options.concurrency ?? 16;
  if (!Number.isSafeInteger(concurrency) || concurrency < 1) {
    throw new DataProviderError(
      'INVALID_PARAMETER',
      `concurrency must be a positive integer, got ${concurrency}`,
      { parameter: 'concurrency', value: concurrency },
    );
  }
  const validate = options.validateTokens ?? true;
  const prefix: number[] = [0];
  for (const s of m.shards)
    prefix.push(prefix[prefix.length - 1]! + (s.tokens > seqLen ? Math.floor((s.tokens - 1) / seqLen) : 0));
  const n = prefix[prefix.length - 1]!;
  if (n === 0) {
    throw new DataProviderError(
      'INVALID_PARAMETER',
      `seqLen ${seqLen} is too long: no shard of ${store.location} holds seqLen + 1 = ${seqLen + 1} tokens`,
      { parameter: 'seqLen', value: seqLen, maxShardTokens: Math.max(0, ...m.shards.map((s) => s.tokens)) },
    );
  }
  const seed = options.shuffleSeed ?? null;
  const perms = new Map<number, Permutation>();
  const perm = (epoch: number): Permutation => {
    let p = perms.get(epoch);
    if (!p) {
      p = createPermutation(n, seed!, epoch);
      if (perms.size > 4) perms.delete(perms.keys().next().value!);
      perms.set(epoch, p);
    }
    return p;
  };
  const width = seqLen + 1;

  const pointer = (index: number): SequencePointer => {
    checkIndex(index);
    const epoch = Math.floor(index / n);
    const within = index - epoch * n;
    const pos = seed === null ? within : perm(epoch).forward(within);
    let lo = 0;
    let hi = m.shards.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (prefix[mid]! <= pos) lo = mid;
      else hi = mid - 1;
    }
    return { shard: lo, tokenOffset: (pos - prefix[lo]!) * seqLen };
  };

  const check = (tokens: Int32Array, from: number, index: number, p: SequencePointer) => {
    if (!validate) return;
    for (let i = from; i < from + width; i++) {
      const t = tokens[i]!;
      if (t < 0 || t >= m.vocabSize) {
        const err = new DataProviderError(
          'TOKEN_OUT_OF_RANGE',
          `${store.location} ${m.shards[p.shard]!.file}: token ${t >>> 0} at token offset ${p.tokenOffset + (i - from)} (sequence ${index}) is >= vocabSize ${m.vocabSize}`,
          {
            file: m.shards[p.shard]!.file,
            tokenOffset: p.tokenOffset + (i - from),
            value: t >>> 0,
            vocabSize: m.vocabSize,
            sequence: index,
          },
        );
        store.errors.count(err);
        throw err;
      }
    }
  };

  const tb = m.tokenBytes;
  const ds: TokenDataset = {
    store,
    seqLen,
    numSequences: n,
    tokenizer: m.tokenizer,
    pointer,
    async getSequence(index, o) {
      const p = pointer(index);
      const bytes = await store.read(p.shard, p.tokenOffset * tb, width * tb, o);
      const out = new Int32Array(width);
      leBytesToTokens(bytes, tb, out);
      check(out, 0, index, p);
      return out;
    },
    async getBatch(batchId, o) {
      checkBatchId(batchId);
      const indices = Array.from({ length: batchId.end - batchId.start + 1 }, (_, i) => batchId.start + i);
      const ptrs = indices.map(pointer);
      // Coalesce sequences that are adjacent in the same shard into one read (one HTTP range).
      const order = ptrs
        .map((_, i) => i)
        .sort((a, b) => ptrs[a]!.shard - ptrs[b]!.shard || ptrs[a]!.tokenOffset - ptrs[b]!.tokenOffset);
      const groups: { shard: number; start: number; end: number; members: number[] }[] = [];
      for (const i of order) {
        const p = ptrs[i]!;
        const g = groups[groups.length - 1];
        if (g && g.shard === p.shard && p.tokenOffset <= g.end && g.end - g.start < 1 << 20) {
          g.end = Math.max(g.end, p.tokenOffset + width);
          g.members.push(i);
        } else
          groups.push({ shard: p.shard, start: p.tokenOffset, end: p.tokenOffset + width, members: [i] });
      }
      const tokens = new Int32Array(indices.length * width);
      await mapLimit(groups, concurrency, async (g) => {
        const bytes = await store.read(g.shard, g.start * tb, (g.end - g.start) * tb, o);
        for (const i of g.members) {
          const p = ptrs[i]!;
          const from = (p.tokenOffset - g.start) * tb;
          leBytesToTokens(bytes.subarray(from, from + width * tb), tb, tokens, i * width);
          check(tokens, i * width, indices[i]!, p);
        }
      });
      return { batchId: { start: batchId.start, end: batchId.end }, indices, width, tokens };
    },
    close: () => store.close(),
  };
  return ds;
}

/** One entry of {@link createWeightedMix}. */
export interface WeightedSource {
  source: SequenceSource;
  /** Relative weight (> 0). */
  weight: number;
}

/** A weighted mix: also reports which source a global index maps to. */
export interface WeightedMix extends SequenceSource {
  /** Source number and that source's own index for global `index`. */
  locate(index: number): { source: number; index: number };
}

/**
 * Blends sources by weight, Megatron-style: global sample `i` goes to the source whose share is most
 * behind (`weight_d * (i + 1) - taken_d`, ties to the lowest index), and takes that source's next
 * sample. Deterministic, and the proportions are exact to within one sample at every prefix.
 * All sources must share `seqLen` and tokenizer id. `numSequences` is the sum of the sources'.
 *
 * @throws {DataProviderError} `INVALID_PARAMETER` on mismatched sources or non-positive weights
 * @since 0.1.0
 */
export function createWeightedMix(sources: readonly WeightedSource[]): WeightedMix {
  if (!Array.isArray(sources) || sources.length === 0 || sources.length > 255) {
    throw new DataProviderError('INVALID_PARAMETER', 'sources must hold 1 to 255 entries', {
      parameter: 'sources',
    });
  }
  const first = sources[0]!.source;
  let total = 0;
  sources.forEach((s, i) => {
    if (!(typeof s.weight === 'number' && Number.isFinite(s.weight) && s.weight > 0)) {
      throw new DataProviderError(
        'INVALID_PARAMETER',
        `sources[${i}].weight must be a positive number, got ${s.weight}`,
        { parameter: `sources[${i}].weight`, value: s.weight },
      );
    }
    if (s.source.seqLen !== first.seqLen) {
      throw new DataProviderError(
        'INVALID_PARAMETER',
        `sources[${i}].seqLen ${s.source.seqLen} differs from sources[0].seqLen ${first.seqLen}`,
        { parameter: `sources[${i}].source` },
      );
    }
    if (s.source.tokenizer.id !== first.tokenizer.id) {
      throw new DataProviderError(
        'INVALID_PARAMETER',
        `sources[${i}] uses tokenizer ${s.source.tokenizer.id}, sources[0] uses ${first.tokenizer.id}; mixed token ids would be garbage`,
        { parameter: `sources[${i}].source` },
      );
    }
    total += s.weight;
  });
  const weights = sources.map((s) => s.weight / total);
  const taken = new Float64Array(sources.length);
  let choice = new Uint8Array(1024);
  let local = new Float64Array(1024);
  let computed = 0;
  const extend = (upto: number) => {
    if (upto >= choice.length) {
      let size = choice.length;
      while (size <= upto) size *= 2;
      const c2 = new Uint8Array(size);
      c2.set(choice);
      const l2 = new Float64Array(size);
      l2.set(local);
      choice = c2;
      local = l2;
    }
    for (; computed <= upto; computed++) {
      let best = 0;
      let bestErr = Number.NEGATIVE_INFINITY;
      for (let d = 0; d < weights.length; d++) {
        const err = weights[d]! * (computed + 1) - taken[d]!;
        if (err > bestErr) {
          bestErr = err;
          best = d;
        }
      }
      choice[computed] = best;
      local[computed] = taken[best]!;
      taken[best]!++;
    }
  };
  const locate = (index: number) => {
    checkIndex(index);
    if (index >= 1 << 28) {
      throw new DataProviderError('INDEX_OUT_OF_RANGE', `weighted mix index ${index} >= 2^28`, {
        parameter: 'index',
        value: index,
      });
    }
    if (index >= computed) extend(index);
    return { source: choice[index]!, index: local[index]! };
  };
  const seqLen = first.seqLen;
  const width = seqLen + 1;
  return {
    seqLen,
    numSequences: sources.reduce((a, s) => a + s.source.numSequences, 0),
    tokenizer: first.tokenizer,
    locate,
    getSequence(index, o) {
      const l = locate(index);
      return sources[l.source]!.source.getSequence(l.index, o);
    },
    async getBatch(batchId, o) {
      checkBatchId(batchId);
      const indices = Array.from({ length: batchId.end - batchId.start + 1 }, (_, i) => batchId.start + i);
      const tokens = new Int32Array(indices.length * width);
      await mapLimit(indices, 16, async (idx, i) => {
        const l = locate(idx);
        tokens.set(await sources[l.source]!.source.getSequence(l.index, o), i * width);
      });
      return { batchId: { start: batchId.start, end: batchId.end }, indices, width, tokens };
    },
    async close() {
      await Promise.all(sources.map((s) => s.source.close()));
    },
  };
}
