/**
 * How a map over the mask becomes the array sent on the `map` topic: scattered into the
 * grid (NaN outside the mask), either the whole volume or a set of slices along one axis.
 * The grid is x fastest (NIfTI order), so the whole volume is a row-major [nz, ny, nx]
 * array; slices keep the two remaining axes in the same order:
 *
 *   axis z, slices k_s: shape [n, ny, nx], element (s, j, i) = vol(i, j, k_s)
 *   axis y, slices j_s: shape [n, nz, nx], element (s, k, i) = vol(i, j_s, k)
 *   axis x, slices i_s: shape [n, nz, ny], element (s, k, j) = vol(i_s, j, k)
 */

export interface SliceSet {
  axis: 'x' | 'y' | 'z';
  indices: number[];
}

export function mapShape(dims: readonly [number, number, number], slices: SliceSet | null): number[] {
  const [nx, ny, nz] = dims;
  if (!slices) return [nz, ny, nx];
  const n = slices.indices.length;
  if (slices.axis === 'z') return [n, ny, nx];
  if (slices.axis === 'y') return [n, nz, nx];
  return [n, nz, ny];
}

/** The first slice index outside the grid along its axis, or undefined when all are inside. */
export function sliceOutOfRange(dims: readonly [number, number, number], slices: SliceSet): number | undefined {
  const size = dims[slices.axis === 'x' ? 0 : slices.axis === 'y' ? 1 : 2];
  return slices.indices.find((s) => s >= size);
}

/**
 * Scatters per-mask-voxel `values` (maskIndices order) into the layout above.
 * A slice listed twice appears twice.
 */
export function scatterMap(
  dims: readonly [number, number, number],
  maskIndices: Uint32Array,
  values: Float32Array,
  slices: SliceSet | null,
): Float32Array {
  const [nx, ny, nz] = dims;
  const shape = mapShape(dims, slices);
  const out = new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(NaN);
  const n = Math.min(maskIndices.length, values.length);
  if (!slices) {
    for (let m = 0; m < n; m++) out[maskIndices[m]] = values[m];
    return out;
  }
  const axisSize = slices.axis === 'x' ? nx : slices.axis === 'y' ? ny : nz;
  // positions[c] = the slots of coordinate c in the slice list (usually 0 or 1 of them)
  const positions: number[][] = Array.from({ length: axisSize }, () => []);
  slices.indices.forEach((c, s) => positions[c]?.push(s));
  const plane = shape[1] * shape[2];
  for (let m = 0; m < n; m++) {
    const g = maskIndices[m];
    const i = g % nx;
    const j = Math.floor(g / nx) % ny;
    const k = Math.floor(g / (nx * ny));
    let c: number;
    let within: number;
    if (slices.axis === 'z') {
      c = k;
      within = j * nx + i;
    } else if (slices.axis === 'y') {
      c = j;
      within = k * nx + i;
    } else {
      c = i;
      within = k * ny + j;
    }
    const slots = positions[c];
    if (!slots) continue;
    for (const s of slots) out[s * plane + within] = values[m];
  }
  return out;
}
