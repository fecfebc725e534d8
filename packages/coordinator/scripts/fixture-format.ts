/**
 * Reading, writing and executing the conformance-vector format of `fixtures/coordinator/FORMAT.md`.
 * Shared by the generator (`gen-fixtures.ts`) and the replay test (`test/fixtures.test.ts`): an event line is
 * always executed from its text, so what the generator records is exactly what the replay re-executes.
 */
import {
  type Bloom,
  batchSize,
  bloomContains,
  bloomNumBits,
  type Checkpoint,
  CONFIG_FIELDS,
  type CoordinatorConfig,
  type CoordinatorState,
  checkpoint,
  commitmentHash,
  computeShuffledIndex,
  createCoordinator,
  currentRound,
  deriveShuffleSeed,
  deterministicShuffle,
  fnv1aKeyed,
  fromHex,
  getRoundAssignments,
  getWitnessIndices,
  healthCheck,
  isCoordinatorError,
  join,
  type LrSchedule,
  lrAt,
  type ModelConfig,
  pause,
  RUN_STATE_NAMES,
  resume,
  roundSeed,
  sha256,
  tick,
  toHex,
  updateConfig,
  warmupWitness,
  withdraw,
  witness,
  witnessQuorum,
} from '../src/index.js';

/** snake_case name of a camelCase identifier. */
export function snake(s: string): string {
  return s.replace(/[A-Z]/g, (m) => `_${m.toLowerCase()}`);
}
/** camelCase name of a snake_case identifier. */
export function camel(s: string): string {
  return s.replace(/_([a-z])/g, (_, m: string) => m.toUpperCase());
}

const INT_RE = /^(0|[1-9][0-9]*)$/;

/** Parses a decimal integer token to a JS number (may be inexact above 2^53; validation then rejects it). */
export function int(tok: string | undefined, what = 'integer'): number {
  if (tok === undefined || !INT_RE.test(tok))
    throw new Error(`fixture: bad ${what} token ${JSON.stringify(tok)}`);
  return Number(tok);
}
/** Parses a decimal u64 token. */
export function u64(tok: string | undefined): bigint {
  if (tok === undefined || !INT_RE.test(tok))
    throw new Error(`fixture: bad u64 token ${JSON.stringify(tok)}`);
  return BigInt(tok);
}
function float(tok: string | undefined): number {
  const x = Number(tok);
  if (tok === undefined || tok === '' || Number.isNaN(x)) throw new Error(`fixture: bad float token ${tok}`);
  return x;
}
function opt(tok: string | undefined): string | null {
  if (tok === undefined) throw new Error('fixture: missing token');
  return tok === '-' ? null : tok;
}
function bool(b: boolean): string {
  return b ? '1' : '0';
}
function hexOrEmpty(tok: string | undefined): Uint8Array {
  if (tok === undefined) throw new Error('fixture: missing hex token');
  return tok === '-' ? new Uint8Array(0) : fromHex(tok);
}

// -------------------------------------------------------------------------------------------------------------
// Value codecs

/** Tokens of a checkpoint (FORMAT.md "Checkpoints"). */
export function formatCheckpoint(c: Checkpoint): string {
  switch (c.type) {
    case 'Ephemeral':
      return 'ephemeral';
    case 'Dummy':
    case 'Hub':
    case 'P2P':
      return `${c.type.toLowerCase()} ${c.repoId} ${c.revision ?? '-'}`;
    case 'Gcs':
    case 'P2PGcs':
      return `${c.type.toLowerCase()} ${c.bucket} ${c.prefix ?? '-'}`;
  }
}

/** Parses checkpoint tokens starting at `toks[i]`; returns the value and the next index. */
export function parseCheckpoint(toks: string[], i: number): [Checkpoint, number] {
  const kind = toks[i];
  switch (kind) {
    case 'ephemeral':
      return [{ type: 'Ephemeral' }, i + 1];
    case 'dummy':
    case 'hub':
    case 'p2p': {
      const type = kind === 'dummy' ? 'Dummy' : kind === 'hub' ? 'Hub' : 'P2P';
      return [{ type, repoId: toks[i + 1]!, revision: opt(toks[i + 2]) }, i + 3];
    }
    case 'gcs':
    case 'p2pgcs':
      return [
        { type: kind === 'gcs' ? 'Gcs' : 'P2PGcs', bucket: toks[i + 1]!, prefix: opt(toks[i + 2]) },
        i + 3,
      ];
    default:
      throw new Error(`fixture: bad checkpoint kind ${kind}`);
  }
}

/** Tokens of an LR schedule. */
export function formatLr(s: LrSchedule): string {
  switch (s.type) {
    case 'constant':
      return `constant ${s.baseLr} ${s.warmupInitLr} ${s.warmupSteps}`;
    case 'linear':
    case 'cosine':
      return `${s.type} ${s.baseLr} ${s.warmupInitLr} ${s.warmupSteps} ${s.totalSteps} ${s.finalLr}`;
    case 'wsd':
      return `wsd ${s.baseLr} ${s.warmupInitLr} ${s.warmupSteps} ${s.stableSteps} ${s.cosineDecaySteps} ${s.cosineDecayFinalLr} ${s.linearDecaySteps} ${s.linearDecayFinalLr}`;
  }
}

function parseLr(t: string[]): LrSchedule {
  switch (t[0]) {
    case 'constant':
      return { type: 'constant', baseLr: float(t[1]), warmupInitLr: float(t[2]), warmupSteps: int(t[3]) };
    case 'linear':
    case 'cosine':
      return {
        type: t[0],
        baseLr: float(t[1]),
        warmupInitLr: float(t[2]),
        warmupSteps: int(t[3]),
        totalSteps: int(t[4]),
        finalLr: float(t[5]),
      };
    case 'wsd':
      return {
        type: 'wsd',
        baseLr: float(t[1]),
        warmupInitLr: float(t[2]),
        warmupSteps: int(t[3]),
        stableSteps: int(t[4]),
        cosineDecaySteps: int(t[5]),
        cosineDecayFinalLr: float(t[6]),
        linearDecaySteps: int(t[7]),
        linearDecayFinalLr: float(t[8]),
      };
    default:
      throw new Error(`fixture: bad lr schedule ${t[0]}`);
  }
}

const hex16 = (x: bigint) => x.toString(16).padStart(16, '0');

/** One-token form of a bloom: `<num_bits>:<128 hex keys>:<256 hex words>`. */
export function formatBloom(b: Bloom): string {
  return `${b.numBits}:${b.keys.map(hex16).join('')}:${b.bits.map(hex16).join('')}`;
}

/** Parses the one-token bloom form. */
export function parseBloom(tok: string | undefined): Bloom {
  const parts = (tok ?? '').split(':');
  if (parts.length !== 3 || !/^[0-9a-f]{128}$/.test(parts[1]!) || !/^[0-9a-f]{256}$/.test(parts[2]!)) {
    throw new Error(`fixture: bad bloom token ${tok}`);
  }
  const words = (h: string) =>
    Array.from({ length: h.length / 16 }, (_, i) => BigInt(`0x${h.slice(16 * i, 16 * i + 16)}`));
  return { numBits: int(parts[0]), keys: words(parts[1]!), bits: words(parts[2]!) };
}

// -------------------------------------------------------------------------------------------------------------
// Scenario context

/** The header of a scenario plus its live state while executing. */
export interface ScenarioContext {
  name: string;
  description: string;
  aliases: Map<string, string>;
  /** hex id → alias */
  reverse: Map<string, string>;
  runId: string;
  config: Record<string, number>;
  model: { maxSeqLen: number; coldStartWarmupSteps: number; checkpoint: Checkpoint; lrSchedule: LrSchedule };
  state: CoordinatorState | null;
}

/** Resolves an id token: an alias, else the token itself (a literal id, possibly malformed on purpose). */
export function idOf(ctx: ScenarioContext, tok: string | undefined): string {
  if (tok === undefined) throw new Error('fixture: missing id token');
  return ctx.aliases.get(tok) ?? tok;
}
/** Prints an id: its alias when declared, else the raw id. */
export function aliasOf(ctx: ScenarioContext, id: string): string {
  return ctx.reverse.get(id) ?? id;
}

/** The header lines of a scenario (FORMAT.md "File structure"). */
export function formatHeader(ctx: ScenarioContext): string[] {
  const lines = ['format 1', `name ${ctx.name}`, `description ${ctx.description}`];
  for (const [a, id] of ctx.aliases) lines.push(`client ${a} ${id}`);
  lines.push(`run_id ${ctx.runId}`);
  for (const f of CONFIG_FIELDS) lines.push(`config ${snake(f)} ${ctx.config[f]}`);
  lines.push(`model max_seq_len ${ctx.model.maxSeqLen}`);
  lines.push(`model cold_start_warmup_steps ${ctx.model.coldStartWarmupSteps}`);
  lines.push(`model checkpoint ${formatCheckpoint(ctx.model.checkpoint)}`);
  lines.push(`model lr ${formatLr(ctx.model.lrSchedule)}`);
  return lines;
}

const CLIENT_STATE_LETTER = ['H', 'D', 'W', 'E'] as const;

/** The snapshot lines of a state (FORMAT.md "Snapshot"), `end_state` included. */
export function snapshot(ctx: ScenarioContext, s: CoordinatorState): string[] {
  const e = s.epoch;
  const r = currentRound(s);
  const list = (xs: readonly string[]) => [String(xs.length), ...xs].join(' ');
  const witnesses = getWitnessIndices(s.config, r).map(String);
  const batches =
    r.clientsLen === 0
      ? []
      : getRoundAssignments(s.config, s.model.maxSeqLen, r).map((b) => `${b.start}-${b.end}:${b.index}`);
  return [
    `state run_state ${RUN_STATE_NAMES[s.runState]}`,
    `state run_state_start ${s.runStateStart}`,
    `state epoch ${s.progress.epoch}`,
    `state step ${s.progress.step}`,
    `state epoch_start_data_index ${s.progress.epochStartDataIndex}`,
    `state pending_pause ${bool(s.pendingPause)}`,
    `state cold_start_epoch ${bool(e.coldStartEpoch)}`,
    `state first_round ${bool(e.firstRound)}`,
    `state start_step ${e.startStep}`,
    `state last_step ${e.lastStep}`,
    `state epoch_start_timestamp ${e.startTimestamp}`,
    `state last_round_seed ${s.lastRoundSeed}`,
    `state checkpoint ${formatCheckpoint(s.model.checkpoint)}`,
    `state pending ${list(s.pending.map((id) => aliasOf(ctx, id)))}`,
    `state clients ${list(e.clients.map((c) => `${aliasOf(ctx, c.id)}:${CLIENT_STATE_LETTER[c.state]}`))}`,
    `state exited ${list(e.exitedClients.map((c) => `${aliasOf(ctx, c.id)}:${CLIENT_STATE_LETTER[c.state]}:${c.exitedHeight}`))}`,
    `state warmup_witnesses ${list(e.warmupWitnesses.map(String))}`,
    `state round ${e.roundsHead} ${r.height} ${r.dataIndex} ${r.randomSeed} ${r.clientsLen} ${list(r.witnesses.map((w) => String(w.index)))}`,
    `state batch_size ${batchSize(s.config, s.model.maxSeqLen, r.dataIndex)}`,
    `state witnesses ${list(witnesses)}`,
    `state batches ${list(batches)}`,
    'end_state',
  ];
}

/** Reads a counted list `n t1 … tn` at `toks[i]`; returns the items and the next index. */
function readList(toks: string[], i: number): [string[], number] {
  const n = int(toks[i], 'list count');
  const items = toks.slice(i + 1, i + 1 + n);
  if (items.length !== n) throw new Error('fixture: short list');
  return [items, i + 1 + n];
}

function resultOf(fn: () => string): string {
  try {
    return fn();
  } catch (e) {
    if (isCoordinatorError(e)) return `result error ${e.number}`;
    throw e;
  }
}

/**
 * Executes one event line against `ctx.state` and returns the lines that must follow it: `result …` and, unless
 * a `create` failed, the snapshot.
 */
export function executeEvent(ctx: ScenarioContext, line: string): string[] {
  const t = line.split(' ');
  const kw = t[0];
  const st = () => {
    if (ctx.state === null) throw new Error(`fixture: ${kw} before a successful create`);
    return ctx.state;
  };
  let result: string;
  switch (kw) {
    case 'create':
      result = resultOf(() => {
        ctx.state = createCoordinator({
          runId: ctx.runId,
          config: ctx.config as unknown as CoordinatorConfig,
          model: ctx.model as ModelConfig,
        });
        return 'result ok';
      });
      if (ctx.state === null) return [result];
      break;
    case 'tick': {
      const [ids] = readList(t, 3);
      result = resultOf(() => {
        const r = tick(
          st(),
          ids.map((a) => idOf(ctx, a)),
          int(t[1]),
          u64(t[2]),
        );
        return r.type === 'EpochEnd' ? `result epoch_end ${bool(r.success)}` : 'result ok';
      });
      break;
    }
    case 'join':
      result = resultOf(() => {
        join(st(), idOf(ctx, t[1]));
        return 'result ok';
      });
      break;
    case 'withdraw':
      result = resultOf(() => {
        withdraw(st(), idOf(ctx, t[1]));
        return 'result ok';
      });
      break;
    case 'witness':
      result = resultOf(() => {
        witness(
          st(),
          {
            from: idOf(ctx, t[2]),
            index: int(t[3]),
            participantBloom: parseBloom(t[4]),
            broadcastBloom: parseBloom(t[5]),
            broadcastMerkle: t[6]!,
          },
          int(t[1]),
        );
        return 'result ok';
      });
      break;
    case 'warmup_witness':
      result = resultOf(() => {
        warmupWitness(st(), { from: idOf(ctx, t[3]), index: int(t[4]) }, int(t[1]), u64(t[2]));
        return 'result ok';
      });
      break;
    case 'health_check': {
      const [entries] = readList(t, 3);
      result = resultOf(() => {
        const checks = entries.map((x) => {
          const [i, a] = x.split(':');
          return { index: int(i), id: idOf(ctx, a) };
        });
        const r = healthCheck(st(), { from: idOf(ctx, t[2]), checks }, int(t[1]));
        return `result health ${r.dropped} ${r.rejectedHealthy} ${r.alreadyUnhealthy}`;
      });
      break;
    }
    case 'checkpoint':
      result = resultOf(() => {
        const [cp] = parseCheckpoint(t, 3);
        checkpoint(st(), { from: idOf(ctx, t[1]), index: int(t[2]), checkpoint: cp });
        return 'result ok';
      });
      break;
    case 'pause':
      result = resultOf(() => {
        pause(st(), int(t[1]));
        return 'result ok';
      });
      break;
    case 'resume':
      result = resultOf(() => {
        resume(st(), int(t[1]));
        return 'result ok';
      });
      break;
    case 'update_config': {
      const [pairs] = readList(t, 1);
      result = resultOf(() => {
        const changes: Record<string, number> = {};
        for (const p of pairs) {
          const [k, v] = p.split('=');
          changes[camel(k!)] = int(v);
        }
        updateConfig(st(), changes);
        return 'result ok';
      });
      break;
    }
    default:
      throw new Error(`fixture: unknown event ${kw}`);
  }
  return [result, ...snapshot(ctx, st())];
}

/** Evaluates a `check …` line; returns null when it holds, else a description of the mismatch. */
export function evaluateCheck(ctx: ScenarioContext, line: string): string | null {
  const t = line.split(' ');
  const eq = (got: string, want: string | undefined) => (got === want ? null : `${line}: got ${got}`);
  switch (t[1]) {
    case 'sha256':
      return eq(toHex(sha256(hexOrEmpty(t[2]))), t[3]);
    case 'shuffle':
      return eq(String(computeShuffledIndex(int(t[2]), int(t[3]), fromHex(t[4]!))), t[5]);
    case 'committee_seed':
      return eq(toHex(deriveShuffleSeed(u64(t[2]), t[3] as 'committee' | 'witness')), t[4]);
    case 'lcg_shuffle': {
      const [items] = readList(t, 3);
      const got = deterministicShuffle(
        Array.from({ length: items.length }, (_, i) => i),
        u64(t[2]),
      );
      return eq(got.join(' '), items.join(' '));
    }
    case 'fnv1a':
      return eq(String(fnv1aKeyed(u64(t[2]), hexOrEmpty(t[3]))), t[4]);
    case 'bloom_bits':
      return eq(String(bloomNumBits(int(t[2]), 0.01)), t[3]);
    case 'bloom_contains':
      return eq(bool(bloomContains(parseBloom(t[2]), hexOrEmpty(t[3]))), t[4]);
    case 'quorum':
      return eq(String(witnessQuorum(int(t[2]))), t[3]);
    case 'batch_size': {
      const s = ctx.state!;
      return eq(String(batchSize(s.config, s.model.maxSeqLen, int(t[2]))), t[3]);
    }
    case 'lr': {
      const got = lrAt(ctx.state!.model.lrSchedule, int(t[2]));
      const want = float(t[3]);
      return Math.abs(got - want) <= 1e-12 * Math.max(1, Math.abs(want)) ? null : `${line}: got ${got}`;
    }
    case 'commitment':
      return eq(
        toHex(commitmentHash(int(t[2]), { start: int(t[3]), end: int(t[4]) }, hexOrEmpty(t[5]))),
        t[6],
      );
    case 'round_seed': {
      const [ws, next] = readList(t, 6);
      const witnesses = ws.map((x) => {
        const [i, m] = x.split(':');
        return { index: int(i), broadcastMerkle: m! };
      });
      return eq(String(roundSeed(u64(t[2]), u64(t[3]), int(t[4]), int(t[5]), witnesses)), t[next]);
    }
    default:
      throw new Error(`fixture: unknown check ${t[1]}`);
  }
}

/** A new, empty scenario context. */
export function newContext(): ScenarioContext {
  return {
    name: '',
    description: '',
    aliases: new Map(),
    reverse: new Map(),
    runId: '',
    config: {},
    model: {
      maxSeqLen: 0,
      coldStartWarmupSteps: 0,
      checkpoint: { type: 'Ephemeral' },
      lrSchedule: { type: 'constant', baseLr: 0, warmupInitLr: 0, warmupSteps: 0 },
    },
    state: null,
  };
}

/** Applies one header line to `ctx`; returns false if the line is not a header line. */
export function applyHeaderLine(ctx: ScenarioContext, line: string): boolean {
  const t = line.split(' ');
  switch (t[0]) {
    case 'format':
      if (t[1] !== '1') throw new Error(`fixture: unsupported format ${t[1]}`);
      return true;
    case 'name':
      ctx.name = t[1]!;
      return true;
    case 'description':
      ctx.description = line.slice('description '.length);
      return true;
    case 'client':
      ctx.aliases.set(t[1]!, t[2]!);
      ctx.reverse.set(t[2]!, t[1]!);
      return true;
    case 'run_id':
      ctx.runId = t[1]!;
      return true;
    case 'config':
      ctx.config[camel(t[1]!)] = int(t[2]);
      return true;
    case 'model':
      if (t[1] === 'max_seq_len') ctx.model.maxSeqLen = int(t[2]);
      else if (t[1] === 'cold_start_warmup_steps') ctx.model.coldStartWarmupSteps = int(t[2]);
      else if (t[1] === 'checkpoint') ctx.model.checkpoint = parseCheckpoint(t, 2)[0];
      else if (t[1] === 'lr') ctx.model.lrSchedule = parseLr(t.slice(2));
      else throw new Error(`fixture: unknown model field ${t[1]}`);
      return true;
    default:
      return false;
  }
}

/** Event keywords. */
export const EVENT_KEYWORDS = new Set([
  'create',
  'tick',
  'join',
  'withdraw',
  'witness',
  'warmup_witness',
  'health_check',
  'checkpoint',
  'pause',
  'resume',
  'update_config',
]);

/**
 * Replays a whole scenario file. Returns the list of mismatches (empty when the implementation agrees with every
 * `result`, `state` and `check` line).
 */
export function replayScenario(text: string): {
  name: string;
  events: number;
  checks: number;
  mismatches: string[];
} {
  const ctx = newContext();
  const lines = text.split('\n');
  const mismatches: string[] = [];
  let events = 0;
  let checks = 0;
  let i = 0;
  let sawEnd = false;
  while (i < lines.length) {
    const line = lines[i]!;
    i++;
    if (line === '' || line.startsWith('#')) continue;
    if (applyHeaderLine(ctx, line)) continue;
    if (line === 'end') {
      sawEnd = true;
      break;
    }
    if (line.startsWith('check ')) {
      checks++;
      const m = evaluateCheck(ctx, line);
      if (m !== null) mismatches.push(m);
      continue;
    }
    const kw = line.split(' ')[0]!;
    if (!EVENT_KEYWORDS.has(kw))
      throw new Error(`fixture ${ctx.name}: unknown keyword in line ${JSON.stringify(line)}`);
    events++;
    const got = executeEvent(ctx, line);
    for (let k = 0; k < got.length; k++) {
      const want = lines[i + k];
      if (want !== got[k]) mismatches.push(`${ctx.name}: after "${line}" expected "${want}" got "${got[k]}"`);
    }
    i += got.length;
  }
  if (!sawEnd) mismatches.push(`${ctx.name}: missing end line`);
  return { name: ctx.name, events, checks, mismatches };
}

export { bool, hex16 };
