import {
  MAX_CLIENTS_LIMIT,
  MAX_DURATION,
  MAX_SEQ_LEN_LIMIT,
  MAX_TOTAL_STEPS,
  MAX_WITNESSES,
} from './constants.js';
import { CoordinatorError } from './errors.js';
import type { Checkpoint, CoordinatorConfig, LrSchedule, ModelConfig } from './types.js';

/** Config field names in declaration order (also the order of validation). */
export const CONFIG_FIELDS = [
  'warmupTime',
  'cooldownTime',
  'maxRoundTrainTime',
  'roundWitnessTime',
  'globalBatchSizeWarmupTokens',
  'epochTime',
  'totalSteps',
  'initMinClients',
  'minClients',
  'maxClients',
  'witnessNodes',
  'globalBatchSizeStart',
  'globalBatchSizeEnd',
  'verificationPercent',
  'waitingForMembersExtraTime',
] as const satisfies readonly (keyof CoordinatorConfig)[];

const RUN_ID_RE = /^[A-Za-z0-9._-]{1,32}$/;
const NAME_RE = /^[A-Za-z0-9._/-]{1,64}$/;

function isInt(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

/**
 * Validates a run id: 1–32 chars of `[A-Za-z0-9._-]`.
 *
 * @throws {CoordinatorError} `InvalidRunId`.
 */
export function validateRunId(runId: unknown): asserts runId is string {
  if (typeof runId !== 'string' || !RUN_ID_RE.test(runId)) {
    throw new CoordinatorError(
      'InvalidRunId',
      `runId must be 1-32 chars of [A-Za-z0-9._-], got ${JSON.stringify(runId)}`,
      {
        field: 'runId',
      },
    );
  }
}

/**
 * Validates a config with the rules of docs/coordinator.md §3, in field order; throws the first failure.
 *
 * @throws {CoordinatorError} `InvalidConfig` with `details.field` = `'config.<field>'`.
 */
export function validateConfig(config: unknown): asserts config is CoordinatorConfig {
  if (typeof config !== 'object' || config === null) {
    throw new CoordinatorError('InvalidConfig', 'config must be an object', { field: 'config' });
  }
  const c = config as Record<string, unknown>;
  const fail = (field: string, expected: string): never => {
    throw new CoordinatorError(
      'InvalidConfig',
      `config.${field} must be ${expected}, got ${JSON.stringify(c[field] ?? null)}`,
      { field: `config.${field}`, value: c[field] },
    );
  };
  for (const f of CONFIG_FIELDS) if (!isInt(c[f])) fail(f, 'a non-negative safe integer');
  const v = c as unknown as CoordinatorConfig;
  if (v.warmupTime > MAX_DURATION) fail('warmupTime', `<= ${MAX_DURATION}`);
  if (v.warmupTime >= v.epochTime) fail('warmupTime', `< epochTime (${v.epochTime})`);
  if (v.cooldownTime < 1 || v.cooldownTime > MAX_DURATION) fail('cooldownTime', `in [1, ${MAX_DURATION}]`);
  if (v.maxRoundTrainTime < 1 || v.maxRoundTrainTime > MAX_DURATION) {
    fail('maxRoundTrainTime', `in [1, ${MAX_DURATION}]`);
  }
  if (v.maxRoundTrainTime >= v.epochTime) fail('maxRoundTrainTime', `< epochTime (${v.epochTime})`);
  if (v.roundWitnessTime < 1 || v.roundWitnessTime > MAX_DURATION) {
    fail('roundWitnessTime', `in [1, ${MAX_DURATION}]`);
  }
  if (v.epochTime < 1 || v.epochTime > MAX_DURATION) fail('epochTime', `in [1, ${MAX_DURATION}]`);
  if (v.totalSteps < 1 || v.totalSteps > MAX_TOTAL_STEPS) fail('totalSteps', `in [1, ${MAX_TOTAL_STEPS}]`);
  if (v.minClients < 1 || v.minClients > 65535) fail('minClients', 'in [1, 65535]');
  if (v.maxClients < 1 || v.maxClients > MAX_CLIENTS_LIMIT)
    fail('maxClients', `in [1, ${MAX_CLIENTS_LIMIT}]`);
  if (v.initMinClients < v.minClients) fail('initMinClients', `>= minClients (${v.minClients})`);
  if (v.initMinClients > v.maxClients) fail('initMinClients', `<= maxClients (${v.maxClients})`);
  if (v.witnessNodes > MAX_WITNESSES) fail('witnessNodes', `<= ${MAX_WITNESSES}`);
  if (v.witnessNodes > v.minClients) fail('witnessNodes', `<= minClients (${v.minClients})`);
  if (v.globalBatchSizeStart < 1 || v.globalBatchSizeStart > 65535)
    fail('globalBatchSizeStart', 'in [1, 65535]');
  if (v.globalBatchSizeEnd < v.globalBatchSizeStart) {
    fail('globalBatchSizeEnd', `>= globalBatchSizeStart (${v.globalBatchSizeStart})`);
  }
  if (v.globalBatchSizeEnd > 65535) fail('globalBatchSizeEnd', '<= 65535');
  if (v.verificationPercent !== 0) fail('verificationPercent', '0 (verification is not implemented)');
  if (v.waitingForMembersExtraTime < 1 || v.waitingForMembersExtraTime > 255) {
    fail('waitingForMembersExtraTime', 'in [1, 255]');
  }
}

/**
 * Validates a checkpoint value (strings: 1–64 chars of `[A-Za-z0-9._/-]`, optional ones may be `null`).
 *
 * @throws {CoordinatorError} with the given code (`InvalidModel` at creation, `InvalidCheckpoint` for reports).
 */
export function validateCheckpoint(
  checkpoint: unknown,
  field: string,
  code: 'InvalidModel' | 'InvalidCheckpoint',
): asserts checkpoint is Checkpoint {
  const fail = (why: string): never => {
    throw new CoordinatorError(code, `${field}: ${why}`, { field });
  };
  if (typeof checkpoint !== 'object' || checkpoint === null) fail('must be an object');
  const c = checkpoint as Record<string, unknown>;
  const name = (k: string, optional: boolean) => {
    const x = c[k];
    if (optional && x === null) return;
    if (typeof x !== 'string' || !NAME_RE.test(x)) {
      fail(`${k} must be 1-64 chars of [A-Za-z0-9._/-]${optional ? ' or null' : ''}`);
    }
  };
  switch (c.type) {
    case 'Ephemeral':
      return;
    case 'Dummy':
    case 'Hub':
    case 'P2P':
      name('repoId', false);
      name('revision', true);
      return;
    case 'Gcs':
    case 'P2PGcs':
      name('bucket', false);
      name('prefix', true);
      return;
    default:
      fail(`unknown type ${JSON.stringify(c.type)}`);
  }
}

function validateLrSchedule(s: unknown): asserts s is LrSchedule {
  const fail = (field: string, why: string): never => {
    throw new CoordinatorError('InvalidModel', `model.lrSchedule.${field} ${why}`, {
      field: `model.lrSchedule.${field}`,
    });
  };
  if (typeof s !== 'object' || s === null) fail('', 'must be an object');
  const o = s as Record<string, unknown>;
  const lr = (k: string) => {
    const x = o[k];
    if (typeof x !== 'number' || !Number.isFinite(x) || x < 0) fail(k, 'must be a finite number >= 0');
  };
  const steps = (k: string) => {
    const x = o[k];
    if (!isInt(x) || x > 0xffff_ffff) fail(k, 'must be an integer in [0, 2^32 - 1]');
  };
  switch (o.type) {
    case 'constant':
      lr('baseLr');
      lr('warmupInitLr');
      steps('warmupSteps');
      return;
    case 'linear':
    case 'cosine':
      lr('baseLr');
      lr('warmupInitLr');
      steps('warmupSteps');
      steps('totalSteps');
      lr('finalLr');
      if ((o.totalSteps as number) <= (o.warmupSteps as number)) fail('totalSteps', 'must be > warmupSteps');
      return;
    case 'wsd':
      lr('baseLr');
      lr('warmupInitLr');
      steps('warmupSteps');
      steps('stableSteps');
      steps('cosineDecaySteps');
      lr('cosineDecayFinalLr');
      steps('linearDecaySteps');
      lr('linearDecayFinalLr');
      return;
    default:
      fail('type', `must be constant, linear, cosine or wsd, got ${JSON.stringify(o.type)}`);
  }
}

/**
 * Validates the model part against an already valid config (docs/coordinator.md §3).
 *
 * @throws {CoordinatorError} `InvalidModel` with `details.field`.
 */
export function validateModel(model: unknown, config: CoordinatorConfig): asserts model is ModelConfig {
  if (typeof model !== 'object' || model === null) {
    throw new CoordinatorError('InvalidModel', 'model must be an object', { field: 'model' });
  }
  const m = model as Record<string, unknown>;
  const fail = (field: string, expected: string): never => {
    throw new CoordinatorError(
      'InvalidModel',
      `model.${field} must be ${expected}, got ${JSON.stringify(m[field])}`,
      {
        field: `model.${field}`,
        value: m[field],
      },
    );
  };
  if (!isInt(m.maxSeqLen) || m.maxSeqLen < 1 || m.maxSeqLen > MAX_SEQ_LEN_LIMIT) {
    fail('maxSeqLen', `an integer in [1, ${MAX_SEQ_LEN_LIMIT}]`);
  }
  const maxCold = Math.floor((config.epochTime - config.warmupTime) / config.maxRoundTrainTime);
  if (!isInt(m.coldStartWarmupSteps) || m.coldStartWarmupSteps > maxCold) {
    fail('coldStartWarmupSteps', `an integer <= (epochTime - warmupTime) / maxRoundTrainTime = ${maxCold}`);
  }
  validateCheckpoint(m.checkpoint, 'model.checkpoint', 'InvalidModel');
  validateLrSchedule(m.lrSchedule);
}
