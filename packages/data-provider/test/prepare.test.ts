import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  createByteTokenizer,
  createTokenDataset,
  loadHuggingFaceTokenizer,
  openLocalShards,
  type PrepareOptions,
  prepare,
} from '../src/index.js';
import { handMadeTokenizerJson, REPO_ROOT, sampleText, tempDir, tsNodeArgs } from './helpers.js';

function u16(path: string): number[] {
  const b = readFileSync(path);
  return Array.from({ length: b.length / 2 }, (_, i) => b.readUInt16LE(i * 2));
}

function shardBytes(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of readdirSync(dir).sort())
    if (f.endsWith('.bin') || f === 'manifest.json') out[f] = readFileSync(join(dir, f)).toString('base64');
  return out;
}

describe('prepare', () => {
  it('writes exact shards for a hand-derived case', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'a.txt'), 'hello\n');
    writeFileSync(join(dir, 'b.txt'), 'wörld');
    const out = join(dir, 'out');
    const res = await prepare({ inputs: [join(dir, '*.txt')], outDir: out, shardTokens: 5, chunkBytes: 4 });
    // a.txt: h e l l o \n EOS = 104 101 108 108 111 10 256; b.txt: w ö(0xC3 0xB6) r l d EOS = 119 195 182 114 108 100 256.
    // 14 tokens in shards of 5 → [5, 5, 4].
    expect(res.complete).toBe(true);
    expect(res.manifest!.shards.map((s) => s.tokens)).toEqual([5, 5, 4]);
    expect(res.manifest!.totalTokens).toBe(14);
    expect(res.manifest!.tokenBytes).toBe(2);
    expect(u16(join(out, 'shard-00000.bin'))).toEqual([104, 101, 108, 108, 111]);
    expect(u16(join(out, 'shard-00001.bin'))).toEqual([10, 256, 119, 195, 182]);
    expect(u16(join(out, 'shard-00002.bin'))).toEqual([114, 108, 100, 256]);
    // chunkBytes 4 = 2 tokens: a 10-byte shard has 3 chunk hashes.
    expect(res.manifest!.shards[0]!.chunkSha256).toHaveLength(3);
    expect(existsSync(join(out, '.prepare-state.json'))).toBe(false);
    expect(existsSync(join(out, '.prepare.lock'))).toBe(false);
  });

  it('round-trips text → shards → tokens → text over many shards (byte tokenizer)', async () => {
    const dir = tempDir();
    const docs = [sampleText(70_000, 1), sampleText(1_000, 2), sampleText(150_000, 3)];
    for (const [i, d] of docs.entries()) writeFileSync(join(dir, `doc${i}.txt`), d);
    const out = join(dir, 'out');
    const res = await prepare({ inputs: [dir], outDir: out, shardTokens: 10_000 });
    const expectedTokens = docs.reduce((a, d) => a + Buffer.byteLength(d) + 1, 0);
    expect(res.manifest!.totalTokens).toBe(expectedTokens);
    const all = res.manifest!.shards.flatMap((s) => u16(join(out, s.file)));
    const tok = createByteTokenizer();
    expect(tok.decode(all)).toBe(`${docs.join('<|endoftext|>')}<|endoftext|>`);

    // Through the dataset: stitching the unshuffled sequences of shard 0 (each shares its last token with
    // the next one's first) gives back the shard's token stream and hence the text.
    const seqLen = 100;
    const ds = createTokenDataset(await openLocalShards(out), { seqLen });
    const perShard0 = Math.floor((res.manifest!.shards[0]!.tokens - 1) / seqLen); // 9999/100 = 99
    expect(perShard0).toBe(99);
    const batch = await ds.getBatch({ start: 0, end: perShard0 - 1 });
    const stitched: number[] = [];
    for (let i = 0; i < perShard0; i++) {
      const row = Array.from(batch.tokens.subarray(i * batch.width, (i + 1) * batch.width));
      expect(row[0]).toBe(stitched.length === 0 ? row[0] : stitched[stitched.length - 1]);
      stitched.push(...(i === 0 ? row : row.slice(1)));
    }
    expect(stitched).toEqual(all.slice(0, perShard0 * seqLen + 1));
    expect(tok.decode(stitched)).toBe(
      Buffer.from(docs[0]!)
        .subarray(0, perShard0 * seqLen + 1)
        .toString('utf8'),
    );
    await ds.close();
  });

  it('reads JSONL with a chosen field; bad lines throw or are skipped and counted', async () => {
    const dir = tempDir();
    const lines = [
      JSON.stringify({ body: 'first doc' }),
      '',
      JSON.stringify({ body: 'zweites Dokument ü' }),
      'not json',
      JSON.stringify({ other: 1 }),
    ];
    writeFileSync(join(dir, 'd.jsonl'), `${lines.join('\n')}\n`);
    await expect(
      prepare({ inputs: [join(dir, 'd.jsonl')], outDir: join(dir, 'o1'), jsonlField: 'body' }),
    ).rejects.toMatchObject({
      code: 'INVALID_INPUT',
      details: { parameter: 'inputs', offset: Buffer.byteLength(`${lines.slice(0, 3).join('\n')}\n`) },
    });
    const res = await prepare({
      inputs: [join(dir, 'd.jsonl')],
      outDir: join(dir, 'o2'),
      jsonlField: 'body',
      skipInvalidLines: true,
    });
    expect(res.skippedLines).toBe(2);
    expect(res.errors.get('INVALID_INPUT')).toBe(2);
    const ds = await openLocalShards(join(dir, 'o2'));
    const tokens = u16(join(dir, 'o2', ds.manifest.shards[0]!.file));
    expect(createByteTokenizer().decode(tokens)).toBe(
      'first doc<|endoftext|>zweites Dokument ü<|endoftext|>',
    );
    await ds.close();
  });

  it('round-trips with a Hugging Face tokenizer.json', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(handMadeTokenizerJson()));
    const tok = await loadHuggingFaceTokenizer(join(dir, 'tokenizer.json'));
    const text = sampleText(200_000, 9);
    writeFileSync(join(dir, 'c.txt'), text);
    const res = await prepare({
      inputs: [join(dir, 'c.txt')],
      outDir: join(dir, 'out'),
      tokenizer: tok,
      shardTokens: 50_000,
    });
    expect(res.manifest!.tokenizer.id).toBe(tok.info.id);
    expect(res.manifest!.vocabSize).toBe(260);
    const all = res.manifest!.shards.flatMap((s) => u16(join(dir, 'out', s.file)));
    expect(all.some((t) => t === 258)).toBe(true); // " the" merged
    expect(all[all.length - 1]).toBe(259); // EOS
    expect(tok.decode(all.slice(0, -1))).toBe(text);
  });

  it('uses u32 tokens when asked and checks tokenBytes against the vocabulary', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'a.txt'), 'abc');
    const res = await prepare({ inputs: [join(dir, 'a.txt')], outDir: join(dir, 'o'), tokenBytes: 4 });
    expect(readFileSync(join(dir, 'o', 'shard-00000.bin'))).toEqual(
      Buffer.from([97, 0, 0, 0, 98, 0, 0, 0, 99, 0, 0, 0, 0, 1, 0, 0]),
    );
    expect(res.manifest!.tokenBytes).toBe(4);
    const big = {
      ...createByteTokenizer(),
      info: { id: 'x', kind: 'byte' as const, vocabSize: 70_000, eosTokenId: null },
    };
    await expect(
      prepare({ inputs: [join(dir, 'a.txt')], outDir: join(dir, 'o2'), tokenizer: big, tokenBytes: 2 }),
    ).rejects.toMatchObject({
      code: 'INVALID_PARAMETER',
      details: { parameter: 'tokenBytes' },
    });
  });

  it('rejects bad parameters with typed errors', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'a.txt'), 'abc');
    const base: PrepareOptions = { inputs: [join(dir, 'a.txt')], outDir: join(dir, 'o') };
    await expect(prepare({ ...base, shardTokens: 0 })).rejects.toMatchObject({
      code: 'INVALID_PARAMETER',
      details: { parameter: 'shardTokens' },
    });
    await expect(prepare({ ...base, chunkBytes: 6 })).rejects.toMatchObject({
      code: 'INVALID_PARAMETER',
      details: { parameter: 'chunkBytes' },
    });
    await expect(prepare({ ...base, inputs: [] })).rejects.toMatchObject({
      code: 'INVALID_PARAMETER',
      details: { parameter: 'inputs' },
    });
    await expect(prepare({ ...base, inputs: [join(dir, 'missing.txt')] })).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    await expect(prepare({ ...base, inputs: [join(dir, '*.md')] })).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
  });

  it('expands globs and directories in a deterministic order', async () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'sub', 'deep'), { recursive: true });
    writeFileSync(join(dir, 'b.txt'), 'B');
    writeFileSync(join(dir, 'a.txt'), 'A');
    writeFileSync(join(dir, 'sub', 'c.txt'), 'C');
    writeFileSync(join(dir, 'sub', 'deep', 'd.txt'), 'D');
    writeFileSync(join(dir, 'sub', 'x.md'), 'X');
    const res = await prepare({ inputs: [join(dir, '**/*.txt')], outDir: join(dir, 'o') });
    // sorted relative paths: a.txt, b.txt, sub/c.txt, sub/deep/d.txt
    expect(createByteTokenizer().decode(u16(join(dir, 'o', 'shard-00000.bin')), { skipSpecial: true })).toBe(
      'ABCD',
    );
    expect(
      (res.manifest!.source!.files as { path: string }[]).map((f) => f.path.slice(dir.length + 1)),
    ).toEqual(['a.txt', 'b.txt', join('sub', 'c.txt'), join('sub', 'deep', 'd.txt')]);
  });

  it('resumes an interrupted run to byte-identical output and refuses other settings', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'x.txt'), sampleText(100_000, 5));
    writeFileSync(
      join(dir, 'y.jsonl'),
      Array.from({ length: 300 }, (_, i) => JSON.stringify({ text: sampleText(300, i) })).join('\n'),
    );
    const opts = { inputs: [join(dir, 'x.txt'), join(dir, 'y.jsonl')], shardTokens: 7_777, chunkBytes: 1024 };
    const ref = join(dir, 'ref');
    await prepare({ ...opts, outDir: ref });
    const staged = join(dir, 'staged');
    const r1 = await prepare({ ...opts, outDir: staged, maxShards: 3 });
    expect(r1).toMatchObject({ complete: false, shardsWritten: 3, manifest: null });
    await expect(prepare({ ...opts, shardTokens: 5000, outDir: staged })).rejects.toMatchObject({
      code: 'PREPARE_STATE_MISMATCH',
    });
    const r2 = await prepare({ ...opts, outDir: staged, maxShards: 4 });
    expect(r2).toMatchObject({ complete: false, resumed: true, shardsWritten: 4 });
    const r3 = await prepare({ ...opts, outDir: staged });
    expect(r3.complete).toBe(true);
    expect(r3.resumed).toBe(true);
    expect(shardBytes(staged)).toEqual(shardBytes(ref));
    // Running again on a complete directory is a no-op.
    const r4 = await prepare({ ...opts, outDir: staged });
    expect(r4).toMatchObject({ complete: true, shardsWritten: 0 });
  });

  it('survives SIGKILL of a real prepare process and resumes to identical output', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'big.txt'), sampleText(600_000, 11));
    const opts = { inputs: [join(dir, 'big.txt')], shardTokens: 20_000, chunkBytes: 4096 };
    const ref = join(dir, 'ref');
    await prepare({ ...opts, outDir: ref });
    const out = join(dir, 'killed');
    const script = join(dir, 'run.mts');
    writeFileSync(
      script,
      `import { prepare } from ${JSON.stringify(pathToFileURL(join(REPO_ROOT, 'packages/data-provider/src/index.ts')).href)};\n` +
        `await prepare({ ...${JSON.stringify(opts)}, outDir: ${JSON.stringify(out)}, progress: { update() {}, finish() {} } });\n`,
    );
    const child = spawn(process.execPath, tsNodeArgs(script), {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const closed = new Promise<number | null>((r) => child.once('close', (code) => r(code)));
    // Kill as soon as the first shard's state is on disk (or let it finish: the result must be identical either way).
    await new Promise<void>((resolve) => {
      const t = setInterval(() => {
        if (existsSync(join(out, '.prepare-state.json')) || child.exitCode !== null) {
          clearInterval(t);
          child.kill('SIGKILL');
          resolve();
        }
      }, 5);
    });
    const code = await closed;
    // Either killed (null) or finished cleanly (0): never a crash.
    expect([null, 0], stderr).toContain(code);
    writeFileSync(join(out, 'shard-00007.bin.tmp-999999'), 'left by a crashed writer');
    const res = await prepare({ ...opts, outDir: out });
    expect(res.complete).toBe(true);
    expect(shardBytes(out)).toEqual(shardBytes(ref));
    expect(readdirSync(out).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('is parallel-safe: a second writer gets PREPARE_LOCKED, a stale lock is taken over', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'a.txt'), sampleText(50_000, 1));
    const out = join(dir, 'o');
    mkdirSync(out);
    // A live process (this one) holds the lock.
    writeFileSync(join(out, '.prepare.lock'), String(process.pid));
    await expect(prepare({ inputs: [join(dir, 'a.txt')], outDir: out })).rejects.toMatchObject({
      code: 'PREPARE_LOCKED',
      details: { pid: process.pid },
    });
    // Two concurrent calls: exactly one wins.
    writeFileSync(join(out, '.prepare.lock'), '999999999'); // no such pid: stale
    const results = await Promise.allSettled([
      prepare({ inputs: [join(dir, 'a.txt')], outDir: out }),
      prepare({ inputs: [join(dir, 'a.txt')], outDir: out }),
    ]);
    const ok = results.filter((r) => r.status === 'fulfilled');
    const locked = results.filter(
      (r) => r.status === 'rejected' && (r.reason as { code?: string }).code === 'PREPARE_LOCKED',
    );
    expect(ok.length + locked.length).toBe(2);
    expect(ok.length).toBeGreaterThanOrEqual(1);
    const ds = createTokenDataset(await openLocalShards(out, { verify: 'full' }), { seqLen: 16 });
    expect(ds.store.manifest.totalTokens).toBe(Buffer.byteLength(readFileSync(join(dir, 'a.txt'))) + 1);
    await ds.close();
  });

  it('reports progress to a sink up to the total input size', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'a.txt'), sampleText(200_000, 1));
    const seen: number[] = [];
    let finished = 0;
    await prepare({
      inputs: [join(dir, 'a.txt')],
      outDir: join(dir, 'o'),
      progress: { update: (d) => seen.push(d), finish: () => finished++ },
    });
    expect(seen.at(-1)).toBe(readFileSync(join(dir, 'a.txt')).length);
    expect([...seen].sort((a, b) => a - b)).toEqual(seen);
    expect(finished).toBe(1);
  });

  it('turns a tokenizer failure into a counted INVALID_INPUT naming the file and offset', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'a.txt'), 'fine\n');
    writeFileSync(join(dir, 'b.txt'), 'boom');
    const base = createByteTokenizer();
    const exploding = {
      info: { ...base.info, id: 'exploding' },
      decode: base.decode,
      encode(text: string) {
        if (text.includes('boom')) throw new Error('cannot tokenize');
        return base.encode(text);
      },
    };
    await expect(
      prepare({
        inputs: [join(dir, 'a.txt'), join(dir, 'b.txt')],
        outDir: join(dir, 'o'),
        tokenizer: exploding,
      }),
    ).rejects.toMatchObject({
      code: 'INVALID_INPUT',
      details: { file: join(dir, 'b.txt'), offset: 0 },
      message: expect.stringMatching(/tokenizer exploding failed: cannot tokenize/),
    });
  });

  it('aborts through its signal and stays resumable', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'a.txt'), sampleText(200_000, 1));
    const ac = new AbortController();
    ac.abort();
    await expect(
      prepare({ inputs: [join(dir, 'a.txt')], outDir: join(dir, 'o'), signal: ac.signal }),
    ).rejects.toMatchObject({ code: 'ABORTED' });
    const res = await prepare({ inputs: [join(dir, 'a.txt')], outDir: join(dir, 'o') });
    expect(res.complete).toBe(true);
  });
});
