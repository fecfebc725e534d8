import { describe, expect, it } from 'vitest';
import { DistroError, getSmallerSplit, indexWidth, paramLayout } from '../src/index.js';

describe('getSmallerSplit (reference _get_smaller_split)', () => {
  // Values from distro-algorithm.md §1.3 (checked against the reference on CPU) and the issue.
  const table: [number, number][] = [
    [1, 1],
    [7, 7],
    [10, 10],
    [36, 36],
    [96, 48],
    [100, 50],
    [1000, 50],
    [30522, 6],
    [50257, 29],
    [50280, 60],
    [50304, 64],
    [100277, 1],
    ...[768, 1024, 2048, 3072, 4096, 5120, 8192, 11008, 14336, 32000, 128256, 151936, 152064].map(
      (n) => [n, 64] as [number, number],
    ),
  ];
  it.each(table)('sc(%i, 64) = %i', (n, sc) => {
    expect(getSmallerSplit(n, 64)).toBe(sc);
  });

  it('matches the Psyche test values', () => {
    expect(getSmallerSplit(100, 26)).toBe(25);
    expect(getSmallerSplit(100, 101)).toBe(100);
    expect(getSmallerSplit(1000000007, 500000000)).toBe(1); // prime
  });

  it('always returns a divisor <= target (exhaustive small range)', () => {
    for (let n = 1; n <= 300; n++) {
      for (const t of [1, 2, 3, 7, 16, 64]) {
        const s = getSmallerSplit(n, t);
        expect(n % s).toBe(0);
        expect(s <= Math.max(t, 1) || s === n).toBe(true);
        // no larger divisor <= t exists
        for (let d = s + 1; d <= Math.min(t, n); d++) expect(n % d === 0 && n > t).toBe(false);
      }
    }
  });

  it.each([
    [0, 64, 'n'],
    [-3, 64, 'n'],
    [2.5, 64, 'n'],
    [10, 0, 'target'],
    [10, Number.NaN, 'target'],
  ])('rejects n=%s target=%s with a typed error naming %s', (n, t, field) => {
    const err = (() => {
      try {
        getSmallerSplit(n, t);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(DistroError);
    expect((err as DistroError).code).toBe('INVALID_ARGUMENT');
    expect((err as DistroError).details.field).toBe(field);
  });
});

describe('paramLayout', () => {
  it('scalar policy: a [] parameter is one 1x1 block sent whole', () => {
    const l = paramLayout([], 64, 32);
    expect(l).toMatchObject({
      batch: 1,
      rows: 1,
      cols: 1,
      n1: 1,
      n2: 1,
      numBlocks: 1,
      blockSize: 1,
      k: 1,
      size: 1,
    });
  });
  it('1-D [L] is [L/n, n] blocks (reference), k clamped', () => {
    expect(paramLayout([100], 64, 32)).toMatchObject({ n1: 1, n2: 50, numBlocks: 2, blockSize: 50, k: 32 });
    expect(paramLayout([8], 4, 2)).toMatchObject({ n1: 1, n2: 4, numBlocks: 2, blockSize: 4, k: 2 });
    expect(paramLayout([10], 64, 32)).toMatchObject({ numBlocks: 1, blockSize: 10, k: 10 });
  });
  it('2-D uses non-square chunks for non-divisible dims (GPT-2 embedding 29x64)', () => {
    const l = paramLayout([50257, 768], 64, 32);
    expect(l).toMatchObject({ n1: 29, n2: 64, blockSize: 1856, numBlocks: 1733 * 12, k: 32 });
  });
  it('N-D: leading dims are batch (Psyche), chunks over the last two', () => {
    const l = paramLayout([3, 2, 96, 100], 64, 32);
    expect(l).toMatchObject({
      batch: 6,
      rows: 96,
      cols: 100,
      n1: 48,
      n2: 50,
      numBlocks: 6 * 2 * 2,
      blockSize: 2400,
    });
  });
  it('rejects bad shapes with INVALID_SHAPE naming the parameter', () => {
    for (const shape of [[0], [2, -1], [1.5], [1, 1, 1, 1, 1, 1, 1, 1, 1], [65536, 65536]]) {
      try {
        paramLayout(shape, 64, 32, 'w');
        expect.unreachable();
      } catch (e) {
        expect(e).toBeInstanceOf(DistroError);
        expect((e as DistroError).code).toBe('INVALID_SHAPE');
        expect((e as DistroError).param).toBe('w');
      }
    }
  });
});

describe('indexWidth (lossless index packing)', () => {
  it('u8 up to 256, u16 up to 65536, u32 above', () => {
    expect([1, 256, 257, 4096, 65536, 65537].map(indexWidth)).toEqual([1, 1, 2, 2, 2, 4]);
  });
});
