/**
 * The small dense linear algebra the voxelwise GLM needs on its P×P normal matrix
 * (P = design columns, tens): a Cholesky factor kept up to date one design row at a
 * time, a relative rank test, and solves with it. All float64, row-major, no allocation
 * beyond what the caller passes.
 *
 * The rank test is relative to each column's own energy, so it does not care about the
 * scale of a regressor (a drift in seconds and a unit response in a.u. are treated alike)
 * and it keeps working when forgetting shrinks the whole matrix.
 */

/**
 * A column counts as independent of the earlier ones when the part of it that they
 * cannot explain keeps more than this fraction of its (weighted) energy: the squared
 * sine of its angle to their span, 1/VIF against them, exceeds 1e-6.
 *
 * Why not nearer rounding (1e-10 was tried): the incremental estimator solves the normal
 * equations once, at its exact start, and their error grows like cond(X)²·ε. With slow
 * cosine drifts the design is full rank early but nearly collinear (a 300-TR run: from
 * TR 47 at 1e-10), and there the incremental betas differed from QR by up to 1.6e-3
 * relative (QR was right to 1e-10, checked in 40-digit arithmetic), while the estimates
 * themselves had variance inflation above 1e6, i.e. meant nothing. At 1e-6 the fit starts
 * at TR 86 and agrees with QR within 3e-5 at every TR after (test/engine/glm.test.ts).
 * The batch twin uses the same threshold, so both report NaN over the same TRs.
 */
export const RANK_TOLERANCE = 1e-6;

/**
 * A fit whose weighted RSS is at most this fraction of Σwy² is exact to rounding (a
 * constant voxel, noise-free data): σ² is 0 and t is undefined (NaN), not ±Infinity.
 */
export const EXACT_FIT = 1e-13;

/**
 * Updates the lower Cholesky factor L of Φ (P×P, row-major, upper triangle zero) to
 * that of λΦ + x xᵀ, by Givens rotations (the classic rank-one update, O(P²)). This is
 * QR of the stacked rows √W·X done one row at a time, so its diagonal resolves a rank
 * deficiency down to rounding in X itself, not in XᵀX: forming XᵀX first and factoring
 * it squares the condition number, and early in a run (few TRs, slow drift columns
 * that are nearly collinear) the last pivot of a design one row short of full rank came
 * out as 2e-9 of its column's energy instead of ~1e-30 (test/engine/glm.dense.test.ts).
 * Starts from L = 0 and works through rank-deficient stretches. `x` is not modified;
 * `work` (P) is scratch.
 */
export function givensUpdate(l: Float64Array, p: number, lambda: number, x: Float64Array, work: Float64Array): void {
  if (lambda !== 1) {
    const s = Math.sqrt(lambda);
    for (let i = 0; i < p * p; i++) l[i] *= s;
  }
  work.set(x);
  for (let j = 0; j < p; j++) {
    const xj = work[j];
    if (xj === 0) continue;
    const ljj = l[j * p + j];
    const r = Math.hypot(ljj, xj);
    const c = ljj / r;
    const s = xj / r;
    l[j * p + j] = r;
    for (let i = j + 1; i < p; i++) {
      const lij = l[i * p + j];
      const wi = work[i];
      l[i * p + j] = c * lij + s * wi;
      work[i] = c * wi - s * lij;
    }
  }
}

/**
 * True when every column keeps more than `tolerance` of its energy `Φ_jj` after
 * projection on the earlier columns, i.e. L_jj² > tolerance·Φ_jj for all j.
 * Relative to each column's own energy, so the scale of a regressor does not matter.
 */
export function fullRank(l: Float64Array, phi: Float64Array, p: number, tolerance = RANK_TOLERANCE): boolean {
  for (let j = 0; j < p; j++) {
    const energy = phi[j * p + j];
    const d = l[j * p + j];
    // `!(a > b)` also rejects NaN.
    if (!(energy > 0) || !(d * d > tolerance * energy)) return false;
  }
  return true;
}

/**
 * Solves (L Lᵀ) out = b for a full-rank factor from givensUpdate. `out` may be `b`.
 * `bOffset`/`outOffset` let callers solve for one voxel's slice of a voxel-major array.
 */
export function choleskySolve(
  l: Float64Array,
  p: number,
  b: Float64Array,
  out: Float64Array,
  bOffset = 0,
  outOffset = 0,
): void {
  // Forward: L z = b.
  for (let i = 0; i < p; i++) {
    const rowI = i * p;
    let s = b[bOffset + i];
    for (let k = 0; k < i; k++) s -= l[rowI + k] * out[outOffset + k];
    out[outOffset + i] = s / l[rowI + i];
  }
  // Backward: Lᵀ out = z.
  for (let i = p - 1; i >= 0; i--) {
    let s = out[outOffset + i];
    for (let k = i + 1; k < p; k++) s -= l[k * p + i] * out[outOffset + k];
    out[outOffset + i] = s / l[i * p + i];
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
