/**
 * Synchronized FBN maps: the voxelwise GLM of every voxel on the same design (K unit
 * responses + intercept + drift [+ confounds], P columns), updated one TR at a time.
 *
 * Algorithm: exact recursive least squares with ONE gain shared by all voxels.
 * - The design is the same for every voxel, so everything P×P is done once per TR in
 *   float64: Φ_k = λΦ_{k−1} + x xᵀ (= XᵀWX) and its Cholesky factor, updated by Givens
 *   rotations (O(P²); never a propagated inverse, which is what makes textbook RLS
 *   drift, and never a factor of the formed XᵀX, which squares the conditioning: see
 *   glmDense.ts), then q = xᵀΦ_{k−1}⁻¹x and the gain g = Φ_k⁻¹x = Φ_{k−1}⁻¹x/(λ+q).
 * - Per voxel it is then O(P): e = y − xᵀβ, β ← β + g·e, RSS ← λ·RSS + e²·λ/(λ+q).
 *   That is about P/4 times fewer flops than re-solving (XᵀX)⁻¹XᵀY every TR (O(P²V)),
 *   which would be exact too but ~17× slower at P = 69. The loop runs as a WebAssembly
 *   SIMD kernel (glmWasm.ts; the JavaScript one in glmBlock.ts is the fallback).
 * - It equals batch (weighted) least squares exactly in exact arithmetic once it starts
 *   from the exact solution: until Φ has full rank ("warm-up") the estimator keeps
 *   XᵀWy per voxel (float64, in the space the betas will use) and Σwy², and at the first
 *   full-rank TR it solves the normal equations once (O(P²V), 0.4 s at V = 200k, P = 69)
 *   — no δ·I prior, so there is nothing to forget.
 * - Betas are float64, voxel-major (V×P, 110 MB at V = 200k, P = 69). float32 storage
 *   was tried and fails the 1e-4 agreement with batch OLS: early in a run the drift
 *   columns are nearly collinear, the exact start has betas of order 1e4–1e6 in those
 *   directions, and their float32 rounding (6e-8 relative) lands as absolute errors of
 *   ~1e-2 on unit betas of order 1, which RLS only forgets slowly (like j/k). Measured on
 *   a test design (rank tolerance 1e-10): 3e-2 relative with float32, 1e-6 with float64
 *   (the JavaScript loop is compute-bound and no slower in float64; the SIMD kernel is
 *   bound by memory, 2 × 110 MB per TR). RSS and Σwy² are float64 sums too.
 * - If, with λ < 1, the forgotten design loses full rank, the estimator goes back to
 *   warm-up, rebuilding XᵀWy = Φβ exactly from the normal equations (O(P²V), rare).
 *
 * Forgetting λ ∈ (0, 1]: TR t gets weight λ^{k−t} at TR k; λ = 1 is ordinary least
 * squares. rss() is the weighted Σ w r². The t statistic treats the weights as a window
 * over homoscedastic noise (not as inverse variances): Var β̂ = σ²·Φ⁻¹Φ₂Φ⁻¹ with
 * Φ₂ = XᵀW²X, σ̂² = RSS / df, effective df = Σw − tr(Φ⁻¹Φ₂) (the unbiased choice).
 * With λ = 1 these are the textbook σ²(XᵀX)⁻¹_jj and T − P.
 *
 * Undefined read-outs are NaN and never throw: every read-out before full rank (here:
 * every column keeps more than `rankTolerance`, by default 1e-6, of its weighted energy
 * outside the span of the earlier ones; glmDense.ts explains the choice); t before
 * df > 0; t of a voxel fit exactly (RSS ≤ 1e-13·Σwy², e.g. a constant voxel: σ² = 0);
 * and every read-out of a voxel that has seen a NaN or ±Infinity sample — such a voxel no
 * longer shares the design (a sample is missing), so it is frozen and reported as NaN
 * from that TR on, without touching any other voxel.
 *
 * Workers: with `workers` ≥ 1 the voxels are split in blocks over worker threads sharing
 * the state through one shared memory (glmPool.ts); update() stays synchronous (the
 * calling thread sleeps in Atomics.wait). Results are bitwise identical to in-thread.
 * Call dispose() to stop them (they are unref'd, so a forgotten dispose() does not keep
 * the process alive).
 *
 * A non-finite design row is a wiring bug, not data: update() rejects it with
 * ENGINE_BAD_INPUT before touching any state.
 */
import { availableParallelism } from 'node:os';
import { SyncactError } from '../errors.ts';
import type { Estimator, EstimatorSnapshot } from './estimator.ts';
import { EXACT_FIT, RANK_TOLERANCE, choleskySolve, fullRank, givensUpdate, scaleAddOuter } from './glmDense.ts';
import {
  GlmCommand,
  PARAM_LAMBDA,
  PARAM_RSS_FACTOR,
  paramGain,
  paramMatrix,
  paramUpper,
  paramX,
  createGlmState,
  runGlmBlock,
  type GlmArrays,
} from './glmBlock.ts';
import { GlmWorkerPool } from './glmPool.ts';

export { batchOls, type BatchOlsResult } from './glmBatch.ts';
export { EXACT_FIT, RANK_TOLERANCE } from './glmDense.ts';

export interface GlmOptions {
  /** V: voxels per volume (masked). */
  voxels: number;
  /** P: all design columns, including intercept, drift and confounds. */
  regressors: number;
  /** λ ∈ (0, 1], default 1 (ordinary least squares). */
  forgetting?: number;
  /**
   * How independent each column must be of the earlier ones before the fit is reported
   * (its fraction of energy outside their span, 1/VIF against them); default
   * RANK_TOLERANCE = 1e-6, chosen for agreement with batch QR to 1e-4 (see glmDense.ts).
   * Smaller values show maps earlier on designs with slow drifts, less accurately at first.
   */
  rankTolerance?: number;
  /**
   * Worker threads sharing the voxel loop; 0 = all in the calling thread. Default:
   * min(2, cores) when voxels ≥ 20,000 and there are at least 2 cores, else 0.
   */
  workers?: number;
}

/** Below this many voxels the workers' wake-up costs more than they save. */
const WORKERS_FROM_VOXELS = 20_000;

const SNAPSHOT_KIND = 'glm';
const SNAPSHOT_VERSION = 1;

function badInput(message: string): SyncactError {
  return new SyncactError('ENGINE_BAD_INPUT', `VoxelwiseGlm: ${message}`);
}

export class VoxelwiseGlm implements Estimator {
  readonly voxels: number;
  readonly regressors: number;
  readonly forgetting: number;
  readonly rankTolerance: number;

  private trs = 0;
  /** Σ w_t. */
  private weightSum = 0;
  /** Φ = XᵀWX and Φ₂ = XᵀW²X (P×P). */
  private phi: Float64Array;
  private phi2: Float64Array;
  /** Lower Cholesky factor of phi (Givens-updated every TR, valid through rank deficiency). */
  private factor: Float64Array;
  private nextPhi: Float64Array;
  private fittedState = false;
  private readonly arrays: GlmArrays;
  private readonly params: Float64Array;
  private pool: GlmWorkerPool | null = null;
  private disposed = false;
  private readonly scratch: Float64Array;
  /** Cached per TR: df and the variance factor of each column for tmap(). */
  private statsAt = -1;
  private dfCache = NaN;
  private readonly varianceCache: Float64Array;

  constructor(options: GlmOptions) {
    const { voxels, regressors } = options;
    const forgetting = options.forgetting ?? 1;
    if (!Number.isInteger(voxels) || voxels < 1) throw badInput(`voxels must be a positive integer, got ${voxels}`);
    if (!Number.isInteger(regressors) || regressors < 1) {
      throw badInput(`regressors must be a positive integer, got ${regressors}`);
    }
    if (!(forgetting > 0 && forgetting <= 1)) throw badInput(`forgetting must be in (0, 1], got ${forgetting}`);
    const rankTolerance = options.rankTolerance ?? RANK_TOLERANCE;
    if (!(rankTolerance > 0 && rankTolerance < 1)) throw badInput(`rankTolerance must be in (0, 1), got ${rankTolerance}`);
    const cores = availableParallelism();
    const workers = options.workers ?? (voxels >= WORKERS_FROM_VOXELS && cores >= 2 ? Math.min(2, cores) : 0);
    if (!Number.isInteger(workers) || workers < 0) throw badInput(`workers must be a non-negative integer, got ${workers}`);
    this.voxels = voxels;
    this.regressors = regressors;
    this.forgetting = forgetting;
    this.rankTolerance = rankTolerance;
    const p = regressors;
    this.phi = new Float64Array(p * p);
    this.phi2 = new Float64Array(p * p);
    this.factor = new Float64Array(p * p);
    this.nextPhi = new Float64Array(p * p);
    this.scratch = new Float64Array(p);
    this.varianceCache = new Float64Array(p);
    const state = createGlmState(voxels, p, workers > 0);
    this.params = state.params;
    this.params[PARAM_LAMBDA] = forgetting;
    this.arrays = state.arrays;
    if (workers > 0) this.pool = new GlmWorkerPool(workers, state);
  }

  /** TRs seen. */
  get count(): number {
    return this.trs;
  }

  /** True once the design has full rank and the read-outs are defined. */
  get fitted(): boolean {
    return this.fittedState;
  }

  /** Worker threads in use (0 = in-thread). */
  get workers(): number {
    return this.pool?.size ?? 0;
  }

  /**
   * Adds one TR: `x` is the design row (P, finite), `y` the volume's masked voxels (V).
   * Neither is modified. A non-finite y[v] retires voxel v (see the file comment).
   */
  update(x: Float64Array, y: Float32Array): void {
    this.checkUsable();
    const p = this.regressors;
    if (x.length !== p) throw badInput(`design row has ${x.length} values, expected ${p}`);
    if (y.length !== this.voxels) throw badInput(`volume has ${y.length} voxels, expected ${this.voxels}`);
    for (let j = 0; j < p; j++) {
      if (!Number.isFinite(x[j])) throw badInput(`design row value ${j} is ${x[j]} (the design must be finite)`);
    }
    const lambda = this.forgetting;
    this.arrays.y.set(y);
    this.params.set(x, paramX(p));
    const wasFitted = this.fittedState;
    if (wasFitted) {
      // Gain from the factor of Φ_{k−1} (Sherman–Morrison: no cancellation, λ + q > 0).
      const u = this.scratch;
      choleskySolve(this.factor, p, x, u);
      let q = 0;
      for (let j = 0; j < p; j++) q += x[j] * u[j];
      const go = paramGain(p);
      for (let j = 0; j < p; j++) this.params[go + j] = u[j] / (lambda + q);
      this.params[PARAM_RSS_FACTOR] = lambda / (lambda + q);
    }
    const nextPhi = this.nextPhi;
    nextPhi.set(this.phi);
    scaleAddOuter(nextPhi, p, lambda, x);
    givensUpdate(this.factor, p, lambda, x, this.scratch);
    const rankOk = fullRank(this.factor, nextPhi, p, this.rankTolerance);

    if (!wasFitted) {
      this.run(GlmCommand.Accumulate);
      if (rankOk) {
        const lo = paramMatrix(p);
        const uo = paramUpper(p);
        for (let i = 0; i < p; i++) {
          for (let k = 0; k < p; k++) {
            this.params[lo + i * p + k] = this.factor[i * p + k];
            this.params[uo + k * p + i] = this.factor[i * p + k];
          }
        }
        this.run(GlmCommand.Init);
        this.fittedState = true;
      }
    } else if (rankOk) {
      this.run(GlmCommand.Rls);
    } else {
      // Only reachable with λ < 1: the forgotten design lost rank. Back to warm-up.
      this.params.set(this.phi, paramMatrix(p));
      this.run(GlmCommand.Reenter);
      this.fittedState = false;
    }
    [this.phi, this.nextPhi] = [nextPhi, this.phi];
    scaleAddOuter(this.phi2, p, lambda * lambda, x);
    this.weightSum = lambda * this.weightSum + 1;
    this.trs++;
  }

  /** Column `column` of the betas, one value per voxel (NaN where undefined). */
  betas(column: number, out?: Float32Array): Float32Array {
    this.checkUsable();
    this.checkColumn(column);
    const o = this.output(out);
    if (!this.fittedState) return o.fill(NaN);
    const { betas, invalid } = this.arrays;
    const p = this.regressors;
    for (let v = 0, i = column; v < this.voxels; v++, i += p) o[v] = invalid[v] ? NaN : betas[i];
    return o;
  }

  /** t statistic of `column` per voxel (NaN where undefined; see the file comment). */
  tmap(column: number, out?: Float32Array): Float32Array {
    this.checkUsable();
    this.checkColumn(column);
    const o = this.output(out);
    const df = this.degreesOfFreedom();
    if (!this.fittedState || !(df > 0)) return o.fill(NaN);
    const scale = this.varianceCache[column] / df;
    const { betas, rss, syy, invalid } = this.arrays;
    const p = this.regressors;
    for (let v = 0, i = column; v < this.voxels; v++, i += p) {
      const r = rss[v];
      o[v] = invalid[v] || !(r > EXACT_FIT * syy[v]) ? NaN : betas[i] / Math.sqrt(r * scale);
    }
    return o;
  }

  /** Weighted residual sum of squares per voxel (NaN where undefined). */
  rss(out?: Float64Array): Float64Array {
    this.checkUsable();
    const o = out ?? new Float64Array(this.voxels);
    if (o.length !== this.voxels) throw badInput(`output has ${o.length} values, expected ${this.voxels}`);
    if (!this.fittedState) return o.fill(NaN);
    const { rss, invalid } = this.arrays;
    for (let v = 0; v < this.voxels; v++) o[v] = invalid[v] ? NaN : rss[v];
    return o;
  }

  /** Effective residual degrees of freedom Σw − tr(Φ⁻¹Φ₂) (T − P when λ = 1); NaN before full rank. */
  degreesOfFreedom(): number {
    if (!this.fittedState) return NaN;
    if (this.statsAt !== this.trs) this.computeStats();
    return this.dfCache;
  }

  snapshot(): EstimatorSnapshot {
    this.checkUsable();
    const a = this.arrays;
    return {
      kind: SNAPSHOT_KIND,
      version: SNAPSHOT_VERSION,
      scalars: {
        voxels: this.voxels,
        regressors: this.regressors,
        forgetting: this.forgetting,
        rankTolerance: this.rankTolerance,
        count: this.trs,
        weightSum: this.weightSum,
        fitted: this.fittedState ? 1 : 0,
      },
      arrays: {
        phi: this.phi.slice(),
        phi2: this.phi2.slice(),
        factor: this.factor.slice(),
        // One V×P array holds the betas when fitted and Xᵀy in warm-up (glmBlock.ts).
        betas: this.fittedState ? a.betas.slice() : new Float64Array(0),
        rss: a.rss.slice(),
        syy: a.syy.slice(),
        invalid: a.invalid.slice(),
        xty: this.fittedState ? new Float64Array(0) : a.betas.slice(),
      },
    };
  }

  restore(s: EstimatorSnapshot): void {
    this.checkUsable();
    const mismatch = (why: string) => new SyncactError('ENGINE_SNAPSHOT_MISMATCH', `VoxelwiseGlm.restore: ${why}`);
    if (s.kind !== SNAPSHOT_KIND) throw mismatch(`snapshot is of kind "${s.kind}", expected "${SNAPSHOT_KIND}"`);
    if (s.version !== SNAPSHOT_VERSION) throw mismatch(`snapshot version ${s.version}, expected ${SNAPSHOT_VERSION}`);
    const sc = s.scalars;
    if (
      sc.voxels !== this.voxels ||
      sc.regressors !== this.regressors ||
      sc.forgetting !== this.forgetting ||
      sc.rankTolerance !== this.rankTolerance
    ) {
      throw mismatch(
        `snapshot is for ${sc.voxels} voxels, ${sc.regressors} regressors, forgetting ${sc.forgetting}, ` +
          `rank tolerance ${sc.rankTolerance}; this estimator has ${this.voxels}, ${this.regressors}, ` +
          `${this.forgetting}, ${this.rankTolerance}`,
      );
    }
    const p = this.regressors;
    const v = this.voxels;
    const fitted = sc.fitted === 1;
    const arr = s.arrays;
    const expect = (name: string, ctor: Function, length: number) => {
      const a = arr[name];
      if (!(a instanceof ctor) || a.length !== length) throw mismatch(`array "${name}" is missing or has the wrong type or length`);
      return a;
    };
    const phi = expect('phi', Float64Array, p * p) as Float64Array;
    const phi2 = expect('phi2', Float64Array, p * p) as Float64Array;
    const factor = expect('factor', Float64Array, p * p) as Float64Array;
    const betas = expect('betas', Float64Array, fitted ? v * p : 0) as Float64Array;
    const rss = expect('rss', Float64Array, v) as Float64Array;
    const syy = expect('syy', Float64Array, v) as Float64Array;
    const invalid = expect('invalid', Uint8Array, v) as Uint8Array;
    const xty = expect('xty', Float64Array, fitted ? 0 : v * p) as Float64Array;
    if (fitted && !fullRank(factor, phi, p, this.rankTolerance)) throw mismatch('snapshot says fitted but its design is not full rank');

    this.phi.set(phi);
    this.phi2.set(phi2);
    this.factor.set(factor);
    this.trs = sc.count;
    this.weightSum = sc.weightSum;
    this.fittedState = fitted;
    this.statsAt = -1;
    const a = this.arrays;
    a.rss.set(rss);
    a.syy.set(syy);
    a.invalid.set(invalid);
    a.betas.set(fitted ? betas : xty);
  }

  /** Stops the worker threads and releases the state; the estimator cannot be used afterwards. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.pool?.dispose();
    this.pool = null;
  }

  private run(command: GlmCommand): void {
    if (!this.pool) return runGlmBlock(command, this.arrays, this.params, this.regressors, 0, this.voxels);
    try {
      this.pool.run(command);
    } catch (e) {
      // Part of the voxels may have moved on and part not: the state is no longer whole.
      this.dispose();
      throw e;
    }
  }

  /** df and, per column j, the variance factor (Φ⁻¹Φ₂Φ⁻¹)_jj. O(P³), once per TR at most. */
  private computeStats(): void {
    const p = this.regressors;
    const col = new Float64Array(p);
    const sol = new Float64Array(p);
    // tr(Φ⁻¹Φ₂) = Σ_j (Φ⁻¹ Φ₂ e_j)_j.
    let trace = 0;
    for (let j = 0; j < p; j++) {
      for (let i = 0; i < p; i++) col[i] = this.phi2[i * p + j];
      choleskySolve(this.factor, p, col, sol);
      trace += sol[j];
    }
    // (Φ⁻¹Φ₂Φ⁻¹)_jj = uᵀΦ₂u with u = Φ⁻¹e_j.
    for (let j = 0; j < p; j++) {
      col.fill(0);
      col[j] = 1;
      choleskySolve(this.factor, p, col, sol);
      let s = 0;
      for (let i = 0; i < p; i++) {
        let r = 0;
        for (let k = 0; k < p; k++) r += this.phi2[i * p + k] * sol[k];
        s += sol[i] * r;
      }
      this.varianceCache[j] = s;
    }
    this.dfCache = this.weightSum - trace;
    this.statsAt = this.trs;
  }

  private output(out?: Float32Array): Float32Array {
    const o = out ?? new Float32Array(this.voxels);
    if (o.length !== this.voxels) throw badInput(`output has ${o.length} values, expected ${this.voxels}`);
    return o;
  }

  private checkColumn(column: number): void {
    if (!Number.isInteger(column) || column < 0 || column >= this.regressors) {
      throw badInput(`column ${column} is not in [0, ${this.regressors})`);
    }
  }

  private checkUsable(): void {
    if (this.disposed) throw badInput('used after dispose()');
  }
}
