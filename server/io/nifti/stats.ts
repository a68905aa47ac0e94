/**
 * Per-volume summary statistics of scaled voxel values, as `syncact inspect` reports them:
 * min, max, mean and sum over the finite values, and how many values are not finite.
 * Sums are compensated (Neumaier), so a million-voxel volume agrees with numpy's pairwise
 * sum to ~1e-15 relative rather than drifting with the voxel order.
 */
export interface VolumeStats {
  /** null when the volume has no finite value. */
  min: number | null;
  max: number | null;
  mean: number | null;
  sum: number;
  /** Count of NaN and ±Infinity values. */
  nan: number;
}

export function volumeStats(values: ArrayLike<number>): VolumeStats {
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  let compensation = 0;
  let finite = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isFinite(v)) continue;
    finite++;
    if (v < min) min = v;
    if (v > max) max = v;
    const t = sum + v;
    compensation += Math.abs(sum) >= Math.abs(v) ? sum - t + v : v - t + sum;
    sum = t;
  }
  // Once the running sum overflows, the compensation is meaningless (inf - inf).
  const total = Number.isFinite(sum) ? sum + compensation : sum;
  // A finite sum can still overflow (e.g. float64 extremes); the mean is then computed per value.
  const mean = finite === 0 ? null : Number.isFinite(total) ? total / finite : scaledMean(values, finite);
  return {
    min: finite ? min : null,
    max: finite ? max : null,
    mean,
    sum: total,
    nan: values.length - finite,
  };
}

function scaledMean(values: ArrayLike<number>, finite: number): number {
  let mean = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (Number.isFinite(v)) mean += v / finite;
  }
  return mean;
}
