/**
 * Sliding-window Pearson correlation between every CNN unit response and every brain
 * feature, one TR at a time, with circular-shift (lagged) nulls for per-pair p-values
 * and Benjamini–Hochberg FDR across pairs (DESIGN.md §4, "Sliding-window coupling").
 *
 * Intuition: the coupling of unit i and feature f at TR k is the correlation of their
 * last W samples. Keeping Σu, Σu², Σf, Σf², Σuf over the window makes each TR O(1) per
 * pair: add the sample entering, subtract the one leaving (a ring buffer keeps the last
 * W inputs). Subtraction accumulates rounding error, so every `resyncEvery` TRs the sums
 * are recomputed exactly from the ring buffer and the largest change of r this caused is
 * kept as `resyncDrift` (the incremental-vs-batch drift the replay reports).
 *
 *   TR      0  1  2  3  4  5  6 …          (W = 4)
 *   window  [0..2]→ r once 3 samples; [0..3] [1..4] [2..5] …
 *
 * Numerics: every series is accumulated relative to its first finite value (a fixed
 * offset), so raw BOLD around 1000 with a std of 10 does not lose digits in
 * Σx² − (Σx)²/n. A window whose centred sum of squares is below 1e-12 of its uncentred
 * one is treated as zero variance and gives NaN.
 *
 * Missing samples (NaN or ±Infinity):
 * - rectangular: a series with a non-finite sample inside its window has NaN
 *   correlations until that sample leaves the window (what numpy's corrcoef gives on the
 *   same window; pairwise deletion would need five sums and a count per pair).
 * - exponential: the window never ends, so the sample is replaced by the series' current
 *   weighted mean, which adds nothing to the centred cross-products.
 *
 * Nulls come in two kinds; both keep running sums per shift (O(S·U·F) per TR, S × the main
 * computation), since the unit values entering and leaving each shifted window are known.
 * - Circular (`nulls.series`, the whole run's unit series, T TRs): shift s pairs the
 *   feature window [k−W+1..k] with the unit values at (t − s) mod T for t in the window, a
 *   circular shift over the whole run. The movie, hence every unit response, is known
 *   before a replay, so the future of the unit series can be used. s is drawn from
 *   [W, T − W] so that the null window never overlaps the true one on the circle; that
 *   gives at most T − 2W + 1 distinct shifts. Every shift is ready from the first TR, so
 *   p-values exist as soon as r does (TR 2) and use all S shifts from then on.
 * - Lagged (no series: live mode, where the run's length and future are unknown): shift s
 *   pairs the feature window with the unit window [k−W+1−s..k−s], the unit series lagged
 *   by s TRs, s ≥ minShift (default W). A lag of a stationary series is what a circular
 *   shift gives, without the wrap-around seam, but only the past is known: a shift enters
 *   the null distribution once its lagged window holds W samples (TR ≥ s + W − 1); until the
 *   first shift is ready the p-values are NaN, and until the largest one is ready they use
 *   fewer shifts. Default maxShift = minShift + 2S − 1.
 * The S shifts are drawn without replacement from [minShift, maxShift] with the seeded
 * generator of random.ts.
 * p = (1 + #{s : |r_s| ≥ |r|}) / (1 + #shifts used), two-sided; a null r that is NaN
 * counts as exceeding (conservative). With S shifts that p cannot go below 1/(S+1), too
 * coarse for BH over 10⁵ pairs, so `nulls.pool` can pool the nulls of a unit's features
 * (or of all pairs) into one distribution (see {@link NullPool}). Null sums are re-synced round-robin, one shift per
 * TR, so the exact recomputation never costs more than one main window in a single TR.
 */
import type { Estimator, EstimatorSnapshot } from './estimator.ts';
import { SyncactError } from '../errors.ts';
import { createRng } from './random.ts';
import { benjaminiHochberg, rejectAt } from './fdr.ts';

export interface SlidingCorrelationOptions {
  /** U, the number of unit responses per TR. */
  units: number;
  /** F, the number of brain features per TR. */
  features: number;
  /**
   * W, the rectangular window in TRs (≥ 3). With exponential weighting it only sets the
   * default minimum null lag and the history (W TRs) a lagged null needs before it is used.
   */
  window: number;
  /** Exact re-sync period in TRs (rectangular only); default = window. */
  resyncEvery?: number;
  /** Default rectangular. Exponential: weight 2^(−age/halfLife) over all past TRs. */
  weighting?: { kind: 'rectangular' } | { kind: 'exponential'; halfLife: number };
  /**
   * Nulls: `shifts` shifts drawn with `seed` from [minShift, maxShift]. minShift defaults
   * to `window`; maxShift to T − window with `series` (circular shifts), else to
   * minShift + 2·shifts − 1 (lags).
   */
  nulls?: { shifts: number; seed: number; minShift?: number; maxShift?: number; pool?: NullPool; series?: Float64Array };
}

/**
 * The whole run's unit series for circular-shift nulls: T TRs × U units, TR-major
 * (`series[t·U + i]` is unit i at TR t), the same values `update` will receive for TRs
 * 0…T−1. Copied at construction (centred), so the caller may reuse the array.
 */
export type NullSeries = Float64Array;

/**
 * How null correlations become p-values. 'pair' (default) is the exact per-pair test,
 * but its smallest p is 1/(S+1): with S = 100 and 10⁵ pairs BH can reject nothing unless
 * a fifth of all pairs are at that floor. 'unit' pools the S·F null values of a unit
 * (assumes the null r is exchangeable across features, as for features with similar
 * autocorrelation after the same preprocessing) and 'all' pools every pair's nulls;
 * both reach p ≈ 1/(S·F), which BH can use. Same cost as 'pair'.
 */
export type NullPool = 'pair' | 'unit' | 'all';

/** Below this ratio of centred to uncentred sum of squares a window counts as constant. */
const ZERO_VARIANCE = 1e-12;
const MIN_SAMPLES = 3;
/** Histogram bins on |r| ∈ [0, 1] for pooled nulls. */
export const POOL_BINS = 4096;
const KIND = 'slidingCorrelation';
/** 2: circular-shift nulls (scalars seriesLength and seriesSum). */
const VERSION = 2;

function bad(message: string): SyncactError {
  return new SyncactError('ENGINE_BAD_INPUT', message);
}

function positiveInt(name: string, v: number, min = 1): number {
  if (!Number.isInteger(v) || v < min) throw bad(`sliding correlation: ${name} must be an integer ≥ ${min}, got ${v}`);
  return v;
}

/** 1/sd from centred sums, or NaN for a (numerically) constant window. */
function invSd(sum: number, sumSq: number, n: number): number {
  const css = sumSq - (sum * sum) / n;
  return css > ZERO_VARIANCE * sumSq && css > 0 ? 1 / Math.sqrt(css) : NaN;
}

/** x mod m in [0, m). */
function mod(x: number, m: number): number {
  const r = x % m;
  return r < 0 ? r + m : r;
}

/** Draws `count` distinct integers from [lo, hi], sorted ascending. */
function drawLags(count: number, lo: number, hi: number, seed: number): Int32Array {
  const span = hi - lo + 1;
  const pool = new Int32Array(span);
  for (let i = 0; i < span; i++) pool[i] = lo + i;
  const rng = createRng(seed);
  for (let i = 0; i < count; i++) {
    const j = i + rng.int(span - i);
    const t = pool[i];
    pool[i] = pool[j];
    pool[j] = t;
  }
  return pool.slice(0, count).sort();
}

export class SlidingCorrelation implements Estimator {
  private readonly U: number;
  private readonly F: number;
  private readonly W: number;
  private readonly R: number;
  private readonly exponential: boolean;
  /** Per-TR decay λ = 2^(−1/halfLife) (exponential only). */
  private readonly lambda: number;
  private readonly S: number;
  private readonly lags: Int32Array;
  private readonly pool: NullPool;
  /** Unit history ring: W + maxShift + 1 TRs × U, centred values. */
  private readonly hLen: number;
  private readonly hist: Float64Array;
  private readonly histOk: Uint8Array;
  /** Feature ring: W + 1 TRs × F, centred values. */
  private readonly fLen: number;
  private readonly fring: Float64Array;
  private readonly fringOk: Uint8Array;
  private readonly offU: Float64Array;
  private readonly offF: Float64Array;
  // Main window sums (weighted sums for exponential).
  private readonly su: Float64Array;
  private readonly suu: Float64Array;
  private readonly sf: Float64Array;
  private readonly sff: Float64Array;
  private readonly suf: Float64Array;
  private readonly badU: Int32Array;
  private readonly badF: Int32Array;
  // Per-shift null sums.
  private readonly nsu: Float64Array; // S×U
  private readonly nsuu: Float64Array; // S×U
  private readonly nsf: Float64Array; // S×F
  private readonly nsff: Float64Array; // S×F
  private readonly nsuf: Float64Array; // S×U×F
  private readonly nBadU: Int32Array; // S×U
  private readonly nWeight: Float64Array; // S: sample count (rectangular) or weight sum (exponential)
  private readonly zerosU: Float64Array;
  private readonly zerosF: Float64Array;
  /** T, the null series' length in TRs (0: lagged nulls or none). */
  private readonly T: number;
  /** Circular null series, T×U centred values, and which are finite. */
  private readonly ser: Float64Array;
  private readonly serOk: Uint8Array;
  /** A position-weighted sum of the series, to refuse a snapshot taken with another one. */
  private readonly serSum: number;
  private k = 0;
  /** Main weight sum (exponential) — the sample count for rectangular is min(k, W). */
  private weight = 0;
  private drift = 0;

  constructor(o: SlidingCorrelationOptions) {
    this.U = positiveInt('units', o.units);
    this.F = positiveInt('features', o.features);
    this.W = positiveInt('window', o.window, MIN_SAMPLES);
    this.R = positiveInt('resyncEvery', o.resyncEvery ?? o.window);
    const w = o.weighting ?? { kind: 'rectangular' };
    this.exponential = w.kind === 'exponential';
    if (w.kind === 'exponential') {
      if (!(w.halfLife > 0 && Number.isFinite(w.halfLife))) {
        throw bad(`sliding correlation: exponential halfLife must be a positive number of TRs, got ${w.halfLife}`);
      }
      this.lambda = Math.pow(2, -1 / w.halfLife);
    } else {
      this.lambda = 1;
    }
    let maxShift = 0;
    const series = o.nulls?.series;
    if (series !== undefined && !(series instanceof Float64Array && series.length > 0 && series.length % this.U === 0)) {
      throw bad(`sliding correlation: nulls.series must be a Float64Array of T × ${this.U} unit values, got length ${series?.length}`);
    }
    this.T = series ? series.length / this.U : 0;
    if (o.nulls) {
      this.S = positiveInt('nulls.shifts', o.nulls.shifts);
      const minShift = positiveInt('nulls.minShift', o.nulls.minShift ?? this.W);
      if (series) {
        const T = this.T;
        const cap = Math.max(0, T - 2 * this.W + 1);
        if (cap < this.S) {
          throw bad(`sliding correlation: ${this.S} distinct circular null shifts do not fit: a ${T}-TR series with window ${this.W} has at most ${cap} (shifts in [${this.W}, ${T - this.W}])`);
        }
        maxShift = positiveInt('nulls.maxShift', o.nulls.maxShift ?? T - this.W);
        // On the circle a shift s and T − s are both distances between the windows.
        if (minShift < this.W || maxShift > T - this.W) {
          throw bad(`sliding correlation: circular null shifts must lie in [${this.W}, ${T - this.W}] (window ${this.W}, series of ${T} TRs) so that no null window overlaps the true one, got [${minShift}, ${maxShift}]`);
        }
        if (maxShift - minShift + 1 < this.S) {
          throw bad(`sliding correlation: ${this.S} distinct circular null shifts do not fit in [${minShift}, ${maxShift}]: a ${T}-TR series with window ${this.W} has at most ${Math.max(0, T - 2 * this.W + 1)}`);
        }
      } else {
        maxShift = positiveInt('nulls.maxShift', o.nulls.maxShift ?? minShift + 2 * this.S - 1);
      }
      if (maxShift - minShift + 1 < this.S) {
        throw bad(`sliding correlation: ${this.S} distinct null shifts do not fit in [${minShift}, ${maxShift}]`);
      }
      if (!Number.isFinite(o.nulls.seed)) throw bad(`sliding correlation: nulls.seed must be a number`);
      this.lags = drawLags(this.S, minShift, maxShift, o.nulls.seed);
      this.pool = o.nulls.pool ?? 'pair';
      if (!['pair', 'unit', 'all'].includes(this.pool)) {
        throw bad(`sliding correlation: nulls.pool must be 'pair', 'unit' or 'all', got '${this.pool}'`);
      }
    } else {
      this.S = 0;
      this.lags = new Int32Array(0);
      this.pool = 'pair';
    }
    const { U, F, W, S } = this;
    const cells = S * U * F;
    if (cells > 2 ** 28) throw bad(`sliding correlation: ${S} shifts × ${U} units × ${F} features is too large`);
    // Circular nulls read their unit values from the series: the ring needs the window only.
    this.hLen = this.T > 0 ? W + 1 : W + maxShift + 1;
    this.hist = new Float64Array(this.hLen * U);
    this.histOk = new Uint8Array(this.hLen * U);
    this.fLen = W + 1;
    this.fring = new Float64Array(this.fLen * F);
    this.fringOk = new Uint8Array(this.fLen * F);
    this.offU = new Float64Array(U).fill(NaN);
    this.offF = new Float64Array(F).fill(NaN);
    this.su = new Float64Array(U);
    this.suu = new Float64Array(U);
    this.sf = new Float64Array(F);
    this.sff = new Float64Array(F);
    this.suf = new Float64Array(U * F);
    this.badU = new Int32Array(U);
    this.badF = new Int32Array(F);
    this.nsu = new Float64Array(S * U);
    this.nsuu = new Float64Array(S * U);
    this.nsf = new Float64Array(S * F);
    this.nsff = new Float64Array(S * F);
    this.nsuf = new Float64Array(cells);
    this.nBadU = new Int32Array(S * U);
    this.nWeight = new Float64Array(S);
    this.zerosU = new Float64Array(U);
    this.zerosF = new Float64Array(F);
    const c = centreSeries(series ?? new Float64Array(0), U, this.exponential);
    this.ser = c.values;
    this.serOk = c.ok;
    this.serSum = c.checksum;
  }

  /** TRs seen so far. */
  get count(): number {
    return this.k;
  }

  /**
   * Max |r_incremental − r_exact| over pairs at the last exact re-sync of the main sums
   * (0 before one, and always 0 for exponential weighting, which never subtracts).
   */
  get resyncDrift(): number {
    return this.drift;
  }

  /** The null lags (or circular shifts) in TRs, ascending (empty without nulls). */
  get shiftLags(): Int32Array {
    return this.lags.slice();
  }

  /** 'circular' with a null series, 'lagged' without one, 'none' without nulls. */
  get nullKind(): 'circular' | 'lagged' | 'none' {
    return this.S === 0 ? 'none' : this.T > 0 ? 'circular' : 'lagged';
  }

  /**
   * Adds TR `count`: the U unit responses and F brain features of that TR (not kept;
   * copied into the ring buffers).
   */
  update(units: Float64Array, features: Float64Array): void {
    const { U, F, W, S } = this;
    if (units.length !== U || features.length !== F) {
      throw bad(`sliding correlation: expected ${U} units and ${F} features, got ${units.length} and ${features.length}`);
    }
    const k = this.k;
    if (this.T > 0 && k >= this.T) {
      throw bad(`sliding correlation: TR ${k} is past the ${this.T}-TR unit series given for the circular nulls`);
    }
    const rect = !this.exponential;
    const lam = this.lambda;
    const full = rect && k >= W;
    const hSlot = k % this.hLen;
    const fSlot = k % this.fLen;
    const a = this.hist.subarray(hSlot * U, hSlot * U + U);
    const aOk = this.histOk.subarray(hSlot * U, hSlot * U + U);
    const x = this.fring.subarray(fSlot * F, fSlot * F + F);
    const xOk = this.fringOk.subarray(fSlot * F, fSlot * F + F);
    // The leaving samples (TR k − W) sit in other slots than TR k's: both rings hold more
    // than W TRs, so writing TR k below does not overwrite them.
    const lhSlot = (k - W + this.hLen) % this.hLen;
    const lfSlot = (k - W + this.fLen) % this.fLen;
    const b = full ? this.hist.subarray(lhSlot * U, lhSlot * U + U) : this.zerosU;
    const bOk = full ? this.histOk.subarray(lhSlot * U, lhSlot * U + U) : null;
    const y = full ? this.fring.subarray(lfSlot * F, lfSlot * F + F) : this.zerosF;
    const yOk = full ? this.fringOk.subarray(lfSlot * F, lfSlot * F + F) : null;
    this.store(units, this.offU, this.su, this.weight, a, aOk);
    this.store(features, this.offF, this.sf, this.weight, x, xOk);

    const { su, suu, sf, sff, suf, badU, badF } = this;
    if (rect) {
      for (let i = 0; i < U; i++) {
        su[i] += a[i] - b[i];
        suu[i] += a[i] * a[i] - b[i] * b[i];
        badU[i] += (aOk[i] ? 0 : 1) - (bOk && !bOk[i] ? 1 : 0);
      }
      for (let f = 0; f < F; f++) {
        sf[f] += x[f] - y[f];
        sff[f] += x[f] * x[f] - y[f] * y[f];
        badF[f] += (xOk[f] ? 0 : 1) - (yOk && !yOk[f] ? 1 : 0);
      }
      for (let i = 0; i < U; i++) {
        const ai = a[i];
        const bi = b[i];
        const o = i * F;
        if (bi === 0) for (let f = 0; f < F; f++) suf[o + f] += ai * x[f];
        else for (let f = 0; f < F; f++) suf[o + f] += ai * x[f] - bi * y[f];
      }
    } else {
      for (let i = 0; i < U; i++) {
        su[i] = lam * su[i] + a[i];
        suu[i] = lam * suu[i] + a[i] * a[i];
      }
      for (let f = 0; f < F; f++) {
        sf[f] = lam * sf[f] + x[f];
        sff[f] = lam * sff[f] + x[f] * x[f];
      }
      for (let i = 0; i < U; i++) {
        const ai = a[i];
        const o = i * F;
        for (let f = 0; f < F; f++) suf[o + f] = lam * suf[o + f] + ai * x[f];
      }
      this.weight = lam * this.weight + 1;
    }

    for (let j = 0; j < S; j++) this.updateShift(j, k, x, y, full);
    this.k = k + 1;
    if (rect) {
      if (this.k % this.R === 0) this.resyncMain();
      if (S > 0) this.resyncShift(this.k % S);
    }
  }

  /**
   * Centres a new sample into its ring slot. Non-finite values: 0 and flagged bad
   * (rectangular), or the current weighted mean and counted good (exponential).
   */
  private store(v: Float64Array, off: Float64Array, sum: Float64Array, weight: number, dst: Float64Array, ok: Uint8Array): void {
    for (let i = 0; i < v.length; i++) {
      const xi = v[i];
      if (Number.isFinite(xi)) {
        if (Number.isNaN(off[i])) off[i] = xi;
        dst[i] = xi - off[i];
        ok[i] = 1;
      } else if (this.exponential) {
        dst[i] = weight > 0 ? sum[i] / weight : 0;
        ok[i] = 1;
      } else {
        dst[i] = 0;
        ok[i] = 0;
      }
    }
  }

  private updateShift(j: number, k: number, x: Float64Array, y: Float64Array, full: boolean): void {
    const { U, F, W } = this;
    const s = this.lags[j];
    const circular = this.T > 0;
    const tIn = k - s;
    const tOut = k - W - s;
    // Circular: every TR of the window has its shifted unit value (mod T).
    const hasIn = circular || tIn >= 0;
    const hasOut = full && (circular || tOut >= 0);
    const src = circular ? this.ser : this.hist;
    const srcOk = circular ? this.serOk : this.histOk;
    const inSlot = !hasIn ? 0 : circular ? mod(tIn, this.T) : tIn % this.hLen;
    const outSlot = !hasOut ? 0 : circular ? mod(tOut, this.T) : tOut % this.hLen;
    const a = hasIn ? src.subarray(inSlot * U, inSlot * U + U) : this.zerosU;
    const b = hasOut ? src.subarray(outSlot * U, outSlot * U + U) : this.zerosU;
    const su = this.nsu.subarray(j * U, j * U + U);
    const suu = this.nsuu.subarray(j * U, j * U + U);
    const sf = this.nsf.subarray(j * F, j * F + F);
    const sff = this.nsff.subarray(j * F, j * F + F);
    const suf = this.nsuf;
    const base = j * U * F;
    if (!this.exponential) {
      // The feature samples paired with a lagged unit sample: only TRs t with t − s ≥ 0.
      const xi = hasIn ? x : this.zerosF;
      const yo = hasOut ? y : this.zerosF;
      this.nWeight[j] += (hasIn ? 1 : 0) - (hasOut ? 1 : 0);
      const bad = this.nBadU.subarray(j * U, j * U + U);
      const aOk = hasIn ? srcOk.subarray(inSlot * U, inSlot * U + U) : null;
      const bOk = hasOut ? srcOk.subarray(outSlot * U, outSlot * U + U) : null;
      for (let i = 0; i < U; i++) {
        su[i] += a[i] - b[i];
        suu[i] += a[i] * a[i] - b[i] * b[i];
        bad[i] += (aOk && !aOk[i] ? 1 : 0) - (bOk && !bOk[i] ? 1 : 0);
      }
      for (let f = 0; f < F; f++) {
        sf[f] += xi[f] - yo[f];
        sff[f] += xi[f] * xi[f] - yo[f] * yo[f];
      }
      if (!hasIn && !hasOut) return;
      for (let i = 0; i < U; i++) {
        const ai = a[i];
        const bi = b[i];
        const o = base + i * F;
        if (bi === 0) for (let f = 0; f < F; f++) suf[o + f] += ai * xi[f];
        else for (let f = 0; f < F; f++) suf[o + f] += ai * xi[f] - bi * yo[f];
      }
    } else {
      const lam = this.lambda;
      const xi = hasIn ? x : this.zerosF;
      this.nWeight[j] = lam * this.nWeight[j] + (hasIn ? 1 : 0);
      for (let i = 0; i < U; i++) {
        su[i] = lam * su[i] + a[i];
        suu[i] = lam * suu[i] + a[i] * a[i];
      }
      for (let f = 0; f < F; f++) {
        sf[f] = lam * sf[f] + xi[f];
        sff[f] = lam * sff[f] + xi[f] * xi[f];
      }
      if (this.nWeight[j] === 0) return;
      for (let i = 0; i < U; i++) {
        const ai = a[i];
        const o = base + i * F;
        for (let f = 0; f < F; f++) suf[o + f] = lam * suf[o + f] + ai * xi[f];
      }
    }
  }

  /** Samples in the current rectangular window. */
  private get n(): number {
    return Math.min(this.k, this.W);
  }

  /** Recomputes the main sums from the ring buffers and records the drift in r. */
  private resyncMain(): void {
    const { U, F } = this;
    const before = this.correlations();
    this.su.fill(0);
    this.suu.fill(0);
    this.sf.fill(0);
    this.sff.fill(0);
    this.suf.fill(0);
    const n = this.n;
    for (let t = this.k - n; t < this.k; t++) {
      const hs = (t % this.hLen) * U;
      const fs = (t % this.fLen) * F;
      for (let i = 0; i < U; i++) {
        const v = this.hist[hs + i];
        this.su[i] += v;
        this.suu[i] += v * v;
      }
      for (let f = 0; f < F; f++) {
        const v = this.fring[fs + f];
        this.sf[f] += v;
        this.sff[f] += v * v;
      }
      for (let i = 0; i < U; i++) {
        const v = this.hist[hs + i];
        if (v === 0) continue;
        const o = i * F;
        for (let f = 0; f < F; f++) this.suf[o + f] += v * this.fring[fs + f];
      }
    }
    const after = this.correlations();
    let d = 0;
    for (let p = 0; p < after.length; p++) {
      const e = Math.abs(after[p] - before[p]);
      if (e > d) d = e; // NaN differences (threshold crossings) are skipped by the comparison
    }
    this.drift = d;
  }

  /** Recomputes the null sums of shift j exactly (rectangular). */
  private resyncShift(j: number): void {
    const { U, F } = this;
    const s = this.lags[j];
    const su = this.nsu.subarray(j * U, j * U + U).fill(0);
    const suu = this.nsuu.subarray(j * U, j * U + U).fill(0);
    const sf = this.nsf.subarray(j * F, j * F + F).fill(0);
    const sff = this.nsff.subarray(j * F, j * F + F).fill(0);
    const suf = this.nsuf.subarray(j * U * F, (j + 1) * U * F).fill(0);
    let cnt = 0;
    const circular = this.T > 0;
    const src = circular ? this.ser : this.hist;
    for (let t = Math.max(this.k - this.n, circular ? 0 : s); t < this.k; t++) {
      cnt++;
      const hs = (circular ? mod(t - s, this.T) : (t - s) % this.hLen) * U;
      const fs = (t % this.fLen) * F;
      for (let i = 0; i < U; i++) {
        const v = src[hs + i];
        su[i] += v;
        suu[i] += v * v;
      }
      for (let f = 0; f < F; f++) {
        const v = this.fring[fs + f];
        sf[f] += v;
        sff[f] += v * v;
      }
      for (let i = 0; i < U; i++) {
        const v = src[hs + i];
        if (v === 0) continue;
        const o = i * F;
        for (let f = 0; f < F; f++) suf[o + f] += v * this.fring[fs + f];
      }
    }
    this.nWeight[j] = cnt;
  }

  /**
   * Pearson r for every (unit, feature) pair over the current window, U×F unit-major
   * (`out[i·F + f]`). NaN before 3 TRs, for a constant window, and for a series with a
   * missing sample in its (rectangular) window.
   */
  correlations(out?: Float64Array): Float64Array {
    const { U, F } = this;
    const r = this.outArray(out);
    const enough = this.k >= MIN_SAMPLES;
    const n = this.exponential ? this.weight : this.n;
    const iu = new Float64Array(U);
    const jf = new Float64Array(F);
    for (let i = 0; i < U; i++) iu[i] = enough && this.badU[i] === 0 ? invSd(this.su[i], this.suu[i], n) : NaN;
    for (let f = 0; f < F; f++) jf[f] = enough && this.badF[f] === 0 ? invSd(this.sf[f], this.sff[f], n) : NaN;
    this.pearson(r, this.suf, 0, this.su, iu, this.sf, jf, n);
    return r;
  }

  /** r = (Σuf − ΣuΣf/n)·(1/sd_u)·(1/sd_f), clamped to [−1, 1]. */
  private pearson(
    r: Float64Array,
    suf: Float64Array,
    base: number,
    su: Float64Array,
    iu: Float64Array,
    sf: Float64Array,
    jf: Float64Array,
    n: number,
  ): void {
    const { U, F } = this;
    const mf = new Float64Array(F);
    for (let f = 0; f < F; f++) mf[f] = sf[f] / n;
    for (let i = 0; i < U; i++) {
      const o = i * F;
      const ii = iu[i];
      if (Number.isNaN(ii)) {
        r.fill(NaN, o, o + F);
        continue;
      }
      const sui = su[i];
      for (let f = 0; f < F; f++) {
        const v = (suf[base + o + f] - sui * mf[f]) * ii * jf[f];
        r[o + f] = v > 1 ? 1 : v < -1 ? -1 : v;
      }
    }
  }

  private outArray(out?: Float64Array): Float64Array {
    const len = this.U * this.F;
    if (!out) return new Float64Array(len);
    if (out.length !== len) throw bad(`sliding correlation: output array has length ${out.length}, expected ${len}`);
    return out;
  }

  /** Whether null shift j has a full lagged window at the current TR (circular: always). */
  private shiftReady(j: number): boolean {
    return this.T > 0 ? this.k > 0 : this.k - this.lags[j] >= this.W;
  }

  /**
   * The null correlations of shift j (the j-th of {@link shiftLags}), U×F unit-major: what
   * `pValues` compares r with. NaN for every pair while the shift is not ready, and for a
   * unit whose shifted window holds a missing sample (that unit skips the shift).
   */
  nullCorrelations(j: number, out?: Float64Array): Float64Array {
    const { U, F, S } = this;
    if (!(Number.isInteger(j) && j >= 0 && j < S)) throw bad(`sliding correlation: null shift ${j} is outside [0, ${S})`);
    const r = this.outArray(out);
    if (!this.shiftReady(j)) return r.fill(NaN);
    const n = this.nWeight[j];
    const iu = new Float64Array(U);
    const jf = new Float64Array(F);
    for (let i = 0; i < U; i++) iu[i] = this.nBadU[j * U + i] === 0 ? invSd(this.nsu[j * U + i], this.nsuu[j * U + i], n) : NaN;
    for (let f = 0; f < F; f++) jf[f] = invSd(this.nsf[j * F + f], this.nsff[j * F + f], n);
    this.pearson(r, this.nsuf, j * U * F, this.nsu.subarray(j * U, j * U + U), iu, this.nsf.subarray(j * F, j * F + F), jf, n);
    return r;
  }

  /**
   * Two-sided p-values from the nulls, U×F unit-major. NaN without nulls, before the first
   * shift is ready (circular: never after TR 0), and where r is NaN.
   * - pool 'pair': p = (1 + #{ready shifts with |r_null| ≥ |r|}) / (1 + #ready shifts).
   * - pool 'unit' / 'all': the null values of every feature (and, for 'all', every
   *   unit) form one distribution, p = (1 + #{nulls with b(|r_null|) ≥ b(|r|)}) / (1 + #nulls)
   *   with b(x) = ⌊x·POOL_BINS⌋ (a histogram, so |r| is compared on a 1/4096 grid,
   *   rounding toward a larger, conservative p).
   */
  pValues(out?: Float64Array): Float64Array {
    const { U, F, S } = this;
    const p = this.outArray(out);
    if (S === 0) return p.fill(NaN);
    const absR = this.correlations();
    for (let q = 0; q < absR.length; q++) absR[q] = Math.abs(absR[q]);
    const pooled = this.pool !== 'pair';
    const B = POOL_BINS;
    const exceed = pooled ? new Int32Array(0) : new Int32Array(U * F);
    const hist = pooled ? new Int32Array((this.pool === 'all' ? 1 : U) * B) : new Int32Array(0);
    const used = new Int32Array(U);
    const iu = new Float64Array(U);
    const jf = new Float64Array(F);
    const mf = new Float64Array(F);
    for (let j = 0; j < S; j++) {
      if (!this.shiftReady(j)) continue;
      const n = this.nWeight[j];
      const su = this.nsu.subarray(j * U, j * U + U);
      const suu = this.nsuu.subarray(j * U, j * U + U);
      const sf = this.nsf.subarray(j * F, j * F + F);
      const sff = this.nsff.subarray(j * F, j * F + F);
      for (let i = 0; i < U; i++) iu[i] = invSd(su[i], suu[i], n);
      for (let f = 0; f < F; f++) {
        jf[f] = invSd(sf[f], sff[f], n);
        mf[f] = sf[f] / n;
      }
      const base = j * U * F;
      const suf = this.nsuf;
      for (let i = 0; i < U; i++) {
        // A unit whose lagged window has a missing sample skips this shift.
        if (this.nBadU[j * U + i] !== 0) continue;
        used[i]++;
        const ii = iu[i];
        const sui = su[i];
        const o = i * F;
        if (pooled) {
          const h = this.pool === 'all' ? 0 : i * B;
          for (let f = 0; f < F; f++) {
            const v = Math.abs((suf[base + o + f] - sui * mf[f]) * ii * jf[f]);
            // NaN (and |r| = 1) go to the top bin: counted as exceeding, conservative.
            hist[h + (v < 1 ? (v * B) | 0 : B - 1)]++;
          }
        } else {
          for (let f = 0; f < F; f++) {
            const v = Math.abs((suf[base + o + f] - sui * mf[f]) * ii * jf[f]);
            // Counts |r_null| ≥ |r|, and a NaN null as exceeding (conservative). Written as
            // boolean arithmetic so V8 emits no branch: the outcome is a coin flip for most
            // pairs and a mispredicted branch tripled the cost of this loop.
            exceed[o + f] += 1 - +(v < absR[o + f]);
          }
        }
      }
    }
    if (!pooled) {
      for (let i = 0; i < U; i++) {
        const o = i * F;
        const m = used[i];
        for (let f = 0; f < F; f++) {
          p[o + f] = m > 0 && !Number.isNaN(absR[o + f]) ? (1 + exceed[o + f]) / (1 + m) : NaN;
        }
      }
      return p;
    }
    // Tail counts: hist[h + b] becomes #{nulls in bins ≥ b}.
    const groups = this.pool === 'all' ? 1 : U;
    for (let g = 0; g < groups; g++) {
      let acc = 0;
      for (let b = B - 1; b >= 0; b--) {
        acc += hist[g * B + b];
        hist[g * B + b] = acc;
      }
    }
    let total = 0;
    for (let i = 0; i < U; i++) total += used[i] * F;
    for (let i = 0; i < U; i++) {
      const o = i * F;
      const h = this.pool === 'all' ? 0 : i * B;
      const m = this.pool === 'all' ? total : used[i] * F;
      for (let f = 0; f < F; f++) {
        const a = absR[o + f];
        if (m === 0 || Number.isNaN(a)) {
          p[o + f] = NaN;
          continue;
        }
        const b = a < 1 ? Math.floor(a * B) : B - 1;
        p[o + f] = (1 + hist[h + b]) / (1 + m);
      }
    }
    return p;
  }

  /**
   * Benjamini–Hochberg across all pairs of this TR: q-values (U×F) and the mask q ≤ α.
   * @param alpha FDR level, default 0.05.
   */
  significance(alpha = 0.05): { q: Float64Array; significant: Uint8Array } {
    const q = benjaminiHochberg(this.pValues());
    return { q, significant: rejectAt(q, alpha) };
  }

  snapshot(): EstimatorSnapshot {
    return {
      kind: KIND,
      version: VERSION,
      scalars: {
        k: this.k,
        weight: this.weight,
        drift: this.drift,
        units: this.U,
        features: this.F,
        window: this.W,
        shifts: this.S,
        exponential: this.exponential ? 1 : 0,
        lambda: this.lambda,
        seriesLength: this.T,
        seriesSum: this.serSum,
      },
      arrays: {
        lags: this.lags.slice(),
        hist: this.hist.slice(),
        histOk: this.histOk.slice(),
        fring: this.fring.slice(),
        fringOk: this.fringOk.slice(),
        offU: this.offU.slice(),
        offF: this.offF.slice(),
        su: this.su.slice(),
        suu: this.suu.slice(),
        sf: this.sf.slice(),
        sff: this.sff.slice(),
        suf: this.suf.slice(),
        badU: this.badU.slice(),
        badF: this.badF.slice(),
        nsu: this.nsu.slice(),
        nsuu: this.nsuu.slice(),
        nsf: this.nsf.slice(),
        nsff: this.nsff.slice(),
        nsuf: this.nsuf.slice(),
        nBadU: this.nBadU.slice(),
        nWeight: this.nWeight.slice(),
      },
    };
  }

  /**
   * Restores a snapshot written by an estimator with the same sizes, weighting and null
   * lags (`nulls.pool` may differ: it only changes the read-out).
   * @throws SyncactError ENGINE_SNAPSHOT_MISMATCH otherwise.
   */
  restore(s: EstimatorSnapshot): void {
    const mismatch = (why: string) => new SyncactError('ENGINE_SNAPSHOT_MISMATCH', `sliding correlation: ${why}`);
    if (s.kind !== KIND) throw mismatch(`cannot restore a '${s.kind}' snapshot`);
    if (s.version !== VERSION) throw mismatch(`unknown snapshot version ${s.version}`);
    const c = s.scalars;
    if (
      c.units !== this.U ||
      c.features !== this.F ||
      c.window !== this.W ||
      c.shifts !== this.S ||
      c.exponential !== (this.exponential ? 1 : 0) ||
      c.lambda !== this.lambda
    ) {
      throw mismatch('snapshot was written with different options');
    }
    if (c.seriesLength !== this.T || !Object.is(c.seriesSum, this.serSum)) {
      throw mismatch('snapshot was written with another unit series for the circular nulls');
    }
    const lags = s.arrays.lags;
    if (!lags || lags.length !== this.S || lags.some((v, i) => v !== this.lags[i])) {
      throw mismatch('snapshot null shifts differ (another seed or shift range)');
    }
    const targets: Record<string, Float64Array | Uint8Array | Int32Array> = {
      hist: this.hist,
      histOk: this.histOk,
      fring: this.fring,
      fringOk: this.fringOk,
      offU: this.offU,
      offF: this.offF,
      su: this.su,
      suu: this.suu,
      sf: this.sf,
      sff: this.sff,
      suf: this.suf,
      badU: this.badU,
      badF: this.badF,
      nsu: this.nsu,
      nsuu: this.nsuu,
      nsf: this.nsf,
      nsff: this.nsff,
      nsuf: this.nsuf,
      nBadU: this.nBadU,
      nWeight: this.nWeight,
    };
    for (const [name, dst] of Object.entries(targets)) {
      const src = s.arrays[name];
      if (!src || src.length !== dst.length || src.constructor !== dst.constructor) {
        throw mismatch(`snapshot array '${name}' is missing or has the wrong size`);
      }
    }
    for (const [name, dst] of Object.entries(targets)) dst.set(s.arrays[name] as never);
    this.k = c.k;
    this.weight = c.weight;
    this.drift = c.drift;
  }
}

/**
 * The null series centred per unit on its first finite value (as the live inputs are).
 * A non-finite value is 0 and flagged (rectangular: the shifts whose window holds it skip
 * that unit), or the unit's mean over the run (exponential, as the live imputation by the
 * running mean, which adds nothing to the centred cross-products).
 */
function centreSeries(series: Float64Array, U: number, exponential: boolean): { values: Float64Array; ok: Uint8Array; checksum: number } {
  const T = series.length / U;
  const values = new Float64Array(series.length);
  const ok = new Uint8Array(series.length);
  let checksum = 0;
  for (let i = 0; i < U; i++) {
    let off = NaN;
    let sum = 0;
    let n = 0;
    for (let t = 0; t < T; t++) {
      const q = t * U + i;
      const v = series[q];
      if (!Number.isFinite(v)) continue;
      if (Number.isNaN(off)) off = v;
      values[q] = v - off;
      ok[q] = 1;
      sum += values[q];
      n++;
      checksum += v * ((q % 13) + 1);
    }
    if (!exponential) continue;
    const mean = n > 0 ? sum / n : 0;
    for (let t = 0; t < T; t++) {
      const q = t * U + i;
      if (ok[q]) continue;
      values[q] = mean;
      ok[q] = 1;
    }
  }
  return { values, ok, checksum };
}

/**
 * The exact twin of the rectangular estimator: Pearson r of every pair over TRs
 * [endTr − W + 1, endTr] (or [0, endTr] before W TRs), two-pass, from the raw series.
 * Same conventions: NaN before 3 samples, for a numerically constant window, and for a
 * series with a non-finite sample in the window.
 * @param units unit responses, one Float64Array(U) per TR.
 * @param features brain features, one Float64Array(F) per TR.
 */
export function batchWindowCorrelation(
  units: Float64Array[],
  features: Float64Array[],
  endTr: number,
  window: number,
): Float64Array {
  if (!(endTr >= 0 && endTr < units.length && endTr < features.length)) {
    throw bad(`batch window correlation: endTr ${endTr} is outside the ${Math.min(units.length, features.length)} TRs given`);
  }
  const start = Math.max(0, endTr - window + 1);
  const weights = new Float64Array(endTr - start + 1).fill(1);
  return weightedCorrelation(units, features, start, weights);
}

/**
 * The exact twin of the exponential estimator: weighted Pearson r over TRs [0, endTr]
 * with weights 2^(−(endTr − t)/halfLife). Expects finite inputs (the incremental
 * estimator's mean imputation of missing samples has no batch counterpart).
 */
export function batchExponentialCorrelation(
  units: Float64Array[],
  features: Float64Array[],
  endTr: number,
  halfLife: number,
): Float64Array {
  if (!(endTr >= 0 && endTr < units.length && endTr < features.length)) {
    throw bad(`batch exponential correlation: endTr ${endTr} is outside the TRs given`);
  }
  const lam = Math.pow(2, -1 / halfLife);
  const weights = new Float64Array(endTr + 1);
  for (let t = 0; t <= endTr; t++) weights[t] = Math.pow(lam, endTr - t);
  return weightedCorrelation(units, features, 0, weights);
}

function weightedCorrelation(units: Float64Array[], features: Float64Array[], start: number, w: Float64Array): Float64Array {
  const n = w.length;
  const U = units[start].length;
  const F = features[start].length;
  const out = new Float64Array(U * F).fill(NaN);
  if (n < MIN_SAMPLES) return out;
  let sw = 0;
  for (let t = 0; t < n; t++) sw += w[t];
  const centre = (get: (t: number) => number): Float64Array | null => {
    // Relative to the first sample, as the incremental estimator's fixed offset, so an
    // exactly constant window has exactly zero variance.
    const v0 = get(0);
    const c = new Float64Array(n);
    let m = 0;
    for (let t = 0; t < n; t++) {
      const v = get(t);
      if (!Number.isFinite(v)) return null;
      c[t] = v - v0;
      m += w[t] * c[t];
    }
    m /= sw;
    let css = 0;
    let uss = 0;
    for (let t = 0; t < n; t++) {
      uss += w[t] * c[t] * c[t];
      c[t] -= m;
      css += w[t] * c[t] * c[t];
    }
    if (!(css > ZERO_VARIANCE * uss && css > 0)) return null;
    const s = 1 / Math.sqrt(css);
    for (let t = 0; t < n; t++) c[t] *= s;
    return c;
  };
  const cu: (Float64Array | null)[] = [];
  const cf: (Float64Array | null)[] = [];
  for (let i = 0; i < U; i++) cu.push(centre((t) => units[start + t][i]));
  for (let f = 0; f < F; f++) cf.push(centre((t) => features[start + t][f]));
  for (let i = 0; i < U; i++) {
    const a = cu[i];
    if (!a) continue;
    for (let f = 0; f < F; f++) {
      const b = cf[f];
      if (!b) continue;
      let acc = 0;
      for (let t = 0; t < n; t++) acc += w[t] * a[t] * b[t];
      out[i * F + f] = acc > 1 ? 1 : acc < -1 ? -1 : acc;
    }
  }
  return out;
}
