/**
 * The TypeScript decoder of the on-chain coordinator account against the Rust core:
 * - its offsets equal `fixtures/coordinator-account/layout.json`, written by the core's test
 *   (`programs/coordinator-core/tests/account_vectors.rs`, from `offset_of!`/`size_of`);
 * - the account vectors that test writes decode to exactly the TS state machine's own state after the same
 *   scenario (the steps are listed in that Rust file and mirrored here).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  bloomAdd,
  type CoordinatorState,
  createBloom,
  createCoordinator,
  currentRound,
  fromHex,
  getWitnessIndices,
  resume,
  sha256,
  tick,
  toHex,
  warmupWitness,
  witness,
} from '@psyche/coordinator';
import { describe, expect, it } from 'vitest';
import { isCoordinatorClientError } from '../src/errors.js';
import {
  ACCOUNT_DISCRIMINATORS,
  COORDINATOR_ACCOUNT_SPACE,
  CORE_LAYOUT,
  decodeCoordinatorAccount,
  decodeCoreAccount,
  encodeCoordinatorAccount,
  encodeCoreAccount,
} from '../src/solana/index.js';
import { ACCOUNT_RUN_CONFIG, ACCOUNT_RUN_ID, ACCOUNT_RUN_MODEL } from './helpers/account-scenario.js';

const FIXTURES = join(import.meta.dirname, '../../../fixtures/coordinator-account');
const vector = (name: string) => new Uint8Array(readFileSync(join(FIXTURES, name)));

/** The scenario of account_vectors.rs, step by step; returns a deep snapshot after each written vector. */
function scenario(): Record<string, CoordinatorState> {
  const out: Record<string, CoordinatorState> = {};
  const snap = (name: string, s: CoordinatorState) => {
    out[name] = structuredClone(s);
  };
  const s = createCoordinator({
    runId: ACCOUNT_RUN_ID,
    config: ACCOUNT_RUN_CONFIG,
    model: ACCOUNT_RUN_MODEL,
  });
  snap('00-uninitialized.bin', s);
  resume(s, 1000);
  snap('01-waiting.bin', s);
  const ids = [1, 2, 3].map((b) => toHex(new Uint8Array(32).fill(b)));
  tick(s, ids, 1001, 0n);
  tick(s, [], 1002, 0n);
  snap('02-warmup.bin', s);
  ids.forEach((id, i) => {
    warmupWitness(s, { from: id, index: i }, 1010, 0xfeedn);
  });
  snap('03-round-train.bin', s);
  const w = getWitnessIndices(s.config, currentRound(s))[0] as number;
  const bloom = createBloom(64, [1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n]);
  for (const id of ids) bloomAdd(bloom, sha256(fromHex(id)));
  witness(
    s,
    {
      from: s.epoch.clients[w]?.id as string,
      index: w,
      participantBloom: bloom,
      broadcastBloom: structuredClone(bloom),
      broadcastMerkle: toHex(new Uint8Array(32).fill(7)),
    },
    1011,
  );
  snap('04-witnessed.bin', s);
  return out;
}

/** Full program account data: discriminator, nonce, core bytes. */
function programAccount(core: Uint8Array, nonce: bigint): Uint8Array {
  const data = new Uint8Array(COORDINATOR_ACCOUNT_SPACE);
  data.set(ACCOUNT_DISCRIMINATORS.CoordinatorAccount, 0);
  new DataView(data.buffer).setBigUint64(8, nonce, true);
  data.set(core, 16);
  return data;
}

describe('coordinator account layout', () => {
  it('equals the layout the Rust core writes (every struct size and field offset)', () => {
    const rust = JSON.parse(readFileSync(join(FIXTURES, 'layout.json'), 'utf8'));
    expect(CORE_LAYOUT).toEqual(rust);
    // The program account is discriminator + nonce + core state.
    expect(COORDINATOR_ACCOUNT_SPACE).toBe(8 + 8 + 85_736);
  });
});

describe('account vectors from the Rust core', () => {
  const expected = scenario();
  it.each(Object.keys(expected))('%s decodes to the TS state machine state', (name) => {
    const core = vector(name);
    const state = decodeCoreAccount(core);
    expect(state).toEqual(expected[name]);
    const full = decodeCoordinatorAccount(programAccount(core, 42n));
    expect(full.nonce).toBe(42n);
    expect(full.state).toEqual(expected[name]);
  });

  it.each(Object.keys(expected))('%s: the TS encoder writes the same bytes as the Rust core', (name) => {
    const bytes = vector(name);
    expect(
      Buffer.from(encodeCoreAccount(expected[name] as CoordinatorState)).equals(Buffer.from(bytes)),
    ).toBe(true);
    expect(
      decodeCoordinatorAccount(encodeCoordinatorAccount(expected[name] as CoordinatorState, 9n)).nonce,
    ).toBe(9n);
  });

  it('the scenario really moves through the states (vectors differ)', () => {
    const states = Object.values(expected).map((s) => s.runState);
    expect(states).toEqual([0, 1, 2, 3, 3]);
    expect(expected['04-witnessed.bin']?.epoch.rounds.some((r) => r.witnesses.length === 1)).toBe(true);
  });

  it('rejects a wrong size, discriminator, version, length or enum with MALFORMED_MESSAGE naming the field', () => {
    const core = vector('03-round-train.bin');
    const fieldOf = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        expect(isCoordinatorClientError(e, 'MALFORMED_MESSAGE')).toBe(true);
        return (e as { details: { field: string } }).details.field;
      }
      return 'no error';
    };
    expect(fieldOf(() => decodeCoreAccount(core.subarray(1)))).toBe('length');
    const badDisc = programAccount(core, 1n);
    badDisc[0] = (badDisc[0] as number) ^ 1;
    expect(fieldOf(() => decodeCoordinatorAccount(badDisc))).toBe('discriminator');
    const mutate = (offset: number, value: number) => {
      const b = core.slice();
      b[offset] = value;
      return b;
    };
    expect(fieldOf(() => decodeCoreAccount(mutate(0, 2)))).toBe('version');
    expect(fieldOf(() => decodeCoreAccount(mutate(40, 8)))).toBe('run_state');
    const clientsLen = 8640 + CORE_LAYOUT.AccountEpochState.fields.clients_len[0];
    const tooMany = core.slice();
    new DataView(tooMany.buffer).setUint32(clientsLen, 257, true);
    expect(fieldOf(() => decodeCoreAccount(tooMany))).toBe('epoch_state.clients_len');
  });
});
