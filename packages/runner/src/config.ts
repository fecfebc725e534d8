import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { z } from 'zod';
import { RunnerError } from './errors.js';

const posInt = (max: number) => z.number().int().min(1).max(max);

/** Model table: `@psyche/model-mla` (DeepSeek-V2 MLA) config fields plus the init seed. Defaults: a tiny model. */
export const modelTableSchema = z.strictObject({
  vocab_size: posInt(1 << 20).default(258),
  hidden_size: posInt(1 << 16).default(64),
  intermediate_size: posInt(1 << 18).default(128),
  num_hidden_layers: posInt(256).default(2),
  num_attention_heads: posInt(256).default(4),
  kv_lora_rank: posInt(1 << 16).default(32),
  q_lora_rank: posInt(1 << 16)
    .nullable()
    .default(null),
  qk_nope_head_dim: posInt(1024).default(16),
  qk_rope_head_dim: posInt(1024).default(8),
  v_head_dim: posInt(1024).default(16),
  max_position_embeddings: posInt(1 << 20).default(512),
  /** Seed of the deterministic initialization (identical on every node). */
  seed: z.number().int().min(0).max(0x7fff_ffff).default(0),
});

/** DisTrO table (swarm-wide). */
export const optimizerTableSchema = z.strictObject({
  compression_decay: z.number().min(0).lt(1).default(0.999),
  compression_topk: posInt(1 << 20).default(8),
  compression_chunk: posInt(1 << 16).default(32),
  quantize_1bit: z.boolean().default(true),
  weight_decay: z.number().min(0).finite().default(0),
});

/** Training table. */
export const trainingTableSchema = z.strictObject({
  micro_batch_size: posInt(1 << 16).default(2),
  clip_grad_norm: z.number().min(0).finite().default(1),
  /** Psyche's overlapped pipeline (apply round h−2 while training h); swarm-wide. */
  overlapped: z.boolean().default(false),
});

/** Data table: `source = "default"` (embedded dataset) or a shard directory prepared by `psyche data prepare`. */
export const dataTableSchema = z.strictObject({
  source: z.string().min(1).default('default'),
  cache_dir: z.string().min(1).optional(),
  /** Shuffle seed of sequence positions; default: the run id. */
  shuffle_seed: z.string().min(1).optional(),
});

/** Schema of a node config file (`psyche run --config node.toml`). */
export const nodeConfigSchema = z.strictObject({
  /** Coordinator WebSocket URL, e.g. `ws://127.0.0.1:4000/ws`. */
  coordinator_url: z.string().regex(/^wss?:\/\/.+/, 'expected a ws:// or wss:// URL'),
  /** Run id (the coordinator's `run_id`); also names the gossip topic. */
  run_id: z
    .string()
    .min(1)
    .refine((s) => Buffer.byteLength(s, 'utf8') <= 32, { message: 'expected at most 32 bytes' }),
  /** Solana-format ed25519 keypair file: coordinator identity and libp2p identity. */
  key_file: z.string().min(1),
  /** P2P listen address (loopback by default). */
  listen: z.array(z.string().startsWith('/ip4/127.0.0.1/')).min(1).default(['/ip4/127.0.0.1/tcp/0']),
  /** Multiaddrs to dial at start. */
  bootstrap: z.array(z.string().min(1)).default([]),
  /** Directory where local nodes publish their multiaddrs and discover each other. */
  peers_dir: z.string().min(1).optional(),
  /** Cooldown checkpoints go here. */
  checkpoint_dir: z.string().min(1).optional(),
  /** Resume parameters from this checkpoint directory (an HF dir written at a cooldown). */
  resume_from: z.string().min(1).optional(),
  /** Prometheus `/metrics` on 127.0.0.1:<port> (0 = ephemeral); absent = off. */
  metrics_port: z.number().int().min(0).max(65535).optional(),
  /** tfjs backend; every node of a run must use the same one (bitwise-identical parameters). */
  backend: z.enum(['wasm', 'cpu']).default('wasm'),
  /** Fault injection for resilience tests only. */
  misbehave: z.enum(['garbage']).optional(),
  model: modelTableSchema.default(modelTableSchema.parse({})),
  optimizer: optimizerTableSchema.default(optimizerTableSchema.parse({})),
  training: trainingTableSchema.default(trainingTableSchema.parse({})),
  data: dataTableSchema.default(dataTableSchema.parse({})),
});

/** Node config of `psyche run --backend solana`: `coordinator_url` is not used (the RPCs come from `--rpc`). */
const solanaNodeConfigSchema = nodeConfigSchema.extend({
  coordinator_url: nodeConfigSchema.shape.coordinator_url.optional(),
});

/**
 * A validated node config (paths resolved against the config file's directory). `coordinator_url` is present
 * unless the config was validated for the Solana backend.
 */
export type NodeConfig = Omit<z.output<typeof nodeConfigSchema>, 'coordinator_url'> & {
  coordinator_url?: string;
};

/** Options of {@link validateNodeConfig} / {@link loadNodeConfig}. */
export interface NodeConfigOptions {
  /** Coordinator backend: `solana` makes `coordinator_url` optional. Default `local`. */
  backend?: 'local' | 'solana';
  /** Overrides `run_id` (the `--run-id` flag). */
  runId?: string;
}

/**
 * Validates a parsed node config. Every problem is reported with its dotted TOML path, e.g.
 * `node.toml: training.micro_batch_size: Too small: expected number to be >=1`.
 *
 * @throws {RunnerError} `INVALID_CONFIG` with `details.field` (first bad field) and `details.issues`.
 */
export function validateNodeConfig(
  raw: unknown,
  source = 'config',
  baseDir = process.cwd(),
  options: NodeConfigOptions = {},
): NodeConfig {
  const input =
    options.runId !== undefined && raw !== null && typeof raw === 'object'
      ? { ...(raw as Record<string, unknown>), run_id: options.runId }
      : raw;
  const schema = options.backend === 'solana' ? solanaNodeConfigSchema : nodeConfigSchema;
  const r = schema.safeParse(input);
  if (!r.success) {
    const issues = r.error.issues.map((i) => {
      const path = i.code === 'unrecognized_keys' ? [...i.path.map(String), ...i.keys] : i.path.map(String);
      return { field: path.join('.') || '(root)', message: i.message };
    });
    throw new RunnerError(
      'INVALID_CONFIG',
      `${source}: ${issues.map((i) => `${i.field}: ${i.message}`).join('; ')}`,
      { source, field: issues[0]?.field, issues },
    );
  }
  const c = r.data;
  const abs = (p: string | undefined) => (p === undefined || isAbsolute(p) ? p : resolve(baseDir, p));
  const out: NodeConfig = { ...c, key_file: abs(c.key_file)! };
  for (const k of ['peers_dir', 'checkpoint_dir', 'resume_from'] as const) {
    const v = abs(c[k]);
    if (v !== undefined) out[k] = v;
  }
  if (c.data.source !== 'default') out.data = { ...c.data, source: abs(c.data.source)! };
  if (c.data.cache_dir !== undefined) out.data = { ...out.data, cache_dir: abs(c.data.cache_dir)! };
  return out;
}

/**
 * Reads and validates a node config TOML file.
 *
 * @throws {RunnerError} `INVALID_CONFIG` for unreadable files, TOML syntax errors and schema violations.
 */
export function loadNodeConfig(path: string, options: NodeConfigOptions = {}): NodeConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new RunnerError(
      'INVALID_CONFIG',
      `${path}: cannot read: ${(cause as Error).message}`,
      { source: path },
      { cause },
    );
  }
  let raw: unknown;
  try {
    raw = parseToml(text);
  } catch (cause) {
    throw new RunnerError(
      'INVALID_CONFIG',
      `${path}: invalid TOML: ${(cause as Error).message}`,
      { source: path },
      { cause },
    );
  }
  return validateNodeConfig(raw, path, dirname(resolve(path)), options);
}

/** Renders a value as TOML (strings, numbers, booleans, string arrays). */
function tomlValue(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(tomlValue).join(', ')}]`;
  if (typeof v === 'string') return JSON.stringify(v);
  return String(v);
}

/** Renders a node config object as TOML (top-level keys, then one table per nested object). */
export function renderToml(obj: Record<string, unknown>): string {
  const top: string[] = [];
  const tables: string[] = [];
  for (const [k, v] of Object.entries(obj)) {
    if (v === undefined) continue;
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      const lines = Object.entries(v as Record<string, unknown>)
        .filter(([, x]) => x !== undefined && x !== null)
        .map(([kk, x]) => `${kk} = ${tomlValue(x)}`);
      tables.push(`\n[${k}]\n${lines.join('\n')}`);
    } else top.push(`${k} = ${tomlValue(v)}`);
  }
  return `${top.join('\n')}\n${tables.join('\n')}\n`;
}
