/**
 * The ground truth of a synthetic session as session.json names it: truth.json (networks
 * with their drivers, signs and planted signals; the feature drives) and the planted maps
 * (truth_maps.nii.gz, one volume per network in truth.json's order). Read once when the
 * session is opened; scored by truth.ts.
 */
import { readFile } from 'node:fs/promises';
import { SyncactError } from '../errors.ts';
import { openNifti } from '../io/nifti/read.ts';
import type { Grid } from '../io/nifti/types.ts';

/** Planted ground truth of a synthetic session (truth.json + truth_maps). */
export interface SessionTruth {
  networks: { name: string; driver: string | null; sign: 1 | -1; map: Float32Array; signal: Float64Array }[];
  features: { name: string; drive: Float64Array }[];
}

/** truth.json (networks with drivers, signs and signals; feature drives) and the planted maps. */
export async function readTruth(truthPath: string, mapsPath: string | null, grid: Grid): Promise<SessionTruth> {
  let json: {
    networks?: { name: string; driver: string | null; sign: number; signal: number[] }[];
    features?: { name: string; drive: number[] }[];
  };
  try {
    json = JSON.parse(await readFile(truthPath, 'utf8'));
  } catch (e) {
    throw new SyncactError('SESSION_INVALID', `cannot read the ground truth: ${(e as Error).message}`, truthPath);
  }
  if (!Array.isArray(json.networks) || !Array.isArray(json.features)) {
    throw new SyncactError('SESSION_INVALID', 'ground truth has no "networks" or "features" list', truthPath);
  }
  const n = grid.dims[0] * grid.dims[1] * grid.dims[2];
  const maps: Float32Array[] = [];
  if (mapsPath) {
    const img = await openNifti(mapsPath);
    try {
      if (img.voxelsPerVolume !== n || img.volumeCount !== json.networks.length) {
        throw new SyncactError('SESSION_INVALID', `planted maps are ${img.header.dims.join('×')}, expected ${grid.dims.join('×')}×${json.networks.length}`, mapsPath);
      }
      for await (const { data } of img.volumes()) maps.push(data);
    } finally {
      await img.close();
    }
  }
  return {
    networks: json.networks.map((x, i) => ({
      name: x.name,
      driver: x.driver,
      sign: x.sign < 0 ? -1 : 1,
      map: maps[i] ?? new Float32Array(n),
      signal: Float64Array.from(x.signal),
    })),
    features: json.features.map((f) => ({ name: f.name, drive: Float64Array.from(f.drive) })),
  };
}

