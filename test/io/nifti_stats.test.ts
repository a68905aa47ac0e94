/**
 * volumeStats (the per-volume numbers of `syncact inspect`): compensated sums against an
 * exact integer reference, non-finite handling, overflow.
 */
import { describe, expect, it } from 'vitest';
import { volumeStats } from '../../server/io/nifti/stats.ts';
import { createRng } from '../../server/engine/random.ts';

describe('volumeStats', () => {
  it('sums a million mixed-magnitude values to the correctly rounded exact sum', () => {
    // Values k·2^-40 (k an integer-valued double, so exact): 1% near 2^25, the rest near
    // 2^-18, whose low bits plain summation drops. The exact sum is a BigInt, rounded once.
    const rng = createRng(42);
    const n = 1_000_000;
    const ks: bigint[] = [];
    const values = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const big = rng.uniform() < 0.01;
      const k = Math.round((rng.uniform() - 0.5) * (big ? 2 ** 66 : 2 ** 23));
      ks.push(BigInt(k));
      values[i] = k / 2 ** 40;
    }
    const exact = Number(ks.reduce((a, b) => a + b, 0n)) / 2 ** 40;
    let naive = 0;
    for (const v of values) naive += v;
    const s = volumeStats(values);
    expect(Math.abs(s.sum - exact)).toBeLessThanOrEqual(Math.abs(exact) * 2.3e-16);
    // The reference is sharp enough to tell: plain summation is measurably off.
    expect(Math.abs(naive - exact)).toBeGreaterThan(Math.abs(s.sum - exact));
    expect(s.mean).toBeCloseTo(exact / n, 12);
    expect(s.min).toBe(values.reduce((a, b) => Math.min(a, b), Infinity));
    expect(s.max).toBe(values.reduce((a, b) => Math.max(a, b), -Infinity));
    expect(s.nan).toBe(0);
  });

  it('skips NaN and ±Infinity and counts them', () => {
    const s = volumeStats(Float32Array.from([1, NaN, 3, Infinity, -Infinity, -2]));
    expect(s).toEqual({ min: -2, max: 3, mean: 2 / 3, sum: 2, nan: 3 });
  });

  it('a volume with no finite value has null min, max and mean', () => {
    expect(volumeStats(new Float64Array([NaN, NaN]))).toEqual({ min: null, max: null, mean: null, sum: 0, nan: 2 });
  });

  it('a sum that overflows is Infinity, and the mean is still finite', () => {
    const max = Number.MAX_VALUE;
    const s = volumeStats(new Float64Array([max, max, -1]));
    expect(s.sum).toBe(Infinity);
    expect(s.mean).toBeCloseTo((max / 3) * 2, -300);
    expect(Number.isFinite(s.mean)).toBe(true);
  });
});
