import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll } from 'vitest';
import type { ShardManifest } from '../src/index.js';
import { chunkHashes, sha256Hex } from '../src/internal/hash.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A fresh temp directory, removed after the file's tests. */
export function tempDir(prefix = 'psyche-dp-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

/** Deterministic pseudo-random text (mulberry32) with multi-byte characters and newlines. */
export function sampleText(bytesApprox: number, seed = 1): string {
  let s = seed >>> 0;
  const rnd = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  const words = [
    'the',
    'model',
    'trains',
    'on',
    'tokens',
    'über',
    'naïve',
    'π≈3.14',
    '数据',
    'batch',
    'seed',
    '🙂',
  ];
  const parts: string[] = [];
  let len = 0;
  while (len < bytesApprox) {
    const w = words[Math.floor(rnd() * words.length)]!;
    const sep = rnd() < 0.1 ? '\n' : ' ';
    parts.push(w, sep);
    len += Buffer.byteLength(w) + 1;
  }
  return parts.join('');
}

export { handMadeTokenizerJson } from './tokenizer-fixture.js';

/** How the fault server answers one request. */
export type Fault =
  | 'ok'
  | 'stall-headers' // never answers
  | 'stall-body' // headers and half the body, then silence
  | 'status-500'
  | 'status-404'
  | 'wrong-content-length' // announces one byte more than the range and sends the range
  | 'truncate' // announces the right length, sends half, closes the socket
  | 'ignore-range' // 200 with the whole file
  | 'lie-total' // Content-Range total one byte larger than the file
  | 'corrupt' // right lengths, one flipped byte
  | 'trickle'; // right lengths, one byte every 50 ms

/** A real HTTP server on 127.0.0.1:0 over `dir`, whose answers follow `plan(requestNumber, req)`. */
export async function startFaultServer(
  dir: string,
  plan: (n: number, req: IncomingMessage) => Fault,
): Promise<{ url: string; requests: () => number; close: () => Promise<void> }> {
  let n = 0;
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const fault = plan(n++, req);
    const name = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname.slice(1));
    let data: Buffer;
    try {
      if (name.includes('/') || name.includes('..')) throw new Error('bad path');
      statSync(join(dir, name));
      data = readFileSync(join(dir, name));
    } catch {
      res.writeHead(404).end();
      return;
    }
    if (fault === 'stall-headers') return;
    if (fault === 'status-500' || fault === 'status-404') {
      res.writeHead(fault === 'status-500' ? 500 : 404).end('fault');
      return;
    }
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    if (!m || fault === 'ignore-range') {
      res.writeHead(200, { 'content-length': data.length }).end(data);
      return;
    }
    const start = Number(m[1]);
    const end = Math.min(Number(m[2]), data.length - 1);
    let body = Buffer.from(data.subarray(start, end + 1));
    const total = fault === 'lie-total' ? data.length + 1 : data.length;
    const len = fault === 'wrong-content-length' ? body.length + 1 : body.length;
    if (fault === 'corrupt') {
      body = Buffer.from(body);
      body[0] = body[0]! ^ 0xff;
    }
    res.writeHead(206, { 'content-length': len, 'content-range': `bytes ${start}-${end}/${total}` });
    if (fault === 'stall-body' || fault === 'truncate') {
      res.write(body.subarray(0, Math.max(1, body.length >> 1)));
      if (fault === 'truncate') setTimeout(() => res.socket?.destroy(), 10);
      return;
    }
    if (fault === 'trickle') {
      let i = 0;
      const t = setInterval(() => {
        if (res.destroyed || i >= body.length) {
          clearInterval(t);
          if (!res.destroyed) res.end();
          return;
        }
        res.write(body.subarray(i, i + 1));
        i++;
      }, 50);
      res.on('close', () => clearInterval(t));
      return;
    }
    if (fault === 'wrong-content-length') {
      res.write(body);
      setTimeout(() => res.socket?.destroy(), 10);
      return;
    }
    res.end(body);
  };
  const server = createServer(handler);
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', () => ok()));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/`,
    requests: () => n,
    close: () =>
      new Promise<void>((ok) => {
        server.close(() => ok());
        server.closeAllConnections();
      }),
  };
}

/** Repo root. */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** file: URL of tsx's ESM loader (`tsx` package "." export), resolved from the repo root where it is a devDependency. */
export function tsxLoader(): string {
  const req = createRequire(join(REPO_ROOT, 'package.json'));
  return pathToFileURL(join(dirname(req.resolve('tsx/package.json')), 'dist', 'loader.mjs')).href;
}

/** Node arguments that run a TypeScript file of this repo in a child process. */
export function tsNodeArgs(file: string): string[] {
  return [
    '--conditions=@psyche/source',
    '--import',
    tsxLoader(),
    '--import',
    pathToFileURL(join(REPO_ROOT, 'scripts', 'polyfills.mjs')).href,
    file,
  ];
}

/** Runs a child process to completion, collecting output. */
export function runChild(
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((ok, fail) => {
    const child = spawn(process.execPath, args, {
      cwd: options.cwd ?? REPO_ROOT,
      env: options.env ?? process.env,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('error', fail);
    child.on('close', (code, signal) => ok({ code, signal, stdout, stderr }));
  });
}

/**
 * Writes a shard set directly (bypassing prepare) with correct sizes and hashes, so tests can craft
 * exact token values, including invalid ones. `shards[i]` are the token ids of shard i.
 */
export function writeShardSet(
  dir: string,
  shards: number[][],
  options: { tokenBytes?: 2 | 4; vocabSize?: number; chunkBytes?: number; tokenizerId?: string } = {},
): ShardManifest {
  const tokenBytes = options.tokenBytes ?? 2;
  const vocabSize = options.vocabSize ?? 1000;
  const chunkBytes = options.chunkBytes ?? 16;
  mkdirSync(dir, { recursive: true });
  const infos = shards.map((tokens, i) => {
    const buf = Buffer.alloc(tokens.length * tokenBytes);
    tokens.forEach((t, j) => {
      if (tokenBytes === 2) buf.writeUInt16LE(t, j * 2);
      else buf.writeUInt32LE(t, j * 4);
    });
    const file = `shard-${String(i).padStart(5, '0')}.bin`;
    writeFileSync(join(dir, file), buf);
    return {
      file,
      tokens: tokens.length,
      bytes: buf.length,
      sha256: sha256Hex(buf),
      chunkSha256: chunkHashes(buf, chunkBytes),
    };
  });
  const manifest: ShardManifest = {
    format: 'psyche-token-shards',
    version: 1,
    tokenBytes,
    vocabSize,
    tokenizer: { id: options.tokenizerId ?? 'test-tokens', kind: 'byte', vocabSize, eosTokenId: null },
    chunkBytes,
    shards: infos,
    totalTokens: infos.reduce((a, s) => a + s.tokens, 0),
  };
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest));
  return manifest;
}
