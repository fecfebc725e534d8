import { readFileSync } from 'node:fs';
import { parse as parseToml } from 'smol-toml';
import { z } from 'zod';
import { CoordinatorClientError } from './errors.js';
import { fromHex } from './keys.js';

const u = (max: number) => z.number().int().min(0).max(max);
const pos = (max: number) => z.number().int().min(1).max(max);
const U32 = 0xffff_ffff;

/** Schema of the `[server]` table. */
export const serverConfigSchema = z.strictObject({
  /** Bind address. Loopback by default. */
  host: z.string().min(1).default('127.0.0.1'),
  /** TCP port; 0 picks an ephemeral port (printed on start). */
  port: u(65535).default(0),
  /** Directory of the input log and snapshots. Relative paths resolve against the config file's directory. */
  data_dir: z.string().min(1),
  /** Period of the timer tick, milliseconds. */
  tick_interval_ms: z.number().int().min(10).max(60_000).default(500),
  /**
   * Minimum interval between state broadcasts, milliseconds. Inputs are acknowledged as soon as they are durable;
   * the state broadcast that follows is coalesced, so a burst of witnesses costs one broadcast, not one each.
   * 0 broadcasts after every group commit.
   */
  broadcast_interval_ms: z.number().int().min(0).max(10_000).default(50),
  /** Write a snapshot every this many accepted inputs. */
  snapshot_every: pos(1_000_000).default(1000),
  /** Hex ed25519 public keys allowed to authenticate; absent means anyone with a key. */
  allowlist: z
    .array(
      z
        .string()
        .refine((s) => fromHex(s, 32) !== undefined, { message: 'expected a 64-character hex public key' }),
    )
    .max(100_000)
    .optional(),
  /**
   * Hex ed25519 public keys allowed to send the admin requests `pause`, `resume` and `updateConfig` (always
   * allowed to authenticate, even when not on `allowlist`); absent or empty means no admin over the wire.
   */
  admin_keys: z
    .array(
      z
        .string()
        .refine((s) => fromHex(s, 32) !== undefined, { message: 'expected a 64-character hex public key' }),
    )
    .max(1000)
    .optional(),
  /** Largest accepted client message, bytes. */
  max_message_bytes: z
    .number()
    .int()
    .min(256)
    .max(16 * 1024 * 1024)
    .default(64 * 1024),
  /** Sustained requests per second allowed per client key (token bucket refill rate). */
  rate_limit_per_sec: z.number().positive().max(1_000_000).default(20),
  /** Token bucket size (burst) per client key. */
  rate_limit_burst: pos(1_000_000).default(40),
  /** Most simultaneously open WebSocket connections. */
  max_connections: pos(1_000_000).default(4096),
  /** Time allowed to answer the auth challenge before the socket is closed, milliseconds. */
  auth_timeout_ms: z.number().int().min(100).max(600_000).default(10_000),
  /** A client disconnected this long is withdrawn from the run (a `leave` input), seconds. */
  withdraw_after_disconnect_secs: u(86_400).default(30),
  /**
   * Most entries in the per-key table (rate-limit bucket, clock skew, last seen). Past it, the least recently
   * active disconnected keys are evicted; a connected client's entry is never evicted (so the table holds at most
   * this plus `max_connections` entries).
   */
  client_table_max: pos(10_000_000).default(10_000),
  /** A disconnected key's table entry idle this long is evicted, seconds. */
  client_idle_ttl_secs: pos(30 * 86_400).default(3600),
  /** Closed rounds kept in `/status` `recentRounds`. */
  status_recent_rounds: u(1000).default(16),
});

/**
 * Schema of the `[coordinator]` table: the run's timing, size and batch parameters, with Psyche's field names
 * (`psyche-architecture.md` §2.2). Ranges here are type bounds; cross-field rules are checked by
 * `@psyche/coordinator`'s own config validation.
 */
export const coordinatorConfigSchema = z.strictObject({
  warmup_time: u(U32),
  cooldown_time: u(U32),
  max_round_train_time: u(U32),
  round_witness_time: u(U32),
  global_batch_size_warmup_tokens: u(Number.MAX_SAFE_INTEGER).default(0),
  epoch_time: u(U32),
  total_steps: u(U32),
  init_min_clients: u(0xffff),
  min_clients: u(0xffff),
  /** Clients admitted per epoch (Psyche's on-chain cap is 256). */
  max_clients: u(0xffff).default(256),
  witness_nodes: u(0xffff).default(0),
  global_batch_size_start: u(0xffff),
  global_batch_size_end: u(0xffff),
  verification_percent: u(100).default(0),
  waiting_for_members_extra_time: u(255).default(1),
});

const checkpointSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('Ephemeral') }),
  z.strictObject({
    type: z.enum(['Dummy', 'Hub', 'P2P']),
    repo_id: z.string().min(1).max(192),
    revision: z.string().max(64).nullable().default(null),
  }),
  z.strictObject({
    type: z.enum(['Gcs', 'P2PGcs']),
    bucket: z.string().min(1).max(192),
    prefix: z.string().max(192).nullable().default(null),
  }),
]);

const lr = z.number().finite().min(0);
const steps = u(U32);
const lrScheduleSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('constant'),
    base_lr: lr,
    warmup_init_lr: lr.default(0),
    warmup_steps: steps.default(0),
  }),
  z.strictObject({
    type: z.enum(['linear', 'cosine']),
    base_lr: lr,
    warmup_init_lr: lr.default(0),
    warmup_steps: steps.default(0),
    total_steps: steps,
    final_lr: lr,
  }),
  z.strictObject({
    type: z.literal('wsd'),
    base_lr: lr,
    warmup_init_lr: lr.default(0),
    warmup_steps: steps.default(0),
    stable_steps: steps,
    cosine_decay_steps: steps,
    cosine_decay_final_lr: lr,
    linear_decay_steps: steps,
    linear_decay_final_lr: lr,
  }),
]);

/** Schema of the `[model]` table: what the coordinator needs to know about the model. */
export const modelConfigSchema = z.strictObject({
  max_seq_len: pos(1_048_576).default(2048),
  cold_start_warmup_steps: u(U32).default(0),
  checkpoint: checkpointSchema.default({ type: 'Ephemeral' }),
  lr_schedule: lrScheduleSchema.default({
    type: 'constant',
    base_lr: 0.0004,
    warmup_init_lr: 0,
    warmup_steps: 0,
  }),
});

/** Schema of a whole run config file. */
export const runConfigSchema = z.strictObject({
  run_id: z
    .string()
    .min(1)
    .refine((s) => Buffer.byteLength(s, 'utf8') <= 32, { message: 'expected at most 32 bytes' }),
  server: serverConfigSchema,
  coordinator: coordinatorConfigSchema,
  model: modelConfigSchema.default({
    max_seq_len: 2048,
    cold_start_warmup_steps: 0,
    checkpoint: { type: 'Ephemeral' },
    lr_schedule: { type: 'constant', base_lr: 0.0004, warmup_init_lr: 0, warmup_steps: 0 },
  }),
});

/** A validated run config (TOML `snake_case` field names kept). */
export type RunConfig = z.output<typeof runConfigSchema>;
/** The `[server]` table after defaults. */
export type ServerConfig = RunConfig['server'];
/** The `[coordinator]` table after defaults. */
export type CoordinatorConfigInput = RunConfig['coordinator'];

/**
 * Validates an already-parsed config object. Every problem is reported with its dotted field path, e.g.
 * `run.toml: server.port: Too big: expected number to be <=65535`.
 *
 * @throws CoordinatorClientError `INVALID_CONFIG` with `details.issues: {field, message}[]`
 */
export function validateRunConfig(raw: unknown, source = 'config'): RunConfig {
  const r = runConfigSchema.safeParse(raw);
  if (r.success) return r.data;
  const issues = r.error.issues.map((i) => {
    let field = i.path.map(String).join('.');
    if (i.code === 'unrecognized_keys') {
      field = [...i.path.map(String), ...i.keys].join('.');
    }
    return { field: field || '(root)', message: i.message };
  });
  throw new CoordinatorClientError(
    'INVALID_CONFIG',
    `${source}: ${issues.map((i) => `${i.field}: ${i.message}`).join('; ')}`,
    { source, issues, field: issues[0]?.field },
  );
}

/** `snake_case` → `camelCase`. */
export function snakeToCamel(s: string): string {
  return s.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

/** `camelCase` → `snake_case`. */
export function camelToSnake(s: string): string {
  return s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** Deep-converts object keys from `snake_case` to `camelCase` (arrays and primitives kept). */
export function camelizeKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(camelizeKeys);
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [snakeToCamel(k), camelizeKeys(x)]));
  }
  return v;
}

/** Parses TOML text and validates it (see {@link validateRunConfig}). */
export function parseRunConfig(text: string, source = 'config'): RunConfig {
  let raw: unknown;
  try {
    raw = parseToml(text);
  } catch (cause) {
    throw new CoordinatorClientError(
      'INVALID_CONFIG',
      `${source}: invalid TOML: ${(cause as Error).message.split('\n')[0]}`,
      { source },
      { cause },
    );
  }
  return validateRunConfig(raw, source);
}

/** Reads, parses and validates a TOML run config file. */
export function loadRunConfig(path: string): RunConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new CoordinatorClientError(
      'INVALID_CONFIG',
      `${path}: cannot read config file`,
      { source: path },
      { cause },
    );
  }
  return parseRunConfig(text, path);
}
