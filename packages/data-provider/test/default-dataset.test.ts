import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  createByteTokenizer,
  createTokenDataset,
  DEFAULT_DATASET_FILE_PATTERN,
  ensureDefaultDataset,
  openLocalShards,
  resolveTypescriptLibDir,
} from '../src/index.js';
import { tempDir } from './helpers.js';

describe('embedded default dataset', () => {
  it('is built from the installed TypeScript lib.*.d.ts files, in name order, one document per file', async () => {
    const cacheDir = tempDir();
    const libDir = resolveTypescriptLibDir();
    const names = readdirSync(libDir)
      .filter((n) => DEFAULT_DATASET_FILE_PATTERN.test(n))
      .sort();
    expect(names.length).toBeGreaterThan(50);
    expect(names[0]).toBe('lib.d.ts');
    const ds = await ensureDefaultDataset({ cacheDir });
    expect(ds.files.map((f) => f.slice(libDir.length + 1))).toEqual(names);
    expect(ds.typescriptVersion).toMatch(/^\d+\.\d+\.\d+/);
    expect(ds.dir).toBe(join(cacheDir, `default-ts${ds.typescriptVersion}-byte`));
    // Byte tokenizer: one token per byte plus one <|endoftext|> per file.
    const bytes = names.map((n) => readFileSync(join(libDir, n)));
    expect(ds.manifest.totalTokens).toBe(bytes.reduce((a, b) => a + b.length, 0) + names.length);
    expect(ds.manifest.tokenizer.id).toBe('psyche-byte-v1');

    const store = await openLocalShards(ds.dir, { verify: 'full' });
    const first = createTokenDataset(store, { seqLen: 256 });
    const text = createByteTokenizer().decode(await first.getSequence(0));
    expect(text).toBe(bytes[0]!.subarray(0, 257).toString('utf8'));
    await store.close();

    // Second call: served from the cache (same manifest object content, nothing rebuilt).
    const again = await ensureDefaultDataset({ cacheDir, typescriptLibDir: libDir });
    expect(again.manifest).toEqual(ds.manifest);
  });

  it('lets concurrent callers share one build (the second waits for the lock holder)', async () => {
    const cacheDir = tempDir();
    const [a, b] = await Promise.all([
      ensureDefaultDataset({ cacheDir }),
      ensureDefaultDataset({ cacheDir }),
    ]);
    expect(a.dir).toBe(b.dir);
    expect(b.manifest.shards).toEqual(a.manifest.shards);
  });

  it('names the knob when no TypeScript lib directory is found', async () => {
    await expect(
      ensureDefaultDataset({ cacheDir: tempDir(), typescriptLibDir: join(tempDir(), 'nope') }),
    ).rejects.toMatchObject({
      code: 'NOT_FOUND',
      details: { parameter: 'typescriptLibDir' },
    });
    await expect(ensureDefaultDataset({ cacheDir: tempDir(), typescriptLibDir: tempDir() })).rejects.toThrow(
      /holds no lib\.\*\.d\.ts/,
    );
  });
});
