import { describe, expect, it } from 'vitest';
import { mapShape, scatterMap, sliceOutOfRange } from '../../protocol/mapLayout.ts';

const dims: [number, number, number] = [5, 4, 3];
const [nx, ny, nz] = dims;
// every other voxel is in the mask; value = 100 + grid index
const mask = Uint32Array.from({ length: Math.ceil((nx * ny * nz) / 2) }, (_, m) => 2 * m);
const values = Float32Array.from(mask, (g) => 100 + g);
const vol = (i: number, j: number, k: number) => {
  const g = i + nx * (j + ny * k);
  return g % 2 === 0 ? 100 + g : NaN;
};

describe('map layout', () => {
  it('whole volume is [nz, ny, nx], NaN outside the mask', () => {
    const out = scatterMap(dims, mask, values, null);
    expect(mapShape(dims, null)).toEqual([nz, ny, nx]);
    for (let k = 0; k < nz; k++)
      for (let j = 0; j < ny; j++)
        for (let i = 0; i < nx; i++) expect(out[(k * ny + j) * nx + i]).toEqual(vol(i, j, k));
  });

  it.each([
    ['z', [2, 0, 2]],
    ['y', [3, 1]],
    ['x', [4]],
  ] as const)('slices along %s equal the matching planes of the volume', (axis, indices) => {
    const slices = { axis, indices: [...indices] };
    const shape = mapShape(dims, slices);
    const out = scatterMap(dims, mask, values, slices);
    expect(out.length).toBe(shape.reduce((a, b) => a * b, 1));
    indices.forEach((c, s) => {
      for (let a = 0; a < shape[1]; a++)
        for (let b = 0; b < shape[2]; b++) {
          const got = out[(s * shape[1] + a) * shape[2] + b];
          const want = axis === 'z' ? vol(b, a, c) : axis === 'y' ? vol(b, c, a) : vol(c, b, a);
          expect(got).toEqual(want);
        }
    });
  });

  it('finds slices outside the grid', () => {
    expect(sliceOutOfRange(dims, { axis: 'x', indices: [0, 4] })).toBeUndefined();
    expect(sliceOutOfRange(dims, { axis: 'x', indices: [0, 5] })).toBe(5);
    expect(sliceOutOfRange(dims, { axis: 'z', indices: [3] })).toBe(3);
  });
});
