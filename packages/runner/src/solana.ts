import { readFileSync } from 'node:fs';
import type { CoordinatorConfig, ModelConfig } from '@psyche/coordinator';
import {
  camelizeKeys,
  type Keypair as Ed25519Keypair,
  readKeypairFile,
  runConfigSchema,
  serverConfigSchema,
} from '@psyche/coordinator-client';
import {
  COORDINATOR_ACCOUNT_SPACE,
  CoordinatorInstructions,
  computeBudgetInstructions,
  connectionRpc,
  DEFAULT_RETRY,
  Keypair,
  PROGRAM_ID,
  PublicKey,
  type RetryPolicy,
  SolanaCoordinatorClient,
  type SolanaRpc,
  Transaction,
  withRetries,
} from '@psyche/coordinator-client/solana';
import { parse as parseToml } from 'smol-toml';
import { RunnerError } from './errors.js';

type TransactionInstruction = Awaited<ReturnType<CoordinatorInstructions['setPaused']>>;

/** Output sinks (same shape as the CLI's). */
interface Io {
  out: (line: string) => void;
  err: (line: string) => void;
}

/** Usage of `psyche solana`. */
export const SOLANA_USAGE = `usage: psyche solana <command> [options]

  create-run --config <run.toml> --keypair <k.json> --rpc <URL> [--rpc <URL2> ...]
             [--account-keypair <acct.json>] [--join-authority <PUBKEY>] [--lamports N]
  update-config --config <run.toml> --keypair <k.json> --rpc <URL> ... [--coordinator-account <PUBKEY>]
  set-paused --paused true|false --run-id <ID> --keypair <k.json> --rpc <URL> ... [--coordinator-account <PUBKEY>]

  common: [--program-id <PUBKEY>] [--retries N] [--retry-ms MS] [--dry-run]
  --dry-run prints the signed transaction (base64) and its decoded instructions as JSON without sending it.
`;

const bad = (field: string, message: string) =>
  new RunnerError('INVALID_ARGUMENT', `${field}: ${message}`, { field });

function flagOf(args: readonly string[], name: string): string | undefined {
  return flagsOf(args, name)[0];
}

/** Every value of a repeatable flag (`--rpc a --rpc b` or `--rpc=a`). */
function flagsOf(args: readonly string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === name) {
      const v = args[i + 1];
      if (v === undefined || v.startsWith('--')) throw bad(name, 'missing value');
      out.push(v);
      i++;
    } else if (a.startsWith(`${name}=`)) out.push(a.slice(name.length + 1));
  }
  return out;
}

function requiredFlag(args: readonly string[], name: string): string {
  const v = flagOf(args, name);
  if (v === undefined || v === '') throw bad(name, 'missing');
  return v;
}

function intFlagOf(args: readonly string[], name: string, def: number, min: number, max: number): number {
  const v = flagOf(args, name);
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min || n > max)
    throw bad(name, `expected an integer in [${min}, ${max}], got ${v}`);
  return n;
}

/** `--rpc` URLs (at least one; http:// or https://), primary first. */
export function rpcUrlsFromFlags(args: readonly string[]): string[] {
  const urls = flagsOf(args, '--rpc');
  if (urls.length === 0) throw bad('--rpc', 'missing (at least one http:// or https:// RPC URL)');
  for (const u of urls) {
    let ok = false;
    try {
      const p = new URL(u).protocol;
      ok = p === 'http:' || p === 'https:';
    } catch {
      ok = false;
    }
    if (!ok) throw bad('--rpc', `expected an http:// or https:// URL, got ${u}`);
  }
  return urls;
}

/** Retry policy from `--retries` (attempts per RPC) and `--retry-ms` (first backoff); Psyche's defaults otherwise. */
export function retryFromFlags(args: readonly string[]): RetryPolicy {
  return {
    ...DEFAULT_RETRY,
    attempts: intFlagOf(args, '--retries', DEFAULT_RETRY.attempts, 1, 20),
    initialMs: intFlagOf(args, '--retry-ms', DEFAULT_RETRY.initialMs, 1, 60_000),
  };
}

/** Validates `--run-id` (1..32 bytes of UTF-8). */
export function runIdFromFlags(args: readonly string[]): string {
  const id = requiredFlag(args, '--run-id');
  if (Buffer.byteLength(id, 'utf8') > 32) throw bad('--run-id', 'expected at most 32 bytes');
  return id;
}

function pubkeyFlag(args: readonly string[], name: string): PublicKey | undefined {
  const v = flagOf(args, name);
  if (v === undefined) return undefined;
  try {
    return new PublicKey(v);
  } catch {
    throw bad(name, `expected a base58 public key, got ${v}`);
  }
}

/** A web3.js keypair from the runner's ed25519 keypair. */
export function toSolanaKeypair(kp: Ed25519Keypair): Keypair {
  return Keypair.fromSeed(kp.secretKey);
}

function keypairFlag(args: readonly string[], name: string): Keypair {
  const path = requiredFlag(args, name);
  try {
    return toSolanaKeypair(readKeypairFile(path));
  } catch (e) {
    throw bad(name, (e as Error).message);
  }
}

/** Where the instance PDA stores its coordinator account: decoded with the IDL's `CoordinatorInstance`. */
export async function resolveCoordinatorAccount(
  rpcs: readonly SolanaRpc[],
  b: CoordinatorInstructions,
  runId: string,
  retry: RetryPolicy,
  signal?: AbortSignal,
): Promise<PublicKey> {
  const instance = b.addresses(runId, PublicKey.default).coordinatorInstance;
  const data = await withRetries(
    rpcs,
    'getAccountInfo(coordinator instance)',
    (rpc) => rpc.getAccountData(instance),
    retry,
    undefined,
    signal,
  );
  if (data === null)
    throw new RunnerError(
      'STARTUP_FAILED',
      `--run-id: run ${runId} has no coordinator instance ${instance}`,
      {
        field: '--run-id',
        instance: instance.toBase58(),
      },
    );
  const decoded = b.program.coder.accounts.decode('coordinatorInstance', Buffer.from(data)) as {
    coordinatorAccount: PublicKey;
  };
  return decoded.coordinatorAccount;
}

/** Options of {@link connectSolanaClient}. */
export interface SolanaBackendOptions {
  rpcUrls: readonly string[];
  runId: string;
  coordinatorAccount?: PublicKey;
  programId?: PublicKey;
  retry?: RetryPolicy;
}

/**
 * Connects a {@link SolanaCoordinatorClient} for `keypair` (the node's key file): resolves the coordinator account
 * from the instance PDA unless given, then fetches and subscribes to it.
 *
 * @throws CoordinatorClientError `SERVER_ERROR` when every RPC failed every attempt.
 */
export async function connectSolanaClient(
  keypair: Ed25519Keypair,
  o: SolanaBackendOptions,
  signal?: AbortSignal,
): Promise<SolanaCoordinatorClient> {
  const rpcs = o.rpcUrls.map((u) => connectionRpc(u));
  const retry = o.retry ?? DEFAULT_RETRY;
  const b = new CoordinatorInstructions(o.programId ?? PROGRAM_ID);
  const coordinatorAccount =
    o.coordinatorAccount ?? (await resolveCoordinatorAccount(rpcs, b, o.runId, retry, signal));
  return SolanaCoordinatorClient.connect({
    rpcs,
    keypair: toSolanaKeypair(keypair),
    runId: o.runId,
    coordinatorAccount,
    programId: b.programId,
    retry,
  });
}

/** `run --backend solana` flags. */
export function solanaBackendFromFlags(args: readonly string[]): SolanaBackendOptions {
  const coordinatorAccount = pubkeyFlag(args, '--coordinator-account');
  const programId = pubkeyFlag(args, '--program-id');
  return {
    rpcUrls: rpcUrlsFromFlags(args),
    runId: runIdFromFlags(args),
    retry: retryFromFlags(args),
    ...(coordinatorAccount ? { coordinatorAccount } : {}),
    ...(programId ? { programId } : {}),
  };
}

/** A run config for on-chain runs: the coordinator's `run.toml` (its `[server]` table is optional and unused). */
const chainRunConfigSchema = runConfigSchema.extend({ server: serverConfigSchema.optional() });

/** Reads `--config run.toml`: run id, coordinator config and model config (camelCase). */
export function loadChainRunConfig(path: string): {
  runId: string;
  config: CoordinatorConfig;
  model: ModelConfig;
} {
  let raw: unknown;
  try {
    raw = parseToml(readFileSync(path, 'utf8'));
  } catch (cause) {
    throw new RunnerError(
      'INVALID_CONFIG',
      `${path}: cannot read or parse: ${(cause as Error).message.split('\n')[0]}`,
      { source: path, field: '--config' },
      { cause },
    );
  }
  const r = chainRunConfigSchema.safeParse(raw);
  if (!r.success) {
    const issues = r.error.issues.map((i) => {
      const p = i.code === 'unrecognized_keys' ? [...i.path.map(String), ...i.keys] : i.path.map(String);
      return { field: p.join('.') || '(root)', message: i.message };
    });
    throw new RunnerError(
      'INVALID_CONFIG',
      `${path}: ${issues.map((i) => `${i.field}: ${i.message}`).join('; ')}`,
      { source: path, field: issues[0]?.field, issues },
    );
  }
  return {
    runId: r.data.run_id,
    config: camelizeKeys(r.data.coordinator) as CoordinatorConfig,
    model: camelizeKeys(r.data.model) as ModelConfig,
  };
}

/** Rent-exempt minimum for `space` bytes with the default rent (3 480 lamports/byte-year × 2 years, +128 bytes). */
export function rentExemptLamports(space: number): number {
  return (space + 128) * 3480 * 2;
}

/** A decoded instruction as printed by `--dry-run`. */
export interface DecodedInstruction {
  programId: string;
  /** The IDL instruction name (snake_case) for program instructions; `system` / `compute-budget` otherwise. */
  name: string;
  /** Instruction data, base64. */
  data: string;
  accounts: { pubkey: string; isSigner: boolean; isWritable: boolean }[];
}

function describe(b: CoordinatorInstructions, ix: TransactionInstruction): DecodedInstruction {
  let name = 'unknown';
  if (ix.programId.equals(b.programId)) {
    const coder = b.program.coder.instruction as unknown as { decode(d: Buffer): { name: string } | null };
    // Anchor's Program camel-cases the IDL: print the IDL's (snake_case) instruction name.
    name = (coder.decode(Buffer.from(ix.data))?.name ?? 'unknown').replace(
      /[A-Z]/g,
      (c) => `_${c.toLowerCase()}`,
    );
  } else if (ix.programId.toBase58() === 'ComputeBudget111111111111111111111111111111')
    name = 'compute-budget';
  else if (ix.programId.equals(PublicKey.default)) name = 'system';
  return {
    programId: ix.programId.toBase58(),
    name,
    data: Buffer.from(ix.data).toString('base64'),
    accounts: ix.keys.map((k) => ({
      pubkey: k.pubkey.toBase58(),
      isSigner: k.isSigner,
      isWritable: k.isWritable,
    })),
  };
}

/** Signs and sends (or, with `--dry-run`, prints) one transaction. */
async function submit(
  args: readonly string[],
  io: Io,
  what: string,
  b: CoordinatorInstructions,
  ixs: TransactionInstruction[],
  signers: Keypair[],
  extra: Record<string, unknown>,
): Promise<number> {
  const build = (blockhash: string) => {
    const tx = new Transaction().add(...ixs);
    tx.feePayer = signers[0]!.publicKey;
    tx.recentBlockhash = blockhash;
    tx.sign(...signers);
    return tx;
  };
  if (args.includes('--dry-run')) {
    // No RPC: a placeholder blockhash (the all-zero hash).
    const tx = build(PublicKey.default.toBase58());
    io.out(
      JSON.stringify({
        command: what,
        ...extra,
        transaction: tx.serialize().toString('base64'),
        instructions: ixs.map((ix) => describe(b, ix)),
      }),
    );
    return 0;
  }
  const rpcs = rpcUrlsFromFlags(args).map((u) => connectionRpc(u));
  const sig = await withRetries(
    rpcs,
    what,
    async (rpc) => rpc.sendTransaction(build(await rpc.getLatestBlockhash())),
    retryFromFlags(args),
  );
  io.out(JSON.stringify({ command: what, ...extra, signature: sig }));
  return 0;
}

/** The coordinator account of an existing run: `--coordinator-account` or the instance PDA's. */
async function runAccount(args: readonly string[], b: CoordinatorInstructions, runId: string) {
  const given = pubkeyFlag(args, '--coordinator-account');
  if (given) return given;
  if (args.includes('--dry-run'))
    throw bad('--coordinator-account', 'required with --dry-run (no RPC is read)');
  return resolveCoordinatorAccount(
    rpcUrlsFromFlags(args).map((u) => connectionRpc(u)),
    b,
    runId,
    retryFromFlags(args),
  );
}

/**
 * `psyche solana <create-run|update-config|set-paused>`: operator transactions of the `psyche_coordinator`
 * program, signed by `--keypair` (the main authority; it also pays). Resolves with the exit code.
 *
 * @throws {RunnerError} `INVALID_ARGUMENT` / `INVALID_CONFIG` naming the bad flag or field;
 * CoordinatorClientError `SERVER_ERROR` when every RPC failed every attempt, `COORDINATOR_REJECTED` for a
 * program error.
 */
export async function runSolanaCli(args: readonly string[], io: Io): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === '--help' || sub === 'help') {
    io.out(SOLANA_USAGE);
    return 0;
  }
  if (sub !== 'create-run' && sub !== 'update-config' && sub !== 'set-paused') {
    io.err(`unknown solana command: ${sub}\n${SOLANA_USAGE}`);
    return 2;
  }
  // Validate every flag before any network access.
  const dryRun = rest.includes('--dry-run');
  if (!dryRun) rpcUrlsFromFlags(rest);
  retryFromFlags(rest);
  const programId = pubkeyFlag(rest, '--program-id') ?? PROGRAM_ID;
  const authority = keypairFlag(rest, '--keypair');
  const b = new CoordinatorInstructions(programId);

  if (sub === 'create-run') {
    const run = loadChainRunConfig(requiredFlag(rest, '--config'));
    const account = flagOf(rest, '--account-keypair')
      ? keypairFlag(rest, '--account-keypair')
      : Keypair.generate();
    const joinAuthority = pubkeyFlag(rest, '--join-authority') ?? PublicKey.default;
    const lamports = intFlagOf(
      rest,
      '--lamports',
      rentExemptLamports(COORDINATOR_ACCOUNT_SPACE),
      1,
      Number.MAX_SAFE_INTEGER,
    );
    const ixs = await b.createRun({
      payer: authority.publicKey,
      coordinatorAccount: account.publicKey,
      lamports,
      runId: run.runId,
      mainAuthority: authority.publicKey,
      joinAuthority,
      config: run.config,
      model: run.model,
    });
    const addrs = b.addresses(run.runId, account.publicKey);
    return submit(rest, io, sub, b, ixs, [authority, account], {
      runId: run.runId,
      programId: programId.toBase58(),
      coordinatorInstance: addrs.coordinatorInstance.toBase58(),
      coordinatorAccount: account.publicKey.toBase58(),
    });
  }

  if (sub === 'update-config') {
    const run = loadChainRunConfig(requiredFlag(rest, '--config'));
    const addrs = b.addresses(run.runId, await runAccount(rest, b, run.runId));
    const ix = await b.update(addrs, authority.publicKey, { config: run.config, model: run.model });
    return submit(rest, io, sub, b, [...computeBudgetInstructions(), ix], [authority], {
      runId: run.runId,
      coordinatorAccount: addrs.coordinatorAccount.toBase58(),
    });
  }

  const p = requiredFlag(rest, '--paused');
  if (p !== 'true' && p !== 'false') throw bad('--paused', `expected true or false, got ${p}`);
  const runId = runIdFromFlags(rest);
  const addrs = b.addresses(runId, await runAccount(rest, b, runId));
  const ix = await b.setPaused(addrs, authority.publicKey, p === 'true');
  return submit(rest, io, sub, b, [...computeBudgetInstructions(), ix], [authority], {
    runId,
    paused: p === 'true',
    coordinatorAccount: addrs.coordinatorAccount.toBase58(),
  });
}
