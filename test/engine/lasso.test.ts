import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { lassoGram, lassoKktViolation } from '../../server/engine/lasso.ts';
import { normalArray } from '../../server/engine/random.ts';

interface Case { k: number; lambda: number; positive: boolean; gram: number[]; rhs: number[]; alpha: number[] }
const reference = JSON.parse(readFileSync(new URL('../reference/dict_reference.json', import.meta.url), 'utf8')) as { cases: Case[] };

describe('lassoGram', () => {
  it('matches the exact sign-enumeration solutions from numpy (dict_reference.py)', () => {
    expect(reference.cases.length).toBe(8);
    for (const c of reference.cases) {
      const out = new Float64Array(c.k);
      lassoGram(Float64Array.from(c.gram), Float64Array.from(c.rhs), c.k, c.lambda, out, { positive: c.positive });
      for (let j = 0; j < c.k; j++) expect(Math.abs(out[j] - c.alpha[j])).toBeLessThan(1e-9);
      // Exact zeros where the reference has them: the soft-threshold gives true sparsity.
      for (let j = 0; j < c.k; j++) if (c.alpha[j] === 0) expect(out[j]).toBe(0);
    }
  });

  it('satisfies the optimality conditions on random problems, and a worse point does not', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const k = 12;
      const n = 30;
      const d = normalArray(seed, n * k);
      const x = normalArray(seed + 100, n);
      const gram = new Float64Array(k * k);
      const rhs = new Float64Array(k);
      for (let i = 0; i < k; i++) {
        for (let l = 0; l < k; l++) {
          let s = 0;
          for (let r = 0; r < n; r++) s += d[r * k + i] * d[r * k + l];
          gram[i * k + l] = s;
        }
        for (let r = 0; r < n; r++) rhs[i] += d[r * k + i] * x[r];
      }
      const out = new Float64Array(k);
      const sweeps = lassoGram(gram, rhs, k, 1.5, out);
      expect(sweeps).toBeLessThan(10_000);
      expect(lassoKktViolation(gram, rhs, k, 1.5, out)).toBeLessThan(1e-8);
      out[0] += 0.01;
      expect(lassoKktViolation(gram, rhs, k, 1.5, out)).toBeGreaterThan(1e-4);
    }
  });

  it('gives zero for a coordinate whose atom is all zero, and all zeros above λ_max', () => {
    const gram = Float64Array.from([2, 0.5, 0, 0.5, 1, 0, 0, 0, 0]);
    const rhs = Float64Array.from([1, 0.4, 0]);
    const out = new Float64Array(3);
    lassoGram(gram, rhs, 3, 0.1, out);
    expect(out[2]).toBe(0);
    expect(Number.isFinite(out[0]) && Number.isFinite(out[1])).toBe(true);
    const none = new Float64Array(3);
    lassoGram(gram, rhs, 3, 1.0, none); // λ ≥ max|c| → α = 0
    expect(Array.from(none)).toEqual([0, 0, 0]);
  });
});
