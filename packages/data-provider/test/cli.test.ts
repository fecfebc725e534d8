import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createTokenDataset, openHttpShards, openLocalShards, runDataCli } from '../src/index.js';
import { handMadeTokenizerJson, REPO_ROOT, runChild, sampleText, tempDir, tsNodeArgs } from './helpers.js';

const CLI = join(REPO_ROOT, 'packages', 'data-provider', 'src', 'cli.ts');

function sink() {
  let text = '';
  const stream = new Writable({
    write(chunk, _enc, cb) {
      text += chunk;
      cb();
    },
  });
  return { stream, text: () => text };
}

describe('psyche-data CLI', () => {
  it('prepares shards in a real child process and prints a JSON summary', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'a.txt'), sampleText(30_000, 1));
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(handMadeTokenizerJson()));
    const out = join(dir, 'out');
    const r = await runChild([
      ...tsNodeArgs(CLI),
      'prepare',
      join(dir, '*.txt'),
      '--out',
      out,
      '--shard-tokens',
      '10000',
      '--tokenizer',
      join(dir, 'tokenizer.json'),
    ]);
    expect(r.stderr).not.toMatch(/psyche-data: (error|unexpected)/);
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.stdout.trim()) as {
      complete: boolean;
      totalTokens: number;
      tokenizer: string;
    };
    expect(summary.complete).toBe(true);
    expect(summary.tokenizer).toMatch(/^hf:/);
    // Non-TTY stderr: the progress bar prints plain lines ending at 100%.
    expect(r.stderr).toMatch(/prepare 100\.0%/);
    const store = await openLocalShards(out, { verify: 'full' });
    expect(store.manifest.totalTokens).toBe(summary.totalTokens);
    await store.close();
  });

  it('serves a directory from a child process until killed', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'a.txt'), sampleText(20_000, 2));
    const out = join(dir, 'out');
    expect(
      await runDataCli(['prepare', join(dir, 'a.txt'), '--out', out, '--no-progress'], {
        stdout: sink().stream,
      }),
    ).toBe(0);
    const child = spawn(process.execPath, [...tsNodeArgs(CLI), 'serve', out, '--port', '0'], {
      cwd: REPO_ROOT,
    });
    const closed = new Promise<number | null>((r) => child.once('close', (code) => r(code)));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let buf = '';
        child.stdout.on('data', (d) => {
          buf += d;
          const line = buf.split('\n')[0];
          if (buf.includes('\n') && line) resolve((JSON.parse(line) as { url: string }).url);
        });
        child.once('close', () => reject(new Error(`serve exited early: ${buf}`)));
      });
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
      const http = createTokenDataset(await openHttpShards(url), { seqLen: 32 });
      const local = createTokenDataset(await openLocalShards(out), { seqLen: 32 });
      expect((await http.getBatch({ start: 0, end: 9 })).tokens).toEqual(
        (await local.getBatch({ start: 0, end: 9 })).tokens,
      );
      await local.close();
    } finally {
      child.kill('SIGTERM');
    }
    expect(await closed).toBe(0); // SIGTERM → graceful close, exit 0
  });

  it('reports bad arguments with a typed error code and exit status', async () => {
    const err = sink();
    const io = { stdout: sink().stream, stderr: err.stream };
    expect(await runDataCli(['prepare', 'x.txt'], io)).toBe(1);
    expect(err.text()).toMatch(/INVALID_PARAMETER: prepare needs --out/);
    expect(await runDataCli(['prepare', 'x.txt', '--out', tempDir(), '--shard-tokens', 'ten'], io)).toBe(1);
    expect(err.text()).toMatch(/--shard-tokens must be a non-negative integer/);
    expect(await runDataCli(['prepare', join(tempDir(), 'missing.txt'), '--out', tempDir()], io)).toBe(1);
    expect(err.text()).toMatch(/NOT_FOUND/);
    expect(await runDataCli(['prepare', 'x', '--out', 'y', '--bogus'], io)).toBe(2);
    expect(await runDataCli(['serve'], io)).toBe(1);
    expect(await runDataCli(['serve', tempDir(), '--port', '70000'], io)).toBe(1);
    expect(await runDataCli(['frobnicate'], io)).toBe(2);
    expect(err.text()).toMatch(/unknown command "frobnicate"/);
    const out = sink();
    expect(await runDataCli(['--help'], { stdout: out.stream })).toBe(0);
    expect(out.text()).toMatch(/psyche-data <command>/);
  });

  it('serve stops when its signal aborts', async () => {
    const dir = tempDir();
    const out = sink();
    const ac = new AbortController();
    const done = runDataCli(['serve', dir], { stdout: out.stream, signal: ac.signal });
    await new Promise<void>((r) => {
      const t = setInterval(() => {
        if (out.text().includes('url')) {
          clearInterval(t);
          r();
        }
      }, 5);
    });
    ac.abort();
    expect(await done).toBe(0);
  });
});
