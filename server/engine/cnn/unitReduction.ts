/**
 * Thousands of unit responses → K regressors for the voxelwise GLM (DESIGN.md §4, "Unit
 * reduction"). Two ways:
 * - chosen units (`ChosenUnits`): the regressors are exactly those units' responses;
 * - principal components (`fitUnitPca`) of the standardized HRF-convolved unit responses
 *   over the whole movie. The movie is known before the replay, so the components are fitted
 *   once on every TR's responses and then applied TR by TR (`transform`), which keeps the
 *   replay causal in the brain data while using the whole stimulus.
 *
 * PCA here is what `np.linalg.svd` gives on Z = (X − mean) / std (population std, ddof 0,
 * as sklearn's StandardScaler; a unit whose std is ≤ 1e-12·|mean| is constant and
 * standardizes to 0, as nilearn does): Z = U S Vᵀ. Component k's loadings are row k of Vᵀ
 * (one weight per unit: how a component maps back to units), its regressor for a TR is the
 * score z·v_k (over the fitted TRs: column k of U S). Sign convention, so a refit on the same
 * data gives the same regressors: each component's largest-magnitude loading (first on a tie)
 * is positive.
 *
 * Computed from the eigenpairs of the smaller Gram matrix (ZZᵀ, T×T, when there are more
 * units than TRs, else ZᵀZ): a full dense eigendecomposition up to 200 TRs or units, Lanczos
 * with full reorthogonalization for the top K beyond (921 TRs × 3000 units, K = 10: 0.5 s
 * instead of 10–16 s dense, loadings equal to 2e-15). Working through the Gram matrix
 * squares the condition number, which costs accuracy only in components whose singular
 * value is ~1e-6 of the first one or less; those are noise and are refused
 * (MIN_RELATIVE_SINGULAR_VALUE). A constant unit has loading exactly 0 in every component.
 */
import { EigenvalueDecomposition, Matrix } from 'ml-matrix';
import { SyncactError } from '../../errors.ts';
import { createRng, type Rng } from '../random.ts';

/** What maps one TR's unit responses to the K regressors. */
export interface UnitReducer {
  readonly kind: 'units' | 'pca';
  /** Regressors per TR. */
  readonly k: number;
  /** Length of a response vector (units, or kernels × units with the HRF derivative). */
  readonly width: number;
  /** The K regressors of one TR's responses. */
  transform(response: Float64Array | Float32Array, out?: Float64Array): Float64Array;
}

export type UnitReductionSpec = { kind: 'units'; units: readonly number[] } | { kind: 'pca'; components: number; upToRank?: boolean };

/** The regressors are the responses of the chosen units, in the order given. */
export class ChosenUnits implements UnitReducer {
  readonly kind = 'units';
  readonly k: number;
  readonly width: number;
  readonly units: Int32Array;

  /**
   * @param units indices into the response vector (see UnitLayout.index)
   * @param width length of the response vector
   */
  constructor(options: { units: readonly number[]; width: number }) {
    const { units, width } = options;
    if (!Number.isInteger(width) || width < 1) throw new SyncactError('ENGINE_BAD_INPUT', `unit reduction: width must be a positive integer, got ${width}`);
    if (units.length === 0) throw new SyncactError('ENGINE_BAD_INPUT', 'unit reduction: no units chosen');
    if (units.length > width) {
      throw new SyncactError('ENGINE_BAD_INPUT', `unit reduction: ${units.length} regressors asked for but there are only ${width} units`);
    }
    const seen = new Set<number>();
    for (const u of units) {
      if (!Number.isInteger(u) || u < 0 || u >= width) throw new SyncactError('ENGINE_BAD_INPUT', `unit reduction: unit ${u} is outside 0..${width - 1}`);
      // The same unit twice makes two identical GLM regressors: a rank-deficient design.
      if (seen.has(u)) throw new SyncactError('ENGINE_BAD_INPUT', `unit reduction: unit ${u} is chosen twice`);
      seen.add(u);
    }
    this.units = Int32Array.from(units);
    this.k = units.length;
    this.width = width;
  }

  transform(response: Float64Array | Float32Array, out?: Float64Array): Float64Array {
    checkWidth(response, this.width);
    const res = out ?? new Float64Array(this.k);
    for (let j = 0; j < this.k; j++) res[j] = response[this.units[j]];
    return res;
  }
}

/** A fitted PCA of unit responses. */
export class UnitPca implements UnitReducer {
  readonly kind = 'pca';
  readonly k: number;
  readonly width: number;
  /** TRs it was fitted on. */
  readonly trs: number;
  /** Per unit, mean and population std over the fitted TRs. */
  readonly mean: Float64Array;
  readonly std: Float64Array;
  /** Per unit, 1/std, or 0 for a constant unit (it then contributes nothing). */
  readonly invStd: Float64Array;
  /** Component k's weight on each unit (row k of Vᵀ), unit norm, sign fixed as documented. */
  readonly loadings: Float64Array[];
  /** Singular values of Z for the K components (descending). */
  readonly singularValues: Float64Array;
  /** Share of the total standardized variance each component carries. */
  readonly explainedVarianceRatio: Float64Array;

  constructor(f: { trs: number; mean: Float64Array; std: Float64Array; invStd: Float64Array; loadings: Float64Array[]; singularValues: Float64Array; explainedVarianceRatio: Float64Array }) {
    this.trs = f.trs;
    this.mean = f.mean;
    this.std = f.std;
    this.invStd = f.invStd;
    this.loadings = f.loadings;
    this.singularValues = f.singularValues;
    this.explainedVarianceRatio = f.explainedVarianceRatio;
    this.k = f.loadings.length;
    this.width = f.mean.length;
  }

  /** The component scores of one TR: Σ_u (r_u − mean_u)/std_u · loading_{k,u}. */
  transform(response: Float64Array | Float32Array, out?: Float64Array): Float64Array {
    checkWidth(response, this.width);
    const res = out ?? new Float64Array(this.k);
    const { mean, invStd } = this;
    for (let j = 0; j < this.k; j++) {
      const v = this.loadings[j];
      let s = 0;
      for (let u = 0; u < this.width; u++) s += (response[u] - mean[u]) * invStd[u] * v[u];
      res[j] = s;
    }
    return res;
  }

  /** The n units that weigh most in a component, by |loading|, largest first. */
  topUnits(component: number, n: number): { unit: number; loading: number }[] {
    if (!Number.isInteger(component) || component < 0 || component >= this.k) {
      throw new SyncactError('ENGINE_BAD_INPUT', `unit reduction: component ${component} is outside 0..${this.k - 1}`);
    }
    const v = this.loadings[component];
    const order = Array.from({ length: this.width }, (_, i) => i).sort((a, b) => Math.abs(v[b]) - Math.abs(v[a]) || a - b);
    return order.slice(0, Math.max(0, n)).map((unit) => ({ unit, loading: v[unit] }));
  }
}

/** Components whose singular value is below this fraction of the first are refused as noise. */
const MIN_RELATIVE_SINGULAR_VALUE = 1e-6;

/**
 * Fits K principal components on the whole movie's unit responses.
 * @param responses one vector per TR (all of the same width), e.g. UnitResponses.responses
 * @param options.components K, at most the number of units and at most TRs − 1
 * @param options.solver 'dense' (full eigendecomposition of the Gram matrix) or 'lanczos'
 *   (top K only); default dense up to 200 TRs or units, Lanczos beyond. Same answer.
 * @param options.upToRank when the responses have rank r < K, fit the r components that carry
 *   variance (k = r) instead of refusing: tapped layers can be linearly dependent (a layer and
 *   a linear read-out of it, dead ReLU channels), and a session's default K should not make
 *   such a model unusable. Rank 0 is still refused.
 */
export function fitUnitPca(responses: readonly (Float64Array | Float32Array)[], options: { components: number; solver?: 'dense' | 'lanczos'; upToRank?: boolean }): UnitPca {
  const K = options.components;
  const T = responses.length;
  if (T === 0) throw new SyncactError('ENGINE_BAD_INPUT', 'unit reduction: no TRs to fit components on');
  const N = responses[0].length;
  for (const r of responses) checkWidth(r, N);
  if (!Number.isInteger(K) || K < 1) throw new SyncactError('ENGINE_BAD_INPUT', `unit reduction: the number of components must be a positive integer, got ${K}`);
  if (K > N) throw new SyncactError('ENGINE_BAD_INPUT', `unit reduction: ${K} components asked for but there are only ${N} units`);
  // Centring removes one dimension: T TRs span at most T − 1 components.
  if (K > T - 1) throw new SyncactError('ENGINE_BAD_INPUT', `unit reduction: ${K} components asked for but ${T} TRs support at most ${T - 1}`);

  const mean = new Float64Array(N);
  for (const r of responses) for (let u = 0; u < N; u++) mean[u] += r[u];
  for (let u = 0; u < N; u++) mean[u] /= T;
  const std = new Float64Array(N);
  for (const r of responses) {
    for (let u = 0; u < N; u++) {
      const d = r[u] - mean[u];
      std[u] += d * d;
    }
  }
  const invStd = new Float64Array(N);
  for (let u = 0; u < N; u++) {
    std[u] = Math.sqrt(std[u] / T);
    invStd[u] = std[u] > 1e-12 * Math.abs(mean[u]) ? 1 / std[u] : 0;
  }
  const Z = new Float64Array(T * N);
  responses.forEach((r, t) => {
    for (let u = 0; u < N; u++) Z[t * N + u] = (r[u] - mean[u]) * invStd[u];
  });

  const wide = N >= T;
  const n = wide ? T : N;
  const solver = options.solver ?? (n <= DENSE_MAX ? 'dense' : 'lanczos');
  // Eigenpairs of the smaller Gram matrix, largest first: ZZᵀ (left singular vectors) when
  // there are more units than TRs, else ZᵀZ (the loadings themselves).
  const { values, vectors } =
    solver === 'dense'
      ? denseTopEigenpairs(wide ? gramRows(Z, T, N) : gramColumns(Z, T, N), n, K)
      : lanczosTopEigenpairs((x, y) => (wide ? applyZZt(Z, T, N, x, y) : applyZtZ(Z, T, N, x, y)), n, K);
  let total = 0;
  for (let u = 0; u < N; u++) if (invStd[u] > 0) total += T; // ‖Z‖²_F: each live column has Σz² = T
  const s0 = Math.sqrt(Math.max(0, values[0]));

  const loadings: Float64Array[] = [];
  const singularValues = new Float64Array(K);
  const explainedVarianceRatio = new Float64Array(K);
  for (let j = 0; j < K; j++) {
    const lambda = j < values.length ? values[j] : 0;
    const s = Math.sqrt(Math.max(0, lambda));
    if (!(s > MIN_RELATIVE_SINGULAR_VALUE * s0)) {
      if (options.upToRank && j > 0) break;
      throw new SyncactError('ENGINE_BAD_INPUT', `unit reduction: only ${j} components carry variance (the unit responses have rank ${j}); ask for at most ${j}`);
    }
    const e = vectors[j];
    let v: Float64Array;
    if (wide) {
      // e is a left singular vector u_j: v_j = Zᵀ u_j / s_j.
      v = new Float64Array(N);
      for (let t = 0; t < T; t++) {
        const w = e[t] / s;
        if (w === 0) continue;
        const row = t * N;
        for (let u = 0; u < N; u++) v[u] += w * Z[row + u];
      }
    } else {
      v = Float64Array.from(e);
      // A constant unit's column of ZᵀZ is zero: its loading is 0 up to the solver's rounding.
      for (let u = 0; u < N; u++) if (invStd[u] === 0) v[u] = 0;
    }
    normalize(v);
    fixSign(v);
    loadings.push(v);
    singularValues[j] = s;
    explainedVarianceRatio[j] = lambda / total;
  }
  const k = loadings.length;
  return new UnitPca({ trs: T, mean, std, invStd, loadings, singularValues: singularValues.slice(0, k), explainedVarianceRatio: explainedVarianceRatio.slice(0, k) });
}

/** Builds the reducer a session asks for; `responses` (the whole movie) is needed for PCA. */
export function fitUnitReducer(spec: UnitReductionSpec, responses: readonly (Float64Array | Float32Array)[]): UnitReducer {
  if (responses.length === 0) throw new SyncactError('ENGINE_BAD_INPUT', 'unit reduction: no TRs of unit responses');
  if (spec.kind === 'units') return new ChosenUnits({ units: spec.units, width: responses[0].length });
  return fitUnitPca(responses, { components: spec.components, upToRank: spec.upToRank });
}

/** Up to this Gram size the dense eigendecomposition is cheap (≤ 0.1 s) and is used. */
const DENSE_MAX = 200;

interface Eigenpairs {
  /** Largest first (at most K of them). */
  values: Float64Array;
  vectors: Float64Array[];
}

/** The K largest eigenpairs of a symmetric n×n matrix (row-major), by full decomposition. */
function denseTopEigenpairs(M: Float64Array, n: number, K: number): Eigenpairs {
  const evd = new EigenvalueDecomposition(new Matrix(toRows(M, n)), { assumeSymmetric: true });
  const all = evd.realEigenvalues;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => all[b] - all[a]).slice(0, K);
  return { values: Float64Array.from(order, (i) => all[i]), vectors: order.map((i) => Float64Array.from(evd.eigenvectorMatrix.getColumn(i))) };
}

/** Ritz residual (relative to the largest eigenvalue) under which a pair counts as converged. */
const LANCZOS_TOL = 1e-13;

/**
 * The K largest eigenpairs of a symmetric positive semi-definite operator A (n×n), by Lanczos
 * with full reorthogonalization (twice per step, so the basis stays orthogonal to rounding and
 * no ghost copies appear). Why: forming the Gram matrix and decomposing it whole costs
 * T²·N + O(T³) (about 10 s for 921 TRs × 3000 units), while the top components of unit
 * responses converge in a few dozen steps of 2·T·N each. The start vector is seeded, so the
 * result is deterministic. On breakdown (the Krylov space is invariant: rank deficiency, or
 * a repeated eigenvalue) it continues from a new seeded direction orthogonal to the basis; at
 * m = n steps the factorization is complete and exact.
 * Converged when every one of the top K Ritz pairs has residual |β_m·s_{m,j}| ≤ 1e-13·θ_max;
 * a loading's error is then about that residual over the gap to the next eigenvalue.
 */
function lanczosTopEigenpairs(apply: (x: Float64Array, y: Float64Array) => void, n: number, K: number): Eigenpairs {
  const rng = createRng(0x5ca1ab1e);
  const Q: Float64Array[] = [];
  const alpha: number[] = [];
  /** beta[j] couples q_j and q_{j+1}. */
  const beta: number[] = [];
  const w = new Float64Array(n);
  let q = freshDirection(rng, n, Q);
  let nextCheck = Math.min(n, 2 * K + 10);
  let scale = 0;
  for (;;) {
    Q.push(q);
    const j = Q.length - 1;
    apply(q, w);
    const a = dot(q, w);
    alpha.push(a);
    axpy(-a, q, w);
    if (j > 0) axpy(-beta[j - 1], Q[j - 1], w);
    for (let pass = 0; pass < 2; pass++) for (const qi of Q) axpy(-dot(qi, w), qi, w);
    let b = Math.sqrt(dot(w, w));
    scale = Math.max(scale, Math.abs(a) + b);
    const m = Q.length;
    let next: Float64Array | null = null;
    let breakdown = false;
    if (m < n) {
      if (b > 1e-12 * scale) {
        next = new Float64Array(n);
        for (let i = 0; i < n; i++) next[i] = w[i] / b;
      } else {
        b = 0;
        breakdown = true;
        next = freshDirection(rng, n, Q);
      }
    } else {
      b = 0;
    }
    beta.push(b);
    if (m === n || (m >= nextCheck && !breakdown)) {
      const ritz = tridiagonalEigen(alpha, beta, m);
      const top = Math.min(K, m);
      const thetaMax = Math.max(Math.abs(ritz.values[0]), Number.MIN_VALUE);
      // Not right after a breakdown: a repeated eigenvalue's other copies are found only by
      // the new direction, so the residuals of the finished block alone prove nothing.
      let converged = m === n;
      if (!converged && m >= K) {
        converged = true;
        for (let k = 0; k < top; k++) if (Math.abs(b * ritz.vectors[k][m - 1]) > LANCZOS_TOL * thetaMax) converged = false;
      }
      if (converged) {
        const vectors = ritz.vectors.slice(0, top).map((s) => {
          const v = new Float64Array(n);
          for (let i = 0; i < m; i++) axpy(s[i], Q[i], v);
          return v;
        });
        return { values: ritz.values.slice(0, top), vectors };
      }
      nextCheck = Math.min(n, m + Math.max(5, Math.ceil(m / 4)));
    }
    q = next as Float64Array;
  }
}

/** Eigenpairs of the symmetric tridiagonal matrix (alpha, beta), largest first. */
function tridiagonalEigen(alpha: number[], beta: number[], m: number): Eigenpairs {
  const M = new Float64Array(m * m);
  for (let i = 0; i < m; i++) {
    M[i * m + i] = alpha[i];
    if (i + 1 < m) M[i * m + i + 1] = M[(i + 1) * m + i] = beta[i];
  }
  return denseTopEigenpairs(M, m, m);
}

/** A seeded unit vector orthogonal to the basis Q (Q has fewer than n vectors). */
function freshDirection(rng: Rng, n: number, Q: Float64Array[]): Float64Array {
  for (;;) {
    const v = Float64Array.from({ length: n }, () => rng.normal());
    for (let pass = 0; pass < 2; pass++) for (const qi of Q) axpy(-dot(qi, v), qi, v);
    const norm = Math.sqrt(dot(v, v));
    if (norm > 1e-8) {
      for (let i = 0; i < n; i++) v[i] /= norm;
      return v;
    }
  }
}

/** y = Z Zᵀ x for a row-major T×N matrix Z (x, y of length T). */
function applyZZt(Z: Float64Array, T: number, N: number, x: Float64Array, y: Float64Array): void {
  const t1 = new Float64Array(N);
  for (let t = 0; t < T; t++) {
    const xt = x[t];
    if (xt === 0) continue;
    const r = t * N;
    for (let u = 0; u < N; u++) t1[u] += xt * Z[r + u];
  }
  for (let t = 0; t < T; t++) {
    const r = t * N;
    let s = 0;
    for (let u = 0; u < N; u++) s += Z[r + u] * t1[u];
    y[t] = s;
  }
}

/** y = Zᵀ Z x for a row-major T×N matrix Z (x, y of length N). */
function applyZtZ(Z: Float64Array, T: number, N: number, x: Float64Array, y: Float64Array): void {
  y.fill(0);
  for (let t = 0; t < T; t++) {
    const r = t * N;
    let s = 0;
    for (let u = 0; u < N; u++) s += Z[r + u] * x[u];
    if (s === 0) continue;
    for (let u = 0; u < N; u++) y[u] += s * Z[r + u];
  }
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** y += a·x */
function axpy(a: number, x: Float64Array, y: Float64Array): void {
  for (let i = 0; i < x.length; i++) y[i] += a * x[i];
}

function checkWidth(r: ArrayLike<number>, width: number): void {
  if (r.length !== width) throw new SyncactError('ENGINE_BAD_INPUT', `unit reduction: a response has ${r.length} values, expected ${width}`);
}

/** Z Zᵀ (T×T) of a row-major T×N matrix. */
function gramRows(Z: Float64Array, T: number, N: number): Float64Array {
  const G = new Float64Array(T * T);
  for (let a = 0; a < T; a++) {
    const ra = a * N;
    for (let b = 0; b <= a; b++) {
      const rb = b * N;
      let s = 0;
      for (let u = 0; u < N; u++) s += Z[ra + u] * Z[rb + u];
      G[a * T + b] = s;
      G[b * T + a] = s;
    }
  }
  return G;
}

/** Zᵀ Z (N×N) of a row-major T×N matrix, accumulated row by row (contiguous reads). */
function gramColumns(Z: Float64Array, T: number, N: number): Float64Array {
  const G = new Float64Array(N * N);
  for (let t = 0; t < T; t++) {
    const r = t * N;
    for (let a = 0; a < N; a++) {
      const za = Z[r + a];
      if (za === 0) continue;
      const ga = a * N;
      for (let b = 0; b <= a; b++) G[ga + b] += za * Z[r + b];
    }
  }
  for (let a = 0; a < N; a++) for (let b = 0; b < a; b++) G[b * N + a] = G[a * N + b];
  return G;
}

function toRows(M: Float64Array, n: number): number[][] {
  return Array.from({ length: n }, (_, i) => Array.from(M.subarray(i * n, (i + 1) * n)));
}

function normalize(v: Float64Array): void {
  let ss = 0;
  for (const x of v) ss += x * x;
  const inv = 1 / Math.sqrt(ss);
  for (let i = 0; i < v.length; i++) v[i] *= inv;
}

/** The largest-magnitude entry (first on a tie) made positive. */
function fixSign(v: Float64Array): void {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (Math.abs(v[i]) > Math.abs(v[best])) best = i;
  if (v[best] < 0) for (let i = 0; i < v.length; i++) v[i] = -v[i];
}
