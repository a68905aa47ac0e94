import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  describeGrid,
  invertAffine,
  multiplyAffines,
  resampleNearest,
  resampleTrilinear,
  sameGrid,
  voxelToVoxel,
} from '../../server/io/resample.ts';
import type { Affine, Grid } from '../../server/io/nifti/types.ts';
import { SyncactError } from '../../server/errors.ts';
import { createRng } from '../../server/engine/random.ts';

interface Case {
  name: string;
  srcDims: [number, number, number];
  srcAffine: Affine;
  dstDims: [number, number, number];
  dstAffine: Affine;
  values: number[];
  labels: number[];
  trilinear: number[];
  nearest: number[];
  inside: number;
}

// Made by test/reference/make_mask_atlas_reference.py (scipy.ndimage.map_coordinates, mode='constant').
const reference = JSON.parse(
  readFileSync(fileURLToPath(new URL('./reference/resample.json', import.meta.url)), 'utf8'),
) as { cases: Case[] };

const grid = (dims: [number, number, number], affine: Affine): Grid => ({ dims, affine });

describe('resampling against scipy.ndimage.map_coordinates', () => {
  for (const c of reference.cases) {
    const src = grid(c.srcDims, c.srcAffine);
    const dst = grid(c.dstDims, c.dstAffine);

    it(`${c.name}: trilinear equals order=1`, () => {
      const out = resampleTrilinear(Float64Array.from(c.values), src, dst);
      expect(out.length).toBe(c.trilinear.length);
      let maxErr = 0;
      for (let p = 0; p < out.length; p++) maxErr = Math.max(maxErr, Math.abs(out[p] - c.trilinear[p]));
      expect(maxErr).toBeLessThan(1e-10);
      // The case is only meaningful if some voxels are outside (zero) and some are not.
      expect(out.filter((v) => v !== 0).length).toBe(c.inside);
    });

    it(`${c.name}: nearest equals order=0`, () => {
      const out = resampleNearest(Int32Array.from(c.labels), src, dst);
      expect(Array.from(out)).toEqual(c.nearest);
    });
  }
});

describe('resampling invariants', () => {
  const dims: [number, number, number] = [5, 4, 3];
  const affine: Affine = [
    [0, -2, 0, 10],
    [2.5, 0, 0, -3],
    [0, 0, 3, 1],
    [0, 0, 0, 1],
  ];
  const rng = createRng(11);
  const values = Float64Array.from({ length: 60 }, () => rng.normal());

  it('onto its own grid is the identity (both methods), input untouched', () => {
    const copy = values.slice();
    expect(Array.from(resampleTrilinear(values, grid(dims, affine), grid(dims, affine)))).toEqual(Array.from(values));
    expect(Array.from(resampleNearest(values, grid(dims, affine), grid(dims, affine)))).toEqual(Array.from(values));
    expect(values).toEqual(copy);
  });

  it('trilinear reproduces a linear function of world coordinates inside the source', () => {
    // f(world) = 0.3x - 0.2y + 0.7z + 1 is linear in voxel coordinates too, so trilinear is exact.
    const src = grid([6, 6, 6], [
      [1.7, 0.2, 0, -4],
      [-0.1, 2.1, 0.3, -5],
      [0, 0.2, 1.9, -6],
      [0, 0, 0, 1],
    ]);
    const f = (w: number[]): number => 0.3 * w[0] - 0.2 * w[1] + 0.7 * w[2] + 1;
    const world = (a: Affine, i: number, j: number, k: number): number[] =>
      [0, 1, 2].map((r) => a[r][0] * i + a[r][1] * j + a[r][2] * k + a[r][3]);
    const srcValues = new Float64Array(216);
    for (let k = 0, p = 0; k < 6; k++) for (let j = 0; j < 6; j++) for (let i = 0; i < 6; i++) srcValues[p++] = f(world(src.affine, i, j, k));
    const dst = grid([4, 4, 4], [
      [1.3, 0, 0, -2],
      [0, 1.4, 0, -2.5],
      [0, 0, 1.2, -3],
      [0, 0, 0, 1],
    ]);
    const out = resampleTrilinear(srcValues, src, dst);
    const m = voxelToVoxel(src, dst);
    let checked = 0;
    for (let k = 0, p = 0; k < 4; k++) {
      for (let j = 0; j < 4; j++) {
        for (let i = 0; i < 4; i++, p++) {
          const v = [0, 1, 2].map((r) => m[r][0] * i + m[r][1] * j + m[r][2] * k + m[r][3]);
          if (v.every((x) => x >= 0 && x <= 5)) {
            expect(out[p]).toBeCloseTo(f(world(dst.affine, i, j, k)), 10);
            checked++;
          } else expect(out[p]).toBe(0);
        }
      }
    }
    expect(checked).toBeGreaterThan(20);
  });

  it('half-voxel points round up, as scipy order=0', () => {
    // Destination voxel centers fall exactly half-way between source voxels along x.
    const src = grid([4, 1, 1], [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]);
    const dst = grid([3, 1, 1], [[1, 0, 0, 0.5], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]);
    expect(Array.from(resampleNearest([10, 20, 30, 40], src, dst))).toEqual([20, 30, 40]);
    expect(Array.from(resampleTrilinear([10, 20, 30, 40], src, dst))).toEqual([15, 25, 35]);
  });

  it('fill value and out array are honoured; bad lengths are ENGINE_BAD_INPUT', () => {
    const src = grid([2, 2, 2], [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]);
    const dst = grid([3, 1, 1], [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]);
    const out = new Float32Array(3);
    const r = resampleNearest([1, 2, 3, 4, 5, 6, 7, 8], src, dst, { fill: -1, out });
    expect(r).toBe(out);
    expect(Array.from(out)).toEqual([1, 2, -1]);
    expect(() => resampleTrilinear([1, 2, 3], src, dst)).toThrow(SyncactError);
    expect(() => resampleNearest([1, 2, 3, 4, 5, 6, 7, 8], src, dst, { out: new Float64Array(2) })).toThrow(/output has 2 values/);
  });
});

describe('affine helpers', () => {
  it('invertAffine · affine = identity; singular → ENGINE_BAD_INPUT', () => {
    const a: Affine = [
      [-2, 0.3, 0.1, 90],
      [0.2, 2, -0.4, -126],
      [0.05, 0.1, 2.5, -72],
      [0, 0, 0, 1],
    ];
    const id = multiplyAffines(invertAffine(a), a);
    for (let r = 0; r < 4; r++) for (let c = 0; c < 4; c++) expect(id[r][c]).toBeCloseTo(r === c ? 1 : 0, 12);
    try {
      invertAffine([[1, 0, 0, 0], [2, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(SyncactError);
      expect((e as SyncactError).code).toBe('ENGINE_BAD_INPUT');
    }
  });

  it('sameGrid tolerates 1e-4 mm, not more, and compares dims', () => {
    const a = grid([4, 5, 6], [[2, 0, 0, 1], [0, 2, 0, 2], [0, 0, 2, 3], [0, 0, 0, 1]]);
    const b = grid([4, 5, 6], [[2 + 5e-5, 0, 0, 1], [0, 2, 0, 2], [0, 0, 2, 3 - 5e-5], [0, 0, 0, 1]]);
    const c = grid([4, 5, 6], [[2, 0, 0, 1 + 3e-4], [0, 2, 0, 2], [0, 0, 2, 3], [0, 0, 0, 1]]);
    expect(sameGrid(a, b)).toBe(true);
    expect(sameGrid(a, c)).toBe(false);
    expect(sameGrid(a, { ...a, dims: [4, 5, 7] })).toBe(false);
    expect(describeGrid(a)).toBe('4×5×6 [[2,0,0,1],[0,2,0,2],[0,0,2,3]]');
  });
});
