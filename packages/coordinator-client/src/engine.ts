import type { RunConfig } from './config.js';
import type { Op } from './protocol.js';

/** One input to the state machine, as recorded in the input log (plus its `ts` and `seed`). */
export interface EngineInput {
  /** `tick` (timer), or the client operation. */
  readonly kind: 'tick' | Op;
  /** Hex ed25519 public key of the authenticated sender (absent for `tick`). */
  readonly client?: string;
  /** Operation payload (already tagged-JSON decoded), unvalidated: the engine validates it. */
  readonly body?: unknown;
}

/** A client as shown on the status endpoint. */
export interface EngineClientSummary {
  readonly id: string;
  /** `pending` (joined, waiting for the next epoch) or the coordinator's client state (e.g. `Healthy`). */
  readonly state: string;
}

/** A closed or current round, as shown on the status endpoint. */
export interface EngineRoundSummary {
  readonly height: number;
  readonly dataIndex: string;
  readonly witnesses: number;
}

/** Dashboard view of an engine state. */
export interface EngineSummary {
  readonly runState: string;
  readonly step: number;
  readonly epoch: number;
  readonly clients: readonly EngineClientSummary[];
  readonly rounds: readonly EngineRoundSummary[];
}

/**
 * The deterministic state machine a {@link CoordinatorServer} runs. `apply` must be a pure function of
 * `(state, input, ts, seed)`: the server relies on that to replay its input log into the exact same state.
 * It must not mutate `state`; on invalid input it throws (the state is then unchanged and the input not logged).
 */
export interface CoordinatorEngine<S> {
  /** The state before any input, for the given run config. */
  initial(config: RunConfig, ts: number): S;
  /** Applies one input; returns the new state or throws a typed error. */
  apply(state: S, input: EngineInput, ts: number, seed: bigint): S;
  /** Dashboard summary. */
  summarize(state: S): EngineSummary;
}
