/**
 * Running standardization per element (voxel, feature or unit) with Welford's algorithm:
 * the mean and the sample variance (ddof = 1, as nilearn's `standardize='zscore_sample'`
 * and `np.std(ddof=1)`) of everything seen so far, updated in O(size) per TR without the
 * cancellation of the Σx, Σx² formula (BOLD values sit around 10⁴ with a variance of ~10²).
 *
 * Defined outputs for degenerate input, never an exception mid-stream:
 * - a NaN element is skipped for that element only (its count does not advance), and
 *   `transform` gives NaN there; the other elements are unaffected;
 * - fewer than 2 samples: variance NaN (ddof = 1 is undefined) and `transform` gives NaN;
 * - standard deviation below machine epsilon (a constant series): `transform` gives 0, as
 *   nilearn does by treating such a std as 1 (x - mean is then 0 for a constant series);
 *   a constant voxel carries no information to standardize.
 */
import { SyncactError } from '../errors.ts';
import type { Estimator, EstimatorSnapshot } from './estimator.ts';

export interface RunningStandardizerOptions {
  /** Number of elements per sample. */
  size: number;
}

const KIND = 'standardize';
const VERSION = 1;

export class RunningStandardizer implements Estimator {
  readonly size: number;
  private readonly n: Float64Array;
  private readonly mu: Float64Array;
  private readonly m2: Float64Array;

  constructor(options: RunningStandardizerOptions) {
    const { size } = options;
    if (!Number.isInteger(size) || size < 1) throw new SyncactError('ENGINE_BAD_INPUT', `standardize: size must be a positive integer, got ${size}`);
    this.size = size;
    this.n = new Float64Array(size);
    this.mu = new Float64Array(size);
    this.m2 = new Float64Array(size);
  }

  /** Adds one sample. NaN elements are skipped element-wise. */
  update(x: Float32Array | Float64Array): void {
    this.check(x, 'input');
    const { n, mu, m2 } = this;
    for (let i = 0; i < this.size; i++) {
      const v = x[i];
      if (v !== v) continue;
      const k = ++n[i];
      const d = v - mu[i];
      mu[i] += d / k;
      m2[i] += d * (v - mu[i]);
    }
  }

  /** Samples counted for element i (NaNs excluded). */
  count(i: number): number {
    return this.n[i];
  }

  /** Running mean per element (NaN where nothing was counted yet). */
  mean(out?: Float64Array): Float64Array {
    const res = this.output(out);
    for (let i = 0; i < this.size; i++) res[i] = this.n[i] > 0 ? this.mu[i] : NaN;
    return res;
  }

  /** Sample variance (ddof = 1) per element; NaN with fewer than 2 samples. */
  variance(out?: Float64Array): Float64Array {
    const res = this.output(out);
    for (let i = 0; i < this.size; i++) res[i] = this.n[i] > 1 ? this.m2[i] / (this.n[i] - 1) : NaN;
    return res;
  }

  /** Sample standard deviation (ddof = 1) per element. */
  std(out?: Float64Array): Float64Array {
    const res = this.variance(out);
    for (let i = 0; i < this.size; i++) res[i] = Math.sqrt(res[i]);
    return res;
  }

  /** (x - mean) / std with the current statistics; see the file comment for degenerate cases. */
  transform(x: Float32Array | Float64Array, out?: Float32Array | Float64Array): Float32Array | Float64Array {
    this.check(x, 'input');
    const res = out ?? new Float64Array(this.size);
    this.check(res, 'output');
    const { n, mu, m2 } = this;
    for (let i = 0; i < this.size; i++) {
      const v = x[i];
      if (v !== v || n[i] < 2) {
        res[i] = NaN;
        continue;
      }
      const sd = Math.sqrt(m2[i] / (n[i] - 1));
      res[i] = sd < Number.EPSILON ? 0 : (v - mu[i]) / sd;
    }
    return res;
  }

  snapshot(): EstimatorSnapshot {
    return {
      kind: KIND,
      version: VERSION,
      scalars: { size: this.size },
      arrays: { n: Float64Array.from(this.n), mean: Float64Array.from(this.mu), m2: Float64Array.from(this.m2) },
    };
  }

  restore(s: EstimatorSnapshot): void {
    if (s.kind !== KIND || s.version !== VERSION) {
      throw new SyncactError('ENGINE_SNAPSHOT_MISMATCH', `standardize: cannot restore a ${s.kind} v${s.version} snapshot`);
    }
    const { n, mean, m2 } = s.arrays;
    if (s.scalars.size !== this.size || !n || !mean || !m2 || n.length !== this.size || mean.length !== this.size || m2.length !== this.size) {
      throw new SyncactError('ENGINE_SNAPSHOT_MISMATCH', `standardize: snapshot has another size than ${this.size}`);
    }
    this.n.set(n);
    this.mu.set(mean);
    this.m2.set(m2);
  }

  private output(out: Float64Array | undefined): Float64Array {
    const res = out ?? new Float64Array(this.size);
    this.check(res, 'output');
    return res;
  }

  private check(x: ArrayLike<number>, what: string): void {
    if (x.length !== this.size) throw new SyncactError('ENGINE_BAD_INPUT', `standardize: ${what} has length ${x.length}, expected ${this.size}`);
  }
}
