import {
  checkpoint as applyCheckpoint,
  healthCheck as applyHealthCheck,
  join as applyJoin,
  pause as applyPause,
  tick as applyTick,
  updateConfig as applyUpdateConfig,
  warmupWitness as applyWarmupWitness,
  withdraw as applyWithdraw,
  witness as applyWitness,
  type Checkpoint,
  type CheckpointMessage,
  type ConfigChanges,
  type CoordinatorState,
  cloneState,
  createCoordinator,
  type HealthCheckMessage,
  isCoordinatorError,
  RUN_STATE_NAMES,
  resume,
  type WarmupWitnessMessage,
  type WitnessMessage,
} from '@psyche/coordinator';
import { z } from 'zod';
import {
  type CoordinatorConfigInput,
  camelizeKeys,
  camelToSnake,
  coordinatorConfigSchema,
  modelConfigSchema,
  type RunConfig,
} from './config.js';
import type { CoordinatorEngine, EngineInput, EngineSummary } from './engine.js';
import { CoordinatorClientError } from './errors.js';

/** Payload of `witness` (the sender is the authenticated key, never a field). */
export type WitnessPayload = Omit<WitnessMessage, 'from'>;
/** Payload of `warmupWitness`. */
export type WarmupWitnessPayload = Omit<WarmupWitnessMessage, 'from'>;
/** Payload of `healthCheck`: the clients the sender found unhealthy. */
export type HealthCheckPayload = Omit<HealthCheckMessage, 'from'>;
/** Payload of `checkpoint`. */
export type CheckpointPayload = Omit<CheckpointMessage, 'from'>;

/**
 * Payload of the admin `updateConfig` request: the `[coordinator]` and `[model]` fields to change, with their TOML
 * names (`warmup_time`, `lr_schedule`, ...). Allowed only while the run is Paused; the merged config is validated by
 * the state machine and replaces the old one atomically. The change lives in the input log, not in `run.toml`.
 */
export interface AdminConfigChanges {
  coordinator?: Partial<CoordinatorConfigInput>;
  model?: Partial<RunConfig['model']>;
}

/** Payload types of the `@psyche/coordinator` backends (local server, Solana). */
export interface PsychePayloads {
  witness: WitnessPayload;
  warmupWitness: WarmupWitnessPayload;
  healthCheck: HealthCheckPayload;
  checkpoint: CheckpointPayload;
}

const u64 = z
  .bigint()
  .min(0n)
  .max((1n << 64n) - 1n);
const bloomSchema = z.strictObject({
  numBits: z.number().int().min(0).max(1024),
  keys: z.array(u64).length(8),
  bits: z.array(u64).length(16),
});
const index = z.number().int().min(0).max(0xffff_ffff);
const bodySchemas = {
  join: z.undefined(),
  leave: z.undefined(),
  witness: z.strictObject({
    index,
    participantBloom: bloomSchema,
    broadcastBloom: bloomSchema,
    broadcastMerkle: z.string().regex(/^[0-9a-f]{64}$/, 'expected 32 bytes of lowercase hex'),
  }),
  warmupWitness: z.strictObject({ index }),
  healthCheck: z.strictObject({
    checks: z
      .array(
        z.strictObject({ index, id: z.string().regex(/^[0-9a-f]{64}$/, 'expected a 64-char hex client id') }),
      )
      .min(1)
      .max(0xffff),
  }),
  checkpoint: z.strictObject({ index, checkpoint: z.record(z.string(), z.unknown()) }),
  pause: z.undefined(),
  resume: z.undefined(),
  updateConfig: z.strictObject({
    coordinator: coordinatorConfigSchema.partial().optional(),
    model: modelConfigSchema.partial().optional(),
  }),
} as const;

/** Only the fields present in `raw` (schema defaults must not turn into changes). */
function present(parsed: object | undefined, raw: unknown): Record<string, unknown> {
  if (!parsed || typeof raw !== 'object' || raw === null) return {};
  const p = parsed as Record<string, unknown>;
  return Object.fromEntries(Object.keys(raw).map((k) => [k, p[k]]));
}

function parseBody<K extends keyof typeof bodySchemas>(
  kind: K,
  body: unknown,
): z.output<(typeof bodySchemas)[K]> {
  const r = bodySchemas[kind].safeParse(body);
  if (r.success) return r.data as z.output<(typeof bodySchemas)[K]>;
  const i = r.error.issues[0]!;
  const field = ['body', ...i.path.map(String)].join('.');
  throw new CoordinatorClientError('MALFORMED_MESSAGE', `${kind} ${field}: ${i.message}`, {
    field,
    op: kind,
  });
}

/**
 * Translates `@psyche/coordinator` config errors (`config.warmupTime`) to the TOML field (`coordinator.warmup_time`).
 */
function configError(e: unknown): never {
  if (isCoordinatorError(e) && typeof e.details.field === 'string') {
    const [head, ...rest] = e.details.field.split('.');
    const table =
      head === 'config' ? 'coordinator' : head === 'model' ? 'model' : head === 'runId' ? 'run_id' : head;
    const field = [table, ...rest.map(camelToSnake)].join('.');
    throw new CoordinatorClientError(
      'INVALID_CONFIG',
      `${field}: ${e.message}`,
      { field, reason: e.code },
      { cause: e },
    );
  }
  throw e;
}

/**
 * The {@link CoordinatorEngine} of `@psyche/coordinator`: the engine state is the `CoordinatorState` itself.
 * `initial` creates the coordinator from the run config and resumes it into WaitingForMembers. Every input is
 * applied to a clone (the served state is never mutated in place); the sender of a message is always the
 * authenticated key.
 */
export function psycheEngine(): CoordinatorEngine<CoordinatorState> {
  return {
    initial(config: RunConfig, ts: number): CoordinatorState {
      let state: CoordinatorState;
      try {
        state = createCoordinator({
          runId: config.run_id,
          config: camelizeKeys(config.coordinator) as CoordinatorState['config'],
          model: camelizeKeys(config.model) as CoordinatorState['model'],
        });
      } catch (e) {
        configError(e);
      }
      resume(state, ts);
      return state;
    },

    apply(state: CoordinatorState, input: EngineInput, ts: number, seed: bigint): CoordinatorState {
      const next = cloneState(state);
      const from = input.client ?? '';
      switch (input.kind) {
        case 'tick':
          try {
            applyTick(next, [], ts, seed);
          } catch (e) {
            if (isCoordinatorError(e, 'Halted')) return state; // Finished/Paused: timer ticks are no-ops.
            throw e;
          }
          return next;
        case 'join':
          parseBody('join', input.body);
          applyJoin(next, from);
          return next;
        case 'leave':
          parseBody('leave', input.body);
          applyWithdraw(next, from);
          return next;
        case 'warmupWitness': {
          const b = parseBody('warmupWitness', input.body);
          applyWarmupWitness(next, { from, index: b.index }, ts, seed);
          return next;
        }
        case 'witness': {
          const b = parseBody('witness', input.body);
          applyWitness(next, { from, ...b }, ts);
          return next;
        }
        case 'healthCheck': {
          const b = parseBody('healthCheck', input.body);
          applyHealthCheck(next, { from, checks: b.checks }, ts);
          return next;
        }
        case 'checkpoint': {
          const b = parseBody('checkpoint', input.body);
          applyCheckpoint(next, { from, index: b.index, checkpoint: b.checkpoint as unknown as Checkpoint });
          return next;
        }
        case 'pause':
          parseBody('pause', input.body);
          applyPause(next, ts);
          return next;
        case 'resume':
          parseBody('resume', input.body);
          resume(next, ts);
          return next;
        case 'updateConfig': {
          const b = parseBody('updateConfig', input.body);
          const raw = input.body as { coordinator?: unknown; model?: unknown };
          const changes = camelizeKeys({
            ...present(b.coordinator, raw.coordinator),
            ...present(b.model, raw.model),
          }) as ConfigChanges;
          if (Object.keys(changes).length === 0) {
            throw new CoordinatorClientError(
              'MALFORMED_MESSAGE',
              'updateConfig body: expected at least one field in coordinator or model',
              { field: 'body', op: 'updateConfig' },
            );
          }
          try {
            applyUpdateConfig(next, changes);
          } catch (e) {
            if (isCoordinatorError(e, 'InvalidConfig') || isCoordinatorError(e, 'InvalidModel'))
              configError(e);
            throw e;
          }
          return next;
        }
        default:
          throw new CoordinatorClientError(
            'MALFORMED_MESSAGE',
            `input.kind: unknown operation ${String(input.kind)}`,
            {
              field: 'kind',
            },
          );
      }
    },

    summarize(state: CoordinatorState): EngineSummary {
      const names = ['Healthy', 'Dropped', 'Withdrawn', 'Ejected'];
      const clients = [
        ...state.epoch.clients.map((c) => ({ id: c.id, state: names[c.state] ?? String(c.state) })),
        ...state.pending.map((id) => ({ id, state: 'pending' })),
      ];
      const rounds = state.epoch.rounds
        .filter((r) => r.clientsLen > 0)
        .sort((a, b) => a.height - b.height)
        .map((r) => ({ height: r.height, dataIndex: String(r.dataIndex), witnesses: r.witnesses.length }));
      return {
        runState: RUN_STATE_NAMES[state.runState] ?? String(state.runState),
        step: state.progress.step,
        epoch: state.progress.epoch,
        clients,
        rounds,
      };
    },
  };
}
