import { describe, expect, it } from 'vitest';
import {
  RANK_TOLERANCE,
  identifiableColumns,
  qrRowUpdate,
  scaleAddOuter,
  solveUpper,
  solveUpperTransposed,
} from '../../server/engine/glmDense.ts';
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

/** Diagonal of a P×P matrix: the column energies of a formed XᵀWX. */
function diagonal(a: Float64Array, p: number): Float64Array {
  return Float64Array.from({ length: p }, (_, j) => a[j * p + j]);
}

/** Applies rotations (c, s) recorded by qrRowUpdate to a pair sequence (√λ·z_i, w), as the per-voxel loop does. */
function rotatePair(z: Float64Array, y: number, lambda: number, c: Float64Array, s: Float64Array): number {
  let w = y;
  const root = Math.sqrt(lambda);
  for (let i = 0; i < z.length; i++) {
    const zi = root * z[i];
    z[i] = c[i] * zi + s[i] * w;
    w = c[i] * w - s[i] * zi;
  }
  return w;
}

describe('GLM dense helpers', () => {
  for (const lambda of [1, 0.9]) {
    it(`qrRowUpdate keeps R of √W·X (RᵀR = λΦ + xxᵀ) row after row, and its rotations give z = Qᵀy and the residual (λ = ${lambda})`, () => {
      const p = 5;
      const rng = createRng(3);
      const r = new Float64Array(p * p);
      const phi = new Float64Array(p * p);
      const xty = new Float64Array(p);
      const work = new Float64Array(p);
      const c = new Float64Array(p);
      const s = new Float64Array(p);
      const z = new Float64Array(p);
      let rss = 0;
      let syy = 0;
      for (let t = 0; t < 30; t++) {
        const x = Float64Array.from({ length: p }, () => rng.normal());
        const y = 3 + rng.normal();
        const xCopy = x.slice();
        qrRowUpdate(r, p, lambda, x, c, s, work);
        scaleAddOuter(phi, p, lambda, x);
        for (let j = 0; j < p; j++) xty[j] = lambda * xty[j] + x[j] * y;
        const e = rotatePair(z, y, lambda, c, s);
        rss = lambda * rss + e * e;
        syy = lambda * syy + y * y;
        expect(x).toEqual(xCopy);
        // Lower triangle stays zero; every rotation is one (c² + s² = 1).
        for (let i = 0; i < p; i++) {
          expect(c[i] ** 2 + s[i] ** 2).toBeCloseTo(1, 14);
          for (let j = 0; j < i; j++) expect(r[i * p + j]).toBe(0);
        }
        // RᵀR = Φ, Rᵀz = XᵀWy and ‖z‖² + RSS = Σwy² (Q is orthogonal), full rank or not.
        for (let i = 0; i < p; i++) {
          for (let j = 0; j < p; j++) {
            let m = 0;
            for (let k = 0; k < p; k++) m += r[k * p + i] * r[k * p + j];
            expect(Math.abs(m - phi[i * p + j])).toBeLessThan(1e-10 * (Math.abs(phi[i * p + j]) + 1));
          }
          let rz = 0;
          for (let k = 0; k < p; k++) rz += r[k * p + i] * z[k];
          expect(Math.abs(rz - xty[i])).toBeLessThan(1e-10 * (Math.abs(xty[i]) + 1));
        }
        const zz = z.reduce((a, b) => a + b * b, 0);
        expect(Math.abs(zz + rss - syy)).toBeLessThan(1e-12 * syy);
        expect(identifiableColumns(r, diagonal(phi, p), p)).toBe(Math.min(t + 1, p));
        if (t + 1 >= p) {
          // R's diagonal is Cholesky's up to sign, and R⁻¹R⁻ᵀ inverts Φ.
          const want = plainCholesky(phi, p);
          for (let i = 0; i < p; i++) expect(Math.abs(Math.abs(r[i * p + i]) - want[i * p + i])).toBeLessThan(1e-10 * want[i * p + i]);
          const b = Float64Array.from({ length: p }, () => rng.normal());
          const h = new Float64Array(p);
          const u = new Float64Array(p);
          solveUpperTransposed(r, p, p, b, h);
          solveUpper(r, p, p, h, u);
          for (let i = 0; i < p; i++) {
            let m = 0;
            for (let k = 0; k < p; k++) m += phi[i * p + k] * u[k];
            expect(Math.abs(m - b[i])).toBeLessThan(1e-9);
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
    const r = new Float64Array(p * p);
    const phi = new Float64Array(p * p);
    const work = new Float64Array(p);
    const c = new Float64Array(p);
    const s = new Float64Array(p);
    const add = (t: number) => {
      const x = d.X.slice(t * p, (t + 1) * p);
      qrRowUpdate(r, p, 1, x, c, s, work);
      scaleAddOuter(phi, p, 1, x);
    };
    for (let t = 0; t < 6; t++) add(t);
    const last = p - 1;
    const givensPivot = r[last * p + last] ** 2 / phi[last * p + last];
    const naive = plainCholesky(phi, p);
    const naivePivot = naive[last * p + last] ** 2 / phi[last * p + last];
    expect(givensPivot).toBeLessThan(1e-24);
    expect(naivePivot).toBeGreaterThan(1e-12);
    expect(identifiableColumns(r, diagonal(phi, p), p)).toBe(p - 1);
    // With enough TRs the drifts separate and the design is well posed.
    for (let t = 6; t < 150; t++) add(t);
    expect(identifiableColumns(r, diagonal(phi, p), p)).toBe(p);
  });

  it('counts leading identifiable columns: stops at a zero column and at one within RANK_TOLERANCE of the span of the others', () => {
    const p = 2;
    const count = (rows: number[][]) => {
      const r = new Float64Array(p * p);
      const phi = new Float64Array(p * p);
      const work = new Float64Array(p);
      const c = new Float64Array(p);
      const s = new Float64Array(p);
      for (const row of rows) {
        const x = Float64Array.from(row);
        qrRowUpdate(r, p, 1, x, c, s, work);
        scaleAddOuter(phi, p, 1, x);
      }
      return identifiableColumns(r, diagonal(phi, p), p);
    };
    const run = (rows: number[][]) => count(rows) === p;
    const same = [[1, 1], [1, 1], [1, 1], [1, 1], [1, 1]];
    expect(count([[1, 0], [1, 0], [1, 0]])).toBe(1);
    expect(count([[0, 1], [0, 2]])).toBe(0); // a later column cannot make up for an earlier one
    // Column 2 = column 1 + δ·e_6: its residual keeps ~(5/6)δ²/6 ≈ 0.14·δ² of its energy.
    const below = Math.sqrt(RANK_TOLERANCE); // ~0.14·tolerance: below
    const above = 10 * Math.sqrt(RANK_TOLERANCE); // ~14·tolerance: above
    expect(run([...same, [1, 1 + below]])).toBe(false);
    expect(run([...same, [1, 1 + above]])).toBe(true);
  });
});
