/**
 * Automatic brain mask from the mean EPI volume, following nilearn's
 * `masking.compute_epi_mask` (a heuristic of T. Nichols) step by step, so that a user
 * who knows nilearn gets the same mask:
 *
 * 1. When `opening > 0`, the mean volume is smoothed with a Gaussian of FWHM 1 *voxel*
 *    on each axis (nilearn passes an identity affine to `smooth_array`, so σ = 1/√(8 ln 2)
 *    voxels whatever the voxel size); NaN voxels stay NaN. Non-finite values then become 0.
 * 2. The values are sorted; between the fractions `lowerCutoff` (0.2) and `upperCutoff`
 *    (0.85) of that sorted list, the largest gap between consecutive values is found
 *    (the least dense point of the histogram, which separates background from brain),
 *    and the threshold is the middle of that gap. The first largest gap wins a tie.
 * 3. mask = mean ≥ threshold.
 * 4. Post-processing (`_post_process_mask`): erosion `opening` times; if anything is
 *    left and `connected`, keep the largest 6-connected component; then dilation
 *    `2·opening` times and erosion `opening` times (a closing that restores the size
 *    the first erosion took, while the first erosion cut thin bridges to the skull).
 *
 * nilearn only warns on an empty result; here it is a MASK_EMPTY error, because no later
 * stage can do anything with an empty mask.
 */
import { SyncactError } from '../errors.ts';
import {
  binaryDilation,
  binaryErosion,
  gaussianSmooth,
  largestConnectedComponent,
  type Dims3,
} from './morphology.ts';

export interface EpiMaskOptions {
  /** Lower fraction of the sorted values where the gap is searched. Default 0.2. */
  lowerCutoff?: number;
  /** Upper fraction of the sorted values where the gap is searched. Default 0.85. */
  upperCutoff?: number;
  /** Opening iterations (and smoothing of the mean when > 0); 0 turns both off. Default 2. */
  opening?: number;
  /** Keep only the largest connected component. Default true. */
  connected?: boolean;
  /** Leave zeros out of the sorted values (images padded with zeros). Default false. */
  excludeZeros?: boolean;
}

/** σ in voxels of a Gaussian with FWHM 1 voxel, as nilearn smooths the mean before masking. */
export const EPI_SMOOTH_SIGMA = 1 / Math.sqrt(8 * Math.log(2));

/**
 * The volume the threshold is computed on: smoothed when `opening > 0` (step 1 above),
 * with non-finite values set to 0.
 */
export function epiMaskInput(mean: ArrayLike<number>, dims: Dims3, opening: number): Float64Array {
  let values: Float64Array;
  if (opening > 0) {
    const finite = new Float64Array(mean.length);
    for (let p = 0; p < mean.length; p++) finite[p] = Number.isFinite(mean[p]) ? mean[p] : 0;
    values = gaussianSmooth(finite, dims, [EPI_SMOOTH_SIGMA, EPI_SMOOTH_SIGMA, EPI_SMOOTH_SIGMA]);
    // nilearn restores NaN where the mean was NaN; they become 0 just below.
    for (let p = 0; p < mean.length; p++) if (Number.isNaN(mean[p])) values[p] = 0;
  } else {
    values = Float64Array.from(mean as ArrayLike<number>);
  }
  for (let p = 0; p < values.length; p++) if (!Number.isFinite(values[p])) values[p] = 0;
  return values;
}

/** Step 2: the middle of the largest gap between sorted values within the cutoffs. */
export function epiThreshold(
  values: Float64Array,
  options: Pick<EpiMaskOptions, 'lowerCutoff' | 'upperCutoff' | 'excludeZeros'> = {},
): number {
  const lowerFraction = options.lowerCutoff ?? 0.2;
  const upperFraction = options.upperCutoff ?? 0.85;
  if (!(lowerFraction >= 0 && upperFraction <= 1 && lowerFraction < upperFraction)) {
    throw new SyncactError(
      'ENGINE_BAD_INPUT',
      `EPI mask cutoffs must satisfy 0 ≤ lower < upper ≤ 1 (got ${lowerFraction}, ${upperFraction})`,
    );
  }
  let sorted = Float64Array.from(values).sort();
  if (options.excludeZeros) sorted = sorted.filter((v) => v !== 0);
  const n = sorted.length;
  const lower = Math.floor(lowerFraction * n);
  const upper = Math.min(Math.floor(upperFraction * n), n - 1);
  if (upper <= lower) {
    throw new SyncactError(
      'MASK_EMPTY',
      `cannot compute an EPI mask from ${n} values: the cutoff range [${lowerFraction}, ${upperFraction}] holds no gap`,
    );
  }
  let best = -Infinity;
  let at = 0;
  for (let t = lower; t < upper; t++) {
    const gap = sorted[t + 1] - sorted[t];
    if (gap > best) {
      best = gap;
      at = t;
    }
  }
  return 0.5 * (sorted[at] + sorted[at + 1]);
}

/**
 * Brain mask (0/1 per voxel, x fastest) from a mean EPI volume; see the file comment for
 * the method. Throws MASK_EMPTY when nothing survives.
 */
export function computeEpiMask(
  mean: Float32Array | Float64Array,
  dims: Dims3,
  options: EpiMaskOptions = {},
): Uint8Array {
  const n = dims[0] * dims[1] * dims[2];
  if (mean.length !== n) {
    throw new SyncactError('ENGINE_BAD_INPUT', `mean volume has ${mean.length} values but dims ${dims.join('×')} need ${n}`);
  }
  const opening = Math.max(0, Math.floor(options.opening ?? 2));
  const connected = options.connected ?? true;
  const values = epiMaskInput(mean, dims, opening);
  const threshold = epiThreshold(values, options);
  let mask: Uint8Array = new Uint8Array(n);
  for (let p = 0; p < n; p++) mask[p] = values[p] >= threshold ? 1 : 0;

  if (opening) mask = binaryErosion(mask, dims, opening);
  if (connected && mask.some((v) => v)) mask = largestConnectedComponent(mask, dims);
  if (opening) mask = binaryErosion(binaryDilation(mask, dims, 2 * opening), dims, opening);

  if (!mask.some((v) => v)) {
    throw new SyncactError(
      'MASK_EMPTY',
      `the automatic EPI mask is empty (threshold ${threshold}); are these raw, non-detrended EPI volumes? ` +
        'Try a larger lower cutoff or opening 0',
    );
  }
  return mask;
}
