/**
 * The brain view's background: an anatomical image the session names (a T1w in the
 * BOLD's space, typically at a finer resolution) brought onto the data grid, so that the
 * dashboard draws maps and background on one grid without a second affine.
 *
 * Trilinear resampling (nilearn's `resample_to_img(..., interpolation='continuous')`)
 * because intensities are continuous; an image already on the grid is taken as is.
 * Non-finite voxels become 0 first, since one NaN would spread to its 8 neighbours.
 */
import { SyncactError } from '../errors.ts';
import { openNifti } from './nifti/read.ts';
import type { Grid } from './nifti/types.ts';
import { resampleTrilinear, sameGrid } from './resample.ts';

/**
 * Reads a 3D image (or 4D with one volume) and returns it on `target` (float32, x fastest).
 * Throws ANATOMICAL_BAD_IMAGE for an image with several volumes, and the NIfTI reader's
 * errors for an unreadable file.
 */
export async function loadAnatomical(path: string, target: Grid): Promise<Float32Array> {
  const image = await openNifti(path);
  try {
    if (image.volumeCount !== 1) {
      throw new SyncactError(
        'ANATOMICAL_BAD_IMAGE',
        `an anatomical background must be 3D (or 4D with one volume), this image has ${image.volumeCount} volumes (dims ${image.header.dims.join('×')})`,
        path,
      );
    }
    const values = await image.readVolume(0, 'float32');
    for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) values[i] = 0;
    if (sameGrid(image.grid, target)) return values;
    const out = new Float32Array(target.dims[0] * target.dims[1] * target.dims[2]);
    resampleTrilinear(values, image.grid, target, { out });
    return out;
  } finally {
    await image.close();
  }
}
