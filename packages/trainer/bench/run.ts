/**
 * Trainer benchmark: real local testnets (1 coordinator + N node processes on 127.0.0.1, started through the
 * `psyche local-testnet --json` CLI of `@psyche/runner`) for N = 1, 2, 4. Per node and round it reads the nodes'
 * JSON events and reports tokens/s, the share of round time spent computing (forward/backward/compress) vs
 * communicating and waiting, and the DisTrO bytes sent per round vs dense fp32 gradients.
 * Writes `bench-results/trainer.json`. Run: `pnpm --filter @psyche/trainer bench`.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const bin = join(root, 'packages/runner/src/bin.ts');
const tsx = createRequire(join(root, 'package.json')).resolve('tsx');
const STEPS = Number(process.env.BENCH_STEPS ?? 10);
const WARMUP_ROUNDS = 2; // the first rounds include wasm compilation and mesh formation

type Ev = Record<string, unknown> & { source: string; event?: string; time?: string };

function runTestnet(nodes: number): Promise<Ev[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        '--conditions=@psyche/source',
        '--import',
        tsx,
        '--import',
        join(root, 'scripts/polyfills.mjs'),
        bin,
        'local-testnet',
        '--nodes',
        String(nodes),
        '--steps',
        String(STEPS),
        '--json',
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const events: Ev[] = [];
    let buf = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      const lines = buf.split('\n');
      buf = lines.pop()!;
      for (const l of lines) if (l.startsWith('{')) events.push(JSON.parse(l) as Ev);
    });
    child.on('exit', (code) =>
      code === 0 ? resolve(events) : reject(new Error(`testnet of ${nodes} exited ${code}`)),
    );
  });
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

const results: Record<string, unknown>[] = [];
let backend = 'wasm';
let parameters = 0;
for (const nodes of [1, 2, 4]) {
  const events = await runTestnet(nodes);
  const perNode = [...new Set(events.filter((e) => e.source.startsWith('node')).map((e) => e.source))].map(
    (src) => {
      const mine = events.filter((e) => e.source === src);
      const started = mine.find((e) => e.event === 'started');
      backend = String(started?.backend ?? backend);
      parameters = Number(started?.parameters ?? parameters);
      const trained = mine.filter((e) => e.event === 'round:trained');
      const applied = mine.filter((e) => e.event === 'round:applied');
      const rows: {
        computeMs: number;
        roundMs: number;
        tokens: number;
        bytesSent: number;
        bytesOut: number;
      }[] = [];
      for (let i = 1; i < applied.length; i++) {
        const step = applied[i]!.step as number;
        const t = trained.find((e) => e.step === step);
        if (t === undefined || step <= WARMUP_ROUNDS) continue;
        rows.push({
          computeMs: t.computeMs as number,
          roundMs: Date.parse(applied[i]!.time!) - Date.parse(applied[i - 1]!.time!),
          tokens: t.tokens as number,
          bytesSent: t.bytesSent as number,
          bytesOut: (applied[i]!.bytesOut as number) - (applied[i - 1]!.bytesOut as number),
        });
      }
      const roundMs = mean(rows.map((r) => r.roundMs));
      const computeMs = mean(rows.map((r) => r.computeMs));
      return {
        rounds: rows.length,
        tokensPerRound: mean(rows.map((r) => r.tokens)),
        computeTokensPerSec: mean(rows.map((r) => r.tokens / (r.computeMs / 1000))),
        effectiveTokensPerSec: mean(rows.map((r) => r.tokens / (r.roundMs / 1000))),
        roundMs,
        computeMs,
        computeShare: computeMs / roundMs,
        communicationShare: 1 - computeMs / roundMs,
        resultBytesPerRound: mean(rows.map((r) => r.bytesSent)),
        servedBytesPerRound: mean(rows.map((r) => r.bytesOut)),
      };
    },
  );
  const denseFp32 = parameters * 4;
  const r = {
    name: `testnet-${nodes}-nodes`,
    nodes,
    steps: STEPS,
    parameters,
    perNodeMean: {
      tokensPerSecCompute: mean(perNode.map((p) => p.computeTokensPerSec)),
      tokensPerSecEffective: mean(perNode.map((p) => p.effectiveTokensPerSec)),
      roundMs: mean(perNode.map((p) => p.roundMs)),
      computeMs: mean(perNode.map((p) => p.computeMs)),
      computeShare: mean(perNode.map((p) => p.computeShare)),
      communicationShare: mean(perNode.map((p) => p.communicationShare)),
      resultBytesPerRound: mean(perNode.map((p) => p.resultBytesPerRound)),
      servedBytesPerRound: mean(perNode.map((p) => p.servedBytesPerRound)),
    },
    denseFp32BytesPerRound: denseFp32,
    compressionVsDenseFp32: denseFp32 / mean(perNode.map((p) => p.resultBytesPerRound)),
    swarmTokensPerSec: mean(perNode.map((p) => p.effectiveTokensPerSec)) * nodes,
    perNode,
  };
  results.push(r);
  console.log(JSON.stringify({ nodes, ...r.perNodeMean, compressionVsDenseFp32: r.compressionVsDenseFp32 }));
}

const out = {
  package: '@psyche/trainer',
  date: new Date().toISOString(),
  machine: { cpus: cpus().length, node: process.version, backend },
  notes:
    'Each testnet: 1 coordinator + N node processes on one machine; global batch 8 sequences x 64 tokens split among the N nodes; the round time includes the coordinator state machine (integer-second timeouts: RoundWitness lasts >= 1 s), gossip, blob transfers and waiting for the slowest node. All processes share the machine cores, so per-node compute slows as N grows. Rounds <= 2 excluded (wasm compilation, mesh formation). Result bytes are the 1-bit DisTrO payload a node produces per round; dense fp32 = 4 bytes x parameters.',
  results,
};
mkdirSync(join(root, 'bench-results'), { recursive: true });
writeFileSync(join(root, 'bench-results/trainer.json'), `${JSON.stringify(out, null, 2)}\n`);
console.log('wrote bench-results/trainer.json');
