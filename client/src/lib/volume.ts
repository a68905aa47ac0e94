/**
 * Volume geometry for the brain panel's canvas fallback and its coordinate read-out:
 * voxel ↔ millimetres through the session's affine, and 2-D slices through a point in
 * display orientation (left of the subject on the left of the screen, anterior and
 * superior up), whatever the sign of the affine's diagonal.
 *
 * Volumes are x fastest (NIfTI order): value(i, j, k) = data[i + nx·(j + ny·k)].
 */

export type Dims = readonly [number, number, number];
export type Affine = number[][];
export type Axis = 'x' | 'y' | 'z';

export function voxelToMm(affine: Affine, ijk: readonly [number, number, number]): [number, number, number] {
  const [i, j, k] = ijk;
  return [0, 1, 2].map((r) => affine[r][0] * i + affine[r][1] * j + affine[r][2] * k + affine[r][3]) as [number, number, number];
}

export interface Slice {
  /** Screen width and height in voxels. */
  width: number;
  height: number;
  /** Row-major from the top-left of the screen. */
  values: Float32Array;
  /** Voxel of a screen cell (col, row). */
  voxelAt(col: number, row: number): [number, number, number];
}

/**
 * The slice through `at` perpendicular to `axis`: z (axial) shows x across and y up; y
 * (coronal) x across and z up; x (sagittal) y across and z up. Axes whose affine
 * diagonal is negative are flipped so that millimetres grow to the right and upwards.
 */
export function sliceThrough(data: ArrayLike<number>, dims: Dims, affine: Affine, axis: Axis, at: readonly [number, number, number]): Slice {
  const [nx, ny, nz] = dims;
  const flip = [affine[0][0] < 0, affine[1][1] < 0, affine[2][2] < 0];
  const [u, v] = axis === 'z' ? [0, 1] : axis === 'y' ? [0, 2] : [1, 2];
  const size = [nx, ny, nz];
  const width = size[u];
  const height = size[v];
  const fixedAxis = axis === 'x' ? 0 : axis === 'y' ? 1 : 2;
  const voxelAt = (col: number, row: number): [number, number, number] => {
    const p: [number, number, number] = [at[0], at[1], at[2]];
    // screen x grows with mm: voxel index grows unless the axis is flipped
    p[u] = flip[u] ? width - 1 - col : col;
    // screen y grows downwards, mm upwards
    p[v] = flip[v] ? row : height - 1 - row;
    p[fixedAxis] = at[fixedAxis];
    return p;
  };
  const values = new Float32Array(width * height);
  for (let row = 0; row < height; row++) {
    for (let col = 0; col < width; col++) {
      const [i, j, k] = voxelAt(col, row);
      values[row * width + col] = data[i + nx * (j + ny * k)];
    }
  }
  return { width, height, values, voxelAt };
}

/** Robust display range of a background: the 2nd and 98th percentiles of its non-zero finite values. */
export function displayRange(data: ArrayLike<number>): [number, number] {
  const xs: number[] = [];
  const step = Math.max(1, Math.floor(data.length / 20000));
  for (let i = 0; i < data.length; i += step) {
    const v = data[i];
    if (Number.isFinite(v) && v !== 0) xs.push(v);
  }
  if (xs.length === 0) return [0, 1];
  xs.sort((a, b) => a - b);
  const lo = xs[Math.floor(0.02 * (xs.length - 1))];
  const hi = xs[Math.ceil(0.98 * (xs.length - 1))];
  return hi > lo ? [lo, hi] : [lo, lo + 1];
}
