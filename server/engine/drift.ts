/**
 * Drift regressors for the voxelwise GLM, one row per TR.
 *
 * Known run length (replay, batch): the DCT-II high-pass basis of nilearn's
 * `_cosine_drift(high_pass, frame_times)` (the same set SPM's spm_filter removes):
 *     order  = min(n - 1, floor(2 · n · high_pass · dt)),  dt = (t[n-1] - t[0]) / (n - 1)
 *     column k-1 (k = 1 … order) = sqrt(2/n) · cos(π/n · (t_index + 0.5) · k)
 *     last column = 1 (the constant)
 * so a row has order + 1 entries with the constant last, exactly nilearn's layout. Pass
 * `constant: false` when the design already has its own intercept.
 *
 * Unknown run length (live mode): shifted Legendre polynomials P_j(2t/scale − 1),
 * j = 1 … order, in seconds since the run start, with a FIXED time scale (default 600 s,
 * a typical movie run). Why fixed rather than rescaled to the elapsed time: a recursive
 * least-squares design must never change a row it has already used, so row k can depend
 * only on t_k. Past `scale` the polynomials simply keep growing (at order 3 they stay small
 * enough for double precision over hours). Same layout: constant last unless disabled.
 */
import { SyncactError } from '../errors.ts';

/** nilearn's and SPM's default cut-off, 1/128 Hz. */
export const DEFAULT_HIGH_PASS = 1 / 128;

export interface DriftRowOptions {
  /** Append the constant column (nilearn's layout). Default true. */
  constant?: boolean;
  out?: Float64Array;
}

function checkRun(n: number, tr: number, highPass: number): void {
  if (!Number.isInteger(n) || n < 1) throw new SyncactError('ENGINE_BAD_INPUT', `drift: run length must be a positive integer, got ${n}`);
  if (!(tr > 0) || !Number.isFinite(tr)) throw new SyncactError('ENGINE_BAD_INPUT', `drift: TR must be positive, got ${tr}`);
  if (!(highPass >= 0) || !Number.isFinite(highPass)) throw new SyncactError('ENGINE_BAD_INPUT', `drift: high_pass must be >= 0 Hz, got ${highPass}`);
}

/** Number of cosine regressors nilearn uses for n frames at this TR (the constant excluded). */
export function cosineDriftOrder(n: number, tr: number, highPass: number = DEFAULT_HIGH_PASS): number {
  checkRun(n, tr, highPass);
  if (n < 2) return 0;
  // dt from the frame times t_i = i·tr, in the same floating-point steps as nilearn
  const dt = ((n - 1) * tr - 0) / (n - 1);
  return Math.min(n - 1, Math.floor(2 * n * highPass * dt));
}

/**
 * Row k (0-based TR) of nilearn's cosine drift matrix for a run of n TRs: the order cosines,
 * then the constant 1 unless `constant: false`.
 */
export function dctRow(k: number, n: number, tr: number, highPass: number = DEFAULT_HIGH_PASS, options: DriftRowOptions = {}): Float64Array {
  const order = cosineDriftOrder(n, tr, highPass);
  if (!Number.isInteger(k) || k < 0 || k >= n) throw new SyncactError('ENGINE_BAD_INPUT', `drift: TR ${k} is outside a run of ${n}`);
  const constant = options.constant ?? true;
  const width = order + (constant ? 1 : 0);
  const out = options.out ?? new Float64Array(width);
  if (out.length !== width) throw new SyncactError('ENGINE_BAD_INPUT', `drift: output has length ${out.length}, expected ${width}`);
  const norm = Math.sqrt(2.0 / n);
  for (let j = 1; j <= order; j++) out[j - 1] = norm * Math.cos((Math.PI / n) * (k + 0.5) * j);
  if (constant) out[order] = 1;
  return out;
}

/** The whole n × (order + 1) matrix, row-major, as nilearn's `_cosine_drift` returns it. */
export function cosineDriftMatrix(n: number, tr: number, highPass: number = DEFAULT_HIGH_PASS): Float64Array {
  const width = cosineDriftOrder(n, tr, highPass) + 1;
  const out = new Float64Array(n * width);
  for (let k = 0; k < n; k++) dctRow(k, n, tr, highPass, { out: out.subarray(k * width, (k + 1) * width) });
  return out;
}

export interface PolynomialDriftOptions extends DriftRowOptions {
  /** Highest polynomial degree, default 3. */
  order?: number;
  /** Time scale in seconds mapped to [-1, 1], default 600. */
  scale?: number;
}

/**
 * Live-mode drift row at time t seconds: P_1 … P_order of x = 2t/scale − 1 (Legendre,
 * by Bonnet's recursion), then the constant unless disabled.
 */
export function legendreDriftRow(t: number, options: PolynomialDriftOptions = {}): Float64Array {
  const order = options.order ?? 3;
  const scale = options.scale ?? 600;
  const constant = options.constant ?? true;
  if (!Number.isInteger(order) || order < 0) throw new SyncactError('ENGINE_BAD_INPUT', `drift: polynomial order must be a non-negative integer, got ${order}`);
  if (!(scale > 0) || !Number.isFinite(scale)) throw new SyncactError('ENGINE_BAD_INPUT', `drift: polynomial scale must be positive, got ${scale}`);
  if (!Number.isFinite(t)) throw new SyncactError('ENGINE_BAD_INPUT', `drift: time must be finite, got ${t}`);
  const width = order + (constant ? 1 : 0);
  const out = options.out ?? new Float64Array(width);
  if (out.length !== width) throw new SyncactError('ENGINE_BAD_INPUT', `drift: output has length ${out.length}, expected ${width}`);
  const x = (2 * t) / scale - 1;
  let pPrev = 1; // P_0
  let p = x; // P_1
  for (let j = 1; j <= order; j++) {
    out[j - 1] = p;
    const next = ((2 * j + 1) * x * p - j * pPrev) / (j + 1);
    pPrev = p;
    p = next;
  }
  if (constant) out[order] = 1;
  return out;
}
