/**
 * `@psyche/coordinator-client`: the backend-agnostic {@link CoordinatorClient} interface, its local-server
 * backend ({@link LocalCoordinatorClient}), and the local coordinator server ({@link startCoordinatorServer},
 * CLI `psyche-coordinator serve --config run.toml`). Protocol: `docs/coordinator-protocol.md`.
 *
 * @packageDocumentation
 */

export { type CliIo, runCli } from './cli.js';
export type {
  Ack,
  ClientPayloads,
  CoordinatorClient,
  CoordinatorClientEvents,
  OperationOptions,
  StateUpdate,
} from './client.js';
export { decodeTagged, encodeTagged } from './codec.js';
export {
  type CoordinatorConfigInput,
  camelizeKeys,
  coordinatorConfigSchema,
  loadRunConfig,
  modelConfigSchema,
  parseRunConfig,
  type RunConfig,
  runConfigSchema,
  type ServerConfig,
  serverConfigSchema,
  validateRunConfig,
} from './config.js';
export type {
  CoordinatorEngine,
  EngineClientSummary,
  EngineInput,
  EngineRoundSummary,
  EngineSummary,
} from './engine.js';
export {
  CoordinatorClientError,
  type CoordinatorClientErrorCode,
  isCoordinatorClientError,
} from './errors.js';
export {
  authMessage,
  formatSolanaKeypair,
  generateKeypair,
  type Keypair,
  keypairFromSeed,
  parseSolanaKeypair,
  readKeypairFile,
  sign,
  toHex,
  verify,
  writeKeypairFile,
} from './keys.js';
export { type BackoffOptions, type LocalClientOptions, LocalCoordinatorClient } from './local-client.js';
export { InputLog, type LogOpenResult, readSnapshot, writeSnapshot } from './log.js';
export {
  ADMIN_OPS,
  type AdminOp,
  type ClientMessage,
  OPS,
  type Op,
  PROTOCOL_VERSION,
  type ServerMessage,
  WS_PATH,
} from './protocol.js';
export {
  type AdminConfigChanges,
  type CheckpointPayload,
  type HealthCheckPayload,
  type PsychePayloads,
  psycheEngine,
  type WarmupWitnessPayload,
  type WitnessPayload,
} from './psyche-engine.js';
export {
  CoordinatorServer,
  type CoordinatorServerOptions,
  inspectDataDir,
  type LogRecord,
  type RejectionCounters,
  type ServerStatus,
  type StatusClient,
  startCoordinatorServer,
  stateHash,
} from './server.js';
export { makeWitness, runSimulatedNode, type SimulatedNodeStats } from './simulated-node.js';
