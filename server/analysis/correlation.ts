/**
 * Correlation across models (brain similarity vs ImageNet accuracy): Pearson r, Spearman
 * rho (Pearson of mid-ranks, so ties share their average rank, as scipy.stats.spearmanr),
 * and a percentile bootstrap confidence interval over models resampled with replacement,
 * seeded so that the interval is the same on every run. With a handful of models the
 * interval is wide, which is the honest answer; resamples in which one variable is
 * constant have no correlation and are left out (their count is reported).
 */
import { createRng } from '../engine/random.ts';

/** Pearson r of two equally long series; NaN when either is constant or shorter than 2. */
export function pearson(x: ArrayLike<number>, y: ArrayLike<number>): number {
  const n = x.length;
  if (n !== y.length) throw new RangeError(`pearson: lengths differ (${n} vs ${y.length})`);
  if (n < 2) return NaN;
  let mx = 0;
  let my = 0;
  for (let i = 0; i < n; i++) {
    mx += x[i];
    my += y[i];
  }
  mx /= n;
  my /= n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const a = x[i] - mx;
    const b = y[i] - my;
    sxy += a * b;
    sxx += a * a;
    syy += b * b;
  }
  // Relative to the data's scale, a spread this small is a constant series.
  if (sxx <= 1e-24 * (mx * mx + 1) * n || syy <= 1e-24 * (my * my + 1) * n) return NaN;
  return Math.max(-1, Math.min(1, sxy / Math.sqrt(sxx * syy)));
}

/** Mid-ranks (1-based; ties get the mean of the ranks they span). */
export function ranks(x: ArrayLike<number>): Float64Array {
  const order = Array.from({ length: x.length }, (_, i) => i).sort((a, b) => x[a] - x[b] || a - b);
  const out = new Float64Array(x.length);
  for (let i = 0; i < order.length; ) {
    let j = i;
    while (j + 1 < order.length && x[order[j + 1]] === x[order[i]]) j++;
    for (let k = i; k <= j; k++) out[order[k]] = (i + j) / 2 + 1;
    i = j + 1;
  }
  return out;
}

export function spearman(x: ArrayLike<number>, y: ArrayLike<number>): number {
  return pearson(ranks(x), ranks(y));
}

export interface BootstrapResult {
  estimate: number;
  low: number;
  high: number;
  /** Resamples with a defined statistic (the others had a constant variable). */
  valid: number;
  draws: number;
}

/**
 * Percentile bootstrap of a paired statistic.
 * @param level coverage, 0.95 by default; the bounds are the (1−level)/2 and (1+level)/2
 *   quantiles of the valid resamples, linearly interpolated (numpy's default).
 */
export function bootstrapCi(
  x: ArrayLike<number>,
  y: ArrayLike<number>,
  stat: (x: Float64Array, y: Float64Array) => number,
  options: { draws: number; seed: number; level?: number },
): BootstrapResult {
  const n = x.length;
  const estimate = stat(Float64Array.from(x), Float64Array.from(y));
  const rng = createRng(options.seed);
  const values: number[] = [];
  const bx = new Float64Array(n);
  const by = new Float64Array(n);
  for (let d = 0; d < options.draws; d++) {
    for (let i = 0; i < n; i++) {
      const k = rng.int(n);
      bx[i] = x[k];
      by[i] = y[k];
    }
    const v = stat(bx, by);
    if (Number.isFinite(v)) values.push(v);
  }
  values.sort((a, b) => a - b);
  const level = options.level ?? 0.95;
  return { estimate, low: quantile(values, (1 - level) / 2), high: quantile(values, (1 + level) / 2), valid: values.length, draws: options.draws };
}

/** Linear-interpolation quantile of sorted values; NaN for none. */
export function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const h = (sorted.length - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
}
