import {
  type CoordinatorState,
  cloneState,
  RunState,
  tick as simulateTick,
  toHex,
} from '@psyche/coordinator';
import { type Keypair, type PublicKey, Transaction, type TransactionInstruction } from '@solana/web3.js';
import type {
  Ack,
  CoordinatorClient,
  CoordinatorClientEvents,
  OperationOptions,
  StateUpdate,
} from '../client.js';
import { CoordinatorClientError } from '../errors.js';
import type { PsychePayloads } from '../psyche-engine.js';
import { decodeCoordinatorAccount } from './account.js';
import { CoordinatorInstructions, computeBudgetInstructions, type RunAddresses } from './instructions.js';
import { DEFAULT_RETRY, type RetryPolicy, type SolanaRpc, withRetries } from './rpc.js';

/**
 * Whether a node should send `tick` now: it runs the state machine's `tick` on a copy with the local clock and
 * sends only when the run state would change, with probability `min(1, 2 / clients)` so that about two nodes
 * send per interval (Psyche's rule). Halted runs and ticks the state machine rejects are never sent.
 *
 * @param nowSec - local unix time in seconds
 * @param random - a uniform sample in [0, 1)
 */
export function shouldSendTick(state: CoordinatorState, nowSec: number, random: number): boolean {
  if (
    state.runState === RunState.Uninitialized ||
    state.runState === RunState.Paused ||
    state.runState === RunState.Finished
  )
    return false;
  const copy = cloneState(state);
  try {
    simulateTick(copy, [], nowSec, 0n);
  } catch {
    return false;
  }
  if (copy.runState === state.runState) return false;
  const senders = Math.max(state.epoch.clients.length, state.pending.length, 1);
  return random < Math.min(1, 2 / senders);
}

/** Options of {@link SolanaCoordinatorClient.connect}. */
export interface SolanaClientOptions {
  /** Primary RPC first, then fallbacks (Psyche: up to 2 backups). Every one is subscribed to. */
  rpcs: readonly SolanaRpc[];
  /** This node's key: it signs and pays for its transactions; its public key is its client id. */
  keypair: Keypair;
  /** Run id (the instance PDA is derived from it). */
  runId: string;
  /** The zero-copy coordinator account of the run. */
  coordinatorAccount: PublicKey;
  /** Program id (default: the IDL's). */
  programId?: PublicKey;
  /** Whether the run is permissionless (default true); otherwise `join_run` passes the allowlist PDA. */
  permissionless?: boolean;
  /** Tick check period (ms, default 500). 0 disables the local tick simulation. */
  tickIntervalMs?: number;
  /** Account poll period (ms, default 1000), on top of subscriptions. 0 disables polling. */
  pollIntervalMs?: number;
  /** RPC retry policy (default {@link DEFAULT_RETRY}). */
  retry?: RetryPolicy;
  /** Clock in ms (default `Date.now`). */
  now?: () => number;
  /** Uniform random in [0, 1) (default `Math.random`). */
  random?: () => number;
}

type Listener = (value: never) => void;

/**
 * The Solana backend of {@link CoordinatorClient}: reads the coordinator account (subscription on every RPC plus
 * polling, de-duplicated by `nonce`, which is the state `version`), sends `join_run` / `witness` /
 * `warmup_witness` / `health_check` / `checkpoint` transactions with retries and RPC fallback, and sends `tick`
 * only when its local simulation says the state would change.
 *
 * {@link SolanaCoordinatorClient.leave} sends `leave_run` (the core's `withdraw`; Psyche has no such instruction)
 * and stops this node's tick sending.
 *
 * @example
 * ```ts
 * const client = await SolanaCoordinatorClient.connect({
 *   rpcs: [connectionRpc('https://api.devnet.solana.com'), connectionRpc('https://backup.example')],
 *   keypair, runId: 'my-run', coordinatorAccount,
 * });
 * await client.join();
 * ```
 */
export class SolanaCoordinatorClient implements CoordinatorClient<CoordinatorState, PsychePayloads> {
  readonly id: string;
  readonly run: RunAddresses;
  readonly instructions: CoordinatorInstructions;
  private current: StateUpdate<CoordinatorState> | undefined;
  private lastNonce = -1n;
  private readonly listeners = new Map<string, Set<Listener>>();
  private readonly wakers = new Set<() => void>();
  private readonly unsubscribers: (() => void)[] = [];
  private timers: ReturnType<typeof setInterval>[] = [];
  private closed = false;
  private ticking = false;
  private left = false;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly retry: RetryPolicy;

  private constructor(private readonly opts: SolanaClientOptions) {
    if (opts.rpcs.length === 0)
      throw new CoordinatorClientError('INVALID_ARGUMENT', 'rpcs must name at least one RPC', {
        field: 'rpcs',
      });
    this.id = toHex(opts.keypair.publicKey.toBytes());
    this.instructions = new CoordinatorInstructions(opts.programId);
    this.run = this.instructions.addresses(opts.runId, opts.coordinatorAccount);
    this.now = opts.now ?? Date.now;
    this.random = opts.random ?? Math.random;
    this.retry = opts.retry ?? DEFAULT_RETRY;
  }

  /**
   * Fetches and decodes the coordinator account, subscribes to it and starts the tick simulation.
   *
   * @throws {CoordinatorClientError} `NOT_CONNECTED` when the account does not exist, `MALFORMED_MESSAGE` when it
   * does not decode, `SERVER_ERROR` when every RPC failed.
   */
  static async connect(opts: SolanaClientOptions): Promise<SolanaCoordinatorClient> {
    const c = new SolanaCoordinatorClient(opts);
    await c.refresh();
    if (!c.current)
      throw new CoordinatorClientError(
        'NOT_CONNECTED',
        `coordinator account ${opts.coordinatorAccount} does not exist`,
        {
          field: 'coordinatorAccount',
        },
      );
    for (const rpc of opts.rpcs) {
      const unsub = rpc.onAccountChange?.(opts.coordinatorAccount, (data) => c.accept(data));
      if (unsub) c.unsubscribers.push(unsub);
    }
    c.emit('connection:open', { attempt: 1 });
    const tickMs = opts.tickIntervalMs ?? 500;
    if (tickMs > 0) c.timers.push(setInterval(() => void c.tickCheck(), tickMs));
    const pollMs = opts.pollIntervalMs ?? 1000;
    if (pollMs > 0) c.timers.push(setInterval(() => void c.refresh().catch(() => undefined), pollMs));
    return c;
  }

  /** Re-reads the account (with retries and fallback) and publishes it if its nonce is new. */
  async refresh(): Promise<void> {
    const data = await withRetries(
      this.opts.rpcs,
      'getAccountInfo',
      (rpc) => rpc.getAccountData(this.opts.coordinatorAccount),
      this.retry,
    );
    if (data) this.accept(data);
  }

  /** Decodes account data and publishes it when its nonce is newer than the last one (stale/duplicates dropped). */
  accept(data: Uint8Array): void {
    if (this.closed) return;
    const { nonce, state } = decodeCoordinatorAccount(data);
    if (nonce <= this.lastNonce) return;
    this.lastNonce = nonce;
    this.current = { version: Number(nonce), serverTime: this.now(), state };
    this.emit('state', this.current);
    for (const w of [...this.wakers]) w();
  }

  latest(): StateUpdate<CoordinatorState> | undefined {
    return this.current;
  }

  async *watch(options?: OperationOptions): AsyncIterableIterator<StateUpdate<CoordinatorState>> {
    let seen = -1;
    while (!this.closed) {
      if (options?.signal?.aborted) throw this.aborted('watch');
      const cur = this.current;
      if (cur && cur.version > seen) {
        seen = cur.version;
        yield cur;
        continue;
      }
      await this.nextChange(options?.signal);
    }
  }

  async waitFor(
    predicate: (u: StateUpdate<CoordinatorState>) => boolean,
    options?: OperationOptions,
  ): Promise<StateUpdate<CoordinatorState>> {
    for await (const u of this.watch(options)) if (predicate(u)) return u;
    throw new CoordinatorClientError('CLOSED', 'the client was closed while waiting', {
      operation: 'waitFor',
    });
  }

  on<K extends keyof CoordinatorClientEvents<CoordinatorState>>(
    event: K,
    listener: (value: CoordinatorClientEvents<CoordinatorState>[K]) => void,
  ): () => void {
    let set = this.listeners.get(event);
    if (!set) {
      set = new Set();
      this.listeners.set(event, set);
    }
    set.add(listener as Listener);
    return () => set.delete(listener as Listener);
  }

  join(options?: OperationOptions): Promise<Ack> {
    this.left = false;
    return this.send(
      'join_run',
      () =>
        this.instructions.joinRun(this.run, this.opts.keypair.publicKey, this.opts.permissionless ?? true),
      options,
    );
  }

  witness(w: PsychePayloads['witness'], options?: OperationOptions): Promise<Ack> {
    return this.send(
      'witness',
      () => this.instructions.witness(this.run, this.opts.keypair.publicKey, w),
      options,
    );
  }

  warmupWitness(w: PsychePayloads['warmupWitness'], options?: OperationOptions): Promise<Ack> {
    return this.send(
      'warmup_witness',
      () => this.instructions.warmupWitness(this.run, this.opts.keypair.publicKey, w),
      options,
    );
  }

  healthCheck(h: PsychePayloads['healthCheck'], options?: OperationOptions): Promise<Ack> {
    return this.send(
      'health_check',
      () => this.instructions.healthCheck(this.run, this.opts.keypair.publicKey, h),
      options,
    );
  }

  checkpoint(c: PsychePayloads['checkpoint'], options?: OperationOptions): Promise<Ack> {
    return this.send(
      'checkpoint',
      () => this.instructions.checkpoint(this.run, this.opts.keypair.publicKey, c),
      options,
    );
  }

  /** Withdraws this node (`leave_run`) and stops its tick sending. */
  async leave(options?: OperationOptions): Promise<Ack> {
    if (options?.signal?.aborted) throw this.aborted('leave');
    this.left = true;
    return this.send(
      'leave_run',
      () => this.instructions.leaveRun(this.run, this.opts.keypair.publicKey),
      options,
    );
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    for (const u of this.unsubscribers.splice(0)) u();
    for (const w of [...this.wakers]) w();
    this.emit('connection:close', { code: 1000, reason: 'closed' });
  }

  /** One tick check: simulate, maybe send `tick`. Errors are swallowed (the next check retries). */
  async tickCheck(): Promise<boolean> {
    const cur = this.current;
    if (this.closed || this.left || this.ticking || !cur) return false;
    if (!shouldSendTick(cur.state, Math.floor(this.now() / 1000), this.random())) return false;
    this.ticking = true;
    try {
      await this.send('tick', () => this.instructions.tick(this.run, this.opts.keypair.publicKey));
      return true;
    } catch {
      return false;
    } finally {
      this.ticking = false;
    }
  }

  /** Builds, signs and sends one program instruction (after the compute-budget ones), then re-reads the account. */
  private async send(
    what: string,
    build: () => Promise<TransactionInstruction>,
    options?: OperationOptions,
  ): Promise<Ack> {
    if (this.closed)
      throw new CoordinatorClientError('CLOSED', `${what}: the client is closed`, { operation: what });
    if (options?.signal?.aborted) throw this.aborted(what);
    const ix = await build();
    await withRetries(
      this.opts.rpcs,
      what,
      async (rpc) => {
        const tx = new Transaction();
        tx.add(...computeBudgetInstructions(), ix);
        tx.feePayer = this.opts.keypair.publicKey;
        tx.recentBlockhash = await rpc.getLatestBlockhash();
        tx.sign(this.opts.keypair);
        return rpc.sendTransaction(tx);
      },
      this.retry,
      undefined,
      options?.signal,
    );
    await this.refresh();
    return { version: this.current?.version ?? 0 };
  }

  private emit<K extends keyof CoordinatorClientEvents<CoordinatorState>>(
    event: K,
    value: CoordinatorClientEvents<CoordinatorState>[K],
  ): void {
    for (const l of this.listeners.get(event) ?? []) (l as (v: typeof value) => void)(value);
  }

  private nextChange(signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const done = () => {
        this.wakers.delete(done);
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = () => {
        this.wakers.delete(done);
        reject(this.aborted('watch'));
      };
      this.wakers.add(done);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  private aborted(what: string): CoordinatorClientError {
    return new CoordinatorClientError('ABORTED', `${what} was aborted`, { operation: what });
  }
}
