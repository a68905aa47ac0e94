/**
 * The batch twin of VoxelwiseGlm: (weighted) least squares of every voxel on the whole
 * design at once, by Householder QR of √W·X in float64 — an independent route from the
 * incremental one (Givens rotations one row at a time, read-outs solved on demand), so
 * the tests compare two different computations. To check the incremental estimator
 * before full rank, call it on the leading r columns of the design.
 *
 * Conventions are the incremental estimator's (see glm.ts): weights are a window over
 * homoscedastic noise, rss = Σ w r², df = Σw − tr(Φ⁻¹Φ₂), Var β̂_j = σ²(Φ⁻¹Φ₂Φ⁻¹)_jj.
 * With A = √W·X = QR these are cheap: tr(Φ⁻¹Φ₂) = Σ_t w_t‖Q_t‖² and
 * (Φ⁻¹Φ₂Φ⁻¹)_jj = Σ_t w_t (R⁻¹Qᵀ)_jt². A design without full rank (RANK_TOLERANCE on
 * R's diagonal, relative to each column's energy) gives NaN everywhere; a voxel with a
 * non-finite sample gives NaN for that voxel.
 */
import { SyncactError } from '../errors.ts';
import { EXACT_FIT, RANK_TOLERANCE } from './glmDense.ts';

export interface BatchOlsResult {
  /** P×V row-major: betas[j·V + v]. */
  betas: Float64Array;
  /** V: weighted residual sum of squares. */
  rss: Float64Array;
  /** P×V row-major t statistics. */
  t: Float64Array;
}

/**
 * @param X design, T×P row-major
 * @param Y data, T×V row-major
 * @param weights optional per-TR weights ≥ 0 (e.g. λ^{T−1−t} to mirror forgetting)
 * @param rankTolerance as GlmOptions.rankTolerance (default RANK_TOLERANCE)
 */
export function batchOls(
  X: Float64Array,
  Y: Float32Array,
  T: number,
  P: number,
  V: number,
  weights?: Float64Array,
  rankTolerance = RANK_TOLERANCE,
): BatchOlsResult {
  const bad = (m: string) => new SyncactError('ENGINE_BAD_INPUT', `batchOls: ${m}`);
  if (![T, P, V].every((n) => Number.isInteger(n) && n >= 1)) throw bad(`T, P, V must be positive integers, got ${T}, ${P}, ${V}`);
  if (X.length !== T * P) throw bad(`X has ${X.length} values, expected T·P = ${T * P}`);
  if (Y.length !== T * V) throw bad(`Y has ${Y.length} values, expected T·V = ${T * V}`);
  if (weights && weights.length !== T) throw bad(`weights has ${weights.length} values, expected T = ${T}`);
  const w = new Float64Array(T);
  for (let t = 0; t < T; t++) {
    const wt = weights ? weights[t] : 1;
    if (!(wt >= 0 && Number.isFinite(wt))) throw bad(`weight ${t} is ${wt}`);
    w[t] = wt;
  }
  for (let i = 0; i < X.length; i++) if (!Number.isFinite(X[i])) throw bad(`X value ${i} is ${X[i]}`);

  const betas = new Float64Array(P * V).fill(NaN);
  const rss = new Float64Array(V).fill(NaN);
  const tOut = new Float64Array(P * V).fill(NaN);
  if (T < P) return { betas, rss, t: tOut };

  const sw = w.map(Math.sqrt);
  // A = √W X, column-major (column j at [j·T, (j+1)·T)), overwritten by the reflectors.
  const a = new Float64Array(T * P);
  const energy = new Float64Array(P);
  for (let t = 0; t < T; t++) for (let j = 0; j < P; j++) a[j * T + t] = sw[t] * X[t * P + j];
  for (let j = 0; j < P; j++) for (let t = 0; t < T; t++) energy[j] += a[j * T + t] ** 2;

  // Householder: reflector j is v_j (stored in a[j·T + j .. j·T + T), v_j[0] = 1 implied
  // by tau), R's diagonal in rDiag, the rest of R above the diagonal in a.
  const rDiag = new Float64Array(P);
  const tau = new Float64Array(P);
  for (let j = 0; j < P; j++) {
    const cj = j * T;
    let norm = 0;
    for (let t = j; t < T; t++) norm += a[cj + t] ** 2;
    norm = Math.sqrt(norm);
    if (!(energy[j] > 0) || !(norm * norm > rankTolerance * energy[j])) return { betas, rss, t: tOut };
    const alpha = a[cj + j] > 0 ? -norm : norm;
    const v0 = a[cj + j] - alpha;
    // v = (a_j − alpha e_j) / v0, so v[0] = 1; tau = −v0 / alpha.
    for (let t = j + 1; t < T; t++) a[cj + t] /= v0;
    tau[j] = -v0 / alpha;
    rDiag[j] = alpha;
    a[cj + j] = 1;
    for (let k = j + 1; k < P; k++) applyReflector(a, cj, tau[j], a, k * T, j, T);
  }

  const applyQt = (b: Float64Array) => {
    for (let j = 0; j < P; j++) applyReflector(a, j * T, tau[j], b, 0, j, T);
  };
  const backSolve = (b: Float64Array, out: Float64Array) => {
    for (let i = P - 1; i >= 0; i--) {
      let s = b[i];
      for (let k = i + 1; k < P; k++) s -= a[k * T + i] * out[k];
      out[i] = s / rDiag[i];
    }
  };

  // Thin Q (T×P): Q e_j = H_0 … H_{P−1} e_j; then df and the variance factors.
  const q = new Float64Array(P * T); // column-major
  for (let j = 0; j < P; j++) {
    const col = q.subarray(j * T, (j + 1) * T);
    col[j] = 1;
    for (let i = P - 1; i >= 0; i--) applyReflector(a, i * T, tau[i], col, 0, i, T);
  }
  let wSum = 0;
  let leverage = 0;
  const variance = new Float64Array(P);
  const qRow = new Float64Array(P);
  const m = new Float64Array(P);
  for (let t = 0; t < T; t++) {
    wSum += w[t];
    let s = 0;
    for (let j = 0; j < P; j++) {
      qRow[j] = q[j * T + t];
      s += qRow[j] ** 2;
    }
    leverage += w[t] * s;
    backSolve(qRow, m); // column t of R⁻¹Qᵀ
    for (let j = 0; j < P; j++) variance[j] += w[t] * m[j] ** 2;
  }
  const df = wSum - leverage;

  const b = new Float64Array(T);
  const beta = new Float64Array(P);
  voxels: for (let v = 0; v < V; v++) {
    let syy = 0;
    for (let t = 0; t < T; t++) {
      const y = Y[t * V + v];
      if (!Number.isFinite(y)) continue voxels;
      b[t] = sw[t] * y;
      syy += w[t] * y * y;
    }
    applyQt(b);
    backSolve(b, beta);
    let r2 = 0;
    for (let t = 0; t < T; t++) {
      let fit = 0;
      for (let j = 0; j < P; j++) fit += X[t * P + j] * beta[j];
      const r = Y[t * V + v] - fit;
      r2 += w[t] * r * r;
    }
    rss[v] = r2;
    const exact = !(r2 > EXACT_FIT * syy);
    for (let j = 0; j < P; j++) {
      betas[j * V + v] = beta[j];
      tOut[j * V + v] = df > 0 && !exact ? beta[j] / Math.sqrt((r2 / df) * variance[j]) : NaN;
    }
  }
  return { betas, rss, t: tOut };
}

/** target[off + j..off + T) ← (I − tau·v vᵀ) target, v = a[vOff + j..vOff + T) with v[0] = 1. */
function applyReflector(
  a: Float64Array,
  vOff: number,
  tau: number,
  target: Float64Array,
  off: number,
  j: number,
  T: number,
): void {
  let s = 0;
  for (let t = j; t < T; t++) s += a[vOff + t] * target[off + t];
  s *= tau;
  for (let t = j; t < T; t++) target[off + t] -= s * a[vOff + t];
}
