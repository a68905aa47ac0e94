import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { atlasFromLabels, atlasFromMaps, brainFeaturesFromAtlas, brainFeaturesOptions, denseWeights, loadAtlas, type Atlas } from '../../server/io/atlas.ts';
import { applyMask, maskIndices } from '../../server/io/mask.ts';
import { resampleNearest, resampleTrilinear } from '../../server/io/resample.ts';
import { writeNifti } from '../../server/io/nifti/write.ts';
import type { Affine, Grid } from '../../server/io/nifti/types.ts';
import { SyncactError } from '../../server/errors.ts';
import { createRng } from '../../server/engine/random.ts';

// Data: 8×7×6 at 3 mm. Atlas: 16×14×12 at 1.5 mm over the same field of view (LAS, as MNI atlases).
const data: Grid = {
  dims: [8, 7, 6],
  affine: [
    [3, 0, 0, -12],
    [0, 3, 0, -10],
    [0, 0, 3, -8],
    [0, 0, 0, 1],
  ],
};
const atlasGrid: Grid = {
  dims: [16, 14, 12],
  affine: [
    [-1.5, 0, 0, 10.5],
    [0, 1.5, 0, -10.5],
    [0, 0, 1.5, -8.5],
    [0, 0, 0, 1],
  ],
};
const nData = 8 * 7 * 6;
const nAtlas = 16 * 14 * 12;

/** Labels 1..4 in quadrants of x/y, label 5 in one corner block only, 0 at the z borders. */
function labelVolume(): Float32Array {
  const v = new Float32Array(nAtlas);
  for (let k = 0, p = 0; k < 12; k++) {
    for (let j = 0; j < 14; j++) {
      for (let i = 0; i < 16; i++, p++) {
        if (k === 0 || k === 11) continue;
        v[p] = 1 + (i < 8 ? 0 : 1) + (j < 7 ? 0 : 2);
        if (i >= 13 && j >= 11 && k >= 9) v[p] = 5;
      }
    }
  }
  return v;
}

/** Data mask: everything but the outermost x columns. */
function dataMask(): Uint8Array {
  const m = new Uint8Array(nData);
  for (let p = 0; p < nData; p++) m[p] = p % 8 === 0 || p % 8 === 7 ? 0 : 1;
  return m;
}

const table = [
  { index: 1, name: 'Visual' },
  { index: 2, name: 'Somatomotor' },
  { index: 3, name: 'Dorsal' },
  { index: 4, name: 'Ventral' },
  { index: 5, name: 'Limbic' },
  { index: 6, name: 'Frontoparietal' },
];

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(SyncactError);
    return (e as SyncactError).code;
  }
  return undefined;
}

/** Checks the structural invariants every atlas must satisfy. */
function checkInvariants(atlas: Atlas, maskedVoxels: number): void {
  expect(atlas.maskedVoxels).toBe(maskedVoxels);
  expect(atlas.names.length).toBe(atlas.weights.length);
  expect(atlas.indices.length).toBe(atlas.weights.length);
  for (const w of atlas.weights) {
    expect(w.voxels.length).toBe(w.values.length);
    expect(w.voxels.length).toBeGreaterThan(0);
    for (let t = 1; t < w.voxels.length; t++) expect(w.voxels[t]).toBeGreaterThan(w.voxels[t - 1]);
    expect(w.voxels[w.voxels.length - 1]).toBeLessThan(maskedVoxels);
  }
}

describe('atlasFromLabels', () => {
  const mask = dataMask();
  const idx = maskIndices(mask);

  it('resamples with nearest neighbour onto the data grid and keeps labels inside the mask', () => {
    const labels = labelVolume();
    const atlas = atlasFromLabels({ labels, grid: atlasGrid, table, target: data, mask });
    checkInvariants(atlas, idx.length);
    expect(atlas.kind).toBe('labels');
    // The same thing by hand: resample, read at the masked voxels.
    const onData = applyMask(resampleNearest(labels, atlasGrid, data), idx, new Float64Array(idx.length));
    const present = [...new Set(onData)].filter((l) => l !== 0).sort((a, b) => a - b);
    expect(atlas.indices).toEqual(present);
    expect(present).toEqual([1, 2, 3, 4, 5]);
    expect(atlas.names).toEqual(present.map((l) => table[l - 1].name));
    atlas.indices.forEach((l, r) => {
      const want = [...onData.keys()].filter((q) => onData[q] === l);
      expect(Array.from(atlas.weights[r].voxels)).toEqual(want);
      expect(atlas.weights[r].values.every((v) => v === 1)).toBe(true);
    });
    for (let q = 0; q < idx.length; q++) {
      const r = atlas.regionOfVoxel![q];
      expect(r === -1 ? 0 : atlas.indices[r]).toBe(onData[q]);
    }
    // Table label 6 is not in the image: dropped with a warning, not an error.
    expect(atlas.dropped).toContainEqual({ name: 'Frontoparietal', index: 6, reason: 'absent from the atlas image' });
    expect(atlas.warnings.join('\n')).toContain('label 6 (Frontoparietal) dropped: absent from the atlas image');
  });

  it('on the data grid itself, no resampling: every label voxel in the mask counts', () => {
    const labels = new Float32Array(nData);
    labels[9] = 2;
    labels[10] = 2;
    labels[20] = 7;
    labels[8] = 3; // outside the mask (x = 0): label 3 is dropped
    const atlas = atlasFromLabels({ labels, grid: data, target: data, mask });
    expect(atlas.names).toEqual(['2', '7']);
    expect(atlas.weights.map((w) => w.voxels.length)).toEqual([2, 1]);
    expect(atlas.dropped).toEqual([{ name: '3', index: 3, reason: 'no voxel inside the data mask' }]);
  });

  it('a label of the image missing from the table is ATLAS_BAD_LABELS', () => {
    expect(() =>
      atlasFromLabels({ labels: labelVolume(), grid: atlasGrid, table: table.slice(0, 3), target: data, mask, labelsPath: 'yeo.csv', imagePath: 'yeo.nii.gz' }),
    ).toThrow('yeo.csv: labels 4, 5 of the atlas image yeo.nii.gz are not in the label table');
  });

  it('an atlas far from the data is ATLAS_NO_OVERLAP', () => {
    const far: Grid = { dims: atlasGrid.dims, affine: atlasGrid.affine.map((row, r) => row.map((v, c) => (c === 3 && r === 0 ? v + 400 : v))) };
    expect(codeOf(() => atlasFromLabels({ labels: labelVolume(), grid: far, table, target: data, mask }))).toBe('ATLAS_NO_OVERLAP');
    // Overlapping grids but an empty data mask: no overlap either.
    expect(codeOf(() => atlasFromLabels({ labels: labelVolume(), grid: atlasGrid, target: data, mask: new Uint8Array(nData) }))).toBe(
      'ATLAS_NO_OVERLAP',
    );
  });

  it('non-integer, negative or mis-sized label images and singular affines are ATLAS_BAD_IMAGE', () => {
    const frac = labelVolume();
    frac[100] = 2.5;
    expect(codeOf(() => atlasFromLabels({ labels: frac, grid: atlasGrid, target: data, mask }))).toBe('ATLAS_BAD_IMAGE');
    const neg = labelVolume();
    neg[100] = -1;
    expect(codeOf(() => atlasFromLabels({ labels: neg, grid: atlasGrid, target: data, mask }))).toBe('ATLAS_BAD_IMAGE');
    expect(codeOf(() => atlasFromLabels({ labels: new Float32Array(5), grid: atlasGrid, target: data, mask }))).toBe('ATLAS_BAD_IMAGE');
    const singular: Affine = [
      [1, 0, 0, 0],
      [1, 0, 0, 0],
      [0, 0, 1, 0],
      [0, 0, 0, 1],
    ];
    expect(codeOf(() => atlasFromLabels({ labels: labelVolume(), grid: { dims: atlasGrid.dims, affine: singular }, target: data, mask }))).toBe(
      'ATLAS_BAD_IMAGE',
    );
  });

  it('as brain features: the plain mean of each label inside the mask, by the label path', () => {
    const atlas = atlasFromLabels({ labels: labelVolume(), grid: atlasGrid, table, target: data, mask });
    expect('labelOfVoxel' in brainFeaturesOptions(atlas)).toBe(true);
    const rng = createRng(8);
    const y = Float32Array.from({ length: idx.length }, () => rng.normal());
    const features = brainFeaturesFromAtlas(atlas);
    expect(features.regions).toBe(atlas.names.length);
    const means = features.extract(y);
    atlas.weights.forEach((_, r) => {
      let s = 0;
      let c = 0;
      for (let q = 0; q < idx.length; q++) {
        if (atlas.regionOfVoxel![q] === r) {
          s += y[q];
          c++;
        }
      }
      expect(means[r]).toBeCloseTo(s / c, 12);
    });
    expect(() => features.extract(new Float32Array(3))).toThrow(SyncactError);
  });
});

describe('atlasFromMaps', () => {
  const mask = dataMask();
  const idx = maskIndices(mask);
  const rng = createRng(21);
  // Two smooth non-negative maps and one map living outside the data's field of view.
  const maps = [0, 1].map((m) =>
    Float32Array.from({ length: nAtlas }, (_, p) => {
      const i = p % 16;
      const j = Math.floor(p / 16) % 14;
      const k = Math.floor(p / 224);
      return Math.max(0, 1 - ((i - 5 - 5 * m) ** 2 + (j - 7) ** 2 + (k - 6) ** 2) / 40) + 0.01 * rng.uniform();
    }),
  );
  const offField = new Float32Array(nAtlas);

  it('resamples each map with trilinear interpolation; weights are the map inside the mask', () => {
    const atlas = atlasFromMaps({ maps: [...maps, offField], grid: atlasGrid, target: data, mask });
    checkInvariants(atlas, idx.length);
    expect(atlas.kind).toBe('maps');
    expect(atlas.names).toEqual(['map_1', 'map_2']);
    expect(atlas.dropped).toEqual([{ name: 'map_3', index: 3, reason: 'no voxel inside the data mask' }]);
    maps.forEach((map, r) => {
      const dense = applyMask(resampleTrilinear(map, atlasGrid, data), idx, new Float64Array(idx.length));
      const got = denseWeights(atlas, r);
      for (let q = 0; q < idx.length; q++) expect(Math.abs(got[q] - dense[q])).toBeLessThan(1e-6);
    });
  });

  it('as brain features: the weighted mean Σwy/Σw, from the sparse weights', () => {
    const atlas = atlasFromMaps({ maps, grid: atlasGrid, target: data, mask });
    const options = brainFeaturesOptions(atlas);
    expect('sparse' in options && options.sparse === atlas.weights).toBe(true);
    const y = Float64Array.from({ length: idx.length }, () => rng.normal());
    const means = brainFeaturesFromAtlas(atlas).extract(y);
    atlas.weights.forEach((_, r) => {
      const w = denseWeights(atlas, r);
      let s = 0;
      let t = 0;
      for (let q = 0; q < idx.length; q++) {
        s += w[q] * y[q];
        t += w[q];
      }
      expect(means[r]).toBeCloseTo(s / t, 6);
    });
  });

  it('names from a table (entry k names map k); a table that does not fit is ATLAS_BAD_LABELS', () => {
    const atlas = atlasFromMaps({ maps, grid: atlasGrid, target: data, mask, table: [{ index: 1, name: 'V1' }, { index: 2, name: 'V2' }] });
    expect(atlas.names).toEqual(['V1', 'V2']);
    expect(codeOf(() => atlasFromMaps({ maps, grid: atlasGrid, target: data, mask, table: [{ index: 3, name: 'x' }] }))).toBe('ATLAS_BAD_LABELS');
    expect(codeOf(() => atlasFromMaps({ maps, grid: atlasGrid, target: data, mask, table: [{ index: 1, name: 'x' }] }))).toBe('ATLAS_BAD_LABELS');
  });

  it('no map inside the mask is ATLAS_NO_OVERLAP', () => {
    expect(codeOf(() => atlasFromMaps({ maps: [offField], grid: atlasGrid, target: data, mask }))).toBe('ATLAS_NO_OVERLAP');
  });
});

describe('loadAtlas from files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'syncact-atlas-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const mask = dataMask();

  it('a 3D label image with a CSV table equals the in-memory atlas', async () => {
    const image = join(dir, 'labels.nii.gz');
    const csv = join(dir, 'labels.csv');
    await writeNifti(image, labelVolume(), { dims: atlasGrid.dims, affine: atlasGrid.affine });
    writeFileSync(csv, '0,empty\n' + table.map((e) => `${e.index},${e.name}`).join('\n') + '\n');
    const atlas = await loadAtlas({ image, labels: csv, target: data, mask });
    const want = atlasFromLabels({ labels: labelVolume(), grid: atlasGrid, table, target: data, mask });
    expect(atlas.names).toEqual(want.names);
    expect(atlas.weights.map((w) => Array.from(w.voxels))).toEqual(want.weights.map((w) => Array.from(w.voxels)));
    expect(atlas.dropped).toEqual(want.dropped);
  });

  it('a 4D stack is read as maps; forcing labels on it is ATLAS_BAD_IMAGE', async () => {
    const image = join(dir, 'maps.nii');
    const stack = new Float32Array(2 * nAtlas);
    for (let p = 0; p < nAtlas; p++) {
      stack[p] = p % 3;
      stack[nAtlas + p] = (p % 5) / 4;
    }
    await writeNifti(image, stack, { dims: [...atlasGrid.dims, 2], affine: atlasGrid.affine });
    const atlas = await loadAtlas({ image, target: data, mask });
    expect(atlas.kind).toBe('maps');
    expect(atlas.names).toEqual(['map_1', 'map_2']);
    await expect(loadAtlas({ image, target: data, mask, kind: 'labels' })).rejects.toMatchObject({ code: 'ATLAS_BAD_IMAGE' });
  });

  it('a malformed table is ATLAS_BAD_LABELS before the image is read', async () => {
    const csv = join(dir, 'bad.csv');
    writeFileSync(csv, '1,a\nx,b\n');
    await expect(loadAtlas({ image: join(dir, 'missing.nii'), labels: csv, target: data, mask })).rejects.toMatchObject({
      code: 'ATLAS_BAD_LABELS',
      file: csv,
    });
  });
});
