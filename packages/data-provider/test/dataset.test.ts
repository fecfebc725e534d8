import { readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createTokenDataset, createWeightedMix, openLocalShards, type SequenceSource } from '../src/index.js';
import { tempDir, writeShardSet } from './helpers.js';

/** Shard s holds tokens s*100 + j, j = 0..len-1. */
function ramp(lengths: number[]): number[][] {
  return lengths.map((len, s) => Array.from({ length: len }, (_, j) => s * 100 + j));
}

async function rows(src: SequenceSource, start: number, end: number): Promise<number[][]> {
  const b = await src.getBatch({ start, end });
  return b.indices.map((_, i) => Array.from(b.tokens.subarray(i * b.width, (i + 1) * b.width)));
}

describe('createTokenDataset', () => {
  it('maps sequence indices to hand-derived pointers and tokens (no shuffle)', async () => {
    const dir = tempDir();
    writeShardSet(dir, ramp([10, 7]));
    const ds = createTokenDataset(await openLocalShards(dir), { seqLen: 3 });
    // Shard 0 (10 tokens): floor((10-1)/3) = 3 sequences at offsets 0, 3, 6 (4 tokens each, sharing a boundary token).
    // Shard 1 (7 tokens): floor(6/3) = 2 sequences at offsets 0, 3. Total 5.
    expect(ds.numSequences).toBe(5);
    expect([0, 1, 2, 3, 4].map((i) => ds.pointer(i))).toEqual([
      { shard: 0, tokenOffset: 0 },
      { shard: 0, tokenOffset: 3 },
      { shard: 0, tokenOffset: 6 },
      { shard: 1, tokenOffset: 0 },
      { shard: 1, tokenOffset: 3 },
    ]);
    expect(Array.from(await ds.getSequence(1))).toEqual([3, 4, 5, 6]);
    expect(Array.from(await ds.getSequence(4))).toEqual([103, 104, 105, 106]);
    // Index 5 is epoch 1, position 0 (unshuffled: same as index 0).
    expect(Array.from(await ds.getSequence(5))).toEqual([0, 1, 2, 3]);
    expect(await rows(ds, 2, 3)).toEqual([
      [6, 7, 8, 9],
      [100, 101, 102, 103],
    ]);
    await ds.close();
  });

  it('shuffles positions as a permutation; the mapping is a pure function of (manifest, seqLen, seed)', async () => {
    const dir = tempDir();
    writeShardSet(dir, ramp([301, 250, 99, 400]), { chunkBytes: 64 });
    const open = async (seed: string) =>
      createTokenDataset(await openLocalShards(dir), { seqLen: 8, shuffleSeed: seed });
    const plain = createTokenDataset(await openLocalShards(dir), { seqLen: 8 });
    const a = await open('s1');
    const b = await open('s1');
    const c = await open('s2');
    const n = a.numSequences;
    // 300/8 → 37, 249/8 → 31, 98/8 → 12, 399/8 → 49.
    expect(n).toBe(37 + 31 + 12 + 49);
    const key = (r: number[]) => r.join(',');
    const shuffled = await rows(a, 0, n - 1);
    const unshuffled = await rows(plain, 0, n - 1);
    expect(shuffled.map(key).sort()).toEqual(unshuffled.map(key).sort());
    expect(shuffled).not.toEqual(unshuffled);
    expect(await rows(b, 0, n - 1)).toEqual(shuffled);
    expect(await rows(c, 0, n - 1)).not.toEqual(shuffled);
    // Epoch 1 is a different permutation of the same sequences.
    const epoch1 = await rows(a, n, 2 * n - 1);
    expect(epoch1.map(key).sort()).toEqual(unshuffled.map(key).sort());
    expect(epoch1).not.toEqual(shuffled);
    for (const d of [a, b, c, plain]) await d.close();
  });

  it('maps coordinator batch ids (contiguous partition of a round) to disjoint sequences', async () => {
    const dir = tempDir();
    writeShardSet(dir, ramp([900, 800, 700]), { chunkBytes: 256 });
    const ds = createTokenDataset(await openLocalShards(dir), { seqLen: 4, shuffleSeed: 123 });
    // Like the coordinator: total = 101 sequences from data_index 17, split over 7 trainers, base = 14,
    // remainder 3 to the first trainers → sizes 15,15,15,14,14,14,14.
    const T = 7;
    const total = 101;
    let start = 17;
    const seen = new Set<string>();
    for (let t = 0; t < T; t++) {
      const size = Math.floor(total / T) + (t < total % T ? 1 : 0);
      const batch = await ds.getBatch({ start, end: start + size - 1 });
      expect(batch.indices.length).toBe(size);
      for (const i of batch.indices) {
        const p = ds.pointer(i);
        const k = `${p.shard}:${p.tokenOffset}`;
        expect(seen.has(k)).toBe(false);
        seen.add(k);
      }
      start += size;
    }
    expect(seen.size).toBe(total);
    await ds.close();
  });

  it('gives identical batches with async and sync positioned reads, with and without chunk checks', async () => {
    const dir = tempDir();
    writeShardSet(dir, ramp([500, 333]), { chunkBytes: 64 });
    const sets = await Promise.all(
      [
        { verify: 'none' as const },
        { verify: 'none' as const, syncReads: true },
        { verify: 'chunks' as const, syncReads: true },
        { verify: 'full' as const },
      ].map(async (o) => createTokenDataset(await openLocalShards(dir, o), { seqLen: 16, shuffleSeed: 3 })),
    );
    const n = sets[0]!.numSequences;
    const ref = await rows(sets[0]!, 0, n - 1);
    expect(ref).toHaveLength(31 + 20); // 499/16 → 31, 332/16 → 20
    for (const s of sets.slice(1)) expect(await rows(s, 0, n - 1)).toEqual(ref);
    for (const s of sets) await s.close();
  });

  it('flags token ids >= vocabSize with the file and offset, and counts them', async () => {
    const dir = tempDir();
    const tokens = ramp([40])[0]!;
    tokens[13] = 1000; // vocabSize is 1000
    writeShardSet(dir, [tokens], { vocabSize: 1000 });
    const store = await openLocalShards(dir);
    const ds = createTokenDataset(store, { seqLen: 4 });
    expect(Array.from(await ds.getSequence(0))).toEqual([0, 1, 2, 3, 4]);
    // Sequence 3 covers offsets 12..16.
    await expect(ds.getSequence(3)).rejects.toMatchObject({
      code: 'TOKEN_OUT_OF_RANGE',
      details: { file: 'shard-00000.bin', tokenOffset: 13, value: 1000, vocabSize: 1000 },
    });
    await expect(ds.getBatch({ start: 2, end: 4 })).rejects.toMatchObject({ code: 'TOKEN_OUT_OF_RANGE' });
    expect(store.errors.get('TOKEN_OUT_OF_RANGE')).toBe(2);
    // The dataset still serves good sequences afterwards.
    expect(Array.from(await ds.getSequence(5))).toEqual([20, 21, 22, 23, 24]);
    await ds.close();
  });

  it('detects u32 ids above 2^31 too', async () => {
    const dir = tempDir();
    writeShardSet(dir, [[1, 2, 3, 2 ** 32 - 1, 5]], { tokenBytes: 4, vocabSize: 100_000 });
    const ds = createTokenDataset(await openLocalShards(dir), { seqLen: 4 });
    await expect(ds.getSequence(0)).rejects.toMatchObject({
      code: 'TOKEN_OUT_OF_RANGE',
      details: { value: 2 ** 32 - 1 },
    });
    await ds.close();
  });

  it('detects truncated shards and checksum mismatches', async () => {
    const dir = tempDir();
    writeShardSet(dir, ramp([64, 64]), { chunkBytes: 32 });
    truncateSync(join(dir, 'shard-00001.bin'), 100);
    await expect(openLocalShards(dir)).rejects.toMatchObject({
      code: 'TRUNCATED_SHARD',
      details: { file: 'shard-00001.bin', actualBytes: 100, expectedBytes: 128 },
    });

    const dir2 = tempDir();
    writeShardSet(dir2, ramp([64, 64]), { chunkBytes: 32 });
    const p = join(dir2, 'shard-00000.bin');
    const bytes = readFileSync(p);
    bytes[70] = bytes[70]! ^ 1; // token 35, in chunk 2 (bytes 64..95); still < vocab
    writeFileSync(p, bytes);
    await expect(openLocalShards(dir2, { verify: 'full' })).rejects.toMatchObject({
      code: 'CHECKSUM_MISMATCH',
      details: { file: 'shard-00000.bin' },
    });
    const store = await openLocalShards(dir2, { verify: 'chunks' });
    const ds = createTokenDataset(store, { seqLen: 8 });
    expect(Array.from(await ds.getSequence(0))).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]); // chunks 0-1 are fine
    await expect(ds.getSequence(4)).rejects.toMatchObject({
      code: 'CHECKSUM_MISMATCH',
      details: { chunk: 2 },
    });
    expect(store.errors.get('CHECKSUM_MISMATCH')).toBe(1);
    await ds.close();
  });

  it('rejects bad parameters and indices with typed errors', async () => {
    const dir = tempDir();
    writeShardSet(dir, ramp([10]));
    const store = await openLocalShards(dir);
    expect(() => createTokenDataset(store, { seqLen: 0 })).toThrow(
      expect.objectContaining({
        code: 'INVALID_PARAMETER',
        details: expect.objectContaining({ parameter: 'seqLen' }),
      }),
    );
    expect(() => createTokenDataset(store, { seqLen: 10 })).toThrow(/seqLen 10 is too long/);
    const ds = createTokenDataset(store, { seqLen: 3 });
    await expect(ds.getSequence(-1)).rejects.toMatchObject({ code: 'INDEX_OUT_OF_RANGE' });
    await expect(ds.getSequence(1.5)).rejects.toMatchObject({ code: 'INDEX_OUT_OF_RANGE' });
    await expect(ds.getBatch({ start: 5, end: 4 })).rejects.toMatchObject({
      code: 'INDEX_OUT_OF_RANGE',
      details: { parameter: 'batchId' },
    });
    await expect(store.read(0, 18, 4)).rejects.toMatchObject({ code: 'INDEX_OUT_OF_RANGE' });
    await expect(openLocalShards(join(dir, 'nope'))).rejects.toMatchObject({ code: 'NOT_FOUND' });
    writeFileSync(join(dir, 'manifest.json'), '{"format":"psyche-token-shards","version":1,"tokenBytes":3}');
    await expect(openLocalShards(dir)).rejects.toMatchObject({
      code: 'INVALID_MANIFEST',
      details: { field: 'tokenBytes' },
    });
    await ds.close();
  });
});

describe('createWeightedMix', () => {
  it('blends by weight with the hand-derived greedy order and exact proportions', async () => {
    const d1 = tempDir();
    const d2 = tempDir();
    writeShardSet(d1, ramp([100]));
    writeShardSet(d2, [Array.from({ length: 100 }, (_, j) => 500 + j)]);
    const a = createTokenDataset(await openLocalShards(d1), { seqLen: 4 });
    const b = createTokenDataset(await openLocalShards(d2), { seqLen: 4 });
    const mix = createWeightedMix([
      { source: a, weight: 3 },
      { source: b, weight: 1 },
    ]);
    // Weights 0.75/0.25; pick argmax(w_d·(i+1) − taken_d), ties → lowest:
    // i=0: .75 vs .25 → 0; i=1: .5 vs .5 → 0; i=2: .25 vs .75 → 1; i=3: 1 vs 0 → 0;
    // i=4: .75 vs .25 → 0; i=5: .5 vs .5 → 0; i=6: .25 vs .75 → 1; i=7: 1 vs 0 → 0.
    const loc = Array.from({ length: 8 }, (_, i) => mix.locate(i));
    expect(loc.map((l) => l.source)).toEqual([0, 0, 1, 0, 0, 0, 1, 0]);
    expect(loc.map((l) => l.index)).toEqual([0, 1, 0, 2, 3, 4, 1, 5]);
    const r = await rows(mix, 2, 3);
    expect(r).toEqual([Array.from(await b.getSequence(0)), Array.from(await a.getSequence(2))]);
    let fromB = 0;
    for (let i = 0; i < 4000; i++) fromB += mix.locate(i).source;
    expect(fromB).toBe(1000); // exactly a quarter at a multiple of 4
    expect(mix.numSequences).toBe(a.numSequences + b.numSequences);
    await mix.close();
  });

  it('refuses sources with different tokenizers, seqLen or bad weights', async () => {
    const d1 = tempDir();
    const d2 = tempDir();
    writeShardSet(d1, ramp([50]));
    writeShardSet(d2, ramp([50]), { tokenizerId: 'other' });
    const a = createTokenDataset(await openLocalShards(d1), { seqLen: 4 });
    const b = createTokenDataset(await openLocalShards(d2), { seqLen: 4 });
    const a8 = createTokenDataset(await openLocalShards(d1), { seqLen: 8 });
    expect(() =>
      createWeightedMix([
        { source: a, weight: 1 },
        { source: b, weight: 1 },
      ]),
    ).toThrow(/tokenizer other/);
    expect(() =>
      createWeightedMix([
        { source: a, weight: 1 },
        { source: a8, weight: 1 },
      ]),
    ).toThrow(/seqLen/);
    expect(() => createWeightedMix([{ source: a, weight: 0 }])).toThrow(
      expect.objectContaining({ details: expect.objectContaining({ parameter: 'sources[0].weight' }) }),
    );
    expect(() => createWeightedMix([])).toThrow(expect.objectContaining({ code: 'INVALID_PARAMETER' }));
    for (const d of [a, b, a8]) await d.close();
  });
});
