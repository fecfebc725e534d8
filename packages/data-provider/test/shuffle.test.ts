import { describe, expect, it } from 'vitest';
import { createPermutation } from '../src/index.js';

function all(n: number, seed: string | number | Uint8Array, epoch = 0): number[] {
  const p = createPermutation(n, seed, epoch);
  return Array.from({ length: n }, (_, i) => p.forward(i));
}

describe('createPermutation', () => {
  it.each([1, 2, 3, 5, 100, 1000, 4097, 65_537])('is a permutation of [0, %i)', (n) => {
    const out = all(n, 'seed');
    const sorted = [...out].sort((a, b) => a - b);
    expect(sorted).toEqual(Array.from({ length: n }, (_, i) => i));
  });

  it('is stable across runs and platforms (pinned values of the v1 algorithm)', () => {
    // Pinned when the algorithm was written; any change to keys, rounds or cycle walking breaks
    // cross-node agreement on which sequences a batch id means, and must bump "psyche-shuffle-v1".
    expect(all(10, 'psyche')).toEqual(PINNED_10);
    expect(createPermutation(1_000_003, 42).forward(123_456)).toBe(PINNED_BIG);
  });

  it('depends on seed and epoch, and seed forms are distinct', () => {
    const base = all(1000, 'a');
    expect(all(1000, 'b')).not.toEqual(base);
    expect(all(1000, 'a', 1)).not.toEqual(base);
    expect(all(1000, 'a')).toEqual(base);
    expect(all(1000, 7)).not.toEqual(all(1000, '7'));
    const raw = new Uint8Array(32).fill(9);
    expect(all(1000, raw)).toEqual(all(1000, new Uint8Array(32).fill(9)));
  });

  it('mixes well: few fixed points and large average displacement', () => {
    // For a uniform random permutation of n: E[fixed points] = 1 and E|p(i) - i| = (n^2 - 1) / (3n) ≈ n/3.
    const n = 20_000;
    const out = all(n, 'quality');
    const fixed = out.filter((v, i) => v === i).length;
    const meanDisp = out.reduce((a, v, i) => a + Math.abs(v - i), 0) / n;
    expect(fixed).toBeLessThan(10);
    expect(Math.abs(meanDisp - n / 3) / (n / 3)).toBeLessThan(0.05); // within 5% of n/3
  });

  it('rejects bad sizes, epochs and indices with typed errors', () => {
    expect(() => createPermutation(0, 1)).toThrow(
      expect.objectContaining({
        code: 'INVALID_PARAMETER',
        details: expect.objectContaining({ parameter: 'n' }),
      }),
    );
    expect(() => createPermutation(2 ** 53, 1)).toThrow(
      expect.objectContaining({ code: 'INVALID_PARAMETER' }),
    );
    expect(() => createPermutation(10, 1, -1)).toThrow(
      expect.objectContaining({ details: expect.objectContaining({ parameter: 'epoch' }) }),
    );
    expect(() => createPermutation(10, -1)).toThrow(
      expect.objectContaining({ details: expect.objectContaining({ parameter: 'shuffleSeed' }) }),
    );
    expect(() => createPermutation(10, 1).forward(10)).toThrow(
      expect.objectContaining({ code: 'INDEX_OUT_OF_RANGE' }),
    );
  });
});

const PINNED_10 = [2, 5, 8, 3, 7, 6, 4, 1, 0, 9];
const PINNED_BIG = 160_335;
