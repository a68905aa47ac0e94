import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { ChosenUnits, fitUnitPca, fitUnitReducer } from '../../../server/engine/cnn/unitReduction.ts';
import { createRng } from '../../../server/engine/random.ts';
import { SyncactError } from '../../../server/errors.ts';

interface RefCase {
  T: number;
  N: number;
  K: number;
  X: number[];
  mean: number[];
  sd: number[];
  loadings: number[];
  singular_values: number[];
  scores: number[];
  explained_variance_ratio: number[];
}

// Made by test/reference/pca_reference.py (numpy SVD of the standardized matrix, signs fixed).
const ref = JSON.parse(readFileSync(new URL('../../reference/pca_reference.json', import.meta.url), 'utf8')) as Record<'tall' | 'wide', RefCase>;

function rows(c: RefCase): Float64Array[] {
  return Array.from({ length: c.T }, (_, t) => Float64Array.from(c.X.slice(t * c.N, (t + 1) * c.N)));
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('fitUnitPca', () => {
  for (const [name, solver] of [['tall', 'dense'], ['wide', 'dense'], ['tall', 'lanczos'], ['wide', 'lanczos']] as const) {
    it(`equals numpy's SVD of the standardized responses (${name}: ${ref[name].T} TRs × ${ref[name].N} units, ${solver})`, () => {
      const c = ref[name];
      const X = rows(c);
      const copy = X.map((r) => Float64Array.from(r));
      const pca = fitUnitPca(X, { components: c.K, solver });
      expect(X).toEqual(copy); // inputs are not modified
      expect(pca.k).toBe(c.K);
      expect(pca.width).toBe(c.N);
      expect(maxAbsDiff(pca.mean, c.mean)).toBeLessThan(1e-9 * 1e3);
      for (let u = 0; u < c.N; u++) expect(Math.abs(pca.std[u] - c.sd[u])).toBeLessThan(1e-10 * Math.max(1, c.sd[u]));
      expect(pca.invStd[3]).toBe(0); // the constant unit
      expect(maxAbsDiff(pca.singularValues, c.singular_values)).toBeLessThan(1e-8);
      expect(maxAbsDiff(pca.explainedVarianceRatio, c.explained_variance_ratio)).toBeLessThan(1e-10);
      for (let k = 0; k < c.K; k++) {
        expect(maxAbsDiff(pca.loadings[k], c.loadings.slice(k * c.N, (k + 1) * c.N))).toBeLessThan(1e-8);
        expect(Math.abs(pca.loadings[k][3])).toBe(0);
      }
      // transform of each fitted TR = the scores U·S
      for (let t = 0; t < c.T; t++) {
        expect(maxAbsDiff(pca.transform(X[t]), c.scores.slice(t * c.K, (t + 1) * c.K))).toBeLessThan(1e-8);
      }
    });
  }

  it('loadings are orthonormal and map a component back to its heaviest units', () => {
    const c = ref.wide;
    const pca = fitUnitPca(rows(c), { components: c.K });
    for (let a = 0; a < c.K; a++) {
      for (let b = 0; b < c.K; b++) {
        let d = 0;
        for (let u = 0; u < c.N; u++) d += pca.loadings[a][u] * pca.loadings[b][u];
        expect(Math.abs(d - (a === b ? 1 : 0))).toBeLessThan(1e-10);
      }
    }
    const top = pca.topUnits(0, 3);
    expect(top[0].loading).toBeGreaterThan(0); // sign convention
    expect(top[0].loading).toBe(Math.max(...Array.from(pca.loadings[0], Math.abs)));
    expect(Math.abs(top[1].loading)).toBeLessThanOrEqual(Math.abs(top[0].loading));
    expect(() => pca.topUnits(c.K, 1)).toThrow(SyncactError);
  });

  it('finds planted components: units driven by two seeded signals', () => {
    const rng = createRng(7);
    const T = 120;
    const N = 200;
    const s1 = Array.from({ length: T }, () => rng.normal());
    const s2 = Array.from({ length: T }, () => rng.normal());
    // Units 0..119 follow s1, units 120..199 follow s2 (fewer units: the second component).
    const X = Array.from({ length: T }, (_, t) =>
      Float64Array.from({ length: N }, (_, u) => 10 + (u < 120 ? 3 * s1[t] : s2[t]) + 0.3 * rng.normal()),
    );
    const pca = fitUnitPca(X, { components: 2 });
    const weight = (k: number, lo: number, hi: number) => pca.loadings[k].slice(lo, hi).reduce((a, b) => a + b * b, 0);
    expect(weight(0, 0, 120)).toBeGreaterThan(0.95);
    expect(weight(1, 120, 200)).toBeGreaterThan(0.95);
    const scores = X.map((x) => pca.transform(x));
    const r = corr(scores.map((s) => s[0]), s1);
    expect(Math.abs(r)).toBeGreaterThan(0.99);
  });

  it('Lanczos equals the dense solver on a larger seeded problem (both shapes)', () => {
    for (const [T, N] of [
      [230, 260],
      [260, 230],
    ]) {
      const rng = createRng(T);
      const drives = Array.from({ length: 12 }, (_, k) => Float64Array.from({ length: T }, () => rng.normal() * (12 - k)));
      const mix = Array.from({ length: 12 }, () => Float64Array.from({ length: N }, () => rng.normal()));
      const X = Array.from({ length: T }, (_, t) => {
        const r = Float64Array.from({ length: N }, () => 0.3 * rng.normal() + 5);
        for (let k = 0; k < 12; k++) for (let u = 0; u < N; u++) r[u] += drives[k][t] * mix[k][u];
        return r;
      });
      const dense = fitUnitPca(X, { components: 8, solver: 'dense' });
      const lanczos = fitUnitPca(X, { components: 8 }); // the default above 200
      expect(maxAbsDiff(lanczos.singularValues, dense.singularValues)).toBeLessThan(1e-8 * dense.singularValues[0]);
      for (let k = 0; k < 8; k++) expect(maxAbsDiff(lanczos.loadings[k], dense.loadings[k])).toBeLessThan(1e-8);
    }
  });

  it('Lanczos finds both copies of a repeated eigenvalue (breakdown and restart)', () => {
    // Units 0..9 carry s1, units 10..19 carry s2, with s1 ⟂ s2: two components of equal
    // variance (any rotation of them is a valid answer), then nothing but weak noise.
    const T = 40;
    const s1 = Float64Array.from({ length: T }, (_, t) => Math.cos((2 * Math.PI * 3 * t) / T));
    const s2 = Float64Array.from({ length: T }, (_, t) => Math.sin((2 * Math.PI * 5 * t) / T));
    const X = Array.from({ length: T }, (_, t) => Float64Array.from({ length: 20 }, (_, u) => (u < 10 ? s1[t] : s2[t])));
    for (const solver of ['dense', 'lanczos'] as const) {
      const pca = fitUnitPca(X, { components: 2, solver });
      expect(Math.abs(pca.singularValues[0] - Math.sqrt(10 * T))).toBeLessThan(1e-9);
      expect(Math.abs(pca.singularValues[1] - Math.sqrt(10 * T))).toBeLessThan(1e-9);
      // Both loadings lie in span{1_{0..9}, 1_{10..19}}: constant within each group.
      for (const v of pca.loadings) {
        for (let u = 1; u < 10; u++) expect(Math.abs(v[u] - v[0])).toBeLessThan(1e-9);
        for (let u = 11; u < 20; u++) expect(Math.abs(v[u] - v[10])).toBeLessThan(1e-9);
      }
      expect(Math.abs(pca.loadings[0][0] * pca.loadings[1][0] * 10 + pca.loadings[0][10] * pca.loadings[1][10] * 10)).toBeLessThan(1e-9);
      expect(() => fitUnitPca(X, { components: 3, solver })).toThrow(/only 2 components carry variance/);
    }
  });

  it('refuses K above the units, above TRs − 1, and components without variance', () => {
    const c = ref.tall;
    expect(() => fitUnitPca(rows(c), { components: c.N + 1 })).toThrow(
      expect.objectContaining({ code: 'ENGINE_BAD_INPUT', message: `unit reduction: ${c.N + 1} components asked for but there are only ${c.N} units` }),
    );
    expect(() => fitUnitPca(rows(ref.wide), { components: 30 })).toThrow(/30 TRs support at most 29/);
    expect(() => fitUnitPca(rows(c), { components: 0 })).toThrow(SyncactError);
    // Rank 1 data: the second component does not exist.
    const rank1 = Array.from({ length: 10 }, (_, t) => Float64Array.from({ length: 6 }, (_, u) => (u + 1) * Math.sin(t)));
    expect(() => fitUnitPca(rank1, { components: 2 })).toThrow(/only 1 components carry variance/);
    expect(() => fitUnitPca([new Float64Array(3), new Float64Array(4)], { components: 1 })).toThrow(/has 4 values, expected 3/);
  });

  it('upToRank fits the components that carry variance: the same ones as asking for exactly the rank', () => {
    // 3 seeded signals mixed into 8 units: rank 3, so a fourth component does not exist.
    const rng = createRng(5);
    const T = 40;
    const signals = Array.from({ length: 3 }, () => Float64Array.from({ length: T }, () => rng.normal()));
    const mix = Array.from({ length: 8 }, () => Array.from({ length: 3 }, () => rng.normal()));
    const X = Array.from({ length: T }, (_, t) => Float64Array.from(mix, (w) => w[0] * signals[0][t] + w[1] * signals[1][t] + w[2] * signals[2][t]));
    for (const solver of ['dense', 'lanczos'] as const) {
      expect(() => fitUnitPca(X, { components: 5, solver })).toThrow(/only 3 components carry variance/);
      const capped = fitUnitPca(X, { components: 5, solver, upToRank: true });
      const exact = fitUnitPca(X, { components: 3, solver });
      expect(capped.k).toBe(3);
      expect(capped.singularValues).toHaveLength(3);
      expect(capped.explainedVarianceRatio).toHaveLength(3);
      for (let j = 0; j < 3; j++) {
        expect(Math.abs(capped.singularValues[j] - exact.singularValues[j])).toBeLessThan(1e-9 * exact.singularValues[0]);
        capped.loadings[j].forEach((v, u) => expect(Math.abs(v - exact.loadings[j][u])).toBeLessThan(1e-8));
      }
      expect(capped.explainedVarianceRatio.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 9);
    }
    expect(fitUnitReducer({ kind: 'pca', components: 5, upToRank: true }, X).k).toBe(3);
    // Rank 0 (every unit constant) has no component to give.
    const flat = Array.from({ length: 10 }, () => Float64Array.of(1, 2, 3));
    expect(() => fitUnitPca(flat, { components: 2, upToRank: true })).toThrow(/only 0 components carry variance/);
  });
});

describe('ChosenUnits', () => {
  it('returns exactly the chosen units, in the order given', () => {
    const c = ref.tall;
    const X = rows(c);
    const reducer = fitUnitReducer({ kind: 'units', units: [7, 0, 24] }, X);
    expect(reducer.k).toBe(3);
    for (const x of X) {
      const out = reducer.transform(x);
      expect(Array.from(out)).toEqual([x[7], x[0], x[24]]);
    }
    const buf = new Float64Array(3);
    expect(reducer.transform(X[1], buf)).toBe(buf);
  });

  it('refuses more units than exist, indices out of range and repeats', () => {
    expect(() => new ChosenUnits({ units: [0, 1, 2, 3], width: 3 })).toThrow(/4 regressors asked for but there are only 3 units/);
    expect(() => new ChosenUnits({ units: [3], width: 3 })).toThrow(/unit 3 is outside 0..2/);
    expect(() => new ChosenUnits({ units: [1, 1], width: 3 })).toThrow(/chosen twice/);
    expect(() => new ChosenUnits({ units: [], width: 3 })).toThrow(SyncactError);
    expect(() => new ChosenUnits({ units: [0], width: 3 }).transform(new Float64Array(2))).toThrow(/expected 3/);
  });

  it('fitUnitReducer builds a PCA from the spec', () => {
    const r = fitUnitReducer({ kind: 'pca', components: 3 }, rows(ref.tall));
    expect(r.kind).toBe('pca');
    expect(r.k).toBe(3);
  });
});

function corr(a: number[], b: number[]): number {
  const n = a.length;
  const ma = a.reduce((x, y) => x + y, 0) / n;
  const mb = b.reduce((x, y) => x + y, 0) / n;
  let sab = 0, saa = 0, sbb = 0;
  for (let i = 0; i < n; i++) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) ** 2;
    sbb += (b[i] - mb) ** 2;
  }
  return sab / Math.sqrt(saa * sbb);
}
