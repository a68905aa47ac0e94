/**
 * The small dense linear algebra the voxelwise GLM needs on its design (P columns,
 * tens): the upper-triangular factor R of the (weighted) design's QR decomposition kept
 * up to date one row at a time by Givens rotations, the rotations themselves (which the
 * per-voxel loop replays on each voxel's Qᵀy), a relative identifiability test, and
 * triangular solves with leading blocks of R. All float64, row-major, no allocation
 * beyond what the caller passes.
 *
 * The identifiability test is relative to each column's own energy, so it does not care
 * about the scale of a regressor (a drift in seconds and a unit response in a.u. are
 * treated alike) and it keeps working when forgetting shrinks the whole design.
 */

/**
 * A column counts as identifiable when the part of it that the earlier columns cannot
 * explain keeps more than this fraction of its (weighted) energy: the squared sine of its
 * angle to their span, 1/VIF against them, exceeds 1e-10.
 *
 * Why this low: the estimator is QR-based recursive least squares (glm.ts), which never
 * forms a normal matrix nor carries betas from one TR to the next, so its error is that
 * of batch QR (~cond(X)·ε), not cond(X)²·ε. The Cholesky/RLS estimator it replaced
 * needed 1e-6 (its exact start on the normal equations differed from QR by 1.6e-3 at
 * 1e-10). Measured on the 300-TR design [20 units, intercept, 4 cosine drifts] at every
 * TR against batch Householder QR of the identifiable columns, worst unit-beta error:
 * 2.3e-7 relative at 1e-10, 5.9e-7 at 1e-11, 8.6e-7 at 1e-12 (it grows with cond(X)), so
 * 1e-10 keeps a margin under 1e-6 (test/engine/glm.test.ts asserts ≤ 1e-6); full rank
 * then comes at TR 51 instead of 73 at 1e-8. The batch twin (glmBatch.ts) uses the same
 * threshold on its Householder R.
 */
export const RANK_TOLERANCE = 1e-10;

/**
 * A fit whose weighted RSS is at most this fraction of Σwy² is exact to rounding (a
 * constant voxel, noise-free data): σ² is 0 and t is undefined (NaN), not ±Infinity.
 */
export const EXACT_FIT = 1e-13;

/**
 * Rotates the row √W-weighted design row `x` into R (P×P upper triangular, row-major):
 * R ← the R of QR([√λ·R; xᵀ]), the classic row update, O(P²). Rotation i acts on row i
 * of R and the working row w (which starts as x): (R_i, w) ← (c_i·√λR_i + s_i·w,
 * c_i·w − s_i·√λR_i), chosen to zero w_i. `cos`/`sin` (P) receive (c_i, s_i): every
 * voxel's (z, y) pair goes through the same rotations (glmBlock.ts), which is what makes
 * z = Qᵀy without Q. Starts from R = 0 and works through rank-deficient stretches (a
 * rotation with nothing to rotate is the identity). Being QR of the stacked rows, R's
 * diagonal resolves a rank deficiency down to rounding in X itself, not in XᵀX (forming
 * XᵀX squares the condition number: test/engine/glm.dense.test.ts). `x` is not
 * modified; `work` (P) is scratch.
 */
export function qrRowUpdate(
  r: Float64Array,
  p: number,
  lambda: number,
  x: Float64Array,
  cos: Float64Array,
  sin: Float64Array,
  work: Float64Array,
): void {
  if (lambda !== 1) {
    const s = Math.sqrt(lambda);
    for (let i = 0; i < p * p; i++) r[i] *= s;
  }
  work.set(x);
  for (let i = 0; i < p; i++) {
    const wi = work[i];
    const rii = r[i * p + i];
    const h = Math.hypot(rii, wi);
    if (wi === 0 || h === 0) {
      cos[i] = 1;
      sin[i] = 0;
      continue;
    }
    const c = rii / h;
    const s = wi / h;
    cos[i] = c;
    sin[i] = s;
    r[i * p + i] = h;
    work[i] = 0;
    const row = i * p;
    for (let k = i + 1; k < p; k++) {
      const rik = r[row + k];
      const wk = work[k];
      r[row + k] = c * rik + s * wk;
      work[k] = c * wk - s * rik;
    }
  }
}

/**
 * The number r of leading columns that are identifiable: columns 0..r−1 each keep more
 * than `tolerance` of their energy `energy[j]` (= Σ w x_j²) outside the span of the
 * columns before them, i.e. R_jj² > tolerance·energy[j], and column r does not. The
 * leading r×r block of R is then the R of the design restricted to those columns.
 */
export function identifiableColumns(
  r: Float64Array,
  energy: Float64Array,
  p: number,
  tolerance = RANK_TOLERANCE,
): number {
  for (let j = 0; j < p; j++) {
    const e = energy[j];
    const d = r[j * p + j];
    // `!(a > b)` also rejects NaN.
    if (!(e > 0) || !(d * d > tolerance * e)) return j;
  }
  return p;
}

/**
 * Solves R_nᵀ·out = b with R_n the leading n×n block of R (P×P): forward substitution.
 * Entries of `out` at n and beyond are left alone.
 */
export function solveUpperTransposed(r: Float64Array, p: number, n: number, b: Float64Array, out: Float64Array): void {
  for (let i = 0; i < n; i++) {
    let s = b[i];
    for (let k = 0; k < i; k++) s -= r[k * p + i] * out[k];
    out[i] = s / r[i * p + i];
  }
}

/** Solves R_n·out = b with R_n the leading n×n block of R (P×P): back substitution. `out` may be `b`. */
export function solveUpper(r: Float64Array, p: number, n: number, b: Float64Array, out: Float64Array): void {
  for (let i = n - 1; i >= 0; i--) {
    let s = b[i];
    for (let k = i + 1; k < n; k++) s -= r[i * p + k] * out[k];
    out[i] = s / r[i * p + i];
  }
}

/** a ← λ·a + x xᵀ on the full P×P matrix (kept symmetric by construction). */
export function scaleAddOuter(a: Float64Array, p: number, lambda: number, x: Float64Array): void {
  for (let i = 0; i < p; i++) {
    const xi = x[i];
    const row = i * p;
    for (let j = 0; j < p; j++) a[row + j] = lambda * a[row + j] + xi * x[j];
  }
}
