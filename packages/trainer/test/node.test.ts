import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CoordinatorState } from '@psyche/coordinator';
import {
  type CoordinatorServer,
  generateKeypair,
  LocalCoordinatorClient,
  type PsychePayloads,
  psycheEngine,
  startCoordinatorServer,
  validateRunConfig,
  writeKeypairFile,
} from '@psyche/coordinator-client';
import { createTokenDataset, ensureDefaultDataset, openLocalShards } from '@psyche/data-provider';
import { loadHfCheckpoint, MlaModel } from '@psyche/model-mla';
import { createP2PNode } from '@psyche/p2p-transport';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTrainerError, parameterHash, setupBackend, type TrainerEvent, TrainerNode } from '../src/index.js';

const MODEL = {
  vocab_size: 258,
  hidden_size: 32,
  intermediate_size: 48,
  num_hidden_layers: 1,
  q_lora_rank: null,
};
const DISTRO = {
  compressionDecay: 0.999,
  compressionTopk: 8,
  compressionChunk: 32,
  quantize1bit: true,
  weightDecay: 0,
};

describe('TrainerNode against a real coordinator server and P2P node (one process, 127.0.0.1)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'trainer-node-'));
  let server: CoordinatorServer;
  beforeAll(async () => {
    await setupBackend('wasm');
    server = await startCoordinatorServer({
      engine: psycheEngine(),
      config: validateRunConfig({
        run_id: 'unit',
        server: {
          data_dir: join(dir, 'coordinator'),
          tick_interval_ms: 100,
          rate_limit_per_sec: 1000,
          rate_limit_burst: 1000,
        },
        coordinator: {
          warmup_time: 30,
          cooldown_time: 1,
          max_round_train_time: 30,
          round_witness_time: 1,
          epoch_time: 600,
          total_steps: 4,
          init_min_clients: 1,
          min_clients: 1,
          global_batch_size_start: 4,
          global_batch_size_end: 4,
        },
        model: { max_seq_len: 32, lr_schedule: { type: 'constant', base_lr: 0.003 } },
      }),
    });
  });
  afterAll(async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('trains, witnesses and applies every round, checkpoints at cooldown, and leaks no tensors', async () => {
    const keypair = generateKeypair();
    const keyFile = join(dir, 'id.json');
    writeKeypairFile(keyFile, keypair);
    const client = await LocalCoordinatorClient.connect<CoordinatorState, PsychePayloads>({
      url: server.wsUrl,
      keypair,
    });
    const p2p = await createP2PNode({ runId: 'unit', keyFile });
    await p2p.start();
    const data = createTokenDataset(await openLocalShards((await ensureDefaultDataset()).dir), {
      seqLen: 32,
      shuffleSeed: 'unit',
    });
    const model = MlaModel.create(MODEL, { seed: 0 });
    const tensorsBefore = tf.memory().numTensors;
    const events: TrainerEvent[] = [];
    const node = new TrainerNode({
      client,
      p2p,
      model,
      data,
      distro: DISTRO,
      microBatchSize: 3,
      clipGradNorm: 1,
      paramsStep: 1,
      checkpointDir: join(dir, 'ckpt'),
      onEvent: (e) => events.push(e),
    });
    const stats = await node.run(AbortSignal.timeout(240_000));
    try {
      // total_steps = 4: rounds at steps 1..3 (the run finishes when the step reaches 4).
      const trained = events.filter((e) => e.event === 'round:trained').map((e) => e.step);
      const applied = events.filter((e) => e.event === 'round:applied');
      expect(trained.length).toBeGreaterThanOrEqual(3);
      expect(applied.map((e) => e.step)).toEqual(trained);
      // One trainer: its own single batch of 4 sequences is the whole round, witnessed and applied.
      for (const e of applied) expect(e.event === 'round:applied' && [e.results, e.expected]).toEqual([1, 1]);
      expect(stats.witnessesSent).toBe(trained.length);
      expect(stats.resultsRejected).toBe(0);
      expect(stats.coordinatorRejections).toBe(0);
      // Parameters changed and the checkpoint holds exactly the final parameters.
      const fresh = MlaModel.create(MODEL, { seed: 0 });
      const initial = await parameterHash(fresh);
      fresh.dispose();
      expect(stats.lastHash).not.toBe(initial);
      const saved = events.find((e) => e.event === 'checkpoint:saved');
      expect(saved).toBeDefined();
      const restored = await loadHfCheckpoint((saved as { dir: string }).dir);
      expect(await parameterHash(restored)).toBe(stats.lastHash);
      restored.dispose();
      // Everything the loop allocated (optimizer momentum, DCT bases, batches, gradients) was released.
      expect(tf.memory().numTensors).toBe(tensorsBefore);
    } finally {
      await client.close();
      await p2p.stop();
      await data.close();
      model.dispose();
    }
  }, 300_000);

  it('rejects a bad paramsStep with a TrainerError naming it', () => {
    const model = MlaModel.create(MODEL, { seed: 0 });
    try {
      expect(
        () =>
          new TrainerNode({
            client: { id: '00'.repeat(32) } as never,
            p2p: {} as never,
            model,
            data: {} as never,
            distro: DISTRO,
            microBatchSize: 1,
            clipGradNorm: 0,
            paramsStep: 0,
          }),
      ).toThrow(expect.objectContaining({ code: 'INVALID_OPTION', details: { field: 'paramsStep' } }));
      let err: unknown;
      try {
        new TrainerNode({
          client: { id: '00'.repeat(32) } as never,
          p2p: {} as never,
          model,
          data: {} as never,
          distro: DISTRO,
          microBatchSize: 1,
          clipGradNorm: 0,
          paramsStep: 1.5,
        });
      } catch (e) {
        err = e;
      }
      expect(isTrainerError(err, 'INVALID_OPTION')).toBe(true);
    } finally {
      model.dispose();
    }
  });
});
