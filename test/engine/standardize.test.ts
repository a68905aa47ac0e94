import { describe, expect, it } from 'vitest';
import { RunningStandardizer } from '../../server/engine/standardize.ts';
import { createRng } from '../../server/engine/random.ts';
import { SyncactError } from '../../server/errors.ts';

/** Batch twin: two-pass mean and ddof=1 variance of the prefix, NaNs skipped, as numpy's nanmean/nanvar. */
function batchStats(rows: Float64Array[], upto: number, i: number): { mean: number; variance: number } {
  const vals: number[] = [];
  for (let t = 0; t < upto; t++) if (!Number.isNaN(rows[t][i])) vals.push(rows[t][i]);
  const mean = vals.length ? vals.reduce((a, b) => a + b, 0) / vals.length : NaN;
  const variance = vals.length > 1 ? vals.reduce((a, b) => a + (b - mean) ** 2, 0) / (vals.length - 1) : NaN;
  return { mean, variance };
}

function data(seed: number, T: number, V: number): Float64Array[] {
  const rng = createRng(seed);
  const rows: Float64Array[] = [];
  for (let t = 0; t < T; t++) {
    const r = new Float64Array(V);
    // BOLD-like: large offset, small fluctuations (where Σx² formulas lose digits)
    for (let v = 0; v < V; v++) r[v] = 10000 + 100 * v + (v + 1) * rng.normal();
    if (t % 7 === 2) r[1] = NaN;
    rows.push(r);
  }
  return rows;
}

function close(a: number, b: number, rel: number): void {
  if (Number.isNaN(b)) expect(a).toBeNaN();
  else expect(Math.abs(a - b)).toBeLessThanOrEqual(rel * Math.max(1, Math.abs(b)));
}

describe('RunningStandardizer', () => {
  it('equals the two-pass mean and ddof=1 variance of every prefix (NaNs skipped element-wise)', () => {
    const T = 60, V = 6;
    const rows = data(1, T, V);
    const s = new RunningStandardizer({ size: V });
    for (let t = 0; t < T; t++) {
      s.update(rows[t]);
      const mean = s.mean();
      const variance = s.variance();
      const z = s.transform(rows[t]);
      for (let v = 0; v < V; v++) {
        const b = batchStats(rows, t + 1, v);
        close(mean[v], b.mean, 1e-12);
        close(variance[v], b.variance, 1e-10);
        if (Number.isNaN(rows[t][v]) || t === 0) expect(z[v]).toBeNaN();
        else close(z[v], (rows[t][v] - b.mean) / Math.sqrt(b.variance), 1e-9);
      }
    }
    expect(s.count(1)).toBe(T - Math.ceil((T - 2) / 7));
    expect(s.count(0)).toBe(T);
  });

  it('a constant series has variance 0 and standardizes to 0; a lone sample gives NaN', () => {
    const s = new RunningStandardizer({ size: 2 });
    s.update(Float32Array.of(5, 1));
    expect(Array.from(s.variance())).toEqual([NaN, NaN]);
    expect(Array.from(s.transform(Float32Array.of(5, 1)))).toEqual([NaN, NaN]);
    for (let t = 0; t < 10; t++) s.update(Float32Array.of(5, t));
    expect(s.variance()[0]).toBe(0);
    const z = s.transform(Float64Array.of(5, 3), new Float32Array(2));
    expect(z[0]).toBe(0);
    expect(z).toBeInstanceOf(Float32Array);
  });

  it('an element that is always NaN stays NaN and never poisons the others', () => {
    const s = new RunningStandardizer({ size: 2 });
    for (let t = 0; t < 5; t++) s.update(Float64Array.of(NaN, t));
    expect(s.mean()[0]).toBeNaN();
    expect(s.mean()[1]).toBe(2);
    expect(s.variance()[1]).toBeCloseTo(2.5, 14);
  });

  it('restores a snapshot mid-stream and continues identically', () => {
    const T = 40, V = 5;
    const rows = data(9, T, V);
    const a = new RunningStandardizer({ size: V });
    rows.forEach((r) => a.update(r));
    const b = new RunningStandardizer({ size: V });
    rows.slice(0, 17).forEach((r) => b.update(r));
    const snap = b.snapshot();
    rows.slice(17, 30).forEach((r) => b.update(r));
    const c = new RunningStandardizer({ size: V });
    c.restore(snap);
    rows.slice(17).forEach((r) => c.update(r));
    expect(Array.from(c.variance())).toEqual(Array.from(a.variance()));
    expect(Array.from(c.mean())).toEqual(Array.from(a.mean()));
    expect(() => new RunningStandardizer({ size: V + 1 }).restore(snap)).toThrowError(SyncactError);
  });

  it('rejects wrong lengths with a typed error', () => {
    const s = new RunningStandardizer({ size: 3 });
    expect(() => s.update(new Float64Array(2))).toThrowError(/length 2, expected 3/);
    expect(() => new RunningStandardizer({ size: 0 })).toThrowError(SyncactError);
  });
});
