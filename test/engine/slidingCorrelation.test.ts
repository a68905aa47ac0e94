import { describe, it, expect } from 'vitest';
import {
  SlidingCorrelation,
  batchWindowCorrelation,
  batchExponentialCorrelation,
} from '../../server/engine/slidingCorrelation.ts';
import { createRng } from '../../server/engine/random.ts';
import { SyncactError } from '../../server/errors.ts';
import type { NullPool } from '../../server/engine/slidingCorrelation.ts';
import { POOL_BINS } from '../../server/engine/slidingCorrelation.ts';

/**
 * Seeded series: units are AR(1) around large offsets (like raw BOLD), features mix
 * some units in so that correlations span (−1, 1).
 */
function makeSeries(seed: number, T: number, U: number, F: number, phi = 0.6) {
  const rng = createRng(seed);
  const units: Float64Array[] = [];
  const features: Float64Array[] = [];
  const su = new Float64Array(U);
  const sf = new Float64Array(F);
  for (let t = 0; t < T; t++) {
    const u = new Float64Array(U);
    const f = new Float64Array(F);
    for (let i = 0; i < U; i++) {
      su[i] = phi * su[i] + rng.normal();
      u[i] = 1000 + 50 * i + 10 * su[i];
    }
    for (let j = 0; j < F; j++) {
      sf[j] = phi * sf[j] + rng.normal();
      f[j] = 500 + sf[j] + 0.8 * ((j % 3) - 1) * su[j % U];
    }
    units.push(u);
    features.push(f);
  }
  return { units, features };
}

function maxAbsDiff(a: Float64Array, b: Float64Array): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) {
    if (Number.isNaN(a[i]) || Number.isNaN(b[i])) {
      expect(Number.isNaN(a[i]), `NaN mismatch at ${i}`).toBe(Number.isNaN(b[i]));
      continue;
    }
    d = Math.max(d, Math.abs(a[i] - b[i]));
  }
  return d;
}

describe('SlidingCorrelation: rectangular window', () => {
  it('equals the batch twin at every TR over 500 TRs with periodic re-sync', () => {
    const U = 5, F = 7, W = 20, T = 500;
    const { units, features } = makeSeries(1, T, U, F);
    const est = new SlidingCorrelation({ units: U, features: F, window: W, resyncEvery: 7 });
    let worst = 0;
    for (let k = 0; k < T; k++) {
      est.update(units[k], features[k]);
      expect(est.count).toBe(k + 1);
      const r = est.correlations();
      const ref = batchWindowCorrelation(units, features, k, W);
      if (k < 2) expect(Array.from(r).every(Number.isNaN)).toBe(true);
      else expect(Array.from(r).every(Number.isFinite)).toBe(true);
      worst = Math.max(worst, maxAbsDiff(r, ref));
    }
    expect(worst).toBeLessThan(1e-8);
    expect(est.resyncDrift).toBeGreaterThanOrEqual(0);
    expect(est.resyncDrift).toBeLessThan(1e-10);
  });

  it('re-sync removes the drift a huge transient leaves in the running sums, and reports it', () => {
    const U = 2, F = 2, W = 5, T = 60, R = 25;
    const { units, features } = makeSeries(15, T, U, F);
    units[8][0] = 1e9; // Σu² holds 1e18 while it is in the window: the small terms are lost
    const est = new SlidingCorrelation({ units: U, features: F, window: W, resyncEvery: R });
    const never = new SlidingCorrelation({ units: U, features: F, window: W, resyncEvery: 10 * T });
    for (let k = 0; k < T; k++) {
      est.update(units[k], features[k]);
      never.update(units[k], features[k]);
      const exact = batchWindowCorrelation(units, features, k, W);
      if (k === R - 1) {
        // Re-sync just ran: the reported drift is the error the estimator without re-sync still has.
        const error = maxAbsDiff(never.correlations(), exact);
        expect(error).toBeGreaterThan(1e-3);
        expect(est.resyncDrift).toBeCloseTo(error, 10);
      }
      if (k >= R - 1) expect(maxAbsDiff(est.correlations(), exact)).toBeLessThan(1e-8);
    }
    expect(maxAbsDiff(never.correlations(), batchWindowCorrelation(units, features, T - 1, W))).toBeGreaterThan(1e-3);
    expect(est.resyncDrift).toBeLessThan(1e-10); // the next re-sync found nothing left
  });

  it('uses the TRs available before the window fills (r over k+1 TRs from 3 samples)', () => {
    const { units, features } = makeSeries(2, 10, 2, 3);
    const est = new SlidingCorrelation({ units: 2, features: 3, window: 8 });
    for (let k = 0; k < 6; k++) est.update(units[k], features[k]);
    const r = est.correlations();
    // Compare with a window of exactly 6 TRs: [0..5].
    const ref = batchWindowCorrelation(units, features, 5, 6);
    expect(maxAbsDiff(r, ref)).toBeLessThan(1e-10);
  });

  it('gives NaN for a constant window and recovers when it varies again', () => {
    const U = 2, F = 2, W = 5;
    const est = new SlidingCorrelation({ units: U, features: F, window: W });
    const rng = createRng(3);
    const units: Float64Array[] = [];
    const features: Float64Array[] = [];
    for (let k = 0; k < 20; k++) {
      // unit 1 is constant for TRs 0..11, then varies.
      units.push(Float64Array.of(rng.normal(), k < 12 ? 0.1 : rng.normal()));
      features.push(Float64Array.of(rng.normal(), 7));
      est.update(units[k], features[k]);
      const r = est.correlations();
      if (k >= 2) {
        expect(r[0 * F + 1]).toBeNaN(); // feature 1 is always constant
        if (k < 12) expect(r[1 * F + 0]).toBeNaN();
        expect(Number.isFinite(r[0])).toBe(true);
        expect(maxAbsDiff(r, batchWindowCorrelation(units, features, k, W))).toBeLessThan(1e-8);
      }
    }
    expect(Number.isFinite(est.correlations()[1 * F + 0])).toBe(true);
  });

  it('a missing sample makes its series NaN while it is in the window, like the batch twin', () => {
    const U = 3, F = 4, W = 6, T = 40;
    const { units, features } = makeSeries(4, T, U, F);
    units[10][1] = NaN;
    features[15][2] = Infinity;
    features[16][0] = NaN;
    units[17][0] = NaN;
    const est = new SlidingCorrelation({ units: U, features: F, window: W, resyncEvery: 4 });
    for (let k = 0; k < T; k++) {
      est.update(units[k], features[k]);
      const r = est.correlations();
      const inWindow = (t: number) => t <= k && t > k - W;
      if (k >= 2) {
        expect(Number.isNaN(r[1 * F + 3])).toBe(inWindow(10));
        expect(Number.isNaN(r[0 * F + 2])).toBe(inWindow(15) || inWindow(17));
        expect(maxAbsDiff(r, batchWindowCorrelation(units, features, k, W))).toBeLessThan(1e-8);
      }
    }
    // Long after the missing samples, every pair is defined again.
    expect(Array.from(est.correlations()).every(Number.isFinite)).toBe(true);
  });

  it('rejects inputs of the wrong length and bad options with typed errors', () => {
    const est = new SlidingCorrelation({ units: 2, features: 3, window: 5 });
    try {
      est.update(new Float64Array(2), new Float64Array(4));
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(SyncactError);
      expect((e as SyncactError).code).toBe('ENGINE_BAD_INPUT');
      expect((e as SyncactError).message).toMatch(/expected 2 units and 3 features, got 2 and 4/);
    }
    expect(() => new SlidingCorrelation({ units: 2, features: 3, window: 2 })).toThrow(/window must be an integer ≥ 3/);
    expect(
      () => new SlidingCorrelation({ units: 2, features: 3, window: 5, weighting: { kind: 'exponential', halfLife: 0 } }),
    ).toThrow(/halfLife/);
    expect(
      () => new SlidingCorrelation({ units: 2, features: 3, window: 5, nulls: { shifts: 10, seed: 1, minShift: 5, maxShift: 10 } }),
    ).toThrow(/10 distinct null shifts do not fit/);
    expect(() => est.correlations(new Float64Array(5))).toThrow(/output array has length 5, expected 6/);
  });
});

describe('SlidingCorrelation: exponential weighting', () => {
  it('equals the weighted batch twin at every TR', () => {
    const U = 4, F = 5, T = 200, halfLife = 9;
    const { units, features } = makeSeries(5, T, U, F);
    const est = new SlidingCorrelation({ units: U, features: F, window: 20, weighting: { kind: 'exponential', halfLife } });
    let worst = 0;
    for (let k = 0; k < T; k++) {
      est.update(units[k], features[k]);
      const r = est.correlations();
      worst = Math.max(worst, maxAbsDiff(r, batchExponentialCorrelation(units, features, k, halfLife)));
    }
    expect(worst).toBeLessThan(1e-8);
    expect(est.resyncDrift).toBe(0);
  });

  it('differs from the rectangular estimate (the weighting is really applied)', () => {
    const { units, features } = makeSeries(6, 60, 2, 2);
    const e = batchExponentialCorrelation(units, features, 59, 3);
    const r = batchWindowCorrelation(units, features, 59, 60);
    expect(maxAbsDiff(e, r)).toBeGreaterThan(1e-3);
  });

  it('imputes a missing sample with the running weighted mean and stays defined', () => {
    const U = 2, F = 3, T = 50;
    const { units, features } = makeSeries(7, T, U, F);
    units[20][0] = NaN;
    features[21][1] = -Infinity;
    const est = new SlidingCorrelation({ units: U, features: F, window: 10, weighting: { kind: 'exponential', halfLife: 5 } });
    for (let k = 0; k < T; k++) {
      est.update(units[k], features[k]);
      if (k >= 2) expect(Array.from(est.correlations()).every(Number.isFinite)).toBe(true);
    }
  });
});

/** Brute-force p-values from the lags, via the batch twin on lagged unit series. */
function bruteForceP(
  units: Float64Array[],
  features: Float64Array[],
  k: number,
  W: number,
  lags: Int32Array,
  halfLife?: number,
  pool: NullPool = 'pair',
): Float64Array {
  const r = halfLife ? batchExponentialCorrelation(units, features, k, halfLife) : batchWindowCorrelation(units, features, k, W);
  const F = features[0].length;
  const U = units[0].length;
  const nulls: Float64Array[] = [];
  for (const s of lags) {
    if (k + 1 - s < W) continue;
    if (halfLife) {
      nulls.push(batchExponentialCorrelation(units.slice(0, k + 1 - s), features.slice(s, k + 1), k - s, halfLife));
    } else {
      const lu = units.slice(k - W + 1 - s, k + 1 - s);
      const lf = features.slice(k - W + 1, k + 1);
      nulls.push(batchWindowCorrelation(lu, lf, W - 1, W));
    }
  }
  const bin = (v: number) => (v < 1 ? Math.floor(v * POOL_BINS) : POOL_BINS - 1);
  const p = new Float64Array(r.length);
  for (let q = 0; q < r.length; q++) {
    const a = Math.abs(r[q]);
    if (nulls.length === 0 || Number.isNaN(a)) {
      p[q] = NaN;
      continue;
    }
    let exceed = 0;
    let m = 0;
    if (pool === 'pair') {
      for (const rn of nulls) {
        m++;
        if (!(Math.abs(rn[q]) < a)) exceed++;
      }
    } else {
      const i = Math.floor(q / F);
      const from = pool === 'unit' ? i * F : 0;
      const to = pool === 'unit' ? (i + 1) * F : U * F;
      for (const rn of nulls) {
        for (let c = from; c < to; c++) {
          m++;
          const v = Math.abs(rn[c]);
          if ((Number.isNaN(v) ? POOL_BINS - 1 : bin(v)) >= bin(a)) exceed++;
        }
      }
    }
    p[q] = (1 + exceed) / (1 + m);
  }
  return p;
}

/** AR(1) noise units and features; features [0, planted) follow unit (f mod 2). */
function* noiseStream(seed: number, U: number, F: number, planted = 0) {
  const rng = createRng(seed);
  const au = new Float64Array(U);
  const af = new Float64Array(F);
  for (;;) {
    for (let i = 0; i < U; i++) au[i] = 0.5 * au[i] + rng.normal();
    for (let f = 0; f < F; f++) af[f] = 0.5 * af[f] + rng.normal();
    const feat = af.slice();
    for (let f = 0; f < planted; f++) feat[f] = au[f % 2] + 0.3 * af[f];
    yield { units: au.slice(), features: feat };
  }
}

describe('SlidingCorrelation: lagged nulls', () => {
  it('p-values equal a brute-force computation from the same lags (rectangular)', () => {
    const U = 3, F = 4, W = 12, T = 150;
    const { units, features } = makeSeries(8, T, U, F);
    const est = new SlidingCorrelation({ units: U, features: F, window: W, resyncEvery: 5, nulls: { shifts: 15, seed: 99 } });
    const lags = est.shiftLags;
    expect(lags.length).toBe(15);
    expect(new Set(lags).size).toBe(15);
    for (const s of lags) {
      expect(s).toBeGreaterThanOrEqual(W);
      expect(s).toBeLessThanOrEqual(W + 2 * 15 - 1);
    }
    let compared = 0;
    for (let k = 0; k < T; k++) {
      est.update(units[k], features[k]);
      const p = est.pValues();
      const ref = bruteForceP(units, features, k, W, lags);
      if (k < W - 1 + lags[0]) expect(Array.from(p).every(Number.isNaN)).toBe(true);
      for (let q = 0; q < p.length; q++) {
        if (Number.isNaN(ref[q])) expect(p[q]).toBeNaN();
        else {
          expect(p[q]).toBeCloseTo(ref[q], 12);
          compared++;
        }
      }
    }
    expect(compared).toBeGreaterThan(1000);
  });

  it('p-values equal a brute-force computation from the same lags (exponential)', () => {
    const U = 2, F = 3, W = 8, T = 80, halfLife = 6;
    const { units, features } = makeSeries(9, T, U, F);
    const est = new SlidingCorrelation({
      units: U, features: F, window: W, weighting: { kind: 'exponential', halfLife }, nulls: { shifts: 10, seed: 3 },
    });
    const lags = est.shiftLags;
    for (let k = 0; k < T; k++) {
      est.update(units[k], features[k]);
      if (k % 5 !== 4) continue;
      const p = est.pValues();
      const ref = bruteForceP(units, features, k, W, lags, halfLife);
      for (let q = 0; q < p.length; q++) {
        if (Number.isNaN(ref[q])) expect(p[q]).toBeNaN();
        else expect(p[q]).toBeCloseTo(ref[q], 12);
      }
    }
  });

  for (const pool of ['pair', 'unit', 'all'] as const) {
    it(`pooled p-values (${pool}) equal a brute-force computation from the same lags`, () => {
      const U = 3, F = 5, W = 10, T = 70;
      const { units, features } = makeSeries(14, T, U, F);
      const est = new SlidingCorrelation({ units: U, features: F, window: W, nulls: { shifts: 8, seed: 4, pool } });
      for (let k = 0; k < T; k++) {
        est.update(units[k], features[k]);
        if (k % 7 !== 3) continue;
        const p = est.pValues();
        const ref = bruteForceP(units, features, k, W, est.shiftLags, undefined, pool);
        for (let q = 0; q < p.length; q++) {
          if (Number.isNaN(ref[q])) expect(p[q]).toBeNaN();
          else expect(p[q]).toBeCloseTo(ref[q], 12);
        }
      }
    });

    it(`on independent noise the p-values are about uniform and FDR rejects nothing (${pool})`, () => {
      const U = 8, F = 60, W = 30, S = 100, T = 330;
      const est = new SlidingCorrelation({ units: U, features: F, window: W, nulls: { shifts: S, seed: 11, pool } });
      const stream = noiseStream(2024, U, F);
      const ps: number[] = [];
      let rejected = 0;
      for (let k = 0; k < T; k++) {
        const { units, features } = stream.next().value!;
        est.update(units, features);
        // Windows 30 TRs apart do not overlap; all shifts are ready from TR 258.
        if (k >= 258 && (k - 258) % 30 === 0) {
          ps.push(...est.pValues());
          rejected += est.significance(0.05).significant.reduce((a, b) => a + b, 0);
        }
      }
      expect(ps.length).toBe(3 * U * F);
      expect(ps.every((v) => v > 0 && v <= 1)).toBe(true);
      // Expected 0.05; the bounds allow for the dependence between pairs of one unit.
      const frac05 = ps.filter((v) => v <= 0.05).length / ps.length;
      expect(frac05).toBeGreaterThan(0.02);
      expect(frac05).toBeLessThan(0.09);
      // Kolmogorov–Smirnov-like distance between the p ECDF and the uniform.
      const sorted = ps.slice().sort((a, b) => a - b);
      let ks = 0;
      for (let q = 0; q < sorted.length; q++) ks = Math.max(ks, Math.abs((q + 1) / sorted.length - sorted[q]));
      expect(ks).toBeLessThan(0.08);
      expect(rejected).toBeLessThanOrEqual(2);
    });
  }

  it('planted coupled pairs reach the smallest per-pair p-value', () => {
    const U = 4, F = 30, W = 30, S = 50, T = 170; // every lag ≤ 129 is ready from TR 158
    const est = new SlidingCorrelation({ units: U, features: F, window: W, nulls: { shifts: S, seed: 5 } });
    const stream = noiseStream(77, U, F, 10);
    for (let k = 0; k < T; k++) {
      const { units, features } = stream.next().value!;
      est.update(units, features);
    }
    const p = est.pValues();
    for (let f = 0; f < 10; f++) expect(p[(f % 2) * F + f]).toBeCloseTo(1 / (S + 1), 12);
    // …which BH over 120 pairs cannot reject: 1/51 > 0.05·10/120. That is why pooling exists.
    expect(est.significance(0.05).significant.reduce((a, b) => a + b, 0)).toBe(0);
  });

  it('planted coupled pairs survive FDR with per-unit pooled nulls, and nothing else does', () => {
    const U = 4, F = 30, W = 30, S = 50, T = 170;
    const est = new SlidingCorrelation({ units: U, features: F, window: W, nulls: { shifts: S, seed: 5, pool: 'unit' } });
    const stream = noiseStream(77, U, F, 10);
    for (let k = 0; k < T; k++) {
      const { units, features } = stream.next().value!;
      est.update(units, features);
    }
    const p = est.pValues();
    const { q, significant } = est.significance(0.05);
    for (let f = 0; f < 10; f++) {
      const pair = (f % 2) * F + f;
      expect(p[pair]).toBeLessThan(0.001);
      expect(q[pair]).toBeLessThanOrEqual(0.05);
      expect(significant[pair]).toBe(1);
    }
    let falsePos = 0;
    for (let i = 0; i < U; i++) for (let f = 0; f < F; f++) if (f >= 10 || f % 2 !== i) falsePos += significant[i * F + f];
    expect(falsePos).toBeLessThanOrEqual(1);
  });

  it('without nulls the p-values are NaN and nothing is significant', () => {
    const { units, features } = makeSeries(10, 20, 2, 2);
    const est = new SlidingCorrelation({ units: 2, features: 2, window: 5 });
    for (let k = 0; k < 20; k++) est.update(units[k], features[k]);
    expect(Array.from(est.pValues()).every(Number.isNaN)).toBe(true);
    expect(Array.from(est.significance().significant)).toEqual([0, 0, 0, 0]);
  });

  it('a missing unit sample drops the affected shifts for that unit only', () => {
    const U = 2, F = 3, W = 10, T = 120;
    const { units, features } = makeSeries(12, T, U, F);
    units[70][0] = NaN;
    const est = new SlidingCorrelation({ units: U, features: F, window: W, nulls: { shifts: 20, seed: 8 } });
    for (let k = 0; k < T; k++) est.update(units[k], features[k]);
    const p = est.pValues();
    expect(Array.from(p).every((v) => v > 0 && v <= 1)).toBe(true);
    // Unit 0's p-values sit on a coarser grid (fewer usable shifts) than unit 1's 1/21.
    const lags = est.shiftLags;
    const hit = Array.from(lags).filter((s) => T - 1 - s >= 70 && T - W - s <= 70).length;
    expect(hit).toBeGreaterThan(0);
    for (let f = 0; f < F; f++) {
      expect(Math.round(p[f] * (21 - hit))).toBeCloseTo(p[f] * (21 - hit), 9);
      expect(Math.round(p[F + f] * 21)).toBeCloseTo(p[F + f] * 21, 9);
    }
  });
});

describe('SlidingCorrelation: snapshot and restore', () => {
  for (const weighting of [{ kind: 'rectangular' as const }, { kind: 'exponential' as const, halfLife: 7 }]) {
    it(`restoring mid-stream continues exactly like an uninterrupted run (${weighting.kind})`, () => {
      const U = 3, F = 4, W = 10, T = 120;
      const { units, features } = makeSeries(13, T, U, F);
      const opts = { units: U, features: F, window: W, resyncEvery: 6, weighting, nulls: { shifts: 12, seed: 21 } };
      const a = new SlidingCorrelation(opts);
      const b = new SlidingCorrelation(opts);
      for (let k = 0; k < 57; k++) {
        a.update(units[k], features[k]);
        b.update(units[k], features[k]);
      }
      const snap = b.snapshot();
      // Scribble on b after the snapshot: the snapshot must be a copy.
      for (let k = 0; k < 5; k++) b.update(units[k], features[k]);
      const c = new SlidingCorrelation(opts);
      c.restore(snap);
      expect(c.count).toBe(57);
      for (let k = 57; k < T; k++) {
        a.update(units[k], features[k]);
        c.update(units[k], features[k]);
      }
      expect(c.correlations()).toEqual(a.correlations());
      expect(c.pValues()).toEqual(a.pValues());
      expect(c.resyncDrift).toBe(a.resyncDrift);
    });
  }

  it('refuses a snapshot from other options or another estimator', () => {
    const a = new SlidingCorrelation({ units: 2, features: 2, window: 5, nulls: { shifts: 4, seed: 1 } });
    const snap = a.snapshot();
    expect(() => new SlidingCorrelation({ units: 2, features: 3, window: 5, nulls: { shifts: 4, seed: 1 } }).restore(snap)).toThrow(
      /different options/,
    );
    expect(() => new SlidingCorrelation({ units: 2, features: 2, window: 5, nulls: { shifts: 4, seed: 2 } }).restore(snap)).toThrow(
      /null shifts differ/,
    );
    expect(() => a.restore({ ...snap, kind: 'glm' })).toThrow(/cannot restore a 'glm' snapshot/);
    try {
      a.restore({ ...snap, version: 99 });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(SyncactError);
      expect((e as SyncactError).code).toBe('ENGINE_SNAPSHOT_MISMATCH');
      expect((e as SyncactError).message).toMatch(/unknown snapshot version 99/);
    }
  });
});

/** TR-major T×U copy of the unit series, as `nulls.series` takes it. */
function flatten(units: Float64Array[]): Float64Array {
  const U = units[0].length;
  const out = new Float64Array(units.length * U);
  units.forEach((u, t) => out.set(u, t * U));
  return out;
}

/** The unit series circularly shifted by s over the whole run: row t is units[(t − s) mod T]. */
function circularShift(units: Float64Array[], s: number): Float64Array[] {
  const T = units.length;
  return units.map((_, t) => units[(((t - s) % T) + T) % T]);
}

/** Brute-force p from circularly shifted series through the batch twins (pool 'pair'). */
function bruteForceCircularP(units: Float64Array[], features: Float64Array[], k: number, W: number, shifts: Int32Array, halfLife?: number): Float64Array {
  const corr = (u: Float64Array[]) => (halfLife ? batchExponentialCorrelation(u, features, k, halfLife) : batchWindowCorrelation(u, features, k, W));
  const r = corr(units);
  const nulls = Array.from(shifts, (s) => corr(circularShift(units, s)));
  return r.map((v, q) => {
    if (Number.isNaN(v)) return NaN;
    let exceed = 0;
    for (const rn of nulls) if (!(Math.abs(rn[q]) < Math.abs(v))) exceed++;
    return (1 + exceed) / (1 + nulls.length);
  });
}

describe('SlidingCorrelation: circular-shift nulls over a known unit series', () => {
  it('null correlations equal the batch twin on circularly shifted series at every TR (rectangular)', () => {
    const U = 3, F = 4, W = 12, T = 90, S = 20;
    const { units, features } = makeSeries(31, T, U, F);
    const est = new SlidingCorrelation({
      units: U, features: F, window: W, resyncEvery: 5, nulls: { shifts: S, seed: 17, series: flatten(units) },
    });
    expect(est.nullKind).toBe('circular');
    const shifts = est.shiftLags;
    expect(new Set(shifts).size).toBe(S);
    for (const s of shifts) {
      expect(s).toBeGreaterThanOrEqual(W);
      expect(s).toBeLessThanOrEqual(T - W);
    }
    // Drawn from the whole range, not only its first 2S values as the lags are.
    expect(shifts[S - 1]).toBeGreaterThan(W + S);
    let compared = 0;
    for (let k = 0; k < T; k++) {
      est.update(units[k], features[k]);
      // From the first TR with 3 samples, partial windows included.
      if (k < 2) continue;
      for (let j = 0; j < S; j++) {
        const ref = batchWindowCorrelation(circularShift(units, shifts[j]), features, k, W);
        const got = est.nullCorrelations(j);
        expect(maxAbsDiff(got, ref)).toBeLessThan(1e-8);
        compared += got.filter(Number.isFinite).length;
      }
      const p = est.pValues();
      const refP = bruteForceCircularP(units, features, k, W, shifts);
      for (let q = 0; q < p.length; q++) {
        if (Number.isNaN(refP[q])) expect(p[q]).toBeNaN();
        else expect(p[q]).toBeCloseTo(refP[q], 12);
      }
      // p-values exist with all S shifts from the first full window (and before).
      if (k >= W - 1) expect(Array.from(p).every((v) => v >= 1 / (S + 1) && v <= 1)).toBe(true);
    }
    expect(compared).toBeGreaterThan(20_000);
  });

  it('null correlations equal the weighted batch twin on circularly shifted series (exponential)', () => {
    const U = 2, F = 3, W = 8, T = 60, S = 10, halfLife = 6;
    const { units, features } = makeSeries(32, T, U, F);
    const est = new SlidingCorrelation({
      units: U, features: F, window: W, weighting: { kind: 'exponential', halfLife }, nulls: { shifts: S, seed: 4, series: flatten(units) },
    });
    const shifts = est.shiftLags;
    for (let k = 0; k < T; k++) {
      est.update(units[k], features[k]);
      if (k < 2 || k % 3 !== 0) continue;
      for (let j = 0; j < S; j++) {
        const ref = batchExponentialCorrelation(circularShift(units, shifts[j]), features, k, halfLife);
        expect(maxAbsDiff(est.nullCorrelations(j), ref)).toBeLessThan(1e-8);
      }
      const p = est.pValues();
      const refP = bruteForceCircularP(units, features, k, W, shifts, halfLife);
      for (let q = 0; q < p.length; q++) expect(p[q]).toBeCloseTo(refP[q], 12);
    }
  });

  it('a missing value in the series drops that unit from the shifts whose window holds it, like the batch twin', () => {
    const U = 2, F = 3, W = 10, T = 60, S = 12;
    const { units, features } = makeSeries(33, T, U, F);
    const series = flatten(units);
    series[25 * U + 1] = NaN; // unit 1 at TR 25, in the nulls only
    const est = new SlidingCorrelation({ units: U, features: F, window: W, nulls: { shifts: S, seed: 9, series } });
    const shifted = units.map((u, t) => (t === 25 ? Float64Array.from([u[0], NaN]) : u));
    let hits = 0;
    for (let k = 0; k < T; k++) {
      est.update(units[k], features[k]);
      if (k < W - 1) continue;
      for (let j = 0; j < S; j++) {
        const ref = batchWindowCorrelation(circularShift(shifted, est.shiftLags[j]), features, k, W);
        const got = est.nullCorrelations(j);
        expect(maxAbsDiff(got, ref)).toBeLessThan(1e-8);
        if (Number.isNaN(got[F])) hits++;
      }
      expect(Array.from(est.pValues()).every((v) => v > 0 && v <= 1)).toBe(true);
    }
    expect(hits).toBeGreaterThan(0);
  });

  it('on independent noise the p-values are about uniform from the first full window, and FDR rejects nothing', () => {
    const U = 8, F = 60, W = 30, S = 100, T = 160; // lags would need 258 TRs for 100 shifts
    const stream = noiseStream(2025, U, F);
    const units: Float64Array[] = [];
    const features: Float64Array[] = [];
    for (let k = 0; k < T; k++) {
      const v = stream.next().value!;
      units.push(v.units);
      features.push(v.features);
    }
    const est = new SlidingCorrelation({ units: U, features: F, window: W, nulls: { shifts: S, seed: 12, pool: 'unit', series: flatten(units) } });
    const ps: number[] = [];
    let rejected = 0;
    for (let k = 0; k < T; k++) {
      est.update(units[k], features[k]);
      if (k >= W - 1 && (k - (W - 1)) % W === 0) {
        ps.push(...est.pValues());
        rejected += est.significance(0.05).significant.reduce((a, b) => a + b, 0);
      }
    }
    expect(ps.length).toBe(5 * U * F);
    expect(ps.every((v) => v > 0 && v <= 1)).toBe(true);
    const frac05 = ps.filter((v) => v <= 0.05).length / ps.length;
    expect(frac05).toBeGreaterThan(0.02);
    expect(frac05).toBeLessThan(0.09);
    const sorted = ps.slice().sort((a, b) => a - b);
    let ks = 0;
    for (let q = 0; q < sorted.length; q++) ks = Math.max(ks, Math.abs((q + 1) / sorted.length - sorted[q]));
    expect(ks).toBeLessThan(0.08);
    expect(rejected).toBeLessThanOrEqual(2);
  });

  it('planted coupled pairs get small p and survive FDR at the first full window of a short run', () => {
    const U = 4, F = 30, W = 30, S = 40, T = 100; // T − 2W + 1 = 41 possible shifts
    const stream = noiseStream(78, U, F, 10);
    const units: Float64Array[] = [];
    const features: Float64Array[] = [];
    for (let k = 0; k < T; k++) {
      const v = stream.next().value!;
      units.push(v.units);
      features.push(v.features);
    }
    const est = new SlidingCorrelation({ units: U, features: F, window: W, nulls: { shifts: S, seed: 6, pool: 'unit', series: flatten(units) } });
    for (let k = 0; k < W; k++) est.update(units[k], features[k]);
    const p = est.pValues();
    const { significant } = est.significance(0.05);
    let falsePos = 0;
    for (let i = 0; i < U; i++) {
      for (let f = 0; f < F; f++) {
        const planted = f < 10 && f % 2 === i;
        if (planted) {
          expect(p[i * F + f]).toBeLessThan(0.001);
          expect(significant[i * F + f]).toBe(1);
        } else falsePos += significant[i * F + f];
      }
    }
    expect(falsePos).toBeLessThanOrEqual(1);
  });

  it('restoring mid-stream continues exactly; another series, an old version or a lagged snapshot is refused', () => {
    const U = 3, F = 4, W = 10, T = 80;
    const { units, features } = makeSeries(34, T, U, F);
    const opts = { units: U, features: F, window: W, resyncEvery: 6, nulls: { shifts: 12, seed: 21, series: flatten(units) } };
    const a = new SlidingCorrelation(opts);
    const b = new SlidingCorrelation(opts);
    for (let k = 0; k < 41; k++) {
      a.update(units[k], features[k]);
      b.update(units[k], features[k]);
    }
    const snap = b.snapshot();
    const c = new SlidingCorrelation(opts);
    c.restore(snap);
    expect(c.count).toBe(41);
    for (let k = 41; k < T; k++) {
      a.update(units[k], features[k]);
      c.update(units[k], features[k]);
    }
    expect(c.pValues()).toEqual(a.pValues());
    expect(c.nullCorrelations(5)).toEqual(a.nullCorrelations(5));

    const other = flatten(units);
    other[7] += 1;
    const code = (f: () => void) => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(SyncactError);
        return `${(e as SyncactError).code}: ${(e as Error).message}`;
      }
      return 'no error';
    };
    expect(code(() => new SlidingCorrelation({ ...opts, nulls: { ...opts.nulls, series: other } }).restore(snap))).toMatch(
      /^ENGINE_SNAPSHOT_MISMATCH: .*another unit series/,
    );
    expect(code(() => new SlidingCorrelation(opts).restore({ ...snap, version: 1 }))).toMatch(/^ENGINE_SNAPSHOT_MISMATCH: .*version 1/);
    const lagged = new SlidingCorrelation({ ...opts, nulls: { shifts: 12, seed: 21 } }).snapshot();
    expect(code(() => new SlidingCorrelation(opts).restore(lagged))).toMatch(/^ENGINE_SNAPSHOT_MISMATCH/);
  });

  it('refuses a series too short for the shifts, of the wrong shape, or run past its end', () => {
    const { units, features } = makeSeries(35, 40, 2, 2);
    const series = flatten(units);
    const make = (shifts: number, s: Float64Array = series, extra = {}) =>
      new SlidingCorrelation({ units: 2, features: 2, window: 10, nulls: { shifts, seed: 1, series: s, ...extra } });
    // 40 − 2·10 + 1 = 21 shifts fit, 22 do not.
    expect(make(21).shiftLags.length).toBe(21);
    expect(() => make(22)).toThrow(/22 distinct circular null shifts do not fit: a 40-TR series with window 10 has at most 21/);
    expect(() => make(3, series.subarray(1))).toThrow(/T × 2 unit values/);
    expect(() => make(3, series, { minShift: 5 })).toThrow(/must lie in \[10, 30\]/);
    const est = make(3, series.subarray(0, 2 * 25));
    for (let k = 0; k < 25; k++) est.update(units[k], features[k]);
    expect(() => est.update(units[25], features[25])).toThrow(/TR 25 is past the 25-TR unit series/);
    expect(est.count).toBe(25);
  });
});
