/**
 * Brain masks: which voxels of the data grid the engine looks at.
 *
 * A mask file is a 3D image (or a 4D image with one volume); a voxel is in the mask when
 * its value is finite and non-zero (nilearn's reading, with NaN as background as its
 * `ensure_finite` does). Probabilistic masks are therefore taken at > 0; threshold them
 * beforehand for anything stricter.
 *
 * The mask must be on the data grid: same dims, affines equal within 1e-4 mm. Otherwise
 * it is MASK_GRID_MISMATCH, unless the caller asks for `resample: true`, which resamples
 * it onto the data grid with nearest neighbour (never silently: a mask on the wrong grid
 * is usually the wrong mask).
 *
 * The pure helpers below (`maskIndices`, `applyMask`, `unmask`, `dice`) turn a volume
 * into the masked voxel vector that the engine works on, and back.
 */
import { SyncactError } from '../errors.ts';
import { openNifti } from './nifti/read.ts';
import type { Grid } from './nifti/types.ts';
import { describeGrid, resampleNearest, sameGrid } from './resample.ts';

export interface LoadMaskOptions {
  /** Resample a mask on another grid onto the data grid (nearest neighbour). Default false. */
  resample?: boolean;
  /** The data file, named in MASK_GRID_MISMATCH messages. */
  dataPath?: string;
}

/** 1 where a value is finite and non-zero, else 0. */
export function maskFromValues(values: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(values.length);
  for (let p = 0; p < values.length; p++) {
    const v = values[p];
    out[p] = v !== 0 && Number.isFinite(v) ? 1 : 0;
  }
  return out;
}

/** Number of voxels in the mask. */
export function maskCount(mask: Uint8Array): number {
  let n = 0;
  for (let p = 0; p < mask.length; p++) if (mask[p]) n++;
  return n;
}

/** Positions (x-fastest voxel indices) of the in-mask voxels, ascending: the masked voxel order. */
export function maskIndices(mask: Uint8Array): Uint32Array {
  const out = new Uint32Array(maskCount(mask));
  let q = 0;
  for (let p = 0; p < mask.length; p++) if (mask[p]) out[q++] = p;
  return out;
}

/** The masked voxel vector of one volume: `out[q] = volume[indices[q]]`. */
export function applyMask<T extends Float32Array | Float64Array>(
  volume: ArrayLike<number>,
  indices: Uint32Array,
  out?: T,
): T | Float32Array {
  const target = out ?? new Float32Array(indices.length);
  if (target.length !== indices.length) {
    throw new SyncactError('ENGINE_BAD_INPUT', `output has ${target.length} values for ${indices.length} masked voxels`);
  }
  for (let q = 0; q < indices.length; q++) target[q] = volume[indices[q]];
  return target;
}

/** Back to a full volume of `voxels` values: masked values in place, `fill` (0) elsewhere. */
export function unmask(values: ArrayLike<number>, indices: Uint32Array, voxels: number, fill = 0): Float32Array {
  if (values.length !== indices.length) {
    throw new SyncactError('ENGINE_BAD_INPUT', `${values.length} values for ${indices.length} masked voxels`);
  }
  const out = new Float32Array(voxels);
  if (fill !== 0) out.fill(fill);
  for (let q = 0; q < indices.length; q++) out[indices[q]] = values[q];
  return out;
}

/** Dice coefficient 2|A∩B| / (|A| + |B|) of two masks on the same grid (1 when both are empty). */
export function dice(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) throw new SyncactError('ENGINE_BAD_INPUT', `masks have ${a.length} and ${b.length} voxels`);
  let both = 0;
  let na = 0;
  let nb = 0;
  for (let p = 0; p < a.length; p++) {
    const x = a[p] ? 1 : 0;
    const y = b[p] ? 1 : 0;
    both += x & y;
    na += x;
    nb += y;
  }
  return na + nb === 0 ? 1 : (2 * both) / (na + nb);
}

/**
 * Reads a mask file onto the data grid `target` (see the file comment). Throws
 * MASK_BAD_IMAGE for a mask with several volumes, MASK_GRID_MISMATCH for a mask on
 * another grid (without `resample`), MASK_EMPTY when no voxel is in.
 */
export async function loadMask(path: string, target: Grid, options: LoadMaskOptions = {}): Promise<Uint8Array> {
  const image = await openNifti(path);
  try {
    if (image.volumeCount !== 1) {
      throw new SyncactError(
        'MASK_BAD_IMAGE',
        `a mask must be 3D (or 4D with one volume), this image has ${image.volumeCount} volumes (dims ${image.header.dims.join('×')})`,
        path,
      );
    }
    let values: ArrayLike<number> = await image.readVolume(0, 'float64');
    const onGrid = sameGrid(image.grid, target);
    if (!onGrid) {
      if (!options.resample) {
        const data = options.dataPath ? ` of ${options.dataPath}` : '';
        throw new SyncactError(
          'MASK_GRID_MISMATCH',
          `the mask's grid ${describeGrid(image.grid)} differs from the data grid${data} ${describeGrid(target)}; ` +
            'give a mask on the data grid, or resample it with nearest neighbour (resample: true)',
          path,
        );
      }
      // NaN would survive nearest resampling as "in"; make it background first.
      const finite = Float64Array.from(values, (v) => (Number.isFinite(v) ? v : 0));
      values = resampleNearest(finite, image.grid, target);
    }
    const mask = maskFromValues(values);
    if (maskCount(mask) === 0) {
      const how = onGrid ? '' : ' after resampling onto the data grid';
      throw new SyncactError('MASK_EMPTY', `the mask has no non-zero voxel${how}`, path);
    }
    return mask;
  } finally {
    await image.close();
  }
}
