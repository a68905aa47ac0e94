/**
 * Euclidean projection onto the elastic-net ball
 *
 *   C = { d : (1 − r)‖d‖₂² + r‖d‖₁ ≤ 1 },  r ∈ [0, 1]
 *
 * (optionally intersected with the non-negative orthant), the atom constraint of sparse
 * dictionary learning (Mairal et al. 2010 §5.2; Mensch et al. 2016). r = 0 is the unit
 * ℓ2 ball of plain dictionary learning, r = 1 the ℓ1 ball; in between the projection
 * soft-thresholds and shrinks, which is what makes spatial maps sparse.
 *
 * The minimiser of ½‖d − u‖² over C is d_i = sign(u_i)(|u_i| − θ)₊ / (1 + cθ) with
 * c = 2(1 − r)/r and θ ≥ 0 the root of the constraint. For a fixed set S of active
 * coordinates (n of them, Σ|u| = S1, Σu² = S2) the constraint times (1 + cθ)² is the
 * concave quadratic
 *
 *   −[(1 − r)n + c²]θ² − (rn + 2c)θ + (1 − r)S2 + rS1 − 1 = 0.
 *
 * Solving it on a superset of the true active set gives a θ no larger than the true one
 * (the extra terms only lower the left side), so coordinates below it can be dropped
 * for good; repeating until nothing drops gives the exact θ. This is Michelot's
 * algorithm for the ℓ1 ball generalised to the elastic net. The first pass already
 * filters as Condat (2016) does for the simplex, so later passes touch only a short
 * candidate list: a map costs about one pass over its V values.
 *
 * Projecting max(u, 0) gives the projection onto C ∩ {d ≥ 0}, because C is symmetric
 * under sign flips of single coordinates and shrinks monotonically.
 */

/**
 * A guess of θ going in (e.g. half the θ of the same atom's previous projection), the θ
 * found coming out. A guess that turns out too large is detected and ignored, so it only
 * ever saves time.
 */
export interface ProjectionHint {
  theta: number;
}

/**
 * Projects `u` (length n) onto the elastic-net ball in place. `candidates` is an Int32Array
 * scratch buffer of length ≥ n; on return its first m entries list the non-zero
 * coordinates in increasing order, where m is the returned count.
 */
export function projectElasticNetBall(
  u: Float64Array,
  n: number,
  r: number,
  nonNegative: boolean,
  candidates: Int32Array,
  hint?: ProjectionHint,
): number {
  if (r <= 0) {
    if (hint) hint.theta = 0;
    return projectL2Ball(u, n, nonNegative, candidates);
  }
  const c = (2 * (1 - r)) / r;
  // Positive root θ of the constraint restricted to a set with n_ = m, S1 = s1, S2 = s2
  // (0 when that set alone is inside the ball), in the cancellation-free form.
  const root = (m: number, s1: number, s2: number): number => {
    const qa = (1 - r) * m + c * c;
    const qb = r * m + 2 * c;
    const qk = (1 - r) * s2 + r * s1 - 1;
    return qk <= 0 ? 0 : (2 * qk) / (qb + Math.sqrt(qb * qb + 4 * qa * qk));
  };
  // First pass (Condat's filtering, 2016): the root for any subset of the coordinates is
  // a lower bound on the true θ, so a coordinate not above the running root of those
  // kept so far can never be active and is skipped.
  let m = 0;
  let s1 = 0;
  let s2 = 0;
  let theta = 0;
  if (nonNegative) for (let i = 0; i < n; i++) if (u[i] < 0) u[i] = 0;
  const g = hint && hint.theta > 0 ? hint.theta : 0;
  let guessed = false;
  if (g > 0) {
    // Keep only |u_i| > g; valid when the true θ exceeds g, i.e. when the constraint at
    // θ = g (which involves exactly these coordinates) is still above 1.
    for (let i = 0; i < n; i++) {
      const v = u[i];
      if (v > g || v < -g) {
        const a = v < 0 ? -v : v;
        candidates[m++] = i;
        s1 += a;
        s2 += a * a;
      }
    }
    const sg = 1 + c * g;
    const over = (1 - r) * (s2 - 2 * g * s1 + m * g * g) + r * sg * (s1 - m * g) - sg * sg;
    guessed = over > 0;
    if (!guessed) m = s1 = s2 = 0;
  }
  if (!guessed) {
    for (let i = 0; i < n; i++) {
      const v = u[i];
      if (v > theta || v < -theta) {
        const a = v < 0 ? -v : v;
        candidates[m++] = i;
        s1 += a;
        s2 += a * a;
        theta = root(m, s1, s2);
      }
    }
  }
  // While the root is 0 every non-zero is kept, so a root still 0 at the end means the
  // whole of u is inside the ball: nothing moves, and the candidates are its non-zeros.
  if (!guessed && theta === 0) {
    if (hint) hint.theta = 0;
    return m;
  }
  // Michelot: drop candidates not above the root of the current set until none drops.
  for (;;) {
    theta = root(m, s1, s2);
    let kept = 0;
    let n1 = 0;
    let n2 = 0;
    for (let q = 0; q < m; q++) {
      const i = candidates[q];
      const a = Math.abs(u[i]);
      if (a > theta) {
        candidates[kept++] = i;
        n1 += a;
        n2 += a * a;
      }
    }
    if (kept === m) break;
    m = kept;
    s1 = n1;
    s2 = n2;
  }
  if (hint) hint.theta = theta;
  // Survivors stay in increasing index order, so one walk shrinks them and zeroes the rest.
  const scale = 1 / (1 + c * theta);
  let q = 0;
  for (let i = 0; i < n; i++) {
    if (q < m && candidates[q] === i) {
      const v = u[i];
      u[i] = v > 0 ? (v - theta) * scale : (v + theta) * scale;
      q++;
    } else {
      u[i] = 0;
    }
  }
  return m;
}

/** The r = 0 case: scale onto the unit ℓ2 sphere when outside the ball. */
function projectL2Ball(u: Float64Array, n: number, nonNegative: boolean, candidates: Int32Array): number {
  let m = 0;
  let s2 = 0;
  for (let i = 0; i < n; i++) {
    let v = u[i];
    if (nonNegative && v < 0) v = u[i] = 0;
    if (v !== 0) {
      candidates[m++] = i;
      s2 += v * v;
    }
  }
  if (s2 > 1) {
    const scale = 1 / Math.sqrt(s2);
    for (let q = 0; q < m; q++) u[candidates[q]] *= scale;
  }
  return m;
}
