/**
 * Atlases on the data grid: the regions whose mean signals become brain features
 * (parcels or networks), and the template networks units are annotated with.
 *
 * Two kinds, as nilearn's `NiftiLabelsMasker` and `NiftiMapsMasker` take:
 *
 * - `labels`: a 3D image of non-negative integer labels (0 = background), with an
 *   optional names table (server/io/labels.ts). Resampled onto the data grid with
 *   nearest neighbour, so labels are never blended. Every region's weights are 1.
 * - `maps`: a 4D stack of (probabilistic or weighted) maps, one region per volume.
 *   Resampled with trilinear interpolation. Names from the table (entry k names volume
 *   k - 1, as labels count from 1) or `map_1`, `map_2`, ….
 *
 * Resampling happens only when the atlas grid differs from the data grid (dims, or an
 * affine entry by more than 1e-4 mm), through the affines (server/io/resample.ts).
 *
 * Regions are kept as sparse weights over the *masked* voxel vector (positions into
 * `maskIndices(mask)`), not as dense volumes: 400 dense parcels over 250k voxels would be
 * 400 MB, their sparse form is 2 MB.
 *
 * Decisions (documented once, here):
 * - A label present in the image but absent from the table is ATLAS_BAD_LABELS: the
 *   table is probably for another atlas (or another version of it).
 * - A label named in the table but absent from the image, and a region with no voxel
 *   inside the data mask after resampling, are dropped, not kept empty: an empty region
 *   has no mean, and a NaN feature would poison every estimator downstream. Each drop is
 *   listed in `dropped` with its reason, and in `warnings` as a sentence for the user.
 * - No region left → ATLAS_NO_OVERLAP (the atlas and the data are not in the same space).
 */
import { SyncactError } from '../errors.ts';
import { BrainFeatures, type BrainFeaturesOptions } from '../engine/brainFeatures.ts';
import { readLabelTable, type LabelEntry } from './labels.ts';
import { maskCount } from './mask.ts';
import { openNifti } from './nifti/read.ts';
import type { Grid } from './nifti/types.ts';
import { describeGrid, gridVoxelCount, invertAffine, resampleNearest, resampleTrilinear, sameGrid } from './resample.ts';

/** One region's weights over the masked voxels. */
export interface RegionWeights {
  /** Positions in the masked voxel vector (ascending). */
  voxels: Uint32Array;
  /** Weight of each listed voxel (1 for labels). */
  values: Float32Array;
}

export interface DroppedRegion {
  name: string;
  /** The label value (labels kind) or the 1-based map number (maps kind). */
  index: number;
  reason: 'absent from the atlas image' | 'no voxel inside the data mask';
}

export interface Atlas {
  kind: 'labels' | 'maps';
  /** One per region, in region order. */
  names: string[];
  /** Label value (labels) or 1-based map number (maps) of each region. */
  indices: number[];
  /** Per region, sparse weights over the masked voxels of the data. */
  weights: RegionWeights[];
  /** Labels kind: the region (index into `names`) of each masked voxel, -1 for none. */
  regionOfVoxel?: Int32Array;
  /** Length of the masked voxel vector the weights refer to. */
  maskedVoxels: number;
  dropped: DroppedRegion[];
  warnings: string[];
}

interface AtlasTarget {
  /** The data grid. */
  target: Grid;
  /** The data mask on `target` (0/1 per voxel). */
  mask: Uint8Array;
  /** For messages. */
  imagePath?: string;
  labelsPath?: string;
}

/** Position of each masked voxel in the masked vector, -1 outside the mask. */
function maskPositions(mask: Uint8Array, target: Grid): Int32Array {
  const n = gridVoxelCount(target);
  if (mask.length !== n) {
    throw new SyncactError('ENGINE_BAD_INPUT', `mask has ${mask.length} voxels but the data grid ${target.dims.join('×')} has ${n}`);
  }
  const pos = new Int32Array(n);
  let q = 0;
  for (let p = 0; p < n; p++) pos[p] = mask[p] ? q++ : -1;
  return pos;
}

function checkAffine(grid: Grid, file: string | undefined): void {
  try {
    invertAffine(grid.affine);
  } catch {
    throw new SyncactError('ATLAS_BAD_IMAGE', `the atlas affine is singular: ${describeGrid(grid)}`, file);
  }
}

function noOverlap(atlasGrid: Grid, input: AtlasTarget): SyncactError {
  return new SyncactError(
    'ATLAS_NO_OVERLAP',
    `no atlas region has a voxel inside the data mask (${maskCount(input.mask)} voxels) after resampling; ` +
      `atlas grid ${describeGrid(atlasGrid)}, data grid ${describeGrid(input.target)}: are they in the same space?`,
    input.imagePath,
  );
}

function dropWarning(d: DroppedRegion, kind: Atlas['kind']): string {
  const what = kind === 'labels' ? `label ${d.index}` : `map ${d.index}`;
  return `${what} (${d.name}) dropped: ${d.reason}`;
}

/**
 * A labels atlas from a label volume in memory (values on `grid`, x fastest), onto the
 * data grid and mask. See the file comment for the rules.
 */
export function atlasFromLabels(input: AtlasTarget & { labels: ArrayLike<number>; grid: Grid; table?: LabelEntry[] }): Atlas {
  const { grid, table } = input;
  if (input.labels.length !== gridVoxelCount(grid)) {
    throw new SyncactError(
      'ATLAS_BAD_IMAGE',
      `label image has ${input.labels.length} values for a ${grid.dims.join('×')} grid`,
      input.imagePath,
    );
  }
  checkAffine(grid, input.imagePath);
  const pos = maskPositions(input.mask, input.target);

  // Validate the values and collect the labels present in the atlas itself.
  const present = new Set<number>();
  const values = new Float64Array(input.labels.length);
  for (let p = 0; p < values.length; p++) {
    let v = input.labels[p];
    if (Number.isNaN(v)) v = 0; // NaN is background, as nilearn's ensure_finite
    if (!Number.isFinite(v) || v < 0 || Math.abs(v - Math.round(v)) > 1e-4) {
      throw new SyncactError(
        'ATLAS_BAD_IMAGE',
        `voxel ${p} holds ${v}: a label image needs non-negative integer labels (is this a probabilistic map? use kind 'maps')`,
        input.imagePath,
      );
    }
    v = Math.round(v);
    values[p] = v;
    if (v !== 0) present.add(v);
  }

  const names = new Map<number, string>();
  const dropped: DroppedRegion[] = [];
  if (table) {
    for (const e of table) names.set(e.index, e.name);
    const unnamed = [...present].filter((l) => !names.has(l)).sort((a, b) => a - b);
    if (unnamed.length) {
      const list = unnamed.slice(0, 10).join(', ') + (unnamed.length > 10 ? `, … (${unnamed.length} in all)` : '');
      throw new SyncactError(
        'ATLAS_BAD_LABELS',
        `labels ${list} of the atlas image ${input.imagePath ?? ''} are not in the label table; is the table for this atlas?`,
        input.labelsPath,
      );
    }
    for (const e of table) {
      if (!present.has(e.index)) dropped.push({ name: e.name, index: e.index, reason: 'absent from the atlas image' });
    }
  } else {
    for (const l of present) names.set(l, String(l));
  }

  const onData = sameGrid(grid, input.target) ? values : resampleNearest(values, grid, input.target);

  // Count masked voxels per label, then lay out the regions in ascending label order.
  const counts = new Map<number, number>();
  for (let p = 0; p < onData.length; p++) {
    if (pos[p] < 0 || onData[p] === 0) continue;
    counts.set(onData[p], (counts.get(onData[p]) ?? 0) + 1);
  }
  const kept: number[] = [];
  for (const l of [...present].sort((a, b) => a - b)) {
    if (counts.has(l)) kept.push(l);
    else dropped.push({ name: names.get(l)!, index: l, reason: 'no voxel inside the data mask' });
  }
  if (kept.length === 0) throw noOverlap(grid, input);

  const regionOf = new Map(kept.map((l, r) => [l, r]));
  const maskedVoxels = maskCount(input.mask);
  const regionOfVoxel = new Int32Array(maskedVoxels).fill(-1);
  const weights: RegionWeights[] = kept.map((l) => ({
    voxels: new Uint32Array(counts.get(l)!),
    values: new Float32Array(counts.get(l)!).fill(1),
  }));
  const filled = new Int32Array(kept.length);
  for (let p = 0; p < onData.length; p++) {
    const q = pos[p];
    if (q < 0 || onData[p] === 0) continue;
    const r = regionOf.get(onData[p])!;
    regionOfVoxel[q] = r;
    weights[r].voxels[filled[r]++] = q;
  }
  dropped.sort((a, b) => a.index - b.index);
  return {
    kind: 'labels',
    names: kept.map((l) => names.get(l)!),
    indices: kept,
    weights,
    regionOfVoxel,
    maskedVoxels,
    dropped,
    warnings: dropped.map((d) => dropWarning(d, 'labels')),
  };
}

/**
 * A maps atlas from map volumes in memory (each on `grid`, x fastest), onto the data
 * grid and mask: trilinear resampling, the non-zero weights inside the mask kept.
 */
export function atlasFromMaps(input: AtlasTarget & { maps: ArrayLike<number>[]; grid: Grid; table?: LabelEntry[] }): Atlas {
  const builder = mapsBuilder(input, input.maps.length);
  input.maps.forEach((map, m) => builder.add(map, m));
  return builder.finish();
}

/**
 * Builds a maps atlas one map at a time, so a file's stack is streamed and only the
 * sparse weights are kept (a 64-map 2 mm stack is 230 MB as float32).
 */
function mapsBuilder(
  input: AtlasTarget & { grid: Grid; table?: LabelEntry[] },
  count: number,
): { add(map: ArrayLike<number>, m: number): void; finish(): Atlas } {
  const { grid } = input;
  checkAffine(grid, input.imagePath);
  const pos = maskPositions(input.mask, input.target);
  const names = mapNames(count, input.table, input);
  const onGrid = sameGrid(grid, input.target);
  const kept: number[] = [];
  const weights: RegionWeights[] = [];
  const dropped: DroppedRegion[] = [];
  return {
    add(map, m) {
      if (map.length !== gridVoxelCount(grid)) {
        throw new SyncactError('ATLAS_BAD_IMAGE', `map ${m + 1} has ${map.length} values for a ${grid.dims.join('×')} grid`, input.imagePath);
      }
      const finite = Float64Array.from(map, (v) => (Number.isFinite(v) ? v : 0));
      const onData = onGrid ? finite : resampleTrilinear(finite, grid, input.target);
      const voxels: number[] = [];
      const values: number[] = [];
      for (let p = 0; p < onData.length; p++) {
        if (pos[p] >= 0 && onData[p] !== 0) {
          voxels.push(pos[p]);
          values.push(onData[p]);
        }
      }
      if (voxels.length === 0) {
        dropped.push({ name: names[m], index: m + 1, reason: 'no voxel inside the data mask' });
        return;
      }
      kept.push(m + 1);
      weights.push({ voxels: Uint32Array.from(voxels), values: Float32Array.from(values) });
    },
    finish() {
      if (kept.length === 0) throw noOverlap(grid, input);
      return {
        kind: 'maps',
        names: kept.map((i) => names[i - 1]),
        indices: kept,
        weights,
        maskedVoxels: maskCount(input.mask),
        dropped,
        warnings: dropped.map((d) => dropWarning(d, 'maps')),
      };
    },
  };
}

/** Names of `count` maps: table entry k names map k (1-based); it must name exactly 1..count. */
function mapNames(count: number, table: LabelEntry[] | undefined, input: AtlasTarget): string[] {
  if (!table) return Array.from({ length: count }, (_, m) => `map_${m + 1}`);
  const names: string[] = new Array(count);
  for (const e of table) {
    if (e.index > count) {
      throw new SyncactError(
        'ATLAS_BAD_LABELS',
        `entry ${e.index} (${e.name}) but the maps image ${input.imagePath ?? ''} has ${count} maps (entry k names map k, from 1)`,
        input.labelsPath,
      );
    }
    names[e.index - 1] = e.name;
  }
  const missing = names.length - names.filter((n) => n !== undefined).length;
  if (missing > 0) {
    throw new SyncactError('ATLAS_BAD_LABELS', `the table names ${count - missing} of the ${count} maps; name every map 1..${count}`, input.labelsPath);
  }
  return names;
}

export interface LoadAtlasOptions {
  /** The atlas image: a 3D label image or a 4D stack of maps. */
  image: string;
  /** A CSV/TSV names table (index,name). */
  labels?: string;
  /** The data grid. */
  target: Grid;
  /** The data mask on `target`. */
  mask: Uint8Array;
  /** Default: 'labels' for a 3D image (or 4D with one volume), 'maps' for a 4D stack. */
  kind?: 'labels' | 'maps';
}

/** Reads an atlas (and its names table) and puts it on the data grid and mask. */
export async function loadAtlas(options: LoadAtlasOptions): Promise<Atlas> {
  const table = options.labels ? await readLabelTable(options.labels) : undefined;
  const image = await openNifti(options.image);
  try {
    const kind = options.kind ?? (image.volumeCount === 1 ? 'labels' : 'maps');
    const common = { grid: image.grid, table, target: options.target, mask: options.mask, imagePath: options.image, labelsPath: options.labels };
    if (kind === 'labels') {
      if (image.volumeCount !== 1) {
        throw new SyncactError(
          'ATLAS_BAD_IMAGE',
          `a label atlas must be 3D; this image has ${image.volumeCount} volumes (a stack of maps? use kind 'maps')`,
          options.image,
        );
      }
      return atlasFromLabels({ ...common, labels: await image.readVolume(0, 'float64') });
    }
    const builder = mapsBuilder(common, image.volumeCount);
    for await (const { index, data } of image.volumes()) builder.add(data, index);
    return builder.finish();
  } finally {
    await image.close();
  }
}

/**
 * The atlas as the engine's brain features (server/engine/brainFeatures.ts computes the
 * region signals, Σ w·y / Σ w over the non-NaN voxels: for labels the plain mean, as
 * nilearn's `NiftiLabelsMasker(strategy='mean')`; for maps the weighted mean): a labels
 * atlas through its one-pass label path, a maps atlas through its sparse weights as they
 * are (no dense copy of each map).
 */
export function brainFeaturesOptions(atlas: Atlas): BrainFeaturesOptions {
  return atlas.regionOfVoxel
    ? { labelOfVoxel: atlas.regionOfVoxel, regions: atlas.weights.length }
    : { sparse: atlas.weights, voxels: atlas.maskedVoxels };
}

/** A BrainFeatures for the atlas (see brainFeaturesOptions). */
export function brainFeaturesFromAtlas(atlas: Atlas): BrainFeatures {
  return new BrainFeatures(brainFeaturesOptions(atlas));
}

/** One region's weights as a dense vector over the masked voxels (0 elsewhere). */
export function denseWeights(atlas: Atlas, region: number): Float32Array {
  const out = new Float32Array(atlas.maskedVoxels);
  const { voxels, values } = atlas.weights[region];
  for (let t = 0; t < voxels.length; t++) out[voxels[t]] = values[t];
  return out;
}
