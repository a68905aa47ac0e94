/**
 * The batch twin of UnitMaps: for each unit on its own, ordinary least squares of the raw
 * volumes on [nuisance columns in the fit, the unit's response] by Householder QR
 * (batchOls, glmBatch.ts) — no referencing, no running sums, no rotations, so the tests
 * compare two different computations.
 *
 * Which nuisance columns are in the fit follows UnitMaps' rule, decided here on its own:
 * the intercept first, then the other extras in order, as long as each keeps more than
 * `rankTolerance` of its energy outside the span of the earlier ones (measured by
 * Gram–Schmidt with reorthogonalisation on the whole columns).
 */
import { SyncactError } from '../errors.ts';
import { batchOls } from './glmBatch.ts';
import { RANK_TOLERANCE } from './glmDense.ts';

export interface BatchUnitMapsInput {
  /** T×U unit responses, row-major. */
  units: Float64Array;
  /** T×E design extras, row-major. */
  extras: Float64Array;
  /** T×V volumes, row-major. */
  volumes: Float32Array;
  trs: number;
  unitCount: number;
  extraCount: number;
  voxels: number;
  /** As UnitMapsOptions.interceptColumn (omitted: an intercept is added). */
  interceptColumn?: number;
  rankTolerance?: number;
}

export interface BatchUnitMaps {
  /** Nuisance columns in the fit. */
  nuisance: number;
  /** U×V row-major. */
  betas: Float64Array;
  /** U×V row-major. */
  t: Float64Array;
}

/** Nuisance matrix in UnitMaps' column order (T×P row-major): constant first. */
function orderedNuisance(input: BatchUnitMapsInput): { n: Float64Array; p: number } {
  const { trs: T, extraCount: E, extras, interceptColumn: ic } = input;
  const p = ic === undefined ? E + 1 : E;
  const n = new Float64Array(T * p);
  for (let t = 0; t < T; t++) {
    const row = extras.subarray(t * E, (t + 1) * E);
    let k = 0;
    n[t * p + k++] = ic === undefined ? 1 : row[ic];
    for (let j = 0; j < E; j++) if (j !== ic) n[t * p + k++] = row[j];
  }
  return { n, p };
}

/** Leading columns each with more than `tolerance` of their energy outside the earlier ones' span. */
function leadingIdentifiable(n: Float64Array, T: number, p: number, tolerance: number): number {
  const basis: Float64Array[] = [];
  for (let j = 0; j < p; j++) {
    const col = Float64Array.from({ length: T }, (_, t) => n[t * p + j]);
    const energy = col.reduce((s, x) => s + x * x, 0);
    for (let pass = 0; pass < 2; pass++) {
      for (const q of basis) {
        let d = 0;
        for (let t = 0; t < T; t++) d += q[t] * col[t];
        for (let t = 0; t < T; t++) col[t] -= d * q[t];
      }
    }
    const left = col.reduce((s, x) => s + x * x, 0);
    if (!(energy > 0) || !(left > tolerance * energy)) return j;
    const norm = Math.sqrt(left);
    basis.push(col.map((x) => x / norm));
  }
  return p;
}

export function batchUnitMaps(input: BatchUnitMapsInput): BatchUnitMaps {
  const { trs: T, unitCount: U, voxels: V, units, volumes } = input;
  if (units.length !== T * U || volumes.length !== T * V || input.extras.length !== T * input.extraCount) {
    throw new SyncactError('ENGINE_BAD_INPUT', 'batchUnitMaps: array lengths do not match T, U, E, V');
  }
  const tolerance = input.rankTolerance ?? RANK_TOLERANCE;
  const { n, p } = orderedNuisance(input);
  const r = leadingIdentifiable(n, T, p, tolerance);
  const betas = new Float64Array(U * V).fill(NaN);
  const t = new Float64Array(U * V).fill(NaN);
  if (r === 0) return { nuisance: 0, betas, t };
  const cols = r + 1;
  const X = new Float64Array(T * cols);
  for (let u = 0; u < U; u++) {
    for (let k = 0; k < T; k++) {
      for (let j = 0; j < r; j++) X[k * cols + j] = n[k * p + j];
      X[k * cols + r] = units[k * U + u];
    }
    const fit = batchOls(X, volumes, T, cols, V, undefined, tolerance);
    betas.set(fit.betas.subarray(r * V, (r + 1) * V), u * V);
    t.set(fit.t.subarray(r * V, (r + 1) * V), u * V);
  }
  return { nuisance: r, betas, t };
}
