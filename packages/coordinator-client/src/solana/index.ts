/**
 * `@psyche/coordinator-client/solana`: the Solana backend. The checked-in IDL of the `psyche_coordinator` Anchor
 * program, the decoder of its zero-copy coordinator account, and transaction builders (`@solana/web3.js` v1 +
 * `@coral-xyz/anchor`). See `docs/solana.md`.
 *
 * @packageDocumentation
 */

/** The `@solana/web3.js` v1 classes this backend's API takes (so dependents need no direct dependency). */
export { Keypair, PublicKey, SystemProgram, Transaction } from '@solana/web3.js';
export { type DecodedCoordinatorAccount, decodeCoordinatorAccount, decodeCoreAccount } from './account.js';
export { type SolanaClientOptions, SolanaCoordinatorClient, shouldSendTick } from './client.js';
export { encodeCoordinatorAccount, encodeCoreAccount } from './encode.js';
export {
  ACCOUNT_DISCRIMINATORS,
  coordinatorInstanceAddress,
  IDL,
  joinAuthorizationAddress,
  PROGRAM_ERRORS,
  PROGRAM_ID,
} from './idl.js';
export {
  bloomArg,
  COMPUTE_UNIT_LIMIT,
  CoordinatorInstructions,
  checkpointArg,
  computeBudgetInstructions,
  configArg,
  HEAP_FRAME_BYTES,
  lrScheduleArg,
  modelArg,
  type RunAddresses,
} from './instructions.js';
export {
  ACCOUNT_MAX_CLIENTS,
  ACCOUNT_MAX_WITNESSES,
  ACCOUNT_VERSION,
  COORDINATOR_ACCOUNT_SPACE,
  CORE_ACCOUNT_SIZE,
  CORE_LAYOUT,
  CORE_OFFSET,
  NONCE_OFFSET,
  NUM_STORED_ROUNDS,
} from './layout.js';
export {
  connectionRpc,
  DEFAULT_RETRY,
  programErrorOf,
  type RetryPolicy,
  type SolanaRpc,
  withRetries,
} from './rpc.js';
