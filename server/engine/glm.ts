/**
 * Synchronized FBN maps: the voxelwise GLM of every voxel on the same design (K unit
 * responses, then intercept, drift [+ confounds]: P columns), updated one TR at a time.
 *
 * Algorithm: QR-based recursive least squares (the numerically stable form of RLS), with
 * the orthogonal part shared by all voxels.
 * - The design is the same for every voxel, so the P×P work is done once per TR in
 *   float64: the upper-triangular R of the QR decomposition of the weighted design √W·X
 *   is updated by P Givens rotations that fold the new row x into √λ·R (glmDense.ts).
 * - Per voxel the state is z = Qᵀ√W·y (P values, float64, voxel-major) and the RSS. The
 *   SAME rotations, applied to the pairs (√λ·z_i, y_v), give the new z and a rotated-out
 *   residual e_v: RSS ← λ·RSS + e_v². O(P·V) per TR (glmBlock.ts; a WebAssembly SIMD
 *   kernel, four voxels per pass as two f64x2 pairs, in glmWasm.ts), and at every TR the
 *   state is exactly that of batch QR on the TRs so far, whatever the conditioning: no
 *   normal equations, no warm-up solve, no betas carried from TR to TR. (The Cholesky/RLS
 *   estimator this replaced carried β ← β + g·e from an exact start on the normal
 *   equations, where betas of order 1e4–1e6 in nearly collinear drift directions left
 *   errors up to 1.6e-3 relative early in a run, and had to wait for full rank.)
 * - Read-outs solve with R on demand: β_j = uᵀz with Rᵀu = e_j (one shared triangular
 *   solve, then O(P·V)); t_j = β_j / √(σ²·(Φ⁻¹Φ₂Φ⁻¹)_jj) with Φ⁻¹ = R⁻¹R⁻ᵀ and Φ₂ = R₂ᵀR₂,
 *   R₂ the same QR update with weights squared (λ² per TR; R₂ = R when λ = 1), so that
 *   (Φ⁻¹Φ₂Φ⁻¹)_jj = ‖R₂R⁻¹u‖² and tr(Φ⁻¹Φ₂) = ‖R₂R⁻¹‖_F² never form a normal matrix
 *   either: a formed Φ₂ cost 7e-3 relative on the t of nearly collinear drift columns.
 *
 * Early in a run, before the drift columns are identifiable, unit maps are the fit
 * without them. Columns are taken in design order; `identifiableColumns` (r) counts the
 * leading columns that each keep more than `rankTolerance` of their energy outside the
 * span of the earlier ones. R's leading r×r block and z's first r values ARE the QR of
 * the design restricted to those r columns, so betas and t of a column j < r are the
 * exact OLS fit of that restricted model (its RSS is RSS + Σ_{i≥r} z_i², its df
 * Σw − tr(Φ_r⁻¹Φ₂_r)); columns j ≥ r read NaN. The coupling engine puts the unit
 * responses first and intercept/drift last (coupling.ts), so on the 300-TR demo (K = 10,
 * P = 15) every unit's betas are defined from the 11th TR and its t from the 13th, where
 * the full design (and the estimator before QR) waited until TR 87 (135). Once
 * r = P (`fitted`) the read-outs are the full model's. rss() and degreesOfFreedom()
 * describe the full model only (NaN before full rank).
 *
 * Forgetting λ ∈ (0, 1]: TR t gets weight λ^{k−t} at TR k; λ = 1 is ordinary least
 * squares. rss() is the weighted Σ w r². The t statistic treats the weights as a window
 * over homoscedastic noise (not as inverse variances): Var β̂ = σ²·Φ⁻¹Φ₂Φ⁻¹ with
 * Φ = XᵀWX, Φ₂ = XᵀW²X, σ̂² = RSS / df, effective
 * df = Σw − tr(Φ⁻¹Φ₂) (the unbiased choice). With λ = 1 these are the textbook
 * σ²(XᵀX)⁻¹_jj and T − P. With λ < 1 a column may stop being identifiable (forgotten
 * design) and becomes so again later; the QR state needs no special handling for that.
 *
 * Undefined read-outs are NaN and never throw: columns j ≥ r; t where df ≤ 0; t of a
 * voxel fit exactly (RSS ≤ 1e-13·Σwy², e.g. a constant voxel: σ² = 0); and every read-out
 * of a voxel that has seen a NaN or ±Infinity sample — such a voxel no longer shares the
 * design (a sample is missing), so it is frozen and reported as NaN from that TR on,
 * without touching any other voxel.
 *
 * Workers: with `workers` ≥ 1 the voxels are split in blocks over worker threads sharing
 * the state through one shared buffer (glmPool.ts); update() stays synchronous (the
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
import {
  EXACT_FIT,
  RANK_TOLERANCE,
  identifiableColumns,
  qrRowUpdate,
  solveUpper,
  solveUpperTransposed,
} from './glmDense.ts';
import { GlmCommand, createGlmState, runGlmBlock, setRotations, type GlmArrays } from './glmBlock.ts';
import { GlmWorkerPool } from './glmPool.ts';

export { batchOls, type BatchOlsResult } from './glmBatch.ts';
export { EXACT_FIT, RANK_TOLERANCE } from './glmDense.ts';

export interface GlmOptions {
  /** V: voxels per volume (masked). */
  voxels: number;
  /** P: all design columns, unit responses first, then intercept, drift and confounds. */
  regressors: number;
  /** λ ∈ (0, 1], default 1 (ordinary least squares). */
  forgetting?: number;
  /**
   * How independent each column must be of the earlier ones before it is read out (its
   * fraction of energy outside their span, 1/VIF against them); default
   * RANK_TOLERANCE = 1e-10 (see glmDense.ts for the measurement behind it).
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
/** 2: QR state (R, z); version 1 held the Cholesky/RLS state (betas, Xᵀy). */
const SNAPSHOT_VERSION = 2;

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
  /** R of √W·X (P×P upper triangular, row-major). */
  private readonly factor: Float64Array;
  /** Σ w x_j² per column: the reference for the identifiability test. */
  private readonly energy: Float64Array;
  /** R₂ of W·X (weights squared), Φ₂ = R₂ᵀR₂: for the effective df and variances under forgetting. */
  private readonly factor2: Float64Array;
  private readonly scratchCos: Float64Array;
  private readonly scratchSin: Float64Array;
  /** Identifiable leading columns after the last update. */
  private rank = 0;
  private readonly arrays: GlmArrays;
  private readonly params: Float64Array;
  private pool: GlmWorkerPool | null = null;
  private disposed = false;
  private readonly work: Float64Array;
  /** Cached per TR: df of the restricted model and the variance factor of each column for tmap(). */
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
    this.factor = new Float64Array(p * p);
    this.energy = new Float64Array(p);
    this.factor2 = new Float64Array(p * p);
    this.scratchCos = new Float64Array(p);
    this.scratchSin = new Float64Array(p);
    this.work = new Float64Array(p);
    this.varianceCache = new Float64Array(p);
    const state = createGlmState(voxels, p, workers > 0);
    this.params = state.params;
    this.arrays = state.arrays;
    if (workers > 0) this.pool = new GlmWorkerPool(workers, state);
  }

  /** TRs seen. */
  get count(): number {
    return this.trs;
  }

  /** True once every column is identifiable: the read-outs are the full model's. */
  get fitted(): boolean {
    return this.rank === this.regressors;
  }

  /**
   * r: how many leading columns are identifiable now (0..P). betas/tmap of columns j < r
   * are the fit of the design restricted to those r columns (all P once `fitted`).
   */
  get identifiableColumns(): number {
    return this.rank;
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
    qrRowUpdate(this.factor, p, lambda, x, this.scratchCos, this.scratchSin, this.work);
    setRotations(this.params, p, lambda, this.scratchCos, this.scratchSin);
    this.run(GlmCommand.Rotate);
    for (let j = 0; j < p; j++) this.energy[j] = lambda * this.energy[j] + x[j] * x[j];
    qrRowUpdate(this.factor2, p, lambda * lambda, x, this.scratchCos, this.scratchSin, this.work);
    this.weightSum = lambda * this.weightSum + 1;
    this.trs++;
    this.rank = identifiableColumns(this.factor, this.energy, p, this.rankTolerance);
  }

  /** Column `column` of the betas, one value per voxel (NaN where undefined). */
  betas(column: number, out?: Float32Array): Float32Array {
    this.checkUsable();
    this.checkColumn(column);
    const o = this.output(out);
    const r = this.rank;
    if (column >= r) return o.fill(NaN);
    const u = this.readoutWeights(column);
    const { z, invalid } = this.arrays;
    const p = this.regressors;
    for (let v = 0; v < this.voxels; v++) {
      if (invalid[v]) {
        o[v] = NaN;
        continue;
      }
      const base = v * p;
      let b = 0;
      for (let i = column; i < r; i++) b += u[i] * z[base + i];
      o[v] = b;
    }
    return o;
  }

  /** t statistic of `column` per voxel (NaN where undefined; see the file comment). */
  tmap(column: number, out?: Float32Array): Float32Array {
    this.checkUsable();
    this.checkColumn(column);
    const o = this.output(out);
    const r = this.rank;
    if (column >= r) return o.fill(NaN);
    if (this.statsAt !== this.trs) this.computeStats();
    const df = this.dfCache;
    if (!(df > 0)) return o.fill(NaN);
    const scale = this.varianceCache[column] / df;
    const u = this.readoutWeights(column);
    const { z, rss, syy, invalid } = this.arrays;
    const p = this.regressors;
    for (let v = 0; v < this.voxels; v++) {
      if (invalid[v]) {
        o[v] = NaN;
        continue;
      }
      const base = v * p;
      let b = 0;
      for (let i = column; i < r; i++) b += u[i] * z[base + i];
      // The restricted model leaves z_r..z_{P−1} unexplained too.
      let res = rss[v];
      for (let i = r; i < p; i++) res += z[base + i] * z[base + i];
      o[v] = !(res > EXACT_FIT * syy[v]) ? NaN : b / Math.sqrt(res * scale);
    }
    return o;
  }

  /** Weighted residual sum of squares of the full model per voxel (NaN before full rank and where undefined). */
  rss(out?: Float64Array): Float64Array {
    this.checkUsable();
    const o = out ?? new Float64Array(this.voxels);
    if (o.length !== this.voxels) throw badInput(`output has ${o.length} values, expected ${this.voxels}`);
    if (!this.fitted) return o.fill(NaN);
    const { rss, invalid } = this.arrays;
    for (let v = 0; v < this.voxels; v++) o[v] = invalid[v] ? NaN : rss[v];
    return o;
  }

  /** Effective residual degrees of freedom Σw − tr(Φ⁻¹Φ₂) of the full model (T − P when λ = 1); NaN before full rank. */
  degreesOfFreedom(): number {
    if (!this.fitted) return NaN;
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
      },
      arrays: {
        factor: this.factor.slice(),
        energy: this.energy.slice(),
        factor2: this.factor2.slice(),
        z: a.z.slice(),
        rss: a.rss.slice(),
        syy: a.syy.slice(),
        invalid: a.invalid.slice(),
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
    if (!Number.isInteger(sc.count) || sc.count < 0 || !(sc.weightSum >= 0)) {
      throw mismatch(`snapshot has count ${sc.count} and weight sum ${sc.weightSum}`);
    }
    const p = this.regressors;
    const v = this.voxels;
    const arr = s.arrays;
    const expect = (name: string, ctor: Function, length: number) => {
      const a = arr[name];
      if (!(a instanceof ctor) || a.length !== length) throw mismatch(`array "${name}" is missing or has the wrong type or length`);
      return a;
    };
    const factor = expect('factor', Float64Array, p * p) as Float64Array;
    const energy = expect('energy', Float64Array, p) as Float64Array;
    const factor2 = expect('factor2', Float64Array, p * p) as Float64Array;
    const z = expect('z', Float64Array, v * p) as Float64Array;
    const rss = expect('rss', Float64Array, v) as Float64Array;
    const syy = expect('syy', Float64Array, v) as Float64Array;
    const invalid = expect('invalid', Uint8Array, v) as Uint8Array;

    this.factor.set(factor);
    this.energy.set(energy);
    this.factor2.set(factor2);
    this.trs = sc.count;
    this.weightSum = sc.weightSum;
    this.statsAt = -1;
    const a = this.arrays;
    a.z.set(z);
    a.rss.set(rss);
    a.syy.set(syy);
    a.invalid.set(invalid);
    this.rank = identifiableColumns(this.factor, this.energy, p, this.rankTolerance);
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

  /** u with R_rᵀu = e_column (u_i = 0 for i < column), so that β_column = uᵀz[0:r]. */
  private readoutWeights(column: number): Float64Array {
    const p = this.regressors;
    const e = new Float64Array(p);
    e[column] = 1;
    const u = new Float64Array(p);
    solveUpperTransposed(this.factor, p, this.rank, e, u);
    return u;
  }

  /**
   * For the model restricted to the r identifiable columns: df = Σw − tr(Φ_r⁻¹Φ₂_r) and,
   * per column j < r, the variance factor (Φ_r⁻¹Φ₂_rΦ_r⁻¹)_jj. With u_j = R_r⁻ᵀe_j and
   * m_j = R₂R_r⁻¹u_j (R₂'s leading block: only the first r columns of √W²X): the factor
   * is ‖m_j‖², and since Φ_r⁻¹ = Σ_j (R_r⁻¹e_j)(R_r⁻¹e_j)ᵀ, the trace is Σ_j ‖R₂R_r⁻¹e_j‖².
   * O(r³), once per TR at most.
   */
  private computeStats(): void {
    const p = this.regressors;
    const r = this.rank;
    const e = new Float64Array(p);
    const u = new Float64Array(p);
    const a = new Float64Array(p);
    const normR2 = (v: Float64Array) => {
      // ‖R₂[0:r,0:r]·v‖²
      let s = 0;
      for (let i = 0; i < r; i++) {
        let m = 0;
        for (let k = i; k < r; k++) m += this.factor2[i * p + k] * v[k];
        s += m * m;
      }
      return s;
    };
    let trace = 0;
    this.varianceCache.fill(NaN);
    for (let j = 0; j < r; j++) {
      e.fill(0);
      e[j] = 1;
      solveUpper(this.factor, p, r, e, a);
      trace += normR2(a);
      solveUpperTransposed(this.factor, p, r, e, u);
      solveUpper(this.factor, p, r, u, a);
      this.varianceCache[j] = normR2(a);
    }
    this.dfCache = r > 0 ? this.weightSum - trace : NaN;
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
