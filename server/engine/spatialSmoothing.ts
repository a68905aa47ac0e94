/**
 * Spatial smoothing of one 3D volume with a separable Gaussian given as a FWHM in mm, with
 * the semantics of nilearn's `smoothing_fwhm` (maskers, FirstLevelModel, `smooth_img`,
 * i.e. `image._smooth_array`), so that a user who smooths with nilearn gets the same
 * values here:
 *
 * 1. Non-finite values (NaN, ±inf: SPM writes NaN outside the brain) become 0.
 * 2. σ per voxel axis i = FWHM / (√(8 ln 2) · voxel size i), the voxel size being the norm
 *    of the affine's column i (nibabel's `voxel_sizes`: right for flipped and permuted
 *    axes). An axis with σ = 0 is not smoothed; FWHM 0 smooths nothing (nilearn warns and
 *    treats it as None, after step 1).
 * 3. One `scipy.ndimage.gaussian_filter1d` per axis, x then y then z: kernel
 *    exp(−x²/2σ²) normalised to sum 1 over |x| ≤ ⌊4σ + 0.5⌋ (truncate 4), mode 'reflect'
 *    (d c b a | a b c d e | e d c b). Sums are float64 in scipy's order for a symmetric
 *    kernel (w₀·x₀, then + (x₋ⱼ + xⱼ)·wⱼ for j = r down to 1), and each axis's result is
 *    stored as float32, as scipy does when nilearn filters a float32 array in place.
 *
 * The whole grid is smoothed, masking comes after (what nilearn's maskers do), so voxels
 * just outside the mask leak into its edge, as they do in nilearn.
 *
 * Each axis is one pass over the volume in memory order: along x a padded line is
 * convolved; along y and z whole rows and planes are combined at once, so every inner
 * loop reads contiguous memory (a line-by-line pass along z would stride 15,000 floats at
 * hcp7t size).
 */
import { SyncactError } from '../errors.ts';

/** FWHM in mm: one value for every axis, or one per voxel axis (0: that axis is not smoothed). */
export type Fwhm = number | readonly [number, number, number];

/** The grid a volume lives on: dims [nx, ny, nz] and the 4×4 voxel-to-mm affine (rows). */
export interface SmoothingGrid {
  dims: readonly [number, number, number];
  affine: ArrayLike<ArrayLike<number>>;
}

/** FWHM / σ of a Gaussian: √(8 ln 2) ≈ 2.3548. */
export const FWHM_OVER_SIGMA = Math.sqrt(8 * Math.log(2));

/** Size in mm of a voxel along each voxel axis: the norms of the affine's first three columns. */
export function voxelSizes(affine: ArrayLike<ArrayLike<number>>): [number, number, number] {
  const size = (c: number) => Math.hypot(affine[0][c], affine[1][c], affine[2][c]);
  return [size(0), size(1), size(2)];
}

/** σ in voxels along each axis for a FWHM in mm on this affine. */
export function smoothingSigmas(fwhm: Fwhm, affine: ArrayLike<ArrayLike<number>>): [number, number, number] {
  const f = typeof fwhm === 'number' ? [fwhm, fwhm, fwhm] : fwhm;
  if (f.length !== 3 || f.some((v) => !(Number.isFinite(v) && v >= 0))) {
    throw new SyncactError('ENGINE_BAD_INPUT', `smoothing FWHM must be a finite number of mm ≥ 0 (or three of them), got ${JSON.stringify(fwhm)}`);
  }
  const sizes = voxelSizes(affine);
  if (sizes.some((s) => !(s > 0) || !Number.isFinite(s))) {
    throw new SyncactError('ENGINE_BAD_INPUT', `smoothing needs a positive voxel size on every axis; the affine gives ${sizes.join(', ')} mm`);
  }
  return [0, 1, 2].map((i) => f[i] / (FWHM_OVER_SIGMA * sizes[i])) as [number, number, number];
}

/**
 * Half of scipy's `_gaussian_kernel1d(σ, 0, radius)`, radius = ⌊truncate·σ + 0.5⌋:
 * w[j] for j = 0..radius (the kernel is symmetric).
 */
function halfGaussianKernel(sigma: number, truncate = 4): Float64Array {
  const radius = Math.floor(truncate * sigma + 0.5);
  const full = new Float64Array(2 * radius + 1);
  let sum = 0;
  for (let x = -radius; x <= radius; x++) {
    const v = Math.exp((-0.5 / (sigma * sigma)) * (x * x));
    full[x + radius] = v;
    sum += v;
  }
  const half = new Float64Array(radius + 1);
  for (let j = 0; j <= radius; j++) half[j] = full[radius + j] / sum;
  return half;
}

/** scipy's 'reflect' index of every position −r..n−1+r of an axis of length n, offset by r. */
function reflectTable(n: number, r: number): Int32Array {
  const period = 2 * n;
  const out = new Int32Array(n + 2 * r);
  for (let t = -r; t < n + r; t++) {
    let m = t % period;
    if (m < 0) m += period;
    out[t + r] = m >= n ? period - 1 - m : m;
  }
  return out;
}

export interface SpatialSmootherOptions {
  grid: SmoothingGrid;
  /** FWHM in mm (see Fwhm). */
  fwhm: Fwhm;
  /**
   * The voxels the caller will read (a mask on the grid, non-zero = read). When given, only
   * the mask's bounding box is computed (exactly: each pass still reads the kernel's reach
   * beyond it) and every voxel outside that box is 0. At hcp7t size the box is 44% of the
   * grid. Absent: the whole grid.
   */
  mask?: ArrayLike<number>;
}

/** Inclusive voxel ranges per axis: [lo, hi]. */
type Box = [[number, number], [number, number], [number, number]];

/**
 * Smooths volumes of one grid at one FWHM. The constructor computes the kernels, the boxes
 * each pass must fill and the work buffers once; `smooth` is then called per volume (per TR).
 */
export class SpatialSmoother {
  readonly dims: readonly [number, number, number];
  /** σ in voxels per axis. */
  readonly sigmas: readonly [number, number, number];
  /** The box `smooth` computes (the mask's bounding box, or the whole grid). */
  readonly box: Readonly<Box>;
  private readonly kernels: (Float64Array | null)[];
  private readonly tables: (Int32Array | null)[];
  /** The smoothed axes, in nilearn's order, each with the box its output must cover. */
  private readonly passes: { axis: number; output: Box }[];
  /** The box of the input the first pass reads. */
  private readonly input: Box;
  private readonly work: [Float32Array, Float32Array];
  private readonly acc: Float64Array;
  /** A reflect-padded x line (float32 values, as read). */
  private readonly line: Float32Array;
  /** Offsets of the neighbours at −j and +j of a row's first voxel, j = 1..radius. */
  private readonly lo: Int32Array;
  private readonly hi: Int32Array;

  constructor(options: SpatialSmootherOptions) {
    const dims = options.grid.dims;
    if (dims.length !== 3 || dims.some((d) => !Number.isInteger(d) || d < 1)) {
      throw new SyncactError('ENGINE_BAD_INPUT', `smoothing needs three positive integer dims, got ${JSON.stringify(dims)}`);
    }
    this.dims = [dims[0], dims[1], dims[2]];
    this.sigmas = smoothingSigmas(options.fwhm, options.grid.affine);
    this.kernels = this.sigmas.map((s) => (s > 0 ? halfGaussianKernel(s) : null));
    this.tables = this.kernels.map((w, axis) => (w ? reflectTable(dims[axis], w.length - 1) : null));
    const n = dims[0] * dims[1] * dims[2];
    if (options.mask !== undefined && options.mask.length !== n) {
      throw new SyncactError('ENGINE_BAD_INPUT', `smoothing mask has ${options.mask.length} values but the ${dims.join('×')} grid has ${n}`);
    }
    this.box = options.mask ? boundingBox(options.mask, this.dims) : [[0, dims[0] - 1], [0, dims[1] - 1], [0, dims[2] - 1]];
    // Backwards from the box the caller reads: each pass's input is its output widened by
    // the kernel's radius along its axis (clipped: 'reflect' reads only inside that range).
    const axes = [0, 1, 2].filter((a) => this.kernels[a] !== null);
    this.passes = [];
    let need: Box = this.box.map(([lo, hi]) => [lo, hi]) as Box;
    for (let p = axes.length - 1; p >= 0; p--) {
      const axis = axes[p];
      this.passes.unshift({ axis, output: need });
      const r = (this.kernels[axis] as Float64Array).length - 1;
      need = need.map(([lo, hi], a) => (a === axis ? [Math.max(0, lo - r), Math.min(dims[a] - 1, hi + r)] : [lo, hi])) as Box;
    }
    this.input = need;
    // Passes alternate between two buffers; the last one writes into the caller's output.
    this.work = [new Float32Array(axes.length > 0 ? n : 0), new Float32Array(axes.length > 1 ? n : 0)];
    this.acc = new Float64Array(dims[0]);
    const r0 = this.kernels[0] ? this.kernels[0].length - 1 : 0;
    this.line = new Float32Array(dims[0] + 2 * r0);
    const radius = Math.max(0, ...this.kernels.map((w) => (w ? w.length - 1 : 0)));
    this.lo = new Int32Array(radius + 1);
    this.hi = new Int32Array(radius + 1);
  }

  /** Voxels per volume. */
  get length(): number {
    return this.dims[0] * this.dims[1] * this.dims[2];
  }

  /**
   * The smoothed volume (NIfTI order, x fastest; 0 outside `box`). `volume` is not
   * modified; `out` (default: a new array) may not be `volume` itself.
   */
  smooth(volume: ArrayLike<number>, out: Float32Array = new Float32Array(this.length)): Float32Array {
    const n = this.length;
    if (volume.length !== n || out.length !== n) {
      throw new SyncactError('ENGINE_BAD_INPUT', `smoothing a ${this.dims.join('×')} grid needs ${n} values, got ${volume.length} in and ${out.length} out`);
    }
    if ((out as unknown) === volume) throw new SyncactError('ENGINE_BAD_INPUT', 'smoothing cannot write into its input volume');
    const whole = this.box.every(([lo, hi], a) => lo === 0 && hi === this.dims[a] - 1);
    if (!whole) out.fill(0);
    let src = this.passes.length === 0 ? out : this.work[0];
    this.copyFinite(volume, src, this.passes.length === 0 ? this.box : this.input);
    this.passes.forEach(({ axis, output }, p) => {
      const dst = p === this.passes.length - 1 ? out : this.work[(p + 1) % 2];
      if (axis === 0) this.passX(src, dst, output);
      else this.passRows(axis as 1 | 2, src, dst, output);
      src = dst;
    });
    return out;
  }

  /** Step 1 over a box: non-finite values become 0. */
  private copyFinite(volume: ArrayLike<number>, dst: Float32Array, [[x0, x1], [y0, y1], [z0, z1]]: Readonly<Box>): void {
    const [nx, ny] = this.dims;
    for (let z = z0; z <= z1; z++) {
      for (let y = y0; y <= y1; y++) {
        const row = (z * ny + y) * nx;
        for (let i = row + x0; i <= row + x1; i++) {
          const v = volume[i];
          // v − v is 0 for every finite v and NaN for NaN and ±inf (cheaper than isFinite).
          dst[i] = v - v === 0 ? v : 0;
        }
      }
    }
  }

  /**
   * Along x: each line of the box, reflect-padded into a buffer, is convolved as rows are
   * (convolveRow), the neighbours at ±j being the line shifted by ±j.
   */
  private passX(src: Float32Array, dst: Float32Array, [[x0, x1], [y0, y1], [z0, z1]]: Box): void {
    const [nx, ny] = this.dims;
    const w = this.kernels[0] as Float64Array;
    const table = this.tables[0] as Int32Array;
    const r = w.length - 1;
    const { line, lo, hi } = this;
    // line[t + r] holds position t (reflected); the output's first voxel x0 is line[x0 + r].
    for (let j = 1; j <= r; j++) {
      lo[j] = x0 + r - j;
      hi[j] = x0 + r + j;
    }
    for (let z = z0; z <= z1; z++) {
      for (let y = y0; y <= y1; y++) {
        const row = (z * ny + y) * nx;
        for (let t = x0; t <= x1 + 2 * r; t++) line[t] = src[row + table[t]];
        convolveRow(line, x0 + r, lo, hi, w, this.acc, x1 - x0 + 1);
        for (let i = 0, at = row + x0; i <= x1 - x0; i++) dst[at + i] = this.acc[i];
      }
    }
  }

  /**
   * Along y (axis 1) or z (axis 2): each output row of the box (its x range, contiguous) is
   * the weighted sum of the reflected neighbouring rows along the axis, so every inner loop
   * reads contiguous memory (a voxel-by-voxel pass along z would stride nx·ny floats).
   */
  private passRows(axis: 1 | 2, src: Float32Array, dst: Float32Array, [[x0, x1], [y0, y1], [z0, z1]]: Box): void {
    const [nx, ny] = this.dims;
    const w = this.kernels[axis] as Float64Array;
    const table = this.tables[axis] as Int32Array;
    const r = w.length - 1;
    const { acc, lo, hi } = this;
    const width = x1 - x0 + 1;
    const stride = axis === 1 ? nx : nx * ny;
    for (let z = z0; z <= z1; z++) {
      for (let y = y0; y <= y1; y++) {
        const at = (z * ny + y) * nx + x0;
        // This row's coordinate along the axis; a neighbour at c ± j sits (table − c)·stride away.
        const c = axis === 1 ? y : z;
        for (let j = 1; j <= r; j++) {
          lo[j] = at + (table[c + r - j] - c) * stride;
          hi[j] = at + (table[c + r + j] - c) * stride;
        }
        convolveRow(src, at, lo, hi, w, acc, width);
        for (let i = 0; i < width; i++) dst[at + i] = acc[i];
      }
    }
  }
}

/**
 * acc[i] = w₀·src[at + i], then + (src[lo[j] + i] + src[hi[j] + i])·w[j] for j = r down to
 * 1: scipy's sum for a symmetric kernel, voxel by voxel in the same order. Three j per
 * sweep over the row (same sums, a third of the loads and stores of acc: 1.5× faster).
 */
function convolveRow(src: Float32Array, at: number, lo: Int32Array, hi: Int32Array, w: Float64Array, acc: Float64Array, width: number): void {
  const w0 = w[0];
  for (let i = 0; i < width; i++) acc[i] = w0 * src[at + i];
  let j = w.length - 1;
  for (; j >= 3; j -= 3) {
    const l1 = lo[j], h1 = hi[j], w1 = w[j];
    const l2 = lo[j - 1], h2 = hi[j - 1], w2 = w[j - 1];
    const l3 = lo[j - 2], h3 = hi[j - 2], w3 = w[j - 2];
    for (let i = 0; i < width; i++) {
      acc[i] = acc[i] + (src[l1 + i] + src[h1 + i]) * w1 + (src[l2 + i] + src[h2 + i]) * w2 + (src[l3 + i] + src[h3 + i]) * w3;
    }
  }
  for (; j >= 1; j--) {
    const l = lo[j], h = hi[j], wj = w[j];
    for (let i = 0; i < width; i++) acc[i] += (src[l + i] + src[h + i]) * wj;
  }
}

/** The smallest box holding every non-zero voxel; an empty mask gives an empty box. */
function boundingBox(mask: ArrayLike<number>, [nx, ny, nz]: readonly [number, number, number]): Box {
  const box: Box = [
    [nx, -1],
    [ny, -1],
    [nz, -1],
  ];
  for (let z = 0, i = 0; z < nz; z++) {
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++, i++) {
        if (!mask[i]) continue;
        if (x < box[0][0]) box[0][0] = x;
        if (x > box[0][1]) box[0][1] = x;
        if (y < box[1][0]) box[1][0] = y;
        if (y > box[1][1]) box[1][1] = y;
        if (z < box[2][0]) box[2][0] = z;
        if (z > box[2][1]) box[2][1] = z;
      }
    }
  }
  return box;
}

/** One volume smoothed (see SpatialSmoother); FWHM 0 still sets non-finite values to 0, as nilearn does. */
export function smoothVolume(volume: ArrayLike<number>, grid: SmoothingGrid, fwhm: Fwhm): Float32Array {
  return new SpatialSmoother({ grid, fwhm }).smooth(volume);
}
