/**
 * Writer → reader round trip: images written by server/io/nifti/write.ts read back with
 * the same dims, affine, TR and every value, for .nii and .nii.gz, whole and streamed.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createNiftiWriter, writeNifti } from '../../server/io/nifti/write.ts';
import { openNifti } from '../../server/io/nifti/read.ts';
import { normalArray } from '../../server/engine/random.ts';
import type { Affine } from '../../server/io/nifti/types.ts';

const dir = mkdtempSync(join(tmpdir(), 'syncact-nifti-roundtrip-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// An oblique affine with anisotropic voxels and a left-handed grid (negative determinant).
const c = Math.cos(0.3);
const s = Math.sin(0.3);
const affine: Affine = [
  [-1.6 * c, -1.8 * s, 0, 90.4],
  [1.6 * s, -1.8 * c, 0, -126.1],
  [0, 0, 2.2, -72.6],
  [0, 0, 0, 1],
];
const dims = [7, 5, 4, 6];
const voxels = dims[0] * dims[1] * dims[2];

function expectAffine(actual: Affine, tol: number) {
  for (let r = 0; r < 4; r++) for (let k = 0; k < 4; k++) expect(Math.abs(actual[r][k] - affine[r][k])).toBeLessThan(tol);
}

describe('write.ts → read.ts', () => {
  for (const ext of ['.nii', '.nii.gz']) {
    it(`writeNifti ${ext}: dims, affine, TR and values survive`, async () => {
      const data = Float32Array.from(normalArray(7, voxels * dims[3]), (v) => v * 100);
      const path = join(dir, `whole${ext}`);
      await writeNifti(path, data, { dims, affine, tr: 0.8 });
      const img = await openNifti(path);
      expect(img.header.dims).toEqual(dims);
      expect(img.grid.dims).toEqual([7, 5, 4]);
      expect(img.volumeCount).toBe(6);
      expect(img.header.datatype).toBe('float32');
      expect(img.header.tr).toBeCloseTo(0.8, 6);
      // sform stored as float32: agreement to float32 rounding of the entries.
      expectAffine(img.header.affine, 1e-4);
      for await (const { index, data: v } of img.volumes()) {
        expect(Array.from(v)).toEqual(Array.from(data.subarray(index * voxels, (index + 1) * voxels)));
      }
      await img.close();
    });
  }

  it('the qform the writer stores gives the same affine when the sform is switched off', async () => {
    const path = join(dir, 'qform.nii');
    await writeNifti(path, new Float32Array(voxels), { dims: dims.slice(0, 3), affine });
    const bytes = readFileSync(path);
    bytes.writeInt16LE(0, 254); // sform_code = 0
    writeFileSync(path, bytes);
    const img = await openNifti(path);
    expect(img.header.sformCode).toBe(0);
    expect(img.header.qformCode).toBeGreaterThan(0);
    expectAffine(img.header.affine, 1e-4);
    expect(img.header.tr).toBeNull();
    await img.close();
  });

  it('createNiftiWriter .nii.gz streamed in, readVolume out of order', async () => {
    const path = join(dir, 'streamed.nii.gz');
    const writer = await createNiftiWriter(path, { dims, affine, tr: 2 });
    const volumes = Array.from({ length: dims[3] }, (_, k) => Float32Array.from(normalArray(100 + k, voxels)));
    for (const v of volumes) await writer.writeVolume(v);
    await writer.close();
    const img = await openNifti(path);
    for (const k of [5, 0, 3, 3, 1]) expect(Array.from(await img.readVolume(k))).toEqual(Array.from(volumes[k]));
    expect(img.header.tr).toBe(2);
    await img.close();
  });
});
