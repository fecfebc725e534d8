import { Connection, type PublicKey, type Transaction } from '@solana/web3.js';
import { CoordinatorClientError } from '../errors.js';
import { PROGRAM_ERRORS } from './idl.js';

/**
 * The few RPC calls the Solana backend needs. {@link connectionRpc} implements it over `@solana/web3.js`'s
 * `Connection`; tests implement it over litesvm.
 */
export interface SolanaRpc {
  /** A name for logs and error details (the URL). */
  readonly url: string;
  /** Account data, or null when the account does not exist. */
  getAccountData(address: PublicKey): Promise<Uint8Array | null>;
  /** A recent blockhash for a new transaction. */
  getLatestBlockhash(): Promise<string>;
  /** Sends a signed transaction and waits until it is confirmed; throws on failure. Returns the signature. */
  sendTransaction(tx: Transaction): Promise<string>;
  /** Subscribes to account changes (websocket `accountSubscribe`); returns the unsubscribe function. */
  onAccountChange?(address: PublicKey, listener: (data: Uint8Array) => void): () => void;
}

/** A `SolanaRpc` over a web3.js v1 `Connection` (`confirmed` commitment). */
export function connectionRpc(url: string, wsUrl?: string): SolanaRpc {
  const connection = new Connection(url, {
    commitment: 'confirmed',
    ...(wsUrl ? { wsEndpoint: wsUrl } : {}),
  });
  return {
    url,
    async getAccountData(address) {
      const info = await connection.getAccountInfo(address);
      return info ? new Uint8Array(info.data) : null;
    },
    async getLatestBlockhash() {
      return (await connection.getLatestBlockhash()).blockhash;
    },
    async sendTransaction(tx) {
      const sig = await connection.sendRawTransaction(tx.serialize());
      const bh = await connection.getLatestBlockhash();
      const res = await connection.confirmTransaction({ signature: sig, ...bh }, 'confirmed');
      if (res.value.err) throw new Error(`transaction ${sig} failed: ${JSON.stringify(res.value.err)}`);
      return sig;
    },
    onAccountChange(address, listener) {
      const id = connection.onAccountChange(address, (info) => listener(new Uint8Array(info.data)), {
        commitment: 'confirmed',
      });
      return () => {
        void connection.removeAccountChangeListener(id);
      };
    },
  };
}

/** Retry policy of every RPC call (Psyche's `retry.rs` defaults). */
export interface RetryPolicy {
  /** Attempts per RPC endpoint. Default 5. */
  attempts: number;
  /** First backoff (ms). Default 500. */
  initialMs: number;
  /** Backoff factor. Default 1.5. */
  factor: number;
  /** Backoff cap (ms). Default 10 000. */
  maxMs: number;
}

/** Psyche's defaults: 5 attempts, 500 ms × 1.5, at most 10 s. */
export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, initialMs: 500, factor: 1.5, maxMs: 10_000 };

/**
 * The program error in a failed send, if any: Anchor's `custom program error: 0x…` or `Error Number: N`, or a
 * litesvm/web3 `{"Custom":N}` instruction error. Returns the code and its IDL name.
 */
export function programErrorOf(e: unknown): { number: number; name: string } | undefined {
  const text =
    e instanceof Error ? `${e.message} ${String((e as { logs?: unknown }).logs ?? '')}` : String(e);
  const m =
    /custom program error: 0x([0-9a-f]+)/i.exec(text) ??
    /Error Number: (\d+)/.exec(text) ??
    /"Custom":\s*(\d+)/.exec(text);
  if (!m?.[1]) return undefined;
  const number = m[0].startsWith('custom') ? Number.parseInt(m[1], 16) : Number(m[1]);
  return { number, name: PROGRAM_ERRORS.get(number) ?? `Unknown(${number})` };
}

/**
 * Runs `op` on each RPC in order: up to `policy.attempts` times per endpoint with exponential backoff, then the
 * next endpoint. Program errors (the coordinator refused the transaction) are not retried.
 *
 * @throws {CoordinatorClientError} `COORDINATOR_REJECTED` with `details.programError` for a program error;
 * `SERVER_ERROR` when every endpoint failed every attempt (the last cause attached); `ABORTED` when `signal` fires.
 */
export async function withRetries<T>(
  rpcs: readonly SolanaRpc[],
  what: string,
  op: (rpc: SolanaRpc) => Promise<T>,
  policy: RetryPolicy = DEFAULT_RETRY,
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
  signal?: AbortSignal,
): Promise<T> {
  if (rpcs.length === 0)
    throw new CoordinatorClientError('INVALID_ARGUMENT', 'rpcs must not be empty', { field: 'rpcs' });
  let last: unknown;
  for (const rpc of rpcs) {
    let delay = policy.initialMs;
    for (let attempt = 1; attempt <= policy.attempts; attempt++) {
      if (signal?.aborted)
        throw new CoordinatorClientError('ABORTED', `${what} was aborted`, { operation: what });
      try {
        return await op(rpc);
      } catch (e) {
        const pe = programErrorOf(e);
        if (pe)
          throw new CoordinatorClientError(
            'COORDINATOR_REJECTED',
            `${what} was rejected by the coordinator program: ${pe.name} (${pe.number})`,
            { operation: what, programError: pe.name, number: pe.number, rpc: rpc.url },
            { cause: e },
          );
        last = e;
        if (attempt < policy.attempts) {
          await sleep(delay);
          delay = Math.min(delay * policy.factor, policy.maxMs);
        }
      }
    }
  }
  throw new CoordinatorClientError(
    'SERVER_ERROR',
    `${what} failed on every RPC (${rpcs.map((r) => r.url).join(', ')}): ${last instanceof Error ? last.message : String(last)}`,
    { operation: what, rpcs: rpcs.map((r) => r.url) },
    { cause: last },
  );
}
