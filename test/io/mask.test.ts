import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { applyMask, dice, loadMask, maskCount, maskFromValues, maskIndices, unmask } from '../../server/io/mask.ts';
import { computeEpiMaskFromFile } from '../../server/io/epiMask.ts';
import { resampleNearest } from '../../server/io/resample.ts';
import { writeNifti } from '../../server/io/nifti/write.ts';
import type { Affine, Grid } from '../../server/io/nifti/types.ts';
import { SyncactError } from '../../server/errors.ts';
import { createRng } from '../../server/engine/random.ts';

const dir = mkdtempSync(join(tmpdir(), 'syncact-mask-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const affine: Affine = [
  [-3, 0, 0, 30],
  [0, 3, 0, -20],
  [0, 0, 3.5, -10],
  [0, 0, 0, 1],
];
const dims: [number, number, number] = [6, 5, 4];
const data: Grid = { dims, affine };
const n = 120;

/** A blob mask on the data grid, with a few odd values that still count as "in". */
function blobValues(): Float32Array {
  const v = new Float32Array(n);
  for (let k = 0, p = 0; k < 4; k++) {
    for (let j = 0; j < 5; j++) {
      for (let i = 0; i < 6; i++, p++) {
        if ((i - 2.5) ** 2 + (j - 2) ** 2 + (k - 1.5) ** 2 < 5) v[p] = 1;
      }
    }
  }
  v[0] = 0.25; // probabilistic masks count at > 0
  v[1] = -1; // non-zero is in, as nilearn
  v[2] = NaN; // NaN is background
  return v;
}

async function expectCode(p: Promise<unknown>, code: string): Promise<SyncactError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(SyncactError);
    expect((e as SyncactError).code).toBe(code);
    return e as SyncactError;
  }
  throw new Error(`expected ${code}`);
}

describe('mask vectors', () => {
  it('maskFromValues: finite non-zero is in', () => {
    expect(Array.from(maskFromValues([0, 1, -2, 0.5, NaN, Infinity, 0]))).toEqual([0, 1, 1, 1, 0, 0, 0]);
  });

  it('applyMask and unmask are inverse on the mask, zero outside', () => {
    const mask = maskFromValues(blobValues());
    const idx = maskIndices(mask);
    expect(idx.length).toBe(maskCount(mask));
    const rng = createRng(5);
    const volume = Float32Array.from({ length: n }, () => rng.normal());
    const y = applyMask(volume, idx);
    const back = unmask(y, idx, n);
    for (let p = 0; p < n; p++) expect(back[p]).toBe(mask[p] ? volume[p] : 0);
    const out = new Float64Array(idx.length);
    expect(applyMask(volume, idx, out)).toBe(out);
    expect(() => applyMask(volume, idx, new Float64Array(1))).toThrow(SyncactError);
  });

  it('dice', () => {
    expect(dice(Uint8Array.from([1, 1, 0, 0]), Uint8Array.from([1, 0, 1, 0]))).toBe(0.5);
    expect(dice(new Uint8Array(3), new Uint8Array(3))).toBe(1);
  });
});

describe('loadMask', () => {
  it('reads a 3D mask on the data grid (non-zero in, NaN out)', async () => {
    const path = join(dir, 'mask.nii.gz');
    await writeNifti(path, blobValues(), { dims, affine });
    const mask = await loadMask(path, data);
    expect(Array.from(mask)).toEqual(Array.from(maskFromValues(blobValues())));
    expect(mask[0]).toBe(1);
    expect(mask[1]).toBe(1);
    expect(mask[2]).toBe(0);
  });

  it('accepts a 4D mask with one volume and affines within 1e-4 mm', async () => {
    const path = join(dir, 'mask4d.nii');
    const nearly = affine.map((row) => row.slice());
    nearly[0][3] += 5e-5;
    await writeNifti(path, blobValues(), { dims: [...dims, 1], affine: nearly });
    expect(maskCount(await loadMask(path, data))).toBe(maskCount(maskFromValues(blobValues())));
  });

  it('a mask with two volumes is MASK_BAD_IMAGE', async () => {
    const path = join(dir, 'two.nii');
    await writeNifti(path, new Float32Array(2 * n).fill(1), { dims: [...dims, 2], affine });
    const e = await expectCode(loadMask(path, data), 'MASK_BAD_IMAGE');
    expect(e.message).toContain('2 volumes');
  });

  it('a mask on another grid is MASK_GRID_MISMATCH naming both files and grids', async () => {
    const path = join(dir, 'shifted.nii.gz');
    const shifted = affine.map((row) => row.slice());
    shifted[1][3] += 3; // one voxel along y
    await writeNifti(path, blobValues(), { dims, affine: shifted });
    const e = await expectCode(loadMask(path, data, { dataPath: 'bold.nii.gz' }), 'MASK_GRID_MISMATCH');
    expect(e.file).toBe(path);
    expect(e.message).toContain(path);
    expect(e.message).toContain('bold.nii.gz');
    expect(e.message).toContain('6×5×4 [[-3,0,0,30],[0,3,0,-17],[0,0,3.5,-10]]');
    expect(e.message).toContain('6×5×4 [[-3,0,0,30],[0,3,0,-20],[0,0,3.5,-10]]');
    expect(e.message).toContain('resample: true');

    // Other dims on the same affine are a mismatch too.
    const small = join(dir, 'small.nii.gz');
    await writeNifti(small, new Float32Array(60).fill(1), { dims: [6, 5, 2], affine });
    await expectCode(loadMask(small, data), 'MASK_GRID_MISMATCH');
  });

  it('resample: true puts it on the data grid with nearest neighbour', async () => {
    const path = join(dir, 'shifted-for-resample.nii.gz');
    const shifted = affine.map((row) => row.slice());
    shifted[1][3] += 3;
    await writeNifti(path, blobValues(), { dims, affine: shifted });
    const mask = await loadMask(path, data, { resample: true });
    // The mask moved one voxel up in y: data voxel (i, j, k) is mask voxel (i, j-1, k).
    const src = maskFromValues(blobValues());
    for (let k = 0, p = 0; k < 4; k++) {
      for (let j = 0; j < 5; j++) {
        for (let i = 0; i < 6; i++, p++) expect(mask[p]).toBe(j === 0 ? 0 : src[p - 6]);
      }
    }
    // And it is what resampleNearest gives (NaN treated as background first).
    const finite = Float64Array.from(blobValues(), (v) => (Number.isFinite(v) ? v : 0));
    expect(Array.from(mask)).toEqual(Array.from(maskFromValues(resampleNearest(finite, { dims, affine: shifted }, data))));
  });

  it('an empty mask, or one that resamples to nothing, is MASK_EMPTY', async () => {
    const empty = join(dir, 'empty.nii');
    await writeNifti(empty, new Float32Array(n), { dims, affine });
    await expectCode(loadMask(empty, data), 'MASK_EMPTY');
    const far = join(dir, 'far.nii');
    const away = affine.map((row) => row.slice());
    away[2][3] += 500;
    await writeNifti(far, new Float32Array(n).fill(1), { dims, affine: away });
    const e = await expectCode(loadMask(far, data, { resample: true }), 'MASK_EMPTY');
    expect(e.message).toContain('after resampling');
  });

  it('a missing file is FILE_NOT_FOUND', async () => {
    await expectCode(loadMask(join(dir, 'none.nii'), data), 'FILE_NOT_FOUND');
  });
});

describe('computeEpiMaskFromFile', () => {
  // The phantom of test/io/reference/epi_mask.json (nilearn's mask made by
  // test/reference/make_mask_atlas_reference.py), written as 3 volumes whose mean it is.
  const ref = JSON.parse(readFileSync(fileURLToPath(new URL('./reference/epi_mask.json', import.meta.url)), 'utf8')) as {
    dims: [number, number, number];
    cases: { options: object; mask: string }[];
  };
  const bytes = readFileSync(fileURLToPath(new URL('./reference/epi_mean.f32', import.meta.url)));
  const mean = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  const voxels = mean.length;

  it('streams the run into its mean and gives nilearn\'s mask', async () => {
    const path = join(dir, 'epi.nii.gz');
    const run = new Float32Array(3 * voxels);
    [0.9, 1.0, 1.1].forEach((s, t) => {
      for (let p = 0; p < voxels; p++) run[t * voxels + p] = mean[p] * s;
    });
    await writeNifti(path, run, { dims: [...ref.dims, 3], affine, tr: 2 });
    const result = await computeEpiMaskFromFile(path);
    expect(result.volumes).toBe(3);
    expect(result.grid.dims).toEqual(ref.dims);
    for (let p = 0; p < voxels; p++) {
      if (Number.isNaN(mean[p])) expect(result.mean[p]).toBeNaN();
      else expect(Math.abs(result.mean[p] - mean[p])).toBeLessThanOrEqual(1e-4 * Math.abs(mean[p]) + 1e-6);
    }
    const packed = Buffer.from(ref.cases[0].mask, 'base64');
    const want = Uint8Array.from({ length: voxels }, (_, p) => (packed[p >> 3] >> (7 - (p & 7))) & 1);
    expect(dice(result.mask, want)).toBe(1);

    // A sub-range of volumes: the mean of volume 2 alone is 1.1 × the phantom, same mask.
    const last = await computeEpiMaskFromFile(path, { start: 2 });
    expect(last.volumes).toBe(1);
    expect(dice(last.mask, want)).toBe(1);
  });

  it('MASK_EMPTY from the engine names the file', async () => {
    const path = join(dir, 'dot.nii');
    const v = new Float32Array(512);
    for (let p = 0; p < 512; p++) v[p] = p % 7;
    v[300] = 1000;
    await writeNifti(path, v, { dims: [8, 8, 8], affine });
    const e = await expectCode(computeEpiMaskFromFile(path, { upperCutoff: 1 }), 'MASK_EMPTY');
    expect(e.file).toBe(path);
  });
});
