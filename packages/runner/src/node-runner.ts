import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CoordinatorState } from '@psyche/coordinator';
import {
  type CoordinatorClient,
  type Keypair,
  LocalCoordinatorClient,
  type PsychePayloads,
  readKeypairFile,
  toHex,
} from '@psyche/coordinator-client';
import { createTokenDataset, ensureDefaultDataset, openLocalShards } from '@psyche/data-provider';
import { MlaModel, readHfCheckpoint } from '@psyche/model-mla';
import { createP2PNode } from '@psyche/p2p-transport';
import { setupBackend, type TrainerEvent, TrainerNode, type TrainerStats } from '@psyche/trainer';
import * as tf from '@tensorflow/tfjs-core';
import type { NodeConfig } from './config.js';
import { RunnerError } from './errors.js';
import { formatEvent } from './format.js';
import { type MetricsServer, startMetricsServer } from './metrics.js';

/** Where a node writes its log lines. */
export interface NodeIo {
  out: (line: string) => void;
  err: (line: string) => void;
}

/** Options of {@link runNode}. */
export interface RunNodeOptions {
  /** JSON log lines instead of human-readable progress. */
  json?: boolean;
  /** Stops the node. */
  signal?: AbortSignal;
  io?: NodeIo;
  /**
   * Connects the coordinator client (e.g. the Solana backend) instead of the WebSocket client at
   * `config.coordinator_url`. Receives the node's keypair (`key_file`).
   */
  connect?: (
    keypair: Keypair,
    signal?: AbortSignal,
  ) => Promise<CoordinatorClient<CoordinatorState, PsychePayloads>>;
}

/**
 * Runs one training node from a validated config until the run finishes or `signal` aborts: picks the tfjs backend,
 * opens the data, builds (or loads) the model, starts the P2P node, connects to the coordinator and runs
 * {@link TrainerNode}. Progress goes to `io.out` (human lines or JSON), Prometheus metrics to `metrics_port`.
 *
 * @throws {RunnerError} `STARTUP_FAILED` when a component cannot start (message names it).
 */
export async function runNode(config: NodeConfig, options: RunNodeOptions = {}): Promise<TrainerStats> {
  const io = options.io ?? {
    out: (l) => process.stdout.write(`${l}\n`),
    err: (l) => process.stderr.write(`${l}\n`),
  };
  const log = (e: TrainerEvent | Record<string, unknown>) => {
    if (options.json) io.out(JSON.stringify({ time: new Date().toISOString(), ...e }));
    else {
      const line = formatEvent(e as TrainerEvent);
      if (line !== undefined) io.out(line);
    }
  };
  const stage = async <T>(what: string, f: () => Promise<T> | T): Promise<T> => {
    try {
      return await f();
    } catch (cause) {
      throw new RunnerError(
        'STARTUP_FAILED',
        `${what}: ${(cause as Error).message}`,
        { stage: what },
        { cause },
      );
    }
  };

  await stage('backend', () => setupBackend(config.backend));
  const keypair = await stage('key_file', () => readKeypairFile(config.key_file));
  const id = toHex(keypair.publicKey);

  const client = await stage('coordinator', () => {
    if (options.connect) return options.connect(keypair, options.signal);
    if (config.coordinator_url === undefined)
      throw new RunnerError('INVALID_CONFIG', 'coordinator_url: missing', { field: 'coordinator_url' });
    return LocalCoordinatorClient.connect<CoordinatorState, PsychePayloads>(
      { url: config.coordinator_url, keypair, runId: config.run_id, reconnect: { maxDelayMs: 1000 } },
      options.signal ? { signal: options.signal } : {},
    );
  });
  const cleanups: (() => Promise<unknown> | unknown)[] = [() => client.close()];
  try {
    const first = await stage('coordinator', () =>
      client.waitFor(() => true, options.signal ? { signal: options.signal } : {}),
    );
    const seqLen = first.state.model.maxSeqLen;

    const dataDir = await stage('data', async () => {
      if (config.data.source !== 'default') return config.data.source;
      return (await ensureDefaultDataset(config.data.cache_dir ? { cacheDir: config.data.cache_dir } : {}))
        .dir;
    });
    const data = await stage('data', async () =>
      createTokenDataset(await openLocalShards(dataDir), {
        seqLen,
        shuffleSeed: config.data.shuffle_seed ?? config.run_id,
      }),
    );
    cleanups.push(() => data.close());

    const { seed, ...modelConfig } = config.model;
    let paramsStep = 1;
    const model = await stage('model', async () => {
      if (config.resume_from !== undefined) {
        const ckpt = await readHfCheckpoint(config.resume_from);
        const m = /-step(\d+)\/?$/.exec(config.resume_from);
        paramsStep = m ? Number(m[1]) + 1 : 1;
        return MlaModel.fromWeights(ckpt.config, ckpt.weights);
      }
      return MlaModel.create(
        {
          ...modelConfig,
          max_position_embeddings: Math.max(modelConfig.max_position_embeddings, seqLen + 1),
        },
        { seed },
      );
    });
    cleanups.push(() => model.dispose());

    const p2p = await stage('p2p', async () => {
      const node = await createP2PNode({
        runId: config.run_id,
        keyFile: config.key_file,
        listen: config.listen,
        allowlist: [keypair.publicKey],
        downloadTimeoutMs: 20_000,
        requestTimeoutMs: 5_000,
        fetchRetries: 2,
        retryBackoffMs: 300,
        maxBlobBytes: 256 * 1024 * 1024,
        roundTolerance: 2,
      });
      await node.start();
      return node;
    });
    cleanups.push(() => p2p.stop());

    // Discovery: publish our address in peers_dir and dial every address found there (plus bootstrap).
    const addrs = p2p.getMultiaddrs();
    if (config.peers_dir !== undefined) {
      mkdirSync(config.peers_dir, { recursive: true });
      const tmp = join(config.peers_dir, `.${id}.tmp`);
      writeFileSync(tmp, JSON.stringify({ id, addrs }));
      renameSync(tmp, join(config.peers_dir, `${id}.json`));
    }
    const dialed = new Set<string>();
    const discover = () => {
      const targets = [...config.bootstrap];
      if (config.peers_dir !== undefined) {
        for (const f of readdirSync(config.peers_dir)) {
          if (!f.endsWith('.json') || f === `${id}.json`) continue;
          try {
            const j = JSON.parse(readFileSync(join(config.peers_dir, f), 'utf8')) as { addrs: string[] };
            targets.push(...j.addrs);
          } catch {
            // a peer writing its file right now: next pass
          }
        }
      }
      const connected = new Set(p2p.getConnectedPeers());
      for (const t of targets) {
        const peer = t.split('/p2p/')[1];
        if (peer !== undefined && connected.has(peer)) continue;
        if (peer !== undefined && !p2p.isAllowed(peer)) continue;
        if (dialed.has(t) && peer === undefined) continue;
        dialed.add(t);
        p2p.dial(t).catch(() => {});
      }
    };
    const discoverTimer = setInterval(discover, 1000);
    cleanups.push(() => clearInterval(discoverTimer));

    const trainer = new TrainerNode({
      client,
      p2p,
      model,
      data,
      distro: {
        compressionDecay: config.optimizer.compression_decay,
        compressionTopk: config.optimizer.compression_topk,
        compressionChunk: config.optimizer.compression_chunk,
        quantize1bit: config.optimizer.quantize_1bit,
        weightDecay: config.optimizer.weight_decay,
      },
      microBatchSize: config.training.micro_batch_size,
      clipGradNorm: config.training.clip_grad_norm,
      overlapped: config.training.overlapped,
      paramsStep,
      ...(config.checkpoint_dir !== undefined ? { checkpointDir: config.checkpoint_dir } : {}),
      ...(config.misbehave !== undefined ? { misbehave: config.misbehave } : {}),
      onEvent: log,
    });

    let metrics: MetricsServer | undefined;
    if (config.metrics_port !== undefined) {
      metrics = await stage('metrics', () =>
        startMetricsServer(config.metrics_port!, () => ({
          stats: trainer.stats,
          p2p: p2p.metrics(),
          peers: p2p.getConnectedPeers().length,
        })),
      );
      cleanups.push(() => metrics!.close());
    }
    log({
      event: 'started',
      id,
      peerId: p2p.peerId,
      addrs,
      backend: tf.getBackend(),
      parameters: model.parameterCount(),
      seqLen,
      ...(metrics ? { metricsUrl: metrics.url } : {}),
    });
    if (!options.json) {
      io.out(
        `node ${id.slice(0, 12)} started: backend ${tf.getBackend()}, ${model.parameterCount()} parameters, seq_len ${seqLen}${metrics ? `, metrics ${metrics.url}` : ''}`,
      );
    }
    return await trainer.run(options.signal);
  } finally {
    for (const c of cleanups.reverse()) {
      try {
        await c();
      } catch {
        // best effort shutdown
      }
    }
  }
}
