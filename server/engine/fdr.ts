/**
 * Benjamini–Hochberg false discovery rate control (Benjamini & Hochberg 1995), the same
 * q-values as statsmodels `multipletests(p, method='fdr_bh')[1]`.
 *
 * The sliding-window coupling tests every (unit, feature) pair each TR and annotation
 * tests every unit; BH keeps the expected fraction of false discoveries among the
 * reported pairs at α under independence or positive dependence, which is what
 * neighbouring voxels and smooth unit responses give.
 */
import { SyncactError } from '../errors.ts';

/**
 * q-values (BH-adjusted p-values) for a family of tests.
 *
 * q_(i) = min_{j ≥ i} min(1, p_(j) · m / j) over the ascending order of the p-values, so
 * q is monotone in p and `q ≤ α` is exactly the BH rejection set at level α.
 * NaN p-values (pairs with no defined test, e.g. a zero-variance window) are not counted
 * in m and get a NaN q-value.
 *
 * @param p p-values in [0, 1] (NaN allowed); not modified.
 * @returns a new array of q-values, same length and order as `p`.
 * @throws SyncactError ENGINE_BAD_INPUT when a p-value is outside [0, 1] or infinite.
 */
export function benjaminiHochberg(p: Float64Array): Float64Array {
  const n = p.length;
  const q = new Float64Array(n).fill(NaN);
  // Sort the p-values themselves (a native typed-array sort: 10⁵ pairs per TR), compute
  // q along the sorted order, and look each p up by binary search. Tied p-values share
  // one q (the running minimum makes them equal), so which tied position is found does
  // not matter.
  const sorted = new Float64Array(n);
  let m = 0;
  for (let i = 0; i < n; i++) {
    const v = p[i];
    if (Number.isNaN(v)) continue;
    if (!(v >= 0 && v <= 1)) {
      throw new SyncactError('ENGINE_BAD_INPUT', `p-value ${v} at index ${i} is outside [0, 1]`);
    }
    sorted[m++] = v;
  }
  if (m === 0) return q;
  const ps = sorted.subarray(0, m).sort();
  const qs = new Float64Array(m);
  let running = 1;
  for (let r = m - 1; r >= 0; r--) {
    const adj = (ps[r] * m) / (r + 1);
    if (adj < running) running = adj;
    qs[r] = running;
  }
  for (let i = 0; i < n; i++) {
    const v = p[i];
    if (Number.isNaN(v)) continue;
    let lo = 0;
    let hi = m - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (ps[mid] < v) lo = mid + 1;
      else hi = mid;
    }
    q[i] = qs[lo];
  }
  return q;
}

/**
 * The BH rejection mask at level α: 1 where q ≤ α, 0 elsewhere (NaN q never rejects).
 * @param q q-values from {@link benjaminiHochberg}.
 * @param alpha the FDR level, in (0, 1).
 */
export function rejectAt(q: Float64Array, alpha: number): Uint8Array {
  if (!(alpha > 0 && alpha < 1)) {
    throw new SyncactError('ENGINE_BAD_INPUT', `FDR level alpha must be in (0, 1), got ${alpha}`);
  }
  const out = new Uint8Array(q.length);
  for (let i = 0; i < q.length; i++) out[i] = q[i] <= alpha ? 1 : 0;
  return out;
}
