/**
 * The phantom brain: an ellipsoid mask on the grid and the planted networks, each a sum of
 * smooth Gaussian blobs at roughly the MNI coordinates where a neuroscientist would look
 * for it. Maps are pure functions of the grid, so every preset gets the same anatomy at its
 * own resolution.
 */
import type { Affine, Grid } from '../io/nifti/types.ts';
import { BRAIN_CENTRE } from './presets.ts';

export interface NetworkSpec {
  name: string;
  /** The movie feature that drives it, or null for a null network (its own slow signal). */
  driver: string | null;
  sign: 1 | -1;
  /** Blob centres in MNI mm and their widths (Gaussian σ, mm). */
  blobs: { center: [number, number, number]; sigma: number }[];
}

/**
 * The planted networks, in the order of truth.json, truth_maps.nii.gz and the atlas labels
 * (label = index + 1). Two features (luminance, grating_0) drive no network on purpose:
 * a method that couples every feature somewhere is caught, as it is by the two null networks.
 */
export const NETWORK_SPECS: readonly NetworkSpec[] = [
  { name: 'visual', driver: 'contrast', sign: 1, blobs: [{ center: [0, -92, 4], sigma: 12 }] },
  {
    name: 'motion',
    driver: 'motion',
    sign: 1,
    blobs: [
      { center: [-46, -70, 2], sigma: 9 },
      { center: [46, -70, 2], sigma: 9 },
    ],
  },
  {
    name: 'colour',
    driver: 'colour_rg',
    sign: 1,
    blobs: [
      { center: [-28, -64, -16], sigma: 8 },
      { center: [28, -64, -16], sigma: 8 },
    ],
  },
  {
    name: 'dorsal_attention',
    driver: 'grating_90',
    sign: 1,
    blobs: [
      { center: [-26, -58, 54], sigma: 10 },
      { center: [26, -58, 54], sigma: 10 },
    ],
  },
  {
    // Anticorrelated with the visual drive, as the default mode network is with sensory load.
    name: 'default_mode',
    driver: 'contrast',
    sign: -1,
    blobs: [
      { center: [0, -56, 30], sigma: 11 },
      { center: [0, 52, 0], sigma: 11 },
    ],
  },
  { name: 'null_frontal', driver: null, sign: 1, blobs: [{ center: [-44, 30, 20], sigma: 10 }] },
  { name: 'null_temporal', driver: null, sign: 1, blobs: [{ center: [54, -20, -8], sigma: 10 }] },
];

/** Semi-axes of the brain ellipsoid (mm), around BRAIN_CENTRE. */
export const BRAIN_SEMI_AXES: [number, number, number] = [70, 88, 64];

/** Map values below this fraction of the peak are set to 0, so each map has a finite support. */
export const MAP_CUTOFF = 0.05;

/** World (mm) coordinates of voxel (i, j, k). */
export function voxelToWorld(affine: Affine, i: number, j: number, k: number): [number, number, number] {
  return [0, 1, 2].map((r) => affine[r][0] * i + affine[r][1] * j + affine[r][2] * k + affine[r][3]) as [
    number,
    number,
    number,
  ];
}

/** Calls fn(index, x, y, z) for every voxel in x-fastest order with its world coordinates. */
function forEachVoxel(grid: Grid, fn: (index: number, x: number, y: number, z: number) => void): void {
  const [nx, ny, nz] = grid.dims;
  let index = 0;
  for (let k = 0; k < nz; k++) {
    for (let j = 0; j < ny; j++) {
      for (let i = 0; i < nx; i++) {
        const [x, y, z] = voxelToWorld(grid.affine, i, j, k);
        fn(index++, x, y, z);
      }
    }
  }
}

/** Squared normalised ellipsoid radius of a world point (< 1 inside the brain). */
export function brainRadius2(x: number, y: number, z: number): number {
  const [cx, cy, cz] = BRAIN_CENTRE;
  const [ax, ay, az] = BRAIN_SEMI_AXES;
  return ((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2 + ((z - cz) / az) ** 2;
}

/** 1 inside the brain ellipsoid, 0 outside. */
export function ellipsoidMask(grid: Grid): Uint8Array {
  const n = grid.dims[0] * grid.dims[1] * grid.dims[2];
  const mask = new Uint8Array(n);
  forEachVoxel(grid, (index, x, y, z) => {
    mask[index] = brainRadius2(x, y, z) < 1 ? 1 : 0;
  });
  return mask;
}

/** Mean voxel edge length of the grid (mm), from the affine's column norms. */
function voxelSize(affine: Affine): number {
  let s = 0;
  for (let c = 0; c < 3; c++) s += Math.hypot(affine[0][c], affine[1][c], affine[2][c]);
  return s / 3;
}

/**
 * A network's map over the grid: the sum of its blobs, scaled so its peak inside the mask
 * is 1, cut to 0 below MAP_CUTOFF and outside the mask. A blob is never narrower than 0.75
 * voxel, so that on coarse grids (tiny: 12 mm) it still covers a few voxels.
 */
export function networkMap(grid: Grid, mask: Uint8Array, spec: NetworkSpec): Float32Array {
  const minSigma = 0.75 * voxelSize(grid.affine);
  const values = new Float64Array(mask.length);
  let peak = 0;
  forEachVoxel(grid, (index, x, y, z) => {
    if (!mask[index]) return;
    let v = 0;
    for (const blob of spec.blobs) {
      const s = Math.max(blob.sigma, minSigma);
      const d2 = (x - blob.center[0]) ** 2 + (y - blob.center[1]) ** 2 + (z - blob.center[2]) ** 2;
      v += Math.exp(-d2 / (2 * s * s));
    }
    values[index] = v;
    if (v > peak) peak = v;
  });
  const map = new Float32Array(mask.length);
  if (peak === 0) return map;
  for (let i = 0; i < map.length; i++) {
    const v = values[i] / peak;
    map[i] = v >= MAP_CUTOFF ? v : 0;
  }
  return map;
}
