import { describe, expect, it } from 'vitest';
import { RANK_TOLERANCE, choleskySolve, fullRank, givensUpdate, scaleAddOuter } from '../../server/engine/glmDense.ts';
import { createRng } from '../../server/engine/random.ts';
import { makeGlmData } from './glmTestData.ts';

/** Textbook Cholesky of a formed matrix, for comparison. */
function plainCholesky(a: Float64Array, p: number): Float64Array {
  const l = new Float64Array(p * p);
  for (let j = 0; j < p; j++) {
    let d = a[j * p + j];
    for (let k = 0; k < j; k++) d -= l[j * p + k] ** 2;
    l[j * p + j] = Math.sqrt(d);
    for (let i = j + 1; i < p; i++) {
      let s = a[i * p + j];
      for (let k = 0; k < j; k++) s -= l[i * p + k] * l[j * p + k];
      l[i * p + j] = s / l[j * p + j];
    }
  }
  return l;
}

describe('GLM dense helpers', () => {
  for (const lambda of [1, 0.9]) {
    it(`givensUpdate keeps the Cholesky factor of λΦ + xxᵀ row after row (λ = ${lambda})`, () => {
      const p = 5;
      const rng = createRng(3);
      const l = new Float64Array(p * p);
      const phi = new Float64Array(p * p);
      const work = new Float64Array(p);
      for (let t = 0; t < 30; t++) {
        const x = Float64Array.from({ length: p }, () => rng.normal());
        const xCopy = x.slice();
        givensUpdate(l, p, lambda, x, work);
        scaleAddOuter(phi, p, lambda, x);
        expect(x).toEqual(xCopy);
        // Upper triangle stays zero, diagonal non-negative.
        for (let i = 0; i < p; i++) {
          expect(l[i * p + i]).toBeGreaterThanOrEqual(0);
          for (let j = i + 1; j < p; j++) expect(l[i * p + j]).toBe(0);
        }
        expect(fullRank(l, phi, p)).toBe(t + 1 >= p);
        if (t + 1 >= p) {
          const want = plainCholesky(phi, p);
          for (let i = 0; i < p * p; i++) expect(Math.abs(l[i] - want[i])).toBeLessThan(1e-10 * (Math.abs(want[i]) + 1));
          // And solves with it invert Φ.
          const b = Float64Array.from({ length: p }, () => rng.normal());
          const u = new Float64Array(p);
          choleskySolve(l, p, b, u);
          for (let i = 0; i < p; i++) {
            let s = 0;
            for (let k = 0; k < p; k++) s += phi[i * p + k] * u[k];
            expect(Math.abs(s - b[i])).toBeLessThan(1e-9);
          }
        }
      }
    });
  }

  it('resolves a rank deficiency down to rounding in X, where a Cholesky of the formed XᵀX cannot', () => {
    // Intercept, linear and cosine drift of a 300-TR run plus 4 unit responses, seen for
    // 6 TRs: 7 columns, so rank 6 whatever the rounding. Over 6 TRs the cosine is nearly
    // a polynomial; in a Cholesky of the formed XᵀX the last pivot is rounding amplified
    // by that near-collinearity, while the Givens factor keeps it at rounding level.
    const d = makeGlmData(1, 300, 4, 1);
    const p = d.P;
    const l = new Float64Array(p * p);
    const phi = new Float64Array(p * p);
    const work = new Float64Array(p);
    const add = (t: number) => {
      const x = d.X.slice(t * p, (t + 1) * p);
      givensUpdate(l, p, 1, x, work);
      scaleAddOuter(phi, p, 1, x);
    };
    for (let t = 0; t < 6; t++) add(t);
    const last = p - 1;
    const givensPivot = l[last * p + last] ** 2 / phi[last * p + last];
    const naive = plainCholesky(phi, p);
    const naivePivot = naive[last * p + last] ** 2 / phi[last * p + last];
    expect(givensPivot).toBeLessThan(1e-24);
    expect(naivePivot).toBeGreaterThan(1e-12);
    expect(fullRank(l, phi, p)).toBe(false);
    // With enough TRs the drifts separate and the design is well posed.
    for (let t = 6; t < 150; t++) add(t);
    expect(fullRank(l, phi, p)).toBe(true);
  });

  it('rejects a zero column and a column within RANK_TOLERANCE of the span of the others', () => {
    const p = 2;
    const run = (rows: number[][]) => {
      const l = new Float64Array(p * p);
      const phi = new Float64Array(p * p);
      const work = new Float64Array(p);
      for (const r of rows) {
        const x = Float64Array.from(r);
        givensUpdate(l, p, 1, x, work);
        scaleAddOuter(phi, p, 1, x);
      }
      return fullRank(l, phi, p);
    };
    const same = [[1, 1], [1, 1], [1, 1], [1, 1], [1, 1]];
    expect(run([[1, 0], [1, 0], [1, 0]])).toBe(false);
    // Column 2 = column 1 + δ·e_6: its residual keeps ~δ²/7 of its energy.
    const below = Math.sqrt(RANK_TOLERANCE); // ~1.4e-7 of the energy: below the tolerance
    const above = 10 * Math.sqrt(RANK_TOLERANCE); // ~1.4e-5: above
    expect(run([...same, [1, 1 + below]])).toBe(false);
    expect(run([...same, [1, 1 + above]])).toBe(true);
  });
});
