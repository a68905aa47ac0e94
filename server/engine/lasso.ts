/**
 * The Lasso in Gram form, solved by cyclic coordinate descent:
 *
 *   α = argmin ½ α'Gα − c'α + λ‖α‖₁
 *
 * which is ½‖x − Dα‖² + λ‖α‖₁ up to a constant when G = D'D and c = D'x. Online
 * dictionary learning (Mairal et al. 2010, Algorithm 1) codes every sample this way:
 * with K atoms the problem is K-dimensional whatever the number of voxels, so once G
 * and c are formed a sweep costs K² and coordinate descent converges in a handful of
 * sweeps. Each coordinate update is the exact minimiser along that coordinate (a
 * soft-threshold), so the objective never increases and the fixed point satisfies the
 * Lasso optimality conditions (`lassoKktViolation` measures how far from them a
 * candidate is).
 */

export interface LassoGramOptions {
  /** Stop when no coordinate moved by more than tol·(1 + max|α|) in a sweep (default 1e-12). */
  tol?: number;
  /** Upper bound on sweeps; reached only for near-singular G (default 10,000). */
  maxSweeps?: number;
  /** Constrain α ≥ 0 (default false). */
  positive?: boolean;
}

/**
 * Solves the Lasso for a k×k Gram matrix `gram` (row-major, symmetric positive
 * semi-definite) and right-hand side `rhs` (length k); writes α into `out` and
 * returns the number of sweeps used. `out` is used as the warm start, so zero it
 * first for a cold start. Coordinates with G_jj ≤ 0 (an all-zero atom) get α_j = 0.
 */
export function lassoGram(
  gram: Float64Array,
  rhs: Float64Array,
  k: number,
  lambda: number,
  out: Float64Array,
  options: LassoGramOptions = {},
): number {
  const tol = options.tol ?? 1e-12;
  const maxSweeps = options.maxSweeps ?? 10_000;
  const positive = options.positive ?? false;
  let sweep = 0;
  while (sweep < maxSweeps) {
    sweep++;
    let maxDelta = 0;
    let maxAbs = 0;
    for (let j = 0; j < k; j++) {
      const row = j * k;
      const gjj = gram[row + j];
      const old = out[j];
      let next = 0;
      if (gjj > 0) {
        // Partial residual correlation with coordinate j left out.
        let z = rhs[j];
        for (let l = 0; l < k; l++) if (l !== j) z -= gram[row + l] * out[l];
        if (z > lambda) next = (z - lambda) / gjj;
        else if (z < -lambda && !positive) next = (z + lambda) / gjj;
      }
      out[j] = next;
      const d = Math.abs(next - old);
      if (d > maxDelta) maxDelta = d;
      if (Math.abs(next) > maxAbs) maxAbs = Math.abs(next);
    }
    if (maxDelta <= tol * (1 + maxAbs)) break;
  }
  return sweep;
}

/**
 * The largest violation of the Lasso optimality (KKT) conditions by `alpha`:
 * g = c − Gα must equal λ·sign(α_j) where α_j ≠ 0 and satisfy |g_j| ≤ λ where α_j = 0
 * (g_j ≤ λ in the positive case). Zero at the exact solution.
 */
export function lassoKktViolation(
  gram: Float64Array,
  rhs: Float64Array,
  k: number,
  lambda: number,
  alpha: Float64Array,
  positive = false,
): number {
  let worst = 0;
  for (let j = 0; j < k; j++) {
    let g = rhs[j];
    for (let l = 0; l < k; l++) g -= gram[j * k + l] * alpha[l];
    let v: number;
    if (alpha[j] > 0) v = Math.abs(g - lambda);
    else if (alpha[j] < 0) v = Math.abs(g + lambda);
    else if (positive) v = Math.max(0, g - lambda);
    else v = Math.max(0, Math.abs(g) - lambda);
    if (v > worst) worst = v;
  }
  return worst;
}
