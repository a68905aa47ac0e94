/** Correlations across models against scipy, and the seeded bootstrap's behaviour. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { bootstrapCi, pearson, quantile, ranks, spearman } from '../../server/analysis/correlation.ts';

const ref = JSON.parse(readFileSync(new URL('../reference/correlation_reference.json', import.meta.url), 'utf8')) as {
  cases: { x: number[]; y: number[]; pearson: number; spearman: number }[];
  quantiles: { values: number[]; q: number[]; expected: number[] };
};

describe('correlation', () => {
  it('Pearson and Spearman equal scipy.stats (ties by mid-rank)', () => {
    for (const c of ref.cases) {
      expect(pearson(c.x, c.y)).toBeCloseTo(c.pearson, 10);
      expect(spearman(c.x, c.y)).toBeCloseTo(c.spearman, 10);
    }
  });

  it('mid-ranks and linear quantiles as numpy', () => {
    expect(Array.from(ranks([10, 20, 10, 5]))).toEqual([2.5, 4, 2.5, 1]);
    const sorted = [...ref.quantiles.values].sort((a, b) => a - b);
    ref.quantiles.q.forEach((q, i) => expect(quantile(sorted, q)).toBeCloseTo(ref.quantiles.expected[i], 12));
  });

  it('a constant series has no correlation', () => {
    expect(pearson([1, 1, 1], [1, 2, 3])).toBeNaN();
    expect(spearman([1, 2, 3], [4, 4, 4])).toBeNaN();
    expect(() => pearson([1, 2], [1])).toThrow(RangeError);
  });

  it('bootstrap: same seed same interval, interval around the estimate, degenerate resamples left out', () => {
    const c = ref.cases[0];
    const a = bootstrapCi(c.x, c.y, pearson, { draws: 500, seed: 3 });
    const b = bootstrapCi(c.x, c.y, pearson, { draws: 500, seed: 3 });
    expect(a).toEqual(b);
    expect(a.estimate).toBeCloseTo(c.pearson, 12);
    expect(a.low).toBeLessThan(a.estimate);
    expect(a.high).toBeGreaterThanOrEqual(a.estimate);
    expect(a.high).toBeLessThanOrEqual(1);
    expect(bootstrapCi(c.x, c.y, pearson, { draws: 500, seed: 4 }).low).not.toBe(a.low);
    // With 3 models, a resample of one model thrice is constant: those draws do not count.
    const three = bootstrapCi([0.1, 0.2, 0.3], [0.5, 0.7, 0.6], spearman, { draws: 400, seed: 1 });
    expect(three.valid).toBeLessThan(400);
    expect(three.valid).toBeGreaterThan(200);
    expect(three.estimate).toBeCloseTo(0.5, 12);
  });
});
