/**
 * `@psyche/runner`: the `psyche` CLI — `run` a training node from a TOML config, `coordinator serve`,
 * `local-testnet --nodes N`, `data prepare`, `keygen`, `status` — with human-readable or JSON progress and a
 * Prometheus `/metrics` endpoint.
 *
 * @packageDocumentation
 */
export { type CliIo, runCli, USAGE } from './cli.js';
export {
  dataTableSchema,
  loadNodeConfig,
  modelTableSchema,
  type NodeConfig,
  type NodeConfigOptions,
  nodeConfigSchema,
  optimizerTableSchema,
  renderToml,
  trainingTableSchema,
  validateNodeConfig,
} from './config.js';
export { isRunnerError, RunnerError, type RunnerErrorCode } from './errors.js';
export { formatEvent } from './format.js';
export { type MetricsServer, type MetricsSource, renderMetrics, startMetricsServer } from './metrics.js';
export { type NodeIo, type RunNodeOptions, runNode } from './node-runner.js';
export {
  connectSolanaClient,
  loadChainRunConfig,
  rentExemptLamports,
  runSolanaCli,
  SOLANA_USAGE,
  type SolanaBackendOptions,
} from './solana.js';
export {
  BIN_PATH,
  cliCommand,
  LocalTestnet,
  type LocalTestnetOptions,
  type TestnetNode,
} from './testnet.js';
