/**
 * session.json's `anatomical`: the brain view's background is the named image brought
 * onto the BOLD grid (trilinear), not the mean EPI. The anatomical is a linear function of
 * world position on a finer, shifted grid, so trilinear resampling reproduces it exactly
 * wherever a BOLD voxel center lies inside it: an answer independent of the resampler.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SyncactError } from '../../server/errors.ts';
import { writeNifti } from '../../server/io/nifti/write.ts';
import type { Affine } from '../../server/io/nifti/types.ts';
import { resampleTrilinear } from '../../server/io/resample.ts';
import { openSession, type OpenOptions } from '../../server/streams/session.ts';
import { createSyntheticSession } from '../../server/synth/session.ts';
import { writeSyntheticSession } from '../../server/synth/writeSession.ts';
import { fakeExtractor } from './pipelineFixtures.ts';

let tmp: string;
let dir: string;
const synth = createSyntheticSession({ preset: 'tiny', seed: 3 });
const grid = synth.grid;
const opts = (): OpenOptions => ({ model: fakeExtractor(), cacheDir: null, networks: 2, annotationNulls: 10, framesPerTr: 2, engine: { regressors: 3, window: 8 } });

/** Intensity of the test anatomical at world point (x, y, z) mm. */
const field = (x: number, y: number, z: number) => 100 + 2 * x - 0.5 * y + 3 * z;

/**
 * Half the BOLD voxel size, starting a quarter BOLD voxel before it: a grid that really
 * differs, yet covers every BOLD voxel center (its last center is a quarter voxel past the
 * BOLD grid's last).
 */
function anatomicalGrid(): { dims: [number, number, number]; affine: Affine } {
  const a = grid.affine;
  const affine = a.map((row, r) => (r < 3 ? [row[0] / 2, row[1] / 2, row[2] / 2, row[3] - (row[0] + row[1] + row[2]) / 4] : [...row])) as Affine;
  return { dims: [grid.dims[0] * 2, grid.dims[1] * 2, grid.dims[2] * 2], affine };
}

function worldOf(affine: Affine, i: number, j: number, k: number): [number, number, number] {
  return [0, 1, 2].map((r) => affine[r][0] * i + affine[r][1] * j + affine[r][2] * k + affine[r][3]) as [number, number, number];
}

function writeSession(name: string, extra: Record<string, unknown>): string {
  const json = JSON.parse(readFileSync(join(dir, 'session.json'), 'utf8'));
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify({ ...json, ...extra }));
  return path;
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'syncact-anat-'));
  dir = join(tmp, 'tiny');
  await writeSyntheticSession(synth, dir);
  const ag = anatomicalGrid();
  const [nx, ny, nz] = ag.dims;
  const data = new Float32Array(nx * ny * nz);
  for (let k = 0; k < nz; k++) for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++) data[i + nx * (j + ny * k)] = field(...worldOf(ag.affine, i, j, k));
  await writeNifti(join(dir, 'T1w.nii.gz'), data, { dims: ag.dims, affine: ag.affine });
  await writeNifti(join(dir, 'four.nii.gz'), new Float32Array(nx * ny * nz * 2), { dims: [nx, ny, nz, 2], affine: ag.affine });
});

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('session anatomical background', () => {
  it('an anatomical on another grid becomes the background, resampled trilinearly onto the BOLD grid', async () => {
    const withAnat = await openSession({ session: writeSession('anat.json', { anatomical: 'T1w.nii.gz' }) }, opts());
    const plain = await openSession({ session: join(dir, 'session.json') }, opts());
    try {
      const bg = withAnat.info.background;
      const [nx, ny, nz] = grid.dims;
      expect(bg.length).toBe(nx * ny * nz);
      // Equal to the resampler's output on the file's values…
      const ag = anatomicalGrid();
      const src = new Float32Array(ag.dims[0] * ag.dims[1] * ag.dims[2]);
      for (let k = 0; k < ag.dims[2]; k++) for (let j = 0; j < ag.dims[1]; j++) for (let i = 0; i < ag.dims[0]; i++) src[i + ag.dims[0] * (j + ag.dims[1] * k)] = field(...worldOf(ag.affine, i, j, k));
      const expected = resampleTrilinear(src, ag, grid);
      for (let v = 0; v < bg.length; v++) expect(bg[v]).toBeCloseTo(expected[v], 3);
      // …and, independently, to the linear field at every BOLD voxel center (float32 file).
      for (let k = 0; k < nz; k++)
        for (let j = 0; j < ny; j++)
          for (let i = 0; i < nx; i++) {
            const want = field(...worldOf(grid.affine, i, j, k));
            expect(Math.abs(bg[i + nx * (j + ny * k)] - want)).toBeLessThan(1e-3 * Math.max(1, Math.abs(want)));
          }
      // Not the mean EPI any more, which is what the session shows without one.
      let differs = 0;
      for (let v = 0; v < bg.length; v++) if (Math.abs(bg[v] - plain.info.background[v]) > 1e-3) differs++;
      expect(differs).toBeGreaterThan(bg.length / 2);
    } finally {
      await withAnat.close();
      await plain.close();
    }
  });

  it('refuses an anatomical with several volumes, and one that does not exist', async () => {
    const err = await openSession({ session: writeSession('four.json', { anatomical: 'four.nii.gz' }) }, opts()).catch((e) => e);
    expect(err).toBeInstanceOf(SyncactError);
    expect(err.code).toBe('ANATOMICAL_BAD_IMAGE');
    expect(err.message).toContain('2 volumes');
    expect(err.message).toContain('four.nii.gz');
    const missing = await openSession({ session: writeSession('missing.json', { anatomical: 'nope.nii.gz' }) }, opts()).catch((e) => e);
    expect(missing.code).toBe('FILE_NOT_FOUND');
    expect(missing.message).toContain('"anatomical"');
  });
});
