import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { benjaminiHochberg, rejectAt } from '../../server/engine/fdr.ts';
import { SyncactError } from '../../server/errors.ts';
import { createRng } from '../../server/engine/random.ts';

interface RefCase { name: string; alpha: number; p: (number | null)[]; q: (number | null)[]; reject: boolean[] }
const ref = JSON.parse(
  readFileSync(new URL('../reference/fdr_reference.json', import.meta.url), 'utf8'),
) as { cases: RefCase[] };
const arr = (xs: (number | null)[]) => Float64Array.from(xs, (x) => (x === null ? NaN : x));

describe('benjaminiHochberg', () => {
  for (const c of ref.cases) {
    it(`matches the statsmodels fdr_bh reimplementation: ${c.name}`, () => {
      const p = arr(c.p);
      const before = p.slice();
      const q = benjaminiHochberg(p);
      expect(p).toEqual(before); // input not modified
      expect(q.length).toBe(p.length);
      for (let i = 0; i < q.length; i++) {
        if (c.q[i] === null) expect(q[i]).toBeNaN();
        else expect(Math.abs(q[i] - (c.q[i] as number))).toBeLessThan(1e-12);
      }
      const r = rejectAt(q, c.alpha);
      expect(Array.from(r, (x) => x === 1)).toEqual(c.reject);
    });
  }

  it('q-values are monotone in p and never below p', () => {
    const rng = createRng(5);
    const p = new Float64Array(500);
    for (let i = 0; i < p.length; i++) p[i] = rng.uniform() ** 3;
    const q = benjaminiHochberg(p);
    const order = Array.from(p.keys()).sort((a, b) => p[a] - p[b]);
    for (let k = 1; k < order.length; k++) expect(q[order[k]]).toBeGreaterThanOrEqual(q[order[k - 1]]);
    for (let i = 0; i < p.length; i++) {
      expect(q[i]).toBeGreaterThanOrEqual(p[i]);
      expect(q[i]).toBeLessThanOrEqual(1);
    }
  });

  it('rejects p-values outside [0, 1] with a typed error', () => {
    for (const bad of [-0.1, 1.5, Infinity]) {
      try {
        benjaminiHochberg(Float64Array.of(0.1, bad));
        expect.unreachable();
      } catch (e) {
        expect(e).toBeInstanceOf(SyncactError);
        expect((e as SyncactError).code).toBe('ENGINE_BAD_INPUT');
        expect((e as SyncactError).message).toMatch(/index 1 is outside \[0, 1\]/);
      }
    }
    expect(() => rejectAt(new Float64Array(1), 0)).toThrow(/alpha/);
  });

  it('an empty family gives an empty result', () => {
    expect(benjaminiHochberg(new Float64Array(0)).length).toBe(0);
  });
});
