import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { VoxelwiseGlm, batchOls } from '../../server/engine/glm.ts';
import { SyncactError } from '../../server/errors.ts';
import { forgettingWeights, makeGlmData, maxRelError, row, volume, type GlmData } from './glmTestData.ts';

/** In-thread estimator (the worker path has its own file). */
function glmFor(d: { V: number; P: number }, forgetting = 1): VoxelwiseGlm {
  return new VoxelwiseGlm({ voxels: d.V, regressors: d.P, forgetting, workers: 0 });
}

function batchUpTo(d: GlmData, k: number, lambda: number, X = d.X, Y = d.Y) {
  return batchOls(X.subarray(0, k * d.P), Y.subarray(0, k * d.V), k, d.P, d.V, forgettingWeights(lambda, k));
}

/** The first r columns of a T×P design (the model the estimator reads out before full rank). */
function leadingColumns(X: Float64Array, T: number, P: number, r: number): Float64Array {
  const out = new Float64Array(T * r);
  for (let t = 0; t < T; t++) for (let j = 0; j < r; j++) out[t * r + j] = X[t * P + j];
  return out;
}

/** Batch fit of the first k TRs restricted to the first r columns. */
function batchLeading(d: GlmData, k: number, r: number, lambda: number, X = d.X, tolerance?: number) {
  return batchOls(leadingColumns(X, k, d.P, r), d.Y.subarray(0, k * d.V), k, r, d.V, forgettingWeights(lambda, k), tolerance);
}

/**
 * Worst relative differences of betas and t of columns j < r against a batch fit of the
 * first r columns; columns j ≥ r must read NaN.
 */
function compareLeading(glm: VoxelwiseGlm, ref: ReturnType<typeof batchOls>, V: number, P: number, r: number) {
  let betas = 0;
  let t = 0;
  for (let j = 0; j < P; j++) {
    if (j >= r) {
      expect(Array.from(glm.betas(j)).every(Number.isNaN), `betas(${j}) with r = ${r}`).toBe(true);
      expect(Array.from(glm.tmap(j)).every(Number.isNaN), `tmap(${j}) with r = ${r}`).toBe(true);
      continue;
    }
    const want = ref.betas.subarray(j * V, (j + 1) * V);
    expect(Number.isNaN(want[0]), `batch of the first ${r} columns is defined`).toBe(false);
    const scale = Math.max(...Array.from(want, Math.abs).filter(Number.isFinite), 1e-300);
    betas = Math.max(betas, maxRelError(glm.betas(j), want, 1e-3 * scale));
    t = Math.max(t, maxRelError(glm.tmap(j), ref.t.subarray(j * V, (j + 1) * V), 1e-2));
  }
  return { betas, t };
}

/** Worst relative differences of every read-out against the batch fit of the same TRs. */
function compare(glm: VoxelwiseGlm, ref: ReturnType<typeof batchOls>, d: { V: number; P: number }) {
  let betas = 0;
  let t = 0;
  for (let j = 0; j < d.P; j++) {
    const want = ref.betas.subarray(j * d.V, (j + 1) * d.V);
    // Floor: a beta that is near 0 by chance is compared against its column's scale.
    const scale = Math.max(...Array.from(want, Math.abs).filter(Number.isFinite), 1e-300);
    betas = Math.max(betas, maxRelError(glm.betas(j), want, 1e-3 * scale));
    t = Math.max(t, maxRelError(glm.tmap(j), ref.t.subarray(j * d.V, (j + 1) * d.V), 1e-2));
  }
  // With df = 0 the RSS is 0 up to the rounding of Σy² (~1e6 per TR here): floor at 1e-8 of it.
  const rss = maxRelError(glm.rss(), ref.rss, 1e-8 * 1e6 * glm.count);
  return { betas, t, rss };
}

describe('VoxelwiseGlm against its batch twin', () => {
  for (const lambda of [1, 0.9]) {
    it(`equals ${lambda === 1 ? 'batch OLS' : `weighted batch LS (λ = ${lambda})`} after every TR; before full rank, the fit of the leading identifiable columns`, () => {
      const d = makeGlmData(11, 70, 4, 31); // odd V: the two-voxel kernel's tail runs too
      const glm = glmFor(d, lambda);
      let fittedAt = -1;
      for (let k = 1; k <= d.T; k++) {
        glm.update(row(d.X, k - 1, d.P), volume(d.Y, k - 1, d.V));
        expect(glm.count).toBe(k);
        const ref = batchUpTo(d, k, lambda);
        const batchFitted = !Number.isNaN(ref.betas[0]);
        expect(glm.fitted).toBe(batchFitted);
        if (!batchFitted) {
          // Random rows: each TR adds one identifiable column until all P are.
          const r = glm.identifiableColumns;
          expect(r).toBe(k);
          const err = compareLeading(glm, batchLeading(d, k, r, lambda), d.V, d.P, r);
          expect(err.betas, `leading betas at TR ${k}`).toBeLessThan(1e-5);
          expect(err.t, `leading t at TR ${k}`).toBeLessThan(1e-4);
          expect(Array.from(glm.rss()).every(Number.isNaN)).toBe(true);
          expect(glm.degreesOfFreedom()).toBeNaN();
          continue;
        }
        expect(glm.identifiableColumns).toBe(d.P);
        if (fittedAt < 0) fittedAt = k;
        const err = compare(glm, ref, d);
        expect(err.betas, `betas at TR ${k}`).toBeLessThan(1e-5);
        expect(err.t, `t at TR ${k}`).toBeLessThan(1e-4);
        expect(err.rss, `rss at TR ${k}`).toBeLessThan(1e-6);
      }
      // P = 7 columns: full rank from the 7th TR on, and defined t from the 8th.
      expect(fittedAt).toBe(d.P);
    });
  }

  it('reports df = T − P with λ = 1 and Σw − tr(Φ⁻¹Φ₂) with λ < 1', () => {
    const d = makeGlmData(12, 40, 3, 5);
    const ols = glmFor(d);
    const wls = glmFor(d, 0.8);
    for (let k = 1; k <= d.T; k++) {
      ols.update(row(d.X, k - 1, d.P), volume(d.Y, k - 1, d.V));
      wls.update(row(d.X, k - 1, d.P), volume(d.Y, k - 1, d.V));
      if (k < d.P) expect(ols.degreesOfFreedom()).toBeNaN();
      else expect(ols.degreesOfFreedom()).toBeCloseTo(k - d.P, 9);
    }
    // Effective df under forgetting: below Σw − P (weights downweight the leverage less).
    const sw = (1 - 0.8 ** d.T) / (1 - 0.8);
    expect(wls.degreesOfFreedom()).toBeGreaterThan(0);
    expect(wls.degreesOfFreedom()).toBeLessThan(sw);
  });

  it('matches batch OLS within 1e-6 from its first full-rank TR on a design with slow cosine drifts (ill-conditioned early)', () => {
    // Intercept + 4 DCT drifts of a 300-TR run + 20 smooth units: over the first TRs the
    // drifts are nearly polynomials, so the design reaches full rank late and
    // ill-conditioned; the exact start must still agree with QR to float32 precision.
    const T = 300;
    const K = 20;
    const V = 12;
    const P = K + 5;
    const base = makeGlmData(51, T, K, V);
    const X = new Float64Array(T * P);
    for (let t = 0; t < T; t++) {
      X[t * P] = 1;
      for (let d = 1; d <= 4; d++) X[t * P + d] = Math.cos((Math.PI * d * (t + 0.5)) / T);
      for (let k = 0; k < K; k++) X[t * P + 5 + k] = base.X[t * base.P + 3 + k];
    }
    const d: GlmData = { T, P, V, X, Y: base.Y };
    const glm = glmFor(d);
    let first = -1;
    for (let k = 1; k <= T; k++) {
      glm.update(row(X, k - 1, P), volume(d.Y, k - 1, V));
      if (!glm.fitted) continue;
      if (first < 0) first = k;
      if (k > first + 10 && k % 25) continue;
      const err = compare(glm, batchUpTo(d, k, 1), d);
      expect(err.betas, `betas at TR ${k}`).toBeLessThan(1e-6);
      expect(err.rss, `rss at TR ${k}`).toBeLessThan(1e-6);
    }
    expect(first).toBeGreaterThan(P); // the drifts did delay full rank

    // A stricter rankTolerance (the old Cholesky/RLS default) fits later, on the same TR as
    // the batch twin told the same; QR needs no such margin for accuracy.
    const strict = new VoxelwiseGlm({ voxels: V, regressors: P, workers: 0, rankTolerance: 1e-6 });
    let strictFirst = -1;
    let worst = 0;
    for (let k = 1; k <= 120; k++) {
      strict.update(row(X, k - 1, P), volume(d.Y, k - 1, V));
      const ref = batchOls(X.subarray(0, k * P), d.Y.subarray(0, k * V), k, P, V, undefined, 1e-6);
      expect(strict.fitted).toBe(!Number.isNaN(ref.betas[0]));
      if (!strict.fitted) continue;
      if (strictFirst < 0) strictFirst = k;
      worst = Math.max(worst, compare(strict, ref, d).betas);
    }
    expect(strictFirst).toBeGreaterThan(first);
    expect(worst).toBeLessThan(1e-6);
  });

  it('with units first and drifts last (the coupling design), reads unit maps long before full rank, equal to the fit without the drifts', () => {
    // [20 smooth units, intercept, 4 DCT drifts of a 300-TR run]: the units are
    // identifiable from TR 20 on; the drifts separate only much later.
    const T = 300;
    const K = 20;
    const V = 12;
    const P = K + 5;
    const base = makeGlmData(52, T, K, V);
    const X = new Float64Array(T * P);
    for (let t = 0; t < T; t++) {
      for (let k = 0; k < K; k++) X[t * P + k] = base.X[t * base.P + 3 + k];
      X[t * P + K] = 1;
      for (let d = 1; d <= 4; d++) X[t * P + K + d] = Math.cos((Math.PI * d * (t + 0.5)) / T);
    }
    const d: GlmData = { T, P, V, X, Y: base.Y };
    const glm = glmFor(d);
    let unitsFrom = -1;
    let fullFrom = -1;
    let worstEarly = 0;
    for (let k = 1; k <= T; k++) {
      glm.update(row(X, k - 1, P), volume(d.Y, k - 1, V));
      const r = glm.identifiableColumns;
      if (r >= K && unitsFrom < 0) unitsFrom = k;
      if (glm.fitted && fullFrom < 0) fullFrom = k;
      if (!glm.fitted) {
        if (r === 0) continue;
        const err = compareLeading(glm, batchLeading(d, k, r, 1), V, P, r);
        worstEarly = Math.max(worstEarly, err.betas);
        expect(err.betas, `leading betas at TR ${k} (r = ${r})`).toBeLessThan(1e-6);
        expect(err.t, `leading t at TR ${k} (r = ${r})`).toBeLessThan(1e-5);
        continue;
      }
      if (k > fullFrom + 10 && k % 25) continue;
      const err = compare(glm, batchUpTo(d, k, 1), d);
      expect(err.betas, `betas at TR ${k}`).toBeLessThan(1e-6);
      expect(err.t, `t at TR ${k}`).toBeLessThan(1e-5);
    }
    expect(unitsFrom).toBe(K);
    expect(fullFrom).toBeGreaterThan(K + 20); // the drifts really were late
    expect(worstEarly).toBeGreaterThan(0); // the early read-outs were compared
  });

  it('stays within 1e-6 of batch OLS over a long run with BOLD-sized offsets', () => {
    const d = makeGlmData(13, 600, 5, 9);
    const glm = glmFor(d);
    for (let k = 1; k <= d.T; k++) glm.update(row(d.X, k - 1, d.P), volume(d.Y, k - 1, d.V));
    const err = compare(glm, batchUpTo(d, d.T, 1), d);
    expect(err.betas).toBeLessThan(1e-6);
    expect(err.t).toBeLessThan(1e-5);
    expect(err.rss).toBeLessThan(1e-8);
  });
});

describe('VoxelwiseGlm and batchOls against numpy (test/reference/glm_reference.py)', () => {
  const ref = JSON.parse(readFileSync(new URL('../reference/glm_reference.json', import.meta.url), 'utf8')) as {
    T: number;
    P: number;
    V: number;
    X: number[];
    Y: number[];
    fits: { forgetting: number; df: number; betas: number[]; rss: number[]; t: number[] }[];
  };
  const X = Float64Array.from(ref.X);
  const Y = Float32Array.from(ref.Y);
  const { T, P, V } = ref;
  for (const fit of ref.fits) {
    it(`matches numpy lstsq with forgetting ${fit.forgetting}`, () => {
      const batch = batchOls(X, Y, T, P, V, forgettingWeights(fit.forgetting, T));
      expect(maxRelError(batch.betas, fit.betas, 1e-6)).toBeLessThan(1e-8);
      expect(maxRelError(batch.rss, fit.rss, 0)).toBeLessThan(1e-8);
      expect(maxRelError(batch.t, fit.t, 1e-6)).toBeLessThan(1e-8);

      const glm = new VoxelwiseGlm({ voxels: V, regressors: P, forgetting: fit.forgetting, workers: 0 });
      for (let k = 0; k < T; k++) glm.update(row(X, k, P), volume(Y, k, V));
      expect(glm.degreesOfFreedom()).toBeCloseTo(fit.df, 9);
      for (let j = 0; j < P; j++) {
        expect(maxRelError(glm.betas(j), fit.betas.slice(j * V, (j + 1) * V), 1e-3)).toBeLessThan(1e-6);
        expect(maxRelError(glm.tmap(j), fit.t.slice(j * V, (j + 1) * V), 1e-3)).toBeLessThan(1e-6);
      }
      expect(maxRelError(glm.rss(), fit.rss, 0)).toBeLessThan(1e-8);
    });
  }
});

describe('VoxelwiseGlm snapshots', () => {
  for (const [label, at] of [
    ['in warm-up', 4],
    ['once fitted', 25],
  ] as const) {
    it(`restore() ${label} then continuing equals the uninterrupted run`, () => {
      const d = makeGlmData(21, 50, 4, 17);
      const straight = glmFor(d, 0.95);
      const resumed = glmFor(d, 0.95);
      let snap = straight.snapshot();
      for (let k = 0; k < d.T; k++) {
        if (k === at) snap = straight.snapshot();
        straight.update(row(d.X, k, d.P), volume(d.Y, k, d.V));
      }
      // Feed `resumed` other data first, so restore must really replace its state.
      for (let k = 0; k < 30; k++) resumed.update(row(d.X, k, d.P), volume(d.Y, (k + 7) % d.T, d.V));
      resumed.restore(snap);
      expect(resumed.count).toBe(at);
      for (let k = at; k < d.T; k++) resumed.update(row(d.X, k, d.P), volume(d.Y, k, d.V));
      expect(resumed.count).toBe(straight.count);
      for (let j = 0; j < d.P; j++) {
        expect(resumed.betas(j)).toEqual(straight.betas(j));
        expect(resumed.tmap(j)).toEqual(straight.tmap(j));
      }
      expect(resumed.rss()).toEqual(straight.rss());
    });
  }

  it('snapshots are copies, not views of the live state', () => {
    const d = makeGlmData(22, 20, 2, 6);
    const glm = glmFor(d);
    for (let k = 0; k < 10; k++) glm.update(row(d.X, k, d.P), volume(d.Y, k, d.V));
    const snap = glm.snapshot();
    const kept = (snap.arrays.z as Float64Array).slice();
    glm.update(row(d.X, 10, d.P), volume(d.Y, 10, d.V));
    expect(snap.arrays.z).toEqual(kept);
  });

  it('rejects snapshots of another kind, version or size with ENGINE_SNAPSHOT_MISMATCH', () => {
    const glm = new VoxelwiseGlm({ voxels: 4, regressors: 2, workers: 0 });
    const other = new VoxelwiseGlm({ voxels: 5, regressors: 2, workers: 0 }).snapshot();
    const good = glm.snapshot();
    const bad = [
      other,
      { ...good, kind: 'cka' },
      { ...good, version: 99 },
      { ...good, version: 1 }, // the Cholesky/RLS state of the estimator before QR
      { ...good, arrays: { ...good.arrays, factor: new Float32Array(4) } },
      { ...good, arrays: { ...good.arrays, z: new Float64Array(3) } },
      { ...good, scalars: { ...good.scalars, forgetting: 0.5 } },
      { ...good, scalars: { ...good.scalars, rankTolerance: 1e-3 } },
    ];
    for (const s of bad) {
      expect(() => glm.restore(s)).toThrow(SyncactError);
      try {
        glm.restore(s);
      } catch (e) {
        expect((e as SyncactError).code).toBe('ENGINE_SNAPSHOT_MISMATCH');
        expect((e as SyncactError).message).toMatch(/^VoxelwiseGlm\.restore: /);
      }
    }
  });
});

describe('VoxelwiseGlm with degenerate designs and data', () => {
  it('reads NaN (never throws) from a duplicated column on while it keeps the design rank-deficient, the fit without it before, then matches batch', () => {
    const d = makeGlmData(31, 40, 3, 8);
    const X = d.X.slice();
    // Column 4 copies column 3 for the first 15 TRs.
    for (let t = 0; t < 15; t++) X[t * d.P + 4] = X[t * d.P + 3];
    const glm = glmFor(d);
    for (let k = 1; k <= d.T; k++) {
      glm.update(row(X, k - 1, d.P), volume(d.Y, k - 1, d.V));
      if (k <= 15) {
        expect(glm.fitted).toBe(false);
        const r = glm.identifiableColumns;
        expect(r).toBe(Math.min(k, 4));
        expect(Array.from(glm.tmap(4)).every(Number.isNaN)).toBe(true);
        expect(compareLeading(glm, batchLeading(d, k, r, 1, X), d.V, d.P, r).betas).toBeLessThan(1e-5);
      } else {
        const err = compare(glm, batchUpTo(d, k, 1, X), d);
        expect(err.betas).toBeLessThan(1e-5);
      }
    }
    expect(glm.fitted).toBe(true);
  });

  it('never fits a design with a column of zeros', () => {
    const d = makeGlmData(32, 30, 2, 4);
    const X = d.X.slice();
    for (let t = 0; t < d.T; t++) X[t * d.P + 3] = 0;
    const glm = glmFor(d);
    for (let k = 0; k < d.T; k++) glm.update(row(X, k, d.P), volume(d.Y, k, d.V));
    expect(glm.fitted).toBe(false);
    expect(glm.count).toBe(d.T);
    expect(Array.from(glm.rss()).every(Number.isNaN)).toBe(true);
    expect(glm.degreesOfFreedom()).toBeNaN();
  });

  it('with forgetting, goes back to NaN when the remembered design loses rank and re-fits exactly when it regains it', () => {
    const lambda = 0.5;
    const d = makeGlmData(33, 90, 3, 8);
    const X = d.X.slice();
    // TRs 20..59: column 5 follows column 4 exactly, so the weighted design forgets
    // their difference (λ^40 ≈ 1e-12) and loses rank; from TR 60 they differ again.
    for (let t = 20; t < 60; t++) X[t * d.P + 5] = X[t * d.P + 4];
    const glm = glmFor(d, lambda);
    const states: boolean[] = [];
    for (let k = 1; k <= d.T; k++) {
      glm.update(row(X, k - 1, d.P), volume(d.Y, k - 1, d.V));
      states.push(glm.fitted);
      const ref = batchUpTo(d, k, lambda, X);
      const batchFitted = !Number.isNaN(ref.betas[0]);
      // Right at the rank threshold the two routes may round differently: only compare
      // where both agree that the design is full rank.
      if (glm.fitted && batchFitted) {
        const err = compare(glm, ref, d);
        expect(err.betas, `betas at TR ${k}`).toBeLessThan(1e-5);
        expect(err.rss, `rss at TR ${k}`).toBeLessThan(1e-6);
      }
      if (!glm.fitted) {
        // Column 5 is the one forgotten: the columns before it are the fit without it.
        const r = glm.identifiableColumns;
        expect(r).toBe(Math.min(k, 5));
        expect(Array.from(glm.betas(5)).every(Number.isNaN)).toBe(true);
        expect(compareLeading(glm, batchLeading(d, k, r, lambda, X), d.V, d.P, r).betas).toBeLessThan(1e-5);
      }
    }
    expect(states[30]).toBe(true); // fitted before the columns merged
    expect(states[58]).toBe(false); // rank forgotten while they were equal
    expect(states[d.T - 1]).toBe(true); // and fitted again after they parted
  });

  it('gives a constant voxel its value as intercept, 0 elsewhere, RSS 0 and t NaN', () => {
    const d = makeGlmData(34, 30, 2, 5);
    const Y = d.Y.slice();
    for (let t = 0; t < d.T; t++) Y[t * d.V + 2] = 1234.5;
    const glm = glmFor(d);
    for (let k = 0; k < d.T; k++) glm.update(row(d.X, k, d.P), volume(Y, k, d.V));
    expect(glm.betas(0)[2]).toBeCloseTo(1234.5, 6);
    for (let j = 1; j < d.P; j++) expect(Math.abs(glm.betas(j)[2])).toBeLessThan(1e-6);
    expect(glm.rss()[2]).toBeLessThan(1e-6);
    for (let j = 0; j < d.P; j++) expect(glm.tmap(j)[2]).toBeNaN();
    // The neighbours are untouched.
    expect(Number.isFinite(glm.tmap(1)[1]) && Number.isFinite(glm.tmap(1)[3])).toBe(true);
  });

  it('retires a voxel from its first NaN or Infinity on, without touching the others', () => {
    const d = makeGlmData(35, 40, 3, 9);
    const Y = d.Y.slice();
    Y[3 * d.V + 1] = NaN; // in warm-up
    Y[25 * d.V + 6] = Infinity; // once fitted
    const glm = glmFor(d);
    for (let k = 1; k <= d.T; k++) {
      glm.update(row(d.X, k - 1, d.P), volume(Y, k - 1, d.V));
      if (!glm.fitted) continue;
      const rss = glm.rss();
      expect(rss[1]).toBeNaN();
      expect(Number.isNaN(rss[6])).toBe(k >= 26);
      for (let j = 0; j < d.P; j++) {
        expect(glm.betas(j)[1]).toBeNaN();
        expect(Number.isNaN(glm.tmap(j)[6])).toBe(k >= 26 || k === d.P);
      }
      // Every other voxel equals the batch fit of the clean data.
      const ref = batchUpTo(d, k, 1);
      for (const v of [0, 2, 3, 4, 5, 7, 8]) {
        for (let j = 0; j < d.P; j++) {
          const want = ref.betas[j * d.V + v];
          expect(Math.abs(glm.betas(j)[v] - want)).toBeLessThan(1e-5 * (Math.abs(want) + 1));
        }
      }
    }
  });

  it('does not modify its inputs', () => {
    const d = makeGlmData(36, 20, 2, 7);
    const X = d.X.slice();
    const Y = d.Y.slice();
    Y[5 * d.V + 3] = NaN;
    const glm = glmFor(d, 0.9);
    const Ycopy = Y.slice();
    for (let k = 0; k < d.T; k++) glm.update(X.subarray(k * d.P, (k + 1) * d.P), Y.subarray(k * d.V, (k + 1) * d.V));
    expect(X).toEqual(d.X);
    expect(Y).toEqual(Ycopy);
    const Xcopy = X.slice();
    batchOls(X, Y, d.T, d.P, d.V, forgettingWeights(0.9, d.T));
    expect(X).toEqual(Xcopy);
    expect(Y).toEqual(Ycopy);
  });

  it('reuses `out` arrays', () => {
    const d = makeGlmData(37, 20, 2, 7);
    const glm = glmFor(d);
    for (let k = 0; k < d.T; k++) glm.update(row(d.X, k, d.P), volume(d.Y, k, d.V));
    const out = new Float32Array(d.V);
    expect(glm.betas(2, out)).toBe(out);
    expect(out).toEqual(glm.betas(2));
    expect(glm.tmap(2, out)).toBe(out);
    const rssOut = new Float64Array(d.V);
    expect(glm.rss(rssOut)).toBe(rssOut);
  });
});

describe('VoxelwiseGlm bad input', () => {
  const code = (f: () => unknown): string | undefined => {
    try {
      f();
    } catch (e) {
      expect(e).toBeInstanceOf(SyncactError);
      return (e as SyncactError).code;
    }
    return undefined;
  };

  it('rejects impossible options with ENGINE_BAD_INPUT', () => {
    for (const o of [
      { voxels: 0, regressors: 3 },
      { voxels: 10, regressors: 0 },
      { voxels: 1.5, regressors: 3 },
      { voxels: 10, regressors: 3, forgetting: 0 },
      { voxels: 10, regressors: 3, forgetting: 1.01 },
      { voxels: 10, regressors: 3, forgetting: NaN },
      { voxels: 10, regressors: 3, workers: -1 },
      { voxels: 10, regressors: 3, rankTolerance: 0 },
      { voxels: 10, regressors: 3, rankTolerance: 1 },
    ]) {
      expect(code(() => new VoxelwiseGlm(o))).toBe('ENGINE_BAD_INPUT');
    }
  });

  it('rejects wrong lengths, a non-finite design, bad columns and use after dispose()', () => {
    const glm = new VoxelwiseGlm({ voxels: 4, regressors: 2, workers: 0 });
    expect(code(() => glm.update(new Float64Array(3), new Float32Array(4)))).toBe('ENGINE_BAD_INPUT');
    expect(code(() => glm.update(new Float64Array(2), new Float32Array(5)))).toBe('ENGINE_BAD_INPUT');
    expect(code(() => glm.update(Float64Array.of(1, NaN), new Float32Array(4)))).toBe('ENGINE_BAD_INPUT');
    expect(glm.count).toBe(0);
    expect(code(() => glm.betas(2))).toBe('ENGINE_BAD_INPUT');
    expect(code(() => glm.tmap(-1))).toBe('ENGINE_BAD_INPUT');
    expect(code(() => glm.betas(0, new Float32Array(3)))).toBe('ENGINE_BAD_INPUT');
    expect(() => glm.update(Float64Array.of(1, 2), new Float32Array(4))).not.toThrow();
    glm.dispose();
    expect(code(() => glm.update(Float64Array.of(1, 2), new Float32Array(4)))).toBe('ENGINE_BAD_INPUT');
  });

  it('batchOls rejects wrong sizes and bad weights', () => {
    const X = new Float64Array(6);
    const Y = new Float32Array(6);
    expect(code(() => batchOls(X, Y, 3, 3, 2))).toBe('ENGINE_BAD_INPUT');
    expect(code(() => batchOls(X, Y, 3, 2, 2, Float64Array.of(1, -1, 1)))).toBe('ENGINE_BAD_INPUT');
    expect(code(() => batchOls(X, Y, 3, 2, 2, Float64Array.of(1, 1)))).toBe('ENGINE_BAD_INPUT');
    // Fewer TRs than columns is not an error: NaN.
    expect(Array.from(batchOls(X, Y, 2, 3, 3).betas).every(Number.isNaN)).toBe(true);
  });
});
