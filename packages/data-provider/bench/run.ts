/**
 * Benchmarks of @psyche/data-provider. Run with `pnpm --filter @psyche/data-provider bench`; writes
 * `bench-results/data-provider.json` at the repo root. Not a CI gate.
 */

import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  createTokenDataset,
  ensureDefaultDataset,
  loadHuggingFaceTokenizer,
  openHttpShards,
  openLocalShards,
  prepare,
  resolveTypescriptLibDir,
  type ShardStore,
} from '../src/index.js';
import { handMadeTokenizerJson } from '../test/tokenizer-fixture.js';

interface Result {
  name: string;
  value: number;
  unit: string;
  params: Record<string, unknown>;
}

const results: Result[] = [];
const work = mkdtempSync(join(tmpdir(), 'psyche-dp-bench-'));

function record(name: string, value: number, unit: string, params: Record<string, unknown>) {
  results.push({ name, value: Math.round(value * 10) / 10, unit, params });
  process.stderr.write(
    `${name}: ${Math.round(value).toLocaleString('en-US')} ${unit} ${JSON.stringify(params)}\n`,
  );
}

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const r = await fn();
  return [r, (performance.now() - t0) / 1000];
}

try {
  const libDir = resolveTypescriptLibDir();
  // Exactly the default dataset's inputs (see docs/data.md).
  const ds = await ensureDefaultDataset({ cacheDir: join(work, 'cache') });
  const inputs = ds.files;

  // 1. prepare throughput: the default dataset's inputs with the byte tokenizer (best of 3).
  let best = Number.POSITIVE_INFINITY;
  let tokens = 0;
  for (let i = 0; i < 3; i++) {
    const out = join(work, `prep-byte-${i}`);
    const [res, s] = await timed(() => prepare({ inputs, outDir: out, shardTokens: 1 << 20 }));
    tokens = res.manifest!.totalTokens;
    best = Math.min(best, s);
  }
  record('prepare tokens/s (byte tokenizer, TypeScript lib files)', tokens / best, 'tokens/s', {
    tokens,
    seconds: best,
  });

  // 2. prepare throughput with a Hugging Face tokenizer.json (byte-level BPE; pure-JS tokenizer).
  const tokPath = join(work, 'tokenizer.json');
  writeFileSync(tokPath, JSON.stringify(handMadeTokenizerJson()));
  const hf = await loadHuggingFaceTokenizer(tokPath);
  const [hfRes, hfS] = await timed(() =>
    prepare({
      inputs: [join(libDir, 'lib.es5.d.ts'), join(libDir, 'lib.es2015.*.d.ts')],
      outDir: join(work, 'prep-hf'),
      tokenizer: hf,
    }),
  );
  record(
    'prepare tokens/s (Hugging Face BPE tokenizer.json)',
    hfRes.manifest!.totalTokens / hfS,
    'tokens/s',
    {
      tokens: hfRes.manifest!.totalTokens,
      seconds: hfS,
    },
  );

  // 3. read throughput, local vs HTTP (server in its own process: `psyche-data serve`), best of 3 runs.
  const root = fileURLToPath(new URL('../../../', import.meta.url));
  const tsx = join(
    dirname(createRequire(join(root, 'package.json')).resolve('tsx/package.json')),
    'dist',
    'loader.mjs',
  );
  const child = spawn(
    process.execPath,
    [
      '--conditions=@psyche/source',
      '--import',
      pathToFileURL(tsx).href,
      fileURLToPath(new URL('../src/cli.ts', import.meta.url)),
      'serve',
      ds.dir,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const url = await new Promise<string>((ok, fail) => {
    let buf = '';
    child.stdout!.on('data', (d) => {
      buf += d;
      if (buf.includes('\n')) ok((JSON.parse(buf.split('\n')[0]!) as { url: string }).url);
    });
    child.once('exit', () => fail(new Error(`serve exited: ${buf}`)));
  });
  try {
    const seqLen = 256;
    const batch = 32;
    const batches = 60;
    const cases: [string, () => Promise<ShardStore>][] = [
      ['local, verify none', () => openLocalShards(ds.dir, { verify: 'none' })],
      ['local, verify none, syncReads', () => openLocalShards(ds.dir, { verify: 'none', syncReads: true })],
      ['local, verify chunks', () => openLocalShards(ds.dir, { verify: 'chunks' })],
      ['HTTP, verify none', () => openHttpShards(url, { verify: 'none' })],
      ['HTTP, verify chunks', () => openHttpShards(url, { verify: 'chunks' })],
    ];
    for (const [label, open] of cases) {
      for (const shuffled of [true, false]) {
        let bestS = Number.POSITIVE_INFINITY;
        for (let run = 0; run < 3; run++) {
          const store = await open(); // fresh store: cold chunk cache every run
          const d = createTokenDataset(store, { seqLen, shuffleSeed: shuffled ? 'bench' : null });
          await d.getBatch({ start: 0, end: batch - 1 }); // warm-up (connections, handles)
          const [, s] = await timed(async () => {
            for (let b = 1; b <= batches; b++)
              await d.getBatch({ start: b * batch, end: (b + 1) * batch - 1 });
          });
          bestS = Math.min(bestS, s);
          await d.close();
        }
        record(
          `read sequences/s (${label}, ${shuffled ? 'shuffled' : 'sequential'})`,
          (batches * batch) / bestS,
          'sequences/s',
          {
            seqLen,
            batch,
            batches,
            seconds: bestS,
            runs: 3,
          },
        );
      }
    }
  } finally {
    child.kill('SIGTERM');
  }

  mkdirSync(join(root, 'bench-results'), { recursive: true });
  const file = join(root, 'bench-results', 'data-provider.json');
  writeFileSync(
    file,
    `${JSON.stringify(
      {
        package: '@psyche/data-provider',
        date: new Date().toISOString(),
        machine: {
          cpus: cpus().length,
          cpuModel: cpus()[0]?.model,
          node: process.version,
          backend: 'none (no tensors)',
          loadavg1m: loadavg()[0],
          note: 'shared 2-core machine; numbers are best of 3 and noisy under load',
        },
        results,
      },
      null,
      2,
    )}\n`,
  );
  process.stderr.write(`wrote ${file}\n`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
