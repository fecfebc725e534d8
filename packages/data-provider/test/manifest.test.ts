import { describe, expect, it } from 'vitest';
import { DataProviderError, parseManifest, type ShardManifest } from '../src/index.js';

function valid(): ShardManifest {
  return {
    format: 'psyche-token-shards',
    version: 1,
    tokenBytes: 2,
    vocabSize: 258,
    tokenizer: { id: 'psyche-byte-v1', kind: 'byte', vocabSize: 258, eosTokenId: 256 },
    chunkBytes: 8,
    shards: [
      {
        file: 'shard-00000.bin',
        tokens: 5,
        bytes: 10,
        sha256: 'a'.repeat(64),
        chunkSha256: ['b'.repeat(32), 'c'.repeat(32)],
      },
    ],
    totalTokens: 5,
  };
}

// biome-ignore lint/suspicious/noExplicitAny: the cases mutate arbitrary (possibly invalid) manifest fields
type Loose = Record<string, any>;

describe('parseManifest', () => {
  it('accepts a valid manifest', () => {
    expect(parseManifest(valid()).totalTokens).toBe(5);
  });

  const cases: [string, (m: Loose) => void][] = [
    ['format', (m) => (m.format = 'x')],
    ['version', (m) => (m.version = 2)],
    ['tokenBytes', (m) => (m.tokenBytes = 3)],
    ['vocabSize', (m) => (m.vocabSize = 70000)], // > 2^16 with 2-byte tokens
    ['tokenizer.vocabSize', (m) => (m.tokenizer.vocabSize = 257)],
    ['tokenizer.eosTokenId', (m) => (m.tokenizer.eosTokenId = 258)],
    ['chunkBytes', (m) => (m.chunkBytes = 6)],
    ['shards[0].file', (m) => (m.shards[0].file = '../etc/passwd')],
    ['shards[0].bytes', (m) => (m.shards[0].bytes = 11)],
    ['shards[0].sha256', (m) => (m.shards[0].sha256 = 'xyz')],
    ['shards[0].chunkSha256', (m) => m.shards[0].chunkSha256.pop()],
    ['totalTokens', (m) => (m.totalTokens = 6)],
  ];
  it.each(cases)('names the bad field %s', (field, mutate) => {
    const m = valid() as unknown as Loose;
    mutate(m);
    try {
      parseManifest(m, 'test.json');
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(DataProviderError);
      expect((e as DataProviderError).code).toBe('INVALID_MANIFEST');
      expect((e as DataProviderError).details.field).toBe(field);
      expect((e as Error).message).toContain('test.json');
    }
  });

  it('rejects non-objects', () => {
    expect(() => parseManifest(null)).toThrow(/must be an object/);
    expect(() => parseManifest([1])).toThrow(DataProviderError);
  });
});
