/**
 * The compliance suite against the Solana backend. No validator (and no build of the program) is possible here,
 * so the chain is a **program double**: a `SolanaRpc` that verifies each transaction's signatures, decodes its
 * instructions with Anchor's coder over the checked-in IDL, applies them with `@psyche/coordinator` exactly as
 * `programs/psyche-coordinator/src/lib.rs` does with the Rust core (same operation, then a tick unless halted;
 * atomic; `nonce += 1`), and serves the account encoded by the TS encoder (byte-identical to the Rust core's). What
 * it exercises for real: the client's transactions, signing, decoding, nonce handling, tick simulation, error
 * mapping and watch/ack semantics. What it cannot: the program itself.
 */
import { BorshCoder } from '@coral-xyz/anchor';
import {
  CoordinatorErrorNumber,
  type CoordinatorState,
  checkpoint,
  cloneState,
  createCoordinator,
  healthCheck,
  isCoordinatorError,
  join,
  RunState,
  resume,
  tick,
  toHex,
  warmupWitness,
  withdraw,
  witness,
} from '@psyche/coordinator';
import { Keypair, type PublicKey, type Transaction } from '@solana/web3.js';
import {
  encodeCoordinatorAccount,
  IDL,
  PROGRAM_ID,
  SolanaCoordinatorClient,
  type SolanaRpc,
} from '../src/solana/index.js';
import { coordinatorClientComplianceTests } from '../src/test-suite.js';

type Args = Record<string, unknown>;
const hexOf = (bytes: number[] | Uint8Array) => toHex(Uint8Array.from(bytes));
const num = (x: unknown) => Number(String(x));
const big = (x: unknown) => BigInt(String(x));
const bloomOf = (b: Args) => ({
  numBits: b.num_bits as number,
  keys: (b.keys as unknown[]).map(big),
  bits: (b.bits as unknown[]).map(big),
});
const CHECKPOINT_TYPES = ['Ephemeral', 'Dummy', 'Hub', 'P2P', 'Gcs', 'P2PGcs'] as const;

/** The program double (see the file comment). */
class ProgramDouble implements SolanaRpc {
  readonly url = 'program-double';
  private readonly coder = new BorshCoder(IDL);
  private readonly listeners = new Set<(data: Uint8Array) => void>();
  private nonce = 1n;
  private seed = 1n;

  constructor(
    private state: CoordinatorState,
    readonly account: PublicKey,
  ) {}

  async getAccountData(address: PublicKey): Promise<Uint8Array | null> {
    return address.equals(this.account) ? encodeCoordinatorAccount(this.state, this.nonce) : null;
  }

  async getLatestBlockhash(): Promise<string> {
    return Keypair.generate().publicKey.toBase58();
  }

  async sendTransaction(tx: Transaction): Promise<string> {
    if (!tx.verifySignatures()) throw new Error('SignatureFailure');
    const next = cloneState(this.state);
    const now = Math.floor(Date.now() / 1000);
    for (const ix of tx.instructions) {
      if (!ix.programId.equals(PROGRAM_ID)) continue; // compute budget
      const decoded = this.coder.instruction.decode(Buffer.from(ix.data));
      if (!decoded) throw new Error('InvalidInstructionData');
      const a = decoded.data as Args;
      const user = hexOf(ix.keys[0]?.pubkey.toBytes() ?? new Uint8Array());
      if (ix.keys[0] && !tx.signatures.some((s) => s.publicKey.equals(ix.keys[0]?.pubkey as PublicKey)))
        throw new Error('MissingRequiredSignature');
      const tickIfRunning = () => {
        if (![RunState.Uninitialized, RunState.Paused, RunState.Finished].includes(next.runState as 0))
          tick(next, [], now, this.seed++);
      };
      try {
        switch (decoded.name) {
          case 'join_run':
            join(next, user);
            break;
          case 'leave_run':
            withdraw(next, user);
            break;
          case 'tick':
            break;
          case 'witness':
            witness(
              next,
              {
                from: user,
                index: num(a.index),
                participantBloom: bloomOf(a.participant_bloom as Args),
                broadcastBloom: bloomOf(a.broadcast_bloom as Args),
                broadcastMerkle: hexOf(a.broadcast_merkle as number[]),
              },
              now,
            );
            break;
          case 'warmup_witness':
            warmupWitness(next, { from: user, index: num(a.index) }, now, this.seed++);
            break;
          case 'health_check':
            healthCheck(
              next,
              {
                from: user,
                checks: (a.checks as Args[]).map((c) => ({
                  index: num(c.index),
                  id: hexOf(c.id as number[]),
                })),
              },
              now,
            );
            break;
          case 'checkpoint': {
            const c = a.checkpoint as { kind: number; name: string; detail: string | null };
            const type = CHECKPOINT_TYPES[c.kind] ?? 'Ephemeral';
            checkpoint(next, {
              from: user,
              index: num(a.index),
              checkpoint:
                type === 'Ephemeral'
                  ? { type }
                  : type === 'Gcs' || type === 'P2PGcs'
                    ? { type, bucket: c.name, prefix: c.detail }
                    : { type, repoId: c.name, revision: c.detail },
            });
            break;
          }
          default:
            throw new Error(`the double does not implement ${decoded.name}`);
        }
        tickIfRunning();
      } catch (e) {
        if (isCoordinatorError(e))
          throw new Error(`custom program error: 0x${(6000 + CoordinatorErrorNumber[e.code]).toString(16)}`);
        throw e;
      }
    }
    this.state = next;
    this.nonce += 1n;
    const data = encodeCoordinatorAccount(this.state, this.nonce);
    for (const l of this.listeners) l(data);
    return 'sig';
  }

  onAccountChange(address: PublicKey, listener: (data: Uint8Array) => void): () => void {
    if (!address.equals(this.account)) return () => {};
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

coordinatorClientComplianceTests('solana (program double over the IDL)', async () => {
  const runId = 'compliance';
  const state = createCoordinator({
    runId,
    config: {
      warmupTime: 2,
      cooldownTime: 1,
      maxRoundTrainTime: 2,
      roundWitnessTime: 1,
      globalBatchSizeWarmupTokens: 0,
      epochTime: 3,
      totalSteps: 1000,
      initMinClients: 2,
      minClients: 1,
      maxClients: 256,
      witnessNodes: 0,
      globalBatchSizeStart: 8,
      globalBatchSizeEnd: 8,
      verificationPercent: 0,
      waitingForMembersExtraTime: 1,
    },
    model: {
      maxSeqLen: 16,
      coldStartWarmupSteps: 0,
      checkpoint: { type: 'Hub', repoId: 'org/base', revision: null },
      lrSchedule: { type: 'constant', baseLr: 1e-3, warmupInitLr: 0, warmupSteps: 0 },
    },
  });
  resume(state, Math.floor(Date.now() / 1000));
  const account = Keypair.generate().publicKey;
  const chain = new ProgramDouble(state, account);
  return {
    createClient: () =>
      SolanaCoordinatorClient.connect({
        rpcs: [chain],
        keypair: Keypair.generate(),
        runId,
        coordinatorAccount: account,
        tickIntervalMs: 100,
        pollIntervalMs: 0,
        retry: { attempts: 1, initialMs: 0, factor: 1, maxMs: 0 },
      }),
    teardown: async () => {},
  };
});
