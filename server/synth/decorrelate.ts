/**
 * Keeping the planted signals distinguishable. Independent random courses are only
 * uncorrelated on average: over a 60-TR run two HRF-smoothed block courses easily reach
 * |r| = 0.8, and then no method could tell which feature drives which network. So each
 * feature course (and each null network's signal) is redrawn from the next seed of its own
 * stream until its standardized drive has |r| ≤ maxAbsR with every signal already chosen
 * and with the slow drift regressors. Deterministic: the attempts follow from the seed.
 * Null networks' signals are never rendered, so they need no redraws: they are made exactly
 * orthogonal to the drives and the drift (`residualize`).
 */

export interface Decorrelated<T> {
  value: T;
  /** Per TR, standardized. */
  signal: Float64Array;
  /** Which draw was kept (0 = the first). */
  attempt: number;
  /** Its largest |r| with the signals it had to avoid. */
  maxAbsR: number;
}

/** Pearson correlation of two series of equal length (0 when either is constant). */
export function pearson(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = a.length;
  let ma = 0;
  let mb = 0;
  for (let i = 0; i < n; i++) {
    ma += a[i];
    mb += b[i];
  }
  ma /= n;
  mb /= n;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    const da = a[i] - ma;
    const db = b[i] - mb;
    sab += da * db;
    saa += da * da;
    sbb += db * db;
  }
  return saa > 0 && sbb > 0 ? sab / Math.sqrt(saa * sbb) : 0;
}

/** The drift shapes of the BOLD model (bold.ts): linear and half-cosine over the run. */
export function driftRegressors(nVolumes: number): Float64Array[] {
  const u = (k: number) => (nVolumes > 1 ? k / (nVolumes - 1) : 0);
  return [Float64Array.from({ length: nVolumes }, (_, k) => 2 * u(k) - 1), Float64Array.from({ length: nVolumes }, (_, k) => Math.cos(Math.PI * u(k)))];
}

/**
 * The first draw whose signal has |r| ≤ maxAbsR with every series in `avoid`; if none of
 * `maxAttempts` draws qualifies, the one with the smallest worst |r|.
 */
export function pickDecorrelated<T>(
  draw: (attempt: number) => { value: T; signal: Float64Array },
  avoid: Float64Array[],
  maxAbsR: number,
  maxAttempts: number,
): Decorrelated<T> {
  let best: Decorrelated<T> | null = null;
  for (let attempt = 0; attempt < maxAttempts; attempt++) {
    const { value, signal } = draw(attempt);
    let worst = 0;
    for (const other of avoid) worst = Math.max(worst, Math.abs(pearson(signal, other)));
    if (!best || worst < best.maxAbsR) best = { value, signal, attempt, maxAbsR: worst };
    if (worst <= maxAbsR) break;
  }
  return best as Decorrelated<T>;
}

/**
 * x minus its least-squares projection on the span of `basis` (modified Gram–Schmidt; basis
 * vectors that are numerically dependent on earlier ones are skipped). The result has zero
 * correlation with every basis vector when the basis includes a constant.
 */
export function residualize(x: Float64Array, basis: Float64Array[]): Float64Array {
  const q: Float64Array[] = [];
  for (const b of basis) {
    const v = Float64Array.from(b);
    for (const u of q) {
      const d = dot(v, u);
      for (let i = 0; i < v.length; i++) v[i] -= d * u[i];
    }
    const norm = Math.sqrt(dot(v, v));
    if (norm <= 1e-10 * Math.sqrt(dot(b, b))) continue;
    for (let i = 0; i < v.length; i++) v[i] /= norm;
    q.push(v);
  }
  const r = Float64Array.from(x);
  for (const u of q) {
    const d = dot(r, u);
    for (let i = 0; i < r.length; i++) r[i] -= d * u[i];
  }
  return r;
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}
