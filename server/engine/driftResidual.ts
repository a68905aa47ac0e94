/**
 * Causal removal of the nuisance part of each volume (drift, constant, confounds) before
 * online dictionary learning: the residual of volume k is
 *
 *   r_k = y_k − B_k' x_k,   B_k = (X_k'X_k)⁻¹ X_k'Y_k
 *
 * where x_k is TR k's nuisance row (the GLM's design extras: DCT drift row with its
 * constant, then confounds) and X_k, Y_k hold every row and volume up to and including k.
 * So B_k is each voxel's ordinary least-squares fit of its time series on the nuisance
 * regressors, over the TRs seen so far, shared by all voxels like the GLM's gain.
 *
 * Why: a running z-score alone leaves the slow drift in the samples. On the demo session
 * (drift SD half the noise SD per coefficient, SNR 1) the drift is the largest shared
 * spatial pattern of the run, and the dictionary spends atoms on it: the planted maps came
 * out at |r| 0.1–0.7. The GLM already removes the same regressors from its maps; this
 * gives the dictionary the same view of the data.
 *
 * Exact, not recursive: X'X (E×E) and X'Y (E×V) are accumulated and r_k is formed from
 * w = (X'X)⁻¹x_k as y_k − w'(X'Y), 2·E·V per TR and no round-off drift. Before X'X has
 * full rank a ridge of 1e-10·tr(X'X) keeps the solve defined (and, while the early
 * cosines are nearly collinear, decides the fit: the tests compare with QR least squares
 * on X with √ε·I rows appended, which is what this computes); the residual has no
 * degrees of freedom (it is round-off, which a z-score would blow up to unit variance), so
 * the first E TRs give NaN: the standardizer and the dictionary skip NaN voxels, and the
 * dictionary seeds no atom from an empty sample.
 *
 * Missing data, as the GLM treats it: a voxel that is non-finite in some volume retires
 * (NaN from then on; its fit would need its own X'X without that TR, and a voxel that
 * drops out once is rarely trustworthy later). A volume with no finite voxel at all is a
 * dropped volume, not a retirement: it gives NaN and leaves the fit as it was.
 */
import { SyncactError } from '../errors.ts';
import type { Estimator, EstimatorSnapshot } from './estimator.ts';

export interface DriftResidualOptions {
  /** V, voxels per volume. */
  voxels: number;
  /** E, nuisance regressors per TR. */
  regressors: number;
}

const KIND = 'driftResidual';
const VERSION = 1;

function bad(message: string): SyncactError {
  return new SyncactError('ENGINE_BAD_INPUT', `drift residual: ${message}`);
}

export class DriftResidual implements Estimator {
  readonly voxels: number;
  readonly regressors: number;
  private readonly xtx: Float64Array;
  /** X'Y, regressor-major: [a·V + v]. */
  private readonly xty: Float64Array;
  private readonly w: Float64Array;
  private readonly chol: Float64Array;
  /** 1 for voxels that have been non-finite (NaN from then on). */
  private readonly retired: Uint8Array;
  private trs = 0;

  constructor(o: DriftResidualOptions) {
    if (!(Number.isInteger(o.voxels) && o.voxels >= 1)) throw bad(`voxels must be a positive integer, got ${o.voxels}`);
    if (!(Number.isInteger(o.regressors) && o.regressors >= 1)) throw bad(`regressors must be a positive integer, got ${o.regressors}`);
    this.voxels = o.voxels;
    this.regressors = o.regressors;
    const E = o.regressors;
    this.xtx = new Float64Array(E * E);
    this.xty = new Float64Array(E * o.voxels);
    this.w = new Float64Array(E);
    this.chol = new Float64Array(E * E);
    this.retired = new Uint8Array(o.voxels);
  }

  /** TRs fitted (dropped volumes not counted). */
  get count(): number {
    return this.trs;
  }

  /**
   * Adds TR k (its nuisance row x and volume y) and writes y's residual after the fit
   * over TRs 0..k into `out` (V values; may not alias y when y is float32).
   */
  update(x: Float64Array, y: Float32Array | Float64Array, out: Float64Array): Float64Array {
    const E = this.regressors;
    const V = this.voxels;
    if (x.length !== E) throw bad(`got ${x.length} regressors, expected ${E}`);
    if (y.length !== V || out.length !== V) throw bad(`volume and output must have ${V} voxels, got ${y.length} and ${out.length}`);
    for (let a = 0; a < E; a++) if (!Number.isFinite(x[a])) throw bad(`regressor ${a} is ${x[a]} at TR ${this.trs}`);
    let finite = 0;
    for (let v = 0; v < V; v++) if (Number.isFinite(y[v])) finite++;
    if (finite === 0) return out.fill(NaN);
    const retired = this.retired;
    if (finite < V) for (let v = 0; v < V; v++) if (!Number.isFinite(y[v])) retired[v] = 1;
    const G = this.xtx;
    for (let a = 0; a < E; a++) for (let b = 0; b < E; b++) G[a * E + b] += x[a] * x[b];
    const S = this.xty;
    for (let a = 0; a < E; a++) accumulate(S, a * V, x[a], y, V);
    this.solve(x);
    this.trs++;
    if (this.trs <= E) return out.fill(NaN);
    for (let v = 0; v < V; v++) out[v] = y[v];
    for (let a = 0; a < E; a++) subtract(out, -this.w[a], S, a * V, V);
    for (let v = 0; v < V; v++) if (retired[v]) out[v] = NaN;
    return out;
  }

  snapshot(): EstimatorSnapshot {
    return {
      kind: KIND,
      version: VERSION,
      scalars: { voxels: this.voxels, regressors: this.regressors, count: this.trs },
      arrays: { xtx: this.xtx.slice(), xty: this.xty.slice(), retired: this.retired.slice() },
    };
  }

  restore(s: EstimatorSnapshot): void {
    const mismatch = (why: string) => new SyncactError('ENGINE_SNAPSHOT_MISMATCH', `drift residual: ${why}`);
    if (s.kind !== KIND) throw mismatch(`cannot restore a '${s.kind}' snapshot`);
    if (s.version !== VERSION) throw mismatch(`unknown snapshot version ${s.version}`);
    if (s.scalars.voxels !== this.voxels || s.scalars.regressors !== this.regressors) {
      throw mismatch(`snapshot is for ${s.scalars.voxels} voxels × ${s.scalars.regressors} regressors, this one ${this.voxels} × ${this.regressors}`);
    }
    const { xtx, xty, retired } = s.arrays;
    const sized = (a: unknown, like: Float64Array | Uint8Array) => a instanceof like.constructor && (a as Float64Array).length === like.length;
    if (!(sized(xtx, this.xtx) && sized(xty, this.xty) && sized(retired, this.retired))) {
      throw mismatch('snapshot arrays are missing or have the wrong size');
    }
    this.retired.set(retired as Uint8Array);
    this.xtx.set(xtx);
    this.xty.set(xty);
    this.trs = s.scalars.count;
  }

  /** w = (X'X + εI)⁻¹ x by Cholesky (E is a handful). */
  private solve(x: Float64Array): void {
    const E = this.regressors;
    const G = this.xtx;
    const L = this.chol;
    let trace = 0;
    for (let a = 0; a < E; a++) trace += G[a * E + a];
    const ridge = 1e-10 * trace + 1e-300;
    for (let i = 0; i < E; i++) {
      for (let j = 0; j <= i; j++) {
        let s = G[i * E + j] + (i === j ? ridge : 0);
        for (let k = 0; k < j; k++) s -= L[i * E + k] * L[j * E + k];
        L[i * E + j] = i === j ? Math.sqrt(Math.max(s, ridge)) : s / L[j * E + j];
      }
    }
    const w = this.w;
    for (let i = 0; i < E; i++) {
      let s = x[i];
      for (let k = 0; k < i; k++) s -= L[i * E + k] * w[k];
      w[i] = s / L[i * E + i];
    }
    for (let i = E - 1; i >= 0; i--) {
      let s = w[i];
      for (let k = i + 1; k < E; k++) s -= L[k * E + i] * w[k];
      w[i] = s / L[i * E + i];
    }
  }
}

/** S[off + v] += c·y[v] (a retired voxel's S is never read, so a NaN there is harmless). */
function accumulate(S: Float64Array, off: number, c: number, y: Float32Array | Float64Array, n: number): void {
  if (c === 0) return;
  for (let v = 0; v < n; v++) S[off + v] += c * y[v];
}

/** out[v] += c·S[off + v]. */
function subtract(out: Float64Array, c: number, S: Float64Array, off: number, n: number): void {
  if (c === 0) return;
  for (let v = 0; v < n; v++) out[v] += c * S[off + v];
}
