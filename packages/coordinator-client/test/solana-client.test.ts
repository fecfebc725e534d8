/**
 * The Solana backend's transactions and client logic, without a validator (the program cannot be built here):
 * - every instruction the builder makes is decoded with Anchor's coder over the checked-in IDL (name, args
 *   round trip) and its accounts are checked against the IDL (order, signer, writable, fixed addresses, PDAs);
 * - system-program flows (funding, creating the 85 760-byte coordinator account) run on litesvm 0.8.0, and a
 *   transaction to the (undeployed) program is shown to fail atomically there;
 * - the client reads the account through a `SolanaRpc` over litesvm (a thin adapter to the real SVM), drops
 *   stale nonces, simulates ticks, and retries/falls back across RPCs (a scripted RPC double, named as such).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type BN, BorshCoder } from '@coral-xyz/anchor';
import { RunState, toHex } from '@psyche/coordinator';
import { Keypair, PublicKey, SystemProgram, Transaction, type TransactionInstruction } from '@solana/web3.js';
import { FailedTransactionMetadata, LiteSVM } from 'litesvm';
import { describe, expect, it } from 'vitest';
import { isCoordinatorClientError } from '../src/errors.js';
import { PSYCHE_COORDINATOR_IDL } from '../src/solana/idl/psyche_coordinator.js';
import {
  ACCOUNT_DISCRIMINATORS,
  COORDINATOR_ACCOUNT_SPACE,
  CoordinatorInstructions,
  coordinatorInstanceAddress,
  decodeCoreAccount,
  IDL,
  joinAuthorizationAddress,
  PROGRAM_ID,
  SolanaCoordinatorClient,
  type SolanaRpc,
  shouldSendTick,
  withRetries,
} from '../src/solana/index.js';
import { ACCOUNT_RUN_CONFIG, ACCOUNT_RUN_ID, ACCOUNT_RUN_MODEL } from './helpers/account-scenario.js';

const FIXTURES = join(import.meta.dirname, '../../../fixtures/coordinator-account');
const vector = (name: string) => new Uint8Array(readFileSync(join(FIXTURES, name)));
const coder = new BorshCoder(IDL);

function programAccount(core: Uint8Array, nonce: bigint): Uint8Array {
  const data = new Uint8Array(COORDINATOR_ACCOUNT_SPACE);
  data.set(ACCOUNT_DISCRIMINATORS.CoordinatorAccount, 0);
  new DataView(data.buffer).setBigUint64(8, nonce, true);
  data.set(core, 16);
  return data;
}

const runId = ACCOUNT_RUN_ID;
const config = ACCOUNT_RUN_CONFIG;
const model = ACCOUNT_RUN_MODEL;

/** Checks `ix` against the IDL instruction `name` and returns its decoded args. */
function checkAgainstIdl(ix: TransactionInstruction, name: string): Record<string, unknown> {
  expect(ix.programId.equals(PROGRAM_ID)).toBe(true);
  const spec = PSYCHE_COORDINATOR_IDL.instructions.find((i) => i.name === name);
  if (!spec) throw new Error(`no IDL instruction ${name}`);
  expect([...ix.data.subarray(0, 8)]).toEqual(spec.discriminator);
  const decoded = coder.instruction.decode(Buffer.from(ix.data));
  expect(decoded?.name).toBe(name);
  // Round trip: re-encoding the decoded args gives the same bytes.
  expect(
    Buffer.from(coder.instruction.encode(name, decoded?.data as object)).equals(Buffer.from(ix.data)),
  ).toBe(true);
  expect(ix.keys.length).toBe(spec.accounts.length);
  spec.accounts.forEach((acc, i) => {
    const key = ix.keys[i];
    const a = acc as { name: string; signer?: boolean; writable?: boolean; address?: string };
    expect(key?.isSigner, `${name}.${a.name}.signer`).toBe(a.signer === true);
    expect(key?.isWritable, `${name}.${a.name}.writable`).toBe(a.writable === true);
    if (a.address) expect(key?.pubkey.toBase58()).toBe(a.address);
  });
  return decoded?.data as Record<string, unknown>;
}

describe('transactions against the IDL', () => {
  const b = new CoordinatorInstructions();
  const payer = Keypair.generate().publicKey;
  const user = Keypair.generate().publicKey;
  const coordinatorAccount = Keypair.generate().publicKey;
  const run = b.addresses(runId, coordinatorAccount);

  it('createRun = compute budget + createAccount(85 760 bytes, owner program) + init_coordinator', async () => {
    const ixs = await b.createRun({
      payer,
      coordinatorAccount,
      lamports: 1_000_000,
      runId,
      mainAuthority: payer,
      joinAuthority: PublicKey.default,
      config,
      model,
    });
    expect(ixs.length).toBe(4);
    const [, , create, init] = ixs as [
      TransactionInstruction,
      TransactionInstruction,
      TransactionInstruction,
      TransactionInstruction,
    ];
    expect(create.programId.equals(SystemProgram.programId)).toBe(true);
    // createAccount: u32 index 0, u64 lamports, u64 space, owner.
    const dv = new DataView(create.data.buffer, create.data.byteOffset);
    expect(dv.getUint32(0, true)).toBe(0);
    expect(dv.getBigUint64(12, true)).toBe(BigInt(COORDINATOR_ACCOUNT_SPACE));
    expect(new PublicKey(create.data.subarray(20, 52)).equals(PROGRAM_ID)).toBe(true);
    const args = checkAgainstIdl(init, 'init_coordinator') as { params: Record<string, unknown> };
    expect(args.params.run_id).toBe(runId);
    expect((args.params.config as BN[]).map((x) => x.toNumber())).toEqual(Object.values(config));
    expect(init.keys[1]?.pubkey.equals(coordinatorInstanceAddress(runId))).toBe(true);
    expect(init.keys[2]?.pubkey.equals(coordinatorAccount)).toBe(true);
  });

  it('every other instruction decodes to its name and args, with the IDL accounts', async () => {
    const bloom = {
      numBits: 64,
      keys: [1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n],
      bits: Array.from({ length: 16 }, (_, i) => BigInt(i)),
    };
    const w = checkAgainstIdl(
      await b.witness(run, user, {
        index: 2,
        participantBloom: bloom,
        broadcastBloom: bloom,
        broadcastMerkle: '07'.repeat(32),
      }),
      'witness',
    ) as { index: BN; participant_bloom: { bits: BN[]; num_bits: number }; broadcast_merkle: number[] };
    expect(w.index.toNumber()).toBe(2);
    expect(w.participant_bloom.num_bits).toBe(64);
    expect(w.participant_bloom.bits.map((x) => x.toNumber())).toEqual([...Array(16).keys()]);
    expect(w.broadcast_merkle).toEqual(Array(32).fill(7));
    const ww = checkAgainstIdl(await b.warmupWitness(run, user, { index: 5 }), 'warmup_witness') as {
      index: BN;
    };
    expect(ww.index.toNumber()).toBe(5);
    const id = 'ab'.repeat(32);
    const hc = checkAgainstIdl(
      await b.healthCheck(run, user, { checks: [{ index: 1, id }] }),
      'health_check',
    ) as {
      checks: { index: BN; id: number[] }[];
    };
    expect(hc.checks[0]?.index.toNumber()).toBe(1);
    expect(toHex(Uint8Array.from(hc.checks[0]?.id ?? []))).toBe(id);
    const cp = checkAgainstIdl(
      await b.checkpoint(run, user, { index: 0, checkpoint: { type: 'Gcs', bucket: 'bkt', prefix: null } }),
      'checkpoint',
    ) as { checkpoint: { kind: number; name: string; detail: string | null } };
    expect(cp.checkpoint).toEqual({ kind: 4, name: 'bkt', detail: null });
    checkAgainstIdl(await b.tick(run, user), 'tick');
    checkAgainstIdl(await b.leaveRun(run, user), 'leave_run');
    expect(checkAgainstIdl(await b.setPaused(run, payer, true), 'set_paused')).toEqual({ paused: true });
    const up = checkAgainstIdl(
      await b.update(run, payer, { progress: { epoch: 1, step: 7, epochStartDataIndex: 9 } }),
      'update',
    ) as { params: { config: unknown; model: unknown; progress: { step: number } } };
    expect(up.params.config).toBeNull();
    expect(up.params.progress.step).toBe(7);
    checkAgainstIdl(await b.freeCoordinator(run, payer, user), 'free_coordinator');
    const gj = await b.grantJoin(run, payer, payer, user);
    checkAgainstIdl(gj, 'grant_join');
    expect(gj.keys[3]?.pubkey.equals(joinAuthorizationAddress(run.coordinatorInstance, user))).toBe(true);
    const open = await b.joinRun(run, user, true);
    checkAgainstIdl(open, 'join_run');
    expect(open.keys[1]?.pubkey.equals(user)).toBe(true);
    const allowlisted = await b.joinRun(run, user, false);
    expect(allowlisted.keys[1]?.pubkey.equals(joinAuthorizationAddress(run.coordinatorInstance, user))).toBe(
      true,
    );
  });
});

/** Names of litesvm's `TransactionErrorFieldless` codes used here (a `const enum`, not available at runtime). */
const FIELDLESS: Record<number, string> = {
  2: 'AccountNotFound',
  3: 'ProgramAccountNotFound',
  11: 'SignatureFailure',
  12: 'InvalidProgramForExecution',
};

/** A `SolanaRpc` over litesvm (the real SVM, in process); `onAccountChange` is not available there. */
function litesvmRpc(svm: LiteSVM): SolanaRpc {
  return {
    url: 'litesvm',
    async getAccountData(address) {
      const a = svm.getAccount(address);
      return a ? new Uint8Array(a.data) : null;
    },
    async getLatestBlockhash() {
      return svm.latestBlockhash();
    },
    async sendTransaction(tx) {
      const res = svm.sendTransaction(tx);
      if (res instanceof FailedTransactionMetadata) {
        const err = res.err();
        throw new Error(`litesvm: ${typeof err === 'number' ? (FIELDLESS[err] ?? err) : String(err)}`);
      }
      return toHex(tx.signature ?? new Uint8Array());
    },
  };
}

describe('system-program flows on litesvm', () => {
  it('funds a node and creates the coordinator account rent-exempt, owned by the program', async () => {
    const svm = new LiteSVM();
    const payer = Keypair.generate();
    const node = Keypair.generate();
    const acct = Keypair.generate();
    svm.airdrop(payer.publicKey, 10_000_000_000n);
    const fund = new Transaction().add(
      SystemProgram.transfer({
        fromPubkey: payer.publicKey,
        toPubkey: node.publicKey,
        lamports: 1_000_000_000,
      }),
    );
    fund.recentBlockhash = svm.latestBlockhash();
    fund.feePayer = payer.publicKey;
    fund.sign(payer);
    expect(svm.sendTransaction(fund)).not.toBeInstanceOf(FailedTransactionMetadata);
    expect(svm.getBalance(node.publicKey)).toBe(1_000_000_000n);

    const rent = svm.minimumBalanceForRentExemption(BigInt(COORDINATOR_ACCOUNT_SPACE));
    const ixs = await new CoordinatorInstructions().createRun({
      payer: payer.publicKey,
      coordinatorAccount: acct.publicKey,
      lamports: Number(rent),
      runId,
      mainAuthority: payer.publicKey,
      joinAuthority: PublicKey.default,
      config,
      model,
    });
    // The whole createRun transaction needs the deployed program: on litesvm (program absent) it fails, atomically.
    const full = new Transaction().add(...ixs);
    full.recentBlockhash = svm.latestBlockhash();
    full.feePayer = payer.publicKey;
    full.sign(payer, acct);
    expect(svm.sendTransaction(full)).toBeInstanceOf(FailedTransactionMetadata);
    expect(svm.getAccount(acct.publicKey)).toBeNull();
    // Its system-program part (compute budget + createAccount) runs.
    svm.expireBlockhash();
    const sys = new Transaction().add(...ixs.slice(0, 3));
    sys.recentBlockhash = svm.latestBlockhash();
    sys.feePayer = payer.publicKey;
    sys.sign(payer, acct);
    const res = svm.sendTransaction(sys);
    expect(res, String(res instanceof FailedTransactionMetadata ? res.err() : '')).not.toBeInstanceOf(
      FailedTransactionMetadata,
    );
    const created = svm.getAccount(acct.publicKey);
    expect(created?.data.length).toBe(COORDINATOR_ACCOUNT_SPACE);
    expect(new PublicKey(created?.owner ?? PublicKey.default).equals(PROGRAM_ID)).toBe(true);
    expect(BigInt(created?.lamports ?? 0)).toBe(rent);
    expect(created?.data.every((x) => x === 0)).toBe(true); // `init_coordinator` requires a zero discriminator
  });
});

describe('SolanaCoordinatorClient', () => {
  const acct = Keypair.generate().publicKey;
  const setAccount = (svm: LiteSVM, core: Uint8Array, nonce: bigint) =>
    svm.setAccount(acct, {
      lamports: 1_000_000_000,
      data: programAccount(core, nonce),
      owner: PROGRAM_ID,
      executable: false,
    });
  const noRetry = { attempts: 1, initialMs: 0, factor: 1, maxMs: 0 };

  it('decodes the account, publishes new nonces as versions and drops stale ones', async () => {
    const svm = new LiteSVM();
    setAccount(svm, vector('02-warmup.bin'), 5n);
    const client = await SolanaCoordinatorClient.connect({
      rpcs: [litesvmRpc(svm)],
      keypair: Keypair.generate(),
      runId,
      coordinatorAccount: acct,
      tickIntervalMs: 0,
      pollIntervalMs: 0,
      retry: noRetry,
    });
    try {
      expect(client.latest()?.version).toBe(5);
      expect(client.latest()?.state).toEqual(decodeCoreAccount(vector('02-warmup.bin')));
      const seen: number[] = [];
      client.on('state', (u) => seen.push(u.version));
      setAccount(svm, vector('03-round-train.bin'), 6n);
      await client.refresh();
      setAccount(svm, vector('01-waiting.bin'), 4n); // stale
      await client.refresh();
      expect(seen).toEqual([6]);
      expect(client.latest()?.state.runState).toBe(RunState.RoundTrain);
      const w = await client.waitFor((u) => u.version >= 6);
      expect(w.version).toBe(6);
    } finally {
      await client.close();
    }
  });

  it('a join signed by the node reaches the SVM and fails there only because the program is absent', async () => {
    const svm = new LiteSVM();
    setAccount(svm, vector('01-waiting.bin'), 1n);
    const node = Keypair.generate();
    svm.airdrop(node.publicKey, 1_000_000_000n);
    const client = await SolanaCoordinatorClient.connect({
      rpcs: [litesvmRpc(svm)],
      keypair: node,
      runId,
      coordinatorAccount: acct,
      tickIntervalMs: 0,
      pollIntervalMs: 0,
      retry: noRetry,
    });
    try {
      const e = await client.join().catch((x: unknown) => x);
      expect(isCoordinatorClientError(e, 'SERVER_ERROR')).toBe(true);
      expect(String((e as Error).cause)).toBe('Error: litesvm: InvalidProgramForExecution');
    } finally {
      await client.close();
    }
  });

  it('sends tick only when the simulated state would change, with probability min(1, 2/clients)', async () => {
    const warmup = decodeCoreAccount(vector('02-warmup.bin'));
    // Warmup started at 1002 with warmup_time 30: nothing changes at 1003; at 1033 the warmup times out.
    expect(shouldSendTick(warmup, 1003, 0)).toBe(false);
    expect(shouldSendTick(warmup, 1033, 0)).toBe(true);
    expect(shouldSendTick(warmup, 1033, 0.6)).toBe(true); // 3 clients: p = 2/3
    expect(shouldSendTick(warmup, 1033, 0.7)).toBe(false);
    expect(shouldSendTick(decodeCoreAccount(vector('00-uninitialized.bin')), 5000, 0)).toBe(false);

    // The client's tick check sends exactly one `tick` transaction (recorded by an RPC double) when due.
    const sent: Transaction[] = [];
    let nowMs = 1003_000;
    const rpc: SolanaRpc = {
      url: 'recording-double',
      getAccountData: async () => programAccount(vector('02-warmup.bin'), 1n),
      getLatestBlockhash: async () => PublicKey.default.toBase58(),
      sendTransaction: async (tx) => {
        sent.push(tx);
        return 'sig';
      },
    };
    const node = Keypair.generate();
    const client = await SolanaCoordinatorClient.connect({
      rpcs: [rpc],
      keypair: node,
      runId,
      coordinatorAccount: acct,
      tickIntervalMs: 0,
      pollIntervalMs: 0,
      now: () => nowMs,
      random: () => 0,
    });
    try {
      expect(await client.tickCheck()).toBe(false);
      nowMs = 1033_000;
      expect(await client.tickCheck()).toBe(true);
      expect(sent.length).toBe(1);
      const tx = sent[0] as Transaction;
      expect(tx.verifySignatures()).toBe(true);
      expect(tx.feePayer?.equals(node.publicKey)).toBe(true);
      const ix = tx.instructions.at(-1) as TransactionInstruction;
      checkAgainstIdl(ix, 'tick');
      expect(ix.keys[0]?.pubkey.equals(node.publicKey)).toBe(true);
      await client.leave();
      expect(sent.length).toBe(2);
      checkAgainstIdl((sent[1] as Transaction).instructions.at(-1) as TransactionInstruction, 'leave_run');
      expect(await client.tickCheck()).toBe(false);
    } finally {
      await client.close();
    }
  });
});

describe('RPC retries and fallback', () => {
  const failing = (url: string, message: string, calls: string[]): SolanaRpc => ({
    url,
    getAccountData: async () => {
      calls.push(url);
      throw new Error(message);
    },
    getLatestBlockhash: async () => '',
    sendTransaction: async () => '',
  });

  it('backs off 500 ms × 1.5 per attempt, then falls back to the next RPC', async () => {
    const calls: string[] = [];
    const sleeps: number[] = [];
    const ok: SolanaRpc = { ...failing('b', '', calls), getAccountData: async () => new Uint8Array([1]) };
    const out = await withRetries(
      [failing('a', 'fetch failed', calls), ok],
      'getAccountInfo',
      (r) => r.getAccountData(PublicKey.default),
      undefined,
      async (ms) => {
        sleeps.push(ms);
      },
    );
    expect(out).toEqual(new Uint8Array([1]));
    expect(calls).toEqual(['a', 'a', 'a', 'a', 'a']);
    expect(sleeps).toEqual([500, 750, 1125, 1687.5]);
  });

  it('does not retry a program error and names it from the IDL; SERVER_ERROR when all RPCs fail', async () => {
    const calls: string[] = [];
    const e = await withRetries(
      [failing('a', 'Program failed: custom program error: 0x177b', calls), failing('b', 'x', calls)],
      'witness',
      (r) => r.getAccountData(PublicKey.default),
      undefined,
      async () => {},
    ).catch((x: unknown) => x);
    expect(isCoordinatorClientError(e, 'COORDINATOR_REJECTED')).toBe(true);
    expect((e as { details: Record<string, unknown> }).details).toMatchObject({
      programError: 'NotAWitness',
      number: 6011,
    });
    expect(calls).toEqual(['a']);
    const calls2: string[] = [];
    const e2 = await withRetries(
      [failing('a', 'timeout', calls2), failing('b', 'timeout', calls2)],
      'tick',
      (r) => r.getAccountData(PublicKey.default),
      { attempts: 2, initialMs: 1, factor: 2, maxMs: 1 },
      async () => {},
    ).catch((x: unknown) => x);
    expect(isCoordinatorClientError(e2, 'SERVER_ERROR')).toBe(true);
    expect(calls2).toEqual(['a', 'a', 'b', 'b']);
  });
});
