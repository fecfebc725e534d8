/**
 * A small builder that writes a conformance scenario while executing it (every event line goes through
 * `executeEvent`, the same code the replay test runs).
 */
import {
  type Bloom,
  bloomAdd,
  bloomNumBits,
  type Checkpoint,
  ClientState,
  type CoordinatorConfig,
  type CoordinatorState,
  createBloom,
  currentRound,
  getWitnessIndices,
  type LrSchedule,
  RunState,
  readU64leExport,
  sha256,
  toHex,
} from './builder-deps.js';
import {
  evaluateCheck,
  executeEvent,
  formatBloom,
  formatCheckpoint,
  formatHeader,
  newContext,
  type ScenarioContext,
  snake,
} from './fixture-format.js';

/** The default small run used by most scenarios (durations in seconds). */
export const BASE_CONFIG: CoordinatorConfig = {
  warmupTime: 30,
  cooldownTime: 10,
  maxRoundTrainTime: 20,
  roundWitnessTime: 2,
  globalBatchSizeWarmupTokens: 2048,
  epochTime: 200,
  totalSteps: 100,
  initMinClients: 3,
  minClients: 2,
  maxClients: 8,
  witnessNodes: 0,
  globalBatchSizeStart: 8,
  globalBatchSizeEnd: 16,
  verificationPercent: 0,
  waitingForMembersExtraTime: 2,
};

/** Default model part. */
export const BASE_MODEL = {
  maxSeqLen: 64,
  coldStartWarmupSteps: 0,
  checkpoint: { type: 'Hub', repoId: 'org/model', revision: null } as Checkpoint,
  lrSchedule: { type: 'constant', baseLr: 0.0003, warmupInitLr: 0, warmupSteps: 0 } as LrSchedule,
};

/** Options of a scenario. */
export interface ScenarioOptions {
  clients?: number;
  config?: Partial<CoordinatorConfig>;
  model?: Partial<typeof BASE_MODEL>;
  runId?: string;
}

/** Deterministic 32-byte client id of alias `c<k>` in scenario `name`. */
export function clientIdFor(k: number): string {
  return toHex(sha256(new TextEncoder().encode(`psyche-ts fixture client ${k}`)));
}

/** Records a scenario. */
export class Scenario {
  readonly ctx: ScenarioContext;
  private readonly body: string[] = [];
  private counter = 0;
  /** Timestamp cursor used by helpers. */
  now = 1000;

  constructor(name: string, description: string, opts: ScenarioOptions = {}) {
    this.ctx = newContext();
    this.ctx.name = name;
    this.ctx.description = description;
    for (let k = 0; k < (opts.clients ?? 0); k++) {
      const id = clientIdFor(k);
      this.ctx.aliases.set(`c${k}`, id);
      this.ctx.reverse.set(id, `c${k}`);
    }
    this.ctx.runId = opts.runId ?? 'fixture-run';
    this.ctx.config = { ...BASE_CONFIG, ...opts.config } as unknown as Record<string, number>;
    this.ctx.model = { ...BASE_MODEL, ...opts.model };
  }

  /** The live state (throws before a successful create). */
  get state(): CoordinatorState {
    if (this.ctx.state === null) throw new Error(`${this.ctx.name}: no state`);
    return this.ctx.state;
  }

  /** Adds a comment line. */
  comment(text: string): this {
    this.body.push(`# ${text}`);
    return this;
  }

  /** Executes an event line, records it and its expectations; returns the result line. */
  ev(line: string): string {
    const out = executeEvent(this.ctx, line);
    this.body.push(line, ...out);
    if (this.ctx.state !== null) this.now = Math.max(this.now, this.ctx.state.runStateStart);
    return out[0]!;
  }

  /** Executes an event that must produce `want` (a guard against scenarios silently going astray). */
  expect(line: string, want: string): this {
    const got = this.ev(line);
    if (got !== want)
      throw new Error(`${this.ctx.name}: "${line}" gave "${got}", scenario expects "${want}"`);
    return this;
  }

  /** Records a check line (its value must hold for the reference implementation). */
  check(line: string): this {
    const full = `check ${line}`;
    const m = evaluateCheck(this.ctx, full);
    if (m !== null) throw new Error(`${this.ctx.name}: ${m}`);
    this.body.push(full);
    return this;
  }

  /** A fresh deterministic u64 seed. */
  seed(): bigint {
    this.counter++;
    return readU64leExport(sha256(new TextEncoder().encode(`${this.ctx.name}/seed/${this.counter}`)));
  }

  /** A deterministic 32-byte merkle root as hex. */
  merkle(tag: string): string {
    return toHex(sha256(new TextEncoder().encode(`${this.ctx.name}/merkle/${tag}`)));
  }

  /** A bloom holding `sha256(id)` of the given aliases, with deterministic keys. */
  participantBloom(aliases: readonly string[], n = aliases.length): Bloom {
    this.counter++;
    const keyBytes = sha256(new TextEncoder().encode(`${this.ctx.name}/keys/${this.counter}`));
    const keys = Array.from({ length: 8 }, (_, i) => {
      const b = sha256(new Uint8Array([...keyBytes, i]));
      return readU64leExport(b);
    });
    const bloom = createBloom(bloomNumBits(Math.max(1, n), 0.01), keys);
    for (const a of aliases) bloomAdd(bloom, sha256(fromHexLocal(this.ctx.aliases.get(a) ?? a)));
    return bloom;
  }

  create(): this {
    return this.expect('create', 'result ok');
  }

  tick(now: number, joiners: readonly string[] = [], want?: string): string {
    this.now = now;
    const r = this.ev(`tick ${now} ${this.seed()} ${joiners.length}${joiners.map((j) => ` ${j}`).join('')}`);
    if (want !== undefined && r !== want)
      throw new Error(`${this.ctx.name}: tick ${now} gave ${r}, want ${want}`);
    return r;
  }

  /** Alias of the epoch client at `index`. */
  aliasAt(index: number): string {
    const id = this.state.epoch.clients[index]!.id;
    return this.ctx.reverse.get(id) ?? id;
  }

  /** Indices of the current round's witnesses. */
  witnessIndices(): number[] {
    return getWitnessIndices(this.state.config, currentRound(this.state));
  }

  /**
   * Every (or the first `limit`) witness of the current round submits, with a participant bloom naming
   * `participants` (default: all Healthy clients).
   */
  witnessAll(now: number, opts: { limit?: number; participants?: readonly string[] } = {}): this {
    this.now = now;
    const s = this.state;
    const participants =
      opts.participants ??
      s.epoch.clients
        .filter((c) => c.state === ClientState.Healthy)
        .map((c) => this.ctx.reverse.get(c.id) ?? c.id);
    const idx = this.witnessIndices().filter((i) => s.epoch.clients[i]!.state === ClientState.Healthy);
    for (const i of idx.slice(0, opts.limit ?? idx.length)) {
      this.witnessOne(now, i, participants);
    }
    return this;
  }

  /** One witness submission from the client at `index`. */
  witnessOne(now: number, index: number, participants: readonly string[], want = 'result ok'): this {
    const round = currentRound(this.state);
    const pb = this.participantBloom(participants, this.state.epoch.clients.length);
    const bb = this.participantBloom([], 4);
    return this.expect(
      `witness ${now} ${this.aliasAt(index)} ${index} ${formatBloom(pb)} ${formatBloom(bb)} ${this.merkle(`${round.height}/${index}/${now}`)}`,
      want,
    );
  }

  /** All Healthy clients send warmup witnesses (until the round starts). */
  warmupAll(now: number): this {
    this.now = now;
    const n = this.state.epoch.clients.length;
    for (let i = 0; i < n && this.state.runState === RunState.Warmup; i++) {
      if (this.state.epoch.clients[i]!.state !== ClientState.Healthy) continue;
      this.expect(`warmup_witness ${now} ${this.seed()} ${this.aliasAt(i)} ${i}`, 'result ok');
    }
    return this;
  }

  /**
   * From RoundTrain: all witnesses submit at `now` (opportunistic → RoundWitness), then tick after the witness
   * time. Returns the tick result.
   */
  fullRound(now: number, opts: { participants?: readonly string[] } = {}): string {
    this.witnessAll(now, opts);
    if (this.state.runState === RunState.RoundTrain)
      this.tick(this.state.runStateStart + this.state.config.maxRoundTrainTime);
    return this.tick(this.now + this.state.config.roundWitnessTime);
  }

  /** Joins aliases, waits out WaitingForMembers and enters Warmup at `now`. */
  startEpoch(now: number, aliases: readonly string[]): this {
    for (const a of aliases) this.expect(`join ${a}`, 'result ok');
    this.tick(now);
    this.tick(now + this.state.config.waitingForMembersExtraTime);
    if (this.state.runState !== RunState.Warmup) throw new Error(`${this.ctx.name}: epoch did not start`);
    return this;
  }

  /** The checkpoint tokens. */
  static cp(c: Checkpoint): string {
    return formatCheckpoint(c);
  }

  /** update_config line from a record of camelCase fields. */
  updateConfig(changes: Record<string, number>, want: string): this {
    const pairs = Object.entries(changes).map(([k, v]) => `${snake(k)}=${v}`);
    return this.expect(`update_config ${pairs.length} ${pairs.join(' ')}`, want);
  }

  /** The whole file text. */
  text(): string {
    return `${[...formatHeader(this.ctx), ...this.body, 'end'].join('\n')}\n`;
  }
}

function fromHexLocal(h: string): Uint8Array {
  const out = new Uint8Array(h.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(h.slice(2 * i, 2 * i + 2), 16);
  return out;
}
