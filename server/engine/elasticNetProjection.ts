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
 * algorithm for the ℓ1 ball generalised to the elastic net: each pass touches only the
 * surviving candidates, so a sparse map costs a few passes over its support after the
 * first full pass.
 *
 * Projecting max(u, 0) gives the projection onto C ∩ {d ≥ 0}, because C is symmetric
 * under sign flips of single coordinates and shrinks monotonically.
 */

/**
 * Projects `u` (length n) onto the elastic-net ball in place. `candidates` is an Int32Array
 * scratch buffer of length ≥ n. Returns the number of non-zero coordinates afterwards.
 */
export function projectElasticNetBall(
  u: Float64Array,
  n: number,
  r: number,
  nonNegative: boolean,
  candidates: Int32Array,
): number {
  // First pass: clamp, collect non-zeros and the constraint value of u itself.
  let m = 0;
  let s1 = 0;
  let s2 = 0;
  for (let i = 0; i < n; i++) {
    let v = u[i];
    if (nonNegative && v < 0) v = u[i] = 0;
    if (v !== 0) {
      const a = Math.abs(v);
      candidates[m++] = i;
      s1 += a;
      s2 += a * a;
    }
  }
  if ((1 - r) * s2 + r * s1 <= 1) return m; // already inside
  if (r <= 0) {
    const scale = 1 / Math.sqrt(s2);
    for (let q = 0; q < m; q++) u[candidates[q]] *= scale;
    return m;
  }
  const c = (2 * (1 - r)) / r;
  let theta = 0;
  for (;;) {
    const qa = (1 - r) * m + c * c;
    const qb = r * m + 2 * c;
    const qk = (1 - r) * s2 + r * s1 - 1;
    // Positive root of qa·θ² + qb·θ − qk = 0, in the cancellation-free form.
    theta = qk <= 0 ? 0 : (2 * qk) / (qb + Math.sqrt(qb * qb + 4 * qa * qk));
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
