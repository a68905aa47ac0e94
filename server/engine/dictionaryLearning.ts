/**
 * Data-driven functional brain networks by online dictionary learning (Mairal, Bach,
 * Ponce & Sapiro 2010, "Online learning for matrix factorization and sparse coding",
 * Algorithms 1 and 2), one volume at a time.
 *
 * Each masked volume x_t (V voxels) is one sample; each of the K atoms d_j is a spatial
 * map over the voxels, and the codes α_t (K numbers per TR) are the networks' time
 * series. Per TR:
 *
 *   1. sparse coding with the current dictionary:
 *        α_t = argmin ½‖x_t − Dα‖² + λ Σ_j ‖d_j‖₂ |α_j|   (coordinate descent on D'D, K×K)
 *      i.e. the Lasso of Algorithm 1 on the atoms scaled to unit norm: the elastic-net
 *      ball shrinks maps, and this keeps λ in the units of the data whatever their norm.
 *   2. sufficient statistics, with the past scaled by β_t = (1 − 1/t)^ρ (§3.4.2):
 *        A ← β A + α α'   (K×K),   B ← β B + x α'   (V×K)
 *   3. every `updateEvery` TRs (once `burnIn` samples are in), one pass of block
 *      coordinate descent over the atoms (Algorithm 2):
 *        u_j = (b_j − D a_j)/A_jj + d_j,   d_j = Π_C(u_j)
 *      where C is the elastic-net ball (1 − r)‖d‖₂² + r‖d‖₁ ≤ 1 (§5.2, and Mensch et al.
 *      2016 for fMRI), r = `mapSparsity`, intersected with d ≥ 0 when `nonNegative`.
 *      An atom with A_jj ≤ 1e-12·tr(A)/K (not used yet, or forgotten) is left as it is.
 *      Each step minimises the surrogate f̂_t(D) = (1/W) Σ_i w_i (½‖x_i − Dα_i‖² + λp_i),
 *      with p_i the penalty paid when x_i was coded, exactly in d_j, so the surrogate
 *      never increases (`surrogate()` reports it; `refine()` runs extra passes).
 *
 * What `atom(j)` reports is network j's map read out from the same statistics rather than
 * the atom itself: the regression of the volumes on code j with the other atoms held,
 *   u_j = (b_j − Σ_{l≠j} A_lj d_l) / A_jj   (the u_j of step 3 before projection),
 * soft-thresholded at κ standard errors, θ_j = κ·s/√A_jj, where s² = Σ w‖x‖² / (W·V) is the
 * samples' mean square per voxel (≈ 1 for z-scored volumes, so κ is a t-like threshold;
 * with forgetting A_jj is the weighted sum, an effective-sample-size approximation).
 * Why not the atom: the elastic-net ball that keeps the learning stable leaves thousands of
 * noise voxels in each map (6–12k non-zeros against planted supports of 0.8–3.5k on the
 * demo session), and sparsifying the atoms themselves by this threshold inside the descent
 * collapses them onto a few self-reinforcing voxels (each voxel of a sparse atom is part of
 * its own code) unless the start is already right. The read-out leaves the descent, the
 * codes and the surrogate exactly as they were and drops the noise voxels from the maps:
 * on the demo session the read-out alone took the mean |r| with the planted maps from 0.74
 * to 0.83 at SNR 1 and from 0.85 to 0.90 at SNR 5 (docs/method.md). `mapThreshold: 0`
 * reports the atoms.
 *
 * Cost per TR: forming D'x and B ← B + xα' touch only non-zero map entries and non-zero
 * codes; the dictionary pass costs K·V plus K·nnz(D) and runs once every m TRs. Memory
 * is fixed at construction (D, B: K·V doubles each): nothing is kept per TR, so callers
 * that want the networks' time series keep the codes `update` returns.
 *
 * Missing data: non-finite voxels of a volume are left out of that TR. The code is fitted
 * on the observed voxels only (D'D is corrected by the missing rows), and B receives the
 * model's own prediction there, so the sample pulls no map towards anything at those
 * voxels. A constant or all-zero volume is just a sample; nothing here throws after the
 * input has the right length.
 *
 * Initialisation is deterministic. By default the atoms start empty and the first K
 * volumes fill them one per TR, each from its residual after coding with the atoms
 * already filled (scaled to unit norm, projected onto C); data-driven starts avoid the
 * atoms that random maps leave unused. `init` gives the maps instead (e.g. a template
 * atlas resampled to the mask), and `initialization: 'random'` K seeded standard-normal
 * maps. Mairal et al. (§3.4) replace atoms that fall out of use: an atom whose code has
 * been zero for `restartAfter` TRs, the weaker of two atoms that duplicate one network
 * (nearly the same map, or codes correlated beyond 0.7: the same time course),
 * or one that the projection empties (possible only with `nonNegative`) restarts from
 * the current residual x − Dα with its statistics cleared. Restarts are not descent
 * steps; `restartAfter: 0` turns them off.
 */
import { SyncactError } from '../errors.ts';
import { createRng } from './random.ts';
import { lassoGram } from './lasso.ts';
import { projectElasticNetBall, type ProjectionHint } from './elasticNetProjection.ts';
import type { Estimator, EstimatorSnapshot } from './estimator.ts';

export interface DictionaryLearningOptions {
  /** V, the number of (masked) voxels in each volume. */
  voxels: number;
  /** K, the number of atoms (networks). */
  atoms: number;
  /**
   * λ, the ℓ1 penalty on each TR's code, in the units of the volume. Codes are fitted
   * against the atoms scaled to unit ℓ2 norm, so the noise part of d̂_j'x has one voxel's
   * noise SD whatever V is: λ is a threshold in noise SDs (for volumes standardised per
   * voxel, about 1 to 3). Default 1.
   */
  alpha?: number;
  /**
   * r ∈ [0, 1], the ℓ1 share of the elastic-net ball on the maps: 0 is the plain unit ℓ2
   * ball (dense maps), larger r gives sparser maps. Default 0.5, which recovers planted
   * blob networks in the tests where r = 0 mixes them.
   */
  mapSparsity?: number;
  /** Keep maps non-negative (default false: signed maps). */
  nonNegative?: boolean;
  /**
   * m: the dictionary is updated every m TRs (codes are computed every TR). Default 1, as
   * in the paper; at whole-brain size (V ≈ 370,000) m = 5 keeps a TR near 50 ms.
   */
  updateEvery?: number;
  /**
   * Without `init`: 'samples' (default) starts with empty atoms and fills one per TR from
   * the residual of that TR's volume, so the first K volumes seed the maps; 'random'
   * starts from K seeded standard-normal maps.
   */
  initialization?: 'samples' | 'random';
  /** Seed of the 'random' initial maps. Default 0. */
  seed?: number;
  /** Initial maps, K arrays of V values (e.g. a template atlas resampled to the mask). */
  init?: Float32Array[];
  /** Samples collected before the first dictionary update. Default K. */
  burnIn?: number;
  /** ρ ≥ 0 in β_t = (1 − 1/t)^ρ: larger forgets early samples faster; 0 weighs all TRs equally. Default 0. */
  forgetting?: number;
  /**
   * κ ≥ 0: `atom(j)` reports map j soft-thresholded at κ standard errors of its regression
   * on code j (see the file comment); 0 reports the dictionary atom itself. Default 3.
   */
  mapThreshold?: number;
  /**
   * An atom whose code has been zero for this many consecutive TRs, or whose map nearly
   * duplicates another's (|cosine| > 0.9; the one explaining less goes), is restarted
   * from the current sample's residual at the next dictionary update (0: never). Default 50.
   */
  restartAfter?: number;
}

const KIND = 'dictionaryLearning';
/** 2: per-atom ages (version 1 snapshots restore with every atom as old as the stream). */
const VERSION = 2;
/** Atoms closer than this (|cosine| of their maps) count as one network duplicated. */
const DUPLICATE_COSINE = 0.9;
/**
 * Atoms whose codes correlate beyond this (|A_jl|/√(A_jj·A_ll), over everything seen since
 * either was last restarted, once both have `restartAfter` TRs behind them) carry
 * one time course, so to this estimator they are one network split in two, e.g. the demo's
 * visual (+) and default mode (−) blobs that share a drive, each taking an atom and leaving
 * a network without one. Measured over four noise draws of the demo session (worst
 * network's read-out |r| averaged, without → with this rule): at the demo's 8 mm smoothing
 * 0.62 → 0.89 (8 atoms, m = 5) and 0.82 → 0.90 (10 atoms); at SNR 5 0.80 → 0.86 (10) and
 * 0.85 → 0.80 (8, m = 5); unsmoothed at SNR 1 0.63 → 0.57 (10) and 0.16 → 0.20 (8, m = 5).
 * 0.9 and 0.8 leave most splits alone (SNR-1 codes are noisy); 0.6 starts merging distinct
 * networks; judging codes before restartAfter TRs merges independent ones by chance.
 */
const DUPLICATE_CODE_CORRELATION = 0.7;
/** An atom whose number of non-zeros exceeds this share of V is handled as dense. */
const SPARSE_SHARE = 0.25;

function bad(message: string): SyncactError {
  return new SyncactError('ENGINE_BAD_INPUT', `dictionary learning: ${message}`);
}

function mismatch(message: string): SyncactError {
  return new SyncactError('ENGINE_SNAPSHOT_MISMATCH', `dictionary learning: ${message}`);
}

function isCount(n: unknown, min: number): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= min;
}

export class OnlineDictionaryLearning implements Estimator {
  readonly voxels: number;
  readonly atoms: number;
  readonly alpha: number;
  readonly mapSparsity: number;
  readonly nonNegative: boolean;
  readonly updateEvery: number;
  readonly burnIn: number;
  readonly forgetting: number;
  readonly restartAfter: number;
  readonly mapThreshold: number;

  /** Maps, atom-major: D[j·V + v]. */
  private readonly dict: Float64Array;
  /** Sorted non-zero voxels of each atom, or null when the atom is dense. */
  private readonly support: (Int32Array | null)[];
  /** D'D (K×K). */
  private readonly gram: Float64Array;
  /** A and B divided by `scale`, so that β only touches a scalar (atom-major B). */
  private readonly statA: Float64Array;
  private readonly statB: Float64Array;
  private scale = 1;
  /** Σ w_i, Σ w_i‖x_i‖², Σ w_i p_i (penalty paid at coding), divided by `scale` like A and B. */
  private weight = 0;
  private sumSquares = 0;
  private sumPenalty = 0;
  private samples = 0;
  private dictionaryUpdates = 0;
  private error = 0;

  // Scratch, allocated once.
  private readonly x: Float64Array;
  private readonly missing: Int32Array;
  private missingCount = 0;
  private readonly u: Float64Array;
  private readonly candidates: Int32Array;
  private readonly rhs: Float64Array;
  private readonly gramObs: Float64Array;
  private readonly latest: Float64Array;
  private readonly norms: Float64Array;
  /** 1 for atoms still waiting for their first map (initialisation from samples). */
  private readonly empty: Uint8Array;
  /** θ of each atom's last projection: half of it seeds the next (speed only, not results). */
  private readonly hints: ProjectionHint[];
  /** Consecutive TRs each atom's code has been zero. */
  private readonly idle: Int32Array;
  /** TRs since each atom's statistics were last cleared (seeded or restarted). */
  private readonly age: Int32Array;

  constructor(o: DictionaryLearningOptions) {
    if (!isCount(o.voxels, 1)) throw bad(`voxels must be a positive integer, got ${o.voxels}`);
    if (!isCount(o.atoms, 1)) throw bad(`atoms must be a positive integer, got ${o.atoms}`);
    const alpha = o.alpha ?? 1;
    if (!(Number.isFinite(alpha) && alpha >= 0)) throw bad(`alpha must be finite and ≥ 0, got ${alpha}`);
    const r = o.mapSparsity ?? 0.5;
    if (!(r >= 0 && r <= 1)) throw bad(`mapSparsity must be in [0, 1], got ${r}`);
    const m = o.updateEvery ?? 1;
    if (!isCount(m, 1)) throw bad(`updateEvery must be a positive integer, got ${m}`);
    const burnIn = o.burnIn ?? o.atoms;
    if (!isCount(burnIn, 0)) throw bad(`burnIn must be a non-negative integer, got ${burnIn}`);
    const rho = o.forgetting ?? 0;
    if (!(Number.isFinite(rho) && rho >= 0)) throw bad(`forgetting must be finite and ≥ 0, got ${rho}`);
    const restartAfter = o.restartAfter ?? 50;
    if (!isCount(restartAfter, 0)) throw bad(`restartAfter must be a non-negative integer, got ${restartAfter}`);
    const kappa = o.mapThreshold ?? 3;
    if (!(Number.isFinite(kappa) && kappa >= 0)) throw bad(`mapThreshold must be finite and ≥ 0, got ${kappa}`);
    const V = o.voxels;
    const K = o.atoms;
    this.voxels = V;
    this.atoms = K;
    this.alpha = alpha;
    this.mapSparsity = r;
    this.nonNegative = o.nonNegative ?? false;
    this.updateEvery = m;
    this.burnIn = burnIn;
    this.forgetting = rho;
    this.restartAfter = restartAfter;
    this.mapThreshold = kappa;

    this.dict = new Float64Array(K * V);
    this.support = new Array<Int32Array | null>(K).fill(null);
    this.gram = new Float64Array(K * K);
    this.statA = new Float64Array(K * K);
    this.statB = new Float64Array(K * V);
    this.x = new Float64Array(V);
    this.missing = new Int32Array(V);
    this.u = new Float64Array(V);
    this.candidates = new Int32Array(V);
    this.rhs = new Float64Array(K);
    this.gramObs = new Float64Array(K * K);
    this.latest = new Float64Array(K);
    this.norms = new Float64Array(K);
    this.idle = new Int32Array(K);
    this.age = new Int32Array(K);
    this.hints = Array.from({ length: K }, () => ({ theta: 0 }));

    this.empty = new Uint8Array(K);
    const how = o.initialization ?? 'samples';
    if (how !== 'samples' && how !== 'random') throw bad(`initialization must be 'samples' or 'random', got ${how}`);
    if (o.init) this.initFromMaps(o.init);
    else if (how === 'random') this.initRandom(o.seed ?? 0);
    else this.empty.fill(1);
    this.computeGram();
  }

  /** Samples seen so far. */
  get count(): number {
    return this.samples;
  }

  /** Dictionary updates done so far. */
  get updates(): number {
    return this.dictionaryUpdates;
  }

  /**
   * ‖x − Dα‖² / ‖x‖² of the last sample over its observed voxels, with the dictionary
   * that coded it (0 for an all-zero volume): the reconstruction error on the stream.
   */
  get lastError(): number {
    return this.error;
  }

  /**
   * Codes one volume with the current dictionary, folds it into the statistics, updates
   * the dictionary when due, and returns this TR's code (a new array of K values).
   */
  update(volume: Float32Array | Float64Array): Float64Array {
    const V = this.voxels;
    const K = this.atoms;
    if (volume.length !== V) throw bad(`volume has ${volume.length} values, expected ${V} voxels`);
    const x = this.x;
    const missing = this.missing;
    let nMissing = 0;
    let xx = 0;
    for (let v = 0; v < V; v++) {
      const val = volume[v];
      if (Number.isFinite(val)) {
        x[v] = val;
        xx += val * val;
      } else {
        x[v] = 0;
        missing[nMissing++] = v;
      }
    }
    this.missingCount = nMissing;

    // 1. Sparse code on the observed voxels.
    const rhs = this.rhs;
    for (let j = 0; j < K; j++) rhs[j] = this.atomDot(j, x);
    const gObs = this.gramObs;
    gObs.set(this.gram);
    if (nMissing > 0) this.removeRows(gObs, missing, nMissing);
    const code = this.latest;
    code.fill(0);
    // Code against unit-norm atoms, so that λ keeps its meaning however far the
    // elastic-net ball has shrunk a map, then express the code for D itself.
    const norms = this.norms;
    for (let j = 0; j < K; j++) {
      const gjj = this.gram[j * K + j];
      norms[j] = gjj > 0 ? 1 / Math.sqrt(gjj) : 0;
    }
    for (let j = 0; j < K; j++) {
      rhs[j] *= norms[j];
      for (let l = 0; l < K; l++) gObs[j * K + l] *= norms[j] * norms[l];
    }
    lassoGram(gObs, rhs, K, this.alpha, code);
    for (let j = 0; j < K; j++) {
      code[j] *= norms[j];
      rhs[j] = norms[j] > 0 ? rhs[j] / norms[j] : 0;
      for (let l = 0; l < K; l++) gObs[j * K + l] = norms[j] > 0 && norms[l] > 0 ? gObs[j * K + l] / (norms[j] * norms[l]) : 0;
    }

    let fit = 0; // ‖x_obs − (Dα)_obs‖² = ‖x‖² − 2α'c + α'G_obs α
    let penalty = 0; // Σ_j ‖d_j‖ |α_j|
    for (let j = 0; j < K; j++) {
      const aj = code[j];
      if (aj === 0) continue;
      penalty += Math.abs(aj) / norms[j];
      let g = 0;
      for (let l = 0; l < K; l++) g += gObs[j * K + l] * code[l];
      fit += aj * (g - 2 * rhs[j]);
    }
    for (let j = 0; j < K; j++) {
      this.idle[j] = code[j] === 0 ? this.idle[j] + 1 : 0;
      this.age[j]++;
    }
    const residual = Math.max(0, xx + fit);
    this.error = xx > 0 ? residual / xx : 0;

    // 2. Statistics: true value = scale · stored, and β multiplies only the scale.
    const t = this.samples + 1;
    const beta = this.forgetting === 0 ? 1 : Math.pow(1 - 1 / t, this.forgetting);
    if (beta === 0) this.clearStatistics();
    else this.scale *= beta;
    const w = 1 / this.scale;
    let imputedSquares = 0;
    const A = this.statA;
    const B = this.statB;
    for (let j = 0; j < K; j++) {
      const aj = code[j];
      if (aj === 0) continue;
      for (let l = 0; l < K; l++) A[j * K + l] += w * aj * code[l];
      axpy(B, j * V, w * aj, x, V);
    }
    // Missing voxels take the model's prediction, so they teach the maps nothing.
    for (let q = 0; q < nMissing; q++) {
      const v = missing[q];
      let pred = 0;
      for (let l = 0; l < K; l++) if (code[l] !== 0) pred += this.dict[l * V + v] * code[l];
      if (pred === 0) continue;
      imputedSquares += pred * pred;
      for (let j = 0; j < K; j++) if (code[j] !== 0) B[j * V + v] += w * code[j] * pred;
    }
    this.weight += w;
    this.sumSquares += w * (xx + imputedSquares);
    this.sumPenalty += w * penalty;
    if (this.scale < 1e-150) this.rescaleStatistics();
    this.samples = t;
    const next = this.empty.indexOf(1);
    if (next >= 0) this.seedAtom(next);

    // 3. Dictionary.
    if (t >= this.burnIn && (t - this.burnIn) % this.updateEvery === 0) this.updateDictionary();
    return new Float64Array(code);
  }

  /**
   * Network j's map (V values) as float32, written into `out` when given: with
   * `mapThreshold` κ > 0 the regression of the volumes on code j (other atoms held),
   * soft-thresholded at κ standard errors; with κ = 0, or before code j was ever non-zero,
   * the dictionary atom itself. Costs V plus the other atoms' non-zeros.
   */
  atom(j: number, out?: Float32Array): Float32Array {
    if (!(Number.isInteger(j) && j >= 0 && j < this.atoms)) throw bad(`atom index ${j} out of range 0..${this.atoms - 1}`);
    const V = this.voxels;
    const K = this.atoms;
    const dest = out ?? new Float32Array(V);
    if (dest.length !== V) throw bad(`output has ${dest.length} values, expected ${V}`);
    const off = j * V;
    const ajj = this.statA[j * K + j];
    if (this.mapThreshold === 0 || !(ajj > 0) || !(this.sumSquares > 0)) {
      for (let v = 0; v < V; v++) dest[v] = this.dict[off + v];
      return dest;
    }
    // u_j = (b_j − Σ_{l≠j} A_lj d_l) / A_jj; A and B share the stored scale, which cancels.
    const u = this.u;
    scaledCopy(u, this.statB, off, 1 / ajj, V);
    for (let l = 0; l < K; l++) {
      const coef = this.statA[l * K + j];
      if (l !== j && coef !== 0) this.addAtom(u, l, -coef / ajj);
    }
    // θ = κ·s/√A_jj with the true A_jj = scale·stored; s² = Σw‖x‖²/(W·V), scale-free.
    const meanSquare = this.sumSquares / (this.weight * V);
    const theta = (this.mapThreshold * Math.sqrt(meanSquare)) / Math.sqrt(ajj * this.scale);
    for (let v = 0; v < V; v++) {
      const val = u[v];
      dest[v] = val > theta ? val - theta : val < -theta && !this.nonNegative ? val + theta : 0;
    }
    return dest;
  }

  /** The code of the last volume (K values, zeros before the first), written into `out` when given. */
  code(out?: Float64Array): Float64Array {
    const dest = out ?? new Float64Array(this.atoms);
    if (dest.length !== this.atoms) throw bad(`output has ${dest.length} values, expected ${this.atoms}`);
    dest.set(this.latest);
    return dest;
  }

  /**
   * The surrogate objective of the current dictionary on everything seen so far,
   * (1/W) Σ_i w_i (½‖x_i − Dα_i‖² + λp_i) with the codes α_i as they were computed and
   * p_i = Σ_j ‖d_j‖|α_ij| the penalty paid then (missing voxels of x_i hold the
   * prediction), evaluated from A and B: (½tr(D'DA) − tr(D'B) + ½Σw‖x‖² + λΣw·p) / W.
   * NaN before any sample. Costs nnz(D).
   */
  surrogate(): number {
    if (this.weight === 0) return NaN;
    const K = this.atoms;
    const V = this.voxels;
    let quad = 0;
    for (let i = 0; i < K * K; i++) quad += this.gram[i] * this.statA[i];
    let cross = 0;
    for (let j = 0; j < K; j++) {
      const off = j * V;
      const sup = this.support[j];
      if (sup) for (let q = 0; q < sup.length; q++) cross += this.dict[off + sup[q]] * this.statB[off + sup[q]];
      else for (let v = 0; v < V; v++) cross += this.dict[off + v] * this.statB[off + v];
    }
    return (0.5 * quad - cross + 0.5 * this.sumSquares + this.alpha * this.sumPenalty) / this.weight;
  }

  /**
   * Runs `passes` more passes of block coordinate descent over the atoms on the current
   * statistics, without new data (e.g. to polish the maps at the end of a run). Each
   * pass lowers `surrogate()` or leaves it unchanged.
   */
  refine(passes = 1): void {
    if (!isCount(passes, 0)) throw bad(`passes must be a non-negative integer, got ${passes}`);
    for (let p = 0; p < passes; p++) this.updateDictionary(false);
  }

  snapshot(): EstimatorSnapshot {
    return {
      kind: KIND,
      version: VERSION,
      scalars: {
        voxels: this.voxels,
        atoms: this.atoms,
        count: this.samples,
        updates: this.dictionaryUpdates,
        scale: this.scale,
        weight: this.weight,
        sumSquares: this.sumSquares,
        sumPenalty: this.sumPenalty,
        lastError: this.error,
      },
      arrays: {
        dictionary: new Float64Array(this.dict),
        statA: new Float64Array(this.statA),
        statB: new Float64Array(this.statB),
        code: new Float64Array(this.latest),
        idle: new Int32Array(this.idle),
        age: new Int32Array(this.age),
        empty: new Uint8Array(this.empty),
      },
    };
  }

  restore(s: EstimatorSnapshot): void {
    if (s.kind !== KIND) throw mismatch(`snapshot is of kind "${s.kind}", expected "${KIND}"`);
    if (s.version !== VERSION && s.version !== 1) throw mismatch(`snapshot version ${s.version} is not supported (expected ${VERSION})`);
    const V = this.voxels;
    const K = this.atoms;
    if (s.scalars.voxels !== V || s.scalars.atoms !== K) {
      throw mismatch(`snapshot has ${s.scalars.voxels} voxels × ${s.scalars.atoms} atoms, this estimator ${V} × ${K}`);
    }
    const { dictionary, statA, statB, code, idle, empty, age } = s.arrays;
    const sized = (a: unknown, n: number) => a instanceof Float64Array && a.length === n;
    if (!sized(dictionary, K * V) || !sized(statA, K * K) || !sized(statB, K * V) || !sized(code, K)) {
      throw mismatch('snapshot arrays are missing or have the wrong size');
    }
    if (!(idle instanceof Int32Array && idle.length === K)) throw mismatch('snapshot arrays are missing or have the wrong size');
    if (!(empty instanceof Uint8Array && empty.length === K)) throw mismatch('snapshot arrays are missing or have the wrong size');
    if (s.version === 1) this.age.fill(s.scalars.count);
    else if (age instanceof Int32Array && age.length === K) this.age.set(age);
    else throw mismatch('snapshot arrays are missing or have the wrong size');
    this.idle.set(idle);
    this.empty.set(empty);
    this.dict.set(dictionary);
    this.statA.set(statA);
    this.statB.set(statB);
    this.latest.set(code);
    this.samples = s.scalars.count;
    this.dictionaryUpdates = s.scalars.updates;
    this.scale = s.scalars.scale;
    this.weight = s.scalars.weight;
    this.sumSquares = s.scalars.sumSquares;
    this.sumPenalty = s.scalars.sumPenalty;
    this.error = s.scalars.lastError;
    for (let j = 0; j < K; j++) this.rebuildSupport(j);
    this.computeGram();
  }

  // ---- dictionary update (Algorithm 2, one pass) ----

  private updateDictionary(restart = true): void {
    const V = this.voxels;
    const K = this.atoms;
    const A = this.statA;
    const B = this.statB;
    const D = this.dict;
    let trace = 0;
    for (let j = 0; j < K; j++) trace += A[j * K + j];
    // An atom used this little has no estimate yet; leave it be.
    const floor = 1e-12 * (trace / K);
    if (restart && this.restartAfter > 0) this.markDuplicates();
    for (let j = 0; j < K; j++) {
      if (restart && this.restartAfter > 0 && this.idle[j] >= this.restartAfter) {
        const nnz = this.restartAtom(j);
        if (nnz > 0) {
          D.set(this.u, j * V);
          this.rebuildSupport(j, nnz);
          this.empty[j] = 0;
        }
        this.idle[j] = 0;
        continue;
      }
      const ajj = A[j * K + j];
      if (!(ajj > floor) || ajj === 0) continue;
      // u_j = (b_j − Σ_{l≠j} A_lj d_l) / A_jj   (the l = j term cancels the + d_j), so
      // d_j itself is not needed and u_j is built and projected in its place.
      const off = j * V;
      const dj = D.subarray(off, off + V);
      const inv = 1 / ajj;
      scaledCopy(dj, B, off, inv, V);
      for (let l = 0; l < K; l++) {
        if (l === j) continue;
        const coef = A[l * K + j] * inv;
        if (coef !== 0) this.addAtom(dj, l, -coef);
      }
      const hint = this.hints[j];
      hint.theta *= 0.5;
      let nnz = projectElasticNetBall(dj, V, this.mapSparsity, this.nonNegative, this.candidates, hint);
      if (nnz === 0 && restart) {
        nnz = this.restartAtom(j);
        dj.set(this.u);
      }
      this.rebuildSupport(j, nnz);
    }
    this.computeGram();
    this.dictionaryUpdates++;
  }

  /** Fills empty atom j from this TR's residual, when the residual is not all zero. */
  private seedAtom(j: number): void {
    const nnz = this.restartAtom(j);
    if (nnz === 0) return;
    this.dict.set(this.u, j * this.voxels);
    this.rebuildSupport(j, nnz);
    this.empty[j] = 0;
    this.idle[j] = 0;
    this.computeGram();
  }

  /**
   * Two atoms whose maps have |cosine| above DUPLICATE_COSINE, or whose codes correlate
   * beyond DUPLICATE_CODE_CORRELATION, share one network between them (a local minimum that
   * more data does not leave); the one explaining less, A_jj·‖d_j‖², is marked for a
   * restart so that it can find a network still missing. The other takes over the whole
   * network at its next update: its b_j holds the restarted atom's part too.
   */
  private markDuplicates(): void {
    const K = this.atoms;
    const G = this.gram;
    const A = this.statA;
    for (let j = 0; j < K; j++) {
      for (let l = j + 1; l < K; l++) {
        const gjj = G[j * K + j];
        const gll = G[l * K + l];
        if (!(gjj > 0 && gll > 0)) continue;
        const sameMap = Math.abs(G[j * K + l]) > DUPLICATE_COSINE * Math.sqrt(gjj * gll);
        // Judged only once both codes have restartAfter TRs behind them: over a few TRs
        // independent codes correlate by chance.
        const judged = this.age[j] >= this.restartAfter && this.age[l] >= this.restartAfter;
        const sameCode = judged && Math.abs(A[j * K + l]) > DUPLICATE_CODE_CORRELATION * Math.sqrt(A[j * K + j] * A[l * K + l]);
        if (!sameMap && !sameCode) continue;
        const weaker = A[j * K + j] * gjj < A[l * K + l] * gll ? j : l;
        this.idle[weaker] = Math.max(this.idle[weaker], this.restartAfter);
      }
    }
  }

  /**
   * Replaces atom j (emptied by the projection) by the last sample's residual, projected,
   * and clears its statistics so that it starts afresh. Leaves the new map in `u` and
   * returns its number of non-zeros (0 when the residual has nothing to offer).
   */
  private restartAtom(j: number): number {
    const V = this.voxels;
    const K = this.atoms;
    const u = this.u;
    u.set(this.x);
    for (let l = 0; l < K; l++) if (this.latest[l] !== 0) this.addAtom(u, l, -this.latest[l]);
    for (let q = 0; q < this.missingCount; q++) u[this.missing[q]] = 0;
    let ss = 0;
    for (let v = 0; v < V; v++) {
      if (this.nonNegative && u[v] < 0) u[v] = 0;
      ss += u[v] * u[v];
    }
    if (!(ss > 0)) return 0;
    const inv = 1 / Math.sqrt(ss);
    for (let v = 0; v < V; v++) u[v] *= inv;
    for (let l = 0; l < K; l++) this.statA[j * K + l] = this.statA[l * K + j] = 0;
    this.statB.fill(0, j * V, (j + 1) * V);
    this.age[j] = 0;
    return projectElasticNetBall(u, V, this.mapSparsity, this.nonNegative, this.candidates);
  }

  // ---- helpers over atoms, sparse where the maps are ----

  /** d_j'y. */
  private atomDot(j: number, y: Float64Array): number {
    const D = this.dict;
    const off = j * this.voxels;
    const sup = this.support[j];
    return sup ? dotSparse(D, off, sup, y) : dotDense(D, off, y, this.voxels);
  }

  /** y += c·d_l. */
  private addAtom(y: Float64Array, l: number, c: number): void {
    const D = this.dict;
    const off = l * this.voxels;
    const sup = this.support[l];
    if (sup) axpySparse(y, c, D, off, sup);
    else axpyFrom(y, c, D, off, this.voxels);
  }

  /** G = D'D, symmetric, from the supports. */
  private computeGram(): void {
    const K = this.atoms;
    const D = this.dict;
    const V = this.voxels;
    const G = this.gram;
    for (let j = 0; j < K; j++) {
      const offJ = j * V;
      const sup = this.support[j];
      for (let l = j; l < K; l++) {
        const offL = l * V;
        let s = 0;
        // Iterate over the sparser of the two supports.
        const other = this.support[l];
        const use = sup && (!other || sup.length <= other.length) ? sup : other;
        if (use) for (let q = 0; q < use.length; q++) s += D[offJ + use[q]] * D[offL + use[q]];
        else for (let v = 0; v < V; v++) s += D[offJ + v] * D[offL + v];
        G[j * K + l] = G[l * K + j] = s;
      }
    }
  }

  /** G_obs = G − Σ_{v missing} D_v D_v', only over atoms non-zero at v. */
  private removeRows(g: Float64Array, rows: Int32Array, n: number): void {
    const K = this.atoms;
    const V = this.voxels;
    const D = this.dict;
    const nz = new Int32Array(K);
    for (let q = 0; q < n; q++) {
      const v = rows[q];
      let c = 0;
      for (let j = 0; j < K; j++) if (D[j * V + v] !== 0) nz[c++] = j;
      for (let a = 0; a < c; a++) {
        const j = nz[a];
        const dj = D[j * V + v];
        for (let b = 0; b < c; b++) g[j * K + nz[b]] -= dj * D[nz[b] * V + v];
      }
    }
    // Guard the diagonal against round-off below zero (an atom seen only at missing voxels).
    for (let j = 0; j < K; j++) if (g[j * K + j] < 1e-300) g[j * K + j] = 0;
  }

  /** Records atom j's non-zeros; `nnz` and the candidate buffer come from the projection when known. */
  private rebuildSupport(j: number, nnz?: number): void {
    const V = this.voxels;
    const off = j * V;
    if (nnz === undefined) {
      nnz = 0;
      for (let v = 0; v < V; v++) if (this.dict[off + v] !== 0) this.candidates[nnz++] = v;
    }
    this.support[j] = nnz <= SPARSE_SHARE * V ? this.candidates.slice(0, nnz) : null;
  }

  private clearStatistics(): void {
    this.statA.fill(0);
    this.statB.fill(0);
    this.scale = 1;
    this.weight = this.sumSquares = this.sumPenalty = 0;
  }

  /** Folds the scale into the stored statistics before 1/scale overflows (rare: K·V). */
  private rescaleStatistics(): void {
    const s = this.scale;
    for (let i = 0; i < this.statA.length; i++) this.statA[i] *= s;
    for (let i = 0; i < this.statB.length; i++) this.statB[i] *= s;
    this.weight *= s;
    this.sumSquares *= s;
    this.sumPenalty *= s;
    this.scale = 1;
  }

  // ---- initialisation ----

  private initRandom(seed: number): void {
    const rng = createRng(seed);
    const V = this.voxels;
    const u = this.u;
    for (let j = 0; j < this.atoms; j++) {
      for (let v = 0; v < V; v++) {
        const z = rng.normal();
        u[v] = this.nonNegative ? Math.abs(z) : z;
      }
      this.setInitialAtom(j);
    }
  }

  private initFromMaps(maps: Float32Array[]): void {
    const V = this.voxels;
    if (maps.length !== this.atoms) throw bad(`init has ${maps.length} maps, expected ${this.atoms} atoms`);
    for (let j = 0; j < this.atoms; j++) {
      const map = maps[j];
      if (map.length !== V) throw bad(`init map ${j} has ${map.length} values, expected ${V} voxels`);
      for (let v = 0; v < V; v++) {
        const val = map[v];
        this.u[v] = Number.isFinite(val) ? val : 0;
      }
      this.setInitialAtom(j);
    }
  }

  /** Scales `u` to unit ℓ2 norm, projects it onto C and stores it as atom j. */
  private setInitialAtom(j: number): void {
    const V = this.voxels;
    const u = this.u;
    let ss = 0;
    for (let v = 0; v < V; v++) {
      if (this.nonNegative && u[v] < 0) u[v] = 0;
      ss += u[v] * u[v];
    }
    if (ss > 0) {
      const inv = 1 / Math.sqrt(ss);
      for (let v = 0; v < V; v++) u[v] *= inv;
    }
    const nnz = projectElasticNetBall(u, V, this.mapSparsity, this.nonNegative, this.candidates);
    this.dict.set(u, j * V);
    this.rebuildSupport(j, nnz);
    this.empty[j] = nnz === 0 ? 1 : 0;
  }
}

// Hot loops as small monomorphic functions, which V8 optimises far better than the same
// loops inlined in long methods.

/** y[yOff + i] += a·x[i], i < n. */
function axpy(y: Float64Array, yOff: number, a: number, x: Float64Array, n: number): void {
  for (let i = 0; i < n; i++) y[yOff + i] += a * x[i];
}

/** y[i] += a·x[xOff + i], i < n. */
function axpyFrom(y: Float64Array, a: number, x: Float64Array, xOff: number, n: number): void {
  for (let i = 0; i < n; i++) y[i] += a * x[xOff + i];
}

/** y[i] += a·x[xOff + i] for i in idx. */
function axpySparse(y: Float64Array, a: number, x: Float64Array, xOff: number, idx: Int32Array): void {
  for (let q = 0; q < idx.length; q++) {
    const i = idx[q];
    y[i] += a * x[xOff + i];
  }
}

/** Σ_i a[aOff + i]·b[i], i < n. */
function dotDense(a: Float64Array, aOff: number, b: Float64Array, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += a[aOff + i] * b[i];
  return s;
}

/** Σ_{i in idx} a[aOff + i]·b[i]. */
function dotSparse(a: Float64Array, aOff: number, idx: Int32Array, b: Float64Array): number {
  let s = 0;
  for (let q = 0; q < idx.length; q++) {
    const i = idx[q];
    s += a[aOff + i] * b[i];
  }
  return s;
}

/** y[i] = c·x[xOff + i], i < n. */
function scaledCopy(y: Float64Array, x: Float64Array, xOff: number, c: number, n: number): void {
  for (let i = 0; i < n; i++) y[i] = c * x[xOff + i];
}
