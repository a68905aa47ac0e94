/**
 * Resampling between voxel grids through their affines: how masks and atlases drawn on
 * one grid (a 2 mm MNI atlas) are brought onto the grid of the data (a 4 mm EPI run).
 *
 * For every voxel (i, j, k) of the destination, its center in world space is
 * `dstAffine · [i, j, k, 1]`; the same point in source voxel coordinates is
 * `inv(srcAffine) · world`. The source is then sampled there, as nilearn's
 * `resample_img` does through `scipy.ndimage.affine_transform` with `mode='constant'`:
 *
 * - nearest (`order=0`) for labels and masks: the source voxel `floor(x + 0.5)` on each
 *   axis (a half-way point goes up, as scipy does), so label values are never blended;
 * - trilinear (`order=1`) for continuous maps, from the 8 surrounding voxel centers.
 *
 * A point outside the source's voxel centers, `[0, n - 1]` on any axis, takes the fill
 * value (0 by default), again as scipy's `'constant'` mode. One deliberate difference:
 * points within 1e-6 voxel of the edge count as inside, so a grid resampled onto itself,
 * or onto a grid that shares its edge voxels, is not clipped by rounding error in the
 * matrix product (scipy drops a point at -1e-15).
 *
 * Everything here is pure: typed arrays in, typed arrays out, x fastest (NIfTI order).
 */
import { SyncactError } from '../errors.ts';
import type { Affine, Grid } from './nifti/types.ts';

/** How far outside `[0, n-1]` (in source voxels) a point still counts as inside. */
const EDGE_TOLERANCE = 1e-6;

/** Default tolerance for `sameGrid`: affine entries (mm) may differ by this much. */
export const GRID_TOLERANCE = 1e-4;

export interface ResampleOptions {
  /** Value for destination voxels that fall outside the source. Default 0. */
  fill?: number;
  /** Where to write the result (length = destination voxel count); a new Float64Array otherwise. */
  out?: Float64Array | Float32Array;
}

/** Number of voxels in one volume of the grid. */
export function gridVoxelCount(grid: Grid): number {
  return grid.dims[0] * grid.dims[1] * grid.dims[2];
}

/**
 * True when both grids have the same dims and every affine entry agrees within `tol` mm,
 * i.e. a voxel index means the same place in both images.
 */
export function sameGrid(a: Grid, b: Grid, tol: number = GRID_TOLERANCE): boolean {
  for (let d = 0; d < 3; d++) if (a.dims[d] !== b.dims[d]) return false;
  for (let r = 0; r < 4; r++) {
    for (let c = 0; c < 4; c++) {
      if (!(Math.abs(a.affine[r][c] - b.affine[r][c]) <= tol)) return false;
    }
  }
  return true;
}

/** A grid for messages: `64×64×30 [[3.75,0,0,-118.125],[0,3.75,0,-118.125],[0,0,4,-58]]`. */
export function describeGrid(grid: Grid): string {
  const rows = grid.affine.slice(0, 3).map((row) => `[${row.map((v) => +v.toFixed(4)).join(',')}]`);
  return `${grid.dims.join('×')} [${rows.join(',')}]`;
}

/**
 * Inverse of a voxel-to-world affine `[A t; 0 0 0 1]`: `[A⁻¹ -A⁻¹t; 0 0 0 1]`.
 * Throws ENGINE_BAD_INPUT for a singular (or non-finite) linear part; callers that know
 * the file rethrow with their own code.
 */
export function invertAffine(affine: Affine): Affine {
  const [a, b, c] = affine[0];
  const [d, e, f] = affine[1];
  const [g, h, i] = affine[2];
  const co00 = e * i - f * h;
  const co01 = -(d * i - f * g);
  const co02 = d * h - e * g;
  const det = a * co00 + b * co01 + c * co02;
  if (!Number.isFinite(det) || Math.abs(det) < 1e-12) {
    throw new SyncactError('ENGINE_BAD_INPUT', `affine is singular (determinant ${det})`);
  }
  const inv = [
    [co00 / det, -(b * i - c * h) / det, (b * f - c * e) / det],
    [co01 / det, (a * i - c * g) / det, -(a * f - c * d) / det],
    [co02 / det, -(a * h - b * g) / det, (a * e - b * d) / det],
  ];
  const t = [affine[0][3], affine[1][3], affine[2][3]];
  const out: Affine = inv.map((row) => [...row, -(row[0] * t[0] + row[1] * t[1] + row[2] * t[2])]);
  out.push([0, 0, 0, 1]);
  return out;
}

/** `a · b` for two 4×4 row-major matrices. */
export function multiplyAffines(a: Affine, b: Affine): Affine {
  const out: Affine = [];
  for (let r = 0; r < 4; r++) {
    const row: number[] = [];
    for (let c = 0; c < 4; c++) {
      let s = 0;
      for (let k = 0; k < 4; k++) s += a[r][k] * b[k][c];
      row.push(s);
    }
    out.push(row);
  }
  return out;
}

/**
 * The matrix taking destination voxel indices to source voxel coordinates:
 * `inv(src.affine) · dst.affine`.
 */
export function voxelToVoxel(src: Grid, dst: Grid): Affine {
  return multiplyAffines(invertAffine(src.affine), dst.affine);
}

type Sampler = (x: number, y: number, z: number) => number;

/**
 * Walks the destination grid, x fastest, mapping each voxel to source coordinates by
 * adding matrix columns (no per-voxel matrix product), and stores `sample(x, y, z)`.
 */
function resampleWith(
  srcLength: number,
  srcGrid: Grid,
  dstGrid: Grid,
  options: ResampleOptions,
  makeSampler: (fill: number) => Sampler,
): Float64Array | Float32Array {
  const expected = gridVoxelCount(srcGrid);
  if (srcLength !== expected) {
    throw new SyncactError(
      'ENGINE_BAD_INPUT',
      `source has ${srcLength} values but its grid ${srcGrid.dims.join('×')} has ${expected} voxels`,
    );
  }
  const n = gridVoxelCount(dstGrid);
  const out = options.out ?? new Float64Array(n);
  if (out.length !== n) {
    throw new SyncactError('ENGINE_BAD_INPUT', `output has ${out.length} values but the destination grid has ${n} voxels`);
  }
  const sample = makeSampler(options.fill ?? 0);
  const m = voxelToVoxel(srcGrid, dstGrid);
  const [nx, ny, nz] = dstGrid.dims;
  let p = 0;
  for (let k = 0; k < nz; k++) {
    for (let j = 0; j < ny; j++) {
      // Source coordinates of (0, j, k); moving along i adds multiples of the first column.
      const x = m[0][1] * j + m[0][2] * k + m[0][3];
      const y = m[1][1] * j + m[1][2] * k + m[1][3];
      const z = m[2][1] * j + m[2][2] * k + m[2][3];
      for (let i = 0; i < nx; i++) {
        // Recomputed from i rather than accumulated, so long rows do not drift.
        out[p++] = sample(x + m[0][0] * i, y + m[1][0] * i, z + m[2][0] * i);
      }
    }
  }
  return out;
}

/** Index along one axis for nearest sampling, or -1 outside `[0, n-1]` (with tolerance). */
function nearestIndex(x: number, n: number): number {
  if (!(x >= -EDGE_TOLERANCE && x <= n - 1 + EDGE_TOLERANCE)) return -1;
  const i = Math.floor(x + 0.5);
  return i < 0 ? 0 : i > n - 1 ? n - 1 : i;
}

/**
 * Nearest-neighbour resampling of one source volume onto `dstGrid` (labels, masks).
 * Values are copied, never blended; outside the source → `fill` (default 0).
 */
export function resampleNearest(
  src: ArrayLike<number>,
  srcGrid: Grid,
  dstGrid: Grid,
  options: ResampleOptions = {},
): Float64Array | Float32Array {
  const [sx, sy, sz] = srcGrid.dims;
  return resampleWith(src.length, srcGrid, dstGrid, options, (fill) => (x, y, z) => {
    const i = nearestIndex(x, sx);
    if (i < 0) return fill;
    const j = nearestIndex(y, sy);
    if (j < 0) return fill;
    const k = nearestIndex(z, sz);
    if (k < 0) return fill;
    return src[i + sx * (j + sy * k)];
  });
}

/**
 * Lower corner index and fraction along one axis for trilinear sampling; `i1` is the
 * upper neighbour (equal to `i0` on a one-voxel axis). Returns false outside `[0, n-1]`.
 */
function linearAxis(x: number, n: number, at: { i0: number; i1: number; f: number }): boolean {
  if (!(x >= -EDGE_TOLERANCE && x <= n - 1 + EDGE_TOLERANCE)) return false;
  if (n === 1) {
    at.i0 = at.i1 = 0;
    at.f = 0;
    return true;
  }
  const c = x < 0 ? 0 : x > n - 1 ? n - 1 : x;
  const i0 = Math.min(Math.floor(c), n - 2);
  at.i0 = i0;
  at.i1 = i0 + 1;
  at.f = c - i0;
  return true;
}

/**
 * Trilinear resampling of one source volume onto `dstGrid` (probabilistic or weighted
 * maps, mean images). Outside the source's voxel centers → `fill` (default 0).
 */
export function resampleTrilinear(
  src: ArrayLike<number>,
  srcGrid: Grid,
  dstGrid: Grid,
  options: ResampleOptions = {},
): Float64Array | Float32Array {
  const [sx, sy, sz] = srcGrid.dims;
  const sxy = sx * sy;
  const ax = { i0: 0, i1: 0, f: 0 };
  const ay = { i0: 0, i1: 0, f: 0 };
  const az = { i0: 0, i1: 0, f: 0 };
  return resampleWith(src.length, srcGrid, dstGrid, options, (fill) => (x, y, z) => {
    if (!linearAxis(x, sx, ax) || !linearAxis(y, sy, ay) || !linearAxis(z, sz, az)) return fill;
    const fx = ax.f;
    const fy = ay.f;
    const fz = az.f;
    const b00 = sx * ay.i0 + sxy * az.i0;
    const b10 = sx * ay.i1 + sxy * az.i0;
    const b01 = sx * ay.i0 + sxy * az.i1;
    const b11 = sx * ay.i1 + sxy * az.i1;
    const c00 = src[b00 + ax.i0] * (1 - fx) + src[b00 + ax.i1] * fx;
    const c10 = src[b10 + ax.i0] * (1 - fx) + src[b10 + ax.i1] * fx;
    const c01 = src[b01 + ax.i0] * (1 - fx) + src[b01 + ax.i1] * fx;
    const c11 = src[b11 + ax.i0] * (1 - fx) + src[b11 + ax.i1] * fx;
    const c0 = c00 * (1 - fy) + c10 * fy;
    const c1 = c01 * (1 - fy) + c11 * fy;
    return c0 * (1 - fz) + c1 * fz;
  });
}
