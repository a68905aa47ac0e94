/**
 * Binary morphology and smoothing on 3D volumes, with the semantics of the
 * `scipy.ndimage` calls that nilearn's mask computation is built from, so that masks
 * computed here match nilearn's voxel for voxel:
 *
 * - `binary_erosion` / `binary_dilation` with the default structuring element, the
 *   3D cross (6-connectivity), and `border_value=0`: voxels outside the volume count
 *   as background, so erosion eats the volume's faces;
 * - `label` with the default structure (6-connectivity) for connected components;
 * - `gaussian_filter1d` with `truncate=4` and `mode='reflect'` (the edge voxel is
 *   repeated: `d c b a | a b c d`).
 *
 * Volumes are flat arrays in NIfTI order (x fastest); masks are Uint8Array with 0/1.
 */
import { SyncactError } from '../errors.ts';

export type Dims3 = [number, number, number];

function checkLength(length: number, dims: Dims3, what: string): void {
  const n = dims[0] * dims[1] * dims[2];
  if (length !== n) {
    throw new SyncactError('ENGINE_BAD_INPUT', `${what} has ${length} values but dims ${dims.join('×')} need ${n}`);
  }
}

/**
 * One step of erosion (`keep = 1`: a voxel survives when it and its 6 neighbours are in)
 * or dilation (`keep = 0`: a voxel joins when it or one of its 6 neighbours is in).
 */
function step(src: Uint8Array, dst: Uint8Array, dims: Dims3, erode: boolean): void {
  const [nx, ny, nz] = dims;
  const sxy = nx * ny;
  let p = 0;
  for (let k = 0; k < nz; k++) {
    for (let j = 0; j < ny; j++) {
      for (let i = 0; i < nx; i++, p++) {
        const v = src[p];
        if (erode) {
          dst[p] =
            v &&
            i > 0 && src[p - 1] &&
            i < nx - 1 && src[p + 1] &&
            j > 0 && src[p - nx] &&
            j < ny - 1 && src[p + nx] &&
            k > 0 && src[p - sxy] &&
            k < nz - 1 && src[p + sxy]
              ? 1
              : 0;
        } else {
          dst[p] =
            v ||
            (i > 0 && src[p - 1]) ||
            (i < nx - 1 && src[p + 1]) ||
            (j > 0 && src[p - nx]) ||
            (j < ny - 1 && src[p + nx]) ||
            (k > 0 && src[p - sxy]) ||
            (k < nz - 1 && src[p + sxy])
              ? 1
              : 0;
        }
      }
    }
  }
}

function iterate(mask: Uint8Array, dims: Dims3, iterations: number, erode: boolean): Uint8Array {
  checkLength(mask.length, dims, 'mask');
  let a = Uint8Array.from(mask, (v) => (v ? 1 : 0));
  if (iterations <= 0) return a;
  let b = new Uint8Array(a.length);
  for (let t = 0; t < iterations; t++) {
    step(a, b, dims, erode);
    [a, b] = [b, a];
  }
  return a;
}

/** `scipy.ndimage.binary_erosion(mask, iterations=n)`; returns a new mask. */
export function binaryErosion(mask: Uint8Array, dims: Dims3, iterations = 1): Uint8Array {
  return iterate(mask, dims, iterations, true);
}

/** `scipy.ndimage.binary_dilation(mask, iterations=n)`; returns a new mask. */
export function binaryDilation(mask: Uint8Array, dims: Dims3, iterations = 1): Uint8Array {
  return iterate(mask, dims, iterations, false);
}

/**
 * Labels the 6-connected components of a mask: 0 for background, 1..count for the
 * components in order of their first voxel in x-fastest order. Returns the labels and
 * each component's size (`sizes[0]` unused).
 */
export function connectedComponents(mask: Uint8Array, dims: Dims3): { labels: Int32Array; sizes: number[] } {
  checkLength(mask.length, dims, 'mask');
  const [nx, ny, nz] = dims;
  const sxy = nx * ny;
  const labels = new Int32Array(mask.length);
  const sizes = [0];
  const queue = new Int32Array(mask.length);
  for (let seed = 0; seed < mask.length; seed++) {
    if (!mask[seed] || labels[seed]) continue;
    const label = sizes.length;
    let head = 0;
    let tail = 0;
    queue[tail++] = seed;
    labels[seed] = label;
    while (head < tail) {
      const p = queue[head++];
      const i = p % nx;
      const j = Math.floor(p / nx) % ny;
      const k = Math.floor(p / sxy);
      const visit = (q: number): void => {
        if (mask[q] && !labels[q]) {
          labels[q] = label;
          queue[tail++] = q;
        }
      };
      if (i > 0) visit(p - 1);
      if (i < nx - 1) visit(p + 1);
      if (j > 0) visit(p - nx);
      if (j < ny - 1) visit(p + nx);
      if (k > 0) visit(p - sxy);
      if (k < nz - 1) visit(p + sxy);
    }
    sizes.push(tail);
  }
  return { labels, sizes };
}

/**
 * nilearn's `largest_connected_component`: keeps the biggest 6-connected component.
 * Ties go to the component scipy's `label` would number first, i.e. the one whose first
 * voxel comes first when z varies fastest (numpy's C order over an [x, y, z] array),
 * so that a tie resolves as it does in nilearn. An empty mask comes back empty.
 */
export function largestConnectedComponent(mask: Uint8Array, dims: Dims3): Uint8Array {
  const { labels, sizes } = connectedComponents(mask, dims);
  const out = new Uint8Array(mask.length);
  if (sizes.length === 1) return out;
  const [nx, ny, nz] = dims;
  // Smallest C-order index (i·ny·nz + j·nz + k) of each component.
  const firstC = new Float64Array(sizes.length).fill(Infinity);
  let p = 0;
  for (let k = 0; k < nz; k++) {
    for (let j = 0; j < ny; j++) {
      for (let i = 0; i < nx; i++, p++) {
        const l = labels[p];
        if (l) {
          const c = (i * ny + j) * nz + k;
          if (c < firstC[l]) firstC[l] = c;
        }
      }
    }
  }
  let best = 1;
  for (let l = 2; l < sizes.length; l++) {
    if (sizes[l] > sizes[best] || (sizes[l] === sizes[best] && firstC[l] < firstC[best])) best = l;
  }
  for (let q = 0; q < out.length; q++) out[q] = labels[q] === best ? 1 : 0;
  return out;
}

/** scipy's `_gaussian_kernel1d(sigma, 0, radius)` with `radius = int(truncate·sigma + 0.5)`. */
export function gaussianKernel(sigma: number, truncate = 4): Float64Array {
  const radius = Math.floor(truncate * sigma + 0.5);
  const w = new Float64Array(2 * radius + 1);
  let sum = 0;
  for (let x = -radius; x <= radius; x++) {
    const v = Math.exp((-0.5 / (sigma * sigma)) * x * x);
    w[x + radius] = v;
    sum += v;
  }
  for (let t = 0; t < w.length; t++) w[t] /= sum;
  return w;
}

/** scipy's `'reflect'` boundary: index into `[0, n)` of a position outside it. */
function reflect(idx: number, n: number): number {
  const period = 2 * n;
  let m = idx % period;
  if (m < 0) m += period;
  return m >= n ? period - 1 - m : m;
}

/**
 * Gaussian smoothing along each axis with the given sigmas (in voxels; 0 skips the
 * axis), as successive `gaussian_filter1d` calls, in place on a float64 copy which is
 * returned.
 */
export function gaussianSmooth(values: ArrayLike<number>, dims: Dims3, sigmas: [number, number, number]): Float64Array {
  checkLength(values.length, dims, 'volume');
  const out = Float64Array.from(values as ArrayLike<number>);
  const strides = [1, dims[0], dims[0] * dims[1]];
  for (let axis = 0; axis < 3; axis++) {
    const sigma = sigmas[axis];
    if (!(sigma > 0)) continue;
    const w = gaussianKernel(sigma);
    const r = (w.length - 1) / 2;
    const n = dims[axis];
    const stride = strides[axis];
    const line = new Float64Array(n);
    // Every line along `axis` starts at a voxel whose coordinate on that axis is 0.
    for (let start = 0; start < out.length; start++) {
      if (Math.floor(start / stride) % n !== 0) continue;
      for (let t = 0; t < n; t++) line[t] = out[start + t * stride];
      for (let t = 0; t < n; t++) {
        let s = 0;
        for (let q = -r; q <= r; q++) {
          const u = t + q;
          s += w[q + r] * line[u >= 0 && u < n ? u : reflect(u, n)];
        }
        out[start + t * stride] = s;
      }
    }
  }
  return out;
}
