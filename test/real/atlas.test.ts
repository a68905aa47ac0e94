/**
 * Masks and atlases on real public files (../shared/data, see its README); skipped where
 * that folder is absent. Reference values: test/io/reference/real_atlas.json, made with
 * nibabel + scipy by test/reference/make_mask_atlas_reference.py.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { atlasFromLabels, loadAtlas } from '../../server/io/atlas.ts';
import { computeEpiMaskFromFile } from '../../server/io/epiMask.ts';
import { dice, loadMask, maskCount, maskFromValues } from '../../server/io/mask.ts';
import { openNifti } from '../../server/io/nifti/read.ts';
import type { Grid } from '../../server/io/nifti/types.ts';
import { SyncactError } from '../../server/errors.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const shared = path.resolve(repoRoot, '../shared/data');
const atlases = path.join(shared, 'atlases');
const bold = path.join(shared, 'bold');

interface RealReference {
  yeo7: { brainmaskVoxels: number; countsOnGrid: Record<string, number>; countsInMask: Record<string, number> };
  testSeries: { dims: number[]; threshold: number; epiMaskCount: number; givenMaskCount: number; diceWithGivenMask: number; mask: string };
}
const ref = JSON.parse(readFileSync(path.join(repoRoot, 'test/io/reference/real_atlas.json'), 'utf8')) as RealReference;

async function gridOf(file: string): Promise<Grid> {
  const image = await openNifti(file);
  await image.close();
  return image.grid;
}

async function volumeOf(file: string): Promise<Float64Array> {
  const image = await openNifti(file);
  try {
    return await image.readVolume(0, 'float64');
  } finally {
    await image.close();
  }
}

describe.skipIf(!existsSync(shared))('real atlases and masks (../shared/data)', () => {
  const yeo = path.join(atlases, 'Yeo-7_space-MNI152NLin6_res-2x2x2.nii.gz');
  const yeoCsv = path.join(atlases, 'Yeo-7.csv');
  const brain4 = path.join(atlases, 'MNI152NLin6_res-4x4x4_T1w_descr-brainmask.nii.gz');

  it('Yeo-7 (2 mm) onto the 4 mm brain-mask grid: 7 named networks, voxel counts as nibabel/scipy', async () => {
    const target = await gridOf(brain4);
    const mask = await loadMask(brain4, target);
    expect(maskCount(mask)).toBe(ref.yeo7.brainmaskVoxels);
    const atlas = await loadAtlas({ image: yeo, labels: yeoCsv, target, mask });
    expect(atlas.kind).toBe('labels');
    expect(atlas.names).toEqual([
      '1_Visual_Area',
      '2_Somatomotor_Area',
      '3_Dorsal_Area',
      '4_Ventral_Area',
      '5_Lymbic_Area',
      '6_Frontoparietal_Area',
      '7_Default_Network_Area',
    ]);
    expect(atlas.dropped).toEqual([]);
    const counts = Object.fromEntries(atlas.indices.map((l, r) => [String(l), atlas.weights[r].voxels.length]));
    expect(counts).toEqual(ref.yeo7.countsInMask);
    for (const w of atlas.weights) expect(w.voxels.length).toBeGreaterThan(500);

    // Over the whole grid (a mask of ones), as the reference counts on the grid.
    const all = await loadAtlas({ image: yeo, labels: yeoCsv, target, mask: new Uint8Array(mask.length).fill(1) });
    expect(Object.fromEntries(all.indices.map((l, r) => [String(l), all.weights[r].voxels.length]))).toEqual(ref.yeo7.countsOnGrid);
  });

  it('the 2 mm brain mask loaded onto the 4 mm grid needs resample: true', async () => {
    const target = await gridOf(brain4);
    const brain2 = path.join(atlases, 'MNI152NLin6_res-2x2x2_T1w_descr-brainmask.nii.gz');
    await expect(loadMask(brain2, target, { dataPath: brain4 })).rejects.toMatchObject({ code: 'MASK_GRID_MISMATCH' });
    const resampled = await loadMask(brain2, target, { resample: true });
    const native = await loadMask(brain4, target);
    // Two renderings of the same template mask: close, not identical (the 4 mm one is probabilistic).
    const d = dice(resampled, native);
    console.log(`MNI brain mask, 2 mm resampled vs 4 mm: Dice ${d.toFixed(4)}`);
    expect(d).toBeGreaterThan(0.9);
  });

  it('Yeo-7 moved 1 m away is ATLAS_NO_OVERLAP', async () => {
    const target = await gridOf(brain4);
    const mask = await loadMask(brain4, target);
    const grid = await gridOf(yeo);
    const moved: Grid = { dims: grid.dims, affine: grid.affine.map((row, r) => row.map((v, c) => (c === 3 && r === 2 ? v + 1000 : v))) };
    let error: unknown;
    try {
      atlasFromLabels({ labels: await volumeOf(yeo), grid: moved, target, mask, imagePath: yeo });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(SyncactError);
    expect((error as SyncactError).code).toBe('ATLAS_NO_OVERLAP');
    expect((error as SyncactError).message).toContain('are they in the same space?');
  });

  it('Schaefer-200 without a table: 200 numbered parcels, none lost at 4 mm', async () => {
    const target = await gridOf(brain4);
    const mask = await loadMask(brain4, target);
    const atlas = await loadAtlas({ image: path.join(atlases, 'Schaefer200_space-MNI152NLin6_res-2x2x2.nii.gz'), target, mask });
    console.log(`Schaefer-200 on 4 mm: ${atlas.weights.length} parcels kept, ${atlas.dropped.length} dropped`);
    expect(atlas.names[0]).toBe('1');
    expect(atlas.weights.length + atlas.dropped.length).toBe(200);
    expect(atlas.weights.length).toBe(200); // measured: no parcel vanishes at 4 mm
  });

  it('EPI mask of testSeries: as nilearn (numpy re-implementation), and it contains the given ROI mask', async () => {
    const run = path.join(bold, 'testSeries.nii.gz');
    const given = path.join(bold, 'testSeries_mask.nii.gz');
    const result = await computeEpiMaskFromFile(run);
    expect(result.volumes).toBe(3);
    const n = result.mask.length;
    const packed = Buffer.from(ref.testSeries.mask, 'base64');
    const nilearn = Uint8Array.from({ length: n }, (_, p) => (packed[p >> 3] >> (7 - (p & 7))) & 1);
    const dNilearn = dice(result.mask, nilearn);
    expect(maskCount(result.mask)).toBe(ref.testSeries.epiMaskCount);
    expect(dNilearn).toBeGreaterThanOrEqual(0.99);

    // The run's header has an identity affine, the mask the scanner's: loadMask refuses.
    await expect(loadMask(given, result.grid, { dataPath: run })).rejects.toMatchObject({ code: 'MASK_GRID_MISMATCH' });
    // Same voxel grid (64×64×30), so compare voxel by voxel. The given file is a small
    // weighted ROI (138 voxels), not a brain mask: Dice is small by construction, what
    // matters is that the brain mask contains it.
    const roi = maskFromValues(await volumeOf(given));
    let inside = 0;
    for (let p = 0; p < n; p++) inside += roi[p] & result.mask[p];
    const coverage = inside / maskCount(roi);
    const dGiven = dice(result.mask, roi);
    console.log(
      `testSeries EPI mask: ${maskCount(result.mask)} voxels; Dice with the numpy nilearn re-implementation ${dNilearn.toFixed(4)}; ` +
        `with testSeries_mask ${dGiven.toFixed(4)} (ROI of ${maskCount(roi)} voxels, ${(100 * coverage).toFixed(1)}% inside)`,
    );
    expect(coverage).toBe(1);
    expect(dGiven).toBeCloseTo(ref.testSeries.diceWithGivenMask, 6);
    expect(dGiven).toBeGreaterThan(0.0135);
  });
});
