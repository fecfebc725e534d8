import { AnchorProvider, BN, type Idl, Program, type Wallet } from '@coral-xyz/anchor';
import {
  type Bloom,
  type Checkpoint,
  CONFIG_FIELDS,
  type CoordinatorConfig,
  fromHex,
  type LrSchedule,
  type ModelConfig,
} from '@psyche/coordinator';
import {
  ComputeBudgetProgram,
  Connection,
  Keypair,
  PublicKey,
  SystemProgram,
  type TransactionInstruction,
} from '@solana/web3.js';
import { CoordinatorClientError } from '../errors.js';
import type { PsychePayloads } from '../psyche-engine.js';
import { coordinatorInstanceAddress, IDL, joinAuthorizationAddress, PROGRAM_ID } from './idl.js';
import { COORDINATOR_ACCOUNT_SPACE } from './layout.js';

/** Heap frame every program transaction requests (the core allocates the whole state; see the program README). */
export const HEAP_FRAME_BYTES = 256 * 1024;
/** Compute-unit limit every program transaction sets (not measured on-chain yet; the maximum). */
export const COMPUTE_UNIT_LIMIT = 1_400_000;

/** The two compute-budget instructions that start every program transaction. */
export function computeBudgetInstructions(): TransactionInstruction[] {
  return [
    ComputeBudgetProgram.requestHeapFrame({ bytes: HEAP_FRAME_BYTES }),
    ComputeBudgetProgram.setComputeUnitLimit({ units: COMPUTE_UNIT_LIMIT }),
  ];
}

const CHECKPOINT_KIND = { Ephemeral: 0, Dummy: 1, Hub: 2, P2P: 3, Gcs: 4, P2PGcs: 5 } as const;
const LR_KIND = { constant: 0, linear: 1, cosine: 2, wsd: 3 } as const;

const bn = (x: number | bigint) => new BN(x.toString());

/** Borsh form of a bloom (`BloomArg`). */
export function bloomArg(b: Bloom): { bits: BN[]; keys: BN[]; numBits: number } {
  return { bits: b.bits.map(bn), keys: b.keys.map(bn), numBits: b.numBits };
}

/** Borsh form of a checkpoint (`CheckpointArg`). */
export function checkpointArg(c: Checkpoint): { kind: number; name: string; detail: string | null } {
  const kind = CHECKPOINT_KIND[c.type];
  if (c.type === 'Ephemeral') return { kind, name: '', detail: null };
  if (c.type === 'Gcs' || c.type === 'P2PGcs') return { kind, name: c.bucket, detail: c.prefix };
  return { kind, name: c.repoId, detail: c.revision };
}

/** Borsh form of an LR schedule (`LrScheduleArg`, the account's encoding). */
export function lrScheduleArg(s: LrSchedule): { kind: number; lrs: number[]; steps: BN[] } {
  const kind = LR_KIND[s.type];
  if (s.type === 'constant')
    return { kind, lrs: [s.baseLr, s.warmupInitLr, 0, 0, 0], steps: [s.warmupSteps, 0, 0, 0].map(bn) };
  if (s.type === 'wsd')
    return {
      kind,
      lrs: [s.baseLr, s.warmupInitLr, s.cosineDecayFinalLr, s.linearDecayFinalLr, 0],
      steps: [s.warmupSteps, s.stableSteps, s.cosineDecaySteps, s.linearDecaySteps].map(bn),
    };
  return {
    kind,
    lrs: [s.baseLr, s.warmupInitLr, s.finalLr, 0, 0],
    steps: [s.warmupSteps, s.totalSteps, 0, 0].map(bn),
  };
}

/** Borsh form of a model config (`ModelArg`). */
export function modelArg(m: ModelConfig) {
  return {
    maxSeqLen: bn(m.maxSeqLen),
    coldStartWarmupSteps: bn(m.coldStartWarmupSteps),
    checkpoint: checkpointArg(m.checkpoint),
    lrSchedule: lrScheduleArg(m.lrSchedule),
  };
}

/** The 15 config fields in `CONFIG_FIELDS` order. */
export function configArg(c: CoordinatorConfig): BN[] {
  return CONFIG_FIELDS.map((f) => bn(c[f]));
}

/** Where a run lives on chain. */
export interface RunAddresses {
  /** Program id (default: the IDL's). */
  programId: PublicKey;
  /** Instance PDA `["coordinator", run_id]`. */
  coordinatorInstance: PublicKey;
  /** The zero-copy coordinator account (a keypair account chosen at creation). */
  coordinatorAccount: PublicKey;
}

/** A wallet that never signs: instruction building needs no signatures. */
class NoSignWallet implements Wallet {
  readonly payer = Keypair.generate();
  constructor(readonly publicKey: PublicKey) {}
  signTransaction<T>(): Promise<T> {
    return Promise.reject(new Error('NoSignWallet does not sign'));
  }
  signAllTransactions<T>(): Promise<T[]> {
    return Promise.reject(new Error('NoSignWallet does not sign'));
  }
}

/**
 * Builds every instruction of the `psyche_coordinator` program from the checked-in IDL with Anchor's coder (no
 * network access: the provider's connection is never used).
 *
 * @example
 * ```ts
 * const b = new CoordinatorInstructions(PROGRAM_ID);
 * const ixs = await b.createRun({ payer, coordinatorAccount: Keypair.generate().publicKey, runId: 'r', ... });
 * ```
 */
export class CoordinatorInstructions {
  /** The Anchor program over the IDL (its provider is offline). */
  readonly program: Program<Idl>;

  constructor(readonly programId: PublicKey = PROGRAM_ID) {
    const idl = { ...IDL, address: programId.toBase58() } as Idl;
    const provider = new AnchorProvider(
      new Connection('http://127.0.0.1:1'),
      new NoSignWallet(PublicKey.default),
      {},
    );
    this.program = new Program(idl, provider);
  }

  /** The addresses of `runId` with the given coordinator account. */
  addresses(runId: string, coordinatorAccount: PublicKey): RunAddresses {
    return {
      programId: this.programId,
      coordinatorInstance: coordinatorInstanceAddress(runId, this.programId),
      coordinatorAccount,
    };
  }

  /**
   * `SystemProgram.createAccount` of the coordinator account (85 760 bytes, owned by the program, rent-exempt
   * `lamports`) + `init_coordinator`, for one transaction signed by `payer` and `coordinatorAccount`.
   */
  async createRun(p: {
    payer: PublicKey;
    coordinatorAccount: PublicKey;
    lamports: number;
    runId: string;
    mainAuthority: PublicKey;
    /** `PublicKey.default` = permissionless joins. */
    joinAuthority: PublicKey;
    config: CoordinatorConfig;
    model: ModelConfig;
  }): Promise<TransactionInstruction[]> {
    const create = SystemProgram.createAccount({
      fromPubkey: p.payer,
      newAccountPubkey: p.coordinatorAccount,
      lamports: p.lamports,
      space: COORDINATOR_ACCOUNT_SPACE,
      programId: this.programId,
    });
    const init = await this.m('initCoordinator')({
      mainAuthority: p.mainAuthority,
      joinAuthority: p.joinAuthority,
      runId: p.runId,
      config: configArg(p.config),
      model: modelArg(p.model),
    })
      .accountsStrict({
        payer: p.payer,
        coordinatorInstance: coordinatorInstanceAddress(p.runId, this.programId),
        coordinatorAccount: p.coordinatorAccount,
        systemProgram: SystemProgram.programId,
      })
      .instruction();
    return [...computeBudgetInstructions(), create, init];
  }

  /** `update` (main authority; only while halted). */
  update(
    run: RunAddresses,
    authority: PublicKey,
    p: {
      config?: CoordinatorConfig;
      model?: ModelConfig;
      progress?: { epoch: number; step: number; epochStartDataIndex: number };
    },
  ): Promise<TransactionInstruction> {
    return this.m('update')({
      config: p.config ? configArg(p.config) : null,
      model: p.model ? modelArg(p.model) : null,
      progress: p.progress
        ? {
            epoch: p.progress.epoch,
            step: p.progress.step,
            epochStartDataIndex: bn(p.progress.epochStartDataIndex),
          }
        : null,
    })
      .accountsStrict(this.owner(run, authority))
      .instruction();
  }

  /** `set_paused` (main authority). */
  setPaused(run: RunAddresses, authority: PublicKey, paused: boolean): Promise<TransactionInstruction> {
    return this.m('setPaused')(paused).accountsStrict(this.owner(run, authority)).instruction();
  }

  /** `grant_join`: allowlists `grantee` (signed by `payer` and the join authority). */
  grantJoin(
    run: RunAddresses,
    payer: PublicKey,
    joinAuthority: PublicKey,
    grantee: PublicKey,
  ): Promise<TransactionInstruction> {
    return this.m('grantJoin')(grantee)
      .accountsStrict({
        payer,
        joinAuthority,
        coordinatorInstance: run.coordinatorInstance,
        authorization: joinAuthorizationAddress(run.coordinatorInstance, grantee, this.programId),
        systemProgram: SystemProgram.programId,
      })
      .instruction();
  }

  /**
   * `join_run` for `user`. `permissionless` runs get the user's own key as the (unchecked) authorization; otherwise
   * the user's `JoinAuthorization` PDA.
   */
  joinRun(run: RunAddresses, user: PublicKey, permissionless: boolean): Promise<TransactionInstruction> {
    return this.m('joinRun')()
      .accountsStrict({
        user,
        authorization: permissionless
          ? user
          : joinAuthorizationAddress(run.coordinatorInstance, user, this.programId),
        coordinatorInstance: run.coordinatorInstance,
        coordinatorAccount: run.coordinatorAccount,
      })
      .instruction();
  }

  /** `leave_run`: withdraws `user` (pending joiner or epoch client). */
  leaveRun(run: RunAddresses, user: PublicKey): Promise<TransactionInstruction> {
    return this.m('leaveRun')().accountsStrict(this.perm(run, user)).instruction();
  }

  /** `tick` (anyone). */
  tick(run: RunAddresses, user: PublicKey): Promise<TransactionInstruction> {
    return this.m('tick')().accountsStrict(this.perm(run, user)).instruction();
  }

  /** `witness`. */
  witness(run: RunAddresses, user: PublicKey, w: PsychePayloads['witness']): Promise<TransactionInstruction> {
    return this.m('witness')(bn(w.index), bloomArg(w.participantBloom), bloomArg(w.broadcastBloom), [
      ...fromHex(w.broadcastMerkle, 'broadcastMerkle'),
    ])
      .accountsStrict(this.perm(run, user))
      .instruction();
  }

  /** `warmup_witness`. */
  warmupWitness(
    run: RunAddresses,
    user: PublicKey,
    w: PsychePayloads['warmupWitness'],
  ): Promise<TransactionInstruction> {
    return this.m('warmupWitness')(bn(w.index)).accountsStrict(this.perm(run, user)).instruction();
  }

  /** `health_check`. */
  healthCheck(
    run: RunAddresses,
    user: PublicKey,
    h: PsychePayloads['healthCheck'],
  ): Promise<TransactionInstruction> {
    return this.m('healthCheck')(
      h.checks.map((c) => ({ index: bn(c.index), id: [...fromHex(c.id, 'checks.id')] })),
    )
      .accountsStrict(this.perm(run, user))
      .instruction();
  }

  /** `checkpoint`. */
  checkpoint(
    run: RunAddresses,
    user: PublicKey,
    c: PsychePayloads['checkpoint'],
  ): Promise<TransactionInstruction> {
    return this.m('checkpoint')(bn(c.index), checkpointArg(c.checkpoint))
      .accountsStrict(this.perm(run, user))
      .instruction();
  }

  /** `free_coordinator` (main authority; only while halted): rent goes to `spill`. */
  freeCoordinator(
    run: RunAddresses,
    authority: PublicKey,
    spill: PublicKey,
  ): Promise<TransactionInstruction> {
    return this.m('freeCoordinator')()
      .accountsStrict({
        authority,
        spill,
        coordinatorInstance: run.coordinatorInstance,
        coordinatorAccount: run.coordinatorAccount,
      })
      .instruction();
  }

  /** The IDL method builder `name` (camelCase). */
  private m(name: string) {
    const f = this.program.methods[name];
    if (f === undefined)
      throw new CoordinatorClientError('INVALID_ARGUMENT', `the IDL has no instruction ${name}`, { name });
    return f;
  }

  private owner(run: RunAddresses, authority: PublicKey) {
    return {
      authority,
      coordinatorInstance: run.coordinatorInstance,
      coordinatorAccount: run.coordinatorAccount,
    };
  }

  private perm(run: RunAddresses, user: PublicKey) {
    return { user, coordinatorInstance: run.coordinatorInstance, coordinatorAccount: run.coordinatorAccount };
  }
}
