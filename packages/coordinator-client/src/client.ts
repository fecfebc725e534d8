/**
 * The backend-agnostic coordinator client interface. Every backend (the local server in this package, the
 * Solana program later) implements it and must pass the compliance suite exported from
 * `@psyche/coordinator-client/test-suite`.
 */

/** Options accepted by every operation. */
export interface OperationOptions {
  /** Aborts the operation: it rejects with a `CoordinatorClientError` of code `ABORTED`. */
  signal?: AbortSignal;
}

/** One observed coordinator state. */
export interface StateUpdate<TState> {
  /** Monotonic version of the state (number of accepted inputs); never decreases for one client. */
  readonly version: number;
  /** Backend clock when the state was published (ms since epoch). */
  readonly serverTime: number;
  /** The coordinator state. */
  readonly state: TState;
}

/** Acknowledgement of an accepted operation. */
export interface Ack {
  /** The state version that includes the operation's effect. */
  readonly version: number;
}

/** Payload types of the write operations, per backend. */
export interface ClientPayloads {
  witness: unknown;
  warmupWitness: unknown;
  healthCheck: unknown;
  checkpoint: unknown;
}

/** Typed events of a {@link CoordinatorClient} (names are `noun:verb` or a noun). */
export interface CoordinatorClientEvents<TState> {
  /** A new state was observed. */
  state: StateUpdate<TState>;
  /** The backend connection is (re)established and authenticated. */
  'connection:open': { readonly attempt: number };
  /** The backend connection was lost; the client will reconnect unless closed. */
  'connection:close': { readonly code: number; readonly reason: string };
}

/**
 * A node's view of, and voice to, the coordinator.
 *
 * - Reading: {@link CoordinatorClient.watch} (async iterator) or {@link CoordinatorClient.on} (typed events).
 * - Writing: {@link CoordinatorClient.join}, {@link CoordinatorClient.witness},
 *   {@link CoordinatorClient.warmupWitness}, {@link CoordinatorClient.healthCheck},
 *   {@link CoordinatorClient.checkpoint}, {@link CoordinatorClient.leave}. Each resolves with an {@link Ack} once the
 *   backend has durably accepted it, or rejects with a typed `CoordinatorClientError` (`COORDINATOR_REJECTED` when
 *   the state machine refused it, `ABORTED` when the signal fired, ...).
 *
 * @typeParam TState - the coordinator state type of the backend
 * @typeParam TPayloads - payload types of the write operations
 */
export interface CoordinatorClient<TState = unknown, TPayloads extends ClientPayloads = ClientPayloads> {
  /** This node's identity (hex ed25519 public key). */
  readonly id: string;
  /** The latest observed state, if any. */
  latest(): StateUpdate<TState> | undefined;
  /**
   * Iterates states: first the latest known (if any), then every new one in version order. When the consumer is
   * slower than the backend, intermediate states may be skipped (the newest is never skipped). Ends when the
   * client is closed; rejects with `ABORTED` when `signal` fires.
   */
  watch(options?: OperationOptions): AsyncIterableIterator<StateUpdate<TState>>;
  /**
   * Waits for the first state (current or future) satisfying `predicate`.
   */
  waitFor(
    predicate: (u: StateUpdate<TState>) => boolean,
    options?: OperationOptions,
  ): Promise<StateUpdate<TState>>;
  /** Subscribes to an event; returns the unsubscribe function. */
  on<K extends keyof CoordinatorClientEvents<TState>>(
    event: K,
    listener: (value: CoordinatorClientEvents<TState>[K]) => void,
  ): () => void;
  /** Asks to join the run at the next epoch boundary. Idempotent. */
  join(options?: OperationOptions): Promise<Ack>;
  /** Submits this round's witness (participant/broadcast blooms). */
  witness(witness: TPayloads['witness'], options?: OperationOptions): Promise<Ack>;
  /** Submits the warmup witness (model loaded, ready to train). */
  warmupWitness(witness: TPayloads['warmupWitness'], options?: OperationOptions): Promise<Ack>;
  /** Reports clients that failed the health rule. */
  healthCheck(check: TPayloads['healthCheck'], options?: OperationOptions): Promise<Ack>;
  /** Reports a published checkpoint. */
  checkpoint(checkpoint: TPayloads['checkpoint'], options?: OperationOptions): Promise<Ack>;
  /** Leaves the run (withdraws this node). */
  leave(options?: OperationOptions): Promise<Ack>;
  /** Closes the client: watchers end, pending operations reject with `CLOSED`. Idempotent. */
  close(): Promise<void>;
}
