/**
 * The checked-in IDL: Anchor 0.30+ discriminators recomputed from their definition, the JSON and the TS module
 * identical, errors mapped 1:1 to the core's numbered errors, and the IDL loadable by Anchor's coder.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BorshCoder } from '@coral-xyz/anchor';
import { CoordinatorErrorNumber } from '@psyche/coordinator';
import { describe, expect, it } from 'vitest';
import { PSYCHE_COORDINATOR_IDL } from '../src/solana/idl/psyche_coordinator.js';
import { IDL, PROGRAM_ERRORS } from '../src/solana/index.js';

const disc = (s: string) => [...createHash('sha256').update(s).digest().subarray(0, 8)];

describe('checked-in IDL', () => {
  it('JSON file and TS module are the same IDL', () => {
    const json = JSON.parse(
      readFileSync(join(import.meta.dirname, '../src/solana/idl/psyche_coordinator.json'), 'utf8'),
    );
    expect(PSYCHE_COORDINATOR_IDL).toEqual(json);
  });

  it('has the issue-9 instruction set with sha256("global:<ix>")[0..8] discriminators', () => {
    const names = PSYCHE_COORDINATOR_IDL.instructions.map((i) => i.name);
    for (const n of [
      'init_coordinator',
      'update',
      'set_paused',
      'join_run',
      'tick',
      'witness',
      'warmup_witness',
      'health_check',
      'checkpoint',
      'free_coordinator',
    ])
      expect(names).toContain(n);
    for (const ix of PSYCHE_COORDINATOR_IDL.instructions)
      expect(ix.discriminator).toEqual(disc(`global:${ix.name}`));
    // A known value, so the helper above cannot silently agree with a wrong definition.
    expect(disc('global:initialize')).toEqual([175, 175, 109, 31, 13, 152, 155, 237]);
  });

  it('has sha256("account:<Name>")[0..8] account discriminators', () => {
    for (const a of PSYCHE_COORDINATOR_IDL.accounts)
      expect(a.discriminator).toEqual(disc(`account:${a.name}`));
  });

  it('maps core error n to 6000 + n with the same name, for every core error', () => {
    const core = Object.entries(CoordinatorErrorNumber as Record<string, number>);
    expect(core.length).toBe(21);
    for (const [name, n] of core) expect(PROGRAM_ERRORS.get(6000 + n)).toBe(name);
  });

  it('is accepted by Anchor: the coordinator account type is 85 752 bytes', () => {
    const coder = new BorshCoder(IDL);
    expect(coder.accounts.size('CoordinatorAccount')).toBe(8 + 8 + 85_736);
  });
});
