/**
 * The automatic EPI mask of a 4D run on disk: the volumes are streamed once through a
 * `MeanVolume` (one float64 per voxel, whatever the run length) and the mean goes to
 * `computeEpiMask` (nilearn's `compute_epi_mask`; the method is documented in
 * server/engine/epiMask.ts).
 */
import { SyncactError } from '../errors.ts';
import { computeEpiMask, type EpiMaskOptions } from '../engine/epiMask.ts';
import { MeanVolume } from '../engine/meanVolume.ts';
import { openNifti } from './nifti/read.ts';
import type { Grid } from './nifti/types.ts';

export interface EpiMaskFromFileOptions extends EpiMaskOptions {
  /** First volume of the mean (default 0). */
  start?: number;
  /** One past the last volume of the mean (default: all). */
  end?: number;
}

export interface EpiMaskResult {
  /** 0/1 per voxel of `grid`, x fastest. */
  mask: Uint8Array;
  grid: Grid;
  /** The mean volume the mask was computed from. */
  mean: Float64Array;
  /** How many volumes went into the mean. */
  volumes: number;
}

/** Streams the run's volumes into their mean and computes the EPI mask of it. */
export async function computeEpiMaskFromFile(path: string, options: EpiMaskFromFileOptions = {}): Promise<EpiMaskResult> {
  const image = await openNifti(path);
  try {
    const acc = new MeanVolume(image.voxelsPerVolume);
    for await (const { data } of image.volumes({ start: options.start, end: options.end, as: 'float64' })) acc.update(data);
    const mean = acc.mean();
    let mask: Uint8Array;
    try {
      mask = computeEpiMask(mean, image.grid.dims, options);
    } catch (e) {
      // The engine does not know the file; the user needs it in the message.
      if (e instanceof SyncactError && !e.file) throw new SyncactError(e.code, e.message, path);
      throw e;
    }
    return { mask, grid: image.grid, mean, volumes: acc.count };
  } finally {
    await image.close();
  }
}
