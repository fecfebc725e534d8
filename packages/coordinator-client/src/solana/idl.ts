import type { Idl } from '@coral-xyz/anchor';
import { PublicKey } from '@solana/web3.js';
import { PSYCHE_COORDINATOR_IDL } from './idl/psyche_coordinator.js';

/** The program's IDL (Anchor 0.30+ spec), typed for `new Program(idl, provider)` / `new BorshCoder(idl)`. */
export const IDL: Idl = PSYCHE_COORDINATOR_IDL as unknown as Idl;

/** The program id in the checked-in IDL (a placeholder until the first deploy: see the program's README). */
export const PROGRAM_ID = new PublicKey(PSYCHE_COORDINATOR_IDL.address);

/** Account discriminators by account name (`sha256("account:<Name>")[0..8]`). */
export const ACCOUNT_DISCRIMINATORS: Readonly<
  Record<'CoordinatorAccount' | 'CoordinatorInstance' | 'JoinAuthorization', Uint8Array>
> = Object.freeze(
  Object.fromEntries(
    PSYCHE_COORDINATOR_IDL.accounts.map((a) => [a.name, Uint8Array.from(a.discriminator)]),
  ) as Record<'CoordinatorAccount' | 'CoordinatorInstance' | 'JoinAuthorization', Uint8Array>,
);

/** Anchor error code → name, from the IDL (6001–6021: the core's numbered errors 1–21; 6100+: program errors). */
export const PROGRAM_ERRORS: ReadonlyMap<number, string> = new Map(
  PSYCHE_COORDINATOR_IDL.errors.map((e) => [e.code, e.name]),
);

/** The instance PDA of a run: seeds `["coordinator", run_id]`. */
export function coordinatorInstanceAddress(runId: string, programId: PublicKey = PROGRAM_ID): PublicKey {
  return PublicKey.findProgramAddressSync(
    [Buffer.from('coordinator'), Buffer.from(runId, 'utf8')],
    programId,
  )[0];
}

/** The allowlist PDA of `grantee` for a run: seeds `["join", coordinator_instance, grantee]`. */
export function joinAuthorizationAddress(
  coordinatorInstance: PublicKey,
  grantee: PublicKey,
  programId: PublicKey = PROGRAM_ID,
): PublicKey {
  return PublicKey.findProgramAddressSync(
    [Buffer.from('join'), coordinatorInstance.toBuffer(), grantee.toBuffer()],
    programId,
  )[0];
}
