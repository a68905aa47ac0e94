import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { cosineDriftMatrix, cosineDriftOrder, dctRow, legendreDriftRow } from '../../server/engine/drift.ts';
import { SyncactError } from '../../server/errors.ts';

interface CosineCase { n: number; tr: number; high_pass: number; width: number; rows: number[]; values: number[] }
const ref = JSON.parse(readFileSync(new URL('../reference/drift_reference.json', import.meta.url), 'utf8')) as {
  cosine: CosineCase[];
  legendre_scale600_order4: { t: number; values: number[] }[];
};

describe('cosine drift (nilearn _cosine_drift)', () => {
  it('matches the numpy re-implementation row by row, constant last', () => {
    for (const c of ref.cosine) {
      expect(cosineDriftOrder(c.n, c.tr, c.high_pass) + 1).toBe(c.width);
      c.rows.forEach((k, r) => {
        const row = dctRow(k, c.n, c.tr, c.high_pass);
        expect(row.length).toBe(c.width);
        for (let j = 0; j < c.width; j++) expect(Math.abs(row[j] - c.values[r * c.width + j])).toBeLessThan(1e-12);
      });
    }
  });

  it('the whole matrix has orthonormal cosine columns, orthogonal to the constant', () => {
    const n = 200, tr = 1.5;
    const m = cosineDriftMatrix(n, tr);
    const w = cosineDriftOrder(n, tr) + 1;
    expect(w).toBe(Math.floor((2 * n) / 128 * tr) + 1);
    for (let a = 0; a < w - 1; a++)
      for (let b = a; b < w; b++) {
        let s = 0;
        for (let k = 0; k < n; k++) s += m[k * w + a] * m[k * w + b];
        expect(s).toBeCloseTo(a === b ? 1 : 0, 10);
      }
  });

  it('drops the constant on request and handles a one-TR run', () => {
    const full = dctRow(3, 100, 2);
    const noConst = dctRow(3, 100, 2, undefined, { constant: false });
    expect(Array.from(noConst)).toEqual(Array.from(full.subarray(0, full.length - 1)));
    expect(Array.from(dctRow(0, 1, 2))).toEqual([1]);
    expect(() => dctRow(100, 100, 2)).toThrowError(SyncactError);
    expect(() => dctRow(0, 10, 0)).toThrowError(/TR must be positive/);
  });
});

describe('Legendre drift (live mode)', () => {
  it('matches numpy.polynomial.legendre on a fixed 600 s scale, also beyond it', () => {
    for (const { t, values } of ref.legendre_scale600_order4) {
      const row = legendreDriftRow(t, { order: 4, scale: 600 });
      expect(row.length).toBe(5);
      values.forEach((v, j) => expect(row[j]).toBeCloseTo(v, 11));
      expect(row[4]).toBe(1);
    }
  });

  it('a row depends only on its own time (rows never change as the run grows)', () => {
    const a = legendreDriftRow(42, { constant: false });
    const b = legendreDriftRow(42, { constant: false });
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(a.length).toBe(3);
    expect(() => legendreDriftRow(NaN)).toThrowError(/finite/);
  });
});
