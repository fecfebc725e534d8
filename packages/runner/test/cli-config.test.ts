import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSolanaKeypair, toHex } from '@psyche/coordinator-client';
import { afterAll, describe, expect, it } from 'vitest';
import {
  isRunnerError,
  LocalTestnet,
  loadNodeConfig,
  type RunnerError,
  renderMetrics,
  renderToml,
  runCli,
  startMetricsServer,
  validateNodeConfig,
} from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'runner-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const base = { coordinator_url: 'ws://127.0.0.1:1/ws', run_id: 'r', key_file: 'id.json' };

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (l: string) => out.push(l), err: (l: string) => err.push(l) }, out, err };
}

describe('node config', () => {
  it('fills defaults (a tiny model, 1-bit DisTrO) and resolves paths against the config directory', () => {
    const c = validateNodeConfig({ ...base, checkpoint_dir: 'ckpt' }, 'node.toml', '/srv/psyche');
    expect(c.key_file).toBe('/srv/psyche/id.json');
    expect(c.checkpoint_dir).toBe('/srv/psyche/ckpt');
    expect(c.model.vocab_size).toBe(258);
    expect(c.optimizer.quantize_1bit).toBe(true);
    expect(c.training.micro_batch_size).toBe(2);
    expect(c.backend).toBe('wasm');
    expect(c.listen).toEqual(['/ip4/127.0.0.1/tcp/0']);
  });

  it.each([
    [{ ...base, training: { micro_batch_size: 0 } }, 'training.micro_batch_size'],
    [{ ...base, optimizer: { compression_decay: 1 } }, 'optimizer.compression_decay'],
    [{ ...base, model: { hidden_size: 'big' } }, 'model.hidden_size'],
    [{ ...base, coordinator_url: 'http://x' }, 'coordinator_url'],
    [{ ...base, listen: ['/ip4/0.0.0.0/tcp/0'] }, 'listen.0'],
    [{ ...base, backend: 'webgpu' }, 'backend'],
    [{ ...base, run_id: 'x'.repeat(33) }, 'run_id'],
    [{ ...base, trainig: {} }, 'trainig'],
    [{ coordinator_url: 'ws://h/ws', run_id: 'r' }, 'key_file'],
  ])('names the bad field (%#: %s)', (raw, field) => {
    let err: unknown;
    try {
      validateNodeConfig(raw, 'node.toml');
    } catch (e) {
      err = e;
    }
    expect(isRunnerError(err, 'INVALID_CONFIG')).toBe(true);
    expect((err as RunnerError).details.field).toBe(field);
    expect((err as RunnerError).message).toContain(`node.toml: ${field}`);
  });

  it('loads TOML files and reports syntax errors and missing files with the path', () => {
    const good = join(dir, 'good.toml');
    writeFileSync(good, renderToml({ ...base, training: { micro_batch_size: 3, clip_grad_norm: 0.5 } }));
    const c = loadNodeConfig(good);
    expect(c.training).toEqual({ micro_batch_size: 3, clip_grad_norm: 0.5, overlapped: false });
    const bad = join(dir, 'bad.toml');
    writeFileSync(bad, 'run_id = "unterminated\n');
    expect(() => loadNodeConfig(bad)).toThrow(/bad\.toml: invalid TOML/);
    expect(() => loadNodeConfig(join(dir, 'missing.toml'))).toThrow(/missing\.toml: cannot read/);
  });
});

describe('metrics', () => {
  const source = {
    stats: {
      roundsTrained: 3,
      roundsApplied: 2,
      resultsAccepted: 4,
      resultsRejected: 1,
      witnessesSent: 2,
      healthChecksSent: 0,
      coordinatorRejections: 0,
      lastLoss: 4.25,
      lastTokensPerSec: null,
      lastHash: null,
      computeMs: 10,
      roundMs: 20,
      bytesProduced: 300,
      step: 7,
    },
    p2p: {
      peers: [
        { bytesIn: 100, bytesOut: 50 },
        { bytesIn: 1, bytesOut: 2 },
      ],
      announcementsAccepted: 5,
      announcementsRejected: { malformed: 2, 'bad-signature': 1 },
    } as never,
    peers: 2,
  };

  it('renders the Prometheus text format with HELP/TYPE lines and summed byte counters', () => {
    const text = renderMetrics(source);
    expect(text).toContain('# TYPE psyche_training_loss gauge\npsyche_training_loss 4.25\n');
    expect(text).toContain('psyche_round_step 7\n');
    expect(text).toContain('psyche_tokens_per_second NaN\n');
    expect(text).toContain('# TYPE psyche_bytes_in_total counter\npsyche_bytes_in_total 101\n');
    expect(text).toContain('psyche_bytes_out_total 52\n');
    expect(text).toContain('psyche_announcements_rejected_total{reason="malformed"} 2\n');
    // Every sample line is `name[{labels}] value`.
    for (const line of text
      .trim()
      .split('\n')
      .filter((l) => !l.startsWith('#'))) {
      expect(line).toMatch(/^[a-z_]+(\{[a-z]+="[a-z-]+"\})? (-?[0-9.e+]+|NaN)$/);
    }
  });

  it('serves /metrics over HTTP on 127.0.0.1 and 404s other paths', async () => {
    const server = await startMetricsServer(0, () => source);
    try {
      expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      const res = await fetch(server.url);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('text/plain');
      expect(await res.text()).toContain('psyche_peer_connections 2');
      expect((await fetch(server.url.replace('/metrics', '/other'))).status).toBe(404);
    } finally {
      await server.close();
    }
  });
});

describe('psyche CLI', () => {
  it('keygen writes a Solana-format keypair and prints its public key', async () => {
    const { io, out } = capture();
    const path = join(dir, 'k.json');
    expect(await runCli(['keygen', '--out', path], io)).toBe(0);
    const kp = parseSolanaKeypair(readFileSync(path, 'utf8'));
    expect(out).toEqual([toHex(kp.publicKey)]);
  });

  it('usage errors exit 2 and name the flag; help exits 0', async () => {
    for (const [argv, msg] of [
      [['keygen'], '--out: missing'],
      [['run'], '--config: missing'],
      [['status'], '--url: missing'],
      [['local-testnet', '--nodes', '0'], '--nodes: expected an integer in [1, 64], got 0'],
      [['bogus'], 'unknown command: bogus'],
    ] as const) {
      const { io, err } = capture();
      expect(await runCli(argv, io)).toBe(2);
      expect(err.join('\n')).toContain(msg);
    }
    const { io, out } = capture();
    expect(await runCli(['--help'], io)).toBe(0);
    expect(out.join('\n')).toContain('local-testnet --nodes <N>');
  });

  it('run with an invalid config exits 2 naming the field', async () => {
    const path = join(dir, 'invalid.toml');
    writeFileSync(path, renderToml({ ...base, training: { clip_grad_norm: -1 } }));
    const { io, err } = capture();
    expect(await runCli(['run', '--config', path], io)).toBe(2);
    expect(err.join('\n')).toContain('training.clip_grad_norm');
  });

  it('status reports an unreachable coordinator as an argument error', async () => {
    const { io, err } = capture();
    expect(await runCli(['status', '--url', 'http://127.0.0.1:9'], io)).toBe(2);
    expect(err.join('\n')).toContain('--url: cannot reach');
  });

  it('LocalTestnet rejects bad sizes naming the option', () => {
    expect(() => new LocalTestnet({ nodes: 0 })).toThrow(/nodes must be an integer/);
    expect(() => new LocalTestnet({ nodes: 2, steps: 0 })).toThrow(/steps must be an integer/);
    expect(() => new LocalTestnet({ nodes: 2, epochTime: 2 })).toThrow(/epochTime must be an integer/);
  });
});

describe('progress lines', () => {
  it('formats the main events for humans and skips state chatter', async () => {
    const { formatEvent } = await import('../src/index.js');
    expect(
      formatEvent({
        event: 'round:trained',
        step: 3,
        epoch: 0,
        height: 2,
        batches: 1,
        loss: 4.56789,
        tokens: 192,
        computeMs: 100,
        tokensPerSec: 1920.4,
        bytesSent: 4589,
      }),
    ).toBe('step 3 (epoch 0, round 2) loss 4.5679 tokens/s 1920 sent 4.5kB');
    expect(
      formatEvent({
        event: 'round:applied',
        step: 3,
        results: 2,
        expected: 3,
        hash: 'abcdef0123456789',
        applyMs: 5,
        peers: 2,
        bytesIn: 2_500_000,
        bytesOut: 10,
      }),
    ).toBe('step 3 applied 2/3 results, peers 2, bytes in 2.38MB out 10B, params abcdef012345');
    expect(
      formatEvent({ event: 'state', runState: 'Warmup', epoch: 0, step: 1, clients: 3 }),
    ).toBeUndefined();
  });
});
