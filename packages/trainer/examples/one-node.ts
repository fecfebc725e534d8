// One node training 3 steps against an in-process coordinator on 127.0.0.1. Run from packages/trainer:
//   node --conditions=@psyche/source --import tsx --import ../../scripts/polyfills.mjs examples/one-node.ts
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CoordinatorState } from '@psyche/coordinator';
import {
  generateKeypair,
  LocalCoordinatorClient,
  type PsychePayloads,
  psycheEngine,
  startCoordinatorServer,
  validateRunConfig,
  writeKeypairFile,
} from '@psyche/coordinator-client';
import { createTokenDataset, ensureDefaultDataset, openLocalShards } from '@psyche/data-provider';
import { MlaModel } from '@psyche/model-mla';
import { createP2PNode } from '@psyche/p2p-transport';
import { setupBackend, TrainerNode } from '@psyche/trainer';

const dir = mkdtempSync(join(tmpdir(), 'psyche-one-node-'));
const server = await startCoordinatorServer({
  engine: psycheEngine(),
  config: validateRunConfig({
    run_id: 'demo',
    server: { data_dir: join(dir, 'coordinator'), tick_interval_ms: 100 },
    coordinator: {
      warmup_time: 10,
      cooldown_time: 1,
      max_round_train_time: 10,
      round_witness_time: 1,
      epoch_time: 600,
      total_steps: 4,
      init_min_clients: 1,
      min_clients: 1,
      global_batch_size_start: 4,
      global_batch_size_end: 4,
    },
    model: { max_seq_len: 64, lr_schedule: { type: 'constant', base_lr: 0.003 } },
  }),
});
await setupBackend('wasm');
const keypair = generateKeypair();
const keyFile = join(dir, 'id.json');
writeKeypairFile(keyFile, keypair); // one key: coordinator identity and libp2p identity
const client = await LocalCoordinatorClient.connect<CoordinatorState, PsychePayloads>({
  url: server.wsUrl,
  keypair,
});
const p2p = await createP2PNode({ runId: 'demo', keyFile });
await p2p.start();
const { dir: shards } = await ensureDefaultDataset();
const data = createTokenDataset(await openLocalShards(shards), { seqLen: 64, shuffleSeed: 'demo' });
const model = MlaModel.create(
  { vocab_size: 258, hidden_size: 64, intermediate_size: 128, q_lora_rank: null },
  { seed: 0 },
);

const node = new TrainerNode({
  client,
  p2p,
  model,
  data,
  distro: {
    compressionDecay: 0.999,
    compressionTopk: 8,
    compressionChunk: 32,
    quantize1bit: true,
    weightDecay: 0,
  },
  microBatchSize: 2,
  clipGradNorm: 1,
  paramsStep: 1,
  onEvent: (e) => e.event === 'round:trained' && console.log(`step ${e.step}: loss ${e.loss.toFixed(3)}`),
});
const stats = await node.run();
console.log(
  `trained ${stats.roundsTrained} rounds, applied ${stats.roundsApplied}, params ${stats.lastHash?.slice(0, 16)}`,
);
await Promise.all([client.close(), p2p.stop(), data.close()]);
model.dispose();
await server.stop();
